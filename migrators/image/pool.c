/* SPDX-License-Identifier: Apache-2.0 */
/* The compression worker pool: a ring of fixed-size jobs filled by the writer in order,
 * compressed by worker threads (the writer helps while it waits), and retired in order.
 * qcow2 clusters are raw deflate that QEMU inflates with a 4 KiB window, so they are made
 * by isa-l with hist_bits = 12 when available (zlib with windowBits -12 otherwise);
 * streamOptimized VMDK grains are zlib streams made by libdeflate (stored when a sample
 * shows the grain does not compress). */
#include <libdeflate.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#ifdef FLUID_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#include "fluid/error.h"
#include "image.h"

enum { J_FREE, J_QUEUED, J_RUNNING, J_DONE };

/* Per-thread compressor state. */
struct comp {
    struct libdeflate_compressor *ld, *ld0, *ld1; /* the level asked for; 0 (stored); 1 */
    uint8_t *lvlbuf;
    z_stream z;
    bool zinit;
};


struct slot {
    struct img_job job;
    int state;
};

struct img_pool {
    int kind, level, nthreads;
    size_t unit, limit;
    struct slot *ring;
    size_t nslots, head, tail, count, next_run; /* head: oldest; tail: next free */
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    pthread_t *threads;
    bool stop;
    struct comp *helper; /* the producer's own compressor, made on first use */
    bool helper_failed;
};

#ifdef FLUID_HAVE_ISAL
static uint32_t
isal_buf_size(uint32_t level)
{
    return level >= 3 ? ISAL_DEF_LVL3_DEFAULT : level == 2 ? ISAL_DEF_LVL2_DEFAULT
                                                          : ISAL_DEF_LVL1_DEFAULT;
}
#endif

static size_t
do_compress(struct img_pool *p, struct comp *c, const uint8_t *in, size_t len, uint8_t *out)
{
    if (p->kind == 1) {
        /* a grain whose first and middle 8 KiB do not shrink by 1/64 is stored (still a
         * valid zlib stream): random or already compressed data costs a copy, not a
         * compression */
        if (len >= 32768 && c->ld0 && libdeflate_deflate_compress(c->ld1, in, 8192, out,
                                                                   8192 - 128) == 0 &&
            libdeflate_deflate_compress(c->ld1, in + len / 2, 8192, out, 8192 - 128) == 0)
            return libdeflate_zlib_compress(c->ld0, in, len, out, p->limit);
        return libdeflate_zlib_compress(c->ld, in, len, out, p->limit);
    }
#ifdef FLUID_HAVE_ISAL
    struct isal_zstream s;
    isal_deflate_stateless_init(&s);
    s.next_in = (uint8_t *)in;
    s.avail_in = (uint32_t)len;
    s.next_out = out;
    s.avail_out = (uint32_t)p->limit;
    s.end_of_stream = 1;
    s.flush = NO_FLUSH;
    s.level = (uint32_t)(p->level ? p->level : 1);
    s.level_buf = c->lvlbuf;
    s.level_buf_size = isal_buf_size(s.level);
    s.hist_bits = 12;
    s.gzip_flag = IGZIP_DEFLATE;
    if (isal_deflate_stateless(&s) != COMP_OK || s.avail_in != 0)
        return 0;
    return s.total_out;
#else
    if (!c->zinit) {
        if (deflateInit2(&c->z, p->level ? p->level : 1, Z_DEFLATED, -12, 9,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            return 0;
        c->zinit = true;
    } else {
        deflateReset(&c->z);
    }
    c->z.next_in = (Bytef *)in;
    c->z.avail_in = (uInt)len;
    c->z.next_out = out;
    c->z.avail_out = (uInt)p->limit;
    if (deflate(&c->z, Z_FINISH) != Z_STREAM_END)
        return 0;
    return p->limit - c->z.avail_out;
#endif
}

static fc_rc
comp_init(struct img_pool *p, struct comp *c)
{
    memset(c, 0, sizeof *c);
    if (p->kind == 1) {
        c->ld = libdeflate_alloc_compressor(p->level ? p->level : 6);
        c->ld0 = libdeflate_alloc_compressor(0);
        c->ld1 = libdeflate_alloc_compressor(1);
        return c->ld && c->ld0 && c->ld1 ? FC_OK : FC_ERR(FC_E_NOMEM, "compressor: out of memory");
    }
#ifdef FLUID_HAVE_ISAL
    c->lvlbuf = malloc(isal_buf_size((uint32_t)(p->level ? p->level : 1)));
    if (!c->lvlbuf)
        return FC_ERR(FC_E_NOMEM, "compressor: out of memory");
#endif
    return FC_OK;
}

static void
comp_fini(struct comp *c)
{
    if (c->ld)
        libdeflate_free_compressor(c->ld);
    if (c->ld0)
        libdeflate_free_compressor(c->ld0);
    if (c->ld1)
        libdeflate_free_compressor(c->ld1);
    free(c->lvlbuf);
    if (c->zinit)
        deflateEnd(&c->z);
}

/* Runs one queued job (lock held on entry and exit). */
static void
run_one(struct img_pool *p, struct comp *c)
{
    struct slot *s = &p->ring[p->next_run];
    p->next_run = (p->next_run + 1) % p->nslots;
    s->state = J_RUNNING;
    pthread_mutex_unlock(&p->mu);
    s->job.out_len = do_compress(p, c, s->job.in, s->job.in_len, s->job.out);
    pthread_mutex_lock(&p->mu);
    s->state = J_DONE;
    pthread_cond_broadcast(&p->cv_done);
}

static void *
worker(void *arg)
{
    struct img_pool *p = arg;
    struct comp c;
    bool ok = comp_init(p, &c) == FC_OK;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->ring[p->next_run].state != J_QUEUED)
            pthread_cond_wait(&p->cv_work, &p->mu);
        if (p->stop)
            break;
        if (!ok) { /* no memory for a compressor: store the unit uncompressed */
            struct slot *s = &p->ring[p->next_run];
            p->next_run = (p->next_run + 1) % p->nslots;
            s->job.out_len = 0;
            s->state = J_DONE;
            pthread_cond_broadcast(&p->cv_done);
            continue;
        }
        run_one(p, &c);
    }
    pthread_mutex_unlock(&p->mu);
    comp_fini(&c);
    return NULL;
}

