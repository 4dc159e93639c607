/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers of the conduit integration tests (see helpers.h). */
#include "helpers.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fluid/error.h"
#include "fluid/msg.h"
#include "fluid/spawn.h"

extern char **environ;

/* Every process a test started, so that tc_cleanup() (the suites' .fini, which Criterion
 * runs after a failed assertion too) leaves nothing running. */
static pid_t spawned[64];
static size_t nspawned;

static void
remember(pid_t pid)
{
    if (nspawned < sizeof spawned / sizeof spawned[0])
        spawned[nspawned++] = pid;
}

static void
forget(pid_t pid)
{
    for (size_t i = 0; i < nspawned; i++)
        if (spawned[i] == pid)
            spawned[i] = -1;
}

/* A private RabbitMQ node still running (tc_init_private), stopped by tc_cleanup too. */
static char node_fixture[1024], node_dir[1024];

static void run_fixture_stop(void);

void
tc_cleanup(void)
{
    run_fixture_stop();
    for (size_t i = 0; i < nspawned; i++) {
        if (spawned[i] > 0) {
            kill(spawned[i], SIGKILL);
            waitpid(spawned[i], NULL, 0);
        }
    }
    nspawned = 0;
}

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

const char *
tc_bin(const struct tc *t, const char *prog, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", t->bin, prog);
    return buf;
}

static int
run_env(const char *const *argv, const char *const *env, char *out, size_t cap, char *err,
        size_t errcap)
{
    char of[] = "/tmp/tc-out-XXXXXX", ef[] = "/tmp/tc-err-XXXXXX";
    int o = mkstemp(of), e = mkstemp(ef);
    cr_assert(o >= 0 && e >= 0);
    unlink(of);
    unlink(ef);
    struct fc_spawn sp = {.argv = argv, .env = env, .fd = {-1, o, e}};
    pid_t pid;
    cr_assert_eq(fc_spawn(&sp, &pid), FC_OK, "spawn %s: %s", argv[0], fc_error_msg());
    int st;
    while (waitpid(pid, &st, 0) < 0)
        ;
    if (out) {
        ssize_t n = pread(o, out, cap - 1, 0);
        out[n > 0 ? n : 0] = '\0';
    }
    if (err) {
        ssize_t n = pread(e, err, errcap - 1, 0);
        err[n > 0 ? n : 0] = '\0';
    }
    close(o);
    close(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The caller's environment with FLUID_AMQP_URL replaced (static storage). */
static const char *const *
env_with_url(const struct tc *t)
{
    static char urlvar[600];
    static const char *env[512];
    size_t n = 0;
    snprintf(urlvar, sizeof urlvar, "FLUID_AMQP_URL=%s", t->url);
    env[n++] = urlvar;
    for (char **e = environ; *e && n < 510; e++)
        if (strncmp(*e, "FLUID_AMQP_URL=", 15) != 0)
            env[n++] = *e;
    env[n] = NULL;
    return env;
}

int
tc_run(const struct tc *t, const char *const *argv, char *out, size_t cap, char *err,
       size_t errcap)
{
    return run_env(argv, env_with_url(t), out, cap, err, errcap);
}

static void
ctl(const struct tc *t, const char *a1, const char *a2, const char *a3, const char *a4,
    const char *a5, const char *a6, const char *a7)
{
    const char *argv[] = {t->ctl, a1, a2, a3, a4, a5, a6, a7, NULL};
    char err[4096];
    int st = run_env(argv, NULL, NULL, 0, err, sizeof err);
    cr_assert_eq(st, 0, "rabbitmqctl %s %s: exit %d: %s", a1, a2 ? a2 : "", st, err);
}

void
tc_init(struct tc *t, const char *test)
{
    memset(t, 0, sizeof *t);
    t->conduit = -1;
    const char *run = getenv("FLUID_TEST_RUN_DIR"), *bin = getenv("FLUID_BIN_DIR");
    if (!run || !bin)
        cr_assert_fail("FLUID_TEST_RUN_DIR/FLUID_BIN_DIR not set: run this test through ctest");
    snprintf(t->bin, sizeof t->bin, "%s", bin);
    char path[1200], base[512] = "", line[2048];
    snprintf(path, sizeof path, "%s/rabbitmq.env", run);
    FILE *f = fopen(path, "r");
    if (!f)
        cr_assert_fail("%s missing: the rabbitmq fixture did not start", path);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "FLUID_AMQP_URL=", 15))
            snprintf(base, sizeof base, "%.500s", line + 15);
        else if (!strncmp(line, "FLUID_RABBITMQCTL=", 18))
            snprintf(t->ctl, sizeof t->ctl, "%.1000s", line + 18);
    }
    fclose(f);
    if (!base[0] || !t->ctl[0])
        cr_assert_fail("%s: FLUID_AMQP_URL or FLUID_RABBITMQCTL missing", path);
    snprintf(t->name, sizeof t->name, "conduit-%s-%d", test, (int)getpid());
    snprintf(t->dir, sizeof t->dir, "%s/%s", run, t->name);
    mkdir(run, 0755);
    mkdir(t->dir, 0755);
    /* base ends with "/%2f" (vhost "/"): use our own vhost */
    char *slash = strrchr(base, '/');
    cr_assert_not_null(slash);
    snprintf(t->url, sizeof t->url, "%.*s/%s", (int)(slash - base), base, t->name);
    ctl(t, "add_vhost", t->name, NULL, NULL, NULL, NULL, NULL);
    ctl(t, "set_permissions", "-p", t->name, "fluid", ".*", ".*", ".*");
}

