/* SPDX-License-Identifier: Apache-2.0 */
/* fluid_amqp operations: topology declarations, consumers and subscriptions, publishing with
 * confirms, acks and dead-lettering, and the channel-2 helpers (locks, records). */
#include "amqp_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fluid/error.h"
#include "fluid/log.h"

static amqp_bytes_t
B(const char *s)
{
    return amqp_cstring_bytes(s ? s : "");
}

/* ---- deliveries ---- */

void
fc_amqp_delivery_free(struct fc_amqp_delivery *d)
{
    if (!d)
        return;
    free(d->exchange);
    free(d->routing_key);
    free(d->consumer_tag);
    free(d->queue);
    free(d->message_id);
    free(d->content_type);
    free(d->body);
    for (size_t i = 0; i < d->nheaders; i++) {
        free((char *)d->headers[i].key);
        free((char *)d->headers[i].value);
    }
    free(d->headers);
    free(d);
}

const char *
fc_amqp_delivery_header(const struct fc_amqp_delivery *d, const char *key)
{
    for (size_t i = 0; i < d->nheaders; i++) {
        if (strcmp(d->headers[i].key, key) == 0)
            return d->headers[i].value;
    }
    return NULL;
}

fc_rc fc_amqp_fill_delivery_(struct fc_amqp_delivery *d, const amqp_message_t *msg);

fc_rc
fc_amqp_fill_delivery_(struct fc_amqp_delivery *d, const amqp_message_t *msg)
{
    const amqp_basic_properties_t *p = &msg->properties;
    if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
        d->message_id = fc_amqp_bytes_dup_(p->message_id);
    if (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG)
        d->content_type = fc_amqp_bytes_dup_(p->content_type);
    if ((p->_flags & AMQP_BASIC_HEADERS_FLAG) && p->headers.num_entries > 0) {
        d->headers = calloc((size_t)p->headers.num_entries, sizeof *d->headers);
        if (!d->headers)
            return FC_ERR(FC_E_NOMEM, "amqp: out of memory");
        for (int i = 0; i < p->headers.num_entries; i++) {
            const amqp_table_entry_t *e = &p->headers.entries[i];
            if (e->value.kind != AMQP_FIELD_KIND_UTF8 && e->value.kind != AMQP_FIELD_KIND_BYTES)
                continue;
            struct fc_amqp_header *h = &d->headers[d->nheaders];
            h->key = fc_amqp_bytes_dup_(e->key);
            h->value = fc_amqp_bytes_dup_(e->value.value.bytes);
            d->nheaders++;
        }
    }
    d->body = fc_amqp_bytes_dup_(msg->body);
    d->len = msg->body.len;
    if (!d->body || !d->exchange || !d->routing_key)
        return FC_ERR(FC_E_NOMEM, "amqp: out of memory");
    return FC_OK;
}

/* ---- declarations on channel 2 ---- */

static fc_rc
xdecl(struct fc_amqp *a, const char *name, const char *type)
{
    fc_rc rc = fc_amqp_aux_(a);
    if (rc != FC_OK)
        return rc;
    amqp_exchange_declare(a->conn, CH_AUX, B(name), B(type), 0, 1, 0, 0, amqp_empty_table);
    char what[300];
    snprintf(what, sizeof what, "declare exchange %s (%s, durable)", name, type);
    return fc_amqp_reply_rc_(a, amqp_get_rpc_reply(a->conn), CH_AUX, what);
}

/* Declares a durable queue (dlx: dead-letters to fluid.dead; expires_ms: x-expires). */
fc_rc
fc_amqp_qdecl_(struct fc_amqp *a, const char *name, bool passive, bool dlx, uint64_t expires_ms,
               uint32_t *messages, uint32_t *consumers)
{
    fc_rc rc = fc_amqp_aux_(a);
    if (rc != FC_OK)
        return rc;
    amqp_table_entry_t e[2];
    int n = 0;
    if (dlx) {
        e[n].key = B("x-dead-letter-exchange");
        e[n].value.kind = AMQP_FIELD_KIND_UTF8;
        e[n].value.value.bytes = B(FC_AMQP_X_DEAD);
        n++;
    }
    if (expires_ms) {
        e[n].key = B("x-expires");
        e[n].value.kind = AMQP_FIELD_KIND_I64;
        e[n].value.value.i64 = (int64_t)expires_ms;
        n++;
    }
    amqp_table_t args = {n, e};
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(a->conn, CH_AUX, B(name), passive, 1, 0, 0, args);
    char what[300];
    snprintf(what, sizeof what, "%s queue %s", passive ? "look up" : "declare", name);
    rc = fc_amqp_reply_rc_(a, amqp_get_rpc_reply(a->conn), CH_AUX, what);
    if (rc == FC_OK && ok) {
        if (messages)
            *messages = ok->message_count;
        if (consumers)
            *consumers = ok->consumer_count;
    }
    return rc;
}

