/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers for the broker-side integration tests (see common.h). */
#include "common.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fluid/error.h"
#include "fluid/spawn.h"

static void
set(char *dst, size_t cap, const char *v)
{
    snprintf(dst, cap, "%s", v);
}

void
tb_env_load(struct tb_env *e, const char *dir)
{
    memset(e, 0, sizeof *e);
    const char *run = dir ? dir : getenv("FLUID_TEST_RUN_DIR");
    if (!run)
        cr_assert_fail("FLUID_TEST_RUN_DIR is not set: run this test through ctest");
    set(e->run_dir, sizeof e->run_dir, run);
    char path[1100];
    snprintf(path, sizeof path, "%s/rabbitmq.env", run);
    FILE *f = fopen(path, "r");
    if (!f)
        cr_assert_fail("%s missing: the rabbitmq fixture did not start", path);
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *k = line, *v = eq + 1;
        if (!strcmp(k, "FLUID_AMQP_URL"))
            set(e->url, sizeof e->url, v);
        else if (!strcmp(k, "FLUID_AMQPS_URL"))
            set(e->tls_url, sizeof e->tls_url, v);
        else if (!strcmp(k, "FLUID_AMQP_CA"))
            set(e->ca, sizeof e->ca, v);
        else if (!strcmp(k, "FLUID_AMQP_OTHER_CA"))
            set(e->other_ca, sizeof e->other_ca, v);
        else if (!strcmp(k, "FLUID_AMQP_PASSWORD"))
            set(e->password, sizeof e->password, v);
        else if (!strcmp(k, "FLUID_RABBITMQ_FIXTURE"))
            set(e->fixture, sizeof e->fixture, v);
    }
    fclose(f);
    if (!e->url[0] || !e->password[0] || !e->fixture[0])
        cr_assert_fail("%s: FLUID_AMQP_URL, FLUID_AMQP_PASSWORD or FLUID_RABBITMQ_FIXTURE missing", path);
}

static void
run_fixture(const char *fixture, const char *verb, const char *dir)
{
    const char *argv[] = {"/bin/bash", fixture, verb, dir, NULL};
    static char out[8192], err[8192];
    int st = -1;
    fc_rc rc = fc_run(argv, out, sizeof out, err, sizeof err, &st);
    cr_assert(rc == FC_OK, "run %s %s: %s", fixture, verb, fc_error_msg());
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s %s %s failed: %s %s", fixture, verb,
              dir, out, err);
}

void
tb_private_node(struct tb_env *e, const char *name)
{
    const char *run = getenv("FLUID_TEST_RUN_DIR");
    const char *src = getenv("FLUID_SOURCE_DIR");
    if (!run || !src)
        cr_assert_fail("FLUID_TEST_RUN_DIR / FLUID_SOURCE_DIR not set: run this test through ctest");
    char dir[1024], fixture[1024];
    snprintf(dir, sizeof dir, "%s/%s", run, name);
    snprintf(fixture, sizeof fixture, "%s/tests/fixtures/rabbitmq.sh", src);
    mkdir(dir, 0755);
    run_fixture(fixture, "start", dir);
    tb_env_load(e, dir);
}

void
tb_node(const struct tb_env *e, const char *verb)
{
    run_fixture(e->fixture, verb, e->run_dir);
}

void
tb_unique(char *buf, size_t cap, const char *prefix)
{
    static unsigned n;
    snprintf(buf, cap, "%s-%ld-%u", prefix, (long)getpid(), ++n);
}

struct fc_amqp *
tb_amqp(const struct tb_env *e, bool reconnect)
{
    struct fc_amqp_config c = {.url = e->url, .reconnect = reconnect, .name = "fluid-test"};
    struct fc_amqp *a = NULL;
    fc_rc rc = fc_amqp_open(&c, &a);
    if (rc != FC_OK)
        cr_assert_fail("connect to the fixture: %s", fc_error_msg());
    return a;
}

uint64_t
tb_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *
tb_bin(const char *prog, char *buf, size_t cap)
{
    const char *bin = getenv("FLUID_BIN_DIR");
    if (!bin)
        cr_assert_fail("FLUID_BIN_DIR not set: run this test through ctest");
    snprintf(buf, cap, "%s/%s", bin, prog);
    return buf;
}

bool
tb_file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap + 1);
    bool found = false;
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        buf[len] = '\0';
        if (memmem(buf, len, needle, strlen(needle))) {
            found = true;
            break;
        }
        if (len == cap) {
            /* keep the last bytes to match across the boundary */
            size_t keep = strlen(needle);
            memmove(buf, buf + len - keep, keep);
            len = keep;
        }
    }
    free(buf);
    fclose(f);
    return found;
}

/* ---- brokers and tasks ---- */

#include <fcntl.h>
#include <signal.h>

#include "fluid/sha256.h"

static pid_t brokers[32];
static size_t nbrokers;

