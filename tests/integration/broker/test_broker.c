/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-broker against the real RabbitMQ of the fixture: a three-stage checksum chain over
 * 100 MiB, retries then dead-lettering with the stderr tail, a hanging migrator killed at its
 * timeout, cancel, kill -9 of a broker mid-task (redelivered, one outcome), SIGTERM drain,
 * heartbeats, invalid tasks. Each test uses its own site and relocation id. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "fluid/error.h"
#include "fluid/spawn.h"

static struct tb_env env;

static void
setup(void)
{
    tb_env_load(&env, NULL);
}

static void
teardown(void)
{
    tb_brokers_kill();
}

TestSuite(broker, .init = setup, .fini = teardown, .timeout = 180);

struct ctx {
    char site[64], rid[64], log[1200], log2[1200];
    struct fc_amqp *a;
    struct tb_events evs;
};

static void
ctx_init(struct ctx *c, const char *name)
{
    memset(c, 0, sizeof *c);
    snprintf(c->site, sizeof c->site, "s%d-%s", (int)getpid(), name);
    snprintf(c->rid, sizeof c->rid, "r-%d-%s", (int)getpid(), name);
    c->a = tb_amqp(&env, false);
    tb_watch(c->a, c->rid);
}

static void
ctx_fini(struct ctx *c)
{
    tb_events_free(&c->evs);
    fc_amqp_close(c->a);
}

static uint32_t
outcomes(struct ctx *c, const char *tid)
{
    char key[256], q[128];
    snprintf(key, sizeof key, "%s/%s", c->rid, tid);
    tb_outcome_queue(key, q, sizeof q);
    uint32_t n = 0;
    cr_assert_eq(fc_amqp_queue_info(c->a, q, &n, NULL), FC_OK, "%s", fc_error_msg());
    return n;
}

Test(broker, three_stage_checksum_chain_over_100mib)
{
    struct ctx c;
    ctx_init(&c, "chain");
    char id[64], task[2048];
    snprintf(id, sizeof id, "b%d-chain", (int)getpid());
    tb_broker(&env, c.site, id, NULL, c.log, sizeof c.log);
    tb_task_json(task, sizeof task, c.rid, "t-chain", c.site, "checksum",
                 "[{\"kind\":\"checksum\",\"args\":[\"--generate\",\"100M:7\"]},"
                 "{\"kind\":\"checksum\",\"args\":[]},"
                 "{\"kind\":\"checksum\",\"args\":[\"--plain\"]}]",
                 300, 1);
    tb_publish_task(c.a, c.site, "checksum", task);
    const struct fc_task_event *e = tb_wait_state(c.a, &c.evs, "t-chain", FC_TS_DONE, 120000);
    cr_assert_not_null(e, "no done event (broker log %s)", c.log);
    json_t *st = json_object_get(e->result, "stages");
    cr_assert_eq(json_array_size(st), 3);
    const char *sha0 = NULL;
    for (size_t i = 0; i < 3; i++) {
        json_t *r = json_object_get(json_array_get(st, i), "result");
        const char *sha = json_string_value(json_object_get(r, "sha256"));
        cr_assert_not_null(sha, "stage %zu has no sha256", i);
        cr_assert_eq(json_integer_value(json_object_get(r, "bytes")), 100 << 20);
        if (!sha0)
            sha0 = sha;
        cr_assert_str_eq(sha, sha0, "stage %zu disagrees", i);
    }
    /* bytes per stage: the framed hops carry the zero runs without their bytes */
    json_int_t out0 = json_integer_value(json_object_get(json_array_get(st, 0), "bytes_out"));
    json_int_t in1 = json_integer_value(json_object_get(json_array_get(st, 1), "bytes_in"));
    cr_assert_eq(out0, in1);
    cr_assert_lt(out0, 100 << 20);
    cr_assert_eq(tb_count(&c.evs, "t-chain", FC_TS_STARTED), 1);
    cr_assert_eq(outcomes(&c, "t-chain"), 1, "exactly one outcome recorded");
    cr_assert_not(tb_file_contains(c.log, env.password), "the password reached the log");
    ctx_fini(&c);
}

