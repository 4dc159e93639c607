/* SPDX-License-Identifier: Apache-2.0 */
/* What store.c shares with the other files of the store (store_report.c): the SQLite handle,
 * the outbox writer, and the wording of a failed relocation's reason. Not for other users. */
#ifndef FLUID_CONDUIT_STORE_INTERNAL_H
#define FLUID_CONDUIT_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stddef.h>

#include "store.h"

sqlite3 *fc_store_sqlite(struct fc_store *s);
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

#endif
