/* SPDX-License-Identifier: Apache-2.0 */
/* qcow2 writer: every host cluster is allocated at the end of the file in guest order, so
 * the output is written sequentially (data, each L2 table once its range is done, each
 * refcount block once the allocation passes it), then the L1 table, the last refcount
 * blocks, the refcount table, and the header at offset 0 last. The layout depends only on
 * which clusters hold data, so with a map of them (plan.h) a planning pass finds the
 * header's fields first and the same code writes the whole file in offset order to a pipe.
 * Zero clusters stay unallocated. With -c, clusters are compressed on the worker pool and
 * packed byte-wise (not planned: their sizes are known only once compressed). */
#include <stdlib.h>
#include <string.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "image.h"
#include "blocks.h"
#include "qcow2.h"

struct q2pend {
    uint64_t off;
    uint8_t *blk;
};

struct q2w {
    struct fc_sink sink; /* first */
    struct img_out *out;
    struct img_wopts wo;
    unsigned version, cluster_bits;
    uint64_t cs, size, l1_size, l2_entries, rb_entries;
    uint64_t next;            /* end of the allocated bytes in the file */
    struct img_blocks blk;    /* guest clusters assembled from the stream */
    uint64_t *l1;             /* host offsets of L2 tables (with COPIED) */
    uint8_t *l2;              /* current L2 table */
    uint64_t l2_idx;          /* L1 index of l2, UINT64_MAX = none */
    bool l2_used;
    uint8_t *rb;              /* current refcount block */
    uint64_t rb_idx;
    uint64_t *rt;             /* offsets of written refcount blocks */
    size_t rt_len, rt_cap;
    struct q2pend *pend;      /* refcount blocks placed behind clusters not yet written */
    size_t pend_n, pend_cap;
    struct img_pool *pool;
    int level;
    bool dry;                 /* the planning pass: allocates, writes nothing */
    const struct img_map *map; /* planned output: the clusters holding data */
    uint64_t map_next;        /* the next cluster the map expects */
    uint64_t plan_l1, plan_rt, plan_rtc, plan_end; /* what the planning pass found */
};

/* Writes the refcount blocks that lie wholly before upto (they waited for the clusters
 * allocated in front of them to be written). */
static fc_rc
pend_flush(struct q2w *w, uint64_t upto)
{
    size_t i = 0;
    fc_rc rc = FC_OK;
    while (i < w->pend_n && w->pend[i].off + w->cs <= upto && rc == FC_OK) {
        rc = img_out_append(w->out, w->pend[i].off, w->pend[i].blk, w->cs);
        free(w->pend[i].blk);
        i++;
    }
    if (i > 0) {
        memmove(w->pend, w->pend + i, (w->pend_n - i) * sizeof *w->pend);
        w->pend_n -= i;
    }
    return rc;
}

/* Every byte the writer writes goes through here, in offset order (appends only: a gap
 * is a hole in a file and zeros on a pipe). */
static fc_rc
put(struct q2w *w, uint64_t off, const void *buf, size_t len, bool direct)
{
    if (w->dry)
        return FC_OK;
    fc_rc rc = pend_flush(w, off);
    if (rc != FC_OK)
        return rc;
    return direct ? img_out_append_direct(w->out, off, buf, len)
                  : img_out_append(w->out, off, buf, len);
}

/* The refcount block in memory is complete and goes to host cluster x: written now (x is
 * the next cluster to write) or once the clusters in front of it are. */
