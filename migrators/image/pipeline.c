/* SPDX-License-Identifier: Apache-2.0 */
/* Reader and writer on two threads: the reader's pump runs on its own thread and its sink
 * calls are queued, in order, to the writer on the calling thread, so that reading the
 * input and writing the output overlap, as QEMU overlaps them with several requests in
 * flight. Data travels in a small pool of IMG_IO_BUF buffers: a reader that reads into a
 * buffer lent by the pipeline (img_emit_buf) hands its data to the writer without a copy;
 * data from anywhere else is copied into a free buffer. A buffer is free again once the
 * writer has handled every call that points into it. The order of the calls is kept; a
 * failure on either side stops the other and its message is carried to the caller. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/error.h"
#include "image.h"

#define PL_ITEMS 32 /* queued calls */
#define PL_BUFS 6   /* data buffers of IMG_IO_BUF bytes, allocated when first needed */

enum { IT_BEGIN, IT_DATA, IT_ZERO, IT_END, IT_FAIL };

struct pl_item {
    int kind;
    int buf;             /* the buffer ptr lies in (IT_DATA) */
    uint64_t off, len;
    const uint8_t *ptr;
    struct fc_stream_info info;
    uint8_t sha[32];
    bool has_sha;
};

struct pl_buf {
    uint8_t *mem;
    int refs;            /* queued calls pointing into it */
    bool lent;           /* the reader is filling it */
};

struct pl {
    struct fc_sink sink; /* the reader's side, first */
    pthread_mutex_t mu;
    pthread_cond_t prod_cv, cons_cv;
    bool prod_waiting, cons_waiting;
    struct pl_item item[PL_ITEMS];
    size_t head, count;  /* consumer takes head; producer appends at head + count */
    struct pl_buf buf[PL_BUFS];
    int lent;            /* the buffer lent to the reader, -1: none */
    bool stop;           /* the writer failed: the reader stops at its next call */
    const struct img_reader *rd;
    void *rst;
    const volatile sig_atomic_t *cancel;
    bool ended;          /* the reader called end() */
    fc_rc fail_rc;       /* the reader's failure (IT_FAIL) */
    char fail_msg[1024];
};

static fc_rc
stopped(void)
{
    return FC_ERR(FC_E_CANCELLED, "reader stopped: the writer failed");
}

/* The producer waits (under the lock) for the consumer to make room; a waiting consumer is
 * woken first, whatever is queued. */
static void
prod_wait(struct pl *p)
{
    if (p->cons_waiting)
        pthread_cond_signal(&p->cons_cv);
    p->prod_waiting = true;
    pthread_cond_wait(&p->prod_cv, &p->mu);
    p->prod_waiting = false;
}

/* Buffers the producer could take (under the lock). */
static int
free_bufs(const struct pl *p)
{
    int n = 0;
    for (int i = 0; i < PL_BUFS; i++)
        n += p->buf[i].refs == 0 && !p->buf[i].lent;
    return n;
}

/* Queues one call (producer); false when the consumer stopped. Takes a reference on
 * it->buf for IT_DATA, which the caller already holds under the lock. */
