/* SPDX-License-Identifier: Apache-2.0 */
/* The conduit's store: resuming a failed or cancelled relocation (fc_store_resume, store.h;
 * docs/fluid-conduit.md "Resume"). */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "fluid/amqp_names.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "store_internal.h"

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
reset_task(struct fc_store *s, const char *rid, const struct fc_store_row *x, const char *now)
{
    char key[FC_KEY_MAX + 16];
    fc_rc rc = resumed_key(x->task_id, x->key, key, sizeof key);
    if (rc != FC_OK)
        return rc;
    json_t *body = fc_store_task_body(s, rid, x->task_id);
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
    fc_rc rc = fc_store_begin(s);
    if (rc != FC_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = fc_store_prep(s, &st, "SELECT state, request, idempotency_key, "
                           "EXISTS(SELECT 1 FROM reports WHERE relocation_id = r.id AND "
                           "kind = 'cleanup') FROM relocations r WHERE id = ?",
                   1, rid)) != FC_OK)
        return fc_store_finish(s, rc);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return fc_store_finish(s,
                               FC_ERR(FC_E_NOTFOUND, "relocation %s: unknown to the conduit", rid));
    }
    enum fc_reloc_state cur = FC_RS_ACCEPTED;
    fc_reloc_state_from_name(fc_store_col(st, 0), &cur);
    char *request = strdup(fc_store_col(st, 1) ? fc_store_col(st, 1) : "");
    char *rkey = strdup(fc_store_col(st, 2) ? fc_store_col(st, 2) : "");
    bool cleaned = sqlite3_column_int(st, 3) != 0;
    sqlite3_finalize(st);
    if (!request || !rkey) {
        free(request);
        free(rkey);
        return fc_store_finish(s, FC_ERR(FC_E_NOMEM, "out of memory"));
    }
    if (cur == FC_RS_DONE)
        out->refused = "the relocation is done: nothing to resume";
    else if (!fc_reloc_state_final(cur))
        out->refused = "the relocation is still running";
    struct fc_store_row *r = NULL;
    size_t n = 0;
    if (!out->refused)
        rc = fc_store_load_tasks(s, rid, &r, &n);
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
            rc = fc_store_reloc_event(s, rid, FC_RS_ACCEPTED, NULL, r, n);
        if (rc == FC_OK)
            rc = fc_store_advance(s, rid);
    }
    if (rc == FC_OK && !out->refused)
        fc_log(FC_INFO, FC_MSG("relocation resumed"), FC_STR("relocation", rid),
               FC_U64("tasks_reset", out->reset), FC_STR("full", out->full ? "yes" : "no"),
               FC_STR("replan", out->replan ? "yes" : "no"));
    fc_store_rows_free(r, n);
    free(request);
    free(rkey);
    return fc_store_finish(s, rc);
}
