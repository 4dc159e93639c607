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

static fc_rc
db_err(struct fc_store *s, const char *what)
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
static fc_rc
prep(struct fc_store *s, sqlite3_stmt **st, const char *sql, int n, ...)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_err(s, "prepare");
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

static fc_rc
run1(struct fc_store *s, sqlite3_stmt *st, const char *what)
{
    int r = sqlite3_step(st);
    fc_rc rc = FC_OK;
    if (r != SQLITE_DONE && r != SQLITE_ROW) {
        if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE ||
            sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
            rc = FC_ERR(FC_E_CONFLICT, "store: %s: %s", what, sqlite3_errmsg(s->db));
        else
            rc = db_err(s, what);
    }
    sqlite3_finalize(st);
    return rc;
}

#define SQL(s_, what_, sql_, ...)                                                              \
    ({                                                                                         \
        sqlite3_stmt *st_ = NULL;                                                              \
        const char *args_[] = {__VA_ARGS__};                                                   \
        fc_rc r_ = prep((s_), &st_, (sql_), 0);                                                \
        for (size_t i_ = 0; r_ == FC_OK && i_ < sizeof args_ / sizeof args_[0]; i_++) {        \
            if (args_[i_])                                                                     \
                sqlite3_bind_text(st_, (int)i_ + 1, args_[i_], -1, SQLITE_TRANSIENT);          \
            else                                                                               \
                sqlite3_bind_null(st_, (int)i_ + 1);                                           \
        }                                                                                      \
        r_ == FC_OK ? run1((s_), st_, (what_)) : (sqlite3_finalize(st_), r_);                  \
    })

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

static fc_rc
begin(struct fc_store *s)
{
    return exec_sql(s, "BEGIN IMMEDIATE");
}

static fc_rc
finish(struct fc_store *s, fc_rc rc)
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

static const char *
col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : NULL;
}

/* ---- advancing one relocation ---- */

struct row {
    char *task_id, *state, *task, *site, *kind, *key;
    char **deps;
    size_t ndeps;
};

static void
rows_free(struct row *r, size_t n)
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

/* The tasks of rid in plan order. The task body is not loaded (see task_body) and the
 * dependencies are parsed only for pending tasks: nothing else needs them. */
static fc_rc
load_tasks(struct fc_store *s, const char *rid, struct row **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    fc_rc rc = prep(s, &st, "SELECT task_id, state, site, kind, idempotency_key, depends_on "
                            "FROM tasks WHERE relocation_id = ? ORDER BY idx",
                    1, rid);
    if (rc != FC_OK)
        return rc;
    size_t cap = 0;
    struct row *r = NULL;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct row *nr = realloc(r, cap * sizeof *r);
            if (!nr) {
                rc = FC_ERR(FC_E_NOMEM, "out of memory");
                break;
            }
            r = nr;
        }
        struct row *x = &r[(*n)++];
        memset(x, 0, sizeof *x);
        x->task_id = strdup(col(st, 0));
        x->state = strdup(col(st, 1));
        x->site = strdup(col(st, 2));
        x->kind = strdup(col(st, 3));
        x->key = strdup(col(st, 4));
        json_auto_t *deps = NULL;
        if (x->state && strcmp(x->state, "pending") == 0)
            deps = json_loads(col(st, 5), 0, NULL);
        x->deps = calloc(json_array_size(deps) + 1, sizeof *x->deps);
        for (size_t k = 0; x->deps && k < json_array_size(deps); k++)
            x->deps[x->ndeps++] = strdup(json_string_value(json_array_get(deps, k)));
        if (!x->task_id || !x->state || !x->site || !x->kind || !x->key || !x->deps) {
            rc = FC_ERR(FC_E_NOMEM, "out of memory");
            break;
        }
    }
    if (rc == FC_OK && step != SQLITE_DONE)
        rc = db_err(s, "load tasks");
    sqlite3_finalize(st);
    if (rc != FC_OK) {
        rows_free(r, *n);
        *n = 0;
        return rc;
    }
    *out = r;
    return FC_OK;
}

