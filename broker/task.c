/* SPDX-License-Identifier: Apache-2.0 */
/* One task's life in fluid-broker: lock and outcome record (exactly-once), attempts of its
 * Viaduct, events, retries with backoff, cancel, dead-lettering, ack after the confirm.
 * docs/broker.md explains the states and the guarantee. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "broker.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/sha256.h"

static void try_finish(struct broker *b, struct btask *t);
static void acquire(struct broker *b, struct btask *t);
static bool is_cancelled(struct broker *b, const struct fc_task *k);

/* Replaces invalid UTF-8 (a tail cut inside a character, binary noise) with '?'. */
static void
utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2
                : (*p & 0xF8) == 0xF0 ? 3 : -1;
        bool ok = n >= 0;
        for (int k = 1; ok && k <= n; k++)
            ok = (p[k] & 0xC0) == 0x80;
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n + 1;
    }
}

static struct btask *
find_key(struct broker *b, const char *key)
{
    for (struct btask *t = b->tasks; t; t = t->next) {
        if (!strcmp(t->task->idempotency_key, key))
            return t;
    }
    return NULL;
}

static void
task_free(struct btask *t)
{
    fc_viaduct_free(t->v);
    fc_task_free(t->task);
    free(t->json);
    for (size_t i = 0; i < t->nd; i++)
        fc_amqp_delivery_free(t->d[i]);
    free(t->d);
    free(t->err_tail);
    json_decref(t->result);
    free(t);
}

static void
unlink_task(struct broker *b, struct btask *t)
{
    for (struct btask **pp = &b->tasks; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            b->ntasks--;
            return;
        }
    }
}

static bool
holds_lock(struct broker *b, const struct btask *t)
{
    return t->lock_gen && t->lock_gen == fc_amqp_generation(b->a) && fc_amqp_connected(b->a);
}

/* Acks every delivery of the task, drops its lock and forgets it. */
static void
release(struct broker *b, struct btask *t)
{
    for (size_t i = 0; i < t->nd; i++)
        fc_amqp_ack(b->a, t->d[i]);
    if (holds_lock(b, t))
        fc_amqp_unlock(b->a, t->lock);
    unlink_task(b, t);
    task_free(t);
}

/* Gives every delivery back to RabbitMQ (requeue), drops the lock, forgets the task. */
static void
give_back(struct broker *b, struct btask *t)
{
    for (size_t i = 0; i < t->nd; i++)
        fc_amqp_nack(b->a, t->d[i], true);
    if (holds_lock(b, t))
        fc_amqp_unlock(b->a, t->lock);
    unlink_task(b, t);
    task_free(t);
}

/* Outcomes are published asynchronously (seq set) and settled when confirmed. */
static fc_rc
publish_event_seq(struct broker *b, struct btask *t, enum fc_task_state state, json_t *progress,
                  uint64_t *seq);

static fc_rc
publish_event(struct broker *b, struct btask *t, enum fc_task_state state, json_t *progress)
{
    return publish_event_seq(b, t, state, progress, NULL);
}

