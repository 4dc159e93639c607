/* SPDX-License-Identifier: Apache-2.0 */
/* Keystone v3: password and application-credential authentication, token reuse and refresh
 * before expiry, revocation, and the service catalog (endpoint by interface and region). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "internal.h"

int64_t
fc_os_parse_time(const char *s)
{
    int y, mo, d, h, mi, se, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &n) != 6 ||
        n != 19)
        return -1;
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        se > 60 || h < 0 || mi < 0 || se < 0)
        return -1;
    const char *p = s + 19;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    int off = 0;
    if (*p == 'Z') {
        p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh = (p[1] - '0') * 10 + (p[2] - '0'), om = (p[4] - '0') * 10 + (p[5] - '0');
        off = (p[0] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
        p += 6;
    }
    if (*p)
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                    .tm_min = mi, .tm_sec = se};
    return (int64_t)timegm(&tm) - off;
}

void
fc_os_token_info_clear(struct fc_os_token_info *ti)
{
    for (int i = 0; i < FC_SVC__COUNT; i++)
        free(ti->urls[i]);
    free(ti->project_id);
    free(ti->user_id);
    memset(ti, 0, sizeof *ti);
}

static bool
valid_url(const char *u)
{
    size_t n = strlen(u);
    if (n > 2048 || (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= ' ' || u[i] == 0x7f || u[i] == '"' || u[i] == '\\')
            return false;
    return true;
}

static bool
valid_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == '/' || s[i] == '?' || s[i] == '#' ||
            s[i] == 0x7f)
            return false;
    return true;
}

/* Catalog type -> service and preference (lower wins). */
static int
svc_of_type(const char *type, int *pref)
{
    static const struct {
        const char *type;
        int svc, pref;
    } t[] = {{"compute", FC_SVC_COMPUTE, 0},   {"network", FC_SVC_NETWORK, 0},
             {"image", FC_SVC_IMAGE, 0},       {"block-storage", FC_SVC_VOLUME, 0},
             {"volumev3", FC_SVC_VOLUME, 1},   {"volume", FC_SVC_VOLUME, 2},
             {"identity", FC_SVC_IDENTITY, 0}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(type, t[i].type) == 0)
            return *pref = t[i].pref, t[i].svc;
    return -1;
}

static fc_rc
fix_url(int svc, const char *url, char **out)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    const char *suffix = "";
    if (svc == FC_SVC_IMAGE && !(n >= 3 && strncmp(url + n - 3, "/v2", 3) == 0))
        suffix = "/v2";
    if (svc == FC_SVC_NETWORK && !(n >= 5 && strncmp(url + n - 5, "/v2.0", 5) == 0))
        suffix = "/v2.0";
    if (asprintf(out, "%.*s%s", (int)n, url, suffix) < 0)
        return *out = NULL, FC_ERR(FC_E_NOMEM, "out of memory");
    return FC_OK;
}

