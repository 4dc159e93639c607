/* SPDX-License-Identifier: Apache-2.0 */
/* The messages brokers exchange: Task (fluid.task/1), TaskEvent (fluid.event/1), Cancel
 * (fluid.cancel/1) and BrokerHeartbeat (fluid.broker/1): strict parsers and emitters. */
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

/* ---- Task ---- */

void
fc_task_free(struct fc_task *t)
{
    if (!t)
        return;
    free(t->relocation_id);
    free(t->task_id);
    free(t->idempotency_key);
    free(t->site);
    free(t->kind);
    for (size_t i = 0; t->stages && i < t->nstages; i++) {
        free(t->stages[i].kind);
        fc_strv_free(t->stages[i].args, t->stages[i].nargs);
    }
    free(t->stages);
    fc_strv_free(t->depends_on, t->ndepends);
    free(t);
}

static fc_rc
parse_stage(struct fc_jp *p, const json_t *j, struct fc_stage_spec *st)
{
    static const char *const keys[] = {"kind", "args", NULL};
    TRY(j_want_object(p, j));
    TRY(j_only(p, j, keys));
    TRY(j_str(p, j, "kind", true, FC_KIND_MAX, J_KIND, false, NULL, &st->kind));
    /* args may be empty strings ("" is a valid argv entry) */
    const json_t *a = json_object_get(j, "args");
    if (!a) {
        st->args = calloc(1, sizeof *st->args);
        return st->args ? FC_OK : nomem();
    }
    if (!json_is_array(a))
        return jp_err_at(p, "args", FC_E_INVALID, "expected an array, got %s", j_type_name(a));
    size_t n = json_array_size(a);
    if (n > FC_ARGS_MAX)
        return jp_err_at(p, "args", FC_E_INVALID, "%zu entries, more than the limit of %d", n,
                         FC_ARGS_MAX);
    if (!(st->args = calloc(n ? n : 1, sizeof *st->args)))
        return nomem();
    size_t old = jp_key(p, "args");
    for (size_t i = 0; i < n; i++) {
        size_t o2 = jp_idx(p, i);
        fc_rc rc = j_str_value(p, json_array_get(a, i), FC_ARG_MAX, J_ANY, true, &st->args[i]);
        jp_pop(p, o2);
        if (rc != FC_OK) {
            jp_pop(p, old);
            return rc;
        }
        st->nargs = i + 1;
    }
    jp_pop(p, old);
    return FC_OK;
}