static fc_rc
rb_store(struct q2w *w, uint64_t x, bool now)
{
    if (w->rt_len == w->rt_cap) {
        size_t nc = w->rt_cap ? w->rt_cap * 2 : 64;
        uint64_t *n = realloc(w->rt, nc * sizeof *n);
        if (!n)
            return FC_ERR(FC_E_NOMEM, "qcow2: out of memory");
        w->rt = n;
        w->rt_cap = nc;
    }
    w->rt[w->rt_len++] = x * w->cs;
    w->rb_idx++;
    fc_rc rc = FC_OK;
    if (w->dry) {
    } else if (now) {
        rc = put(w, x * w->cs, w->rb, w->cs, false);
    } else {
        if (w->pend_n == w->pend_cap) {
            size_t nc = w->pend_cap ? w->pend_cap * 2 : 4;
            struct q2pend *n = realloc(w->pend, nc * sizeof *n);
            if (!n)
                return FC_ERR(FC_E_NOMEM, "qcow2: out of memory");
            w->pend = n;
            w->pend_cap = nc;
        }
        uint8_t *b = malloc(w->cs);
        if (!b)
            return FC_ERR(FC_E_NOMEM, "qcow2: out of memory");
        memcpy(b, w->rb, w->cs);
        w->pend[w->pend_n++] = (struct q2pend){x * w->cs, b};
    }
    memset(w->rb, 0, w->cs);
    return rc;
}

/* Adds one reference to each host cluster in [c, c + n), in order, none below the range of
 * the refcount block in memory. When the run passes that range (a run of several clusters:
 * the L1 table, a compressed cluster), the full block goes after everything allocated so
 * far and its own reference is added once the run is counted, so that references always
 * move forward. */
static fc_rc
ref_range(struct q2w *w, uint64_t c, uint64_t n)
{
    uint64_t q[1024]; /* blocks placed meanwhile: at most 16 * 4M / 512^2 + 2 of them */
    size_t qn = 0, qi = 0;
    for (uint64_t i = 0; i < n || qi < qn;) {
        uint64_t y = i < n ? c + i : q[qi];
        while (y >= (w->rb_idx + 1) * w->rb_entries) {
            uint64_t x = (w->next + w->cs - 1) / w->cs;
            w->next = (x + 1) * w->cs;
            fc_rc rc = rb_store(w, x, false);
            if (rc != FC_OK)
                return rc;
            if (qn == sizeof q / sizeof q[0])
                return FC_ERR(FC_E_INTERNAL, "qcow2: refcount allocation does not converge");
            q[qn++] = x;
        }
        if (y < w->rb_idx * w->rb_entries)
            return FC_ERR(FC_E_INTERNAL, "qcow2: reference to cluster %llu behind refcount "
                          "block %llu", (unsigned long long)y, (unsigned long long)w->rb_idx);
        uint8_t *e = w->rb + (y - w->rb_idx * w->rb_entries) * 2;
        uint16_t v = img_be16(e);
        if (v == 0xffff)
            return FC_ERR(FC_E_INTERNAL, "qcow2: refcount overflow at cluster %llu",
                          (unsigned long long)y);
        img_put_be16(e, (uint16_t)(v + 1));
        if (i < n)
            i++;
        else
            qi++;
    }
    return FC_OK;
}

/* Once the next free cluster lies past the range of the refcount block in memory, that
 * block is complete: it takes that cluster, before anything else is allocated. So where
 * refcount blocks land depends only on the sequence of allocations, not on how the input
 * was chunked (data runs never cross a block's range, see store_run). */
static fc_rc
rb_due(struct q2w *w)
{
    for (;;) {
        uint64_t c = (w->next + w->cs - 1) / w->cs;
        if (c < (w->rb_idx + 1) * w->rb_entries)
            return FC_OK;
        w->next = (c + 1) * w->cs;
        fc_rc rc = rb_store(w, c, true);
        if (rc == FC_OK)
            rc = ref_range(w, c, 1);
        if (rc != FC_OK)
            return rc;
    }
}

/* Allocates n contiguous clusters at the end; returns their offset. */
static fc_rc
alloc_clusters(struct q2w *w, uint64_t n, uint64_t *off)
{
    fc_rc rc = rb_due(w);
    if (rc != FC_OK)
        return rc;
    uint64_t c = (w->next + w->cs - 1) / w->cs;
    w->next = (c + n) * w->cs;
    *off = c * w->cs;
    return ref_range(w, c, n);
}

