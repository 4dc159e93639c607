/* SPDX-License-Identifier: Apache-2.0 */
/* The copy pipeline: the source (local file, device, stream or SFTP) is cut into 1 MiB
 * chunks on the main thread (zero detection; the plain SHA-256 only where a stream end needs
 * it), hashed and compared with the destination's base (--resume/--delta) and compressed
 * (helper mode) by worker threads, and written by one sender thread per stream. Zero chunks
 * of a fresh sparse file are skipped. With a base and a local source of known size, the
 * source's chunk hashes are computed first (while the far side hashes its base), and only
 * the chunks that differ are read again and sent. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/sha256.h"
#include "volume.h"

void
job_fail(struct job *j, fc_rc rc)
{
    pthread_mutex_lock(&j->err_mu);
    if (!atomic_load(&j->failed)) {
        j->err_rc = rc;
        snprintf(j->err_msg, sizeof j->err_msg, "%s",
                 fc_error_last()->rc != FC_OK ? fc_error_msg() : fc_rc_name(rc));
        atomic_store(&j->failed, true);
    }
    pthread_mutex_unlock(&j->err_mu);
    queue_close(&j->q_in);
    queue_close(&j->q_out);
}

void
job_ssh_opts(struct job *j, const struct fc_ssh_url *u, struct fc_ssh_opts *o)
{
    *o = (struct fc_ssh_opts){.host = u->host, .port = u->port,
                              .user = u->user[0] ? u->user : NULL, .identity = j->identity,
                              .known_hosts = j->known_hosts,
                              .connect_timeout_s = j->timeout_s, .io_timeout_s = j->timeout_s};
}

bool
job_chunk_unchanged(struct job *j, const struct chunk *c, const uint8_t hash[32])
{
    uint64_t i = c->off / VOL_CHUNK;
    return j->base_hash && i < j->base_chunks && memcmp(j->base_hash + i * 32, hash, 32) == 0;
}

/* ---- the chunker: an fc_sink that the source drives ---- */
struct chunker {
    struct fc_sink sink; /* first */
    struct job *j;
    struct chunk *cur;
    uint32_t fill;       /* bytes of cur covered so far */
    uint64_t pos;
    bool plain;          /* also the SHA-256 of the whole stream (a stream end needs it) */
    struct fc_sha256 sha;
    uint8_t digest[32];  /* that SHA-256 */
    bool ended;
};

static void
progress(struct job *j, bool force)
{
    uint64_t total = j->size;
    json_t *x = json_pack("{s:s,s:I,s:I,s:I,s:I}", "mode", j->ops->mode, "bytes_sent",
                          (json_int_t)atomic_load(&j->wire_bytes), "data_bytes",
                          (json_int_t)atomic_load(&j->data_bytes), "zero_bytes",
                          (json_int_t)atomic_load(&j->zero_bytes), "unchanged_bytes",
                          (json_int_t)atomic_load(&j->unchanged_bytes));
    fc_event_progress(j->m, atomic_load(&j->done), total, x, force);
    if (j->progress && isatty(2)) {
        static uint64_t last;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now = (uint64_t)ts.tv_sec * 10 + (uint64_t)ts.tv_nsec / 100000000;
        if (force || now != last) {
            last = now;
            uint64_t d = atomic_load(&j->done);
            if (total && total != FC_SIZE_UNKNOWN)
                fprintf(stderr, "\r%s: %" PRIu64 " / %" PRIu64 " MiB (%.0f%%), sent %" PRIu64
                        " MiB   ", j->ops->mode, d >> 20, total >> 20, 100.0 * d / total,
                        atomic_load(&j->wire_bytes) >> 20);
            else
                fprintf(stderr, "\r%s: %" PRIu64 " MiB   ", j->ops->mode, d >> 20);
            if (force)
                fputc('\n', stderr);
        }
    }
}

static fc_rc
job_error(struct job *j)
{
    return FC_ERR(j->err_rc, "%s", j->err_msg);
}

