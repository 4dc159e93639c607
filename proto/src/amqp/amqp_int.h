/* SPDX-License-Identifier: Apache-2.0 */
/* fluid_amqp internals shared by conn.c (connection, frames, reconnect) and ops.c
 * (declarations, consumers, publishing, acks). Not installed. */
#ifndef FLUID_AMQP_INT_H
#define FLUID_AMQP_INT_H

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include "fluid/amqp.h"

#define CH_MAIN 1 /* consume, ack, publish with confirms */
#define CH_AUX 2  /* declarations that may fail; reopened after a channel error */
#define CH_LOCK 3 /* pipelined lock + record requests (fc_amqp_lock_record_start) */

struct fc_amqp_ticket {
    uint64_t id;
    int state;          /* 0 pending, 1 done, -1 failed */
    fc_rc rc;
    uint32_t messages;
    char msg[640];
};

struct fc_amqp_consumer {
    char *queue;     /* NULL for a subscription until declared */
    uint16_t prefetch;
    bool subscribe;  /* server-named exclusive queue bound to exchange with keys */
    char *exchange;
    char **keys;
    size_t nkeys;
    char tag[256];   /* consumer tag of the current connection */
};

struct fc_amqp {
    /* configuration (owned copies) */
    char *url, *ca_file, *cert_file, *key_file, *name;
    unsigned heartbeat_s, connect_timeout_ms, rpc_timeout_ms, backoff_min_ms, backoff_max_ms;
    bool reconnect;
    /* parsed URL: pointers into urlbuf */
    char *urlbuf;
    struct amqp_connection_info ci;
    char where[320];

    amqp_connection_state_t conn;
    bool up, aux_open;
    uint64_t gen;

    /* remembered topology and consumers */
    bool topology;
    char **sites;
    size_t nsites;
    struct fc_amqp_consumer *cons;
    size_t ncons;

    /* deliveries read while waiting for something else */
    struct fc_amqp_delivery **q;
    size_t qlen, qcap;

    /* publisher confirms on CH_MAIN */
    uint64_t next_seq;  /* sequence number of the next publish */
    uint64_t *pending;  /* unconfirmed sequence numbers, ascending */
    size_t npending, cappending;
    bool return_seen;   /* basic.return received: applies to the next confirm */
    uint64_t wait_seq;  /* the publish fc_amqp_publish waits for (0 = none) */
    int wait_result;    /* 0 pending, 1 acked, 2 nacked, 3 returned */
    unsigned batch_nacks, batch_returns;
    bool lock_open;     /* CH_LOCK */
    struct fc_amqp_ticket *tickets; /* lock + record requests, oldest first */
    size_t ntickets, captickets;
    uint64_t ticket_seq;
    uint64_t *failed;   /* sequence numbers nacked or returned on this connection (recent) */
    size_t nfailed, capfailed;

    /* reconnect backoff */
    unsigned backoff_ms;
    uint64_t next_attempt_ns;
    unsigned failures;
};

uint64_t fc_amqp_now_ns_(void);
/* Marks the connection lost (logs why once), drops buffered deliveries and confirms. */
void fc_amqp_lost_(struct fc_amqp *a, const char *why);
/* Turns an RPC reply into an fc_rc with a message naming what; handles channel/connection
 * close (sending close-ok). */
fc_rc fc_amqp_reply_rc_(struct fc_amqp *a, amqp_rpc_reply_t r, amqp_channel_t ch,
                        const char *what);
/* Same for a library status code (socket errors: the connection is lost). */
fc_rc fc_amqp_status_rc_(struct fc_amqp *a, int status, const char *what);
/* Reads and handles one frame, waiting up to timeout_ms (0: only what is buffered or ready).
 * Returns FC_OK when a frame was handled, FC_E_TIMEOUT when none came, FC_E_NET if lost. */
fc_rc fc_amqp_pump_(struct fc_amqp *a, int timeout_ms);
/* Opens CH_AUX when closed. */
fc_rc fc_amqp_aux_(struct fc_amqp *a);
/* Replays declarations and consumers after a connect (ops.c). */
fc_rc fc_amqp_replay_(struct fc_amqp *a);
void fc_amqp_consumer_free_(struct fc_amqp_consumer *c);
/* queue.declare on channel 2 (passive: lookup; dlx: dead-letters to fluid.dead). */
fc_rc fc_amqp_qdecl_(struct fc_amqp *a, const char *name, bool passive, bool dlx,
                     uint64_t expires_ms, uint32_t *messages, uint32_t *consumers);
fc_rc fc_amqp_qbind_(struct fc_amqp *a, const char *queue, const char *exchange, const char *key);
/* A frame on CH_LOCK (declare-ok or channel close) settles the oldest pending ticket. */
void fc_amqp_lock_frame_(struct fc_amqp *a, amqp_frame_t *f);
/* The connection is gone: every pending ticket fails with FC_E_NET. */
void fc_amqp_tickets_lost_(struct fc_amqp *a);
char *fc_amqp_bytes_dup_(amqp_bytes_t b);

#endif
