/* SPDX-License-Identifier: Apache-2.0 */
/* Block assembler shared by the cluster/grain writers (qcow2, vmdk): turns the stream's
 * write()/zero() calls, at any offsets and lengths, into whole blocks handed to the writer,
 * with runs of whole blocks passed straight through and zero blocks never materialised. */
#ifndef FLUID_IMAGE_BLOCKS_H
#define FLUID_IMAGE_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "fluid/rc.h"

struct img_blocks {
    uint64_t bs;   /* block size */
    uint64_t vpos; /* next guest offset expected */
    uint8_t *buf;  /* the block being assembled (bs bytes, owned by the writer) */
    size_t fill;
    void *ctx;
    /* stores one whole block of data (never called for a block that is all zero runs) */
    fc_rc (*block)(void *ctx, uint64_t idx, const uint8_t *p);
    /* how many whole blocks at p (len bytes available, at least one block) to store as one
     * run through store_run; 1 means block() */
    size_t (*run)(void *ctx, uint64_t idx, const uint8_t *p, size_t len);
    fc_rc (*store_run)(void *ctx, uint64_t idx, const uint8_t *p, size_t n);
};

fc_rc img_blocks_write(struct img_blocks *b, const void *buf, size_t len);
fc_rc img_blocks_zero(struct img_blocks *b, uint64_t len);
/* At the end: pads a partial last block with zeros and stores it. */
fc_rc img_blocks_flush(struct img_blocks *b);

#endif