/* The fluid.task/1 body recorded for a task (new reference), or NULL. */
static json_t *
task_body(struct fc_store *s, const char *rid, const char *tid)
{
    sqlite3_stmt *st = NULL;
    json_t *j = NULL;
    if (prep(s, &st, "SELECT task FROM tasks WHERE relocation_id = ? AND task_id = ?", 2, rid,
             tid) == FC_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        j = json_loads(col(st, 0), 0, NULL);
    sqlite3_finalize(st);
    return j;
}

static fc_rc
reloc_event(struct fc_store *s, const char *rid, enum fc_reloc_state state, const char *error,
            const struct row *r, size_t n)
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
static fc_rc
advance(struct fc_store *s, const char *rid)
{
    sqlite3_stmt *st = NULL;
    fc_rc rc = prep(s, &st, "SELECT state, cancel_requested, error FROM relocations WHERE id = ?",
                    1, rid);
    if (rc != FC_OK)
        return rc;
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return FC_ERR(FC_E_NOTFOUND, "store: relocation %s not found", rid);
    }
    enum fc_reloc_state cur = FC_RS_ACCEPTED;
    fc_reloc_state_from_name(col(st, 0), &cur);
    bool cancel = sqlite3_column_int(st, 1) != 0;
    char *cancel_reason = col(st, 2) ? strdup(col(st, 2)) : NULL;
    sqlite3_finalize(st);
    if (fc_reloc_state_final(cur)) {
        free(cancel_reason);
        return FC_OK;
    }

    struct row *r = NULL;
    size_t n = 0;
    if ((rc = load_tasks(s, rid, &r, &n)) != FC_OK) {
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
        struct row *x = &r[d.publish[k]];
        char rk[FC_AMQP_NAME_MAX];
        if (!fc_amqp_rk_task(rk, sizeof rk, x->site, x->kind)) {
            rc = FC_ERR(FC_E_INVALID, "task %s: routing key too long", x->task_id);
            break;
        }
        json_t *body = task_body(s, rid, x->task_id);
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
        struct row *x = &r[d.skip[k]];
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
            if (prep(s, &q, "SELECT error FROM tasks WHERE relocation_id = ? AND task_id = ?",
                     2, rid, d.cause) == FC_OK && sqlite3_step(q) == SQLITE_ROW)
                fc_store_failure_reason(d.cause, col(q, 0), err, sizeof err);
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
            rc = reloc_event(s, rid, d.state, *err ? err : NULL, r, n);
        if (rc == FC_OK)
            fc_log(FC_INFO, FC_MSG("relocation state"), FC_STR("relocation", rid),
                   FC_STR("state", fc_reloc_state_name(d.state)));
    }
out:
    fc_exec_decision_free(&d);
    free(t);
    rows_free(r, n);
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
    fc_rc rc = begin(s);
    if (rc != FC_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = prep(s, &st, "SELECT id FROM relocations WHERE idempotency_key = ?", 1,
                   r->idempotency_key)) != FC_OK)
        return finish(s, rc);
    if (sqlite3_step(st) == SQLITE_ROW) {
        sqlite3_finalize(st);
        *dup = true;
        return finish(s, FC_OK);
    }
    sqlite3_finalize(st);
    if ((rc = prep(s, &st, "SELECT idempotency_key FROM relocations WHERE id = ?", 1,
                   r->relocation_id)) != FC_OK)
        return finish(s, rc);
    if (sqlite3_step(st) == SQLITE_ROW) {
        sqlite3_finalize(st);
        if (conflict_path)
            *conflict_path = "relocation_id";
        return finish(s, FC_ERR(FC_E_CONFLICT,
                                "relocation_id: \"%s\" already exists with another "
                                "idempotency_key", r->relocation_id));
    }
    sqlite3_finalize(st);

    char now[40];
    fc_msg_now(now, sizeof now);
    json_auto_t *rj = fc_request_to_json(r);
    char *req_text = rj ? fc_msg_dump(rj) : NULL;
    if (!req_text)
        return finish(s, FC_ERR(FC_E_NOMEM, "out of memory"));
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
        struct row *rows = NULL;
        size_t n = 0;
        rc = load_tasks(s, r->relocation_id, &rows, &n);
        if (rc == FC_OK)
            rc = reloc_event(s, r->relocation_id, FC_RS_ACCEPTED, NULL, rows, n);
        rows_free(rows, n);
    }
    if (rc == FC_OK && report)
        rc = fc_store_report_write(s, r->relocation_id, "plan", report, false);
    if (rc == FC_OK)
        rc = advance(s, r->relocation_id);
    return finish(s, rc);
}