static fc_rc
publish_event_seq(struct broker *b, struct btask *t, enum fc_task_state state, json_t *progress,
                  uint64_t *seq)
{
    struct fc_task *k = t->task;
    char ts[40];
    struct fc_task_event e = {.relocation_id = k->relocation_id,
                              .task_id = k->task_id,
                              .idempotency_key = k->idempotency_key,
                              .state = state,
                              .broker = b->cfg.broker_id,
                              .site = b->cfg.site,
                              .attempt = t->attempt ? t->attempt : 1,
                              .ts = fc_msg_now(ts, sizeof ts),
                              .progress = progress,
                              .result = state == FC_TS_DONE ? t->result : NULL};
    if (state == FC_TS_FAILED || state == FC_TS_CANCELLED || state == FC_TS_RETRYING) {
        e.has_error = true;
        e.error.code = t->err_code ? t->err_code : FC_E_INTERNAL;
        e.error.message = t->err_msg;
        e.error.stage = t->err_stage;
        e.error.stderr_tail = t->err_tail;
    }
    json_t *j = fc_event_to_json(&e);
    json_decref(progress);
    char *body = j ? fc_msg_dump(j) : NULL;
    json_decref(j);
    if (!body)
        return FC_ERR(FC_E_NOMEM, "event: cannot encode");
    char rk[FC_AMQP_NAME_MAX], mid[FC_AMQP_NAME_MAX];
    bool final = fc_task_state_final(state);
    if (!fc_amqp_rk_task_event(rk, sizeof rk, k->relocation_id, k->task_id,
                               fc_task_state_name(state))) {
        free(body);
        return FC_ERR(FC_E_INVALID, "event: routing key too long");
    }
    if (final)
        snprintf(mid, sizeof mid, "%s", k->idempotency_key);
    else
        snprintf(mid, sizeof mid, "%s:%s:%" PRIu32 ":%" PRIu64, k->idempotency_key,
                 fc_task_state_name(state), t->attempt, ++b->seq);
    struct fc_amqp_header h[] = {{FC_AMQP_H_IDEMPOTENCY_KEY, k->idempotency_key}};
    const char *cc[] = {t->cc};
    struct fc_amqp_msg m = {.exchange = FC_AMQP_X_EVENTS, .routing_key = rk, .body = body,
                            .len = strlen(body), .message_id = mid, .headers = h, .nheaders = 1,
                            .cc = final ? cc : NULL, .ncc = final ? 1 : 0};
    fc_rc rc = seq ? fc_amqp_publish_async(b->a, &m, seq)
               : final ? fc_amqp_publish(b->a, &m) : fc_amqp_publish_nowait(b->a, &m);
    free(body);
    return rc;
}

static void
set_error(struct btask *t, fc_rc code, const char *msg, int stage, const char *tail)
{
    t->err_code = code;
    snprintf(t->err_msg, sizeof t->err_msg, "%s", msg ? msg : fc_rc_name(code));
    utf8_sanitize(t->err_msg);
    t->err_stage = stage;
    free(t->err_tail);
    t->err_tail = tail && *tail ? strdup(tail) : NULL;
    if (t->err_tail)
        utf8_sanitize(t->err_tail);
}

static void
decide(struct broker *b, struct btask *t, enum fc_task_state outcome)
{
    t->outcome = outcome;
    t->st = BT_FINISHING;
    t->due_ns = 0;
    try_finish(b, t);
}

static void
on_event(void *arg, struct fc_viaduct *v, size_t stage, const json_t *ev)
{
    struct btask *t = arg;
    struct broker *b = t->b;
    (void)v;
    if (strcmp(json_string_value(json_object_get(ev, "event")), "progress") != 0)
        return;
    uint64_t now = broker_now_ns();
    if (now - t->last_progress_ns < (uint64_t)b->cfg.progress_ms * 1000000u)
        return;
    t->last_progress_ns = now;
    json_t *p = json_pack("{s:i,s:s}", "stage", (int)stage, "kind", t->task->stages[stage].kind);
    static const char *const keys[] = {"done", "total", "bytes_in", "bytes_out", "zero_bytes"};
    for (size_t i = 0; p && i < sizeof keys / sizeof keys[0]; i++) {
        json_t *x = json_object_get(ev, keys[i]);
        if (json_is_integer(x) && json_integer_value(x) >= 0)
            json_object_set(p, keys[i], x);
    }
    /* what the units are and, for a wait on a cloud, its state (docs/migrator-contract.md) */
    static const char *const texts[] = {"unit", "state", "waiting_for"};
    for (size_t i = 0; p && i < sizeof texts / sizeof texts[0]; i++) {
        json_t *x = json_object_get(ev, texts[i]);
        if (json_is_string(x) && json_string_length(x) <= 300)
            json_object_set(p, texts[i], x);
    }
    if (p && !json_object_get(p, "done"))
        json_object_set_new(p, "done", json_integer(0));
    if (p && fc_amqp_connected(b->a))
        publish_event(b, t, FC_TS_PROGRESS, p);
    else
        json_decref(p);
}

