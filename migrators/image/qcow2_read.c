/* SPDX-License-Identifier: Apache-2.0 */
/* qcow2 reader (versions 2 and 3): walks the L1 and L2 tables in guest order and passes
 * clusters on as data (contiguous host clusters read in one request), zero runs
 * (unallocated and zero clusters) or inflated compressed clusters. Every header field and
 * table entry is checked before use; errors name the field and its file offset. */
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/error.h"
#include "image.h"
#include "qcow2.h"

#define DATA_BUF IMG_IO_BUF
#define L1_CHUNK 8192u /* entries read at a time */

struct q2r {
    struct img_in *in;
    unsigned version, cluster_bits;
    uint64_t cs, size, l1_off, l1_size;
    uint64_t incompat;
    char backing[1024];
    uint8_t *l1, *l2, *data, *cbuf;
    struct libdeflate_decompressor *dec;
    struct img_in *bin;       /* the backing file given with --backing, or NULL */
    struct q2r *bq;           /* its reader when it is qcow2 (NULL: raw) */
    uint8_t *rl2, *rbuf;      /* random reads: the cached L2 table, a cluster */
    uint64_t rl2_off;         /* 0: none cached */
};

static fc_rc q2_open(void *st, struct img_in *in);
static void q2_close(void *st);

/* Opens the backing file the user gave (raw, or qcow2 without a backing file itself). */
static fc_rc
open_backing(struct q2r *q)
{
    const char *n = q->in->name;
    if (!(q->bin = calloc(1, sizeof *q->bin)))
        return FC_ERR(FC_E_NOMEM, "qcow2: out of memory");
    fc_rc rc = img_in_open(q->bin, q->in->backing);
    if (rc != FC_OK)
        return rc;
    if (!q->bin->seekable)
        return FC_ERR(FC_E_INVALID, "%s: the backing file %s must be a file", n, q->in->backing);
    const uint8_t *h = q->bin->head;
    size_t hl = q->bin->head_len;
    if (hl >= 4 && memcmp(h, QCOW2_MAGIC, 4) == 0) {
        if (!(q->bq = calloc(1, sizeof *q->bq)))
            return FC_ERR(FC_E_NOMEM, "qcow2: out of memory");
        if ((rc = q2_open(q->bq, q->bin)) != FC_OK)
            return rc;
        if (q->bq->backing[0])
            return FC_ERR(FC_E_UNSUPPORTED,
                          "%s: the backing file %s has a backing file itself (\"%s\"); only one "
                          "level is read", n, q->in->backing, q->bq->backing);
        return FC_OK;
    }
    const char *other = img_foreign_probe(h, hl);
    if (other || (hl >= 4 && memcmp(h, "KDMV", 4) == 0) || (hl >= 8 && !memcmp(h, "conectix", 8)))
        return FC_ERR(FC_E_UNSUPPORTED, "%s: backing file %s: only raw and qcow2 backing files "
                      "are read", n, q->in->backing);
    return FC_OK;
}

static bool
q2_probe(const uint8_t *h, size_t len)
{
    return len >= 8 && memcmp(h, QCOW2_MAGIC, 4) == 0 &&
           (img_be32(h + 4) == 2 || img_be32(h + 4) == 3);
}

