/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers of the conduit integration tests: a private RabbitMQ vhost per test (on the
 * rabbitmq fixture's node), starting/stopping fluid-conduit, running other programs. */
#ifndef FLUID_TEST_CONDUIT_HELPERS_H
#define FLUID_TEST_CONDUIT_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fluid/amqp.h"
#include "fluid/msg.h"

struct tc {
    char name[128];       /* unique per test process: test name + pid */
    char dir[1024];       /* $FLUID_TEST_RUN_DIR/<name>: state and logs */
    char url[512];        /* amqp URL of the private vhost */
    char ctl[1024];       /* the fixture's rabbitmqctl wrapper */
    char bin[1024];       /* $FLUID_BIN_DIR */
    char node_dir[1024];  /* private node's run dir, "" when using the shared fixture */
    char fixture[1024];   /* tests/fixtures/rabbitmq.sh */
    pid_t conduit;
    int conduit_runs;
};

/* Reads the fixture's env (cr_assert_fail when missing), makes <dir>, creates the vhost
 * <name> with permissions for the fixture's user. */
void tc_init(struct tc *t, const char *test);
/* As tc_init, but on a private RabbitMQ node started for this test in <run>/<name>-node
 * (for tests that restart it without disturbing others); vhost "/". */
void tc_init_private(struct tc *t, const char *test);
/* Runs the fixture script on the private node: verb = stop|start|restart. */
void tc_node(struct tc *t, const char *verb);
/* Kills (SIGKILL) every process the test started and did not stop, and stops its private
 * RabbitMQ node: give it as the suite's
 * .fini so that a failed assertion leaves nothing running. */
void tc_cleanup(void);
/* Deletes the vhost (best effort) and stops what is still running. */
void tc_fini(struct tc *t);
/* Opens a connection to the vhost (no reconnect). */
struct fc_amqp *tc_amqp(const struct tc *t);
/* Starts fluid-conduit on the vhost with state in <dir>/state, log <dir>/conduit-N.log,
 * extra arguments (NULL-terminated) appended; waits until it consumes fluid.requests. */
void tc_conduit_start(struct tc *t, const char *const *extra);
/* Sends sig to the conduit and waits for it; returns its wait status. */
int tc_conduit_stop(struct tc *t, int sig);
/* Runs argv (absolute argv[0]) to completion with FLUID_AMQP_URL set to the vhost;
 * returns the exit status (or 128+signal); out/err may be NULL. */
int tc_run(const struct tc *t, const char *const *argv, char *out, size_t cap, char *err,
           size_t errcap);
/* Publishes body to fluid.requests with Debian's amqp-publish (a client that is not ours). */
void tc_amqp_publish_cli(const struct tc *t, const char *body);
/* Waits for the next delivery (up to 60 s; cr_assert_fail on timeout) and acks it. */
struct fc_amqp_delivery *tc_next(struct fc_amqp *a);
/* Waits until queue holds want ready messages (up to 60 s). */
void tc_wait_queue(struct fc_amqp *a, const char *queue, uint32_t want);
/* Asks the conduit for a status (retries until it answers, 60 s); returns the reply body. */
char *tc_status(const struct tc *t, const char *rid);
/* Starts argv (absolute argv[0]) in the background with FLUID_AMQP_URL set to the vhost,
 * stdout and stderr to <dir>/<log>; returns its pid. */
pid_t tc_spawn(const struct tc *t, const char *const *argv, const char *log);
/* Sends sig to pid and waits; returns the wait status. */
int tc_stop(pid_t pid, int sig);
/* Plays a broker: takes the next task from fluid.tasks.default (60 s at most). */
struct fc_task *tc_take_task(struct fc_amqp *a);
/* Plays a broker: publishes t's TaskEvent in state (done: a result; failed: an error). */
void tc_report(struct fc_amqp *a, const struct fc_task *t, enum fc_task_state state);
/* Fails if a conduit log of this test contains the AMQP password. */
void tc_assert_no_password(const struct tc *t);
/* $FLUID_BIN_DIR/prog into buf. */
const char *tc_bin(const struct tc *t, const char *prog, char *buf, size_t cap);

#endif
