/* SPDX-License-Identifier: Apache-2.0 */
/* fluidctl watch ID: follows relocation.<ID>.# on fluid.events until the relocation ends.
 * On a terminal: a progress bar; --json: every event body as one line; otherwise one line
 * per change. It subscribes first, then asks the conduit for the current state, so that a
 * relocation that ended before watch started is reported too. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "ctl.h"
#include "fluid/error.h"

static volatile sig_atomic_t interrupted;
static void on_int(int sig) { (void)sig; interrupted = 1; }

struct task_view {
    char id[FC_ID_MAX + 1];
    char state[16];
    uint64_t done, total;
};

struct watch {
    const char *rid;
    bool json, tty;
    struct task_view *t;
    size_t nt;
    uint32_t total;     /* from relocation events or status */
    bool bar_shown;
};

static struct task_view *
task_of(struct watch *w, const char *id)
{
    for (size_t i = 0; i < w->nt; i++)
        if (strcmp(w->t[i].id, id) == 0)
            return &w->t[i];
    struct task_view *n = realloc(w->t, (w->nt + 1) * sizeof *n);
    if (!n)
        return NULL;
    w->t = n;
    memset(&w->t[w->nt], 0, sizeof *w->t);
    snprintf(w->t[w->nt].id, sizeof w->t->id, "%s", id);
    return &w->t[w->nt++];
}

static void
bar(struct watch *w, const char *note)
{
    size_t done = 0;
    const struct task_view *cur = NULL;
    for (size_t i = 0; i < w->nt; i++) {
        if (strcmp(w->t[i].state, "done") == 0)
            done++;
        else if (!strcmp(w->t[i].state, "progress") || !strcmp(w->t[i].state, "started"))
            cur = &w->t[i];
    }
    size_t total = w->total > w->nt ? w->total : w->nt;
    int width = 30, fill = total ? (int)(width * done / total) : 0;
    char b[64];
    for (int i = 0; i < width; i++)
        b[i] = i < fill ? '#' : '.';
    b[width] = '\0';
    fprintf(stderr, "\r\033[K%s [%s] %zu/%zu tasks", w->rid, b, done, total);
    if (cur && cur->total)
        fprintf(stderr, "  %s %.0f%%", cur->id, 100.0 * (double)cur->done / (double)cur->total);
    else if (cur)
        fprintf(stderr, "  %s %s", cur->id, cur->state);
    if (note)
        fprintf(stderr, "  %s", note);
    w->bar_shown = true;
}

/* Returns true (and *code) when the relocation has ended. */
static bool
on_delivery(struct watch *w, const struct fc_amqp_delivery *d, int *code)
{
    if (w->json)
        printf("%.*s\n", (int)d->len, (const char *)d->body);
    FC_AUTO(task_event) struct fc_task_event *e = NULL;
    FC_AUTO(reloc_event) struct fc_reloc_event *r = NULL;
    if (fc_event_parse(d->body, d->len, &e) == FC_OK) {
        struct task_view *t = task_of(w, e->task_id);
        if (t) {
            snprintf(t->state, sizeof t->state, "%s", fc_task_state_name(e->state));
            json_t *p = e->progress;
            if (p) {
                t->done = (uint64_t)json_integer_value(json_object_get(p, "done"));
                t->total = (uint64_t)json_integer_value(json_object_get(p, "total"));
            }
        }
        if (!w->json && w->tty)
            bar(w, NULL);
        else if (!w->json && e->state != FC_TS_PROGRESS)
            printf("task %s %s (attempt %u, broker %s)%s%s\n", e->task_id,
                   fc_task_state_name(e->state), e->attempt, e->broker,
                   e->has_error ? ": " : "", e->has_error ? e->error.message : "");
        return false;
    }
    if (fc_reloc_event_parse(d->body, d->len, &r) == FC_OK) {
        w->total = r->tasks.total;
        bool final = fc_reloc_state_final(r->state);
        if (!w->json && w->tty) {
            bar(w, fc_reloc_state_name(r->state));
            if (final)
                fputc('\n', stderr);
        }
        if (!w->json && (!w->tty || final))
            printf("relocation %s %s (%u/%u tasks done)%s%s\n", r->relocation_id,
                   fc_reloc_state_name(r->state), r->tasks.done, r->tasks.total,
                   r->error ? ": " : "", r->error ? r->error : "");
        fflush(stdout);
        if (final) {
            *code = fc_ctl_exit_for_state(r->state);
            return true;
        }
    }
    fflush(stdout);
    return false;
}