static void
run_fixture_stop(void)
{
    if (!node_dir[0])
        return;
    const char *argv[] = {node_fixture, "stop", node_dir, NULL};
    run_env(argv, NULL, NULL, 0, NULL, 0);
    node_dir[0] = '\0';
}

void
tc_node(struct tc *t, const char *verb)
{
    const char *argv[] = {t->fixture, verb, t->node_dir, NULL};
    char err[8192];
    int st = run_env(argv, NULL, NULL, 0, err, sizeof err);
    cr_assert_eq(st, 0, "rabbitmq fixture %s %s: exit %d: %s", verb, t->node_dir, st, err);
}

void
tc_init_private(struct tc *t, const char *test)
{
    memset(t, 0, sizeof *t);
    t->conduit = -1;
    const char *run = getenv("FLUID_TEST_RUN_DIR"), *bin = getenv("FLUID_BIN_DIR"),
               *src = getenv("FLUID_SOURCE_DIR");
    if (!run || !bin || !src)
        cr_assert_fail("FLUID_TEST_RUN_DIR/FLUID_BIN_DIR/FLUID_SOURCE_DIR not set: use ctest");
    snprintf(t->bin, sizeof t->bin, "%s", bin);
    snprintf(t->fixture, sizeof t->fixture, "%s/tests/fixtures/rabbitmq.sh", src);
    snprintf(t->name, sizeof t->name, "conduit-%s-%d", test, (int)getpid());
    snprintf(t->dir, sizeof t->dir, "%s/%s", run, t->name);
    snprintf(t->node_dir, sizeof t->node_dir, "%s/%s-node", run, t->name);
    mkdir(run, 0755);
    mkdir(t->dir, 0755);
    mkdir(t->node_dir, 0755);
    snprintf(node_fixture, sizeof node_fixture, "%s", t->fixture);
    snprintf(node_dir, sizeof node_dir, "%s", t->node_dir);
    tc_node(t, "start");
    char path[1200], line[2048];
    snprintf(path, sizeof path, "%s/rabbitmq.env", t->node_dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "FLUID_AMQP_URL=", 15))
            snprintf(t->url, sizeof t->url, "%.500s", line + 15);
        else if (!strncmp(line, "FLUID_RABBITMQCTL=", 18))
            snprintf(t->ctl, sizeof t->ctl, "%.1000s", line + 18);
    }
    fclose(f);
    cr_assert(t->url[0] && t->ctl[0], "%s lacks FLUID_AMQP_URL/FLUID_RABBITMQCTL", path);
}

void
tc_fini(struct tc *t)
{
    if (t->conduit > 0)
        tc_conduit_stop(t, SIGKILL);
    if (t->node_dir[0]) {
        run_fixture_stop();
        return;
    }
    const char *argv[] = {t->ctl, "delete_vhost", t->name, NULL};
    run_env(argv, NULL, NULL, 0, NULL, 0);
}