static fc_rc
flush_l2(struct q2w *w)
{
    if (w->l2_idx == UINT64_MAX || !w->l2_used)
        return FC_OK;
    uint64_t off = 0;
    fc_rc rc = alloc_clusters(w, 1, &off);
    if (rc == FC_OK)
        rc = put(w, off, w->l2, w->cs, false);
    w->l1[w->l2_idx] = off | QCOW2_OFLAG_COPIED;
    w->l2_used = false;
    return rc;
}

/* Points the current L2 table at guest cluster ci's range. */
static fc_rc
l2_for(struct q2w *w, uint64_t ci)
{
    uint64_t idx = ci / w->l2_entries;
    if (idx == w->l2_idx)
        return FC_OK;
    fc_rc rc = flush_l2(w);
    memset(w->l2, 0, w->cs);
    w->l2_idx = idx;
    return rc;
}

static fc_rc
store_plain(struct q2w *w, uint64_t ci, const void *data)
{
    fc_rc rc = l2_for(w, ci);
    uint64_t off = 0;
    if (rc == FC_OK && w->map)
        rc = img_map_expect(w->map, &w->map_next, ci, "qcow2 cluster");
    if (rc == FC_OK)
        rc = alloc_clusters(w, 1, &off);
    if (rc == FC_OK)
        rc = put(w, off, data, w->cs, false);
    if (rc == FC_OK) {
        img_put_be64(w->l2 + (ci % w->l2_entries) * 8, off | QCOW2_OFLAG_COPIED);
        w->l2_used = true;
    }
    return rc;
}

/* How many whole clusters from p (at guest cluster ci) are data in one L2 table: a run
 * stored with one write. 1 when the first is zero (cluster() skips it). */
static size_t
run_clusters(struct q2w *w, uint64_t ci, const uint8_t *p, size_t len)
{
    size_t n = 0, max = len / w->cs;
    uint64_t room = w->l2_entries - ci % w->l2_entries;
    while (n < max && n < room && !fc_is_zero(p + n * w->cs, w->cs))
        n++;
    return n ? n : 1;
}

/* n data clusters from p at guest cluster ci, in one L2 table's range: written as runs of
 * contiguous clusters, each inside one refcount block's range. */
static fc_rc
store_run(struct q2w *w, uint64_t ci, const uint8_t *p, size_t n)
{
    fc_rc rc = l2_for(w, ci);
    while (rc == FC_OK && n > 0) {
        if ((rc = rb_due(w)) != FC_OK)
            break;
        uint64_t c = (w->next + w->cs - 1) / w->cs;
        uint64_t room = (w->rb_idx + 1) * w->rb_entries - c;
        size_t m = n < room ? n : (size_t)room;
        for (size_t i = 0; rc == FC_OK && w->map && i < m; i++)
            rc = img_map_expect(w->map, &w->map_next, ci + i, "qcow2 cluster");
        uint64_t off = 0;
        if (rc == FC_OK)
            rc = alloc_clusters(w, m, &off);
        if (rc == FC_OK)
            rc = put(w, off, p, m * w->cs, true);
        for (size_t i = 0; rc == FC_OK && i < m; i++)
            img_put_be64(w->l2 + ((ci + i) % w->l2_entries) * 8, (off + i * w->cs) |
                         QCOW2_OFLAG_COPIED);
        ci += m;
        p += m * w->cs;
        n -= m;
    }
    w->l2_used = true;
    return rc;
}

