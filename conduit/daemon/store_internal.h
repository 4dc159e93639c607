/* SPDX-License-Identifier: Apache-2.0 */
/* What store.c shares with the other files of the store (store_report.c, store_outbox.c): the
 * SQLite handle and statement helpers, the outbox writer, and the wording of a failed
 * relocation's reason. Not for other users. */
#ifndef FLUID_CONDUIT_STORE_INTERNAL_H
#define FLUID_CONDUIT_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stddef.h>

#include "store.h"

sqlite3 *fc_store_sqlite(struct fc_store *s);
/* FC_E_IO "store PATH: what: <sqlite's message>". */
fc_rc fc_store_dberr(struct fc_store *s, const char *what);
/* Prepares sql and binds the n text arguments that follow (NULL binds SQL NULL). */
fc_rc fc_store_prep(struct fc_store *s, sqlite3_stmt **st, const char *sql, int n, ...);
/* Column i of the current row as text, NULL for SQL NULL. */
const char *fc_store_col(sqlite3_stmt *st, int i);
/* Steps st once and finalizes it: FC_E_CONFLICT for a unique/primary key violation. */
fc_rc fc_store_run1(struct fc_store *s, sqlite3_stmt *st, const char *what);
/* Runs one statement with text arguments (NULL binds SQL NULL): SQL(s, "what", sql, ...). */
#define SQL(s_, what_, sql_, ...)                                                              \
    ({                                                                                         \
        sqlite3_stmt *st_ = NULL;                                                              \
        const char *args_[] = {__VA_ARGS__};                                                   \
        fc_rc r_ = fc_store_prep((s_), &st_, (sql_), 0);                                       \
        for (size_t i_ = 0; r_ == FC_OK && i_ < sizeof args_ / sizeof args_[0]; i_++) {        \
            if (args_[i_])                                                                     \
                sqlite3_bind_text(st_, (int)i_ + 1, args_[i_], -1, SQLITE_TRANSIENT);          \
            else                                                                               \
                sqlite3_bind_null(st_, (int)i_ + 1);                                           \
        }                                                                                      \
        r_ == FC_OK ? fc_store_run1((s_), st_, (what_)) : (sqlite3_finalize(st_), r_);         \
    })

const char *fc_store_path(const struct fc_store *s);
/* Inside a transaction: adds a message to the outbox (body is taken). */
fc_rc fc_store_outbox_put(struct fc_store *s, const char *exchange, const char *rk,
                          const char *msg_id, json_t *body);
/* Inside a transaction: records (or replaces) a report, and its event when publish. */
fc_rc fc_store_report_write(struct fc_store *s, const char *rid, const char *kind,
                            const json_t *body, bool publish);
/* The reason of a relocation that failed because task `task_id` failed with `error`:
 * "step launch (task t-launch-...): FC_E_REMOTE: ..." for the planner's task ids
 * (t-<step>-<hex>), else "task <id>: <error>". */
void fc_store_failure_reason(const char *task_id, const char *error, char *out, size_t cap);

/* Transactions: BEGIN IMMEDIATE; finish commits when rc is FC_OK, else rolls back and
 * returns rc with its message kept. */
fc_rc fc_store_begin(struct fc_store *s);
fc_rc fc_store_finish(struct fc_store *s, fc_rc rc);

/* A task as the executor sees it (dependencies parsed for pending tasks only). */
struct fc_store_row {
    char *task_id, *state, *task, *site, *kind, *key;
    char **deps;
    size_t ndeps;
};
/* The tasks of rid in plan order (the task bodies are not loaded: fc_store_task_body). */
fc_rc fc_store_load_tasks(struct fc_store *s, const char *rid, struct fc_store_row **out,
                          size_t *n);
void fc_store_rows_free(struct fc_store_row *r, size_t n);
/* The fluid.task/1 body recorded for a task (new reference), or NULL. */
json_t *fc_store_task_body(struct fc_store *s, const char *rid, const char *tid);
/* Inside a transaction: a relocation state event (task counts from r) into the outbox. */
fc_rc fc_store_reloc_event(struct fc_store *s, const char *rid, enum fc_reloc_state state,
                           const char *error, const struct fc_store_row *r, size_t n);
/* Inside a transaction: applies the executor's decision for rid (publish ready tasks, skip,
 * end the relocation). */
fc_rc fc_store_advance(struct fc_store *s, const char *rid);

#endif
