/* SPDX-License-Identifier: Apache-2.0 */
/* The copy pipeline: the source (local file, device, stream or SFTP) is cut into 1 MiB
 * chunks on the main thread (whole-volume SHA-256, zero detection, chunk hashes against the
 * destination's base for --resume/--delta), compressed by worker threads (helper mode), and
 * written by one sender thread per stream. Zero chunks of a fresh sparse file are skipped. */
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
    struct fc_sha256 sha;
    uint8_t digest[32];
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

static fc_rc
flush_chunk(struct chunker *k)
{
    struct job *j = k->j;
    struct chunk *c = k->cur;
    k->cur = NULL;
    k->fill = 0;
    if (!c)
        return FC_OK;
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
    if (j->base_hash && !c->zero) {
        c->need_hash = true; /* hashed and compared by the worker thread */
    } else if (j->base_hash) {
        uint8_t h[32];
        if (c->len == VOL_CHUNK) {
            memcpy(h, zero_chunk_hash(), 32);
        } else {
            FC_AUTOFREE uint8_t *z = calloc(1, c->len);
            if (!z)
                return FC_ERR(FC_E_NOMEM, "out of memory");
            sha256_buf(z, c->len, h);
        }
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
    return fc_sha256_init(&k->sha);
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
    fc_sha256_final(&k->sha, k->digest);
    if (sha && memcmp(sha, k->digest, 32) != 0)
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
            uint8_t h[32];
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

    if ((rc = j->ops->open(j)) != FC_OK) {
        j->ops->close(j, false);
        if (sfd > 0)
            close(sfd);
        queue_destroy(&j->q_in);
        queue_destroy(&j->q_out);
        return rc;
    }
    fc_event_info(j->m, json_pack("{s:s,s:b,s:b,s:i,s:I}", "mode", j->ops->mode, "resume",
                                  j->resume, "delta", j->delta, "streams", (int)j->streams,
                                  "base_chunks", (json_int_t)j->base_chunks));
    fc_log(FC_INFO, FC_MSG("copy started"), FC_STR("mode", j->ops->mode),
           FC_STR("source", j->src.kind == VK_SSH ? j->src.url.path : j->src.arg),
           FC_STR("destination", j->dst.kind == VK_SSH ? j->dst.url.path : j->dst.arg));

    bool compress = j->mode == MODE_HELPER && j->zlevel > 0;
    if (!compress)
        j->zlevel = 0;
    pthread_t cth[2], sth[VOL_MAX_STREAMS];
    struct sender_arg sa[VOL_MAX_STREAMS];
    /* one worker keeps the chunks in order (the helper then hashes as it writes) */
    unsigned ncomp = compress ? 2 : j->base_hash ? 1 : 0;
    compress = ncomp > 0;
    for (unsigned i = 0; i < ncomp; i++)
        pthread_create(&cth[i], NULL, worker, j);
    j->q_send = compress ? &j->q_out : &j->q_in;
    for (unsigned i = 0; i < j->streams; i++) {
        sa[i] = (struct sender_arg){j, (int)i};
        pthread_create(&sth[i], NULL, sender, &sa[i]);
    }

    struct chunker k = {.sink = {k_begin, k_write, k_zero, k_end}, .j = j};
    if (j->src.kind == VK_SSH) {
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
    if (compress) {
        queue_close(&j->q_in);
        for (unsigned i = 0; i < ncomp; i++)
            pthread_join(cth[i], NULL);
        queue_close(&j->q_out);
    } else {
        queue_close(&j->q_in);
    }
    for (unsigned i = 0; i < j->streams; i++)
        pthread_join(sth[i], NULL);
    queue_destroy(&j->q_out);
    queue_destroy(&j->q_in);

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
    rc = j->ops->finish(j, j->size, k.digest, dsha);
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
    char hex[65];
    fc_hex(k.digest, 32, hex);
    json_t *res = json_pack("{s:s,s:I,s:s,s:b,s:I,s:I,s:I,s:I}", "sha256", hex, "bytes",
                            (json_int_t)j->size, "mode", j->ops->mode, "verified", j->verify,
                            "bytes_sent", (json_int_t)atomic_load(&j->wire_bytes),
                            "data_bytes", (json_int_t)atomic_load(&j->data_bytes),
                            "zero_bytes", (json_int_t)atomic_load(&j->zero_bytes),
                            "unchanged_bytes", (json_int_t)atomic_load(&j->unchanged_bytes));
    fc_log(FC_INFO, FC_MSG("volume copied"), FC_STR("mode", j->ops->mode),
           FC_U64("bytes", j->size), FC_U64("bytes_sent", atomic_load(&j->wire_bytes)),
           FC_U64("unchanged_bytes", atomic_load(&j->unchanged_bytes)), FC_STR("sha256", hex));
    fc_event_done(j->m, res);
    return FC_OK;
}
