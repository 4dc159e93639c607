/* SPDX-License-Identifier: Apache-2.0 */
/* clouds.yaml / secure.yaml / OS_* variables -> struct fc_cloud_config, as the openstack CLI
 * does. YAML is read with libyaml into a bounded Jansson tree (no aliases, limited depth and
 * size), then the fields we use are taken with type checks that name file and key. */
#include "fluid/cloud/config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"

#define YAML_MAX_BYTES (1u << 20)
#define YAML_MAX_DEPTH 32
#define YAML_MAX_NODES 20000

extern char **environ;

/* ---- YAML -> JSON tree (scalars are strings) ------------------------------------------- */

struct ystate {
    yaml_parser_t p;
    const char *origin;
    size_t nodes;
};

static fc_rc y_node(struct ystate *y, yaml_event_t *ev, int depth, json_t **out);

static fc_rc
y_next(struct ystate *y, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&y->p, ev))
        return FC_ERR(FC_E_INVALID, "%s: YAML error at line %zu column %zu: %s", y->origin,
                      y->p.problem_mark.line + 1, y->p.problem_mark.column + 1,
                      y->p.problem ? y->p.problem : "syntax error");
    return FC_OK;
}

static fc_rc
y_node(struct ystate *y, yaml_event_t *ev, int depth, json_t **out)
{
    fc_rc rc;
    size_t line = ev->start_mark.line + 1;

    if (++y->nodes > YAML_MAX_NODES)
        return FC_ERR(FC_E_INVALID, "%s: more than %d YAML nodes", y->origin, YAML_MAX_NODES);
    if (depth > YAML_MAX_DEPTH)
        return FC_ERR(FC_E_INVALID, "%s: line %zu: nesting deeper than %d", y->origin, line,
                      YAML_MAX_DEPTH);
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return FC_ERR(FC_E_UNSUPPORTED, "%s: line %zu: YAML aliases are not supported",
                      y->origin, line);
    case YAML_SCALAR_EVENT:
        *out = json_stringn((const char *)ev->data.scalar.value, ev->data.scalar.length);
        if (!*out)
            return FC_ERR(FC_E_INVALID, "%s: line %zu: scalar is not valid UTF-8", y->origin,
                          line);
        return FC_OK;
    case YAML_SEQUENCE_START_EVENT: {
        json_auto_t *arr = json_array();
        for (;;) {
            yaml_event_t e;
            if ((rc = y_next(y, &e)))
                return rc;
            if (e.type == YAML_SEQUENCE_END_EVENT) {
                yaml_event_delete(&e);
                break;
            }
            json_t *v = NULL;
            rc = y_node(y, &e, depth + 1, &v);
            yaml_event_delete(&e);
            if (rc)
                return rc;
            json_array_append_new(arr, v);
        }
        *out = json_incref(arr);
        return FC_OK;
    }
    case YAML_MAPPING_START_EVENT: {
        json_auto_t *obj = json_object();
        for (;;) {
            yaml_event_t e;
            if ((rc = y_next(y, &e)))
                return rc;
            if (e.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&e);
                break;
            }
            size_t kline = e.start_mark.line + 1;
            if (e.type != YAML_SCALAR_EVENT) {
                yaml_event_delete(&e);
                return FC_ERR(FC_E_INVALID, "%s: line %zu: mapping key is not a scalar",
                              y->origin, kline);
            }
            size_t klen = e.data.scalar.length;
            FC_AUTOFREE char *key = strndup((const char *)e.data.scalar.value, klen);
            yaml_event_delete(&e);
            if (!key)
                return FC_ERR(FC_E_NOMEM, "out of memory");
            if (strlen(key) != klen)
                return FC_ERR(FC_E_INVALID, "%s: line %zu: NUL in a key", y->origin, kline);
            if (json_object_get(obj, key))
                return FC_ERR(FC_E_INVALID, "%s: line %zu: duplicate key '%.64s'", y->origin,
                              kline, key);
            if ((rc = y_next(y, &e)))
                return rc;
            json_t *v = NULL;
            rc = y_node(y, &e, depth + 1, &v);
            yaml_event_delete(&e);
            if (rc)
                return rc;
            if (json_object_set_new(obj, key, v))
                return FC_ERR(FC_E_INVALID, "%s: line %zu: key is not valid UTF-8", y->origin,
                              kline);
        }
        *out = json_incref(obj);
        return FC_OK;
    }
    default:
        return FC_ERR(FC_E_INVALID, "%s: line %zu: unexpected YAML event", y->origin, line);
    }
}

