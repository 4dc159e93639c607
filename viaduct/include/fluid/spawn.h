/* SPDX-License-Identifier: Apache-2.0 */
/* fc_spawn: the only way our code starts a program. posix_spawn with an argv, never a shell,
 * never a PATH search; nothing but the named descriptors reaches the child. */
#ifndef FLUID_SPAWN_H
#define FLUID_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "fluid/rc.h"

struct fc_spawn {
    const char *const *argv; /* argv[0] must be an absolute path */
    const char *const *env;  /* the whole environment; NULL = the caller's environ */
    int fd[3];               /* child's stdin/stdout/stderr; -1 = /dev/null */
    const int *pass;         /* more fds, numbered 3, 4, ... in the child */
    size_t npass;
    bool new_pgroup;         /* child leads a new process group (pgid = pid) */
    pid_t pgroup;            /* when > 0 and !new_pgroup: join this process group */
};

/* Starts the program. FC_E_NOTFOUND if argv[0] does not exist or is not executable. */
fc_rc fc_spawn(const struct fc_spawn *sp, pid_t *pid_out);

/* Finds an executable by name in the colon-separated dirs (e.g. getenv("PATH")); returns a
 * malloc'd absolute path or NULL. For locating tools such as qemu-img explicitly. */
char *fc_find_program(const char *name, const char *dirs);

/* Runs argv to completion, capturing up to cap bytes of stdout (and of stderr into err),
 * both NUL-terminated (each may be NULL). *status gets the wait status. */
fc_rc fc_run(const char *const *argv, char *out, size_t cap, char *err, size_t errcap,
             int *status);

#endif
