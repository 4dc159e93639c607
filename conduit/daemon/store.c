/* SPDX-License-Identifier: Apache-2.0 */
/* The conduit's SQLite store (see store.h): schema, transactions, the executor's decisions
 * applied with their outbox messages in the same transaction. */
#include "store.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "fluid/amqp_names.h"
#include "store_internal.h"
#include "fluid/error.h"
#include "fluid/log.h"

struct fc_store {
    sqlite3 *db;
    unsigned max_parallel;
    char path[1024];
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT OR IGNORE INTO meta VALUES('schema', '1');"
    "CREATE TABLE IF NOT EXISTS relocations("
    " id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, request TEXT NOT NULL,"
    " state TEXT NOT NULL, cancel_requested INTEGER NOT NULL DEFAULT 0, error TEXT,"
    " created TEXT NOT NULL, updated TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tasks("
    " relocation_id TEXT NOT NULL REFERENCES relocations(id), task_id TEXT NOT NULL,"
    " idx INTEGER NOT NULL, idempotency_key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,"
    " site TEXT NOT NULL, task TEXT NOT NULL, depends_on TEXT NOT NULL, state TEXT NOT NULL,"
    " attempt INTEGER NOT NULL DEFAULT 0, error TEXT, result TEXT, updated TEXT NOT NULL,"
    " PRIMARY KEY(relocation_id, task_id));"
    "CREATE TABLE IF NOT EXISTS outbox("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, exchange TEXT NOT NULL, routing_key TEXT NOT NULL,"
    " message_id TEXT, body TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS relocations_state ON relocations(state);"
    "CREATE TABLE IF NOT EXISTS reports("
    " relocation_id TEXT NOT NULL REFERENCES relocations(id), kind TEXT NOT NULL,"
    " body TEXT NOT NULL, updated TEXT NOT NULL, PRIMARY KEY(relocation_id, kind));";

fc_rc
fc_store_dberr(struct fc_store *s, const char *what)
{
    return FC_ERR(FC_E_IO, "store %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static fc_rc
exec_sql(struct fc_store *s, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fc_rc rc = FC_ERR(FC_E_IO, "store %s: %s", s->path, msg ? msg : "error");
        sqlite3_free(msg);
        return rc;
    }
    return FC_OK;
}

/* Prepares sql and binds the NULL-terminated text arguments (NULL binds SQL NULL: pass the
 * count explicitly). */
fc_rc
fc_store_prep(struct fc_store *s, sqlite3_stmt **st, const char *sql, int n, ...)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return fc_store_dberr(s, "prepare");
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *v = va_arg(ap, const char *);
        if (v)
            sqlite3_bind_text(*st, i + 1, v, -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_null(*st, i + 1);
    }
    va_end(ap);
    return FC_OK;
}

fc_rc
fc_store_run1(struct fc_store *s, sqlite3_stmt *st, const char *what)
{
    int r = sqlite3_step(st);
    fc_rc rc = FC_OK;
    if (r != SQLITE_DONE && r != SQLITE_ROW) {
        if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE ||
            sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
            rc = FC_ERR(FC_E_CONFLICT, "store: %s: %s", what, sqlite3_errmsg(s->db));
        else
            rc = fc_store_dberr(s, what);
    }
    sqlite3_finalize(st);
    return rc;
}

fc_rc
fc_store_open(const char *path, unsigned max_parallel, struct fc_store **out)
{
    *out = NULL;
    struct fc_store *s = calloc(1, sizeof *s);
    if (!s)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    snprintf(s->path, sizeof s->path, "%s", path);
    s->max_parallel = max_parallel ? max_parallel : 1;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                          SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        fc_rc rc = FC_ERR(FC_E_IO, "store %s: cannot open: %s", path,
                          s->db ? sqlite3_errmsg(s->db) : "out of memory");
        fc_store_close(s);
        return rc;
    }
    sqlite3_busy_timeout(s->db, 5000);
    fc_rc rc = exec_sql(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                           "PRAGMA foreign_keys=ON;");
    if (rc == FC_OK)
        rc = exec_sql(s, schema_sql);
    if (rc != FC_OK) {
        fc_store_close(s);
        return rc;
    }
    *out = s;
    return FC_OK;
}

