/* SPDX-License-Identifier: Apache-2.0 */
/* The OpenStack session's HTTP core (libcurl): one reused easy handle (keep-alive), TLS
 * verified by default, bounded reply bodies, retries with backoff on 5xx and connection
 * errors (never on 4xx), per-service microversion headers, JSON calls and pagination. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "internal.h"

static const char *const svc_names[FC_SVC__COUNT] = {"identity", "compute", "network", "image",
                                                     "volume"};
/* the OpenStack-API-Version service name for each service (NULL: none) */
static const char *const mv_names[FC_SVC__COUNT] = {NULL, "compute", NULL, NULL, "volume"};

const char *
fc_os_service_name(enum fc_os_service svc)
{
    return (unsigned)svc < FC_SVC__COUNT ? svc_names[svc] : "?";
}

fc_rc
fc_os_open(const struct fc_cloud_config *cfg, struct fc_os **out)
{
    static bool curl_ready;
    fc_rc rc;
    if ((rc = fc_cloud_config_check(cfg)))
        return rc;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return FC_ERR(FC_E_INTERNAL, "curl_global_init failed");
        curl_ready = true;
    }
    struct fc_os *os = calloc(1, sizeof *os);
    if (!os)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    os->attempts = 4;
    os->base_delay_ms = 500;
    os->margin_s = 120;
    os->connect_s = 10;
    os->total_s = 300;
    os->cfg = fc_cloud_config_dup(cfg);
    os->curl = curl_easy_init();
    size_t ul = strlen(cfg->auth_url);
    os->identity_url = malloc(ul + 4);
    if (!os->cfg || !os->curl || !os->identity_url) {
        fc_os_close(os);
        return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    memcpy(os->identity_url, cfg->auth_url, ul + 1);
    while (ul > 0 && os->identity_url[ul - 1] == '/')
        os->identity_url[--ul] = '\0';
    if (ul < 3 || strcmp(os->identity_url + ul - 3, "/v3") != 0)
        strcat(os->identity_url, "/v3");
    const char *cv = cfg->compute_api_version ? cfg->compute_api_version : "2.79";
    const char *vv = cfg->volume_api_version && strchr(cfg->volume_api_version, '.')
                         ? cfg->volume_api_version
                         : "3.60";
    if ((rc = fc_os_set_microversion(os, FC_SVC_COMPUTE, cv)) ||
        (rc = fc_os_set_microversion(os, FC_SVC_VOLUME, vv))) {
        fc_os_close(os);
        return rc;
    }
    *out = os;
    return FC_OK;
}

void
fc_os_close(struct fc_os *os)
{
    if (!os)
        return;
    if (os->curl)
        curl_easy_cleanup(os->curl);
    if (os->token) {
        explicit_bzero(os->token, strlen(os->token));
        free(os->token);
    }
    for (int i = 0; i < FC_SVC__COUNT; i++) {
        free(os->urls[i]);
        free(os->microversion[i]);
    }
    free(os->identity_url);
    free(os->project_id);
    free(os->user_id);
    fc_cloud_config_free(os->cfg);
    free(os);
}

static char *
dup_or_null(const char *s, bool *fail)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *fail = true;
    return d;
}

