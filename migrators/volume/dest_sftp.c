/* SPDX-License-Identifier: Apache-2.0 */
/* The stock-OpenSSH destination: SFTP only. Writes <path>.fluid-part with large pipelined
 * writes (contiguous chunks are coalesced up to 8 MiB) and seeks over zero runs, so the file
 * stays sparse; verifies by reading back what it wrote (holes of the fresh file are zeros);
 * renames over the destination. --resume/--delta hash the existing file by reading it. */
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "fluid/sha256.h"
#include "volume.h"

#define STAGE_MAX (8u << 20)

struct sstream {
    struct fc_ssh *ssh;
    struct fc_sftp_file *f;
    uint8_t *stage;
    uint64_t stage_off;
    size_t stage_len;
    uint64_t wire_seen;
};

struct sftp {
    struct sstream st[VOL_MAX_STREAMS];
    char *part;
    bool device;
    pthread_mutex_t mu;
    uint8_t *written; /* bitmap of chunks that were written (data or zeros) */
    uint64_t written_cap;
    uint64_t base_size; /* of the base whose chunk hashes are j->base_hash */
};

static void
account(struct job *j, struct sstream *s)
{
    uint64_t sent;
    fc_ssh_socket_bytes(s->ssh, &sent, NULL);
    atomic_fetch_add(&j->wire_bytes, sent - s->wire_seen);
    s->wire_seen = sent;
}

static fc_rc
mark(struct sftp *p, uint64_t chunk)
{
    pthread_mutex_lock(&p->mu);
    if (chunk / 8 >= p->written_cap) {
        uint64_t cap = (chunk / 8 + 1) * 2;
        uint8_t *n = realloc(p->written, cap);
        if (!n) {
            pthread_mutex_unlock(&p->mu);
            return FC_ERR(FC_E_NOMEM, "out of memory");
        }
        memset(n + p->written_cap, 0, cap - p->written_cap);
        p->written = n;
        p->written_cap = cap;
    }
    p->written[chunk / 8] |= (uint8_t)(1u << (chunk % 8));
    pthread_mutex_unlock(&p->mu);
    return FC_OK;
}

static bool
marked(struct sftp *p, uint64_t chunk)
{
    return chunk / 8 < p->written_cap && (p->written[chunk / 8] & (1u << (chunk % 8)));
}

/* OpenSSH's sftp-server answers a full disk with the generic "failure": look. */
static fc_rc
explain(struct job *j, struct sstream *s, fc_rc rc)
{
    if (rc != FC_E_REMOTE)
        return rc;
    struct fc_error saved = *fc_error_last();
    struct sftp *p = j->dstate;
    uint64_t avail;
    FC_AUTOFREE char *dcopy = strdup(p->part ? p->part : j->dst.url.path);
    if (dcopy && fc_sftp_free_space(s->ssh, dirname(dcopy), &avail) == FC_OK &&
        avail < 2 * STAGE_MAX)
        return FC_ERR(FC_E_NOSPACE, "%s: the destination file system is full (%llu bytes "
                                    "free)", saved.msg, (unsigned long long)avail);
    return FC_ERR(saved.rc, "%s", saved.msg);
}

static fc_rc
stage_flush(struct job *j, struct sstream *s)
{
    if (!s->stage_len)
        return FC_OK;
    fc_sftp_seek(s->f, s->stage_off);
    fc_rc rc = fc_sftp_write(s->f, s->stage, s->stage_len);
    s->stage_len = 0;
    account(j, s);
    return rc == FC_OK ? rc : explain(j, s, rc);
}

static fc_rc
stage_add(struct job *j, struct sstream *s, uint64_t off, const void *buf, size_t len)
{
    if (s->stage_len && (off != s->stage_off + s->stage_len || s->stage_len + len > STAGE_MAX)) {
        fc_rc rc = stage_flush(j, s);
        if (rc != FC_OK)
            return rc;
    }
    if (!s->stage_len)
        s->stage_off = off;
    if (buf)
        memcpy(s->stage + s->stage_len, buf, len);
    else
        memset(s->stage + s->stage_len, 0, len);
    s->stage_len += len;
    return FC_OK;
}

