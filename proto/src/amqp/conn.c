/* SPDX-License-Identifier: Apache-2.0 */
/* fluid_amqp connection life: URL, TCP/TLS connect and login, the frame pump (deliveries,
 * publisher confirms, channel and connection closes), reconnect with backoff. */
#include "amqp_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fluid/error.h"
#include "fluid/log.h"

uint64_t
fc_amqp_now_ns_(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static char *
dupnull(const char *s)
{
    return s ? strdup(s) : NULL;
}

char *
fc_amqp_bytes_dup_(amqp_bytes_t b)
{
    char *s = malloc(b.len + 1);
    if (!s)
        return NULL;
    if (b.len)
        memcpy(s, b.bytes, b.len);
    s[b.len] = '\0';
    return s;
}

const char *
fc_amqp_url_pick(const char *flag, const char *config_value)
{
    const char *env = getenv("FLUID_AMQP_URL");
    if (flag && *flag)
        return flag;
    if (env && *env)
        return env;
    if (config_value && *config_value)
        return config_value;
    return FC_AMQP_DEFAULT_URL;
}

/* Parses url into a malloc'd buffer that ci points into. Never echoes the URL in errors. */
static fc_rc
parse_url(const char *url, char **buf, struct amqp_connection_info *ci)
{
    if (!url)
        url = FC_AMQP_DEFAULT_URL;
    if (strncmp(url, "amqp://", 7) != 0 && strncmp(url, "amqps://", 8) != 0)
        return FC_ERR(FC_E_INVALID, "AMQP URL: scheme must be amqp:// or amqps://");
    if (strlen(url) > 4096)
        return FC_ERR(FC_E_INVALID, "AMQP URL: longer than 4096 bytes");
    /* the host: after "://" and any "user:password@", before ":port" or "/vhost" */
    const char *auth = strstr(url, "://") + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *host = auth;
    for (const char *p = auth; p < auth + alen; p++) {
        if (*p == '@')
            host = p + 1;
    }
    if (host >= auth + alen || *host == ':')
        return FC_ERR(FC_E_INVALID, "AMQP URL: no host");
    *buf = strdup(url);
    if (!*buf)
        return FC_ERR(FC_E_NOMEM, "AMQP URL: out of memory");
    amqp_default_connection_info(ci);
    if (amqp_parse_url(*buf, ci) != AMQP_STATUS_OK) {
        free(*buf);
        *buf = NULL;
        return FC_ERR(FC_E_INVALID,
                      "AMQP URL: malformed (expected amqp[s]://user:password@host:port/vhost)");
    }
    /* "amqp://host/" names the default vhost, as most clients read it. */
    if (!ci->vhost || !*ci->vhost)
        ci->vhost = "/";
    if (!ci->host || !*ci->host) {
        free(*buf);
        *buf = NULL;
        return FC_ERR(FC_E_INVALID, "AMQP URL: no host");
    }
    return FC_OK;
}

static void
fmt_where(const struct amqp_connection_info *ci, char *out, size_t cap, bool scheme)
{
    bool root = strcmp(ci->vhost, "/") == 0;
    snprintf(out, cap, "%s%s:%d/%s", scheme ? (ci->ssl ? "amqps://" : "amqp://") : "",
             ci->host, ci->port, root ? "" : ci->vhost);
}

void
fc_amqp_url_redact(const char *url, char *out, size_t cap)
{
    char *buf = NULL;
    struct amqp_connection_info ci;
    struct fc_error saved = *fc_error_last();
    if (parse_url(url, &buf, &ci) != FC_OK) {
        snprintf(out, cap, "(invalid URL)");
    } else {
        fmt_where(&ci, out, cap, true);
        free(buf);
    }
    if (saved.rc != FC_OK)
        fc_error_at(saved.rc, saved.file, saved.line, "%s", saved.msg);
    else
        fc_error_clear();
}

fc_rc
fc_amqp_new(const struct fc_amqp_config *cfg, struct fc_amqp **out)
{
    *out = NULL;
    struct fc_amqp *a = calloc(1, sizeof *a);
    if (!a)
        return FC_ERR(FC_E_NOMEM, "amqp: out of memory");
    static const struct fc_amqp_config none;
    if (!cfg)
        cfg = &none;
    a->url = strdup(cfg->url ? cfg->url : FC_AMQP_DEFAULT_URL);
    a->ca_file = dupnull(cfg->ca_file);
    a->cert_file = dupnull(cfg->cert_file);
    a->key_file = dupnull(cfg->key_file);
    a->name = dupnull(cfg->name);
    a->heartbeat_s = cfg->heartbeat_s ? cfg->heartbeat_s : 10;
    a->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 5000;
    a->rpc_timeout_ms = cfg->rpc_timeout_ms ? cfg->rpc_timeout_ms : 10000;
    a->backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : 100;
    a->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 10000;
    if (a->backoff_max_ms < a->backoff_min_ms)
        a->backoff_max_ms = a->backoff_min_ms;
    a->reconnect = cfg->reconnect;
    a->backoff_ms = a->backoff_min_ms;
    if (!a->url) {
        fc_amqp_close(a);
        return FC_ERR(FC_E_NOMEM, "amqp: out of memory");
    }
    fc_rc rc = parse_url(a->url, &a->urlbuf, &a->ci);
    if (rc != FC_OK) {
        fc_amqp_close(a);
        return rc;
    }
    if (a->ci.ssl && ((a->cert_file == NULL) != (a->key_file == NULL))) {
        fc_amqp_close(a);
        return FC_ERR(FC_E_INVALID, "amqps: a client certificate needs both cert and key files");
    }
    fmt_where(&a->ci, a->where, sizeof a->where, false);
    *out = a;
    return FC_OK;
}

static void
free_queue(struct fc_amqp *a)
{
    for (size_t i = 0; i < a->qlen; i++)
        fc_amqp_delivery_free(a->q[i]);
    a->qlen = 0;
}

static void
teardown(struct fc_amqp *a)
{
    if (a->conn) {
        amqp_destroy_connection(a->conn);
        a->conn = NULL;
    }
    a->up = false;
    a->aux_open = false;
    a->lock_open = false;
    fc_amqp_tickets_lost_(a);
    a->npending = 0;
    a->nfailed = 0;
    a->return_seen = false;
    free_queue(a);
}

void
fc_amqp_lost_(struct fc_amqp *a, const char *why)
{
    if (!a->up && !a->conn)
        return;
    if (a->up)
        fc_log(FC_WARN, FC_MSG("amqp connection lost"), FC_STR("amqp", a->where),
               FC_STR("reason", why));
    teardown(a);
    a->next_attempt_ns = fc_amqp_now_ns_() + (uint64_t)a->backoff_min_ms * 1000000u;
    a->backoff_ms = a->backoff_min_ms;
}

void
fc_amqp_close(struct fc_amqp *a)
{
    if (!a)
        return;
    if (a->conn && a->up) {
        amqp_channel_close(a->conn, CH_MAIN, AMQP_REPLY_SUCCESS);
        amqp_connection_close(a->conn, AMQP_REPLY_SUCCESS);
    }
    teardown(a);
    for (size_t i = 0; i < a->ncons; i++)
        fc_amqp_consumer_free_(&a->cons[i]);
    free(a->cons);
    for (size_t i = 0; i < a->nsites; i++)
        free(a->sites[i]);
    free(a->sites);
    free(a->q);
    free(a->pending);
    free(a->failed);
    free(a->tickets);
    if (a->url) {
        /* the URL holds the password: wipe it before freeing */
        memset(a->url, 0, strlen(a->url));
        free(a->url);
    }
    if (a->urlbuf) {
        memset(a->urlbuf, 0, strlen(a->urlbuf));
        free(a->urlbuf);
    }
    free(a->ca_file);
    free(a->cert_file);
    free(a->key_file);
    free(a->name);
    free(a);
}

bool
fc_amqp_connected(const struct fc_amqp *a)
{
    return a && a->up;
}

uint64_t
fc_amqp_generation(const struct fc_amqp *a)
{
    return a->gen;
}

int
fc_amqp_fd(const struct fc_amqp *a)
{
    return a->up && a->conn ? amqp_get_sockfd(a->conn) : -1;
}

bool
fc_amqp_pending(const struct fc_amqp *a)
{
    if (a->qlen > 0)
        return true;
    return a->up && a->conn && (amqp_frames_enqueued(a->conn) || amqp_data_in_buffer(a->conn));
}

const char *
fc_amqp_where(const struct fc_amqp *a)
{
    return a->where;
}

static fc_rc
open_rc(struct fc_amqp *a, int st)
{
    switch (st) {
    case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED:
        return FC_ERR(FC_E_VERIFY, "amqps %s: certificate does not match the host name",
                      a->where);
    case AMQP_STATUS_SSL_PEER_VERIFY_FAILED:
        return FC_ERR(FC_E_VERIFY, "amqps %s: certificate did not verify", a->where);
    case AMQP_STATUS_SSL_CONNECTION_FAILED:
        return FC_ERR(FC_E_VERIFY,
                      "amqps %s: TLS handshake failed (certificate not trusted, or not TLS)",
                      a->where);
    default:
        return FC_ERR(FC_E_NET, "amqp %s: connect: %s", a->where, amqp_error_string2(st));
    }
}

static fc_rc
login_rc(struct fc_amqp *a, amqp_rpc_reply_t r)
{
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_t *m = r.reply.decoded;
        int code = m->reply_code;
        char text[256];
        snprintf(text, sizeof text, "%.*s", (int)m->reply_text.len, (char *)m->reply_text.bytes);
        return FC_ERR(code == 403 || code == 530 ? FC_E_AUTH : FC_E_REMOTE,
                      "amqp %s: login as \"%s\" refused: %d %s", a->where, a->ci.user, code,
                      text);
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        return FC_ERR(r.library_error == AMQP_STATUS_CONNECTION_CLOSED ? FC_E_AUTH : FC_E_NET,
                      "amqp %s: login as \"%s\": %s", a->where, a->ci.user,
                      amqp_error_string2(r.library_error));
    return FC_ERR(FC_E_REMOTE, "amqp %s: login failed", a->where);
}

static amqp_table_entry_t
str_entry(const char *k, const char *v)
{
    amqp_table_entry_t e;
    e.key = amqp_cstring_bytes(k);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = amqp_cstring_bytes(v);
    return e;
}

static amqp_table_entry_t
bool_entry(const char *k, bool v)
{
    amqp_table_entry_t e;
    e.key = amqp_cstring_bytes(k);
    e.value.kind = AMQP_FIELD_KIND_BOOLEAN;
    e.value.value.boolean = v;
    return e;
}

fc_rc
fc_amqp_connect(struct fc_amqp *a)
{
    if (a->up)
        return FC_OK;
    teardown(a);
    a->conn = amqp_new_connection();
    if (!a->conn)
        return FC_ERR(FC_E_NOMEM, "amqp: out of memory");
    amqp_socket_t *s;
    if (a->ci.ssl) {
        s = amqp_ssl_socket_new(a->conn);
        if (!s) {
            teardown(a);
            return FC_ERR(FC_E_NOMEM, "amqps: cannot create a TLS socket");
        }
        amqp_ssl_socket_set_verify_peer(s, 1);
        amqp_ssl_socket_set_verify_hostname(s, 1);
        amqp_ssl_socket_set_ssl_versions(s, AMQP_TLSv1_2, AMQP_TLSvLATEST);
        if (a->ca_file && amqp_ssl_socket_set_cacert(s, a->ca_file) != AMQP_STATUS_OK) {
            teardown(a);
            return FC_ERR(FC_E_INVALID, "amqps: CA file %s: cannot load", a->ca_file);
        }
        if (a->cert_file &&
            amqp_ssl_socket_set_key(s, a->cert_file, a->key_file) != AMQP_STATUS_OK) {
            teardown(a);
            return FC_ERR(FC_E_INVALID, "amqps: client certificate %s / key %s: cannot load",
                          a->cert_file, a->key_file);
        }
    } else {
        s = amqp_tcp_socket_new(a->conn);
    }
    if (!s) {
        teardown(a);
        return FC_ERR(FC_E_NOMEM, "amqp: cannot create a socket");
    }
    struct timeval tv = {a->connect_timeout_ms / 1000, (a->connect_timeout_ms % 1000) * 1000};
    int st = amqp_socket_open_noblock(s, a->ci.host, a->ci.port, &tv);
    if (st != AMQP_STATUS_OK) {
        fc_rc rc = open_rc(a, st);
        teardown(a);
        return rc;
    }
    amqp_set_handshake_timeout(a->conn, &tv);
    struct timeval rtv = {a->rpc_timeout_ms / 1000, (a->rpc_timeout_ms % 1000) * 1000};
    amqp_set_rpc_timeout(a->conn, &rtv);

    amqp_table_entry_t caps[] = {bool_entry("authentication_failure_close", true),
                                 bool_entry("consumer_cancel_notify", true),
                                 bool_entry("publisher_confirms", true)};
    amqp_table_entry_t props[4];
    int np = 0;
    props[np++] = str_entry("product", "FluidCloud fluid_amqp");
    props[np++] = str_entry("version", FLUID_VERSION);
    props[np].key = amqp_cstring_bytes("capabilities");
    props[np].value.kind = AMQP_FIELD_KIND_TABLE;
    props[np].value.value.table.num_entries = (int)(sizeof caps / sizeof caps[0]);
    props[np].value.value.table.entries = caps;
    np++;
    if (a->name)
        props[np++] = str_entry("connection_name", a->name);
    amqp_table_t ptab = {np, props};
    amqp_rpc_reply_t r = amqp_login_with_properties(
        a->conn, a->ci.vhost, 0, 131072, (int)a->heartbeat_s, &ptab, AMQP_SASL_METHOD_PLAIN,
        a->ci.user, a->ci.password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        fc_rc rc = login_rc(a, r);
        teardown(a);
        return rc;
    }
    a->up = true;
    amqp_channel_open(a->conn, CH_MAIN);
    fc_rc rc = fc_amqp_reply_rc_(a, amqp_get_rpc_reply(a->conn), CH_MAIN, "open channel");
    if (rc == FC_OK) {
        amqp_confirm_select(a->conn, CH_MAIN);
        rc = fc_amqp_reply_rc_(a, amqp_get_rpc_reply(a->conn), CH_MAIN, "confirm.select");
    }
    if (rc != FC_OK) {
        teardown(a);
        return rc;
    }
    a->gen++;
    a->next_seq = 1;
    a->batch_nacks = a->batch_returns = 0;
    rc = fc_amqp_replay_(a);
    if (rc != FC_OK) {
        if (a->conn) {
            struct fc_error saved = *fc_error_last();
            amqp_connection_close(a->conn, AMQP_REPLY_SUCCESS);
            fc_error_at(saved.rc, saved.file, saved.line, "%s", saved.msg);
        }
        teardown(a);
        return rc;
    }
    a->backoff_ms = a->backoff_min_ms;
    a->failures = 0;
    fc_log(FC_INFO, FC_MSG("amqp connected"), FC_STR("amqp", a->where),
           FC_U64("generation", a->gen));
    return FC_OK;
}

fc_rc
fc_amqp_open(const struct fc_amqp_config *cfg, struct fc_amqp **out)
{
    struct fc_amqp *a = NULL;
    fc_rc rc = fc_amqp_new(cfg, &a);
    if (rc != FC_OK)
        return rc;
    rc = fc_amqp_connect(a);
    if (rc != FC_OK) {
        fc_amqp_close(a);
        *out = NULL;
        return rc;
    }
    *out = a;
    return FC_OK;
}

static void
send_close_ok(struct fc_amqp *a, amqp_channel_t ch, bool conn_level)
{
    if (conn_level) {
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(a->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    } else {
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(a->conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    }
}

static fc_rc
code_rc(int code)
{
    switch (code) {
    case 404:
        return FC_E_NOTFOUND;
    case 405:
        return FC_E_CONFLICT;
    case 403:
    case 530:
        return FC_E_AUTH;
    case 320:
        return FC_E_NET;
    default:
        return FC_E_REMOTE;
    }
}

fc_rc
fc_amqp_status_rc_(struct fc_amqp *a, int status, const char *what)
{
    char why[256];
    snprintf(why, sizeof why, "%s: %s", what, amqp_error_string2(status));
    fc_amqp_lost_(a, why);
    return FC_ERR(FC_E_NET, "amqp %s: %s", a->where, why);
}

fc_rc
fc_amqp_reply_rc_(struct fc_amqp *a, amqp_rpc_reply_t r, amqp_channel_t ch, const char *what)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return FC_OK;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return fc_amqp_status_rc_(a, r.library_error, what);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            int code = m->reply_code;
            char text[300];
            snprintf(text, sizeof text, "%.*s", (int)m->reply_text.len,
                     (char *)m->reply_text.bytes);
            send_close_ok(a, ch, false);
            if (ch == CH_AUX) {
                a->aux_open = false;
            } else {
                char why[400];
                snprintf(why, sizeof why, "channel closed by the server: %d %s", code, text);
                fc_amqp_lost_(a, why);
            }
            return FC_ERR(code_rc(code), "amqp %s: %s: %d %s", a->where, what, code, text);
        }
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            int code = m->reply_code;
            char text[300];
            snprintf(text, sizeof text, "%.*s", (int)m->reply_text.len,
                     (char *)m->reply_text.bytes);
            send_close_ok(a, 0, true);
            char why[400];
            snprintf(why, sizeof why, "closed by the server: %d %s", code, text);
            fc_amqp_lost_(a, why);
            return FC_ERR(code == 320 ? FC_E_NET : code_rc(code), "amqp %s: %s: %d %s", a->where,
                          what, code, text);
        }
        fc_amqp_lost_(a, "unexpected server reply");
        return FC_ERR(FC_E_REMOTE, "amqp %s: %s: unexpected reply", a->where, what);
    default:
        return FC_ERR(FC_E_INTERNAL, "amqp %s: %s: no reply", a->where, what);
    }
}

