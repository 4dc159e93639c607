/* SPDX-License-Identifier: Apache-2.0 */
/* vpc (VHD): fixed (the disk's bytes, then a 512-byte footer) and dynamic (a footer copy,
 * a dynamic header, the block allocation table, blocks of a sector bitmap plus data, and
 * the footer). The reader sizes the disk as QEMU does (CHS geometry for images made by
 * Virtual PC or old QEMU, the footer's current size otherwise); the writer records the
 * exact size (creator "qem2", which QEMU and Hyper-V read by current size). With a map of the
 * blocks holding data (plan.h), the writer puts the BAT first and a dynamic VHD goes to a
 * pipe in offset order. */
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <errno.h>
#include <unistd.h>

#include "fluid/error.h"
#include "image.h"

#define VPC_FOOTER 512u
#define VPC_DYNHDR 1024u
#define VPC_FIXED 2u
#define VPC_DYNAMIC 3u
#define VPC_DIFF 4u
#define VPC_MAX_SIZE (2040ull << 30) /* the format's limit */
#define VPC_BLOCK (2u << 20)
#define DATA_BUF (1u << 20)

struct vpcr {
    struct img_in *in;
    uint32_t type, block;
    uint64_t size, bat_off, bat_n, data_end;
    uint8_t *bat, *data;
};

static bool
vpc_probe(const uint8_t *h, size_t len)
{
    return len >= 8 && memcmp(h, "conectix", 8) == 0;
}

static uint32_t
checksum(const uint8_t *p, size_t n, size_t skip)
{
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++)
        if (i < skip || i >= skip + 4)
            s += p[i];
    return ~s;
}