static fc_rc
store_job(struct q2w *w, struct img_job *j)
{
    uint64_t ci = j->tag;
    if (j->out_len == 0)
        return store_plain(w, ci, j->in);
    fc_rc rc = l2_for(w, ci);
    if (rc != FC_OK)
        return rc;
    uint64_t off = w->next, len = j->out_len;
    uint64_t first = off / w->cs, last = (off + len - 1) / w->cs;
    w->next = off + len;
    if ((rc = put(w, off, j->out, (size_t)len, false)) != FC_OK)
        return rc;
    /* each blob adds a reference to every cluster it touches, shared ones included */
    if ((rc = ref_range(w, first, last - first + 1)) != FC_OK)
        return rc;
    unsigned x = 62 - (w->cluster_bits - 8);
    uint64_t nsec = ((off + len - 1) >> 9) - (off >> 9);
    img_put_be64(w->l2 + (ci % w->l2_entries) * 8,
                 QCOW2_OFLAG_COMPRESSED | nsec << x | off);
    w->l2_used = true;
    return FC_OK;
}

static fc_rc
drain(struct q2w *w, bool all)
{
    struct img_job *j;
    while ((all || img_pool_full(w->pool)) && (j = img_pool_next(w->pool)) != NULL) {
        fc_rc rc = store_job(w, j);
        if (rc != FC_OK)
            return rc;
    }
    return FC_OK;
}

/* One complete guest cluster. */
static fc_rc
cluster(struct q2w *w, uint64_t ci, const uint8_t *data)
{
    if (fc_is_zero(data, w->cs))
        return FC_OK;
    if (!w->pool)
        return store_plain(w, ci, data);
    fc_rc rc = drain(w, false);
    if (rc != FC_OK)
        return rc;
    struct img_job *j = img_pool_get(w->pool);
    memcpy(j->in, data, w->cs);
    j->in_len = w->cs;
    j->tag = ci;
    img_pool_submit(w->pool, j);
    return FC_OK;
}

/* The block assembler's callbacks (blocks.h). */
static fc_rc
q2_block(void *ctx, uint64_t ci, const uint8_t *p)
{
    return cluster(ctx, ci, p);
}

static size_t
q2_run(void *ctx, uint64_t ci, const uint8_t *p, size_t len)
{
    struct q2w *w = ctx;
    return w->pool ? 1 : run_clusters(w, ci, p, len);
}

static fc_rc
q2_store(void *ctx, uint64_t ci, const uint8_t *p, size_t n)
{
    return store_run(ctx, ci, p, n);
}

static void
put_header(struct q2w *w, uint8_t *h, uint64_t l1_off, uint64_t rt_off, uint64_t rt_clusters)
{
    memcpy(h, QCOW2_MAGIC, 4);
    img_put_be32(h + 4, w->version);
    img_put_be32(h + 20, w->cluster_bits);
    img_put_be64(h + 24, w->size);
    img_put_be32(h + 36, (uint32_t)w->l1_size);
    img_put_be64(h + 40, l1_off);
    img_put_be64(h + 48, rt_off);
    img_put_be32(h + 56, (uint32_t)rt_clusters);
    if (w->version == 3) {
        img_put_be32(h + 96, 4); /* refcount_order: 16-bit refcounts */
        img_put_be32(h + 100, QCOW2_HDR3_LEN);
        /* byte 104: compression type 0 = zlib; then the end-of-extensions marker (zeros) */
    }
}