fc_rc
fc_amqp_aux_(struct fc_amqp *a)
{
    if (!a->up)
        return FC_ERR(FC_E_NET, "amqp %s: not connected", a->where);
    if (a->aux_open)
        return FC_OK;
    amqp_channel_open(a->conn, CH_AUX);
    fc_rc rc = fc_amqp_reply_rc_(a, amqp_get_rpc_reply(a->conn), CH_AUX, "open channel 2");
    if (rc == FC_OK)
        a->aux_open = true;
    return rc;
}

/* ---- frames ---- */

static void
confirm(struct fc_amqp *a, uint64_t tag, bool multiple, bool ok)
{
    bool returned = a->return_seen;
    a->return_seen = false;
    int res = !ok ? 2 : returned ? 3 : 1;
    if (!ok)
        a->batch_nacks++;
    if (returned)
        a->batch_returns++;
    size_t j = 0;
    for (size_t i = 0; i < a->npending; i++) {
        uint64_t s = a->pending[i];
        bool hit = multiple ? s <= tag : s == tag;
        if (hit) {
            if (s == a->wait_seq)
                a->wait_result = res;
            if (res != 1) {
                /* remember it for fc_amqp_confirmed (the most recent 4096) */
                if (a->nfailed == a->capfailed) {
                    size_t n = a->capfailed ? a->capfailed * 2 : 16;
                    uint64_t *f = n <= 4096 ? realloc(a->failed, n * sizeof *f) : NULL;
                    if (f) {
                        a->failed = f;
                        a->capfailed = n;
                    } else if (a->nfailed > 0) {
                        memmove(a->failed, a->failed + 1, (a->nfailed - 1) * sizeof *a->failed);
                        a->nfailed--;
                    }
                }
                if (a->nfailed < a->capfailed)
                    a->failed[a->nfailed++] = s;
            }
        } else {
            a->pending[j++] = s;
        }
    }
    a->npending = j;
}

