/* SPDX-License-Identifier: Apache-2.0 */
/* Reader and writer on two threads: the reader's pump runs on its own thread and its sink
 * calls are queued (data copied into a ring of buffers) to the writer on the calling thread,
 * so that reading the input and writing the output overlap, as QEMU overlaps them with
 * several requests in flight. The order of the calls is kept; a failure on either side
 * stops the other and its message is carried to the caller. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/error.h"
#include "image.h"

#define PL_SLOTS 8
#define PL_BUF (1u << 20)

enum { IT_BEGIN, IT_DATA, IT_ZERO, IT_END, IT_FAIL };

struct pl_slot {
    int kind;
    bool full;
    uint64_t off, len;
    uint8_t *buf;
    struct fc_stream_info info;
    uint8_t sha[32];
    bool has_sha;
    fc_rc rc;
    char msg[1024];
};

struct pl {
    struct fc_sink sink; /* the reader's side, first */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pl_slot slot[PL_SLOTS];
    size_t head, tail;   /* consumer takes head, producer fills tail */
    bool stop;           /* the writer failed: the reader stops at its next call */
    const struct img_reader *rd;
    void *rst;
    const volatile sig_atomic_t *cancel;
    bool ended;          /* the reader called end() */
};

/* Waits for a free slot at the tail (producer). NULL when the consumer stopped. */
static struct pl_slot *
pl_take(struct pl *p)
{
    pthread_mutex_lock(&p->mu);
    while (!p->stop && p->slot[p->tail].full)
        pthread_cond_wait(&p->cv, &p->mu);
    struct pl_slot *s = p->stop ? NULL : &p->slot[p->tail];
    pthread_mutex_unlock(&p->mu);
    return s;
}

static void
pl_publish(struct pl *p, struct pl_slot *s)
{
    pthread_mutex_lock(&p->mu);
    s->full = true;
    p->tail = (p->tail + 1) % PL_SLOTS;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static fc_rc
stopped(void)
{
    return FC_ERR(FC_E_CANCELLED, "reader stopped: the writer failed");
}

static fc_rc
pl_begin(struct fc_sink *sk, const struct fc_stream_info *info)
{
    struct pl *p = (struct pl *)sk;
    struct pl_slot *s = pl_take(p);
    if (!s)
        return stopped();
    s->kind = IT_BEGIN;
    s->info = *info;
    pl_publish(p, s);
    return FC_OK;
}

static fc_rc
pl_write(struct fc_sink *sk, uint64_t off, const void *buf, size_t len)
{
    struct pl *p = (struct pl *)sk;
    const uint8_t *b = buf;
    while (len > 0) {
        struct pl_slot *s = pl_take(p);
        if (!s)
            return stopped();
        if (!s->buf && !(s->buf = img_alloc_io(PL_BUF)))
            return FC_ERR(FC_E_NOMEM, "out of memory");
        size_t k = len < PL_BUF ? len : PL_BUF;
        memcpy(s->buf, b, k);
        s->kind = IT_DATA;
        s->off = off;
        s->len = k;
        pl_publish(p, s);
        b += k;
        off += k;
        len -= k;
    }
    return FC_OK;
}

static fc_rc
pl_zero(struct fc_sink *sk, uint64_t off, uint64_t len)
{
    struct pl *p = (struct pl *)sk;
    struct pl_slot *s = pl_take(p);
    if (!s)
        return stopped();
    s->kind = IT_ZERO;
    s->off = off;
    s->len = len;
    pl_publish(p, s);
    return FC_OK;
}

static fc_rc
pl_end(struct fc_sink *sk, uint64_t size, const uint8_t *sha)
{
    struct pl *p = (struct pl *)sk;
    struct pl_slot *s = pl_take(p);
    if (!s)
        return stopped();
    s->kind = IT_END;
    p->ended = true;
    s->len = size;
    s->has_sha = sha != NULL;
    if (sha)
        memcpy(s->sha, sha, 32);
    pl_publish(p, s);
    return FC_OK;
}

static void *
pl_reader(void *arg)
{
    struct pl *p = arg;
    fc_rc rc = p->rd->pump(p->rst, &p->sink, p->cancel);
    if (rc == FC_OK && !p->ended)
        rc = FC_ERR(FC_E_INTERNAL, "%s reader returned without end()", p->rd->name);
    if (rc != FC_OK) {
        /* hand the failure over (unless the writer stopped us: it has its own) */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", fc_error_msg());
        struct pl_slot *s = pl_take(p);
        if (s) {
            s->kind = IT_FAIL;
            s->rc = rc;
            snprintf(s->msg, sizeof s->msg, "%s", msg);
            pl_publish(p, s);
        }
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
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_t t;
    fc_rc rc;
    if (pthread_create(&t, NULL, pl_reader, p) != 0) {
        /* no thread: run the reader here */
        rc = rd->pump(rst, next, cancel);
        goto out;
    }
    for (bool done = false; !done;) {
        pthread_mutex_lock(&p->mu);
        while (!p->slot[p->head].full)
            pthread_cond_wait(&p->cv, &p->mu);
        struct pl_slot *s = &p->slot[p->head];
        pthread_mutex_unlock(&p->mu);
        switch (s->kind) {
        case IT_BEGIN:
            rc = next->begin(next, &s->info);
            break;
        case IT_DATA:
            rc = next->write(next, s->off, s->buf, (size_t)s->len);
            break;
        case IT_ZERO:
            rc = next->zero(next, s->off, s->len);
            break;
        case IT_END:
            rc = next->end(next, s->len, s->has_sha ? s->sha : NULL);
            done = true;
            break;
        default:
            rc = FC_ERR(s->rc, "%s", s->msg);
            done = true;
        }
        pthread_mutex_lock(&p->mu);
        s->full = false;
        p->head = (p->head + 1) % PL_SLOTS;
        if (rc != FC_OK) {
            p->stop = true; /* the reader's next call fails; it then ends */
            done = true;
        }
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_join(t, NULL);
out:
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    for (int i = 0; i < PL_SLOTS; i++)
        free(p->slot[i].buf);
    free(p);
    return rc;
}