void
fc_store_close(struct fc_store *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    free(s);
}

fc_rc
fc_store_begin(struct fc_store *s)
{
    return exec_sql(s, "BEGIN IMMEDIATE");
}

fc_rc
fc_store_finish(struct fc_store *s, fc_rc rc)
{
    if (rc == FC_OK) {
        fc_rc c = exec_sql(s, "COMMIT");
        if (c != FC_OK) {
            exec_sql(s, "ROLLBACK");
            return c;
        }
        return FC_OK;
    }
    char keep[sizeof fc_error_last()->msg];
    snprintf(keep, sizeof keep, "%s", fc_error_msg());
    exec_sql(s, "ROLLBACK");
    return FC_ERR(rc, "%s", keep);
}

sqlite3 *
fc_store_sqlite(struct fc_store *s)
{
    return s->db;
}

const char *
fc_store_path(const struct fc_store *s)
{
    return s->path;
}

fc_rc
fc_store_outbox_put(struct fc_store *s, const char *exchange, const char *rk,
                    const char *msg_id, json_t *body)
{
    char *text = body ? fc_msg_dump(body) : NULL;
    json_decref(body);
    if (!text)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    fc_rc rc = SQL(s, "outbox insert",
                   "INSERT INTO outbox(exchange, routing_key, message_id, body) VALUES(?,?,?,?)",
                   exchange, rk, msg_id, text);
    free(text);
    return rc;
}

const char *
fc_store_col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : NULL;
}

/* ---- advancing one relocation ---- */


void
fc_store_rows_free(struct fc_store_row *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++) {
        free(r[i].task_id);
        free(r[i].state);
        free(r[i].task);
        free(r[i].site);
        free(r[i].kind);
        free(r[i].key);
        for (size_t k = 0; k < r[i].ndeps; k++)
            free(r[i].deps[k]);
        free(r[i].deps);
    }
    free(r);
}

/* The tasks of rid in plan order. The task body is not loaded (see fc_store_task_body) and the
 * dependencies are parsed only for pending tasks: nothing else needs them. */
fc_rc
fc_store_load_tasks(struct fc_store *s, const char *rid, struct fc_store_row **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    fc_rc rc = fc_store_prep(s, &st,
                             "SELECT task_id, state, site, kind, idempotency_key, depends_on "
                             "FROM tasks WHERE relocation_id = ? ORDER BY idx",
                             1, rid);
    if (rc != FC_OK)
        return rc;
    size_t cap = 0;
    struct fc_store_row *r = NULL;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct fc_store_row *nr = realloc(r, cap * sizeof *r);
            if (!nr) {
                rc = FC_ERR(FC_E_NOMEM, "out of memory");
                break;
            }
            r = nr;
        }
        struct fc_store_row *x = &r[(*n)++];
        memset(x, 0, sizeof *x);
        x->task_id = strdup(fc_store_col(st, 0));
        x->state = strdup(fc_store_col(st, 1));
        x->site = strdup(fc_store_col(st, 2));
        x->kind = strdup(fc_store_col(st, 3));
        x->key = strdup(fc_store_col(st, 4));
        json_auto_t *deps = NULL;
        if (x->state && strcmp(x->state, "pending") == 0)
            deps = json_loads(fc_store_col(st, 5), 0, NULL);
        x->deps = calloc(json_array_size(deps) + 1, sizeof *x->deps);
        for (size_t k = 0; x->deps && k < json_array_size(deps); k++)
            x->deps[x->ndeps++] = strdup(json_string_value(json_array_get(deps, k)));
        if (!x->task_id || !x->state || !x->site || !x->kind || !x->key || !x->deps) {
            rc = FC_ERR(FC_E_NOMEM, "out of memory");
            break;
        }
    }
    if (rc == FC_OK && step != SQLITE_DONE)
        rc = fc_store_dberr(s, "load tasks");
    sqlite3_finalize(st);
    if (rc != FC_OK) {
        fc_store_rows_free(r, *n);
        *n = 0;
        return rc;
    }
    *out = r;
    return FC_OK;
}

