/* SPDX-License-Identifier: Apache-2.0 */
/* An authenticated OpenStack session: Keystone v3 (password or application credential),
 * token reuse and refresh (before expiry, and once on a 401), service-catalog endpoint
 * selection (interface, region), per-service microversion headers, pagination, retries
 * with backoff on 5xx and connection errors (never on 4xx), and errors that carry the HTTP
 * status, the service's own message and the request id. Replies are untrusted: bodies are
 * size-bounded and parsed strictly; secrets never reach a log or an error message. */
#ifndef FLUID_CLOUD_OS_H
#define FLUID_CLOUD_OS_H

#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "fluid/cloud/config.h"
#include "fluid/rc.h"

enum fc_os_service {
    FC_SVC_IDENTITY = 0,
    FC_SVC_COMPUTE,
    FC_SVC_NETWORK,
    FC_SVC_IMAGE,
    FC_SVC_VOLUME,
    FC_SVC__COUNT
};

/* "identity", "compute", "network", "image", "volume". */
const char *fc_os_service_name(enum fc_os_service svc);

struct fc_os_stats {
    uint64_t requests;  /* HTTP requests sent (auth and retries included) */
    uint64_t auths;     /* tokens obtained */
    uint64_t retries;   /* requests repeated after a 5xx or connection error */
};

/* The last failed call's details (status 0 when no HTTP reply came). */
struct fc_os_error {
    long status;
    char message[512];     /* the service's own message, sanitised, secrets redacted */
    char request_id[128];
};

struct fc_os;

/* Makes a session from a config (copied); no network traffic yet. */
fc_rc fc_os_open(const struct fc_cloud_config *cfg, struct fc_os **out);
void fc_os_close(struct fc_os *os);

/* Obtains a new token now (also done lazily by every call). */
fc_rc fc_os_authenticate(struct fc_os *os);
/* Revokes the current token at Keystone (DELETE /v3/auth/tokens); the next call re-auths. */
fc_rc fc_os_revoke_token(struct fc_os *os);

/* Tuning. Retries: attempts in all (default 4) and the first backoff (default 500 ms,
 * doubled each time, with jitter). Refresh margin: a token expiring within this many
 * seconds is renewed before use (default 120). Timeouts: connect and whole request. */
void fc_os_set_retry(struct fc_os *os, unsigned attempts, unsigned base_delay_ms);
void fc_os_set_refresh_margin(struct fc_os *os, unsigned seconds);
void fc_os_set_timeouts(struct fc_os *os, unsigned connect_s, unsigned total_s);
/* Data streams (fc_os_stream, fc_os_stream_from: image and volume data) move at most
 * bytes_per_s each way (curl's MAX_RECV/SEND_SPEED), so a relocation can be kept from
 * filling a shared link; 0 (the default): no limit. API calls are not limited. */
void fc_os_set_max_rate(struct fc_os *os, uint64_t bytes_per_s);
/* Once *flag is non-zero (a migrator's SIGTERM), requests that may create or change a
 * resource (POST, PUT, PATCH; Keystone's token POST excepted) are refused with
 * FC_E_CANCELLED before they are sent: a cancelled run that was about to create something
 * must not race the run that takes its task over. GET, HEAD and DELETE still go out (a
 * cleanup may need them). NULL: never. */
void fc_os_set_cancel(struct fc_os *os, const volatile sig_atomic_t *flag);
/* Microversion sent to `svc` only (compute "2.79", volume "3.60"; NULL: none). */
fc_rc fc_os_set_microversion(struct fc_os *os, enum fc_os_service svc, const char *version);

/* After authentication: the endpoint URL chosen for `svc` (NULL if the catalog has none:
 * check with fc_os_has_service), the project and user ids, the token's expiry (epoch s). */
fc_rc fc_os_endpoint(struct fc_os *os, enum fc_os_service svc, const char **url);
bool fc_os_has_service(struct fc_os *os, enum fc_os_service svc);
const char *fc_os_project_id(const struct fc_os *os);
const char *fc_os_user_id(const struct fc_os *os);
const char *fc_os_cloud_name(const struct fc_os *os);
const char *fc_os_region(const struct fc_os *os); /* region_name, or NULL */
int64_t fc_os_token_expiry(const struct fc_os *os);

