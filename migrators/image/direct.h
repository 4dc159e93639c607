/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-image output internals shared by io.c (the append buffer and its write-behind
 * thread) and direct.c (O_DIRECT writes beside the page cache while it is slow): the lock,
 * condition and first failure a writer thread shares with the caller, and the direct
 * writer's interface. Not for the format drivers: they use img_out (image.h). */
#ifndef FLUID_IMAGE_DIRECT_H
#define FLUID_IMAGE_DIRECT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>

#include "fluid/error.h"
#include "image.h"

/* What writer threads share with the caller. A slot's state: 0 free, 1 queued, 2 being
 * written, 3 being filled by the caller. */
struct img_wsync {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    fc_rc rc; /* first failure, reported by the caller's next call */
    char err[512];
};

/* A writer thread is done with a slot (called without mu, returns holding it): the first
 * failure is kept, the slot freed, the waiters woken. */
static inline void
img_wsync_done(struct img_wsync *w, int *state, fc_rc rc)
{
    pthread_mutex_lock(&w->mu);
    if (rc != FC_OK && w->rc == FC_OK) {
        w->rc = rc;
        snprintf(w->err, sizeof w->err, "%s", fc_error_msg());
    }
    *state = 0;
    pthread_cond_broadcast(&w->cv);
}

/* The first failure as an error of the calling thread (call with w->rc != FC_OK). */
static inline fc_rc
img_wsync_error(const struct img_wsync *w)
{
    return FC_ERR(w->rc, "%s", w->err);
}

/* io.c: len bytes at off through fd (pwrite on a seekable file, else write) or sink. */
fc_rc img_out_raw(int fd, bool seekable, struct fc_sink *sink, uint64_t off, const void *buf,
                  size_t len);

/* ---- direct.c ---- */
struct img_dio;
/* Direct writes for o, a regular file (st: its stat): the file opened again with O_DIRECT,
 * aligned slot buffers and a thread each. NULL where that fails (no /proc, a filesystem
 * without O_DIRECT, no memory): every write then goes through the page cache. always:
 * direct whenever a slot is free, however fast the page cache (FLUID_IMAGE_DIRECT=always). */
struct img_dio *img_dio_start(const struct img_out *o, const struct stat *st, bool always);
/* Writes a long run of data at off (see direct.c); d may be NULL (all through the page
 * cache). Counts the direct bytes in o->bytes_direct. */
fc_rc img_dio_write(struct img_dio *d, struct img_out *o, uint64_t off, const uint8_t *buf,
                    size_t len);
/* Waits until every direct write is done; reports a failure. d may be NULL. */
fc_rc img_dio_wait(struct img_dio *d);
/* The file is at least size bytes long (presized). */
void img_dio_sized(struct img_dio *d, uint64_t size);
void img_dio_free(struct img_dio *d);

#endif