static fc_rc
task_fill(struct fc_jp *p, const json_t *j, bool in_plan, const char *plan_rid,
          const char *key_base, struct fc_task *t)
{
    static const char *const keys[] = {"schema", "relocation_id", "task_id", "idempotency_key",
                                       "site", "kind", "stages", "timeout_s", "max_attempts",
                                       "depends_on", "framed", NULL};
    TRY(j_want_object(p, j));
    TRY(j_schema(p, j, FC_SCHEMA_TASK, in_plan));
    TRY(j_only(p, j, keys));
    TRY(j_str(p, j, "relocation_id", !in_plan, FC_ID_MAX, J_ID, false, NULL, &t->relocation_id));
    if (in_plan && t->relocation_id && plan_rid && strcmp(t->relocation_id, plan_rid) != 0)
        return jp_err_at(p, "relocation_id", FC_E_INVALID,
                         "\"%s\" differs from the plan's relocation_id \"%s\"",
                         t->relocation_id, plan_rid);
    if (!t->relocation_id && !(t->relocation_id = strdup(plan_rid ? plan_rid : "")))
        return nomem();
    TRY(j_str(p, j, "task_id", true, FC_ID_MAX, J_ID, false, NULL, &t->task_id));
    TRY(j_str(p, j, "idempotency_key", !in_plan, FC_KEY_MAX, J_KEY, false, NULL,
              &t->idempotency_key));
    if (!t->idempotency_key) {
        size_t n = strlen(key_base) + 1 + strlen(t->task_id) + 1;
        if (!(t->idempotency_key = malloc(n)))
            return nomem();
        snprintf(t->idempotency_key, n, "%s/%s", key_base, t->task_id);
        if (!fc_key_valid(t->idempotency_key))
            return jp_err_at(p, "task_id", FC_E_INVALID,
                             "derived idempotency_key \"%s/%s\" is invalid or too long",
                             key_base, t->task_id);
    }
    TRY(j_str(p, j, "site", false, FC_SITE_MAX, J_SITE, false, "default", &t->site));

    const json_t *stages = json_object_get(j, "stages");
    if (!stages)
        return jp_err_at(p, "stages", FC_E_INVALID, "missing required field");
    if (!json_is_array(stages))
        return jp_err_at(p, "stages", FC_E_INVALID, "expected an array, got %s",
                         j_type_name(stages));
    size_t n = json_array_size(stages);
    if (n < 1 || n > FC_STAGES_MAX)
        return jp_err_at(p, "stages", FC_E_INVALID, "%zu stages: want 1 to %d", n,
                         FC_STAGES_MAX);
    if (!(t->stages = calloc(n, sizeof *t->stages)))
        return nomem();
    t->nstages = n;
    size_t old = jp_key(p, "stages");
    for (size_t i = 0; i < n; i++) {
        size_t o2 = jp_idx(p, i);
        fc_rc rc = parse_stage(p, json_array_get(stages, i), &t->stages[i]);
        jp_pop(p, o2);
        if (rc != FC_OK) {
            jp_pop(p, old);
            return rc;
        }
    }
    jp_pop(p, old);
    TRY(j_str(p, j, "kind", false, FC_KIND_MAX, J_KIND, false, t->stages[0].kind, &t->kind));

    uint64_t u;
    TRY(j_uint(p, j, "timeout_s", false, 1, FC_TIMEOUT_MAX, 600, &u));
    t->timeout_s = (uint32_t)u;
    TRY(j_uint(p, j, "max_attempts", false, 1, FC_ATTEMPTS_MAX, 3, &u));
    t->max_attempts = (uint32_t)u;
    TRY(j_strv(p, j, "depends_on", false, FC_DEPS_MAX, FC_ID_MAX, J_ID, &t->depends_on,
               &t->ndepends));
    for (size_t i = 0; i < t->ndepends; i++) {
        if (strcmp(t->depends_on[i], t->task_id) == 0) {
            size_t o = jp_key(p, "depends_on");
            jp_idx(p, i);
            fc_rc rc = jp_err(p, FC_E_INVALID, "task \"%s\" depends on itself", t->task_id);
            jp_pop(p, o);
            return rc;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(t->depends_on[i], t->depends_on[k]) == 0) {
                size_t o = jp_key(p, "depends_on");
                jp_idx(p, i);
                fc_rc rc = jp_err(p, FC_E_INVALID, "\"%s\" is listed twice", t->depends_on[i]);
                jp_pop(p, o);
                return rc;
            }
        }
    }
    TRY(j_bool(p, j, "framed", true, &t->framed));
    return FC_OK;
}

fc_rc
fc_task_parse_at(struct fc_jp *p, const json_t *j, bool in_plan, const char *plan_rid,
                 const char *key_base, struct fc_task **out)
{
    *out = NULL;
    struct fc_task *t = calloc(1, sizeof *t);
    if (!t)
        return nomem();
    fc_rc rc = task_fill(p, j, in_plan, plan_rid, key_base, t);
    if (rc != FC_OK) {
        fc_task_free(t);
        return rc;
    }
    *out = t;
    return FC_OK;
}

fc_rc
fc_task_from_json(const json_t *j, struct fc_task **out)
{
    struct fc_jp p = {0};
    jp_set_error_path("");
    return fc_task_parse_at(&p, j, false, NULL, NULL, out);
}

fc_rc
fc_task_parse(const char *buf, size_t len, struct fc_task **out)
{
    *out = NULL;
    json_auto_t *j = NULL;
    TRY(fc_msg_load(buf, len, &j));
    return fc_task_from_json(j, out);
}

json_t *
fc_task_to_json(const struct fc_task *t)
{
    json_t *stages = json_array();
    for (size_t i = 0; stages && i < t->nstages; i++)
        json_array_append_new(stages, json_pack("{s:s, s:o}", "kind", t->stages[i].kind, "args",
                                                j_strv_json(t->stages[i].args,
                                                            t->stages[i].nargs)));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:o, s:b}", "schema",
                     FC_SCHEMA_TASK, "relocation_id", t->relocation_id, "task_id", t->task_id,
                     "idempotency_key", t->idempotency_key, "site", t->site ? t->site : "default",
                     "kind", t->kind ? t->kind : t->stages[0].kind, "stages", stages,
                     "timeout_s", (json_int_t)t->timeout_s, "max_attempts",
                     (json_int_t)t->max_attempts, "depends_on",
                     j_strv_json(t->depends_on, t->ndepends), "framed", t->framed);
}