fc_rc
fc_os_fork(struct fc_os *os, struct fc_os **out)
{
    struct fc_os *c = calloc(1, sizeof *c);
    if (!c)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    bool fail = false;
    c->attempts = os->attempts;
    c->base_delay_ms = os->base_delay_ms;
    c->margin_s = os->margin_s;
    c->connect_s = os->connect_s;
    c->total_s = os->total_s;
    c->max_rate = os->max_rate;
    c->cancel = os->cancel;
    c->expires_at = os->expires_at;
    c->cfg = fc_cloud_config_dup(os->cfg);
    c->curl = curl_easy_init();
    c->token = dup_or_null(os->token, &fail);
    c->identity_url = dup_or_null(os->identity_url, &fail);
    c->project_id = dup_or_null(os->project_id, &fail);
    c->user_id = dup_or_null(os->user_id, &fail);
    for (int i = 0; i < FC_SVC__COUNT; i++) {
        c->urls[i] = dup_or_null(os->urls[i], &fail);
        c->microversion[i] = dup_or_null(os->microversion[i], &fail);
    }
    if (fail || !c->cfg || !c->curl) {
        fc_os_close(c);
        return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    *out = c;
    return FC_OK;
}

void
fc_os_join(struct fc_os *os, struct fc_os *child)
{
    if (!child)
        return;
    os->stats.requests += child->stats.requests;
    os->stats.auths += child->stats.auths;
    os->stats.retries += child->stats.retries;
    if (child->err.status || child->err.message[0])
        os->err = child->err;
    fc_os_close(child);
}

void
fc_os_set_retry(struct fc_os *os, unsigned attempts, unsigned base_delay_ms)
{
    os->attempts = attempts ? attempts : 1;
    os->base_delay_ms = base_delay_ms;
}

void
fc_os_set_refresh_margin(struct fc_os *os, unsigned seconds)
{
    os->margin_s = seconds;
}

void
fc_os_set_timeouts(struct fc_os *os, unsigned connect_s, unsigned total_s)
{
    os->connect_s = connect_s;
    os->total_s = total_s;
}

void
fc_os_set_max_rate(struct fc_os *os, uint64_t bytes_per_s)
{
    os->max_rate = bytes_per_s;
}

void
fc_os_set_cancel(struct fc_os *os, const volatile sig_atomic_t *flag)
{
    os->cancel = flag;
}

fc_rc
fc_os_set_microversion(struct fc_os *os, enum fc_os_service svc, const char *version)
{
    if ((unsigned)svc >= FC_SVC__COUNT)
        return FC_ERR(FC_E_INVALID, "microversion: bad service");
    if (version) {
        size_t n = strlen(version);
        if (n == 0 || n > 16 || strspn(version, "0123456789.") != n || !strchr(version, '.'))
            return FC_ERR(FC_E_INVALID, "%s microversion '%.20s' is not N.M", svc_names[svc],
                          version);
        if (!mv_names[svc])
            return FC_ERR(FC_E_UNSUPPORTED, "%s takes no microversion", svc_names[svc]);
    }
    free(os->microversion[svc]);
    os->microversion[svc] = version ? strdup(version) : NULL;
    return FC_OK;
}

const char *fc_os_project_id(const struct fc_os *os) { return os->project_id; }
const char *fc_os_user_id(const struct fc_os *os) { return os->user_id; }
const char *fc_os_cloud_name(const struct fc_os *os) { return os->cfg->name; }
const char *fc_os_region(const struct fc_os *os) { return os->cfg->region_name; }
int64_t fc_os_token_expiry(const struct fc_os *os) { return os->expires_at; }
const struct fc_os_stats *fc_os_stats(const struct fc_os *os) { return &os->stats; }
const struct fc_os_error *fc_os_last_error(const struct fc_os *os) { return &os->err; }

fc_rc
fc_os_endpoint(struct fc_os *os, enum fc_os_service svc, const char **url)
{
    fc_rc rc;
    if ((rc = fc_os_ensure_token(os)))
        return rc;
    return fc_os_endpoint_known(os, svc, url);
}

fc_rc
fc_os_endpoint_known(struct fc_os *os, enum fc_os_service svc, const char **url)
{
    if (svc == FC_SVC_IDENTITY) {
        *url = os->identity_url;
        return FC_OK;
    }
    if (!os->urls[svc])
        return FC_ERR(FC_E_NOTFOUND, "cloud '%s': the catalog has no %s endpoint (interface %s%s%s)",
                      os->cfg->name, svc_names[svc],
                      os->cfg->interface ? os->cfg->interface : "public",
                      os->cfg->region_name ? ", region " : "",
                      os->cfg->region_name ? os->cfg->region_name : "");
    *url = os->urls[svc];
    return FC_OK;
}

bool
fc_os_has_service(struct fc_os *os, enum fc_os_service svc)
{
    if (fc_os_ensure_token(os))
        return false;
    return svc == FC_SVC_IDENTITY || os->urls[svc] != NULL;
}

/* ---- secrets ---------------------------------------------------------------------------- */

static void
redact_one(char *s, const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    if (n < 3) /* too short to hunt for without wrecking the message */
        return;
    char *p;
    while ((p = strstr(s, secret))) {
        memcpy(p, "***", 3);
        memmove(p + 3, p + n, strlen(p + n) + 1);
    }
}

void
fc_os_redact(const struct fc_os *os, char *s)
{
    redact_one(s, os->cfg->password);
    redact_one(s, os->cfg->app_cred_secret);
    redact_one(s, os->token);
}

/* ---- one HTTP exchange ------------------------------------------------------------------- */

static size_t
on_body(char *p, size_t sz, size_t nm, void *ud)
{
    struct fc_http_resp *r = ud;
    size_t n = sz * nm;
    if (r->len + n > FC_OS_MAX_BODY) {
        r->too_big = true;
        return 0;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 16384;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return 0;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, p, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

/* Copies a header's value (trimmed, printable only) when `line` is that header. */
static bool
header_value(const char *line, size_t n, const char *name, char *out, size_t cap)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return false;
    const char *v = line + k + 1, *e = line + n;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
        e--;
    size_t len = (size_t)(e - v) < cap - 1 ? (size_t)(e - v) : cap - 1;
    for (size_t i = 0; i < len; i++)
        out[i] = isprint((unsigned char)v[i]) ? v[i] : '?';
    out[len] = '\0';
    return true;
}

static size_t
on_header(char *p, size_t sz, size_t nm, void *ud)
{
    struct fc_http_resp *r = ud;
    size_t n = sz * nm;
    char tok[8192];
    if (n > 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new response (100-continue, retry) */
        r->request_id[0] = r->content_type[0] = '\0';
        return n;
    }
    if (!header_value(p, n, "X-Openstack-Request-Id", r->request_id, sizeof r->request_id) &&
        !header_value(p, n, "X-Compute-Request-Id", r->request_id, sizeof r->request_id))
        header_value(p, n, "Content-Type", r->content_type, sizeof r->content_type);
    if (header_value(p, n, "X-Subject-Token", tok, sizeof tok)) {
        free(r->subject_token);
        r->subject_token = strdup(tok);
        explicit_bzero(tok, sizeof tok);
    }
    return n;
}

void
fc_http_resp_clear(struct fc_http_resp *r)
{
    free(r->body);
    if (r->subject_token) {
        explicit_bzero(r->subject_token, strlen(r->subject_token));
        free(r->subject_token);
    }
    memset(r, 0, sizeof *r);
}

void
fc_os_describe_path(const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    p = p ? strchr(p + 3, '/') : url;
    if (!p)
        p = "/";
    size_t n = strcspn(p, "?#");
    snprintf(out, cap, "%.*s", (int)(n > 200 ? 200 : n), p);
}

static fc_rc
map_curl(CURLcode cc, bool *retry)
{
    *retry = false;
    switch (cc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
        return FC_E_VERIFY;
    case CURLE_OPERATION_TIMEDOUT:
        *retry = true;
        return FC_E_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        *retry = true;
        return FC_E_NET;
    case CURLE_OUT_OF_MEMORY:
        return FC_E_NOMEM;
    default:
        return FC_E_NET;
    }
}

static void
backoff(const struct fc_os *os, unsigned attempt)
{
    uint64_t ms = (uint64_t)os->base_delay_ms << (attempt > 10 ? 10 : attempt);
    if (ms > 30000)
        ms = 30000;
    ms = ms * 3 / 4 + (ms ? (uint64_t)rand() % (ms / 2 + 1) : 0); /* +-25% jitter */
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void
set_tls(struct fc_os *os)
{
    CURL *c = os->curl;
    const struct fc_cloud_config *cfg = os->cfg;
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, cfg->verify ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, cfg->verify ? 2L : 0L);
    if (cfg->cacert)
        curl_easy_setopt(c, CURLOPT_CAINFO, cfg->cacert);
    if (cfg->cert)
        curl_easy_setopt(c, CURLOPT_SSLCERT, cfg->cert);
    if (cfg->key)
        curl_easy_setopt(c, CURLOPT_SSLKEY, cfg->key);
}

static struct curl_slist *
base_headers(struct fc_os *os, enum fc_os_service svc, bool token, const char *ctype)
{
    struct curl_slist *h = NULL;
    char line[8400];
    h = curl_slist_append(h, "Accept: application/json");
    h = curl_slist_append(h, "Expect:");
    h = curl_slist_append(h, "User-Agent: fluidcloud/" FLUID_VERSION);
    if (ctype) {
        snprintf(line, sizeof line, "Content-Type: %s", ctype);
        h = curl_slist_append(h, line);
    }
    if (token && os->token) {
        snprintf(line, sizeof line, "X-Auth-Token: %s", os->token);
        h = curl_slist_append(h, line);
        explicit_bzero(line, sizeof line);
    }
    if ((unsigned)svc < FC_SVC__COUNT && os->microversion[svc] && mv_names[svc]) {
        snprintf(line, sizeof line, "OpenStack-API-Version: %s %s", mv_names[svc],
                 os->microversion[svc]);
        h = curl_slist_append(h, line);
        if (svc == FC_SVC_COMPUTE) {
            snprintf(line, sizeof line, "X-OpenStack-Nova-API-Version: %s",
                     os->microversion[svc]);
            h = curl_slist_append(h, line);
        }
    }
    return h;
}

static void
common_opts(struct fc_os *os, const char *method, const char *url)
{
    CURL *c = os->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)os->connect_s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)os->total_s);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
    if (strcmp(method, "GET") == 0)
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    else if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    set_tls(os);
}