/* zmask of a chunk's data; an all-zero chunk loses its buffer (c->zero). */
static void
classify(struct chunk *c)
{
    if (c->data) {
        uint16_t zm = 0;
        for (unsigned b = 0; b * VOL_BLOCK < c->len; b++) {
            uint32_t bl = c->len - b * VOL_BLOCK < VOL_BLOCK ? c->len - b * VOL_BLOCK : VOL_BLOCK;
            if (fc_is_zero(c->data + b * VOL_BLOCK, bl))
                zm |= (uint16_t)(1u << b);
        }
        c->zmask = zm;
        unsigned nb = (c->len + VOL_BLOCK - 1) / VOL_BLOCK;
        if (zm == (uint16_t)((1u << nb) - 1)) {
            free(c->data);
            c->data = NULL;
        }
    }
    c->zero = c->data == NULL;
    if (c->zero)
        c->zmask = 0xffff;
}

static fc_rc
flush_chunk(struct chunker *k)
{
    struct job *j = k->j;
    struct chunk *c = k->cur;
    k->cur = NULL;
    k->fill = 0;
    if (!c)
        return FC_OK;
    classify(c);
    if (!c->zero) {
        c->need_hash = !j->src_prehashed; /* hashed (and compared) by a worker thread */
    } else {
        uint8_t *h = vhashes_slot(&j->src_hash, c->off / VOL_CHUNK);
        chunk_hash_zero(c->len, h);
        if (job_chunk_unchanged(j, c, h)) {
            atomic_fetch_add(&j->unchanged_bytes, c->len);
            atomic_fetch_add(&j->done, c->len);
            chunk_free(c);
            progress(j, false);
            return FC_OK;
        }
    }
    c->rewrite = !j->fresh || !j->sparse;
    if (c->zero && !c->rewrite && j->mode != MODE_STREAM) {
        atomic_fetch_add(&j->zero_bytes, c->len);
        atomic_fetch_add(&j->done, c->len);
        chunk_free(c);
        progress(j, false);
        return FC_OK;
    }
    if (!queue_put(&j->q_in, c)) {
        chunk_free(c);
        if (!atomic_load(&j->failed) && fc_cancel_requested)
            return FC_ERR(FC_E_CANCELLED, "cancelled at offset %" PRIu64 " of the source",
                          k->pos);
        return job_error(j);
    }
    progress(j, false);
    return FC_OK;
}

static fc_rc
need_chunk(struct chunker *k, uint64_t off)
{
    if (k->cur)
        return FC_OK;
    fc_rc rc = vhashes_reserve(&k->j->src_hash, off / VOL_CHUNK);
    if (rc != FC_OK)
        return rc;
    struct chunk *c = calloc(1, sizeof *c);
    if (!c)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    c->off = off - off % VOL_CHUNK;
    uint64_t rest = k->j->size == FC_SIZE_UNKNOWN ? VOL_CHUNK : k->j->size - c->off;
    c->len = (uint32_t)(rest < VOL_CHUNK ? rest : VOL_CHUNK);
    k->cur = c;
    return FC_OK;
}

static fc_rc
k_begin(struct fc_sink *s, const struct fc_stream_info *info)
{
    struct chunker *k = (struct chunker *)s;
    k->j->size = info->size;
    return k->plain ? fc_sha256_init(&k->sha) : FC_OK;
}

static fc_rc
k_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    struct chunker *k = (struct chunker *)s;
    const uint8_t *p = buf;
    if (off != k->pos)
        return FC_ERR(FC_E_INTERNAL, "chunker: write at %" PRIu64 ", expected %" PRIu64, off,
                      k->pos);
    if (atomic_load(&k->j->failed))
        return job_error(k->j);
    if (k->plain)
        fc_sha256_update(&k->sha, buf, len);
    while (len) {
        fc_rc rc = need_chunk(k, k->pos);
        if (rc != FC_OK)
            return rc;
        struct chunk *c = k->cur;
        uint32_t in = (uint32_t)(k->pos - c->off);
        size_t n = VOL_CHUNK - in < len ? VOL_CHUNK - in : len;
        if (!c->data) {
            c->data = malloc(VOL_CHUNK);
            if (!c->data)
                return FC_ERR(FC_E_NOMEM, "out of memory");
            memset(c->data, 0, in);
        }
        memcpy(c->data + in, p, n);
        p += n;
        len -= n;
        k->pos += n;
        if (k->pos - c->off == VOL_CHUNK || k->pos - c->off == c->len) {
            c->len = (uint32_t)(k->pos - c->off);
            if ((rc = flush_chunk(k)) != FC_OK)
                return rc;
        }
    }
    return FC_OK;
}

