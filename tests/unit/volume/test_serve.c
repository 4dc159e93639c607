// SPDX-License-Identifier: Apache-2.0
// The helper protocol of `fluid-volume serve`, spoken directly over pipes (no SSH): a whole
// copy (DATA, ZDATA, ZERO, FINISH with the right digest), a delta over an existing file
// (HASHES of its chunks; the chunk-tree digest at FINISH reuses only chunks not written), the
// hashes of a base large enough to be hashed by several threads,
// the hash record a verified commit leaves and the next delta trusts only while it holds,
// and the refusals: wrong magic, message before OPEN, relative path, undecodable ZDATA,
// wrong digest (nothing renamed).
#include <criterion/criterion.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "fluid/spawn.h"
#include "fluid/stream.h"

#define CHUNK (1u << 20)

struct srv {
    pid_t pid;
    int in, out;
};

static char dir[600];

static void
setup(void)
{
    const char *run = getenv("FLUID_TEST_RUN_DIR");
    if (!run || !getenv("FLUID_BIN_DIR"))
        cr_assert_fail("FLUID_TEST_RUN_DIR / FLUID_BIN_DIR not set: run through ctest");
    mkdir(run, 0755);
    snprintf(dir, sizeof dir, "%s/serve-test-%d", run, getpid());
    mkdir(dir, 0755);
    signal(SIGPIPE, SIG_IGN);
}

TestSuite(serve, .init = setup, .timeout = 60);

