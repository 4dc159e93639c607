/* SPDX-License-Identifier: Apache-2.0 */
/* Test-side helpers for the devcloud tests (see devcloud_api.h). */
#include "devcloud_api.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloud_test.h"
#include "fluid/cloud/config.h"
#include "fluid/error.h"

static json_t *env;

void
dc_setup(void)
{
    env = ct_fixture_env("devcloud");
    const char *cf = json_string_value(json_object_get(env, "OS_CLIENT_CONFIG_FILE"));
    if (!cf || access(cf, R_OK) != 0)
        cr_assert_fail("devcloud.env lacks a readable OS_CLIENT_CONFIG_FILE (fixture broken)");
    setenv("OS_CLIENT_CONFIG_FILE", cf, 1);
    unsetenv("OS_CLOUD");
}

static const char *
envs(const char *k, const char *dflt)
{
    const char *v = json_string_value(json_object_get(env, k));
    return v && *v ? v : dflt;
}

const char *dc_source(void) { return envs("DEVCLOUD_CLOUD_SOURCE", "source"); }
const char *dc_target(void) { return envs("DEVCLOUD_CLOUD_TARGET", "target"); }
const char *dc_external_network(void) { return envs("DEVCLOUD_EXTERNAL_NETWORK", "public"); }

char *
dc_password(const char *name)
{
    struct fc_cloud_config *c = NULL;
    cr_assert_eq(fc_cloud_config_load(name, NULL, NULL, NULL, NULL, &c), FC_OK, "%s", fc_error_msg());
    cr_assert_not_null(c->password, "cloud %s has no password", name);
    char *p = strdup(c->password);
    fc_cloud_config_free(c);
    return p;
}

struct fc_os *
dc_open(const char *name)
{
    struct fc_cloud_config *c = NULL;
    struct fc_os *os = NULL;
    cr_assert_eq(fc_cloud_config_load(name, NULL, NULL, NULL, NULL, &c), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(fc_os_open(c, &os), FC_OK, "%s", fc_error_msg());
    fc_cloud_config_free(c);
    return os;
}

static fc_rc
vcall(struct fc_os *os, enum fc_os_service svc, const char *method, json_t *body, json_t **reply,
      const char *fmt, va_list ap)
{
    char path[2048];
    vsnprintf(path, sizeof path, fmt, ap);
    fc_rc rc = fc_os_call(os, svc, method, path, body, NULL, reply);
    json_decref(body);
    return rc;
}

json_t *
dc_call(struct fc_os *os, enum fc_os_service svc, const char *method, json_t *body,
        const char *fmt, ...)
{
    json_t *reply = NULL;
    va_list ap;
    va_start(ap, fmt);
    fc_rc rc = vcall(os, svc, method, body, &reply, fmt, ap);
    va_end(ap);
    cr_assert_eq(rc, FC_OK, "%s", fc_error_msg());
    return reply;
}

fc_rc
dc_try(struct fc_os *os, enum fc_os_service svc, const char *method, json_t *body,
       const char *fmt, ...)
{
    json_t *reply = NULL;
    va_list ap;
    va_start(ap, fmt);
    fc_rc rc = vcall(os, svc, method, body, &reply, fmt, ap);
    va_end(ap);
    json_decref(reply);
    return rc;
}

json_t *
dc_wait(struct fc_os *os, enum fc_os_service svc, const char *path, const char *key,
        const char *field, const char *want, int tries)
{
    const char *last;
    char seen[64] = "?";
    for (int i = 0; i < tries; i++) {
        json_t *r = dc_call(os, svc, "GET", NULL, "%s", path);
        last = json_string_value(json_object_get(json_object_get(r, key), field));
        if (last && strcmp(last, want) == 0)
            return r;
        snprintf(seen, sizeof seen, "%s", last ? last : "(none)");
        json_decref(r);
        if (strcmp(seen, "ERROR") == 0 || strcmp(seen, "error") == 0)
            break;
        sleep(1);
    }
    cr_assert_fail("%s: %s.%s is %s, not %s", path, key, field, seen, want);
    return NULL;
}

void
dc_wait_gone(struct fc_os *os, enum fc_os_service svc, const char *path, int tries)
{
    for (int i = 0; i < tries; i++) {
        if (dc_try(os, svc, "GET", NULL, "%s", path) == FC_E_NOTFOUND)
            return;
        sleep(1);
    }
}