fc_rc
fc_os_http(struct fc_os *os, enum fc_os_service svc, const char *method, const char *url,
           const char *body, size_t blen, bool token, const char *extra_header,
           struct fc_http_resp *r)
{
    char path[256], errbuf[CURL_ERROR_SIZE];
    fc_os_describe_path(url, path, sizeof path);
    bool idempotent = strcmp(method, "POST") != 0 && strcmp(method, "PATCH") != 0;
    /* Keystone's token POST creates nothing that a repeat would duplicate */
    if (svc == FC_SVC_IDENTITY && strcmp(method, "POST") == 0)
        idempotent = true;
    bool mutating = strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
                    strcmp(method, "DELETE") != 0 && svc != FC_SVC_IDENTITY;
    if (mutating && os->cancel && *os->cancel)
        return FC_ERR(FC_E_CANCELLED, "cloud '%s': %s %s %s not sent: cancelled",
                      os->cfg->name, svc_names[svc], method, path);
    for (unsigned attempt = 1;; attempt++) {
        fc_http_resp_clear(r);
        struct curl_slist *h = base_headers(os, svc, token, body ? "application/json" : NULL);
        if (extra_header)
            h = curl_slist_append(h, extra_header);
        common_opts(os, method, url);
        CURL *c = os->curl;
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        if (body) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
        }
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
        errbuf[0] = '\0';
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CURLcode cc = curl_easy_perform(c);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        curl_slist_free_all(h); /* held X-Auth-Token; curl copied what it needed */
        os->stats.requests++;
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (cc == CURLE_OK) {
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
            fc_log(FC_DEBUG, FC_MSG("http"), FC_STR("cloud", os->cfg->name),
                   FC_STR("service", svc_names[svc]), FC_STR("method", method),
                   FC_STR("path", path), FC_I64("status", r->status), FC_DBL("ms", ms),
                   FC_STR("request_id", r->request_id));
            if (r->status >= 500 && idempotent && attempt < os->attempts) {
                fc_log(FC_WARN, FC_MSG("server error, retrying"), FC_STR("cloud", os->cfg->name),
                       FC_STR("service", svc_names[svc]), FC_STR("method", method),
                       FC_STR("path", path), FC_I64("status", r->status),
                       FC_STR("request_id", r->request_id), FC_U64("attempt", attempt));
                os->stats.retries++;
                backoff(os, attempt - 1);
                continue;
            }
            return FC_OK;
        }
        if (r->too_big)
            return FC_ERR(FC_E_INVALID, "%s %s %s: reply larger than %u bytes", svc_names[svc],
                          method, path, FC_OS_MAX_BODY);
        bool retry;
        fc_rc rc = map_curl(cc, &retry);
        /* a request that never reached the server may always be repeated */
        bool unsent = cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST;
        const char *what = *errbuf ? errbuf : curl_easy_strerror(cc);
        if (retry && (idempotent || unsent) && attempt < os->attempts) {
            fc_log(FC_WARN, FC_MSG("connection failed, retrying"),
                   FC_STR("cloud", os->cfg->name), FC_STR("service", svc_names[svc]),
                   FC_STR("method", method), FC_STR("path", path), FC_STR("error", what),
                   FC_U64("attempt", attempt));
            os->stats.retries++;
            backoff(os, attempt - 1);
            continue;
        }
        os->err.status = 0;
        snprintf(os->err.message, sizeof os->err.message, "%s", what);
        os->err.request_id[0] = '\0';
        fc_os_redact(os, os->err.message);
        if (rc == FC_E_VERIFY)
            return FC_ERR(rc, "cloud '%s': %s %s %s: TLS verification failed: %s (set cacert "
                              "for a private CA)",
                          os->cfg->name, svc_names[svc], method, path, os->err.message);
        return FC_ERR(rc, "cloud '%s': %s %s %s: %s (after %u attempt%s)", os->cfg->name,
                      svc_names[svc], method, path, os->err.message, attempt,
                      attempt == 1 ? "" : "s");
    }
}