fc_rc
fc_store_has_key(struct fc_store *s, const char *key, bool *found)
{
    *found = false;
    sqlite3_stmt *st = NULL;
    fc_rc rc = prep(s, &st, "SELECT id FROM relocations WHERE idempotency_key = ?", 1, key);
    if (rc != FC_OK)
        return rc;
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return db_err(s, "relocation lookup");
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
    fc_rc rc = begin(s);
    if (rc != FC_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = prep(s, &st, "SELECT idempotency_key FROM relocations WHERE id = ? OR "
                           "idempotency_key = ?", 2, r->relocation_id,
                   r->idempotency_key)) != FC_OK)
        return finish(s, rc);
    if (sqlite3_step(st) == SQLITE_ROW) {
        bool same = strcmp(col(st, 0), r->idempotency_key) == 0;
        sqlite3_finalize(st);
        if (same) {
            *dup = true;
            return finish(s, FC_OK);
        }
        if (conflict_path)
            *conflict_path = "relocation_id";
        return finish(s, FC_ERR(FC_E_CONFLICT,
                                "relocation_id: \"%s\" already exists with another "
                                "idempotency_key", r->relocation_id));
    }
    sqlite3_finalize(st);
    char now[40];
    fc_msg_now(now, sizeof now);
    json_auto_t *rj = fc_request_to_json(r);
    char *req_text = rj ? fc_msg_dump(rj) : NULL;
    if (!req_text)
        return finish(s, FC_ERR(FC_E_NOMEM, "out of memory"));
    rc = SQL(s, "relocation insert",
             "INSERT INTO relocations(id, idempotency_key, request, state, error, created, "
             "updated) VALUES(?,?,?,'failed',?,?,?)",
             r->relocation_id, r->idempotency_key, req_text, reason, now, now);
    free(req_text);
    if (rc == FC_OK)
        rc = reloc_event(s, r->relocation_id, FC_RS_FAILED, reason, NULL, 0);
    if (rc == FC_OK)
        fc_log(FC_WARN, FC_MSG("relocation failed"), FC_STR("relocation", r->relocation_id),
               FC_STR("error", reason));
    return finish(s, rc);
}

/* ---- events ---- */

fc_rc
fc_store_apply_event(struct fc_store *s, const struct fc_task_event *e, bool *known)
{
    *known = false;
    fc_rc rc = begin(s);
    if (rc != FC_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = prep(s, &st, "SELECT state, attempt FROM tasks WHERE relocation_id = ? AND "
                           "task_id = ? AND idempotency_key = ?",
                   3, e->relocation_id, e->task_id, e->idempotency_key)) != FC_OK)
        return finish(s, rc);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return finish(s, FC_OK);
    }
    *known = true;
    enum fc_xstate cur = fc_xstate_from_name(col(st, 0));
    char cur_name[32];
    snprintf(cur_name, sizeof cur_name, "%s", col(st, 0));
    int attempt = sqlite3_column_int(st, 1);
    sqlite3_finalize(st);
    if (cur == FC_X_DONE || cur == FC_X_FAILED || cur == FC_X_CANCELLED)
        return finish(s, FC_OK); /* the outcome is recorded: later events change nothing */
    const char *name = fc_task_state_name(e->state);
    if (strcmp(name, cur_name) == 0 && (int)e->attempt <= attempt)
        return finish(s, FC_OK); /* another progress event: nothing to record */
    char now[40], att[16], err[FC_TEXT_MAX + 64] = "";
    fc_msg_now(now, sizeof now);
    snprintf(att, sizeof att, "%u", e->attempt > (unsigned)attempt ? e->attempt : (unsigned)attempt);
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
        rc = advance(s, e->relocation_id);
    return finish(s, rc);
}

