/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of fluid-image's pieces, without qemu-img: the compression pool (order, and
 * qcow2 clusters that inflate with the 4 KiB window QEMU uses), the output file (holes and
 * order), the reader/writer pipeline (lent and copied buffers, failures on either side),
 * every writer read back by its reader through memory files at odd sizes, option errors,
 * and that the man page documents every -o key. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fluid/error.h"
#include "image.h"

/* A deterministic test pattern: data, zero runs, compressible and random-looking parts. */
static void
pattern(uint8_t *buf, size_t len, uint64_t seed)
{
    uint64_t x = seed | 1;
    for (size_t i = 0; i < len; i += 4096) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t k = len - i < 4096 ? len - i : 4096;
        switch (x % 4) {
        case 0:
            memset(buf + i, 0, k);
            break;
        case 1:
            memset(buf + i, (int)(x >> 8), k);
            break;
        default:
            for (size_t j = 0; j < k; j++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                buf[i + j] = (uint8_t)x;
            }
        }
    }
    /* a long zero run too */
    if (len > 300000)
        memset(buf + 100000, 0, 200000);
}

Test(image_pool, results_in_order_and_inflatable_with_a_4k_window)
{
    struct img_pool *p = NULL;
    const size_t unit = 65536;
    cr_assert_eq(img_pool_new(&p, 0, 0, 2, unit, unit - 512), FC_OK);
    uint8_t *src = malloc(unit * 40), *back = malloc(unit);
    pattern(src, unit * 40, 7);
    int compressed = 0;
    uint64_t next_tag = 0;
    for (uint64_t i = 0; i < 40 || next_tag < 40;) {
        struct img_job *j = i < 40 ? img_pool_get(p) : NULL;
        if (j) {
            memcpy(j->in, src + i * unit, unit);
            j->in_len = unit;
            j->tag = i++;
            img_pool_submit(p, j);
            continue;
        }
        j = img_pool_next(p);
        cr_assert_not_null(j);
        cr_assert_eq(j->tag, next_tag, "results come back in submission order");
        if (j->out_len) {
            compressed++;
            z_stream z = {0};
            cr_assert_eq(inflateInit2(&z, -12), Z_OK); /* what QEMU does */
            z.next_in = j->out;
            z.avail_in = (uInt)j->out_len;
            z.next_out = back;
            z.avail_out = (uInt)unit;
            int r = inflate(&z, Z_FINISH);
            inflateEnd(&z);
            cr_assert(r == Z_STREAM_END && z.avail_out == 0, "cluster %llu: zlib -12 says %d",
                      (unsigned long long)j->tag, r);
            cr_assert(memcmp(back, src + j->tag * unit, unit) == 0);
        }
        next_tag++;
    }
    cr_assert_gt(compressed, 0);
    img_pool_free(p);
    free(src);
    free(back);
}

/* The expected byte at offset i of the direct-write test's output (never zero). */
static uint8_t
pat(uint64_t i)
{
    return (uint8_t)(1 + (i * 7 + (i >> 12)) % 255);
}

/* Writes the pattern's bytes [off, off + len) through img_out_append_direct from a buffer
 * at a misalignment of skew, then scribbles over that buffer (the caller's memory is
 * reused once the call returns). */
static void
put_direct(struct img_out *o, uint8_t *mem, uint64_t off, size_t len, size_t skew)
{
    for (size_t i = 0; i < len; i++)
        mem[skew + i] = pat(off + i);
    cr_assert_eq(img_out_append_direct(o, off, mem + skew, len), FC_OK, "%s", fc_error_msg());
    memset(mem, 0xee, skew + len);
}

