/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-image direct writes: long runs of data written with O_DIRECT (submitted through
 * Linux AIO) beside the page-cache writes while the page cache is slow, for a regular-file
 * output (io.c calls it from img_out_append_direct). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/aio_abi.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "direct.h"

#define DIO_SLOTS 4
#define DIO_ALIGN 4096u
#define DIO_AHEAD (64u << 20) /* a file is extended this far ahead of direct writes */
/* direct writes only while writes through the page cache are slower than this per MiB
 * (1.5 GB/s: about what the disk takes direct here) */
#define DIO_SLOW_NS_PER_MIB 700000u

struct dio_slot {
    uint8_t *buf; /* IMG_IO_BUF bytes, aligned */
    size_t len;
    uint64_t off;
    int state; /* as in struct img_wsync */
};

struct img_dio {
    struct img_wsync w;
    int fd;      /* the output, buffered: fallback and unaligned rests */
    int dfd;     /* the same file opened with O_DIRECT */
    int dio_off; /* O_DIRECT was refused by a write: the rest is buffered */
    int nth;
    pthread_t th[DIO_SLOTS];
    struct dio_slot slot[DIO_SLOTS];
    uint64_t fsize;      /* the file is at least this long (presized or extended) */
    uint64_t buf_ns_mib; /* recent page-cache writes: ns per MiB (moving average) */
    bool always;         /* direct whenever a slot is free, however fast the page cache */
};

/* One direct write: O_DIRECT from the slot's aligned buffer; a filesystem that refuses it
 * (EINVAL: alignment, or no O_DIRECT at all) gets this write and every later one through
 * the page cache instead, as does an unaligned rest after a short write. */
static ssize_t
dio_pwrite(aio_context_t ctx, int fd, const uint8_t *buf, size_t len, uint64_t off)
{
    if (ctx == 0)
        return pwrite(fd, buf, len, (off_t)off);
    /* submitted through Linux AIO: ext4 holds the file's inode lock while a synchronous
     * O_DIRECT write waits for the disk, which would stop the page-cache writes beside it;
     * an asynchronous one holds it only to submit */
    struct iocb cb = {.aio_lio_opcode = IOCB_CMD_PWRITE,
                      .aio_fildes = (uint32_t)fd,
                      .aio_buf = (uint64_t)(uintptr_t)buf,
                      .aio_nbytes = len,
                      .aio_offset = (int64_t)off};
    struct iocb *list[1] = {&cb};
    long r;
    while ((r = syscall(SYS_io_submit, ctx, 1L, list)) < 0 && errno == EINTR)
        ;
    if (r != 1)
        return r < 0 ? -1 : (errno = EIO, -1);
    struct io_event ev;
    while ((r = syscall(SYS_io_getevents, ctx, 1L, 1L, &ev, NULL)) < 0 && errno == EINTR)
        ;
    if (r != 1)
        return -1;
    if (ev.res < 0) {
        errno = (int)-ev.res;
        return -1;
    }
    return (ssize_t)ev.res;
}

static fc_rc
dio_write(struct img_dio *d, aio_context_t ctx, const struct dio_slot *s)
{
    size_t n = 0;
    while (n < s->len) {
        if (__atomic_load_n(&d->dio_off, __ATOMIC_RELAXED) || n % DIO_ALIGN != 0)
            break;
        ssize_t w = dio_pwrite(ctx, d->dfd, s->buf + n, s->len - n, s->off + n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EINVAL) {
            __atomic_store_n(&d->dio_off, 1, __ATOMIC_RELAXED);
            break;
        }
        if (w < 0)
            return FC_ERRNO(errno == ENOSPC ? FC_E_NOSPACE : FC_E_IO, "write output at offset %llu",
                            (unsigned long long)(s->off + n));
        if (w == 0)
            break;
        n += (size_t)w;
    }
    return n < s->len ? img_out_raw(d->fd, true, NULL, s->off + n, s->buf + n, s->len - n) : FC_OK;
}