int
fc_ctl_watch(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    struct watch w = {0};
    double timeout = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "jt:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j': w.json = true; break;
        case 't': timeout = atof(optarg); break;
        case 'h':
            printf("usage: fluidctl watch [--json] [--timeout SECONDS] RELOCATION_ID\n");
            return FC_CTL_OK;
        default: return FC_CTL_USAGE;
        }
    }
    if (optind != argc - 1 || timeout < 0) {
        fprintf(stderr, "usage: fluidctl watch [--json] [--timeout SECONDS] RELOCATION_ID\n");
        return FC_CTL_USAGE;
    }
    w.rid = argv[optind];
    if (!fc_id_valid(w.rid)) {
        fprintf(stderr, "fluidctl watch: invalid relocation id \"%s\"\n", w.rid);
        return FC_CTL_USAGE;
    }
    w.tty = isatty(STDERR_FILENO) && isatty(STDOUT_FILENO);
    struct sigaction sa = {.sa_handler = on_int};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct fc_amqp *a = NULL;
    fc_rc rc = fc_ctl_connect(&a);
    char evq[FC_AMQP_NAME_MAX], rq[FC_AMQP_NAME_MAX], corr[64] = "", key[FC_AMQP_NAME_MAX];
    snprintf(key, sizeof key, "relocation.%s.#", w.rid);
    const char *keys[] = {key};
    if (rc == FC_OK)
        rc = fc_amqp_subscribe(a, FC_AMQP_X_EVENTS, keys, 1, 256, evq);
    if (rc == FC_OK)
        rc = fc_ctl_reply_queue(a, rq);
    if (rc == FC_OK && fc_ctl_status_send(a, w.rid, rq, corr) != FC_OK)
        corr[0] = '\0'; /* no conduit queue: rely on events alone */
    if (rc != FC_OK) {
        fc_amqp_close(a);
        return fc_ctl_fail("watch", rc);
    }
    uint64_t deadline = timeout > 0 ? fc_ctl_now_ms() + (uint64_t)(timeout * 1000) : 0;
    int code = FC_CTL_OK;
    bool ended = false;
    while (!ended && !interrupted) {
        uint64_t now = fc_ctl_now_ms();
        if (deadline && now >= deadline) {
            rc = FC_ERR(FC_E_TIMEOUT, "relocation %s did not end within %.1f s", w.rid, timeout);
            break;
        }
        int wait = deadline ? (int)(deadline - now) : 1000;
        struct fc_amqp_delivery *d = NULL;
        if ((rc = fc_amqp_wait(a, wait > 1000 ? 1000 : wait, &d)) != FC_OK)
            break;
        if (!d)
            continue;
        if (d->queue && strcmp(d->queue, rq) == 0) {
            struct fc_status *s = NULL;
            if (*corr && fc_ctl_status_match(d, corr, &s) == FC_OK && !s->found)
                fprintf(stderr, "fluidctl watch: the conduit does not know %s (yet): waiting "
                        "for its events\n", w.rid);
            if (s && s->found) {
                w.total = (uint32_t)s->ntasks;
                for (size_t i = 0; i < s->ntasks; i++) {
                    struct task_view *t = task_of(&w, s->tasks[i].task_id);
                    if (t)
                        snprintf(t->state, sizeof t->state, "%s", s->tasks[i].state);
                }
                if (fc_reloc_state_final(s->state)) {
                    if (w.json) {
                        json_auto_t *j = fc_status_to_json(s);
                        char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
                        printf("%s\n", t ? t : "");
                        free(t);
                    } else {
                        printf("relocation %s %s%s%s\n", w.rid, fc_reloc_state_name(s->state),
                               s->error ? ": " : "", s->error ? s->error : "");
                    }
                    code = fc_ctl_exit_for_state(s->state);
                    ended = true;
                } else if (w.tty && !w.json) {
                    bar(&w, fc_reloc_state_name(s->state));
                }
            }
            fc_status_free(s);
        } else {
            ended = on_delivery(&w, d, &code);
        }
        fc_amqp_ack(a, d);
        fc_amqp_delivery_free(d);
    }
    fc_amqp_close(a);
    free(w.t);
    if (w.bar_shown && !ended)
        fputc('\n', stderr);
    if (interrupted)
        return 130; /* as a shell reports SIGINT */
    if (rc != FC_OK)
        return fc_ctl_fail("watch", rc);
    return code;
}
