/* SPDX-License-Identifier: Apache-2.0 */
/* Local destinations: a regular file (written as <path>.fluid-part, verified by reading it
 * back, then renamed), a block device (written in place), or a stream on stdout. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "volume.h"

struct local {
    int fd;
    bool device;
    char *part;
};

static fc_rc
pwrite_all(int fd, const void *buf, size_t len, uint64_t off, const char *name)
{
    const char *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return FC_ERRNO(errno == ENOSPC || errno == EDQUOT ? FC_E_NOSPACE : FC_E_IO,
                            "write %s at offset %" PRIu64, name, off);
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return FC_OK;
}

static fc_rc
l_open(struct job *j)
{
    const char *path = j->dst.arg;
    struct local *l = calloc(1, sizeof *l);
    if (!l)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    l->fd = -1;
    j->dstate = l;
    struct stat st;
    fc_rc rc;
    if (stat(path, &st) == 0 && S_ISBLK(st.st_mode)) {
        l->device = true;
        l->fd = open(path, O_RDWR | O_CLOEXEC);
        if (l->fd < 0)
            return FC_ERRNO(FC_E_IO, "destination device %s", path);
        j->fresh = false;
        if (j->delta || j->resume) {
            uint64_t size = (uint64_t)lseek(l->fd, 0, SEEK_END);
            return hash_chunks_fd(l->fd, size, &j->base_hash, &j->base_chunks,
                                  &fc_cancel_requested, NULL);
        }
        return FC_OK;
    }
    FC_AUTOFREE char *dcopy = strdup(path);
    const char *dir = dcopy ? dirname(dcopy) : ".";
    struct stat ds;
    if (stat(dir, &ds) != 0 || !S_ISDIR(ds.st_mode))
        return FC_ERR(FC_E_NOTFOUND, "destination directory %s does not exist", dir);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return FC_ERR(FC_E_INVALID, "destination %s is a directory", path);
    l->part = part_name(path);
    if (!l->part)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    bool base = false;
    const char *why = NULL;
    if ((j->delta || j->resume) && access(l->part, F_OK) == 0) {
        base = true;
        l->fd = open(l->part, O_RDWR | O_CLOEXEC);
    } else if (j->delta && access(path, F_OK) == 0) {
        /* the hash record is checked before the rename, which changes the ctime */
        if ((l->fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
            return FC_ERRNO(FC_E_IO, "destination %s", path);
        if (!j->rehash)
            record_load(path, l->fd, &j->base_hash, &j->base_chunks, &why);
        if (rename(path, l->part) != 0)
            return FC_ERRNO(FC_E_IO, "rename %s to %s", path, l->part);
        record_drop(path);
        base = true;
    }
    if (base) {
        if (l->fd < 0)
            return FC_ERRNO(FC_E_IO, "destination %s", l->part);
        j->fresh = false;
        if (why)
            snprintf(j->hash_record, sizeof j->hash_record, "%s", why);
        if (j->base_hash)
            return FC_OK;
        struct stat ps;
        fstat(l->fd, &ps);
        return hash_chunks_fd(l->fd, (uint64_t)ps.st_size, &j->base_hash, &j->base_chunks,
                              &fc_cancel_requested, NULL);
    }
    l->fd = open(l->part, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (l->fd < 0)
        return FC_ERRNO(errno == ENOENT ? FC_E_NOTFOUND : FC_E_IO, "destination %s", l->part);
    (void)rc;
    return FC_OK;
}

static fc_rc
l_attach(struct job *j, int stream)
{
    return FC_OK; /* the one descriptor serves every stream (pwrite) */
}

static fc_rc
l_zero(struct local *l, struct job *j, uint64_t off, uint64_t len)
{
    if (!l->device && j->sparse &&
        fallocate(l->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
        return FC_OK;
    static const uint8_t zeros[VOL_BLOCK];
    while (len) {
        size_t n = len < sizeof zeros ? (size_t)len : sizeof zeros;
        fc_rc rc = pwrite_all(l->fd, zeros, n, off, l->part ? l->part : j->dst.arg);
        if (rc != FC_OK)
            return rc;
        off += n;
        len -= n;
    }
    return FC_OK;
}

static fc_rc
l_put(struct job *j, int stream, struct chunk *c)
{
    struct local *l = j->dstate;
    const char *name = l->part ? l->part : j->dst.arg;
    if (c->zero)
        return l_zero(l, j, c->off, c->len);
    if (c->rewrite && !j->sparse)
        return pwrite_all(l->fd, c->data, c->len, c->off, name);
    /* runs of data blocks; zero blocks become holes (or zeros over old data) */
    unsigned nb = (c->len + VOL_BLOCK - 1) / VOL_BLOCK;
    for (unsigned b = 0; b < nb;) {
        bool z = c->zmask & (1u << b);
        unsigned e = b;
        while (e < nb && (bool)(c->zmask & (1u << e)) == z)
            e++;
        uint64_t off = (uint64_t)b * VOL_BLOCK;
        uint64_t end = (uint64_t)e * VOL_BLOCK < c->len ? (uint64_t)e * VOL_BLOCK : c->len;
        fc_rc rc = FC_OK;
        if (!z)
            rc = pwrite_all(l->fd, c->data + off, (size_t)(end - off), c->off + off, name);
        else if (c->rewrite)
            rc = l_zero(l, j, c->off + off, end - off);
        if (rc != FC_OK)
            return rc;
        b = e;
    }
    return FC_OK;
}

static fc_rc
l_finish(struct job *j, uint64_t size, const uint8_t *sha, uint8_t dsha[32])
{
    struct local *l = j->dstate;
    const char *name = l->part ? l->part : j->dst.arg;
    if (!l->device && ftruncate(l->fd, (off_t)size) != 0)
        return FC_ERRNO(errno == ENOSPC ? FC_E_NOSPACE : FC_E_IO, "set size of %s", name);
    if (fsync(l->fd) != 0)
        return FC_ERRNO(errno == ENOSPC ? FC_E_NOSPACE : FC_E_IO, "fsync %s", name);
    FC_AUTOFREE uint8_t *h = NULL;
    uint64_t n = 0;
    if (j->verify) {
        fc_rc rc = hash_chunks_fd(l->fd, size, &h, &n, &fc_cancel_requested, NULL);
        if (rc != FC_OK)
            return rc;
        tree_digest(h, n, dsha);
        if (memcmp(dsha, sha, 32) != 0)
            return FC_ERR(FC_E_CHECKSUM, "destination %s: SHA-256 differs from the source's",
                          name);
    }
    if (l->part) {
        if (rename(l->part, j->dst.arg) != 0)
            return FC_ERRNO(FC_E_IO, "rename %s to %s", l->part, j->dst.arg);
        /* the verified chunk hashes, for the next --delta (serve.c does the same) */
        if (!h || j->no_record || record_save(j->dst.arg, l->fd, h, n) != FC_OK) {
            fc_error_clear();
            record_drop(j->dst.arg);
        }
        FC_AUTOFREE char *dcopy = strdup(j->dst.arg);
        int dfd = dcopy ? open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return FC_OK;
}

static void
l_close(struct job *j, bool ok)
{
    struct local *l = j->dstate;
    if (!l)
        return;
    if (l->fd >= 0)
        close(l->fd);
    free(l->part);
    free(l);
    j->dstate = NULL;
}

const struct dest_ops dest_local_ops = {"local", l_open, l_attach, l_put, NULL, l_finish,
                                        l_close, NULL, NULL};

/* ---- stdout ---- */
struct sout {
    struct fc_stream_writer w;
    bool begun;
};

static fc_rc
s_open(struct job *j)
{
    struct sout *o = calloc(1, sizeof *o);
    if (!o)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    fc_stream_writer_init(&o->w, 1, j->framed);
    j->dstate = o;
    return FC_OK;
}

static fc_rc
s_begin(struct job *j, struct sout *o)
{
    if (o->begun)
        return FC_OK;
    struct fc_stream_info info = {.size = j->size};
    snprintf(info.format, sizeof info.format, "raw");
    o->begun = true;
    return o->w.sink.begin(&o->w.sink, &info);
}

static fc_rc
s_put(struct job *j, int stream, struct chunk *c)
{
    struct sout *o = j->dstate;
    fc_rc rc = s_begin(j, o);
    if (rc != FC_OK)
        return rc;
    if (c->zero)
        return o->w.sink.zero(&o->w.sink, c->off, c->len);
    unsigned nb = (c->len + VOL_BLOCK - 1) / VOL_BLOCK;
    for (unsigned b = 0; b < nb;) {
        bool z = c->zmask & (1u << b);
        unsigned e = b;
        while (e < nb && (bool)(c->zmask & (1u << e)) == z)
            e++;
        uint64_t off = (uint64_t)b * VOL_BLOCK;
        uint64_t end = (uint64_t)e * VOL_BLOCK < c->len ? (uint64_t)e * VOL_BLOCK : c->len;
        rc = z ? o->w.sink.zero(&o->w.sink, c->off + off, end - off)
               : o->w.sink.write(&o->w.sink, c->off + off, c->data + off, (size_t)(end - off));
        if (rc != FC_OK)
            return rc;
        b = e;
    }
    atomic_store(&j->wire_bytes, o->w.stats.bytes_io);
    return FC_OK;
}

static fc_rc
s_finish(struct job *j, uint64_t size, const uint8_t *sha, uint8_t dsha[32])
{
    struct sout *o = j->dstate;
    fc_rc rc = s_begin(j, o);
    if (rc != FC_OK)
        return rc;
    rc = o->w.sink.end(&o->w.sink, size, sha);
    atomic_store(&j->wire_bytes, o->w.stats.bytes_io);
    return rc;
}

static void
s_close(struct job *j, bool ok)
{
    struct sout *o = j->dstate;
    if (!o)
        return;
    if (!ok && o->w.framed)
        fc_stream_writer_abort(&o->w, j->err_rc ? j->err_rc : FC_E_IO, j->err_msg);
    fc_stream_writer_fini(&o->w);
    free(o);
    j->dstate = NULL;
}

const struct dest_ops dest_stream_ops = {"stream", s_open, l_attach, s_put, NULL, s_finish,
                                         s_close, NULL, NULL};
