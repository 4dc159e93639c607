/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-volume helpers: the bounded chunk queue, chunk and whole-file hashing of local
 * descriptors (holes skipped with SEEK_DATA), frame headers, partial-file names. */
#include <errno.h>
#include <stdatomic.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "fluid/sha256.h"
#include "volume.h"

void
queue_init(struct queue *q, unsigned cap)
{
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv_put, NULL);
    pthread_cond_init(&q->cv_get, NULL);
    q->cap = cap;
}

void
queue_destroy(struct queue *q)
{
    struct chunk *c = q->head;
    while (c) {
        struct chunk *n = c->next;
        chunk_free(c);
        c = n;
    }
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv_put);
    pthread_cond_destroy(&q->cv_get);
}

bool
queue_put(struct queue *q, struct chunk *c)
{
    pthread_mutex_lock(&q->mu);
    while (q->n >= q->cap && !q->closed && !fc_cancel_requested) {
        /* wake up now and then: a cancel must not wait for a stalled sender */
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += 200000000;
        if (t.tv_nsec >= 1000000000) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&q->cv_put, &q->mu, &t);
    }
    if (q->closed || (q->n >= q->cap && fc_cancel_requested)) {
        pthread_mutex_unlock(&q->mu);
        return false;
    }
    c->next = NULL;
    if (q->tail)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
    q->n++;
    pthread_cond_signal(&q->cv_get);
    pthread_mutex_unlock(&q->mu);
    return true;
}

struct chunk *
queue_get(struct queue *q)
{
    pthread_mutex_lock(&q->mu);
    while (!q->head && !q->closed)
        pthread_cond_wait(&q->cv_get, &q->mu);
    struct chunk *c = q->head;
    if (c) {
        q->head = c->next;
        if (!q->head)
            q->tail = NULL;
        q->n--;
        pthread_cond_signal(&q->cv_put);
    }
    pthread_mutex_unlock(&q->mu);
    return c;
}

void
queue_close(struct queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = true;
    pthread_cond_broadcast(&q->cv_put);
    pthread_cond_broadcast(&q->cv_get);
    pthread_mutex_unlock(&q->mu);
}

void
chunk_free(struct chunk *c)
{
    if (!c)
        return;
    free(c->data);
    free(c->z);
    free(c);
}

void
sha256_buf(const void *buf, size_t len, uint8_t out[32])
{
    SHA256(buf, len, out);
}

static uint8_t zero_hash[32];

static void
zero_hash_init(void)
{
    uint8_t *z = calloc(1, VOL_CHUNK);
    if (z)
        SHA256(z, VOL_CHUNK, zero_hash);
    free(z);
}

const uint8_t *
zero_chunk_hash(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, zero_hash_init);
    return zero_hash;
}

void
put_hdr(uint8_t h[24], uint32_t type, uint32_t aux, uint64_t off, uint64_t len)
{
    struct fc_frame f = {.type = type, .aux = aux, .offset = off, .length = len};
    fc_frame_encode(&f, h);
}

char *
part_name(const char *path)
{
    size_t n = strlen(path);
    char *p = malloc(n + sizeof VOL_PART_SUFFIX);
    if (p) {
        memcpy(p, path, n);
        memcpy(p + n, VOL_PART_SUFFIX, sizeof VOL_PART_SUFFIX);
    }
    return p;
}

/* Next data offset at or after off (size when none); regular files only, else off. */
static uint64_t
next_data(int fd, uint64_t off, uint64_t size)
{
    off_t d = lseek(fd, (off_t)off, SEEK_DATA);
    if (d < 0)
        return errno == ENXIO ? size : off;
    return (uint64_t)d;
}

bool
range_is_hole(int fd, uint64_t off, uint64_t len)
{
    return next_data(fd, off, off + len) >= off + len;
}

void
chunk_hash_zero(size_t len, uint8_t out[32])
{
    if (len == VOL_CHUNK) {
        memcpy(out, zero_chunk_hash(), 32);
        return;
    }
    uint8_t *z = calloc(1, len ? len : 1); /* only the last chunk is shorter */
    if (!z) {
        memset(out, 0, 32); /* cannot match a real digest: the copy fails its check */
        return;
    }
    SHA256(z, len, out);
    free(z);
}

