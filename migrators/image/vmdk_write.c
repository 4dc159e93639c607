/* SPDX-License-Identifier: Apache-2.0 */
/* VMDK writer. monolithicSparse: header, descriptor, redundant and primary grain
 * directories written first (all grain tables at fixed places, as QEMU lays them out),
 * grains appended in order, each grain table written in place once its range is done.
 * With a map of the grains holding data (plan.h), the grain tables are written with the
 * directories, so a monolithicSparse output goes to a pipe in offset order.
 * streamOptimized (VMware's streaming layout, writes a pipe): header with the directory
 * "at the end", compressed grains with markers (deflated on the worker pool), each grain
 * table after its grains, then the directory, the footer and the end-of-stream marker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "blocks.h"
#include "fluid/error.h"
#include "image.h"
#include "vmdk.h"

#define GRAIN 128u            /* sectors: 64 KiB */
#define GTES 512u
#define GT_SECTORS 4u
#define DESC_OFF 1u
#define DESC_SECTORS 20u
#define VMDK_MAX_BYTES (2ull << 40) /* 32-bit sector numbers in grain tables */

struct vmw {
    struct fc_sink sink; /* first */
    struct img_out *out;
    struct img_wopts wo;
    bool stream;
    char adapter[16];
    unsigned hw;
    uint64_t size, capacity, gbytes, gd_n, gd_sectors, rgd_off, gd_off, overhead, next;
    uint64_t gt_idx;
    uint8_t *gt, *gd;
    struct img_blocks blk; /* grains assembled from the stream */
    bool gt_used;
    struct img_pool *pool;
    int level;
    const struct img_map *map; /* planned monolithicSparse: the grains holding data */
    uint64_t map_next;
};

static void
header(struct vmw *w, uint8_t *h, uint64_t gd_off)
{
    memset(h, 0, 512);
    memcpy(h, VMDK_MAGIC, 4);
    img_put_le32(h + VH_VERSION, w->stream ? 3 : 1);
    img_put_le32(h + VH_FLAGS, w->stream ? VMDK_FLAG_NL_DETECT | VMDK_FLAG_COMPRESS |
                                                VMDK_FLAG_MARKER
                                          : VMDK_FLAG_NL_DETECT | VMDK_FLAG_RGD);
    img_put_le64(h + VH_CAPACITY, w->capacity);
    img_put_le64(h + VH_GRAIN, GRAIN);
    img_put_le64(h + VH_DESC_OFF, DESC_OFF);
    img_put_le64(h + VH_DESC_SIZE, DESC_SECTORS);
    img_put_le32(h + VH_GTES, GTES);
    img_put_le64(h + VH_RGD, w->stream ? 0 : w->rgd_off);
    img_put_le64(h + VH_GD, gd_off);
    img_put_le64(h + VH_OVERHEAD, w->overhead);
    memcpy(h + VH_CHECK, "\n \r\n", 4);
    if (w->stream)
        h[VH_COMPRESS] = 1; /* deflate */
}

static fc_rc
descriptor(struct vmw *w, uint8_t *d)
{
    char name[256];
    snprintf(name, sizeof name, "%s", w->wo.dst_name ? w->wo.dst_name : "disk.vmdk");
    for (char *c = name; *c; c++)
        if (*c == '"' || (unsigned char)*c < 0x20)
            *c = '_';
    uint32_t cid;
    if (getrandom(&cid, sizeof cid, 0) != sizeof cid)
        cid = 0x12345678;
    unsigned heads = strcmp(w->adapter, "ide") == 0 ? 16 : 255;
    uint64_t cyl = w->capacity / (heads * 63);
    if (cyl > 16383)
        cyl = 16383;
    memset(d, 0, DESC_SECTORS * 512);
    int n = snprintf((char *)d, DESC_SECTORS * 512,
                     "# Disk DescriptorFile\nversion=1\nCID=%08x\nparentCID=ffffffff\n"
                     "createType=\"%s\"\n\n# Extent description\nRW %llu SPARSE \"%s\"\n\n"
                     "# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = \"%u\"\n"
                     "ddb.geometry.cylinders = \"%llu\"\nddb.geometry.heads = \"%u\"\n"
                     "ddb.geometry.sectors = \"63\"\nddb.adapterType = \"%s\"\n",
                     cid, w->stream ? "streamOptimized" : "monolithicSparse",
                     (unsigned long long)w->capacity, name, w->hw, (unsigned long long)cyl,
                     heads, w->adapter);
    if (n < 0 || n >= (int)(DESC_SECTORS * 512))
        return FC_ERR(FC_E_INTERNAL, "vmdk: descriptor too long");
    return FC_OK;
}

