/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers for the broker-side integration tests: the rabbitmq fixture's env file, a private
 * RabbitMQ node for tests that stop or kill it, unique names, AMQP helpers. */
#ifndef FLUID_TEST_BROKER_COMMON_H
#define FLUID_TEST_BROKER_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fluid/amqp.h"

struct tb_env {
    char run_dir[1024];
    char url[512], tls_url[512], ca[1024], other_ca[1024], password[128], fixture[1024];
};

/* Reads RUN_DIR/rabbitmq.env (RUN_DIR = $FLUID_TEST_RUN_DIR, or dir when not NULL);
 * cr_fatal when missing: a test without its fixture fails loudly. */
void tb_env_load(struct tb_env *e, const char *dir);
/* Starts a private node in $FLUID_TEST_RUN_DIR/<name> with the fixture script (for tests that
 * restart or kill RabbitMQ without disturbing other tests), then loads its env. */
void tb_private_node(struct tb_env *e, const char *name);
/* Runs the fixture script: verb = stop|restart|kill9. cr_assert on failure. */
void tb_node(const struct tb_env *e, const char *verb);
/* "<prefix>-<pid>-<n>": unique per process and call. */
void tb_unique(char *buf, size_t cap, const char *prefix);
/* Opens an AMQP connection to the fixture (cr_fatal on failure). */
struct fc_amqp *tb_amqp(const struct tb_env *e, bool reconnect);
/* Monotonic milliseconds. */
uint64_t tb_ms(void);
/* Path of a program in $FLUID_BIN_DIR (static buffer per call site: copy it). */
const char *tb_bin(const char *prog, char *buf, size_t cap);
/* True if file contains needle. */
bool tb_file_contains(const char *path, const char *needle);

/* ---- brokers and tasks ---- */
#include "fluid/msg.h"

/* Starts bin/fluid-broker against e->url for site, with extra args (NULL-terminated, may be
 * NULL); its stderr goes to log (a path under the run dir, written to log_out). Remembered
 * and killed by tb_brokers_kill(). */
pid_t tb_broker(const struct tb_env *e, const char *site, const char *id,
                const char *const *extra, char *log_out, size_t cap);
/* SIGKILLs and reaps every broker this process started (call from .fini). */
void tb_brokers_kill(void);
/* Sends sig to a broker and waits for it; returns its wait status. */
int tb_broker_signal(pid_t pid, int sig);
/* A task JSON: stages_json is the JSON array of stages. */
void tb_task_json(char *buf, size_t cap, const char *rid, const char *tid, const char *site,
                  const char *kind, const char *stages_json, unsigned timeout_s,
                  unsigned max_attempts);
/* Publishes a task to fluid.tasks with routing key <site>.<kind> (mandatory, confirmed). */
void tb_publish_task(struct fc_amqp *a, const char *site, const char *kind, const char *json);
/* The outcome record queue of an idempotency key (fluid.outcome.<h>). */
void tb_outcome_queue(const char *key, char *out, size_t cap);

/* Events of one relocation, parsed strictly with proto's parser. */
struct tb_events {
    struct fc_task_event *ev[512];
    size_t n;
};
/* Subscribes a to relocation.<rid>.# on fluid.events. */
void tb_watch(struct fc_amqp *a, const char *rid);
/* Reads events until one for task_id in state arrives (returned, owned by evs) or
 * timeout_ms passes (NULL). */
const struct fc_task_event *tb_wait_state(struct fc_amqp *a, struct tb_events *evs,
                                          const char *task_id, enum fc_task_state state,
                                          int timeout_ms);
/* How many collected events of task_id are in state. */
size_t tb_count(const struct tb_events *evs, const char *task_id, enum fc_task_state state);
void tb_events_free(struct tb_events *evs);

#endif
