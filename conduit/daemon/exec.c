/* SPDX-License-Identifier: Apache-2.0 */
/* The plan executor's decisions (see exec.h): pure, so that the rules are unit-tested
 * without RabbitMQ or SQLite. */
#include "exec.h"

#include <stdlib.h>
#include <string.h>

#include "fluid/error.h"

enum fc_xstate
fc_xstate_from_name(const char *name)
{
    if (strcmp(name, "pending") == 0)
        return FC_X_PENDING;
    if (strcmp(name, "queued") == 0)
        return FC_X_QUEUED;
    if (strcmp(name, "done") == 0)
        return FC_X_DONE;
    if (strcmp(name, "failed") == 0)
        return FC_X_FAILED;
    if (strcmp(name, "cancelled") == 0)
        return FC_X_CANCELLED;
    return FC_X_RUNNING; /* started, progress, retrying */
}

struct id_ix {
    const char *id;
    size_t ix;
};

static int
id_ix_cmp(const void *a, const void *b)
{
    return strcmp(((const struct id_ix *)a)->id, ((const struct id_ix *)b)->id);
}

static long
find(const struct id_ix *m, size_t n, const char *id)
{
    struct id_ix key = {id, 0};
    const struct id_ix *hit = bsearch(&key, m, n, sizeof *m, id_ix_cmp);
    return hit ? (long)hit->ix : -1;
}

void
fc_exec_decision_free(struct fc_exec_decision *d)
{
    free(d->publish);
    free(d->skip);
    d->publish = d->skip = NULL;
    d->npublish = d->nskip = 0;
}

fc_rc
fc_exec_decide(const struct fc_exec_task *t, size_t n, bool cancel_requested,
               unsigned max_parallel, enum fc_reloc_state current, struct fc_exec_decision *d)
{
    memset(d, 0, sizeof *d);
    d->state = current;
    d->publish = calloc(n ? n : 1, sizeof *d->publish);
    d->skip = calloc(n ? n : 1, sizeof *d->skip);
    if (!d->publish || !d->skip) {
        fc_exec_decision_free(d);
        return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    if (fc_reloc_state_final(current))
        return FC_OK;
    size_t inflight = 0, done = 0, failed = 0, cancelled = 0;
    for (size_t i = 0; i < n; i++) {
        switch (t[i].state) {
        case FC_X_QUEUED:
        case FC_X_RUNNING: inflight++; break;
        case FC_X_DONE: done++; break;
        case FC_X_FAILED:
            if (!failed++ && !d->cause)
                d->cause = t[i].task_id;
            break;
        case FC_X_CANCELLED:
            if (!cancelled++ && !failed && !d->cause)
                d->cause = t[i].task_id;
            break;
        case FC_X_PENDING: break;
        }
    }
    if (failed) { /* a failure names the first failed task even if one was cancelled first */
        for (size_t i = 0; i < n; i++)
            if (t[i].state == FC_X_FAILED) {
                d->cause = t[i].task_id;
                break;
            }
    }
    bool stopping = cancel_requested || failed || cancelled;
    if (stopping) {
        for (size_t i = 0; i < n; i++)
            if (t[i].state == FC_X_PENDING)
                d->skip[d->nskip++] = i;
        if (inflight == 0)
            d->state = failed ? FC_RS_FAILED : FC_RS_CANCELLED;
        else
            d->state = FC_RS_RUNNING;
        return FC_OK;
    }
    if (max_parallel == 0)
        max_parallel = 1;
    struct id_ix *m = calloc(n ? n : 1, sizeof *m);
    if (!m) {
        fc_exec_decision_free(d);
        return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        m[i] = (struct id_ix){t[i].task_id, i};
    qsort(m, n, sizeof *m, id_ix_cmp);
    for (size_t i = 0; i < n && inflight < max_parallel; i++) {
        if (t[i].state != FC_X_PENDING)
            continue;
        bool ready = true;
        for (size_t k = 0; k < t[i].ndeps && ready; k++) {
            long j = find(m, n, t[i].deps[k]);
            ready = j >= 0 && t[j].state == FC_X_DONE;
        }
        if (ready) {
            d->publish[d->npublish++] = i;
            inflight++;
        }
    }
    free(m);
    if (n > 0 && done == n)
        d->state = FC_RS_DONE;
    else if (inflight > 0)
        d->state = FC_RS_RUNNING;
    return FC_OK;
}