static fc_rc
flush_gt(struct vmw *w)
{
    if (w->gt_idx == UINT64_MAX || !w->gt_used)
        return FC_OK;
    fc_rc rc;
    w->gt_used = false;
    if (w->stream) {
        uint8_t m[512] = {0};
        img_put_le64(m, GT_SECTORS);
        img_put_le32(m + 12, VMDK_MARKER_GT);
        uint64_t at = w->next + 512;
        if ((rc = img_out_append(w->out, w->next, m, 512)) != FC_OK ||
            (rc = img_out_append(w->out, at, w->gt, GT_SECTORS * 512)) != FC_OK)
            return rc;
        img_put_le32(w->gd + w->gt_idx * 4, (uint32_t)(at / 512));
        w->next = at + GT_SECTORS * 512;
        return FC_OK;
    }
    if (w->map)
        return FC_OK; /* planned: the tables were written with the directories */
    uint64_t off = w->gt_idx * GT_SECTORS * 512;
    if ((rc = img_out_pwrite(w->out, (w->rgd_off + w->gd_sectors) * 512 + off, w->gt,
                             GT_SECTORS * 512)) != FC_OK)
        return rc;
    return img_out_pwrite(w->out, (w->gd_off + w->gd_sectors) * 512 + off, w->gt,
                          GT_SECTORS * 512);
}

static fc_rc
gt_for(struct vmw *w, uint64_t gi)
{
    uint64_t idx = gi / GTES;
    if (idx == w->gt_idx)
        return FC_OK;
    fc_rc rc = flush_gt(w);
    memset(w->gt, 0, GT_SECTORS * 512);
    w->gt_idx = idx;
    return rc;
}

static fc_rc
set_entry(struct vmw *w, uint64_t gi)
{
    if (w->next / 512 > UINT32_MAX)
        return FC_ERR(FC_E_INVALID, "vmdk: the output passes 2 TiB, the format's limit");
    img_put_le32(w->gt + (gi % GTES) * 4, (uint32_t)(w->next / 512));
    w->gt_used = true;
    return FC_OK;
}

static fc_rc
store_job(struct vmw *w, struct img_job *j)
{
    uint64_t gi = j->tag;
    fc_rc rc = gt_for(w, gi);
    if (rc == FC_OK)
        rc = set_entry(w, gi);
    if (rc != FC_OK)
        return rc;
    uint8_t m[12];
    img_put_le64(m, gi * GRAIN);
    img_put_le32(m + 8, (uint32_t)j->out_len);
    size_t total = (12 + j->out_len + 511) & ~(size_t)511;
    if ((rc = img_out_append(w->out, w->next, m, 12)) != FC_OK ||
        (rc = img_out_append(w->out, w->next + 12, j->out, j->out_len)) != FC_OK)
        return rc;
    w->next += total; /* the padding stays zeros */
    return FC_OK;
}

static fc_rc
drain(struct vmw *w, bool all)
{
    struct img_job *j;
    while ((all || img_pool_full(w->pool)) && (j = img_pool_next(w->pool)) != NULL) {
        if (j->out_len == 0)
            return FC_ERR(FC_E_INTERNAL, "vmdk: a grain did not compress");
        fc_rc rc = store_job(w, j);
        if (rc != FC_OK)
            return rc;
    }
    return FC_OK;
}

static fc_rc
grain(struct vmw *w, uint64_t gi, const uint8_t *data)
{
    if (fc_is_zero(data, w->gbytes))
        return FC_OK;
    fc_rc rc;
    if (w->stream) {
        if ((rc = drain(w, false)) != FC_OK)
            return rc;
        struct img_job *j = img_pool_get(w->pool);
        memcpy(j->in, data, w->gbytes);
        j->in_len = w->gbytes;
        j->tag = gi;
        img_pool_submit(w->pool, j);
        return FC_OK;
    }
    if (w->map && (rc = img_map_expect(w->map, &w->map_next, gi, "vmdk grain")) != FC_OK)
        return rc;
    if ((rc = gt_for(w, gi)) != FC_OK || (rc = set_entry(w, gi)) != FC_OK ||
        (rc = img_out_append(w->out, w->next, data, w->gbytes)) != FC_OK)
        return rc;
    w->next += w->gbytes;
    return FC_OK;
}

