/* SPDX-License-Identifier: Apache-2.0 */
/* raw: the disk's bytes. The reader skips holes with SEEK_DATA/SEEK_HOLE and reads data in
 * large sequential requests (files), or reads a pipe in order; the writer turns zero
 * blocks into holes (files) or writes them as zeros (pipes). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fluid/error.h"
#include "image.h"

#define RAW_BUF (1u << 20)
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
        if ((rc = img_in_read_some(r->in, r->buf, RAW_BUF, &got)) != FC_OK)
            return rc;
        if ((rc = emit_split(&e, r->buf, got)) != FC_OK || got < RAW_BUF)
            break;
    }
    if (rc == FC_OK)
        rc = img_emit_flush(&e);
    return rc != FC_OK ? rc : sink->end(sink, e.pos, NULL);
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
    uint64_t pos = 0, size = in->size;
    bool holes = true;
    while (rc == FC_OK && pos < size) {
        uint64_t end = size;
        if (holes) {
            off_t d = lseek(in->fd, (off_t)pos, SEEK_DATA);
            if (d < 0 && errno == ENXIO)
                d = (off_t)size;
            if (d < 0) {
                holes = false; /* no SEEK_DATA here (block device, old fs) */
            } else {
                if ((uint64_t)d > size)
                    d = (off_t)size;
                if ((uint64_t)d > pos) {
                    img_emit_zero(&e, (uint64_t)d - pos);
                    pos = (uint64_t)d;
                    continue;
                }
                off_t h = lseek(in->fd, (off_t)pos, SEEK_HOLE);
                if (h > (off_t)pos && (uint64_t)h < size)
                    end = (uint64_t)h;
            }
        }
        while (rc == FC_OK && pos < end) {
            size_t k = end - pos < RAW_BUF ? (size_t)(end - pos) : RAW_BUF;
            if ((rc = img_in_pread(in, r->buf, k, pos, "data")) != FC_OK)
                break;
            rc = emit_split(&e, r->buf, k);
            pos += k;
        }
    }
    if (rc == FC_OK)
        rc = img_emit_flush(&e);
    return rc != FC_OK ? rc : sink->end(sink, size, NULL);
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
