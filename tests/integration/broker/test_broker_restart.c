/* SPDX-License-Identifier: Apache-2.0 */
/* RabbitMQ stopped and restarted while two brokers run: they reconnect, the persistent queued
 * tasks survive, and every task ends with exactly one outcome. Uses a private RabbitMQ node
 * (the fixture script in its own folder) so that restarting it disturbs no other test. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "fluid/error.h"

static struct tb_env penv;
static bool started;

static void
setup(void)
{
    char name[64];
    snprintf(name, sizeof name, "rmq-restart-%d", (int)getpid());
    tb_private_node(&penv, name);
    started = true;
}

static void
teardown(void)
{
    tb_brokers_kill();
    if (started)
        tb_node(&penv, "stop");
}

TestSuite(restart, .init = setup, .fini = teardown, .timeout = 300);

#define NTASKS 30

Test(restart, brokers_reconnect_and_nothing_is_lost)
{
    char site[64], rid[64], log1[1200], log2[1200], id1[64], id2[64];
    snprintf(site, sizeof site, "s%d-restart", (int)getpid());
    snprintf(rid, sizeof rid, "r-%d-restart", (int)getpid());
    snprintf(id1, sizeof id1, "b%d-r1", (int)getpid());
    snprintf(id2, sizeof id2, "b%d-r2", (int)getpid());
    const char *extra[] = {"--capacity", "1", NULL};
    tb_broker(&penv, site, id1, extra, log1, sizeof log1);
    tb_broker(&penv, site, id2, extra, log2, sizeof log2);

    struct fc_amqp *a = tb_amqp(&penv, false);
    char q[NTASKS][128];
    for (int i = 0; i < NTASKS; i++) {
        char tid[32], key[160], task[2048];
        snprintf(tid, sizeof tid, "t-%d", i);
        snprintf(key, sizeof key, "%s/%s", rid, tid);
        tb_outcome_queue(key, q[i], sizeof q[i]);
        tb_task_json(task, sizeof task, rid, tid, site, "test",
                     "[{\"kind\":\"test\",\"args\":[\"--sleep\",\"300\"]}]", 120, 3);
        tb_publish_task(a, site, "test", task);
    }
    /* let a few finish, so that the restart hits running and queued tasks */
    uint64_t end = tb_ms() + 60000;
    int done = 0;
    while (done < 3 && tb_ms() < end) {
        done = 0;
        for (int i = 0; i < NTASKS; i++) {
            uint32_t n = 0;
            if (fc_amqp_queue_info(a, q[i], &n, NULL) == FC_OK && n > 0)
                done++;
        }
        usleep(100000);
    }
    cr_assert_geq(done, 3, "brokers did not start working (logs %s %s)", log1, log2);
    fc_amqp_close(a);

    tb_node(&penv, "restart");

    a = tb_amqp(&penv, false);
    char tq[128];
    fc_amqp_q_tasks(tq, sizeof tq, site);
    uint32_t queued = 0;
    cr_assert_eq(fc_amqp_queue_info(a, tq, &queued, NULL), FC_OK, "%s", fc_error_msg());
    cr_log_info("after the restart: %u tasks still queued, %d done before", queued, done);
    end = tb_ms() + 180000;
    int complete = 0;
    while (complete < NTASKS && tb_ms() < end) {
        complete = 0;
        for (int i = 0; i < NTASKS; i++) {
            uint32_t n = 0;
            if (fc_amqp_queue_info(a, q[i], &n, NULL) == FC_OK && n > 0)
                complete++;
        }
        if (complete < NTASKS)
            usleep(200000);
    }
    cr_assert_eq(complete, NTASKS, "only %d of %d tasks have an outcome (logs %s %s)", complete,
                 NTASKS, log1, log2);
    cr_assert(tb_file_contains(log1, "amqp connection lost") &&
                  tb_file_contains(log2, "amqp connection lost"),
              "the restart was not seen");
    /* exactly one outcome each, and it is done */
    for (int i = 0; i < NTASKS; i++) {
        uint32_t n = 0;
        cr_assert_eq(fc_amqp_queue_info(a, q[i], &n, NULL), FC_OK);
        cr_assert_eq(n, 1, "task %d has %u outcomes", i, n);
        struct fc_amqp_delivery *d = NULL;
        cr_assert_eq(fc_amqp_get(a, q[i], &d), FC_OK, "%s", fc_error_msg());
        cr_assert_not_null(d);
        struct fc_task_event *e = NULL;
        cr_assert_eq(fc_event_parse(d->body, d->len, &e), FC_OK, "%s", fc_error_msg());
        cr_assert_eq(e->state, FC_TS_DONE, "task %d ended %s", i, fc_task_state_name(e->state));
        fc_event_free(e);
        fc_amqp_nack(a, d, true);
        fc_amqp_delivery_free(d);
    }
    /* nothing left behind in the task queue once the brokers have settled everything */
    uint32_t n = 1;
    end = tb_ms() + 30000;
    while (tb_ms() < end) {
        cr_assert_eq(fc_amqp_queue_info(a, tq, &n, NULL), FC_OK);
        if (n == 0)
            break;
        usleep(200000);
    }
    cr_assert_eq(n, 0, "%u tasks left in %s", n, tq);
    cr_assert_not(tb_file_contains(log1, penv.password));
    fc_amqp_close(a);
}