fc_rc
fc_store_cancel(struct fc_store *s, const char *rid, const char *reason, bool *known)
{
    *known = false;
    fc_rc rc = begin(s);
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
        rc = advance(s, rid);
    } else if (rc == FC_OK) {
        sqlite3_stmt *st = NULL;
        if (prep(s, &st, "SELECT 1 FROM relocations WHERE id = ?", 1, rid) == FC_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            *known = true; /* already final: nothing to do */
        sqlite3_finalize(st);
    }
    return finish(s, rc);
}

/* ---- resume ---- */

/* key with its resume suffix bumped: "K" -> "K/r1", "K/r1" -> "K/r2". */
static fc_rc
resumed_key(const char *tid, const char *key, char *out, size_t cap)
{
    size_t n = strlen(key), d = n;
    while (d > 0 && key[d - 1] >= '0' && key[d - 1] <= '9')
        d--;
    unsigned long gen = 0;
    if (d >= 2 && d < n && n - d <= 6 && key[d - 1] == 'r' && key[d - 2] == '/') {
        gen = strtoul(key + d, NULL, 10);
        n = d - 2;
    }
    int w = snprintf(out, cap, "%.*s/r%lu", (int)n, key, gen + 1);
    if (w < 0 || (size_t)w >= cap || (size_t)w > FC_KEY_MAX || !fc_key_valid(out))
        return FC_ERR(FC_E_INVALID, "task %s: idempotency_key \"%s\" cannot take a resume "
                      "suffix (longer than %d bytes)", tid, key, FC_KEY_MAX);
    return FC_OK;
}

/* One task back to pending under a new idempotency key (brokers keep the outcome of the
 * old one and would answer with it). */
static fc_rc
reset_task(struct fc_store *s, const char *rid, const struct row *x, const char *now)
{
    char key[FC_KEY_MAX + 16];
    fc_rc rc = resumed_key(x->task_id, x->key, key, sizeof key);
    if (rc != FC_OK)
        return rc;
    json_t *body = task_body(s, rid, x->task_id);
    if (!body || json_object_set_new(body, "idempotency_key", json_string(key)) != 0) {
        json_decref(body);
        return FC_ERR(FC_E_IO, "store: task %s of %s: recorded body unreadable", x->task_id,
                      rid);
    }
    char *text = fc_msg_dump(body);
    json_decref(body);
    if (!text)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    rc = SQL(s, "task reset",
             "UPDATE tasks SET state = 'pending', attempt = 0, error = NULL, result = NULL, "
             "idempotency_key = ?, task = ?, updated = ? WHERE relocation_id = ? AND task_id = ?",
             key, text, now, rid, x->task_id);
    free(text);
    return rc;
}