struct fc_amqp *
tc_amqp(const struct tc *t)
{
    struct fc_amqp_config cfg = {.url = t->url, .name = "conduit-test"};
    struct fc_amqp *a = NULL;
    if (fc_amqp_open(&cfg, &a) != FC_OK)
        cr_assert_fail("connect to %s: %s", t->name, fc_error_msg());
    cr_assert_eq(fc_amqp_declare_topology(a), FC_OK, "%s", fc_error_msg());
    return a;
}

void
tc_conduit_start(struct tc *t, const char *const *extra)
{
    char prog[1200], state[1100], log[1200];
    tc_bin(t, "fluid-conduit", prog, sizeof prog);
    snprintf(state, sizeof state, "%s/state", t->dir);
    snprintf(log, sizeof log, "%s/conduit-%d.log", t->dir, ++t->conduit_runs);
    const char *argv[32] = {prog, "--state-dir", state};
    size_t n = 3;
    for (size_t i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0);
    struct fc_spawn sp = {.argv = argv, .env = env_with_url(t), .fd = {-1, fd, fd}};
    cr_assert_eq(fc_spawn(&sp, &t->conduit), FC_OK, "%s", fc_error_msg());
    remember(t->conduit);
    close(fd);
    /* ready when it consumes fluid.requests */
    struct fc_amqp *a = tc_amqp(t);
    uint64_t end = now_ms() + 60000;
    for (;;) {
        uint32_t msgs = 0, cons = 0;
        if (fc_amqp_queue_info(a, FC_AMQP_Q_REQUESTS, &msgs, &cons) == FC_OK && cons > 0)
            break;
        int st;
        if (waitpid(t->conduit, &st, WNOHANG) == t->conduit)
            cr_assert_fail("fluid-conduit exited at start (status %d), see %s", st, log);
        if (now_ms() > end)
            cr_assert_fail("fluid-conduit did not start consuming in 60 s, see %s", log);
        sleep_ms(50);
    }
    fc_amqp_close(a);
}

int
tc_conduit_stop(struct tc *t, int sig)
{
    if (t->conduit <= 0)
        return -1;
    kill(t->conduit, sig);
    int st = 0;
    while (waitpid(t->conduit, &st, 0) < 0)
        ;
    forget(t->conduit);
    t->conduit = -1;
    return st;
}

void
tc_amqp_publish_cli(const struct tc *t, const char *body)
{
    char url[600];
    snprintf(url, sizeof url, "--url=%s", t->url);
    const char *argv[] = {"/usr/bin/amqp-publish", url, "-r", FC_AMQP_Q_REQUESTS, "-p", "-C",
                          "application/json", "-b", body, NULL};
    char err[2048];
    int st = run_env(argv, NULL, NULL, 0, err, sizeof err);
    cr_assert_eq(st, 0, "amqp-publish: exit %d: %s", st, err);
}

struct fc_amqp_delivery *
tc_next(struct fc_amqp *a)
{
    struct fc_amqp_delivery *d = NULL;
    fc_rc rc = fc_amqp_wait(a, 60000, &d);
    cr_assert_eq(rc, FC_OK, "%s", fc_error_msg());
    if (!d)
        cr_assert_fail("no message within 60 s");
    fc_amqp_ack(a, d);
    return d;
}

void
tc_wait_queue(struct fc_amqp *a, const char *queue, uint32_t want)
{
    uint64_t end = now_ms() + 60000;
    uint32_t msgs = 0, cons = 0;
    for (;;) {
        fc_rc rc = fc_amqp_queue_info(a, queue, &msgs, &cons);
        cr_assert(rc == FC_OK || rc == FC_E_NOTFOUND, "%s", fc_error_msg());
        if (rc == FC_E_NOTFOUND)
            msgs = 0; /* not declared yet */
        if (msgs == want && (rc == FC_OK || want == 0))
            return;
        if (now_ms() > end)
            cr_assert_fail("%s holds %u messages, want %u (60 s)", queue, msgs, want);
        sleep_ms(50);
    }
}

