/* SPDX-License-Identifier: Apache-2.0 */
/* The conduit's store, read side (store.h): the outbox as the publisher drains it, and the
 * status of a relocation. Writes that decide something live in store.c. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/error.h"
#include "store_internal.h"

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
    fc_rc rc = fc_store_prep(s, &st,
                             "SELECT seq, exchange, routing_key, message_id, body FROM outbox "
                             "WHERE seq > CAST(? AS INTEGER) ORDER BY seq LIMIT 1",
                             1, q);
    if (rc != FC_OK)
        return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        m->seq = sqlite3_column_int64(st, 0);
        m->exchange = strdup(fc_store_col(st, 1));
        m->routing_key = strdup(fc_store_col(st, 2));
        m->message_id = fc_store_col(st, 3) ? strdup(fc_store_col(st, 3)) : NULL;
        m->body = strdup(fc_store_col(st, 4));
        *found = true;
        if (!m->exchange || !m->routing_key || !m->body) {
            fc_outbox_msg_clear(m);
            *found = false;
            rc = FC_ERR(FC_E_NOMEM, "out of memory");
        }
    } else if (r != SQLITE_DONE) {
        rc = fc_store_dberr(s, "outbox");
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
    fc_rc rc = fc_store_prep(
        s, &st, "SELECT state, created, updated, error FROM relocations WHERE id = ?", 1, rid);
    if (rc != FC_OK)
        return rc;
    out->found = false;
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return FC_OK;
    }
    out->found = true;
    fc_reloc_state_from_name(fc_store_col(st, 0), &out->state);
    out->created = strdup(fc_store_col(st, 1));
    out->updated = strdup(fc_store_col(st, 2));
    out->error = fc_store_col(st, 3) ? strdup(fc_store_col(st, 3)) : NULL;
    sqlite3_finalize(st);
    if ((rc = fc_store_prep(s, &st, "SELECT task_id, kind, site, state, attempt, error FROM tasks "
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
        t->task_id = strdup(fc_store_col(st, 0));
        t->kind = strdup(fc_store_col(st, 1));
        t->site = strdup(fc_store_col(st, 2));
        t->state = strdup(fc_store_col(st, 3));
        t->attempt = (uint32_t)sqlite3_column_int(st, 4);
        t->error = fc_store_col(st, 5) ? strdup(fc_store_col(st, 5)) : NULL;
    }
    sqlite3_finalize(st);
    return rc;
}

fc_rc
fc_store_reloc_state(struct fc_store *s, const char *rid, char *state, size_t cap,
                     unsigned *ntasks)
{
    sqlite3_stmt *st = NULL;
    fc_rc rc = fc_store_prep(s, &st,
                             "SELECT state, (SELECT count(*) FROM tasks WHERE relocation_id = "
                             "relocations.id) FROM relocations WHERE id = ?",
                             1, rid);
    if (rc != FC_OK)
        return rc;
    snprintf(state, cap, "%s", "");
    if (ntasks)
        *ntasks = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(state, cap, "%s", fc_store_col(st, 0));
        if (ntasks)
            *ntasks = (unsigned)sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    return FC_OK;
}