static bool
pl_put(struct pl *p, const struct pl_item *it)
{
    pthread_mutex_lock(&p->mu);
    while (!p->stop && p->count == PL_ITEMS)
        prod_wait(p);
    bool ok = !p->stop;
    if (ok) {
        p->item[(p->head + p->count) % PL_ITEMS] = *it;
        p->count++;
        if (it->kind == IT_DATA)
            p->buf[it->buf].refs++;
        /* a waiting writer is woken once there is a burst to write (or the end), not for
         * every call: under load each wake-up waits for a CPU */
        if (p->cons_waiting && (it->kind == IT_END || it->kind == IT_FAIL ||
                                p->count >= PL_ITEMS / 2 || PL_BUFS - free_bufs(p) > PL_BUFS / 2))
            pthread_cond_signal(&p->cons_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return ok;
}

/* A buffer no queued call points into and not lent, allocated if need be (producer, under
 * the lock); -1 when the consumer stopped or memory ran out. */
static int
free_buf(struct pl *p)
{
    for (;;) {
        if (p->stop)
            return -1;
        for (int i = 0; i < PL_BUFS; i++)
            if (p->buf[i].refs == 0 && !p->buf[i].lent && p->buf[i].mem)
                return i;
        for (int i = 0; i < PL_BUFS; i++)
            if (!p->buf[i].mem)
                return (p->buf[i].mem = img_alloc_io(IMG_IO_BUF)) ? i : -1;
        prod_wait(p);
    }
}

static fc_rc
pl_begin(struct fc_sink *sk, const struct fc_stream_info *info)
{
    struct pl *p = (struct pl *)sk;
    struct pl_item it = {.kind = IT_BEGIN, .info = *info};
    return pl_put(p, &it) ? FC_OK : stopped();
}

static fc_rc
pl_write(struct fc_sink *sk, uint64_t off, const void *buf, size_t len)
{
    struct pl *p = (struct pl *)sk;
    const uint8_t *b = buf;
    int l = p->lent;
    uintptr_t at = (uintptr_t)b, base = l >= 0 ? (uintptr_t)p->buf[l].mem : 0;
    if (l >= 0 && at >= base && len <= IMG_IO_BUF && at - base <= IMG_IO_BUF - len) {
        /* read into the lent buffer: queued as it is */
        struct pl_item it = {.kind = IT_DATA, .buf = l, .off = off, .len = len, .ptr = b};
        return pl_put(p, &it) ? FC_OK : stopped();
    }
    while (len > 0) {
        pthread_mutex_lock(&p->mu);
        int i = free_buf(p);
        if (i >= 0)
            p->buf[i].lent = true; /* held while copying */
        bool stop = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (i < 0)
            return stop ? stopped() : FC_ERR(FC_E_NOMEM, "out of memory");
        size_t k = len < IMG_IO_BUF ? len : IMG_IO_BUF;
        memcpy(p->buf[i].mem, b, k);
        struct pl_item it = {.kind = IT_DATA, .buf = i, .off = off, .len = k,
                             .ptr = p->buf[i].mem};
        bool ok = pl_put(p, &it);
        pthread_mutex_lock(&p->mu);
        p->buf[i].lent = false;
        pthread_mutex_unlock(&p->mu);
        if (!ok)
            return stopped();
        b += k;
        off += k;
        len -= k;
    }
    return FC_OK;
}

/* The reader is done with the buffer it was lent (producer). */
static void
pl_unlend(struct pl *p)
{
    pthread_mutex_lock(&p->mu);
    if (p->lent >= 0) {
        p->buf[p->lent].lent = false;
        p->lent = -1;
    }
    pthread_mutex_unlock(&p->mu);
}

uint8_t *
img_pl_lend(struct fc_sink *sk)
{
    if (sk->write != pl_write)
        return NULL;
    struct pl *p = (struct pl *)sk;
    pl_unlend(p);
    pthread_mutex_lock(&p->mu);
    int i = free_buf(p);
    if (i >= 0)
        p->buf[i].lent = true;
    p->lent = i;
    pthread_mutex_unlock(&p->mu);
    return i >= 0 ? p->buf[i].mem : NULL;
}

static fc_rc
pl_zero(struct fc_sink *sk, uint64_t off, uint64_t len)
{
    struct pl *p = (struct pl *)sk;
    struct pl_item it = {.kind = IT_ZERO, .off = off, .len = len};
    return pl_put(p, &it) ? FC_OK : stopped();
}

static fc_rc
pl_end(struct fc_sink *sk, uint64_t size, const uint8_t *sha)
{
    struct pl *p = (struct pl *)sk;
    pl_unlend(p);
    struct pl_item it = {.kind = IT_END, .len = size, .has_sha = sha != NULL};
    if (sha)
        memcpy(it.sha, sha, 32);
    p->ended = true;
    return pl_put(p, &it) ? FC_OK : stopped();
}

static void *
pl_reader(void *arg)
{
    struct pl *p = arg;
    fc_rc rc = p->rd->pump(p->rst, &p->sink, p->cancel);
    if (rc == FC_OK && !p->ended)
        rc = FC_ERR(FC_E_INTERNAL, "%s reader returned without end()", p->rd->name);
    pl_unlend(p);
    if (rc != FC_OK) {
        /* hand the failure over (unless the writer stopped us: it has its own) */
        snprintf(p->fail_msg, sizeof p->fail_msg, "%s", fc_error_msg());
        p->fail_rc = rc;
        struct pl_item it = {.kind = IT_FAIL};
        pl_put(p, &it);
    }
    return NULL;
}

fc_rc
img_pump_threaded(const struct img_reader *rd, void *rst, struct fc_sink *next,
                  const volatile sig_atomic_t *cancel)
{
    struct pl *p = calloc(1, sizeof *p);
    if (!p)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    p->sink = (struct fc_sink){pl_begin, pl_write, pl_zero, pl_end};
    p->rd = rd;
    p->rst = rst;
    p->cancel = cancel;
    p->lent = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->prod_cv, NULL);
    pthread_cond_init(&p->cons_cv, NULL);
    pthread_t t;
    fc_rc rc;
    if (pthread_create(&t, NULL, pl_reader, p) != 0) {
        /* no thread: run the reader here */
        rc = rd->pump(rst, next, cancel);
        goto out;
    }
    for (bool done = false; !done;) {
        pthread_mutex_lock(&p->mu);
        while (p->count == 0) {
            p->cons_waiting = true;
            pthread_cond_wait(&p->cons_cv, &p->mu);
            p->cons_waiting = false;
        }
        struct pl_item *s = &p->item[p->head];
        pthread_mutex_unlock(&p->mu);
        switch (s->kind) {
        case IT_BEGIN:
            rc = next->begin(next, &s->info);
            break;
        case IT_DATA:
            rc = next->write(next, s->off, s->ptr, (size_t)s->len);
            break;
        case IT_ZERO:
            rc = next->zero(next, s->off, s->len);
            break;
        case IT_END:
            rc = next->end(next, s->len, s->has_sha ? s->sha : NULL);
            done = true;
            break;
        default: /* IT_FAIL: written before the item was queued */
            rc = FC_ERR(p->fail_rc, "%s", p->fail_msg);
            done = true;
        }
        pthread_mutex_lock(&p->mu);
        if (s->kind == IT_DATA)
            p->buf[s->buf].refs--;
        p->head = (p->head + 1) % PL_ITEMS;
        p->count--;
        if (rc != FC_OK) {
            p->stop = true; /* the reader's next call fails; it then ends */
            done = true;
        }
        /* the reader, if it waits, is woken once there is room for a burst (or nothing
         * is left to write), not after every call: fewer thread switches */
        if (p->prod_waiting && (p->stop || p->count == 0 ||
                                (p->count <= PL_ITEMS / 2 && free_bufs(p) >= PL_BUFS / 2)))
            pthread_cond_signal(&p->prod_cv);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_join(t, NULL);
out:
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->prod_cv);
    pthread_cond_destroy(&p->cons_cv);
    for (int i = 0; i < PL_BUFS; i++)
        free(p->buf[i].mem);
    free(p);
    return rc;
}
