/* SPDX-License-Identifier: Apache-2.0 */
/* Reading the data stream: frames (checked one by one: type, order, bounds, digest) or plain
 * bytes (zero blocks detected, holes of regular files skipped with SEEK_DATA). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "fluid/stream.h"

struct rd {
    int fd;
    struct fc_sink *sink;
    const struct fc_stream_reader_opts *o;
    struct fc_stream_stats *st;
    struct fc_sha256 sha;
    bool hashing;
    uint64_t size, pos, next_progress;
};

static fc_rc
check_cancel(struct rd *r)
{
    if (r->o->cancel && *r->o->cancel)
        return FC_ERR(FC_E_CANCELLED, "stream: cancelled at offset %llu",
                      (unsigned long long)r->pos);
    return FC_OK;
}

static void
progress(struct rd *r, bool force)
{
    if (!r->o->progress || !r->o->progress_every)
        return;
    if (force || r->pos >= r->next_progress) {
        r->o->progress(r->o->progress_arg, r->st, r->size);
        r->next_progress = r->pos + r->o->progress_every;
    }
}

/* Reads exactly len bytes; a short read is a truncated stream. */
static fc_rc
need(struct rd *r, void *buf, size_t len, const char *what)
{
    size_t got;
    fc_rc rc = fc_read_full(r->fd, buf, len, &got);
    if (rc != FC_OK)
        return rc;
    r->st->bytes_io += got;
    if (got != len)
        return FC_ERR(FC_E_IO,
                      "stream: truncated in %s at byte %llu of the stream (content offset %llu "
                      "of %llu): the producer stopped without an END frame",
                      what, (unsigned long long)r->st->bytes_io, (unsigned long long)r->pos,
                      (unsigned long long)r->size);
    return FC_OK;
}

static fc_rc
parse_meta(const char *buf, size_t len, struct fc_stream_info *info)
{
    json_error_t je;
    json_auto_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!o || !json_is_object(o))
        return FC_ERR(FC_E_INVALID, "stream: BEGIN metadata is not a JSON object: %s", je.text);
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (strcmp(k, "format") != 0)
            return FC_ERR(FC_E_INVALID, "stream: BEGIN metadata: unknown field \"%.64s\"", k);
        if (!json_is_string(v) || json_string_length(v) >= sizeof info->format ||
            json_string_length(v) == 0)
            return FC_ERR(FC_E_INVALID, "stream: BEGIN metadata: format must be a short string");
        strcpy(info->format, json_string_value(v));
    }
    return FC_OK;
}

