/* SPDX-License-Identifier: Apache-2.0 */
/* The common half of the message parsers: loading bytes as JSON (strict), the JSON path
 * used in error messages, typed field readers, identifier syntax, the known migrator kinds
 * and fc_msg_validate(), which dispatches on "schema". */
#include "msg_internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const fc_known_kinds[] = {
    "checksum", "image", "volume", "config", "openstack", "test", NULL,
};

bool
fc_kind_known(const char *kind)
{
    for (size_t i = 0; kind && fc_known_kinds[i]; i++)
        if (strcmp(kind, fc_known_kinds[i]) == 0)
            return true;
    return false;
}

static bool
id_chars(const char *s, size_t max, const char *extra)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(c < 0x80 && (isalnum(c) || strchr(extra, c))))
            return false;
    }
    return true;
}

bool fc_id_valid(const char *s) { return id_chars(s, FC_ID_MAX, "_:-"); }
bool fc_key_valid(const char *s) { return id_chars(s, FC_KEY_MAX, "_:./-"); }

bool
fc_site_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > FC_SITE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '_' || c == '-'));
        if (!ok)
            return false;
    }
    return true;
}

static bool
kind_syntax(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > FC_KIND_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

/* YYYY-MM-DDTHH:MM:SS[.frac]Z */
bool
fc_ts_valid(const char *s)
{
    const char *pat = "dddd-dd-ddTdd:dd:dd";
    size_t i = 0;
    for (; pat[i]; i++) {
        if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
            return false;
    }
    if (s[i] == '.') {
        size_t f = 0;
        for (i++; isdigit((unsigned char)s[i]); i++)
            f++;
        if (f == 0 || f > 9)
            return false;
    }
    if (s[i] != 'Z' || s[i + 1])
        return false;
    int mo = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
    int h = (s[11] - '0') * 10 + (s[12] - '0'), mi = (s[14] - '0') * 10 + (s[15] - '0');
    int se = (s[17] - '0') * 10 + (s[18] - '0');
    return mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && se <= 60;
}

char *
fc_msg_now(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char tmp[32];
    strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03ldZ", tmp, ts.tv_nsec / 1000000);
    return buf;
}

/* ---- the path ---- */

static _Thread_local char err_path[512];

void
jp_set_error_path(const char *path)
{
    snprintf(err_path, sizeof err_path, "%s", path);
}

const char *
fc_msg_error_path(void)
{
    return err_path;
}

static size_t jp_append(struct fc_jp *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t
jp_append(struct fc_jp *p, const char *fmt, ...)
{
    size_t old = p->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p->path + p->len, sizeof p->path - p->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        p->len += (size_t)n < sizeof p->path - p->len ? (size_t)n : sizeof p->path - p->len - 1;
    return old;
}

size_t
jp_key(struct fc_jp *p, const char *key)
{
    return p->len ? jp_append(p, ".%s", key) : jp_append(p, "%s", key);
}

size_t
jp_idx(struct fc_jp *p, size_t i)
{
    return jp_append(p, "[%zu]", i);
}

void
jp_pop(struct fc_jp *p, size_t old)
{
    p->len = old;
    p->path[old] = '\0';
}

static fc_rc jp_verr(struct fc_jp *p, fc_rc rc, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static fc_rc
jp_verr(struct fc_jp *p, fc_rc rc, const char *fmt, va_list ap)
{
    char reason[900];
    vsnprintf(reason, sizeof reason, fmt, ap);
    jp_set_error_path(p->path);
    return FC_ERR(rc, "%s: %s", p->len ? p->path : "message", reason);
}

fc_rc
jp_err(struct fc_jp *p, fc_rc rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rc = jp_verr(p, rc, fmt, ap);
    va_end(ap);
    return rc;
}

fc_rc
jp_err_at(struct fc_jp *p, const char *key, fc_rc rc, const char *fmt, ...)
{
    size_t old = jp_key(p, key);
    va_list ap;
    va_start(ap, fmt);
    rc = jp_verr(p, rc, fmt, ap);
    va_end(ap);
    jp_pop(p, old);
    return rc;
}

/* ---- typed readers ---- */

const char *
j_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

fc_rc
j_want_object(struct fc_jp *p, const json_t *j)
{
    if (!json_is_object(j))
        return jp_err(p, FC_E_INVALID, "expected an object, got %s", j_type_name(j));
    return FC_OK;
}

fc_rc
j_only(struct fc_jp *p, const json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            char shown[80];
            snprintf(shown, sizeof shown, "%s", key);
            for (char *c = shown; *c; c++)
                if ((unsigned char)*c < 0x20)
                    *c = '?';
            return jp_err_at(p, shown, FC_E_INVALID, "unknown field");
        }
    }
    return FC_OK;
}

/* A short printable copy of an untrusted string for an error message: control characters,
 * quotes and backslashes as \xNN, cut after 40 characters with "...". Always fits in cap. */
static void
quote_short(char *dst, size_t cap, const char *s)
{
    size_t j = 0;
    if (cap == 0)
        return;
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t need = c < 0x20 || c == '"' || c == '\\' ? 4 : 1;
        /* keep room for this character, a "..." and the terminating NUL */
        if (i >= 40 || j + need + 3 + 1 > cap) {
            if (j + 3 + 1 <= cap) {
                memcpy(dst + j, "...", 3);
                j += 3;
            }
            break;
        }
        if (need == 4)
            j += (size_t)snprintf(dst + j, cap - j, "\\x%02x", c);
        else
            dst[j++] = (char)c;
    }
    dst[j] = '\0';
}

