/* SPDX-License-Identifier: Apache-2.0 */
/* VMDK reader: hosted sparse extents with an embedded descriptor (monolithicSparse,
 * streamOptimized). Files are read through the grain directory and grain tables (the
 * footer's copy when the header says the directory is at the end); a streamOptimized
 * image on a pipe is read in order, marker by marker. Every field and table entry is
 * checked; errors name it and its file offset. */
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/error.h"
#include "image.h"
#include "vmdk.h"

#define DATA_BUF (1u << 20)
#define GD_CHUNK 8192u

struct vmr {
    struct img_in *in;
    uint32_t flags, gtes;
    uint64_t capacity, grain, gd_off, overhead, size, gbytes;
    bool compressed, markers;
    char subformat[32];
    uint8_t *gd, *gt, *data, *cbuf;
    size_t cbuf_cap;
    struct libdeflate_decompressor *dec;
};

static bool
vmdk_probe(const uint8_t *h, size_t len)
{
    return len >= 4 && memcmp(h, VMDK_MAGIC, 4) == 0;
}

static bool
vmdk_random(const struct img_in *in)
{
    if (in->head_len < 12)
        return true;
    uint32_t f = img_le32(in->head + VH_FLAGS);
    return !((f & VMDK_FLAG_COMPRESS) && (f & VMDK_FLAG_MARKER));
}

/* Checks and takes the fields of a 512-byte header found at file offset at. */
static fc_rc
parse_header(struct vmr *v, const uint8_t *h, uint64_t at)
{
    const char *n = v->in->name;
    if (memcmp(h, VMDK_MAGIC, 4) != 0)
        return FC_ERR(FC_E_INVALID, "%s: bad VMDK magic at offset %llu", n,
                      (unsigned long long)at);
    uint32_t ver = img_le32(h + VH_VERSION);
    if (ver < 1 || ver > 3)
        return FC_ERR(FC_E_UNSUPPORTED, "%s: VMDK version %u at offset %llu", n, ver,
                      (unsigned long long)(at + VH_VERSION));
    v->flags = img_le32(h + VH_FLAGS);
    v->capacity = img_le64(h + VH_CAPACITY);
    v->grain = img_le64(h + VH_GRAIN);
    v->gtes = img_le32(h + VH_GTES);
    v->gd_off = img_le64(h + VH_GD);
    v->overhead = img_le64(h + VH_OVERHEAD);
    if (v->capacity > IMG_MAX_VSIZE / 512)
        return FC_ERR(FC_E_INVALID, "%s: VMDK capacity %llu sectors at offset %llu is absurd", n,
                      (unsigned long long)v->capacity, (unsigned long long)(at + VH_CAPACITY));
    if (v->grain < 1 || v->grain > 4096 || (v->grain & (v->grain - 1)))
        return FC_ERR(FC_E_INVALID, "%s: VMDK grain size %llu sectors at offset %llu", n,
                      (unsigned long long)v->grain, (unsigned long long)(at + VH_GRAIN));
    if (v->gtes < 1 || v->gtes > 65536)
        return FC_ERR(FC_E_INVALID, "%s: VMDK numGTEsPerGT %u at offset %llu", n, v->gtes,
                      (unsigned long long)(at + VH_GTES));
    v->compressed = (v->flags & VMDK_FLAG_COMPRESS) != 0;
    v->markers = (v->flags & VMDK_FLAG_MARKER) != 0;
    if (v->compressed && img_be16(h + VH_COMPRESS) != 0x0100) /* 1, little-endian */
        return FC_ERR(FC_E_UNSUPPORTED, "%s: VMDK compression algorithm %u at offset %llu", n,
                      h[VH_COMPRESS] | h[VH_COMPRESS + 1] << 8,
                      (unsigned long long)(at + VH_COMPRESS));
    v->size = v->capacity * 512;
    v->gbytes = v->grain * 512;
    return FC_OK;
}