static void
start(struct srv *s)
{
    char bin[700];
    snprintf(bin, sizeof bin, "%s/fluid-volume", getenv("FLUID_BIN_DIR"));
    int a[2], b[2];
    cr_assert_eq(pipe2(a, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(b, O_CLOEXEC), 0);
    const char *argv[] = {bin, "serve", NULL};
    struct fc_spawn sp = {.argv = argv, .fd = {a[0], b[1], -1}};
    cr_assert_eq(fc_spawn(&sp, &s->pid), FC_OK);
    close(a[0]);
    close(b[1]);
    s->in = a[1];
    s->out = b[0];
    char magic[8];
    size_t got;
    cr_assert_eq(fc_read_full(s->out, magic, 8, &got), FC_OK);
    cr_assert_eq(got, 8);
    cr_assert_eq(memcmp(magic, "FCVOL003", 8), 0);
    uint8_t h[24];
    cr_assert_eq(fc_read_full(s->out, h, 24, &got), FC_OK);
    cr_assert_eq(got, 24);
}

/* The chunk-tree digest, computed here independently: SHA-256 over the SHA-256 of each
 * 1 MiB chunk (the last one may be shorter). */
static void
tree(const uint8_t *img, uint64_t size, uint8_t d[32])
{
    uint64_t n = (size + CHUNK - 1) / CHUNK;
    uint8_t *h = malloc(n * 32 + 1);
    for (uint64_t i = 0; i < n; i++)
        SHA256(img + i * CHUNK, size - i * CHUNK < CHUNK ? size - i * CHUNK : CHUNK, h + i * 32);
    SHA256(h, n * 32, d);
    free(h);
}

static void
msg(struct srv *s, uint32_t type, uint32_t aux, uint64_t off, const void *p, uint64_t len,
    uint64_t hdr_len)
{
    uint8_t h[24];
    struct fc_frame f = {type, aux, off, hdr_len};
    fc_frame_encode(&f, h);
    fc_write_all(s->in, h, 24);
    if (p && len)
        fc_write_all(s->in, p, (size_t)len);
}

/* Reads one reply (skipping PROGRESS); returns its type, fills aux and payload. */
static uint32_t
reply(struct srv *s, uint32_t *aux, char *buf, size_t cap)
{
    uint8_t h[24];
    size_t got;
    struct fc_frame f;
    do {
        cr_assert_eq(fc_read_full(s->out, h, 24, &got), FC_OK);
        cr_assert_eq(got, 24, "no reply from serve");
        fc_frame_decode(h, &f);
    } while (f.type == 0x23 && f.length == 0);
    cr_assert_lt(f.length, cap);
    cr_assert_eq(fc_read_full(s->out, buf, f.length, &got), FC_OK);
    buf[f.length] = 0;
    if (aux)
        *aux = f.aux;
    return f.type;
}

static int
finish(struct srv *s)
{
    close(s->in);
    close(s->out);
    int st;
    waitpid(s->pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
open_dest_ex(struct srv *s, const char *path, bool inorder)
{
    fc_write_all(s->in, "FCVOL003", 8);
    char js[1200];
    snprintf(js, sizeof js, "{\"path\":\"%s\",\"mode\":\"copy\",\"hashes\":false,"
             "\"inorder\":%s}", path, inorder ? "true" : "false");
    msg(s, 0x10, 0, 0, js, strlen(js), strlen(js));
    char buf[4096];
    uint32_t t = reply(s, NULL, buf, sizeof buf);
    cr_assert_eq(t, 0x20, "OPEN refused: %s", buf);
}

static void
open_dest(struct srv *s, const char *path)
{
    open_dest_ex(s, path, false);
}

Test(serve, whole_copy_with_zstd_and_holes)
{
    char path[800];
    snprintf(path, sizeof path, "%s/out \"q\".img", dir);
    char jpath[900];
    snprintf(jpath, sizeof jpath, "%s/out \\\"q\\\".img", dir);
    struct srv s;
    start(&s);
    open_dest(&s, jpath);
    uint64_t size = 8 * CHUNK;
    uint8_t *img = calloc(1, size);
    for (size_t i = 0; i < CHUNK; i++)
        img[i] = (uint8_t)(i * 7 + 1);
    memset(img + 5 * CHUNK + 100, 'z', 5000);
    msg(&s, 0x11, 0, 0, img, CHUNK, CHUNK);
    size_t cap = ZSTD_compressBound(CHUNK);
    void *z = malloc(cap);
    size_t zl = ZSTD_compress(z, cap, img + 5 * CHUNK, CHUNK, 3);
    msg(&s, 0x12, CHUNK, 5 * CHUNK, z, zl, zl);
    msg(&s, 0x13, 0, 2 * CHUNK, NULL, 0, CHUNK);
    uint8_t d[32];
    tree(img, size, d);
    msg(&s, 0x14, 3, size, d, 32, 32);
    char buf[4096];
    uint32_t t = reply(&s, NULL, buf, sizeof buf);
    cr_assert_eq(t, 0x22, "FINISH: %s", buf);
    cr_assert_eq(memcmp(buf, d, 32), 0);
    cr_assert_eq(finish(&s), 0);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq((uint64_t)st.st_size, size);
    cr_assert_lt(st.st_blocks * 512, 3 * CHUNK, "holes were written");
    char part[900];
    snprintf(part, sizeof part, "%s.fluid-part", path);
    cr_assert_neq(stat(part, &st), 0);
    free(img);
    free(z);
}

/* One stream: whole chunks are hashed as they arrive, partial ones read back from the file
 * (holes as zeros); a wrong digest is still refused. */
Test(serve, in_order_hashing)
{
    for (int bad = 0; bad < 2; bad++) {
        char path[800];
        snprintf(path, sizeof path, "%s/inorder%d.img", dir, bad);
        struct srv s;
        start(&s);
        open_dest_ex(&s, path, true);
        uint64_t size = 6 * CHUNK + 777;
        uint8_t *img = calloc(1, size);
        memset(img + CHUNK, 'a', 3000);
        memset(img + 4 * CHUNK + 10, 'b', CHUNK - 10);
        memset(img + 6 * CHUNK, 'c', 777);
        msg(&s, 0x11, 0, CHUNK, img + CHUNK, 3000, 3000);
        msg(&s, 0x11, 0, 4 * CHUNK, img + 4 * CHUNK, CHUNK, CHUNK);
        msg(&s, 0x11, 0, 6 * CHUNK, img + 6 * CHUNK, 777, 777);
        uint8_t d[32];
        tree(img, size, d);
        d[0] ^= (uint8_t)bad;
        msg(&s, 0x14, 3, size, d, 32, 32);
        char buf[4096];
        uint32_t aux = 0;
        uint32_t t = reply(&s, &aux, buf, sizeof buf);
        struct stat st;
        if (!bad) {
            cr_assert_eq(t, 0x22, "FINISH: %s", buf);
            cr_assert_eq(memcmp(buf, d, 32), 0);
            cr_assert_eq(finish(&s), 0);
            cr_assert_eq(stat(path, &st), 0);
            cr_assert_eq((uint64_t)st.st_size, size);
        } else {
            cr_assert_eq(t, 0x2f);
            cr_assert_eq(aux, 10, "%s", buf);
            cr_assert_eq(finish(&s), 10);
            cr_assert_neq(stat(path, &st), 0);
        }
        free(img);
    }
}

/* Starts serve and opens path for --delta (hashes asked for); buf gets OK's JSON. */
static void
open_delta(struct srv *s, const char *path, bool inorder, bool rehash, char *buf, size_t cap)
{
    start(s);
    fc_write_all(s->in, "FCVOL003", 8);
    char js[1200];
    snprintf(js, sizeof js, "{\"path\":\"%s\",\"mode\":\"delta\",\"hashes\":true,"
             "\"inorder\":%s,\"rehash\":%s}", path, inorder ? "true" : "false",
             rehash ? "true" : "false");
    msg(s, 0x10, 0, 0, js, strlen(js), strlen(js));
    cr_assert_eq(reply(s, NULL, buf, cap), 0x20, "OPEN: %s", buf);
}

/* --delta over an existing file: HASHES are its chunk hashes; FINISH's digest reuses them
 * only for the whole chunks nothing touched. Writes that cover part of a chunk (data and
 * zeros), a whole chunk, and a size that cuts the last chunk: a reused stale hash would
 * give the wrong digest and fail the copy. */
Test(serve, delta_reuses_only_untouched_chunks)
{
    for (int single = 0; single < 2; single++) {
        char path[800];
        snprintf(path, sizeof path, "%s/delta%d.img", dir, single);
        uint64_t size = 8 * CHUNK;
        uint8_t *img = malloc(size);
        for (uint64_t i = 0; i < size; i++)
            img[i] = (uint8_t)(i * 13 + i / CHUNK);
        memset(img + 6 * CHUNK, 0, CHUNK); /* one zero chunk */
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        cr_assert_eq(write(fd, img, size), (ssize_t)size);
        close(fd);
        struct srv s;
        char buf[4096];
        open_delta(&s, path, single, false, buf, sizeof buf);
        cr_assert(strstr(buf, "\"base\":true"), "%s", buf);
        cr_assert_eq(reply(&s, NULL, buf, sizeof buf), 0x21, "HASHES: %s", buf);
        for (int i = 0; i < 8; i++) {
            uint8_t h[32];
            SHA256(img + i * CHUNK, CHUNK, h);
            cr_assert_eq(memcmp(buf + 32 * i, h, 32), 0, "chunk %d hash", i);
        }
        /* chunk 1: 100 bytes changed; chunk 2: a zero block; chunk 3: whole new data */
        memset(img + CHUNK + 5000, 0xa5, 100);
        msg(&s, 0x11, 0, CHUNK + 5000, img + CHUNK + 5000, 100, 100);
        memset(img + 2 * CHUNK + 65536, 0, 65536);
        msg(&s, 0x13, 0, 2 * CHUNK + 65536, NULL, 0, 65536);
        for (uint64_t i = 3 * CHUNK; i < 4 * CHUNK; i++)
            img[i] ^= 0x5a;
        msg(&s, 0x11, 0, 3 * CHUNK, img + 3 * CHUNK, CHUNK, CHUNK);
        uint64_t nsize = 7 * CHUNK + 4321; /* shorter: chunk 7 is cut */
        uint8_t d[32];
        tree(img, nsize, d);
        msg(&s, 0x14, 3, nsize, d, 32, 32);
        uint32_t t = reply(&s, NULL, buf, sizeof buf);
        cr_assert_eq(t, 0x22, "FINISH: %s", buf);
        cr_assert_eq(memcmp(buf, d, 32), 0);
        cr_assert_eq(finish(&s), 0);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq((uint64_t)st.st_size, nsize);
        free(img);
    }
}

/* A base large enough to be hashed by several threads (32 chunks or more): holes, data
 * chunks, a chunk of written zeros, a chunk with data after a hole and a short last chunk.
 * HASHES must hold each chunk's SHA-256 in place, and FINISH (several streams: nothing is
 * reused) must hash the whole file again to the right digest. */
Test(serve, hashes_of_a_large_base_in_parallel)
{
    char path[800];
    snprintf(path, sizeof path, "%s/large.img", dir);
    uint64_t n = 75, size = (n - 1) * CHUNK + 1234;
    uint8_t *img = calloc(1, size);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)size), 0);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t off = i * CHUNK, len = size - off < CHUNK ? size - off : CHUNK;
        if (i % 3 == 1 || i == n - 1) {          /* data */
            for (uint64_t k = 0; k < len; k++)
                img[off + k] = (uint8_t)(k * 31 + i * 7 + 1);
        } else if (i % 10 == 5) {                /* data after a hole inside the chunk */
            memset(img + off + 900000, (int)(i + 1), 5000);
        } else if (i == 9) {                      /* zeros written, not a hole */
            ;
        } else {
            continue;                             /* a hole */
        }
        cr_assert_eq(pwrite(fd, img + off, len, (off_t)off), (ssize_t)len);
    }
    close(fd);
    struct srv s;
    static char buf[75 * 32 + 4096];
    open_delta(&s, path, false, false, buf, sizeof buf);
    cr_assert_eq(reply(&s, NULL, buf, sizeof buf), 0x21, "HASHES: %s", buf);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t off = i * CHUNK, len = size - off < CHUNK ? size - off : CHUNK;
        uint8_t h[32];
        SHA256(img + off, len, h);
        cr_assert_eq(memcmp(buf + 32 * i, h, 32), 0, "chunk %llu hash", (unsigned long long)i);
    }
    uint8_t d[32];
    tree(img, size, d);
    msg(&s, 0x14, 3, size, d, 32, 32);
    cr_assert_eq(reply(&s, NULL, buf, sizeof buf), 0x22, "FINISH: %s", buf);
    cr_assert_eq(memcmp(buf, d, 32), 0);
    cr_assert_eq(finish(&s), 0);
    free(img);
}