/* monolithicSparse: how many whole data grains from p fit one grain table (1 if the first
 * is zero), stored with one write by store_run. */
static size_t
run_grains(struct vmw *w, uint64_t gi, const uint8_t *p, size_t len)
{
    size_t n = 0, max = len / w->gbytes;
    uint64_t room = GTES - gi % GTES;
    while (n < max && n < room && !fc_is_zero(p + n * w->gbytes, w->gbytes))
        n++;
    return n ? n : 1;
}

static fc_rc
store_run(struct vmw *w, uint64_t gi, const uint8_t *p, size_t n)
{
    fc_rc rc = gt_for(w, gi);
    for (size_t i = 0; rc == FC_OK && i < n; i++) {
        if (w->map && (rc = img_map_expect(w->map, &w->map_next, gi + i, "vmdk grain")) != FC_OK)
            break;
        rc = set_entry(w, gi + i);
        w->next += w->gbytes;
    }
    if (rc == FC_OK)
        rc = img_out_append_direct(w->out, w->next - n * w->gbytes, p, n * w->gbytes);
    return rc;
}

/* The block assembler's callbacks (blocks.h). */
static fc_rc
vw_block(void *ctx, uint64_t gi, const uint8_t *p)
{
    return grain(ctx, gi, p);
}

static size_t
vw_run(void *ctx, uint64_t gi, const uint8_t *p, size_t len)
{
    struct vmw *w = ctx;
    return w->stream ? 1 : run_grains(w, gi, p, len);
}

static fc_rc
vw_store(void *ctx, uint64_t gi, const uint8_t *p, size_t n)
{
    return store_run(ctx, gi, p, n);
}

/* Sizes and places the directories and tables for a virtual size. */
static fc_rc
layout(struct vmw *w, uint64_t vsize)
{
    if (vsize == FC_SIZE_UNKNOWN)
        return FC_ERR(FC_E_INVALID, "vmdk: the virtual size must be known");
    w->size = (vsize + 511) & ~511ull;
    if (w->size > VMDK_MAX_BYTES)
        return FC_ERR(FC_E_INVALID, "vmdk: %llu bytes is over the sparse VMDK limit of 2 TiB",
                      (unsigned long long)w->size);
    w->capacity = w->size / 512;
    w->gbytes = GRAIN * 512;
    uint64_t grains = (w->capacity + GRAIN - 1) / GRAIN;
    w->gd_n = (grains + GTES - 1) / GTES;
    w->gd_sectors = (w->gd_n * 4 + 511) / 512;
    if (w->stream) {
        w->overhead = GRAIN;
        return FC_OK;
    }
    w->rgd_off = DESC_OFF + DESC_SECTORS;
    w->gd_off = w->rgd_off + w->gd_sectors + GT_SECTORS * w->gd_n;
    uint64_t end = w->gd_off + w->gd_sectors + GT_SECTORS * w->gd_n;
    w->overhead = (end + GRAIN - 1) / GRAIN * GRAIN;
    return FC_OK;
}

/* Planned: the grain tables after the directory at sector base, from the map (the k-th
 * grain holding data is the k-th grain after the overhead). */
static fc_rc
put_tables(struct vmw *w, uint64_t base)
{
    uint64_t k = 0, t = UINT64_MAX;
    fc_rc rc = FC_OK;
    for (uint64_t g = img_map_next(w->map, 0);; g = img_map_next(w->map, g + 1)) {
        if (t != UINT64_MAX && (g == IMG_MAP_NONE || g / GTES != t)) {
            rc = img_out_append(w->out, (base + w->gd_sectors + t * GT_SECTORS) * 512, w->gt,
                                GT_SECTORS * 512);
            if (rc != FC_OK)
                return rc;
        }
        if (g == IMG_MAP_NONE)
            return FC_OK;
        if (g / GTES != t) {
            t = g / GTES;
            memset(w->gt, 0, GT_SECTORS * 512);
        }
        img_put_le32(w->gt + (g % GTES) * 4, (uint32_t)(w->overhead + k++ * GRAIN));
    }
}

