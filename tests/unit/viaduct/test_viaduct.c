/* SPDX-License-Identifier: Apache-2.0 */
/* The Viaduct runtime with real migrators (fluid-checksum, fluid-test from the build tree):
 * chains, exit statuses, events, stderr tails, failures, timeout, cancel, kill escalation. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fluid/error.h"
#include "fluid/viaduct.h"

static const char *bindir;

static void
setup(void)
{
    bindir = getenv("FLUID_BIN_DIR");
    if (!bindir)
        cr_assert_fail("FLUID_BIN_DIR not set: run through ctest");
}

TestSuite(viaduct, .init = setup, .timeout = 60);

#define STAGE(k, ...)                                                                          \
    {                                                                                          \
        .kind = (k), .args = (const char *const[]){__VA_ARGS__},                               \
        .nargs = sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)             \
    }

struct counts {
    int progress, done, info;
};

static void
count(void *arg, struct fc_viaduct *v, size_t stage, const json_t *ev)
{
    struct counts *c = arg;
    const char *t = json_string_value(json_object_get(ev, "event"));
    (void)v;
    (void)stage;
    if (!strcmp(t, "progress"))
        c->progress++;
    else if (!strcmp(t, "done"))
        c->done++;
}

Test(viaduct, three_checksums_agree)
{
    struct fc_viaduct_stage_spec st[] = {STAGE("checksum", "--generate", "16M"),
                                         STAGE("checksum", "--framed"),
                                         STAGE("checksum", "--plain")};
    struct counts c = {0};
    struct fc_viaduct_opts o = {.migrator_dir = bindir, .stages = st, .nstages = 3,
                                .in_fd = -1, .out_fd = -1, .log_fd = -1,
                                .task_json = "{\"task_id\":\"t-1\"}", .task_len = 17,
                                .on_event = count, .arg = &c};
    struct fc_viaduct *v = NULL;
    cr_assert_eq(fc_viaduct_run(&o, NULL, &v), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(fc_viaduct_nstages(v), 3);
    const char *sha0 = NULL;
    for (size_t i = 0; i < 3; i++) {
        const struct fc_viaduct_stage *s = fc_viaduct_stage(v, i);
        cr_assert(s->done_event);
        cr_assert(WIFEXITED(s->status) && WEXITSTATUS(s->status) == 0);
        const char *sha = json_string_value(json_object_get(s->result, "sha256"));
        cr_assert_not_null(sha);
        if (!sha0)
            sha0 = sha;
        cr_assert_str_eq(sha, sha0, "stage %zu disagrees", i);
        cr_assert_eq(json_integer_value(json_object_get(s->result, "bytes")), 16 << 20);
        cr_assert_eq(s->zero_bytes, 4 << 20, "every fourth MiB is zeros");
    }
    /* zero runs cross the framed pipes without being sent as bytes */
    cr_assert_lt(fc_viaduct_stage(v, 0)->bytes_out, 13 << 20);
    cr_assert_eq(fc_viaduct_stage(v, 1)->bytes_in, fc_viaduct_stage(v, 0)->bytes_out);
    cr_assert_eq(c.done, 3);
    fc_viaduct_free(v);
}

Test(viaduct, missing_migrator_starts_nothing)
{
    struct fc_viaduct_stage_spec st[] = {STAGE("checksum", "--generate", "1M"),
                                         STAGE("nosuchkind", "x")};
    struct fc_viaduct_opts o = {.migrator_dir = bindir, .stages = st, .nstages = 2,
                                .in_fd = -1, .out_fd = -1, .log_fd = -1};
    struct fc_viaduct *v = NULL;
    cr_assert_eq(fc_viaduct_start(&o, &v), FC_E_NOTFOUND);
    cr_assert_null(v);
    cr_assert(strstr(fc_error_msg(), "fluid-nosuchkind"), "%s", fc_error_msg());
    struct fc_viaduct_stage_spec bad[] = {STAGE("../bin/sh", "x")};
    o.stages = bad;
    o.nstages = 1;
    cr_assert_eq(fc_viaduct_start(&o, &v), FC_E_INVALID);
}

