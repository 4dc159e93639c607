/* SPDX-License-Identifier: Apache-2.0 */
/* fluidctl relocate --watch: the live view. One line per server and volume of the
 * relocation (and one for the shared resources: keypairs, groups, networks) with its current
 * step, bytes moved, rate and ETA; redrawn in place when stdout is a terminal, one line per
 * change otherwise, JSON lines with --json. The tasks' steps and subjects come from the
 * conduit (fluid.conduit-request/1 "info"), progress from the brokers' events. It ends with
 * the overview (or, after a failure with cleanup on failure, the cleanup record). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "crpc.h"
#include "ctl.h"
#include "fluid/error.h"
#include "live_view.h"
#include "store.h"

static volatile sig_atomic_t interrupted; /* the signal that stopped us, else 0 */
static void on_int(int sig) { interrupted = sig; }

struct live {
    const char *rid;
    bool json, tty;
    struct fc_live_task *t;
    size_t nt;
    enum fc_reloc_state state;
    bool known, final, planned, cleanup_on_failure;
    char error[2048];
    json_t *overview, *cleanup;
    char **printed; /* non-tty: the last line printed per subject */
    size_t nprinted;
    int drawn;      /* tty: lines drawn last time */
    uint64_t last_draw;
    bool dirty;     /* a change not drawn yet (drawing is at most every 250 ms) */
};

static struct fc_live_task *
task_of(struct live *l, const char *id, bool add)
{
    for (size_t i = 0; i < l->nt; i++)
        if (strcmp(l->t[i].id, id) == 0)
            return &l->t[i];
    if (!add)
        return NULL;
    struct fc_live_task *n = realloc(l->t, (l->nt + 1) * sizeof *n);
    if (!n)
        return NULL;
    l->t = n;
    memset(&n[l->nt], 0, sizeof *n);
    snprintf(n[l->nt].id, sizeof n->id, "%s", id);
    return &n[l->nt++];
}

static void
draw(struct live *l, bool force)
{
    uint64_t now = fc_ctl_now_ms();
    if (!force && now - l->last_draw < 250) {
        l->dirty = true; /* drawn on the next turn of the loop */
        return;
    }
    l->last_draw = now;
    l->dirty = false;
    static struct fc_live_row r[128];
    size_t n = fc_live_rows(l->t, l->nt, now, r, 128);
    if (l->json) {
        for (size_t i = 0; i < n; i++) {
            json_t *j = fc_live_row_json(l->rid, &r[i]);
            char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
            json_decref(j);
            /* only rows that changed since the last time */
            bool same = i < l->nprinted && t && l->printed[i] && !strcmp(l->printed[i], t);
            if (!same && t)
                printf("%s\n", t);
            if (i >= l->nprinted) {
                char **np = realloc(l->printed, (i + 1) * sizeof *np);
                if (!np) {
                    free(t);
                    continue;
                }
                l->printed = np;
                l->printed[l->nprinted++] = NULL;
            }
            free(l->printed[i]);
            l->printed[i] = t;
        }
    } else if (l->tty) {
        if (l->drawn)
            printf("\033[%dA", l->drawn);
        for (size_t i = 0; i < n; i++) {
            char line[512];
            fc_live_format_row(&r[i], line, sizeof line, true);
            printf("\r\033[K%s\n", line);
        }
        printf("\r\033[Krelocation %s: %s%s%s\n", l->rid, fc_reloc_state_name(l->state),
               l->error[0] ? ": " : "", l->error);
        l->drawn = (int)n + 1;
    } else {
        /* one line per change of a row's state or step (bytes are too frequent) */
        for (size_t i = 0; i < n; i++) {
            char line[512], shown[512];
            fc_live_format_row(&r[i], line, sizeof line, false);
            bool same = i < l->nprinted && l->printed[i] && !strcmp(l->printed[i], line);
            if (same)
                continue;
            fc_live_format_row(&r[i], shown, sizeof shown, true);
            printf("%s\n", shown);
            while (l->nprinted <= i) {
                char **np = realloc(l->printed, (l->nprinted + 1) * sizeof *np);
                if (!np)
                    return;
                l->printed = np;
                l->printed[l->nprinted++] = NULL;
            }
            free(l->printed[i]);
            l->printed[i] = strdup(line);
        }
    }
    fflush(stdout);
}