const struct fc_os_stats *fc_os_stats(const struct fc_os *os);
const struct fc_os_error *fc_os_last_error(const struct fc_os *os);

/* One JSON call. `path` is relative to the service endpoint ("/servers/detail?x=1") or an
 * absolute URL on the endpoint's own origin (pagination links; other origins are refused).
 * `body` may be NULL. A 2xx reply gives FC_OK and its JSON body in *reply (NULL when empty;
 * pass reply NULL to drop it); *status (may be NULL) gets the HTTP status. Errors:
 * FC_E_NOTFOUND (404), FC_E_CONFLICT (409), FC_E_AUTH (401 after one re-auth), FC_E_REMOTE
 * (other 4xx/5xx), FC_E_NET / FC_E_TIMEOUT (no reply), FC_E_VERIFY (TLS), FC_E_INVALID
 * (reply not JSON). The message names service, method, path, status, the service's message
 * and the request id. */
fc_rc fc_os_call(struct fc_os *os, enum fc_os_service svc, const char *method, const char *path,
                 const json_t *body, long *status, json_t **reply);

/* GETs every page of a list: `key` is the array in each reply ("servers"). Follows
 * "<key>_links" rel=next (Nova, Neutron, Cinder) and "next" (Glance), refusing loops and
 * other origins, at most `max_items` items (0: 100000). *items is a new array. */
fc_rc fc_os_list(struct fc_os *os, enum fc_os_service svc, const char *path, const char *key,
                 size_t max_items, json_t **items);

/* Streaming request for image data: `upload` (may be NULL) is read for the body (size
 * `upload_size`, or chunked when -1); each received body piece goes to `sink` (may be NULL).
 * `content_type` sets the request's Content-Type. No retries (the stream cannot rewind). */
typedef size_t (*fc_os_read_fn)(void *ctx, char *buf, size_t len);   /* 0 = end */
typedef int (*fc_os_write_fn)(void *ctx, const char *buf, size_t len); /* !0 = abort */
fc_rc fc_os_stream(struct fc_os *os, enum fc_os_service svc, const char *method,
                   const char *path, const char *content_type, fc_os_read_fn upload,
                   void *uctx, int64_t upload_size, fc_os_write_fn sink, void *sctx,
                   long *status);

/* GET of data from byte `from` on: sends "Range: bytes=FROM-" (none when from is 0); the
 * body goes to `sink` as with fc_os_stream (no retries), always starting at byte `from`.
 * *partial (may be NULL) is true when the server answered 206 with a Content-Range that
 * starts at `from`, false when it answered 200 (the whole body: its first `from` bytes were
 * received again and dropped here); *total gets Content-Range's total size, -1 when
 * unknown. A 206 whose
 * Content-Range is missing, malformed or starts elsewhere is FC_E_REMOTE naming the header,
 * and not one byte of it reaches the sink. */
fc_rc fc_os_stream_from(struct fc_os *os, enum fc_os_service svc, const char *path,
                        uint64_t from, fc_os_write_fn sink, void *sctx, bool *partial,
                        int64_t *total, long *status);

/* Parsing pieces, exposed for tests and the fuzzer (the input is untrusted). */

/* Extracts the service's message from an error body (JSON of any OpenStack service, or
 * HTML/text as Glance sends), sanitised to printable one-line text of at most cap-1 bytes. */
void fc_os_error_message(const char *body, size_t len, const char *content_type, char *out,
                         size_t cap);

/* Parses a Keystone token reply: the catalog endpoint for each service (by interface and
 * region; NULL entries when absent), the expiry (epoch seconds) and project and user ids.
 * `urls` has FC_SVC__COUNT slots; every string returned is malloc'ed. */
struct fc_os_token_info {
    char *urls[FC_SVC__COUNT];
    int64_t expires_at;
    char *project_id, *user_id;
};
fc_rc fc_os_parse_token(const char *body, size_t len, const char *interface, const char *region,
                        struct fc_os_token_info *out);
void fc_os_token_info_clear(struct fc_os_token_info *ti);

/* ISO 8601 "2026-11-23T15:19:24.000000Z" -> epoch seconds; -1 when malformed. */
int64_t fc_os_parse_time(const char *s);

#endif
