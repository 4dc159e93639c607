/* SPDX-License-Identifier: Apache-2.0 */
/* The framed data stream between migrators, and plain bytes for other tools. Everything read
 * here comes from another process and is untrusted: every frame is checked before use. */
#include "fluid/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "fluid/migrator.h"

/* ---------- helpers ---------- */

bool
fc_is_zero(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    if (len < 16) {
        for (size_t i = 0; i < len; i++)
            if (p[i])
                return false;
        return true;
    }
    static const unsigned char z[16];
    return memcmp(p, z, 16) == 0 && memcmp(p, p + 16, len - 16) == 0;
}

fc_rc
fc_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR && fc_cancel_requested)
                return FC_ERR(FC_E_CANCELLED, "write: cancelled");
            if (errno == EINTR)
                continue;
            return FC_ERRNO(errno == ENOSPC ? FC_E_NOSPACE : FC_E_IO, "write");
        }
        p += w;
        len -= (size_t)w;
    }
    return FC_OK;
}

static fc_rc
writev_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return FC_ERRNO(errno == ENOSPC ? FC_E_NOSPACE : FC_E_IO, "write");
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return FC_OK;
}

fc_rc
fc_read_full(int fd, void *buf, size_t len, size_t *got)
{
    char *p = buf;
    size_t n = 0;
    while (n < len) {
        ssize_t r = read(fd, p + n, len - n);
        if (r < 0) {
            /* SIGTERM/SIGINT (installed without SA_RESTART) interrupt a blocked read. */
            if (errno == EINTR && fc_cancel_requested) {
                *got = n;
                return FC_ERR(FC_E_CANCELLED, "read: cancelled");
            }
            if (errno == EINTR)
                continue;
            *got = n;
            return FC_ERRNO(FC_E_IO, "read");
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *got = n;
    return FC_OK;
}

static void
put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void
put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

void
fc_frame_encode(const struct fc_frame *f, uint8_t hdr[FC_STREAM_HDR_LEN])
{
    put32(hdr, f->type);
    put32(hdr + 4, f->aux);
    put64(hdr + 8, f->offset);
    put64(hdr + 16, f->length);
}

void
fc_frame_decode(const uint8_t hdr[FC_STREAM_HDR_LEN], struct fc_frame *f)
{
    f->type = get32(hdr);
    f->aux = get32(hdr + 4);
    f->offset = get64(hdr + 8);
    f->length = get64(hdr + 16);
}

/* ---------- writer ---------- */

static fc_rc
w_frame(struct fc_stream_writer *w, uint32_t type, uint32_t aux, uint64_t off, uint64_t len,
        const void *payload, size_t plen)
{
    uint8_t hdr[FC_STREAM_HDR_LEN];
    struct fc_frame f = {type, aux, off, len};
    fc_frame_encode(&f, hdr);
    struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)payload, plen}};
    fc_rc rc = writev_all(w->fd, iov, plen ? 2 : 1);
    if (rc == FC_OK)
        w->stats.bytes_io += sizeof hdr + plen;
    return rc;
}

static fc_rc
w_begin(struct fc_sink *s, const struct fc_stream_info *info)
{
    struct fc_stream_writer *w = (struct fc_stream_writer *)s;
    w->size = info->size;
    w->pos = 0;
    if (!w->framed)
        return FC_OK;
    if (info->size == FC_SIZE_UNKNOWN)
        return FC_ERR(FC_E_UNSUPPORTED, "stream: a framed stream needs the virtual size up front");
    fc_rc rc = fc_write_all(w->fd, FC_STREAM_MAGIC, FC_STREAM_MAGIC_LEN);
    if (rc != FC_OK)
        return rc;
    w->stats.bytes_io += FC_STREAM_MAGIC_LEN;
    char meta[96] = "";
    size_t mlen = 0;
    if (info->format[0]) {
        json_t *o = json_pack("{s:s}", "format", info->format);
        if (o) {
            mlen = json_dumpb(o, meta, sizeof meta, JSON_COMPACT);
            json_decref(o);
            if (mlen > sizeof meta)
                mlen = 0;
        }
    }
    return w_frame(w, FC_FRAME_BEGIN, (uint32_t)mlen, 0, info->size, meta, mlen);
}