/* A RabbitMQ that stops answering (SIGSTOP: no TCP reset) is noticed through the missed
 * AMQP heartbeats; once it answers again the client reconnects and consumes again. */
Test(restart, silent_rabbitmq_is_detected_by_heartbeats)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/rabbitmq/rabbitmq.pid", penv.run_dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    long pid = 0;
    cr_assert_eq(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    struct fc_amqp_config c = {.url = penv.url, .heartbeat_s = 2, .reconnect = true,
                               .rpc_timeout_ms = 3000, .connect_timeout_ms = 2000};
    struct fc_amqp *a = NULL;
    cr_assert_eq(fc_amqp_open(&c, &a), FC_OK, "%s", fc_error_msg());
    char key[128];
    tb_unique(key, sizeof key, "test.silent");
    const char *keys[] = {key};
    cr_assert_eq(fc_amqp_declare_topology(a), FC_OK);
    cr_assert_eq(fc_amqp_subscribe(a, FC_AMQP_X_EVENTS, keys, 1, 10, NULL), FC_OK);
    uint64_t gen = fc_amqp_generation(a);
    cr_assert_eq(kill((pid_t)pid, SIGSTOP), 0);
    struct fc_amqp_delivery *d = NULL;
    uint64_t end = tb_ms() + 60000;
    while (fc_amqp_connected(a) && tb_ms() < end) {
        fc_amqp_wait(a, 200, &d);
        fc_amqp_delivery_free(d);
        d = NULL;
    }
    bool noticed = !fc_amqp_connected(a);
    kill((pid_t)pid, SIGCONT);
    cr_assert(noticed, "a silent RabbitMQ was not noticed");
    end = tb_ms() + 90000;
    while (fc_amqp_generation(a) == gen && tb_ms() < end) {
        fc_amqp_wait(a, 200, &d);
        fc_amqp_delivery_free(d);
        d = NULL;
    }
    cr_assert_gt(fc_amqp_generation(a), gen, "no reconnect after RabbitMQ answered again");
    struct fc_amqp_msg m = {.exchange = FC_AMQP_X_EVENTS, .routing_key = key, .body = "{}",
                            .len = 2};
    cr_assert_eq(fc_amqp_publish(a, &m), FC_OK, "%s", fc_error_msg());
    end = tb_ms() + 10000;
    while (!d && tb_ms() < end)
        cr_assert_eq(fc_amqp_wait(a, 200, &d), FC_OK);
    cr_assert_not_null(d, "the subscription was not resumed");
    fc_amqp_delivery_free(d);
    fc_amqp_close(a);
}
