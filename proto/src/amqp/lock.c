/* SPDX-License-Identifier: Apache-2.0 */
/* fluid_amqp queue helpers on channels 2 and 3: lookups, deletes, locks (exclusive queues),
 * outcome records, and the pipelined lock + record requests of the broker. */
#include "amqp_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/error.h"

static amqp_bytes_t
B(const char *s)
{
    return amqp_cstring_bytes(s ? s : "");
}

/* ---- channel-2 helpers ---- */

fc_rc
fc_amqp_queue_info(struct fc_amqp *a, const char *queue, uint32_t *messages,
                   uint32_t *consumers)
{
    return fc_amqp_qdecl_(a, queue, true, false, 0, messages, consumers);
}

fc_rc
fc_amqp_queue_delete(struct fc_amqp *a, const char *queue)
{
    fc_rc rc = fc_amqp_aux_(a);
    if (rc != FC_OK)
        return rc;
    amqp_queue_delete(a->conn, CH_AUX, B(queue), 0, 0);
    char what[300];
    snprintf(what, sizeof what, "delete queue %s", queue);
    return fc_amqp_reply_rc_(a, amqp_get_rpc_reply(a->conn), CH_AUX, what);
}

fc_rc
fc_amqp_queue_purge(struct fc_amqp *a, const char *queue)
{
    fc_rc rc = fc_amqp_aux_(a);
    if (rc != FC_OK)
        return rc;
    amqp_queue_purge(a->conn, CH_AUX, B(queue));
    char what[300];
    snprintf(what, sizeof what, "purge queue %s", queue);
    return fc_amqp_reply_rc_(a, amqp_get_rpc_reply(a->conn), CH_AUX, what);
}

fc_rc
fc_amqp_lock(struct fc_amqp *a, const char *name)
{
    fc_rc rc = fc_amqp_aux_(a);
    if (rc != FC_OK)
        return rc;
    amqp_queue_declare(a->conn, CH_AUX, B(name), 0, 0, 1, 1, amqp_empty_table);
    char what[300];
    snprintf(what, sizeof what, "lock %s", name);
    rc = fc_amqp_reply_rc_(a, amqp_get_rpc_reply(a->conn), CH_AUX, what);
    if (rc == FC_E_CONFLICT)
        return FC_ERR(FC_E_CONFLICT, "lock %s: held by another connection", name);
    return rc;
}

fc_rc
fc_amqp_unlock(struct fc_amqp *a, const char *name)
{
    /* no-wait: deleting one's own exclusive queue does not fail in practice, and a failure
     * closes only channel 2 (reopened on its next use) */
    fc_rc rc = fc_amqp_aux_(a);
    if (rc != FC_OK)
        return rc;
    amqp_queue_delete_t m = {.ticket = 0, .queue = B(name), .if_unused = 0, .if_empty = 0,
                             .nowait = 1};
    int st = amqp_send_method(a->conn, CH_AUX, AMQP_QUEUE_DELETE_METHOD, &m);
    return st == AMQP_STATUS_OK ? FC_OK : fc_amqp_status_rc_(a, st, "unlock");
}

fc_rc
fc_amqp_declare_record(struct fc_amqp *a, const char *queue, const char *exchange,
                       const char *key, uint32_t expires_ms, uint32_t *messages)
{
    fc_rc rc = fc_amqp_qdecl_(a, queue, false, false, expires_ms, messages, NULL);
    if (rc == FC_OK)
        rc = fc_amqp_qbind_(a, queue, exchange, key);
    return rc;
}

/* queue.declare without waiting for declare-ok (errors surface on the next sync RPC). */
static int
send_qdecl(struct fc_amqp *a, const char *name, bool durable, bool exclusive, bool auto_delete,
           amqp_table_t args)
{
    amqp_queue_declare_t m = {.ticket = 0, .queue = B(name), .passive = 0, .durable = durable,
                              .exclusive = exclusive, .auto_delete = auto_delete, .nowait = 1,
                              .arguments = args};
    return amqp_send_method(a->conn, CH_AUX, AMQP_QUEUE_DECLARE_METHOD, &m);
}

