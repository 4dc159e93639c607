/* SPDX-License-Identifier: Apache-2.0 */
/* The Viaduct runtime: spawns a chain of migrators joined by pipes, relays their events,
 * keeps their stderr tails, reaps them through pidfds, and kills the chain on cancel,
 * timeout or the first failure. Poll-driven: see fluid/viaduct.h. */
#include "fluid/viaduct.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/msg.h"
#include "fluid/spawn.h"
#include "fluid/stream.h"

struct stage_io {
    int ev_fd, err_fd, pidfd;
    char *evbuf;          /* partial event line */
    size_t evlen;
    bool ev_skip;         /* discarding an over-long line up to its newline */
    uint64_t ev_offset;   /* bytes read from the events pipe */
    uint64_t line_start;  /* offset of the current line (for error messages) */
};

struct fc_viaduct {
    size_t n;
    struct fc_viaduct_stage st[FC_VIADUCT_MAX_STAGES];
    struct stage_io io[FC_VIADUCT_MAX_STAGES];
    pid_t pgid;
    int log_fd;
    uint32_t grace_ms;
    fc_viaduct_event_fn on_event;
    void *arg;
    uint64_t start_ns, deadline_ns, kill_ns, drain_ns;
    bool cancelled, aborting, killed;
    fc_rc cancel_rc;
    unsigned exits;
};

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool
kind_valid(const char *k)
{
    if (!k || !(*k >= 'a' && *k <= 'z') || strlen(k) > 32)
        return false;
    for (const char *p = k; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return false;
    }
    return true;
}

static void
close_io(struct stage_io *io)
{
    fc_closep(&io->ev_fd);
    io->ev_fd = -1;
    fc_closep(&io->err_fd);
    io->err_fd = -1;
    fc_closep(&io->pidfd);
    io->pidfd = -1;
    free(io->evbuf);
    io->evbuf = NULL;
    io->evlen = 0;
}

static bool
all_exited(const struct fc_viaduct *v)
{
    for (size_t i = 0; i < v->n; i++) {
        if (!v->st[i].exited)
            return false;
    }
    return true;
}

static void
signal_group(struct fc_viaduct *v, int sig)
{
    if (v->pgid > 0 && !all_exited(v))
        kill(-v->pgid, sig);
}

static void
reap(struct fc_viaduct *v, size_t i)
{
    struct fc_viaduct_stage *s = &v->st[i];
    if (s->exited)
        return;
    int status;
    pid_t r = waitpid(s->pid, &status, WNOHANG);
    if (r != s->pid)
        return;
    s->exited = true;
    s->status = status;
    s->exit_order = ++v->exits;
    fc_closep(&v->io[i].pidfd);
    v->io[i].pidfd = -1;
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok && !v->cancelled && !v->aborting) {
        /* the first failure ends the chain: the others would only wait on a dead pipe */
        v->aborting = true;
        signal_group(v, SIGTERM);
        v->kill_ns = now_ns() + (uint64_t)v->grace_ms * 1000000u;
    }
    if (all_exited(v))
        v->drain_ns = now_ns() + 2000000000u;
}

static void
bad_event(struct fc_viaduct *v, size_t i, const char *fmt, const char *detail)
{
    struct fc_viaduct_stage *s = &v->st[i];
    if (s->bad_events++ == 0)
        snprintf(s->bad_event_msg, sizeof s->bad_event_msg, "%s at byte %llu of its events: %s",
                 fmt, (unsigned long long)v->io[i].line_start, detail);
}

static void
take_u64(const json_t *o, const char *k, uint64_t *dst)
{
    json_t *x = json_object_get(o, k);
    if (json_is_integer(x) && json_integer_value(x) >= 0)
        *dst = (uint64_t)json_integer_value(x);
}

