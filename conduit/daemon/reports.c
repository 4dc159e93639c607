/* SPDX-License-Identifier: Apache-2.0 */
/* Overviews, cleanups and the conduit RPC, conduit side (reports.h). */
#include "reports.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/cloud/topology.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "rpc.h"
#include "subject.h"

/* Who waits for a cleanup job's end (fluidctl cleanup). */
struct waiter {
    char reply_to[256];
    char correlation_id[FC_ID_MAX + 1];
};

void
fc_reports_free_tag(void *tag)
{
    free(tag);
}

void
fc_reports_schedule(struct fc_reports *r)
{
    struct fc_report_due *due = NULL;
    size_t n = 0;
    if (fc_store_reports_due(r->store, &due, &n) != FC_OK) {
        fc_log(FC_WARN, FC_MSG("cannot read the reports due"), FC_STR("error", fc_error_msg()));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char key[FC_ID_MAX + 32];
        snprintf(key, sizeof key, "%s/%s", due[i].kind, due[i].relocation_id);
        if (fc_planner_busy_with(r->planner, key))
            continue;
        json_t *req = NULL;
        if (fc_store_request_get(r->store, due[i].relocation_id, &req, NULL) != FC_OK)
            continue;
        bool overview = strcmp(due[i].kind, "overview") == 0;
        fc_log(FC_INFO, FC_MSG(overview ? "overview queued" : "cleanup on failure queued"),
               FC_STR("relocation", due[i].relocation_id));
        fc_planner_submit_report(r->planner, overview ? FC_JOB_OVERVIEW : FC_JOB_CLEANUP, req,
                                 NULL);
    }
    free(due);
}

static void
reply(struct fc_reports *r, const char *to, json_t *body)
{
    char *text = fc_msg_dump(body);
    json_decref(body);
    if (!text)
        return;
    struct fc_amqp_msg m = {.exchange = "", .routing_key = to, .body = text,
                            .len = strlen(text), .transient = true};
    if (fc_amqp_publish(r->a, &m) != FC_OK)
        fc_log(FC_WARN, FC_MSG("conduit reply not delivered"), FC_STR("error", fc_error_msg()));
    free(text);
}

/* The info reply's body (without schema, ids). */
static json_t *
info(struct fc_reports *r, const char *rid)
{
    struct fc_status st = {0};
    json_t *out = json_object();
    if (fc_store_status(r->store, rid, &st) != FC_OK || !st.found) {
        json_object_set_new(out, "found", json_false());
        free(st.created);
        free(st.updated);
        free(st.error);
        return out;
    }
    json_t *req = NULL, *plan = NULL, *ov = NULL, *cl = NULL;
    fc_store_request_get(r->store, rid, &req, NULL);
    fc_store_report_get(r->store, rid, "plan", &plan);
    fc_store_report_get(r->store, rid, "overview", &ov);
    fc_store_report_get(r->store, rid, "cleanup", &cl);
    json_t *tasks = json_array(), *ptasks = json_object_get(json_object_get(req, "plan"), "tasks");
    for (size_t i = 0; i < st.ntasks; i++) {
        const struct fc_status_task *t = &st.tasks[i];
        char step[64], subj[300];
        fc_task_step(t->task_id, step, sizeof step);
        fc_task_subject(json_object_get(plan, "creates"),
                        fc_json_find(ptasks, "task_id", t->task_id), subj, sizeof subj);
        json_array_append_new(tasks, json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:s?}", "task_id",
                                               t->task_id, "step", step, "subject", subj, "kind",
                                               t->kind, "state", t->state, "attempt",
                                               (int)t->attempt, "error", t->error));
    }
    json_object_set_new(out, "found", json_true());
    json_object_set_new(out, "state", json_string(fc_reloc_state_name(st.state)));
    if (st.error)
        json_object_set_new(out, "error", json_string(st.error));
    json_object_set_new(out, "options", json_incref(json_object_get(req, "options")));
    json_object_set_new(out, "tasks", tasks);
    json_object_set_new(out, "plan_report", plan ? plan : json_null());
    json_object_set_new(out, "overview", ov ? ov : json_null());
    json_object_set_new(out, "cleanup", cl ? cl : json_null());
    json_decref(req);
    free(st.created);
    free(st.updated);
    free(st.error);
    for (size_t i = 0; i < st.ntasks; i++) {
        free(st.tasks[i].task_id);
        free(st.tasks[i].kind);
        free(st.tasks[i].site);
        free(st.tasks[i].state);
        free(st.tasks[i].error);
    }
    free(st.tasks);
    return out;
}

static json_t *
envelope(json_t *body, const char *rid, const char *corr, const char *action)
{
    json_object_set_new(body, "schema", json_string(FC_CONDUIT_SCHEMA_CREPLY));
    json_object_set_new(body, "relocation_id", json_string(rid));
    json_object_set_new(body, "correlation_id", json_string(corr));
    json_object_set_new(body, "action", json_string(action));
    return body;
}

