/* SPDX-License-Identifier: Apache-2.0 */
/* The framed data stream: round trips, plain bytes with holes, and hostile frames. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fluid/error.h"
#include "fluid/stream.h"

/* A sink that records what it was given. */
struct rec {
    struct fc_sink sink;
    struct fc_stream_info info;
    uint8_t *content; /* virtual content rebuilt */
    uint64_t cap, pos, zero_calls, write_calls;
    bool ended;
    uint8_t sha[32];
    bool has_sha;
};

static fc_rc
r_begin(struct fc_sink *s, const struct fc_stream_info *info)
{
    struct rec *r = (struct rec *)s;
    r->info = *info;
    return FC_OK;
}

static fc_rc
r_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    struct rec *r = (struct rec *)s;
    cr_assert_eq(off, r->pos);
    cr_assert_leq(off + len, r->cap);
    memcpy(r->content + off, buf, len);
    r->pos += len;
    r->write_calls++;
    return FC_OK;
}

static fc_rc
r_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    struct rec *r = (struct rec *)s;
    cr_assert_eq(off, r->pos);
    memset(r->content + off, 0, len);
    r->pos += len;
    r->zero_calls++;
    return FC_OK;
}

static fc_rc
r_end(struct fc_sink *s, uint64_t size, const uint8_t *sha)
{
    struct rec *r = (struct rec *)s;
    r->ended = true;
    if (sha) {
        memcpy(r->sha, sha, 32);
        r->has_sha = true;
    }
    (void)size;
    return FC_OK;
}

static void
rec_init(struct rec *r, uint64_t cap)
{
    memset(r, 0, sizeof *r);
    r->sink = (struct fc_sink){r_begin, r_write, r_zero, r_end};
    r->cap = cap;
    r->content = calloc(1, cap ? cap : 1);
}

static int
tmpfile_fd(void)
{
    char path[] = "/tmp/fluid-test-stream-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    return fd;
}

static void
sha_of(const uint8_t *buf, size_t len, uint8_t out[32])
{
    struct fc_sha256 h;
    cr_assert_eq(fc_sha256_init(&h), FC_OK);
    fc_sha256_update(&h, buf, len);
    fc_sha256_final(&h, out);
    fc_sha256_free(&h);
}