static void
handle_line(struct fc_viaduct *v, size_t i, const char *line, size_t len)
{
    struct fc_viaduct_stage *s = &v->st[i];
    if (len == 0)
        return;
    json_error_t je;
    json_t *ev = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!ev || !json_is_object(ev)) {
        bad_event(v, i, "malformed event", ev ? "not an object" : je.text);
        json_decref(ev);
        return;
    }
    const char *type = json_string_value(json_object_get(ev, "event"));
    if (!type) {
        bad_event(v, i, "event without \"event\"", "missing or not a string");
    } else if (!strcmp(type, "progress")) {
        take_u64(ev, "bytes_in", &s->bytes_in);
        take_u64(ev, "bytes_out", &s->bytes_out);
        take_u64(ev, "zero_bytes", &s->zero_bytes);
    } else if (!strcmp(type, "info")) {
        /* relayed as is */
    } else if (!strcmp(type, "done") || !strcmp(type, "failed")) {
        if (s->done_event || s->failed_event) {
            bad_event(v, i, "second final event", type);
        } else if (!strcmp(type, "done")) {
            json_t *res = json_object_get(ev, "result");
            if (res && !json_is_object(res)) {
                bad_event(v, i, "done event", "result is not an object");
            } else {
                s->done_event = true;
                s->result = res ? json_incref(res) : json_object();
                take_u64(s->result, "bytes_in", &s->bytes_in);
                take_u64(s->result, "bytes_out", &s->bytes_out);
                take_u64(s->result, "zero_bytes", &s->zero_bytes);
            }
        } else {
            json_t *err = json_object_get(ev, "error");
            const char *code = json_string_value(json_object_get(err, "code"));
            const char *msg = json_string_value(json_object_get(err, "message"));
            s->failed_event = true;
            if (!code || !fc_rc_from_name(code, &s->failed_code) || s->failed_code == FC_OK)
                s->failed_code = FC_E_INTERNAL;
            snprintf(s->failed_msg, sizeof s->failed_msg, "%s", msg ? msg : "(no message)");
        }
    } else {
        bad_event(v, i, "unknown event type", type);
    }
    s->events++;
    if (type && v->on_event)
        v->on_event(v->arg, v, i, ev);
    json_decref(ev);
}

static void
read_events(struct fc_viaduct *v, size_t i)
{
    struct stage_io *io = &v->io[i];
    char buf[16384];
    ssize_t r = read(io->ev_fd, buf, sizeof buf);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (r <= 0) {
        if (io->evlen > 0 && !io->ev_skip)
            bad_event(v, i, "truncated event", "no newline before the end");
        fc_closep(&io->ev_fd);
        io->ev_fd = -1;
        return;
    }
    for (ssize_t k = 0; k < r;) {
        char *nl = memchr(buf + k, '\n', (size_t)(r - k));
        size_t chunk = nl ? (size_t)(nl - (buf + k)) : (size_t)(r - k);
        if (!io->ev_skip) {
            if (io->evlen + chunk > FC_VIADUCT_EVENT_LINE_MAX) {
                bad_event(v, i, "event line too long", "over 64 KiB");
                io->ev_skip = true;
                io->evlen = 0;
            } else {
                char *nb = realloc(io->evbuf, io->evlen + chunk + 1);
                if (!nb) {
                    bad_event(v, i, "event dropped", "out of memory");
                    io->ev_skip = true;
                    io->evlen = 0;
                } else {
                    io->evbuf = nb;
                    memcpy(io->evbuf + io->evlen, buf + k, chunk);
                    io->evlen += chunk;
                }
            }
        }
        k += (ssize_t)chunk;
        io->ev_offset += chunk;
        if (nl) {
            if (!io->ev_skip)
                handle_line(v, i, io->evbuf ? io->evbuf : "", io->evlen);
            io->evlen = 0;
            io->ev_skip = false;
            k++;
            io->ev_offset++;
            io->line_start = io->ev_offset;
        }
    }
}

