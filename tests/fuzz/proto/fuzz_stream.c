/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: fc_stream_read on arbitrary bytes, through a pipe (framed or plain bytes
 * from a non-seekable fd) and through a memfd (a regular file: size known, SEEK_DATA). A
 * counting sink checks the reader's promises: begin first and once, writes and zero runs
 * contiguous and within the announced size, end last with the size reached. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fluid/error.h"
#include "fluid/stream.h"

static volatile unsigned char touched;

struct counting {
    struct fc_sink sink;
    int state; /* 0 before begin, 1 after, 2 after end */
    uint64_t size, pos;
};

#define CHECK(c)                                                                               \
    do {                                                                                       \
        if (!(c)) {                                                                            \
            fprintf(stderr, "fuzz_stream: broken promise: %s\n", #c);                          \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

static fc_rc
c_begin(struct fc_sink *s, const struct fc_stream_info *info)
{
    struct counting *c = (struct counting *)s;
    CHECK(c->state == 0);
    c->state = 1;
    c->size = info->size;
    CHECK(memchr(info->format, '\0', sizeof info->format));
    return FC_OK;
}

static fc_rc
c_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    struct counting *c = (struct counting *)s;
    CHECK(c->state == 1);
    CHECK(off == c->pos);
    CHECK(len > 0);
    CHECK(c->size == FC_SIZE_UNKNOWN || off + len <= c->size);
    unsigned char sum = 0; /* touch every byte: ASan sees a short buffer */
    for (size_t i = 0; i < len; i++)
        sum ^= ((const unsigned char *)buf)[i];
    touched ^= sum;
    c->pos += len;
    return FC_OK;
}

static fc_rc
c_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    struct counting *c = (struct counting *)s;
    CHECK(c->state == 1);
    CHECK(off == c->pos);
    CHECK(len > 0);
    CHECK(c->size == FC_SIZE_UNKNOWN || off + len <= c->size);
    c->pos += len;
    return FC_OK;
}

static fc_rc
c_end(struct fc_sink *s, uint64_t size, const uint8_t *sha256)
{
    struct counting *c = (struct counting *)s;
    CHECK(c->state == 1);
    CHECK(size == c->pos);
    CHECK(c->size == FC_SIZE_UNKNOWN || c->size == size);
    c->state = 2;
    return FC_OK;
}

/* Verifying a framed stream hashes its whole virtual size, zero runs included: 24 bytes of
 * ZERO frame can announce terabytes. That cost is bounded by the size in BEGIN and is what
 * the data would cost anyway, so verify only streams that announce at most 16 MiB. */
static bool
small_stream(const unsigned char *data, size_t size)
{
    if (size < FC_STREAM_MAGIC_LEN + FC_STREAM_HDR_LEN ||
        memcmp(data, FC_STREAM_MAGIC, FC_STREAM_MAGIC_LEN) != 0)
        return true; /* plain bytes: hashing is linear in the input */
    struct fc_frame f;
    fc_frame_decode(data + FC_STREAM_MAGIC_LEN, &f);
    return f.type == FC_FRAME_BEGIN && f.length <= (16u << 20);
}

static void
run(int fd, bool verify)
{
    struct counting c = {.sink = {c_begin, c_write, c_zero, c_end}};
    struct fc_stream_reader_opts o = {.verify = verify, .hash_plain = true, .zero_block = 512,
                                      .buf_size = 4096};
    struct fc_stream_stats st = {0};
    fc_rc rc = fc_stream_read(fd, &c.sink, &o, &st);
    if (rc == FC_OK)
        CHECK(c.state == 2);
    else
        CHECK(fc_error_msg()[0] != '\0');
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    bool verify = small_stream(data, size);
    int p[2];
    if (size <= 65536 && pipe2(p, O_CLOEXEC) == 0) {
        fcntl(p[1], F_SETPIPE_SZ, 65536);
        if (fc_write_all(p[1], data, size) != FC_OK)
            abort();
        close(p[1]);
        run(p[0], verify);
        close(p[0]);
    }
    int m = memfd_create("fuzz_stream", MFD_CLOEXEC);
    if (m < 0)
        abort();
    if (fc_write_all(m, data, size) != FC_OK || lseek(m, 0, SEEK_SET) != 0)
        abort();
    run(m, verify);
    close(m);
    return 0;
}