static fc_rc
k_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    struct chunker *k = (struct chunker *)s;
    if (off != k->pos)
        return FC_ERR(FC_E_INTERNAL, "chunker: zero at %" PRIu64 ", expected %" PRIu64, off,
                      k->pos);
    if (atomic_load(&k->j->failed))
        return job_error(k->j);
    if (k->plain)
        fc_sha256_update_zeros(&k->sha, len);
    while (len) {
        fc_rc rc = need_chunk(k, k->pos);
        if (rc != FC_OK)
            return rc;
        struct chunk *c = k->cur;
        uint32_t in = (uint32_t)(k->pos - c->off);
        uint64_t n = VOL_CHUNK - in < len ? VOL_CHUNK - in : len;
        if (c->data)
            memset(c->data + in, 0, (size_t)n);
        len -= n;
        k->pos += n;
        if (k->pos - c->off == VOL_CHUNK || k->pos - c->off == c->len) {
            c->len = (uint32_t)(k->pos - c->off);
            if ((rc = flush_chunk(k)) != FC_OK)
                return rc;
        }
    }
    return FC_OK;
}

static fc_rc
k_end(struct fc_sink *s, uint64_t size, const uint8_t *sha)
{
    struct chunker *k = (struct chunker *)s;
    if (k->cur) {
        k->cur->len = (uint32_t)(k->pos - k->cur->off);
        if (k->cur->len == 0) {
            chunk_free(k->cur);
            k->cur = NULL;
        }
    }
    fc_rc rc = flush_chunk(k);
    if (rc != FC_OK)
        return rc;
    k->j->size = size;
    if (k->plain)
        fc_sha256_final(&k->sha, k->digest);
    if (sha && k->plain && memcmp(sha, k->digest, 32) != 0)
        return FC_ERR(FC_E_CHECKSUM, "source stream: its END digest does not match the content");
    k->ended = true;
    return FC_OK;
}

/* ---- workers: compare data chunks with the base (--resume/--delta), compress ---- */
static void *
worker(void *arg)
{
    struct job *j = arg;
    ZSTD_CCtx *cx = j->zlevel ? ZSTD_createCCtx() : NULL;
    size_t cap = ZSTD_compressBound(VOL_CHUNK);
    struct chunk *c;
    while ((c = queue_get(&j->q_in))) {
        if (c->need_hash) {
            uint8_t *h = vhashes_slot(&j->src_hash, c->off / VOL_CHUNK);
            sha256_buf(c->data, c->len, h);
            if (job_chunk_unchanged(j, c, h)) {
                atomic_fetch_add(&j->unchanged_bytes, c->len);
                atomic_fetch_add(&j->done, c->len);
                chunk_free(c);
                continue;
            }
        }
        if (c->data && cx) {
            c->z = malloc(cap);
            if (c->z) {
                size_t n = ZSTD_compressCCtx(cx, c->z, cap, c->data, c->len, j->zlevel);
                if (ZSTD_isError(n) || n >= c->len) {
                    free(c->z);
                    c->z = NULL;
                } else {
                    c->zlen = n;
                }
            }
        }
        if (!queue_put(&j->q_out, c)) {
            chunk_free(c);
            break;
        }
    }
    ZSTD_freeCCtx(cx);
    return NULL;
}

struct sender_arg {
    struct job *j;
    int stream;
};