static void
start_attempt(struct broker *b, struct btask *t)
{
    t->attempt++;
    t->st = BT_RUNNING;
    t->last_progress_ns = 0;
    fc_log_context(t->task->relocation_id, t->task->task_id, NULL);
    fc_log(FC_INFO, FC_MSG("task started"), FC_U64("attempt", t->attempt),
           FC_U64("stages", t->task->nstages));
    publish_event(b, t, FC_TS_STARTED, NULL);
    struct fc_viaduct_stage_spec st[FC_VIADUCT_MAX_STAGES];
    for (size_t i = 0; i < t->task->nstages && i < FC_VIADUCT_MAX_STAGES; i++) {
        st[i].kind = t->task->stages[i].kind;
        st[i].args = (const char *const *)t->task->stages[i].args;
        st[i].nargs = t->task->stages[i].nargs;
    }
    struct fc_viaduct_opts o = {.migrator_dir = b->migdir,
                                .stages = st,
                                .nstages = t->task->nstages,
                                .task_json = t->json,
                                .task_len = t->len,
                                .in_fd = -1,
                                .out_fd = -1,
                                .log_fd = 2,
                                .timeout_ms = t->task->timeout_s * 1000u,
                                .grace_ms = b->cfg.kill_grace_ms,
                                .env = b->env,
                                .on_event = on_event,
                                .arg = t};
    fc_rc rc = fc_viaduct_start(&o, &t->v);
    fc_log_context(NULL, NULL, NULL);
    if (rc != FC_OK) {
        /* a missing migrator or no resources: not fixed by running again here */
        set_error(t, rc, fc_error_msg(), -1, NULL);
        t->dead_letter = true;
        decide(b, t, FC_TS_FAILED);
    }
}

/* Called when the viaduct has finished. */
static void
attempt_done(struct broker *b, struct btask *t)
{
    int stage = -1;
    fc_rc rc = fc_viaduct_outcome(t->v, &stage);
    char msg[FC_TEXT_MAX];
    snprintf(msg, sizeof msg, "%s", rc == FC_OK ? "" : fc_error_msg());
    fc_log_context(t->task->relocation_id, t->task->task_id, NULL);
    if (t->requeue) {
        fc_log(FC_INFO, FC_MSG("task given back (shutdown)"));
        fc_log_context(NULL, NULL, NULL);
        give_back(b, t);
        return;
    }
    if (rc == FC_OK) {
        json_t *stages = json_array();
        for (size_t i = 0; i < fc_viaduct_nstages(t->v); i++) {
            const struct fc_viaduct_stage *s = fc_viaduct_stage(t->v, i);
            json_array_append_new(
                stages, json_pack("{s:s,s:i,s:O,s:I,s:I}", "kind", s->kind, "exit", 0, "result",
                                  s->result, "bytes_in", (json_int_t)s->bytes_in, "bytes_out",
                                  (json_int_t)s->bytes_out));
        }
        json_decref(t->result);
        t->result = json_pack("{s:o}", "stages", stages);
        fc_log(FC_INFO, FC_MSG("task done"), FC_U64("attempt", t->attempt),
               FC_U64("ms", fc_viaduct_elapsed_ms(t->v)));
        fc_viaduct_free(t->v);
        t->v = NULL;
        fc_log_context(NULL, NULL, NULL);
        decide(b, t, FC_TS_DONE);
        return;
    }
    const char *tail = stage >= 0 ? fc_viaduct_stage(t->v, (size_t)stage)->tail : NULL;
    set_error(t, rc, msg, stage, tail);
    fc_viaduct_free(t->v);
    t->v = NULL;
    if (rc == FC_E_CANCELLED && t->cancel) {
        fc_log(FC_INFO, FC_MSG("task cancelled"), FC_STR("error", msg));
        fc_log_context(NULL, NULL, NULL);
        decide(b, t, FC_TS_CANCELLED);
        return;
    }
    if (fc_rc_transient(rc) && t->attempt < t->task->max_attempts) {
        uint64_t delay = (uint64_t)b->cfg.retry_base_ms << (t->attempt - 1 < 20 ? t->attempt - 1 : 20);
        if (delay > b->cfg.retry_max_ms)
            delay = b->cfg.retry_max_ms;
        fc_log(FC_WARN, FC_MSG("task attempt failed; retrying"), FC_STR("error", msg),
               FC_U64("attempt", t->attempt), FC_U64("retry_ms", delay));
        if (fc_amqp_connected(b->a))
            publish_event(b, t, FC_TS_RETRYING, NULL);
        t->st = BT_BACKOFF;
        t->due_ns = broker_now_ns() + delay * 1000000u;
        fc_log_context(NULL, NULL, NULL);
        return;
    }
    fc_log(FC_ERROR, FC_MSG("task failed"), FC_STR("error", msg), FC_U64("attempt", t->attempt));
    fc_log_context(NULL, NULL, NULL);
    t->dead_letter = true;
    decide(b, t, FC_TS_FAILED);
}