static fc_rc
q2_open(void *st, struct img_in *in)
{
    struct q2r *q = st;
    q->in = in;
    const char *n = in->name;
    uint8_t h[QCOW2_HDR3_LEN] = {0};
    if (in->head_len < QCOW2_HDR2_LEN)
        return FC_ERR(FC_E_INVALID, "%s: truncated qcow2 header: %zu of %u bytes", n,
                      in->head_len, QCOW2_HDR2_LEN);
    memcpy(h, in->head, in->head_len < sizeof h ? in->head_len : sizeof h);
    if (memcmp(h, QCOW2_MAGIC, 4) != 0)
        return FC_ERR(FC_E_INVALID, "%s: bad qcow2 magic at offset 0", n);
    q->version = img_be32(h + 4);
    if (q->version != 2 && q->version != 3)
        return FC_ERR(FC_E_UNSUPPORTED, "%s: qcow2 version %u at offset 4 (2 and 3 are read)",
                      n, q->version);
    q->cluster_bits = img_be32(h + 20);
    if (q->cluster_bits < 9 || q->cluster_bits > 21)
        return FC_ERR(FC_E_INVALID, "%s: qcow2 cluster_bits %u at offset 20 (9..21)", n,
                      q->cluster_bits);
    q->cs = 1ull << q->cluster_bits;
    q->size = img_be64(h + 24);
    if (q->size > IMG_MAX_VSIZE)
        return FC_ERR(FC_E_INVALID, "%s: qcow2 virtual size %llu at offset 24 is absurd", n,
                      (unsigned long long)q->size);
    if (img_be32(h + 32) != 0)
        return FC_ERR(FC_E_UNSUPPORTED, "%s: encrypted qcow2 (crypt_method %u at offset 32)", n,
                      img_be32(h + 32));
    q->l1_size = img_be32(h + 36);
    q->l1_off = img_be64(h + 40);
    uint64_t l2_cover = q->cs * (q->cs / 8);
    uint64_t l1_need = (q->size + l2_cover - 1) / l2_cover;
    if (q->l1_size < l1_need)
        return FC_ERR(FC_E_INVALID,
                      "%s: qcow2 l1_size %llu at offset 36 is too small for the virtual size "
                      "(needs %llu)", n, (unsigned long long)q->l1_size,
                      (unsigned long long)l1_need);
    if (q->l1_size > QCOW2_MAX_L1)
        return FC_ERR(FC_E_INVALID, "%s: qcow2 l1_size %llu at offset 36 is absurd", n,
                      (unsigned long long)q->l1_size);
    if (l1_need > 0) {
        if (q->l1_off % q->cs != 0 || q->l1_off == 0)
            return FC_ERR(FC_E_INVALID,
                          "%s: qcow2 L1 table offset %llu (header offset 40) is not a "
                          "non-zero multiple of the cluster size", n,
                          (unsigned long long)q->l1_off);
        if (in->seekable && (q->l1_off > in->size || l1_need * 8 > in->size - q->l1_off))
            return FC_ERR(FC_E_INVALID,
                          "%s: qcow2 L1 table at offset %llu (%llu entries) passes the end of "
                          "the file (%llu bytes)", n, (unsigned long long)q->l1_off,
                          (unsigned long long)l1_need, (unsigned long long)in->size);
    }
    uint64_t bf_off = img_be64(h + 8);
    uint32_t bf_len = img_be32(h + 16);
    if (q->version == 3) {
        q->incompat = img_be64(h + 72);
        uint32_t hlen = img_be32(h + 100);
        if (hlen < QCOW2_HDR3_MIN || hlen > q->cs)
            return FC_ERR(FC_E_INVALID, "%s: qcow2 header_length %u at offset 100", n, hlen);
        if (q->incompat & QCOW2_INCOMPAT_CORRUPT)
            return FC_ERR(FC_E_INVALID, "%s: the qcow2 image is marked corrupt (offset 72)", n);
        if (q->incompat & QCOW2_INCOMPAT_DATAFILE)
            return FC_ERR(FC_E_UNSUPPORTED, "%s: qcow2 with an external data file", n);
        if (q->incompat & QCOW2_INCOMPAT_EXTL2)
            return FC_ERR(FC_E_UNSUPPORTED, "%s: qcow2 with extended L2 entries (subclusters)",
                          n);
        if (q->incompat & QCOW2_INCOMPAT_COMPRESSION) {
            unsigned ct = hlen > 104 ? h[104] : 0;
            if (ct != 0)
                return FC_ERR(FC_E_UNSUPPORTED,
                              "%s: qcow2 compression type %u at offset 104 (only zlib is read)",
                              n, ct);
        }
        if (q->incompat & ~(uint64_t)QCOW2_INCOMPAT_KNOWN)
            return FC_ERR(FC_E_UNSUPPORTED,
                          "%s: unknown qcow2 incompatible features 0x%llx at offset 72", n,
                          (unsigned long long)(q->incompat & ~(uint64_t)QCOW2_INCOMPAT_KNOWN));
    }
    if (bf_off != 0) {
        if (bf_len == 0 || bf_len >= sizeof q->backing)
            return FC_ERR(FC_E_INVALID, "%s: qcow2 backing_file_size %u at offset 16", n,
                          bf_len);
        if (in->seekable) {
            fc_rc rc = img_in_pread(in, q->backing, bf_len, bf_off, "qcow2 backing file name");
            if (rc != FC_OK)
                return rc;
        } else if (bf_off + bf_len <= in->head_len) {
            memcpy(q->backing, in->head + bf_off, bf_len);
        } else {
            strcpy(q->backing, "?");
        }
        q->backing[bf_len] = '\0';
        for (char *c = q->backing; *c; c++)
            if ((unsigned char)*c < 0x20)
                *c = '?';
        if (in->backing)
            return open_backing(q);
    }
    return FC_OK;
}

