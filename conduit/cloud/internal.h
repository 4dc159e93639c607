/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by the OpenStack client's files (not installed, not for callers). */
#ifndef FLUID_CLOUD_INTERNAL_H
#define FLUID_CLOUD_INTERNAL_H

#include <curl/curl.h>
#include <jansson.h>

#include "fluid/cloud/os.h"

#define FC_OS_MAX_BODY (64u << 20) /* bigger JSON replies are refused */

struct fc_os {
    struct fc_cloud_config *cfg;
    CURL *curl;
    char *token;
    int64_t expires_at;
    char *urls[FC_SVC__COUNT];
    char *identity_url;       /* auth_url normalised to end in /v3 */
    char *project_id, *user_id;
    char *microversion[FC_SVC__COUNT];
    unsigned attempts, base_delay_ms, margin_s, connect_s, total_s;
    uint64_t max_rate;        /* data streams: bytes per second each way, 0 = no limit */
    bool in_auth;
    const volatile sig_atomic_t *cancel;
    struct fc_os_stats stats;
    struct fc_os_error err;
};

struct fc_http_resp {
    long status;
    char *body;
    size_t len, cap;
    bool too_big;
    char request_id[128];
    char content_type[128];
    char *subject_token;      /* X-Subject-Token (Keystone) */
};

/* One HTTP exchange with retries: `token` adds X-Auth-Token, `svc` picks the microversion
 * header, `extra_header` (may be NULL) is one more "Name: value" line. Fills *r (caller frees with fc_http_resp_clear). Returns an rc only for transport
 * failures (no HTTP reply); HTTP errors are the caller's to judge. */
fc_rc fc_os_http(struct fc_os *os, enum fc_os_service svc, const char *method, const char *url,
                 const char *body, size_t blen, bool token, const char *extra_header,
                 struct fc_http_resp *r);
void fc_http_resp_clear(struct fc_http_resp *r);

/* Replaces every occurrence of the session's secrets in `s` with "***". */
void fc_os_redact(const struct fc_os *os, char *s);

/* Builds the error for a non-2xx reply, fills os->err, returns the rc for its status. */
fc_rc fc_os_http_error(struct fc_os *os, enum fc_os_service svc, const char *method,
                       const char *path, const struct fc_http_resp *r);

/* keystone.c: obtains a token (password or application credential) and the catalog. */
fc_rc fc_os_keystone_auth(struct fc_os *os);
/* Authenticates when there is no token or it expires within the margin. */
fc_rc fc_os_ensure_token(struct fc_os *os);

/* fc_os_endpoint without the token check (the caller has just ensured the token). */
fc_rc fc_os_endpoint_known(struct fc_os *os, enum fc_os_service svc, const char **url);

/* A copy of an authenticated session with its own curl handle, for another thread: the
 * token, endpoints and tunables are copied. fc_os_join adds its counters to the parent's
 * (and keeps its last error) and closes it. */
fc_rc fc_os_fork(struct fc_os *os, struct fc_os **out);
void fc_os_join(struct fc_os *os, struct fc_os *child);

/* Duplicates a config (all strings copied). */
struct fc_cloud_config *fc_cloud_config_dup(const struct fc_cloud_config *c);

/* "METHOD URL" style description of a path for messages: the URL's path only, no query. */
void fc_os_describe_path(const char *url, char *out, size_t cap);

#endif