static fc_rc
vpc_open(void *st, struct img_in *in)
{
    struct vpcr *v = st;
    v->in = in;
    const char *n = in->name;
    uint8_t f[VPC_FOOTER];
    uint64_t foot_at;
    fc_rc rc;
    if (!in->seekable)
        return FC_ERR(FC_E_INTERNAL, "vpc: needs a file");
    if (in->size < VPC_FOOTER)
        return FC_ERR(FC_E_INVALID, "%s: truncated VHD: %llu bytes, a footer needs 512", n,
                      (unsigned long long)in->size);
    /* dynamic disks start with a copy of the footer; fixed ones have it only at the end */
    if (in->head_len >= VPC_FOOTER && memcmp(in->head, "conectix", 8) == 0) {
        memcpy(f, in->head, VPC_FOOTER);
        foot_at = 0;
    } else {
        foot_at = (in->size - VPC_FOOTER) & ~511ull;
        if ((rc = img_in_pread(in, f, VPC_FOOTER, foot_at, "VHD footer")) != FC_OK)
            return rc;
        if (memcmp(f, "conectix", 8) != 0)
            return FC_ERR(FC_E_INVALID, "%s: bad VHD footer cookie at offset %llu", n,
                          (unsigned long long)foot_at);
    }
    if (img_be32(f + 64) != checksum(f, VPC_FOOTER, 64))
        return FC_ERR(FC_E_INVALID, "%s: VHD footer checksum mismatch at offset %llu", n,
                      (unsigned long long)(foot_at + 64));
    v->type = img_be32(f + 60);
    uint64_t cur = img_be64(f + 48);
    uint16_t cyls = img_be16(f + 56);
    uint8_t heads = f[58], secs = f[59];
    /* QEMU's rule: Virtual PC and QEMU ("qemu") record the size in the CHS geometry */
    bool chs = (memcmp(f + 28, "vpc ", 4) == 0 || memcmp(f + 28, "qemu", 4) == 0) &&
               !(cyls == 65535 && heads == 16 && secs == 255);
    v->size = chs ? (uint64_t)cyls * heads * secs * 512 : cur;
    if (v->size > VPC_MAX_SIZE || cur > VPC_MAX_SIZE)
        return FC_ERR(FC_E_INVALID, "%s: VHD size %llu at offset %llu is absurd", n,
                      (unsigned long long)cur, (unsigned long long)(foot_at + 48));
    if (v->size % 512)
        return FC_ERR(FC_E_INVALID, "%s: VHD size %llu at offset %llu is not whole sectors", n,
                      (unsigned long long)v->size, (unsigned long long)(foot_at + 48));
    if (v->type == VPC_FIXED) {
        uint64_t data = in->size & ~511ull;
        data = data >= VPC_FOOTER ? data - VPC_FOOTER : 0;
        if (v->size > data)
            return FC_ERR(FC_E_INVALID,
                          "%s: truncated fixed VHD: the footer says %llu bytes, the file holds "
                          "%llu before its footer", n, (unsigned long long)v->size,
                          (unsigned long long)data);
        v->data_end = data;
        return FC_OK;
    }
    if (v->type == VPC_DIFF)
        return FC_ERR(FC_E_UNSUPPORTED,
                      "%s: differencing VHD (it needs its parent): flatten it first", n);
    if (v->type != VPC_DYNAMIC)
        return FC_ERR(FC_E_INVALID, "%s: VHD disk type %u at offset %llu", n, v->type,
                      (unsigned long long)(foot_at + 60));
    uint64_t dyn_at = img_be64(f + 16);
    uint8_t d[VPC_DYNHDR];
    if ((rc = img_in_pread(in, d, VPC_DYNHDR, dyn_at, "VHD dynamic header")) != FC_OK)
        return rc;
    if (memcmp(d, "cxsparse", 8) != 0)
        return FC_ERR(FC_E_INVALID, "%s: bad VHD dynamic header cookie at offset %llu", n,
                      (unsigned long long)dyn_at);
    if (img_be32(d + 36) != checksum(d, VPC_DYNHDR, 36))
        return FC_ERR(FC_E_INVALID, "%s: VHD dynamic header checksum mismatch at offset %llu", n,
                      (unsigned long long)(dyn_at + 36));
    v->bat_off = img_be64(d + 16);
    v->bat_n = img_be32(d + 28);
    v->block = img_be32(d + 32);
    if (v->block < 512 || v->block > (256u << 20) || (v->block & (v->block - 1)))
        return FC_ERR(FC_E_INVALID, "%s: VHD block size %u at offset %llu", n, v->block,
                      (unsigned long long)(dyn_at + 32));
    uint64_t need = (v->size + v->block - 1) / v->block;
    if (v->bat_n < need)
        return FC_ERR(FC_E_INVALID,
                      "%s: VHD BAT has %llu entries (offset %llu), the size needs %llu", n,
                      (unsigned long long)v->bat_n, (unsigned long long)(dyn_at + 28),
                      (unsigned long long)need);
    if (v->bat_off > in->size || need * 4 > in->size - v->bat_off)
        return FC_ERR(FC_E_INVALID,
                      "%s: VHD BAT at offset %llu (%llu entries) passes the end of the file", n,
                      (unsigned long long)v->bat_off, (unsigned long long)need);
    v->bat_n = need;
    return FC_OK;
}

static void
vpc_info(void *st, struct img_info *info)
{
    struct vpcr *v = st;
    info->format = "vpc";
    snprintf(info->subformat, sizeof info->subformat, "%s",
             v->type == VPC_FIXED ? "fixed" : "dynamic");
    info->vsize = v->size;
    info->cluster = v->type == VPC_FIXED ? 0 : v->block;
}

static fc_rc
pump_fixed(struct vpcr *v, struct img_emit *e)
{
    /* the data area is raw: skip holes as the raw reader does */
    fc_rc rc = FC_OK;
    for (uint64_t pos = 0; pos < v->size && rc == FC_OK;) {
        size_t k = v->size - pos < DATA_BUF ? (size_t)(v->size - pos) : DATA_BUF;
        off_t d = lseek(v->in->fd, (off_t)pos, SEEK_DATA);
        if (d < 0 && errno == ENXIO)
            d = (off_t)v->size;
        if (d >= 0 && (uint64_t)d > pos) {
            uint64_t z = (uint64_t)d < v->size ? (uint64_t)d - pos : v->size - pos;
            img_emit_zero(e, z);
            pos += z;
            continue;
        }
        uint8_t *buf = img_emit_buf(e, v->data);
        if ((rc = img_in_pread(v->in, buf, k, pos, "VHD data")) != FC_OK)
            break;
        for (size_t i = 0; i < k && rc == FC_OK; i += 65536) {
            size_t kk = k - i < 65536 ? k - i : 65536;
            rc = fc_is_zero(buf + i, kk) ? img_emit_zero(e, kk) : img_emit_data(e, buf + i, kk);
        }
        pos += k;
    }
    return rc;
}

