/* SPDX-License-Identifier: Apache-2.0 */
/* The conduit's messages: relocation state changes (fluid.relocation/1), rejected requests
 * (fluid.rejected/1) and the status RPC (fluid.status-request/1, fluid.status/1). */
#include "msg_internal.h"

#include <stdlib.h>
#include <string.h>

#define TRY(x)                                                                                 \
    do {                                                                                       \
        fc_rc rc_ = (x);                                                                       \
        if (rc_ != FC_OK)                                                                      \
            return rc_;                                                                        \
    } while (0)

static fc_rc
nomem(void)
{
    return FC_ERR(FC_E_NOMEM, "out of memory");
}

static const char *const rs_names[FC_RS__COUNT] = {
    [FC_RS_ACCEPTED] = "accepted", [FC_RS_RUNNING] = "running",   [FC_RS_DONE] = "done",
    [FC_RS_FAILED] = "failed",     [FC_RS_CANCELLED] = "cancelled",
};

const char *
fc_reloc_state_name(enum fc_reloc_state s)
{
    return (unsigned)s < FC_RS__COUNT ? rs_names[s] : "unknown";
}

bool
fc_reloc_state_from_name(const char *name, enum fc_reloc_state *out)
{
    for (int i = 0; name && i < FC_RS__COUNT; i++)
        if (strcmp(name, rs_names[i]) == 0) {
            *out = (enum fc_reloc_state)i;
            return true;
        }
    return false;
}

bool
fc_reloc_state_final(enum fc_reloc_state s)
{
    return s == FC_RS_DONE || s == FC_RS_FAILED || s == FC_RS_CANCELLED;
}

static fc_rc
j_reloc_state(struct fc_jp *p, const json_t *j, const char *key, enum fc_reloc_state *out)
{
    char *s = NULL;
    TRY(j_str(p, j, key, true, 32, J_LINE, false, NULL, &s));
    bool ok = fc_reloc_state_from_name(s, out);
    fc_rc rc = ok ? FC_OK
                  : jp_err_at(p, key, FC_E_INVALID,
                              "unknown state \"%.32s\" (accepted, running, done, failed, "
                              "cancelled)", s);
    free(s);
    return rc;
}

/* ---- fluid.relocation/1 ---- */

void
fc_reloc_event_free(struct fc_reloc_event *e)
{
    if (!e)
        return;
    free(e->relocation_id);
    free(e->ts);
    free(e->error);
    free(e);
}

static fc_rc
counts(struct fc_jp *p, const json_t *j, struct fc_task_counts *c)
{
    static const char *const keys[] = {"total", "pending", "running", "done", "failed",
                                       "cancelled", NULL};
    uint32_t *dst[] = {&c->total, &c->pending, &c->running, &c->done, &c->failed, &c->cancelled};
    TRY(j_want_object(p, j));
    TRY(j_only(p, j, keys));
    for (size_t i = 0; keys[i]; i++) {
        uint64_t u;
        TRY(j_uint(p, j, keys[i], true, 0, FC_TASKS_MAX, 0, &u));
        *dst[i] = (uint32_t)u;
    }
    return FC_OK;
}

fc_rc
fc_reloc_event_from_json(const json_t *j, struct fc_reloc_event **out)
{
    static const char *const keys[] = {"schema", "relocation_id", "state", "ts", "tasks",
                                       "error", NULL};
    *out = NULL;
    struct fc_jp p = {0};
    jp_set_error_path("");
    FC_AUTO(reloc_event) struct fc_reloc_event *e = calloc(1, sizeof *e);
    if (!e)
        return nomem();
    TRY(j_want_object(&p, j));
    TRY(j_schema(&p, j, FC_SCHEMA_RELOCATION, false));
    TRY(j_only(&p, j, keys));
    TRY(j_str(&p, j, "relocation_id", true, FC_ID_MAX, J_ID, false, NULL, &e->relocation_id));
    TRY(j_reloc_state(&p, j, "state", &e->state));
    TRY(j_str(&p, j, "ts", true, 40, J_TS, false, NULL, &e->ts));
    const json_t *t = json_object_get(j, "tasks");
    if (!t)
        return jp_err_at(&p, "tasks", FC_E_INVALID, "missing required field");
    size_t old = jp_key(&p, "tasks");
    fc_rc rc = counts(&p, t, &e->tasks);
    jp_pop(&p, old);
    TRY(rc);
    TRY(j_str(&p, j, "error", false, FC_TEXT_MAX, J_ANY, true, NULL, &e->error));
    *out = FC_STEAL(&e);
    return FC_OK;
}

fc_rc
fc_reloc_event_parse(const char *buf, size_t len, struct fc_reloc_event **out)
{
    *out = NULL;
    json_auto_t *j = NULL;
    TRY(fc_msg_load(buf, len, &j));
    return fc_reloc_event_from_json(j, out);
}