fc_rc
j_str_value(struct fc_jp *p, const json_t *v, size_t max, enum j_charset cs, bool allow_empty,
            char **out)
{
    if (!json_is_string(v))
        return jp_err(p, FC_E_INVALID, "expected a string, got %s", j_type_name(v));
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    char q[64];
    quote_short(q, sizeof q, s);
    if (n > max)
        return jp_err(p, FC_E_INVALID, "string of %zu bytes is longer than the limit of %zu",
                      n, max);
    if (n == 0 && !allow_empty)
        return jp_err(p, FC_E_INVALID, "must not be empty");
    if (n > 0) {
        switch (cs) {
        case J_ANY: break;
        case J_LINE:
            for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                    return jp_err(p, FC_E_INVALID, "control character at byte %zu", i);
            break;
        case J_ID:
            if (!fc_id_valid(s))
                return jp_err(p, FC_E_INVALID,
                              "invalid id \"%s\" (letters, digits, '_', ':', '-'; first a "
                              "letter or digit)", q);
            break;
        case J_KEY:
            if (!fc_key_valid(s))
                return jp_err(p, FC_E_INVALID,
                              "invalid key \"%s\" (letters, digits, '_', ':', '.', '/', '-'; "
                              "first a letter or digit)", q);
            break;
        case J_SITE:
            if (!fc_site_valid(s))
                return jp_err(p, FC_E_INVALID,
                              "invalid site \"%s\" (lower-case letters, digits, '_', '-')", q);
            break;
        case J_KIND:
            if (!kind_syntax(s))
                return jp_err(p, FC_E_INVALID, "invalid migrator kind \"%s\"", q);
            if (!fc_kind_known(s))
                return jp_err(p, FC_E_INVALID, "unknown migrator kind \"%s\"", q);
            break;
        case J_TS:
            if (!fc_ts_valid(s))
                return jp_err(p, FC_E_INVALID,
                              "invalid timestamp \"%s\" (want YYYY-MM-DDTHH:MM:SS[.fff]Z)", q);
            break;
        }
    }
    if (out && !(*out = strdup(s)))
        return FC_ERR(FC_E_NOMEM, "out of memory");
    return FC_OK;
}

fc_rc
j_str(struct fc_jp *p, const json_t *obj, const char *key, bool required, size_t max,
      enum j_charset cs, bool allow_empty, const char *dflt, char **out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return jp_err_at(p, key, FC_E_INVALID, "missing required field");
        if (dflt && out && !(*out = strdup(dflt)))
            return FC_ERR(FC_E_NOMEM, "out of memory");
        return FC_OK;
    }
    size_t old = jp_key(p, key);
    fc_rc rc = j_str_value(p, v, max, cs, allow_empty, out);
    jp_pop(p, old);
    return rc;
}

