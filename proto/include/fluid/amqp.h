/* SPDX-License-Identifier: Apache-2.0 */
/* fluid_amqp: the AMQP 0-9-1 transport of FluidCloud on librabbitmq-c (docs/amqp.md).
 * One connection with two channels: channel 1 consumes (manual ack, prefetch) and publishes
 * (persistent, publisher confirms); channel 2 runs declarations that may fail (a failure
 * closes only that channel). The object remembers what was declared and consumed, and
 * replays it after a reconnect. Not thread-safe: use one object per thread.
 *
 * A single-threaded daemon calls fc_amqp_wait() in its loop (or polls fc_amqp_fd() and then
 * calls fc_amqp_wait(a, 0, ...)); with cfg.reconnect it reconnects with exponential backoff
 * after the connection drops or RabbitMQ restarts. Passwords never reach a log or an error
 * message: errors name host:port/vhost only. */
#ifndef FLUID_AMQP_H
#define FLUID_AMQP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fluid/amqp_names.h"
#include "fluid/rc.h"

struct fc_amqp_config {
    const char *url;             /* amqp[s]://user:pass@host:port/vhost; NULL = default */
    const char *ca_file;         /* amqps: CA certificates (PEM); NULL = the system store */
    const char *cert_file;       /* amqps: client certificate (PEM), optional */
    const char *key_file;        /* amqps: its key */
    const char *name;            /* connection_name shown by rabbitmqctl (may be NULL) */
    unsigned heartbeat_s;        /* 0 = 10 s; missed heartbeats drop the connection */
    unsigned connect_timeout_ms; /* 0 = 5000: TCP, TLS and login */
    unsigned rpc_timeout_ms;     /* 0 = 10000: a declaration or a publisher confirm */
    unsigned backoff_min_ms;     /* 0 = 100: first reconnect delay, doubled each failure */
    unsigned backoff_max_ms;     /* 0 = 10000 */
    bool reconnect;              /* fc_amqp_wait() reconnects by itself (daemons) */
};

struct fc_amqp_header {
    const char *key;
    const char *value;
};

/* A message to publish. Persistent, content_type application/json unless told otherwise. */
struct fc_amqp_msg {
    const char *exchange;    /* "" = the default exchange (routing key = queue name) */
    const char *routing_key;
    const void *body;
    size_t len;
    const char *message_id;  /* the idempotency key or id; NULL = none */
    const char *content_type; /* NULL = application/json */
    const struct fc_amqp_header *headers; /* string headers (x-fluid-reason, ...) */
    size_t nheaders;
    const char *const *cc;   /* sender-selected distribution: more routing keys (CC header) */
    size_t ncc;
    bool mandatory;          /* unroutable: FC_E_NOTFOUND instead of silently dropped */
    bool transient;          /* delivery_mode 1 (default: 2, persistent) */
};

/* A received message. Owned by the caller: fc_amqp_delivery_free(). */
struct fc_amqp_delivery {
    uint64_t tag;            /* delivery tag on the connection it came from */
    uint64_t generation;     /* that connection (fc_amqp_generation()); acks of an older one
                              * are no-ops: RabbitMQ has requeued the message */
    bool redelivered;
    char *exchange, *routing_key, *consumer_tag, *queue;
    char *message_id, *content_type; /* NULL when absent */
    void *body;              /* NUL-terminated for convenience (len excludes it) */
    size_t len;
    struct fc_amqp_header *headers; /* string-valued headers only */
    size_t nheaders;
};

struct fc_amqp;

/* The URL to use: flag, else $FLUID_AMQP_URL, else config_value, else the default. */
const char *fc_amqp_url_pick(const char *flag, const char *config_value);
/* Writes "amqp://host:port/vhost" (no user, no password) for logs; "(invalid URL)" if the URL
 * does not parse. */
void fc_amqp_url_redact(const char *url, char *out, size_t cap);

/* Parses the URL (FC_E_INVALID naming what is wrong, never echoing the password); no I/O. */
fc_rc fc_amqp_new(const struct fc_amqp_config *cfg, struct fc_amqp **out);
/* One connection attempt: TCP (+TLS with peer and host-name verification), login, channels,
 * confirm.select, then replays the remembered declarations and consumers.
 * FC_E_NET (unreachable, dropped), FC_E_AUTH (login refused), FC_E_VERIFY (certificate),
 * FC_E_REMOTE (a replayed declaration was refused). */