static fc_rc
push_delivery(struct fc_amqp *a, struct fc_amqp_delivery *d)
{
    if (a->qlen == a->qcap) {
        size_t n = a->qcap ? a->qcap * 2 : 16;
        struct fc_amqp_delivery **q = realloc(a->q, n * sizeof *q);
        if (!q) {
            fc_amqp_delivery_free(d);
            return FC_ERR(FC_E_NOMEM, "amqp: out of memory");
        }
        a->q = q;
        a->qcap = n;
    }
    a->q[a->qlen++] = d;
    return FC_OK;
}

/* Fills d's properties and body from a message (copies). */
fc_rc fc_amqp_fill_delivery_(struct fc_amqp_delivery *d, const amqp_message_t *msg);

static fc_rc
on_deliver(struct fc_amqp *a, amqp_frame_t *f)
{
    amqp_basic_deliver_t *m = f->payload.method.decoded;
    struct fc_amqp_delivery *d = calloc(1, sizeof *d);
    if (!d)
        return FC_ERR(FC_E_NOMEM, "amqp: out of memory");
    d->tag = m->delivery_tag;
    d->generation = a->gen;
    d->redelivered = m->redelivered;
    d->exchange = fc_amqp_bytes_dup_(m->exchange);
    d->routing_key = fc_amqp_bytes_dup_(m->routing_key);
    d->consumer_tag = fc_amqp_bytes_dup_(m->consumer_tag);
    for (size_t i = 0; i < a->ncons; i++) {
        if (a->cons[i].queue && strcmp(a->cons[i].tag, d->consumer_tag ? d->consumer_tag : "") == 0)
            d->queue = strdup(a->cons[i].queue);
    }
    amqp_message_t msg;
    amqp_rpc_reply_t r = amqp_read_message(a->conn, f->channel, &msg, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        fc_amqp_delivery_free(d);
        return fc_amqp_reply_rc_(a, r, f->channel, "read message");
    }
    fc_rc rc = fc_amqp_fill_delivery_(d, &msg);
    amqp_destroy_message(&msg);
    if (rc != FC_OK) {
        fc_amqp_delivery_free(d);
        return rc;
    }
    return push_delivery(a, d);
}