static fc_rc
q2w_begin(struct fc_sink *s, const struct fc_stream_info *info)
{
    struct q2w *w = (struct q2w *)s;
    if (info->size == FC_SIZE_UNKNOWN || info->size > IMG_MAX_VSIZE)
        return FC_ERR(FC_E_INVALID, "qcow2: the virtual size must be known and below 1 EiB");
    w->size = (info->size + 511) & ~511ull;
    w->l2_entries = w->cs / 8;
    w->rb_entries = w->cs / 2;
    uint64_t cover = w->cs * w->l2_entries;
    w->l1_size = (w->size + cover - 1) / cover;
    if (w->l1_size == 0)
        w->l1_size = 1;
    if (w->l1_size > QCOW2_MAX_L1)
        return FC_ERR(FC_E_INVALID, "qcow2: virtual size too large for cluster size %llu",
                      (unsigned long long)w->cs);
    if (w->map && !w->dry && w->map->n != (w->size + w->cs - 1) / w->cs)
        return FC_ERR(FC_E_INTERNAL, "qcow2: the stream's size differs from the planned one");
    w->l1 = calloc(w->l1_size, 8);
    w->l2 = calloc(1, w->cs);
    w->rb = calloc(1, w->cs);
    w->blk = (struct img_blocks){.bs = w->cs, .buf = img_alloc_io(w->cs), .ctx = w,
                                 .block = q2_block, .run = q2_run, .store_run = q2_store};
    if (!w->l1 || !w->l2 || !w->rb || !w->blk.buf)
        return FC_ERR(FC_E_NOMEM, "qcow2: out of memory");
    w->l2_idx = UINT64_MAX;
    w->next = 0;
    uint64_t hdr;
    fc_rc rc = alloc_clusters(w, 1, &hdr); /* the header's cluster */
    if (rc == FC_OK && w->map && !w->dry) {
        /* planned: the header first, with the offsets the planning pass found */
        memset(w->blk.buf, 0, w->cs);
        put_header(w, w->blk.buf, w->plan_l1, w->plan_rt, w->plan_rtc);
        rc = put(w, 0, w->blk.buf, w->cs, false);
    }
    if (rc == FC_OK && w->wo.compress) {
        rc = img_pool_new(&w->pool, 0, w->level, w->wo.threads, w->cs, w->cs - 512);
    }
    return rc;
}

static fc_rc
q2w_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    return img_blocks_write(&((struct q2w *)s)->blk, buf, len);
}

static fc_rc
q2w_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    return img_blocks_zero(&((struct q2w *)s)->blk, len);
}

/* After the data: the last L2 table, the L1 table, the refcount table and the last
 * refcount blocks. Gives the header's fields and the file's size in clusters. */
static fc_rc
finish(struct q2w *w, uint64_t *l1_off, uint64_t *rt_off, uint64_t *rt_clusters,
       uint64_t *total)
{
    fc_rc rc = flush_l2(w);
    /* L1 table, written in pieces (it may be large with small clusters) */
    uint64_t l1c = (w->l1_size * 8 + w->cs - 1) / w->cs;
    if (rc == FC_OK)
        rc = alloc_clusters(w, l1c, l1_off);
    if (rc != FC_OK)
        return rc;
    uint8_t tab[8192];
    for (uint64_t i = 0; i < w->l1_size && !w->dry;) {
        uint64_t k = w->l1_size - i < sizeof tab / 8 ? w->l1_size - i : sizeof tab / 8;
        for (uint64_t j = 0; j < k; j++)
            img_put_be64(tab + j * 8, w->l1[i + j]);
        if ((rc = put(w, *l1_off + i * 8, tab, (size_t)k * 8, false)) != FC_OK)
            return rc;
        i += k;
    }
    /* refcount table and the last blocks: find sizes that cover themselves */
    uint64_t e = (w->next + w->cs - 1) / w->cs, r = 1, k = 1;
    for (int it = 0; it < 64; it++) {
        uint64_t t = e + r + k, b = (t + w->rb_entries - 1) / w->rb_entries;
        uint64_t k2 = b - w->rb_idx, r2 = (b * 8 + w->cs - 1) / w->cs;
        if (k2 == k && r2 == r)
            break;
        k = k2 > k ? k2 : k;
        r = r2 > r ? r2 : r;
    }
    uint64_t t = e + r + k;
    uint64_t nblocks = w->rb_idx + k;
    *rt_off = e * w->cs;
    *rt_clusters = r;
    *total = t;
    if (w->dry)
        return FC_OK;
    FC_AUTOFREE uint8_t *rt = calloc(r, w->cs);
    if (!rt)
        return FC_ERR(FC_E_NOMEM, "qcow2: out of memory");
    for (size_t i = 0; i < w->rt_len; i++)
        img_put_be64(rt + i * 8, w->rt[i]);
    for (uint64_t b = w->rb_idx; b < nblocks; b++)
        img_put_be64(rt + b * 8, (e + r + (b - w->rb_idx)) * w->cs);
    if ((rc = put(w, e * w->cs, rt, r * w->cs, false)) != FC_OK)
        return rc;
    for (uint64_t b = w->rb_idx; b < nblocks; b++) {
        uint64_t base = b * w->rb_entries;
        for (uint64_t c = e > base ? e : base; c < t && c < base + w->rb_entries; c++)
            img_put_be16(w->rb + (c - base) * 2, 1);
        if ((rc = put(w, (e + r + (b - w->rb_idx)) * w->cs, w->rb, w->cs, false)) != FC_OK)
            return rc;
        memset(w->rb, 0, w->cs);
    }
    return FC_OK;
}

