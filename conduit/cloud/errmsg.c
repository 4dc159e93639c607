/* SPDX-License-Identifier: Apache-2.0 */
/* The service's own message from an OpenStack error reply: JSON in each service's shape
 * (Keystone, Nova, Cinder, Neutron, Glance, Placement) or HTML/text (Glance's webob pages),
 * reduced to one printable line. Also config copying and the streaming request. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "internal.h"

/* Appends `s` (n bytes) to out as one ASCII line: controls become spaces, runs of spaces
 * collapse, non-ASCII becomes '?'. */
static void
put_text(char *out, size_t cap, size_t *pos, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *pos + 1 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        char c = ch < 0x20 || ch == 0x7f ? ' ' : ch >= 0x80 ? '?' : (char)ch;
        if (c == ' ' && (*pos == 0 || out[*pos - 1] == ' '))
            continue;
        out[(*pos)++] = c;
    }
    out[*pos] = '\0';
}

static void
finish(char *out, size_t *pos)
{
    while (*pos > 0 && out[*pos - 1] == ' ')
        out[--*pos] = '\0';
}

static const char *
json_message(json_t *root)
{
    const char *m;
    json_t *v;
    const char *k;
    if (!json_is_object(root))
        return NULL;
    static const char *const direct[] = {"message", "detail", "description", "title", "faultstring"};
    json_t *err = json_object_get(root, "error");          /* Keystone */
    if (json_is_object(err) && (m = json_string_value(json_object_get(err, "message"))))
        return m;
    if (json_is_string(err))
        return json_string_value(err);
    json_t *ne = json_object_get(root, "NeutronError");     /* Neutron */
    if (json_is_object(ne) && (m = json_string_value(json_object_get(ne, "message"))))
        return m;
    if (json_is_string(ne))
        return json_string_value(ne);
    json_t *errs = json_object_get(root, "errors");         /* Placement, newer Cinder */
    if (json_is_array(errs)) {
        json_t *e0 = json_array_get(errs, 0);
        if ((m = json_string_value(json_object_get(e0, "detail"))) ||
            (m = json_string_value(json_object_get(e0, "title"))))
            return m;
    }
    for (size_t i = 0; i < sizeof direct / sizeof direct[0]; i++)
        if ((m = json_string_value(json_object_get(root, direct[i]))))
            return m;
    json_object_foreach(root, k, v) {                       /* Nova, Cinder: {"badRequest":{..}} */
        if (json_is_object(v) && (m = json_string_value(json_object_get(v, "message"))))
            return m;
    }
    return NULL;
}

/* HTML or text: tags dropped, <head>/<title>/<script>/<style> and a status-line <h1>
 * skipped, a few entities decoded. */
static void
html_text(const char *b, size_t len, char *out, size_t cap, size_t *pos)
{
    size_t i = 0;
    const char *skip_until = NULL;
    while (i < len && *pos + 1 < cap) {
        if (b[i] == '<') {
            size_t j = i + 1;
            while (j < len && b[j] != '>')
                j++;
            size_t tl = j - i - 1;
            const char *tag = b + i + 1;
            if (skip_until) {
                size_t sl = strlen(skip_until);
                if (tl >= sl && strncasecmp(tag, skip_until, sl) == 0)
                    skip_until = NULL;
            } else if (tl >= 4 && strncasecmp(tag, "head", 4) == 0) {
                skip_until = "/head";
            } else if (tl >= 5 && strncasecmp(tag, "title", 5) == 0) {
                skip_until = "/title";
            } else if (tl >= 6 && strncasecmp(tag, "script", 6) == 0) {
                skip_until = "/script";
            } else if (tl >= 5 && strncasecmp(tag, "style", 5) == 0) {
                skip_until = "/style";
            } else if (tl >= 2 && strncasecmp(tag, "h1", 2) == 0 && j + 1 < len &&
                       isdigit((unsigned char)b[j + 1])) {
                skip_until = "/h1";
            }
            put_text(out, cap, pos, " ", 1);
            i = j + 1;
            continue;
        }
        if (skip_until) {
            i++;
            continue;
        }
        if (b[i] == '&') {
            static const struct {
                const char *ent, *txt;
            } ents[] = {{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""},
                        {"&#39;", "'"}, {"&#x27;", "'"}, {"&nbsp;", " "}};
            bool done = false;
            for (size_t e = 0; e < sizeof ents / sizeof ents[0]; e++) {
                size_t el = strlen(ents[e].ent);
                if (len - i >= el && strncmp(b + i, ents[e].ent, el) == 0) {
                    put_text(out, cap, pos, ents[e].txt, strlen(ents[e].txt));
                    i += el;
                    done = true;
                    break;
                }
            }
            if (done)
                continue;
        }
        put_text(out, cap, pos, b + i, 1);
        i++;
    }
}