/* The fluid.task/1 body recorded for a task (new reference), or NULL. */
json_t *
fc_store_task_body(struct fc_store *s, const char *rid, const char *tid)
{
    sqlite3_stmt *st = NULL;
    json_t *j = NULL;
    if (fc_store_prep(s, &st, "SELECT task FROM tasks WHERE relocation_id = ? AND task_id = ?", 2,
                      rid, tid) == FC_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        j = json_loads(fc_store_col(st, 0), 0, NULL);
    sqlite3_finalize(st);
    return j;
}

fc_rc
fc_store_reloc_event(struct fc_store *s, const char *rid, enum fc_reloc_state state,
                     const char *error, const struct fc_store_row *r, size_t n)
{
    struct fc_reloc_event e = {.relocation_id = (char *)rid, .state = state,
                               .error = (char *)error};
    char now[40];
    e.ts = fc_msg_now(now, sizeof now);
    e.tasks.total = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        switch (fc_xstate_from_name(r[i].state)) {
        case FC_X_PENDING: e.tasks.pending++; break;
        case FC_X_QUEUED:
        case FC_X_RUNNING: e.tasks.running++; break;
        case FC_X_DONE: e.tasks.done++; break;
        case FC_X_FAILED: e.tasks.failed++; break;
        case FC_X_CANCELLED: e.tasks.cancelled++; break;
        }
    }
    char rk[FC_AMQP_NAME_MAX], mid[FC_AMQP_NAME_MAX];
    if (!fc_amqp_rk_relocation_state(rk, sizeof rk, rid, fc_reloc_state_name(state)))
        return FC_ERR(FC_E_INVALID, "relocation %s: routing key too long", rid);
    snprintf(mid, sizeof mid, "%s/state/%s", rid, fc_reloc_state_name(state));
    return fc_store_outbox_put(s, FC_AMQP_X_EVENTS, rk, mid, fc_reloc_event_to_json(&e));
}