Test(viaduct, failed_event_names_stage_and_keeps_stderr)
{
    struct fc_viaduct_stage_spec st[] = {
        STAGE("test", "--stderr", "first line", "--stderr", "disk on fire", "--fail", "FC_E_IO",
              "--message", "read /dev/sdz: I/O error")};
    struct fc_viaduct_opts o = {.migrator_dir = bindir, .stages = st, .nstages = 1,
                                .in_fd = -1, .out_fd = -1, .log_fd = -1};
    struct fc_viaduct *v = NULL;
    int stage = -2;
    cr_assert_eq(fc_viaduct_run(&o, NULL, &v), FC_E_IO, "%s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), "stage 0 (test)"), "%s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), "read /dev/sdz"), "%s", fc_error_msg());
    cr_assert_eq(fc_viaduct_outcome(v, &stage), FC_E_IO);
    cr_assert_eq(stage, 0);
    const struct fc_viaduct_stage *s = fc_viaduct_stage(v, 0);
    cr_assert(strstr(s->tail, "disk on fire"), "%s", s->tail);
    cr_assert_eq(WEXITSTATUS(s->status), FC_E_IO);
    fc_viaduct_free(v);
}

Test(viaduct, exit_without_event)
{
    struct fc_viaduct_stage_spec st[] = {STAGE("test", "--exit", "4", "--no-event")};
    struct fc_viaduct_opts o = {.migrator_dir = bindir, .stages = st, .nstages = 1,
                                .in_fd = -1, .out_fd = -1, .log_fd = -1};
    cr_assert_eq(fc_viaduct_run(&o, NULL, NULL), FC_E_NET, "%s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), "exit status 4"), "%s", fc_error_msg());
    struct fc_viaduct_stage_spec st0[] = {STAGE("test", "--no-event")};
    o.stages = st0;
    cr_assert_eq(fc_viaduct_run(&o, NULL, NULL), FC_E_CHILD, "%s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), "without a done event"), "%s", fc_error_msg());
}

Test(viaduct, malformed_event_fails_the_stage)
{
    struct fc_viaduct_stage_spec st[] = {STAGE("test", "--bad-event")};
    struct fc_viaduct_opts o = {.migrator_dir = bindir, .stages = st, .nstages = 1,
                                .in_fd = -1, .out_fd = -1, .log_fd = -1};
    cr_assert_eq(fc_viaduct_run(&o, NULL, NULL), FC_E_CHILD);
    cr_assert(strstr(fc_error_msg(), "malformed event at byte 0"), "%s", fc_error_msg());
}

Test(viaduct, middle_stage_failure_is_blamed_and_ends_the_chain)
{
    struct fc_viaduct_stage_spec st[] = {STAGE("checksum", "--generate", "64M"),
                                         STAGE("test", "--fail", "FC_E_REMOTE"),
                                         STAGE("checksum", "--plain")};
    struct fc_viaduct_opts o = {.migrator_dir = bindir, .stages = st, .nstages = 3,
                                .in_fd = -1, .out_fd = -1, .log_fd = -1};
    struct fc_viaduct *v = NULL;
    int stage = -1;
    cr_assert_eq(fc_viaduct_run(&o, NULL, &v), FC_E_REMOTE, "%s", fc_error_msg());
    fc_viaduct_outcome(v, &stage);
    cr_assert_eq(stage, 1);
    for (size_t i = 0; i < 3; i++)
        cr_assert(fc_viaduct_stage(v, i)->exited);
    fc_viaduct_free(v);
}

Test(viaduct, timeout_kills_a_hanging_chain)
{
    char pidfile[256];
    snprintf(pidfile, sizeof pidfile, "/tmp/fluid-viaduct-test-%d.pid", (int)getpid());
    struct fc_viaduct_stage_spec st[] = {STAGE("test", "--hang", "--pidfile", pidfile),
                                         STAGE("test", "--hang", "--ignore-term")};
    struct fc_viaduct_opts o = {.migrator_dir = bindir, .stages = st, .nstages = 2,
                                .in_fd = -1, .out_fd = -1, .log_fd = -1, .timeout_ms = 300,
                                .grace_ms = 300};
    struct fc_viaduct *v = NULL;
    cr_assert_eq(fc_viaduct_run(&o, NULL, &v), FC_E_TIMEOUT, "%s", fc_error_msg());
    const struct fc_viaduct_stage *s0 = fc_viaduct_stage(v, 0), *s1 = fc_viaduct_stage(v, 1);
    /* the first obeyed SIGTERM, the second ignored it and got SIGKILL */
    cr_assert(WIFEXITED(s0->status) && WEXITSTATUS(s0->status) == FC_E_CANCELLED,
              "status %d", s0->status);
    cr_assert(WIFSIGNALED(s1->status) && WTERMSIG(s1->status) == SIGKILL, "status %d",
              s1->status);
    FILE *f = fopen(pidfile, "r");
    cr_assert_not_null(f);
    long pid = 0;
    cr_assert_eq(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    unlink(pidfile);
    cr_assert_eq(kill((pid_t)pid, 0), -1, "the hanging migrator is gone");
    fc_viaduct_free(v);
}

static volatile int cancel_flag;

Test(viaduct, cancel_flag_stops_the_chain)
{
    struct fc_viaduct_stage_spec st[] = {STAGE("test", "--sleep", "60000")};
    struct fc_viaduct_opts o = {.migrator_dir = bindir, .stages = st, .nstages = 1,
                                .in_fd = -1, .out_fd = -1, .log_fd = -1};
    struct fc_viaduct *v = NULL;
    cr_assert_eq(fc_viaduct_start(&o, &v), FC_OK, "%s", fc_error_msg());
    cr_assert_not(fc_viaduct_finished(v));
    fc_viaduct_cancel(v, FC_E_CANCELLED);
    struct pollfd pfd[8];
    while (!fc_viaduct_finished(v)) {
        size_t n = fc_viaduct_pollfds(v, pfd, 8);
        poll(pfd, n, fc_viaduct_next_ms(v));
        fc_viaduct_step(v, pfd, n);
    }
    cr_assert_eq(fc_viaduct_outcome(v, NULL), FC_E_CANCELLED);
    /* ended long before its own sleep would have */
    cr_assert_lt(fc_viaduct_elapsed_ms(v), 60000);
    fc_viaduct_free(v);
}

Test(viaduct, events_and_plain_data_pass_through)
{
    int in[2], out[2];
    cr_assert_eq(pipe(in), 0);
    cr_assert_eq(pipe(out), 0);
    cr_assert_eq(write(in[1], "hello viaduct\n", 14), 14);
    close(in[1]);
    struct fc_viaduct_stage_spec st[] = {STAGE("test", "--progress", "3", "--pass"),
                                         STAGE("checksum", "--plain")};
    struct counts c = {0};
    struct fc_viaduct_opts o = {.migrator_dir = bindir, .stages = st, .nstages = 2,
                                .in_fd = in[0], .out_fd = out[1], .log_fd = -1,
                                .on_event = count, .arg = &c};
    struct fc_viaduct *v = NULL;
    cr_assert_eq(fc_viaduct_run(&o, NULL, &v), FC_OK, "%s", fc_error_msg());
    close(in[0]);
    close(out[1]);
    char buf[64] = "";
    cr_assert_eq(read(out[0], buf, sizeof buf), 14);
    cr_assert_str_eq(buf, "hello viaduct\n");
    close(out[0]);
    cr_assert_geq(c.progress, 3);
    cr_assert_eq(fc_viaduct_stage(v, 0)->bytes_out, 14);
    cr_assert_eq(json_integer_value(json_object_get(fc_viaduct_stage(v, 1)->result, "bytes")), 14);
    fc_viaduct_free(v);
}

Test(viaduct, kinds_in_the_build_tree)
{
    char **k = fc_viaduct_kinds(bindir);
    cr_assert_not_null(k);
    bool checksum = false, test = false;
    for (char **p = k; *p; p++) {
        checksum |= !strcmp(*p, "checksum");
        test |= !strcmp(*p, "test");
        cr_assert(strcmp(*p, "broker") && strcmp(*p, "conduit"), "%s is not a migrator", *p);
    }
    cr_assert(checksum && test);
    fc_viaduct_kinds_free(k);
}

Test(viaduct, migrator_dir_precedence)
{
    unsetenv("FLUID_MIGRATOR_DIR");
    char *d = fc_viaduct_migrator_dir("/flag/dir", "/config/dir", "/fallback");
    cr_assert_str_eq(d, "/flag/dir");
    free(d);
    setenv("FLUID_MIGRATOR_DIR", "/env/dir", 1);
    d = fc_viaduct_migrator_dir(NULL, "/config/dir", "/fallback");
    cr_assert_str_eq(d, "/env/dir");
    free(d);
    unsetenv("FLUID_MIGRATOR_DIR");
    d = fc_viaduct_migrator_dir(NULL, "/config/dir", "/fallback");
    cr_assert_str_eq(d, "/config/dir");
    free(d);
    /* the test program lives in build/tests, which holds no migrator: the fallback */
    d = fc_viaduct_migrator_dir(NULL, NULL, "/fallback");
    cr_assert_str_eq(d, "/fallback");
    free(d);
}

Test(viaduct, checksum_sink_source_expect)
{
    char path[256];
    snprintf(path, sizeof path, "/tmp/fluid-viaduct-test-%d.raw", (int)getpid());
    struct fc_viaduct_stage_spec st[] = {STAGE("checksum", "--generate", "8M:3"),
                                         STAGE("checksum", "--sink", path)};
    struct fc_viaduct_opts o = {.migrator_dir = bindir, .stages = st, .nstages = 2,
                                .in_fd = -1, .out_fd = -1, .log_fd = -1};
    struct fc_viaduct *v = NULL;
    cr_assert_eq(fc_viaduct_run(&o, NULL, &v), FC_OK, "%s", fc_error_msg());
    char sha[65];
    snprintf(sha, sizeof sha, "%s",
             json_string_value(json_object_get(fc_viaduct_stage(v, 1)->result, "sha256")));
    fc_viaduct_free(v);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_size, 8 << 20);
    cr_assert_lt((long long)sb.st_blocks * 512, 8 << 20, "zero runs became holes");

    struct fc_viaduct_stage_spec ok[] = {STAGE("checksum", "--source", path, "--expect", sha)};
    o.stages = ok;
    o.nstages = 1;
    cr_assert_eq(fc_viaduct_run(&o, NULL, NULL), FC_OK, "%s", fc_error_msg());
    char bad[65];
    snprintf(bad, sizeof bad, "%s", sha);
    bad[0] = bad[0] == '0' ? '1' : '0';
    struct fc_viaduct_stage_spec ko[] = {STAGE("checksum", "--source", path, "--expect", bad)};
    o.stages = ko;
    cr_assert_eq(fc_viaduct_run(&o, NULL, NULL), FC_E_CHECKSUM, "%s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), "expected"), "%s", fc_error_msg());
    unlink(path);
}

Test(viaduct, checksum_plain_when_the_task_says_unframed)
{
    int out[2];
    cr_assert_eq(pipe(out), 0);
    struct fc_viaduct_stage_spec st[] = {STAGE("checksum", "--generate", "16K")};
    const char *task = "{\"framed\":false}";
    struct fc_viaduct_opts o = {.migrator_dir = bindir, .stages = st, .nstages = 1,
                                .in_fd = -1, .out_fd = out[1], .log_fd = -1,
                                .task_json = task, .task_len = strlen(task)};
    cr_assert_eq(fc_viaduct_run(&o, NULL, NULL), FC_OK, "%s", fc_error_msg());
    close(out[1]);
    char buf[16] = "";
    cr_assert_eq(read(out[0], buf, 8), 8);
    cr_assert_neq(memcmp(buf, "FCSTRM01", 8), 0, "plain bytes, not frames");
    close(out[0]);
}