static fc_rc
q2w_end(struct fc_sink *s, uint64_t size, const uint8_t *sha256)
{
    struct q2w *w = (struct q2w *)s;
    fc_rc rc = img_blocks_flush(&w->blk);
    if (rc == FC_OK && w->pool)
        rc = drain(w, true);
    if (rc == FC_OK && w->map && !w->dry)
        rc = img_map_expect(w->map, &w->map_next, IMG_MAP_NONE, "qcow2 cluster");
    uint64_t l1_off = 0, rt_off = 0, rtc = 0, t = 0;
    if (rc == FC_OK)
        rc = finish(w, &l1_off, &rt_off, &rtc, &t);
    if (rc != FC_OK)
        return rc;
    if (w->dry) {
        w->plan_l1 = l1_off;
        w->plan_rt = rt_off;
        w->plan_rtc = rtc;
        w->plan_end = t * w->cs;
        return FC_OK;
    }
    if (w->map) {
        if (l1_off != w->plan_l1 || rt_off != w->plan_rt || rtc != w->plan_rtc ||
            t * w->cs != w->plan_end)
            return FC_ERR(FC_E_INTERNAL, "qcow2: the layout written differs from the plan");
        return img_out_finish(w->out, t * w->cs);
    }
    uint8_t h[QCOW2_HDR3_LEN + 8] = {0};
    put_header(w, h, l1_off, rt_off, rtc);
    size_t hl = w->version == 3 ? QCOW2_HDR3_LEN + 8 : QCOW2_HDR2_LEN + 8;
    if ((rc = img_out_pwrite(w->out, 0, h, hl)) != FC_OK)
        return rc;
    return img_out_finish(w->out, t * w->cs);
}

/* Frees what begin() and the writes allocated, keeping the options. */
static void
reset(struct q2w *w)
{
    img_pool_free(w->pool);
    w->pool = NULL;
    free(w->l1);
    free(w->l2);
    free(w->rb);
    free(w->rt);
    free(w->blk.buf);
    for (size_t i = 0; i < w->pend_n; i++)
        free(w->pend[i].blk);
    free(w->pend);
    w->l1 = w->rt = NULL;
    w->l2 = w->rb = w->blk.buf = NULL;
    w->pend = NULL;
    w->pend_n = w->pend_cap = w->rt_len = w->rt_cap = 0;
    w->rb_idx = w->next = 0;
    w->l2_used = false;
}

static uint64_t
q2w_plan_unit(void *st, uint64_t vsize)
{
    struct q2w *w = st;
    return w->wo.compress ? 0 : w->cs;
}

/* The planning pass: the allocation of every mapped cluster, in order, as the data pass
 * will make it, with nothing written; keeps the header's fields. */