fc_rc
j_int_value(struct fc_jp *p, const json_t *v, int64_t min, int64_t max, int64_t *out)
{
    if (!json_is_integer(v))
        return jp_err(p, FC_E_INVALID, "expected an integer, got %s", j_type_name(v));
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return jp_err(p, FC_E_INVALID, "%lld is out of range [%lld, %lld]", (long long)x,
                      (long long)min, (long long)max);
    *out = x;
    return FC_OK;
}

fc_rc
j_uint(struct fc_jp *p, const json_t *obj, const char *key, bool required, uint64_t min,
       uint64_t max, uint64_t dflt, uint64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return jp_err_at(p, key, FC_E_INVALID, "missing required field");
        *out = dflt;
        return FC_OK;
    }
    size_t old = jp_key(p, key);
    int64_t x = 0;
    if (max > INT64_MAX)
        max = INT64_MAX;
    fc_rc rc = j_int_value(p, v, (int64_t)min, (int64_t)max, &x);
    jp_pop(p, old);
    if (rc == FC_OK)
        *out = (uint64_t)x;
    return rc;
}

fc_rc
j_bool(struct fc_jp *p, const json_t *obj, const char *key, bool dflt, bool *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = dflt;
        return FC_OK;
    }
    if (!json_is_boolean(v))
        return jp_err_at(p, key, FC_E_INVALID, "expected a boolean, got %s", j_type_name(v));
    *out = json_is_true(v);
    return FC_OK;
}

void
fc_strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

char **
fc_strv_dup(char *const *v, size_t n)
{
    char **d = calloc(n ? n : 1, sizeof *d);
    for (size_t i = 0; d && i < n; i++) {
        if (!(d[i] = strdup(v[i]))) {
            fc_strv_free(d, i);
            return NULL;
        }
    }
    return d;
}

json_t *
j_strv_json(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

void
j_set_opt_str(json_t *o, const char *key, const char *v)
{
    if (v)
        json_object_set_new(o, key, json_string(v));
}

fc_rc
j_strv(struct fc_jp *p, const json_t *obj, const char *key, bool required, size_t maxn,
       size_t maxlen, enum j_charset cs, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    const json_t *a = json_object_get(obj, key);
    if (!a) {
        if (required)
            return jp_err_at(p, key, FC_E_INVALID, "missing required field");
        if (!(*out = calloc(1, sizeof **out)))
            return FC_ERR(FC_E_NOMEM, "out of memory");
        return FC_OK;
    }
    if (!json_is_array(a))
        return jp_err_at(p, key, FC_E_INVALID, "expected an array, got %s", j_type_name(a));
    size_t cnt = json_array_size(a);
    if (cnt > maxn)
        return jp_err_at(p, key, FC_E_INVALID, "%zu entries, more than the limit of %zu", cnt,
                         maxn);
    char **v = calloc(cnt ? cnt : 1, sizeof *v);
    if (!v)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    size_t old = jp_key(p, key);
    for (size_t i = 0; i < cnt; i++) {
        size_t o2 = jp_idx(p, i);
        fc_rc rc = j_str_value(p, json_array_get(a, i), maxlen, cs, false, &v[i]);
        jp_pop(p, o2);
        if (rc != FC_OK) {
            jp_pop(p, old);
            fc_strv_free(v, i);
            return rc;
        }
    }
    jp_pop(p, old);
    *out = v;
    *n = cnt;
    return FC_OK;
}

static fc_rc
free_form(struct fc_jp *p, const json_t *v, int depth)
{
    if (depth > FC_DEPTH_MAX)
        return jp_err(p, FC_E_INVALID, "nested deeper than %d levels", FC_DEPTH_MAX);
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            if (strlen(k) > FC_NAME_MAX)
                return jp_err(p, FC_E_INVALID, "key longer than %d bytes", FC_NAME_MAX);
            size_t old = jp_key(p, k);
            fc_rc rc = free_form(p, x, depth + 1);
            jp_pop(p, old);
            if (rc != FC_OK)
                return rc;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            size_t old = jp_idx(p, i);
            fc_rc rc = free_form(p, x, depth + 1);
            jp_pop(p, old);
            if (rc != FC_OK)
                return rc;
        }
    } else if (json_is_string(v) && json_string_length(v) > FC_ARG_MAX * 4) {
        return jp_err(p, FC_E_INVALID, "string longer than the limit of %u", FC_ARG_MAX * 4);
    }
    return FC_OK;
}

