/* SPDX-License-Identifier: Apache-2.0 */
/* The store's reports (store.h "Reports"): the planner's report, the overview and the cleanup
 * record of each relocation, kept in table `reports`; and which relocations still need their
 * overview or their automatic cleanup (found again after a restart). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/amqp_names.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "store_internal.h"

void
fc_store_failure_reason(const char *task_id, const char *error, char *out, size_t cap)
{
    const char *e = error ? error : "ended";
    /* the planner's ids: t-<step>-<10 hex>; the step is what an operator recognises */
    const char *dash = strncmp(task_id, "t-", 2) == 0 ? strrchr(task_id, '-') : NULL;
    if (dash && dash > task_id + 2)
        snprintf(out, cap, "step %.*s (task %s): %s", (int)(dash - task_id - 2), task_id + 2,
                 task_id, e);
    else
        snprintf(out, cap, "task %s: %s", task_id, e);
}

static fc_rc
dberr(struct fc_store *s, const char *what)
{
    return FC_ERR(FC_E_IO, "store %s: %s: %s", fc_store_path(s), what,
                  sqlite3_errmsg(fc_store_sqlite(s)));
}

static fc_rc
sql_exec(struct fc_store *s, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(fc_store_sqlite(s), sql, NULL, NULL, &msg) != SQLITE_OK) {
        fc_rc rc = FC_ERR(FC_E_IO, "store %s: %s", fc_store_path(s), msg ? msg : "error");
        sqlite3_free(msg);
        return rc;
    }
    return FC_OK;
}

fc_rc
fc_store_report_write(struct fc_store *s, const char *rid, const char *kind, const json_t *body,
                      bool publish)
{
    char *text = fc_msg_dump((json_t *)body);
    if (!text)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    char now[40];
    fc_msg_now(now, sizeof now);
    fc_rc rc = FC_OK;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(fc_store_sqlite(s),
                           "INSERT INTO reports(relocation_id, kind, body, updated) "
                           "VALUES(?,?,?,?) ON CONFLICT(relocation_id, kind) DO UPDATE SET "
                           "body = excluded.body, updated = excluded.updated",
                           -1, &st, NULL) != SQLITE_OK)
        rc = dberr(s, "prepare report");
    if (rc == FC_OK) {
        sqlite3_bind_text(st, 1, rid, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, kind, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, now, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = dberr(s, "report insert");
    }
    sqlite3_finalize(st);
    free(text);
    if (rc == FC_OK && publish) {
        char rk[FC_AMQP_NAME_MAX], mid[FC_AMQP_NAME_MAX];
        snprintf(rk, sizeof rk, "relocation.%s.report.%s", rid, kind);
        snprintf(mid, sizeof mid, "%s/report/%s/%s", rid, kind, now);
        json_t *ev = json_pack("{s:s,s:s,s:s,s:s,s:O}", "schema", FC_CONDUIT_SCHEMA_REPORT_EVENT,
                               "relocation_id", rid, "kind", kind, "ts", now, "report", body);
        rc = fc_store_outbox_put(s, FC_AMQP_X_EVENTS, rk, mid, ev);
    }
    return rc;
}

fc_rc
fc_store_report_put(struct fc_store *s, const char *rid, const char *kind, const json_t *body,
                    bool publish)
{
    fc_rc rc = sql_exec(s, "BEGIN IMMEDIATE");
    if (rc == FC_OK)
        rc = fc_store_report_write(s, rid, kind, body, publish);
    if (rc == FC_OK)
        return sql_exec(s, "COMMIT");
    char keep[sizeof fc_error_last()->msg];
    snprintf(keep, sizeof keep, "%s", fc_error_msg());
    sql_exec(s, "ROLLBACK");
    return FC_ERR(rc, "%s", keep);
}

fc_rc
fc_store_report_get(struct fc_store *s, const char *rid, const char *kind, json_t **out)
{
    *out = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(fc_store_sqlite(s),
                           "SELECT body FROM reports WHERE relocation_id = ? AND kind = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return dberr(s, "prepare report");
    sqlite3_bind_text(st, 1, rid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_TRANSIENT);
    fc_rc rc = FC_OK;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *out = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
        if (!*out)
            rc = FC_ERR(FC_E_IO, "store %s: report %s/%s: not JSON", fc_store_path(s), rid, kind);
    } else if (r != SQLITE_DONE) {
        rc = dberr(s, "report");
    }
    sqlite3_finalize(st);
    return rc;
}

fc_rc
fc_store_request_get(struct fc_store *s, const char *rid, json_t **request,
                     enum fc_reloc_state *state)
{
    *request = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(fc_store_sqlite(s),
                           "SELECT request, state FROM relocations WHERE id = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return dberr(s, "prepare request");
    sqlite3_bind_text(st, 1, rid, -1, SQLITE_TRANSIENT);
    fc_rc rc = FC_OK;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *request = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
        if (state)
            fc_reloc_state_from_name((const char *)sqlite3_column_text(st, 1), state);
        if (!*request)
            rc = FC_ERR(FC_E_IO, "store %s: request %s: not JSON", fc_store_path(s), rid);
    } else if (r == SQLITE_DONE) {
        rc = FC_ERR(FC_E_NOTFOUND, "relocation %s: unknown to the conduit", rid);
    } else {
        rc = dberr(s, "request");
    }
    sqlite3_finalize(st);
    return rc;
}

/* The conduit planned it (a "plan" report exists) and it ended: done without an overview,
 * or failed with options.cleanup_on_failure and no cleanup yet. */
static const char due_sql[] =
    "SELECT id, 'overview' FROM relocations r WHERE state = 'done' "
    " AND EXISTS(SELECT 1 FROM reports WHERE relocation_id = r.id AND kind = 'plan')"
    " AND NOT EXISTS(SELECT 1 FROM reports WHERE relocation_id = r.id AND kind = 'overview')"
    " UNION ALL "
    "SELECT id, 'cleanup' FROM relocations r WHERE state = 'failed' "
    " AND json_extract(request, '$.options.cleanup_on_failure') = 1"
    " AND EXISTS(SELECT 1 FROM reports WHERE relocation_id = r.id AND kind = 'plan')"
    " AND NOT EXISTS(SELECT 1 FROM reports WHERE relocation_id = r.id AND kind = 'cleanup')";

fc_rc
fc_store_reports_due(struct fc_store *s, struct fc_report_due **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(fc_store_sqlite(s), due_sql, -1, &st, NULL) != SQLITE_OK)
        return dberr(s, "prepare reports due");
    fc_rc rc = FC_OK;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        struct fc_report_due *nd = realloc(*out, (*n + 1) * sizeof *nd);
        if (!nd) {
            rc = FC_ERR(FC_E_NOMEM, "out of memory");
            break;
        }
        *out = nd;
        snprintf(nd[*n].relocation_id, sizeof nd->relocation_id, "%s",
                 (const char *)sqlite3_column_text(st, 0));
        snprintf(nd[*n].kind, sizeof nd->kind, "%s", (const char *)sqlite3_column_text(st, 1));
        (*n)++;
    }
    if (rc == FC_OK && r != SQLITE_DONE)
        rc = dberr(s, "reports due");
    sqlite3_finalize(st);
    return rc;
}
