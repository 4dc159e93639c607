/* SPDX-License-Identifier: Apache-2.0 */
/* fluid_amqp against the real RabbitMQ of the fixture: topology, confirms, mandatory,
 * consumers, headers and CC routing, dead-lettering, locks, TLS verification, login errors
 * that never show the password. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "fluid/error.h"

static struct tb_env env;

static void
setup(void)
{
    tb_env_load(&env, NULL);
}

TestSuite(amqp, .init = setup, .timeout = 60);

static struct fc_amqp_delivery *
wait_one(struct fc_amqp *a, int ms)
{
    struct fc_amqp_delivery *d = NULL;
    uint64_t end = tb_ms() + (uint64_t)ms;
    while (!d && tb_ms() < end)
        cr_assert_eq(fc_amqp_wait(a, 200, &d), FC_OK, "%s", fc_error_msg());
    return d;
}

Test(amqp, topology_is_idempotent)
{
    struct fc_amqp *a = tb_amqp(&env, false), *b = tb_amqp(&env, false);
    cr_assert_eq(fc_amqp_declare_topology(a), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(fc_amqp_declare_topology(b), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(fc_amqp_declare_topology(a), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(fc_amqp_declare_site(a, "default"), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(fc_amqp_declare_site(b, "default"), FC_OK, "%s", fc_error_msg());
    uint32_t n = 99;
    cr_assert_eq(fc_amqp_queue_info(a, "fluid.tasks.default", &n, NULL), FC_OK);
    cr_assert_eq(fc_amqp_queue_info(a, FC_AMQP_Q_REQUESTS, NULL, NULL), FC_OK);
    cr_assert_eq(fc_amqp_queue_info(a, FC_AMQP_Q_DEAD, NULL, NULL), FC_OK);
    /* a missing queue is FC_E_NOTFOUND and does not break the connection */
    cr_assert_eq(fc_amqp_queue_info(a, "fluid.no-such-queue", NULL, NULL), FC_E_NOTFOUND);
    cr_assert(fc_amqp_connected(a));
    cr_assert_eq(fc_amqp_declare_site(a, "Bad.Site"), FC_E_INVALID);
    fc_amqp_close(a);
    fc_amqp_close(b);
}