fc_rc fc_amqp_connect(struct fc_amqp *a);
/* fc_amqp_new + fc_amqp_connect; on failure *out is NULL. */
fc_rc fc_amqp_open(const struct fc_amqp_config *cfg, struct fc_amqp **out);
/* Closes the connection cleanly (unacked deliveries are requeued by RabbitMQ); NULL is fine. */
void fc_amqp_close(struct fc_amqp *a);

bool fc_amqp_connected(const struct fc_amqp *a);
/* Increments on every successful connect (1 after the first). */
uint64_t fc_amqp_generation(const struct fc_amqp *a);
/* The socket to poll for POLLIN, or -1 when disconnected. Data may already be buffered: after
 * poll, or at least every heartbeat_s/2, call fc_amqp_wait(a, 0, ...). */
int fc_amqp_fd(const struct fc_amqp *a);
/* True when deliveries or frames are already buffered in memory: do not block in poll() on
 * fc_amqp_fd() then (call fc_amqp_wait(a, 0, ...) first). */
bool fc_amqp_pending(const struct fc_amqp *a);
/* "host:port/vhost" of the connection (for logs). */
const char *fc_amqp_where(const struct fc_amqp *a);

/* ---- topology (idempotent; remembered and replayed after a reconnect) ---- */

/* Declares everything of amqp_names.h that is not per site: exchanges fluid.tasks,
 * fluid.events, fluid.control (topic), fluid.dead (fanout), queues fluid.requests and
 * fluid.dead (durable; fluid.requests dead-letters to fluid.dead). A declaration that
 * conflicts with an existing one is FC_E_REMOTE naming the object. */
fc_rc fc_amqp_declare_topology(struct fc_amqp *a);
/* Declares fluid.tasks.<site> (durable, dead-letters to fluid.dead) bound with "<site>.#". */
fc_rc fc_amqp_declare_site(struct fc_amqp *a, const char *site);

/* ---- consuming ---- */

/* Starts consuming queue with manual acks; prefetch = unacked deliveries at most (0 = no
 * limit). Remembered and resumed after a reconnect. */
fc_rc fc_amqp_consume(struct fc_amqp *a, const char *queue, uint16_t prefetch);
/* Declares a server-named exclusive auto-delete queue bound to exchange with each key, and
 * consumes it (prefetch as above). name_out (may be NULL, else 256 bytes) gets its name.
 * After a reconnect a new queue is made: messages published meanwhile are not seen. */
fc_rc fc_amqp_subscribe(struct fc_amqp *a, const char *exchange, const char *const *keys,
                        size_t nkeys, uint16_t prefetch, char *name_out);
/* Stops consuming queue (basic.cancel) and forgets it: it is not resumed after a reconnect.
 * Deliveries already received stay valid. FC_E_NOTFOUND if not consuming it. */
fc_rc fc_amqp_cancel_consumer(struct fc_amqp *a, const char *queue);
/* Waits up to timeout_ms (0: no wait, -1: forever) for a delivery; *out = NULL when none.
 * Handles heartbeats, publisher confirms and, with cfg.reconnect, reconnects (never longer
 * than timeout_ms per call). Without cfg.reconnect a dropped connection is FC_E_NET. */
fc_rc fc_amqp_wait(struct fc_amqp *a, int timeout_ms, struct fc_amqp_delivery **out);
/* basic.get: one message from queue or *out = NULL if it is empty (manual ack). */
fc_rc fc_amqp_get(struct fc_amqp *a, const char *queue, struct fc_amqp_delivery **out);

/* Settles a delivery. A delivery from an older connection generation: FC_OK, no-op. */
fc_rc fc_amqp_ack(struct fc_amqp *a, const struct fc_amqp_delivery *d);
fc_rc fc_amqp_nack(struct fc_amqp *a, const struct fc_amqp_delivery *d, bool requeue);
/* Re-publishes d (body unchanged) to fluid.dead with x-fluid-reason = reason (one line,
 * truncated to 1000 bytes) and x-fluid-routing-key, waits for the confirm, then acks d. */
fc_rc fc_amqp_dead_letter(struct fc_amqp *a, const struct fc_amqp_delivery *d,
                          const char *reason);