struct fc_task *
fc_task_dup(const struct fc_task *t)
{
    json_auto_t *j = fc_task_to_json(t);
    struct fc_task *d = NULL;
    if (!j || fc_task_from_json(j, &d) != FC_OK)
        return NULL;
    return d;
}

/* ---- TaskEvent ---- */

static const char *const state_names[FC_TS__COUNT] = {
    [FC_TS_STARTED] = "started", [FC_TS_PROGRESS] = "progress", [FC_TS_RETRYING] = "retrying",
    [FC_TS_DONE] = "done",       [FC_TS_FAILED] = "failed",     [FC_TS_CANCELLED] = "cancelled",
};

const char *
fc_task_state_name(enum fc_task_state s)
{
    return (unsigned)s < FC_TS__COUNT ? state_names[s] : "unknown";
}

bool
fc_task_state_from_name(const char *name, enum fc_task_state *out)
{
    for (int i = 0; i < FC_TS__COUNT; i++)
        if (name && strcmp(name, state_names[i]) == 0) {
            *out = (enum fc_task_state)i;
            return true;
        }
    return false;
}

bool
fc_task_state_final(enum fc_task_state s)
{
    return s == FC_TS_DONE || s == FC_TS_FAILED || s == FC_TS_CANCELLED;
}

void
fc_event_free(struct fc_task_event *e)
{
    if (!e)
        return;
    free(e->relocation_id);
    free(e->task_id);
    free(e->idempotency_key);
    free(e->broker);
    free(e->site);
    free(e->ts);
    json_decref(e->progress);
    json_decref(e->result);
    free(e->error.message);
    free(e->error.stderr_tail);
    free(e);
}

static fc_rc
parse_progress(struct fc_jp *p, const json_t *v)
{
    TRY(j_free_form(p, v, true));
    uint64_t u;
    TRY(j_uint(p, v, "stage", true, 0, FC_STAGES_MAX - 1, 0, &u));
    TRY(j_uint(p, v, "done", true, 0, INT64_MAX, 0, &u));
    TRY(j_uint(p, v, "total", false, 0, INT64_MAX, 0, &u));
    TRY(j_str(p, v, "kind", false, FC_KIND_MAX, J_KIND, false, NULL, NULL));
    return FC_OK;
}

static fc_rc
parse_result(struct fc_jp *p, const json_t *v)
{
    static const char *const keys[] = {"stages", NULL};
    static const char *const skeys[] = {"kind", "exit", "result", "bytes_in", "bytes_out", NULL};
    TRY(j_want_object(p, v));
    TRY(j_only(p, v, keys));
    const json_t *st = json_object_get(v, "stages");
    if (!st)
        return jp_err_at(p, "stages", FC_E_INVALID, "missing required field");
    if (!json_is_array(st) || json_array_size(st) > FC_STAGES_MAX)
        return jp_err_at(p, "stages", FC_E_INVALID, "expected an array of at most %d stages",
                         FC_STAGES_MAX);
    size_t old = jp_key(p, "stages"), i;
    json_t *s;
    fc_rc rc = FC_OK;
    json_array_foreach(st, i, s) {
        size_t o2 = jp_idx(p, i);
        uint64_t u;
        if ((rc = j_want_object(p, s)) || (rc = j_only(p, s, skeys)) ||
            (rc = j_str(p, s, "kind", true, FC_KIND_MAX, J_KIND, false, NULL, NULL)) ||
            (rc = j_uint(p, s, "exit", true, 0, 255, 0, &u)) ||
            (rc = j_uint(p, s, "bytes_in", false, 0, INT64_MAX, 0, &u)) ||
            (rc = j_uint(p, s, "bytes_out", false, 0, INT64_MAX, 0, &u)))
            break;
        const json_t *r = json_object_get(s, "result");
        if (r) {
            size_t o3 = jp_key(p, "result");
            rc = j_free_form(p, r, true);
            jp_pop(p, o3);
            if (rc)
                break;
        }
        jp_pop(p, o2);
    }
    jp_pop(p, old);
    return rc;
}

