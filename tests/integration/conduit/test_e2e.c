/* SPDX-License-Identifier: Apache-2.0 */
/* End to end with real programs only: two fluid-broker processes (site default) running
 * fluid-checksum, fluid-conduit, and fluidctl. An explicit plan of checksum viaducts
 * submitted with `fluidctl submit` runs to done, `fluidctl watch --json` follows it to the
 * end (exit status 0), the three checksums of each chain agree, and `fluidctl brokers`
 * lists both brokers. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fluid/error.h"
#include "fluid/msg.h"
#include "helpers.h"

#define CHAIN(id, seed, deps)                                                                  \
    "{\"task_id\":\"" id "\",\"depends_on\":" deps ",\"stages\":["                            \
    "{\"kind\":\"checksum\",\"args\":[\"--generate\",\"8M:" seed "\",\"--framed\"]},"          \
    "{\"kind\":\"checksum\",\"args\":[\"--framed\"]},"                                         \
    "{\"kind\":\"checksum\",\"args\":[\"--plain\"]}]}"

static const char request[] =
    "{\"schema\":\"fluid.request/1\",\"relocation_id\":\"r-e2e\",\"idempotency_key\":\"k-e2e\","
    "\"plan\":{\"tasks\":[" CHAIN("t-a", "1", "[]") "," CHAIN("t-b", "2", "[]") ","
    CHAIN("t-c", "3", "[\"t-a\",\"t-b\"]") "]}}";

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static pid_t
broker(const struct tc *t, const char *id)
{
    char prog[1200], log[64];
    tc_bin(t, "fluid-broker", prog, sizeof prog);
    if (access(prog, X_OK) != 0)
        cr_assert_fail("%s is missing: build fluid-broker", prog);
    snprintf(log, sizeof log, "%s.log", id);
    const char *argv[] = {prog, "--site", "default", "--broker-id", id, "--capacity", "2",
                          "--heartbeat-s", "1", NULL};
    return tc_spawn(t, argv, log);
}

TestSuite(e2e, .fini = tc_cleanup);

Test(e2e, checksum_plan_runs_to_done_with_real_brokers)
{
    struct tc t;
    tc_init(&t, "e2e");
    struct fc_amqp *a = tc_amqp(&t);
    const char *keys[] = {"relocation.r-e2e.task.*.done"};
    cr_assert_eq(fc_amqp_subscribe(a, FC_AMQP_X_EVENTS, keys, 1, 100, NULL), FC_OK);
    tc_conduit_start(&t, NULL);
    pid_t b1 = broker(&t, "b-e2e-1"), b2 = broker(&t, "b-e2e-2");

    char path[1200], prog[1200], out[65536], err[8192];
    tc_bin(&t, "fluidctl", prog, sizeof prog);
    snprintf(path, sizeof path, "%s/request.json", t.dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(request, f);
    fclose(f);
    const char *sub[] = {prog, "submit", path, NULL};
    int st = tc_run(&t, sub, out, sizeof out, err, sizeof err);
    cr_assert_eq(st, 0, "submit: exit %d: %s", st, err);
    cr_assert_str_eq(out, "r-e2e\n");

    const char *watch[] = {prog, "watch", "--json", "--timeout", "300", "r-e2e", NULL};
    st = tc_run(&t, watch, out, sizeof out, err, sizeof err);
    cr_assert_eq(st, 0, "watch: exit %d: %s\n%s", st, err, out);
    cr_assert(strstr(out, "\"state\":\"done\""), "watch output lacks the end: %s", out);

    /* each chain's three checksums agree; every task ran once */
    for (int i = 0; i < 3; i++) {
        struct fc_amqp_delivery *d = tc_next(a);
        FC_AUTO(task_event) struct fc_task_event *e = NULL;
        cr_assert_eq(fc_event_parse(d->body, d->len, &e), FC_OK, "%s", fc_error_msg());
        cr_assert_eq(e->attempt, 1);
        json_t *stages = json_object_get(e->result, "stages");
        cr_assert_eq(json_array_size(stages), 3, "%s", (char *)d->body);
        const char *first = NULL;
        for (size_t k = 0; k < 3; k++) {
            json_t *r = json_object_get(json_array_get(stages, k), "result");
            const char *sha = json_string_value(json_object_get(r, "sha256"));
            cr_assert_not_null(sha, "stage %zu of %s has no sha256: %s", k, e->task_id,
                               (char *)d->body);
            if (!first)
                first = sha;
            cr_assert_str_eq(sha, first, "stage %zu of %s disagrees", k, e->task_id);
        }
        fc_amqp_delivery_free(d);
    }
    const char *status[] = {prog, "status", "r-e2e", NULL};
    st = tc_run(&t, status, out, sizeof out, err, sizeof err);
    cr_assert_eq(st, 0, "status: exit %d: %s", st, err);
    cr_assert(strstr(out, "relocation r-e2e: done"), "%s", out);

    const char *brokers[] = {prog, "brokers", NULL};
    st = tc_run(&t, brokers, out, sizeof out, err, sizeof err);
    cr_assert_eq(st, 0, "brokers: exit %d: %s", st, err);
    cr_assert(strstr(out, "b-e2e-1") && strstr(out, "b-e2e-2") && strstr(out, "checksum"),
              "%s", out);

    fc_amqp_close(a);
    st = tc_stop(b1, SIGTERM);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "broker 1 did not stop cleanly: %d", st);
    st = tc_stop(b2, SIGTERM);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "broker 2 did not stop cleanly: %d", st);
    cr_assert_eq(tc_conduit_stop(&t, SIGTERM), 0);
    tc_assert_no_password(&t);
    tc_fini(&t);
}

