/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-image input and output files: checked positional reads of untrusted images,
 * sequential reads of pipes (with spooling to a sparse temporary file when a format needs
 * random access), and a large append buffer for output written mostly in order (long runs
 * on a file partly written with O_DIRECT: direct.c). */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "direct.h"
#include "fluid/error.h"

#define OUT_BUF (4u << 20)
#define DIRECT_MIN (256u << 10)

fc_rc
img_in_open(struct img_in *in, const char *path)
{
    int fd;
    in->fd = -1;
    if (strcmp(path, "-") == 0) {
        fd = dup(0);
        if (fd < 0)
            return FC_ERRNO(FC_E_IO, "stdin");
    } else {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return FC_ERRNO(errno == ENOENT ? FC_E_NOTFOUND : FC_E_IO, "open %s", path);
    }
    return img_in_from_fd(in, fd, strcmp(path, "-") == 0 ? "stdin" : path);
}

fc_rc
img_in_from_fd(struct img_in *in, int fd, const char *name)
{
    memset(in, 0, sizeof *in);
    in->fd = fd;
    in->name = name;
    struct stat st;
    if (fstat(in->fd, &st) != 0)
        return FC_ERRNO(FC_E_IO, "stat %s", in->name);
    if (S_ISREG(st.st_mode)) {
        in->seekable = true;
        in->size = (uint64_t)st.st_size;
    } else if (S_ISBLK(st.st_mode)) {
        uint64_t sz;
        if (ioctl(in->fd, BLKGETSIZE64, &sz) != 0)
            return FC_ERRNO(FC_E_IO, "size of %s", in->name);
        in->seekable = true;
        in->size = sz;
    } else if (S_ISDIR(st.st_mode)) {
        return FC_ERR(FC_E_INVALID, "%s is a directory", in->name);
    }
    if (in->seekable) {
        size_t n = in->size < IMG_HEAD_MAX ? (size_t)in->size : IMG_HEAD_MAX;
        ssize_t r = pread(in->fd, in->head, n, 0);
        if (r < 0 || (size_t)r != n)
            return FC_ERRNO(FC_E_IO, "read %s", in->name);
        in->head_len = n;
    } else {
        size_t got;
        fc_rc rc = fc_read_full(in->fd, in->head, IMG_HEAD_MAX, &got);
        if (rc != FC_OK) {
            fc_error_prefix("%s", in->name);
            return rc;
        }
        in->head_len = got;
        in->bytes_read = got;
    }
    return FC_OK;
}

void
img_in_close(struct img_in *in)
{
    if (in->fd >= 0)
        close(in->fd);
    in->fd = -1;
}

fc_rc
img_in_pread_upto(struct img_in *in, void *buf, size_t len, uint64_t off, const char *what,
                  size_t *got)
{
    if (!in->seekable)
        return FC_ERR(FC_E_INTERNAL, "%s: random access on a pipe", in->name);
    if (off >= in->size || len == 0)
        return FC_ERR(FC_E_INVALID, "%s: %s at offset %llu is past the end of the file (%llu bytes)",
                      in->name, what, (unsigned long long)off, (unsigned long long)in->size);
    size_t want = in->size - off < len ? (size_t)(in->size - off) : len;
    size_t n = 0;
    while (n < want) {
        ssize_t r = pread(in->fd, (char *)buf + n, want - n, (off_t)(off + n));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return FC_ERRNO(FC_E_IO, "%s: read %s at offset %llu", in->name, what,
                            (unsigned long long)(off + n));
        }
        if (r == 0)
            return FC_ERR(FC_E_IO, "%s: file shrank while reading %s at offset %llu", in->name,
                          what, (unsigned long long)(off + n));
        n += (size_t)r;
    }
    in->bytes_read += n;
    if (n < len)
        memset((char *)buf + n, 0, len - n);
    *got = n;
    return FC_OK;
}

