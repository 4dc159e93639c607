/* SPDX-License-Identifier: Apache-2.0 */
/* The driver table of fluid-image (an explicit NULL-ended list, as the house style asks),
 * format names we recognise but leave to qemu-img, and helpers shared by the readers:
 * run coalescing into the sink and checked inflation of compressed clusters. */
#include <libdeflate.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fluid/error.h"
#include "image.h"

const struct img_reader *const img_readers[] = {
    &img_qcow2_reader, &img_vmdk_reader, &img_vpc_reader, &img_raw_reader, NULL,
};
const struct img_writer *const img_writers[] = {
    &img_raw_writer, &img_qcow2_writer, &img_vmdk_writer, &img_vpc_writer, NULL,
};

void *
img_alloc_io(size_t size)
{
    size_t n = (size + 4095) & ~(size_t)4095;
    return aligned_alloc(4096, n ? n : 4096);
}

const struct img_reader *
img_find_reader(const char *name)
{
    for (size_t i = 0; img_readers[i]; i++)
        if (strcmp(img_readers[i]->name, name) == 0)
            return img_readers[i];
    return NULL;
}

const struct img_writer *
img_find_writer(const char *name)
{
    for (size_t i = 0; img_writers[i]; i++)
        if (strcmp(img_writers[i]->name, name) == 0)
            return img_writers[i];
    return NULL;
}

const char *
img_supported_list(void)
{
    return "raw, qcow2, vmdk, vpc";
}

const char *
img_foreign_probe(const uint8_t *h, size_t len)
{
    if (len >= 8 && memcmp(h, "vhdxfile", 8) == 0)
        return "vhdx";
    if (len >= 68 && img_le32(h + 64) == 0xbeda107f)
        return "vdi";
    if (len >= 4 && memcmp(h, "QED\0", 4) == 0)
        return "qed";
    if (len >= 4 && memcmp(h, "QFI\xfb", 4) == 0 && img_be32(h + 4) == 1)
        return "qcow";
    if (len >= 8 && memcmp(h, "cloop", 5) == 0)
        return "cloop";
    if (len >= 4 && memcmp(h, "LUKS", 4) == 0)
        return "luks";
    if (len >= 4 && memcmp(h, "COWD", 4) == 0)
        return "vmdk"; /* VMware 3 */
    if (len >= 21 && memcmp(h, "# Disk DescriptorFile", 21) == 0)
        return "vmdk"; /* a descriptor naming other files */
    return NULL;
}

/* VHD fixed has its footer at the end: a file whose last 512 bytes start "conectix". */
static bool
vpc_fixed_tail(const struct img_in *in)
{
    uint8_t t[8];
    if (!in->seekable || in->size < 1024 || (in->size & 511))
        return false;
    return pread(in->fd, t, 8, (off_t)(in->size - 512)) == 8 && memcmp(t, "conectix", 8) == 0;
}

const struct img_reader *
img_probe(const struct img_in *in)
{
    for (size_t i = 0; img_readers[i]; i++)
        if (img_readers[i]->probe(in->head, in->head_len))
            return img_readers[i] == &img_raw_reader && vpc_fixed_tail(in) ? &img_vpc_reader
                                                                           : img_readers[i];
    return &img_raw_reader;
}

void
img_emit_init(struct img_emit *e, struct fc_sink *sink, const volatile sig_atomic_t *c)
{
    e->sink = sink;
    e->pos = 0;
    e->zero_pending = 0;
    e->cancel = c;
}

fc_rc
img_emit_flush(struct img_emit *e)
{
    if (e->zero_pending == 0)
        return FC_OK;
    uint64_t off = e->pos - e->zero_pending, len = e->zero_pending;
    e->zero_pending = 0;
    return e->sink->zero(e->sink, off, len);
}

uint8_t *
img_emit_buf(struct img_emit *e, uint8_t *own)
{
    uint8_t *b = img_pl_lend(e->sink);
    return b ? b : own;
}

fc_rc
img_emit_data(struct img_emit *e, const void *buf, size_t len)
{
    if (e->cancel && *e->cancel)
        return FC_ERR(FC_E_CANCELLED, "cancelled at offset %llu", (unsigned long long)e->pos);
    fc_rc rc = img_emit_flush(e);
    if (rc != FC_OK || len == 0)
        return rc;
    rc = e->sink->write(e->sink, e->pos, buf, len);
    e->pos += len;
    return rc;
}

fc_rc
img_emit_zero(struct img_emit *e, uint64_t len)
{
    e->zero_pending += len;
    e->pos += len;
    return FC_OK;
}

fc_rc
img_inflate(struct libdeflate_decompressor *d, bool zlib, const void *in, size_t in_len,
            void *out, size_t want, const char *what, uint64_t off)
{
    size_t got = 0;
    enum libdeflate_result r =
        zlib ? libdeflate_zlib_decompress(d, in, in_len, out, want, &got)
             : libdeflate_deflate_decompress(d, in, in_len, out, want, &got);
    if (r == LIBDEFLATE_INSUFFICIENT_SPACE)
        return FC_ERR(FC_E_INVALID, "%s at offset %llu inflates to more than %zu bytes", what,
                      (unsigned long long)off, want);
    if (r != LIBDEFLATE_SUCCESS)
        return FC_ERR(FC_E_INVALID, "%s at offset %llu is not valid %s data", what,
                      (unsigned long long)off, zlib ? "zlib" : "deflate");
    if (got != want)
        return FC_ERR(FC_E_INVALID, "%s at offset %llu inflates to %zu bytes, expected %zu",
                      what, (unsigned long long)off, got, want);
    return FC_OK;
}