pid_t
tb_broker(const struct tb_env *e, const char *site, const char *id, const char *const *extra,
          char *log_out, size_t cap)
{
    char bin[1024];
    tb_bin("fluid-broker", bin, sizeof bin);
    const char *argv[64] = {bin, "--site", site, "--broker-id", id, "--heartbeat-s", "1"};
    size_t n = 7;
    for (size_t i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    snprintf(log_out, cap, "%s/%s.log", e->run_dir, id);
    int fd = open(log_out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "open %s", log_out);
    /* the URL holds a password: through the environment, never argv */
    static char env_url[1100];
    snprintf(env_url, sizeof env_url, "FLUID_AMQP_URL=%s", e->url);
    extern char **environ;
    const char *env[256];
    size_t ne = 0;
    for (char **p = environ; *p && ne < 254; p++) {
        if (strncmp(*p, "FLUID_AMQP_URL=", 15) != 0)
            env[ne++] = *p;
    }
    env[ne++] = env_url;
    env[ne] = NULL;
    struct fc_spawn sp = {.argv = argv, .env = env, .fd = {-1, fd, fd}};
    pid_t pid = -1;
    fc_rc rc = fc_spawn(&sp, &pid);
    close(fd);
    cr_assert_eq(rc, FC_OK, "spawn fluid-broker: %s", fc_error_msg());
    if (nbrokers < sizeof brokers / sizeof brokers[0])
        brokers[nbrokers++] = pid;
    return pid;
}

void
tb_brokers_kill(void)
{
    for (size_t i = 0; i < nbrokers; i++) {
        if (brokers[i] > 0 && kill(brokers[i], SIGKILL) == 0)
            waitpid(brokers[i], NULL, 0);
    }
    nbrokers = 0;
}

int
tb_broker_signal(pid_t pid, int sig)
{
    int st = 0;
    kill(pid, sig);
    waitpid(pid, &st, 0);
    for (size_t i = 0; i < nbrokers; i++) {
        if (brokers[i] == pid)
            brokers[i] = -1;
    }
    return st;
}

void
tb_task_json(char *buf, size_t cap, const char *rid, const char *tid, const char *site,
             const char *kind, const char *stages_json, unsigned timeout_s,
             unsigned max_attempts)
{
    int n = snprintf(buf, cap,
                     "{\"schema\":\"fluid.task/1\",\"relocation_id\":\"%s\",\"task_id\":\"%s\","
                     "\"idempotency_key\":\"%s/%s\",\"site\":\"%s\",\"kind\":\"%s\","
                     "\"stages\":%s,\"timeout_s\":%u,\"max_attempts\":%u}",
                     rid, tid, rid, tid, site, kind, stages_json, timeout_s, max_attempts);
    cr_assert(n > 0 && (size_t)n < cap);
}

void
tb_publish_task(struct fc_amqp *a, const char *site, const char *kind, const char *json)
{
    char rk[256];
    snprintf(rk, sizeof rk, "%s.%s", site, kind);
    cr_assert_eq(fc_amqp_declare_topology(a), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(fc_amqp_declare_site(a, site), FC_OK, "%s", fc_error_msg());
    struct fc_amqp_msg m = {.exchange = FC_AMQP_X_TASKS, .routing_key = rk, .body = json,
                            .len = strlen(json), .mandatory = true};
    cr_assert_eq(fc_amqp_publish(a, &m), FC_OK, "publish task: %s", fc_error_msg());
}

void
tb_outcome_queue(const char *key, char *out, size_t cap)
{
    uint8_t h[32];
    char hex[65];
    struct fc_sha256 s;
    fc_sha256_init(&s);
    fc_sha256_update(&s, key, strlen(key));
    fc_sha256_final(&s, h);
    fc_sha256_free(&s);
    fc_hex(h, 16, hex);
    snprintf(out, cap, "%s%s", FC_AMQP_Q_OUTCOME_PREFIX, hex);
}

void
tb_watch(struct fc_amqp *a, const char *rid)
{
    char key[256];
    snprintf(key, sizeof key, "relocation.%s.#", rid);
    const char *keys[] = {key};
    cr_assert_eq(fc_amqp_declare_topology(a), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(fc_amqp_subscribe(a, FC_AMQP_X_EVENTS, keys, 1, 100, NULL), FC_OK, "%s",
                 fc_error_msg());
}

const struct fc_task_event *
tb_wait_state(struct fc_amqp *a, struct tb_events *evs, const char *task_id,
              enum fc_task_state state, int timeout_ms)
{
    for (size_t i = 0; i < evs->n; i++) {
        if (!strcmp(evs->ev[i]->task_id, task_id) && evs->ev[i]->state == state)
            return evs->ev[i];
    }
    uint64_t end = tb_ms() + (uint64_t)timeout_ms;
    while (tb_ms() < end) {
        struct fc_amqp_delivery *d = NULL;
        cr_assert_eq(fc_amqp_wait(a, 200, &d), FC_OK, "%s", fc_error_msg());
        if (!d)
            continue;
        struct fc_task_event *e = NULL;
        fc_rc rc = fc_event_parse(d->body, d->len, &e);
        cr_assert_eq(rc, FC_OK, "the broker sent an invalid event: %s: %s", fc_error_msg(),
                     (char *)d->body);
        fc_amqp_ack(a, d);
        fc_amqp_delivery_free(d);
        cr_assert_lt(evs->n, sizeof evs->ev / sizeof evs->ev[0]);
        evs->ev[evs->n++] = e;
        if (!strcmp(e->task_id, task_id) && e->state == state)
            return e;
    }
    return NULL;
}

size_t
tb_count(const struct tb_events *evs, const char *task_id, enum fc_task_state state)
{
    size_t n = 0;
    for (size_t i = 0; i < evs->n; i++)
        n += !strcmp(evs->ev[i]->task_id, task_id) && evs->ev[i]->state == state;
    return n;
}

void
tb_events_free(struct tb_events *evs)
{
    for (size_t i = 0; i < evs->n; i++)
        fc_event_free(evs->ev[i]);
    evs->n = 0;
}