/* Parses one YAML document into a JSON tree; an empty document gives an empty object. */
static fc_rc
yaml_to_json(const char *text, size_t len, const char *origin, json_t **out)
{
    struct ystate y = {.origin = origin};
    yaml_event_t ev;
    fc_rc rc = FC_OK;
    json_t *root = NULL;

    if (len > YAML_MAX_BYTES)
        return FC_ERR(FC_E_INVALID, "%s: larger than %u bytes", origin, YAML_MAX_BYTES);
    if (!yaml_parser_initialize(&y.p))
        return FC_ERR(FC_E_NOMEM, "yaml parser");
    yaml_parser_set_input_string(&y.p, (const unsigned char *)text, len);
    for (;;) {
        if ((rc = y_next(&y, &ev)))
            break;
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT ||
            t == YAML_SCALAR_EVENT || t == YAML_ALIAS_EVENT) {
            if (root) {
                yaml_event_delete(&ev);
                rc = FC_ERR(FC_E_INVALID, "%s: more than one YAML document", origin);
                break;
            }
            rc = y_node(&y, &ev, 0, &root);
        }
        yaml_event_delete(&ev);
        if (rc)
            break;
    }
    yaml_parser_delete(&y.p);
    if (rc) {
        json_decref(root);
        return rc;
    }
    if (!root)
        root = json_object();
    *out = root;
    return FC_OK;
}

/* ---- picking fields ---------------------------------------------------------------------- */

static fc_rc
take_str(json_t *obj, const char *key, const char *where, const char *origin, char **dst)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return FC_OK;
    if (!json_is_string(v))
        return FC_ERR(FC_E_INVALID, "%s: %s.%s must be a scalar", origin, where, key);
    size_t n = json_string_length(v);
    if (n > 8192 || strlen(json_string_value(v)) != n)
        return FC_ERR(FC_E_INVALID, "%s: %s.%s is too long or holds NUL", origin, where, key);
    if (*dst) {
        explicit_bzero(*dst, strlen(*dst));
        free(*dst);
    }
    *dst = strdup(json_string_value(v));
    return *dst ? FC_OK : FC_ERR(FC_E_NOMEM, "out of memory");
}

static int
parse_bool(const char *s, bool *out)
{
    static const char *const t[] = {"true", "yes", "on", "1"}, *const f[] = {"false", "no",
                                                                              "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, t[i]) == 0)
            return *out = true, 0;
        if (strcasecmp(s, f[i]) == 0)
            return *out = false, 0;
    }
    return -1;
}

/* Deep-merges `src` into `dst` (objects merge, anything else replaces). */
static void
merge(json_t *dst, json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v) {
        json_t *d = json_object_get(dst, k);
        if (json_is_object(d) && json_is_object(v))
            merge(d, v);
        else
            json_object_set(dst, k, v);
    }
}

