/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-config JSON edits: set or delete the value at an RFC 6901 pointer by splicing the
 * bytes of that value (or member), so that the rest of the document keeps its formatting.
 * The document is validated by Jansson before and after the edit. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "fluid/cleanup.h"
#include "fluid/error.h"

struct member {
    size_t ks, ke, vs, ve; /* key with its quotes (objects; ks = vs for arrays), value */
};

static size_t
ws(const char *in, size_t p, size_t len)
{
    while (p < len && (in[p] == ' ' || in[p] == '\t' || in[p] == '\r' || in[p] == '\n'))
        p++;
    return p;
}

static size_t
skip_string(const char *in, size_t p, size_t len)
{
    for (p++; p < len && in[p] != '"'; p++)
        if (in[p] == '\\')
            p++;
    return p < len ? p + 1 : len;
}

/* The end of the (valid) value starting at p. */
static size_t
skip_value(const char *in, size_t p, size_t len)
{
    if (p >= len)
        return len;
    if (in[p] == '"')
        return skip_string(in, p, len);
    if (in[p] == '{' || in[p] == '[') {
        size_t depth = 0;
        for (; p < len; p++) {
            if (in[p] == '"') {
                p = skip_string(in, p, len) - 1;
            } else if (in[p] == '{' || in[p] == '[') {
                depth++;
            } else if (in[p] == '}' || in[p] == ']') {
                if (--depth == 0)
                    return p + 1;
            }
        }
        return len;
    }
    while (p < len && !strchr(",}] \t\r\n", in[p]))
        p++;
    return p;
}

/* Members (or elements) of the container at p; *close is the closing bracket. */
static fc_rc
scan(const char *in, size_t len, size_t p, struct member **out, size_t *n, size_t *close)
{
    bool obj = in[p] == '{';
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    p = ws(in, p + 1, len);
    while (p < len && in[p] != (obj ? '}' : ']')) {
        struct member m = {p, p, p, p};
        if (obj) {
            m.ke = skip_string(in, p, len);
            p = ws(in, m.ke, len);
            p = ws(in, p + 1, len); /* ':' */
            m.vs = p;
        }
        m.ve = skip_value(in, p, len);
        if (m.ke > len || m.vs > len || m.ve <= m.vs) { /* only on input Jansson refused */
            free(*out);
            *out = NULL;
            return FC_ERR(FC_E_INVALID, "not valid JSON near offset %zu", m.ks);
        }
        if (*n == cap) {
            struct member *t = realloc(*out, (cap = cap ? 2 * cap : 8) * sizeof *t);
            if (!t) {
                free(*out);
                *out = NULL;
                return FC_ERR(FC_E_NOMEM, "out of memory");
            }
            *out = t;
        }
        (*out)[(*n)++] = m;
        p = ws(in, m.ve, len);
        if (p < len && in[p] == ',')
            p = ws(in, p + 1, len);
    }
    *close = p;
    return FC_OK;
}

/* Whether the JSON string at [s, e) (with quotes) decodes to key. */
static bool
key_equals(const char *in, size_t s, size_t e, const char *key)
{
    json_t *j = json_loadb(in + s, e - s, JSON_DECODE_ANY, NULL);
    bool eq = json_is_string(j) && json_string_length(j) == strlen(key) &&
              memcmp(json_string_value(j), key, strlen(key)) == 0;
    json_decref(j);
    return eq;
}

/* The next pointer token (unescaped ~1 -> '/', ~0 -> '~') from *p. */
static char *
next_token(const char **p)
{
    const char *s = *p + 1, *e = strchrnul(s, '/');
    char *t = malloc((size_t)(e - s) + 1), *w = t;
    if (!t)
        return NULL;
    for (const char *q = s; q < e; q++) {
        if (*q == '~' && q + 1 < e && (q[1] == '0' || q[1] == '1'))
            *w++ = *++q == '0' ? '~' : '/';
        else
            *w++ = *q;
    }
    *w = '\0';
    *p = e;
    return t;
}

static fc_rc
splice(const char *in, size_t len, size_t s, size_t e, const char *text, struct cfg_buf *out)
{
    return cfg_buf_add(out, in, s) ?: cfg_buf_adds(out, text) ?: cfg_buf_add(out, in + e, len - e);
}

