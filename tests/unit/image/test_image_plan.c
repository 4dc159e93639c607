/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of planned streaming output (migrators/image/plan.h), without qemu-img: the
 * mapping pass over a raw memory file, the planned qcow2/vmdk/vpc output equal byte for byte
 * to the file output (but for VMDK's and VHD's random identifiers) whatever the chunking of
 * the input, written strictly in order to a sink, and a data pass that disagrees with the
 * map (the input changed) failing with a clear error. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fluid/error.h"
#include "image.h"
#include "plan.h"

/* 7 MiB + 9 KiB: not a multiple of any cluster, grain or block size */
#define P_SIZE (7u * 1024 * 1024 + 9216)

/* Data in scattered runs (some a few bytes long, some crossing units), the rest zeros, with
 * the second 2 MiB all zeros (a VHD block and a 2 MiB cluster to leave out). */
static uint8_t *
p_data(void)
{
    uint8_t *d = calloc(1, P_SIZE);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (uint64_t off = 0; off < P_SIZE;) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t len = 1 + x % 90000;
        if (off + len > P_SIZE)
            len = P_SIZE - off;
        if (x & 0x100)
            for (uint64_t i = 0; i < len; i++)
                d[off + i] = (uint8_t)(x >> (i % 48) | 1);
        off += len + (x >> 20) % 150000;
    }
    memset(d + (2u << 20), 0, 2u << 20);
    d[P_SIZE - 1] = 0x7e; /* the last partial unit */
    return d;
}

/* A raw memory file holding data, its zero 4 KiB blocks left as holes. */
static int
p_memfd(const uint8_t *d)
{
    int fd = memfd_create("raw", 0);
    cr_assert(fd >= 0);
    cr_assert_eq(ftruncate(fd, P_SIZE), 0);
    for (uint64_t off = 0; off < P_SIZE; off += 4096) {
        size_t k = P_SIZE - off < 4096 ? P_SIZE - off : 4096;
        if (!fc_is_zero(d + off, k))
            cr_assert_eq(pwrite(fd, d + off, k, (off_t)off), (ssize_t)k);
    }
    return fd;
}

/* Collects what a planned writer writes: in order, never twice. */
struct cap {
    struct fc_sink sink;
    uint8_t *buf;
    uint64_t pos, cap;
};

static fc_rc
cap_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    struct cap *c = (struct cap *)s;
    cr_assert_eq(off, c->pos, "planned output written at %llu, expected %llu",
                 (unsigned long long)off, (unsigned long long)c->pos);
    if (c->pos + len > c->cap) {
        c->cap = (c->pos + len) * 2;
        c->buf = realloc(c->buf, c->cap);
    }
    memcpy(c->buf + c->pos, buf, len);
    c->pos += len;
    return FC_OK;
}

static fc_rc
cap_other(struct fc_sink *s)
{
    cr_assert_fail("only write() is called on the sink of img_out_init_sink");
    return FC_E_INTERNAL;
}

static fc_rc
cap_begin(struct fc_sink *s, const struct fc_stream_info *i)
{
    return cap_other(s);
}

static fc_rc
cap_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    return cap_other(s);
}

static fc_rc
cap_end(struct fc_sink *s, uint64_t size, const uint8_t *sha)
{
    return cap_other(s);
}

/* Drives sink s over data in pieces whose sizes follow step (zero pieces as zero runs). */
static fc_rc
feed(struct fc_sink *s, const uint8_t *d, unsigned step0)
{
    struct fc_stream_info info = {.size = P_SIZE, .format = "raw"};
    fc_rc rc = s->begin(s, &info);
    size_t step = step0;
    for (uint64_t pos = 0; pos < P_SIZE && rc == FC_OK;) {
        size_t k = (size_t)(P_SIZE - pos < step ? P_SIZE - pos : step);
        rc = fc_is_zero(d + pos, k) ? s->zero(s, pos, k) : s->write(s, pos, d + pos, k);
        pos += k;
        step = step * 7 % 300007 + 1;
    }
    return rc == FC_OK ? s->end(s, P_SIZE, NULL) : rc;
}

