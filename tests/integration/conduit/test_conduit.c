/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-conduit against the real RabbitMQ of the rabbitmq fixture (each test in its own
 * vhost): requests published by amqp-publish (not our client) are consumed; an invalid one
 * ends in fluid.dead with its reason and a request.rejected event names the bad field;
 * SIGKILL and restart mid-plan resumes without republishing; a re-submit is a no-op. The
 * test plays the brokers' part: it takes tasks from fluid.tasks.default and publishes their
 * TaskEvents. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/error.h"
#include "fluid/msg.h"
#include "helpers.h"

#define T(id, deps)                                                                            \
    "{\"task_id\":\"" id "\",\"stages\":[{\"kind\":\"checksum\",\"args\":[\"--framed\"]}],"    \
    "\"depends_on\":" deps "}"
#define REQ(rid, key, tasks)                                                                   \
    "{\"schema\":\"fluid.request/1\",\"relocation_id\":\"" rid "\",\"idempotency_key\":\"" key \
    "\",\"plan\":{\"tasks\":[" tasks "]}}"

static const char *
header(const struct fc_amqp_delivery *d, const char *k)
{
    const char *v = fc_amqp_delivery_header(d, k);
    return v ? v : "";
}

/* Waits for the event with routing key rk on the subscription; returns its body. */
static char *
wait_event(struct fc_amqp *a, const char *rk)
{
    for (int i = 0; i < 1000; i++) {
        struct fc_amqp_delivery *d = tc_next(a);
        bool match = strcmp(d->routing_key, rk) == 0;
        char *body = match ? strndup(d->body, d->len) : NULL;
        fc_amqp_delivery_free(d);
        if (match)
            return body;
    }
    cr_assert_fail("event %s not seen", rk);
    return NULL;
}

TestSuite(conduit, .fini = tc_cleanup);

