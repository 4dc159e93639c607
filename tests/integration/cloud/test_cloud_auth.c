/* SPDX-License-Identifier: Apache-2.0 */
/* Keystone against the devcloud: password and application-credential auth, a revoked token
 * and a token near expiry renewed, a wrong password, an unknown cloud, a 404 not retried;
 * no password, secret or token in any error or log. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cloud_test.h"
#include "devcloud_api.h"
#include "fluid/cloud/config.h"
#include "fluid/error.h"

static char *password;

static void
setup(void)
{
    dc_setup();
    password = dc_password(dc_source());
    ct_capture_start();
}

static void
teardown(void)
{
    char *log = ct_capture_stop();
    ct_no_secret(log, password, "the log");
    free(log);
    free(password);
}

TestSuite(auth, .init = setup, .fini = teardown, .timeout = 300);

Test(auth, password)
{
    struct fc_os *os = dc_open(dc_source());
    cr_assert_eq(fc_os_authenticate(os), FC_OK, "%s", fc_error_msg());
    cr_assert_gt(fc_os_token_expiry(os), (int64_t)time(NULL));
    const enum fc_os_service svcs[] = {FC_SVC_COMPUTE, FC_SVC_NETWORK, FC_SVC_IMAGE, FC_SVC_VOLUME};
    for (size_t i = 0; i < 4; i++) {
        const char *url = NULL;
        cr_assert_eq(fc_os_endpoint(os, svcs[i], &url), FC_OK, "%s", fc_error_msg());
        cr_assert(strncmp(url, "http", 4) == 0);
    }
    /* the project the token is scoped to is the one named in clouds.yaml */
    json_t *r = dc_call(os, FC_SVC_IDENTITY, "GET", NULL, "/auth/projects");
    size_t i;
    json_t *p;
    bool found = false;
    json_array_foreach(json_object_get(r, "projects"), i, p) {
        if (strcmp(json_string_value(json_object_get(p, "id")), fc_os_project_id(os)) == 0) {
            cr_assert_str_eq(json_string_value(json_object_get(p, "name")), dc_source());
            found = true;
        }
    }
    cr_assert(found, "the token's project is not among the user's projects");
    json_decref(r);
    /* a call to each service works (Cinder too: it gets only its own microversion header) */
    json_decref(dc_call(os, FC_SVC_COMPUTE, "GET", NULL, "/servers/detail"));
    json_decref(dc_call(os, FC_SVC_VOLUME, "GET", NULL, "/volumes/detail"));
    json_decref(dc_call(os, FC_SVC_NETWORK, "GET", NULL, "/networks"));
    json_decref(dc_call(os, FC_SVC_IMAGE, "GET", NULL, "/images"));
    cr_assert_eq(fc_os_stats(os)->auths, 1, "one token reused for every call");
    fc_os_close(os);
}