static fc_rc
from_tree(json_t *cloud, const char *origin, const char *name, struct fc_cloud_config *c)
{
    fc_rc rc;
    char where[160];
    snprintf(where, sizeof where, "clouds.%.120s", name);
    if (!json_is_object(cloud))
        return FC_ERR(FC_E_INVALID, "%s: %s must be a mapping", origin, where);
    if (json_object_get(cloud, "profile"))
        return FC_ERR(FC_E_UNSUPPORTED, "%s: %s.profile (vendor profiles) is not supported",
                      origin, where);
    json_t *auth = json_object_get(cloud, "auth");
    if (auth && !json_is_object(auth))
        return FC_ERR(FC_E_INVALID, "%s: %s.auth must be a mapping", origin, where);
    char awhere[200];
    snprintf(awhere, sizeof awhere, "%s.auth", where);
    static const struct {
        const char *key;
        size_t off;
    } akeys[] = {
#define F(k, m) {k, offsetof(struct fc_cloud_config, m)}
        F("auth_url", auth_url), F("username", username), F("user_id", user_id),
        F("password", password), F("user_domain_name", user_domain_name),
        F("user_domain_id", user_domain_id), F("tenant_name", project_name),
        F("tenant_id", project_id), F("project_name", project_name),
        F("project_id", project_id), F("project_domain_name", project_domain_name),
        F("project_domain_id", project_domain_id),
        F("application_credential_id", app_cred_id),
        F("application_credential_name", app_cred_name),
        F("application_credential_secret", app_cred_secret),
    }, ckeys[] = {
        F("region_name", region_name), F("interface", interface),
        F("endpoint_type", interface), F("cacert", cacert), F("cert", cert), F("key", key),
        F("compute_api_version", compute_api_version),
        F("volume_api_version", volume_api_version),
        F("compute_endpoint_override", compute_override),
        F("network_endpoint_override", network_override),
        F("image_endpoint_override", image_override),
        F("block_storage_endpoint_override", volume_override),
    }, skeys[] = {
        F("host", storage_host), F("port", storage_port), F("user", storage_user),
        F("identity", storage_identity), F("known_hosts", storage_known_hosts),
        F("path", storage_path),
#undef F
    };
    if (auth) {
        /* domain_name / domain_id / default_domain: defaults for user and project */
        static const char *const dkeys[] = {"domain_name", "domain_id"};
        for (size_t i = 0; i < 2; i++) {
            json_t *v = json_object_get(auth, dkeys[i]);
            if (v && !json_is_string(v))
                return FC_ERR(FC_E_INVALID, "%s: %s.%s must be a scalar", origin, awhere,
                              dkeys[i]);
        }
        for (size_t i = 0; i < sizeof akeys / sizeof akeys[0]; i++)
            if ((rc = take_str(auth, akeys[i].key, awhere, origin,
                               (char **)((char *)c + akeys[i].off))))
                return rc;
        const char *dn = json_string_value(json_object_get(auth, "domain_name"));
        const char *di = json_string_value(json_object_get(auth, "domain_id"));
        if (dn && !c->user_domain_name && !c->user_domain_id)
            c->user_domain_name = strdup(dn);
        if (dn && !c->project_domain_name && !c->project_domain_id)
            c->project_domain_name = strdup(dn);
        if (di && !c->user_domain_name && !c->user_domain_id)
            c->user_domain_id = strdup(di);
        if (di && !c->project_domain_name && !c->project_domain_id)
            c->project_domain_id = strdup(di);
    }
    for (size_t i = 0; i < sizeof ckeys / sizeof ckeys[0]; i++)
        if ((rc = take_str(cloud, ckeys[i].key, where, origin,
                           (char **)((char *)c + ckeys[i].off))))
            return rc;
    json_t *ss = json_object_get(cloud, "storage_ssh");
    if (ss) {
        char swhere[200];
        snprintf(swhere, sizeof swhere, "%s.storage_ssh", where);
        if (!json_is_object(ss))
            return FC_ERR(FC_E_INVALID, "%s: %s must be a mapping", origin, swhere);
        const char *k;
        json_t *x;
        json_object_foreach(ss, k, x) {
            bool known = false;
            for (size_t i = 0; i < sizeof skeys / sizeof skeys[0]; i++)
                known = known || strcmp(k, skeys[i].key) == 0;
            if (!known)
                return FC_ERR(FC_E_INVALID, "%s: %s.%.60s: unknown key (host, port, user, "
                              "identity, known_hosts, path)", origin, swhere, k);
        }
        for (size_t i = 0; i < sizeof skeys / sizeof skeys[0]; i++)
            if ((rc = take_str(ss, skeys[i].key, swhere, origin,
                               (char **)((char *)c + skeys[i].off))))
                return rc;
        if (!c->storage_host || !c->storage_path)
            return FC_ERR(FC_E_INVALID, "%s: %s needs host and path", origin, swhere);
        if (c->storage_path[0] != '/' || !strstr(c->storage_path, "{id}"))
            return FC_ERR(FC_E_INVALID, "%s: %s.path must be absolute and hold {id}", origin,
                          swhere);
        if (c->storage_port) {
            char *e = NULL;
            long p = strtol(c->storage_port, &e, 10);
            if (!*c->storage_port || *e || p < 1 || p > 65535)
                return FC_ERR(FC_E_INVALID, "%s: %s.port must be 1-65535", origin, swhere);
        }
    }
    json_t *regions = json_object_get(cloud, "regions");
    if (regions && !c->region_name) {
        json_t *r0 = json_is_array(regions) ? json_array_get(regions, 0) : NULL;
        if (json_is_object(r0))
            r0 = json_object_get(r0, "name");
        if (!json_is_string(r0))
            return FC_ERR(FC_E_INVALID, "%s: %s.regions must be a list of names", origin,
                          where);
        c->region_name = strdup(json_string_value(r0));
    }
    json_t *v = json_object_get(cloud, "identity_api_version");
    if (v) {
        const char *s = json_string_value(v);
        if (!s || (strcmp(s, "3") != 0 && strcmp(s, "3.0") != 0))
            return FC_ERR(FC_E_UNSUPPORTED, "%s: %s.identity_api_version: only 3 is supported",
                          origin, where);
    }
    v = json_object_get(cloud, "auth_type");
    if (v) {
        const char *s = json_string_value(v);
        if (s && (strcmp(s, "password") == 0 || strcmp(s, "v3password") == 0))
            c->auth_type = FC_AUTH_PASSWORD;
        else if (s && (strcmp(s, "v3applicationcredential") == 0 ||
                       strcmp(s, "applicationcredential") == 0))
            c->auth_type = FC_AUTH_APPCRED;
        else
            return FC_ERR(FC_E_UNSUPPORTED,
                          "%s: %s.auth_type '%.40s' is not supported (password, "
                          "v3applicationcredential)",
                          origin, where, s ? s : "(not a scalar)");
    } else if (c->app_cred_secret && !c->password) {
        c->auth_type = FC_AUTH_APPCRED;
    }
    v = json_object_get(cloud, "verify");
    if (v) {
        if (!json_is_string(v) || parse_bool(json_string_value(v), &c->verify))
            return FC_ERR(FC_E_INVALID, "%s: %s.verify must be true or false", origin, where);
    }
    return FC_OK;
}