static void
q2_info(void *st, struct img_info *info)
{
    struct q2r *q = st;
    info->format = "qcow2";
    snprintf(info->subformat, sizeof info->subformat, "%s", q->version == 2 ? "0.10" : "1.1");
    info->vsize = q->size;
    info->cluster = q->cs;
    info->compression = "zlib";
    snprintf(info->backing, sizeof info->backing, "%s", q->backing);
}

/* Reads n contiguous host clusters at host and passes on len bytes of them. */
static fc_rc
read_run(struct q2r *q, struct img_emit *e, uint64_t host, size_t len)
{
    size_t got;
    uint8_t *buf = img_emit_buf(e, q->data);
    fc_rc rc = img_in_pread_upto(q->in, buf, len, host, "qcow2 data cluster", &got);
    return rc != FC_OK ? rc : img_emit_data(e, buf, len);
}

/* Inflates the compressed cluster of L2 entry ent (at file offset ent_at) into out. */
static fc_rc
inflate_cluster(struct q2r *q, uint64_t ent, uint64_t ent_at, uint8_t *out)
{
    unsigned x = 62 - (q->cluster_bits - 8);
    uint64_t off = ent & ((1ull << x) - 1);
    uint64_t nsec = ((ent >> x) & ((1ull << (q->cluster_bits - 8)) - 1)) + 1;
    size_t clen = (size_t)(nsec * 512 - (off & 511));
    if (off < q->cs)
        return FC_ERR(FC_E_INVALID,
                      "%s: qcow2 L2 entry at offset %llu: compressed cluster at %llu overlaps "
                      "the header", q->in->name, (unsigned long long)ent_at,
                      (unsigned long long)off);
    size_t got;
    fc_rc rc = img_in_pread_upto(q->in, q->cbuf, clen, off, "qcow2 compressed cluster", &got);
    if (rc != FC_OK)
        return rc;
    rc = img_inflate(q->dec, false, q->cbuf, got, out, q->cs, "qcow2 compressed cluster", off);
    if (rc != FC_OK)
        fc_error_prefix("%s", q->in->name);
    return rc;
}

static fc_rc
compressed(struct q2r *q, struct img_emit *e, uint64_t ent, uint64_t ent_at, size_t len)
{
    uint8_t *buf = img_emit_buf(e, q->data);
    fc_rc rc = inflate_cluster(q, ent, ent_at, buf);
    return rc != FC_OK ? rc : img_emit_data(e, buf, len);
}