static void
read_stderr(struct fc_viaduct *v, size_t i)
{
    struct stage_io *io = &v->io[i];
    struct fc_viaduct_stage *s = &v->st[i];
    char buf[8192];
    ssize_t r = read(io->err_fd, buf, sizeof buf);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (r <= 0) {
        fc_closep(&io->err_fd);
        io->err_fd = -1;
        return;
    }
    if (v->log_fd >= 0)
        fc_write_all(v->log_fd, buf, (size_t)r);
    size_t have = strlen(s->tail), add = (size_t)r;
    if (add >= FC_VIADUCT_TAIL) {
        memcpy(s->tail, buf + add - FC_VIADUCT_TAIL, FC_VIADUCT_TAIL);
        s->tail[FC_VIADUCT_TAIL] = '\0';
        return;
    }
    if (have + add > FC_VIADUCT_TAIL) {
        size_t drop = have + add - FC_VIADUCT_TAIL;
        memmove(s->tail, s->tail + drop, have - drop);
        have -= drop;
    }
    memcpy(s->tail + have, buf, add);
    s->tail[have + add] = '\0';
    /* a NUL in stderr would cut the tail short: show it as a space */
    for (size_t k = have; k < have + add; k++) {
        if (s->tail[k] == '\0')
            s->tail[k] = ' ';
    }
}