static fc_rc
pump_dynamic(struct vpcr *v, struct img_emit *e)
{
    const char *n = v->in->name;
    uint64_t bitmap = ((uint64_t)v->block / 512 / 8 + 511) & ~511ull;
    fc_rc rc;
    if (!(v->bat = malloc(v->bat_n > 0 ? v->bat_n * 4 : 1)))
        return FC_ERR(FC_E_NOMEM, "vpc: out of memory");
    if (v->bat_n && (rc = img_in_pread(v->in, v->bat, v->bat_n * 4, v->bat_off, "VHD BAT")) !=
                        FC_OK)
        return rc;
    for (uint64_t i = 0; i < v->bat_n; i++) {
        uint32_t ent = img_be32(v->bat + i * 4);
        uint64_t vpos = i * v->block;
        uint64_t len = v->size - vpos < v->block ? v->size - vpos : v->block;
        if (ent == 0xffffffffu) {
            img_emit_zero(e, len);
            continue;
        }
        uint64_t at = (uint64_t)ent * 512 + bitmap;
        if (at >= v->in->size)
            return FC_ERR(FC_E_INVALID,
                          "%s: VHD BAT entry %llu (offset %llu): block at %llu is past the end "
                          "of the file (%llu bytes)", n, (unsigned long long)i,
                          (unsigned long long)(v->bat_off + i * 4),
                          (unsigned long long)((uint64_t)ent * 512),
                          (unsigned long long)v->in->size);
        if ((uint64_t)ent * 512 < v->bat_off + v->bat_n * 4 &&
            (uint64_t)ent * 512 + bitmap + len > v->bat_off)
            return FC_ERR(FC_E_INVALID,
                          "%s: VHD BAT entry %llu (offset %llu): block at %llu overlaps the BAT",
                          n, (unsigned long long)i, (unsigned long long)(v->bat_off + i * 4),
                          (unsigned long long)((uint64_t)ent * 512));
        for (uint64_t o = 0; o < len;) {
            size_t k = len - o < DATA_BUF ? (size_t)(len - o) : DATA_BUF;
            size_t got;
            uint8_t *buf = img_emit_buf(e, v->data);
            if ((rc = img_in_pread_upto(v->in, buf, k, at + o, "VHD block", &got)) != FC_OK)
                return rc;
            for (size_t j = 0; j < k; j += 65536) {
                size_t kk = k - j < 65536 ? k - j : 65536;
                rc = fc_is_zero(buf + j, kk) ? img_emit_zero(e, kk)
                                              : img_emit_data(e, buf + j, kk);
                if (rc != FC_OK)
                    return rc;
            }
            o += k;
        }
    }
    return FC_OK;
}

static fc_rc
vpc_pump(void *st, struct fc_sink *sink, const volatile sig_atomic_t *cancel)
{
    struct vpcr *v = st;
    if (!(v->data = img_alloc_io(DATA_BUF)))
        return FC_ERR(FC_E_NOMEM, "vpc: out of memory");
    struct fc_stream_info info = {.size = v->size, .format = "raw"};
    fc_rc rc = sink->begin(sink, &info);
    struct img_emit e;
    img_emit_init(&e, sink, cancel);
    if (rc == FC_OK)
        rc = v->type == VPC_FIXED ? pump_fixed(v, &e) : pump_dynamic(v, &e);
    if (rc == FC_OK)
        rc = img_emit_flush(&e);
    return rc != FC_OK ? rc : sink->end(sink, v->size, NULL);
}

static void
vpc_close(void *st)
{
    struct vpcr *v = st;
    free(v->bat);
    free(v->data);
}