/* Checks an L1 entry; *l2 gets the L2 table's offset (0: none). */
static fc_rc
check_l1e(struct q2r *q, uint64_t ent, uint64_t ent_at, uint64_t *l2)
{
    const char *n = q->in->name;
    *l2 = ent & QCOW2_OFFSET_MASK;
    if (ent & QCOW2_L1_RESERVED)
        return FC_ERR(FC_E_INVALID,
                      "%s: qcow2 L1 entry at offset %llu has reserved bits set (0x%llx)", n,
                      (unsigned long long)ent_at, (unsigned long long)ent);
    if (*l2 == 0)
        return FC_OK;
    if (*l2 % q->cs)
        return FC_ERR(FC_E_INVALID,
                      "%s: qcow2 L1 entry at offset %llu: L2 table offset %llu is not "
                      "cluster aligned", n, (unsigned long long)ent_at, (unsigned long long)*l2);
    if (*l2 + q->cs > q->l1_off && *l2 < q->l1_off + q->l1_size * 8)
        return FC_ERR(FC_E_INVALID,
                      "%s: qcow2 L1 entry at offset %llu: L2 table at %llu overlaps the L1 "
                      "table", n, (unsigned long long)ent_at, (unsigned long long)*l2);
    return FC_OK;
}

/* Checks a normal (uncompressed, allocated) L2 entry's data offset. */
static fc_rc
check_host(struct q2r *q, uint64_t host, uint64_t ent_at)
{
    const char *n = q->in->name;
    if (host % q->cs)
        return FC_ERR(FC_E_INVALID,
                      "%s: qcow2 L2 entry at offset %llu: data offset %llu is not cluster "
                      "aligned", n, (unsigned long long)ent_at, (unsigned long long)host);
    if (host >= q->in->size)
        return FC_ERR(FC_E_INVALID,
                      "%s: qcow2 L2 entry at offset %llu: data cluster at %llu is past the end "
                      "of the file (%llu bytes)", n, (unsigned long long)ent_at,
                      (unsigned long long)host, (unsigned long long)q->in->size);
    return FC_OK;
}

/* Reads len bytes of guest content at off (a backing image: any offset, zeros past the
 * end). */
static fc_rc
q2_read_at(struct q2r *q, uint64_t off, uint8_t *buf, size_t len)
{
    if (!q->rl2 && (!(q->rl2 = malloc(q->cs)) || !(q->rbuf = img_alloc_io(q->cs)) ||
                    (!q->cbuf && !(q->cbuf = malloc(2 * q->cs + 512))) ||
                    (!q->dec && !(q->dec = libdeflate_alloc_decompressor()))))
        return FC_ERR(FC_E_NOMEM, "qcow2: out of memory");
    uint64_t per_l2 = q->cs / 8;
    fc_rc rc = FC_OK;
    while (len > 0 && rc == FC_OK) {
        if (off >= q->size) {
            memset(buf, 0, len);
            break;
        }
        uint64_t in_cl = off % q->cs, ci = off / q->cs, i1 = ci / per_l2;
        size_t k = q->cs - in_cl < len ? (size_t)(q->cs - in_cl) : len;
        if (k > q->size - off)
            k = (size_t)(q->size - off);
        uint8_t e8[8];
        uint64_t l2, ent = 0, ent_at = 0;
        if ((rc = img_in_pread(q->in, e8, 8, q->l1_off + i1 * 8, "qcow2 L1 table")) != FC_OK ||
            (rc = check_l1e(q, img_be64(e8), q->l1_off + i1 * 8, &l2)) != FC_OK)
            break;
        if (l2 && l2 != q->rl2_off) {
            if ((rc = img_in_pread(q->in, q->rl2, q->cs, l2, "qcow2 L2 table")) != FC_OK)
                break;
            q->rl2_off = l2;
        }
        if (l2) {
            ent_at = l2 + (ci % per_l2) * 8;
            ent = img_be64(q->rl2 + (ci % per_l2) * 8);
        }
        uint64_t host = ent & QCOW2_OFFSET_MASK;
        if (ent & QCOW2_OFLAG_COMPRESSED) {
            if ((rc = inflate_cluster(q, ent, ent_at, q->rbuf)) == FC_OK)
                memcpy(buf, q->rbuf + in_cl, k);
        } else if (ent & QCOW2_L2_RESERVED) {
            rc = FC_ERR(FC_E_INVALID, "%s: qcow2 L2 entry at offset %llu has reserved bits set",
                        q->in->name, (unsigned long long)ent_at);
        } else if ((ent & QCOW2_OFLAG_ZERO) || host == 0) {
            memset(buf, 0, k);
        } else if ((rc = check_host(q, host, ent_at)) == FC_OK) {
            size_t got;
            rc = img_in_pread_upto(q->in, buf, k, host + in_cl, "qcow2 data cluster", &got);
        }
        buf += k;
        off += k;
        len -= k;
    }
    return rc;
}