fc_rc
fc_amqp_pump_(struct fc_amqp *a, int timeout_ms)
{
    if (!a->up)
        return FC_ERR(FC_E_NET, "amqp %s: not connected", a->where);
    if (timeout_ms < 0)
        timeout_ms = 0;
    if (amqp_release_buffers_ok(a->conn))
        amqp_release_buffers(a->conn);
    amqp_frame_t f;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    int st = amqp_simple_wait_frame_noblock(a->conn, &f, &tv);
    if (st == AMQP_STATUS_TIMEOUT)
        return FC_E_TIMEOUT;
    if (st != AMQP_STATUS_OK)
        return fc_amqp_status_rc_(a, st, "read");
    if (f.frame_type != AMQP_FRAME_METHOD)
        return FC_OK;
    if (f.channel == CH_LOCK) {
        fc_amqp_lock_frame_(a, &f);
        return FC_OK;
    }
    switch (f.payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD:
        return on_deliver(a, &f);
    case AMQP_BASIC_ACK_METHOD: {
        amqp_basic_ack_t *m = f.payload.method.decoded;
        confirm(a, m->delivery_tag, m->multiple, true);
        return FC_OK;
    }
    case AMQP_BASIC_NACK_METHOD: {
        amqp_basic_nack_t *m = f.payload.method.decoded;
        confirm(a, m->delivery_tag, m->multiple, false);
        return FC_OK;
    }
    case AMQP_BASIC_RETURN_METHOD: {
        amqp_message_t msg;
        amqp_rpc_reply_t r = amqp_read_message(a->conn, f.channel, &msg, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL)
            return fc_amqp_reply_rc_(a, r, f.channel, "read returned message");
        amqp_destroy_message(&msg);
        a->return_seen = true;
        return FC_OK;
    }
    case AMQP_BASIC_CANCEL_METHOD: {
        amqp_basic_cancel_t *m = f.payload.method.decoded;
        char tag[256];
        snprintf(tag, sizeof tag, "%.*s", (int)m->consumer_tag.len, (char *)m->consumer_tag.bytes);
        /* The queue was deleted under us: reconnecting re-declares and re-consumes. */
        char why[300];
        snprintf(why, sizeof why, "consumer %s cancelled by the server", tag);
        fc_amqp_lost_(a, why);
        return FC_ERR(FC_E_NET, "amqp %s: %s", a->where, why);
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_rpc_reply_t r = {0};
        r.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
        r.reply = f.payload.method;
        return fc_amqp_reply_rc_(a, r, f.channel, "server closed");
    }
    default:
        return FC_OK;
    }
}