/* One --delta over path through serve: OPEN's answer names the hash record's fate
 * (want_record; NULL: no record field at all), HASHES must be the chunk hashes of base (what
 * the file holds), the chunks listed are sent from img, and FINISH (flags) must agree with
 * img's digest. */
static void
delta_round(const char *path, const uint8_t *base, const uint8_t *img, uint64_t size,
            bool rehash, const char *want_record, const int *changed, int nchanged,
            uint32_t flags)
{
    struct srv s;
    char buf[4096];
    open_delta(&s, path, true, rehash, buf, sizeof buf);
    if (want_record)
        cr_assert(strstr(buf, want_record), "OPEN answer %s lacks %s", buf, want_record);
    else
        cr_assert_null(strstr(buf, "\"record\""), "OPEN answer %s names a record", buf);
    cr_assert_eq(reply(&s, NULL, buf, sizeof buf), 0x21, "HASHES: %s", buf);
    for (uint64_t i = 0; i * CHUNK < size; i++) {
        uint8_t h[32];
        SHA256(base + i * CHUNK, CHUNK, h);
        cr_assert_eq(memcmp(buf + 32 * i, h, 32), 0, "chunk %llu hash (record %s)",
                     (unsigned long long)i, want_record ? want_record : "none");
    }
    for (int k = 0; k < nchanged; k++)
        msg(&s, 0x11, 0, (uint64_t)changed[k] * CHUNK, img + (uint64_t)changed[k] * CHUNK,
            CHUNK, CHUNK);
    uint8_t d[32];
    tree(img, size, d);
    msg(&s, 0x14, flags, size, d, 32, 32);
    cr_assert_eq(reply(&s, NULL, buf, sizeof buf), 0x22, "FINISH: %s", buf);
    cr_assert_eq(finish(&s), 0);
}