fc_rc
j_free_form(struct fc_jp *p, const json_t *v, bool want_object)
{
    if (want_object && !json_is_object(v))
        return jp_err(p, FC_E_INVALID, "expected an object, got %s", j_type_name(v));
    return free_form(p, v, 1);
}

/* "fluid.task/1": name "fluid.task", major 1 */
static bool
split_schema(const char *s, char *name, size_t cap, long *major)
{
    const char *slash = strrchr(s, '/');
    if (!slash || slash == s || (size_t)(slash - s) >= cap || !isdigit((unsigned char)slash[1]))
        return false;
    char *end;
    *major = strtol(slash + 1, &end, 10);
    if (*end)
        return false;
    memcpy(name, s, (size_t)(slash - s));
    name[slash - s] = '\0';
    return true;
}

fc_rc
j_schema(struct fc_jp *p, const json_t *obj, const char *want, bool optional)
{
    const json_t *v = json_object_get(obj, "schema");
    if (!v) {
        if (optional)
            return FC_OK;
        return jp_err_at(p, "schema", FC_E_INVALID, "missing required field (want \"%s\")",
                         want);
    }
    size_t old = jp_key(p, "schema");
    fc_rc rc = j_str_value(p, v, FC_NAME_MAX, J_LINE, false, NULL);
    if (rc == FC_OK && strcmp(json_string_value(v), want) != 0) {
        char gn[128], wn[128], q[64];
        long gm, wm;
        quote_short(q, sizeof q, json_string_value(v));
        if (split_schema(json_string_value(v), gn, sizeof gn, &gm) &&
            split_schema(want, wn, sizeof wn, &wm) && strcmp(gn, wn) == 0)
            rc = jp_err(p, FC_E_UNSUPPORTED, "unsupported version \"%s\" (this build reads \"%s\")",
                        q, want);
        else
            rc = jp_err(p, FC_E_INVALID, "expected \"%s\", got \"%s\"", want, q);
    }
    jp_pop(p, old);
    return rc;
}

/* ---- loading ---- */

fc_rc
fc_msg_load(const char *buf, size_t len, json_t **out)
{
    *out = NULL;
    jp_set_error_path("");
    if (len > FC_MSG_MAX_BYTES)
        return FC_ERR(FC_E_INVALID, "message: %zu bytes, more than the limit of %u", len,
                      FC_MSG_MAX_BYTES);
    json_error_t e;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        switch (json_error_code(&e)) {
        case json_error_invalid_utf8:
            return FC_ERR(FC_E_INVALID, "message: not valid UTF-8 at byte %d", e.position);
        case json_error_duplicate_key:
            return FC_ERR(FC_E_INVALID, "message: duplicate key at byte %d (%s)", e.position,
                          e.text);
        case json_error_null_character:
        case json_error_null_byte_in_key:
            return FC_ERR(FC_E_INVALID, "message: NUL character at byte %d", e.position);
        default:
            return FC_ERR(FC_E_INVALID, "message: invalid JSON at line %d column %d (byte %d): %s",
                          e.line, e.column, e.position, e.text);
        }
    }
    if (!json_is_object(j)) {
        json_decref(j);
        return FC_ERR(FC_E_INVALID, "message: expected a JSON object");
    }
    *out = j;
    return FC_OK;
}

char *
fc_msg_dump(const json_t *msg)
{
    return json_dumps(msg, JSON_COMPACT);
}

/* ---- generic validation ---- */

typedef fc_rc (*validate_fn)(const json_t *j);

#define VALIDATOR(name, type, from, freefn)                                                    \
    static fc_rc name(const json_t *j)                                                         \
    {                                                                                          \
        type *x = NULL;                                                                        \
        fc_rc rc = from(j, &x);                                                                \
        freefn(x);                                                                             \
        return rc;                                                                             \
    }
