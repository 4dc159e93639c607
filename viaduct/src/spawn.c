/* SPDX-License-Identifier: Apache-2.0 */
/* fc_spawn and small helpers around it: posix_spawn with an explicit argv and descriptors. */
#include "fluid/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"

extern char **environ;

fc_rc
fc_spawn(const struct fc_spawn *sp, pid_t *pid_out)
{
    if (!sp->argv || !sp->argv[0] || sp->argv[0][0] != '/')
        return FC_ERR(FC_E_INVALID, "spawn: program path must be absolute");
    if (access(sp->argv[0], X_OK) != 0)
        return FC_ERRNO(FC_E_NOTFOUND, "spawn: %s", sp->argv[0]);

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);

    /* Move every descriptor to a safe high number first, so that dup2 into 0..n does not
     * clobber a source that sits in the target range. */
    size_t n = 3 + sp->npass;
    int src[n];
    for (size_t i = 0; i < 3; i++)
        src[i] = sp->fd[i];
    for (size_t i = 0; i < sp->npass; i++)
        src[3 + i] = sp->pass[i];
    int base = 1000;
    for (size_t i = 0; i < n; i++) {
        if (src[i] >= 0)
            posix_spawn_file_actions_adddup2(&fa, src[i], base + (int)i);
    }
    for (size_t i = 0; i < n; i++) {
        if (src[i] >= 0)
            posix_spawn_file_actions_adddup2(&fa, base + (int)i, (int)i);
        else
            posix_spawn_file_actions_addopen(&fa, (int)i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY,
                                             0);
    }
    posix_spawn_file_actions_addclosefrom_np(&fa, (int)n);

    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (sp->new_pgroup || sp->pgroup > 0) {
        flags |= POSIX_SPAWN_SETPGROUP;
        posix_spawnattr_setpgroup(&at, sp->new_pgroup ? 0 : sp->pgroup);
    }
    posix_spawnattr_setflags(&at, flags);

    pid_t pid;
    int e = posix_spawn(&pid, sp->argv[0], &fa, &at, (char *const *)sp->argv,
                        sp->env ? (char *const *)sp->env : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (e != 0) {
        errno = e;
        return FC_ERRNO(e == ENOENT ? FC_E_NOTFOUND : FC_E_CHILD, "spawn %s", sp->argv[0]);
    }
    *pid_out = pid;
    return FC_OK;
}

char *
fc_find_program(const char *name, const char *dirs)
{
    if (!name || !*name || strchr(name, '/'))
        return NULL;
    if (!dirs)
        dirs = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";
    const char *p = dirs;
    while (*p) {
        const char *c = strchr(p, ':');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len > 0 && p[0] == '/') {
            char *path = malloc(len + strlen(name) + 2);
            if (!path)
                return NULL;
            memcpy(path, p, len);
            path[len] = '/';
            strcpy(path + len + 1, name);
            struct stat stt;
            if (stat(path, &stt) == 0 && S_ISREG(stt.st_mode) && access(path, X_OK) == 0)
                return path;
            free(path);
        }
        if (!c)
            break;
        p = c + 1;
    }
    return NULL;
}

/* Reads what is available from *fd into buf (keeping the NUL); closes it at EOF. */
static void
drain(int *fd, char *buf, size_t cap, size_t *len)
{
    char tmp[4096];
    ssize_t r = read(*fd, tmp, sizeof tmp);
    if (r <= 0) {
        if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
            close(*fd);
            *fd = -1;
        }
        return;
    }
    if (buf && cap > 0) {
        size_t room = cap - 1 - *len;
        size_t k = (size_t)r < room ? (size_t)r : room;
        memcpy(buf + *len, tmp, k);
        *len += k;
        buf[*len] = '\0';
    }
}

fc_rc
fc_run(const char *const *argv, char *out, size_t cap, char *err, size_t errcap, int *status)
{
    int po[2] = {-1, -1}, pe[2] = {-1, -1};
    if (out && cap)
        out[0] = '\0';
    if (err && errcap)
        err[0] = '\0';
    if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
        fc_closep(&po[0]);
        fc_closep(&po[1]);
        return FC_ERRNO(FC_E_IO, "pipe");
    }
    struct fc_spawn sp = {.argv = argv, .fd = {-1, po[1], pe[1]}};
    pid_t pid;
    fc_rc rc = fc_spawn(&sp, &pid);
    close(po[1]);
    close(pe[1]);
    if (rc != FC_OK) {
        close(po[0]);
        close(pe[0]);
        return rc;
    }
    size_t ol = 0, el = 0;
    while (po[0] >= 0 || pe[0] >= 0) {
        struct pollfd p[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (po[0] >= 0 && p[0].revents)
            drain(&po[0], out, cap, &ol);
        if (pe[0] >= 0 && p[1].revents)
            drain(&pe[0], err, errcap, &el);
    }
    fc_closep(&po[0]);
    fc_closep(&pe[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return FC_ERRNO(FC_E_CHILD, "waitpid %s", argv[0]);
    }
    if (status)
        *status = st;
    return FC_OK;
}