static void
apply_info(struct live *l, const json_t *r)
{
    if (!json_is_true(json_object_get(r, "found")))
        return;
    l->known = true;
    fc_reloc_state_from_name(json_string_value(json_object_get(r, "state")), &l->state);
    const char *err = json_string_value(json_object_get(r, "error"));
    if (err)
        snprintf(l->error, sizeof l->error, "%s", err);
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(r, "tasks"), i, t) {
        const char *id = json_string_value(json_object_get(t, "task_id"));
        struct fc_live_task *x = id ? task_of(l, id, true) : NULL;
        if (!x)
            continue;
        snprintf(x->step, sizeof x->step, "%s", json_string_value(json_object_get(t, "step")));
        snprintf(x->subject, sizeof x->subject, "%s",
                 json_string_value(json_object_get(t, "subject")));
        const char *st = json_string_value(json_object_get(t, "state"));
        if (st && (!strcmp(st, "done") || !strcmp(st, "failed") || !strcmp(st, "cancelled")))
            fc_live_task_event(x, st, NULL, fc_ctl_now_ms());
        else if (st && !x->state[0])
            snprintf(x->state, sizeof x->state, "%s", st);
    }
    l->planned = json_is_object(json_object_get(r, "plan_report"));
    l->cleanup_on_failure =
        json_is_true(json_object_get(json_object_get(r, "options"), "cleanup_on_failure"));
    if (json_is_object(json_object_get(r, "overview")) && !l->overview)
        l->overview = json_incref(json_object_get(r, "overview"));
    if (json_is_object(json_object_get(r, "cleanup")) && !l->cleanup)
        l->cleanup = json_incref(json_object_get(r, "cleanup"));
    if (fc_reloc_state_final(l->state))
        l->final = true;
}

/* Whether the report the end is waiting for is there (or none is awaited). */
static bool
report_ready(const struct live *l)
{
    if (!l->final)
        return false;
    if (!l->planned)
        return true;
    if (l->state == FC_RS_DONE)
        return l->overview != NULL;
    if (l->state == FC_RS_FAILED && l->cleanup_on_failure)
        return l->cleanup != NULL;
    return true;
}

static void
on_event(struct live *l, const struct fc_amqp_delivery *d, bool *reask)
{
    FC_AUTO(task_event) struct fc_task_event *e = NULL;
    FC_AUTO(reloc_event) struct fc_reloc_event *r = NULL;
    if (fc_event_parse(d->body, d->len, &e) == FC_OK) {
        struct fc_live_task *t = task_of(l, e->task_id, false);
        if (!t) {
            *reask = true;
            t = task_of(l, e->task_id, true);
        }
        if (!t)
            return;
        fc_live_task_event(t, fc_task_state_name(e->state), e->progress, fc_ctl_now_ms());
        return;
    }
    if (fc_reloc_event_parse(d->body, d->len, &r) == FC_OK) {
        l->state = r->state;
        if (r->error)
            snprintf(l->error, sizeof l->error, "%s", r->error);
        if (!l->nt || fc_reloc_state_final(r->state))
            *reask = true; /* tasks just recorded, or the final reports' options */
        if (fc_reloc_state_final(r->state))
            l->final = true;
        return;
    }
    json_t *j = NULL;
    if (fc_msg_load(d->body, d->len, &j) == FC_OK) {
        const char *schema = json_string_value(json_object_get(j, "schema"));
        const char *kind = json_string_value(json_object_get(j, "kind"));
        if (schema && kind && !strcmp(schema, FC_CONDUIT_SCHEMA_REPORT_EVENT)) {
            json_t **slot = !strcmp(kind, "overview") ? &l->overview
                            : !strcmp(kind, "cleanup") ? &l->cleanup : NULL;
            if (slot) {
                json_decref(*slot);
                *slot = json_incref(json_object_get(j, "report"));
            }
        }
    }
    json_decref(j);
}