/* Inside a transaction: apply the executor's decision for rid. */
fc_rc
fc_store_advance(struct fc_store *s, const char *rid)
{
    sqlite3_stmt *st = NULL;
    fc_rc rc = fc_store_prep(
        s, &st, "SELECT state, cancel_requested, error FROM relocations WHERE id = ?", 1, rid);
    if (rc != FC_OK)
        return rc;
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return FC_ERR(FC_E_NOTFOUND, "store: relocation %s not found", rid);
    }
    enum fc_reloc_state cur = FC_RS_ACCEPTED;
    fc_reloc_state_from_name(fc_store_col(st, 0), &cur);
    bool cancel = sqlite3_column_int(st, 1) != 0;
    char *cancel_reason = fc_store_col(st, 2) ? strdup(fc_store_col(st, 2)) : NULL;
    sqlite3_finalize(st);
    if (fc_reloc_state_final(cur)) {
        free(cancel_reason);
        return FC_OK;
    }

    struct fc_store_row *r = NULL;
    size_t n = 0;
    if ((rc = fc_store_load_tasks(s, rid, &r, &n)) != FC_OK) {
        free(cancel_reason);
        return rc;
    }
    struct fc_exec_task *t = calloc(n ? n : 1, sizeof *t);
    struct fc_exec_decision d = {0};
    if (!t) {
        rc = FC_ERR(FC_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        t[i] = (struct fc_exec_task){r[i].task_id, (const char *const *)r[i].deps, r[i].ndeps,
                                     fc_xstate_from_name(r[i].state)};
    if ((rc = fc_exec_decide(t, n, cancel, s->max_parallel, cur, &d)) != FC_OK)
        goto out;
    char now[40];
    fc_msg_now(now, sizeof now);
    for (size_t k = 0; k < d.npublish && rc == FC_OK; k++) {
        struct fc_store_row *x = &r[d.publish[k]];
        char rk[FC_AMQP_NAME_MAX];
        if (!fc_amqp_rk_task(rk, sizeof rk, x->site, x->kind)) {
            rc = FC_ERR(FC_E_INVALID, "task %s: routing key too long", x->task_id);
            break;
        }
        json_t *body = fc_store_task_body(s, rid, x->task_id);
        rc = fc_store_outbox_put(s, FC_AMQP_X_TASKS, rk, x->key, body);
        if (rc == FC_OK)
            rc = SQL(s, "task queued",
                     "UPDATE tasks SET state = 'queued', updated = ? WHERE relocation_id = ? "
                     "AND task_id = ?", now, rid, x->task_id);
        if (rc == FC_OK) {
            free(x->state);
            x->state = strdup("queued");
            fc_log(FC_INFO, FC_MSG("task queued"), FC_STR("relocation", rid),
                   FC_STR("task", x->task_id), FC_STR("routing_key", rk));
        }
    }
    for (size_t k = 0; k < d.nskip && rc == FC_OK; k++) {
        struct fc_store_row *x = &r[d.skip[k]];
        char why[FC_TEXT_MAX];
        if (d.cause)
            snprintf(why, sizeof why, "not run: task %s ended first", d.cause);
        else
            snprintf(why, sizeof why, "not run: relocation cancelled%s%s",
                     cancel_reason ? ": " : "", cancel_reason ? cancel_reason : "");
        rc = SQL(s, "task skipped",
                 "UPDATE tasks SET state = 'cancelled', error = ?, updated = ? "
                 "WHERE relocation_id = ? AND task_id = ?", why, now, rid, x->task_id);
        free(x->state);
        x->state = strdup("cancelled");
    }
    if (rc == FC_OK && d.state != cur) {
        char err[FC_TEXT_MAX] = "";
        if (d.state == FC_RS_FAILED || (d.state == FC_RS_CANCELLED && d.cause)) {
            sqlite3_stmt *q = NULL;
            if (fc_store_prep(s, &q,
                              "SELECT error FROM tasks WHERE relocation_id = ? AND task_id = ?", 2,
                              rid, d.cause) == FC_OK &&
                sqlite3_step(q) == SQLITE_ROW)
                fc_store_failure_reason(d.cause, fc_store_col(q, 0), err, sizeof err);
            sqlite3_finalize(q);
        } else if (d.state == FC_RS_CANCELLED) {
            snprintf(err, sizeof err, "cancelled%s%s", cancel_reason ? ": " : "",
                     cancel_reason ? cancel_reason : "");
        }
        /* accepted -> done directly cannot happen: tasks are published (running) first */
        rc = SQL(s, "relocation state",
                 "UPDATE relocations SET state = ?, error = ?, updated = ? WHERE id = ?",
                 fc_reloc_state_name(d.state), *err ? err : NULL, now, rid);
        if (rc == FC_OK)
            rc = fc_store_reloc_event(s, rid, d.state, *err ? err : NULL, r, n);
        if (rc == FC_OK)
            fc_log(FC_INFO, FC_MSG("relocation state"), FC_STR("relocation", rid),
                   FC_STR("state", fc_reloc_state_name(d.state)));
    }
out:
    fc_exec_decision_free(&d);
    free(t);
    fc_store_rows_free(r, n);
    free(cancel_reason);
    return rc;
}

/* ---- requests ---- */

fc_rc
fc_store_add_request(struct fc_store *s, const struct fc_request *r, bool *dup,
                     const char **conflict_path)
{
    return fc_store_add_planned(s, r, NULL, dup, conflict_path);
}

fc_rc
fc_store_add_planned(struct fc_store *s, const struct fc_request *r, const json_t *report,
                     bool *dup, const char **conflict_path)
{
    *dup = false;
    if (conflict_path)
        *conflict_path = NULL;
    if (!r->plan)
        return FC_ERR(FC_E_UNSUPPORTED, "plan: missing (this conduit runs explicit plans)");
    fc_rc rc = fc_store_begin(s);
    if (rc != FC_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = fc_store_prep(s, &st, "SELECT id FROM relocations WHERE idempotency_key = ?", 1,
                   r->idempotency_key)) != FC_OK)
        return fc_store_finish(s, rc);
    if (sqlite3_step(st) == SQLITE_ROW) {
        sqlite3_finalize(st);
        *dup = true;
        return fc_store_finish(s, FC_OK);
    }
    sqlite3_finalize(st);
    if ((rc = fc_store_prep(s, &st, "SELECT idempotency_key FROM relocations WHERE id = ?", 1,
                   r->relocation_id)) != FC_OK)
        return fc_store_finish(s, rc);
    if (sqlite3_step(st) == SQLITE_ROW) {
        sqlite3_finalize(st);
        if (conflict_path)
            *conflict_path = "relocation_id";
        return fc_store_finish(s, FC_ERR(FC_E_CONFLICT,
                                "relocation_id: \"%s\" already exists with another "
                                "idempotency_key", r->relocation_id));
    }
    sqlite3_finalize(st);

    char now[40];
    fc_msg_now(now, sizeof now);
    json_auto_t *rj = fc_request_to_json(r);
    char *req_text = rj ? fc_msg_dump(rj) : NULL;
    if (!req_text)
        return fc_store_finish(s, FC_ERR(FC_E_NOMEM, "out of memory"));
    rc = SQL(s, "relocation insert",
             "INSERT INTO relocations(id, idempotency_key, request, state, created, updated) "
             "VALUES(?,?,?,'accepted',?,?)",
             r->relocation_id, r->idempotency_key, req_text, now, now);
    free(req_text);
    for (size_t i = 0; rc == FC_OK && i < r->plan->ntasks; i++) {
        const struct fc_task *t = r->plan->tasks[i];
        json_auto_t *tj = fc_task_to_json(t);
        json_auto_t *deps = json_array();
        for (size_t k = 0; k < t->ndepends; k++)
            json_array_append_new(deps, json_string(t->depends_on[k]));
        char *tt = tj ? fc_msg_dump(tj) : NULL, *dt = deps ? fc_msg_dump(deps) : NULL;
        char idx[32];
        snprintf(idx, sizeof idx, "%zu", i);
        if (!tt || !dt)
            rc = FC_ERR(FC_E_NOMEM, "out of memory");
        else
            rc = SQL(s, "task insert",
                     "INSERT INTO tasks(relocation_id, task_id, idx, idempotency_key, kind, "
                     "site, task, depends_on, state, updated) "
                     "VALUES(?,?,CAST(? AS INTEGER),?,?,?,?,?,'pending',?)",
                     r->relocation_id, t->task_id, idx, t->idempotency_key, t->kind, t->site,
                     tt, dt, now);
        free(tt);
        free(dt);
        if (rc == FC_E_CONFLICT) {
            static _Thread_local char path[64];
            snprintf(path, sizeof path, "plan.tasks[%zu].idempotency_key", i);
            if (conflict_path)
                *conflict_path = path;
            rc = FC_ERR(FC_E_CONFLICT, "%s: \"%s\" is already used by another relocation", path,
                        t->idempotency_key);
        }
    }
    if (rc == FC_OK) {
        struct fc_store_row *rows = NULL;
        size_t n = 0;
        rc = fc_store_load_tasks(s, r->relocation_id, &rows, &n);
        if (rc == FC_OK)
            rc = fc_store_reloc_event(s, r->relocation_id, FC_RS_ACCEPTED, NULL, rows, n);
        fc_store_rows_free(rows, n);
    }
    if (rc == FC_OK && report)
        rc = fc_store_report_write(s, r->relocation_id, "plan", report, false);
    if (rc == FC_OK)
        rc = fc_store_advance(s, r->relocation_id);
    return fc_store_finish(s, rc);
}

