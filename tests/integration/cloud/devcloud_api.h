/* SPDX-License-Identifier: Apache-2.0 */
/* Test-side helpers for the devcloud tests: open a cloud of the fixture, call the API and
 * fail the test on error, poll until a field has a value, and the password to grep for. */
#ifndef FLUID_TEST_DEVCLOUD_API_H
#define FLUID_TEST_DEVCLOUD_API_H

#include <jansson.h>

#include "fluid/cloud/os.h"

/* Reads the fixture's env (sets OS_CLIENT_CONFIG_FILE); the cloud names of source/target. */
void dc_setup(void);
const char *dc_source(void);
const char *dc_target(void);
const char *dc_external_network(void);
/* The password of cloud `name` in the fixture's clouds.yaml (malloc'd). */
char *dc_password(const char *name);
/* Opens a session on a fixture cloud (fails the test on error). */
struct fc_os *dc_open(const char *name);
/* One call that must succeed; the reply (may be NULL) is returned. `fmt` formats the path. */
json_t *dc_call(struct fc_os *os, enum fc_os_service svc, const char *method, json_t *body,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The same, any result: the rc is returned, the reply dropped. */
fc_rc dc_try(struct fc_os *os, enum fc_os_service svc, const char *method, json_t *body,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Polls GET path until reply[key][field] == want (1 s apart, at most `tries`). */
json_t *dc_wait(struct fc_os *os, enum fc_os_service svc, const char *path, const char *key,
                const char *field, const char *want, int tries);
/* Polls GET path until it answers 404 (at most `tries` seconds). */
void dc_wait_gone(struct fc_os *os, enum fc_os_service svc, const char *path, int tries);

#endif
