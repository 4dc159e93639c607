/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-config helpers: byte buffers, variables and ${...} expansion, globs, and the
 * lexical path checks (no "..", under a declared root). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "fluid/error.h"

fc_rc
cfg_buf_add(struct cfg_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return FC_OK;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return FC_ERR(FC_E_NOMEM, "out of memory (%zu bytes)", cap);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return FC_OK;
}

fc_rc
cfg_buf_adds(struct cfg_buf *b, const char *s)
{
    return cfg_buf_add(b, s, strlen(s));
}

fc_rc
cfg_buf_addf(struct cfg_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    fc_rc rc = cfg_buf_add(b, s, (size_t)n);
    free(s);
    return rc;
}

const char *
cfg_buf_str(struct cfg_buf *b)
{
    if (!b->p && cfg_buf_add(b, "", 0) == FC_OK && !b->p) {
        b->p = malloc(1);
        if (!b->p)
            return NULL;
        b->cap = 1;
    }
    b->p[b->len] = '\0'; /* cfg_buf_add always leaves room for it */
    return b->p;
}

void
cfg_buf_free(struct cfg_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- variables ---------------------------------------------------------------------- */

void
cfg_vars_init(struct cfg_vars *v)
{
    v->root = json_object();
}

void
cfg_vars_free(struct cfg_vars *v)
{
    json_decref(v->root);
    v->root = NULL;
}

static void
merge_deep(json_t *dst, json_t *src)
{
    const char *k;
    json_t *val;
    json_object_foreach(src, k, val)
    {
        json_t *cur = json_object_get(dst, k);
        if (json_is_object(cur) && json_is_object(val))
            merge_deep(cur, val);
        else
            json_object_set(dst, k, val);
    }
}

fc_rc
cfg_vars_merge(struct cfg_vars *v, json_t *obj)
{
    if (!json_is_object(obj))
        return FC_ERR(FC_E_INVALID, "variables: expected a JSON object");
    merge_deep(v->root, obj);
    return FC_OK;
}

fc_rc
cfg_vars_load_file(struct cfg_vars *v, const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return FC_ERR(FC_E_INVALID, "--vars %s: line %d column %d: %s", path, je.line, je.column,
                      je.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return FC_ERR(FC_E_INVALID, "--vars %s: expected a JSON object", path);
    }
    merge_deep(v->root, j);
    json_decref(j);
    return FC_OK;
}

static bool
valid_name(const char *s, size_t n)
{
    if (n == 0 || !isalpha((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
            return false;
    return s[n - 1] != '.' && !memmem(s, n, "..", 2);
}

fc_rc
cfg_vars_set_arg(struct cfg_vars *v, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || !valid_name(arg, (size_t)(eq - arg)))
        return FC_ERR(FC_E_INVALID,
                      "--var: expected NAME=VALUE with a dotted NAME of letters, digits, "
                      "'_' and '-' (got \"%.*s\")",
                      (int)(eq ? eq - arg : (ptrdiff_t)strlen(arg)), arg);
    json_t *cur = v->root;
    const char *s = arg;
    for (;;) {
        const char *dot = memchr(s, '.', (size_t)(eq - s));
        char *seg = strndup(s, (size_t)((dot ? dot : eq) - s));
        if (!seg)
            return FC_ERR(FC_E_NOMEM, "out of memory");
        if (!dot) {
            json_object_set_new(cur, seg, json_string(eq + 1));
            free(seg);
            return FC_OK;
        }
        json_t *next = json_object_get(cur, seg);
        if (!json_is_object(next)) {
            next = json_object();
            json_object_set_new(cur, seg, next);
        }
        free(seg);
        cur = next;
        s = dot + 1;
    }
}

char *
cfg_vars_lookup(const struct cfg_vars *v, const char *name)
{
    json_t *cur = v->root;
    const char *s = name;
    while (cur) {
        const char *dot = strchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : strlen(s);
        if (json_is_object(cur)) {
            cur = json_object_getn(cur, s, n);
        } else if (json_is_array(cur)) {
            char *end;
            unsigned long i = strtoul(s, &end, 10);
            cur = (end == s + n && n > 0 && isdigit((unsigned char)*s)) ? json_array_get(cur, i)
                                                                        : NULL;
        } else {
            cur = NULL;
        }
        if (!dot)
            break;
        s = dot + 1;
    }
    if (!cur)
        return NULL;
    if (json_is_string(cur))
        return strdup(json_string_value(cur));
    if (json_is_integer(cur) || json_is_real(cur) || json_is_boolean(cur))
        return json_dumps(cur, JSON_ENCODE_ANY);
    return NULL;
}

static fc_rc
add_escaped(struct cfg_buf *b, const char *val, enum cfg_expand_mode mode)
{
    fc_rc rc = FC_OK;
    if (mode == CFG_X_REGEX) {
        /* \Q...\E: literal even with flag x; a "\E" inside the value ends and restarts it */
        rc = cfg_buf_adds(b, "\\Q");
        for (const char *p = val; *p && rc == FC_OK; p++)
            rc = (p[0] == '\\' && p[1] == 'E') ? (p++, cfg_buf_adds(b, "\\E\\\\E\\Q"))
                                               : cfg_buf_add(b, p, 1);
        return rc ?: cfg_buf_adds(b, "\\E");
    }
    for (const char *p = val; *p && rc == FC_OK; p++)
        rc =
            (mode == CFG_X_TEMPLATE && *p == '\\') ? cfg_buf_adds(b, "\\\\") : cfg_buf_add(b, p, 1);
    return rc;
}

fc_rc
cfg_expand(const struct cfg_vars *v, const char *s, enum cfg_expand_mode mode, const char *where,
           char **out)
{
    struct cfg_buf b = {0};
    fc_rc rc = FC_OK;
    const char *p = s;
    while (*p && rc == FC_OK) {
        if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
            rc = cfg_buf_adds(&b, "${");
            p += 3;
        } else if (p[0] == '$' && p[1] == '{') {
            const char *end = strchr(p + 2, '}');
            if (!end) {
                rc = FC_ERR(FC_E_INVALID,
                            "%s: unterminated ${ at offset %zu (write $${ for a "
                            "literal ${)",
                            where, (size_t)(p - s));
                break;
            }
            size_t n = (size_t)(end - p - 2);
            if (!valid_name(p + 2, n)) {
                rc = FC_ERR(FC_E_INVALID,
                            "%s: bad variable name ${%.*s} (letters, digits, '_', "
                            "'-' and dots; write $${ for a literal ${)",
                            where, (int)n, p + 2);
                break;
            }
            char *name = strndup(p + 2, n);
            char *val = name ? cfg_vars_lookup(v, name) : NULL;
            if (!name)
                rc = FC_ERR(FC_E_NOMEM, "out of memory");
            else if (!val)
                rc = FC_ERR(FC_E_INVALID, "%s: undefined variable ${%s}", where, name);
            else
                rc = add_escaped(&b, val, mode);
            free(name);
            free(val);
            p = end + 1;
        } else {
            rc = cfg_buf_add(&b, p, 1);
            p++;
        }
    }
    if (rc == FC_OK && !cfg_buf_str(&b))
        rc = FC_ERR(FC_E_NOMEM, "out of memory");
    if (rc != FC_OK) {
        cfg_buf_free(&b);
        return rc;
    }
    *out = b.p;
    return FC_OK;
}

/* ---- globs and paths ---------------------------------------------------------------- */

static int
class_match(const char **gp, char c)
{
    const char *g = *gp + 1;
    bool neg = false, hit = false;
    if (*g == '!' || *g == '^') {
        neg = true;
        g++;
    }
    bool first = true;
    while (*g && (first || *g != ']')) {
        first = false;
        char lo = *g, hi = lo;
        if (lo == '\\' && g[1])
            lo = hi = *++g;
        if (g[1] == '-' && g[2] && g[2] != ']') {
            hi = g[2];
            if (hi == '\\' && g[3])
                hi = g[3], g++;
            g += 2;
        }
        if ((unsigned char)c >= (unsigned char)lo && (unsigned char)c <= (unsigned char)hi)
            hit = true;
        g++;
    }
    if (*g != ']')
        return -1; /* no closing ']': '[' is a literal */
    *gp = g + 1;
    return hit != neg;
}

static bool
glob_rec(const char *g, const char *p, unsigned *steps)
{
    while (*g) {
        if (++*steps > 1000000)
            return false;
        if (g[0] == '*' && g[1] == '*' && (g[2] == '/' || g[2] == '\0')) {
            if (g[2] == '\0')
                return true;
            for (const char *q = p;; q++) {
                if ((q == p || q[-1] == '/') && glob_rec(g + 3, q, steps))
                    return true;
                if (!*q)
                    return false;
            }
        }
        if (*g == '*') {
            for (const char *q = p;; q++) {
                if (glob_rec(g + 1, q, steps))
                    return true;
                if (!*q || *q == '/')
                    return false;
            }
        }
        if (!*p)
            return false;
        if (*g == '?') {
            if (*p == '/')
                return false;
        } else if (*g == '[' && *p != '/') {
            const char *g2 = g;
            int m = class_match(&g2, *p);
            if (m == 0)
                return false;
            if (m == 1) {
                g = g2;
                p++;
                continue;
            }
            if (*p != '[')
                return false;
        } else {
            if (*g == '\\' && g[1])
                g++;
            if (*g != *p)
                return false;
        }
        g++;
        p++;
    }
    return *p == '\0';
}

bool
cfg_glob_match(const char *glob, const char *path)
{
    unsigned steps = 0;
    return glob_rec(glob, path, &steps);
}

fc_rc
cfg_path_normalise(const char *path, const char *what, char **out)
{
    if (path[0] != '/')
        return FC_ERR(FC_E_INVALID, "%s: \"%s\" is not an absolute path", what, path);
    struct cfg_buf b = {0};
    const char *p = path;
    fc_rc rc = FC_OK;
    while (*p && rc == FC_OK) {
        while (*p == '/')
            p++;
        const char *e = strchrnul(p, '/');
        size_t n = (size_t)(e - p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            rc = FC_ERR(FC_E_INVALID, "%s: \"..\" is not allowed in a path (%s)", what, path);
        else if (n > 0 && !(n == 1 && p[0] == '.'))
            rc = cfg_buf_add(&b, "/", 1) ?: cfg_buf_add(&b, p, n);
        p = e;
    }
    if (rc == FC_OK && b.len == 0)
        rc = cfg_buf_add(&b, "/", 1);
    if (rc == FC_OK && !cfg_buf_str(&b))
        rc = FC_ERR(FC_E_NOMEM, "out of memory");
    if (rc != FC_OK) {
        cfg_buf_free(&b);
        return rc;
    }
    *out = b.p;
    return FC_OK;
}

bool
cfg_path_under(const char *path, const char *root)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/')
        return path[0] == '/';
    return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

const char *
cfg_root_of(const struct cfg_rules *r, const char *path)
{
    const char *best = NULL;
    for (size_t i = 0; i < r->nroots; i++)
        if (cfg_path_under(path, r->roots[i]) && (!best || strlen(r->roots[i]) > strlen(best)))
            best = r->roots[i];
    return best;
}

const char *
cfg_eol_of(const char *in, size_t len)
{
    const char *nl = memchr(in, '\n', len);
    return (nl && nl > in && nl[-1] == '\r') ? "\r\n" : "\n";
}

bool
cfg_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned min;
        if ((c & 0xe0) == 0xc0)
            len = 2, min = 0x80, c &= 0x1f;
        else if ((c & 0xf0) == 0xe0)
            len = 3, min = 0x800, c &= 0x0f;
        else if ((c & 0xf8) == 0xf0)
            len = 4, min = 0x10000, c &= 0x07;
        else
            return false;
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((u[i + k] & 0xc0) != 0x80)
                return false;
            c = c << 6 | (u[i + k] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}