json_t *
fc_reloc_event_to_json(const struct fc_reloc_event *e)
{
    char now[40];
    const struct fc_task_counts *c = &e->tasks;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I}}", "schema",
                          FC_SCHEMA_RELOCATION, "relocation_id", e->relocation_id, "state",
                          fc_reloc_state_name(e->state), "ts",
                          e->ts ? e->ts : fc_msg_now(now, sizeof now), "tasks", "total",
                          (json_int_t)c->total, "pending", (json_int_t)c->pending, "running",
                          (json_int_t)c->running, "done", (json_int_t)c->done, "failed",
                          (json_int_t)c->failed, "cancelled", (json_int_t)c->cancelled);
    if (o)
        j_set_opt_str(o, "error", e->error);
    return o;
}

/* ---- fluid.rejected/1 ---- */

void
fc_rejected_free(struct fc_rejected *r)
{
    if (!r)
        return;
    free(r->relocation_id);
    free(r->path);
    free(r->reason);
    free(r->ts);
    free(r);
}

fc_rc
fc_rejected_from_json(const json_t *j, struct fc_rejected **out)
{
    static const char *const keys[] = {"schema", "relocation_id", "path", "reason", "ts", NULL};
    *out = NULL;
    struct fc_jp p = {0};
    jp_set_error_path("");
    FC_AUTO(rejected) struct fc_rejected *r = calloc(1, sizeof *r);
    if (!r)
        return nomem();
    TRY(j_want_object(&p, j));
    TRY(j_schema(&p, j, FC_SCHEMA_REJECTED, false));
    TRY(j_only(&p, j, keys));
    TRY(j_str(&p, j, "relocation_id", true, FC_ID_MAX, J_ANY, true, NULL, &r->relocation_id));
    if (*r->relocation_id && !fc_id_valid(r->relocation_id))
        return jp_err_at(&p, "relocation_id", FC_E_INVALID, "invalid id");
    TRY(j_str(&p, j, "path", true, 512, J_ANY, true, NULL, &r->path));
    TRY(j_str(&p, j, "reason", true, FC_TEXT_MAX, J_ANY, false, NULL, &r->reason));
    TRY(j_str(&p, j, "ts", true, 40, J_TS, false, NULL, &r->ts));
    *out = FC_STEAL(&r);
    return FC_OK;
}

fc_rc
fc_rejected_parse(const char *buf, size_t len, struct fc_rejected **out)
{
    *out = NULL;
    json_auto_t *j = NULL;
    TRY(fc_msg_load(buf, len, &j));
    return fc_rejected_from_json(j, out);
}

json_t *
fc_rejected_to_json(const struct fc_rejected *r)
{
    char now[40];
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "schema", FC_SCHEMA_REJECTED,
                     "relocation_id", r->relocation_id ? r->relocation_id : "", "path",
                     r->path ? r->path : "", "reason", r->reason, "ts",
                     r->ts ? r->ts : fc_msg_now(now, sizeof now));
}

/* ---- fluid.status-request/1 ---- */

void
fc_status_req_free(struct fc_status_req *r)
{
    if (!r)
        return;
    free(r->relocation_id);
    free(r->correlation_id);
    free(r->reply_to);
    free(r);
}

fc_rc
fc_status_req_parse(const char *buf, size_t len, struct fc_status_req **out)
{
    static const char *const keys[] = {"schema", "relocation_id", "correlation_id", "reply_to",
                                       NULL};
    *out = NULL;
    json_auto_t *j = NULL;
    TRY(fc_msg_load(buf, len, &j));
    struct fc_jp p = {0};
    FC_AUTO(status_req) struct fc_status_req *r = calloc(1, sizeof *r);
    if (!r)
        return nomem();
    TRY(j_schema(&p, j, FC_SCHEMA_STATUS_REQ, false));
    TRY(j_only(&p, j, keys));
    TRY(j_str(&p, j, "relocation_id", true, FC_ID_MAX, J_ID, false, NULL, &r->relocation_id));
    TRY(j_str(&p, j, "correlation_id", true, FC_ID_MAX, J_ID, false, NULL, &r->correlation_id));
    TRY(j_str(&p, j, "reply_to", true, 255, J_LINE, false, NULL, &r->reply_to));
    *out = FC_STEAL(&r);
    return FC_OK;
}

json_t *
fc_status_req_to_json(const struct fc_status_req *r)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "schema", FC_SCHEMA_STATUS_REQ, "relocation_id",
                     r->relocation_id, "correlation_id", r->correlation_id, "reply_to",
                     r->reply_to);
}

/* ---- fluid.status/1 ---- */

void
fc_status_free(struct fc_status *s)
{
    if (!s)
        return;
    free(s->relocation_id);
    free(s->correlation_id);
    free(s->created);
    free(s->updated);
    free(s->error);
    for (size_t i = 0; s->tasks && i < s->ntasks; i++) {
        free(s->tasks[i].task_id);
        free(s->tasks[i].kind);
        free(s->tasks[i].site);
        free(s->tasks[i].state);
        free(s->tasks[i].error);
    }
    free(s->tasks);
    free(s);
}

