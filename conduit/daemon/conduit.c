/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-conduit's service loop (see conduit.h and docs/fluid-conduit.md): every delivery is
 * applied to the store in one transaction and acked after the commit; what it causes to be
 * published waits in the store's outbox and leaves it only after RabbitMQ confirmed it. */
#include "conduit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fluid/amqp.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/msg.h"
#include "planner.h"
#include "reports.h"
#include "rpc.h"
#include "store.h"

struct conduit {
    const struct fc_conduit_opts *o;
    struct fc_amqp *a;
    struct fc_store *store;
    struct fc_planner *planner; /* plans requests that came without a plan (planner.c), and
                                 * runs overviews and cleanups */
    struct fc_reports rep;      /* reports.c */
    char **sites; /* site queues declared on this connection generation */
    size_t nsites;
    uint64_t sites_gen;
};

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Declares fluid.tasks.<site> once per connection so that a task waits in a durable queue
 * even before a broker of its site starts. */
static fc_rc
ensure_site(struct conduit *c, const char *site)
{
    if (c->sites_gen != fc_amqp_generation(c->a)) {
        for (size_t i = 0; i < c->nsites; i++)
            free(c->sites[i]);
        c->nsites = 0;
        c->sites_gen = fc_amqp_generation(c->a);
    }
    for (size_t i = 0; i < c->nsites; i++)
        if (strcmp(c->sites[i], site) == 0)
            return FC_OK;
    fc_rc rc = fc_amqp_declare_site(c->a, site);
    if (rc != FC_OK)
        return rc;
    char **n = realloc(c->sites, (c->nsites + 1) * sizeof *n);
    if (!n || !(n[c->nsites] = strdup(site))) {
        if (n)
            c->sites = n;
        return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    c->sites = n;
    c->nsites++;
    return FC_OK;
}

/* Publishes the outbox in order, in batches: up to 64 messages without waiting, then their
 * confirms, then one transaction deletes them. A failure leaves the batch in the outbox, to
 * be published again on the next turn (same message ids: consumers deduplicate). */
static fc_rc
flush_outbox(struct conduit *c)
{
    for (;;) {
        int64_t last = 0;
        size_t n = 0;
        fc_rc rc = FC_OK;
        while (n < 64 && rc == FC_OK) {
            struct fc_outbox_msg m;
            bool found;
            if ((rc = fc_store_outbox_after(c->store, last, &m, &found)) != FC_OK || !found)
                break;
            bool task = strcmp(m.exchange, FC_AMQP_X_TASKS) == 0;
            if (task) {
                char site[FC_SITE_MAX + 1];
                const char *dot = strchr(m.routing_key, '.');
                snprintf(site, sizeof site, "%.*s", dot ? (int)(dot - m.routing_key) : 0,
                         m.routing_key);
                rc = ensure_site(c, site);
            }
            struct fc_amqp_msg am = {.exchange = m.exchange, .routing_key = m.routing_key,
                                     .body = m.body, .len = strlen(m.body),
                                     .message_id = m.message_id, .mandatory = task};
            if (rc == FC_OK)
                rc = fc_amqp_publish_nowait(c->a, &am);
            if (rc == FC_OK) {
                last = m.seq;
                n++;
            } else {
                fc_log(FC_WARN, FC_MSG("publish failed, will retry"),
                       FC_STR("routing_key", m.routing_key), FC_STR("error", fc_error_msg()));
            }
            fc_outbox_msg_clear(&m);
        }
        if (n > 0) {
            fc_rc cw = fc_amqp_confirm_wait(c->a);
            if (cw == FC_OK)
                cw = fc_store_outbox_delete_upto(c->store, last);
            if (cw != FC_OK) {
                fc_log(FC_WARN, FC_MSG("outbox batch not confirmed, will retry"),
                       FC_U64("messages", n), FC_STR("error", fc_error_msg()));
                return cw;
            }
        }
        if (rc != FC_OK || n < 64)
            return rc;
    }
}

/* The relocation_id of a rejected body, when one can be read, else "". */
static void
guess_rid(const struct fc_amqp_delivery *d, char *out, size_t cap)
{
    out[0] = '\0';
    json_error_t e;
    json_auto_t *j = json_loadb(d->body, d->len, 0, &e);
    const char *rid = json_string_value(json_object_get(j, "relocation_id"));
    if (rid && fc_id_valid(rid))
        snprintf(out, cap, "%s", rid);
}

/* request.rejected event, then the body to fluid.dead with the reason (which acks it). */
static fc_rc
reject(struct conduit *c, const struct fc_amqp_delivery *d, const char *path,
       const char *reason)
{
    char rid[FC_ID_MAX + 1];
    guess_rid(d, rid, sizeof rid);
    fc_log(FC_WARN, FC_MSG("request rejected"), FC_STR("relocation", rid), FC_STR("path", path),
           FC_STR("reason", reason));
    struct fc_rejected rj = {.relocation_id = rid, .path = (char *)path, .reason = (char *)reason};
    json_auto_t *j = fc_rejected_to_json(&rj);
    char *body = j ? fc_msg_dump(j) : NULL;
    if (!body)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    struct fc_amqp_msg m = {.exchange = FC_AMQP_X_EVENTS,
                            .routing_key = FC_AMQP_RK_REQUEST_REJECTED, .body = body,
                            .len = strlen(body)};
    fc_rc rc = fc_amqp_publish(c->a, &m);
    free(body);
    if (rc == FC_OK)
        rc = fc_amqp_dead_letter(c->a, d, reason);
    return rc;
}

static void
settle_error(struct conduit *c, const struct fc_amqp_delivery *d, const char *what)
{
    /* The store or the connection failed: give the message back and slow down. */
    fc_log(FC_ERROR, FC_MSG(what), FC_STR("error", fc_error_msg()));
    fc_amqp_nack(c->a, d, true);
    sleep_ms(500);
}

/* Records a request (its plan explicit or just made, with the planner's report; or, when
 * plan_error is set, the planning failure) and settles d. True when it was recorded now
 * (not a duplicate). */
static bool
record_request(struct conduit *c, const struct fc_amqp_delivery *d, const struct fc_request *r,
               const char *plan_error, const json_t *report)
{
    bool dup = false;
    const char *cpath = NULL;
    fc_rc rc = plan_error ? fc_store_add_failed(c->store, r, plan_error, &dup, &cpath)
                          : fc_store_add_planned(c->store, r, report, &dup, &cpath);
    if (rc == FC_E_CONFLICT || rc == FC_E_UNSUPPORTED) {
        char reason[sizeof fc_error_last()->msg];
        snprintf(reason, sizeof reason, "%s", fc_error_msg());
        if (reject(c, d, cpath ? cpath : (rc == FC_E_UNSUPPORTED ? "plan" : ""), reason) != FC_OK)
            settle_error(c, d, "could not reject a request");
        return false;
    }
    if (rc != FC_OK) {
        settle_error(c, d, "could not record a request");
        return false;
    }
    if (dup)
        fc_log(FC_INFO, FC_MSG("request already recorded: nothing to do"),
               FC_STR("relocation", r->relocation_id), FC_STR("key", r->idempotency_key));
    else if (!plan_error)
        fc_log(FC_INFO, FC_MSG("relocation accepted"), FC_STR("relocation", r->relocation_id),
               FC_U64("tasks", r->plan->ntasks));
    fc_amqp_ack(c->a, d);
    return !dup;
}

/* Returns true when d was handed to the planner (which then owns it until
 * drain_planner() settles it). */
static bool
on_request(struct conduit *c, struct fc_amqp_delivery *d)
{
    FC_AUTO(request) struct fc_request *r = NULL;
    fc_rc rc = fc_request_parse(d->body, d->len, &r);
    if (rc != FC_OK) {
        char reason[sizeof fc_error_last()->msg], path[512];
        snprintf(reason, sizeof reason, "%s", fc_error_msg());
        snprintf(path, sizeof path, "%s", fc_msg_error_path());
        if (reject(c, d, path, reason) != FC_OK)
            settle_error(c, d, "could not reject a request");
        return false;
    }
    if (r->plan) {
        record_request(c, d, r, NULL, NULL);
        return false;
    }
    /* Planned once per relocation: a request already recorded (or being planned) is not
     * planned again; the plan is recorded with the acceptance, in one transaction. */
    bool known = false;
    if ((rc = fc_store_has_key(c->store, r->idempotency_key, &known)) != FC_OK) {
        settle_error(c, d, "could not look a request up");
        return false;
    }
    if (known || fc_planner_busy_with(c->planner, r->idempotency_key)) {
        fc_log(FC_INFO, FC_MSG("request already recorded: nothing to do"),
               FC_STR("relocation", r->relocation_id), FC_STR("key", r->idempotency_key));
        fc_amqp_ack(c->a, d);
        return false;
    }
    fc_log(FC_INFO, FC_MSG("planning a relocation"), FC_STR("relocation", r->relocation_id),
           FC_STR("source", r->source_cloud), FC_STR("target", r->target_cloud));
    struct fc_request *owned = r;
    r = NULL;
    if (fc_planner_submit(c->planner, owned, d) != FC_OK) {
        settle_error(c, d, "could not queue a request for planning");
        return false;
    }
    return true;
}

/* Records what the planner finished and settles those deliveries. */
static void
drain_planner(struct conduit *c)
{
    struct fc_planner_job *j;
    while ((j = fc_planner_take(c->planner))) {
        if (j->kind != FC_JOB_PLAN) {
            fc_reports_finish(&c->rep, j);
            continue;
        }
        struct fc_amqp_delivery *d = j->tag;
        /* with the planner's report: which task works for which server or volume
         * (fluidctl's live view); it also marks the relocation as planned here (overview,
         * cleanup on failure) */
        record_request(c, d, j->req, j->rc == FC_OK ? NULL : j->reason, j->report);
        fc_amqp_delivery_free(d);
        fc_planner_job_free(j);
    }
}

static void
free_tag(enum fc_job_kind kind, void *tag)
{
    if (kind == FC_JOB_PLAN)
        fc_amqp_delivery_free(tag);
    else
        fc_reports_free_tag(tag);
}

static void
on_event(struct conduit *c, const struct fc_amqp_delivery *d)
{
    FC_AUTO(task_event) struct fc_task_event *e = NULL;
    fc_rc rc = fc_event_parse(d->body, d->len, &e);
    if (rc != FC_OK) {
        fc_log(FC_WARN, FC_MSG("invalid task event"), FC_STR("routing_key", d->routing_key),
               FC_STR("error", fc_error_msg()));
        char reason[sizeof fc_error_last()->msg];
        snprintf(reason, sizeof reason, "%s", fc_error_msg());
        if (fc_amqp_dead_letter(c->a, d, reason) != FC_OK)
            settle_error(c, d, "could not dead-letter an event");
        return;
    }
    bool known = false;
    if ((rc = fc_store_apply_event(c->store, e, &known)) != FC_OK) {
        settle_error(c, d, "could not record an event");
        return;
    }
    fc_amqp_ack(c->a, d);
}

static void
on_status(struct conduit *c, const struct fc_amqp_delivery *d)
{
    FC_AUTO(status_req) struct fc_status_req *q = NULL;
    if (fc_status_req_parse(d->body, d->len, &q) != FC_OK) {
        char reason[sizeof fc_error_last()->msg];
        snprintf(reason, sizeof reason, "%s", fc_error_msg());
        fc_amqp_dead_letter(c->a, d, reason);
        return;
    }
    FC_AUTO(status) struct fc_status *st = calloc(1, sizeof *st);
    if (!st || fc_store_status(c->store, q->relocation_id, st) != FC_OK) {
        settle_error(c, d, "could not read a status");
        return;
    }
    st->relocation_id = strdup(q->relocation_id);
    st->correlation_id = strdup(q->correlation_id);
    json_auto_t *j = fc_status_to_json(st);
    char *body = j ? fc_msg_dump(j) : NULL;
    if (body) {
        struct fc_amqp_msg m = {.exchange = "", .routing_key = q->reply_to, .body = body,
                                .len = strlen(body), .transient = true};
        if (fc_amqp_publish(c->a, &m) != FC_OK)
            fc_log(FC_WARN, FC_MSG("status reply not delivered"), FC_STR("error", fc_error_msg()));
    }
    free(body);
    fc_amqp_ack(c->a, d);
}

static void
on_rpc(struct conduit *c, const struct fc_amqp_delivery *d)
{
    json_auto_t *j = NULL;
    const char *schema = NULL;
    if (fc_msg_load(d->body, d->len, &j) == FC_OK)
        schema = json_string_value(json_object_get(j, "schema"));
    if (schema && strcmp(schema, FC_SCHEMA_STATUS_REQ) == 0) {
        on_status(c, d);
        return;
    }
    if (schema && strcmp(schema, FC_CONDUIT_SCHEMA_CREQ) == 0) {
        fc_reports_rpc(&c->rep, d);
        return;
    }
    FC_AUTO(cancel) struct fc_cancel *x = NULL;
    if (fc_cancel_parse(d->body, d->len, &x) != FC_OK) {
        char reason[sizeof fc_error_last()->msg];
        snprintf(reason, sizeof reason, "%s (want %s or %s)", fc_error_msg(),
                 FC_SCHEMA_STATUS_REQ, FC_SCHEMA_CANCEL);
        fc_amqp_dead_letter(c->a, d, reason);
        return;
    }
    bool known;
    if (fc_store_cancel(c->store, x->relocation_id, x->reason, &known) != FC_OK) {
        settle_error(c, d, "could not record a cancel");
        return;
    }
    fc_log(FC_INFO, FC_MSG(known ? "cancel requested" : "cancel for an unknown relocation"),
           FC_STR("relocation", x->relocation_id));
    fc_amqp_ack(c->a, d);
}

static fc_rc
setup(struct conduit *c)
{
    fc_rc rc;
    static const char *const keys[] = FC_CONDUIT_BK_EVENTS;
    if ((rc = fc_amqp_declare_topology(c->a)) != FC_OK ||
        (rc = fc_amqp_declare_record(c->a, FC_CONDUIT_Q_RPC, FC_AMQP_X_CONTROL, FC_CONDUIT_RK_RPC,
                                     0, NULL)) != FC_OK)
        return rc;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if ((rc = fc_amqp_declare_record(c->a, FC_CONDUIT_Q_EVENTS, FC_AMQP_X_EVENTS, keys[i], 0,
                                         NULL)) != FC_OK)
            return rc;
    if ((rc = fc_amqp_consume(c->a, FC_CONDUIT_Q_EVENTS, 64)) != FC_OK ||
        (rc = fc_amqp_consume(c->a, FC_CONDUIT_Q_RPC, 8)) != FC_OK ||
        (rc = fc_amqp_consume(c->a, FC_AMQP_Q_REQUESTS,
                              (uint16_t)(c->o->prefetch ? c->o->prefetch : 16))) != FC_OK)
        return rc;
    return FC_OK;
}

int
fc_conduit_run(const struct fc_conduit_opts *o, volatile sig_atomic_t *stop)
{
    struct conduit c = {.o = o};
    char path[4096];
    if (mkdir(o->state_dir, 0750) != 0 && errno != EEXIST) {
        fc_log(FC_ERROR, FC_MSG("cannot create the state folder"), FC_STR("path", o->state_dir),
               FC_STR("error", strerror(errno)));
        return 1;
    }
    snprintf(path, sizeof path, "%s/conduit.db", o->state_dir);
    if (fc_store_open(path, o->max_parallel, &c.store) != FC_OK) {
        fc_log(FC_ERROR, FC_MSG("cannot open the store"), FC_STR("error", fc_error_msg()));
        return 1;
    }
    struct fc_amqp_config cfg = {.url = o->amqp_url, .name = "fluid-conduit", .reconnect = true};
    if (fc_amqp_new(&cfg, &c.a) != FC_OK) {
        fc_log(FC_ERROR, FC_MSG("bad AMQP URL"), FC_STR("error", fc_error_msg()));
        fc_store_close(c.store);
        return 2;
    }
    unsigned backoff = 200;
    while (!*stop) {
        if (fc_amqp_connect(c.a) == FC_OK && setup(&c) == FC_OK)
            break;
        fc_log(FC_WARN, FC_MSG("RabbitMQ not ready, retrying"), FC_STR("where", fc_amqp_where(c.a)),
               FC_STR("error", fc_error_msg()));
        sleep_ms(backoff);
        backoff = backoff < 5000 ? backoff * 2 : 5000;
    }
    if (!*stop && fc_planner_start(o->clouds_file, &c.planner) != FC_OK) {
        fc_log(FC_ERROR, FC_MSG("cannot start the planner"), FC_STR("error", fc_error_msg()));
        fc_amqp_close(c.a);
        fc_store_close(c.store);
        return 1;
    }
    if (!*stop) {
        fc_log(FC_INFO, FC_MSG("fluid-conduit ready"), FC_STR("amqp", fc_amqp_where(c.a)),
               FC_STR("store", path), FC_U64("max_parallel", o->max_parallel));
        if (fc_store_advance_all(c.store) != FC_OK)
            fc_log(FC_ERROR, FC_MSG("resume failed"), FC_STR("error", fc_error_msg()));
    }
    c.rep = (struct fc_reports){.store = c.store, .a = c.a, .planner = c.planner};
    time_t last_due = 0;
    while (!*stop) {
        drain_planner(&c);
        /* overviews and cleanups due: looked for at most once a second */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec != last_due) {
            last_due = now.tv_sec;
            fc_reports_schedule(&c.rep);
        }
        flush_outbox(&c);
        struct fc_amqp_delivery *d = NULL;
        fc_rc rc = fc_amqp_wait(c.a, 500, &d);
        if (rc != FC_OK) {
            fc_log(FC_WARN, FC_MSG("AMQP wait failed"), FC_STR("error", fc_error_msg()));
            sleep_ms(200);
            continue;
        }
        if (!d)
            continue;
        bool kept = false;
        if (d->queue && strcmp(d->queue, FC_AMQP_Q_REQUESTS) == 0)
            kept = on_request(&c, d);
        else if (d->queue && strcmp(d->queue, FC_CONDUIT_Q_EVENTS) == 0)
            on_event(&c, d);
        else if (d->queue && strcmp(d->queue, FC_CONDUIT_Q_RPC) == 0)
            on_rpc(&c, d);
        else
            fc_amqp_nack(c.a, d, true);
        if (!kept)
            fc_amqp_delivery_free(d);
    }
    fc_log(FC_INFO, FC_MSG("fluid-conduit stopping"));
    /* a request being planned is not acked: RabbitMQ gives it back on the next start */
    fc_planner_stop(c.planner, free_tag);
    fc_amqp_close(c.a);
    fc_store_close(c.store);
    for (size_t i = 0; i < c.nsites; i++)
        free(c.sites[i]);
    free(c.sites);
    return 0;
}