void
fc_os_error_message(const char *body, size_t len, const char *content_type, char *out,
                    size_t cap)
{
    size_t pos = 0;
    if (cap == 0)
        return;
    out[0] = '\0';
    if (!body || len == 0)
        return;
    size_t k = 0;
    while (k < len && isspace((unsigned char)body[k]))
        k++;
    if (k < len && (body[k] == '{' || body[k] == '[')) {
        json_auto_t *root = json_loadb(body, len, 0, NULL);
        if (root) {
            const char *m = json_message(root);
            if (m) { /* Glance's JSON messages hold markup too ("...<br /><br />") */
                html_text(m, strlen(m), out, cap, &pos);
                finish(out, &pos);
                return;
            }
        }
    }
    (void)content_type; /* HTML and text take the same path: tags are dropped either way */
    html_text(body, len, out, cap, &pos);
    finish(out, &pos);
    if (pos > 0 && out[0] == ' ')
        memmove(out, out + 1, pos);
}

/* ---- config copy ---------------------------------------------------------------------- */

struct fc_cloud_config *
fc_cloud_config_dup(const struct fc_cloud_config *c)
{
    struct fc_cloud_config *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    *d = *c;
    char **f[] = {&d->name, &d->origin, &d->auth_url, &d->username, &d->user_id,
                  &d->password, &d->user_domain_name, &d->user_domain_id, &d->project_name,
                  &d->project_id, &d->project_domain_name, &d->project_domain_id,
                  &d->app_cred_id, &d->app_cred_name, &d->app_cred_secret, &d->region_name,
                  &d->interface, &d->cacert, &d->cert, &d->key, &d->compute_api_version,
                  &d->volume_api_version, &d->compute_override, &d->network_override,
                  &d->image_override, &d->volume_override, &d->storage_host, &d->storage_port,
                  &d->storage_user, &d->storage_identity, &d->storage_known_hosts,
                  &d->storage_path};
    bool fail = false;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (*f[i] && !(*f[i] = strdup(*f[i])))
            fail = true;
    if (fail) {
        fc_cloud_config_free(d);
        return NULL;
    }
    return d;
}

/* ---- streaming ------------------------------------------------------------------------- */

struct stream_ctx {
    CURL *curl;
    fc_os_read_fn upload;
    void *uctx;
    fc_os_write_fn sink;
    void *sctx;
    struct fc_http_resp *r; /* an error reply's body is kept (first 64 KiB) for the message */
    int ok;                 /* -1 unknown, 0 error reply, 1 2xx */
    bool aborted;
    bool ranged;            /* a Range header was sent, from byte `from` */
    uint64_t from;
    int range_state;        /* 0 unchecked, 1 checked fine, -1 a 206 that does not fit */
    bool partial;           /* the reply is a 206 starting at `from` */
    int64_t total;          /* Content-Range's total, -1 unknown */
    char crange[128];       /* the reply's Content-Range header */
    uint64_t skip;          /* a 200 to a Range request: bytes before `from` to drop */
};

/* A 206 must carry "Content-Range: bytes FROM-END/TOTAL" starting where we asked. */
static void
check_range(struct stream_ctx *s, long code)
{
    if (s->range_state)
        return;
    s->range_state = 1;
    s->partial = false;
    s->total = -1;
    s->skip = 0;
    if (code != 206) {
        s->skip = s->ranged ? s->from : 0; /* the whole body: drop what the caller has */
        return;
    }
    unsigned long long a = 0, b = 0, t = 0;
    int n = 0;
    if (!s->ranged || sscanf(s->crange, "bytes %llu-%llu/%n", &a, &b, &n) != 2 || n == 0 ||
        a != s->from || b < a) {
        s->range_state = -1;
        return;
    }
    if (strcmp(s->crange + n, "*") != 0) {
        char *e = NULL;
        t = strtoull(s->crange + n, &e, 10);
        if (!*(s->crange + n) || *e || t <= b) {
            s->range_state = -1;
            return;
        }
        s->total = (int64_t)t;
    }
    s->partial = true;
}