fc_rc
fc_store_has_key(struct fc_store *s, const char *key, bool *found)
{
    *found = false;
    sqlite3_stmt *st = NULL;
    fc_rc rc =
        fc_store_prep(s, &st, "SELECT id FROM relocations WHERE idempotency_key = ?", 1, key);
    if (rc != FC_OK)
        return rc;
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return fc_store_dberr(s, "relocation lookup");
    *found = r == SQLITE_ROW;
    return FC_OK;
}

fc_rc
fc_store_add_failed(struct fc_store *s, const struct fc_request *r, const char *reason,
                    bool *dup, const char **conflict_path)
{
    *dup = false;
    if (conflict_path)
        *conflict_path = NULL;
    fc_rc rc = fc_store_begin(s);
    if (rc != FC_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = fc_store_prep(s, &st, "SELECT idempotency_key FROM relocations WHERE id = ? OR "
                           "idempotency_key = ?", 2, r->relocation_id,
                   r->idempotency_key)) != FC_OK)
        return fc_store_finish(s, rc);
    if (sqlite3_step(st) == SQLITE_ROW) {
        bool same = strcmp(fc_store_col(st, 0), r->idempotency_key) == 0;
        sqlite3_finalize(st);
        if (same) {
            *dup = true;
            return fc_store_finish(s, FC_OK);
        }
        if (conflict_path)
            *conflict_path = "relocation_id";
        return fc_store_finish(s, FC_ERR(FC_E_CONFLICT,
                                "relocation_id: \"%s\" already exists with another "
                                "idempotency_key", r->relocation_id));
    }
    sqlite3_finalize(st);
    char now[40];
    fc_msg_now(now, sizeof now);
    json_auto_t *rj = fc_request_to_json(r);
    char *req_text = rj ? fc_msg_dump(rj) : NULL;
    if (!req_text)
        return fc_store_finish(s, FC_ERR(FC_E_NOMEM, "out of memory"));
    rc = SQL(s, "relocation insert",
             "INSERT INTO relocations(id, idempotency_key, request, state, error, created, "
             "updated) VALUES(?,?,?,'failed',?,?,?)",
             r->relocation_id, r->idempotency_key, req_text, reason, now, now);
    free(req_text);
    if (rc == FC_OK)
        rc = fc_store_reloc_event(s, r->relocation_id, FC_RS_FAILED, reason, NULL, 0);
    if (rc == FC_OK)
        fc_log(FC_WARN, FC_MSG("relocation failed"), FC_STR("relocation", r->relocation_id),
               FC_STR("error", reason));
    return fc_store_finish(s, rc);
}

