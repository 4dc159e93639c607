/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-volume helpers: the bounded chunk queue, chunk and whole-file hashing of local
 * descriptors (holes skipped with SEEK_DATA), frame headers, partial-file names. */
#include <errno.h>
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

fc_rc
hash_chunks_fd(int fd, uint64_t size, uint8_t **out, uint64_t *nchunks,
               const volatile sig_atomic_t *cancel, vol_tick tick)
{
    uint64_t n = (size + VOL_CHUNK - 1) / VOL_CHUNK;
    *out = NULL;
    *nchunks = 0;
    uint8_t *h = malloc(n ? n * 32 : 1);
    FC_AUTOFREE uint8_t *buf = malloc(VOL_CHUNK);
    if (!h || !buf) {
        free(h);
        return FC_ERR(FC_E_NOMEM, "out of memory hashing %llu chunks", (unsigned long long)n);
    }
    for (uint64_t i = 0; i < n; i++) {
        if (cancel && *cancel) {
            free(h);
            return FC_ERR(FC_E_CANCELLED, "cancelled while hashing chunks");
        }
        uint64_t off = i * VOL_CHUNK;
        size_t len = (size_t)(size - off < VOL_CHUNK ? size - off : VOL_CHUNK);
        if (tick && i % 64 == 0)
            tick(off);
        if (len == VOL_CHUNK && next_data(fd, off, size) >= off + len) {
            memcpy(h + i * 32, zero_chunk_hash(), 32);
            continue;
        }
        size_t got;
        ssize_t r;
        for (got = 0; got < len; got += (size_t)r) {
            r = pread(fd, buf + got, len - got, (off_t)(off + got));
            if (r < 0 && errno == EINTR) {
                r = 0;
                continue;
            }
            if (r < 0) {
                free(h);
                return FC_ERRNO(FC_E_IO, "read at offset %llu", (unsigned long long)(off + got));
            }
            if (r == 0) { /* shorter than expected: rest is zeros */
                memset(buf + got, 0, len - got);
                break;
            }
        }
        SHA256(buf, len, h + i * 32);
    }
    *out = h;
    *nchunks = n;
    return FC_OK;
}

fc_rc
hash_range_fd(int fd, struct fc_sha256 *h, uint64_t off, uint64_t end, vol_tick tick)
{
    const size_t bs = 4u << 20;
    FC_AUTOFREE uint8_t *buf = NULL;
    uint64_t next_tick = off;
    while (off < end) {
        if (tick && off >= next_tick) {
            tick(off);
            next_tick = off + (64u << 20);
        }
        uint64_t d = next_data(fd, off, end);
        if (d > off + (64u << 20))
            d = off + (64u << 20); /* zeros in slices, so that ticks keep coming */
        if (d > end)
            d = end;
        if (d > off) {
            fc_sha256_update_zeros(h, d - off);
            off = d;
            continue;
        }
        if (!buf && !(buf = malloc(bs)))
            return FC_ERR(FC_E_NOMEM, "out of memory");
        size_t len = (size_t)(end - off < bs ? end - off : bs);
        ssize_t r = pread(fd, buf, len, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return FC_ERRNO(FC_E_IO, "read at offset %llu", (unsigned long long)off);
        if (r == 0) { /* past the end of the file: zeros (the size is set later) */
            fc_sha256_update_zeros(h, end - off);
            break;
        }
        fc_sha256_update(h, buf, (size_t)r);
        off += (uint64_t)r;
    }
    return FC_OK;
}

fc_rc
hash_file_fd(int fd, uint64_t size, uint8_t sha[32], vol_tick tick)
{
    struct fc_sha256 h = {0};
    fc_rc rc = fc_sha256_init(&h);
    if (rc == FC_OK && (rc = hash_range_fd(fd, &h, 0, size, tick)) == FC_OK)
        fc_sha256_final(&h, sha);
    fc_sha256_free(&h);
    return rc;
}
