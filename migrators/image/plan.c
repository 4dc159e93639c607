/* SPDX-License-Identifier: Apache-2.0 */
/* Planned streaming output (plan.h): the allocation map of a seekable input, built by a
 * first pass of its reader into a marking sink, the check planned writers make against it
 * during the data pass, and the sink that frames a planned output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/error.h"
#include "plan.h"

uint64_t
img_map_next(const struct img_map *m, uint64_t from)
{
    if (from >= m->n)
        return IMG_MAP_NONE;
    uint64_t w = from / 64, words = (m->n + 63) / 64;
    uint64_t x = m->bits[w] & (~0ull << (from % 64));
    while (x == 0) {
        if (++w >= words)
            return IMG_MAP_NONE;
        x = m->bits[w];
    }
    uint64_t i = w * 64 + (uint64_t)__builtin_ctzll(x);
    return i < m->n ? i : IMG_MAP_NONE;
}

void
img_map_free(struct img_map *m)
{
    free(m->bits);
    m->bits = NULL;
    m->n = m->count = 0;
}

fc_rc
img_map_expect(const struct img_map *m, uint64_t *next, uint64_t unit, const char *what)
{
    if (unit == *next) {
        if (unit != IMG_MAP_NONE)
            *next = img_map_next(m, unit + 1);
        return FC_OK;
    }
    if (unit == IMG_MAP_NONE || unit > *next)
        return FC_ERR(FC_E_IO,
                      "the input changed between the mapping pass and the copy: %s %llu held "
                      "data when mapped and is all zeros now (the planned layout no longer "
                      "fits)", what, (unsigned long long)*next);
    return FC_ERR(FC_E_IO,
                  "the input changed between the mapping pass and the copy: %s %llu was all "
                  "zeros when mapped and holds data now (the planned layout no longer fits)",
                  what, (unsigned long long)unit);
}

/* ---- the mapping sink ---- */
struct mapper {
    struct fc_sink sink; /* first */
    struct img_map *m;
    uint64_t vsize;
    bool began, ended;
    const struct img_map_progress *progress;
};

static fc_rc
mp_begin(struct fc_sink *s, const struct fc_stream_info *info)
{
    struct mapper *p = (struct mapper *)s;
    if (info->size != p->vsize)
        return FC_ERR(FC_E_INTERNAL, "mapping pass: the reader began with %llu bytes, not %llu",
                      (unsigned long long)info->size, (unsigned long long)p->vsize);
    p->began = true;
    return FC_OK;
}

static fc_rc
mp_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    struct mapper *p = (struct mapper *)s;
    struct img_map *m = p->m;
    const uint8_t *b = buf;
    if (!p->began || off > p->vsize || len > p->vsize - off)
        return FC_ERR(FC_E_INTERNAL, "mapping pass: data at %llu outside the disk",
                      (unsigned long long)off);
    while (len > 0) {
        uint64_t u = off / m->unit;
        size_t k = (size_t)(m->unit - off % m->unit);
        if (k > len)
            k = len;
        if (!img_map_test(m, u) && !fc_is_zero(b, k)) {
            m->bits[u / 64] |= 1ull << (u % 64);
            m->count++;
        }
        off += k;
        b += k;
        len -= k;
    }
    if (p->progress)
        p->progress->fn(p->progress->arg, off);
    return FC_OK;
}

static fc_rc
mp_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    struct mapper *p = (struct mapper *)s;
    if (p->progress)
        p->progress->fn(p->progress->arg, off + len);
    return FC_OK;
}

static fc_rc
mp_end(struct fc_sink *s, uint64_t size, const uint8_t *sha256)
{
    ((struct mapper *)s)->ended = true;
    return FC_OK;
}

fc_rc
img_map_input(const struct img_reader *rd, void *rst, struct img_in *in, uint64_t unit,
              uint64_t vsize, const volatile sig_atomic_t *cancel,
              const struct img_map_progress *progress, struct img_map *map)
{
    memset(map, 0, sizeof *map);
    if (!in->seekable || unit == 0 || vsize == FC_SIZE_UNKNOWN)
        return FC_ERR(FC_E_INTERNAL, "mapping pass: needs a seekable input of known size");
    uint64_t bytes = img_map_bytes(vsize, unit);
    if (bytes > IMG_MAP_MAX_BYTES)
        return FC_ERR(FC_E_INTERNAL, "mapping pass: %llu bytes of map", (unsigned long long)bytes);
    map->unit = unit;
    map->n = vsize / unit + (vsize % unit != 0);
    if (!(map->bits = calloc(1, bytes ? bytes : 8)))
        return FC_ERR(FC_E_NOMEM, "mapping pass: out of memory");
    struct mapper p = {{mp_begin, mp_write, mp_zero, mp_end}, map, vsize, false, false,
                       progress};
    fc_rc rc = rd->pump(rst, &p.sink, cancel);
    if (rc == FC_OK && !p.ended)
        rc = FC_ERR(FC_E_INTERNAL, "%s reader returned without end()", rd->name);
    /* the data pass starts from a freshly opened reader */
    rd->close(rst);
    memset(rst, 0, rd->state_size);
    if (rc == FC_OK)
        rc = rd->open(rst, in);
    if (rc != FC_OK)
        img_map_free(map);
    return rc;
}

/* ---- framing a planned output ---- */
#define FS_ZB 65536u

static fc_rc
fs_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    struct img_fsink *f = (struct img_fsink *)s;
    const uint8_t *b = buf;
    fc_sha256_update(&f->sha, b, len);
    size_t i = 0;
    fc_rc rc = FC_OK;
    while (i < len && rc == FC_OK) {
        size_t k = len - i < FS_ZB ? len - i : FS_ZB;
        bool z = fc_is_zero(b + i, k);
        size_t j = i + k;
        while (j < len) {
            size_t kk = len - j < FS_ZB ? len - j : FS_ZB;
            if (fc_is_zero(b + j, kk) != z)
                break;
            j += kk;
        }
        rc = z ? f->next->zero(f->next, off + i, j - i)
               : f->next->write(f->next, off + i, b + i, j - i);
        i = j;
    }
    return rc;
}

static fc_rc
fs_unused(struct fc_sink *s)
{
    return FC_ERR(FC_E_INTERNAL, "framed planned output: unexpected call");
}

static fc_rc
fs_begin(struct fc_sink *s, const struct fc_stream_info *info)
{
    return fs_unused(s);
}

static fc_rc
fs_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    return fs_unused(s);
}

static fc_rc
fs_end(struct fc_sink *s, uint64_t size, const uint8_t *sha256)
{
    return fs_unused(s);
}

fc_rc
img_fsink_begin(struct img_fsink *f, struct fc_sink *next, uint64_t size, const char *format)
{
    memset(f, 0, sizeof *f);
    f->sink = (struct fc_sink){fs_begin, fs_write, fs_zero, fs_end};
    f->next = next;
    f->size = size;
    fc_rc rc = fc_sha256_init(&f->sha);
    if (rc != FC_OK)
        return rc;
    struct fc_stream_info info = {.size = size};
    snprintf(info.format, sizeof info.format, "%s", format);
    return next->begin(next, &info);
}

fc_rc
img_fsink_end(struct img_fsink *f)
{
    uint8_t digest[32];
    fc_sha256_final(&f->sha, digest);
    return f->next->end(f->next, f->size, digest);
}

void
img_fsink_fini(struct img_fsink *f)
{
    fc_sha256_free(&f->sha);
}