const struct img_reader img_vpc_reader = {
    .name = "vpc",
    .state_size = sizeof(struct vpcr),
    .random_access = img_random_always,
    .probe = vpc_probe,
    .open = vpc_open,
    .info = vpc_info,
    .pump = vpc_pump,
    .close = vpc_close,
};

/* ---------- writer ---------- */

struct vpcw {
    struct fc_sink sink; /* first */
    struct img_out *out;
    bool fixed;
    uint64_t size, vpos, next, bat_off, bat_n, data_at;
    uint8_t *bat;
    uint64_t cur_blk, cur_at; /* the block being written and its data's file offset */
    uint8_t footer[VPC_FOOTER];
    const struct img_map *map; /* planned: the blocks holding data */
    uint64_t map_next;
};

/* The CHS geometry of the VHD specification (appendix), for a size in sectors. */
static void
geometry(uint64_t sectors, uint16_t *c, uint8_t *h, uint8_t *s)
{
    uint64_t cth;
    unsigned spt, hh;
    if (sectors > 65535ull * 16 * 255)
        sectors = 65535ull * 16 * 255;
    if (sectors >= 65535ull * 16 * 63) {
        spt = 255;
        hh = 16;
        cth = sectors / spt;
    } else {
        spt = 17;
        cth = sectors / spt;
        hh = (unsigned)((cth + 1023) / 1024);
        if (hh < 4)
            hh = 4;
        if (cth >= hh * 1024ull || hh > 16) {
            spt = 31;
            hh = 16;
            cth = sectors / spt;
        }
        if (cth >= hh * 1024ull) {
            spt = 63;
            hh = 16;
            cth = sectors / spt;
        }
    }
    *c = (uint16_t)(cth / hh);
    *h = (uint8_t)hh;
    *s = (uint8_t)spt;
}

static void
make_footer(struct vpcw *w)
{
    uint8_t *f = w->footer;
    memset(f, 0, VPC_FOOTER);
    memcpy(f, "conectix", 8);
    img_put_be32(f + 8, 2);             /* features: reserved bit */
    img_put_be32(f + 12, 0x00010000);   /* version 1.0 */
    img_put_be64(f + 16, w->fixed ? UINT64_MAX : VPC_FOOTER);
    img_put_be32(f + 24, (uint32_t)(time(NULL) - 946684800)); /* seconds since 2000 */
    memcpy(f + 28, "qem2", 4);          /* QEMU and Hyper-V read the size below */
    img_put_be32(f + 32, 0x00050003);
    memcpy(f + 36, "Wi2k", 4);
    img_put_be64(f + 40, w->size);
    img_put_be64(f + 48, w->size);
    uint16_t c;
    uint8_t h, s;
    geometry(w->size / 512, &c, &h, &s);
    img_put_be16(f + 56, c);
    f[58] = h;
    f[59] = s;
    img_put_be32(f + 60, w->fixed ? VPC_FIXED : VPC_DYNAMIC);
    if (getrandom(f + 68, 16, 0) != 16) /* unique id */
        memset(f + 68, 0x5a, 16);
    img_put_be32(f + 64, checksum(f, VPC_FOOTER, 64));
}

/* Writes a piece of guest data inside one block: the block is allocated (its bitmap
 * written, its 2 MiB reserved at the end of the file) by its first non-zero piece; zero
 * pieces and the parts of a block never written stay holes, as QEMU leaves them. */
static fc_rc
put_piece(struct vpcw *w, uint64_t vpos, const uint8_t *data, size_t len)
{
    uint64_t idx = vpos / VPC_BLOCK;
    if (idx != w->cur_blk) {
        if (fc_is_zero(data, len))
            return FC_OK;
        fc_rc rc;
        if (w->map && (rc = img_map_expect(w->map, &w->map_next, idx, "VHD block")) != FC_OK)
            return rc;
        uint8_t bitmap[512];
        memset(bitmap, 0xff, sizeof bitmap);
        img_put_be32(w->bat + idx * 4, (uint32_t)(w->next / 512));
        rc = img_out_append(w->out, w->next, bitmap, sizeof bitmap);
        if (rc != FC_OK)
            return rc;
        w->cur_blk = idx;
        w->cur_at = w->next + 512;
        w->next += 512 + VPC_BLOCK;
    }
    return img_raw_put(w->out, w->cur_at + vpos % VPC_BLOCK, data, len);
}