Test(broker, failing_task_retried_then_dead_lettered_with_stderr_tail)
{
    struct ctx c;
    ctx_init(&c, "fail");
    /* watch fluid.dead before anything can land there */
    const char *all[] = {""};
    struct fc_amqp *dl = tb_amqp(&env, false);
    cr_assert_eq(fc_amqp_declare_topology(dl), FC_OK);
    cr_assert_eq(fc_amqp_subscribe(dl, FC_AMQP_X_DEAD, all, 1, 100, NULL), FC_OK);
    char id[64], task[2048];
    snprintf(id, sizeof id, "b%d-fail", (int)getpid());
    const char *extra[] = {"--retry-base-ms", "100", NULL};
    tb_broker(&env, c.site, id, extra, c.log, sizeof c.log);
    tb_task_json(task, sizeof task, c.rid, "t-fail", c.site, "test",
                 "[{\"kind\":\"test\",\"args\":[\"--stderr\",\"the disk is on fire\","
                 "\"--fail\",\"FC_E_IO\",\"--message\",\"cannot read block 7\"]}]",
                 60, 3);
    tb_publish_task(c.a, c.site, "test", task);
    const struct fc_task_event *e = tb_wait_state(c.a, &c.evs, "t-fail", FC_TS_FAILED, 60000);
    cr_assert_not_null(e, "no failed event (broker log %s)", c.log);
    cr_assert_eq(e->attempt, 3);
    cr_assert_eq(e->error.code, FC_E_IO);
    cr_assert(strstr(e->error.message, "cannot read block 7"), "%s", e->error.message);
    cr_assert_eq(e->error.stage, 0);
    cr_assert_not_null(e->error.stderr_tail);
    cr_assert(strstr(e->error.stderr_tail, "the disk is on fire"), "%s", e->error.stderr_tail);
    cr_assert_eq(tb_count(&c.evs, "t-fail", FC_TS_RETRYING), 2);
    cr_assert_eq(tb_count(&c.evs, "t-fail", FC_TS_STARTED), 3);
    cr_assert_eq(outcomes(&c, "t-fail"), 1);
    /* the task is in fluid.dead with the reason */
    struct fc_amqp_delivery *d = NULL;
    uint64_t end = tb_ms() + 10000;
    bool found = false;
    while (!found && tb_ms() < end) {
        cr_assert_eq(fc_amqp_wait(dl, 200, &d), FC_OK);
        if (!d)
            continue;
        const char *reason = fc_amqp_delivery_header(d, FC_AMQP_H_REASON);
        if (strstr(d->body, c.rid)) {
            found = true;
            cr_assert_not_null(reason);
            cr_assert(strstr(reason, "FC_E_IO") && strstr(reason, "cannot read block 7"), "%s",
                      reason);
            cr_assert(strstr(fc_amqp_delivery_header(d, FC_AMQP_H_ROUTING_KEY), c.site));
            cr_assert_str_eq(d->body, task, "body unchanged");
        }
        fc_amqp_ack(dl, d);
        fc_amqp_delivery_free(d);
    }
    cr_assert(found, "the task did not reach fluid.dead");
    /* and not in its queue any more */
    char q[128];
    fc_amqp_q_tasks(q, sizeof q, c.site);
    uint32_t n = 99;
    cr_assert_eq(fc_amqp_queue_info(c.a, q, &n, NULL), FC_OK);
    cr_assert_eq(n, 0);
    fc_amqp_close(dl);
    ctx_fini(&c);
}