/* Writes d with writer name (one option) to a memory file; returns its bytes. */
static uint8_t *
file_output(const char *name, const char *k, const char *v, const uint8_t *d, unsigned step,
            uint64_t *len)
{
    const struct img_writer *w = img_find_writer(name);
    void *st = calloc(1, w->state_size);
    if (k)
        cr_assert_eq(w->option(st, k, v), FC_OK, "%s", fc_error_msg());
    int fd = memfd_create("out", 0);
    struct img_out out;
    cr_assert_eq(img_out_init(&out, fd), FC_OK);
    struct img_wopts wo = {.threads = 1, .dst_name = "disk.vmdk"};
    struct fc_sink *s;
    cr_assert_eq(w->open(st, &out, &wo, &s), FC_OK);
    cr_assert_eq(feed(s, d, step), FC_OK, "%s file output: %s", name, fc_error_msg());
    img_out_fini(&out);
    w->close(st);
    free(st);
    *len = (uint64_t)lseek(fd, 0, SEEK_END);
    uint8_t *b = malloc(*len);
    cr_assert_eq(pread(fd, b, *len, 0), (ssize_t)*len);
    close(fd);
    return b;
}

/* The map of d by the mapping pass: the raw reader over a memory file. */
static void
map_of(const uint8_t *d, uint64_t unit, struct img_map *m)
{
    int fd = p_memfd(d);
    struct img_in in;
    cr_assert_eq(img_in_from_fd(&in, fd, "raw"), FC_OK);
    void *rst = calloc(1, img_raw_reader.state_size);
    cr_assert_eq(img_raw_reader.open(rst, &in), FC_OK);
    cr_assert_eq(img_map_input(&img_raw_reader, rst, &in, unit, P_SIZE, NULL, NULL, m), FC_OK, "%s",
                 fc_error_msg());
    img_raw_reader.close(rst);
    free(rst);
    img_in_close(&in);
    /* what the map says, checked by hand */
    uint64_t count = 0;
    for (uint64_t u = 0; u * unit < P_SIZE; u++) {
        uint64_t k = P_SIZE - u * unit < unit ? P_SIZE - u * unit : unit;
        bool data = !fc_is_zero(d + u * unit, (size_t)k);
        cr_assert_eq(img_map_test(m, u), data, "unit %llu", (unsigned long long)u);
        count += data;
    }
    cr_assert_eq(m->count, count);
    cr_assert(count > 0 && count < m->n, "the data has both data and zero units");
}

/* Writes d planned (map first) to a capturing sink; returns the bytes, or NULL with the
 * failure's rc when data differs from what was mapped (changed). */
static uint8_t *
planned_output(const char *name, const char *k, const char *v, const uint8_t *mapped,
               const uint8_t *d, unsigned step, uint64_t *len, fc_rc *rc_out)
{
    const struct img_writer *w = img_find_writer(name);
    void *st = calloc(1, w->state_size);
    if (k)
        cr_assert_eq(w->option(st, k, v), FC_OK, "%s", fc_error_msg());
    struct cap c = {{cap_begin, cap_write, cap_zero, cap_end}, NULL, 0, 0};
    struct img_out out;
    cr_assert_eq(img_out_init_sink(&out, &c.sink), FC_OK);
    cr_assert(!out.seekable);
    struct img_wopts wo = {.threads = 1, .dst_name = "disk.vmdk"};
    struct fc_sink *s;
    cr_assert_eq(w->open(st, &out, &wo, &s), FC_OK);
    uint64_t unit = w->plan_unit(st, P_SIZE), size = 0;
    cr_assert_gt(unit, 0, "%s %s=%s can be planned", name, k ? k : "", v ? v : "");
    struct img_map m;
    map_of(mapped, unit, &m);
    cr_assert_eq(w->plan(st, &m, P_SIZE, &size), FC_OK, "%s", fc_error_msg());
    fc_rc rc = feed(s, d, step);
    img_out_fini(&out);
    w->close(st);
    free(st);
    img_map_free(&m);
    *rc_out = rc;
    if (rc != FC_OK) {
        free(c.buf);
        return NULL;
    }
    cr_assert_eq(c.pos, size, "%s: %llu bytes written, %llu planned", name,
                 (unsigned long long)c.pos, (unsigned long long)size);
    *len = c.pos;
    return c.buf;
}