static int
task_fd(const char *task, size_t len)
{
    int fd = memfd_create("fluid-task", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fc_write_all(fd, task, len) != FC_OK || lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void
kill_all(struct fc_viaduct *v)
{
    if (v->pgid > 0 && !all_exited(v))
        kill(-v->pgid, SIGKILL);
    for (size_t i = 0; i < v->n; i++) {
        if (v->st[i].pid > 0 && !v->st[i].exited) {
            int st;
            while (waitpid(v->st[i].pid, &st, 0) < 0 && errno == EINTR) {
            }
            v->st[i].exited = true;
            v->st[i].status = st;
            v->st[i].exit_order = ++v->exits;
        }
    }
}

void
fc_viaduct_free(struct fc_viaduct *v)
{
    if (!v)
        return;
    kill_all(v);
    for (size_t i = 0; i < v->n; i++) {
        close_io(&v->io[i]);
        json_decref(v->st[i].result);
    }
    free(v);
}

fc_rc
fc_viaduct_start(const struct fc_viaduct_opts *o, struct fc_viaduct **out)
{
    *out = NULL;
    if (o->nstages < 1 || o->nstages > FC_VIADUCT_MAX_STAGES)
        return FC_ERR(FC_E_INVALID, "viaduct: %zu stages (1..%d)", o->nstages,
                      FC_VIADUCT_MAX_STAGES);
    if (!o->migrator_dir || o->migrator_dir[0] != '/')
        return FC_ERR(FC_E_INVALID, "viaduct: migrator folder must be an absolute path");
    char prog[FC_VIADUCT_MAX_STAGES][PATH_MAX];
    for (size_t i = 0; i < o->nstages; i++) {
        const char *k = o->stages[i].kind;
        if (!kind_valid(k))
            return FC_ERR(FC_E_INVALID, "stages[%zu].kind: \"%.40s\" is not a migrator kind", i,
                          k ? k : "");
        if (snprintf(prog[i], PATH_MAX, "%s/fluid-%s", o->migrator_dir, k) >= PATH_MAX)
            return FC_ERR(FC_E_INVALID, "viaduct: migrator folder path too long");
        if (access(prog[i], X_OK) != 0)
            return FC_ERR(FC_E_NOTFOUND, "stages[%zu]: migrator fluid-%s not found in %s", i, k,
                          o->migrator_dir);
    }
    struct fc_viaduct *v = calloc(1, sizeof *v);
    if (!v)
        return FC_ERR(FC_E_NOMEM, "viaduct: out of memory");
    v->n = 0;
    v->log_fd = o->log_fd;
    v->grace_ms = o->grace_ms ? o->grace_ms : 2000;
    v->on_event = o->on_event;
    v->arg = o->arg;
    v->start_ns = now_ns();
    if (o->timeout_ms)
        v->deadline_ns = v->start_ns + (uint64_t)o->timeout_ms * 1000000u;
    const char *task = o->task_json ? o->task_json : "{}";
    size_t tlen = o->task_json ? o->task_len : 2;

    int prev_read = -1; /* read end of the pipe from the previous stage */
    fc_rc rc = FC_OK;
    for (size_t i = 0; i < o->nstages; i++) {
        struct stage_io *io = &v->io[i];
        io->ev_fd = io->err_fd = io->pidfd = -1;
        snprintf(v->st[i].kind, sizeof v->st[i].kind, "%s", o->stages[i].kind);
        int data[2] = {-1, -1}, ev[2] = {-1, -1}, er[2] = {-1, -1};
        int tfd = -1;
        bool last = i + 1 == o->nstages;
        if ((!last && pipe2(data, O_CLOEXEC) != 0) || pipe2(ev, O_CLOEXEC) != 0 ||
            pipe2(er, O_CLOEXEC) != 0 || (tfd = task_fd(task, tlen)) < 0) {
            rc = FC_ERRNO(FC_E_IO, "viaduct: stage %zu (%s): pipes", i, o->stages[i].kind);
            fc_closep(&data[0]);
            fc_closep(&data[1]);
            fc_closep(&ev[0]);
            fc_closep(&ev[1]);
            fc_closep(&er[0]);
            fc_closep(&er[1]);
            break;
        }
        if (!last)
            fcntl(data[1], F_SETPIPE_SZ, 1 << 20);
        size_t na = o->stages[i].nargs;
        const char **argv = calloc(na + 6, sizeof *argv);
        if (!argv) {
            rc = FC_ERR(FC_E_NOMEM, "viaduct: out of memory");
        } else {
            argv[0] = prog[i];
            argv[1] = "--task-fd";
            argv[2] = "3";
            argv[3] = "--events-fd";
            argv[4] = "4";
            for (size_t k = 0; k < na; k++)
                argv[5 + k] = o->stages[i].args[k];
            int pass[2] = {tfd, ev[1]};
            struct fc_spawn sp = {.argv = argv,
                                  .env = o->env,
                                  .fd = {i == 0 ? o->in_fd : prev_read, last ? o->out_fd : data[1],
                                         er[1]},
                                  .pass = pass,
                                  .npass = 2,
                                  .new_pgroup = i == 0,
                                  .pgroup = i == 0 ? 0 : v->pgid};
            rc = fc_spawn(&sp, &v->st[i].pid);
            free(argv);
        }
        close(tfd);
        close(ev[1]);
        close(er[1]);
        fc_closep(&data[1]);
        fc_closep(&prev_read);
        prev_read = data[0];
        if (rc != FC_OK) {
            close(ev[0]);
            close(er[0]);
            break;
        }
        v->n = i + 1;
        if (i == 0)
            v->pgid = v->st[0].pid;
        io->ev_fd = ev[0];
        io->err_fd = er[0];
        fcntl(io->ev_fd, F_SETFL, O_NONBLOCK);
        fcntl(io->err_fd, F_SETFL, O_NONBLOCK);
        io->pidfd = (int)syscall(SYS_pidfd_open, v->st[i].pid, 0);
        if (io->pidfd >= 0)
            fcntl(io->pidfd, F_SETFD, FD_CLOEXEC);
    }
    fc_closep(&prev_read);
    if (rc != FC_OK) {
        fc_error_prefix("viaduct");
        struct fc_error saved = *fc_error_last();
        fc_viaduct_free(v);
        return fc_error_at(saved.rc, saved.file, saved.line, "%s", saved.msg);
    }
    *out = v;
    return FC_OK;
}

size_t
fc_viaduct_pollfds(struct fc_viaduct *v, struct pollfd *pfd, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < v->n && n < cap; i++) {
        int fds[3] = {v->io[i].ev_fd, v->io[i].err_fd, v->st[i].exited ? -1 : v->io[i].pidfd};
        for (int k = 0; k < 3 && n < cap; k++) {
            if (fds[k] >= 0)
                pfd[n++] = (struct pollfd){fds[k], POLLIN, 0};
        }
    }
    return n;
}

void
fc_viaduct_step(struct fc_viaduct *v, struct pollfd *pfd, size_t n)
{
    for (size_t p = 0; p < n; p++) {
        if (!pfd[p].revents)
            continue;
        for (size_t i = 0; i < v->n; i++) {
            struct stage_io *io = &v->io[i];
            if (pfd[p].fd == io->ev_fd)
                read_events(v, i);
            else if (pfd[p].fd == io->err_fd)
                read_stderr(v, i);
            else if (pfd[p].fd == io->pidfd)
                reap(v, i);
            else
                continue;
            break;
        }
    }
    for (size_t i = 0; i < v->n; i++) {
        if (v->io[i].pidfd < 0)
            reap(v, i); /* no pidfd (old kernel): poll with WNOHANG */
    }
    uint64_t now = now_ns();
    if (v->deadline_ns && now >= v->deadline_ns && !v->cancelled && !v->aborting &&
        !all_exited(v))
        fc_viaduct_cancel(v, FC_E_TIMEOUT);
    if (v->kill_ns && now >= v->kill_ns && !v->killed && !all_exited(v)) {
        v->killed = true;
        signal_group(v, SIGKILL);
    }
    if (all_exited(v) && v->drain_ns && now >= v->drain_ns) {
        /* a grandchild kept a pipe open: stop waiting for it */
        for (size_t i = 0; i < v->n; i++) {
            fc_closep(&v->io[i].ev_fd);
            v->io[i].ev_fd = -1;
            fc_closep(&v->io[i].err_fd);
            v->io[i].err_fd = -1;
        }
    }
}

int
fc_viaduct_next_ms(const struct fc_viaduct *v)
{
    uint64_t next = 0;
    uint64_t cands[3] = {v->cancelled || v->aborting ? 0 : v->deadline_ns,
                         v->killed ? 0 : v->kill_ns, v->drain_ns};
    for (int k = 0; k < 3; k++) {
        if (cands[k] && (!next || cands[k] < next))
            next = cands[k];
    }
    bool need_reap = false;
    for (size_t i = 0; i < v->n; i++) {
        if (v->io[i].pidfd < 0 && !v->st[i].exited)
            need_reap = true;
    }
    if (!next)
        return need_reap ? 50 : -1;
    uint64_t now = now_ns();
    int ms = next <= now ? 0 : (int)((next - now) / 1000000u + 1);
    return need_reap && ms > 50 ? 50 : ms;
}

void
fc_viaduct_cancel(struct fc_viaduct *v, fc_rc why)
{
    if (v->cancelled || all_exited(v))
        return;
    v->cancelled = true;
    v->cancel_rc = why;
    signal_group(v, SIGTERM);
    v->kill_ns = now_ns() + (uint64_t)v->grace_ms * 1000000u;
    v->killed = false;
}

bool
fc_viaduct_finished(const struct fc_viaduct *v)
{
    for (size_t i = 0; i < v->n; i++) {
        if (!v->st[i].exited || v->io[i].ev_fd >= 0 || v->io[i].err_fd >= 0)
            return false;
    }
    return true;
}

static bool
stage_ok(const struct fc_viaduct_stage *s)
{
    return s->exited && WIFEXITED(s->status) && WEXITSTATUS(s->status) == 0 && s->done_event &&
           !s->failed_event && s->bad_events == 0;
}

fc_rc
fc_viaduct_outcome(const struct fc_viaduct *v, int *stage)
{
    if (stage)
        *stage = -1;
    uint64_t ms = (now_ns() - v->start_ns) / 1000000u;
    if (v->cancelled)
        return FC_ERR(v->cancel_rc, "viaduct %s after %llu ms",
                      v->cancel_rc == FC_E_TIMEOUT ? "timed out" : "cancelled",
                      (unsigned long long)ms);
    const struct fc_viaduct_stage *bad = NULL;
    size_t bi = 0;
    for (size_t i = 0; i < v->n; i++) {
        const struct fc_viaduct_stage *s = &v->st[i];
        if (!stage_ok(s) && (!bad || s->exit_order < bad->exit_order)) {
            bad = s;
            bi = i;
        }
    }
    if (!bad)
        return FC_OK;
    if (stage)
        *stage = (int)bi;
    int st = bad->status;
    char how[128];
    if (WIFSIGNALED(st))
        snprintf(how, sizeof how, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(st));
    if (bad->failed_event)
        return FC_ERR(bad->failed_code, "stage %zu (%s): %s (%s)", bi, bad->kind, bad->failed_msg,
                      how);
    if (bad->bad_events)
        return FC_ERR(FC_E_CHILD, "stage %zu (%s): %s (%s)", bi, bad->kind, bad->bad_event_msg,
                      how);
    fc_rc rc = FC_E_CHILD;
    if (WIFEXITED(st) && WEXITSTATUS(st) > 0 && WEXITSTATUS(st) < FC_RC__COUNT)
        rc = (fc_rc)WEXITSTATUS(st);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return FC_ERR(FC_E_CHILD, "stage %zu (%s): exited 0 without a done event", bi, bad->kind);
    return FC_ERR(rc, "stage %zu (%s): %s without a failed event", bi, bad->kind, how);
}

size_t
fc_viaduct_nstages(const struct fc_viaduct *v)
{
    return v->n;
}

const struct fc_viaduct_stage *
fc_viaduct_stage(const struct fc_viaduct *v, size_t i)
{
    return i < v->n ? &v->st[i] : NULL;
}

uint64_t
fc_viaduct_elapsed_ms(const struct fc_viaduct *v)
{
    return (now_ns() - v->start_ns) / 1000000u;
}

fc_rc
fc_viaduct_run(const struct fc_viaduct_opts *o, const volatile int *cancel_flag,
               struct fc_viaduct **out)
{
    struct fc_viaduct *v = NULL;
    if (out)
        *out = NULL;
    fc_rc rc = fc_viaduct_start(o, &v);
    if (rc != FC_OK)
        return rc;
    struct pollfd pfd[3 * FC_VIADUCT_MAX_STAGES];
    while (!fc_viaduct_finished(v)) {
        if (cancel_flag && *cancel_flag)
            fc_viaduct_cancel(v, FC_E_CANCELLED);
        size_t n = fc_viaduct_pollfds(v, pfd, sizeof pfd / sizeof pfd[0]);
        int t = fc_viaduct_next_ms(v);
        if (cancel_flag && (t < 0 || t > 50))
            t = 50;
        if (poll(pfd, n, t) < 0 && errno != EINTR)
            break;
        fc_viaduct_step(v, pfd, n);
    }
    rc = fc_viaduct_outcome(v, NULL);
    if (out)
        *out = v;
    else
        fc_viaduct_free(v);
    return rc;
}

/* ---- finding migrators ---- */

static char *
exe_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    return strdup(buf[0] ? buf : "/");
}

