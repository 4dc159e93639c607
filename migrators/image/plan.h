/* SPDX-License-Identifier: Apache-2.0 */
/* Planned streaming output (plan.c): the mapping pass over a seekable input, which finds the
 * units of the virtual disk that hold data so that a qcow2, dynamic VHD or monolithicSparse
 * VMDK writer can lay its whole output out first and write it to a pipe in offset order,
 * and the sink that carries such an output in the framed stream. */
#ifndef FLUID_IMAGE_PLAN_H
#define FLUID_IMAGE_PLAN_H

#include "fluid/sha256.h"
#include "image.h"

/* Bytes of bits a map of vsize at unit takes (compare with IMG_MAP_MAX_BYTES first). */
static inline uint64_t img_map_bytes(uint64_t vsize, uint64_t unit)
{
    uint64_t n = vsize / unit + (vsize % unit != 0);
    return (n + 63) / 64 * 8;
}

/* The mapping pass: runs the reader (rd, its opened state rst, reading in, which must be
 * seekable) into a sink that marks every unit holding a non-zero byte. What the reader
 * knows to be zero without reading (holes found with SEEK_DATA/SEEK_HOLE, unallocated and
 * zero clusters, grains and blocks in the format's tables) arrives as zero runs and costs
 * nothing; data it reads is tested for zeros. Then closes the reader and opens it again for
 * the data pass. vsize is the reader's virtual size; the map holds img_map_bytes of it.
 * progress (may be NULL) is told how far the pass has come. */
struct img_map_progress {
    void (*fn)(void *arg, uint64_t pos); /* the mapping pass reached pos of vsize */
    void *arg;
};
fc_rc img_map_input(const struct img_reader *rd, void *rst, struct img_in *in, uint64_t unit,
                    uint64_t vsize, const volatile sig_atomic_t *cancel,
                    const struct img_map_progress *progress, struct img_map *map);

/* Frames a planned output for the stream: begin with the output's size and format, its
 * bytes (written by img_out from the write-behind thread) as data and zero runs, end with
 * the SHA-256 of the whole output. */
struct img_fsink {
    struct fc_sink sink; /* first: given to img_out_init_sink */
    struct fc_sink *next;
    struct fc_sha256 sha;
    uint64_t size;
};
fc_rc img_fsink_begin(struct img_fsink *f, struct fc_sink *next, uint64_t size,
                      const char *format);
fc_rc img_fsink_end(struct img_fsink *f);
void img_fsink_fini(struct img_fsink *f);

#endif