/* Blanks the fields that are random in each run: the VMDK descriptor's CID, the VHD
 * footer's timestamp, checksum and unique id (at the start and at the end). */
static void
blank_random(const char *name, uint8_t *b, uint64_t len)
{
    if (strcmp(name, "vmdk") == 0) {
        char *cid = memmem(b, len < 8192 ? len : 8192, "CID=", 4);
        cr_assert_not_null(cid);
        memset(cid + 4, 'x', 8);
    } else if (strcmp(name, "vpc") == 0) {
        for (int i = 0; i < 2; i++) {
            uint8_t *f = i ? b + len - 512 : b;
            cr_assert(memcmp(f, "conectix", 8) == 0);
            memset(f + 24, 0, 4);
            memset(f + 64, 0, 20);
        }
    }
}

static void
same_as_file(const char *name, const char *k, const char *v)
{
    uint8_t *d = p_data();
    uint64_t flen, plen, flen2;
    fc_rc rc;
    uint8_t *f = file_output(name, k, v, d, 1, &flen);
    uint8_t *f2 = file_output(name, k, v, d, 65536 + 3, &flen2);
    uint8_t *p = planned_output(name, k, v, d, d, 5, &plen, &rc);
    cr_assert_eq(rc, FC_OK, "%s", fc_error_msg());
    blank_random(name, f, flen);
    blank_random(name, f2, flen2);
    blank_random(name, p, plen);
    cr_assert_eq(flen, flen2);
    cr_assert(memcmp(f, f2, flen) == 0, "%s %s=%s: the file layout depends on the chunking",
              name, k ? k : "", v ? v : "");
    cr_assert_eq(plen, flen, "%s %s=%s: planned %llu bytes, file %llu", name, k ? k : "",
                 v ? v : "", (unsigned long long)plen, (unsigned long long)flen);
    for (uint64_t i = 0; i < flen; i++)
        if (f[i] != p[i])
            cr_assert_fail("%s %s=%s: planned output differs from the file at byte %llu", name,
                           k ? k : "", v ? v : "", (unsigned long long)i);
    free(f);
    free(f2);
    free(p);
    free(d);
}

Test(image_plan, qcow2_planned_equals_file)
{
    same_as_file("qcow2", NULL, NULL);
    same_as_file("qcow2", "compat", "0.10");
    same_as_file("qcow2", "cluster_size", "4096");
    same_as_file("qcow2", "cluster_size", "2M");
    /* 512-byte clusters: a refcount block covers 128 KiB, so many are placed mid-stream */
    same_as_file("qcow2", "cluster_size", "512");
}

Test(image_plan, vmdk_planned_equals_file) { same_as_file("vmdk", NULL, NULL); }

Test(image_plan, vpc_planned_equals_file) { same_as_file("vpc", NULL, NULL); }

Test(image_plan, what_cannot_be_planned)
{
    void *st = calloc(1, img_qcow2_writer.state_size);
    struct img_out out = {0};
    struct img_wopts wo = {.compress = true, .threads = 1};
    struct fc_sink *s;
    cr_assert_eq(img_qcow2_writer.open(st, &out, &wo, &s), FC_OK);
    cr_assert_eq(img_qcow2_writer.plan_unit(st, P_SIZE), 0, "compressed qcow2 is spooled");
    img_qcow2_writer.close(st);
    free(st);
    st = calloc(1, img_vmdk_writer.state_size);
    cr_assert_eq(img_vmdk_writer.option(st, "subformat", "streamOptimized"), FC_OK);
    wo.compress = false;
    cr_assert_eq(img_vmdk_writer.open(st, &out, &wo, &s), FC_OK);
    cr_assert_eq(img_vmdk_writer.plan_unit(st, P_SIZE), 0, "streamOptimized streams anyway");
    img_vmdk_writer.close(st);
    free(st);
}