static struct comp *
helper_comp(struct img_pool *p)
{
    if (!p->helper && !p->helper_failed) {
        p->helper = malloc(sizeof *p->helper);
        if (!p->helper || comp_init(p, p->helper) != FC_OK) {
            if (p->helper)
                comp_fini(p->helper);
            free(p->helper);
            p->helper = NULL;
            p->helper_failed = true;
        }
    }
    return p->helper;
}

fc_rc
img_pool_new(struct img_pool **out, int kind, int level, int threads, size_t unit, size_t limit)
{
    struct img_pool *p = calloc(1, sizeof *p);
    if (!p)
        return FC_ERR(FC_E_NOMEM, "pool: out of memory");
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    if (threads > 64)
        threads = 64;
    p->kind = kind;
    p->level = level;
    p->unit = unit;
    p->limit = limit;
    p->nslots = (size_t)threads * 4 + 4;
    p->ring = calloc(p->nslots, sizeof *p->ring);
    p->threads = calloc((size_t)threads, sizeof *p->threads);
    if (!p->ring || !p->threads) {
        img_pool_free(p);
        return FC_ERR(FC_E_NOMEM, "pool: out of memory");
    }
    for (size_t i = 0; i < p->nslots; i++) {
        p->ring[i].job.in = img_alloc_io(unit);
        p->ring[i].job.out = img_alloc_io(limit + 64);
        if (!p->ring[i].job.in || !p->ring[i].job.out) {
            img_pool_free(p);
            return FC_ERR(FC_E_NOMEM, "pool: out of memory");
        }
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
            break;
        p->nthreads++;
    }
    *out = p;
    return FC_OK;
}

bool
img_pool_full(struct img_pool *p)
{
    return p->count == p->nslots;
}

struct img_job *
img_pool_get(struct img_pool *p)
{
    if (p->count == p->nslots)
        return NULL;
    return &p->ring[p->tail].job;
}

void
img_pool_submit(struct img_pool *p, struct img_job *j)
{
    pthread_mutex_lock(&p->mu);
    p->ring[p->tail].state = J_QUEUED;
    p->tail = (p->tail + 1) % p->nslots;
    p->count++;
    pthread_cond_signal(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
}

struct img_job *
img_pool_next(struct img_pool *p)
{
    if (p->count == 0)
        return NULL;
    struct slot *s = &p->ring[p->head];
    pthread_mutex_lock(&p->mu);
    while (s->state != J_DONE) {
        /* help: compress the next queued job here instead of waiting idle */
        struct comp *c;
        if (p->ring[p->next_run].state == J_QUEUED && (c = helper_comp(p)) != NULL)
            run_one(p, c);
        else
            pthread_cond_wait(&p->cv_done, &p->mu);
    }
    s->state = J_FREE;
    pthread_mutex_unlock(&p->mu);
    p->head = (p->head + 1) % p->nslots;
    p->count--;
    return &s->job;
}

void
img_pool_free(struct img_pool *p)
{
    if (!p)
        return;
    if (p->nthreads) {
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_broadcast(&p->cv_work);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->nthreads; i++)
            pthread_join(p->threads[i], NULL);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv_work);
        pthread_cond_destroy(&p->cv_done);
    }
    if (p->helper) {
        comp_fini(p->helper);
        free(p->helper);
    }
    if (p->ring)
        for (size_t i = 0; i < p->nslots; i++) {
            free(p->ring[i].job.in);
            free(p->ring[i].job.out);
        }
    free(p->ring);
    free(p->threads);
    free(p);
}