static void
find_create_type(struct vmr *v, const char *d, size_t len)
{
    static const char key[] = "createType=\"";
    const char *p = memmem(d, len, key, sizeof key - 1);
    if (!p)
        return;
    p += sizeof key - 1;
    size_t i = 0;
    while (p + i < d + len && p[i] != '"' && i + 1 < sizeof v->subformat &&
           ((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
            (p[i] >= '0' && p[i] <= '9')))
        i++;
    memcpy(v->subformat, p, i);
    v->subformat[i] = '\0';
}

static fc_rc
vmdk_open(void *st, struct img_in *in)
{
    struct vmr *v = st;
    v->in = in;
    const char *n = in->name;
    if (in->head_len < 512)
        return FC_ERR(FC_E_INVALID, "%s: truncated VMDK header: %zu of 512 bytes", n,
                      in->head_len);
    fc_rc rc = parse_header(v, in->head, 0);
    if (rc != FC_OK)
        return rc;
    uint64_t doff = img_le64(in->head + VH_DESC_OFF), dsz = img_le64(in->head + VH_DESC_SIZE);
    snprintf(v->subformat, sizeof v->subformat, "%s",
             v->compressed && v->markers ? "streamOptimized" : "monolithicSparse");
    /* doff comes from the file: compare in sectors so that nothing can wrap */
    if (doff && dsz && dsz <= 128 && doff <= UINT64_MAX / 512 - dsz) {
        char desc[128 * 512];
        if (in->seekable && (doff + dsz) * 512 <= in->size &&
            img_in_pread(in, desc, dsz * 512, doff * 512, "VMDK descriptor") == FC_OK)
            find_create_type(v, desc, dsz * 512);
        else if (!in->seekable && (doff + dsz) * 512 <= in->head_len)
            find_create_type(v, (const char *)in->head + doff * 512, dsz * 512);
    }
    if (!in->seekable)
        return FC_OK; /* read in order, marker by marker */
    if (v->gd_off == VMDK_GD_AT_END) {
        /* the footer (a copy of the header with the real directory) is 1536 bytes from
         * the end: footer marker, footer, end-of-stream marker */
        uint8_t f[1536];
        uint64_t at = in->size >= 1536 ? (in->size & ~511ull) - 1536 : 0;
        if ((rc = img_in_pread(in, f, sizeof f, at, "VMDK footer")) != FC_OK)
            return rc;
        if (img_le32(f + 8) != 0 || img_le32(f + 12) != VMDK_MARKER_FOOTER ||
            img_le64(f + 1024) != 0 || img_le32(f + 1032) != 0 ||
            img_le32(f + 1036) != VMDK_MARKER_EOS)
            return FC_ERR(FC_E_INVALID,
                          "%s: the VMDK header puts the grain directory at the end, but no "
                          "footer and end-of-stream marker were found at offset %llu", n,
                          (unsigned long long)at);
        if ((rc = parse_header(v, f + 512, at + 512)) != FC_OK)
            return rc;
        if (v->gd_off == VMDK_GD_AT_END)
            return FC_ERR(FC_E_INVALID, "%s: the VMDK footer at offset %llu has no directory",
                          n, (unsigned long long)(at + 512));
    }
    uint64_t grains = (v->capacity + v->grain - 1) / v->grain;
    uint64_t gd_n = (grains + v->gtes - 1) / v->gtes;
    if (gd_n && (v->gd_off == 0 || v->gd_off > in->size / 512 ||
                 gd_n * 4 > in->size - v->gd_off * 512))
        return FC_ERR(FC_E_INVALID,
                      "%s: VMDK grain directory at sector %llu (%llu entries) is outside the "
                      "file (%llu bytes)", n, (unsigned long long)v->gd_off,
                      (unsigned long long)gd_n, (unsigned long long)in->size);
    return FC_OK;
}

static void
vmdk_info(void *st, struct img_info *info)
{
    struct vmr *v = st;
    info->format = "vmdk";
    snprintf(info->subformat, sizeof info->subformat, "%s", v->subformat);
    info->vsize = v->size;
    info->cluster = v->gbytes;
    info->compression = v->compressed ? "deflate" : NULL;
}

static fc_rc
buffers(struct vmr *v)
{
    v->cbuf_cap = 2 * v->gbytes + 1024;
    if (!(v->gt = malloc((size_t)v->gtes * 4)) || !(v->data = img_alloc_io(DATA_BUF)) ||
        !(v->cbuf = malloc(v->cbuf_cap)) || !(v->gd = malloc(GD_CHUNK * 4)) ||
        !(v->dec = libdeflate_alloc_decompressor()))
        return FC_ERR(FC_E_NOMEM, "vmdk: out of memory");
    return FC_OK;
}

/* Inflates a compressed grain of clen bytes in cbuf (found at off) into data: at least
 * need bytes, at most a grain. */
static fc_rc
inflate_grain(struct vmr *v, size_t clen, uint64_t off, size_t need)
{
    size_t got = 0;
    enum libdeflate_result r =
        libdeflate_zlib_decompress(v->dec, v->cbuf, clen, v->data, v->gbytes, &got);
    if (r != LIBDEFLATE_SUCCESS)
        return FC_ERR(FC_E_INVALID, "%s: VMDK compressed grain at offset %llu %s",
                      v->in->name, (unsigned long long)off,
                      r == LIBDEFLATE_INSUFFICIENT_SPACE ? "inflates to more than a grain"
                                                         : "is not valid zlib data");
    if (got < need)
        return FC_ERR(FC_E_INVALID,
                      "%s: VMDK compressed grain at offset %llu inflates to %zu bytes, "
                      "expected %zu", v->in->name, (unsigned long long)off, got, need);
    return FC_OK;
}

static fc_rc
compressed_grain(struct vmr *v, struct img_emit *e, uint64_t off, size_t len)
{
    const char *n = v->in->name;
    size_t clen, got;
    uint64_t data_at = off;
    fc_rc rc;
    if (v->markers) {
        uint8_t m[12];
        if ((rc = img_in_pread(v->in, m, 12, off, "VMDK grain marker")) != FC_OK)
            return rc;
        clen = img_le32(m + 8);
        if (clen == 0 || clen > v->cbuf_cap)
            return FC_ERR(FC_E_INVALID, "%s: VMDK grain marker at offset %llu: size %zu", n,
                          (unsigned long long)off, clen);
        data_at = off + 12;
        if ((rc = img_in_pread(v->in, v->cbuf, clen, data_at, "VMDK compressed grain")) !=
            FC_OK)
            return rc;
    } else {
        if ((rc = img_in_pread_upto(v->in, v->cbuf, v->cbuf_cap, off, "VMDK compressed grain",
                                    &got)) != FC_OK)
            return rc;
        clen = got;
    }
    if ((rc = inflate_grain(v, clen, data_at, len)) != FC_OK)
        return rc;
    return img_emit_data(e, v->data, len);
}

static fc_rc
read_run(struct vmr *v, struct img_emit *e, uint64_t at, size_t len)
{
    size_t got;
    uint8_t *buf = img_emit_buf(e, v->data);
    fc_rc rc = img_in_pread_upto(v->in, buf, len, at, "VMDK grain", &got);
    return rc != FC_OK ? rc : img_emit_data(e, buf, len);
}

static fc_rc
walk_gt(struct vmr *v, struct img_emit *e, uint64_t gt_at, uint64_t vpos, uint64_t vend)
{
    const char *n = v->in->name;
    fc_rc rc = img_in_pread(v->in, v->gt, (size_t)v->gtes * 4, gt_at, "VMDK grain table");
    if (rc != FC_OK)
        return rc;
    uint64_t run_at = 0, run_len = 0;
    for (uint64_t j = 0; vpos < vend; j++) {
        uint64_t ent = img_le32(v->gt + j * 4), ent_at = gt_at + j * 4;
        size_t len = vend - vpos < v->gbytes ? (size_t)(vend - vpos) : (size_t)v->gbytes;
        bool zero = ent == 0 || (ent == 1 && (v->flags & VMDK_FLAG_ZERO_GRAIN));
        if (!zero && ent * 512 >= v->in->size)
            return FC_ERR(FC_E_INVALID,
                          "%s: VMDK grain table entry at offset %llu: grain at sector %llu is "
                          "past the end of the file (%llu bytes)", n,
                          (unsigned long long)ent_at, (unsigned long long)ent,
                          (unsigned long long)v->in->size);
        if (zero || v->compressed || run_at + run_len != ent * 512 || run_len + len > DATA_BUF) {
            if (run_len && (rc = read_run(v, e, run_at, (size_t)run_len)) != FC_OK)
                return rc;
            run_len = 0;
        }
        if (zero)
            img_emit_zero(e, len);
        else if (v->compressed)
            rc = compressed_grain(v, e, ent * 512, len);
        else {
            if (run_len == 0)
                run_at = ent * 512;
            run_len += len;
        }
        if (rc != FC_OK)
            return rc;
        vpos += len;
    }
    return run_len ? read_run(v, e, run_at, (size_t)run_len) : FC_OK;
}

static fc_rc
pump_tables(struct vmr *v, struct img_emit *e)
{
    const char *n = v->in->name;
    uint64_t cover = v->gbytes * v->gtes;
    uint64_t gd_n = (v->size + cover - 1) / cover, gd_at = v->gd_off * 512;
    fc_rc rc;
    for (uint64_t i = 0; i < gd_n; i++) {
        if (i % GD_CHUNK == 0) {
            uint64_t k = gd_n - i < GD_CHUNK ? gd_n - i : GD_CHUNK;
            if ((rc = img_in_pread(v->in, v->gd, k * 4, gd_at + i * 4,
                                   "VMDK grain directory")) != FC_OK)
                return rc;
        }
        uint64_t gt = img_le32(v->gd + (i % GD_CHUNK) * 4);
        uint64_t vpos = i * cover, vend = v->size - vpos < cover ? v->size : vpos + cover;
        if (gt == 0) {
            img_emit_zero(e, vend - vpos);
            continue;
        }
        uint64_t gt_at = gt * 512, gt_len = (uint64_t)v->gtes * 4;
        if (gt_at < gd_at + gd_n * 4 && gt_at + gt_len > gd_at)
            return FC_ERR(FC_E_INVALID,
                          "%s: VMDK grain directory entry at offset %llu: grain table at %llu "
                          "overlaps the directory", n, (unsigned long long)(gd_at + i * 4),
                          (unsigned long long)gt_at);
        if ((rc = walk_gt(v, e, gt_at, vpos, vend)) != FC_OK)
            return rc;
    }
    return FC_OK;
}

/* streamOptimized from a pipe: grain markers in LBA order, metadata markers skipped. */
static fc_rc
pump_stream(struct vmr *v, struct img_emit *e)
{
    const char *n = v->in->name;
    uint8_t s[512];
    fc_rc rc;
    uint64_t skip = v->overhead * 512;
    if (skip < 512)
        skip = 512;
    while (v->in->pos < skip) {
        size_t k = skip - v->in->pos < DATA_BUF ? (size_t)(skip - v->in->pos) : DATA_BUF;
        if ((rc = img_in_read(v->in, v->data, k, "VMDK header area")) != FC_OK)
            return rc;
    }
    uint64_t vnext = 0;
    for (;;) {
        uint64_t at = v->in->pos;
        size_t got;
        if ((rc = img_in_read_some(v->in, s, 512, &got)) != FC_OK)
            return rc;
        if (got == 0)
            break; /* images without an end-of-stream marker end here */
        if (got < 512)
            return FC_ERR(FC_E_INVALID, "%s: truncated VMDK marker at offset %llu", n,
                          (unsigned long long)at);
        uint64_t val = img_le64(s);
        uint32_t size = img_le32(s + 8);
        if (size == 0) {
            uint32_t type = img_le32(s + 12);
            if (type == VMDK_MARKER_EOS)
                break;
            if (type > VMDK_MARKER_FOOTER || val > (1ull << 32))
                return FC_ERR(FC_E_INVALID, "%s: VMDK marker at offset %llu: type %u, %llu "
                              "sectors", n, (unsigned long long)at, type,
                              (unsigned long long)val);
            for (uint64_t i = 0; i < val; i++)
                if ((rc = img_in_read(v->in, s, 512, "VMDK metadata")) != FC_OK)
                    return rc;
            continue;
        }
        uint64_t lba = val;
        if (size > v->cbuf_cap - 12)
            return FC_ERR(FC_E_INVALID, "%s: VMDK grain marker at offset %llu: size %u", n,
                          (unsigned long long)at, size);
        if (lba % v->grain || lba >= v->capacity || lba * 512 < vnext)
            return FC_ERR(FC_E_INVALID,
                          "%s: VMDK grain marker at offset %llu: LBA %llu is %s", n,
                          (unsigned long long)at, (unsigned long long)lba,
                          lba * 512 < vnext && lba < v->capacity && lba % v->grain == 0
                              ? "out of order (read the image from a file instead of a pipe)"
                              : "not a grain inside the disk");
        size_t total = (12 + (size_t)size + 511) & ~(size_t)511;
        memcpy(v->cbuf, s + 12, 500);
        if (total > 512 &&
            (rc = img_in_read(v->in, v->cbuf + 500, total - 512, "VMDK compressed grain")) !=
                FC_OK)
            return rc;
        size_t len = v->size - lba * 512 < v->gbytes ? (size_t)(v->size - lba * 512)
                                                     : (size_t)v->gbytes;
        img_emit_zero(e, lba * 512 - vnext);
        if ((rc = inflate_grain(v, size, at + 12, len)) != FC_OK ||
            (rc = img_emit_data(e, v->data, len)) != FC_OK)
            return rc;
        vnext = lba * 512 + len;
    }
    img_emit_zero(e, v->size - vnext);
    return FC_OK;
}

static fc_rc
vmdk_pump(void *st, struct fc_sink *sink, const volatile sig_atomic_t *cancel)
{
    struct vmr *v = st;
    fc_rc rc = buffers(v);
    if (rc != FC_OK)
        return rc;
    struct fc_stream_info info = {.size = v->size, .format = "raw"};
    if ((rc = sink->begin(sink, &info)) != FC_OK)
        return rc;
    struct img_emit e;
    img_emit_init(&e, sink, cancel);
    rc = v->in->seekable ? pump_tables(v, &e) : pump_stream(v, &e);
    if (rc == FC_OK)
        rc = img_emit_flush(&e);
    return rc != FC_OK ? rc : sink->end(sink, v->size, NULL);
}

static void
vmdk_close(void *st)
{
    struct vmr *v = st;
    free(v->gd);
    free(v->gt);
    free(v->data);
    free(v->cbuf);
    if (v->dec)
        libdeflate_free_decompressor(v->dec);
}

const struct img_reader img_vmdk_reader = {
    .name = "vmdk",
    .state_size = sizeof(struct vmr),
    .random_access = vmdk_random,
    .probe = vmdk_probe,
    .open = vmdk_open,
    .info = vmdk_info,
    .pump = vmdk_pump,
    .close = vmdk_close,
};