static fc_rc
parse_task_error(struct fc_jp *p, const json_t *v, struct fc_task_error *e)
{
    static const char *const keys[] = {"code", "message", "stage", "stderr_tail", NULL};
    TRY(j_want_object(p, v));
    TRY(j_only(p, v, keys));
    char *code = NULL;
    TRY(j_str(p, v, "code", true, 64, J_LINE, false, NULL, &code));
    bool known = fc_rc_from_name(code, &e->code);
    if (!known) {
        fc_rc rc = jp_err_at(p, "code", FC_E_INVALID, "unknown error code \"%.64s\"", code);
        free(code);
        return rc;
    }
    free(code);
    TRY(j_str(p, v, "message", true, FC_TEXT_MAX, J_ANY, true, NULL, &e->message));
    const json_t *st = json_object_get(v, "stage");
    e->stage = -1;
    if (st) {
        int64_t x;
        size_t old = jp_key(p, "stage");
        fc_rc rc = j_int_value(p, st, 0, FC_STAGES_MAX - 1, &x);
        jp_pop(p, old);
        TRY(rc);
        e->stage = (int)x;
    }
    TRY(j_str(p, v, "stderr_tail", false, FC_TAIL_MAX, J_ANY, true, NULL, &e->stderr_tail));
    return FC_OK;
}

static fc_rc
event_fill(struct fc_jp *p, const json_t *j, struct fc_task_event *e)
{
    static const char *const keys[] = {"schema", "relocation_id", "task_id", "idempotency_key",
                                       "state", "broker", "site", "attempt", "ts", "progress",
                                       "result", "error", NULL};
    TRY(j_want_object(p, j));
    TRY(j_schema(p, j, FC_SCHEMA_EVENT, false));
    TRY(j_only(p, j, keys));
    TRY(j_str(p, j, "relocation_id", true, FC_ID_MAX, J_ID, false, NULL, &e->relocation_id));
    TRY(j_str(p, j, "task_id", true, FC_ID_MAX, J_ID, false, NULL, &e->task_id));
    TRY(j_str(p, j, "idempotency_key", true, FC_KEY_MAX, J_KEY, false, NULL,
              &e->idempotency_key));
    char *state = NULL;
    TRY(j_str(p, j, "state", true, 32, J_LINE, false, NULL, &state));
    bool ok = fc_task_state_from_name(state, &e->state);
    if (!ok) {
        fc_rc rc = jp_err_at(p, "state", FC_E_INVALID,
                             "unknown state \"%.32s\" (started, progress, retrying, done, "
                             "failed, cancelled)", state);
        free(state);
        return rc;
    }
    free(state);
    TRY(j_str(p, j, "broker", true, FC_ID_MAX, J_ID, false, NULL, &e->broker));
    TRY(j_str(p, j, "site", true, FC_SITE_MAX, J_SITE, false, NULL, &e->site));
    uint64_t u;
    TRY(j_uint(p, j, "attempt", true, 1, FC_ATTEMPTS_MAX, 1, &u));
    e->attempt = (uint32_t)u;
    TRY(j_str(p, j, "ts", true, 40, J_TS, false, NULL, &e->ts));

    const json_t *pr = json_object_get(j, "progress"), *res = json_object_get(j, "result"),
                 *err = json_object_get(j, "error");
    if (pr && e->state != FC_TS_PROGRESS)
        return jp_err_at(p, "progress", FC_E_INVALID, "only allowed with state \"progress\"");
    if (e->state == FC_TS_PROGRESS && !pr)
        return jp_err_at(p, "progress", FC_E_INVALID, "missing (required with state progress)");
    if (res && e->state != FC_TS_DONE)
        return jp_err_at(p, "result", FC_E_INVALID, "only allowed with state \"done\"");
    if (e->state == FC_TS_DONE && !res)
        return jp_err_at(p, "result", FC_E_INVALID, "missing (required with state done)");
    bool err_state = e->state == FC_TS_FAILED || e->state == FC_TS_CANCELLED ||
                     e->state == FC_TS_RETRYING;
    if (err && !err_state)
        return jp_err_at(p, "error", FC_E_INVALID,
                         "only allowed with state failed, cancelled or retrying");
    if (err_state && !err)
        return jp_err_at(p, "error", FC_E_INVALID, "missing (required with state %s)",
                         fc_task_state_name(e->state));
    size_t old;
    fc_rc rc = FC_OK;
    if (pr) {
        old = jp_key(p, "progress");
        rc = parse_progress(p, pr);
        jp_pop(p, old);
        TRY(rc);
        e->progress = json_deep_copy(pr);
    }
    if (res) {
        old = jp_key(p, "result");
        rc = parse_result(p, res);
        jp_pop(p, old);
        TRY(rc);
        e->result = json_deep_copy(res);
    }
    if (err) {
        old = jp_key(p, "error");
        rc = parse_task_error(p, err, &e->error);
        jp_pop(p, old);
        TRY(rc);
        e->has_error = true;
    }
    if ((pr && !e->progress) || (res && !e->result))
        return nomem();
    return FC_OK;
}