static fc_rc
vw_begin(struct fc_sink *s, const struct fc_stream_info *info)
{
    struct vmw *w = (struct vmw *)s;
    fc_rc rc = layout(w, info->size);
    if (rc != FC_OK)
        return rc;
    if (w->map && w->map->n != (w->capacity + GRAIN - 1) / GRAIN)
        return FC_ERR(FC_E_INTERNAL, "vmdk: the stream's size differs from the planned one");
    w->gt_idx = UINT64_MAX;
    w->blk = (struct img_blocks){.bs = w->gbytes, .buf = img_alloc_io(w->gbytes), .ctx = w,
                                 .block = vw_block, .run = vw_run, .store_run = vw_store};
    if (!w->blk.buf || !(w->gt = calloc(GT_SECTORS, 512)) ||
        !(w->gd = calloc(w->gd_sectors ? w->gd_sectors : 1, 512)))
        return FC_ERR(FC_E_NOMEM, "vmdk: out of memory");
    uint8_t h[512], d[DESC_SECTORS * 512];
    if ((rc = descriptor(w, d)) != FC_OK)
        return rc;
    if (w->stream) {
        header(w, h, VMDK_GD_AT_END);
        if ((rc = img_out_append(w->out, 0, h, 512)) != FC_OK ||
            (rc = img_out_append(w->out, DESC_OFF * 512, d, sizeof d)) != FC_OK)
            return rc;
        w->next = w->overhead * 512;
        return img_pool_new(&w->pool, 1, w->level, w->wo.threads, w->gbytes,
                            w->gbytes + w->gbytes / 8 + 1024);
    }
    header(w, h, w->gd_off);
    if ((rc = img_out_append(w->out, 0, h, 512)) != FC_OK ||
        (rc = img_out_append(w->out, DESC_OFF * 512, d, sizeof d)) != FC_OK)
        return rc;
    for (int copy = 0; copy < 2; copy++) {
        uint64_t base = copy ? w->gd_off : w->rgd_off;
        for (uint64_t i = 0; i < w->gd_n; i++)
            img_put_le32(w->gd + i * 4, (uint32_t)(base + w->gd_sectors + i * GT_SECTORS));
        if ((rc = img_out_append(w->out, base * 512, w->gd, w->gd_sectors * 512)) != FC_OK)
            return rc;
        if (w->map && (rc = put_tables(w, base)) != FC_OK)
            return rc;
    }
    w->next = w->overhead * 512;
    return FC_OK;
}

static fc_rc
vw_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    return img_blocks_write(&((struct vmw *)s)->blk, buf, len);
}

static fc_rc
vw_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    return img_blocks_zero(&((struct vmw *)s)->blk, len);
}

static fc_rc
vw_end(struct fc_sink *s, uint64_t size, const uint8_t *sha256)
{
    struct vmw *w = (struct vmw *)s;
    fc_rc rc = img_blocks_flush(&w->blk);
    if (rc == FC_OK && w->pool)
        rc = drain(w, true);
    if (rc == FC_OK)
        rc = flush_gt(w);
    if (rc == FC_OK && w->map)
        rc = img_map_expect(w->map, &w->map_next, IMG_MAP_NONE, "vmdk grain");
    if (rc != FC_OK)
        return rc;
    if (!w->stream)
        return img_out_finish(w->out, w->next);
    uint8_t m[512] = {0}, h[512];
    img_put_le64(m, w->gd_sectors);
    img_put_le32(m + 12, VMDK_MARKER_GD);
    uint64_t gd_at = w->next + 512;
    if ((rc = img_out_append(w->out, w->next, m, 512)) != FC_OK ||
        (rc = img_out_append(w->out, gd_at, w->gd, w->gd_sectors * 512)) != FC_OK)
        return rc;
    w->next = gd_at + w->gd_sectors * 512;
    img_put_le64(m, 1);
    img_put_le32(m + 12, VMDK_MARKER_FOOTER);
    header(w, h, gd_at / 512);
    if ((rc = img_out_append(w->out, w->next, m, 512)) != FC_OK ||
        (rc = img_out_append(w->out, w->next + 512, h, 512)) != FC_OK)
        return rc;
    memset(m, 0, sizeof m); /* end-of-stream marker */
    if ((rc = img_out_append(w->out, w->next + 1024, m, 512)) != FC_OK)
        return rc;
    w->next += 1536;
    return img_out_finish(w->out, w->next);
}