static struct fc_cloud_config *
config_new(const char *name, const char *origin)
{
    struct fc_cloud_config *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->verify = true;
    c->name = strdup(name);
    c->origin = strdup(origin);
    if (!c->name || !c->origin) {
        fc_cloud_config_free(c);
        return NULL;
    }
    return c;
}

static fc_rc
pick_cloud(json_t *root, json_t *sroot, const char *origin, const char *name, json_t **out)
{
    if (!json_is_object(root))
        return FC_ERR(FC_E_INVALID, "%s: top level must be a mapping", origin);
    json_t *clouds = json_object_get(root, "clouds");
    if (!json_is_object(clouds))
        return FC_ERR(FC_E_INVALID, "%s: 'clouds' mapping missing", origin);
    json_t *cloud = json_object_get(clouds, name);
    if (!cloud)
        return FC_ERR(FC_E_NOTFOUND, "cloud '%.100s' not found in %s", name, origin);
    json_t *copy = json_deep_copy(cloud);
    if (!copy)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    json_t *sc = json_object_get(json_object_get(sroot, "clouds"), name);
    if (json_is_object(sc) && json_is_object(copy))
        merge(copy, sc);
    *out = copy;
    return FC_OK;
}

fc_rc
fc_cloud_config_parse(const char *yaml, size_t len, const char *secure, size_t slen,
                      const char *origin, const char *name, struct fc_cloud_config **out)
{
    json_auto_t *root = NULL, *sroot = NULL, *cloud = NULL;
    fc_rc rc;
    if ((rc = yaml_to_json(yaml, len, origin, &root)))
        return rc;
    if (secure && (rc = yaml_to_json(secure, slen, "secure.yaml", &sroot)))
        return rc;
    if ((rc = pick_cloud(root, sroot, origin, name, &cloud)))
        return rc;
    struct fc_cloud_config *c = config_new(name, origin);
    if (!c)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    if ((rc = from_tree(cloud, origin, name, c))) {
        fc_cloud_config_free(c);
        return rc;
    }
    *out = c;
    return FC_OK;
}