VALIDATOR(v_task, struct fc_task, fc_task_from_json, fc_task_free)
VALIDATOR(v_event, struct fc_task_event, fc_event_from_json, fc_event_free)
VALIDATOR(v_cancel, struct fc_cancel, fc_cancel_from_json, fc_cancel_free)
VALIDATOR(v_resume, struct fc_resume, fc_resume_from_json, fc_resume_free)
VALIDATOR(v_hb, struct fc_heartbeat, fc_heartbeat_from_json, fc_heartbeat_free)
VALIDATOR(v_plan, struct fc_plan, fc_plan_from_json, fc_plan_free)
VALIDATOR(v_req, struct fc_request, fc_request_from_json, fc_request_free)
VALIDATOR(v_topo, struct fc_topology, fc_topology_from_json, fc_topology_free)
VALIDATOR(v_reloc, struct fc_reloc_event, fc_reloc_event_from_json, fc_reloc_event_free)
VALIDATOR(v_rej, struct fc_rejected, fc_rejected_from_json, fc_rejected_free)

/* The status RPC messages are parsed from text only (they never arrive as JSON objects). */
#define VALIDATOR_TEXT(name, type, parse, freefn)                                              \
    static fc_rc name(const json_t *j)                                                         \
    {                                                                                          \
        char *text = fc_msg_dump(j);                                                           \
        if (!text)                                                                             \
            return FC_ERR(FC_E_NOMEM, "out of memory");                                        \
        type *x = NULL;                                                                        \
        fc_rc rc = parse(text, strlen(text), &x);                                              \
        freefn(x);                                                                             \
        free(text);                                                                            \
        return rc;                                                                             \
    }
VALIDATOR_TEXT(v_sreq, struct fc_status_req, fc_status_req_parse, fc_status_req_free)
VALIDATOR_TEXT(v_status, struct fc_status, fc_status_parse, fc_status_free)

static const struct {
    const char *schema;
    validate_fn fn;
} validators[] = {
    {FC_SCHEMA_TASK, v_task},     {FC_SCHEMA_EVENT, v_event},   {FC_SCHEMA_CANCEL, v_cancel},
    {FC_SCHEMA_BROKER, v_hb},     {FC_SCHEMA_PLAN, v_plan},     {FC_SCHEMA_REQUEST, v_req},
    {FC_SCHEMA_TOPOLOGY, v_topo}, {FC_SCHEMA_RELOCATION, v_reloc}, {FC_SCHEMA_REJECTED, v_rej},
    {FC_SCHEMA_STATUS_REQ, v_sreq}, {FC_SCHEMA_STATUS, v_status}, {FC_SCHEMA_RESUME, v_resume},
};

fc_rc
fc_msg_validate_json(const json_t *msg, const char *expected_schema)
{
    struct fc_jp p = {0};
    jp_set_error_path("");
    fc_rc rc = j_want_object(&p, msg);
    if (rc != FC_OK)
        return rc;
    const json_t *s = json_object_get(msg, "schema");
    if (!s)
        return jp_err_at(&p, "schema", FC_E_INVALID, "missing required field");
    if (!json_is_string(s))
        return jp_err_at(&p, "schema", FC_E_INVALID, "expected a string, got %s",
                         j_type_name(s));
    const char *got = json_string_value(s);
    const char *want = expected_schema;
    if (!want) {
        char gn[128], wn[128];
        long gm, wm;
        for (size_t i = 0; i < sizeof validators / sizeof validators[0] && !want; i++) {
            if (strcmp(got, validators[i].schema) == 0 ||
                (split_schema(got, gn, sizeof gn, &gm) &&
                 split_schema(validators[i].schema, wn, sizeof wn, &wm) && strcmp(gn, wn) == 0))
                want = validators[i].schema;
        }
        if (!want) {
            char q[64];
            quote_short(q, sizeof q, got);
            return jp_err_at(&p, "schema", FC_E_INVALID, "unknown schema \"%s\"", q);
        }
    }
    for (size_t i = 0; i < sizeof validators / sizeof validators[0]; i++)
        if (strcmp(want, validators[i].schema) == 0)
            return validators[i].fn(msg);
    return FC_ERR(FC_E_INTERNAL, "fc_msg_validate: no parser for schema \"%s\"", want);
}

fc_rc
fc_msg_validate(const char *buf, size_t len, const char *expected_schema)
{
    json_auto_t *j = NULL;
    fc_rc rc = fc_msg_load(buf, len, &j);
    if (rc != FC_OK)
        return rc;
    return fc_msg_validate_json(j, expected_schema);
}