Test(conduit, amqp_publish_consumed_invalid_dead_lettered_nothing_lost)
{
    struct tc t;
    tc_init(&t, "dead");
    struct fc_amqp *a = tc_amqp(&t); /* subscriptions only */
    /* basic.get cannot share a channel with deliveries of a consumer (librabbitmq answers
     * "unexpected protocol state"): gets and publishes use their own connection */
    struct fc_amqp *g = tc_amqp(&t);
    const char *all[] = {"#"};
    cr_assert_eq(fc_amqp_subscribe(a, FC_AMQP_X_EVENTS, all, 1, 100, NULL), FC_OK);
    tc_conduit_start(&t, NULL);

    const char *bad = REQ("r-bad", "k-bad",
                          T("a", "[]") ",{\"task_id\":\"b\",\"stages\":[{\"kind\":\"imge\"}]}");
    tc_amqp_publish_cli(&t, REQ("r-ok1", "k-ok1", T("a", "[]") "," T("b", "[\"a\"]")));
    tc_amqp_publish_cli(&t, bad);
    tc_amqp_publish_cli(&t, "{\"not json\"");
    tc_amqp_publish_cli(&t, REQ("r-ok2", "k-ok2", T("a", "[]")));

    /* events come in the order the requests were handled */
    free(wait_event(a, "relocation.r-ok1.state.accepted"));
    char *rej = wait_event(a, "request.rejected");
    FC_AUTO(rejected) struct fc_rejected *r = NULL;
    cr_assert_eq(fc_rejected_parse(rej, strlen(rej), &r), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(r->relocation_id, "r-bad");
    cr_assert_str_eq(r->path, "plan.tasks[1].stages[0].kind");
    cr_assert(strstr(r->reason, "unknown migrator kind \"imge\""), "%s", r->reason);
    free(rej);
    rej = wait_event(a, "request.rejected");
    cr_assert(strstr(rej, "invalid JSON"), "%s", rej);
    free(rej);
    free(wait_event(a, "relocation.r-ok2.state.accepted"));

    /* fluid.dead: both bodies, unchanged, with the reason */
    struct fc_amqp_delivery *d = NULL;
    cr_assert_eq(fc_amqp_get(g, FC_AMQP_Q_DEAD, &d), FC_OK);
    cr_assert_not_null(d, "the invalid request is not in fluid.dead");
    cr_assert_eq(d->len, strlen(bad));
    cr_assert_eq(memcmp(d->body, bad, d->len), 0, "body changed");
    cr_assert(strstr(header(d, FC_AMQP_H_REASON), "plan.tasks[1].stages[0].kind"), "reason: %s",
              header(d, FC_AMQP_H_REASON));
    cr_assert_str_eq(header(d, FC_AMQP_H_ROUTING_KEY), FC_AMQP_Q_REQUESTS);
    fc_amqp_ack(g, d);
    fc_amqp_delivery_free(d);
    cr_assert_eq(fc_amqp_get(g, FC_AMQP_Q_DEAD, &d), FC_OK);
    cr_assert_not_null(d, "the unparsable request is not in fluid.dead");
    cr_assert_str_eq(d->body, "{\"not json\"");
    fc_amqp_ack(g, d);
    fc_amqp_delivery_free(d);
    tc_wait_queue(g, FC_AMQP_Q_DEAD, 0);

    /* nothing else is lost: the valid ones run to done */
    for (int i = 0; i < 3; i++) {
        struct fc_task *task = tc_take_task(g);
        tc_report(g, task, FC_TS_STARTED);
        tc_report(g, task, FC_TS_DONE);
        fc_task_free(task);
    }
    char *done = wait_event(a, "relocation.r-ok1.state.done");
    cr_assert(strstr(done, "\"done\":2"), "%s", done);
    free(done);
    char *st = tc_status(&t, "r-ok2");
    cr_assert(strstr(st, "\"state\":\"done\""), "%s", st);
    free(st);
    tc_wait_queue(g, FC_AMQP_Q_REQUESTS, 0);
    fc_amqp_close(a);
    fc_amqp_close(g);
    cr_assert_eq(tc_conduit_stop(&t, SIGTERM), 0, "clean SIGTERM exit");
    tc_assert_no_password(&t);
    tc_fini(&t);
}

Test(conduit, sigkill_mid_plan_resumes_without_republishing)
{
    struct tc t;
    tc_init(&t, "kill");
    struct fc_amqp *a = tc_amqp(&t); /* subscriptions only */
    /* basic.get cannot share a channel with deliveries of a consumer (librabbitmq answers
     * "unexpected protocol state"): gets and publishes use their own connection */
    struct fc_amqp *g = tc_amqp(&t);
    const char *keys[] = {"relocation.r-k.state.*"};
    cr_assert_eq(fc_amqp_subscribe(a, FC_AMQP_X_EVENTS, keys, 1, 100, NULL), FC_OK);
    const char *par[] = {"--max-parallel", "2", NULL};
    tc_conduit_start(&t, par);

    /* a -> (b, c) -> d */
    tc_amqp_publish_cli(&t, REQ("r-k", "k-k", T("a", "[]") "," T("b", "[\"a\"]") ","
                                T("c", "[\"a\"]") "," T("d", "[\"b\",\"c\"]")));
    free(wait_event(a, "relocation.r-k.state.running"));
    int seen[4] = {0};
    struct fc_task *ta = tc_take_task(g);
    cr_assert_str_eq(ta->task_id, "a");
    seen[0]++;
    tc_report(g, ta, FC_TS_DONE);
    tc_wait_queue(g, "fluid.tasks.default", 2); /* b and c published */
    free(tc_status(&t, "r-k")); /* the conduit's loop came round: its outbox is flushed */
    int st = tc_conduit_stop(&t, SIGKILL);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    tc_conduit_start(&t, par);
    char *s = tc_status(&t, "r-k");
    cr_assert(strstr(s, "\"state\":\"running\""), "%s", s);
    free(s);
    tc_wait_queue(g, "fluid.tasks.default", 2); /* a, b, c are not published again */

    /* b and c done, and the conduit killed at once, mid-way through handling them */
    struct fc_task *tb = tc_take_task(g), *tx = tc_take_task(g);
    for (int i = 0; i < 2; i++) {
        struct fc_task *x = i ? tx : tb;
        cr_assert(strcmp(x->task_id, "b") == 0 || strcmp(x->task_id, "c") == 0, "%s", x->task_id);
        seen[x->task_id[0] - 'a']++;
        tc_report(g, x, FC_TS_DONE);
    }
    st = tc_conduit_stop(&t, SIGKILL);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    tc_conduit_start(&t, par);

    /* d runs once its inputs' outcomes are recorded (from the durable event queue) */
    struct fc_task *td = tc_take_task(g);
    cr_assert_str_eq(td->task_id, "d");
    seen[3]++;
    tc_report(g, td, FC_TS_DONE);
    char *done = wait_event(a, "relocation.r-k.state.done");
    cr_assert(strstr(done, "\"done\":4"), "%s", done);
    free(done);
    /* Every task whose outcome was recorded before a crash was published once. d could in
     * principle be published twice (killed between its publisher confirm and the outbox
     * delete): then both copies carry the same idempotency key and brokers run it once. */
    struct fc_amqp_delivery *extra = NULL;
    cr_assert_eq(fc_amqp_get(g, "fluid.tasks.default", &extra), FC_OK);
    if (extra) {
        cr_assert_str_eq(extra->message_id, td->idempotency_key,
                         "a task other than d was published twice");
        fc_amqp_ack(g, extra);
        fc_amqp_delivery_free(extra);
    }
    cr_assert_eq(seen[0], 1);
    cr_assert_eq(seen[1], 1);
    cr_assert_eq(seen[2], 1);
    cr_assert_eq(seen[3], 1);

    /* fluidctl watch on a relocation that has ended reports it, exit status 0 */
    char prog[1200], out[8192], err[4096];
    tc_bin(&t, "fluidctl", prog, sizeof prog);
    const char *w[] = {prog, "watch", "--timeout", "60", "r-k", NULL};
    int ws = tc_run(&t, w, out, sizeof out, err, sizeof err);
    cr_assert_eq(ws, 0, "fluidctl watch: exit %d: %s", ws, err);
    cr_assert(strstr(out, "relocation r-k done"), "%s", out);

    fc_task_free(ta);
    fc_task_free(tb);
    fc_task_free(tx);
    fc_task_free(td);
    fc_amqp_close(a);
    fc_amqp_close(g);
    cr_assert_eq(tc_conduit_stop(&t, SIGTERM), 0);
    tc_assert_no_password(&t);
    tc_fini(&t);
}

Test(conduit, resubmit_is_a_no_op)
{
    struct tc t;
    tc_init(&t, "resubmit");
    struct fc_amqp *a = tc_amqp(&t); /* subscriptions only */
    /* basic.get cannot share a channel with deliveries of a consumer (librabbitmq answers
     * "unexpected protocol state"): gets and publishes use their own connection */
    struct fc_amqp *g = tc_amqp(&t);
    const char *all[] = {"relocation.*.state.*"};
    cr_assert_eq(fc_amqp_subscribe(a, FC_AMQP_X_EVENTS, all, 1, 100, NULL), FC_OK);
    tc_conduit_start(&t, NULL);
    const char *r1 = REQ("r-s1", "k-s1", T("a", "[]") "," T("b", "[]"));
    tc_amqp_publish_cli(&t, r1);
    free(wait_event(a, "relocation.r-s1.state.accepted"));
    free(wait_event(a, "relocation.r-s1.state.running"));
    tc_wait_queue(g, "fluid.tasks.default", 2);

    /* the same request again (also through fluidctl), then another one behind it */
    char path[1200], prog[1200], out[4096], err[4096];
    snprintf(path, sizeof path, "%s/r1.json", t.dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(r1, f);
    fclose(f);
    tc_amqp_publish_cli(&t, r1);
    const char *sub[] = {tc_bin(&t, "fluidctl", prog, sizeof prog), "submit", path, NULL};
    int st = tc_run(&t, sub, out, sizeof out, err, sizeof err);
    cr_assert_eq(st, 0, "fluidctl submit: %d %s", st, err);
    cr_assert_str_eq(out, "r-s1\n");
    tc_amqp_publish_cli(&t, REQ("r-s2", "k-s2", T("a", "[]")));
    /* requests are handled in order: once r-s2 is accepted, both re-submits were handled */
    char *ev = wait_event(a, "relocation.r-s2.state.accepted");
    free(ev);
    tc_wait_queue(g, "fluid.tasks.default", 3); /* r-s1's two tasks once, r-s2's one */
    /* no second accepted/running event for r-s1 arrived before r-s2's */
    free(wait_event(a, "relocation.r-s2.state.running"));
    tc_wait_queue(g, FC_AMQP_Q_DEAD, 0);

    /* the same relocation_id with another key is a conflict: rejected, named */
    tc_amqp_publish_cli(&t, REQ("r-s1", "k-other", T("a", "[]")));
    struct fc_amqp_delivery *d = NULL;
    for (int i = 0; i < 1200 && !d; i++) {
        cr_assert_eq(fc_amqp_get(g, FC_AMQP_Q_DEAD, &d), FC_OK);
        if (!d) {
            struct fc_amqp_delivery *none = NULL;
            fc_amqp_wait(a, 50, &none);
            cr_assert_null(none, "unexpected relocation event: %s", none ? none->routing_key : "");
        }
    }
    cr_assert_not_null(d);
    cr_assert(strstr(header(d, FC_AMQP_H_REASON), "relocation_id"), "%s",
              header(d, FC_AMQP_H_REASON));
    fc_amqp_ack(g, d);
    fc_amqp_delivery_free(d);
    tc_wait_queue(g, "fluid.tasks.default", 3);

    /* fluidctl's exit statuses (fluidctl.1) */
    char bad[1200];
    snprintf(bad, sizeof bad, "%s/bad.json", t.dir);
    f = fopen(bad, "w");
    cr_assert_not_null(f);
    fputs("{\"schema\":\"fluid.request/1\",\"relocation_id\":\"r.1\"}", f);
    fclose(f);
    const char *inv[] = {prog, "submit", bad, NULL};
    cr_assert_eq(tc_run(&t, inv, out, sizeof out, err, sizeof err), 3, "%s", err);
    cr_assert(strstr(err, "relocation_id: invalid id \"r.1\""), "%s", err);
    const char *missing[] = {prog, "submit", "/nonexistent/request.json", NULL};
    cr_assert_eq(tc_run(&t, missing, out, sizeof out, err, sizeof err), 5, "%s", err);
    const char *unknown[] = {prog, "status", "r-never", NULL};
    cr_assert_eq(tc_run(&t, unknown, out, sizeof out, err, sizeof err), 5, "%s", err);
    const char *usage[] = {prog, "status", NULL};
    cr_assert_eq(tc_run(&t, usage, out, sizeof out, err, sizeof err), 2, "%s", err);
    const char *nocmd[] = {prog, "frobnicate", NULL};
    cr_assert_eq(tc_run(&t, nocmd, out, sizeof out, err, sizeof err), 2, "%s", err);
    char wrong[700];
    snprintf(wrong, sizeof wrong, "--amqp=%s", t.url);
    char *colon = strchr(wrong + strlen("--amqp=amqp://"), ':');
    cr_assert_not_null(colon);
    memcpy(colon + 1, "WRONGPASS", 9); /* same length or longer is fine: the tail is garbage */
    char *at = strchr(wrong, '@');
    memmove(colon + 10, at, strlen(at) + 1);
    const char *refused[] = {prog, wrong, "status", "r-s1", NULL};
    cr_assert_eq(tc_run(&t, refused, out, sizeof out, err, sizeof err), 4, "%s", err);
    cr_assert_null(strstr(err, "WRONGPASS"), "the password is shown: %s", err);
    fc_amqp_close(a);
    fc_amqp_close(g);
    cr_assert_eq(tc_conduit_stop(&t, SIGTERM), 0);
    tc_assert_no_password(&t);
    tc_fini(&t);
}