fc_rc
img_in_pread(struct img_in *in, void *buf, size_t len, uint64_t off, const char *what)
{
    if (in->seekable && (off > in->size || len > in->size - off))
        return FC_ERR(FC_E_INVALID,
                      "%s: truncated: %s at offset %llu needs %zu bytes, the file has %llu",
                      in->name, what, (unsigned long long)off, len,
                      (unsigned long long)in->size);
    size_t got;
    return img_in_pread_upto(in, buf, len, off, what, &got);
}

fc_rc
img_in_read_some(struct img_in *in, void *buf, size_t len, size_t *got)
{
    size_t n = 0;
    if (in->pos < in->head_len) {
        size_t k = in->head_len - (size_t)in->pos;
        if (k > len)
            k = len;
        memcpy(buf, in->head + in->pos, k);
        n = k;
    }
    if (n < len) {
        size_t r = 0;
        fc_rc rc;
        if (in->seekable) {
            rc = FC_OK;
            uint64_t off = in->pos + n;
            if (off < in->size) {
                size_t want = in->size - off < len - n ? (size_t)(in->size - off) : len - n;
                rc = img_in_pread(in, (char *)buf + n, want, off, "data");
                r = want;
            }
        } else {
            rc = fc_read_full(in->fd, (char *)buf + n, len - n, &r);
            in->bytes_read += r;
        }
        if (rc != FC_OK)
            return rc;
        n += r;
    }
    in->pos += n;
    *got = n;
    return FC_OK;
}

fc_rc
img_in_read(struct img_in *in, void *buf, size_t len, const char *what)
{
    uint64_t at = in->pos;
    size_t got;
    fc_rc rc = img_in_read_some(in, buf, len, &got);
    if (rc != FC_OK)
        return rc;
    if (got != len)
        return FC_ERR(FC_E_INVALID, "%s: truncated: %s at offset %llu needs %zu bytes, got %zu",
                      in->name, what, (unsigned long long)at, len, got);
    return FC_OK;
}

fc_rc
img_in_spool(struct img_in *in, const char *tmpdir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/fluid-image-spool-XXXXXX", tmpdir ? tmpdir : "/tmp");
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return FC_ERRNO(FC_E_IO, "create a spool file in %s", tmpdir ? tmpdir : "/tmp");
    unlink(path);
    const size_t bs = 1u << 20, zb = 65536;
    uint8_t *buf = img_alloc_io(bs);
    if (!buf) {
        close(fd);
        return FC_ERR(FC_E_NOMEM, "spool: out of memory");
    }
    uint64_t off = 0;
    fc_rc rc = FC_OK;
    for (;;) {
        size_t got;
        if ((rc = img_in_read_some(in, buf, bs, &got)) != FC_OK)
            break;
        for (size_t i = 0; i < got; i += zb) {
            size_t k = got - i < zb ? got - i : zb;
            if (fc_is_zero(buf + i, k))
                continue;
            if (pwrite(fd, buf + i, k, (off_t)(off + i)) != (ssize_t)k) {
                rc = FC_ERRNO(errno == ENOSPC ? FC_E_NOSPACE : FC_E_IO,
                              "spool %s to %s", in->name, tmpdir ? tmpdir : "/tmp");
                break;
            }
        }
        off += got;
        if (rc != FC_OK || got < bs)
            break;
    }
    free(buf);
    if (rc == FC_OK && ftruncate(fd, (off_t)off) != 0)
        rc = FC_ERRNO(FC_E_IO, "spool: set size");
    if (rc != FC_OK) {
        close(fd);
        return rc;
    }
    close(in->fd);
    in->fd = fd;
    in->seekable = true;
    in->size = off;
    in->pos = 0;
    return FC_OK;
}

/* ---------- output ---------- */

fc_rc
img_out_raw(int fd, bool seekable, struct fc_sink *sink, uint64_t off, const void *buf,
            size_t len)
{
    if (sink)
        return sink->write(sink, off, buf, len);
    const char *p = buf;
    while (len > 0) {
        ssize_t w = seekable ? pwrite(fd, p, len, (off_t)off) : write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return FC_ERRNO(errno == ENOSPC ? FC_E_NOSPACE : FC_E_IO,
                            "write output at offset %llu", (unsigned long long)off);
        }
        p += w;
        off += (uint64_t)w;
        len -= (size_t)w;
    }
    return FC_OK;
}