static void
direct_round(const char *path, bool direct_allowed)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    struct img_out o;
    cr_assert_eq(img_out_init(&o, fd), FC_OK);
    cr_assert(o.seekable);
    const size_t total = 27u << 20, size = total - 1234;
    uint8_t *mem = malloc(8u << 20);
    uint8_t *want = calloc(1, size);
    cr_assert(mem && want);
    /* aligned runs of 2 MiB and more, a run with an unaligned tail, a run at an unaligned
     * offset, small appends between, gaps (holes), then a positioned write (metadata) */
    struct { uint64_t off; size_t len, skew; } runs[] = {
        {0, 4096, 0},               {1u << 20, 2u << 20, 0},   {3u << 20, 5u << 20, 4096},
        {9u << 20, (1u << 20) + 100, 0}, {(10u << 20) + 512, 700u << 10, 0},
        {11u << 20, 300u << 10, 3}, {12u << 20, 6u << 20, 0},  {20u << 20, 10, 0},
        {(20u << 20) + 4096, (7u << 20) - 4096 - 1234, 0},
    };
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        put_direct(&o, mem, runs[r].off, runs[r].len, runs[r].skew);
        for (size_t i = 0; i < runs[r].len; i++)
            want[runs[r].off + i] = pat(runs[r].off + i);
    }
    uint8_t meta[512];
    memset(meta, 0x5c, sizeof meta);
    cr_assert_eq(img_out_pwrite(&o, (2u << 20) + 4096, meta, sizeof meta), FC_OK);
    memcpy(want + (2u << 20) + 4096, meta, sizeof meta);
    cr_assert_eq(img_out_finish(&o, size), FC_OK, "%s", fc_error_msg());
    uint64_t direct = o.bytes_direct;
    img_out_fini(&o);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq((uint64_t)st.st_size, size, "the size set ahead for direct writes is cut back");
    uint8_t *got = malloc(size);
    cr_assert(got);
    cr_assert_eq(pread(fd, got, size, 0), (ssize_t)size);
    for (size_t i = 0; i < size; i++)
        if (got[i] != want[i])
            cr_assert_fail("byte %zu: %#x, expected %#x (direct %s)", i, got[i], want[i],
                           direct_allowed ? "allowed" : "off");
    /* the gaps stay holes: blocks are allocated ahead (fallocate) only for the bytes about
     * to be written (where the filesystem reports holes at all: the first gap, at 4 KiB) */
    if (lseek(fd, 0, SEEK_HOLE) == 4096) {
        off_t d = lseek(fd, 8u << 20, SEEK_DATA);
        cr_assert_eq(d, 9u << 20, "the gap at 8 MiB is a hole up to 9 MiB, data at %lld",
                     (long long)d);
        d = lseek(fd, (18u << 20), SEEK_DATA);
        cr_assert_eq(d, 20u << 20, "the gap at 18 MiB is a hole up to 20 MiB, data at %lld",
                     (long long)d);
    }
    int probe = open(path, O_WRONLY | O_DIRECT);
    if (!direct_allowed)
        cr_assert_eq(direct, 0, "FLUID_IMAGE_DIRECT=never keeps every write in the page cache");
    else if (probe >= 0)
        cr_assert_gt(direct, 0, "this filesystem takes O_DIRECT: some runs went direct");
    if (probe >= 0)
        close(probe);
    close(fd);
    unlink(path);
    free(got);
    free(want);
    free(mem);
}

Test(image_out, direct_writes_beside_the_page_cache)
{
    /* the build tree's filesystem (O_DIRECT on ext4/xfs; a fallback elsewhere) */
    setenv("FLUID_IMAGE_DIRECT", "always", 1); /* auto would wait for a slow page cache */
    direct_round("test-image-out-direct.bin", true);
    setenv("FLUID_IMAGE_DIRECT", "never", 1);
    direct_round("test-image-out-direct.bin", false);
    unsetenv("FLUID_IMAGE_DIRECT");
}

