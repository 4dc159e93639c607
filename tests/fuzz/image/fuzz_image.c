/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for one fluid-image reader (FUZZ_READER names it): the input is an image
 * file in a memory file, opened, described and pumped into a sink that checks the reader's
 * contract (begin, then in-order data and zero runs up to the virtual size, then end). With
 * FUZZ_PIPE the input is read in order, as from a pipe (the streamOptimized VMDK path). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "image.h"

#define STR_(x) #x
#define STR(x) STR_(x)

struct chk {
    struct fc_sink sink;
    uint64_t size, pos;
};

static fc_rc
c_begin(struct fc_sink *s, const struct fc_stream_info *i)
{
    ((struct chk *)s)->size = i->size;
    return FC_OK;
}

static fc_rc
c_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    struct chk *c = (struct chk *)s;
    if (off != c->pos || len == 0 || len > c->size - c->pos)
        abort();
    volatile uint8_t x = ((const uint8_t *)buf)[0] ^ ((const uint8_t *)buf)[len - 1];
    (void)x;
    c->pos += len;
    return FC_OK;
}

static fc_rc
c_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    struct chk *c = (struct chk *)s;
    if (off != c->pos || len > c->size - c->pos)
        abort();
    c->pos += len;
    return FC_OK;
}

static fc_rc
c_end(struct fc_sink *s, uint64_t size, const uint8_t *sha)
{
    struct chk *c = (struct chk *)s;
    if (c->pos != c->size)
        abort();
    return FC_OK;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct img_reader *r = img_find_reader(STR(FUZZ_READER));
    int fd = memfd_create("fuzz", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) != 0)
        abort();
    struct img_in *in = calloc(1, sizeof *in);
    fc_rc rc = img_in_from_fd(in, fd, "fuzz");
#ifdef FUZZ_PIPE
    in->seekable = false; /* read() in order, as a pipe */
#endif
    void *st = calloc(1, r->state_size);
    if (rc == FC_OK)
        rc = r->open(st, in);
    if (rc == FC_OK) {
        struct img_info info = {0};
        r->info(st, &info);
        /* absurd but valid sizes are fine for the reader; keep each run short */
        if (info.vsize <= (1ull << 34)) {
            struct chk c = {{c_begin, c_write, c_zero, c_end}, 0, 0};
            r->pump(st, &c.sink, NULL);
        }
    }
    r->close(st);
    free(st);
    img_in_close(in);
    free(in);
    return 0;
}
