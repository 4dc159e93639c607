/* SPDX-License-Identifier: Apache-2.0 */
/* The AMQP names of FluidCloud: exchanges, queues, routing keys and headers. They are part of
 * the documented contract (docs/amqp.md); clients not written in C use the same strings.
 * Needs no AMQP library: programs that only format routing keys include this alone. */
#ifndef FLUID_AMQP_NAMES_H
#define FLUID_AMQP_NAMES_H

#include <stdbool.h>
#include <stdio.h>

/* Queue (durable, x-dead-letter-exchange fluid.dead): RelocationRequests. */
#define FC_AMQP_Q_REQUESTS "fluid.requests"
/* Exchange (topic, durable): Tasks, routing key "<site>.<kind>". */
#define FC_AMQP_X_TASKS "fluid.tasks"
/* Per-site queue (durable, x-dead-letter-exchange fluid.dead) bound with "<site>.#". */
#define FC_AMQP_Q_TASKS_PREFIX "fluid.tasks."
/* Exchange (topic, durable): TaskEvents, relocation states, rejections, heartbeats. */
#define FC_AMQP_X_EVENTS "fluid.events"
/* Exchange (fanout, durable) and its queue (durable): rejected messages with a reason. */
#define FC_AMQP_X_DEAD "fluid.dead"
#define FC_AMQP_Q_DEAD "fluid.dead"
/* Exchange (topic, durable): Cancel messages, routing key "cancel.<relocation_id>". */
#define FC_AMQP_X_CONTROL "fluid.control"
/* Queues "fluid.outcome.<h>" (durable, x-expires) bound to fluid.events with "outcome.<h>",
 * holding the one outcome event of an idempotency key (h = first 32 hex digits of its
 * SHA-256): the broker's exactly-once record (docs/broker.md). Outcome events are published
 * to fluid.events with the header CC = ["outcome.<h>"], so one publish reaches the
 * subscribers and the record. */
#define FC_AMQP_Q_OUTCOME_PREFIX "fluid.outcome."
#define FC_AMQP_RK_OUTCOME_PREFIX "outcome."
/* Exclusive queues "fluid.lock.<h>": held by the broker connection running that key. */
#define FC_AMQP_Q_LOCK_PREFIX "fluid.lock."

/* Headers of a dead-lettered message (re-published to fluid.dead, body unchanged). */
#define FC_AMQP_H_REASON "x-fluid-reason"
#define FC_AMQP_H_ROUTING_KEY "x-fluid-routing-key"
#define FC_AMQP_H_EXCHANGE "x-fluid-exchange"
/* Header of outcome events: the task's idempotency key. */
#define FC_AMQP_H_IDEMPOTENCY_KEY "x-fluid-idempotency-key"

#define FC_AMQP_CONTENT_TYPE "application/json"
#define FC_AMQP_DEFAULT_URL "amqp://guest:guest@127.0.0.1:5672/"
#define FC_AMQP_NAME_MAX 256 /* AMQP short strings: names and routing keys < 256 bytes */

/* Routing keys. Each returns false when the result does not fit in cap (or > 255 bytes). */
static inline bool fc_amqp_fmt_ok_(int n, size_t cap)
{
    return n >= 0 && (size_t)n < cap && n < FC_AMQP_NAME_MAX;
}
/* "<site>.<kind>" on fluid.tasks */
static inline bool fc_amqp_rk_task(char *buf, size_t cap, const char *site, const char *kind)
{
    return fc_amqp_fmt_ok_(snprintf(buf, cap, "%s.%s", site, kind), cap);
}
/* "fluid.tasks.<site>" */
static inline bool fc_amqp_q_tasks(char *buf, size_t cap, const char *site)
{
    return fc_amqp_fmt_ok_(snprintf(buf, cap, FC_AMQP_Q_TASKS_PREFIX "%s", site), cap);
}
/* "relocation.<relocation_id>.task.<task_id>.<state>" on fluid.events */
static inline bool fc_amqp_rk_task_event(char *buf, size_t cap, const char *relocation_id,
                                         const char *task_id, const char *state)
{
    return fc_amqp_fmt_ok_(
        snprintf(buf, cap, "relocation.%s.task.%s.%s", relocation_id, task_id, state), cap);
}
/* "relocation.<relocation_id>.state.<state>" on fluid.events */
static inline bool fc_amqp_rk_relocation_state(char *buf, size_t cap, const char *relocation_id,
                                               const char *state)
{
    return fc_amqp_fmt_ok_(snprintf(buf, cap, "relocation.%s.state.%s", relocation_id, state),
                           cap);
}
/* "request.rejected" on fluid.events */
#define FC_AMQP_RK_REQUEST_REJECTED "request.rejected"
/* "broker.<site>.<broker_id>.heartbeat" on fluid.events */
static inline bool fc_amqp_rk_heartbeat(char *buf, size_t cap, const char *site,
                                        const char *broker_id)
{
    return fc_amqp_fmt_ok_(snprintf(buf, cap, "broker.%s.%s.heartbeat", site, broker_id), cap);
}
/* Binding key of every heartbeat: "broker.*.*.heartbeat" */
#define FC_AMQP_BK_HEARTBEATS "broker.*.*.heartbeat"
/* "cancel.<relocation_id>" on fluid.control; brokers bind "cancel.#" */
static inline bool fc_amqp_rk_cancel(char *buf, size_t cap, const char *relocation_id)
{
    return fc_amqp_fmt_ok_(snprintf(buf, cap, "cancel.%s", relocation_id), cap);
}
#define FC_AMQP_BK_CANCEL "cancel.#"
/* "resume.<relocation_id>" on fluid.control (fluid.resume/1); brokers bind "resume.#" */
static inline bool fc_amqp_rk_resume(char *buf, size_t cap, const char *relocation_id)
{
    return fc_amqp_fmt_ok_(snprintf(buf, cap, "resume.%s", relocation_id), cap);
}
#define FC_AMQP_BK_RESUME "resume.#"

#endif
