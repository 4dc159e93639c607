// SPDX-License-Identifier: Apache-2.0
// The helper's write-behind queue (migrators/volume/wq.c): writes run on the writer thread
// in the order they were queued, from aligned buffers, slots are reused only once written,
// wq_drain waits for all of them; the first error stops the writes that follow and comes
// back, with its message, from wq_next and wq_drain.
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "fluid/error.h"
#include "volume.h"

struct log {
    pthread_t main;
    uint64_t off[64];
    int kind[64];
    uint8_t first[64];
    unsigned n;
    bool other_thread;
    uint64_t fail_at; /* offset whose write fails (UINT64_MAX: none) */
};

static fc_rc
record(void *arg, int kind, const uint8_t *buf, uint64_t off, uint64_t len)
{
    struct log *l = arg;
    (void)len;
    usleep(2000); /* slower than the producer: the ring fills */
    if (off == l->fail_at)
        return FC_ERR(FC_E_NOSPACE, "write dst at offset %llu: disk full",
                      (unsigned long long)off);
    l->other_thread = !pthread_equal(pthread_self(), l->main);
    l->off[l->n] = off;
    l->kind[l->n] = kind;
    l->first[l->n] = buf[0];
    l->n++;
    return FC_OK;
}

Test(wq, in_order_on_its_own_thread)
{
    struct log l = {.main = pthread_self(), .fail_at = UINT64_MAX};
    struct wq *q = NULL;
    cr_assert_eq(wq_start(&q, 3, record, &l), FC_OK, "%s", fc_error_msg());
    for (unsigned i = 0; i < 40; i++) {
        uint8_t *buf = NULL;
        cr_assert_eq(wq_next(q, &buf), FC_OK, "%s", fc_error_msg());
        cr_assert_eq((uintptr_t)buf % 4096, 0, "slot buffers are O_DIRECT-aligned");
        buf[0] = (uint8_t)i; /* a slot still queued must not be handed out again */
        wq_push(q, (int)(i % 2), (uint64_t)i << 20, 1 << 20);
    }
    cr_assert_eq(wq_drain(q), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(l.n, 40, "drain returned before all writes were done");
    cr_assert(l.other_thread);
    for (unsigned i = 0; i < 40; i++) {
        cr_assert_eq(l.off[i], (uint64_t)i << 20, "write %u out of order", i);
        cr_assert_eq(l.kind[i], (int)(i % 2));
        cr_assert_eq(l.first[i], (uint8_t)i, "slot %u was refilled before it was written", i);
    }
    wq_free(q);
}

Test(wq, first_error_stops_the_rest_and_comes_back)
{
    struct log l = {.main = pthread_self(), .fail_at = 5ull << 20};
    struct wq *q = NULL;
    cr_assert_eq(wq_start(&q, 4, record, &l), FC_OK, "%s", fc_error_msg());
    fc_rc rc = FC_OK;
    unsigned i;
    for (i = 0; i < 40 && rc == FC_OK; i++) {
        uint8_t *buf = NULL;
        if ((rc = wq_next(q, &buf)) == FC_OK) {
            buf[0] = (uint8_t)i;
            wq_push(q, 0, (uint64_t)i << 20, 1 << 20);
        }
    }
    cr_assert_eq(rc, FC_E_NOSPACE, "the writer's error must stop the producer");
    cr_assert(strstr(fc_error_msg(), "offset 5242880: disk full"), "%s", fc_error_msg());
    cr_assert_lt(i, 40);
    cr_assert_eq(wq_drain(q), FC_E_NOSPACE);
    cr_assert(strstr(fc_error_msg(), "disk full"), "%s", fc_error_msg());
    wq_free(q);
    cr_assert_eq(l.n, 5, "writes after the failed one were applied (%u)", l.n);
}