static fc_rc
w_check(struct fc_stream_writer *w, uint64_t off, uint64_t len)
{
    if (off != w->pos)
        return FC_ERR(FC_E_INTERNAL, "stream: write at %llu, expected %llu",
                      (unsigned long long)off, (unsigned long long)w->pos);
    if (w->size != FC_SIZE_UNKNOWN && (len > w->size || off > w->size - len))
        return FC_ERR(FC_E_INTERNAL, "stream: write past the virtual size %llu",
                      (unsigned long long)w->size);
    return FC_OK;
}

static fc_rc
w_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    struct fc_stream_writer *w = (struct fc_stream_writer *)s;
    fc_rc rc = w_check(w, off, len);
    if (rc != FC_OK)
        return rc;
    const char *p = buf;
    size_t left = len;
    while (left > 0) {
        size_t k = left < FC_STREAM_MAX_DATA ? left : FC_STREAM_MAX_DATA;
        if (w->framed) {
            rc = w_frame(w, FC_FRAME_DATA, 0, off, k, p, k);
        } else {
            rc = fc_write_all(w->fd, p, k);
            if (rc == FC_OK)
                w->stats.bytes_io += k;
        }
        if (rc != FC_OK)
            return rc;
        p += k;
        off += k;
        left -= k;
    }
    w->pos += len;
    w->stats.data_bytes += len;
    return FC_OK;
}

static fc_rc
w_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    struct fc_stream_writer *w = (struct fc_stream_writer *)s;
    fc_rc rc = w_check(w, off, len);
    if (rc != FC_OK || len == 0)
        return rc;
    if (w->framed) {
        rc = w_frame(w, FC_FRAME_ZERO, 0, off, len, NULL, 0);
    } else if (w->seekable) {
        if (lseek(w->fd, (off_t)len, SEEK_CUR) < 0)
            rc = FC_ERRNO(FC_E_IO, "stream: seek over a zero run");
    } else {
        if (!w->zbuf && !(w->zbuf = calloc(1, 1 << 20)))
            return FC_ERR(FC_E_NOMEM, "stream: out of memory");
        uint64_t left = len;
        while (left > 0 && rc == FC_OK) {
            size_t k = left < (1u << 20) ? (size_t)left : (1u << 20);
            rc = fc_write_all(w->fd, w->zbuf, k);
            w->stats.bytes_io += k;
            left -= k;
        }
    }
    if (rc == FC_OK) {
        w->pos += len;
        w->stats.zero_bytes += len;
    }
    return rc;
}

static fc_rc
w_end(struct fc_sink *s, uint64_t size, const uint8_t *sha256)
{
    struct fc_stream_writer *w = (struct fc_stream_writer *)s;
    if (w->size != FC_SIZE_UNKNOWN && w->pos != w->size)
        return FC_ERR(FC_E_INTERNAL, "stream: end at %llu of %llu bytes",
                      (unsigned long long)w->pos, (unsigned long long)w->size);
    (void)size;
    if (w->framed) {
        static const uint8_t nodigest[32];
        return w_frame(w, FC_FRAME_END, sha256 ? 1 : 0, w->pos, 32, sha256 ? sha256 : nodigest,
                       sha256 ? 32 : 0);
    }
    if (w->seekable && ftruncate(w->fd, (off_t)w->pos) != 0)
        return FC_ERRNO(FC_E_IO, "stream: set the output's size");
    return FC_OK;
}

void
fc_stream_writer_init(struct fc_stream_writer *w, int fd, bool framed)
{
    memset(w, 0, sizeof *w);
    w->sink.begin = w_begin;
    w->sink.write = w_write;
    w->sink.zero = w_zero;
    w->sink.end = w_end;
    w->fd = fd;
    w->framed = framed;
    w->size = FC_SIZE_UNKNOWN;
    struct stat st;
    w->seekable = !framed && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                  lseek(fd, 0, SEEK_CUR) >= 0;
}

void
fc_stream_writer_fini(struct fc_stream_writer *w)
{
    free(w->zbuf);
    w->zbuf = NULL;
}

void
fc_stream_writer_abort(struct fc_stream_writer *w, fc_rc rc, const char *msg)
{
    if (!w->framed)
        return;
    size_t len = msg ? strnlen(msg, FC_STREAM_MAX_ABORT) : 0;
    w_frame(w, FC_FRAME_ABORT, (uint32_t)rc, 0, len, msg, len);
}