fc_rc
fc_event_from_json(const json_t *j, struct fc_task_event **out)
{
    *out = NULL;
    struct fc_jp p = {0};
    jp_set_error_path("");
    struct fc_task_event *e = calloc(1, sizeof *e);
    if (!e)
        return nomem();
    e->error.stage = -1;
    fc_rc rc = event_fill(&p, j, e);
    if (rc != FC_OK) {
        fc_event_free(e);
        return rc;
    }
    *out = e;
    return FC_OK;
}

fc_rc
fc_event_parse(const char *buf, size_t len, struct fc_task_event **out)
{
    *out = NULL;
    json_auto_t *j = NULL;
    TRY(fc_msg_load(buf, len, &j));
    return fc_event_from_json(j, out);
}

json_t *
fc_event_to_json(const struct fc_task_event *e)
{
    char now[40];
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "schema",
                          FC_SCHEMA_EVENT, "relocation_id", e->relocation_id, "task_id",
                          e->task_id, "idempotency_key", e->idempotency_key, "state",
                          fc_task_state_name(e->state), "broker", e->broker, "site", e->site,
                          "attempt", (json_int_t)(e->attempt ? e->attempt : 1), "ts",
                          e->ts ? e->ts : fc_msg_now(now, sizeof now));
    if (!o)
        return NULL;
    if (e->progress)
        json_object_set(o, "progress", e->progress);
    if (e->result)
        json_object_set(o, "result", e->result);
    if (e->has_error) {
        json_t *err = json_pack("{s:s, s:s}", "code", fc_rc_name(e->error.code), "message",
                                e->error.message ? e->error.message : "");
        if (err && e->error.stage >= 0)
            json_object_set_new(err, "stage", json_integer(e->error.stage));
        if (err)
            j_set_opt_str(err, "stderr_tail", e->error.stderr_tail);
        json_object_set_new(o, "error", err);
    }
    return o;
}

/* ---- Cancel ---- */

void
fc_cancel_free(struct fc_cancel *c)
{
    if (!c)
        return;
    free(c->relocation_id);
    free(c->task_id);
    free(c->reason);
    free(c);
}

fc_rc
fc_cancel_from_json(const json_t *j, struct fc_cancel **out)
{
    static const char *const keys[] = {"schema", "relocation_id", "task_id", "reason", NULL};
    *out = NULL;
    struct fc_jp p = {0};
    jp_set_error_path("");
    FC_AUTO(cancel) struct fc_cancel *c = calloc(1, sizeof *c);
    if (!c)
        return nomem();
    TRY(j_want_object(&p, j));
    TRY(j_schema(&p, j, FC_SCHEMA_CANCEL, false));
    TRY(j_only(&p, j, keys));
    TRY(j_str(&p, j, "relocation_id", true, FC_ID_MAX, J_ID, false, NULL, &c->relocation_id));
    TRY(j_str(&p, j, "task_id", false, FC_ID_MAX, J_ID, false, NULL, &c->task_id));
    TRY(j_str(&p, j, "reason", false, FC_TEXT_MAX, J_ANY, true, "", &c->reason));
    *out = FC_STEAL(&c);
    return FC_OK;
}

fc_rc
fc_cancel_parse(const char *buf, size_t len, struct fc_cancel **out)
{
    *out = NULL;
    json_auto_t *j = NULL;
    TRY(fc_msg_load(buf, len, &j));
    return fc_cancel_from_json(j, out);
}

json_t *
fc_cancel_to_json(const struct fc_cancel *c)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "schema", FC_SCHEMA_CANCEL, "relocation_id",
                          c->relocation_id, "reason", c->reason ? c->reason : "");
    if (o)
        j_set_opt_str(o, "task_id", c->task_id);
    return o;
}

/* ---- Resume ---- */

void
fc_resume_free(struct fc_resume *r)
{
    if (!r)
        return;
    free(r->relocation_id);
    free(r);
}