fc_rc
fc_amqp_qbind_(struct fc_amqp *a, const char *queue, const char *exchange, const char *key)
{
    fc_rc rc = fc_amqp_aux_(a);
    if (rc != FC_OK)
        return rc;
    amqp_queue_bind(a->conn, CH_AUX, B(queue), B(exchange), B(key), amqp_empty_table);
    char what[600];
    snprintf(what, sizeof what, "bind queue %s to %s with %s", queue, exchange, key);
    return fc_amqp_reply_rc_(a, amqp_get_rpc_reply(a->conn), CH_AUX, what);
}

static fc_rc
topology_now(struct fc_amqp *a)
{
    fc_rc rc;
    if ((rc = xdecl(a, FC_AMQP_X_DEAD, "fanout")) != FC_OK ||
        (rc = xdecl(a, FC_AMQP_X_TASKS, "topic")) != FC_OK ||
        (rc = xdecl(a, FC_AMQP_X_EVENTS, "topic")) != FC_OK ||
        (rc = xdecl(a, FC_AMQP_X_CONTROL, "topic")) != FC_OK ||
        (rc = fc_amqp_qdecl_(a, FC_AMQP_Q_DEAD, false, false, 0, NULL, NULL)) != FC_OK ||
        (rc = fc_amqp_qbind_(a, FC_AMQP_Q_DEAD, FC_AMQP_X_DEAD, "")) != FC_OK ||
        (rc = fc_amqp_qdecl_(a, FC_AMQP_Q_REQUESTS, false, true, 0, NULL, NULL)) != FC_OK)
        return rc;
    return FC_OK;
}

static fc_rc
site_now(struct fc_amqp *a, const char *site)
{
    char q[FC_AMQP_NAME_MAX], key[FC_AMQP_NAME_MAX];
    if (!fc_amqp_q_tasks(q, sizeof q, site) ||
        snprintf(key, sizeof key, "%s.#", site) >= (int)sizeof key)
        return FC_ERR(FC_E_INVALID, "site \"%.64s...\": name too long", site);
    fc_rc rc = fc_amqp_qdecl_(a, q, false, true, 0, NULL, NULL);
    if (rc == FC_OK)
        rc = fc_amqp_qbind_(a, q, FC_AMQP_X_TASKS, key);
    return rc;
}

fc_rc
fc_amqp_declare_topology(struct fc_amqp *a)
{
    if (!a->up && !a->reconnect)
        return FC_ERR(FC_E_NET, "amqp %s: not connected", a->where);
    if (a->up) {
        fc_rc rc = topology_now(a);
        if (rc != FC_OK)
            return rc;
    }
    a->topology = true;
    return FC_OK;
}

static bool
valid_site(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return false;
    for (const char *p = s; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return false;
    }
    return true;
}

fc_rc
fc_amqp_declare_site(struct fc_amqp *a, const char *site)
{
    if (!valid_site(site))
        return FC_ERR(FC_E_INVALID, "site \"%.64s\": expected 1-64 of [a-z0-9_-]",
                      site ? site : "");
    for (size_t i = 0; i < a->nsites; i++) {
        if (strcmp(a->sites[i], site) == 0)
            return a->up ? site_now(a, site) : FC_OK;
    }
    if (!a->up && !a->reconnect)
        return FC_ERR(FC_E_NET, "amqp %s: not connected", a->where);
    if (a->up) {
        fc_rc rc = site_now(a, site);
        if (rc != FC_OK)
            return rc;
    }
    char **s = realloc(a->sites, (a->nsites + 1) * sizeof *s);
    if (!s || !(s[a->nsites] = strdup(site))) {
        if (s)
            a->sites = s;
        return FC_ERR(FC_E_NOMEM, "amqp: out of memory");
    }
    a->sites = s;
    a->nsites++;
    return FC_OK;
}

/* ---- consumers ---- */

void
fc_amqp_consumer_free_(struct fc_amqp_consumer *c)
{
    free(c->queue);
    free(c->exchange);
    for (size_t i = 0; i < c->nkeys; i++)
        free(c->keys[i]);
    free(c->keys);
    memset(c, 0, sizeof *c);
}