/* The data pass finds other data than the mapping pass: a clear error, for a unit that
 * became zero and for one that became data, in each format. */
Test(image_plan, changed_input_is_an_error)
{
    static const char *const names[] = {"qcow2", "vmdk", "vpc"};
    uint8_t *d = p_data();
    uint8_t *gone = malloc(P_SIZE), *grown = malloc(P_SIZE);
    for (size_t n = 0; n < 3; n++) {
        const struct img_writer *w = img_find_writer(names[n]);
        void *st = calloc(1, w->state_size);
        struct img_out out = {0};
        struct img_wopts wo = {.threads = 1};
        struct fc_sink *s;
        cr_assert_eq(w->open(st, &out, &wo, &s), FC_OK);
        uint64_t unit = w->plan_unit(st, P_SIZE);
        w->close(st);
        free(st);
        struct img_map m;
        map_of(d, unit, &m);
        /* a data unit in the middle cleared; a zero unit filled */
        uint64_t u_data = img_map_next(&m, m.n / 3), u_zero = m.n;
        for (uint64_t u = 0; u < m.n - 1 && u_zero == m.n; u++)
            if (!img_map_test(&m, u))
                u_zero = u;
        cr_assert(u_data != IMG_MAP_NONE && u_zero < m.n);
        img_map_free(&m);
        memcpy(gone, d, P_SIZE);
        memset(gone + u_data * unit, 0, unit);
        memcpy(grown, d, P_SIZE);
        memset(grown + u_zero * unit + 100, 0x42, 10);
        uint64_t len;
        fc_rc rc;
        cr_assert_null(planned_output(names[n], NULL, NULL, d, gone, 3, &len, &rc));
        cr_assert_eq(rc, FC_E_IO);
        const char *msg = fc_error_msg();
        cr_assert(strstr(msg, "input changed") && strstr(msg, "all zeros now"), "%s: %s",
                  names[n], msg);
        cr_assert_null(planned_output(names[n], NULL, NULL, d, grown, 3, &len, &rc));
        cr_assert_eq(rc, FC_E_IO);
        msg = fc_error_msg();
        cr_assert(strstr(msg, "input changed") && strstr(msg, "holds data now"), "%s: %s",
                  names[n], msg);
    }
    free(gone);
    free(grown);
    free(d);
}

Test(image_plan, map_next_finds_set_bits)
{
    uint64_t bits[3] = {0};
    struct img_map m = {.unit = 512, .n = 150, .count = 3, .bits = bits};
    bits[0] = 1ull << 5;
    bits[1] = 1ull << 63;
    bits[2] = 1ull << 21; /* unit 149, the last */
    cr_assert_eq(img_map_next(&m, 0), 5);
    cr_assert_eq(img_map_next(&m, 6), 127);
    cr_assert_eq(img_map_next(&m, 128), 149);
    cr_assert_eq(img_map_next(&m, 150), IMG_MAP_NONE);
    uint64_t next = img_map_next(&m, 0);
    cr_assert_eq(img_map_expect(&m, &next, 5, "unit"), FC_OK);
    cr_assert_eq(next, 127);
    cr_assert_eq(img_map_expect(&m, &next, 130, "unit"), FC_E_IO, "unit 127 was left out");
    cr_assert_eq(img_map_expect(&m, &next, IMG_MAP_NONE, "unit"), FC_E_IO);
    cr_assert_eq(img_map_bytes(150 * 512, 512), 24);
}
