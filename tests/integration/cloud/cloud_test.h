/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers of the OpenStack client's integration tests: stderr capture (to grep every log for
 * planted secrets), free ports, waiting for a TCP listener, reading the devcloud fixture. */
#ifndef FLUID_TEST_CLOUD_H
#define FLUID_TEST_CLOUD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Starts sending fd 2 (our logs) to a fresh file; logs at debug level, JSON. */
void ct_capture_start(void);
/* Stops capturing; returns what was logged (malloc'd). */
char *ct_capture_stop(void);
/* A TCP port on 127.0.0.1 that nothing listens on (bound and released). */
int ct_free_port(void);
/* Waits until something accepts on 127.0.0.1:port (readiness, up to `tries` x 100 ms). */
bool ct_wait_listen(int port, int tries);
/* Reads RUN_DIR/<name>.env into a JSON object of strings; cr_fatal when missing. */
json_t *ct_fixture_env(const char *name);
/* Asserts that `text` does not hold `secret` (names what in the failure). */
void ct_no_secret(const char *text, const char *secret, const char *what);

#endif
