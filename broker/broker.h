/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-broker internals: configuration, the broker state and one task's life
 * (docs/broker.md describes the behaviour and the exactly-once guarantee). */
#ifndef FLUID_BROKER_H
#define FLUID_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fluid/amqp.h"
#include "fluid/msg.h"
#include "fluid/viaduct.h"

struct broker_config {
    char *amqp_url;         /* secret: never logged */
    char *amqp_ca_file;
    char *site;             /* default "default" */
    char *broker_id;        /* default <host>-<pid> */
    unsigned capacity;      /* concurrent tasks = prefetch; default 4 */
    char *migrator_dir;
    unsigned heartbeat_s;   /* BrokerHeartbeat interval; default 5 */
    unsigned retry_base_ms; /* first retry delay, doubled per attempt; default 1000 */
    unsigned retry_max_ms;  /* default 60000 */
    unsigned kill_grace_ms; /* SIGTERM -> SIGKILL for a chain; default 2000 */
    unsigned drain_s;       /* on SIGTERM: wait for running tasks this long; default 60 */
    unsigned retention_s;   /* outcome records kept (x-expires); default 7 days */
    unsigned progress_ms;   /* at most one progress event per task per this; default 1000 */
    bool amqp_from_flag;    /* precedence: flag > $FLUID_AMQP_URL > file */
    bool migrator_dir_from_flag; /* flag > $FLUID_MIGRATOR_DIR > file > own folder */
};

/* Fills defaults, then the config file (path, or $FLUID_BROKER_CONFIG, or
 * <sysconfdir>/broker.conf when it exists), then argv. FC_E_INVALID names the line or flag.
 * *exit_now is set for --help / --version. */
fc_rc broker_config_load(struct broker_config *c, int argc, char **argv, bool *exit_now);
void broker_config_free(struct broker_config *c);

enum btask_state {
    BT_ACQUIRING, /* lock + record requested (ticket), reply pending */
    BT_RUNNING,   /* its viaduct runs */
    BT_BACKOFF,   /* failed transiently; next attempt at due_ns */
    BT_DEFERRED,  /* another broker holds its lock; try again at due_ns */
    BT_FINISHING, /* outcome decided, to publish */
    BT_CONFIRMING, /* outcome published, waiting for RabbitMQ's confirm */
};

struct broker;

struct btask {
    struct btask *next;
    struct broker *b;
    struct fc_task *task;
    char *json;
    size_t len;
    struct fc_amqp_delivery **d; /* every delivery carrying this idempotency key */
    size_t nd;
    char lock[64], record[64], cc[64];
    uint64_t lock_gen;           /* connection generation holding the lock; 0 = none */
    enum btask_state st;
    uint32_t attempt;
    struct fc_viaduct *v;
    uint64_t due_ns, last_progress_ns;
    /* the outcome, once decided */
    enum fc_task_state outcome;
    fc_rc err_code;
    char err_msg[FC_TEXT_MAX];
    int err_stage;
    char *err_tail;
    json_t *result;
    bool dead_letter;            /* failed for good: copy to fluid.dead before the outcome */
    bool dead_lettered;
    bool cancel;                 /* a Cancel message asked for it */
    bool requeue;                /* shutting down: give it back instead of an outcome */
    uint64_t out_seq, out_gen;   /* the outcome's publish (BT_CONFIRMING) */
    uint64_t ticket;             /* BT_ACQUIRING */
    bool deferred_logged;
};

struct cancelled {
    char *relocation_id, *task_id; /* task_id NULL = all */
    uint64_t until_ns;
};

struct broker {
    struct broker_config cfg;
    struct fc_amqp *a;
    uint64_t gen_seen;
    char queue[FC_AMQP_NAME_MAX], control[FC_AMQP_NAME_MAX];
    char *migdir;
    const char **env;            /* the migrators' environment: ours without FLUID_AMQP_URL */
    char host[256];
    struct btask *tasks;
    unsigned ntasks;
    uint64_t next_hb_ns;
    bool consuming;
    int stopping;                /* SIGTERMs received */
    uint64_t stop_deadline_ns;
    struct cancelled *cancels;
    size_t ncancels;
    uint64_t seq;
};

uint64_t broker_now_ns(void);

/* task.c */
void task_delivery(struct broker *b, struct fc_amqp_delivery *d);
void task_cancel_message(struct broker *b, struct fc_amqp_delivery *d);
/* fluid.resume/1: forget the Cancels remembered for that relocation (its resumed tasks run). */
void task_resume_message(struct broker *b, struct fc_amqp_delivery *d);
/* Poll support for the running viaducts. */
size_t tasks_pollfds(struct broker *b, struct pollfd *pfd, size_t cap, struct btask **owner);
void tasks_step(struct broker *b, struct pollfd *pfd, size_t n, struct btask **owner);
/* Timers (backoff, deferred locks, finishing after a reconnect); returns ms to the next. */
int tasks_timers(struct broker *b);
/* After a reconnect: re-take the locks of the tasks still held. */
void tasks_reconnected(struct broker *b);
/* Shutdown: cancel running chains and give every held task back to RabbitMQ. */
void tasks_requeue_all(struct broker *b);
unsigned tasks_running(const struct broker *b);

#endif
