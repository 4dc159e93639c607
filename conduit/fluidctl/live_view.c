/* SPDX-License-Identifier: Apache-2.0 */
/* The live view's model and rendering, without I/O (live_view.h). */
#include "live_view.h"

#include <stdio.h>
#include <string.h>

static bool
running(const char *st)
{
    return !strcmp(st, "started") || !strcmp(st, "progress") || !strcmp(st, "retrying");
}

static bool
final(const char *st)
{
    return !strcmp(st, "done") || !strcmp(st, "failed") || !strcmp(st, "cancelled");
}

static void
restart(struct fc_live_task *t)
{
    t->done = 0;
    t->nsample = 0;
    t->wait[0] = '\0';
}

void
fc_live_task_event(struct fc_live_task *t, const char *state, const json_t *progress,
                   uint64_t now_ms)
{
    if (!strcmp(state, "started") && !strcmp(t->state, "retrying"))
        restart(t); /* a new attempt moves everything again */
    snprintf(t->state, sizeof t->state, "%s", state);
    const char *unit = json_string_value(json_object_get(progress, "unit"));
    if (progress && unit && !strcmp(unit, "seconds")) {
        const char *st = json_string_value(json_object_get(progress, "state"));
        snprintf(t->wait, sizeof t->wait, "%.24s %llus", st ? st : "",
                 (unsigned long long)json_integer_value(json_object_get(progress, "done")));
    } else if (progress) {
        /* bytes; the stages of a viaduct each report theirs: the furthest counts */
        json_int_t d = json_integer_value(json_object_get(progress, "done"));
        json_int_t tot = json_integer_value(json_object_get(progress, "total"));
        uint64_t done = d > 0 ? (uint64_t)d : 0;
        if (done < t->done)
            done = t->done;
        if (tot > 0 && (uint64_t)tot > t->total)
            t->total = (uint64_t)tot;
        t->done = done;
        t->bytes = true;
        t->wait[0] = '\0';
        size_t n = t->nsample;
        if (n && now_ms <= t->sample[n - 1].ms) {
            t->sample[n - 1].done = done; /* same instant (or a clock step back) */
        } else {
            if (n == FC_LIVE_SAMPLES) {
                memmove(&t->sample[0], &t->sample[1], (n - 1) * sizeof t->sample[0]);
                n--;
            }
            t->sample[n].ms = now_ms;
            t->sample[n].done = done;
            t->nsample = n + 1;
        }
    }
    if (final(state))
        t->wait[0] = '\0';
    if (!strcmp(state, "done") && t->total)
        t->done = t->total;
}

double
fc_live_task_rate(const struct fc_live_task *t, uint64_t now_ms)
{
    if (!running(t->state) || !strcmp(t->state, "retrying") || !t->bytes || t->nsample < 2 || (t->total && t->done >= t->total))
        return 0;
    size_t last = t->nsample - 1, first = 0;
    uint64_t lm = t->sample[last].ms;
    if (now_ms > lm + FC_LIVE_WINDOW_MS)
        return 0; /* nothing reported for a whole window: stalled */
    /* the oldest sample of the window ending at the last one (at least one before it) */
    while (first + 1 < last && t->sample[first].ms + FC_LIVE_WINDOW_MS < lm)
        first++;
    uint64_t dm = lm - t->sample[first].ms;
    if (!dm)
        return 0;
    return (double)(t->sample[last].done - t->sample[first].done) * 1000.0 / (double)dm;
}