fc_rc
fc_os_parse_token(const char *body, size_t len, const char *interface, const char *region,
                  struct fc_os_token_info *out)
{
    json_error_t je;
    fc_rc rc;
    memset(out, 0, sizeof *out);
    json_auto_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return FC_ERR(FC_E_INVALID, "identity: token reply is not JSON (line %d: %.80s)",
                      je.line, je.text);
    json_t *tok = json_object_get(root, "token");
    if (!json_is_object(tok))
        return FC_ERR(FC_E_INVALID, "identity: token reply has no 'token' object");
    const char *exp = json_string_value(json_object_get(tok, "expires_at"));
    if (!exp || (out->expires_at = fc_os_parse_time(exp)) < 0)
        return FC_ERR(FC_E_INVALID, "identity: token.expires_at missing or malformed");
    const char *uid = json_string_value(json_object_get(json_object_get(tok, "user"), "id"));
    if (!valid_id(uid))
        return FC_ERR(FC_E_INVALID, "identity: token.user.id missing or malformed");
    out->user_id = strdup(uid);
    json_t *proj = json_object_get(tok, "project");
    if (proj) {
        const char *pid = json_string_value(json_object_get(proj, "id"));
        if (!valid_id(pid)) {
            fc_os_token_info_clear(out);
            return FC_ERR(FC_E_INVALID, "identity: token.project.id malformed");
        }
        out->project_id = strdup(pid);
    }
    if (!interface)
        interface = "public";
    char iface[32];
    snprintf(iface, sizeof iface, "%s", interface);
    char *u = strstr(iface, "URL"); /* publicURL -> public, as the CLI accepts */
    if (u && u[3] == '\0')
        *u = '\0';
    json_t *cat = json_object_get(tok, "catalog");
    if (cat && !json_is_array(cat)) {
        fc_os_token_info_clear(out);
        return FC_ERR(FC_E_INVALID, "identity: token.catalog is not an array");
    }
    int best[FC_SVC__COUNT];
    for (int i = 0; i < FC_SVC__COUNT; i++)
        best[i] = 99;
    size_t i, j;
    json_t *svc, *ep;
    json_array_foreach(cat, i, svc) {
        const char *type = json_string_value(json_object_get(svc, "type"));
        json_t *eps = json_object_get(svc, "endpoints");
        if (!type || !json_is_array(eps)) {
            fc_os_token_info_clear(out);
            return FC_ERR(FC_E_INVALID, "identity: token.catalog[%zu] lacks type or endpoints", i);
        }
        int pref, s = svc_of_type(type, &pref);
        if (s < 0 || pref >= best[s])
            continue;
        json_array_foreach(eps, j, ep) {
            const char *ei = json_string_value(json_object_get(ep, "interface"));
            const char *url = json_string_value(json_object_get(ep, "url"));
            const char *rid = json_string_value(json_object_get(ep, "region_id"));
            const char *rn = json_string_value(json_object_get(ep, "region"));
            if (!ei || !url) {
                fc_os_token_info_clear(out);
                return FC_ERR(FC_E_INVALID,
                              "identity: token.catalog[%zu].endpoints[%zu] lacks interface or url",
                              i, j);
            }
            if (strcmp(ei, iface) != 0)
                continue;
            if (region && !((rid && strcmp(rid, region) == 0) || (rn && strcmp(rn, region) == 0)))
                continue;
            if (!valid_url(url)) {
                fc_os_token_info_clear(out);
                return FC_ERR(FC_E_INVALID,
                              "identity: token.catalog[%zu].endpoints[%zu].url is not a URL", i, j);
            }
            free(out->urls[s]);
            if ((rc = fix_url(s, url, &out->urls[s]))) {
                fc_os_token_info_clear(out);
                return rc;
            }
            best[s] = pref;
            break;
        }
    }
    if (!out->user_id || (proj && !out->project_id)) {
        fc_os_token_info_clear(out);
        return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    return FC_OK;
}

/* The auth request body. Secrets in it are wiped by the caller after use. */
static json_t *
auth_body(const struct fc_cloud_config *c)
{
    json_t *ident, *scope = NULL;
    if (c->auth_type == FC_AUTH_APPCRED) {
        json_t *ac = json_pack("{s:s}", "secret", c->app_cred_secret);
        if (c->app_cred_id) {
            json_object_set_new(ac, "id", json_string(c->app_cred_id));
        } else {
            json_object_set_new(ac, "name", json_string(c->app_cred_name));
            json_t *user = c->user_id ? json_pack("{s:s}", "id", c->user_id)
                                      : json_pack("{s:s}", "name", c->username);
            if (!c->user_id)
                json_object_set_new(user, "domain",
                                    c->user_domain_name
                                        ? json_pack("{s:s}", "name", c->user_domain_name)
                                        : json_pack("{s:s}", "id",
                                                    c->user_domain_id ? c->user_domain_id
                                                                      : "default"));
            json_object_set_new(ac, "user", user);
        }
        ident = json_pack("{s:[s], s:o}", "methods", "application_credential",
                          "application_credential", ac);
    } else {
        json_t *user = c->user_id ? json_pack("{s:s}", "id", c->user_id)
                                  : json_pack("{s:s}", "name", c->username);
        if (!c->user_id)
            json_object_set_new(user, "domain",
                                c->user_domain_name
                                    ? json_pack("{s:s}", "name", c->user_domain_name)
                                    : json_pack("{s:s}", "id",
                                                c->user_domain_id ? c->user_domain_id
                                                                  : "default"));
        json_object_set_new(user, "password", json_string(c->password));
        ident = json_pack("{s:[s], s:{s:o}}", "methods", "password", "password", "user", user);
        if (c->project_id) {
            scope = json_pack("{s:{s:s}}", "project", "id", c->project_id);
        } else if (c->project_name) {
            json_t *dom = c->project_domain_name
                              ? json_pack("{s:s}", "name", c->project_domain_name)
                              : json_pack("{s:s}", "id",
                                          c->project_domain_id ? c->project_domain_id
                                                               : "default");
            scope = json_pack("{s:{s:s, s:o}}", "project", "name", c->project_name, "domain",
                              dom);
        }
    }
    json_t *auth = json_pack("{s:o}", "identity", ident);
    if (scope)
        json_object_set_new(auth, "scope", scope);
    return json_pack("{s:o}", "auth", auth);
}

/* Wipes every string value of a JSON tree in place (the password copies Jansson holds). */
static void
wipe_json(json_t *j)
{
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_string(j))
        explicit_bzero((char *)json_string_value(j), json_string_length(j));
    else if (json_is_object(j))
        json_object_foreach(j, k, v) wipe_json(v);
    else if (json_is_array(j))
        json_array_foreach(j, i, v) wipe_json(v);
}