Test(broker, hanging_migrator_killed_at_timeout)
{
    struct ctx c;
    ctx_init(&c, "hang");
    char id[64], task[2048], pidfile[1100], stages[1400];
    snprintf(id, sizeof id, "b%d-hang", (int)getpid());
    snprintf(pidfile, sizeof pidfile, "%s/%s.pid", env.run_dir, id);
    unlink(pidfile);
    const char *extra[] = {"--kill-grace-ms", "300", NULL};
    tb_broker(&env, c.site, id, extra, c.log, sizeof c.log);
    snprintf(stages, sizeof stages,
             "[{\"kind\":\"test\",\"args\":[\"--hang\",\"--ignore-term\",\"--pidfile\",\"%s\"]}]",
             pidfile);
    tb_task_json(task, sizeof task, c.rid, "t-hang", c.site, "test", stages, 1, 1);
    tb_publish_task(c.a, c.site, "test", task);
    const struct fc_task_event *e = tb_wait_state(c.a, &c.evs, "t-hang", FC_TS_FAILED, 60000);
    cr_assert_not_null(e, "no failed event (broker log %s)", c.log);
    cr_assert_eq(e->error.code, FC_E_TIMEOUT, "%s", e->error.message);
    FILE *f = fopen(pidfile, "r");
    cr_assert_not_null(f, "the migrator never ran");
    long pid = 0;
    cr_assert_eq(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    cr_assert_eq(kill((pid_t)pid, 0), -1, "the hanging migrator (pid %ld) still runs", pid);
    cr_assert_eq(outcomes(&c, "t-hang"), 1);
    ctx_fini(&c);
}

Test(broker, cancel_stops_a_running_chain)
{
    struct ctx c;
    ctx_init(&c, "cancel");
    char id[64], task[2048];
    snprintf(id, sizeof id, "b%d-cancel", (int)getpid());
    tb_broker(&env, c.site, id, NULL, c.log, sizeof c.log);
    /* a chain whose last stage would sleep for 10 minutes */
    tb_task_json(task, sizeof task, c.rid, "t-cancel", c.site, "checksum",
                 "[{\"kind\":\"checksum\",\"args\":[\"--generate\",\"1M\"]},"
                 "{\"kind\":\"test\",\"args\":[\"--sleep\",\"600000\"]}]",
                 900, 3);
    tb_publish_task(c.a, c.site, "checksum", task);
    cr_assert_not_null(tb_wait_state(c.a, &c.evs, "t-cancel", FC_TS_STARTED, 30000),
                       "not started (broker log %s)", c.log);
    char body[512], rk[256];
    snprintf(body, sizeof body,
             "{\"schema\":\"fluid.cancel/1\",\"relocation_id\":\"%s\",\"reason\":\"test\"}", c.rid);
    snprintf(rk, sizeof rk, "cancel.%s", c.rid);
    struct fc_amqp_msg m = {.exchange = FC_AMQP_X_CONTROL, .routing_key = rk, .body = body,
                            .len = strlen(body)};
    uint64_t t0 = tb_ms();
    cr_assert_eq(fc_amqp_publish(c.a, &m), FC_OK, "%s", fc_error_msg());
    const struct fc_task_event *e =
        tb_wait_state(c.a, &c.evs, "t-cancel", FC_TS_CANCELLED, 60000);
    uint64_t took = tb_ms() - t0;
    cr_assert_not_null(e, "no cancelled event (broker log %s)", c.log);
    cr_log_info("cancel -> cancelled event: %llu ms", (unsigned long long)took);
    cr_assert_eq(e->error.code, FC_E_CANCELLED);
    cr_assert_lt(took, 600000, "ended before the stage's own sleep would have");
    cr_assert_eq(tb_count(&c.evs, "t-cancel", FC_TS_DONE), 0);
    cr_assert_eq(tb_count(&c.evs, "t-cancel", FC_TS_RETRYING), 0, "a cancel is not retried");
    cr_assert_eq(outcomes(&c, "t-cancel"), 1);
    ctx_fini(&c);
}

Test(broker, kill9_mid_task_redelivers_and_publishes_one_outcome)
{
    struct ctx c;
    ctx_init(&c, "kill9");
    char ida[64], idb[64], task[2048];
    snprintf(ida, sizeof ida, "b%d-ka", (int)getpid());
    snprintf(idb, sizeof idb, "b%d-kb", (int)getpid());
    const char *extra[] = {"--capacity", "1", NULL};
    pid_t pa = tb_broker(&env, c.site, ida, extra, c.log, sizeof c.log);
    pid_t pb = tb_broker(&env, c.site, idb, extra, c.log2, sizeof c.log2);
    tb_task_json(task, sizeof task, c.rid, "t-kill", c.site, "test",
                 "[{\"kind\":\"test\",\"args\":[\"--sleep\",\"4000\"]}]", 120, 1);
    tb_publish_task(c.a, c.site, "test", task);
    const struct fc_task_event *s = tb_wait_state(c.a, &c.evs, "t-kill", FC_TS_STARTED, 30000);
    cr_assert_not_null(s);
    bool first_a = !strcmp(s->broker, ida);
    pid_t victim = first_a ? pa : pb;
    const char *survivor = first_a ? idb : ida;
    int st = tb_broker_signal(victim, SIGKILL);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    const struct fc_task_event *e = tb_wait_state(c.a, &c.evs, "t-kill", FC_TS_DONE, 60000);
    cr_assert_not_null(e, "not redelivered (logs %s %s)", c.log, c.log2);
    cr_assert_str_eq(e->broker, survivor, "done by the surviving broker");
    cr_assert_eq(tb_count(&c.evs, "t-kill", FC_TS_STARTED), 2);
    cr_assert_eq(outcomes(&c, "t-kill"), 1, "one outcome for the idempotency key");
    /* a duplicate publish of the same task (same idempotency key) is settled by the record */
    tb_publish_task(c.a, c.site, "test", task);
    char q[128];
    fc_amqp_q_tasks(q, sizeof q, c.site);
    uint32_t n = 1, cons = 0;
    uint64_t end = tb_ms() + 30000;
    while (tb_ms() < end) {
        cr_assert_eq(fc_amqp_queue_info(c.a, q, &n, &cons), FC_OK);
        if (n == 0)
            break;
        usleep(100000);
    }
    cr_assert_eq(n, 0, "the duplicate was not consumed");
    /* the surviving broker finds the outcome record and acks the duplicate without running */
    const char *slog = first_a ? c.log2 : c.log;
    end = tb_ms() + 30000;
    while (!tb_file_contains(slog, "outcome already published") && tb_ms() < end)
        usleep(100000);
    cr_assert(tb_file_contains(slog, "outcome already published"), "log %s", slog);
    cr_assert_eq(outcomes(&c, "t-kill"), 1, "the duplicate published a second outcome");
    cr_assert_eq(tb_count(&c.evs, "t-kill", FC_TS_STARTED), 2, "the duplicate ran again");
    ctx_fini(&c);
}

Test(broker, sigterm_finishes_the_running_task)
{
    struct ctx c;
    ctx_init(&c, "term");
    char id[64], task[2048];
    snprintf(id, sizeof id, "b%d-term", (int)getpid());
    pid_t p = tb_broker(&env, c.site, id, NULL, c.log, sizeof c.log);
    tb_task_json(task, sizeof task, c.rid, "t-term", c.site, "test",
                 "[{\"kind\":\"test\",\"args\":[\"--sleep\",\"800\"]}]", 60, 1);
    tb_publish_task(c.a, c.site, "test", task);
    cr_assert_not_null(tb_wait_state(c.a, &c.evs, "t-term", FC_TS_STARTED, 30000));
    int st = tb_broker_signal(p, SIGTERM);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d (log %s)", st, c.log);
    cr_assert_not_null(tb_wait_state(c.a, &c.evs, "t-term", FC_TS_DONE, 10000),
                       "the running task was not finished before exit");
    cr_assert_eq(outcomes(&c, "t-term"), 1);
    ctx_fini(&c);
}

Test(broker, heartbeat_names_site_capacity_and_kinds)
{
    struct ctx c;
    ctx_init(&c, "hb");
    char key[256], id[64];
    snprintf(key, sizeof key, "broker.%s.#", c.site);
    const char *keys[] = {key};
    struct fc_amqp *a = tb_amqp(&env, false);
    cr_assert_eq(fc_amqp_declare_topology(a), FC_OK);
    cr_assert_eq(fc_amqp_subscribe(a, FC_AMQP_X_EVENTS, keys, 1, 10, NULL), FC_OK);
    snprintf(id, sizeof id, "b%d-hb", (int)getpid());
    const char *extra[] = {"--capacity", "3", NULL};
    tb_broker(&env, c.site, id, extra, c.log, sizeof c.log);
    struct fc_amqp_delivery *d = NULL;
    uint64_t end = tb_ms() + 30000;
    while (!d && tb_ms() < end)
        cr_assert_eq(fc_amqp_wait(a, 200, &d), FC_OK);
    cr_assert_not_null(d, "no heartbeat (log %s)", c.log);
    struct fc_heartbeat *h = NULL;
    cr_assert_eq(fc_heartbeat_parse(d->body, d->len, &h), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(h->site, c.site);
    cr_assert_str_eq(h->broker_id, id);
    cr_assert_eq(h->capacity, 3);
    bool checksum = false, test = false;
    for (size_t i = 0; i < h->nkinds; i++) {
        checksum |= !strcmp(h->kinds[i], "checksum");
        test |= !strcmp(h->kinds[i], "test");
    }
    cr_assert(checksum && test);
    fc_heartbeat_free(h);
    fc_amqp_delivery_free(d);
    fc_amqp_close(a);
    ctx_fini(&c);
}

Test(broker, invalid_task_is_dead_lettered_with_the_field)
{
    struct ctx c;
    ctx_init(&c, "bad");
    const char *all[] = {""};
    struct fc_amqp *dl = tb_amqp(&env, false);
    cr_assert_eq(fc_amqp_declare_topology(dl), FC_OK);
    cr_assert_eq(fc_amqp_subscribe(dl, FC_AMQP_X_DEAD, all, 1, 100, NULL), FC_OK);
    char id[64], task[2048];
    snprintf(id, sizeof id, "b%d-bad", (int)getpid());
    tb_broker(&env, c.site, id, NULL, c.log, sizeof c.log);
    tb_task_json(task, sizeof task, c.rid, "t-bad", c.site, "checksum",
                 "[{\"kind\":\"imge\",\"args\":[]}]", 60, 1);
    tb_publish_task(c.a, c.site, "checksum", task);
    struct fc_amqp_delivery *d = NULL;
    bool found = false;
    uint64_t end = tb_ms() + 30000;
    while (!found && tb_ms() < end) {
        cr_assert_eq(fc_amqp_wait(dl, 200, &d), FC_OK);
        if (!d)
            continue;
        if (strstr(d->body, c.rid)) {
            found = true;
            const char *reason = fc_amqp_delivery_header(d, FC_AMQP_H_REASON);
            cr_assert_not_null(reason);
            cr_assert(strstr(reason, "stages[0].kind") && strstr(reason, "imge"), "%s", reason);
        }
        fc_amqp_ack(dl, d);
        fc_amqp_delivery_free(d);
    }
    cr_assert(found, "the invalid task did not reach fluid.dead (log %s)", c.log);
    fc_amqp_close(dl);
    ctx_fini(&c);
}

Test(broker, transient_failure_retried_then_done)
{
    struct ctx c;
    ctx_init(&c, "flaky");
    char id[64], task[2048], state[1100], stages[1400];
    snprintf(id, sizeof id, "b%d-flaky", (int)getpid());
    snprintf(state, sizeof state, "%s/%s.count", env.run_dir, id);
    unlink(state);
    const char *extra[] = {"--retry-base-ms", "100", NULL};
    tb_broker(&env, c.site, id, extra, c.log, sizeof c.log);
    snprintf(stages, sizeof stages,
             "[{\"kind\":\"test\",\"args\":[\"--fail-times\",\"2\",\"--state\",\"%s\"]}]", state);
    tb_task_json(task, sizeof task, c.rid, "t-flaky", c.site, "test", stages, 60, 3);
    tb_publish_task(c.a, c.site, "test", task);
    const struct fc_task_event *e = tb_wait_state(c.a, &c.evs, "t-flaky", FC_TS_DONE, 60000);
    cr_assert_not_null(e, "no done event (broker log %s)", c.log);
    cr_assert_eq(e->attempt, 3);
    cr_assert_eq(tb_count(&c.evs, "t-flaky", FC_TS_RETRYING), 2);
    cr_assert_eq(tb_count(&c.evs, "t-flaky", FC_TS_FAILED), 0);
    cr_assert_eq(outcomes(&c, "t-flaky"), 1);
    unlink(state);
    ctx_fini(&c);
}

/* A stage's progress is relayed with what names its units: a wait on a cloud reports
 * seconds, with the state it waits for (fluidctl's live view shows it apart from bytes). */
Test(broker, progress_relays_unit_and_state)
{
    struct ctx c;
    ctx_init(&c, "unit");
    char id[64], task[2048];
    snprintf(id, sizeof id, "b%d-unit", (int)getpid());
    const char *extra[] = {"--progress-ms", "0", NULL};
    tb_broker(&env, c.site, id, extra, c.log, sizeof c.log);
    tb_task_json(task, sizeof task, c.rid, "t-unit", c.site, "test",
                 "[{\"kind\":\"test\",\"args\":[\"--progress\",\"3\",\"--progress-unit\","
                 "\"seconds\"]}]", 60, 1);
    tb_publish_task(c.a, c.site, "test", task);
    cr_assert_not_null(tb_wait_state(c.a, &c.evs, "t-unit", FC_TS_DONE, 60000),
                       "no done event (broker log %s)", c.log);
    size_t seen = 0;
    for (size_t i = 0; i < c.evs.n; i++) {
        const struct fc_task_event *e = c.evs.ev[i];
        if (e->state != FC_TS_PROGRESS || strcmp(e->task_id, "t-unit") != 0)
            continue;
        const json_t *p = e->progress;
        cr_assert_str_eq(json_string_value(json_object_get(p, "unit")), "seconds");
        cr_assert_str_eq(json_string_value(json_object_get(p, "state")), "WAITING");
        cr_assert_str_eq(json_string_value(json_object_get(p, "waiting_for")), "fluid-test");
        cr_assert_eq(json_integer_value(json_object_get(p, "total")), 3);
        seen++;
    }
    cr_assert_gt(seen, 0, "no progress event relayed (broker log %s)", c.log);
    ctx_fini(&c);
}

Test(broker, amqps_with_ca_file_and_missing_migrator_fails_at_once)
{
    struct ctx c;
    ctx_init(&c, "tls");
    cr_assert(env.tls_url[0] && env.ca[0], "fixture has no TLS listener");
    /* a broker over TLS (certificate verified against the fixture's CA), whose migrator
     * folder holds only fluid-test */
    char dir[1200], src[1100], dst[1300];
    snprintf(dir, sizeof dir, "%s/migrators-%d", env.run_dir, (int)getpid());
    mkdir(dir, 0755);
    tb_bin("fluid-test", src, sizeof src);
    snprintf(dst, sizeof dst, "%s/fluid-test", dir);
    unlink(dst);
    cr_assert_eq(symlink(src, dst), 0);
    struct tb_env tls = env;
    snprintf(tls.url, sizeof tls.url, "%s", env.tls_url);
    char id[64], task[2048];
    snprintf(id, sizeof id, "b%d-tls", (int)getpid());
    const char *extra[] = {"--ca-file", env.ca, "--migrator-dir", dir, NULL};
    tb_broker(&tls, c.site, id, extra, c.log, sizeof c.log);
    tb_task_json(task, sizeof task, c.rid, "t-ok", c.site, "test",
                 "[{\"kind\":\"test\",\"args\":[]}]", 60, 3);
    tb_publish_task(c.a, c.site, "test", task);
    cr_assert_not_null(tb_wait_state(c.a, &c.evs, "t-ok", FC_TS_DONE, 60000),
                       "no done over TLS (log %s)", c.log);
    tb_task_json(task, sizeof task, c.rid, "t-nomig", c.site, "checksum",
                 "[{\"kind\":\"checksum\",\"args\":[]}]", 60, 3);
    tb_publish_task(c.a, c.site, "checksum", task);
    const struct fc_task_event *e = tb_wait_state(c.a, &c.evs, "t-nomig", FC_TS_FAILED, 60000);
    cr_assert_not_null(e, "no failed event (log %s)", c.log);
    cr_assert_eq(e->error.code, FC_E_NOTFOUND, "%s", e->error.message);
    cr_assert(strstr(e->error.message, "fluid-checksum"), "%s", e->error.message);
    cr_assert_eq(e->attempt, 1, "a missing migrator is not retried");
    cr_assert(tb_file_contains(c.log, "amqps://localhost:"), "log %s", c.log);
    cr_assert_not(tb_file_contains(c.log, env.password));
    unlink(dst);
    rmdir(dir);
    ctx_fini(&c);
}

Test(broker, bad_configuration_is_refused_naming_the_line)
{
    char path[1200], bin[1100];
    snprintf(path, sizeof path, "%s/bad-%d.conf", env.run_dir, (int)getpid());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "# comment\nsite = lab\ncapacty = 4\n");
    fclose(f);
    tb_bin("fluid-broker", bin, sizeof bin);
    static char out[4096], err[8192];
    int st = 0;
    const char *argv[] = {bin, "--config", path, NULL};
    cr_assert_eq(fc_run(argv, out, sizeof out, err, sizeof err, &st), FC_OK);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == FC_E_INVALID, "status %d", st);
    char where[1300];
    snprintf(where, sizeof where, "%s:3", path);
    cr_assert(strstr(err, where) && strstr(err, "capacty"), "%s", err);
    const char *argv2[] = {bin, "--capacity", "0", NULL};
    cr_assert_eq(fc_run(argv2, out, sizeof out, err, sizeof err, &st), FC_OK);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == FC_E_INVALID, "status %d", st);
    cr_assert(strstr(err, "--capacity"), "%s", err);
    const char *argv3[] = {bin, "--site", "Bad.Site", NULL};
    cr_assert_eq(fc_run(argv3, out, sizeof out, err, sizeof err, &st), FC_OK);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == FC_E_INVALID, "status %d", st);
    unlink(path);
}