/* Write-behind: full buffers are queued to a writer thread (in order), which writes while
 * the next buffer fills; long runs are written directly by the caller meanwhile. (More
 * writer threads only contend for the file's inode lock: buffered writes to one file are
 * serialised by the kernel.) */
#define WB_SLOTS 3
#define WB_THREADS 1

struct wb_slot {
    uint8_t *buf;
    size_t len;
    uint64_t off, seq;
    int state; /* as in struct img_wsync */
};

struct img_wb {
    struct img_wsync w;
    pthread_t th[WB_THREADS];
    int nth;
    int fd;
    bool seekable;
    struct fc_sink *sink;
    struct wb_slot slot[WB_SLOTS];
    uint64_t seq;
    struct img_dio *dio;    /* direct writes (direct.c), NULL if none */
};

static void *
wb_main(void *arg)
{
    struct img_wb *wb = arg;
    pthread_mutex_lock(&wb->w.mu);
    for (;;) {
        struct wb_slot *s = NULL;
        for (int i = 0; i < WB_SLOTS; i++)
            if (wb->slot[i].state == 1 && (!s || wb->slot[i].seq < s->seq))
                s = &wb->slot[i];
        if (!s) {
            if (wb->w.stop)
                break;
            pthread_cond_wait(&wb->w.cv, &wb->w.mu);
            continue;
        }
        s->state = 2;
        pthread_mutex_unlock(&wb->w.mu);
        fc_rc rc = FC_OK;
        if (wb->w.rc == FC_OK)
            rc = img_out_raw(wb->fd, wb->seekable, wb->sink, s->off, s->buf, s->len);
        img_wsync_done(&wb->w, &s->state, rc);
    }
    pthread_mutex_unlock(&wb->w.mu);
    return NULL;
}

/* Waits until every queued buffer and direct write is written; reports a failure. */
static fc_rc
wb_wait(struct img_out *o)
{
    struct img_wb *wb = o->wb;
    if (!wb)
        return FC_OK;
    pthread_mutex_lock(&wb->w.mu);
    for (int i = 0; i < WB_SLOTS; i++)
        while (wb->slot[i].state != 0)
            pthread_cond_wait(&wb->w.cv, &wb->w.mu);
    pthread_mutex_unlock(&wb->w.mu);
    fc_rc rc = img_dio_wait(wb->dio);
    if (wb->w.rc != FC_OK)
        return img_wsync_error(&wb->w);
    return rc;
}

static void
wb_free(struct img_wb *wb)
{
    if (!wb)
        return;
    img_dio_free(wb->dio);
    if (wb->nth) {
        pthread_mutex_lock(&wb->w.mu);
        wb->w.stop = true;
        pthread_cond_broadcast(&wb->w.cv);
        pthread_mutex_unlock(&wb->w.mu);
        for (int i = 0; i < wb->nth; i++)
            pthread_join(wb->th[i], NULL);
    }
    pthread_mutex_destroy(&wb->w.mu);
    pthread_cond_destroy(&wb->w.cv);
    for (int i = 0; i < WB_SLOTS; i++)
        free(wb->slot[i].buf);
    free(wb);
}