fc_rc
fc_os_http_error(struct fc_os *os, enum fc_os_service svc, const char *method, const char *path,
                 const struct fc_http_resp *r)
{
    os->err.status = r->status;
    fc_os_error_message(r->body, r->len, r->content_type, os->err.message,
                        sizeof os->err.message);
    snprintf(os->err.request_id, sizeof os->err.request_id, "%s", r->request_id);
    fc_os_redact(os, os->err.message);
    fc_rc rc = r->status == 404   ? FC_E_NOTFOUND
               : r->status == 409 ? FC_E_CONFLICT
               : r->status == 401 ? FC_E_AUTH
                                  : FC_E_REMOTE;
    return FC_ERR(rc, "cloud '%s': %s %s %s: HTTP %ld: %s%s%s%s", os->cfg->name,
                  svc_names[svc], method, path, r->status,
                  *os->err.message ? os->err.message : "(no message)",
                  *r->request_id ? " (request id " : "", r->request_id,
                  *r->request_id ? ")" : "");
}

/* ---- JSON calls --------------------------------------------------------------------------- */

/* Same scheme, host and port? */
static bool
same_origin(const char *a, const char *b)
{
    const char *pa = strstr(a, "://"), *pb = strstr(b, "://");
    if (!pa || !pb)
        return false;
    size_t na = (size_t)(pa - a) + 3 + strcspn(pa + 3, "/?#");
    size_t nb = (size_t)(pb - b) + 3 + strcspn(pb + 3, "/?#");
    return na == nb && strncasecmp(a, b, na) == 0;
}

