/* SPDX-License-Identifier: Apache-2.0 */
/* A Viaduct: a chain of migrator processes joined by pipes (docs/viaduct.md).
 *
 * Each stage runs `<migrator_dir>/fluid-<kind> --task-fd 3 --events-fd 4 <args...>` with
 * fc_spawn: stdin = the previous stage's stdout (or in_fd), stdout = the next stage's stdin
 * (or out_fd), stderr = a pipe whose tail is kept, fd 3 = the task JSON, fd 4 = an events
 * pipe. All stages share one process group, so cancel and timeout signal the whole chain
 * (SIGTERM, then SIGKILL after a grace period). Exits are collected through pidfds.
 *
 * The runtime is a poll-driven state machine, so that one thread can supervise many
 * viaducts and an AMQP connection: fc_viaduct_pollfds() + poll() + fc_viaduct_step(), until
 * fc_viaduct_finished(). fc_viaduct_run() does that loop for a single viaduct. */
#ifndef FLUID_VIADUCT_H
#define FLUID_VIADUCT_H

#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fluid/rc.h"

#define FC_VIADUCT_MAX_STAGES 16
#define FC_VIADUCT_EVENT_LINE_MAX (64u << 10) /* a longer event line is a protocol error */
#define FC_VIADUCT_TAIL 4096                  /* bytes of stderr kept per stage */

struct fc_viaduct_stage_spec {
    const char *kind;        /* ^[a-z][a-z0-9-]{0,31}$: runs fluid-<kind> */
    const char *const *args; /* argv after the program name */
    size_t nargs;
};

struct fc_viaduct;

/* Called for every valid event line of a stage (ev is borrowed: incref to keep it). */
typedef void (*fc_viaduct_event_fn)(void *arg, struct fc_viaduct *v, size_t stage,
                                    const json_t *ev);

struct fc_viaduct_opts {
    const char *migrator_dir;   /* absolute folder holding fluid-<kind> */
    const struct fc_viaduct_stage_spec *stages;
    size_t nstages;             /* 1 .. FC_VIADUCT_MAX_STAGES */
    const char *task_json;      /* given to every stage on fd 3 (may be NULL: "{}") */
    size_t task_len;
    int in_fd;                  /* data into stage 0 (-1: /dev/null); not owned */
    int out_fd;                 /* data out of the last stage (-1: /dev/null); not owned */
    int log_fd;                 /* stages' stderr is copied here too (-1: only the tail) */
    uint32_t timeout_ms;        /* whole chain; 0 = none */
    uint32_t grace_ms;          /* SIGTERM -> SIGKILL; 0 = 2000 */
    const char *const *env;     /* stages' environment; NULL = the caller's */
    fc_viaduct_event_fn on_event;
    void *arg;
};

struct fc_viaduct_stage {
    char kind[40];
    pid_t pid;
    bool exited;
    int status;             /* wait status when exited */
    unsigned exit_order;    /* 1 for the first stage to exit, ... */
    bool done_event, failed_event;
    json_t *result;         /* the done event's result (owned), or NULL */
    fc_rc failed_code;      /* the failed event's code (FC_E_INTERNAL if unreadable) */
    char failed_msg[1024];
    uint64_t bytes_in, bytes_out, zero_bytes; /* from its progress/done events */
    uint64_t events, bad_events;
    char bad_event_msg[256]; /* the first protocol error of its events */
    char tail[FC_VIADUCT_TAIL + 1]; /* last bytes of its stderr, NUL-terminated */
};

/* Spawns the chain. FC_E_NOTFOUND naming the program if a migrator is missing (nothing is
 * left running), FC_E_INVALID for a bad kind or stage count. */
fc_rc fc_viaduct_start(const struct fc_viaduct_opts *o, struct fc_viaduct **out);

/* Fills at most cap pollfds with what the viaduct waits for; returns how many. */
size_t fc_viaduct_pollfds(struct fc_viaduct *v, struct pollfd *pfd, size_t cap);
/* Handles what poll() reported for the n pollfds filled by fc_viaduct_pollfds (the same
 * array), reaps exited stages, and enforces the timeout and the kill grace period. Safe to
 * call with revents all zero (to check deadlines). */
void fc_viaduct_step(struct fc_viaduct *v, struct pollfd *pfd, size_t n);
/* Milliseconds until the next deadline (timeout, SIGKILL), or -1 when none. */
int fc_viaduct_next_ms(const struct fc_viaduct *v);

/* Stops the chain: SIGTERM to the group, SIGKILL after grace_ms. why = FC_E_CANCELLED or
 * FC_E_TIMEOUT becomes the outcome. Idempotent. */
void fc_viaduct_cancel(struct fc_viaduct *v, fc_rc why);

/* True when every stage has exited and its events and stderr are drained. */
bool fc_viaduct_finished(const struct fc_viaduct *v);

/* The outcome once finished: FC_OK when every stage exited 0 after a done event; else the
 * cancel reason, or the rc of the failing stage (the first to exit unsuccessfully: its failed
 * event's code, else its exit status as an fc_rc, else FC_E_CHILD), with a message naming
 * the stage (fc_error_msg()). *stage gets its index (-1 when none or cancelled). */
fc_rc fc_viaduct_outcome(const struct fc_viaduct *v, int *stage);

size_t fc_viaduct_nstages(const struct fc_viaduct *v);
const struct fc_viaduct_stage *fc_viaduct_stage(const struct fc_viaduct *v, size_t i);
/* Milliseconds since start. */
uint64_t fc_viaduct_elapsed_ms(const struct fc_viaduct *v);

/* Kills (SIGKILL) and reaps whatever still runs, closes everything, frees. NULL is fine. */
void fc_viaduct_free(struct fc_viaduct *v);

/* Start, loop until finished (cancel_flag, when it becomes non-zero, cancels), return the
 * outcome. *out (may be NULL) keeps the viaduct for inspection: free it. */
fc_rc fc_viaduct_run(const struct fc_viaduct_opts *o, const volatile int *cancel_flag,
                     struct fc_viaduct **out);

/* The migrator folder to use: flag, else $FLUID_MIGRATOR_DIR, else config_value, else the
 * folder of the running executable when it holds a migrator (build tree, bin/), else
 * the installed libexec folder (fallback). Returns a malloc'd absolute path. */
char *fc_viaduct_migrator_dir(const char *flag, const char *config_value, const char *fallback);
/* The kinds found in dir (fluid-<kind> executables with a valid kind), sorted; a
 * NULL-terminated malloc'd array of malloc'd strings (free with fc_viaduct_kinds_free). */
char **fc_viaduct_kinds(const char *dir);
void fc_viaduct_kinds_free(char **kinds);

#endif