Test(image_out, gaps_are_holes_on_files_and_zeros_on_pipes)
{
    int fd = memfd_create("out", 0);
    struct img_out o;
    cr_assert_eq(img_out_init(&o, fd), FC_OK);
    cr_assert(o.seekable);
    uint8_t a[100];
    memset(a, 0x41, sizeof a);
    cr_assert_eq(img_out_append(&o, 0, a, 100), FC_OK);
    cr_assert_eq(img_out_append(&o, 1 << 20, a, 100), FC_OK);
    cr_assert_neq(img_out_append(&o, 50, a, 1), FC_OK, "appending behind is refused");
    cr_assert_eq(img_out_finish(&o, 2 << 20), FC_OK);
    cr_assert_eq(lseek(fd, 0, SEEK_END), 2 << 20);
    uint8_t b[100];
    cr_assert_eq(pread(fd, b, 100, 1 << 20), 100);
    cr_assert(memcmp(a, b, 100) == 0);
    cr_assert_eq(pread(fd, b, 100, 4096), 100);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(b[i], 0);
    img_out_fini(&o);
    close(fd);

    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(img_out_init(&o, p[1]), FC_OK);
    cr_assert(!o.seekable);
    cr_assert_eq(img_out_append(&o, 10, a, 5), FC_OK);
    cr_assert_eq(img_out_finish(&o, 20), FC_OK);
    img_out_fini(&o);
    close(p[1]);
    uint8_t c[64];
    cr_assert_eq(read(p[0], c, sizeof c), 20);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(c[i], i >= 10 && i < 15 ? 0x41 : 0);
    close(p[0]);
}

/* ---- the reader/writer pipeline (pipeline.c) ---- */
/* The content of the pipeline tests' disk at each offset. */
static uint8_t
pl_byte(uint64_t off)
{
    return (uint8_t)((off * 2654435761u) >> 13) | 1; /* never zero */
}

static void
pl_fill(uint8_t *b, uint64_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        b[i] = pl_byte(off + i);
}

/* A reader that emits data read into the buffer img_emit_buf gives (the pipeline's, lent)
 * and data from its own memory (copied), with zero runs between, of many sizes; it fails
 * with its own error at fail_at if set. */
struct pl_reader {
    uint8_t *own, *big;
    uint64_t size, fail_at;
    int lent, copied;
    bool stopped;            /* a call failed: the writer stopped us */
};

#define PL_BIG (5u << 20)

static fc_rc
plr_pump(void *st, struct fc_sink *sink, const volatile sig_atomic_t *cancel)
{
    struct pl_reader *r = st;
    struct fc_stream_info info = {.size = r->size, .format = "raw"};
    fc_rc rc = sink->begin(sink, &info);
    struct img_emit e;
    img_emit_init(&e, sink, cancel);
    uint64_t x = 99;
    for (unsigned i = 0; rc == FC_OK && e.pos < r->size; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t left = r->size - e.pos;
        if (r->fail_at && e.pos >= r->fail_at)
            return FC_ERR(FC_E_INVALID, "test reader: bad table at offset %llu",
                          (unsigned long long)e.pos);
        if (i % 3 == 2) {
            img_emit_zero(&e, x % 300000 + 1 < left ? x % 300000 + 1 : left);
        } else if (i % 3 == 1 && i % 5 == 0) {
            /* from its own memory, up to more than one pipeline buffer */
            size_t k = (size_t)(x % PL_BIG + 1 < left ? x % PL_BIG + 1 : left);
            pl_fill(r->big, e.pos, k);
            rc = img_emit_data(&e, r->big, k);
            r->copied++;
        } else {
            uint8_t *b = img_emit_buf(&e, r->own);
            if (b != r->own)
                r->lent++;
            size_t k = (size_t)(x % IMG_IO_BUF + 1 < left ? x % IMG_IO_BUF + 1 : left);
            pl_fill(b, e.pos, k);
            /* emitted in two pieces with a zero run between, as readers split data */
            size_t h = k / 2;
            rc = img_emit_data(&e, b, h);
            if (rc == FC_OK && k - h > 1) {
                img_emit_zero(&e, 1);
                rc = img_emit_data(&e, b + h + 1, k - h - 1);
            } else if (rc == FC_OK) {
                rc = img_emit_data(&e, b + h, k - h);
            }
        }
    }
    if (rc == FC_OK)
        rc = img_emit_flush(&e);
    if (rc != FC_OK) {
        r->stopped = true;
        return rc;
    }
    return sink->end(sink, r->size, NULL);
}

static const struct img_reader pl_test_reader = {.name = "test", .pump = plr_pump};

/* The writer's side: checks order and content; fails at fail_at if set; slow now and then,
 * so that the reader waits for buffers. */
