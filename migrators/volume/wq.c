/* SPDX-License-Identifier: Apache-2.0 */
/* The helper's write-behind queue: one thread applies the writes in the order they were
 * queued, from a ring of aligned 1 MiB buffers, while the main thread reads and hashes the
 * next chunk from the client. An O_DIRECT write of 1 MiB waits ~0.85 ms for the disk here;
 * done inline, that wait stopped the helper from draining sshd's pipe, and the sender
 * stalled on the SSH window. The first error stops the writes: later slots are given back
 * unwritten and the error (with its message) is returned to the main thread. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/error.h"
#include "volume.h"

struct wq_slot {
    int kind;
    uint64_t off, len;
};

struct wq {
    wq_fn fn;
    void *arg;
    unsigned n;
    uint8_t **buf;
    struct wq_slot *slot;
    unsigned head, tail, count; /* slots [tail, tail+count) are queued */
    bool stop;
    fc_rc err;
    char msg[512];
    pthread_mutex_t mu;
    pthread_cond_t work, room;
    pthread_t th;
    bool started;
};

static void *
writer(void *arg)
{
    struct wq *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->count && !q->stop)
            pthread_cond_wait(&q->work, &q->mu);
        if (!q->count)
            break;
        unsigned i = q->tail % q->n;
        struct wq_slot sl = q->slot[i];
        bool failed = q->err != FC_OK;
        pthread_mutex_unlock(&q->mu);
        fc_rc rc = failed ? FC_OK : q->fn(q->arg, sl.kind, q->buf[i], sl.off, sl.len);
        pthread_mutex_lock(&q->mu);
        if (rc != FC_OK && q->err == FC_OK) {
            q->err = rc;
            snprintf(q->msg, sizeof q->msg, "%s", fc_error_msg());
        }
        q->tail++;
        q->count--;
        pthread_cond_broadcast(&q->room);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

fc_rc
wq_start(struct wq **out, unsigned nbuf, wq_fn fn, void *arg)
{
    struct wq *q = calloc(1, sizeof *q);
    if (!q)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    *out = q;
    q->fn = fn;
    q->arg = arg;
    q->n = nbuf;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->work, NULL);
    pthread_cond_init(&q->room, NULL);
    if (!(q->buf = calloc(nbuf, sizeof *q->buf)) || !(q->slot = calloc(nbuf, sizeof *q->slot)))
        return FC_ERR(FC_E_NOMEM, "out of memory");
    for (unsigned i = 0; i < nbuf; i++)
        if (!(q->buf[i] = aligned_alloc(4096, VOL_CHUNK))) /* O_DIRECT writes from it */
            return FC_ERR(FC_E_NOMEM, "out of memory");
    if (pthread_create(&q->th, NULL, writer, q) != 0)
        return FC_ERR(FC_E_NOMEM, "serve: cannot start the writer thread");
    q->started = true;
    return FC_OK;
}

/* With mu held: waits until at most `most` slots are queued or the writer has failed. On
 * failure, unlocks mu and raises the writer's error (with its message) on this thread. */
static fc_rc
wait_queued(struct wq *q, unsigned most)
{
    while (q->count > most && q->err == FC_OK)
        pthread_cond_wait(&q->room, &q->mu);
    if (q->err == FC_OK)
        return FC_OK;
    fc_rc rc = q->err;
    pthread_mutex_unlock(&q->mu);
    return FC_ERR(rc, "%s", q->msg);
}

fc_rc
wq_next(struct wq *q, uint8_t **buf)
{
    pthread_mutex_lock(&q->mu);
    fc_rc rc = wait_queued(q, q->n - 1);
    if (rc != FC_OK)
        return rc;
    *buf = q->buf[q->head % q->n];
    pthread_mutex_unlock(&q->mu);
    return FC_OK;
}

void
wq_push(struct wq *q, int kind, uint64_t off, uint64_t len)
{
    pthread_mutex_lock(&q->mu);
    q->slot[q->head % q->n] = (struct wq_slot){kind, off, len};
    q->head++;
    q->count++;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->mu);
}

fc_rc
wq_drain(struct wq *q)
{
    pthread_mutex_lock(&q->mu);
    fc_rc rc = wait_queued(q, 0);
    if (rc == FC_OK)
        pthread_mutex_unlock(&q->mu);
    return rc;
}

void
wq_free(struct wq *q)
{
    if (!q)
        return;
    if (q->started) {
        pthread_mutex_lock(&q->mu);
        q->stop = true;
        pthread_cond_signal(&q->work);
        pthread_mutex_unlock(&q->mu);
        pthread_join(q->th, NULL);
    }
    for (unsigned i = 0; q->buf && i < q->n; i++)
        free(q->buf[i]);
    free(q->buf);
    free(q->slot);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->room);
    free(q);
}