void
fc_reports_finish(struct fc_reports *r, struct fc_planner_job *j)
{
    const char *rid = json_string_value(json_object_get(j->request, "relocation_id"));
    const char *kind = j->kind == FC_JOB_OVERVIEW ? "overview" : "cleanup";
    json_t *rep = j->report ? json_incref(j->report) : json_pack("{s:s?}", "relocation_id", rid);
    if (j->rc != FC_OK)
        json_object_set_new(rep, "error", json_string(j->reason));
    if (j->rc != FC_OK)
        fc_log(FC_WARN, FC_MSG(j->kind == FC_JOB_OVERVIEW ? "overview failed" : "cleanup failed"),
               FC_STR("relocation", rid ? rid : ""), FC_STR("error", j->reason));
    if (rid && fc_store_report_put(r->store, rid, kind, rep, true) != FC_OK)
        fc_log(FC_ERROR, FC_MSG("cannot record a report"), FC_STR("relocation", rid),
               FC_STR("kind", kind), FC_STR("error", fc_error_msg()));
    struct waiter *w = j->tag;
    if (w && rid)
        reply(r, w->reply_to, envelope(info(r, rid), rid, w->correlation_id, "cleanup"));
    json_decref(rep);
    free(w);
    j->tag = NULL;
    fc_planner_job_free(j);
}

/* fluidctl resume: refused while a cleanup of the relocation is queued or running (it
 * would delete what the resumed tasks make). */
static void
resume(struct fc_reports *r, const struct fc_creq *q)
{
    char key[FC_ID_MAX + 32];
    snprintf(key, sizeof key, "cleanup/%s", q->relocation_id);
    struct fc_resume_result res = {0};
    fc_rc rc = FC_OK;
    if (fc_planner_busy_with(r->planner, key))
        res.refused = "a cleanup of the relocation is running: resume it when the cleanup ended";
    else
        rc = fc_store_resume(r->store, q->relocation_id, &res);
    json_t *body;
    if (rc == FC_E_NOTFOUND) {
        body = json_pack("{s:b}", "found", 0);
    } else if (rc != FC_OK) {
        fc_log(FC_ERROR, FC_MSG("cannot resume"), FC_STR("relocation", q->relocation_id),
               FC_STR("error", fc_error_msg()));
        body = info(r, q->relocation_id);
        json_object_set_new(body, "refused", json_string(fc_error_msg()));
    } else if (res.replan) {
        /* forgotten until the request arrives again: not found in the store for now */
        body = json_pack("{s:b, s:s}", "found", 1, "state", "accepted");
    } else {
        body = info(r, q->relocation_id);
    }
    if (rc == FC_OK && res.refused)
        json_object_set_new(body, "refused", json_string(res.refused));
    else if (rc == FC_OK)
        json_object_set_new(body, "resumed",
                            json_pack("{s:I, s:b, s:b}", "tasks_reset", (json_int_t)res.reset,
                                      "full", res.full, "replan", res.replan));
    reply(r, q->reply_to, envelope(body, q->relocation_id, q->correlation_id, "resume"));
}

void
fc_reports_rpc(struct fc_reports *r, const struct fc_amqp_delivery *d)
{
    struct fc_creq q;
    if (fc_creq_parse(d->body, d->len, &q) != FC_OK) {
        char reason[sizeof fc_error_last()->msg];
        snprintf(reason, sizeof reason, "%s", fc_error_msg());
        fc_amqp_dead_letter(r->a, d, reason);
        return;
    }
    if (strcmp(q.action, "cleanup") == 0) {
        json_t *req = NULL;
        enum fc_reloc_state state = FC_RS_ACCEPTED;
        fc_rc rc = fc_store_request_get(r->store, q.relocation_id, &req, &state);
        const char *refuse = rc == FC_E_NOTFOUND ? "unknown relocation"
                             : rc != FC_OK        ? "the store could not be read"
                             : !fc_reloc_state_final(state)
                                 ? "the relocation is still running: cancel it first"
                                 : NULL;
        struct waiter *w = refuse ? NULL : calloc(1, sizeof *w);
        if (!refuse && !w)
            refuse = "out of memory";
        if (refuse) {
            json_decref(req);
            json_t *body = rc == FC_E_NOTFOUND ? json_pack("{s:b}", "found", 0)
                                               : info(r, q.relocation_id);
            json_object_set_new(body, "refused", json_string(refuse));
            reply(r, q.reply_to, envelope(body, q.relocation_id, q.correlation_id, "cleanup"));
        } else {
            snprintf(w->reply_to, sizeof w->reply_to, "%s", q.reply_to);
            snprintf(w->correlation_id, sizeof w->correlation_id, "%s", q.correlation_id);
            fc_log(FC_INFO, FC_MSG("cleanup requested"), FC_STR("relocation", q.relocation_id));
            fc_planner_submit_report(r->planner, FC_JOB_CLEANUP, req, w);
        }
        fc_amqp_ack(r->a, d);
        return;
    }
    if (strcmp(q.action, "resume") == 0) {
        resume(r, &q);
        fc_amqp_ack(r->a, d);
        return;
    }
    reply(r, q.reply_to, envelope(info(r, q.relocation_id), q.relocation_id, q.correlation_id,
                                  "info"));
    fc_amqp_ack(r->a, d);
}