static fc_rc
start_consumer(struct fc_amqp *a, struct fc_amqp_consumer *c)
{
    fc_rc rc;
    if (c->subscribe) {
        if ((rc = fc_amqp_aux_(a)) != FC_OK)
            return rc;
        amqp_queue_declare_ok_t *ok =
            amqp_queue_declare(a->conn, CH_AUX, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
        rc = fc_amqp_reply_rc_(a, amqp_get_rpc_reply(a->conn), CH_AUX,
                               "declare a subscription queue");
        if (rc != FC_OK)
            return rc;
        free(c->queue);
        c->queue = fc_amqp_bytes_dup_(ok->queue);
        if (!c->queue)
            return FC_ERR(FC_E_NOMEM, "amqp: out of memory");
        for (size_t i = 0; i < c->nkeys; i++) {
            if ((rc = fc_amqp_qbind_(a, c->queue, c->exchange, c->keys[i])) != FC_OK)
                return rc;
        }
    } else {
        /* look it up on channel 2 first: a missing queue must not close channel 1 */
        if ((rc = fc_amqp_qdecl_(a, c->queue, true, false, 0, NULL, NULL)) != FC_OK)
            return rc;
    }
    amqp_basic_qos(a->conn, CH_MAIN, 0, c->prefetch, 0);
    if ((rc = fc_amqp_reply_rc_(a, amqp_get_rpc_reply(a->conn), CH_MAIN, "basic.qos")) != FC_OK)
        return rc;
    amqp_basic_consume_ok_t *ok = amqp_basic_consume(a->conn, CH_MAIN, B(c->queue),
                                                     amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    char what[300];
    snprintf(what, sizeof what, "consume %s", c->queue);
    if ((rc = fc_amqp_reply_rc_(a, amqp_get_rpc_reply(a->conn), CH_MAIN, what)) != FC_OK)
        return rc;
    snprintf(c->tag, sizeof c->tag, "%.*s", (int)ok->consumer_tag.len,
             (char *)ok->consumer_tag.bytes);
    return FC_OK;
}

static fc_rc
add_consumer(struct fc_amqp *a, struct fc_amqp_consumer *c, char *name_out)
{
    if (!a->up && !a->reconnect) {
        fc_amqp_consumer_free_(c);
        return FC_ERR(FC_E_NET, "amqp %s: not connected", a->where);
    }
    struct fc_amqp_consumer *n = realloc(a->cons, (a->ncons + 1) * sizeof *n);
    if (!n) {
        fc_amqp_consumer_free_(c);
        return FC_ERR(FC_E_NOMEM, "amqp: out of memory");
    }
    a->cons = n;
    a->cons[a->ncons] = *c;
    struct fc_amqp_consumer *mine = &a->cons[a->ncons];
    if (a->up) {
        fc_rc rc = start_consumer(a, mine);
        if (rc != FC_OK) {
            fc_amqp_consumer_free_(mine);
            return rc;
        }
    }
    a->ncons++;
    if (name_out)
        snprintf(name_out, FC_AMQP_NAME_MAX, "%s", mine->queue ? mine->queue : "");
    return FC_OK;
}

fc_rc
fc_amqp_consume(struct fc_amqp *a, const char *queue, uint16_t prefetch)
{
    struct fc_amqp_consumer c = {.prefetch = prefetch};
    c.queue = strdup(queue);
    if (!c.queue)
        return FC_ERR(FC_E_NOMEM, "amqp: out of memory");
    return add_consumer(a, &c, NULL);
}

fc_rc
fc_amqp_subscribe(struct fc_amqp *a, const char *exchange, const char *const *keys,
                  size_t nkeys, uint16_t prefetch, char *name_out)
{
    struct fc_amqp_consumer c = {.prefetch = prefetch, .subscribe = true};
    c.exchange = strdup(exchange);
    c.keys = calloc(nkeys ? nkeys : 1, sizeof *c.keys);
    if (!c.exchange || !c.keys) {
        fc_amqp_consumer_free_(&c);
        return FC_ERR(FC_E_NOMEM, "amqp: out of memory");
    }
    for (size_t i = 0; i < nkeys; i++) {
        if (!(c.keys[i] = strdup(keys[i]))) {
            fc_amqp_consumer_free_(&c);
            return FC_ERR(FC_E_NOMEM, "amqp: out of memory");
        }
        c.nkeys++;
    }
    return add_consumer(a, &c, name_out);
}

fc_rc
fc_amqp_cancel_consumer(struct fc_amqp *a, const char *queue)
{
    for (size_t i = 0; i < a->ncons; i++) {
        struct fc_amqp_consumer *c = &a->cons[i];
        if (!c->queue || strcmp(c->queue, queue) != 0)
            continue;
        fc_rc rc = FC_OK;
        if (a->up && c->tag[0]) {
            amqp_basic_cancel(a->conn, CH_MAIN, B(c->tag));
            rc = fc_amqp_reply_rc_(a, amqp_get_rpc_reply(a->conn), CH_MAIN, "cancel consumer");
        }
        fc_amqp_consumer_free_(c);
        memmove(c, c + 1, (a->ncons - i - 1) * sizeof *c);
        a->ncons--;
        return rc;
    }
    return FC_ERR(FC_E_NOTFOUND, "amqp: not consuming %s", queue);
}

fc_rc
fc_amqp_replay_(struct fc_amqp *a)
{
    fc_rc rc;
    if (a->topology && (rc = topology_now(a)) != FC_OK)
        return rc;
    for (size_t i = 0; i < a->nsites; i++) {
        if ((rc = site_now(a, a->sites[i])) != FC_OK)
            return rc;
    }
    for (size_t i = 0; i < a->ncons; i++) {
        if ((rc = start_consumer(a, &a->cons[i])) != FC_OK)
            return rc;
    }
    return FC_OK;
}

fc_rc
fc_amqp_get(struct fc_amqp *a, const char *queue, struct fc_amqp_delivery **out)
{
    *out = NULL;
    fc_rc rc = fc_amqp_qdecl_(a, queue, true, false, 0, NULL, NULL);
    if (rc != FC_OK)
        return rc;
    amqp_rpc_reply_t r = amqp_basic_get(a->conn, CH_MAIN, B(queue), 0);
    char what[300];
    snprintf(what, sizeof what, "get from %s", queue);
    if ((rc = fc_amqp_reply_rc_(a, r, CH_MAIN, what)) != FC_OK)
        return rc;
    if (r.reply.id != AMQP_BASIC_GET_OK_METHOD)
        return FC_OK; /* get-empty */
    amqp_basic_get_ok_t *m = r.reply.decoded;
    struct fc_amqp_delivery *d = calloc(1, sizeof *d);
    if (!d)
        return FC_ERR(FC_E_NOMEM, "amqp: out of memory");
    d->tag = m->delivery_tag;
    d->generation = a->gen;
    d->redelivered = m->redelivered;
    d->exchange = fc_amqp_bytes_dup_(m->exchange);
    d->routing_key = fc_amqp_bytes_dup_(m->routing_key);
    d->queue = strdup(queue);
    amqp_message_t msg;
    r = amqp_read_message(a->conn, CH_MAIN, &msg, 0);
    if ((rc = fc_amqp_reply_rc_(a, r, CH_MAIN, what)) != FC_OK) {
        fc_amqp_delivery_free(d);
        return rc;
    }
    rc = fc_amqp_fill_delivery_(d, &msg);
    amqp_destroy_message(&msg);
    if (rc != FC_OK) {
        fc_amqp_delivery_free(d);
        return rc;
    }
    *out = d;
    return FC_OK;
}

/* ---- settling ---- */

static bool
stale(struct fc_amqp *a, const struct fc_amqp_delivery *d)
{
    return !a->up || d->generation != a->gen;
}

fc_rc
fc_amqp_ack(struct fc_amqp *a, const struct fc_amqp_delivery *d)
{
    if (stale(a, d))
        return FC_OK;
    int st = amqp_basic_ack(a->conn, CH_MAIN, d->tag, 0);
    return st == AMQP_STATUS_OK ? FC_OK : fc_amqp_status_rc_(a, st, "ack");
}

fc_rc
fc_amqp_nack(struct fc_amqp *a, const struct fc_amqp_delivery *d, bool requeue)
{
    if (stale(a, d))
        return FC_OK;
    int st = amqp_basic_nack(a->conn, CH_MAIN, d->tag, 0, requeue);
    return st == AMQP_STATUS_OK ? FC_OK : fc_amqp_status_rc_(a, st, "nack");
}

fc_rc
fc_amqp_dead_letter(struct fc_amqp *a, const struct fc_amqp_delivery *d, const char *reason)
{
    char line[1001];
    snprintf(line, sizeof line, "%s", reason ? reason : "rejected");
    for (char *p = line; *p; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
    struct fc_amqp_header *h = calloc(d->nheaders + 3, sizeof *h);
    if (!h)
        return FC_ERR(FC_E_NOMEM, "amqp: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < d->nheaders; i++) {
        const char *k = d->headers[i].key;
        if (strcmp(k, FC_AMQP_H_REASON) && strcmp(k, FC_AMQP_H_ROUTING_KEY) &&
            strcmp(k, FC_AMQP_H_EXCHANGE))
            h[n++] = d->headers[i];
    }
    h[n++] = (struct fc_amqp_header){FC_AMQP_H_REASON, line};
    h[n++] = (struct fc_amqp_header){FC_AMQP_H_ROUTING_KEY, d->routing_key};
    h[n++] = (struct fc_amqp_header){FC_AMQP_H_EXCHANGE, d->exchange};
    struct fc_amqp_msg m = {.exchange = FC_AMQP_X_DEAD,
                            .routing_key = d->routing_key,
                            .body = d->body,
                            .len = d->len,
                            .message_id = d->message_id,
                            .content_type = d->content_type,
                            .headers = h,
                            .nheaders = n};
    fc_rc rc = fc_amqp_publish(a, &m);
    free(h);
    if (rc != FC_OK)
        return rc;
    return fc_amqp_ack(a, d);
}

/* ---- publishing ---- */

static fc_rc
do_publish(struct fc_amqp *a, const struct fc_amqp_msg *m, uint64_t *seq)
{
    if (!a->up)
        return FC_ERR(FC_E_NET, "amqp %s: not connected", a->where);
    if (!m->routing_key || strlen(m->routing_key) >= FC_AMQP_NAME_MAX)
        return FC_ERR(FC_E_INVALID, "publish: routing key missing or longer than 255 bytes");
    amqp_basic_properties_t p;
    memset(&p, 0, sizeof p);
    p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    p.content_type = B(m->content_type ? m->content_type : FC_AMQP_CONTENT_TYPE);
    p.delivery_mode = m->transient ? 1 : 2;
    if (m->message_id) {
        p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        p.message_id = B(m->message_id);
    }
    size_t nh = m->nheaders + (m->ncc ? 1 : 0);
    amqp_table_entry_t *e = NULL;
    amqp_field_value_t *cc = NULL;
    if (nh) {
        e = calloc(nh, sizeof *e);
        cc = calloc(m->ncc ? m->ncc : 1, sizeof *cc);
        if (!e || !cc) {
            free(e);
            free(cc);
            return FC_ERR(FC_E_NOMEM, "amqp: out of memory");
        }
        size_t k = 0;
        for (size_t i = 0; i < m->nheaders; i++, k++) {
            e[k].key = B(m->headers[i].key);
            e[k].value.kind = AMQP_FIELD_KIND_UTF8;
            e[k].value.value.bytes = B(m->headers[i].value);
        }
        if (m->ncc) {
            for (size_t i = 0; i < m->ncc; i++) {
                cc[i].kind = AMQP_FIELD_KIND_UTF8;
                cc[i].value.bytes = B(m->cc[i]);
            }
            e[k].key = B("CC");
            e[k].value.kind = AMQP_FIELD_KIND_ARRAY;
            e[k].value.value.array.num_entries = (int)m->ncc;
            e[k].value.value.array.entries = cc;
            k++;
        }
        p._flags |= AMQP_BASIC_HEADERS_FLAG;
        p.headers.num_entries = (int)k;
        p.headers.entries = e;
    }
    amqp_bytes_t body = {m->len, (void *)m->body};
    int st = amqp_basic_publish(a->conn, CH_MAIN, B(m->exchange), B(m->routing_key),
                                m->mandatory, 0, &p, body);
    free(e);
    free(cc);
    if (st != AMQP_STATUS_OK)
        return fc_amqp_status_rc_(a, st, "publish");
    if (a->npending == a->cappending) {
        size_t n = a->cappending ? a->cappending * 2 : 64;
        uint64_t *pp = realloc(a->pending, n * sizeof *pp);
        if (!pp)
            return FC_ERR(FC_E_NOMEM, "amqp: out of memory");
        a->pending = pp;
        a->cappending = n;
    }
    *seq = a->next_seq++;
    a->pending[a->npending++] = *seq;
    return FC_OK;
}

fc_rc
fc_amqp_publish_nowait(struct fc_amqp *a, const struct fc_amqp_msg *m)
{
    uint64_t seq;
    return do_publish(a, m, &seq);
}

fc_rc
fc_amqp_publish_async(struct fc_amqp *a, const struct fc_amqp_msg *m, uint64_t *seq)
{
    return do_publish(a, m, seq);
}

int
fc_amqp_confirmed(const struct fc_amqp *a, uint64_t gen, uint64_t seq)
{
    if (!a->up || gen != a->gen || seq == 0 || seq >= a->next_seq)
        return -1;
    for (size_t i = 0; i < a->npending; i++) {
        if (a->pending[i] == seq)
            return 0;
    }
    for (size_t i = 0; i < a->nfailed; i++) {
        if (a->failed[i] == seq)
            return -1;
    }
    return 1;
}

fc_rc
fc_amqp_confirm_wait(struct fc_amqp *a)
{
    uint64_t deadline = fc_amqp_now_ns_() + (uint64_t)a->rpc_timeout_ms * 1000000u;
    while (a->npending > 0) {
        if (!a->up)
            return FC_ERR(FC_E_NET, "amqp %s: connection lost before the confirms came",
                          a->where);
        uint64_t now = fc_amqp_now_ns_();
        if (now >= deadline)
            return FC_ERR(FC_E_TIMEOUT, "amqp %s: %zu publishes unconfirmed after %u ms",
                          a->where, a->npending, a->rpc_timeout_ms);
        fc_amqp_pump_(a, (int)((deadline - now) / 1000000u) + 1);
    }
    unsigned nacks = a->batch_nacks, rets = a->batch_returns;
    a->batch_nacks = a->batch_returns = 0;
    if (nacks)
        return FC_ERR(FC_E_REMOTE, "amqp %s: %u publishes refused (nack)", a->where, nacks);
    if (rets)
        return FC_ERR(FC_E_NOTFOUND, "amqp %s: %u publishes unroutable", a->where, rets);
    return FC_OK;
}

fc_rc
fc_amqp_publish(struct fc_amqp *a, const struct fc_amqp_msg *m)
{
    uint64_t seq;
    fc_rc rc = do_publish(a, m, &seq);
    if (rc != FC_OK)
        return rc;
    a->wait_seq = seq;
    a->wait_result = 0;
    uint64_t deadline = fc_amqp_now_ns_() + (uint64_t)a->rpc_timeout_ms * 1000000u;
    while (a->wait_result == 0) {
        if (!a->up) {
            a->wait_seq = 0;
            return FC_ERR(FC_E_NET, "amqp %s: connection lost before the confirm of %s/%s",
                          a->where, m->exchange, m->routing_key);
        }
        uint64_t now = fc_amqp_now_ns_();
        if (now >= deadline) {
            a->wait_seq = 0;
            return FC_ERR(FC_E_TIMEOUT, "amqp %s: no confirm for %s/%s within %u ms", a->where,
                          m->exchange, m->routing_key, a->rpc_timeout_ms);
        }
        fc_amqp_pump_(a, (int)((deadline - now) / 1000000u) + 1);
    }
    int res = a->wait_result;
    a->wait_seq = 0;
    if (res == 2)
        return FC_ERR(FC_E_REMOTE, "amqp %s: publish to %s/%s refused (nack)", a->where,
                      m->exchange, m->routing_key);
    if (res == 3)
        return FC_ERR(FC_E_NOTFOUND, "amqp %s: publish to %s/%s: no queue bound for it",
                      a->where, m->exchange, m->routing_key);
    return FC_OK;
}

fc_rc
fc_amqp_publish_retry(struct fc_amqp *a, const struct fc_amqp_msg *m, unsigned deadline_ms)
{
    uint64_t deadline = fc_amqp_now_ns_() + (uint64_t)deadline_ms * 1000000u;
    unsigned delay = a->backoff_min_ms;
    for (;;) {
        fc_rc rc = a->up ? FC_OK : fc_amqp_connect(a);
        if (rc == FC_OK && (rc = fc_amqp_publish(a, m)) == FC_OK)
            return FC_OK;
        if (rc != FC_E_NET && rc != FC_E_TIMEOUT)
            return rc;
        if (fc_amqp_now_ns_() + (uint64_t)delay * 1000000u >= deadline)
            return rc;
        struct timespec ts = {delay / 1000, (long)(delay % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        delay = delay * 2 > a->backoff_max_ms ? a->backoff_max_ms : delay * 2;
    }
}