Test(auth, application_credential)
{
    struct fc_os *os = dc_open(dc_source());
    char name[64];
    snprintf(name, sizeof name, "fluid-it-%d", (int)getpid());
    cr_assert_eq(fc_os_authenticate(os), FC_OK, "%s", fc_error_msg());
    json_t *r = dc_call(os, FC_SVC_IDENTITY, "POST",
                        json_pack("{s:{s:s}}", "application_credential", "name", name),
                        "/users/%s/application_credentials", fc_os_user_id(os));
    json_t *ac = json_object_get(r, "application_credential");
    const char *id = json_string_value(json_object_get(ac, "id"));
    char *secret = strdup(json_string_value(json_object_get(ac, "secret")));
    cr_assert(id && secret);

    char y[4096];
    struct fc_cloud_config *base = NULL;
    cr_assert_eq(fc_cloud_config_load(dc_source(), NULL, NULL, NULL, NULL, &base), FC_OK);
    snprintf(y, sizeof y,
             "clouds:\n  ac:\n    auth_type: v3applicationcredential\n    auth:\n"
             "      auth_url: %s\n      application_credential_id: %s\n"
             "      application_credential_secret: %s\n    region_name: %s\n",
             base->auth_url, id, secret, base->region_name ? base->region_name : "RegionOne");
    fc_cloud_config_free(base);
    struct fc_cloud_config *c = NULL;
    struct fc_os *aos = NULL;
    cr_assert_eq(fc_cloud_config_parse(y, strlen(y), NULL, 0, "ac.yaml", "ac", &c), FC_OK, "%s",
                 fc_error_msg());
    cr_assert_eq(c->auth_type, FC_AUTH_APPCRED);
    cr_assert_eq(fc_os_open(c, &aos), FC_OK, "%s", fc_error_msg());
    fc_cloud_config_free(c);
    cr_assert_eq(fc_os_authenticate(aos), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(fc_os_project_id(aos), fc_os_project_id(os), "scoped to the same project");
    json_decref(dc_call(aos, FC_SVC_COMPUTE, "GET", NULL, "/servers/detail"));
    fc_os_close(aos);

    /* a deleted credential is refused, with no secret in the error */
    json_decref(dc_call(os, FC_SVC_IDENTITY, "DELETE", NULL, "/users/%s/application_credentials/%s",
                        fc_os_user_id(os), id));
    cr_assert_eq(fc_cloud_config_parse(y, strlen(y), NULL, 0, "ac.yaml", "ac", &c), FC_OK);
    cr_assert_eq(fc_os_open(c, &aos), FC_OK);
    fc_cloud_config_free(c);
    cr_assert_eq(fc_os_authenticate(aos), FC_E_AUTH, "%s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), "application credential"), "%s", fc_error_msg());
    ct_no_secret(fc_error_msg(), secret, "the error");
    fc_os_close(aos);
    char *log = ct_capture_stop();
    ct_no_secret(log, secret, "the log");
    free(log);
    ct_capture_start();
    explicit_bzero(secret, strlen(secret));
    free(secret);
    json_decref(r);
    fc_os_close(os);
}

Test(auth, revoked_and_expiring_tokens)
{
    struct fc_os *os = dc_open(dc_source());
    json_decref(dc_call(os, FC_SVC_COMPUTE, "GET", NULL, "/flavors/detail"));
    cr_assert_eq(fc_os_stats(os)->auths, 1);
    /* revoked: the next call gets a 401, re-authenticates once and succeeds. (Keystone
     * checks revocations at once; the other services cache validated tokens for minutes.) */
    cr_assert_eq(fc_os_revoke_token(os), FC_OK, "%s", fc_error_msg());
    uint64_t before = fc_os_stats(os)->requests;
    json_decref(dc_call(os, FC_SVC_IDENTITY, "GET", NULL, "/auth/projects"));
    cr_assert_eq(fc_os_stats(os)->auths, 2);
    cr_assert_eq(fc_os_stats(os)->requests - before, 3, "401, token, retried call");
    /* expiring: a token that expires within the margin is renewed before use, no 401 */
    fc_os_set_refresh_margin(os, 10u * 365 * 86400);
    before = fc_os_stats(os)->requests;
    json_decref(dc_call(os, FC_SVC_COMPUTE, "GET", NULL, "/flavors/detail"));
    cr_assert_eq(fc_os_stats(os)->auths, 3, "auths %lu", (unsigned long)fc_os_stats(os)->auths);
    cr_assert_eq(fc_os_stats(os)->requests - before, 2, "token, call");
    /* and a fresh token is kept while it is far from expiry */
    fc_os_set_refresh_margin(os, 60);
    json_decref(dc_call(os, FC_SVC_COMPUTE, "GET", NULL, "/flavors/detail"));
    cr_assert_eq(fc_os_stats(os)->auths, 3);
    fc_os_close(os);
}

Test(auth, wrong_password)
{
    char planted[64];
    snprintf(planted, sizeof planted, "Wr0ng-planted-%d-pw", (int)getpid());
    struct fc_cloud_config *c = NULL;
    struct fc_os *os = NULL;
    cr_assert_eq(fc_cloud_config_load(dc_source(), NULL, NULL, NULL, NULL, &c), FC_OK);
    free(c->password);
    c->password = strdup(planted);
    cr_assert_eq(fc_os_open(c, &os), FC_OK);
    fc_cloud_config_free(c);
    fc_rc rc = fc_os_authenticate(os);
    const char *m = fc_error_msg();
    cr_assert_eq(rc, FC_E_AUTH, "%s", m);
    cr_assert(strstr(m, "HTTP 401") && strstr(m, "authenticating user"), "%s", m);
    cr_assert(strstr(m, "request id req-"), "carries Keystone's request id: %s", m);
    cr_assert_eq(fc_os_last_error(os)->status, 401);
    cr_assert_eq(fc_os_stats(os)->requests, 1, "a 4xx is not retried");
    ct_no_secret(m, planted, "the error");
    ct_no_secret(m, password, "the error");
    fc_os_close(os);
    char *log = ct_capture_stop();
    ct_no_secret(log, planted, "the log");
    free(log);
    ct_capture_start();
}

Test(auth, unknown_cloud)
{
    struct fc_cloud_config *c = NULL;
    char name[64];
    snprintf(name, sizeof name, "no-such-cloud-%d", (int)getpid());
    cr_assert_eq(fc_cloud_config_load(name, NULL, NULL, NULL, NULL, &c), FC_E_NOTFOUND);
    cr_assert(strstr(fc_error_msg(), name), "%s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), getenv("OS_CLIENT_CONFIG_FILE")), "names the file: %s",
              fc_error_msg());
}

Test(auth, not_found_is_not_retried)
{
    struct fc_os *os = dc_open(dc_source());
    json_decref(dc_call(os, FC_SVC_COMPUTE, "GET", NULL, "/flavors/detail"));
    uint64_t before = fc_os_stats(os)->requests;
    fc_rc rc = dc_try(os, FC_SVC_COMPUTE, "GET", NULL, "/servers/00000000-0000-4000-8000-%012d",
                      (int)getpid());
    cr_assert_eq(rc, FC_E_NOTFOUND, "%s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), "HTTP 404"), "%s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), "could not be found"), "Nova's own message: %s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), "request id req-"), "%s", fc_error_msg());
    cr_assert_eq(fc_os_stats(os)->requests - before, 1);
    /* Glance answers HTML unless asked for JSON: its message is found either way */
    rc = dc_try(os, FC_SVC_IMAGE, "GET", NULL, "/images/00000000-0000-4000-8000-%012d",
                (int)getpid());
    cr_assert_eq(rc, FC_E_NOTFOUND, "%s", fc_error_msg());
    cr_assert_null(strstr(fc_error_msg(), "<"), "no markup in: %s", fc_error_msg());
    fc_os_close(os);
}

/* Pages of one item: every page is followed (Nova and Neutron "<key>_links", Glance "next")
 * and the result is the one-shot list. */
static void
paged_equals_whole(struct fc_os *os, enum fc_os_service svc, const char *path, const char *sep,
                   const char *key)
{
    json_t *whole = NULL, *paged = NULL;
    char p1[256];
    cr_assert_eq(fc_os_list(os, svc, path, key, 0, &whole), FC_OK, "%s", fc_error_msg());
    cr_assert_gt(json_array_size(whole), 1, "%s: need two %s to see a second page", path, key);
    snprintf(p1, sizeof p1, "%s%slimit=1", path, sep);
    uint64_t before = fc_os_stats(os)->requests;
    cr_assert_eq(fc_os_list(os, svc, p1, key, 0, &paged), FC_OK, "%s", fc_error_msg());
    cr_assert_geq(fc_os_stats(os)->requests - before, json_array_size(whole), "one page each");
    cr_assert_eq(json_array_size(paged), json_array_size(whole), "%s", path);
    for (size_t i = 0; i < json_array_size(whole); i++)
        cr_assert_str_eq(json_string_value(json_object_get(json_array_get(paged, i), "id")),
                         json_string_value(json_object_get(json_array_get(whole, i), "id")));
    json_decref(whole);
    json_decref(paged);
}

Test(auth, pagination)
{
    struct fc_os *os = dc_open(dc_source());
    paged_equals_whole(os, FC_SVC_COMPUTE, "/flavors/detail", "?", "flavors");
    /* Neutron: the project's default group and one more, made here */
    char name[64];
    snprintf(name, sizeof name, "fluid-it-page-%d", (int)getpid());
    json_t *sg = dc_call(os, FC_SVC_NETWORK, "POST",
                         json_pack("{s:{s:s}}", "security_group", "name", name), "/security-groups");
    paged_equals_whole(os, FC_SVC_NETWORK, "/security-groups?fields=id&fields=name", "&",
                       "security_groups");
    json_decref(dc_call(os, FC_SVC_NETWORK, "DELETE", NULL, "/security-groups/%s",
                        json_string_value(json_object_get(json_object_get(sg, "security_group"), "id"))));
    json_decref(sg);
    /* Glance: the devcloud's image and one more, made here */
    json_t *img = dc_call(os, FC_SVC_IMAGE, "POST",
                          json_pack("{s:s, s:s, s:s}", "name", name, "disk_format", "raw",
                                    "container_format", "bare"),
                          "/images");
    const char *id = json_string_value(json_object_get(img, "id"));
    paged_equals_whole(os, FC_SVC_IMAGE, "/images", "?", "images");
    json_decref(dc_call(os, FC_SVC_IMAGE, "DELETE", NULL, "/images/%s", id));
    json_decref(img);
    fc_os_close(os);
}

/* A cancelled session (a migrator after SIGTERM) sends no request that creates: the POST is
 * refused before it leaves, nothing is made, and reads, deletes and re-authentication still
 * work. */
Test(auth, cancelled_session_creates_nothing)
{
    struct fc_os *os = dc_open(dc_source());
    static volatile sig_atomic_t cancel;
    cancel = 0;
    fc_os_set_cancel(os, &cancel);
    char name[64];
    snprintf(name, sizeof name, "fluid-it-cancel-%d", (int)getpid());
    json_t *sg = dc_call(os, FC_SVC_NETWORK, "POST",
                         json_pack("{s:{s:s}}", "security_group", "name", name), "/security-groups");
    cancel = 1;
    uint64_t before = fc_os_stats(os)->requests;
    fc_rc rc = dc_try(os, FC_SVC_NETWORK, "POST",
                      json_pack("{s:{s:s}}", "security_group", "name", name), "/security-groups");
    cr_assert_eq(rc, FC_E_CANCELLED, "%s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), "POST /v2.0/security-groups not sent: cancelled") ||
                  strstr(fc_error_msg(), "not sent: cancelled"),
              "%s", fc_error_msg());
    cr_assert_eq(fc_os_stats(os)->requests, before, "the refused POST went out");
    rc = dc_try(os, FC_SVC_NETWORK, "PUT", json_pack("{s:{s:s}}", "security_group", "name", "x"),
                "/security-groups/%s",
                json_string_value(json_object_get(json_object_get(sg, "security_group"), "id")));
    cr_assert_eq(rc, FC_E_CANCELLED, "%s", fc_error_msg());
    /* reads still go out: exactly the one group of that name exists */
    json_t *l = dc_call(os, FC_SVC_NETWORK, "GET", NULL, "/security-groups?name=%s", name);
    cr_assert_eq(json_array_size(json_object_get(l, "security_groups")), 1);
    json_decref(l);
    /* a new token may still be had (Keystone's POST creates nothing) */
    cr_assert_eq(fc_os_authenticate(os), FC_OK, "%s", fc_error_msg());
    json_decref(dc_call(os, FC_SVC_NETWORK, "DELETE", NULL, "/security-groups/%s",
                        json_string_value(json_object_get(json_object_get(sg, "security_group"), "id"))));
    json_decref(sg);
    fc_os_close(os);
}