static void *
dio_main(void *arg)
{
    struct img_dio *d = arg;
    aio_context_t ctx = 0;
    if (syscall(SYS_io_setup, 1, &ctx) != 0)
        ctx = 0; /* no AIO: synchronous writes */
    pthread_mutex_lock(&d->w.mu);
    for (;;) {
        struct dio_slot *s = NULL;
        for (int i = 0; i < DIO_SLOTS && !s; i++)
            if (d->slot[i].state == 1)
                s = &d->slot[i];
        if (!s) {
            if (d->w.stop)
                break;
            pthread_cond_wait(&d->w.cv, &d->w.mu);
            continue;
        }
        s->state = 2;
        pthread_mutex_unlock(&d->w.mu);
        fc_rc rc = FC_OK;
        if (d->w.rc == FC_OK)
            rc = dio_write(d, ctx, s);
        img_wsync_done(&d->w, &s->state, rc);
    }
    pthread_mutex_unlock(&d->w.mu);
    if (ctx != 0)
        syscall(SYS_io_destroy, ctx);
    return NULL;
}

void
img_dio_free(struct img_dio *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->w.mu);
    d->w.stop = true;
    pthread_cond_broadcast(&d->w.cv);
    pthread_mutex_unlock(&d->w.mu);
    for (int i = 0; i < d->nth; i++)
        pthread_join(d->th[i], NULL);
    pthread_mutex_destroy(&d->w.mu);
    pthread_cond_destroy(&d->w.cv);
    for (int i = 0; i < DIO_SLOTS; i++)
        free(d->slot[i].buf);
    if (d->dfd >= 0)
        close(d->dfd);
    free(d);
}

/* The output is opened again through /proc/self/fd, so the same file whatever its name. */
struct img_dio *
img_dio_start(const struct img_out *o, const struct stat *st, bool always)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", o->fd);
    int dfd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (dfd < 0)
        return NULL;
    struct stat dst;
    struct img_dio *d = NULL;
    if (fstat(dfd, &dst) != 0 || dst.st_dev != st->st_dev || dst.st_ino != st->st_ino ||
        !(d = calloc(1, sizeof *d))) {
        close(dfd);
        return NULL;
    }
    pthread_mutex_init(&d->w.mu, NULL);
    pthread_cond_init(&d->w.cv, NULL);
    d->fd = o->fd;
    d->dfd = dfd;
    d->fsize = (uint64_t)st->st_size;
    d->always = always;
    for (int i = 0; i < DIO_SLOTS; i++) {
        if (!(d->slot[i].buf = img_alloc_io(IMG_IO_BUF)) ||
            pthread_create(&d->th[i], NULL, dio_main, d) != 0)
            break;
        d->nth++;
    }
    if (d->nth == 0) {
        img_dio_free(d);
        return NULL;
    }
    return d;
}

void
img_dio_sized(struct img_dio *d, uint64_t size)
{
    if (d && size > d->fsize)
        d->fsize = size;
}

fc_rc
img_dio_wait(struct img_dio *d)
{
    if (!d)
        return FC_OK;
    pthread_mutex_lock(&d->w.mu);
    for (int i = 0; i < DIO_SLOTS; i++)
        while (d->slot[i].state != 0)
            pthread_cond_wait(&d->w.cv, &d->w.mu);
    pthread_mutex_unlock(&d->w.mu);
    return d->w.rc == FC_OK ? FC_OK : img_wsync_error(&d->w);
}

/* Blocks for a piece about to be written through the page cache, allocated at once: the
 * write then finds them mapped, where ext4 would otherwise reserve delayed allocation block
 * by block (ext4_da_reserve_space, the extent status tree, quota: about a third of the
 * kernel's work beside the two copies). Not while direct writes are in flight: ext4's
 * fallocate waits for them all. Best effort: a filesystem that refuses it (EOPNOTSUPP) is
 * not asked again, and a full disk is left to the write to report. */
static void
prealloc(struct img_out *o, uint64_t off, size_t len)
{
    if (!o->no_prealloc && fallocate(o->fd, 0, (off_t)off, (off_t)len) != 0 && errno != ENOSPC &&
        errno != EINTR)
        o->no_prealloc = true;
}