/* Copies the task to fluid.dead with the reason (the original is acked after the outcome). */
static fc_rc
dead_letter_copy(struct broker *b, struct btask *t)
{
    const struct fc_amqp_delivery *d = t->d[0];
    char reason[1001];
    snprintf(reason, sizeof reason, "%s after %" PRIu32 " attempt(s): %.900s", fc_rc_name(t->err_code),
             t->attempt, t->err_msg);
    for (char *p = reason; *p; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
    struct fc_amqp_header h[] = {{FC_AMQP_H_REASON, reason},
                                 {FC_AMQP_H_ROUTING_KEY, d->routing_key},
                                 {FC_AMQP_H_EXCHANGE, d->exchange},
                                 {FC_AMQP_H_IDEMPOTENCY_KEY, t->task->idempotency_key}};
    struct fc_amqp_msg m = {.exchange = FC_AMQP_X_DEAD, .routing_key = d->routing_key,
                            .body = t->json, .len = t->len, .message_id = d->message_id,
                            .headers = h, .nheaders = 4};
    return fc_amqp_publish(b->a, &m);
}

/* Publishes the decided outcome once RabbitMQ is reachable and the lock is ours. */
static void
try_finish(struct broker *b, struct btask *t)
{
    if (!fc_amqp_connected(b->a))
        return;
    if (!holds_lock(b, t)) {
        /* reconnected since the lock was taken: take it again, and look at the record, which
         * may already hold our outcome (published just before the connection dropped) */
        uint32_t n = 0;
        fc_rc rc = fc_amqp_lock_record(b->a, t->lock, t->record, FC_AMQP_X_EVENTS, t->cc,
                                       b->cfg.retention_s * 1000u, &n);
        if (rc == FC_E_CONFLICT) {
            fc_log(FC_WARN, FC_MSG("another broker took over the task; waiting for it"),
                   FC_STR("task", t->task->task_id));
            t->st = BT_DEFERRED;
            t->attempt = 0;
            t->dead_letter = t->dead_lettered = false;
            t->due_ns = broker_now_ns() + 1000000000u;
            return;
        }
        if (rc != FC_OK)
            return;
        t->lock_gen = fc_amqp_generation(b->a);
        if (n > 0) {
            release(b, t);
            return;
        }
    }
    if (t->dead_letter && !t->dead_lettered) {
        if (dead_letter_copy(b, t) != FC_OK)
            return;
        t->dead_lettered = true;
    }
    uint64_t seq = 0;
    fc_rc rc = publish_event_seq(b, t, t->outcome, NULL, &seq);
    if (rc != FC_OK) {
        fc_log(FC_WARN, FC_MSG("outcome not published yet; will retry"),
               FC_STR("task", t->task->task_id), FC_STR("error", fc_error_msg()));
        t->due_ns = broker_now_ns() + 500000000u;
        return;
    }
    /* acked (and unlocked) once RabbitMQ confirms it: see check_confirm */
    t->st = BT_CONFIRMING;
    t->out_seq = seq;
    t->out_gen = fc_amqp_generation(b->a);
    t->due_ns = 0;
}

/* BT_CONFIRMING: settle on the confirm; publish again if it was refused or lost (after a
 * reconnect, try_finish first looks at the record, where a lost confirm's outcome shows). */
static void
check_confirm(struct broker *b, struct btask *t)
{
    int r = fc_amqp_confirmed(b->a, t->out_gen, t->out_seq);
    if (r == 0)
        return;
    if (r > 0) {
        release(b, t);
        return;
    }
    fc_log(FC_WARN, FC_MSG("outcome not confirmed; checking the record, then publishing again"),
           FC_STR("task", t->task->task_id));
    t->st = BT_FINISHING;
    t->due_ns = 0;
    /* a nack may still have reached some queues, a lost confirm may have landed: look at
     * the record (re-taking the lock) before publishing again */
    t->lock_gen = 0;
    if (fc_amqp_connected(b->a))
        try_finish(b, t);
}

static bool
is_cancelled(struct broker *b, const struct fc_task *k)
{
    uint64_t now = broker_now_ns();
    for (size_t i = 0; i < b->ncancels; i++) {
        struct cancelled *c = &b->cancels[i];
        if (c->until_ns > now && !strcmp(c->relocation_id, k->relocation_id) &&
            (!c->task_id || !strcmp(c->task_id, k->task_id)))
            return true;
    }
    return false;
}

/* Asks for the lock and the outcome record (answered later: acquired()). */
static void
acquire(struct broker *b, struct btask *t)
{
    fc_rc rc = fc_amqp_lock_record_start(b->a, t->lock, t->record, FC_AMQP_X_EVENTS, t->cc,
                                         b->cfg.retention_s * 1000u, &t->ticket);
    if (rc != FC_OK) {
        fc_log(FC_WARN, FC_MSG("cannot ask for the task's lock; giving it back"),
               FC_STR("task", t->task->task_id), FC_STR("error", fc_error_msg()));
        give_back(b, t);
        return;
    }
    t->st = BT_ACQUIRING;
    t->due_ns = 0;
}

/* The answer: run (or settle) the task. */
static void
acquired(struct broker *b, struct btask *t)
{
    uint32_t n = 0;
    fc_rc rc = fc_amqp_lock_record_poll(b->a, t->ticket, &n);
    if (rc == FC_E_TIMEOUT)
        return; /* not answered yet */
    t->ticket = 0;
    if (rc == FC_E_CONFLICT) {
        if (!t->deferred_logged)
            fc_log(FC_INFO, FC_MSG("task held by another broker; deferred"),
                   FC_STR("task", t->task->task_id));
        t->deferred_logged = true;
        t->st = BT_DEFERRED;
        t->due_ns = broker_now_ns() + 1000000000u;
        return;
    }
    if (rc == FC_E_NET && fc_amqp_connected(b->a)) {
        t->st = BT_DEFERRED; /* dropped behind another request's failure: ask again */
        t->due_ns = 0;
        return;
    }
    if (rc != FC_OK) {
        fc_log(FC_WARN, FC_MSG("cannot take the task's lock or record; giving it back"),
               FC_STR("task", t->task->task_id), FC_STR("error", fc_error_msg()));
        give_back(b, t);
        return;
    }
    t->lock_gen = fc_amqp_generation(b->a);
    if (n > 0) {
        fc_log(FC_INFO, FC_MSG("outcome already published; acking the redelivery"),
               FC_STR("task", t->task->task_id));
        release(b, t);
        return;
    }
    if (t->cancel || is_cancelled(b, t->task)) {
        t->cancel = true;
        set_error(t, FC_E_CANCELLED, "cancelled before it started", -1, NULL);
        decide(b, t, FC_TS_CANCELLED);
        return;
    }
    if (b->stopping && broker_now_ns() >= b->stop_deadline_ns) {
        give_back(b, t); /* stopping: it runs elsewhere */
        return;
    }
    start_attempt(b, t);
}

static bool
add_delivery(struct btask *t, struct fc_amqp_delivery *d)
{
    struct fc_amqp_delivery **n = realloc(t->d, (t->nd + 1) * sizeof *n);
    if (!n)
        return false;
    t->d = n;
    t->d[t->nd++] = d;
    return true;
}

void
task_delivery(struct broker *b, struct fc_amqp_delivery *d)
{
    struct fc_task *k = NULL;
    if (fc_task_parse(d->body, d->len, &k) != FC_OK) {
        char reason[1024];
        snprintf(reason, sizeof reason, "task: %s", fc_error_msg());
        fc_log(FC_WARN, FC_MSG("invalid task dead-lettered"), FC_STR("reason", reason));
        fc_amqp_dead_letter(b->a, d, reason);
        fc_amqp_delivery_free(d);
        return;
    }
    struct btask *t = find_key(b, k->idempotency_key);
    if (t) {
        /* a redelivery (after a reconnect) or a duplicate publish: one outcome settles all */
        fc_task_free(k);
        if (!add_delivery(t, d)) {
            fc_amqp_nack(b->a, d, true);
            fc_amqp_delivery_free(d);
        }
        return;
    }
    t = calloc(1, sizeof *t);
    if (!t || !(t->json = malloc(d->len + 1)) || !add_delivery(t, d)) {
        if (t)
            free(t->json);
        free(t);
        fc_task_free(k);
        fc_amqp_nack(b->a, d, true);
        fc_amqp_delivery_free(d);
        return;
    }
    t->b = b;
    t->task = k;
    memcpy(t->json, d->body, d->len);
    t->json[d->len] = '\0';
    t->len = d->len;
    t->err_stage = -1;
    uint8_t h[32];
    char hex[65];
    struct fc_sha256 s;
    fc_sha256_init(&s);
    fc_sha256_update(&s, k->idempotency_key, strlen(k->idempotency_key));
    fc_sha256_final(&s, h);
    fc_sha256_free(&s);
    fc_hex(h, 16, hex);
    snprintf(t->lock, sizeof t->lock, FC_AMQP_Q_LOCK_PREFIX "%.32s", hex);
    snprintf(t->record, sizeof t->record, FC_AMQP_Q_OUTCOME_PREFIX "%.32s", hex);
    snprintf(t->cc, sizeof t->cc, FC_AMQP_RK_OUTCOME_PREFIX "%.32s", hex);
    t->next = b->tasks;
    b->tasks = t;
    b->ntasks++;
    t->st = BT_DEFERRED;
    acquire(b, t);
}

void
task_cancel_message(struct broker *b, struct fc_amqp_delivery *d)
{
    struct fc_cancel *c = NULL;
    if (fc_cancel_parse(d->body, d->len, &c) != FC_OK) {
        char reason[1024];
        snprintf(reason, sizeof reason, "cancel: %s", fc_error_msg());
        fc_amqp_dead_letter(b->a, d, reason);
        fc_amqp_delivery_free(d);
        return;
    }
    /* remember it for an hour: a task of this relocation delivered later is cancelled too */
    struct cancelled *n = realloc(b->cancels, (b->ncancels + 1) * sizeof *n);
    if (n) {
        b->cancels = n;
        n[b->ncancels].relocation_id = strdup(c->relocation_id);
        n[b->ncancels].task_id = c->task_id ? strdup(c->task_id) : NULL;
        n[b->ncancels].until_ns = broker_now_ns() + 3600ull * 1000000000u;
        b->ncancels++;
    }
    for (struct btask *t = b->tasks, *next; t; t = next) {
        next = t->next;
        if (strcmp(t->task->relocation_id, c->relocation_id) ||
            (c->task_id && strcmp(t->task->task_id, c->task_id)))
            continue;
        t->cancel = true;
        fc_log(FC_INFO, FC_MSG("cancel requested"), FC_STR("task", t->task->task_id),
               FC_STR("reason", c->reason ? c->reason : ""));
        if (t->st == BT_RUNNING && t->v) {
            fc_viaduct_cancel(t->v, FC_E_CANCELLED);
        } else if (t->st == BT_BACKOFF) {
            set_error(t, FC_E_CANCELLED, c->reason && *c->reason ? c->reason : "cancelled", -1,
                      NULL);
            decide(b, t, FC_TS_CANCELLED);
        }
    }
    fc_cancel_free(c);
    fc_amqp_ack(b->a, d);
    fc_amqp_delivery_free(d);
}

void
task_resume_message(struct broker *b, struct fc_amqp_delivery *d)
{
    FC_AUTO(resume) struct fc_resume *r = NULL;
    if (fc_resume_parse(d->body, d->len, &r) != FC_OK) {
        char reason[1024];
        snprintf(reason, sizeof reason, "resume: %s", fc_error_msg());
        fc_amqp_dead_letter(b->a, d, reason);
        fc_amqp_delivery_free(d);
        return;
    }
    size_t kept = 0, dropped = 0;
    for (size_t i = 0; i < b->ncancels; i++) {
        if (!strcmp(b->cancels[i].relocation_id, r->relocation_id)) {
            free(b->cancels[i].relocation_id);
            free(b->cancels[i].task_id);
            dropped++;
        } else {
            b->cancels[kept++] = b->cancels[i];
        }
    }
    b->ncancels = kept;
    fc_log(FC_INFO, FC_MSG("relocation resumed"), FC_STR("relocation", r->relocation_id),
           FC_U64("cancels_forgotten", dropped));
    fc_amqp_ack(b->a, d);
    fc_amqp_delivery_free(d);
}

size_t
tasks_pollfds(struct broker *b, struct pollfd *pfd, size_t cap, struct btask **owner)
{
    size_t n = 0;
    for (struct btask *t = b->tasks; t; t = t->next) {
        if (t->st != BT_RUNNING || !t->v)
            continue;
        size_t k = fc_viaduct_pollfds(t->v, pfd + n, cap - n);
        for (size_t i = 0; i < k; i++)
            owner[n + i] = t;
        n += k;
    }
    return n;
}

void
tasks_step(struct broker *b, struct pollfd *pfd, size_t n, struct btask **owner)
{
    for (struct btask *t = b->tasks, *next; t; t = next) {
        next = t->next;
        if (t->st != BT_RUNNING || !t->v)
            continue;
        size_t first = n, cnt = 0;
        for (size_t i = 0; i < n; i++) {
            if (owner[i] == t) {
                if (first == n)
                    first = i;
                cnt++;
            }
        }
        fc_viaduct_step(t->v, first < n ? pfd + first : pfd, cnt);
        if (fc_viaduct_finished(t->v))
            attempt_done(b, t);
    }
}

int
tasks_timers(struct broker *b)
{
    uint64_t now = broker_now_ns(), next = 0;
    for (struct btask *t = b->tasks, *nx; t; t = nx) {
        nx = t->next;
        if (t->st == BT_RUNNING) {
            int ms = t->v ? fc_viaduct_next_ms(t->v) : -1;
            if (ms >= 0 && (!next || now + (uint64_t)ms * 1000000u < next))
                next = now + (uint64_t)ms * 1000000u;
            continue;
        }
        if (t->due_ns > now) {
            if (!next || t->due_ns < next)
                next = t->due_ns;
            continue;
        }
        if (!fc_amqp_connected(b->a))
            continue;
        switch (t->st) {
        case BT_BACKOFF:
            if (t->cancel) {
                decide(b, t, FC_TS_CANCELLED);
            } else if (!holds_lock(b, t)) {
                t->lock_gen = 0;
                acquire(b, t); /* after a reconnect: lock and record again */
            } else {
                start_attempt(b, t);
            }
            break;
        case BT_DEFERRED:
            acquire(b, t);
            break;
        case BT_ACQUIRING:
            acquired(b, t);
            break;
        case BT_FINISHING:
            try_finish(b, t);
            break;
        case BT_CONFIRMING:
            check_confirm(b, t);
            break;
        default:
            break;
        }
    }
    if (!next)
        return -1;
    return next <= now ? 0 : (int)((next - now) / 1000000u + 1);
}

void
tasks_reconnected(struct broker *b)
{
    for (struct btask *t = b->tasks, *next; t; t = next) {
        next = t->next;
        if (t->st != BT_RUNNING)
            continue; /* the timers re-take locks before acting */
        fc_rc rc = fc_amqp_lock(b->a, t->lock);
        if (rc == FC_OK) {
            t->lock_gen = fc_amqp_generation(b->a);
        } else if (rc == FC_E_CONFLICT && t->v) {
            /* RabbitMQ gave the task to another broker while we were away: it runs there */
            fc_log(FC_WARN, FC_MSG("task taken over by another broker; stopping our run"),
                   FC_STR("task", t->task->task_id));
            t->requeue = true;
            fc_viaduct_cancel(t->v, FC_E_CANCELLED);
        }
    }
}

void
tasks_requeue_all(struct broker *b)
{
    for (struct btask *t = b->tasks, *next; t; t = next) {
        next = t->next;
        if (t->st == BT_RUNNING && t->v) {
            t->requeue = true;
            fc_viaduct_cancel(t->v, FC_E_CANCELLED);
        } else if (t->st == BT_BACKOFF || t->st == BT_DEFERRED) {
            give_back(b, t);
        }
    }
}

unsigned
tasks_running(const struct broker *b)
{
    unsigned n = 0;
    for (const struct btask *t = b->tasks; t; t = t->next)
        n += t->st == BT_RUNNING;
    return n;
}