static size_t
st_read(char *buf, size_t sz, size_t nm, void *ud)
{
    struct stream_ctx *s = ud;
    return s->upload(s->uctx, buf, sz * nm);
}

static size_t
st_write(char *p, size_t sz, size_t nm, void *ud)
{
    struct stream_ctx *s = ud;
    size_t n = sz * nm;
    if (s->ok < 0) {
        long code = 0;
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
        s->ok = code >= 200 && code <= 299;
        if (s->ok)
            check_range(s, code);
    }
    if (s->ok && s->range_state < 0)
        return 0; /* a 206 for another range: not a byte of it goes to the sink */
    if (s->ok && s->skip) {
        size_t k = n < s->skip ? n : (size_t)s->skip;
        s->skip -= k;
        if (k == n)
            return n;
        if (s->sink && s->sink(s->sctx, p + k, n - k)) {
            s->aborted = true;
            return 0;
        }
        return n;
    }
    if (s->ok) {
        if (s->sink && s->sink(s->sctx, p, n)) {
            s->aborted = true;
            return 0;
        }
        return n;
    }
    struct fc_http_resp *r = s->r;
    size_t room = r->len < 65536 ? 65536 - r->len : 0, take = n < room ? n : room;
    if (take) {
        char *b = realloc(r->body, r->len + take + 1);
        if (!b)
            return 0;
        r->body = b;
        memcpy(b + r->len, p, take);
        r->len += take;
        b[r->len] = '\0';
    }
    return n;
}

static size_t
st_header(char *p, size_t sz, size_t nm, void *ud)
{
    struct stream_ctx *s = ud;
    size_t n = sz * nm;
    if (n > 5 && strncmp(p, "HTTP/", 5) == 0) {
        s->ok = -1;
        s->range_state = 0;
        s->crange[0] = '\0';
    }
    const char *names[] = {"X-Openstack-Request-Id", "X-Compute-Request-Id", "Content-Type",
                           "Content-Range"};
    char *dst[] = {s->r->request_id, s->r->request_id, s->r->content_type, s->crange};
    size_t caps[] = {sizeof s->r->request_id, sizeof s->r->request_id,
                     sizeof s->r->content_type, sizeof s->crange};
    for (int i = 0; i < 4; i++) {
        size_t k = strlen(names[i]);
        if (n > k && strncasecmp(p, names[i], k) == 0 && p[k] == ':') {
            const char *v = p + k + 1, *e = p + n;
            while (v < e && *v == ' ')
                v++;
            while (e > v && (e[-1] == '\r' || e[-1] == '\n'))
                e--;
            size_t len = (size_t)(e - v) < caps[i] - 1 ? (size_t)(e - v) : caps[i] - 1;
            for (size_t j = 0; j < len; j++)
                dst[i][j] = isprint((unsigned char)v[j]) ? v[j] : '?';
            dst[i][len] = '\0';
            break;
        }
    }
    return n;
}

