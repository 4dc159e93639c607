/* SPDX-License-Identifier: Apache-2.0 */
/* The live view's model and rendering (relocate --watch, live.c), without I/O: what a task
 * event does to a task, the rows (one per server and volume, one for the shared resources)
 * and their text and JSON lines. Pure functions: unit-tested in tests/unit/conduit.
 *
 * What a row shows (docs/fluidctl.md "relocate --watch"):
 *   running  its current step; bytes moved / total, rate and ETA of that step's transfer
 *            only (a step that moves no bytes shows what it waits for on the cloud, or
 *            nothing: never the bytes of an earlier step)
 *   done     no step; the bytes all its steps moved ("512 KiB moved"), no rate, no ETA
 *   failed, cancelled  the step that ended so and the bytes it had moved, no rate, no ETA
 *   queued, pending    the next step
 * The rate of a transfer is the bytes it moved over the last FC_LIVE_WINDOW_MS of its
 * progress events (the furthest stage counts); a transfer that ended, or that moved all it
 * announced, has rate 0 and no ETA. */
#ifndef FLUID_CTL_LIVE_VIEW_H
#define FLUID_CTL_LIVE_VIEW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fluid/msg.h"

#define FC_LIVE_WINDOW_MS 10000
#define FC_LIVE_SAMPLES 16

struct fc_live_task {
    char id[FC_ID_MAX + 1], step[32], subject[300], state[16];
    char wait[64]; /* "ACTIVE? 12s": what the step waits for on the cloud, from its progress */
    uint64_t done, total;   /* bytes of this task's transfer (total 0: unknown) */
    bool bytes;             /* it reported bytes (it is a transfer) */
    struct {
        uint64_t ms, done;
    } sample[FC_LIVE_SAMPLES]; /* its last byte progress events, oldest first */
    size_t nsample;
};

struct fc_live_row {
    char subject[300], step[40], state[16], wait[64];
    uint64_t done, total; /* the current step's transfer; 0, 0 when it moves no bytes */
    uint64_t moved;       /* bytes moved by all the subject's steps so far */
    double rate;          /* bytes/s of the current step's transfer, 0 when none runs */
    long eta;             /* seconds, -1: unknown or nothing left to move */
};

/* A task event: state is its fluid.event/1 state name, progress its progress object or
 * NULL, now_ms the time it arrived (monotonic). A progress with "unit":"seconds" is a wait
 * on the cloud ("state" and "done" seconds), any other one bytes. A new attempt ("started")
 * starts the transfer again; a final state ends it (done: all of total moved). */
void fc_live_task_event(struct fc_live_task *t, const char *state, const json_t *progress,
                        uint64_t now_ms);

/* The rate of t's transfer in bytes/s at now_ms: 0 when it is not running, moved all it
 * announced, or reported nothing for FC_LIVE_WINDOW_MS. */
double fc_live_task_rate(const struct fc_live_task *t, uint64_t now_ms);

/* The rows of tasks t[0..nt) at now_ms: subjects in order of first appearance, "" (the
 * shared resources) first. Returns how many (at most cap). */
size_t fc_live_rows(const struct fc_live_task *t, size_t nt, uint64_t now_ms,
                    struct fc_live_row *r, size_t cap);

/* One text line of a row; with_bytes false leaves out what changes with every progress
 * event (the line printed when stdout is not a terminal is compared without them). */
void fc_live_format_row(const struct fc_live_row *r, char *out, size_t cap, bool with_bytes);

/* The fluidctl.live/1 JSON object of a row (new reference). */
json_t *fc_live_row_json(const char *relocation_id, const struct fc_live_row *r);

/* "512 KiB", "1.5 GiB" */
void fc_live_human(double bytes, char *out, size_t cap);

#endif
