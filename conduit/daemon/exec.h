/* SPDX-License-Identifier: Apache-2.0 */
/* The plan executor's decisions, as a pure function (no I/O): given the tasks of one
 * relocation and their states, which tasks to publish now, which pending tasks will never
 * run, and the relocation's state. The store (store.c) applies them in one transaction. */
#ifndef FLUID_CONDUIT_EXEC_H
#define FLUID_CONDUIT_EXEC_H

#include <stdbool.h>
#include <stddef.h>

#include "fluid/msg.h"

enum fc_xstate {
    FC_X_PENDING,   /* not published yet */
    FC_X_QUEUED,    /* published to fluid.tasks, no event yet */
    FC_X_RUNNING,   /* started, progress or retrying */
    FC_X_DONE,
    FC_X_FAILED,
    FC_X_CANCELLED,
};
/* The store's name of each state: pending, queued, running (for started/progress/retrying
 * the store keeps the event's name), done, failed, cancelled. */
enum fc_xstate fc_xstate_from_name(const char *name);

struct fc_exec_task {
    const char *task_id;
    const char *const *deps;  /* task_ids of the same relocation */
    size_t ndeps;
    enum fc_xstate state;
};

struct fc_exec_decision {
    size_t *publish;     /* indexes of tasks to publish now, in plan order */
    size_t npublish;
    size_t *skip;        /* pending tasks that will never run (a task failed or was cancelled) */
    size_t nskip;
    enum fc_reloc_state state;
    const char *cause;   /* task_id of the first failed/cancelled task, or NULL */
};

/* Rules (docs/fluid-conduit.md):
 * - a pending task is ready when all its dependencies are done; ready tasks are published
 *   in plan order while fewer than max_parallel tasks are queued or running;
 * - once a task has failed or been cancelled, or cancel was requested, nothing more is
 *   published and every pending task is skipped (recorded as cancelled); the relocation
 *   ends when no task is in flight: failed if a task failed, else cancelled;
 * - every task done: done; a task in flight: running; else the current state stays.
 * Final states never change. Arrays in d are malloc'd (fc_exec_decision_free). */
fc_rc fc_exec_decide(const struct fc_exec_task *t, size_t n, bool cancel_requested,
                     unsigned max_parallel, enum fc_reloc_state current,
                     struct fc_exec_decision *d);
void fc_exec_decision_free(struct fc_exec_decision *d);

#endif
