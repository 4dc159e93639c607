/* SPDX-License-Identifier: Apache-2.0 */
/* `fluid-volume serve`: the receiving helper, started over an SSH exec channel. It speaks
 * the helper protocol (volume.h, docs/volume.md) on stdin/stdout: OPEN a destination (the
 * path travels in the JSON, never on a command line), chunk hashes of what is already there,
 * DATA / ZDATA (zstd) / ZERO writes, FINISH = size, fsync, the chunk-tree digest of the file
 * (tree_digest in volume.h), compare, rename <path>.fluid-part over <path>, and the hash
 * record of what was verified (record.c). Any failure is answered with ERR. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <libgen.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/sha256.h"
#include "volume.h"

#define RBUF (4u << 20)
#define WRITEBACK_EVERY (32u << 20)
#define MAX_OFF (1ull << 60)

struct srv {
    uint8_t *rbuf;
    size_t rpos, rlen;
    int fd;
    int dfd;             /* a fresh file opened again with O_DIRECT (-1: none) */
    char *path, *part;
    bool device, fresh, sparse, attach;
    bool write_record;   /* a verified commit leaves the hash record (record.c) */
    /* Chunk hashes of the file as it stands, so that FINISH reads only what it must:
     * known[i] says hash[i] is the SHA-256 of the whole 1 MiB chunk i as it is now in the
     * file: from the base hashes sent at OPEN (when this is the only stream: another
     * stream's writes would not be seen here) or from a DATA/ZDATA/ZERO that covered the
     * whole chunk (hashed from the bytes written). Any other write to a chunk clears it;
     * FINISH reads and hashes the chunks not known (holes without reading them). */
    bool single;
    uint8_t *hash, *known;
    uint64_t nhash;      /* capacity of hash / known, in chunks */
    struct wq *wq;       /* the writes, on their own thread (wq.c), in order */
    uint8_t *zbuf;
    ZSTD_DCtx *dx;
    uint64_t unsynced;   /* bytes written since writeback was last started */
};

/* One read(2) of the client's bytes (stdin) into buf; EINTR retried; EOF is an error. */
static fc_rc
rd_some(void *buf, size_t cap, size_t *got)
{
    for (;;) {
        ssize_t n = read(0, buf, cap);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return FC_ERRNO(FC_E_NET, "serve: reading the client");
        if (n == 0)
            return FC_ERR(FC_E_NET, "serve: the client went away");
        *got = (size_t)n;
        return FC_OK;
    }
}

static fc_rc
rd(struct srv *s, void *out, size_t len)
{
    uint8_t *o = out;
    while (len) {
        size_t n = 0;
        fc_rc rc;
        if (s->rpos == s->rlen && len >= VOL_BLOCK) { /* big payload: no copy through rbuf */
            if ((rc = rd_some(o, len, &n)) != FC_OK)
                return rc;
            o += n;
            len -= n;
            continue;
        }
        if (s->rpos == s->rlen) {
            if ((rc = rd_some(s->rbuf, RBUF, &n)) != FC_OK)
                return rc;
            s->rpos = 0;
            s->rlen = n;
        }
        size_t k = s->rlen - s->rpos < len ? s->rlen - s->rpos : len;
        memcpy(o, s->rbuf + s->rpos, k);
        s->rpos += k;
        o += k;
        len -= k;
    }
    return FC_OK;
}

static fc_rc
reply(uint32_t type, uint32_t aux, uint64_t off, const void *buf, size_t len)
{
    uint8_t h[24];
    put_hdr(h, type, aux, off, len);
    fc_rc rc = fc_write_all(1, h, sizeof h);
    if (rc == FC_OK && len)
        rc = fc_write_all(1, buf, len);
    return rc;
}

static fc_rc
reply_json(json_t *o)
{
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!txt)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    fc_rc rc = reply(VM_OK, 0, 0, txt, strlen(txt));
    free(txt);
    return rc;
}