static fc_rc
read_framed(struct rd *r)
{
    uint8_t hdr[FC_STREAM_HDR_LEN];
    struct fc_frame f;
    FC_AUTOFREE uint8_t *buf = NULL;
    bool begun = false;
    fc_rc rc;

    for (;;) {
        if ((rc = check_cancel(r)) != FC_OK)
            return rc;
        uint64_t at = r->st->bytes_io;
        if ((rc = need(r, hdr, sizeof hdr, "a frame header")) != FC_OK)
            return rc;
        fc_frame_decode(hdr, &f);
        if (!begun && f.type != FC_FRAME_BEGIN && f.type != FC_FRAME_ABORT)
            return FC_ERR(FC_E_INVALID, "stream: frame at byte %llu: type %u before BEGIN",
                          (unsigned long long)at, f.type);
        switch (f.type) {
        case FC_FRAME_BEGIN: {
            if (begun)
                return FC_ERR(FC_E_INVALID, "stream: frame at byte %llu: second BEGIN",
                              (unsigned long long)at);
            if (f.aux > FC_STREAM_MAX_META || f.offset != 0 || f.length == FC_SIZE_UNKNOWN)
                return FC_ERR(FC_E_INVALID,
                              "stream: BEGIN at byte %llu: bad fields (metadata %u bytes, max %u)",
                              (unsigned long long)at, f.aux, FC_STREAM_MAX_META);
            struct fc_stream_info info = {.size = f.length};
            if (f.aux) {
                FC_AUTOFREE char *meta = malloc(f.aux);
                if (!meta)
                    return FC_ERR(FC_E_NOMEM, "stream: out of memory");
                if ((rc = need(r, meta, f.aux, "BEGIN metadata")) != FC_OK)
                    return rc;
                if ((rc = parse_meta(meta, f.aux, &info)) != FC_OK)
                    return rc;
            }
            begun = true;
            r->size = f.length;
            if ((rc = r->sink->begin(r->sink, &info)) != FC_OK)
                return rc;
            break;
        }
        case FC_FRAME_DATA:
        case FC_FRAME_ZERO: {
            const char *name = f.type == FC_FRAME_DATA ? "DATA" : "ZERO";
            if (f.offset != r->pos)
                return FC_ERR(FC_E_INVALID,
                              "stream: %s at byte %llu: offset %llu, expected %llu", name,
                              (unsigned long long)at, (unsigned long long)f.offset,
                              (unsigned long long)r->pos);
            if (f.length == 0 || f.length > r->size - r->pos)
                return FC_ERR(FC_E_INVALID,
                              "stream: %s at byte %llu: length %llu at offset %llu passes the "
                              "virtual size %llu",
                              name, (unsigned long long)at, (unsigned long long)f.length,
                              (unsigned long long)f.offset, (unsigned long long)r->size);
            if (f.aux != 0)
                return FC_ERR(FC_E_INVALID, "stream: %s at byte %llu: aux must be 0", name,
                              (unsigned long long)at);
            if (f.type == FC_FRAME_DATA) {
                if (f.length > FC_STREAM_MAX_DATA)
                    return FC_ERR(FC_E_INVALID,
                                  "stream: DATA at byte %llu: length %llu over the %u limit",
                                  (unsigned long long)at, (unsigned long long)f.length,
                                  FC_STREAM_MAX_DATA);
                if (!buf && !(buf = malloc(FC_STREAM_MAX_DATA)))
                    return FC_ERR(FC_E_NOMEM, "stream: out of memory");
                if ((rc = need(r, buf, (size_t)f.length, "DATA payload")) != FC_OK)
                    return rc;
                if (r->hashing)
                    fc_sha256_update(&r->sha, buf, (size_t)f.length);
                rc = r->sink->write(r->sink, f.offset, buf, (size_t)f.length);
                r->st->data_bytes += f.length;
            } else {
                if (r->hashing)
                    fc_sha256_update_zeros(&r->sha, f.length);
                rc = r->sink->zero(r->sink, f.offset, f.length);
                r->st->zero_bytes += f.length;
            }
            if (rc != FC_OK)
                return rc;
            r->pos += f.length;
            progress(r, false);
            break;
        }
        case FC_FRAME_END: {
            if (f.offset != r->pos || r->pos != r->size)
                return FC_ERR(FC_E_INVALID,
                              "stream: END at byte %llu: content ends at %llu of %llu bytes",
                              (unsigned long long)at, (unsigned long long)r->pos,
                              (unsigned long long)r->size);
            if (f.length != 32 || f.aux > 1)
                return FC_ERR(FC_E_INVALID, "stream: END at byte %llu: bad fields",
                              (unsigned long long)at);
            uint8_t digest[32], mine[32];
            if (f.aux == 1 && (rc = need(r, digest, 32, "END digest")) != FC_OK)
                return rc;
            const uint8_t *pass = f.aux == 1 ? digest : NULL;
            if (r->hashing) {
                fc_sha256_final(&r->sha, mine);
                if (f.aux == 1 && memcmp(mine, digest, 32) != 0) {
                    char a[65], b[65];
                    fc_hex(digest, 32, a);
                    fc_hex(mine, 32, b);
                    return FC_ERR(FC_E_CHECKSUM,
                                  "stream: SHA-256 mismatch: the producer sent %s, the data "
                                  "received hashes to %s",
                                  a, b);
                }
                pass = mine;
            }
            uint8_t extra;
            size_t got;
            if ((rc = fc_read_full(r->fd, &extra, 1, &got)) != FC_OK)
                return rc;
            if (got != 0)
                return FC_ERR(FC_E_INVALID, "stream: data after the END frame at byte %llu",
                              (unsigned long long)r->st->bytes_io);
            progress(r, true);
            return r->sink->end(r->sink, r->size, pass);
        }
        case FC_FRAME_ABORT: {
            char msg[FC_STREAM_MAX_ABORT + 1] = "";
            if (f.length > FC_STREAM_MAX_ABORT)
                return FC_ERR(FC_E_INVALID, "stream: ABORT at byte %llu: message too long",
                              (unsigned long long)at);
            if ((rc = need(r, msg, (size_t)f.length, "ABORT message")) != FC_OK)
                return rc;
            msg[f.length] = '\0';
            for (char *c = msg; *c; c++)
                if ((unsigned char)*c < 0x20)
                    *c = ' ';
            fc_rc up = f.aux > 0 && f.aux < FC_RC__COUNT ? (fc_rc)f.aux : FC_E_CHILD;
            return FC_ERR(up, "upstream stage failed: %s", msg);
        }
        default:
            return FC_ERR(FC_E_INVALID, "stream: frame at byte %llu: unknown type %u",
                          (unsigned long long)at, f.type);
        }
    }
}