struct pl_writer {
    struct fc_sink sink;
    uint64_t pos, fail_at, data;
    size_t max_len;          /* the longest write seen */
    bool ended;
};

static fc_rc
plw_begin(struct fc_sink *s, const struct fc_stream_info *info)
{
    return FC_OK;
}

static fc_rc
plw_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    struct pl_writer *w = (struct pl_writer *)s;
    cr_assert_eq(off, w->pos, "write at %llu, expected %llu", (unsigned long long)off,
                 (unsigned long long)w->pos);
    if (len > w->max_len)
        w->max_len = len;
    if (w->fail_at && off >= w->fail_at)
        return FC_ERR(FC_E_NOSPACE, "test writer: disk full at %llu", (unsigned long long)off);
    const uint8_t *b = buf;
    for (size_t i = 0; i < len; i++)
        if (b[i] != pl_byte(off + i))
            cr_assert_fail("content differs at %llu", (unsigned long long)(off + i));
    if (off % 7 == 0)
        usleep(2000);
    w->pos += len;
    w->data += len;
    return FC_OK;
}

static fc_rc
plw_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    struct pl_writer *w = (struct pl_writer *)s;
    cr_assert_eq(off, w->pos);
    w->pos += len;
    return FC_OK;
}

static fc_rc
plw_end(struct fc_sink *s, uint64_t size, const uint8_t *sha)
{
    struct pl_writer *w = (struct pl_writer *)s;
    cr_assert_eq(size, w->pos);
    w->ended = true;
    return FC_OK;
}

static void
pl_setup(struct pl_reader *r, struct pl_writer *w, uint64_t size)
{
    *r = (struct pl_reader){.own = img_alloc_io(IMG_IO_BUF), .big = malloc(PL_BIG),
                            .size = size};
    *w = (struct pl_writer){.sink = {plw_begin, plw_write, plw_zero, plw_end}};
    cr_assert(r->own && r->big);
}

Test(image_pipeline, lent_and_copied_data_arrive_in_order)
{
    struct pl_reader r;
    struct pl_writer w;
    pl_setup(&r, &w, 200ull << 20);
    fc_rc rc = img_pump_threaded(&pl_test_reader, &r, &w.sink, NULL);
    cr_assert_eq(rc, FC_OK, "%s", fc_error_msg());
    cr_assert(w.ended);
    cr_assert_eq(w.pos, r.size);
    cr_assert_leq(w.max_len, IMG_IO_BUF, "copied data is passed on in buffer-sized pieces");
    cr_assert_gt(r.lent, 10, "the reader read into the pipeline's buffers");
    cr_assert_gt(r.copied, 3, "and emitted from its own memory");

    /* without the pipeline, the reader's own buffer is used */
    struct pl_reader r2;
    struct pl_writer w2;
    pl_setup(&r2, &w2, 20ull << 20);
    cr_assert_eq(plr_pump(&r2, &w2.sink, NULL), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(r2.lent, 0);
    cr_assert(w2.ended);
    free(r.own), free(r.big), free(r2.own), free(r2.big);
}

Test(image_pipeline, a_failing_writer_stops_the_reader)
{
    struct pl_reader r;
    struct pl_writer w;
    pl_setup(&r, &w, 200ull << 20);
    w.fail_at = 50ull << 20;
    fc_rc rc = img_pump_threaded(&pl_test_reader, &r, &w.sink, NULL);
    cr_assert_eq(rc, FC_E_NOSPACE);
    cr_assert(strstr(fc_error_msg(), "disk full"), "%s", fc_error_msg());
    cr_assert(r.stopped, "the reader's next call failed");
    cr_assert(!w.ended);
    free(r.own), free(r.big);
}

Test(image_pipeline, a_failing_reader_reports_its_error)
{
    struct pl_reader r;
    struct pl_writer w;
    pl_setup(&r, &w, 200ull << 20);
    r.fail_at = 30ull << 20;
    fc_rc rc = img_pump_threaded(&pl_test_reader, &r, &w.sink, NULL);
    cr_assert_eq(rc, FC_E_INVALID);
    cr_assert(strstr(fc_error_msg(), "bad table at offset"), "%s", fc_error_msg());
    cr_assert(!w.ended);
    cr_assert_geq(w.pos, 30ull << 20, "what came before the failure was written");
    free(r.own), free(r.big);
}

/* A sink that compares what a reader produces with the expected content. */
struct check {
    struct fc_sink sink;
    const uint8_t *want;
    uint64_t size, pos, orig;
    bool ended;
};

static fc_rc
ck_begin(struct fc_sink *s, const struct fc_stream_info *info)
{
    struct check *c = (struct check *)s;
    cr_assert_geq(info->size, c->size);
    cr_assert_lt(info->size, c->size + 512, "size rounded to at most a sector");
    c->size = info->size;
    return FC_OK;
}

static fc_rc
ck_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    struct check *c = (struct check *)s;
    cr_assert_eq(off, c->pos);
    const uint8_t *b = buf;
    /* beyond the original size (sector rounding) the content is zeros */
    size_t in_data = off >= c->orig ? 0 : (size_t)(c->orig - off < len ? c->orig - off : len);
    cr_assert(memcmp(b, c->want + off, in_data) == 0, "content differs in [%llu, +%zu)",
              (unsigned long long)off, in_data);
    for (size_t i = in_data; i < len; i++)
        cr_assert_eq(b[i], 0);
    c->pos += len;
    return FC_OK;
}

