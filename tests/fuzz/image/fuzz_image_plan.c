/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for planned streaming output (migrators/image/plan.h): the input is an
 * image file (any format a reader probes) in a memory file; it is mapped with its reader,
 * a qcow2, dynamic VHD or monolithicSparse VMDK output (chosen by the input's length) is
 * planned from the map, and the data pass writes it to a sink that checks every write
 * follows the previous one and the total is the planned size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "image.h"
#include "plan.h"

struct ordered {
    struct fc_sink sink;
    uint64_t pos;
};

static fc_rc
o_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    struct ordered *o = (struct ordered *)s;
    if (off != o->pos || len == 0)
        abort(); /* a planned output is written strictly in order */
    volatile uint8_t x = ((const uint8_t *)buf)[0] ^ ((const uint8_t *)buf)[len - 1];
    (void)x;
    o->pos += len;
    return FC_OK;
}

static fc_rc
o_other(struct fc_sink *s)
{
    abort(); /* img_out only calls write() */
}

static fc_rc
o_begin(struct fc_sink *s, const struct fc_stream_info *i)
{
    return o_other(s);
}

static fc_rc
o_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    return o_other(s);
}

static fc_rc
o_end(struct fc_sink *s, uint64_t size, const uint8_t *sha)
{
    return o_other(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const outs[] = {"qcow2", "vpc", "vmdk"};
    int fd = memfd_create("fuzz", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    struct img_in *in = calloc(1, sizeof *in);
    fc_rc rc = img_in_from_fd(in, fd, "fuzz");
    const struct img_reader *r = rc == FC_OK ? img_probe(in) : NULL;
    void *rst = r ? calloc(1, r->state_size) : NULL;
    const struct img_writer *w = img_find_writer(outs[size % 3]);
    void *wst = calloc(1, w->state_size);
    struct ordered o = {{o_begin, o_write, o_zero, o_end}, 0};
    struct img_out out;
    struct img_map map = {0};
    bool out_on = false;
    if (r)
        rc = r->open(rst, in);
    if (r && rc == FC_OK) {
        struct img_info info = {0};
        r->info(rst, &info);
        struct img_wopts wo = {.threads = 1, .dst_name = "f.vmdk"};
        struct fc_sink *sink;
        uint64_t unit = 0, planned = 0;
        /* keep each run short: at most 256 MiB of virtual disk */
        if (info.vsize <= (256ull << 20) && img_out_init_sink(&out, &o.sink) == FC_OK) {
            out_on = true;
            if (w->open(wst, &out, &wo, &sink) == FC_OK)
                unit = w->plan_unit(wst, info.vsize);
            if (unit && img_map_input(r, rst, in, unit, info.vsize, NULL, NULL, &map) == FC_OK &&
                w->plan(wst, &map, info.vsize, &planned) == FC_OK &&
                r->pump(rst, sink, NULL) == FC_OK && out.pos != planned)
                abort(); /* the planned size was the written size */
        }
    }
    if (out_on)
        img_out_fini(&out);
    w->close(wst);
    free(wst);
    img_map_free(&map);
    if (r) {
        r->close(rst);
        free(rst);
    }
    img_in_close(in);
    free(in);
    return 0;
}