static fc_rc
status_task(struct fc_jp *p, const json_t *j, struct fc_status_task *t)
{
    static const char *const keys[] = {"task_id", "kind", "site", "state", "attempt", "error",
                                       NULL};
    TRY(j_want_object(p, j));
    TRY(j_only(p, j, keys));
    TRY(j_str(p, j, "task_id", true, FC_ID_MAX, J_ID, false, NULL, &t->task_id));
    TRY(j_str(p, j, "kind", true, FC_KIND_MAX, J_KIND, false, NULL, &t->kind));
    TRY(j_str(p, j, "site", true, FC_SITE_MAX, J_SITE, false, NULL, &t->site));
    TRY(j_str(p, j, "state", true, 32, J_LINE, false, NULL, &t->state));
    enum fc_task_state ts;
    if (strcmp(t->state, "pending") != 0 && strcmp(t->state, "queued") != 0 &&
        !fc_task_state_from_name(t->state, &ts))
        return jp_err_at(p, "state", FC_E_INVALID, "unknown task state \"%.32s\"", t->state);
    uint64_t u;
    TRY(j_uint(p, j, "attempt", true, 0, FC_ATTEMPTS_MAX, 0, &u));
    t->attempt = (uint32_t)u;
    TRY(j_str(p, j, "error", false, FC_TEXT_MAX, J_ANY, true, NULL, &t->error));
    return FC_OK;
}

fc_rc
fc_status_parse(const char *buf, size_t len, struct fc_status **out)
{
    static const char *const keys[] = {"schema", "relocation_id", "correlation_id", "found",
                                       "state", "created", "updated", "error", "tasks", NULL};
    *out = NULL;
    json_auto_t *j = NULL;
    TRY(fc_msg_load(buf, len, &j));
    struct fc_jp p = {0};
    FC_AUTO(status) struct fc_status *s = calloc(1, sizeof *s);
    if (!s)
        return nomem();
    TRY(j_schema(&p, j, FC_SCHEMA_STATUS, false));
    TRY(j_only(&p, j, keys));
    TRY(j_str(&p, j, "relocation_id", true, FC_ID_MAX, J_ID, false, NULL, &s->relocation_id));
    TRY(j_str(&p, j, "correlation_id", true, FC_ID_MAX, J_ID, false, NULL, &s->correlation_id));
    const json_t *f = json_object_get(j, "found");
    if (!json_is_boolean(f))
        return jp_err_at(&p, "found", FC_E_INVALID, "missing or not a boolean");
    s->found = json_is_true(f);
    TRY(j_str(&p, j, "error", false, FC_TEXT_MAX, J_ANY, true, NULL, &s->error));
    if (!s->found) {
        *out = FC_STEAL(&s);
        return FC_OK;
    }
    TRY(j_reloc_state(&p, j, "state", &s->state));
    TRY(j_str(&p, j, "created", true, 40, J_TS, false, NULL, &s->created));
    TRY(j_str(&p, j, "updated", true, 40, J_TS, false, NULL, &s->updated));
    const json_t *t = json_object_get(j, "tasks");
    if (!json_is_array(t))
        return jp_err_at(&p, "tasks", FC_E_INVALID, "missing or not an array");
    size_t n = json_array_size(t);
    if (n > FC_TASKS_MAX)
        return jp_err_at(&p, "tasks", FC_E_INVALID, "more than %d tasks", FC_TASKS_MAX);
    if (!(s->tasks = calloc(n ? n : 1, sizeof *s->tasks)))
        return nomem();
    size_t old = jp_key(&p, "tasks");
    for (size_t i = 0; i < n; i++) {
        size_t o2 = jp_idx(&p, i);
        s->ntasks = i + 1;
        fc_rc rc = status_task(&p, json_array_get(t, i), &s->tasks[i]);
        jp_pop(&p, o2);
        if (rc != FC_OK)
            return rc;
    }
    jp_pop(&p, old);
    *out = FC_STEAL(&s);
    return FC_OK;
}

json_t *
fc_status_to_json(const struct fc_status *s)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:b}", "schema", FC_SCHEMA_STATUS, "relocation_id",
                          s->relocation_id, "correlation_id", s->correlation_id, "found",
                          s->found);
    if (!o)
        return NULL;
    j_set_opt_str(o, "error", s->error);
    if (!s->found)
        return o;
    char now[40];
    json_object_set_new(o, "state", json_string(fc_reloc_state_name(s->state)));
    json_object_set_new(o, "created", json_string(s->created ? s->created : fc_msg_now(now, 40)));
    json_object_set_new(o, "updated", json_string(s->updated ? s->updated : fc_msg_now(now, 40)));
    json_t *tasks = json_array();
    for (size_t i = 0; i < s->ntasks; i++) {
        const struct fc_status_task *t = &s->tasks[i];
        json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:I}", "task_id", t->task_id, "kind",
                              t->kind, "site", t->site, "state", t->state, "attempt",
                              (json_int_t)t->attempt);
        if (e)
            j_set_opt_str(e, "error", t->error);
        json_array_append_new(tasks, e);
    }
    json_object_set_new(o, "tasks", tasks);
    return o;
}