fc_rc
fc_resume_from_json(const json_t *j, struct fc_resume **out)
{
    static const char *const keys[] = {"schema", "relocation_id", NULL};
    *out = NULL;
    struct fc_jp p = {0};
    jp_set_error_path("");
    FC_AUTO(resume) struct fc_resume *r = calloc(1, sizeof *r);
    if (!r)
        return nomem();
    TRY(j_want_object(&p, j));
    TRY(j_schema(&p, j, FC_SCHEMA_RESUME, false));
    TRY(j_only(&p, j, keys));
    TRY(j_str(&p, j, "relocation_id", true, FC_ID_MAX, J_ID, false, NULL, &r->relocation_id));
    *out = FC_STEAL(&r);
    return FC_OK;
}

fc_rc
fc_resume_parse(const char *buf, size_t len, struct fc_resume **out)
{
    *out = NULL;
    json_auto_t *j = NULL;
    TRY(fc_msg_load(buf, len, &j));
    return fc_resume_from_json(j, out);
}

json_t *
fc_resume_to_json(const struct fc_resume *r)
{
    return json_pack("{s:s, s:s}", "schema", FC_SCHEMA_RESUME, "relocation_id",
                     r->relocation_id);
}

/* ---- BrokerHeartbeat ---- */

void
fc_heartbeat_free(struct fc_heartbeat *h)
{
    if (!h)
        return;
    free(h->broker_id);
    free(h->site);
    free(h->host);
    free(h->version);
    free(h->ts);
    fc_strv_free(h->kinds, h->nkinds);
    free(h);
}

fc_rc
fc_heartbeat_from_json(const json_t *j, struct fc_heartbeat **out)
{
    static const char *const keys[] = {"schema", "relocation_id", "broker_id", "site", "host",
                                       "capacity", "running", "kinds", "version", "ts",
                                       "interval_s", NULL};
    *out = NULL;
    struct fc_jp p = {0};
    jp_set_error_path("");
    FC_AUTO(heartbeat) struct fc_heartbeat *h = calloc(1, sizeof *h);
    if (!h)
        return nomem();
    TRY(j_want_object(&p, j));
    TRY(j_schema(&p, j, FC_SCHEMA_BROKER, false));
    TRY(j_only(&p, j, keys));
    char *rid = NULL;
    TRY(j_str(&p, j, "relocation_id", false, FC_ID_MAX, J_ANY, true, NULL, &rid));
    bool nonempty = rid && *rid;
    free(rid);
    if (nonempty)
        return jp_err_at(&p, "relocation_id", FC_E_INVALID, "must be \"\" in a heartbeat");
    TRY(j_str(&p, j, "broker_id", true, FC_ID_MAX, J_ID, false, NULL, &h->broker_id));
    TRY(j_str(&p, j, "site", true, FC_SITE_MAX, J_SITE, false, NULL, &h->site));
    TRY(j_str(&p, j, "host", true, FC_NAME_MAX, J_LINE, false, NULL, &h->host));
    TRY(j_str(&p, j, "version", true, FC_NAME_MAX, J_LINE, false, NULL, &h->version));
    TRY(j_str(&p, j, "ts", true, 40, J_TS, false, NULL, &h->ts));
    uint64_t u;
    TRY(j_uint(&p, j, "capacity", true, 0, 1u << 20, 0, &u));
    h->capacity = (uint32_t)u;
    TRY(j_uint(&p, j, "running", true, 0, 1u << 20, 0, &u));
    h->running = (uint32_t)u;
    TRY(j_uint(&p, j, "interval_s", true, 1, 3600, 0, &u));
    h->interval_s = (uint32_t)u;
    /* kinds a broker offers need only be well-formed: a newer broker may offer more */
    TRY(j_strv(&p, j, "kinds", true, FC_LIST_MAX, FC_KIND_MAX, J_LINE, &h->kinds, &h->nkinds));
    *out = FC_STEAL(&h);
    return FC_OK;
}

fc_rc
fc_heartbeat_parse(const char *buf, size_t len, struct fc_heartbeat **out)
{
    *out = NULL;
    json_auto_t *j = NULL;
    TRY(fc_msg_load(buf, len, &j));
    return fc_heartbeat_from_json(j, out);
}

json_t *
fc_heartbeat_to_json(const struct fc_heartbeat *h)
{
    char now[40];
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:s, s:s, s:I}", "schema",
                     FC_SCHEMA_BROKER, "relocation_id", "", "broker_id", h->broker_id, "site",
                     h->site, "host", h->host, "capacity", (json_int_t)h->capacity, "running",
                     (json_int_t)h->running, "kinds", j_strv_json(h->kinds, h->nkinds),
                     "version", h->version, "ts", h->ts ? h->ts : fc_msg_now(now, sizeof now),
                     "interval_s", (json_int_t)h->interval_s);
}