static fc_rc
make_url(struct fc_os *os, enum fc_os_service svc, const char *path, char **out)
{
    const char *base = NULL;
    fc_rc rc;
    if ((rc = fc_os_endpoint_known(os, svc, &base)))
        return rc;
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return FC_ERR(FC_E_INVALID, "%s: path holds a space or control character",
                          svc_names[svc]);
    if (strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0) {
        if (!same_origin(path, base))
            return FC_ERR(FC_E_INVALID, "cloud '%s': %s: refusing a link to another origin "
                                        "than the endpoint",
                          os->cfg->name, svc_names[svc]);
        *out = strdup(path);
    } else if (path[0] != '/') {
        return FC_ERR(FC_E_INVALID, "%s: path must start with /", svc_names[svc]);
    } else if (asprintf(out, "%s%s", base, path) < 0) {
        *out = NULL;
    }
    return *out ? FC_OK : FC_ERR(FC_E_NOMEM, "out of memory");
}

fc_rc
fc_os_call(struct fc_os *os, enum fc_os_service svc, const char *method, const char *path,
           const json_t *body, long *status, json_t **reply)
{
    fc_rc rc;
    FC_AUTOFREE char *url = NULL, *text = NULL;
    char dpath[256];
    if (reply)
        *reply = NULL;
    if (status)
        *status = 0;
    if ((rc = fc_os_ensure_token(os)) || (rc = make_url(os, svc, path, &url)))
        return rc;
    fc_os_describe_path(url, dpath, sizeof dpath);
    if (body && !(text = json_dumps(body, JSON_COMPACT)))
        return FC_ERR(FC_E_NOMEM, "out of memory");
    struct fc_http_resp r = {0};
    for (int reauth = 0;; reauth++) {
        rc = fc_os_http(os, svc, method, url, text, text ? strlen(text) : 0, true, NULL, &r);
        if (rc) {
            fc_http_resp_clear(&r);
            return rc;
        }
        if (r.status == 401 && reauth == 0) { /* revoked or expired early: once more */
            fc_log(FC_INFO, FC_MSG("token refused, re-authenticating"),
                   FC_STR("cloud", os->cfg->name), FC_STR("service", svc_names[svc]));
            if ((rc = fc_os_keystone_auth(os))) {
                fc_http_resp_clear(&r);
                return rc;
            }
            continue;
        }
        break;
    }
    if (status)
        *status = r.status;
    if (r.status < 200 || r.status > 299) {
        rc = fc_os_http_error(os, svc, method, dpath, &r);
        fc_http_resp_clear(&r);
        return rc;
    }
    if (reply && r.len > 0 && r.status != 204) {
        json_error_t je;
        *reply = json_loadb(r.body, r.len, JSON_REJECT_DUPLICATES, &je);
        if (!*reply) {
            rc = FC_ERR(FC_E_INVALID, "cloud '%s': %s %s %s: reply is not JSON (line %d: %.80s)",
                        os->cfg->name, svc_names[svc], method, dpath, je.line, je.text);
            fc_http_resp_clear(&r);
            return rc;
        }
    }
    fc_http_resp_clear(&r);
    return FC_OK;
}