static void
sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* One reconnect attempt when it is due. */
static void
maybe_reconnect(struct fc_amqp *a)
{
    if (a->up || fc_amqp_now_ns_() < a->next_attempt_ns)
        return;
    fc_rc rc = fc_amqp_connect(a);
    if (rc == FC_OK)
        return;
    a->failures++;
    if (a->failures == 1 || a->failures % 10 == 0)
        fc_log(FC_WARN, FC_MSG("amqp reconnect failed"), FC_STR("amqp", a->where),
               FC_STR("error", fc_error_msg()), FC_U64("attempt", a->failures),
               FC_U64("retry_ms", a->backoff_ms));
    uint64_t jitter = (uint64_t)(rand() % (int)(a->backoff_ms / 4 + 1));
    a->next_attempt_ns = fc_amqp_now_ns_() + ((uint64_t)a->backoff_ms + jitter) * 1000000u;
    a->backoff_ms = a->backoff_ms * 2 > a->backoff_max_ms ? a->backoff_max_ms : a->backoff_ms * 2;
}

fc_rc
fc_amqp_wait(struct fc_amqp *a, int timeout_ms, struct fc_amqp_delivery **out)
{
    *out = NULL;
    uint64_t start = fc_amqp_now_ns_();
    bool forever = timeout_ms < 0;
    uint64_t deadline = start + (forever ? 0 : (uint64_t)timeout_ms * 1000000u);
    for (;;) {
        if (a->qlen > 0) {
            *out = a->q[0];
            memmove(a->q, a->q + 1, (a->qlen - 1) * sizeof *a->q);
            a->qlen--;
            return FC_OK;
        }
        uint64_t now = fc_amqp_now_ns_();
        int left = forever ? 1000 : now >= deadline ? 0 : (int)((deadline - now) / 1000000u);
        if (!a->up) {
            if (!a->reconnect)
                return FC_ERR(FC_E_NET, "amqp %s: not connected", a->where);
            maybe_reconnect(a);
            if (a->up)
                continue;
            now = fc_amqp_now_ns_();
            if (!forever && now >= deadline)
                return FC_OK;
            uint64_t until = a->next_attempt_ns;
            if (!forever && until > deadline)
                until = deadline;
            if (until > now)
                sleep_ms((until - now) / 1000000u + 1);
            continue;
        }
        fc_rc rc = fc_amqp_pump_(a, left);
        if (rc == FC_E_TIMEOUT) {
            if (!forever)
                return FC_OK;
            continue;
        }
        if (rc == FC_E_NOMEM)
            return rc;
        if (rc != FC_OK && !a->up && !a->reconnect)
            return rc;
        /* a frame was handled (or channel 2 closed, or a reconnect is due): loop; past the
         * deadline, pump(0) only drains what is buffered */
    }
}