static void
set(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

size_t
fc_live_rows(const struct fc_live_task *tasks, size_t nt, uint64_t now_ms,
             struct fc_live_row *r, size_t cap)
{
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < nt; i++) {
            const char *s = tasks[i].subject;
            if ((pass == 0) != (s[0] == '\0'))
                continue;
            size_t k = 0;
            while (k < n && strcmp(r[k].subject, s) != 0)
                k++;
            if (k == n) {
                if (n == cap)
                    continue;
                memset(&r[n], 0, sizeof r[n]);
                set(r[n].subject, sizeof r->subject, s);
                set(r[n].state, sizeof r->state, "pending");
                r[n].eta = -1;
                n++;
            }
            struct fc_live_row *x = &r[k];
            const struct fc_live_task *t = &tasks[i];
            x->moved += t->done;
            bool ended = !strcmp(x->state, "failed") || !strcmp(x->state, "cancelled");
            if (running(t->state) && !ended) {
                if (strcmp(x->state, "running") != 0) {
                    /* the first running task names the step: only its peers count */
                    set(x->step, sizeof x->step, t->step);
                    set(x->wait, sizeof x->wait, t->wait);
                    x->done = x->total = 0;
                    x->rate = 0;
                } else if (!x->wait[0]) {
                    set(x->wait, sizeof x->wait, t->wait);
                }
                set(x->state, sizeof x->state, "running");
                if (t->bytes) {
                    x->done += t->done;
                    x->total += t->total;
                    x->rate += fc_live_task_rate(t, now_ms);
                }
            } else if (running(t->state)) {
                /* a failure shows over what still runs */
            } else if (!strcmp(t->state, "failed") || !strcmp(t->state, "cancelled")) {
                if (strcmp(x->state, "failed") != 0) {
                    set(x->step, sizeof x->step, t->step);
                    set(x->state, sizeof x->state, t->state);
                    x->wait[0] = '\0';
                    x->done = t->bytes ? t->done : 0;
                    x->total = t->bytes ? t->total : 0;
                    x->rate = 0;
                }
            } else if (!strcmp(t->state, "queued") && !strcmp(x->state, "pending")) {
                set(x->step, sizeof x->step, t->step);
                set(x->state, sizeof x->state, "queued");
            } else if (strcmp(t->state, "done") != 0 && !strcmp(x->state, "pending") &&
                       !x->step[0]) {
                set(x->step, sizeof x->step, t->step); /* the next one */
            }
        }
    for (size_t k = 0; k < n; k++) {
        bool all_done = true;
        for (size_t i = 0; i < nt; i++)
            if (!strcmp(tasks[i].subject, r[k].subject) && strcmp(tasks[i].state, "done") != 0)
                all_done = false;
        if (all_done) {
            set(r[k].state, sizeof r->state, "done");
            r[k].step[0] = r[k].wait[0] = '\0';
            r[k].done = r[k].total = 0;
            r[k].rate = 0;
        }
        r[k].eta = !strcmp(r[k].state, "running") && r[k].rate > 0 && r[k].total > r[k].done
                       ? (long)((double)(r[k].total - r[k].done) / r[k].rate + 0.999)
                       : -1;
    }
    return n;
}

void
fc_live_human(double b, char *out, size_t cap)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

void
fc_live_format_row(const struct fc_live_row *r, char *out, size_t cap, bool with_bytes)
{
    char done[32], total[32] = "?", rate[32], eta[32] = "", bytes[128] = "";
    if (with_bytes && (r->done || r->total)) {
        fc_live_human((double)r->done, done, sizeof done);
        if (r->total)
            fc_live_human((double)r->total, total, sizeof total);
        fc_live_human(r->rate, rate, sizeof rate);
        if (r->eta >= 0)
            snprintf(eta, sizeof eta, "  ETA %ldm%02lds", r->eta / 60, r->eta % 60);
        if (!strcmp(r->state, "running"))
            snprintf(bytes, sizeof bytes, "%10s / %-10s %10s/s%s", done, total, rate, eta);
        else
            snprintf(bytes, sizeof bytes, "%10s / %-10s", done, total);
    } else if (with_bytes && r->wait[0]) {
        snprintf(bytes, sizeof bytes, "waiting: %s", r->wait);
    } else if (with_bytes && !strcmp(r->state, "done") && r->moved) {
        fc_live_human((double)r->moved, done, sizeof done);
        snprintf(bytes, sizeof bytes, "%s moved", done);
    }
    snprintf(out, cap, "%-40s %-9s %-10s %s", r->subject[0] ? r->subject : "shared resources",
             r->state, r->step[0] ? r->step : "-", bytes);
    /* no trailing blanks */
    size_t n = strlen(out);
    while (n && out[n - 1] == ' ')
        out[--n] = '\0';
}

json_t *
fc_live_row_json(const char *relocation_id, const struct fc_live_row *r)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "schema",
                     "fluidctl.live/1", "relocation_id", relocation_id, "subject", r->subject,
                     "state", r->state, "step", r->step, "waiting", r->wait, "bytes",
                     (json_int_t)r->done, "total", (json_int_t)r->total, "moved",
                     (json_int_t)r->moved, "rate_bps", (json_int_t)(r->rate + 0.5), "eta_s",
                     (json_int_t)r->eta);
}