/* Finds the next-page link of a list reply; NULL when this was the last page. */
static fc_rc
next_link(struct fc_os *os, enum fc_os_service svc, json_t *reply, const char *key, char **out)
{
    char lk[96];
    *out = NULL;
    snprintf(lk, sizeof lk, "%s_links", key);
    json_t *links = json_object_get(reply, lk);
    if (links) {
        if (!json_is_array(links))
            return FC_ERR(FC_E_INVALID, "%s: '%s' is not an array", svc_names[svc], lk);
        size_t i;
        json_t *l;
        json_array_foreach(links, i, l) {
            const char *rel = json_string_value(json_object_get(l, "rel"));
            const char *href = json_string_value(json_object_get(l, "href"));
            if (rel && strcmp(rel, "next") == 0) {
                if (!href)
                    return FC_ERR(FC_E_INVALID, "%s: %s[%zu].href missing", svc_names[svc], lk, i);
                *out = strdup(href);
                return *out ? FC_OK : FC_ERR(FC_E_NOMEM, "out of memory");
            }
        }
        return FC_OK;
    }
    json_t *next = json_object_get(reply, "next"); /* Glance: "/v2/images?marker=..." */
    if (!next || json_is_null(next))
        return FC_OK;
    if (!json_is_string(next))
        return FC_ERR(FC_E_INVALID, "%s: 'next' is not a string", svc_names[svc]);
    const char *n = json_string_value(next);
    const char *base = NULL;
    fc_rc rc;
    if ((rc = fc_os_endpoint_known(os, svc, &base)))
        return rc;
    size_t bl = strlen(base);
    if (strncmp(n, "/v2/", 4) == 0 && bl >= 3 && strcmp(base + bl - 3, "/v2") == 0)
        n += 3; /* relative to the API root, and the endpoint already ends in /v2 */
    if (n[0] != '/')
        return FC_ERR(FC_E_INVALID, "%s: 'next' is not a path", svc_names[svc]);
    *out = strdup(n);
    return *out ? FC_OK : FC_ERR(FC_E_NOMEM, "out of memory");
}

fc_rc
fc_os_list(struct fc_os *os, enum fc_os_service svc, const char *path, const char *key,
           size_t max_items, json_t **items)
{
    fc_rc rc;
    if (!max_items)
        max_items = 100000;
    json_auto_t *all = json_array();
    FC_AUTOFREE char *cur = strdup(path), *prev = NULL;
    if (!all || !cur)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    for (unsigned page = 0;; page++) {
        if (page >= 10000)
            return FC_ERR(FC_E_INVALID, "%s: more than 10000 pages listing %s", svc_names[svc],
                          key);
        json_auto_t *reply = NULL;
        if ((rc = fc_os_call(os, svc, "GET", cur, NULL, NULL, &reply)))
            return rc;
        json_t *arr = json_object_get(reply, key);
        if (!json_is_array(arr))
            return FC_ERR(FC_E_INVALID, "cloud '%s': %s list reply has no '%s' array",
                          os->cfg->name, svc_names[svc], key);
        if (json_array_size(all) + json_array_size(arr) > max_items)
            return FC_ERR(FC_E_INVALID, "cloud '%s': %s: more than %zu %s", os->cfg->name,
                          svc_names[svc], max_items, key);
        json_array_extend(all, arr);
        char *next = NULL;
        if ((rc = next_link(os, svc, reply, key, &next)))
            return rc;
        if (!next || json_array_size(arr) == 0) {
            free(next);
            break;
        }
        if ((prev && strcmp(prev, next) == 0) || strcmp(cur, next) == 0) {
            free(next);
            return FC_ERR(FC_E_INVALID, "cloud '%s': %s: pagination loops listing %s",
                          os->cfg->name, svc_names[svc], key);
        }
        free(prev);
        prev = cur;
        cur = next;
    }
    *items = json_incref(all);
    return FC_OK;
}