Test(amqp, publish_confirm_consume_ack)
{
    struct fc_amqp *a = tb_amqp(&env, false);
    cr_assert_eq(fc_amqp_declare_topology(a), FC_OK, "%s", fc_error_msg());
    char rk[128];
    tb_unique(rk, sizeof rk, "test.amqp.pub");
    const char *keys[] = {rk};
    char q[256];
    cr_assert_eq(fc_amqp_subscribe(a, FC_AMQP_X_EVENTS, keys, 1, 10, q), FC_OK, "%s",
                 fc_error_msg());
    cr_assert(q[0]);
    struct fc_amqp_header h[] = {{"x-test", "yes"}};
    struct fc_amqp_msg m = {.exchange = FC_AMQP_X_EVENTS, .routing_key = rk, .body = "{\"a\":1}",
                            .len = 7, .message_id = "id-1", .headers = h, .nheaders = 1};
    cr_assert_eq(fc_amqp_publish(a, &m), FC_OK, "%s", fc_error_msg());
    struct fc_amqp_delivery *d = wait_one(a, 5000);
    cr_assert_not_null(d, "no delivery");
    cr_assert_str_eq(d->body, "{\"a\":1}");
    cr_assert_eq(d->len, 7);
    cr_assert_str_eq(d->message_id, "id-1");
    cr_assert_str_eq(d->content_type, "application/json");
    cr_assert_str_eq(d->routing_key, rk);
    cr_assert_str_eq(d->queue, q);
    cr_assert_str_eq(fc_amqp_delivery_header(d, "x-test"), "yes");
    cr_assert_eq(fc_amqp_ack(a, d), FC_OK);
    fc_amqp_delivery_free(d);

    /* a batch without waiting, then all confirms */
    for (int i = 0; i < 200; i++)
        cr_assert_eq(fc_amqp_publish_nowait(a, &m), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(fc_amqp_confirm_wait(a), FC_OK, "%s", fc_error_msg());
    int got = 0;
    while ((d = wait_one(a, got == 200 ? 300 : 5000))) {
        got++;
        cr_assert_eq(fc_amqp_ack(a, d), FC_OK);
        fc_amqp_delivery_free(d);
    }
    cr_assert_eq(got, 200);
    fc_amqp_close(a);
}

Test(amqp, mandatory_unroutable_is_notfound)
{
    struct fc_amqp *a = tb_amqp(&env, false);
    cr_assert_eq(fc_amqp_declare_topology(a), FC_OK, "%s", fc_error_msg());
    char rk[128];
    tb_unique(rk, sizeof rk, "nosite.nokind");
    struct fc_amqp_msg m = {.exchange = FC_AMQP_X_TASKS, .routing_key = rk, .body = "{}",
                            .len = 2, .mandatory = true};
    cr_assert_eq(fc_amqp_publish(a, &m), FC_E_NOTFOUND, "%s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), rk));
    /* still usable */
    m.mandatory = false;
    cr_assert_eq(fc_amqp_publish(a, &m), FC_OK, "%s", fc_error_msg());
    fc_amqp_close(a);
}

Test(amqp, cc_reaches_both_queues)
{
    struct fc_amqp *a = tb_amqp(&env, false);
    cr_assert_eq(fc_amqp_declare_topology(a), FC_OK, "%s", fc_error_msg());
    char rk[128], rec[128], key[160];
    tb_unique(rk, sizeof rk, "test.cc");
    tb_unique(rec, sizeof rec, "fluid.test-record");
    snprintf(key, sizeof key, "outcome.%s", rec);
    uint32_t n = 99;
    cr_assert_eq(fc_amqp_declare_record(a, rec, FC_AMQP_X_EVENTS, key, 60000, &n), FC_OK, "%s",
                 fc_error_msg());
    cr_assert_eq(n, 0);
    const char *keys[] = {rk};
    cr_assert_eq(fc_amqp_subscribe(a, FC_AMQP_X_EVENTS, keys, 1, 10, NULL), FC_OK);
    const char *cc[] = {key};
    struct fc_amqp_msg m = {.exchange = FC_AMQP_X_EVENTS, .routing_key = rk, .body = "{}",
                            .len = 2, .cc = cc, .ncc = 1, .mandatory = true};
    cr_assert_eq(fc_amqp_publish(a, &m), FC_OK, "%s", fc_error_msg());
    struct fc_amqp_delivery *d = wait_one(a, 5000);
    cr_assert_not_null(d);
    cr_assert_null(fc_amqp_delivery_header(d, "CC"), "CC is removed by RabbitMQ");
    fc_amqp_ack(a, d);
    fc_amqp_delivery_free(d);
    cr_assert_eq(fc_amqp_declare_record(a, rec, FC_AMQP_X_EVENTS, key, 60000, &n), FC_OK);
    cr_assert_eq(n, 1, "the record queue holds the message");
    cr_assert_eq(fc_amqp_queue_delete(a, rec), FC_OK);
    fc_amqp_close(a);
}

Test(amqp, dead_letter_carries_reason)
{
    struct fc_amqp *a = tb_amqp(&env, false);
    cr_assert_eq(fc_amqp_declare_topology(a), FC_OK, "%s", fc_error_msg());
    char q[128];
    tb_unique(q, sizeof q, "fluid.test-dl");
    uint32_t n;
    cr_assert_eq(fc_amqp_declare_record(a, q, FC_AMQP_X_EVENTS, q, 60000, &n), FC_OK);
    /* watch fluid.dead through a private queue bound to the fanout exchange */
    const char *keys[] = {""};
    char dq[256];
    cr_assert_eq(fc_amqp_subscribe(a, FC_AMQP_X_DEAD, keys, 1, 100, dq), FC_OK);
    struct fc_amqp_msg m = {.exchange = FC_AMQP_X_EVENTS, .routing_key = q, .body = "{\"x\":2}",
                            .len = 7, .message_id = q};
    cr_assert_eq(fc_amqp_publish(a, &m), FC_OK);
    struct fc_amqp_delivery *d = NULL;
    cr_assert_eq(fc_amqp_get(a, q, &d), FC_OK, "%s", fc_error_msg());
    cr_assert_not_null(d);
    cr_assert_eq(fc_amqp_dead_letter(a, d, "tasks[0].kind: bad\nsecond line"), FC_OK, "%s",
                 fc_error_msg());
    fc_amqp_delivery_free(d);
    for (;;) {
        d = wait_one(a, 5000);
        cr_assert_not_null(d, "nothing in fluid.dead");
        if (d->message_id && !strcmp(d->message_id, q))
            break;
        fc_amqp_ack(a, d);
        fc_amqp_delivery_free(d);
    }
    cr_assert_str_eq(fc_amqp_delivery_header(d, FC_AMQP_H_REASON), "tasks[0].kind: bad second line");
    cr_assert_str_eq(fc_amqp_delivery_header(d, FC_AMQP_H_ROUTING_KEY), q);
    cr_assert_str_eq(d->body, "{\"x\":2}");
    fc_amqp_ack(a, d);
    fc_amqp_delivery_free(d);
    cr_assert_eq(fc_amqp_get(a, q, &d), FC_OK);
    cr_assert_null(d, "the original was acked");
    fc_amqp_queue_delete(a, q);
    fc_amqp_close(a);
}

Test(amqp, lock_is_exclusive_per_connection)
{
    struct fc_amqp *a = tb_amqp(&env, false), *b = tb_amqp(&env, false);
    char name[128];
    tb_unique(name, sizeof name, "fluid.lock.test");
    cr_assert_eq(fc_amqp_lock(a, name), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(fc_amqp_lock(a, name), FC_OK, "re-taking one's own lock");
    cr_assert_eq(fc_amqp_lock(b, name), FC_E_CONFLICT, "%s", fc_error_msg());
    cr_assert(fc_amqp_connected(b), "a refused lock leaves the connection up");
    fc_amqp_close(a);
    cr_assert_eq(fc_amqp_lock(b, name), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(fc_amqp_unlock(b, name), FC_OK, "%s", fc_error_msg());
    fc_amqp_close(b);
}

Test(amqp, consume_missing_queue_is_notfound)
{
    struct fc_amqp *a = tb_amqp(&env, false);
    cr_assert_eq(fc_amqp_consume(a, "fluid.no-such-queue", 1), FC_E_NOTFOUND);
    cr_assert(fc_amqp_connected(a));
    fc_amqp_close(a);
}

Test(amqp, tls_verifies_the_certificate)
{
    cr_assert(env.tls_url[0] && env.ca[0], "fixture has no TLS listener");
    struct fc_amqp_config c = {.url = env.tls_url, .ca_file = env.ca};
    struct fc_amqp *a = NULL;
    cr_assert_eq(fc_amqp_open(&c, &a), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(fc_amqp_declare_topology(a), FC_OK, "%s", fc_error_msg());
    char rk[128];
    tb_unique(rk, sizeof rk, "test.tls");
    const char *keys[] = {rk};
    cr_assert_eq(fc_amqp_subscribe(a, FC_AMQP_X_EVENTS, keys, 1, 10, NULL), FC_OK);
    struct fc_amqp_msg m = {.exchange = FC_AMQP_X_EVENTS, .routing_key = rk, .body = "{}",
                            .len = 2};
    cr_assert_eq(fc_amqp_publish(a, &m), FC_OK, "%s", fc_error_msg());
    struct fc_amqp_delivery *d = wait_one(a, 5000);
    cr_assert_not_null(d);
    fc_amqp_delivery_free(d);
    fc_amqp_close(a);

    /* a CA that did not sign the server's certificate: refused */
    c.ca_file = env.other_ca;
    cr_assert_eq(fc_amqp_open(&c, &a), FC_E_VERIFY, "%s", fc_error_msg());
    cr_assert_null(a);
    cr_assert_null(strstr(fc_error_msg(), env.password));
    /* the system store does not know the test CA either */
    c.ca_file = NULL;
    cr_assert_eq(fc_amqp_open(&c, &a), FC_E_VERIFY, "%s", fc_error_msg());
}

Test(amqp, wrong_password_is_auth_and_never_shown)
{
    char url[600];
    const char *at = strchr(env.url, '@');
    cr_assert_not_null(at);
    snprintf(url, sizeof url, "amqp://fluid:%sX%s", env.password, at);
    struct fc_amqp_config c = {.url = url};
    struct fc_amqp *a = NULL;
    cr_assert_eq(fc_amqp_open(&c, &a), FC_E_AUTH, "%s", fc_error_msg());
    cr_assert_null(strstr(fc_error_msg(), env.password), "%s", fc_error_msg());
    char red[600];
    fc_amqp_url_redact(env.url, red, sizeof red);
    cr_assert_null(strstr(red, env.password));
    cr_assert_null(strstr(red, "fluid:"));
    cr_assert(strstr(red, "127.0.0.1:"), "%s", red);
}

Test(amqp, bad_urls_are_invalid)
{
    struct fc_amqp *a = NULL;
    const char *bad[] = {"http://x/", "amqp://user:secretpw@:5672/", "amqp://h:notaport/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fc_amqp_config c = {.url = bad[i]};
        cr_assert_eq(fc_amqp_new(&c, &a), FC_E_INVALID, "%s", bad[i]);
        cr_assert_null(strstr(fc_error_msg(), "secretpw"));
    }
    struct fc_amqp_config c = {.url = "amqp://u:p@127.0.0.1:1/"};
    cr_assert_eq(fc_amqp_open(&c, &a), FC_E_NET, "%s", fc_error_msg());
}

Test(amqp, lock_record_in_one_round_trip)
{
    struct fc_amqp *a = tb_amqp(&env, false), *b = tb_amqp(&env, false);
    cr_assert_eq(fc_amqp_declare_topology(a), FC_OK);
    char lock[128], rec[128], key[160];
    tb_unique(lock, sizeof lock, "fluid.lock.test-lr");
    tb_unique(rec, sizeof rec, "fluid.outcome.test-lr");
    snprintf(key, sizeof key, "outcome.%s", rec);
    uint32_t n = 99;
    cr_assert_eq(fc_amqp_lock_record(a, lock, rec, FC_AMQP_X_EVENTS, key, 60000, &n), FC_OK,
                 "%s", fc_error_msg());
    cr_assert_eq(n, 0);
    cr_assert_eq(fc_amqp_lock_record(b, lock, rec, FC_AMQP_X_EVENTS, key, 60000, &n),
                 FC_E_CONFLICT, "%s", fc_error_msg());
    cr_assert(fc_amqp_connected(b));
    /* the binding is in place: a CC'd publish lands in the record */
    const char *cc[] = {key};
    struct fc_amqp_msg m = {.exchange = FC_AMQP_X_EVENTS, .routing_key = "test.lr", .body = "{}",
                            .len = 2, .cc = cc, .ncc = 1};
    cr_assert_eq(fc_amqp_publish(b, &m), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(fc_amqp_unlock(a, lock), FC_OK);
    /* unlock does not wait: a synchronous call on the same channel orders after it */
    cr_assert_eq(fc_amqp_queue_info(a, rec, NULL, NULL), FC_OK);
    cr_assert_eq(fc_amqp_lock_record(b, lock, rec, FC_AMQP_X_EVENTS, key, 60000, &n), FC_OK,
                 "%s", fc_error_msg());
    cr_assert_eq(n, 1);
    fc_amqp_queue_delete(b, rec);
    fc_amqp_close(a);
    fc_amqp_close(b);
}

static fc_rc
poll_ticket(struct fc_amqp *a, uint64_t t, uint32_t *n)
{
    uint64_t end = tb_ms() + 10000;
    for (;;) {
        fc_rc rc = fc_amqp_lock_record_poll(a, t, n);
        if (rc != FC_E_TIMEOUT || tb_ms() > end)
            return rc;
        struct fc_amqp_delivery *d = NULL;
        cr_assert_eq(fc_amqp_wait(a, 100, &d), FC_OK);
        fc_amqp_delivery_free(d);
    }
}

Test(amqp, pipelined_lock_requests_settle_in_order)
{
    struct fc_amqp *a = tb_amqp(&env, false), *b = tb_amqp(&env, false);
    cr_assert_eq(fc_amqp_declare_topology(a), FC_OK);
    char l[4][128], r[4][128], k[4][160];
    for (int i = 0; i < 4; i++) {
        tb_unique(l[i], sizeof l[i], "fluid.lock.test-pl");
        tb_unique(r[i], sizeof r[i], "fluid.outcome.test-pl");
        snprintf(k[i], sizeof k[i], "outcome.%s", r[i]);
    }
    cr_assert_eq(fc_amqp_lock(b, l[1]), FC_OK, "%s", fc_error_msg());
    uint64_t t[4];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(fc_amqp_lock_record_start(a, l[i], r[i], FC_AMQP_X_EVENTS, k[i], 60000, &t[i]),
                     FC_OK, "%s", fc_error_msg());
    uint32_t n = 99;
    cr_assert_eq(poll_ticket(a, t[0], &n), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(n, 0);
    cr_assert_eq(poll_ticket(a, t[1], &n), FC_E_CONFLICT, "%s", fc_error_msg());
    cr_assert_eq(poll_ticket(a, t[2], &n), FC_E_NET, "dropped behind the failure: ask again");
    cr_assert(fc_amqp_connected(a));
    cr_assert_eq(fc_amqp_lock_record_start(a, l[2], r[2], FC_AMQP_X_EVENTS, k[2], 60000, &t[3]),
                 FC_OK, "%s", fc_error_msg());
    cr_assert_eq(poll_ticket(a, t[3], &n), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(fc_amqp_lock(b, l[2]), FC_E_CONFLICT, "a holds it now");
    for (int i = 0; i < 3; i++)
        fc_amqp_queue_delete(a, r[i]);
    fc_amqp_close(a);
    fc_amqp_close(b);
}