/* The value of a string header, or NULL. */
const char *fc_amqp_delivery_header(const struct fc_amqp_delivery *d, const char *key);
void fc_amqp_delivery_free(struct fc_amqp_delivery *d);

/* ---- publishing ---- */

/* Publishes and waits for the publisher confirm (rpc_timeout_ms). FC_OK: RabbitMQ has taken
 * it (persisted if persistent and routed to durable queues). FC_E_REMOTE: nacked.
 * FC_E_NOTFOUND: mandatory and unroutable. FC_E_NET: disconnected, the outcome is unknown
 * (publish again: consumers deduplicate by message_id). */
fc_rc fc_amqp_publish(struct fc_amqp *a, const struct fc_amqp_msg *m);
/* Publishes without waiting; fc_amqp_confirm_wait() waits for every outstanding confirm and
 * fails if any was nacked or returned. For batches (benchmarks, plans). */
fc_rc fc_amqp_publish_nowait(struct fc_amqp *a, const struct fc_amqp_msg *m);
fc_rc fc_amqp_confirm_wait(struct fc_amqp *a);
/* Publishes without waiting and gives its sequence number: with the generation of the
 * connection (fc_amqp_generation() now), fc_amqp_confirmed() tells what became of it. */
fc_rc fc_amqp_publish_async(struct fc_amqp *a, const struct fc_amqp_msg *m, uint64_t *seq);
/* 1: confirmed; 0: not yet (confirms are read by fc_amqp_wait); -1: refused (nack,
 * unroutable with mandatory) or unknown because the connection was lost since: publish again
 * (after checking, for an outcome, that it did not land). */
int fc_amqp_confirmed(const struct fc_amqp *a, uint64_t gen, uint64_t seq);
/* fc_amqp_publish, reconnecting with backoff on FC_E_NET until deadline_ms have passed. */
fc_rc fc_amqp_publish_retry(struct fc_amqp *a, const struct fc_amqp_msg *m, unsigned deadline_ms);

/* ---- declarations on channel 2 (not replayed) ---- */

/* Passive declare: FC_E_NOTFOUND when the queue does not exist. */
fc_rc fc_amqp_queue_info(struct fc_amqp *a, const char *queue, uint32_t *messages,
                         uint32_t *consumers);
fc_rc fc_amqp_queue_delete(struct fc_amqp *a, const char *queue);
fc_rc fc_amqp_queue_purge(struct fc_amqp *a, const char *queue);
/* A lock held by this connection: declares the exclusive queue name. FC_E_CONFLICT when
 * another connection holds it. RabbitMQ drops it when the connection closes or dies; it is
 * not re-taken after a reconnect (the caller checks fc_amqp_generation()). */
fc_rc fc_amqp_lock(struct fc_amqp *a, const char *name);
/* Drops it (queue.delete without waiting for the reply). */
fc_rc fc_amqp_unlock(struct fc_amqp *a, const char *name);
/* Declares a durable queue with x-expires = expires_ms (0: none), binds it to exchange with
 * key, and returns how many messages it holds. */
fc_rc fc_amqp_declare_record(struct fc_amqp *a, const char *queue, const char *exchange,
                             const char *key, uint32_t expires_ms, uint32_t *messages);

/* fc_amqp_lock + fc_amqp_declare_record in one round trip (the methods are pipelined on
 * channel 2). FC_E_CONFLICT when another connection holds the lock. */
fc_rc fc_amqp_lock_record(struct fc_amqp *a, const char *lock, const char *queue,
                          const char *exchange, const char *key, uint32_t expires_ms,
                          uint32_t *messages);
/* The same without waiting: sends the request on channel 3 and gives a ticket. The reply is
 * read by fc_amqp_wait(); fc_amqp_lock_record_poll() then returns FC_OK (with *messages),
 * FC_E_CONFLICT, another error (FC_E_NET: ask again), or FC_E_TIMEOUT while it is pending.
 * A settled ticket is forgotten once polled. Requests are answered in order. */
fc_rc fc_amqp_lock_record_start(struct fc_amqp *a, const char *lock, const char *queue,
                                const char *exchange, const char *key, uint32_t expires_ms,
                                uint64_t *ticket);
fc_rc fc_amqp_lock_record_poll(struct fc_amqp *a, uint64_t ticket, uint32_t *messages);

#endif