fc_rc
fc_amqp_lock_record(struct fc_amqp *a, const char *lock, const char *queue,
                    const char *exchange, const char *key, uint32_t expires_ms,
                    uint32_t *messages)
{
    fc_rc rc = fc_amqp_aux_(a);
    if (rc != FC_OK)
        return rc;
    /* four methods in a row on channel 2, one round trip: a channel processes them in order,
     * so the passive declare's reply comes after the others took effect, or the channel
     * closes naming the first that failed */
    amqp_table_entry_t e = {.key = B("x-expires")};
    e.value.kind = AMQP_FIELD_KIND_I64;
    e.value.value.i64 = (int64_t)expires_ms;
    amqp_table_t args = {expires_ms ? 1 : 0, &e};
    amqp_queue_bind_t bind = {.ticket = 0, .queue = B(queue), .exchange = B(exchange),
                              .routing_key = B(key), .nowait = 1,
                              .arguments = amqp_empty_table};
    int st = send_qdecl(a, lock, false, true, true, amqp_empty_table);
    if (st == AMQP_STATUS_OK)
        st = send_qdecl(a, queue, true, false, false, args);
    if (st == AMQP_STATUS_OK)
        st = amqp_send_method(a->conn, CH_AUX, AMQP_QUEUE_BIND_METHOD, &bind);
    if (st != AMQP_STATUS_OK)
        return fc_amqp_status_rc_(a, st, "lock and record");
    uint32_t n = 0;
    rc = fc_amqp_qdecl_(a, queue, true, false, 0, &n, NULL);
    if (rc == FC_E_CONFLICT)
        return FC_ERR(FC_E_CONFLICT, "lock %s: held by another connection", lock);
    if (rc == FC_OK && messages)
        *messages = n;
    return rc;
}

/* ---- pipelined lock + record requests on CH_LOCK ---- */

void
fc_amqp_tickets_lost_(struct fc_amqp *a)
{
    for (size_t i = 0; i < a->ntickets; i++) {
        if (a->tickets[i].state == 0) {
            a->tickets[i].state = -1;
            a->tickets[i].rc = FC_E_NET;
            snprintf(a->tickets[i].msg, sizeof a->tickets[i].msg, "amqp %s: connection lost",
                     a->where);
        }
    }
}

void
fc_amqp_lock_frame_(struct fc_amqp *a, amqp_frame_t *f)
{
    struct fc_amqp_ticket *head = NULL;
    for (size_t i = 0; i < a->ntickets && !head; i++) {
        if (a->tickets[i].state == 0)
            head = &a->tickets[i];
    }
    if (f->payload.method.id == AMQP_QUEUE_DECLARE_OK_METHOD) {
        amqp_queue_declare_ok_t *ok = f->payload.method.decoded;
        if (head) {
            head->state = 1;
            head->rc = FC_OK;
            head->messages = ok->message_count;
        }
        return;
    }
    if (f->payload.method.id != AMQP_CHANNEL_CLOSE_METHOD)
        return;
    /* the first request that failed closed the channel; the later ones were dropped */
    amqp_channel_close_t *m = f->payload.method.decoded;
    int code = m->reply_code;
    char text[256];
    snprintf(text, sizeof text, "%.*s", (int)m->reply_text.len, (char *)m->reply_text.bytes);
    amqp_channel_close_ok_t okm = {0};
    amqp_send_method(a->conn, CH_LOCK, AMQP_CHANNEL_CLOSE_OK_METHOD, &okm);
    a->lock_open = false;
    for (size_t i = 0; i < a->ntickets; i++) {
        struct fc_amqp_ticket *t = &a->tickets[i];
        if (t->state != 0)
            continue;
        t->state = -1;
        if (t == head) {
            t->rc = code == 405 ? FC_E_CONFLICT : code == 404 ? FC_E_NOTFOUND : FC_E_REMOTE;
            snprintf(t->msg, sizeof t->msg, "amqp %s: %d %s", a->where, code, text);
        } else {
            t->rc = FC_E_NET; /* not processed: ask again */
            snprintf(t->msg, sizeof t->msg, "amqp %s: request dropped by a channel error",
                     a->where);
        }
    }
}

