/* SPDX-License-Identifier: Apache-2.0 */
/* Block assembler shared by the qcow2 and vmdk writers (blocks.h). */
#include "blocks.h"

#include <string.h>

fc_rc
img_blocks_write(struct img_blocks *b, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    fc_rc rc = FC_OK;
    while (len > 0 && rc == FC_OK) {
        uint64_t idx = b->vpos / b->bs;
        if (b->fill == 0 && len >= b->bs) {
            size_t n = b->run(b->ctx, idx, p, len);
            rc = n > 1 ? b->store_run(b->ctx, idx, p, n) : b->block(b->ctx, idx, p);
            p += n * b->bs;
            len -= n * b->bs;
            b->vpos += n * b->bs;
            continue;
        }
        size_t k = b->bs - b->fill < len ? b->bs - b->fill : len;
        memcpy(b->buf + b->fill, p, k);
        b->fill += k;
        p += k;
        len -= k;
        b->vpos += k;
        if (b->fill == b->bs) {
            rc = b->block(b->ctx, idx, b->buf);
            b->fill = 0;
        }
    }
    return rc;
}

fc_rc
img_blocks_zero(struct img_blocks *b, uint64_t len)
{
    fc_rc rc = FC_OK;
    if (b->fill) {
        size_t k = b->bs - b->fill < len ? b->bs - b->fill : (size_t)len;
        memset(b->buf + b->fill, 0, k);
        b->fill += k;
        b->vpos += k;
        len -= k;
        if (b->fill == b->bs) {
            rc = b->block(b->ctx, (b->vpos - 1) / b->bs, b->buf);
            b->fill = 0;
        }
    }
    uint64_t whole = len / b->bs * b->bs;
    b->vpos += whole;
    len -= whole;
    if (len) {
        memset(b->buf, 0, (size_t)len);
        b->fill = (size_t)len;
        b->vpos += len;
    }
    return rc;
}

fc_rc
img_blocks_flush(struct img_blocks *b)
{
    fc_rc rc = FC_OK;
    if (b->fill) {
        memset(b->buf + b->fill, 0, b->bs - b->fill);
        rc = b->block(b->ctx, b->vpos / b->bs, b->buf);
        b->fill = 0;
    }
    return rc;
}
