/* SPDX-License-Identifier: Apache-2.0 */
/* raw: the disk's bytes. The reader skips holes with SEEK_DATA/SEEK_HOLE and reads data in
 * large sequential requests (files), or reads a pipe in order; the writer turns zero
 * blocks into holes (files) or writes them as zeros (pipes). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fluid/error.h"
#include "image.h"

#define RAW_BUF IMG_IO_BUF
#define RAW_ZB 65536u

struct raw_r {
    struct img_in *in;
    uint8_t *buf;
};

static bool
raw_probe(const uint8_t *head, size_t len)
{
    return true;
}

static fc_rc
raw_open(void *st, struct img_in *in)
{
    struct raw_r *r = st;
    r->in = in;
    r->buf = img_alloc_io(RAW_BUF);
    if (!r->buf)
        return FC_ERR(FC_E_NOMEM, "raw: out of memory");
    return FC_OK;
}

static void
raw_info(void *st, struct img_info *info)
{
    struct raw_r *r = st;
    info->format = "raw";
    info->vsize = r->in->seekable ? r->in->size : FC_SIZE_UNKNOWN;
}

/* Passes buf on as runs of data and zero blocks (RAW_ZB granules). */
static fc_rc
emit_split(struct img_emit *e, const uint8_t *buf, size_t len)
{
    size_t i = 0;
    fc_rc rc = FC_OK;
    while (i < len && rc == FC_OK) {
        size_t k = len - i < RAW_ZB ? len - i : RAW_ZB;
        bool z = fc_is_zero(buf + i, k);
        size_t j = i + k;
        while (j < len) {
            size_t kk = len - j < RAW_ZB ? len - j : RAW_ZB;
            if (fc_is_zero(buf + j, kk) != z)
                break;
            j += kk;
        }
        rc = z ? img_emit_zero(e, j - i) : img_emit_data(e, buf + i, j - i);
        i = j;
    }
    return rc;
}

static fc_rc
raw_pump_pipe(struct raw_r *r, struct fc_sink *sink, const volatile sig_atomic_t *cancel)
{
    struct fc_stream_info info = {.size = FC_SIZE_UNKNOWN, .format = "raw"};
    fc_rc rc = sink->begin(sink, &info);
    struct img_emit e;
    img_emit_init(&e, sink, cancel);
    while (rc == FC_OK) {
        size_t got;
        uint8_t *buf = img_emit_buf(&e, r->buf);
        if ((rc = img_in_read_some(r->in, buf, RAW_BUF, &got)) != FC_OK)
            return rc;
        if ((rc = emit_split(&e, buf, got)) != FC_OK || got < RAW_BUF)
            break;
    }
    if (rc == FC_OK)
        rc = img_emit_flush(&e);
    return rc != FC_OK ? rc : sink->end(sink, e.pos, NULL);
}

/* Data extents found ahead of the reader (SEEK_DATA/SEEK_HOLE), each announced to the
 * kernel with POSIX_FADV_WILLNEED so that reading them from disk overlaps the conversion
 * of the ones before (QEMU gets the same from several requests in flight). */
#define RA_EXTENTS 64
#define RA_BYTES (32u << 20)

struct ra {
    int fd;
    uint64_t size, scan, ahead;
    bool done, holes;
    struct { uint64_t s, e; } q[RA_EXTENTS];
    unsigned head, n;
};

static void
ra_fill(struct ra *a)
{
    while (!a->done && a->n < RA_EXTENTS && a->ahead < RA_BYTES) {
        uint64_t d = a->scan, h = a->size;
        if (a->holes) {
            off_t x = lseek(a->fd, (off_t)a->scan, SEEK_DATA);
            if (x < 0 && errno == ENXIO) {
                a->done = true;
                break;
            }
            if (x < 0) {
                a->holes = false; /* no SEEK_DATA here (block device, old fs): all data */
            } else {
                d = (uint64_t)x < a->size ? (uint64_t)x : a->size;
                off_t y = lseek(a->fd, (off_t)d, SEEK_HOLE);
                h = y > (off_t)d && (uint64_t)y < a->size ? (uint64_t)y : a->size;
            }
        }
        if (d >= a->size) {
            a->done = true;
            break;
        }
        unsigned i = (a->head + a->n) % RA_EXTENTS;
        a->q[i].s = d;
        a->q[i].e = h;
        a->n++;
        uint64_t len = h - d < RA_BYTES ? h - d : RA_BYTES;
        posix_fadvise(a->fd, (off_t)d, (off_t)len, POSIX_FADV_WILLNEED);
        a->ahead += len;
        a->scan = h;
        if (h >= a->size)
            a->done = true;
    }
}