/* The hash record (<path>.fluid-hashes): written after a verified commit, mode 0600; used by
 * the next --delta only while the file, the record and its owner are as recorded; never
 * after the file was written by anyone else, a damaged record, a record others may write,
 * or with "rehash"; removed by a commit without verification. A stale record used by
 * mistake would give wrong HASHES (asserted each round) and a destination that differs. */
Test(serve, hash_record)
{
    char path[800], rec[900];
    snprintf(path, sizeof path, "%s/record.img", dir);
    snprintf(rec, sizeof rec, "%s.fluid-hashes", path);
    uint64_t size = 8 * CHUNK;
    uint8_t *a = malloc(size), *b = malloc(size), *c = malloc(size);
    for (uint64_t i = 0; i < size; i++)
        a[i] = (uint8_t)(i * 29 + i / CHUNK + 3);
    struct srv s;
    start(&s);
    open_dest_ex(&s, path, true);
    for (int i = 0; i < 8; i++)
        msg(&s, 0x11, 0, (uint64_t)i * CHUNK, a + (uint64_t)i * CHUNK, CHUNK, CHUNK);
    uint8_t d[32];
    tree(a, size, d);
    msg(&s, 0x14, 3, size, d, 32, 32);
    char buf[4096];
    cr_assert_eq(reply(&s, NULL, buf, sizeof buf), 0x22, "FINISH: %s", buf);
    cr_assert_eq(finish(&s), 0);
    struct stat st;
    cr_assert_eq(stat(rec, &st), 0, "no hash record after a verified copy");
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq((uint64_t)st.st_size, 80 + 8 * 32 + 32);

    /* rehash: the file is read, the record not even looked at */
    delta_round(path, a, a, size, true, NULL, NULL, 0, 3);
    /* the record: chunk 3 changes on the source */
    memcpy(b, a, size);
    for (uint64_t i = 3 * CHUNK; i < 4 * CHUNK; i++)
        b[i] ^= 0x77;
    int three = 3, five = 5;
    delta_round(path, a, b, size, false, "\"record\":\"used\"", &three, 1, 3);
    /* the delta wrote a new record: B's hashes */
    delta_round(path, b, b, size, false, "\"record\":\"used\"", NULL, 0, 3);

    /* someone else writes one byte of chunk 5 (same size): the record no longer holds */
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0);
    memcpy(c, b, size);
    c[5 * CHUNK + 12345] ^= 1;
    cr_assert_eq(pwrite(fd, c + 5 * CHUNK + 12345, 1, 5 * CHUNK + 12345), 1);
    close(fd);
    delta_round(path, c, b, size, false, "changed since the record was written", &five, 1, 3);

    /* a damaged record */
    fd = open(rec, O_RDWR);
    cr_assert_geq(fd, 0);
    uint8_t x;
    cr_assert_eq(pread(fd, &x, 1, 80 + 2 * 32 + 7), 1);
    x ^= 0x10;
    cr_assert_eq(pwrite(fd, &x, 1, 80 + 2 * 32 + 7), 1);
    close(fd);
    delta_round(path, b, b, size, false, "damaged", NULL, 0, 3);

    /* a record that others may write is not trusted */
    cr_assert_eq(chmod(rec, 0666), 0);
    delta_round(path, b, b, size, false, "writable by others", NULL, 0, 3);
    cr_assert_eq(stat(rec, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "the verified delta did not write a new record");

    /* a commit without verification leaves no record */
    delta_round(path, b, b, size, false, "\"record\":\"used\"", NULL, 0, 2);
    cr_assert_neq(stat(rec, &st), 0, "a record survived a commit without verification");
    delta_round(path, b, b, size, false, NULL, NULL, 0, 3);
    free(a);
    free(b);
    free(c);
}