/* A long run of data at off on a file. Writes through the page cache cost this VM most of
 * a conversion's time (the copy into freshly allocated page-cache memory, one writer at a
 * time under the inode lock), while the disk takes O_DIRECT writes at 1-1.5 GB/s with
 * almost no CPU. So aligned pieces (IMG_IO_BUF at most) go to a free direct slot (copied
 * into its buffer: the caller's memory is reused once this returns) and are written with
 * O_DIRECT by that slot's thread, while the pieces that find no free slot are written
 * through the page cache here: the split follows whichever path is faster at the moment.
 * Only while the page cache is slow, though (a moving average of its 1 MiB+ writes over
 * DIO_SLOW_NS_PER_MIB): into memory just freed on a quiet machine it is faster than the
 * disk, and a direct piece would then only add a copy and the wait for the disk.
 * The ranges never overlap; every direct write is waited for before a positioned write
 * (metadata) or the end. A file that would be extended by a direct write is extended
 * ahead first (ftruncate, DIO_AHEAD at a time; img_out_finish sets the final size). */
fc_rc
img_dio_write(struct img_dio *d, struct img_out *o, uint64_t off, const uint8_t *buf, size_t len)
{
    fc_rc rc = FC_OK;
    bool busy = false; /* direct writes in flight */
    while (d && len >= DIO_ALIGN && off % DIO_ALIGN == 0 && rc == FC_OK) {
        size_t k = len < IMG_IO_BUF ? len : IMG_IO_BUF;
        k &= ~(size_t)(DIO_ALIGN - 1);
        struct dio_slot *s = NULL;
        pthread_mutex_lock(&d->w.mu);
        if (d->w.rc != FC_OK) {
            pthread_mutex_unlock(&d->w.mu);
            return img_wsync_error(&d->w);
        }
        if (!__atomic_load_n(&d->dio_off, __ATOMIC_RELAXED) &&
            (d->always || d->buf_ns_mib > DIO_SLOW_NS_PER_MIB))
            for (int i = 0; i < d->nth && !s; i++)
                if (d->slot[i].state == 0)
                    s = &d->slot[i];
        busy = false;
        for (int i = 0; i < d->nth; i++)
            busy = busy || d->slot[i].state != 0;
        if (s)
            s->state = 3;
        pthread_mutex_unlock(&d->w.mu);
        if (!s) {
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            if (!busy)
                prealloc(o, off, k);
            rc = img_out_raw(o->fd, true, NULL, off, buf, k);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if (k >= (1u << 20)) {
                uint64_t ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u +
                              (uint64_t)(t1.tv_nsec - t0.tv_nsec);
                uint64_t per = ns / (k >> 20);
                d->buf_ns_mib = d->buf_ns_mib == 0 ? per : (3 * d->buf_ns_mib + per) / 4;
            }
        } else {
            uint64_t end = off + k;
            if (end > d->fsize) {
                /* past everything written so far (appends are in order, o->hi covers
                 * positioned writes): extending never cuts data off */
                uint64_t z = (end + DIO_AHEAD - 1) / DIO_AHEAD * DIO_AHEAD;
                if (z < o->hi)
                    z = o->hi;
                if (z > (uint64_t)LLONG_MAX)
                    errno = EFBIG;
                if (z > (uint64_t)LLONG_MAX || ftruncate(o->fd, (off_t)z) != 0)
                    rc = FC_ERRNO(errno == EFBIG ? FC_E_INVALID : FC_E_IO,
                                  "extend the output to %llu bytes", (unsigned long long)z);
                else
                    d->fsize = z;
            }
            if (rc == FC_OK) {
                memcpy(s->buf, buf, k);
                s->off = off;
                s->len = k;
                o->bytes_direct += k;
            }
            pthread_mutex_lock(&d->w.mu);
            s->state = rc == FC_OK ? 1 : 0;
            pthread_cond_broadcast(&d->w.cv);
            pthread_mutex_unlock(&d->w.mu);
        }
        off += k;
        buf += k;
        len -= k;
    }
    if (rc == FC_OK && len > 0) {
        if (!busy)
            prealloc(o, off, len);
        rc = img_out_raw(o->fd, true, NULL, off, buf, len);
    }
    return rc;
}