static fc_rc
out_init(struct img_out *o, int fd, struct fc_sink *sink)
{
    memset(o, 0, sizeof *o);
    o->fd = fd;
    o->sink = sink;
    struct stat st;
    bool known = !sink && fstat(fd, &st) == 0;
    o->seekable = known && S_ISREG(st.st_mode);
    if (known && S_ISFIFO(st.st_mode))
        fcntl(fd, F_SETPIPE_SZ, 1 << 20); /* fewer wake-ups of the reader; may be refused */
    o->buf_cap = OUT_BUF;
    o->buf = img_alloc_io(o->buf_cap);
    if (!o->buf)
        return FC_ERR(FC_E_NOMEM, "output: out of memory");
    struct img_wb *wb = calloc(1, sizeof *wb);
    if (!wb)
        return FC_OK; /* no write-behind: write synchronously */
    pthread_mutex_init(&wb->w.mu, NULL);
    pthread_cond_init(&wb->w.cv, NULL);
    wb->fd = fd;
    wb->seekable = o->seekable;
    wb->sink = sink;
    for (int i = 0; i < WB_SLOTS; i++)
        if (!(wb->slot[i].buf = img_alloc_io(o->buf_cap))) {
            wb_free(wb);
            return FC_OK;
        }
    int want = o->seekable ? WB_THREADS : 1;
    while (wb->nth < want && pthread_create(&wb->th[wb->nth], NULL, wb_main, wb) == 0)
        wb->nth++;
    if (wb->nth == 0) {
        wb_free(wb);
        return FC_OK;
    }
    o->wb = wb;
    /* FLUID_IMAGE_DIRECT: "never", "always" (whenever a slot is free: tests), else auto */
    const char *dm = getenv("FLUID_IMAGE_DIRECT");
    if (o->seekable && !(dm && strcmp(dm, "never") == 0))
        wb->dio = img_dio_start(o, &st, dm && strcmp(dm, "always") == 0);
    return FC_OK;
}

fc_rc
img_out_init(struct img_out *o, int fd)
{
    return out_init(o, fd, NULL);
}

fc_rc
img_out_init_sink(struct img_out *o, struct fc_sink *sink)
{
    return out_init(o, -1, sink);
}

void
img_out_fini(struct img_out *o)
{
    wb_free(o->wb);
    o->wb = NULL;
    free(o->buf);
    o->buf = NULL;
}

fc_rc
img_out_flush(struct img_out *o)
{
    if (o->buf_len == 0)
        return FC_OK;
    fc_rc rc = FC_OK;
    struct img_wb *wb = o->wb;
    if (!wb) {
        rc = img_out_raw(o->fd, o->seekable, o->sink, o->buf_off, o->buf, o->buf_len);
    } else {
        /* hand the full buffer to a free slot and fill that slot's buffer next */
        pthread_mutex_lock(&wb->w.mu);
        struct wb_slot *s = NULL;
        while (!s && wb->w.rc == FC_OK) {
            for (int i = 0; i < WB_SLOTS && !s; i++)
                if (wb->slot[i].state == 0)
                    s = &wb->slot[i];
            if (!s)
                pthread_cond_wait(&wb->w.cv, &wb->w.mu);
        }
        if (s) {
            uint8_t *t = s->buf;
            s->buf = o->buf;
            s->len = o->buf_len;
            s->off = o->buf_off;
            s->seq = wb->seq++;
            s->state = 1;
            o->buf = t;
            pthread_cond_broadcast(&wb->w.cv);
        } else {
            rc = img_wsync_error(&wb->w);
        }
        pthread_mutex_unlock(&wb->w.mu);
    }
    o->bytes_written += o->buf_len;
    o->buf_off += o->buf_len;
    o->buf_len = 0;
    return rc;
}

fc_rc
img_out_append(struct img_out *o, uint64_t off, const void *buf, size_t len)
{
    fc_rc rc;
    if (off < o->pos)
        return FC_ERR(FC_E_INTERNAL, "output: append at %llu behind %llu",
                      (unsigned long long)off, (unsigned long long)o->pos);
    if (off > o->pos) {
        if (o->seekable) {
            if ((rc = img_out_flush(o)) != FC_OK)
                return rc;
            o->buf_off = off;
        } else {
            /* a pipe: the gap becomes zeros */
            uint64_t gap = off - o->pos;
            while (gap > 0) {
                if (o->buf_len == o->buf_cap && (rc = img_out_flush(o)) != FC_OK)
                    return rc;
                size_t k = o->buf_cap - o->buf_len;
                if (k > gap)
                    k = (size_t)gap;
                memset(o->buf + o->buf_len, 0, k);
                o->buf_len += k;
                gap -= k;
            }
        }
        o->pos = off;
    }
    if (o->buf_len == 0)
        o->buf_off = off;
    const char *p = buf;
    while (len > 0) {
        size_t k = o->buf_cap - o->buf_len;
        if (k > len)
            k = len;
        memcpy(o->buf + o->buf_len, p, k);
        o->buf_len += k;
        p += k;
        off += k;
        len -= k;
        o->pos = off;
        if (o->buf_len == o->buf_cap && (rc = img_out_flush(o)) != FC_OK)
            return rc;
    }
    return FC_OK;
}