void
chunk_hash_buf(const uint8_t *buf, size_t len, uint8_t out[32])
{
    if (fc_is_zero(buf, len)) /* about ten times cheaper than hashing */
        chunk_hash_zero(len, out);
    else
        SHA256(buf, len, out);
}

fc_rc
hash_chunk_fd(int fd, uint64_t off, size_t len, uint8_t *buf, uint8_t out[32])
{
    if (range_is_hole(fd, off, len)) { /* a hole: never read */
        chunk_hash_zero(len, out);
        return FC_OK;
    }
    size_t got;
    ssize_t r;
    for (got = 0; got < len; got += (size_t)r) {
        r = pread(fd, buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) {
            r = 0;
            continue;
        }
        if (r < 0)
            return FC_ERRNO(FC_E_IO, "read at offset %llu", (unsigned long long)(off + got));
        if (r == 0) { /* shorter than expected: the rest is zeros (the size is set later) */
            memset(buf + got, 0, len - got);
            break;
        }
    }
    chunk_hash_buf(buf, len, out);
    return FC_OK;
}

/* The chunks of one hash_chunks_known call, shared by its threads: each takes the next
 * chunk not yet taken, so the file is still read roughly in order. */
struct hash_work {
    int fd;
    uint64_t size, n;
    uint8_t *hashes;
    const uint8_t *known;
    const volatile sig_atomic_t *cancel;
    _Atomic uint64_t next;   /* next chunk to take */
    atomic_bool stop;        /* a thread failed (or cancel): the others stop too */
    pthread_mutex_t mu;
    fc_rc rc;                /* the first failure */
    char msg[512];
};

/* Hashes chunks until none is left; false when this thread failed or the work stopped. */
static bool
hash_some(struct hash_work *w, uint8_t *buf, vol_tick tick)
{
    for (;;) {
        if (atomic_load(&w->stop))
            return false;
        uint64_t i = atomic_fetch_add(&w->next, 1);
        if (i >= w->n)
            return true;
        uint64_t off = i * VOL_CHUNK;
        if (tick) /* the calling thread only (tick may write a reply); it keeps its own pace */
            tick(off);
        if (w->known && w->known[i])
            continue;
        fc_rc rc;
        if ((w->cancel && *w->cancel) || fc_cancel_requested)
            rc = FC_ERR(FC_E_CANCELLED, "cancelled while hashing chunks");
        else
            rc = hash_chunk_fd(w->fd, off,
                               (size_t)(w->size - off < VOL_CHUNK ? w->size - off : VOL_CHUNK),
                               buf, w->hashes + i * 32);
        if (rc != FC_OK) {
            pthread_mutex_lock(&w->mu);
            if (w->rc == FC_OK) {
                w->rc = rc;
                snprintf(w->msg, sizeof w->msg, "%s", fc_error_msg());
            }
            pthread_mutex_unlock(&w->mu);
            atomic_store(&w->stop, true);
            return false;
        }
    }
}

static void *
hash_thread(void *arg)
{
    struct hash_work *w = arg;
    uint8_t *buf = malloc(VOL_CHUNK);
    if (!buf) /* the other threads take its share */
        return NULL;
    hash_some(w, buf, NULL);
    free(buf);
    return NULL;
}

/* SHA-256 of a chunk runs on one core (about 1.8 GB/s with SHA-NI on the benchmark
 * machine), so a large volume is hashed by one thread per core, at most 4. With --delta the
 * two sides hash at the same time: on two hosts each uses its own cores; on one host (the
 * loopback benchmark) they share them, and the side that finishes first leaves them all to
 * the other. */
#define HASH_THREADS_MAX 4
#define HASH_PARALLEL_MIN 32  /* chunks to hash before extra threads are worth starting */