static fc_rc
q2w_plan(void *st, const struct img_map *m, uint64_t vsize, uint64_t *size)
{
    struct q2w *w = st;
    if (w->wo.compress || m->unit != w->cs)
        return FC_ERR(FC_E_INTERNAL, "qcow2: cannot plan this output");
    struct fc_stream_info info = {.size = vsize};
    w->dry = true;
    w->map = m;
    w->map_next = img_map_next(m, 0);
    fc_rc rc = q2w_begin(&w->sink, &info);
    for (uint64_t ci = img_map_next(m, 0); rc == FC_OK && ci != IMG_MAP_NONE;
         ci = img_map_next(m, ci + 1))
        rc = store_plain(w, ci, NULL);
    if (rc == FC_OK)
        rc = q2w_end(&w->sink, vsize, NULL);
    reset(w);
    w->dry = false;
    w->map_next = img_map_next(m, 0);
    *size = w->plan_end;
    return rc;
}

static const char *const q2_keys[] = {"compat", "cluster_size", "compression_type",
                                     "compression_level", NULL};

static fc_rc
q2w_option(void *st, const char *key, const char *value)
{
    struct q2w *w = st;
    if (strcmp(key, "compat") == 0) {
        if (strcmp(value, "0.10") == 0 || strcmp(value, "v2") == 0)
            w->version = 2;
        else if (strcmp(value, "1.1") == 0 || strcmp(value, "v3") == 0)
            w->version = 3;
        else
            return FC_ERR(FC_E_INVALID, "qcow2: compat=%s (0.10 or 1.1)", value);
        return FC_OK;
    }
    if (strcmp(key, "cluster_size") == 0) {
        char *end;
        unsigned long long v = strtoull(value, &end, 10);
        if (*end == 'k' || *end == 'K')
            v <<= 10, end++;
        else if (*end == 'M')
            v <<= 20, end++;
        unsigned b = 0;
        while (b < 63 && (1ull << b) < v)
            b++;
        if (*end || v != (1ull << b) || b < 9 || b > 21)
            return FC_ERR(FC_E_INVALID,
                          "qcow2: cluster_size=%s (a power of two from 512 to 2M)", value);
        w->cluster_bits = b;
        return FC_OK;
    }
    if (strcmp(key, "compression_level") == 0) {
        char *end;
        long v = strtol(value, &end, 10);
        if (*end || v < 1 || v > IMG_Q2_MAX_LEVEL)
            return FC_ERR(FC_E_INVALID, "qcow2: compression_level=%s (1 to %d)", value,
                          IMG_Q2_MAX_LEVEL);
        w->level = (int)v;
        return FC_OK;
    }
    if (strcmp(key, "compression_type") == 0) {
        if (strcmp(value, "zlib") != 0)
            return FC_ERR(FC_E_UNSUPPORTED, "qcow2: compression_type=%s (only zlib)", value);
        return FC_OK;
    }
    return FC_ERR(FC_E_INVALID, "qcow2: unknown option \"%s\" (compat, cluster_size, "
                  "compression_type, compression_level)", key);
}

static fc_rc
q2w_open(void *st, struct img_out *out, const struct img_wopts *wo, struct fc_sink **sink)
{
    struct q2w *w = st;
    w->out = out;
    w->wo = *wo;
    if (!w->version)
        w->version = 3;
    if (!w->cluster_bits)
        w->cluster_bits = 16;
    w->cs = 1ull << w->cluster_bits;
    w->sink = (struct fc_sink){q2w_begin, q2w_write, q2w_zero, q2w_end};
    *sink = &w->sink;
    return FC_OK;
}

static void
q2w_close(void *st)
{
    reset(st);
}

const struct img_writer img_qcow2_writer = {
    .name = "qcow2",
    .state_size = sizeof(struct q2w),
    .needs_seek = img_needs_seek_always,
    .plan_unit = q2w_plan_unit,
    .plan = q2w_plan,
    .needs_size = true,
    .can_compress = true,
    .keys = q2_keys,
    .option = q2w_option,
    .open = q2w_open,
    .close = q2w_close,
};
