/* SPDX-License-Identifier: Apache-2.0 */
/* The migrator side of the contract (docs/migrator-contract.md): a migrator is a program
 * that runs by hand, and under a broker also gets
 *   --task-fd N    its Task JSON (one object, then EOF) on descriptor N
 *   --events-fd N  where it writes events as JSON lines (progress, done, failed)
 * Data flows on stdin/stdout; logs go to stderr; the exit status is the outcome's fc_rc. */
#ifndef FLUID_MIGRATOR_H
#define FLUID_MIGRATOR_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "fluid/rc.h"

struct fc_migrator {
    const char *prog;
    int task_fd;            /* -1 when run by hand */
    int events_fd;          /* -1 when run by hand */
    json_t *task;           /* the Task object read from task_fd, or NULL */
    const char *relocation_id, *task_id, *stage; /* from the task (or NULL) */
    bool finished;          /* done or failed was emitted */
    uint64_t last_progress_ns;
};

/* Set by fc_migrator_init's SIGTERM/SIGINT handler; stages poll it. */
extern volatile sig_atomic_t fc_cancel_requested;

/* Removes --task-fd N / --events-fd N (and the --opt=N forms) from argv, reads and parses
 * the task (FC_E_INVALID naming what is wrong), starts logging as prog, sets the log
 * context, installs SIGTERM/SIGINT handlers, sets PR_SET_PDEATHSIG(SIGTERM) under a broker,
 * and ignores SIGPIPE (EPIPE is reported instead). */
fc_rc fc_migrator_init(struct fc_migrator *m, const char *prog, int *argc, char **argv);

/* {"event":"progress","stage":...,"done":N,"total":M, ...extra}; rate-limited to 4/s
 * unless force. extra (may be NULL) is merged and released. */
void fc_event_progress(struct fc_migrator *m, uint64_t done, uint64_t total, json_t *extra,
                       bool force);
/* {"event":"info", ...obj}: a note for the operator (mode chosen, spooling, fallback). */
void fc_event_info(struct fc_migrator *m, json_t *obj);
/* {"event":"done","result":{...}}; result is released. */
void fc_event_done(struct fc_migrator *m, json_t *result);
/* {"event":"failed","error":{"code":"FC_E_IO","message":...}} */
void fc_event_failed(struct fc_migrator *m, fc_rc rc, const char *msg);

/* Ends the run: on error emits failed (with fc_error_msg()) unless already done, logs the
 * error to stderr, frees the task. Returns the exit status to return from main(). */
int fc_migrator_finish(struct fc_migrator *m, fc_rc rc);

#endif