char *
tc_status(const struct tc *t, const char *rid)
{
    char prog[1200], out[65536], err[4096];
    tc_bin(t, "fluidctl", prog, sizeof prog);
    const char *argv[] = {prog, "status", "--json", "--timeout", "60", rid, NULL};
    int st = tc_run(t, argv, out, sizeof out, err, sizeof err);
    cr_assert(st == 0 || st == 1 || st == 5 || st == 6, "fluidctl status: exit %d: %s", st, err);
    return strdup(out);
}

pid_t
tc_spawn(const struct tc *t, const char *const *argv, const char *log)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", t->dir, log);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "%s", path);
    struct fc_spawn sp = {.argv = argv, .env = env_with_url(t), .fd = {-1, fd, fd}};
    pid_t pid;
    cr_assert_eq(fc_spawn(&sp, &pid), FC_OK, "%s", fc_error_msg());
    remember(pid);
    close(fd);
    return pid;
}

int
tc_stop(pid_t pid, int sig)
{
    kill(pid, sig);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        ;
    forget(pid);
    return st;
}

/* Takes the next task from fluid.tasks.default (cr_assert_fail if none within 60 s). */
struct fc_task *
tc_take_task(struct fc_amqp *a)
{
    for (int i = 0; i < 1200; i++) {
        struct fc_amqp_delivery *d = NULL;
        fc_rc rc = fc_amqp_get(a, "fluid.tasks.default", &d);
        /* the conduit declares the site's queue just before its first task */
        cr_assert(rc == FC_OK || rc == FC_E_NOTFOUND, "%s", fc_error_msg());
        if (d) {
            struct fc_task *t = NULL;
            cr_assert_eq(fc_task_parse(d->body, d->len, &t), FC_OK, "task: %s", fc_error_msg());
            cr_assert_str_eq(d->message_id ? d->message_id : "", t->idempotency_key);
            fc_amqp_ack(a, d);
            fc_amqp_delivery_free(d);
            return t;
        }
        struct fc_amqp_delivery *none = NULL;
        fc_amqp_wait(a, 50, &none); /* lets the connection breathe */
        fc_amqp_delivery_free(none);
    }
    cr_assert_fail("no task in fluid.tasks.default within 60 s");
    return NULL;
}

/* Publishes the TaskEvent a broker would publish for t. */
void
tc_report(struct fc_amqp *a, const struct fc_task *t, enum fc_task_state state)
{
    struct fc_task_event e = {.relocation_id = t->relocation_id, .task_id = t->task_id,
                              .idempotency_key = t->idempotency_key, .state = state,
                              .broker = "test-broker", .site = "default", .attempt = 1};
    if (state == FC_TS_DONE)
        e.result = json_pack("{s:[{s:s,s:i}]}", "stages", "kind", "checksum", "exit", 0);
    if (state == FC_TS_FAILED) {
        e.has_error = true;
        e.error = (struct fc_task_error){FC_E_CHILD, "exit 3", 0, "boom"};
    }
    json_auto_t *j = fc_event_to_json(&e);
    json_decref(e.result);
    char *body = fc_msg_dump(j), rk[256];
    fc_amqp_rk_task_event(rk, sizeof rk, t->relocation_id, t->task_id, fc_task_state_name(state));
    struct fc_amqp_msg m = {.exchange = FC_AMQP_X_EVENTS, .routing_key = rk, .body = body,
                            .len = strlen(body), .message_id = t->idempotency_key};
    cr_assert_eq(fc_amqp_publish(a, &m), FC_OK, "%s", fc_error_msg());
    free(body);
}


void
tc_assert_no_password(const struct tc *t)
{
    /* amqp://user:PASSWORD@host... */
    const char *colon = strchr(t->url + strlen("amqp://"), ':'), *at = strchr(t->url, '@');
    cr_assert(colon && at && at > colon + 1, "test bug: no password in %s", t->name);
    char pw[256];
    snprintf(pw, sizeof pw, "%.*s", (int)(at - colon - 1), colon + 1);
    for (int i = 1; i <= t->conduit_runs; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/conduit-%d.log", t->dir, i);
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f, "%s", path);
        char line[8192];
        while (fgets(line, sizeof line, f))
            cr_assert_null(strstr(line, pw), "%s shows the AMQP password: %s", path, line);
        fclose(f);
    }
}