/* ---- events ---- */

fc_rc
fc_store_apply_event(struct fc_store *s, const struct fc_task_event *e, bool *known)
{
    *known = false;
    fc_rc rc = fc_store_begin(s);
    if (rc != FC_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = fc_store_prep(s, &st, "SELECT state, attempt FROM tasks WHERE relocation_id = ? AND "
                           "task_id = ? AND idempotency_key = ?",
                   3, e->relocation_id, e->task_id, e->idempotency_key)) != FC_OK)
        return fc_store_finish(s, rc);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return fc_store_finish(s, FC_OK);
    }
    *known = true;
    enum fc_xstate cur = fc_xstate_from_name(fc_store_col(st, 0));
    char cur_name[32];
    snprintf(cur_name, sizeof cur_name, "%s", fc_store_col(st, 0));
    int attempt = sqlite3_column_int(st, 1);
    sqlite3_finalize(st);
    if (cur == FC_X_DONE || cur == FC_X_FAILED || cur == FC_X_CANCELLED)
        return fc_store_finish(s, FC_OK); /* the outcome is recorded: later events change nothing */
    const char *name = fc_task_state_name(e->state);
    if (strcmp(name, cur_name) == 0 && (int)e->attempt <= attempt)
        return fc_store_finish(s, FC_OK); /* another progress event: nothing to record */
    char now[40], att[16], err[FC_TEXT_MAX + 64] = "";
    fc_msg_now(now, sizeof now);
    snprintf(att, sizeof att, "%u",
             e->attempt > (unsigned)attempt ? e->attempt : (unsigned)attempt);
    if (e->has_error)
        snprintf(err, sizeof err, "%s: %s", fc_rc_name(e->error.code),
                 e->error.message ? e->error.message : "");
    char *result = e->result ? fc_msg_dump(e->result) : NULL;
    rc = SQL(s, "task event",
             "UPDATE tasks SET state = ?, attempt = CAST(? AS INTEGER), error = ?, "
             "result = coalesce(?, result), updated = ? "
             "WHERE relocation_id = ? AND task_id = ?",
             name, att, *err ? err : NULL, result, now, e->relocation_id, e->task_id);
    free(result);
    if (rc == FC_OK && fc_task_state_final(e->state))
        fc_log(FC_INFO, FC_MSG("task outcome"), FC_STR("relocation", e->relocation_id),
               FC_STR("task", e->task_id), FC_STR("state", name), FC_STR("broker", e->broker));
    if (rc == FC_OK)
        rc = SQL(s, "relocation touched", "UPDATE relocations SET updated = ? WHERE id = ?", now,
                 e->relocation_id);
    /* only an outcome can unlock tasks or end the relocation (a started or retrying task
     * was already in flight) */
    if (rc == FC_OK && fc_task_state_final(e->state))
        rc = fc_store_advance(s, e->relocation_id);
    return fc_store_finish(s, rc);
}