/* While hashing: a PROGRESS message every 2 s so that the client knows we are alive. */
static void
tick(uint64_t done)
{
    static struct timespec last;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - last.tv_sec < 2)
        return;
    last = now;
    reply(VM_PROGRESS, 0, done, NULL, 0);
}

/* All of buf at off through fd (EINTR retried); *done says how far it got. 0, or -1 with
 * errno. */
static int
pwrite_whole(int fd, const uint8_t *buf, size_t len, uint64_t off, size_t *done)
{
    *done = 0;
    while (*done < len) {
        ssize_t n = pwrite(fd, buf + *done, len - *done, (off_t)(off + *done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        *done += (size_t)n;
    }
    return 0;
}

static fc_rc
wr(struct srv *s, const void *buf, size_t len, uint64_t off)
{
    size_t done;
    /* Aligned runs into a fresh file go around the page cache: the copy into it is the
     * helper's largest cost on a dense volume, and nothing here reads them back soon. A
     * filesystem that refuses the first direct write gets the rest buffered. */
    if (s->dfd >= 0 && off % 4096 == 0 && len % 4096 == 0 && (uintptr_t)buf % 4096 == 0) {
        if (pwrite_whole(s->dfd, buf, len, off, &done) == 0)
            return FC_OK;
        if (errno != EINVAL || done)
            return FC_ERRNO(errno == ENOSPC || errno == EDQUOT ? FC_E_NOSPACE : FC_E_IO,
                            "write %s at offset %" PRIu64, s->part, off + done);
        close(s->dfd);
        s->dfd = -1;
    }
    if (pwrite_whole(s->fd, buf, len, off, &done) != 0)
        return FC_ERRNO(errno == ENOSPC || errno == EDQUOT ? FC_E_NOSPACE : FC_E_IO,
                        "write %s at offset %" PRIu64, s->part ? s->part : s->path,
                        off + done);
    s->unsynced += len;
    /* Start writeback as we go (without waiting for it), so that the fsync before FINISH
     * answers has little left to write instead of the whole volume. */
    if (s->unsynced >= WRITEBACK_EVERY) {
        s->unsynced = 0;
        (void)sync_file_range(s->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    }
    return FC_OK;
}

static fc_rc
zero_range(struct srv *s, uint64_t off, uint64_t len)
{
    if (!s->device && s->sparse &&
        fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
        return FC_OK;
    static const uint8_t zeros[VOL_BLOCK];
    while (len) {
        size_t n = len < sizeof zeros ? (size_t)len : sizeof zeros;
        fc_rc rc = wr(s, zeros, n, off);
        if (rc != FC_OK)
            return rc;
        off += n;
        len -= n;
    }
    return FC_OK;
}

/* Before a write of [off, off+len): the chunks it touches are no longer known, except one
 * it covers whole, whose hash is then that of buf (NULL: zeros). On the main thread. */
static fc_rc
track(struct srv *s, uint64_t off, uint64_t len, const uint8_t *buf)
{
    if (s->attach || len == 0)
        return FC_OK; /* an extra stream: stream 0's helper reads what this one wrote */
    uint64_t first = off / VOL_CHUNK, last = (off + len - 1) / VOL_CHUNK;
    if (last >= s->nhash) {
        uint64_t n = last + 1 > 2 * s->nhash ? last + 1 + 1024 : 2 * s->nhash;
        uint8_t *h = realloc(s->hash, n * 32);
        if (h)
            s->hash = h;
        uint8_t *k = h ? realloc(s->known, n) : NULL;
        if (!k)
            return FC_ERR(FC_E_NOMEM, "out of memory");
        memset(k + s->nhash, 0, n - s->nhash);
        s->known = k;
        s->nhash = n;
    }
    for (uint64_t i = first; i <= last; i++)
        s->known[i] = 0;
    if (off % VOL_CHUNK == 0 && len == VOL_CHUNK) {
        if (buf)
            chunk_hash_buf(buf, len, s->hash + first * 32);
        else
            memcpy(s->hash + first * 32, zero_chunk_hash(), 32);
        s->known[first] = 1;
    }
    return FC_OK;
}

/* Writes a chunk's bytes; on a fresh sparse file, zero blocks stay holes. On the writer
 * thread. */
static fc_rc
put_data(struct srv *s, const uint8_t *buf, size_t len, uint64_t off)
{
    if (!(s->fresh && s->sparse))
        return wr(s, buf, len, off);
    for (size_t b = 0; b < len;) {
        size_t bl = len - b < VOL_BLOCK ? len - b : VOL_BLOCK;
        bool z = fc_is_zero(buf + b, bl);
        size_t e = b + bl;
        while (e < len) {
            size_t el = len - e < VOL_BLOCK ? len - e : VOL_BLOCK;
            if (fc_is_zero(buf + e, el) != z)
                break;
            e += el;
        }
        if (!z) {
            fc_rc rc = wr(s, buf + b, e - b, off + b);
            if (rc != FC_OK)
                return rc;
        }
        b = e;
    }
    return FC_OK;
}

enum { W_DATA, W_ZERO };

/* The write-behind thread's work (wq.c): the file's descriptors are its own until the
 * main thread has drained the queue. */
static fc_rc
apply(void *arg, int kind, const uint8_t *buf, uint64_t off, uint64_t len)
{
    struct srv *s = arg;
    return kind == W_DATA ? put_data(s, buf, (size_t)len, off) : zero_range(s, off, len);
}

/* Queues a write of [off, off+len): its chunk hashes are tracked here, on the main thread,
 * from buf (NULL: zeros) before the writer has it. */
static fc_rc
queue_write(struct srv *s, int kind, uint64_t off, uint64_t len, const uint8_t *buf)
{
    fc_rc rc = track(s, off, len, buf);
    if (rc == FC_OK)
        wq_push(s->wq, kind, off, len);
    return rc;
}

/* O_DIRECT writes are used unless FLUID_VOLUME_DIRECT=0 (the helper's environment). */
static bool
direct_ok(void)
{
    const char *v = getenv("FLUID_VOLUME_DIRECT");
    return !(v && !strcmp(v, "0"));
}

static fc_rc
do_open(struct srv *s, uint64_t len)
{
    if (len == 0 || len > 65536)
        return FC_ERR(FC_E_INVALID, "serve: OPEN of %" PRIu64 " bytes", len);
    FC_AUTOFREE char *txt = malloc(len + 1);
    if (!txt)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    fc_rc rc = rd(s, txt, len);
    if (rc != FC_OK)
        return rc;
    json_error_t je;
    json_auto_t *o = json_loadb(txt, len, JSON_REJECT_DUPLICATES, &je);
    const char *path = NULL, *mode = NULL;
    int hashes = 0, sparse = 1, inorder = 0, rehash = 0, write_record = 1;
    if (!o || json_unpack_ex(o, &je, JSON_STRICT, "{s:s,s:s,s?b,s?b,s?b,s?b,s?b}", "path",
                             &path, "mode", &mode, "hashes", &hashes, "sparse", &sparse,
                             "inorder", &inorder, "rehash", &rehash, "write_record",
                             &write_record) != 0)
        return FC_ERR(FC_E_INVALID, "serve: bad OPEN: %s", je.text);
    json_t *pv = json_object_get(o, "path");
    if (path[0] != '/' || strlen(path) != json_string_length(pv) || strlen(path) > 4000)
        return FC_ERR(FC_E_INVALID, "serve: OPEN path must be absolute, without NUL bytes");
    s->path = strdup(path);
    s->sparse = sparse;
    s->write_record = write_record;
    struct stat st;
    bool base = false;
    FC_AUTOFREE uint8_t *rec = NULL; /* chunk hashes from the hash record */
    uint64_t nrec = 0;
    const char *why = NULL;
    if (stat(path, &st) == 0 && S_ISBLK(st.st_mode)) {
        s->device = true;
        s->fd = open(path, O_RDWR | O_CLOEXEC);
        if (s->fd < 0)
            return FC_ERRNO(FC_E_IO, "destination device %s", path);
        base = true;
    } else {
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return FC_ERR(FC_E_INVALID, "destination %s is a directory", path);
        FC_AUTOFREE char *dcopy = strdup(path);
        const char *dir = dirname(dcopy);
        struct stat ds;
        if (stat(dir, &ds) != 0 || !S_ISDIR(ds.st_mode))
            return FC_ERR(FC_E_NOTFOUND, "destination directory %s does not exist", dir);
        s->part = part_name(path);
        if (!strcmp(mode, "attach")) {
            s->attach = true;
            s->fd = open(s->part, O_WRONLY | O_CLOEXEC);
            if (s->fd < 0)
                return FC_ERRNO(FC_E_IO, "destination %s", s->part);
            if (direct_ok())
                s->dfd = open(s->part, O_WRONLY | O_DIRECT | O_CLOEXEC);
            return reply_json(json_pack("{s:b}", "base", 0));
        }
        bool delta = !strcmp(mode, "delta"), resume = !strcmp(mode, "resume");
        if (!delta && !resume && strcmp(mode, "copy") != 0)
            return FC_ERR(FC_E_INVALID, "serve: OPEN mode \"%.20s\" unknown", mode);
        if ((delta || resume) && access(s->part, F_OK) == 0) {
            base = true;
            s->fd = open(s->part, O_RDWR | O_CLOEXEC);
        } else if (delta && access(path, F_OK) == 0) {
            /* the file's hash record is checked against the open file before the rename
             * (which changes its ctime); the descriptor follows the file to its new name */
            if ((s->fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
                return FC_ERRNO(FC_E_IO, "destination %s", path);
            if (hashes && !rehash)
                record_load(path, s->fd, &rec, &nrec, &why);
            if (rename(path, s->part) != 0)
                return FC_ERRNO(FC_E_IO, "rename %s to %s", path, s->part);
            record_drop(path);
            base = true;
        } else {
            s->fd = open(s->part, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        }
        if (s->fd < 0)
            return FC_ERRNO(errno == ENOSPC ? FC_E_NOSPACE : FC_E_IO, "destination %s",
                            s->part);
    }
    s->fresh = !base;
    if (s->fresh && !s->device && direct_ok())
        s->dfd = open(s->part, O_WRONLY | O_DIRECT | O_CLOEXEC); /* -1: not offered */
    s->single = inorder;
    uint64_t size = (uint64_t)lseek(s->fd, 0, SEEK_END);
    json_t *ok = json_pack("{s:b,s:b,s:I}", "base", base, "device", s->device, "size",
                           (json_int_t)(base ? size : 0));
    if (ok && why) /* "used", or why a record there was not */
        json_object_set_new(ok, "record", json_string(why));
    rc = reply_json(ok);
    if (rc != FC_OK || !hashes || !base)
        return rc;
    uint64_t n = 0;
    if (rec) {
        s->hash = rec;
        rec = NULL;
        n = nrec;
    } else if ((rc = hash_chunks_fd(s->fd, size, &s->hash, &n, NULL, tick)) != FC_OK) {
        return rc;
    }
    if (!(s->known = calloc(n ? n : 1, 1)))
        return FC_ERR(FC_E_NOMEM, "out of memory");
    s->nhash = n;
    /* whole chunks of the base stay known until written (one stream only) */
    for (uint64_t i = 0; s->single && i < n && (i + 1) * VOL_CHUNK <= size; i++)
        s->known[i] = 1;
    return reply(VM_HASHES, 0, 0, s->hash, n * 32);
}

static fc_rc
do_finish(struct srv *s, uint32_t flags, uint64_t size, uint64_t len)
{
    uint8_t want[32], got[32];
    if (len != 32)
        return FC_ERR(FC_E_INVALID, "serve: FINISH length %" PRIu64, len);
    fc_rc rc = rd(s, want, 32);
    if (rc != FC_OK)
        return rc;
    const char *name = s->part ? s->part : s->path;
    if (!s->device && ftruncate(s->fd, (off_t)size) != 0)
        return FC_ERRNO(errno == ENOSPC ? FC_E_NOSPACE : FC_E_IO, "set size of %s", name);
    if (fsync(s->fd) != 0)
        return FC_ERRNO(errno == ENOSPC ? FC_E_NOSPACE : FC_E_IO, "fsync %s", name);
    memset(got, 0, sizeof got);
    uint64_t n = (size + VOL_CHUNK - 1) / VOL_CHUNK;
    FC_AUTOFREE uint8_t *h = NULL;
    if (flags & VF_VERIFY) {
        h = malloc(n ? n * 32 : 1);
        FC_AUTOFREE uint8_t *k = calloc(n ? n : 1, 1);
        if (!h || !k)
            return FC_ERR(FC_E_NOMEM, "out of memory");
        /* known hashes of whole chunks that are still whole at this size */
        for (uint64_t i = 0; i < n && i < s->nhash; i++)
            if (s->known[i] && (i + 1) * VOL_CHUNK <= size) {
                memcpy(h + i * 32, s->hash + i * 32, 32);
                k[i] = 1;
            }
        if ((rc = hash_chunks_known(s->fd, size, h, k, NULL, tick)) != FC_OK)
            return rc;
        tree_digest(h, n, got);
        if (memcmp(got, want, 32) != 0)
            return FC_ERR(FC_E_CHECKSUM, "destination %s: SHA-256 differs from the source's",
                          name);
    }
    if ((flags & VF_COMMIT) && s->part) {
        if (rename(s->part, s->path) != 0)
            return FC_ERRNO(FC_E_IO, "rename %s to %s", s->part, s->path);
        /* What was just verified is recorded for the next --delta (after the rename, which
         * sets the ctime the record holds). Without a verification there is nothing to
         * record, and an older record would describe another file: it goes. A record that
         * cannot be written only costs the next --delta a read of the file. */
        if (!h || !s->write_record || record_save(s->path, s->fd, h, n) != FC_OK) {
            fc_error_clear();
            record_drop(s->path);
        }
        FC_AUTOFREE char *dcopy = strdup(s->path);
        int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return reply(VM_DONE, 0, size, got, 32);
}

static fc_rc
loop(struct srv *s)
{
    fc_rc rc = reply(VM_OK, 0, 0, NULL, 0);
    if (rc != FC_OK)
        return rc;
    char magic[8];
    if ((rc = rd(s, magic, 8)) != FC_OK)
        return rc;
    if (memcmp(magic, VOL_PROTO_MAGIC, 8) != 0)
        return FC_ERR(FC_E_UNSUPPORTED, "serve: the client speaks another protocol version");
    bool opened = false;
    for (;;) {
        uint8_t h[24], *buf;
        struct fc_frame f;
        if ((rc = rd(s, h, sizeof h)) != FC_OK)
            return rc;
        fc_frame_decode(h, &f);
        if (f.type != VM_OPEN && !opened)
            return FC_ERR(FC_E_INVALID, "serve: message %u before OPEN", f.type);
        if ((f.type == VM_DATA || f.type == VM_ZDATA || f.type == VM_ZERO) &&
            (f.offset > MAX_OFF || f.length > MAX_OFF))
            return FC_ERR(FC_E_INVALID, "serve: offset out of range");
        switch (f.type) {
        case VM_OPEN:
            if (opened)
                return FC_ERR(FC_E_INVALID, "serve: second OPEN");
            if ((rc = do_open(s, f.length)) != FC_OK ||
                (rc = wq_start(&s->wq, 4, apply, s)) != FC_OK)
                return rc;
            opened = true;
            break;
        case VM_DATA:
            if (f.length == 0 || f.length > VOL_CHUNK)
                return FC_ERR(FC_E_INVALID, "serve: DATA of %" PRIu64 " bytes", f.length);
            if ((rc = wq_next(s->wq, &buf)) != FC_OK || (rc = rd(s, buf, f.length)) != FC_OK ||
                (rc = queue_write(s, W_DATA, f.offset, f.length, buf)) != FC_OK)
                return rc;
            break;
        case VM_ZDATA: {
            if (f.aux == 0 || f.aux > VOL_CHUNK || f.length == 0 ||
                f.length > ZSTD_compressBound(VOL_CHUNK))
                return FC_ERR(FC_E_INVALID, "serve: ZDATA sizes %u/%" PRIu64, f.aux, f.length);
            if ((rc = rd(s, s->zbuf, f.length)) != FC_OK || (rc = wq_next(s->wq, &buf)) != FC_OK)
                return rc;
            size_t n = ZSTD_decompressDCtx(s->dx, buf, VOL_CHUNK, s->zbuf, f.length);
            if (ZSTD_isError(n) || n != f.aux)
                return FC_ERR(FC_E_INVALID, "serve: ZDATA at %" PRIu64 " does not decompress",
                              f.offset);
            if ((rc = queue_write(s, W_DATA, f.offset, n, buf)) != FC_OK)
                return rc;
            break;
        }
        case VM_ZERO:
            if (f.length == 0 || f.length > VOL_CHUNK)
                return FC_ERR(FC_E_INVALID, "serve: ZERO of %" PRIu64 " bytes", f.length);
            if ((rc = wq_next(s->wq, &buf)) != FC_OK || /* a slot; its buffer is not used */
                (rc = queue_write(s, W_ZERO, f.offset, f.length, NULL)) != FC_OK)
                return rc;
            break;
        case VM_SYNC:
            if ((rc = wq_drain(s->wq)) != FC_OK)
                return rc;
            if (fsync(s->fd) != 0)
                return FC_ERRNO(errno == ENOSPC ? FC_E_NOSPACE : FC_E_IO, "fsync %s", s->part);
            if ((rc = reply(VM_OK, 0, 0, NULL, 0)) != FC_OK)
                return rc;
            break;
        case VM_FINISH:
            if (f.offset > MAX_OFF)
                return FC_ERR(FC_E_INVALID, "serve: FINISH size out of range");
            if ((rc = wq_drain(s->wq)) != FC_OK)
                return rc;
            return do_finish(s, f.aux, f.offset, f.length);
        default:
            return FC_ERR(FC_E_INVALID, "serve: unknown message type %u", f.type);
        }
    }
}

fc_rc
vol_serve(void)
{
    struct srv s = {.fd = -1, .dfd = -1};
    s.rbuf = malloc(RBUF);
    s.zbuf = malloc(ZSTD_compressBound(VOL_CHUNK));
    s.dx = ZSTD_createDCtx();
    fc_rc rc;
    if (!s.rbuf || !s.zbuf || !s.dx) {
        rc = FC_ERR(FC_E_NOMEM, "out of memory");
    } else {
        /* sshd feeds stdin through a pipe: a larger one means fewer wake-ups on both
         * sides (best effort: a socket or a limit just keeps the default) */
        (void)fcntl(0, F_SETPIPE_SZ, (int)VOL_CHUNK);
        if (write(1, VOL_PROTO_MAGIC, 8) != 8)
            rc = FC_ERRNO(FC_E_NET, "serve: writing to the client");
        else
            rc = loop(&s);
    }
    if (rc != FC_OK) {
        const char *msg = fc_error_msg();
        reply(VM_ERR, (uint32_t)rc, 0, msg, strlen(msg));
        /* Close stdout (the client sees EOF after the ERR) and swallow what the client
         * still sends until it hangs up: exiting with unread input can leave sshd holding
         * the channel open. */
        close(1);
        if (s.rbuf)
            while (read(0, s.rbuf, RBUF) > 0)
                ;
    }
    wq_free(s.wq); /* the queued writes end before their descriptors close */
    if (s.fd >= 0)
        close(s.fd);
    if (s.dfd >= 0)
        close(s.dfd);
    free(s.hash);
    free(s.known);
    free(s.path);
    free(s.part);
    free(s.rbuf);
    free(s.zbuf);
    ZSTD_freeDCtx(s.dx);
    return rc;
}