fc_rc
fc_store_resume(struct fc_store *s, const char *rid, struct fc_resume_result *out)
{
    *out = (struct fc_resume_result){0};
    fc_rc rc = begin(s);
    if (rc != FC_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = prep(s, &st, "SELECT state, request, idempotency_key, "
                           "EXISTS(SELECT 1 FROM reports WHERE relocation_id = r.id AND "
                           "kind = 'cleanup') FROM relocations r WHERE id = ?",
                   1, rid)) != FC_OK)
        return finish(s, rc);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return finish(s, FC_ERR(FC_E_NOTFOUND, "relocation %s: unknown to the conduit", rid));
    }
    enum fc_reloc_state cur = FC_RS_ACCEPTED;
    fc_reloc_state_from_name(col(st, 0), &cur);
    char *request = strdup(col(st, 1) ? col(st, 1) : "");
    char *rkey = strdup(col(st, 2) ? col(st, 2) : "");
    bool cleaned = sqlite3_column_int(st, 3) != 0;
    sqlite3_finalize(st);
    if (!request || !rkey) {
        free(request);
        free(rkey);
        return finish(s, FC_ERR(FC_E_NOMEM, "out of memory"));
    }
    if (cur == FC_RS_DONE)
        out->refused = "the relocation is done: nothing to resume";
    else if (!fc_reloc_state_final(cur))
        out->refused = "the relocation is still running";
    struct row *r = NULL;
    size_t n = 0;
    if (!out->refused)
        rc = load_tasks(s, rid, &r, &n);
    char now[40];
    fc_msg_now(now, sizeof now);
    if (rc == FC_OK && !out->refused && n == 0) {
        /* planning failed: nothing ran; forget the failure and let the request arrive again
         * (the conduit plans it as a new one, with the same id and key) */
        out->replan = true;
        rc = SQL(s, "forget reports", "DELETE FROM reports WHERE relocation_id = ?", rid);
        if (rc == FC_OK)
            rc = SQL(s, "forget relocation", "DELETE FROM relocations WHERE id = ?", rid);
        if (rc == FC_OK)
            rc = SQL(s, "outbox insert",
                     "INSERT INTO outbox(exchange, routing_key, message_id, body) "
                     "VALUES('', ?, ?, ?)", FC_AMQP_Q_REQUESTS, rkey, request);
    } else if (rc == FC_OK && !out->refused) {
        /* after a cleanup what the done tasks made is gone: every task runs again */
        out->full = cleaned;
        for (size_t i = 0; i < n && rc == FC_OK; i++) {
            enum fc_xstate x = fc_xstate_from_name(r[i].state);
            if (!cleaned && x != FC_X_FAILED && x != FC_X_CANCELLED)
                continue;
            if ((rc = reset_task(s, rid, &r[i], now)) == FC_OK) {
                free(r[i].state);
                r[i].state = strdup("pending");
                out->reset++;
            }
        }
        if (rc == FC_OK && cleaned)
            rc = SQL(s, "forget cleanup",
                     "DELETE FROM reports WHERE relocation_id = ? AND kind = 'cleanup'", rid);
        if (rc == FC_OK)
            rc = SQL(s, "relocation resumed",
                     "UPDATE relocations SET state = 'accepted', cancel_requested = 0, "
                     "error = NULL, updated = ? WHERE id = ?", now, rid);
        /* brokers forget the Cancel they remember for rid before its tasks arrive */
        char rk[FC_AMQP_NAME_MAX];
        if (rc == FC_OK && !fc_amqp_rk_resume(rk, sizeof rk, rid))
            rc = FC_ERR(FC_E_INVALID, "relocation %s: routing key too long", rid);
        if (rc == FC_OK)
            rc = fc_store_outbox_put(s, FC_AMQP_X_CONTROL, rk, NULL,
                                     fc_resume_to_json(&(struct fc_resume){(char *)rid}));
        if (rc == FC_OK)
            rc = reloc_event(s, rid, FC_RS_ACCEPTED, NULL, r, n);
        if (rc == FC_OK)
            rc = advance(s, rid);
    }
    if (rc == FC_OK && !out->refused)
        fc_log(FC_INFO, FC_MSG("relocation resumed"), FC_STR("relocation", rid),
               FC_U64("tasks_reset", out->reset), FC_STR("full", out->full ? "yes" : "no"),
               FC_STR("replan", out->replan ? "yes" : "no"));
    rows_free(r, n);
    free(request);
    free(rkey);
    return finish(s, rc);
}

fc_rc
fc_store_advance_all(struct fc_store *s)
{
    sqlite3_stmt *st = NULL;
    fc_rc rc = prep(s, &st, "SELECT id FROM relocations WHERE state IN ('accepted','running')", 0);
    if (rc != FC_OK)
        return rc;
    char **ids = NULL;
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        char **ni = realloc(ids, (n + 1) * sizeof *ids);
        if (!ni)
            break;
        ids = ni;
        ids[n++] = strdup(col(st, 0));
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < n; i++) {
        if (rc == FC_OK && (rc = begin(s)) == FC_OK)
            rc = finish(s, advance(s, ids[i]));
        free(ids[i]);
    }
    free(ids);
    return rc;
}

/* ---- outbox ---- */

void
fc_outbox_msg_clear(struct fc_outbox_msg *m)
{
    free(m->exchange);
    free(m->routing_key);
    free(m->message_id);
    free(m->body);
    memset(m, 0, sizeof *m);
}

