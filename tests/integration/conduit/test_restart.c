/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-conduit rides out a RabbitMQ restart (on a private node): the plan in progress
 * continues — the TaskEvent published after the restart is read from the conduit's durable
 * event queue — and requests sent after the restart are consumed. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fluid/error.h"
#include "fluid/msg.h"
#include "helpers.h"

#define T(id, deps) "{\"task_id\":\"" id "\",\"stages\":[{\"kind\":\"test\"}],\"depends_on\":" deps "}"
#define REQ(rid, key, tasks)                                                                   \
    "{\"schema\":\"fluid.request/1\",\"relocation_id\":\"" rid "\",\"idempotency_key\":\"" key \
    "\",\"plan\":{\"tasks\":[" tasks "]}}"

/* fluidctl status until the relocation reaches want (the conduit may still be reconnecting:
 * the status request waits in its durable queue). */
static void
wait_state(const struct tc *t, const char *rid, const char *want)
{
    char needle[64];
    snprintf(needle, sizeof needle, "\"state\":\"%s\"", want);
    for (int i = 0; i < 600; i++) {
        char *s = tc_status(t, rid);
        bool ok = strstr(s, needle) != NULL;
        free(s);
        if (ok)
            return;
        nanosleep(&(struct timespec){0, 100000000L}, NULL);
    }
    cr_assert_fail("%s never reached %s", rid, want);
}

TestSuite(conduit_restart, .fini = tc_cleanup);

Test(conduit_restart, rabbitmq_restart_mid_plan)
{
    struct tc t;
    tc_init_private(&t, "restart");
    tc_conduit_start(&t, NULL);
    tc_amqp_publish_cli(&t, REQ("r-rs", "k-rs", T("a", "[]") "," T("b", "[\"a\"]")));
    struct fc_amqp *a = tc_amqp(&t);
    struct fc_task *ta = tc_take_task(a);
    cr_assert_str_eq(ta->task_id, "a");
    fc_amqp_close(a);

    tc_node(&t, "restart");

    a = tc_amqp(&t);
    tc_report(a, ta, FC_TS_DONE);
    struct fc_task *tb = tc_take_task(a);
    cr_assert_str_eq(tb->task_id, "b");
    tc_report(a, tb, FC_TS_DONE);
    wait_state(&t, "r-rs", "done");

    tc_amqp_publish_cli(&t, REQ("r-rs2", "k-rs2", T("a", "[]")));
    struct fc_task *t2 = tc_take_task(a);
    cr_assert_str_eq(t2->relocation_id, "r-rs2");
    tc_report(a, t2, FC_TS_FAILED);
    wait_state(&t, "r-rs2", "failed");

    fc_task_free(ta);
    fc_task_free(tb);
    fc_task_free(t2);
    fc_amqp_close(a);
    cr_assert_eq(tc_conduit_stop(&t, SIGTERM), 0, "clean SIGTERM exit after a restart");
    tc_assert_no_password(&t);
    tc_fini(&t);
}