fc_rc
img_out_append_direct(struct img_out *o, uint64_t off, const void *buf, size_t len)
{
    if (!o->wb || len < DIRECT_MIN || off < o->pos)
        return img_out_append(o, off, buf, len);
    if (!o->seekable) {
        /* a pipe or a sink, in order: the gap and what is buffered are queued first, and
         * once the writer thread has written them this run goes straight from the caller's
         * memory (no copy into the buffer) */
        fc_rc rc = off > o->pos ? img_out_append(o, off, NULL, 0) : FC_OK;
        if (rc == FC_OK)
            rc = img_out_flush(o);
        if (rc == FC_OK)
            rc = wb_wait(o);
        if (rc == FC_OK)
            rc = img_out_raw(o->fd, false, o->sink, off, buf, len);
        o->pos = o->buf_off = off + len;
        o->bytes_written += len;
        return rc;
    }
    /* what is buffered goes first: a little is written here (a thread hand-off costs more
     * than the write), a lot is queued; then this run is written from the caller's memory
     * while the writer thread works on the queued buffers (disjoint ranges) */
    fc_rc rc;
    if (o->buf_len > 0 && o->buf_len < DIRECT_MIN) {
        rc = img_out_raw(o->fd, true, NULL, o->buf_off, o->buf, o->buf_len);
        o->bytes_written += o->buf_len;
        o->buf_off += o->buf_len;
        o->buf_len = 0;
    } else {
        rc = img_out_flush(o);
    }
    if (rc == FC_OK)
        rc = img_dio_write(o->wb->dio, o, off, buf, len);
    o->pos = o->buf_off = off + len;
    o->bytes_written += len;
    return rc;
}

fc_rc
img_out_pwrite(struct img_out *o, uint64_t off, const void *buf, size_t len)
{
    if (!o->seekable)
        return FC_ERR(FC_E_INTERNAL, "output: positioned write on a pipe");
    fc_rc rc = img_out_flush(o);
    if (rc == FC_OK)
        rc = wb_wait(o);
    if (rc == FC_OK)
        rc = img_out_raw(o->fd, o->seekable, NULL, off, buf, len);
    if (rc == FC_OK) {
        o->bytes_written += len;
        if (off + len > o->hi)
            o->hi = off + len;
    }
    return rc;
}

fc_rc
img_out_presize(struct img_out *o, uint64_t size)
{
    if (o->seekable && ftruncate(o->fd, (off_t)size) != 0)
        return FC_ERRNO(errno == EFBIG ? FC_E_INVALID : FC_E_IO,
                        "set the output's size to %llu", (unsigned long long)size);
    if (o->seekable && o->wb)
        img_dio_sized(o->wb->dio, size);
    return FC_OK;
}

fc_rc
img_out_finish(struct img_out *o, uint64_t size)
{
    fc_rc rc;
    if (!o->seekable && size > o->pos) {
        static const uint8_t z[1];
        if ((rc = img_out_append(o, size - 1, z, 1)) != FC_OK)
            return rc;
    }
    if ((rc = img_out_flush(o)) != FC_OK || (rc = wb_wait(o)) != FC_OK)
        return rc;
    /* not when the size is already right (a presized raw output): ext4 walks the extents
     * past the end on every truncate, even one that changes nothing */
    struct stat st;
    if (o->seekable && (fstat(o->fd, &st) != 0 || (uint64_t)st.st_size != size) &&
        ftruncate(o->fd, (off_t)size) != 0)
        return FC_ERRNO(FC_E_IO, "set the output's size to %llu", (unsigned long long)size);
    return FC_OK;
}