int
fc_ctl_live(const char *rid, bool json, double timeout)
{
    struct live l = {.rid = rid, .json = json, .tty = !json && isatty(STDOUT_FILENO)};
    struct sigaction sa = {.sa_handler = on_int};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct fc_amqp *a = NULL;
    char evq[FC_AMQP_NAME_MAX], rq[FC_AMQP_NAME_MAX], corr[64] = "", key[FC_AMQP_NAME_MAX];
    snprintf(key, sizeof key, "relocation.%s.#", rid);
    const char *keys[] = {key};
    fc_rc rc = fc_ctl_connect(&a);
    if (rc == FC_OK) /* subscribed before asking: the end cannot be missed */
        rc = fc_amqp_subscribe(a, FC_AMQP_X_EVENTS, keys, 1, 256, evq);
    if (rc == FC_OK)
        rc = fc_ctl_reply_queue(a, rq);
    if (rc == FC_OK)
        rc = fc_ctl_creq_send(a, rid, "info", rq, corr);
    uint64_t start = fc_ctl_now_ms(), deadline = timeout > 0 ? start + (uint64_t)(timeout * 1000) : 0;
    uint64_t next_ask = 0, final_at = 0;
    bool asked = true;
    while (rc == FC_OK && !interrupted && !report_ready(&l)) {
        uint64_t now = fc_ctl_now_ms();
        if (deadline && now >= deadline) {
            rc = FC_ERR(FC_E_TIMEOUT, "relocation %s did not end within %.0f s", rid, timeout);
            break;
        }
        if (l.final && !final_at)
            final_at = now;
        /* the overview needs both clouds read: give it up to 10 minutes after the end */
        if (final_at && now - final_at > 600000) {
            fprintf(stderr, "fluidctl relocate: no %s from the conduit within 600 s\n",
                    l.state == FC_RS_DONE ? "overview" : "cleanup record");
            break;
        }
        if (!asked && next_ask && now >= next_ask) {
            if ((rc = fc_ctl_creq_send(a, rid, "info", rq, corr)) != FC_OK)
                break;
            asked = true;
            next_ask = 0;
        }
        struct fc_amqp_delivery *d = NULL;
        if ((rc = fc_amqp_wait(a, 250, &d)) != FC_OK)
            break;
        bool reask = false, changed = d != NULL;
        if (d && d->queue && !strcmp(d->queue, rq)) {
            json_t *r = NULL;
            if (fc_ctl_creq_match(d, corr, &r) == FC_OK) {
                asked = false;
                apply_info(&l, r);
                if (!l.known || (l.final && !report_ready(&l)))
                    next_ask = now + (l.known ? 5000 : 1000); /* planning, or the report */
                json_decref(r);
            }
        } else if (d) {
            on_event(&l, d, &reask);
        }
        if (reask && !asked && !next_ask)
            next_ask = now;
        if (d) {
            fc_amqp_ack(a, d);
            fc_amqp_delivery_free(d);
        }
        if (l.known && (changed || l.tty || l.dirty))
            draw(&l, false);
    }
    fc_amqp_close(a);
    if (interrupted)
        fprintf(stderr, "fluidctl relocate: stopped by signal %d (the relocation goes on; "
                "fluidctl watch %s follows it)\n", (int)interrupted, rid);
    int code = rc != FC_OK        ? fc_ctl_fail("relocate", rc)
               : interrupted      ? 130
               : fc_ctl_exit_for_state(l.state);
    if (rc == FC_OK && !interrupted) {
        draw(&l, true);
        if (json) {
            json_t *j = json_pack("{s:s,s:s,s:s,s:s?,s:O?,s:O?}", "schema", "fluidctl.live/1",
                                  "relocation_id", rid, "state", fc_reloc_state_name(l.state),
                                  "error", l.error[0] ? l.error : NULL, "overview", l.overview,
                                  "cleanup", l.cleanup);
            char *t = json_dumps(j, JSON_COMPACT);
            printf("%s\n", t ? t : "");
            free(t);
            json_decref(j);
        } else {
            if (!l.tty)
                printf("relocation %s %s%s%s\n", rid, fc_reloc_state_name(l.state),
                       l.error[0] ? ": " : "", l.error);
            if (l.overview)
                fc_ctl_print_overview(stdout, l.overview);
            if (l.cleanup)
                fc_ctl_print_cleanup(stdout, l.cleanup);
        }
        fflush(stdout);
    }
    json_decref(l.overview);
    json_decref(l.cleanup);
    for (size_t i = 0; i < l.nprinted; i++)
        free(l.printed[i]);
    free(l.printed);
    free(l.t);
    return code;
}
