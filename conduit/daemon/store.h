/* SPDX-License-Identifier: Apache-2.0 */
/* The conduit's store (SQLite, WAL): relocations, their tasks, and an outbox of messages to
 * publish. Every change and the messages it causes are written in one transaction; the
 * daemon publishes outbox rows in order and deletes each after RabbitMQ confirmed it, so a
 * crash at any point neither loses a message nor republishes a task whose outcome is
 * recorded (docs/fluid-conduit.md). */
#ifndef FLUID_CONDUIT_STORE_H
#define FLUID_CONDUIT_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "fluid/msg.h"

struct fc_store;

/* Opens (creating if needed) the database at path; its folder must exist.
 * max_parallel: tasks of one relocation queued or running at once (>= 1). */
fc_rc fc_store_open(const char *path, unsigned max_parallel, struct fc_store **out);
void fc_store_close(struct fc_store *s);

/* Records a request with an explicit plan: relocation "accepted", its tasks "pending", a
 * relocation state event in the outbox, then advances it (ready tasks into the outbox).
 * *dup = true and nothing changes when a relocation with this idempotency_key exists.
 * FC_E_CONFLICT (path in fc_msg_error_path style via *conflict_path, may be NULL) when the
 * relocation_id or a task's idempotency_key belongs to another request. */
fc_rc fc_store_add_request(struct fc_store *s, const struct fc_request *r, bool *dup,
                           const char **conflict_path);

/* fc_store_add_request, and in the same transaction the planner's report of the request
 * (report "plan", see Reports; NULL: none). */
fc_rc fc_store_add_planned(struct fc_store *s, const struct fc_request *r, const json_t *report,
                           bool *dup, const char **conflict_path);

/* Whether a relocation with this idempotency_key is recorded (the conduit asks before
 * planning a request that came without a plan, so that a re-submitted request is never
 * planned again). */
fc_rc fc_store_has_key(struct fc_store *s, const char *idempotency_key, bool *found);

/* Records a request that could not be planned: relocation "failed" with `reason`, no
 * tasks, a relocation state event in the outbox. *dup and FC_E_CONFLICT as for
 * fc_store_add_request. */
fc_rc fc_store_add_failed(struct fc_store *s, const struct fc_request *r, const char *reason,
                          bool *dup, const char **conflict_path);

/* Applies a TaskEvent to its task and advances the relocation. *known = false (and nothing
 * changes) when no task has that relocation_id, task_id and idempotency_key. Events that
 * arrive after the task's outcome are ignored. */
fc_rc fc_store_apply_event(struct fc_store *s, const struct fc_task_event *e, bool *known);

/* Cancel requested: no more tasks are published; pending ones are recorded cancelled; the
 * relocation ends when its in-flight tasks end. *known = false for an unknown relocation. */
fc_rc fc_store_cancel(struct fc_store *s, const char *relocation_id, const char *reason,
                      bool *known);

/* Runs a failed or cancelled relocation again (fluidctl resume), in one transaction:
 * - its failed and cancelled tasks go back to pending under a new idempotency_key (the old
 *   key with "/r<N>": brokers answer a known key with its recorded outcome), their error
 *   and result cleared; done tasks stay done;
 * - after a cleanup (a "cleanup" report exists) every task runs again (what the done ones
 *   made is gone) and the cleanup report is dropped (cleanup on failure can run again);
 * - the relocation is "accepted" again (cancel flag and error cleared), a fluid.resume/1 for
 *   the brokers and the state event go to the outbox, and it is advanced;
 * - a relocation that failed while planning (no tasks) is forgotten and its request put in
 *   the outbox for fluid.requests: the conduit plans it again as it arrives (replan).
 * out->refused (static text) and nothing changes for a done or running relocation;
 * FC_E_NOTFOUND for an unknown one. */
struct fc_resume_result {
    const char *refused;
    size_t reset;
    bool full, replan;
};
fc_rc fc_store_resume(struct fc_store *s, const char *relocation_id,
                      struct fc_resume_result *out);

/* Advances every relocation that is not final (at start, after a crash). */
fc_rc fc_store_advance_all(struct fc_store *s);

struct fc_outbox_msg {
    int64_t seq;
    char *exchange, *routing_key, *message_id, *body;
};
/* The oldest outbox message; *found = false when empty. */
fc_rc fc_store_outbox_next(struct fc_store *s, struct fc_outbox_msg *m, bool *found);
fc_rc fc_store_outbox_delete(struct fc_store *s, int64_t seq);
/* The oldest outbox message with seq > after (for publishing a batch before deleting it). */
fc_rc fc_store_outbox_after(struct fc_store *s, int64_t after, struct fc_outbox_msg *m,
                            bool *found);
/* Deletes every outbox message with seq <= upto (one transaction). */
fc_rc fc_store_outbox_delete_upto(struct fc_store *s, int64_t upto);
void fc_outbox_msg_clear(struct fc_outbox_msg *m);

/* Fills st (relocation_id and correlation_id are left to the caller) from the store:
 * st->found = false for an unknown relocation. */
fc_rc fc_store_status(struct fc_store *s, const char *relocation_id, struct fc_status *st);

/* State of one relocation ("" if unknown) and how many tasks it has; for tests/logs. */
fc_rc fc_store_reloc_state(struct fc_store *s, const char *relocation_id, char *state,
                           size_t cap, unsigned *ntasks);

/* ---- Reports (store_report.c): JSON documents kept per relocation and kind ----
 * Kinds: "plan" (the planner's report: creates, unmappable, notes), "overview" (target read
 * back and compared with the source, usage), "cleanup" (what cleanup deleted). */
#define FC_CONDUIT_SCHEMA_REPORT_EVENT "fluid.conduit-report/1"

/* Records (or replaces) a report. publish: also puts an event in the outbox, routing key
 * relocation.<rid>.report.<kind> on fluid.events, body
 * {"schema":"fluid.conduit-report/1","relocation_id","kind","ts","report":body}. */
fc_rc fc_store_report_put(struct fc_store *s, const char *rid, const char *kind,
                          const json_t *body, bool publish);
/* The report (new reference), or *out = NULL when there is none. */
fc_rc fc_store_report_get(struct fc_store *s, const char *rid, const char *kind, json_t **out);
/* The request as recorded (with its plan) and the relocation's state; FC_E_NOTFOUND when
 * the relocation is unknown. */
fc_rc fc_store_request_get(struct fc_store *s, const char *rid, json_t **request,
                           enum fc_reloc_state *state);

struct fc_report_due {
    char relocation_id[FC_ID_MAX + 1];
    char kind[16]; /* "overview" or "cleanup" */
};
/* Relocations the conduit planned that still need a report: "overview" for those done
 * without one, "cleanup" for those failed with options.cleanup_on_failure and no cleanup
 * record. *out is malloc'd (free it). */
fc_rc fc_store_reports_due(struct fc_store *s, struct fc_report_due **out, size_t *n);

#endif