/* Writes a framed stream of `size` bytes: data, a zero run, data, with the right digest. */
static int
make_framed(uint8_t *content, uint64_t size, bool good_digest)
{
    int fd = tmpfile_fd();
    struct fc_stream_writer w;
    fc_stream_writer_init(&w, fd, true);
    struct fc_stream_info info = {.size = size, .format = "raw"};
    for (uint64_t i = 0; i < size; i++)
        content[i] = (i < size / 3 || i >= 2 * size / 3) ? (uint8_t)(i * 7 + 1) : 0;
    cr_assert_eq(w.sink.begin(&w.sink, &info), FC_OK);
    cr_assert_eq(w.sink.write(&w.sink, 0, content, size / 3), FC_OK);
    cr_assert_eq(w.sink.zero(&w.sink, size / 3, 2 * size / 3 - size / 3), FC_OK);
    cr_assert_eq(w.sink.write(&w.sink, 2 * size / 3, content + 2 * size / 3, size - 2 * size / 3),
                 FC_OK);
    uint8_t sha[32];
    sha_of(content, size, sha);
    if (!good_digest)
        sha[0] ^= 1;
    cr_assert_eq(w.sink.end(&w.sink, size, sha), FC_OK);
    fc_stream_writer_fini(&w);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

Test(stream, framed_round_trip_keeps_zero_runs)
{
    uint64_t size = 3 * 1000 * 1000 + 7;
    uint8_t *content = malloc(size);
    int fd = make_framed(content, size, true);
    struct rec r;
    rec_init(&r, size);
    struct fc_stream_stats st;
    fc_rc rc = fc_stream_read(fd, &r.sink, NULL, &st);
    cr_assert_eq(rc, FC_OK, "%s", fc_error_msg());
    cr_assert(r.ended);
    cr_assert_eq(r.info.size, size);
    cr_assert_str_eq(r.info.format, "raw");
    cr_assert_eq(memcmp(r.content, content, size), 0);
    cr_assert_eq(r.zero_calls, 1);
    cr_assert_eq(st.zero_bytes, 2 * size / 3 - size / 3);
    cr_assert_lt(st.bytes_io, size, "zero run must not cross as bytes");
    uint8_t sha[32];
    sha_of(content, size, sha);
    cr_assert(r.has_sha);
    cr_assert_eq(memcmp(sha, r.sha, 32), 0);
    close(fd);
    free(content);
    free(r.content);
}

Test(stream, framed_digest_mismatch_is_checksum_error)
{
    uint64_t size = 100000;
    uint8_t *content = malloc(size);
    int fd = make_framed(content, size, false);
    struct rec r;
    rec_init(&r, size);
    fc_rc rc = fc_stream_read(fd, &r.sink, NULL, NULL);
    cr_assert_eq(rc, FC_E_CHECKSUM);
    cr_assert(strstr(fc_error_msg(), "SHA-256 mismatch"), "%s", fc_error_msg());
    cr_assert(!r.ended);
    close(fd);
    free(content);
    free(r.content);
}

Test(stream, truncated_stream_names_offset)
{
    uint64_t size = 100000;
    uint8_t *content = malloc(size);
    int fd = make_framed(content, size, true);
    struct stat sb;
    fstat(fd, &sb);
    cr_assert_eq(ftruncate(fd, sb.st_size - 40), 0);
    struct rec r;
    rec_init(&r, size);
    fc_rc rc = fc_stream_read(fd, &r.sink, NULL, NULL);
    cr_assert_eq(rc, FC_E_IO);
    cr_assert(strstr(fc_error_msg(), "truncated"), "%s", fc_error_msg());
    cr_assert(!r.ended);
    close(fd);
    free(content);
    free(r.content);
}

/* Writes raw frames for hostile-input tests. */
static void
put_frame(int fd, uint32_t type, uint32_t aux, uint64_t off, uint64_t len, const void *p,
          size_t plen)
{
    uint8_t hdr[FC_STREAM_HDR_LEN];
    struct fc_frame f = {type, aux, off, len};
    fc_frame_encode(&f, hdr);
    cr_assert_eq(fc_write_all(fd, hdr, sizeof hdr), FC_OK);
    if (plen)
        cr_assert_eq(fc_write_all(fd, p, plen), FC_OK);
}

static fc_rc
read_back(int fd, struct rec *r)
{
    lseek(fd, 0, SEEK_SET);
    rec_init(r, 4096);
    return fc_stream_read(fd, &r->sink, NULL, NULL);
}

Test(stream, hostile_frames_are_rejected)
{
    struct rec r;
    uint8_t data[16] = {1};
    struct {
        const char *name, *expect;
        int n;
        struct fc_frame fr[3];
    } cases[] = {
        {"data before begin", "before BEGIN", 1, {{FC_FRAME_DATA, 0, 0, 16}}},
        {"gap", "expected 0", 2, {{FC_FRAME_BEGIN, 0, 0, 4096}, {FC_FRAME_ZERO, 0, 8, 8}}},
        {"past size", "passes the virtual size", 2,
         {{FC_FRAME_BEGIN, 0, 0, 4096}, {FC_FRAME_ZERO, 0, 0, 5000}}},
        {"overflow", "passes the virtual size", 3,
         {{FC_FRAME_BEGIN, 0, 0, 4096}, {FC_FRAME_ZERO, 0, 0, 16}, {FC_FRAME_ZERO, 0, 16, UINT64_MAX - 8}}},
        {"early end", "content ends at", 2, {{FC_FRAME_BEGIN, 0, 0, 4096}, {FC_FRAME_END, 0, 0, 32}}},
        {"unknown type", "unknown type 9", 2, {{FC_FRAME_BEGIN, 0, 0, 4096}, {9, 0, 0, 0}}},
        {"huge meta", "bad fields", 1, {{FC_FRAME_BEGIN, 1u << 30, 0, 4096}}},
        {"second begin", "second BEGIN", 2, {{FC_FRAME_BEGIN, 0, 0, 4096}, {FC_FRAME_BEGIN, 0, 0, 4096}}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = tmpfile_fd();
        fc_write_all(fd, FC_STREAM_MAGIC, FC_STREAM_MAGIC_LEN);
        for (int k = 0; k < cases[i].n; k++) {
            struct fc_frame *f = &cases[i].fr[k];
            bool payload = f->type == FC_FRAME_DATA;
            put_frame(fd, f->type, f->aux, f->offset, f->length, data, payload ? 16 : 0);
        }
        fc_rc rc = read_back(fd, &r);
        cr_expect_eq(rc, FC_E_INVALID, "%s: rc %d (%s)", cases[i].name, rc, fc_error_msg());
        cr_expect(strstr(fc_error_msg(), cases[i].expect), "%s: %s", cases[i].name,
                  fc_error_msg());
        cr_expect(!r.ended, "%s", cases[i].name);
        free(r.content);
        close(fd);
    }
}

Test(stream, abort_frame_carries_producer_failure)
{
    int fd = tmpfile_fd();
    struct fc_stream_writer w;
    fc_stream_writer_init(&w, fd, true);
    struct fc_stream_info info = {.size = 4096};
    cr_assert_eq(w.sink.begin(&w.sink, &info), FC_OK);
    fc_stream_writer_abort(&w, FC_E_NET, "ssh: connection to 10.0.0.5 lost");
    struct rec r;
    fc_rc rc = read_back(fd, &r);
    cr_assert_eq(rc, FC_E_NET);
    cr_assert(strstr(fc_error_msg(), "10.0.0.5 lost"), "%s", fc_error_msg());
    free(r.content);
    close(fd);
}

Test(stream, plain_file_holes_become_zero_runs_and_back)
{
    /* A sparse file: 1 MiB data, 8 MiB hole, 1 MiB data, 64 KiB of written zeros, 3 bytes. */
    int src = tmpfile_fd();
    uint64_t size = (1u << 20) * 10 + 65536 + 3;
    uint8_t *buf = malloc(1u << 20);
    memset(buf, 0xab, 1u << 20);
    cr_assert_eq(pwrite(src, buf, 1u << 20, 0), 1 << 20);
    cr_assert_eq(pwrite(src, buf, 1u << 20, 9u << 20), 1 << 20);
    uint8_t z[65536] = {0};
    cr_assert_eq(pwrite(src, z, sizeof z, 10u << 20), (ssize_t)sizeof z);
    cr_assert_eq(pwrite(src, "xyz", 3, (10u << 20) + 65536), 3);

    int dst = tmpfile_fd();
    struct fc_stream_writer w;
    fc_stream_writer_init(&w, dst, false);
    cr_assert(w.seekable);
    struct fc_stream_stats st;
    struct fc_stream_reader_opts o = {.hash_plain = true};
    fc_rc rc = fc_stream_read(src, &w.sink, &o, &st);
    cr_assert_eq(rc, FC_OK, "%s", fc_error_msg());
    fc_stream_writer_fini(&w);
    cr_assert_eq(st.data_bytes, (2u << 20) + 3);
    cr_assert_eq(st.zero_bytes, size - (2u << 20) - 3);
    struct stat sb;
    fstat(dst, &sb);
    cr_assert_eq((uint64_t)sb.st_size, size);
    cr_assert_lt((uint64_t)sb.st_blocks * 512, 3u << 20, "output must stay sparse");
    uint8_t *a = malloc(size), *b = malloc(size);
    cr_assert_eq(pread(src, a, size, 0), (ssize_t)size);
    cr_assert_eq(pread(dst, b, size, 0), (ssize_t)size);
    cr_assert_eq(memcmp(a, b, size), 0);
    free(a);
    free(b);
    free(buf);
    close(src);
    close(dst);
}

Test(stream, plain_pipe_has_unknown_size_and_digest)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_geq(fcntl(p[1], F_SETPIPE_SZ, 1 << 20), 1 << 17, "pipe must hold the data");
    uint8_t data[70000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = i < 65536 ? 0 : (uint8_t)i;
    cr_assert_eq(fc_write_all(p[1], data, sizeof data), FC_OK);
    close(p[1]);
    struct rec r;
    rec_init(&r, sizeof data);
    struct fc_stream_reader_opts o = {.hash_plain = true};
    cr_assert_eq(fc_stream_read(p[0], &r.sink, &o, NULL), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(r.info.size, FC_SIZE_UNKNOWN);
    cr_assert_eq(r.pos, sizeof data);
    cr_assert_eq(r.zero_calls, 1);
    uint8_t sha[32];
    sha_of(data, sizeof data, sha);
    cr_assert_eq(memcmp(sha, r.sha, 32), 0);
    free(r.content);
    close(p[0]);
}

#include <signal.h>
#include <sys/time.h>

#include "fluid/migrator.h"

static void
on_alarm(int sig)
{
    (void)sig;
    fc_cancel_requested = 1;
}

Test(stream, cancel_interrupts_a_blocked_read)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART, like fc_migrator_init */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {.it_value = {.tv_usec = 100000}};
    setitimer(ITIMER_REAL, &it, NULL);
    char buf[16];
    size_t got = 99;
    fc_rc rc = fc_read_full(p[0], buf, sizeof buf, &got); /* nothing ever arrives */
    cr_assert_eq(rc, FC_E_CANCELLED, "%s", fc_error_msg());
    cr_assert_eq(got, 0);
    fc_cancel_requested = 0;
    close(p[0]);
    close(p[1]);
}