static void *
sender(void *arg)
{
    struct sender_arg *a = arg;
    struct job *j = a->j;
    fc_rc rc = FC_OK;
    if (a->stream > 0 && (rc = j->ops->attach(j, a->stream)) != FC_OK) {
        job_fail(j, rc);
        return NULL;
    }
    struct chunk *c;
    while ((c = queue_get(j->q_send))) {
        rc = j->ops->put(j, a->stream, c);
        if (rc == FC_OK) {
            atomic_fetch_add(&j->done, c->len);
            if (c->zero)
                atomic_fetch_add(&j->zero_bytes, c->len);
            else
                atomic_fetch_add(&j->data_bytes, c->len);
            atomic_fetch_add(&j->chunks_sent, 1);
            uint64_t end = c->off + c->len, w = atomic_load(&j->written_to);
            while (end > w && !atomic_compare_exchange_weak(&j->written_to, &w, end))
                ;
        }
        chunk_free(c);
        if (rc != FC_OK) {
            job_fail(j, rc);
            return NULL;
        }
    }
    if (!atomic_load(&j->failed) && j->ops->stream_done &&
        (rc = j->ops->stream_done(j, a->stream)) != FC_OK)
        job_fail(j, rc);
    return NULL;
}

fc_rc
vol_open_source(struct job *j, int *fd)
{
    *fd = -1;
    if (j->src.kind == VK_STREAM) {
        *fd = 0;
        return FC_OK;
    }
    int f = open(j->src.arg, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return FC_ERRNO(errno == ENOENT ? FC_E_NOTFOUND : FC_E_IO, "source %s", j->src.arg);
    struct stat st;
    if (fstat(f, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
        close(f);
        return FC_ERR(FC_E_INVALID, "source %s: not a regular file or block device",
                      j->src.arg);
    }
    /* A directory or unreadable content shows at the first read: try it now. */
    char b;
    if (pread(f, &b, 1, 0) < 0) {
        fc_rc rc = FC_ERRNO(FC_E_IO, "source %s: read", j->src.arg);
        close(f);
        return rc;
    }
    *fd = f;
    return FC_OK;
}

static void
human(uint64_t b, char *out, size_t cap)
{
    if (b >= (1ull << 30))
        snprintf(out, cap, "%.2f GiB", b / 1073741824.0);
    else
        snprintf(out, cap, "%.1f MiB", b / 1048576.0);
}

/* ---- --delta / --resume with a local source of known size ---- */
static void *
prehash_thread(void *arg)
{
    struct prehash *a = arg;
    a->rc = hash_chunks_fd(a->fd, a->size, &a->h, &a->n, &a->stop, NULL);
    if (a->rc != FC_OK)
        snprintf(a->msg, sizeof a->msg, "source: %s", fc_error_msg());
    return NULL;
}

void
prehash_start(struct job *j)
{
    struct prehash *p = &j->pre;
    struct stat st;
    p->fd = -1;
    if (!(j->delta || j->resume) || j->src.kind != VK_LOCAL)
        return;
    if (vol_open_source(j, &p->fd) != FC_OK || fstat(p->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fc_error_clear(); /* the copy itself reports a bad source */
        if (p->fd >= 0)
            close(p->fd);
        p->fd = -1;
        return;
    }
    p->size = (uint64_t)st.st_size;
    p->started = pthread_create(&p->t, NULL, prehash_thread, p) == 0;
}

/* Waits for the source's hashes; FC_OK with p->h filled. */
static fc_rc
prehash_join(struct job *j)
{
    struct prehash *p = &j->pre;
    if (p->started) {
        pthread_join(p->t, NULL);
        p->started = false;
    }
    return p->rc == FC_OK ? FC_OK : FC_ERR(p->rc, "%s", p->msg);
}

void
prehash_end(struct job *j)
{
    struct prehash *p = &j->pre;
    p->stop = 1;
    if (p->started)
        pthread_join(p->t, NULL);
    p->started = false;
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    free(p->h);
    p->h = NULL;
}

/* The source's chunk hashes (computed while the destination side hashed its base) against
 * the base's: queues the chunks that differ. *tree: the source's digest. */
static fc_rc
delta_pass(struct job *j, int fd, uint8_t tree[32])
{
    fc_rc wrc = j->base_pending ? j->ops->base_wait(j) : FC_OK;
    if (wrc != FC_OK)
        return wrc;
    fc_rc rc = prehash_join(j);
    if (rc != FC_OK)
        return rc;
    if (j->pre.size != j->size)
        return FC_ERR(FC_E_IO, "source %s changed size while being copied", j->src.arg);
    const uint8_t *h = j->pre.h;
    tree_digest(h, j->pre.n, tree);
    for (uint64_t i = 0; i < j->pre.n && rc == FC_OK; i++) {
        uint64_t off = i * VOL_CHUNK;
        uint32_t len = (uint32_t)(j->size - off < VOL_CHUNK ? j->size - off : VOL_CHUNK);
        struct chunk probe = {.off = off, .len = len};
        if (job_chunk_unchanged(j, &probe, h + i * 32)) {
            atomic_fetch_add(&j->unchanged_bytes, len);
            atomic_fetch_add(&j->done, len);
            progress(j, false);
            continue;
        }
        if (fc_cancel_requested)
            return FC_ERR(FC_E_CANCELLED, "cancelled at offset %" PRIu64 " of the source", off);
        struct chunk *c = calloc(1, sizeof *c);
        if (!c || !(c->data = malloc(VOL_CHUNK))) {
            chunk_free(c);
            return FC_ERR(FC_E_NOMEM, "out of memory");
        }
        c->off = off;
        c->len = len;
        for (uint32_t got = 0; got < len && rc == FC_OK;) {
            ssize_t r = pread(fd, c->data + got, len - got, (off_t)(off + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                rc = r < 0 ? FC_ERRNO(FC_E_IO, "source %s: read at offset %" PRIu64,
                                      j->src.arg, off + got)
                           : FC_ERR(FC_E_IO, "source %s shrank while being copied",
                                    j->src.arg);
            else
                got += (uint32_t)r;
        }
        if (rc != FC_OK) {
            chunk_free(c);
            break;
        }
        classify(c);
        c->rewrite = !j->fresh || !j->sparse;
        if (!queue_put(&j->q_in, c)) {
            chunk_free(c);
            if (!atomic_load(&j->failed) && fc_cancel_requested)
                return FC_ERR(FC_E_CANCELLED, "cancelled at offset %" PRIu64 " of the source",
                              off);
            return job_error(j);
        }
        progress(j, false);
    }
    return rc;
}

/* A local regular file of known size: each chunk read straight into its buffer (no copy
 * through a stream buffer), a chunk that is a hole not read at all. */
static fc_rc
direct_pass(struct chunker *k, int fd)
{
    struct job *j = k->j;
    fc_rc rc = FC_OK;
    for (uint64_t off = 0; off < j->size && rc == FC_OK; off += VOL_CHUNK) {
        if (fc_cancel_requested)
            return FC_ERR(FC_E_CANCELLED, "cancelled at offset %" PRIu64 " of the source", off);
        if (atomic_load(&j->failed))
            return job_error(j);
        if ((rc = need_chunk(k, off)) != FC_OK)
            return rc;
        struct chunk *c = k->cur;
        k->pos = off;
        if (!range_is_hole(fd, off, c->len)) {
            if (!(c->data = malloc(VOL_CHUNK)))
                return FC_ERR(FC_E_NOMEM, "out of memory");
            for (uint32_t got = 0; got < c->len;) {
                ssize_t r = pread(fd, c->data + got, c->len - got, (off_t)(off + got));
                if (r < 0 && errno == EINTR)
                    continue;
                if (r <= 0)
                    return r < 0 ? FC_ERRNO(FC_E_IO, "source %s: read at offset %" PRIu64,
                                            j->src.arg, off + got)
                                 : FC_ERR(FC_E_IO, "source %s shrank while being copied",
                                          j->src.arg);
                got += (uint32_t)r;
            }
        }
        if (k->plain) {
            if (c->data)
                fc_sha256_update(&k->sha, c->data, c->len);
            else
                fc_sha256_update_zeros(&k->sha, c->len);
        }
        k->pos = off + c->len;
        rc = flush_chunk(k);
    }
    return rc;
}

fc_rc
vol_copy(struct job *j)
{
    fc_rc rc;
    int sfd = -1;
    if (j->src.kind != VK_SSH && (rc = vol_open_source(j, &sfd)) != FC_OK)
        return rc;
    j->size = FC_SIZE_UNKNOWN;
    if (sfd >= 0) {
        struct stat st;
        if (fstat(sfd, &st) == 0 && S_ISREG(st.st_mode))
            j->size = (uint64_t)st.st_size;
    }
    queue_init(&j->q_in, 16);
    queue_init(&j->q_out, 16);
    pthread_mutex_init(&j->err_mu, NULL);
    j->fresh = true;

    if ((rc = j->ops->open(j)) != FC_OK)
        goto fail_open;
    json_t *started = json_pack("{s:s,s:b,s:b,s:i,s:I}", "mode", j->ops->mode, "resume",
                                j->resume, "delta", j->delta, "streams", (int)j->streams,
                                "base_chunks", (json_int_t)j->base_chunks);
    if (started && j->hash_record[0]) /* "used": the base was not read (docs/volume.md) */
        json_object_set_new(started, "hash_record", json_string(j->hash_record));
    fc_event_info(j->m, started);
    fc_log(FC_INFO, FC_MSG("copy started"), FC_STR("mode", j->ops->mode),
           FC_STR("source", j->src.kind == VK_SSH ? j->src.url.path : j->src.arg),
           FC_STR("destination", j->dst.kind == VK_SSH ? j->dst.url.path : j->dst.arg));

    bool compress = j->mode == MODE_HELPER && j->zlevel > 0;
    if (!compress)
        j->zlevel = 0;
    /* A base and a local source of known size: hash the source first (while the far side
     * hashes its base), then read and send only the chunks that differ. */
    bool pre = j->pre.started && sfd >= 0 && j->size != FC_SIZE_UNKNOWN &&
               (j->base_hash || j->base_pending);
    if (j->pre.started && !pre) {
        /* no base after all (a first --delta): the hashes serve the digest */
        if (sfd >= 0 && j->size == j->pre.size && prehash_join(j) == FC_OK) {
            for (uint64_t i = 0; i < j->pre.n && rc == FC_OK; i++)
                if ((rc = vhashes_reserve(&j->src_hash, i)) == FC_OK)
                    memcpy(vhashes_slot(&j->src_hash, i), j->pre.h + i * 32, 32);
            j->src_prehashed = rc == FC_OK;
        }
        prehash_end(j);
        fc_error_clear();
        rc = FC_OK;
    }
    if (j->base_pending && !pre && (rc = j->ops->base_wait(j)) != FC_OK)
        goto fail_open;
    pthread_t cth[2], sth[VOL_MAX_STREAMS];
    struct sender_arg sa[VOL_MAX_STREAMS];
    /* workers hash (and compare) the chunks and compress them; one keeps them in order */
    unsigned ncomp = compress ? 2 : pre || j->src_prehashed || j->mode == MODE_STREAM ? 0 : 1;
    bool workers = ncomp > 0;
    for (unsigned i = 0; i < ncomp; i++)
        pthread_create(&cth[i], NULL, worker, j);
    j->q_send = workers ? &j->q_out : &j->q_in;
    for (unsigned i = 0; i < j->streams; i++) {
        sa[i] = (struct sender_arg){j, (int)i};
        pthread_create(&sth[i], NULL, sender, &sa[i]);
    }

    struct chunker k = {.sink = {k_begin, k_write, k_zero, k_end}, .j = j};
    k.plain = j->mode == MODE_STREAM || j->src.kind == VK_STREAM;
    uint8_t tree[32] = {0};
    if (pre) {
        rc = delta_pass(j, sfd, tree);
        k.pos = j->size;
    } else if (j->src.kind == VK_LOCAL && sfd >= 0 && j->size != FC_SIZE_UNKNOWN &&
               j->mode != MODE_STREAM) {
        if ((rc = k_begin(&k.sink, &(struct fc_stream_info){.size = j->size})) == FC_OK)
            rc = direct_pass(&k, sfd);
    } else if (j->src.kind == VK_SSH) {
        rc = src_sftp_run(j, &k.sink);
    } else {
        struct fc_stream_reader_opts ro = {.buf_size = 4u << 20, .zero_block = VOL_BLOCK,
                                           .cancel = &fc_cancel_requested};
        struct fc_stream_stats st = {0};
        rc = fc_stream_read(sfd, &k.sink, &ro, &st);
    }
    if (sfd > 0)
        close(sfd);
    chunk_free(k.cur);
    fc_sha256_free(&k.sha);
    if (rc != FC_OK && !atomic_load(&j->failed))
        job_fail(j, rc);
    if (rc == FC_E_CANCELLED && j->ops->abort)
        j->ops->abort(j); /* senders may sit in a blocked SSH write */
    /* drain: close the input, let the workers and senders finish */
    queue_close(&j->q_in);
    if (workers) {
        for (unsigned i = 0; i < ncomp; i++)
            pthread_join(cth[i], NULL);
        queue_close(&j->q_out);
    }
    for (unsigned i = 0; i < j->streams; i++)
        pthread_join(sth[i], NULL);
    queue_destroy(&j->q_out);
    queue_destroy(&j->q_in);
    if (!pre && j->mode != MODE_STREAM && !atomic_load(&j->failed))
        vhashes_digest(&j->src_hash, (j->size + VOL_CHUNK - 1) / VOL_CHUNK, tree);
    vhashes_free(&j->src_hash);
    prehash_end(j);

    if (atomic_load(&j->failed)) {
        j->ops->close(j, false);
        char a[32], b[32];
        human(atomic_load(&j->done), a, sizeof a);
        human(j->size == FC_SIZE_UNKNOWN ? k.pos : j->size, b, sizeof b);
        progress(j, true);
        if (j->mode == MODE_STREAM)
            return FC_ERR(j->err_rc, "%s (%s of %s sent)", j->err_msg, a, b);
        return FC_ERR(j->err_rc,
                      "%s; %s of %s had been sent (in order up to offset %" PRIu64
                      "); the destination is not complete: its partial copy is kept as "
                      "<destination>%s, run again with --resume to continue",
                      j->err_msg, a, b, j->streams == 1 ? atomic_load(&j->written_to) : 0,
                      VOL_PART_SUFFIX);
    }
    uint8_t dsha[32] = {0};
    rc = j->ops->finish(j, j->size, j->mode == MODE_STREAM ? k.digest : tree, dsha);
    if (rc != FC_OK) {
        j->ops->close(j, false);
        if (j->mode == MODE_STREAM)
            return rc;
        char msg[sizeof j->err_msg];
        snprintf(msg, sizeof msg, "%s", fc_error_msg());
        return FC_ERR(rc, "%s; the destination is not complete: its partial copy is kept as "
                      "<destination>%s (run again with --resume to continue)",
                      msg, VOL_PART_SUFFIX);
    }
    j->ops->close(j, true);
    progress(j, true);
    char hex[65], thex[65];
    fc_hex(k.digest, 32, hex);
    fc_hex(tree, 32, thex);
    json_t *res = json_pack("{s:I,s:s,s:b,s:I,s:I,s:I,s:I}", "bytes",
                            (json_int_t)j->size, "mode", j->ops->mode, "verified", j->verify,
                            "bytes_sent", (json_int_t)atomic_load(&j->wire_bytes),
                            "data_bytes", (json_int_t)atomic_load(&j->data_bytes),
                            "zero_bytes", (json_int_t)atomic_load(&j->zero_bytes),
                            "unchanged_bytes", (json_int_t)atomic_load(&j->unchanged_bytes));
    if (k.plain) /* the SHA-256 of the whole volume, computed where a stream end needs it */
        json_object_set_new(res, "sha256", json_string(hex));
    if (j->mode != MODE_STREAM) /* what --verify compared (docs/volume.md) */
        json_object_set_new(res, "sha256_tree", json_string(thex));
    fc_log(FC_INFO, FC_MSG("volume copied"), FC_STR("mode", j->ops->mode),
           FC_U64("bytes", j->size), FC_U64("bytes_sent", atomic_load(&j->wire_bytes)),
           FC_U64("unchanged_bytes", atomic_load(&j->unchanged_bytes)),
           FC_STR("sha256_tree", thex));
    fc_event_done(j->m, res);
    return FC_OK;
fail_open: /* the destination could not be opened or its base hashes did not come */
    j->ops->close(j, false);
    if (sfd > 0)
        close(sfd);
    queue_destroy(&j->q_in);
    queue_destroy(&j->q_out);
    return rc;
}