fc_rc
fc_store_cancel(struct fc_store *s, const char *rid, const char *reason, bool *known)
{
    *known = false;
    fc_rc rc = fc_store_begin(s);
    if (rc != FC_OK)
        return rc;
    char now[40];
    fc_msg_now(now, sizeof now);
    rc = SQL(s, "cancel",
             "UPDATE relocations SET cancel_requested = 1, error = coalesce(error, ?), "
             "updated = ? WHERE id = ? AND state IN ('accepted', 'running')",
             reason && *reason ? reason : NULL, now, rid);
    if (rc == FC_OK && sqlite3_changes(s->db) > 0) {
        *known = true;
        rc = fc_store_advance(s, rid);
    } else if (rc == FC_OK) {
        sqlite3_stmt *st = NULL;
        if (fc_store_prep(s, &st, "SELECT 1 FROM relocations WHERE id = ?", 1, rid) == FC_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            *known = true; /* already final: nothing to do */
        sqlite3_finalize(st);
    }
    return fc_store_finish(s, rc);
}

fc_rc
fc_store_advance_all(struct fc_store *s)
{
    sqlite3_stmt *st = NULL;
    fc_rc rc = fc_store_prep(s, &st,
                             "SELECT id FROM relocations WHERE state IN ('accepted','running')", 0);
    if (rc != FC_OK)
        return rc;
    char **ids = NULL;
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        char **ni = realloc(ids, (n + 1) * sizeof *ids);
        if (!ni)
            break;
        ids = ni;
        ids[n++] = strdup(fc_store_col(st, 0));
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < n; i++) {
        if (rc == FC_OK && (rc = fc_store_begin(s)) == FC_OK)
            rc = fc_store_finish(s, fc_store_advance(s, ids[i]));
        free(ids[i]);
    }
    free(ids);
    return rc;
}