fc_rc
fc_store_outbox_after(struct fc_store *s, int64_t after, struct fc_outbox_msg *m, bool *found)
{
    *found = false;
    memset(m, 0, sizeof *m);
    char q[32];
    snprintf(q, sizeof q, "%lld", (long long)after);
    sqlite3_stmt *st = NULL;
    fc_rc rc = prep(s, &st, "SELECT seq, exchange, routing_key, message_id, body FROM outbox "
                            "WHERE seq > CAST(? AS INTEGER) ORDER BY seq LIMIT 1", 1, q);
    if (rc != FC_OK)
        return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        m->seq = sqlite3_column_int64(st, 0);
        m->exchange = strdup(col(st, 1));
        m->routing_key = strdup(col(st, 2));
        m->message_id = col(st, 3) ? strdup(col(st, 3)) : NULL;
        m->body = strdup(col(st, 4));
        *found = true;
        if (!m->exchange || !m->routing_key || !m->body) {
            fc_outbox_msg_clear(m);
            *found = false;
            rc = FC_ERR(FC_E_NOMEM, "out of memory");
        }
    } else if (r != SQLITE_DONE) {
        rc = db_err(s, "outbox");
    }
    sqlite3_finalize(st);
    return rc;
}

fc_rc
fc_store_outbox_next(struct fc_store *s, struct fc_outbox_msg *m, bool *found)
{
    return fc_store_outbox_after(s, 0, m, found);
}

fc_rc
fc_store_outbox_delete_upto(struct fc_store *s, int64_t upto)
{
    char q[32];
    snprintf(q, sizeof q, "%lld", (long long)upto);
    return SQL(s, "outbox delete", "DELETE FROM outbox WHERE seq <= CAST(? AS INTEGER)", q);
}

fc_rc
fc_store_outbox_delete(struct fc_store *s, int64_t seq)
{
    char q[32];
    snprintf(q, sizeof q, "%lld", (long long)seq);
    return SQL(s, "outbox delete", "DELETE FROM outbox WHERE seq = CAST(? AS INTEGER)", q);
}

/* ---- status ---- */

fc_rc
fc_store_status(struct fc_store *s, const char *rid, struct fc_status *out)
{
    sqlite3_stmt *st = NULL;
    fc_rc rc = prep(s, &st, "SELECT state, created, updated, error FROM relocations WHERE id = ?",
                    1, rid);
    if (rc != FC_OK)
        return rc;
    out->found = false;
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return FC_OK;
    }
    out->found = true;
    fc_reloc_state_from_name(col(st, 0), &out->state);
    out->created = strdup(col(st, 1));
    out->updated = strdup(col(st, 2));
    out->error = col(st, 3) ? strdup(col(st, 3)) : NULL;
    sqlite3_finalize(st);
    if ((rc = prep(s, &st, "SELECT task_id, kind, site, state, attempt, error FROM tasks "
                           "WHERE relocation_id = ? ORDER BY idx", 1, rid)) != FC_OK)
        return rc;
    size_t cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (out->ntasks == cap) {
            cap = cap ? cap * 2 : 16;
            struct fc_status_task *nt = realloc(out->tasks, cap * sizeof *nt);
            if (!nt) {
                rc = FC_ERR(FC_E_NOMEM, "out of memory");
                break;
            }
            out->tasks = nt;
        }
        struct fc_status_task *t = &out->tasks[out->ntasks++];
        t->task_id = strdup(col(st, 0));
        t->kind = strdup(col(st, 1));
        t->site = strdup(col(st, 2));
        t->state = strdup(col(st, 3));
        t->attempt = (uint32_t)sqlite3_column_int(st, 4);
        t->error = col(st, 5) ? strdup(col(st, 5)) : NULL;
    }
    sqlite3_finalize(st);
    return rc;
}

fc_rc
fc_store_reloc_state(struct fc_store *s, const char *rid, char *state, size_t cap,
                     unsigned *ntasks)
{
    sqlite3_stmt *st = NULL;
    fc_rc rc = prep(s, &st, "SELECT state, (SELECT count(*) FROM tasks WHERE relocation_id = "
                            "relocations.id) FROM relocations WHERE id = ?", 1, rid);
    if (rc != FC_OK)
        return rc;
    snprintf(state, cap, "%s", "");
    if (ntasks)
        *ntasks = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(state, cap, "%s", col(st, 0));
        if (ntasks)
            *ntasks = (unsigned)sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    return FC_OK;
}
