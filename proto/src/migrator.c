/* SPDX-License-Identifier: Apache-2.0 */
/* The migrator side of the broker contract: task and events descriptors, exit status. */
#include "fluid/migrator.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/stream.h"

volatile sig_atomic_t fc_cancel_requested;

static void
on_term(int sig)
{
    (void)sig;
    fc_cancel_requested = 1;
}

#define FC_TASK_MAX (1u << 20)

static fc_rc
parse_fd(const char *opt, const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : -1;
    if (!s || errno || *end || v < 0 || v > INT_MAX)
        return FC_ERR(FC_E_INVALID, "%s: expected a descriptor number, got \"%s\"", opt,
                      s ? s : "");
    if (fcntl((int)v, F_GETFD) < 0)
        return FC_ERR(FC_E_INVALID, "%s: descriptor %ld is not open", opt, v);
    *out = (int)v;
    return FC_OK;
}

/* Takes "--name N" or "--name=N" at argv[i]; returns how many args it used (0: not ours). */
static int
take_fd_opt(const char *name, char **argv, int argc, int i, int *out, fc_rc *rc)
{
    size_t n = strlen(name);
    if (strncmp(argv[i], name, n) != 0)
        return 0;
    if (argv[i][n] == '=') {
        *rc = parse_fd(name, argv[i] + n + 1, out);
        return 1;
    }
    if (argv[i][n] != '\0')
        return 0;
    *rc = parse_fd(name, i + 1 < argc ? argv[i + 1] : NULL, out);
    return 2;
}

static fc_rc
read_task(struct fc_migrator *m)
{
    char *buf = malloc(FC_TASK_MAX + 1);
    if (!buf)
        return FC_ERR(FC_E_NOMEM, "task: out of memory");
    size_t got;
    fc_rc rc = fc_read_full(m->task_fd, buf, FC_TASK_MAX + 1, &got);
    if (rc == FC_OK && got > FC_TASK_MAX)
        rc = FC_ERR(FC_E_INVALID, "task: larger than %u bytes", FC_TASK_MAX);
    if (rc == FC_OK) {
        json_error_t je;
        m->task = json_loadb(buf, got, JSON_REJECT_DUPLICATES, &je);
        if (!m->task || !json_is_object(m->task))
            rc = FC_ERR(FC_E_INVALID, "task: not a JSON object (line %d: %s)", je.line, je.text);
    }
    free(buf);
    if (rc != FC_OK)
        return rc;
    json_t *v;
    if ((v = json_object_get(m->task, "relocation_id")) && json_is_string(v))
        m->relocation_id = json_string_value(v);
    if ((v = json_object_get(m->task, "task_id")) && json_is_string(v))
        m->task_id = json_string_value(v);
    return FC_OK;
}

fc_rc
fc_migrator_init(struct fc_migrator *m, const char *prog, int *argc, char **argv)
{
    memset(m, 0, sizeof *m);
    m->prog = prog;
    m->task_fd = m->events_fd = -1;
    fc_log_init(prog);
    fc_rc rc = FC_OK;
    int j = 0;
    for (int i = 0; i < *argc; i++) {
        int used = 0;
        if (i > 0 && strcmp(argv[i], "--") != 0) {
            used = take_fd_opt("--task-fd", argv, *argc, i, &m->task_fd, &rc);
            if (!used)
                used = take_fd_opt("--events-fd", argv, *argc, i, &m->events_fd, &rc);
        }
        if (rc != FC_OK)
            return rc;
        if (used) {
            i += used - 1;
            continue;
        }
        argv[j++] = argv[i];
    }
    argv[j] = NULL;
    *argc = j;

    struct sigaction sa = {.sa_handler = on_term};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (m->events_fd >= 0 || m->task_fd >= 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1)
            fc_cancel_requested = 1;
    }
    if (m->task_fd >= 0 && (rc = read_task(m)) != FC_OK)
        return rc;
    if (m->events_fd >= 0)
        fcntl(m->events_fd, F_SETFD, FD_CLOEXEC);
    fc_log_context(m->relocation_id, m->task_id, m->stage);
    return FC_OK;
}

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
emit(struct fc_migrator *m, json_t *ev)
{
    if (m->events_fd >= 0) {
        char *s = json_dumps(ev, JSON_COMPACT);
        if (s) {
            size_t len = strlen(s);
            s[len] = '\n'; /* replaces the NUL: written with its length */
            fc_write_all(m->events_fd, s, len + 1);
            free(s);
        }
    }
    json_decref(ev);
}

void
fc_event_progress(struct fc_migrator *m, uint64_t done, uint64_t total, json_t *extra,
                  bool force)
{
    uint64_t t = now_ns();
    if (m->events_fd < 0 || (!force && t - m->last_progress_ns < 250000000u)) {
        json_decref(extra);
        return;
    }
    m->last_progress_ns = t;
    json_t *ev = json_pack("{s:s,s:I}", "event", "progress", "done", (json_int_t)done);
    if (total != UINT64_MAX)
        json_object_set_new(ev, "total", json_integer((json_int_t)total));
    if (extra)
        json_object_update(ev, extra);
    json_decref(extra);
    emit(m, ev);
}

void
fc_event_info(struct fc_migrator *m, json_t *obj)
{
    json_t *ev = json_pack("{s:s}", "event", "info");
    if (obj)
        json_object_update(ev, obj);
    json_decref(obj);
    emit(m, ev);
}

void
fc_event_done(struct fc_migrator *m, json_t *result)
{
    json_t *ev = json_pack("{s:s,s:o}", "event", "done", "result",
                           result ? result : json_object());
    m->finished = true;
    emit(m, ev);
}

void
fc_event_failed(struct fc_migrator *m, fc_rc rc, const char *msg)
{
    json_t *ev = json_pack("{s:s,s:{s:s,s:s}}", "event", "failed", "error", "code",
                           fc_rc_name(rc), "message", msg ? msg : "");
    if (!ev) /* msg not UTF-8 */
        ev = json_pack("{s:s,s:{s:s,s:s}}", "event", "failed", "error", "code", fc_rc_name(rc),
                       "message", "(message not UTF-8)");
    m->finished = true;
    emit(m, ev);
}

int
fc_migrator_finish(struct fc_migrator *m, fc_rc rc)
{
    if (rc != FC_OK) {
        const char *msg = fc_error_last()->rc != FC_OK ? fc_error_msg() : fc_rc_name(rc);
        fc_log(FC_ERROR, FC_MSG(msg), FC_STR("code", fc_rc_name(rc)));
        if (!m->finished)
            fc_event_failed(m, rc, msg);
    } else if (!m->finished) {
        fc_event_done(m, NULL);
    }
    json_decref(m->task);
    m->task = NULL;
    return rc == FC_OK ? 0 : (int)rc;
}