Test(serve, wrong_digest_is_refused_and_not_renamed)
{
    char path[800];
    snprintf(path, sizeof path, "%s/bad.img", dir);
    struct srv s;
    start(&s);
    open_dest(&s, path);
    uint8_t data[4096];
    memset(data, 1, sizeof data);
    msg(&s, 0x11, 0, 0, data, sizeof data, sizeof data);
    uint8_t d[32] = {0};
    msg(&s, 0x14, 3, sizeof data, d, 32, 32);
    char buf[4096];
    uint32_t aux;
    cr_assert_eq(reply(&s, &aux, buf, sizeof buf), 0x2f);
    cr_assert_eq(aux, 10 /* FC_E_CHECKSUM */, "%s", buf);
    cr_assert(strstr(buf, "SHA-256"), "%s", buf);
    cr_assert_eq(finish(&s), 10);
    struct stat st;
    cr_assert_neq(stat(path, &st), 0, "a bad copy was renamed into place");
}

static void
refused(const char *what, uint32_t want_rc, const char *want_text,
        void (*drive)(struct srv *s))
{
    struct srv s;
    start(&s);
    drive(&s);
    char buf[4096];
    uint32_t aux;
    cr_assert_eq(reply(&s, &aux, buf, sizeof buf), 0x2f, "%s: not refused", what);
    cr_assert_eq(aux, want_rc, "%s: rc %u: %s", what, aux, buf);
    cr_assert(strstr(buf, want_text), "%s: %s", what, buf);
    finish(&s);
}