/* Guest content of the backing file at off into q->data. */
static fc_rc
backing_read(struct q2r *q, uint64_t off, size_t len)
{
    if (q->bq)
        return q2_read_at(q->bq, off, q->data, len);
    if (off >= q->bin->size) {
        memset(q->data, 0, len);
        return FC_OK;
    }
    size_t got;
    return img_in_pread_upto(q->bin, q->data, len, off, "backing file data", &got);
}

static fc_rc
walk_l2(struct q2r *q, struct img_emit *e, uint64_t l2_off, uint64_t vpos, uint64_t vend)
{
    const char *n = q->in->name;
    fc_rc rc = img_in_pread(q->in, q->l2, q->cs, l2_off, "qcow2 L2 table");
    if (rc != FC_OK)
        return rc;
    uint64_t run_host = 0, run_len = 0; /* pending contiguous data clusters */
    for (uint64_t j = 0; vpos < vend; j++) {
        uint64_t ent = img_be64(q->l2 + j * 8), ent_at = l2_off + j * 8;
        size_t len = vend - vpos < q->cs ? (size_t)(vend - vpos) : (size_t)q->cs;
        bool is_data = false;
        uint64_t host = 0;
        if (ent & QCOW2_OFLAG_COMPRESSED) {
            if (run_len && (rc = read_run(q, e, run_host, (size_t)run_len)) != FC_OK)
                return rc;
            run_len = 0;
            if ((rc = compressed(q, e, ent, ent_at, len)) != FC_OK)
                return rc;
        } else {
            host = ent & QCOW2_OFFSET_MASK;
            if (ent & QCOW2_L2_RESERVED)
                return FC_ERR(FC_E_INVALID,
                              "%s: qcow2 L2 entry at offset %llu has reserved bits set (0x%llx)",
                              n, (unsigned long long)ent_at, (unsigned long long)ent);
            if ((ent & QCOW2_OFLAG_ZERO) || host == 0) {
                if (run_len && (rc = read_run(q, e, run_host, (size_t)run_len)) != FC_OK)
                    return rc;
                run_len = 0;
                if (host == 0 && !(ent & QCOW2_OFLAG_ZERO) && q->bin) {
                    if ((rc = backing_read(q, vpos, len)) != FC_OK ||
                        (rc = img_emit_data(e, q->data, len)) != FC_OK)
                        return rc;
                } else {
                    img_emit_zero(e, len);
                }
            } else {
                if ((rc = check_host(q, host, ent_at)) != FC_OK)
                    return rc;
                is_data = true;
            }
        }
        if (is_data) {
            /* a run ends at DATA_BUF boundaries of the disk too: a raw output's writes
             * then cover whole large page-cache folios */
            if (run_len && (run_host + run_len != host || run_len + len > DATA_BUF ||
                            vpos % DATA_BUF == 0)) {
                if ((rc = read_run(q, e, run_host, (size_t)run_len)) != FC_OK)
                    return rc;
                run_len = 0;
            }
            if (run_len == 0)
                run_host = host;
            run_len += len;
        }
        vpos += len;
    }
    if (run_len)
        return read_run(q, e, run_host, (size_t)run_len);
    return FC_OK;
}