fc_rc
fc_os_keystone_auth(struct fc_os *os)
{
    const struct fc_cloud_config *c = os->cfg;
    fc_rc rc;
    json_t *body = auth_body(c);
    if (!body)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    char *text = json_dumps(body, JSON_COMPACT);
    wipe_json(body);
    json_decref(body);
    if (!text)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    FC_AUTOFREE char *url = NULL;
    if (asprintf(&url, "%s/auth/tokens", os->identity_url) < 0) {
        explicit_bzero(text, strlen(text));
        free(text);
        return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    if (os->token) { /* dropped now: a failed re-auth must not keep using it */
        explicit_bzero(os->token, strlen(os->token));
        free(os->token);
        os->token = NULL;
    }
    struct fc_http_resp r = {0};
    rc = fc_os_http(os, FC_SVC_IDENTITY, "POST", url, text, strlen(text), false, NULL, &r);
    explicit_bzero(text, strlen(text));
    free(text);
    const char *who = c->auth_type == FC_AUTH_APPCRED
                          ? (c->app_cred_id ? c->app_cred_id : c->app_cred_name)
                          : (c->username ? c->username : c->user_id);
    char what[300];
    snprintf(what, sizeof what, "%s '%.100s'",
             c->auth_type == FC_AUTH_APPCRED ? "application credential" : "user", who);
    if (rc) {
        fc_error_prefix("authenticating %s", what);
        fc_http_resp_clear(&r);
        return rc;
    }
    if (r.status != 201 && r.status != 200) {
        char path[256];
        fc_os_describe_path(url, path, sizeof path);
        rc = fc_os_http_error(os, FC_SVC_IDENTITY, "POST", path, &r);
        if (r.status == 401 || r.status == 403 || r.status == 404) {
            char m[sizeof fc_error_last()->msg];
            snprintf(m, sizeof m, "%s", fc_error_msg());
            rc = FC_ERR(FC_E_AUTH, "%s (authenticating %s)", m, what);
        }
        fc_http_resp_clear(&r);
        return rc;
    }
    if (!r.subject_token || !*r.subject_token || strlen(r.subject_token) > 8000) {
        fc_http_resp_clear(&r);
        return FC_ERR(FC_E_INVALID, "cloud '%s': identity: token reply without X-Subject-Token",
                      c->name);
    }
    struct fc_os_token_info ti;
    if ((rc = fc_os_parse_token(r.body ? r.body : "", r.len, c->interface, c->region_name, &ti))) {
        fc_error_prefix("cloud '%s'", c->name);
        fc_http_resp_clear(&r);
        return rc;
    }
    os->token = FC_STEAL(&r.subject_token);
    fc_http_resp_clear(&r);
    os->expires_at = ti.expires_at;
    for (int i = 0; i < FC_SVC__COUNT; i++) {
        free(os->urls[i]);
        os->urls[i] = FC_STEAL(&ti.urls[i]);
    }
    /* <service>_endpoint_override from clouds.yaml wins over the catalog */
    const char *ovr[FC_SVC__COUNT] = {[FC_SVC_COMPUTE] = c->compute_override,
                                      [FC_SVC_NETWORK] = c->network_override,
                                      [FC_SVC_IMAGE] = c->image_override,
                                      [FC_SVC_VOLUME] = c->volume_override};
    for (int i = 0; i < FC_SVC__COUNT; i++) {
        char *u = NULL;
        if (!ovr[i])
            continue;
        if ((rc = fix_url(i, ovr[i], &u))) {
            fc_os_token_info_clear(&ti);
            return rc;
        }
        free(os->urls[i]);
        os->urls[i] = u;
    }
    free(os->project_id);
    free(os->user_id);
    os->project_id = FC_STEAL(&ti.project_id);
    os->user_id = FC_STEAL(&ti.user_id);
    fc_os_token_info_clear(&ti);
    os->stats.auths++;
    fc_log(FC_INFO, FC_MSG("authenticated"), FC_STR("cloud", c->name), FC_STR("as", what),
           FC_STR("project_id", os->project_id ? os->project_id : ""),
           FC_I64("expires_at", os->expires_at));
    return FC_OK;
}

fc_rc
fc_os_ensure_token(struct fc_os *os)
{
    if (os->token && (int64_t)time(NULL) + (int64_t)os->margin_s < os->expires_at)
        return FC_OK;
    if (os->token)
        fc_log(FC_INFO, FC_MSG("token near expiry, renewing"), FC_STR("cloud", os->cfg->name),
               FC_I64("expires_at", os->expires_at));
    return fc_os_keystone_auth(os);
}

fc_rc
fc_os_authenticate(struct fc_os *os)
{
    return fc_os_keystone_auth(os);
}

fc_rc
fc_os_revoke_token(struct fc_os *os)
{
    fc_rc rc;
    if (!os->token)
        return FC_OK;
    FC_AUTOFREE char *url = NULL, *hdr = NULL;
    if (asprintf(&url, "%s/auth/tokens", os->identity_url) < 0)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    /* X-Subject-Token names the token to revoke; X-Auth-Token (the same) authorises it */
    struct fc_http_resp r = {0};
    if (asprintf(&hdr, "X-Subject-Token: %s", os->token) < 0)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    rc = fc_os_http(os, FC_SVC_IDENTITY, "DELETE", url, NULL, 0, true, hdr, &r);
    explicit_bzero(hdr, strlen(hdr));
    if (!rc && r.status != 204 && r.status != 200) {
        char path[256];
        fc_os_describe_path(url, path, sizeof path);
        rc = fc_os_http_error(os, FC_SVC_IDENTITY, "DELETE", path, &r);
    }
    fc_http_resp_clear(&r);
    return rc;
}