fc_rc
hash_chunks_known(int fd, uint64_t size, uint8_t *hashes, const uint8_t *known,
                  const volatile sig_atomic_t *cancel, vol_tick tick)
{
    struct hash_work w = {.fd = fd, .size = size, .n = (size + VOL_CHUNK - 1) / VOL_CHUNK,
                          .hashes = hashes, .known = known, .cancel = cancel};
    FC_AUTOFREE uint8_t *buf = malloc(VOL_CHUNK);
    if (!buf)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    uint64_t todo = w.n;
    for (uint64_t i = 0; known && i < w.n; i++)
        todo -= known[i] ? 1 : 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned extra = todo < HASH_PARALLEL_MIN || cpus < 2 ? 0
                     : cpus > HASH_THREADS_MAX ? HASH_THREADS_MAX - 1 : (unsigned)cpus - 1;
    pthread_t t[HASH_THREADS_MAX];
    unsigned started = 0;
    pthread_mutex_init(&w.mu, NULL);
    for (; started < extra; started++)
        if (pthread_create(&t[started], NULL, hash_thread, &w) != 0)
            break; /* fewer threads: still correct */
    hash_some(&w, buf, tick);
    for (unsigned i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    pthread_mutex_destroy(&w.mu);
    if (w.rc != FC_OK)
        return FC_ERR(w.rc, "%s", w.msg);
    if (atomic_load(&w.next) < w.n) /* cannot happen: every thread runs until none is left */
        return FC_ERR(FC_E_IO, "chunk hashing stopped early");
    return FC_OK;
}

fc_rc
hash_chunks_fd(int fd, uint64_t size, uint8_t **out, uint64_t *nchunks,
               const volatile sig_atomic_t *cancel, vol_tick tick)
{
    uint64_t n = (size + VOL_CHUNK - 1) / VOL_CHUNK;
    *out = NULL;
    *nchunks = 0;
    uint8_t *h = malloc(n ? n * 32 : 1);
    if (!h)
        return FC_ERR(FC_E_NOMEM, "out of memory hashing %llu chunks", (unsigned long long)n);
    fc_rc rc = hash_chunks_known(fd, size, h, NULL, cancel, tick);
    if (rc != FC_OK) {
        free(h);
        return rc;
    }
    *out = h;
    *nchunks = n;
    return FC_OK;
}

void
tree_digest(const uint8_t *hashes, uint64_t n, uint8_t out[32])
{
    SHA256(n ? hashes : (const uint8_t *)"", (size_t)n * 32, out);
}

/* ---- chunk hashes of a volume of unknown size: blocks that never move, so that a worker
 * can fill a slot while the chunker adds blocks ---- */
#define VH_PER_BLK 4096u   /* 4 GiB of volume per block */
#define VH_MAX_BLK 65536u  /* 256 TiB */

fc_rc
vhashes_reserve(struct vhashes *v, uint64_t i)
{
    uint64_t b = i / VH_PER_BLK;
    if (b >= VH_MAX_BLK)
        return FC_ERR(FC_E_INVALID, "volume larger than 256 TiB");
    if (!v->blk && !(v->blk = calloc(VH_MAX_BLK, sizeof *v->blk)))
        return FC_ERR(FC_E_NOMEM, "out of memory");
    if (!v->blk[b] && !(v->blk[b] = malloc(VH_PER_BLK * 32)))
        return FC_ERR(FC_E_NOMEM, "out of memory");
    return FC_OK;
}

uint8_t *
vhashes_slot(struct vhashes *v, uint64_t i)
{
    return v->blk[i / VH_PER_BLK] + (i % VH_PER_BLK) * 32;
}

void
vhashes_digest(struct vhashes *v, uint64_t n, uint8_t out[32])
{
    struct fc_sha256 c = {0};
    if (fc_sha256_init(&c) != FC_OK) {
        memset(out, 0, 32);
        return;
    }
    for (uint64_t i = 0; i < n; i += VH_PER_BLK) {
        uint64_t k = n - i < VH_PER_BLK ? n - i : VH_PER_BLK;
        fc_sha256_update(&c, v->blk[i / VH_PER_BLK], (size_t)k * 32);
    }
    fc_sha256_final(&c, out);
    fc_sha256_free(&c);
}

void
vhashes_free(struct vhashes *v)
{
    if (v->blk)
        for (unsigned b = 0; b < VH_MAX_BLK; b++)
            free(v->blk[b]);
    free(v->blk);
    v->blk = NULL;
}