/* ---- environment ------------------------------------------------------------------------ */

static const char *
env_get(char *const *env, const char *key)
{
    size_t kl = strlen(key);
    for (char *const *e = env; e && *e; e++)
        if (strncmp(*e, key, kl) == 0 && (*e)[kl] == '=')
            return (*e)[kl + 1] ? *e + kl + 1 : NULL; /* empty = unset, as the CLI */
    return NULL;
}

static fc_rc
env_overrides(char *const *env, struct fc_cloud_config *c)
{
    static const struct {
        const char *var;
        size_t off;
    } vars[] = {
#define F(k, m) {k, offsetof(struct fc_cloud_config, m)}
        F("OS_AUTH_URL", auth_url), F("OS_USERNAME", username), F("OS_USER_ID", user_id),
        F("OS_PASSWORD", password), F("OS_USER_DOMAIN_NAME", user_domain_name),
        F("OS_USER_DOMAIN_ID", user_domain_id), F("OS_TENANT_NAME", project_name),
        F("OS_TENANT_ID", project_id), F("OS_PROJECT_NAME", project_name),
        F("OS_PROJECT_ID", project_id), F("OS_PROJECT_DOMAIN_NAME", project_domain_name),
        F("OS_PROJECT_DOMAIN_ID", project_domain_id),
        F("OS_APPLICATION_CREDENTIAL_ID", app_cred_id),
        F("OS_APPLICATION_CREDENTIAL_NAME", app_cred_name),
        F("OS_APPLICATION_CREDENTIAL_SECRET", app_cred_secret),
        F("OS_REGION_NAME", region_name), F("OS_ENDPOINT_TYPE", interface),
        F("OS_INTERFACE", interface), F("OS_CACERT", cacert), F("OS_CERT", cert),
        F("OS_KEY", key), F("OS_COMPUTE_API_VERSION", compute_api_version),
        F("OS_VOLUME_API_VERSION", volume_api_version),
#undef F
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = env_get(env, vars[i].var);
        if (!v)
            continue;
        char **dst = (char **)((char *)c + vars[i].off);
        if (*dst) {
            explicit_bzero(*dst, strlen(*dst));
            free(*dst);
        }
        if (!(*dst = strdup(v)))
            return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    const char *dd = env_get(env, "OS_DEFAULT_DOMAIN");
    if (dd && !c->user_domain_id && !c->user_domain_name)
        c->user_domain_id = strdup(dd);
    if (dd && !c->project_domain_id && !c->project_domain_name)
        c->project_domain_id = strdup(dd);
    const char *at = env_get(env, "OS_AUTH_TYPE");
    if (at) {
        if (strcmp(at, "password") == 0 || strcmp(at, "v3password") == 0)
            c->auth_type = FC_AUTH_PASSWORD;
        else if (strcmp(at, "v3applicationcredential") == 0)
            c->auth_type = FC_AUTH_APPCRED;
        else
            return FC_ERR(FC_E_UNSUPPORTED, "OS_AUTH_TYPE '%.40s' is not supported", at);
    } else if (env_get(env, "OS_APPLICATION_CREDENTIAL_SECRET") &&
               !env_get(env, "OS_PASSWORD")) {
        c->auth_type = FC_AUTH_APPCRED;
    }
    const char *iv = env_get(env, "OS_IDENTITY_API_VERSION");
    if (iv && strcmp(iv, "3") != 0 && strcmp(iv, "3.0") != 0)
        return FC_ERR(FC_E_UNSUPPORTED, "OS_IDENTITY_API_VERSION=%.20s: only 3 is supported",
                      iv);
    return FC_OK;
}

/* ---- search path ------------------------------------------------------------------------ */

static fc_rc
read_file(const char *path, char **buf, size_t *len, bool *found)
{
    FC_AUTOFCLOSE FILE *f = fopen(path, "re");
    *found = false;
    if (!f) {
        if (errno == ENOENT || errno == ENOTDIR)
            return FC_OK;
        return FC_ERRNO(FC_E_IO, "%s", path);
    }
    *found = true;
    struct stat st;
    if (fstat(fileno(f), &st) != 0)
        return FC_ERRNO(FC_E_IO, "%s", path);
    if (!S_ISREG(st.st_mode))
        return FC_ERR(FC_E_INVALID, "%s: not a regular file", path);
    if (st.st_size > (off_t)YAML_MAX_BYTES)
        return FC_ERR(FC_E_INVALID, "%s: larger than %u bytes", path, YAML_MAX_BYTES);
    char *b = malloc((size_t)st.st_size + 1);
    if (!b)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    size_t n = fread(b, 1, (size_t)st.st_size, f);
    if (ferror(f)) {
        free(b);
        return FC_ERRNO(FC_E_IO, "%s", path);
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return FC_OK;
}

/* Finds the first existing file named base.yaml / base.yml in the search folders. */
static fc_rc
find_file(const char *base, const char *const *dirs, size_t ndirs, const char *explicit_path,
          char *path, size_t cap, char **buf, size_t *len, char *searched, size_t scap)
{
    bool found = false;
    fc_rc rc;
    if (explicit_path) {
        snprintf(path, cap, "%s", explicit_path);
        if ((rc = read_file(path, buf, len, &found)))
            return rc;
        if (found)
            return FC_OK;
        snprintf(searched + strlen(searched), scap - strlen(searched), "%s%s",
                 *searched ? ", " : "", path);
    }
    for (size_t i = 0; i < ndirs; i++) {
        if (!dirs[i])
            continue;
        static const char *const exts[] = {"yaml", "yml"};
        for (size_t e = 0; e < 2; e++) {
            snprintf(path, cap, "%s/%s.%s", dirs[i], base, exts[e]);
            if ((rc = read_file(path, buf, len, &found)))
                return rc;
            if (found)
                return FC_OK;
        }
        snprintf(searched + strlen(searched), scap - strlen(searched), "%s%s/%s.yaml",
                 *searched ? ", " : "", dirs[i], base);
    }
    *buf = NULL;
    return FC_OK;
}

fc_rc
fc_cloud_config_load(const char *name, char *const *env, const char *cwd_dir,
                     const char *home, const char *etc_dir, struct fc_cloud_config **out)
{
    fc_rc rc;
    if (!env)
        env = environ;
    if (!name)
        name = env_get(env, "OS_CLOUD");
    if (!name) {
        struct fc_cloud_config *c = config_new("envvars", "environment");
        if (!c)
            return FC_ERR(FC_E_NOMEM, "out of memory");
        if ((rc = env_overrides(env, c))) {
            fc_cloud_config_free(c);
            return rc;
        }
        if (!c->auth_url) {
            fc_cloud_config_free(c);
            return FC_ERR(FC_E_INVALID, "no cloud named (--cloud or OS_CLOUD) and OS_AUTH_URL "
                                        "is not set");
        }
        *out = c;
        return FC_OK;
    }
    if (!home)
        home = env_get(env, "HOME");
    char xdg[4096] = "", homecfg[4096] = "";
    const char *xdg_env = env_get(env, "XDG_CONFIG_HOME");
    if (xdg_env)
        snprintf(xdg, sizeof xdg, "%s/openstack", xdg_env);
    if (home)
        snprintf(homecfg, sizeof homecfg, "%s/.config/openstack", home);
    const char *dirs[] = {cwd_dir ? cwd_dir : ".", *xdg ? xdg : NULL,
                          *homecfg ? homecfg : NULL, etc_dir ? etc_dir : "/etc/openstack"};
    char path[4096], spath[4096], searched[8192] = "";
    FC_AUTOFREE char *buf = NULL, *sbuf = NULL;
    size_t len = 0, slen = 0;
    if ((rc = find_file("clouds", dirs, 4, env_get(env, "OS_CLIENT_CONFIG_FILE"), path,
                        sizeof path, &buf, &len, searched, sizeof searched)))
        return rc;
    if (!buf)
        return FC_ERR(FC_E_NOTFOUND, "cloud '%.100s': no clouds.yaml found (searched %s)",
                      name, searched);
    char ssearched[8192] = "";
    if ((rc = find_file("secure", dirs, 4, NULL, spath, sizeof spath, &sbuf, &slen, ssearched,
                        sizeof ssearched)))
        return rc;
    struct fc_cloud_config *c = NULL;
    rc = fc_cloud_config_parse(buf, len, sbuf, slen, path, name, &c);
    if (sbuf)
        explicit_bzero(sbuf, slen);
    explicit_bzero(buf, len);
    if (rc)
        return rc;
    if ((rc = env_overrides(env, c))) {
        fc_cloud_config_free(c);
        return rc;
    }
    *out = c;
    return FC_OK;
}

fc_rc
fc_cloud_config_check(const struct fc_cloud_config *c)
{
    if (!c->auth_url)
        return FC_ERR(FC_E_INVALID, "cloud '%s' (%s): auth.auth_url is missing", c->name,
                      c->origin);
    if (strncmp(c->auth_url, "http://", 7) != 0 && strncmp(c->auth_url, "https://", 8) != 0)
        return FC_ERR(FC_E_INVALID, "cloud '%s' (%s): auth.auth_url must be http(s)://",
                      c->name, c->origin);
    if (c->auth_type == FC_AUTH_APPCRED) {
        if (!c->app_cred_secret)
            return FC_ERR(FC_E_INVALID,
                          "cloud '%s' (%s): auth.application_credential_secret is missing",
                          c->name, c->origin);
        if (!c->app_cred_id && !(c->app_cred_name && (c->username || c->user_id)))
            return FC_ERR(FC_E_INVALID,
                          "cloud '%s' (%s): application_credential_id (or a name and a user) "
                          "is missing",
                          c->name, c->origin);
        return FC_OK;
    }
    if (!c->username && !c->user_id)
        return FC_ERR(FC_E_INVALID, "cloud '%s' (%s): auth.username is missing", c->name,
                      c->origin);
    if (!c->password)
        return FC_ERR(FC_E_INVALID, "cloud '%s' (%s): auth.password is missing", c->name,
                      c->origin);
    return FC_OK;
}

static void
wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void
fc_cloud_config_free(struct fc_cloud_config *c)
{
    if (!c)
        return;
    char **fields[] = {&c->name, &c->origin, &c->auth_url, &c->username, &c->user_id,
                       &c->password, &c->user_domain_name, &c->user_domain_id,
                       &c->project_name, &c->project_id, &c->project_domain_name,
                       &c->project_domain_id, &c->app_cred_id, &c->app_cred_name,
                       &c->app_cred_secret, &c->region_name, &c->interface, &c->cacert,
                       &c->cert, &c->key, &c->compute_api_version, &c->volume_api_version,
                       &c->compute_override, &c->network_override, &c->image_override,
                       &c->volume_override, &c->storage_host, &c->storage_port,
                       &c->storage_user, &c->storage_identity, &c->storage_known_hosts,
                       &c->storage_path};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        wipe_free(*fields[i]);
    free(c);
}