static fc_rc
ck_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    struct check *c = (struct check *)s;
    cr_assert_eq(off, c->pos);
    for (uint64_t i = off; i < off + len && i < c->orig; i++)
        cr_assert_eq(c->want[i], 0, "zero run over data at %llu", (unsigned long long)i);
    c->pos += len;
    return FC_OK;
}

static fc_rc
ck_end(struct fc_sink *s, uint64_t size, const uint8_t *sha)
{
    struct check *c = (struct check *)s;
    cr_assert_eq(c->pos, c->size);
    c->ended = true;
    return FC_OK;
}

/* Writes content with writer w (options opts, -c if compress) into a memory file, then
 * reads it back with reader r and compares. */
static void
roundtrip(const char *w_name, const char *opts_k, const char *opts_v, bool compress,
          const uint8_t *data, uint64_t size)
{
    const struct img_writer *w = img_find_writer(w_name);
    cr_assert_not_null(w);
    void *wst = calloc(1, w->state_size);
    if (opts_k)
        cr_assert_eq(w->option(wst, opts_k, opts_v), FC_OK, "%s", fc_error_msg());
    int fd = memfd_create("img", 0);
    struct img_out out;
    cr_assert_eq(img_out_init(&out, fd), FC_OK);
    struct img_wopts wo = {.compress = compress, .threads = 2, .dst_name = "t.img"};
    struct fc_sink *s;
    cr_assert_eq(w->open(wst, &out, &wo, &s), FC_OK, "%s", fc_error_msg());
    struct fc_stream_info info = {.size = size, .format = "raw"};
    cr_assert_eq(s->begin(s, &info), FC_OK, "%s", fc_error_msg());
    /* odd pieces: a write crossing clusters, a zero run, small writes */
    uint64_t pos = 0;
    size_t step = 1;
    while (pos < size) {
        size_t k = (size_t)(size - pos < step ? size - pos : step);
        bool z = true;
        for (size_t i = 0; i < k && z; i++)
            z = data[pos + i] == 0;
        fc_rc rc = z ? s->zero(s, pos, k) : s->write(s, pos, data + pos, k);
        cr_assert_eq(rc, FC_OK, "%s", fc_error_msg());
        pos += k;
        step = step * 7 % 200003 + 1;
    }
    cr_assert_eq(s->end(s, size, NULL), FC_OK, "%s", fc_error_msg());
    img_out_fini(&out);
    if (w->close)
        w->close(wst);
    free(wst);

    struct img_in *in = calloc(1, sizeof *in);
    cr_assert_eq(img_in_from_fd(in, fd, "memfd"), FC_OK);
    const struct img_reader *r = NULL;
    for (size_t i = 0; img_readers[i] && !r; i++)
        if (img_readers[i]->probe(in->head, in->head_len))
            r = img_readers[i];
    if (strcmp(w_name, "vpc") == 0)
        r = img_find_reader("vpc"); /* fixed VHD has no magic at the start */
    cr_assert_str_eq(r->name, w_name, "the output is detected as %s", w_name);
    void *rst = calloc(1, r->state_size);
    cr_assert_eq(r->open(rst, in), FC_OK, "%s", fc_error_msg());
    struct check c = {{ck_begin, ck_write, ck_zero, ck_end}, data, size, 0, size, false};
    cr_assert_eq(r->pump(rst, &c.sink, NULL), FC_OK, "%s", fc_error_msg());
    cr_assert(c.ended);
    r->close(rst);
    free(rst);
    img_in_close(in);
    free(in);
}