/* Reads [off, off+len) of f into the hash / chunk hashes; sequential reads keep libssh2's
 * read-ahead going. */
static fc_rc
read_range(struct fc_sftp_file *f, uint64_t off, uint64_t len, struct fc_sha256 *h,
           uint8_t *chunk_hashes, uint8_t *buf)
{
    fc_sftp_seek(f, off);
    while (len) {
        size_t n = len < VOL_CHUNK ? (size_t)len : VOL_CHUNK;
        size_t got;
        fc_rc rc = fc_sftp_read(f, buf, n, &got);
        if (rc != FC_OK)
            return rc;
        if (got < n)
            memset(buf + got, 0, n - got); /* shorter file: the rest reads as zeros */
        if (h)
            fc_sha256_update(h, buf, n);
        if (chunk_hashes)
            chunk_hash_buf(buf, n, chunk_hashes + (off / VOL_CHUNK) * 32);
        off += n;
        len -= n;
    }
    return FC_OK;
}

static fc_rc
connect_stream(struct job *j, int i)
{
    struct sftp *p = j->dstate;
    struct sstream *s = &p->st[i];
    s->stage = malloc(STAGE_MAX);
    if (!s->stage)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    if (i == 0 && j->ssh0) {
        s->ssh = j->ssh0;
        j->ssh0 = NULL;
    } else {
        struct fc_ssh_opts o;
        job_ssh_opts(j, &j->dst.url, &o);
        fc_rc rc = fc_ssh_connect(&o, &s->ssh);
        if (rc != FC_OK)
            return rc;
    }
    return FC_OK;
}