static void
bad_magic(struct srv *s)
{
    fc_write_all(s->in, "FCVOL999", 8);
}

static void
data_first(struct srv *s)
{
    fc_write_all(s->in, "FCVOL003", 8);
    msg(s, 0x11, 0, 0, "x", 1, 1);
}

static void
relative_path(struct srv *s)
{
    fc_write_all(s->in, "FCVOL003", 8);
    const char *js = "{\"path\":\"relative/x.img\",\"mode\":\"copy\"}";
    msg(s, 0x10, 0, 0, js, strlen(js), strlen(js));
}

static void
unknown_field(struct srv *s)
{
    fc_write_all(s->in, "FCVOL003", 8);
    const char *js = "{\"path\":\"/tmp/x\",\"mode\":\"copy\",\"shell\":\"rm -rf /\"}";
    msg(s, 0x10, 0, 0, js, strlen(js), strlen(js));
}

static void
bad_zdata(struct srv *s)
{
    char path[800];
    snprintf(path, sizeof path, "%s/z.img", dir);
    open_dest(s, path);
    msg(s, 0x12, 4096, 0, "garbage!", 8, 8);
}

static void
huge_data(struct srv *s)
{
    char path[800];
    snprintf(path, sizeof path, "%s/h.img", dir);
    open_dest(s, path);
    msg(s, 0x11, 0, 0, NULL, 0, 1ull << 40);
}

Test(serve, refusals)
{
    refused("bad magic", 2, "protocol", bad_magic);
    refused("DATA before OPEN", 1, "before OPEN", data_first);
    refused("relative path", 1, "absolute", relative_path);
    refused("unknown OPEN field", 1, "bad OPEN", unknown_field);
    refused("bad ZDATA", 1, "decompress", bad_zdata);
    refused("huge DATA", 1, "DATA of", huge_data);
}