/* Hands buf[0..len) at r->pos to the sink as runs of data and zeros (zero_block granules). */
static fc_rc
emit_plain(struct rd *r, const uint8_t *buf, size_t len, size_t zb)
{
    size_t i = 0;
    fc_rc rc;
    if (r->hashing)
        fc_sha256_update(&r->sha, buf, len);
    while (i < len) {
        size_t k = len - i < zb ? len - i : zb;
        bool z = fc_is_zero(buf + i, k);
        size_t j = i + k;
        while (j < len) {
            size_t kk = len - j < zb ? len - j : zb;
            if (fc_is_zero(buf + j, kk) != z)
                break;
            j += kk;
        }
        if (z) {
            rc = r->sink->zero(r->sink, r->pos, j - i);
            r->st->zero_bytes += j - i;
        } else {
            rc = r->sink->write(r->sink, r->pos, buf + i, j - i);
            r->st->data_bytes += j - i;
        }
        if (rc != FC_OK)
            return rc;
        r->pos += j - i;
        i = j;
    }
    progress(r, false);
    return FC_OK;
}

static fc_rc
read_plain(struct rd *r, const uint8_t *head, size_t headlen)
{
    struct stat st;
    struct fc_stream_info info = {.size = FC_SIZE_UNKNOWN, .format = "raw"};
    bool regular = false;
    if (fstat(r->fd, &st) == 0) {
        if (S_ISREG(st.st_mode) && lseek(r->fd, 0, SEEK_CUR) == (off_t)headlen) {
            info.size = (uint64_t)st.st_size;
            regular = true;
        } else if (S_ISBLK(st.st_mode)) {
            uint64_t sz;
            if (ioctl(r->fd, BLKGETSIZE64, &sz) == 0)
                info.size = sz;
        }
    }
    r->size = info.size;
    fc_rc rc = r->sink->begin(r->sink, &info);
    if (rc != FC_OK)
        return rc;
    size_t zb = r->o->zero_block ? r->o->zero_block : 65536;
    size_t bs = r->o->buf_size ? r->o->buf_size : (1u << 20);
    if (bs < zb)
        bs = zb;
    FC_AUTOFREE uint8_t *buf = malloc(bs);
    if (!buf)
        return FC_ERR(FC_E_NOMEM, "stream: out of memory");
    memcpy(buf, head, headlen);
    size_t fill = headlen;
    bool eof = false;
    while (!eof) {
        if ((rc = check_cancel(r)) != FC_OK)
            return rc;
        if (regular && fill == 0) {
            /* Skip a hole in one call, as qemu-img does. */
            off_t d = lseek(r->fd, (off_t)r->pos, SEEK_DATA);
            if (d < 0 && errno == ENXIO)
                d = (off_t)r->size;
            if (d > (off_t)r->pos) {
                uint64_t hole = (uint64_t)d - r->pos;
                if (r->hashing)
                    fc_sha256_update_zeros(&r->sha, hole);
                if ((rc = r->sink->zero(r->sink, r->pos, hole)) != FC_OK)
                    return rc;
                r->st->zero_bytes += hole;
                r->pos += hole;
                if (lseek(r->fd, d, SEEK_SET) < 0)
                    return FC_ERRNO(FC_E_IO, "stream: seek");
                progress(r, false);
            }
        }
        size_t got;
        if ((rc = fc_read_full(r->fd, buf + fill, bs - fill, &got)) != FC_OK)
            return rc;
        r->st->bytes_io += got;
        fill += got;
        eof = fill < bs;
        if (fill && (rc = emit_plain(r, buf, fill, zb)) != FC_OK)
            return rc;
        fill = 0;
    }
    if (r->size != FC_SIZE_UNKNOWN && r->pos != r->size)
        return FC_ERR(FC_E_IO, "stream: input changed size while read: %llu of %llu bytes",
                      (unsigned long long)r->pos, (unsigned long long)r->size);
    uint8_t digest[32];
    if (r->hashing)
        fc_sha256_final(&r->sha, digest);
    progress(r, true);
    return r->sink->end(r->sink, r->pos, r->hashing ? digest : NULL);
}

fc_rc
fc_stream_read(int fd, struct fc_sink *sink, const struct fc_stream_reader_opts *o,
               struct fc_stream_stats *st)
{
    static const struct fc_stream_reader_opts dflt = {.verify = true, .hash_plain = true};
    struct fc_stream_stats local = {0};
    struct rd r = {.fd = fd, .sink = sink, .o = o ? o : &dflt, .st = st ? st : &local};
    memset(r.st, 0, sizeof *r.st);
    uint8_t head[FC_STREAM_MAGIC_LEN];
    size_t got;
    fc_rc rc = fc_read_full(fd, head, sizeof head, &got);
    if (rc != FC_OK)
        return rc;
    r.st->bytes_io = got;
    bool framed = got == sizeof head && memcmp(head, FC_STREAM_MAGIC, sizeof head) == 0;
    r.hashing = framed ? r.o->verify : r.o->hash_plain;
    if (r.hashing && (rc = fc_sha256_init(&r.sha)) != FC_OK)
        return rc;
    rc = framed ? read_framed(&r) : read_plain(&r, head, got);
    fc_sha256_free(&r.sha);
    return rc;
}