#define RT_SIZE (3u * 1024 * 1024 + 4096 + 512 * 3)

static uint8_t *
rt_data(void)
{
    uint8_t *d = malloc(RT_SIZE);
    pattern(d, RT_SIZE, 42);
    return d;
}

Test(image_roundtrip, raw)
{
    uint8_t *d = rt_data();
    roundtrip("raw", NULL, NULL, false, d, RT_SIZE);
    free(d);
}

Test(image_roundtrip, qcow2)
{
    uint8_t *d = rt_data();
    roundtrip("qcow2", NULL, NULL, false, d, RT_SIZE);
    roundtrip("qcow2", NULL, NULL, true, d, RT_SIZE);
    roundtrip("qcow2", "cluster_size", "512", true, d, RT_SIZE);
    roundtrip("qcow2", "cluster_size", "2M", false, d, RT_SIZE);
    roundtrip("qcow2", "compat", "0.10", false, d, RT_SIZE);
    free(d);
}

Test(image_roundtrip, vmdk)
{
    uint8_t *d = rt_data();
    roundtrip("vmdk", NULL, NULL, false, d, RT_SIZE);
    roundtrip("vmdk", "subformat", "streamOptimized", true, d, RT_SIZE);
    free(d);
}

Test(image_roundtrip, vpc)
{
    uint8_t *d = rt_data();
    roundtrip("vpc", NULL, NULL, false, d, RT_SIZE);
    roundtrip("vpc", "subformat", "fixed", false, d, RT_SIZE);
    free(d);
}

Test(image_options, unknown_keys_and_bad_values_are_errors)
{
    for (size_t i = 0; img_writers[i]; i++) {
        void *st = calloc(1, img_writers[i]->state_size);
        cr_assert_neq(img_writers[i]->option(st, "no_such_key", "1"), FC_OK);
        cr_assert(strstr(fc_error_msg(), "no_such_key"), "%s", fc_error_msg());
        free(st);
    }
    void *st = calloc(1, img_qcow2_writer.state_size);
    cr_assert_neq(img_qcow2_writer.option(st, "cluster_size", "1000"), FC_OK);
    cr_assert_neq(img_qcow2_writer.option(st, "cluster_size", "4M"), FC_OK);
    cr_assert_neq(img_qcow2_writer.option(st, "compat", "2"), FC_OK);
    cr_assert_eq(img_qcow2_writer.option(st, "cluster_size", "64k"), FC_OK);
    free(st);
}

/* The house rule: every -o key a writer accepts is in the man page. */
Test(image_options, every_key_is_documented)
{
    const char *srcdir = getenv("FLUID_SOURCE_DIR");
    cr_assert_not_null(srcdir, "FLUID_SOURCE_DIR must be set (run under ctest)");
    char path[4096];
    snprintf(path, sizeof path, "%s/migrators/image/fluid-image.1", srcdir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    static char man[1 << 17];
    size_t n = fread(man, 1, sizeof man - 1, f);
    fclose(f);
    man[n] = '\0';
    for (size_t i = 0; img_writers[i]; i++)
        for (size_t k = 0; img_writers[i]->keys[k]; k++) {
            char want[64];
            snprintf(want, sizeof want, "%s=", img_writers[i]->keys[k]);
            cr_assert(strstr(man, want), "fluid-image.1 does not document %s (%s)", want,
                      img_writers[i]->name);
        }
}