static const char *const vmdk_keys[] = {"subformat", "adapter_type", "hwversion",
                                        "compression_level", NULL};

static fc_rc
vw_option(void *st, const char *key, const char *value)
{
    struct vmw *w = st;
    if (strcmp(key, "subformat") == 0) {
        if (strcmp(value, "streamOptimized") == 0)
            w->stream = true;
        else if (strcmp(value, "monolithicSparse") == 0)
            w->stream = false;
        else
            return FC_ERR(FC_E_UNSUPPORTED,
                          "vmdk: subformat=%s (monolithicSparse or streamOptimized; other "
                          "subformats need qemu-img)", value);
        return FC_OK;
    }
    if (strcmp(key, "adapter_type") == 0) {
        if (strcmp(value, "ide") != 0 && strcmp(value, "lsilogic") != 0 &&
            strcmp(value, "buslogic") != 0 && strcmp(value, "legacyESX") != 0)
            return FC_ERR(FC_E_INVALID,
                          "vmdk: adapter_type=%s (ide, lsilogic, buslogic, legacyESX)", value);
        snprintf(w->adapter, sizeof w->adapter, "%s", value);
        return FC_OK;
    }
    if (strcmp(key, "compression_level") == 0) {
        char *end;
        long v = strtol(value, &end, 10);
        if (*end || v < 1 || v > 12)
            return FC_ERR(FC_E_INVALID, "vmdk: compression_level=%s (1 to 12)", value);
        w->level = (int)v;
        return FC_OK;
    }
    if (strcmp(key, "hwversion") == 0) {
        char *end;
        unsigned long v = strtoul(value, &end, 10);
        if (*end || v < 4 || v > 21)
            return FC_ERR(FC_E_INVALID, "vmdk: hwversion=%s (4 to 21)", value);
        w->hw = (unsigned)v;
        return FC_OK;
    }
    return FC_ERR(FC_E_INVALID, "vmdk: unknown option \"%s\" (subformat, adapter_type, "
                  "hwversion, compression_level)", key);
}

static bool
vw_needs_seek(void *st)
{
    return !((struct vmw *)st)->stream;
}

static uint64_t
vw_plan_unit(void *st, uint64_t vsize)
{
    return ((struct vmw *)st)->stream ? 0 : GRAIN * 512;
}

static fc_rc
vw_plan(void *st, const struct img_map *m, uint64_t vsize, uint64_t *size)
{
    struct vmw *w = st;
    fc_rc rc = layout(w, vsize);
    if (rc != FC_OK)
        return rc;
    if (w->stream || m->unit != w->gbytes)
        return FC_ERR(FC_E_INTERNAL, "vmdk: cannot plan this output");
    if (w->overhead + m->count * GRAIN > UINT32_MAX)
        return FC_ERR(FC_E_INVALID, "vmdk: the output passes 2 TiB, the format's limit");
    w->map = m;
    w->map_next = img_map_next(m, 0);
    *size = (w->overhead + m->count * GRAIN) * 512;
    return FC_OK;
}

static fc_rc
vw_open(void *st, struct img_out *out, const struct img_wopts *wo, struct fc_sink **sink)
{
    struct vmw *w = st;
    w->out = out;
    w->wo = *wo;
    if (wo->compress && !w->stream)
        return FC_ERR(FC_E_UNSUPPORTED,
                      "vmdk: -c needs -o subformat=streamOptimized (monolithicSparse grains "
                      "are not compressed)");
    if (!w->adapter[0])
        strcpy(w->adapter, "ide");
    if (!w->hw)
        w->hw = 4;
    w->sink = (struct fc_sink){vw_begin, vw_write, vw_zero, vw_end};
    *sink = &w->sink;
    return FC_OK;
}

static void
vw_close(void *st)
{
    struct vmw *w = st;
    img_pool_free(w->pool);
    free(w->blk.buf);
    free(w->gt);
    free(w->gd);
}

const struct img_writer img_vmdk_writer = {
    .name = "vmdk",
    .state_size = sizeof(struct vmw),
    .needs_seek = vw_needs_seek,
    .plan_unit = vw_plan_unit,
    .plan = vw_plan,
    .needs_size = true,
    .can_compress = true,
    .keys = vmdk_keys,
    .option = vw_option,
    .open = vw_open,
    .close = vw_close,
};