static void
dyn_header(struct vpcw *w, uint8_t *d)
{
    memset(d, 0, VPC_DYNHDR);
    memcpy(d, "cxsparse", 8);
    img_put_be64(d + 8, UINT64_MAX);
    img_put_be64(d + 16, w->bat_off);
    img_put_be32(d + 24, 0x00010000);
    img_put_be32(d + 28, (uint32_t)w->bat_n);
    img_put_be32(d + 32, VPC_BLOCK);
    img_put_be32(d + 36, checksum(d, VPC_DYNHDR, 36));
}

/* Sizes the dynamic layout: footer copy, dynamic header, BAT, then the blocks. */
static fc_rc
layout(struct vpcw *w, uint64_t vsize)
{
    if (vsize == FC_SIZE_UNKNOWN)
        return FC_ERR(FC_E_INVALID, "vpc: the virtual size must be known");
    w->size = (vsize + 511) & ~511ull;
    if (w->size > VPC_MAX_SIZE)
        return FC_ERR(FC_E_INVALID, "vpc: %llu bytes is over the VHD limit of 2040 GiB",
                      (unsigned long long)w->size);
    w->bat_n = (w->size + VPC_BLOCK - 1) / VPC_BLOCK;
    w->bat_off = VPC_FOOTER + VPC_DYNHDR;
    w->data_at = (w->bat_off + w->bat_n * 4 + 511) & ~511ull;
    return FC_OK;
}

static fc_rc
vw_begin(struct fc_sink *s, const struct fc_stream_info *info)
{
    struct vpcw *w = (struct vpcw *)s;
    fc_rc rc = layout(w, info->size);
    if (rc != FC_OK)
        return rc;
    make_footer(w);
    if (w->fixed)
        return img_out_presize(w->out, w->size + VPC_FOOTER);
    if (w->map && w->map->n != w->bat_n)
        return FC_ERR(FC_E_INTERNAL, "vpc: the stream's size differs from the planned one");
    w->next = w->data_at;
    w->bat = malloc(w->bat_n * 4 + 512);
    w->cur_blk = UINT64_MAX;
    if (!w->bat)
        return FC_ERR(FC_E_NOMEM, "vpc: out of memory");
    memset(w->bat, 0xff, w->bat_n * 4 + 512);
    if (w->map) {
        /* planned: footer copy, dynamic header and BAT first; the k-th block holding data
         * is the k-th block after the BAT */
        uint64_t k = 0;
        for (uint64_t i = img_map_next(w->map, 0); i != IMG_MAP_NONE;
             i = img_map_next(w->map, i + 1))
            img_put_be32(w->bat + i * 4, (uint32_t)((w->data_at + k++ * (512 + VPC_BLOCK)) / 512));
        uint8_t d[VPC_DYNHDR];
        dyn_header(w, d);
        size_t batlen = (size_t)((w->bat_n * 4 + 511) & ~511ull);
        if ((rc = img_out_append(w->out, 0, w->footer, VPC_FOOTER)) != FC_OK ||
            (rc = img_out_append(w->out, VPC_FOOTER, d, VPC_DYNHDR)) != FC_OK)
            return rc;
        return img_out_append(w->out, w->bat_off, w->bat, batlen);
    }
    /* sized for the worst case first (cut to the real size at the end): writes that jump
     * past the end of the file, over the holes of partly written blocks, cost more */
    if (img_out_presize(w->out, w->next + w->bat_n * (512 + VPC_BLOCK) + VPC_FOOTER) != FC_OK)
        fc_error_clear(); /* only an optimisation */
    return FC_OK;
}

static fc_rc
vw_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    struct vpcw *w = (struct vpcw *)s;
    if (w->fixed) {
        w->vpos = off + len;
        return img_raw_put(w->out, off, buf, len);
    }
    const uint8_t *p = buf;
    while (len > 0) {
        size_t k = (size_t)(VPC_BLOCK - off % VPC_BLOCK);
        if (k > len)
            k = len;
        fc_rc rc = put_piece(w, off, p, k);
        if (rc != FC_OK)
            return rc;
        off += k;
        p += k;
        len -= k;
    }
    return FC_OK;
}