static fc_rc
q2_pump(void *st, struct fc_sink *sink, const volatile sig_atomic_t *cancel)
{
    struct q2r *q = st;
    const char *n = q->in->name;
    if (!(q->l2 = malloc(q->cs)) || !(q->data = img_alloc_io(DATA_BUF > q->cs ? DATA_BUF : q->cs)) ||
        !(q->cbuf = malloc(2 * q->cs + 512)) || !(q->l1 = malloc(L1_CHUNK * 8)) ||
        !(q->dec = libdeflate_alloc_decompressor()))
        return FC_ERR(FC_E_NOMEM, "qcow2: out of memory");
    if (q->backing[0] && !q->bin)
        return FC_ERR(FC_E_UNSUPPORTED,
                      "%s: the qcow2 image has a backing file \"%s\", which is read only when "
                      "given with --backing FILE (an image from elsewhere must not make us "
                      "read local files)", n, q->backing);
    struct fc_stream_info info = {.size = q->size, .format = "raw"};
    fc_rc rc = sink->begin(sink, &info);
    if (rc != FC_OK)
        return rc;
    struct img_emit e;
    img_emit_init(&e, sink, cancel);
    uint64_t l2_cover = q->cs * (q->cs / 8);
    uint64_t nl1 = (q->size + l2_cover - 1) / l2_cover;
    for (uint64_t i = 0; i < nl1; i++) {
        if (i % L1_CHUNK == 0) {
            uint64_t k = nl1 - i < L1_CHUNK ? nl1 - i : L1_CHUNK;
            if ((rc = img_in_pread(q->in, q->l1, k * 8, q->l1_off + i * 8, "qcow2 L1 table")) !=
                FC_OK)
                return rc;
        }
        uint64_t ent = img_be64(q->l1 + (i % L1_CHUNK) * 8), ent_at = q->l1_off + i * 8;
        uint64_t vpos = i * l2_cover;
        uint64_t vend = q->size - vpos < l2_cover ? q->size : vpos + l2_cover;
        uint64_t l2;
        if ((rc = check_l1e(q, ent, ent_at, &l2)) != FC_OK)
            return rc;
        if (l2 == 0 && q->bin) {
            for (uint64_t p = vpos; p < vend;) {
                size_t k = vend - p < DATA_BUF ? (size_t)(vend - p) : DATA_BUF;
                if ((rc = backing_read(q, p, k)) != FC_OK ||
                    (rc = img_emit_data(&e, q->data, k)) != FC_OK)
                    return rc;
                p += k;
            }
            continue;
        }
        if (l2 == 0) {
            img_emit_zero(&e, vend - vpos);
            continue;
        }
        if ((rc = walk_l2(q, &e, l2, vpos, vend)) != FC_OK)
            return rc;
    }
    if ((rc = img_emit_flush(&e)) != FC_OK)
        return rc;
    return sink->end(sink, q->size, NULL);
}

static void
q2_close(void *st)
{
    struct q2r *q = st;
    if (q->bq) {
        q2_close(q->bq);
        free(q->bq);
    }
    if (q->bin) {
        img_in_close(q->bin);
        free(q->bin);
    }
    free(q->rl2);
    free(q->rbuf);
    free(q->l1);
    free(q->l2);
    free(q->data);
    free(q->cbuf);
    if (q->dec)
        libdeflate_free_decompressor(q->dec);
}

const struct img_reader img_qcow2_reader = {
    .name = "qcow2",
    .state_size = sizeof(struct q2r),
    .random_access = img_random_always,
    .probe = q2_probe,
    .open = q2_open,
    .info = q2_info,
    .pump = q2_pump,
    .close = q2_close,
};