static fc_rc
raw_pump(void *st, struct fc_sink *sink, const volatile sig_atomic_t *cancel)
{
    struct raw_r *r = st;
    struct img_in *in = r->in;
    if (!in->seekable)
        return raw_pump_pipe(r, sink, cancel);
    struct fc_stream_info info = {.size = in->size, .format = "raw"};
    fc_rc rc = sink->begin(sink, &info);
    struct img_emit e;
    img_emit_init(&e, sink, cancel);
    struct ra a = {.fd = in->fd, .size = in->size, .holes = true};
    uint64_t pos = 0;
    while (rc == FC_OK) {
        ra_fill(&a);
        if (a.n == 0)
            break;
        uint64_t s0 = a.q[a.head].s, e0 = a.q[a.head].e;
        a.head = (a.head + 1) % RA_EXTENTS;
        a.n--;
        a.ahead -= e0 - s0 < RA_BYTES ? e0 - s0 : RA_BYTES;
        if (s0 > pos)
            img_emit_zero(&e, s0 - pos);
        for (pos = s0; rc == FC_OK && pos < e0;) {
            /* whole buffers end on RAW_BUF boundaries of the disk (the output's writes
             * then cover whole large page-cache folios) */
            size_t k = RAW_BUF - (size_t)(pos % RAW_BUF);
            if (k > e0 - pos)
                k = (size_t)(e0 - pos);
            uint8_t *buf = img_emit_buf(&e, r->buf);
            if ((rc = img_in_pread(in, buf, k, pos, "data")) != FC_OK)
                break;
            rc = emit_split(&e, buf, k);
            pos += k;
        }
    }
    if (rc == FC_OK && pos < in->size)
        img_emit_zero(&e, in->size - pos);
    if (rc == FC_OK)
        rc = img_emit_flush(&e);
    return rc != FC_OK ? rc : sink->end(sink, in->size, NULL);
}

static void
raw_close(void *st)
{
    struct raw_r *r = st;
    free(r->buf);
}

const struct img_reader img_raw_reader = {
    .name = "raw",
    .state_size = sizeof(struct raw_r),
    .probe = raw_probe,
    .open = raw_open,
    .info = raw_info,
    .pump = raw_pump,
    .close = raw_close,
};

/* ---------- writer ---------- */

struct raw_w {
    struct fc_sink sink; /* first */
    struct img_out *out;
    uint64_t size;
};

static fc_rc
rw_begin(struct fc_sink *s, const struct fc_stream_info *info)
{
    struct raw_w *w = (struct raw_w *)s;
    w->size = info->size;
    /* writes inside the file's size cost the filesystem less than writes that extend it
     * (QEMU sizes a raw output first too) */
    return info->size == FC_SIZE_UNKNOWN ? FC_OK : img_out_presize(w->out, info->size);
}

bool
img_needs_seek_always(void *st)
{
    return true;
}

bool
img_random_always(const struct img_in *in)
{
    return true;
}

static fc_rc
rw_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    struct raw_w *w = (struct raw_w *)s;
    return img_raw_put(w->out, off, buf, len);
}

fc_rc
img_raw_put(struct img_out *out, uint64_t off, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    size_t i = 0;
    /* zero blocks aligned to the disk's offsets stay holes */
    while (i < len) {
        size_t k = RAW_ZB - (size_t)((off + i) % RAW_ZB);
        if (k > len - i)
            k = len - i;
        size_t j = i;
        while (j < len) {
            size_t kk = RAW_ZB - (size_t)((off + j) % RAW_ZB);
            if (kk > len - j)
                kk = len - j;
            if (fc_is_zero(p + j, kk))
                break;
            j += kk;
        }
        if (j > i) {
            fc_rc rc = img_out_append_direct(out, off + i, p + i, j - i);
            if (rc != FC_OK)
                return rc;
        } else {
            j = i + k; /* a zero block: skip */
        }
        i = j;
    }
    return FC_OK;
}

static fc_rc
rw_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    return FC_OK; /* img_out_append leaves the gap as a hole, or writes zeros to a pipe */
}

static fc_rc
rw_end(struct fc_sink *s, uint64_t size, const uint8_t *sha256)
{
    struct raw_w *w = (struct raw_w *)s;
    return img_out_finish(w->out, size);
}

static fc_rc
rw_open(void *st, struct img_out *out, const struct img_wopts *wo, struct fc_sink **sink)
{
    struct raw_w *w = st;
    w->out = out;
    w->sink = (struct fc_sink){rw_begin, rw_write, rw_zero, rw_end};
    *sink = &w->sink;
    return FC_OK;
}

static const char *const raw_keys[] = {NULL};

static fc_rc
rw_option(void *st, const char *key, const char *value)
{
    return FC_ERR(FC_E_INVALID, "raw: unknown option \"%s\" (raw takes none)", key);
}

const struct img_writer img_raw_writer = {
    .name = "raw",
    .state_size = sizeof(struct raw_w),
    .keys = raw_keys,
    .option = rw_option,
    .open = rw_open,
};