static fc_rc
json_edit(const struct cfg_rule *r, const char *in, size_t len, struct cfg_buf *out)
{
    size_t vs = ws(in, 0, len), ve = skip_value(in, vs, len);
    const char *ptr = r->pointer;
    char *dump = r->jvalue ? json_dumps(r->jvalue, JSON_ENCODE_ANY | JSON_PRESERVE_ORDER) : NULL;
    if (r->jvalue && !dump)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    fc_rc rc = FC_OK;
    while (*ptr && rc == FC_OK) {
        char *tok = next_token(&ptr);
        if (!tok) {
            rc = FC_ERR(FC_E_NOMEM, "out of memory");
            break;
        }
        bool last = *ptr == '\0';
        struct member *m = NULL;
        size_t n = 0, close = 0;
        if (in[vs] != '{' && in[vs] != '[') {
            rc = FC_ERR(FC_E_INVALID,
                        "%s: pointer \"%s\": \"%s\" is inside a %s, not an object "
                        "or array",
                        r->id, r->pointer, tok, in[vs] == '"' ? "string" : "scalar");
            free(tok);
            break;
        }
        bool obj = in[vs] == '{';
        if ((rc = scan(in, len, vs, &m, &n, &close)) != FC_OK) {
            free(tok);
            break;
        }
        size_t idx = n;
        if (obj) {
            for (size_t i = 0; i < n && idx == n; i++)
                if (key_equals(in, m[i].ks, m[i].ke, tok))
                    idx = i;
        } else if (strcmp(tok, "-") == 0) {
            /* append, unless an equal element is there already (so a rerun changes nothing) */
            for (size_t i = 0; i < n && idx == n && last && r->jvalue; i++) {
                json_t *cur = json_loadb(in + m[i].vs, m[i].ve - m[i].vs, JSON_DECODE_ANY, NULL);
                if (cur && json_equal(cur, r->jvalue))
                    idx = i;
                json_decref(cur);
            }
        } else {
            char *end;
            unsigned long v = strtoul(tok, &end, 10);
            if (!*tok || *end || !isdigit((unsigned char)*tok) || (tok[0] == '0' && tok[1]) ||
                v > n) {
                rc = FC_ERR(FC_E_INVALID,
                            "%s: pointer \"%s\": \"%s\" is not an index of the "
                            "array (0..%zu)",
                            r->id, r->pointer, tok, n);
                free(tok), free(m);
                break;
            }
            idx = v;
        }
        if (idx < n && !last) {
            vs = m[idx].vs, ve = m[idx].ve;
        } else if (idx < n && r->del) {
            /* delete the member and one separator next to it */
            if (n == 1)
                rc = splice(in, len, ws(in, vs + 1, len), close, "", out);
            else if (idx + 1 < n)
                rc = splice(in, len, m[idx].ks, m[idx + 1].ks, "", out);
            else
                rc = splice(in, len, m[idx - 1].ve, m[idx].ve, "", out);
            vs = ve = 0;
            ptr = "";
        } else if (idx < n) {
            json_t *cur = json_loadb(in + m[idx].vs, m[idx].ve - m[idx].vs, JSON_DECODE_ANY, NULL);
            bool same = cur && json_equal(cur, r->jvalue);
            json_decref(cur);
            rc =
                same ? cfg_buf_add(out, in, len) : splice(in, len, m[idx].vs, m[idx].ve, dump, out);
            ptr = "";
        } else if (!last) {
            rc = FC_ERR(FC_E_NOTFOUND,
                        "%s: pointer \"%s\": \"%s\" does not exist (only the "
                        "last part of a pointer may be missing)",
                        r->id, r->pointer, tok);
        } else if (r->del) {
            rc = cfg_buf_add(out, in, len); /* already absent */
        } else {
            /* a new member or element: after the last one, in its style */
            struct cfg_buf t = {0};
            json_t *ks = obj ? json_string(tok) : NULL;
            FC_AUTOFREE char *key = ks ? json_dumps(ks, JSON_ENCODE_ANY) : NULL;
            json_decref(ks);
            if (obj && !key) {
                rc = FC_ERR(FC_E_INVALID, "%s: pointer \"%s\": key is not valid UTF-8", r->id,
                            r->pointer);
            } else if (n == 0) {
                rc = cfg_buf_addf(&t, "%s%s%s", obj ? key : "", obj ? ": " : "", dump);
                if (rc == FC_OK)
                    rc = splice(in, len, vs + 1, vs + 1, cfg_buf_str(&t), out);
            } else {
                /* the whitespace before the last member, and its key-value separator */
                size_t ls = m[n - 1].ks, a = ls;
                while (a > vs + 1 && strchr(" \t\r\n", in[a - 1]))
                    a--;
                rc = cfg_buf_add(&t, ",", 1) ?: cfg_buf_add(&t, in + a, ls - a);
                if (rc == FC_OK && obj)
                    rc = cfg_buf_adds(&t, key)
                             ?: cfg_buf_add(&t, in + m[n - 1].ke, m[n - 1].vs - m[n - 1].ke);
                if (rc == FC_OK)
                    rc = cfg_buf_adds(&t, dump);
                if (rc == FC_OK)
                    rc = splice(in, len, m[n - 1].ve, m[n - 1].ve, cfg_buf_str(&t), out);
            }
            cfg_buf_free(&t);
            ptr = "";
        }
        free(tok);
        free(m);
    }
    if (rc == FC_OK && r->pointer[0] == '\0') {
        json_t *cur = json_loadb(in + vs, ve - vs, JSON_DECODE_ANY, NULL);
        bool same = cur && json_equal(cur, r->jvalue);
        json_decref(cur);
        rc = same ? cfg_buf_add(out, in, len) : splice(in, len, vs, ve, dump, out);
    }
    free(dump);
    return rc;
}

fc_rc
cfg_json_apply(const struct cfg_rule *rule, const char *path, const char *in, size_t len,
               struct cfg_buf *out)
{
    const char *nul = memchr(in, '\0', len);
    if (nul) /* Jansson stops at a NUL: the byte scanner below must see what it validated */
        return FC_ERR(FC_E_INVALID, "%s: not valid JSON (a NUL byte at offset %zu)", rule->id,
                      (size_t)(nul - in));
    json_error_t je;
    json_t *doc = json_loadb(in, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        return FC_ERR(FC_E_INVALID, "%s: not valid JSON (line %d column %d: %s)", rule->id, je.line,
                      je.column, je.text);
    json_decref(doc);
    size_t start = out->len;
    fc_rc rc = json_edit(rule, in, len, out);
    if (rc != FC_OK)
        return rc;
    if (out->len == start) /* nothing spliced: the value is already absent or equal */
        return cfg_buf_add(out, in, len);
    doc =
        json_loadb(out->p + start, out->len - start, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        return FC_ERR(FC_E_INTERNAL, "%s: the edit made invalid JSON (line %d: %s)", rule->id,
                      je.line, je.text);
    json_decref(doc);
    return FC_OK;
}
