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

#endif