/* fluidctl cancel on a relocation whose first task hangs: the broker stops the chain, the
 * conduit records the dependent task cancelled, the relocation ends cancelled and
 * fluidctl watch exits with status 6. */
Test(e2e, cancel_ends_the_relocation_cancelled)
{
    struct tc t;
    tc_init(&t, "e2ecancel");
    tc_conduit_start(&t, NULL);
    pid_t b1 = broker(&t, "b-cancel-1");
    char path[1200], prog[1200], out[65536], err[8192];
    tc_bin(&t, "fluidctl", prog, sizeof prog);
    snprintf(path, sizeof path, "%s/request.json", t.dir);
    write_file(path,
               "{\"schema\":\"fluid.request/1\",\"relocation_id\":\"r-c\","
               "\"idempotency_key\":\"k-c\",\"plan\":{\"tasks\":["
               "{\"task_id\":\"t-hang\",\"stages\":[{\"kind\":\"test\",\"args\":[\"--hang\"]}]},"
               "{\"task_id\":\"t-after\",\"depends_on\":[\"t-hang\"],"
               "\"stages\":[{\"kind\":\"checksum\",\"args\":[\"--generate\",\"1M\"]}]}]}}");
    const char *sub[] = {prog, "submit", path, NULL};
    int st = tc_run(&t, sub, out, sizeof out, err, sizeof err);
    cr_assert_eq(st, 0, "submit: exit %d: %s", st, err);

    /* wait until the hanging task has started (as the conduit records it), then cancel */
    bool started = false;
    for (int i = 0; i < 1200 && !started; i++) {
        char *s = tc_status(&t, "r-c");
        started = strstr(s, "\"task_id\":\"t-hang\",\"kind\":\"test\",\"site\":\"default\","
                            "\"state\":\"started\"") != NULL;
        free(s);
        if (!started)
            nanosleep(&(struct timespec){0, 50000000L}, NULL);
    }
    cr_assert(started, "t-hang never started");
    const char *cancel[] = {prog, "cancel", "--reason", "test", "r-c", NULL};
    st = tc_run(&t, cancel, out, sizeof out, err, sizeof err);
    cr_assert_eq(st, 0, "cancel: exit %d: %s", st, err);

    const char *watch[] = {prog, "watch", "--timeout", "120", "r-c", NULL};
    st = tc_run(&t, watch, out, sizeof out, err, sizeof err);
    cr_assert_eq(st, 6, "watch: exit %d (want 6, cancelled): %s\n%s", st, err, out);
    cr_assert(strstr(out, "relocation r-c cancelled"), "%s", out);
    const char *status[] = {prog, "status", "r-c", NULL};
    st = tc_run(&t, status, out, sizeof out, err, sizeof err);
    cr_assert_eq(st, 6, "status: exit %d: %s", st, err);
    cr_assert(strstr(out, "t-after") && strstr(out, "not run"), "%s", out);

    st = tc_stop(b1, SIGTERM);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "broker did not stop cleanly: %d", st);
    cr_assert_eq(tc_conduit_stop(&t, SIGTERM), 0);
    tc_assert_no_password(&t);
    tc_fini(&t);
}