char *
fc_viaduct_migrator_dir(const char *flag, const char *config_value, const char *fallback)
{
    const char *env = getenv("FLUID_MIGRATOR_DIR");
    if (flag && *flag)
    {
        char *r = realpath(flag, NULL);
        return r ? r : strdup(flag);
    }
    if (env && *env)
        return strdup(env);
    if (config_value && *config_value)
        return strdup(config_value);
    char *d = exe_dir();
    if (d) {
        char **k = fc_viaduct_kinds(d);
        bool any = k && k[0];
        fc_viaduct_kinds_free(k);
        if (any)
            return d;
        free(d);
    }
    return strdup(fallback ? fallback : "/usr/libexec/fluidcloud");
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **
fc_viaduct_kinds(const char *dir)
{
    size_t n = 0, cap = 8;
    char **k = calloc(cap + 1, sizeof *k);
    DIR *d = k ? opendir(dir) : NULL;
    if (!d)
        return k;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "fluid-", 6) != 0)
            continue;
        const char *kind = e->d_name + 6;
        if (!kind_valid(kind) || !fc_kind_known(kind))
            continue;
        char p[PATH_MAX];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode) || access(p, X_OK) != 0)
            continue;
        if (n == cap) {
            char **nk = realloc(k, (cap * 2 + 1) * sizeof *k);
            if (!nk)
                break;
            k = nk;
            cap *= 2;
        }
        if ((k[n] = strdup(kind)))
            n++;
        k[n] = NULL;
    }
    closedir(d);
    qsort(k, n, sizeof *k, cmp_str);
    return k;
}

void
fc_viaduct_kinds_free(char **kinds)
{
    if (!kinds)
        return;
    for (char **p = kinds; *p; p++)
        free(*p);
    free(kinds);
}