static fc_rc
stream_run(struct fc_os *os, enum fc_os_service svc, const char *method, const char *path,
           const char *content_type, fc_os_read_fn upload, void *uctx, int64_t upload_size,
           fc_os_write_fn sink, void *sctx, long *status, struct stream_ctx *rs)
{
    fc_rc rc;
    const char *base = NULL;
    char line[8400], dpath[256];
    FC_AUTOFREE char *url = NULL;
    if (status)
        *status = 0;
    if ((rc = fc_os_ensure_token(os)) || (rc = fc_os_endpoint_known(os, svc, &base)))
        return rc;
    if (path[0] != '/' || strpbrk(path, " \r\n\t"))
        return FC_ERR(FC_E_INVALID, "%s: stream path must start with / and hold no space",
                      fc_os_service_name(svc));
    if (asprintf(&url, "%s%s", base, path) < 0)
        return url = NULL, FC_ERR(FC_E_NOMEM, "out of memory");
    fc_os_describe_path(url, dpath, sizeof dpath);
    struct fc_http_resp r = {0};
    struct stream_ctx s = {os->curl, upload, uctx, sink, sctx, &r, -1, false, rs->ranged,
                           rs->from, 0, false, -1, "", 0};
    CURL *c = os->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)os->connect_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); /* stalled for 60 s: give up */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, os->cfg->verify ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, os->cfg->verify ? 2L : 0L);
    if (os->cfg->cacert)
        curl_easy_setopt(c, CURLOPT_CAINFO, os->cfg->cacert);
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    snprintf(line, sizeof line, "X-Auth-Token: %s", os->token);
    h = curl_slist_append(h, line);
    explicit_bzero(line, sizeof line);
    if (content_type) {
        snprintf(line, sizeof line, "Content-Type: %.200s", content_type);
        h = curl_slist_append(h, line);
    }
    if (os->microversion[svc]) {
        snprintf(line, sizeof line, "OpenStack-API-Version: %s %s", fc_os_service_name(svc),
                 os->microversion[svc]);
        h = curl_slist_append(h, line);
    }
    if (s.ranged) {
        snprintf(line, sizeof line, "Range: bytes=%llu-", (unsigned long long)s.from);
        h = curl_slist_append(h, line);
    }
    /* image data: larger pieces than curl's defaults (16 KiB received, 64 KiB sent per
     * call) mean fewer callbacks and system calls per byte */
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L << 10);
    if (os->max_rate) {
        curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)os->max_rate);
        curl_easy_setopt(c, CURLOPT_MAX_SEND_SPEED_LARGE, (curl_off_t)os->max_rate);
    }
    if (upload) {
        curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 1L << 20);
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, st_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &s);
        if (upload_size >= 0)
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)upload_size);
        else
            h = curl_slist_append(h, "Transfer-Encoding: chunked");
    }
    if (strcmp(method, "GET") == 0 && !upload)
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    else
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, st_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, st_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &s);
    CURLcode cc = curl_easy_perform(c);
    curl_slist_free_all(h);
    os->stats.requests++;
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (cc == CURLE_OK && code >= 200 && code <= 299)
        check_range(&s, code); /* a 206 with an empty body never reached st_write */
    if (s.range_state < 0) {
        fc_http_resp_clear(&r);
        return FC_ERR(FC_E_REMOTE, "cloud '%s': %s %s %s from byte %llu: the reply's "
                      "Content-Range \"%.100s\" does not give the bytes asked for",
                      fc_os_cloud_name(os), fc_os_service_name(svc), method, dpath,
                      (unsigned long long)s.from, s.crange);
    }
    rs->partial = s.partial;
    rs->total = s.total;
    if (cc != CURLE_OK) {
        rc = s.aborted ? FC_E_IO : cc == CURLE_OPERATION_TIMEDOUT ? FC_E_TIMEOUT : FC_E_NET;
        if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CONNECT_ERROR)
            rc = FC_E_VERIFY;
        fc_http_resp_clear(&r);
        if (s.aborted)
            return rc; /* the sink set the error */
        return FC_ERR(rc, "cloud '%s': %s %s %s: %s", fc_os_cloud_name(os),
                      fc_os_service_name(svc), method, dpath, curl_easy_strerror(cc));
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    if (status)
        *status = r.status;
    if (r.status < 200 || r.status > 299)
        rc = fc_os_http_error(os, svc, method, dpath, &r);
    fc_http_resp_clear(&r);
    return rc;
}

fc_rc
fc_os_stream(struct fc_os *os, enum fc_os_service svc, const char *method, const char *path,
             const char *content_type, fc_os_read_fn upload, void *uctx, int64_t upload_size,
             fc_os_write_fn sink, void *sctx, long *status)
{
    struct stream_ctx rs = {.total = -1};
    return stream_run(os, svc, method, path, content_type, upload, uctx, upload_size, sink,
                      sctx, status, &rs);
}

fc_rc
fc_os_stream_from(struct fc_os *os, enum fc_os_service svc, const char *path, uint64_t from,
                  fc_os_write_fn sink, void *sctx, bool *partial, int64_t *total, long *status)
{
    struct stream_ctx rs = {.ranged = from > 0, .from = from, .total = -1};
    fc_rc rc = stream_run(os, svc, "GET", path, NULL, NULL, NULL, 0, sink, sctx, status, &rs);
    if (partial)
        *partial = rs.partial;
    if (total)
        *total = rs.total;
    return rc;
}