fc_rc
fc_amqp_lock_record_start(struct fc_amqp *a, const char *lock, const char *queue,
                          const char *exchange, const char *key, uint32_t expires_ms,
                          uint64_t *ticket)
{
    *ticket = 0;
    if (!a->up)
        return FC_ERR(FC_E_NET, "amqp %s: not connected", a->where);
    if (!a->lock_open) {
        amqp_channel_open(a->conn, CH_LOCK);
        fc_rc rc = fc_amqp_reply_rc_(a, amqp_get_rpc_reply(a->conn), CH_LOCK, "open channel 3");
        if (rc != FC_OK)
            return rc;
        a->lock_open = true;
    }
    /* drop settled tickets that nobody asked for in a long time: keep the array short */
    if (a->ntickets > 1024) {
        size_t j = 0;
        for (size_t i = 0; i < a->ntickets; i++) {
            if (a->tickets[i].state == 0 || i + 512 >= a->ntickets)
                a->tickets[j++] = a->tickets[i];
        }
        a->ntickets = j;
    }
    if (a->ntickets == a->captickets) {
        size_t n = a->captickets ? a->captickets * 2 : 16;
        struct fc_amqp_ticket *t = realloc(a->tickets, n * sizeof *t);
        if (!t)
            return FC_ERR(FC_E_NOMEM, "amqp: out of memory");
        a->tickets = t;
        a->captickets = n;
    }
    amqp_table_entry_t e = {.key = B("x-expires")};
    e.value.kind = AMQP_FIELD_KIND_I64;
    e.value.value.i64 = (int64_t)expires_ms;
    amqp_table_t args = {expires_ms ? 1 : 0, &e};
    amqp_queue_declare_t dl = {.queue = B(lock), .exclusive = 1, .auto_delete = 1, .nowait = 1,
                               .arguments = amqp_empty_table};
    amqp_queue_declare_t dr = {.queue = B(queue), .durable = 1, .nowait = 1, .arguments = args};
    amqp_queue_bind_t bind = {.queue = B(queue), .exchange = B(exchange), .routing_key = B(key),
                              .nowait = 1, .arguments = amqp_empty_table};
    amqp_queue_declare_t dp = {.queue = B(queue), .passive = 1, .durable = 1,
                               .arguments = amqp_empty_table};
    int st = amqp_send_method(a->conn, CH_LOCK, AMQP_QUEUE_DECLARE_METHOD, &dl);
    if (st == AMQP_STATUS_OK)
        st = amqp_send_method(a->conn, CH_LOCK, AMQP_QUEUE_DECLARE_METHOD, &dr);
    if (st == AMQP_STATUS_OK)
        st = amqp_send_method(a->conn, CH_LOCK, AMQP_QUEUE_BIND_METHOD, &bind);
    if (st == AMQP_STATUS_OK)
        st = amqp_send_method(a->conn, CH_LOCK, AMQP_QUEUE_DECLARE_METHOD, &dp);
    if (st != AMQP_STATUS_OK)
        return fc_amqp_status_rc_(a, st, "lock and record");
    struct fc_amqp_ticket *t = &a->tickets[a->ntickets++];
    memset(t, 0, sizeof *t);
    t->id = ++a->ticket_seq;
    *ticket = t->id;
    return FC_OK;
}

fc_rc
fc_amqp_lock_record_poll(struct fc_amqp *a, uint64_t ticket, uint32_t *messages)
{
    for (size_t i = 0; i < a->ntickets; i++) {
        struct fc_amqp_ticket *t = &a->tickets[i];
        if (t->id != ticket)
            continue;
        if (t->state == 0)
            return FC_E_TIMEOUT;
        fc_rc rc = t->rc;
        if (messages)
            *messages = t->messages;
        if (rc != FC_OK)
            fc_error_at(rc, __FILE__, __LINE__, "%s", t->msg);
        memmove(t, t + 1, (a->ntickets - i - 1) * sizeof *t);
        a->ntickets--;
        return rc;
    }
    return FC_ERR(FC_E_NET, "amqp %s: lock request %llu unknown (connection lost)", a->where,
                  (unsigned long long)ticket);
}

