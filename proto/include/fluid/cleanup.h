/* SPDX-License-Identifier: Apache-2.0 */
/* Scope-bound cleanup (GCC/Clang cleanup attribute) and an explicit hand-over. Initialise
 * every auto variable (= NULL, = -1); every *_free accepts NULL. */
#ifndef FLUID_CLEANUP_H
#define FLUID_CLEANUP_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void fc_freep(void *p) { free(*(void **)p); }
static inline void fc_closep(int *fd)
{
    if (*fd >= 0) {
        int e = errno;
        close(*fd);
        errno = e;
    }
}
static inline void fc_fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}
#define FC_AUTOFREE __attribute__((cleanup(fc_freep)))
#define FC_AUTOCLOSE __attribute__((cleanup(fc_closep)))
#define FC_AUTOFCLOSE __attribute__((cleanup(fc_fclosep)))
#define FC_DEFINE_AUTO(name, type, fn)                                                          \
    static inline void fc_auto_##name(type **p)                                                \
    {                                                                                          \
        if (*p)                                                                                \
            fn(*p);                                                                            \
    }
#define FC_AUTO(name) __attribute__((cleanup(fc_auto_##name)))
static inline void *fc_steal_(void *pp)
{
    void **p = pp;
    void *v = *p;
    *p = NULL;
    return v;
}
#define FC_STEAL(pp) ((__typeof__(*(pp)))fc_steal_(pp)) /* hand over, disarm cleanup */
static inline int fc_steal_fd(int *fd)
{
    int v = *fd;
    *fd = -1;
    return v;
}

#endif