static fc_rc
vw_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    return FC_OK; /* holes */
}

static fc_rc
vw_end(struct fc_sink *s, uint64_t size, const uint8_t *sha256)
{
    struct vpcw *w = (struct vpcw *)s;
    fc_rc rc;
    if (w->fixed) {
        /* the data, zero-padded to the size, then the footer: written in order */
        if ((rc = img_out_append(w->out, w->size, w->footer, VPC_FOOTER)) != FC_OK)
            return rc;
        return img_out_finish(w->out, w->size + VPC_FOOTER);
    }
    if (w->map && (rc = img_map_expect(w->map, &w->map_next, IMG_MAP_NONE, "VHD block")) != FC_OK)
        return rc;
    if ((rc = img_out_append(w->out, w->next, w->footer, VPC_FOOTER)) != FC_OK)
        return rc;
    if (!w->map) {
        uint8_t d[VPC_DYNHDR];
        dyn_header(w, d);
        size_t batlen = (size_t)((w->bat_n * 4 + 511) & ~511ull);
        if ((rc = img_out_pwrite(w->out, 0, w->footer, VPC_FOOTER)) != FC_OK ||
            (rc = img_out_pwrite(w->out, VPC_FOOTER, d, VPC_DYNHDR)) != FC_OK ||
            (rc = img_out_pwrite(w->out, w->bat_off, w->bat, batlen)) != FC_OK)
            return rc;
    }
    return img_out_finish(w->out, w->next + VPC_FOOTER);
}

static const char *const vpc_keys[] = {"subformat", NULL};

static fc_rc
vw_option(void *st, const char *key, const char *value)
{
    struct vpcw *w = st;
    if (strcmp(key, "subformat") == 0) {
        if (strcmp(value, "fixed") == 0)
            w->fixed = true;
        else if (strcmp(value, "dynamic") == 0)
            w->fixed = false;
        else
            return FC_ERR(FC_E_INVALID, "vpc: subformat=%s (dynamic or fixed)", value);
        return FC_OK;
    }
    return FC_ERR(FC_E_INVALID, "vpc: unknown option \"%s\" (subformat)", key);
}

static bool
vw_needs_seek(void *st)
{
    return !((struct vpcw *)st)->fixed;
}

static uint64_t
vw_plan_unit(void *st, uint64_t vsize)
{
    return ((struct vpcw *)st)->fixed ? 0 : VPC_BLOCK;
}

static fc_rc
vw_plan(void *st, const struct img_map *m, uint64_t vsize, uint64_t *size)
{
    struct vpcw *w = st;
    fc_rc rc = layout(w, vsize);
    if (rc != FC_OK)
        return rc;
    if (w->fixed || m->unit != VPC_BLOCK)
        return FC_ERR(FC_E_INTERNAL, "vpc: cannot plan this output");
    w->map = m;
    w->map_next = img_map_next(m, 0);
    *size = w->data_at + m->count * (512 + VPC_BLOCK) + VPC_FOOTER;
    return FC_OK;
}

static fc_rc
vw_open(void *st, struct img_out *out, const struct img_wopts *wo, struct fc_sink **sink)
{
    struct vpcw *w = st;
    w->out = out;
    w->sink = (struct fc_sink){vw_begin, vw_write, vw_zero, vw_end};
    *sink = &w->sink;
    return FC_OK;
}

static void
vw_close(void *st)
{
    struct vpcw *w = st;
    free(w->bat);
}

const struct img_writer img_vpc_writer = {
    .name = "vpc",
    .state_size = sizeof(struct vpcw),
    .needs_seek = vw_needs_seek, /* dynamic only: fixed VHD streams */
    .plan_unit = vw_plan_unit,
    .plan = vw_plan,
    .needs_size = true,
    .keys = vpc_keys,
    .option = vw_option,
    .open = vw_open,
    .close = vw_close,
};
