/* SPDX-License-Identifier: Apache-2.0 */
/* Running a sibling migrator (fluid-volume, fluid-config) for an action whose arguments are
 * only known at run time (a volume's backend path, a server's new address): the program
 * beside this one, started with fc_spawn, its events read from a pipe and relayed
 * (progress, info), its done result handed back, its failure made ours. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/spawn.h"
#include "osa.h"

/* The absolute path of fluid-<kind> in this program's own folder. */
static fc_rc
sibling_path(const char *kind, char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return FC_ERRNO(FC_E_IO, "cannot find this program's own path");
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return FC_ERR(FC_E_INTERNAL, "this program's path is not absolute");
    *slash = '\0';
    if ((size_t)snprintf(out, cap, "%s/fluid-%s", self, kind) >= cap)
        return FC_ERR(FC_E_INVALID, "path of fluid-%s too long", kind);
    if (access(out, X_OK) != 0)
        return FC_ERRNO(FC_E_NOTFOUND, "fluid-%s is not beside fluid-openstack (%s)", kind,
                        out);
    return FC_OK;
}

/* One event line of the child: progress and info are relayed, done/failed kept. */
static void
child_event(struct osa *a, const char *line, json_t **done, json_t **failed)
{
    json_t *e = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
    const char *ev = json_string_value(json_object_get(e, "event"));
    if (!ev) {
        json_decref(e);
        return;
    }
    if (strcmp(ev, "progress") == 0) {
        json_t *d = json_object_get(e, "done"), *t = json_object_get(e, "total");
        fc_event_progress(a->m, json_is_integer(d) ? (uint64_t)json_integer_value(d) : 0,
                          json_is_integer(t) ? (uint64_t)json_integer_value(t) : 0, NULL,
                          false);
    } else if (strcmp(ev, "info") == 0) {
        json_object_del(e, "event");
        fc_event_info(a->m, json_incref(e));
    } else if (strcmp(ev, "done") == 0 && !*done) {
        *done = json_incref(json_object_get(e, "result"));
        if (!*done)
            *done = json_object();
    } else if (strcmp(ev, "failed") == 0 && !*failed) {
        *failed = json_incref(json_object_get(e, "error"));
    }
    json_decref(e);
}

static fc_rc
rc_of(const char *name)
{
    for (int i = 0; i < FC_RC__COUNT; i++)
        if (name && strcmp(fc_rc_name((fc_rc)i), name) == 0)
            return (fc_rc)i;
    return FC_E_CHILD;
}

fc_rc
osa_run_sibling(struct osa *a, const char *kind, const char *const *args, int in_fd,
                int out_fd, const int *extra, size_t nextra, json_t **result)
{
    char prog[PATH_MAX + 32];
    fc_rc rc = sibling_path(kind, prog, sizeof prog);
    if (rc)
        return rc;
    const char *argv[80] = {prog, "--events-fd", "3"};
    size_t n = 3;
    for (size_t i = 0; args[i]; i++) {
        if (n >= 78)
            return FC_ERR(FC_E_INTERNAL, "too many arguments for fluid-%s", kind);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    int ev[2];
    if (pipe2(ev, O_CLOEXEC) != 0)
        return FC_ERRNO(FC_E_IO, "pipe");
    int pass[8] = {ev[1]};
    for (size_t i = 0; i < nextra && i < 7; i++)
        pass[i + 1] = extra[i];
    struct fc_spawn sp = {.argv = argv, .fd = {in_fd, out_fd, STDERR_FILENO}, .pass = pass,
                          .npass = 1 + (nextra < 7 ? nextra : 7)};
    pid_t pid = -1;
    rc = fc_spawn(&sp, &pid);
    close(ev[1]);
    if (rc) {
        close(ev[0]);
        return rc;
    }
    fc_log(FC_INFO, FC_MSG("running a sibling migrator"), FC_STR("program", prog),
           FC_STR("command", args[0]));
    json_t *done = NULL, *failed = NULL;
    char buf[65536];
    size_t fill = 0;
    bool signalled = false;
    for (;;) {
        struct pollfd pf = {ev[0], POLLIN, 0};
        int pr = poll(&pf, 1, 500);
        if (fc_cancel_requested && !signalled) {
            kill(pid, SIGTERM); /* our cancel is the child's */
            signalled = true;
        }
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        ssize_t k = read(ev[0], buf + fill, sizeof buf - 1 - fill);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        fill += (size_t)k;
        buf[fill] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = '\0';
            child_event(a, line, &done, &failed);
            line = nl + 1;
        }
        fill = strlen(line);
        memmove(buf, line, fill);
        if (fill == sizeof buf - 1)
            fill = 0; /* an over-long line: dropped */
    }
    close(ev[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (code == 0 && done) {
        *result = done;
        json_decref(failed);
        return FC_OK;
    }
    json_decref(done);
    if (failed) {
        const char *m = json_string_value(json_object_get(failed, "message"));
        rc = FC_ERR(rc_of(json_string_value(json_object_get(failed, "code"))), "fluid-%s %s: %s",
                    kind, args[0], m ? m : "failed");
        json_decref(failed);
        return rc;
    }
    if (signalled)
        return FC_ERR(FC_E_CANCELLED, "fluid-%s %s: cancelled", kind, args[0]);
    if (WIFSIGNALED(st))
        return FC_ERR(FC_E_CHILD, "fluid-%s %s: killed by signal %d", kind, args[0],
                      WTERMSIG(st));
    return FC_ERR(FC_E_CHILD, "fluid-%s %s: exited with status %d and no outcome", kind,
                  args[0], code);
}