static fc_rc
f_open(struct job *j)
{
    struct sftp *p = calloc(1, sizeof *p);
    if (!p)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    j->dstate = p;
    fc_rc rc = connect_stream(j, 0);
    if (rc != FC_OK)
        return rc;
    struct fc_ssh *ssh = p->st[0].ssh;
    const char *path = j->dst.url.path;
    struct fc_sftp_stat st;
    if (fc_sftp_stat(ssh, path, &st) == FC_OK) {
        if (S_ISDIR(st.mode))
            return FC_ERR(FC_E_INVALID, "destination %s:%s is a directory", fc_ssh_peer(ssh),
                          path);
        if (S_ISBLK(st.mode)) {
            p->device = true;
            j->fresh = false;
        }
    }
    if (!p->device) {
        FC_AUTOFREE char *dcopy = strdup(path);
        const char *dir = dcopy ? dirname(dcopy) : "/";
        if (fc_sftp_stat(ssh, dir, &st) != FC_OK || !S_ISDIR(st.mode))
            return FC_ERR(FC_E_NOTFOUND, "destination directory %s does not exist on %s", dir,
                          fc_ssh_peer(ssh));
        p->part = part_name(path);
        if (!p->part)
            return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    const char *target = p->device ? path : p->part;
    bool base = p->device;
    if (!p->device && (j->delta || j->resume) && fc_sftp_stat(ssh, p->part, &st) == FC_OK) {
        base = true;
    } else if (!p->device && j->delta && fc_sftp_stat(ssh, path, &st) == FC_OK) {
        if ((rc = fc_sftp_rename(ssh, path, p->part)) != FC_OK)
            return rc;
        base = true;
    }
    if (base) {
        j->fresh = false;
        if (j->delta || j->resume) {
            /* hash with a read-only handle: libssh2 mixes up read-ahead and writes on one */
            struct fc_sftp_file *rf = NULL;
            if ((rc = fc_sftp_open(ssh, target, FC_SFTP_READ, 0, &rf)) != FC_OK)
                return rc;
            if ((rc = fc_sftp_fstat(rf, &st)) != FC_OK) {
                fc_sftp_discard(rf);
                return rc;
            }
            uint64_t n = (st.size + VOL_CHUNK - 1) / VOL_CHUNK;
            j->base_hash = malloc(n ? n * 32 : 1);
            FC_AUTOFREE uint8_t *buf = malloc(VOL_CHUNK);
            if (!j->base_hash || !buf) {
                fc_sftp_discard(rf);
                return FC_ERR(FC_E_NOMEM, "out of memory");
            }
            j->base_chunks = n;
            p->base_size = st.size;
            rc = read_range(rf, 0, st.size, NULL, j->base_hash, buf);
            fc_sftp_discard(rf);
            account(j, &p->st[0]);
            if (rc != FC_OK)
                return rc;
        }
        return fc_sftp_open(ssh, target, FC_SFTP_WRITE, 0, &p->st[0].f);
    }
    return fc_sftp_open(ssh, target, FC_SFTP_WRITE | FC_SFTP_CREATE | FC_SFTP_TRUNC, 0644,
                        &p->st[0].f);
}

static fc_rc
f_attach(struct job *j, int i)
{
    struct sftp *p = j->dstate;
    fc_rc rc = connect_stream(j, i);
    if (rc != FC_OK)
        return rc;
    return fc_sftp_open(p->st[i].ssh, p->part ? p->part : j->dst.url.path, FC_SFTP_WRITE, 0,
                        &p->st[i].f);
}

static fc_rc
f_put(struct job *j, int i, struct chunk *c)
{
    struct sftp *p = j->dstate;
    struct sstream *s = &p->st[i];
    fc_rc rc;
    if ((rc = mark(p, c->off / VOL_CHUNK)) != FC_OK)
        return rc;
    if (c->zero || (c->rewrite && !j->sparse) || (c->rewrite && c->data && p->device))
        return stage_add(j, s, c->off, c->data, c->len); /* zeros (buf NULL) or all bytes */
    unsigned nb = (c->len + VOL_BLOCK - 1) / VOL_BLOCK;
    for (unsigned b = 0; b < nb;) {
        bool z = c->zmask & (1u << b);
        unsigned e = b;
        while (e < nb && (bool)(c->zmask & (1u << e)) == z)
            e++;
        uint64_t off = (uint64_t)b * VOL_BLOCK;
        uint64_t end = (uint64_t)e * VOL_BLOCK < c->len ? (uint64_t)e * VOL_BLOCK : c->len;
        if (!z || c->rewrite) {
            rc = stage_add(j, s, c->off + off, z ? NULL : c->data + off, (size_t)(end - off));
            if (rc != FC_OK)
                return rc;
        }
        b = e;
    }
    return FC_OK;
}

static fc_rc
f_stream_done(struct job *j, int i)
{
    struct sftp *p = j->dstate;
    fc_rc rc = stage_flush(j, &p->st[i]);
    if (rc != FC_OK || i == 0)
        return rc;
    rc = fc_sftp_close(p->st[i].f);
    p->st[i].f = NULL;
    return rc;
}

enum { V_READ, V_BASE, V_HOLE };

/* How the final check gets chunk i's hash: read back, the base's (a whole chunk nothing
 * wrote, of a base hashed at open), or zeros (a fresh file's hole). */
static int
verify_kind(struct job *j, struct sftp *p, uint64_t i, uint64_t size)
{
    if (marked(p, i))
        return V_READ;
    if (j->fresh)
        return V_HOLE;
    uint64_t end = (i + 1) * VOL_CHUNK;
    if (j->base_hash && i < j->base_chunks && end <= size && end <= p->base_size)
        return V_BASE;
    return V_READ;
}

static fc_rc
f_finish(struct job *j, uint64_t size, const uint8_t *sha, uint8_t dsha[32])
{
    struct sftp *p = j->dstate;
    struct sstream *s = &p->st[0];
    const char *target = p->part ? p->part : j->dst.url.path;
    fc_rc rc;
    if (!p->device && (rc = fc_sftp_set_size(s->f, size)) != FC_OK)
        return rc;
    rc = fc_sftp_fsync(s->f);
    if (rc != FC_OK && rc != FC_E_UNSUPPORTED)
        return rc;
    rc = fc_sftp_close(s->f);
    s->f = NULL;
    if (rc != FC_OK)
        return explain(j, s, rc);
    if (j->verify) {
        /* Read back every chunk that was written and, over an older file, every chunk
         * whose base hash (read at open) is not still valid; the rest of a fresh file is
         * holes, which read as zeros. */
        if ((rc = fc_sftp_open(s->ssh, target, FC_SFTP_READ, 0, &s->f)) != FC_OK)
            return rc;
        uint64_t n = (size + VOL_CHUNK - 1) / VOL_CHUNK;
        FC_AUTOFREE uint8_t *buf = malloc(VOL_CHUNK), *h = malloc(n ? n * 32 : 1);
        if (!buf || !h)
            return FC_ERR(FC_E_NOMEM, "out of memory");
        for (uint64_t i = 0; i < n && rc == FC_OK;) {
            int kind = verify_kind(j, p, i, size);
            uint64_t e = i;
            while (e < n && verify_kind(j, p, e, size) == kind)
                e++;
            uint64_t off = i * VOL_CHUNK;
            uint64_t end = e * VOL_CHUNK < size ? e * VOL_CHUNK : size;
            if (kind == V_READ)
                rc = read_range(s->f, off, end - off, NULL, h, buf);
            else if (kind == V_BASE)
                memcpy(h + i * 32, j->base_hash + i * 32, (size_t)(e - i) * 32);
            else /* holes of a fresh file */
                for (uint64_t c = i; c < e; c++)
                    chunk_hash_zero((size_t)(size - c * VOL_CHUNK < VOL_CHUNK
                                             ? size - c * VOL_CHUNK : VOL_CHUNK), h + c * 32);
            i = e;
        }
        tree_digest(h, n, dsha);
        account(j, s);
        fc_sftp_discard(s->f);
        s->f = NULL;
        if (rc != FC_OK)
            return rc;
        if (memcmp(dsha, sha, 32) != 0)
            return FC_ERR(FC_E_CHECKSUM,
                          "destination %s:%s: SHA-256 read back differs from the source's",
                          fc_ssh_peer(s->ssh), target);
    }
    if (!p->part)
        return FC_OK;
    rc = fc_sftp_rename(s->ssh, p->part, j->dst.url.path);
    if (rc != FC_OK)
        return rc;
    /* SFTP mode writes no hash record, and one left beside the file by an earlier helper
     * copy describes a file that is gone (it could never match again: the rename changed
     * the ctime), so it goes; there usually is none */
    char rec[sizeof j->dst.url.path + sizeof VOL_RECORD_SUFFIX];
    snprintf(rec, sizeof rec, "%s%s", j->dst.url.path, VOL_RECORD_SUFFIX);
    if (fc_sftp_unlink(s->ssh, rec) != FC_OK)
        fc_error_clear();
    return FC_OK;
}

static void
f_close(struct job *j, bool ok)
{
    struct sftp *p = j->dstate;
    if (!p)
        return;
    for (int i = 0; i < VOL_MAX_STREAMS; i++) {
        fc_sftp_discard(p->st[i].f);
        fc_ssh_free(p->st[i].ssh);
        free(p->st[i].stage);
    }
    free(p->part);
    free(p->written);
    pthread_mutex_destroy(&p->mu);
    free(p);
    j->dstate = NULL;
    fc_ssh_free(j->ssh0);
    j->ssh0 = NULL;
}

static void
f_abort(struct job *j)
{
    struct sftp *p = j->dstate;
    for (int i = 0; p && i < VOL_MAX_STREAMS; i++) {
        struct fc_ssh *s = __atomic_load_n(&p->st[i].ssh, __ATOMIC_ACQUIRE);
        if (s)
            fc_ssh_abort(s);
    }
}

const struct dest_ops dest_sftp_ops = {"sftp", f_open, f_attach, f_put, f_stream_done,
                                       f_finish, f_close, f_abort, NULL};
