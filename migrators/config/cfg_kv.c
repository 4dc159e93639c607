/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-config key/value edits on ini, .env and Java properties files: set or delete a key
 * by rewriting only the bytes of its value (or its lines), so that every other byte of the
 * file stays as it was: comments, spacing, order, line endings, a missing final newline. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "fluid/error.h"

struct line {
    size_t start, cend, end; /* content [start, cend), then the line ending up to end */
};

struct edit {
    size_t start, end; /* bytes of the input replaced by text */
    char *text;
};

struct kv {
    const char *in;
    size_t len;
    struct line *lines;
    size_t nlines;
    struct edit *edits;
    size_t nedits;
    const char *eol;
};

static fc_rc
split_lines(struct kv *k)
{
    size_t cap = 16;
    k->lines = malloc(cap * sizeof *k->lines);
    if (!k->lines)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    size_t p = 0;
    while (p < k->len) {
        const char *nl = memchr(k->in + p, '\n', k->len - p);
        size_t end = nl ? (size_t)(nl - k->in) + 1 : k->len;
        size_t cend = nl ? end - 1 : end;
        if (nl && cend > p && k->in[cend - 1] == '\r')
            cend--;
        if (k->nlines == cap) {
            struct line *l = realloc(k->lines, (cap *= 2) * sizeof *l);
            if (!l)
                return FC_ERR(FC_E_NOMEM, "out of memory");
            k->lines = l;
        }
        k->lines[k->nlines++] = (struct line){p, cend, end};
        p = end;
    }
    k->eol = cfg_eol_of(k->in, k->len);
    return FC_OK;
}

/* Records an edit; text is taken over. */
static fc_rc
add_edit(struct kv *k, size_t start, size_t end, char *text)
{
    if (!text)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    if ((k->nedits & (k->nedits - 1)) == 0) { /* at 0, 1, 2, 4, ...: grow geometrically */
        struct edit *e = realloc(k->edits, (k->nedits ? 2 * k->nedits : 1) * sizeof *e);
        if (!e) {
            free(text);
            return FC_ERR(FC_E_NOMEM, "out of memory");
        }
        k->edits = e;
    }
    k->edits[k->nedits++] = (struct edit){start, end, text};
    return FC_OK;
}

static int
edit_cmp(const void *a, const void *b)
{
    const struct edit *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static fc_rc
finish(struct kv *k, struct cfg_buf *out)
{
    if (k->nedits > 1)
        qsort(k->edits, k->nedits, sizeof *k->edits, edit_cmp);
    size_t p = 0;
    fc_rc rc = FC_OK;
    for (size_t i = 0; i < k->nedits && rc == FC_OK; i++) {
        /* two deleted neighbours may overlap by a line ending */
        size_t s = k->edits[i].start > p ? k->edits[i].start : p;
        rc = cfg_buf_add(out, k->in + p, s - p) ?: cfg_buf_adds(out, k->edits[i].text);
        p = k->edits[i].end > s ? k->edits[i].end : s;
    }
    if (rc == FC_OK)
        rc = cfg_buf_add(out, k->in + p, k->len - p);
    return rc;
}

static void
kv_free(struct kv *k)
{
    for (size_t i = 0; i < k->nedits; i++)
        free(k->edits[i].text);
    free(k->edits);
    free(k->lines);
}

/* Inserts a new line (text without its ending) after line i (-1: at the start). */
static fc_rc
insert_after(struct kv *k, long i, const char *text)
{
    char *t = NULL;
    if (i < 0)
        return add_edit(k, 0, 0, asprintf(&t, "%s%s", text, k->eol) < 0 ? NULL : t);
    const struct line *l = &k->lines[i];
    if (l->cend == l->end) /* the last line, without a final newline: keep it that way */
        return add_edit(k, l->end, l->end, asprintf(&t, "%s%s", k->eol, text) < 0 ? NULL : t);
    return add_edit(k, l->end, l->end, asprintf(&t, "%s%s", text, k->eol) < 0 ? NULL : t);
}

/* Deletes line i; the last line without a final newline takes the previous ending along. */
static fc_rc
delete_line(struct kv *k, size_t i)
{
    const struct line *l = &k->lines[i];
    if (l->cend == l->end && i > 0 && k->lines[i - 1].end == l->start)
        return add_edit(k, k->lines[i - 1].cend, l->end, strdup(""));
    return add_edit(k, l->start, l->end, strdup(""));
}

static size_t
skip_ws(const char *in, size_t p, size_t end)
{
    while (p < end && (in[p] == ' ' || in[p] == '\t' || in[p] == '\f'))
        p++;
    return p;
}

static size_t
trim_end(const char *in, size_t start, size_t end)
{
    while (end > start && (in[end - 1] == ' ' || in[end - 1] == '\t'))
        end--;
    return end;
}

/* ---- ini ---------------------------------------------------------------------------- */

static fc_rc
ini_apply(struct kv *k, const struct cfg_rule *r)
{
    const char *in = k->in;
    bool in_sec = r->section == NULL || r->section[0] == '\0', sec_seen = in_sec;
    long last = -1, first_header = -1, sep_from = -1;
    size_t nfound = 0;
    fc_rc rc = FC_OK;
    for (size_t i = 0; i < k->nlines && rc == FC_OK; i++) {
        const struct line *l = &k->lines[i];
        size_t p = skip_ws(in, l->start, l->cend);
        if (p == l->cend || in[p] == ';' || in[p] == '#')
            continue;
        if (in[p] == '[') {
            const char *close = memchr(in + p, ']', l->cend - p);
            if (close) {
                size_t ns = skip_ws(in, p + 1, (size_t)(close - in));
                size_t ne = trim_end(in, ns, (size_t)(close - in));
                bool match = r->section && r->section[0] && strlen(r->section) == ne - ns &&
                             memcmp(in + ns, r->section, ne - ns) == 0;
                if (first_header < 0)
                    first_header = (long)i;
                in_sec = match;
                if (match) {
                    sec_seen = true;
                    last = (long)i;
                }
                continue;
            }
        }
        size_t sep = p;
        while (sep < l->cend && in[sep] != '=' && in[sep] != ':')
            sep++;
        if (sep == l->cend)
            continue;
        if (sep_from < 0)
            sep_from = (long)i;
        /* lines indented deeper than the key continue its value (Python's configparser) */
        size_t key_line = i, indent = p - l->start;
        while (i + 1 < k->nlines) {
            const struct line *n = &k->lines[i + 1];
            size_t q = skip_ws(in, n->start, n->cend);
            if (q == n->cend || q - n->start <= indent)
                break;
            i++;
        }
        if (!in_sec)
            continue;
        last = (long)i;
        size_t ke = trim_end(in, p, sep);
        if (ke - p != strlen(r->key) || memcmp(in + p, r->key, ke - p) != 0)
            continue;
        nfound++;
        if (r->del) {
            for (size_t j = key_line; j <= i && rc == FC_OK; j++)
                rc = delete_line(k, j);
        } else {
            size_t vs = skip_ws(in, sep + 1, l->cend), ve = trim_end(in, vs, k->lines[i].cend);
            bool pad = vs == ve && vs == sep + 1 && sep > p && in[sep - 1] == ' ';
            char *t = NULL;
            rc = add_edit(k, vs, ve, asprintf(&t, "%s%s", pad ? " " : "", r->value) < 0 ? NULL : t);
        }
    }
    if (rc != FC_OK || nfound || r->del)
        return rc;
    /* a new key: in the separator style of the first key line of the file */
    char sepbuf[16] = " = ";
    if (sep_from >= 0) {
        const struct line *l = &k->lines[sep_from];
        size_t p = skip_ws(in, l->start, l->cend), s = p;
        while (in[s] != '=' && in[s] != ':')
            s++;
        size_t a = trim_end(in, p, s), b = skip_ws(in, s + 1, l->cend);
        if (b - a < sizeof sepbuf) {
            memcpy(sepbuf, in + a, b - a);
            sepbuf[b - a] = '\0';
        }
    }
    char *line = NULL;
    if (asprintf(&line, "%s%s%s", r->key, sepbuf, r->value) < 0)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    if (sec_seen) {
        if (last < 0 && !(r->section && r->section[0]))
            last = first_header >= 0 ? first_header - 1 : (long)k->nlines - 1;
        rc = insert_after(k, last, line);
    } else {
        char *t = NULL;
        bool nofinal = k->len > 0 && k->in[k->len - 1] != '\n';
        if (asprintf(&t, "%s%s[%s]%s%s%s", nofinal ? k->eol : "", k->len ? k->eol : "", r->section,
                     k->eol, line, nofinal ? "" : k->eol) < 0)
            t = NULL;
        rc = add_edit(k, k->len, k->len, t);
    }
    free(line);
    return rc;
}

/* ---- .env --------------------------------------------------------------------------- */

static bool
env_needs_quotes(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || strchr("#\"'$`\\;&|<>(){}*?[]!~", *p) || *p == 0x7f)
            return true;
    return false;
}

static char *
env_render(const char *v, char old_quote)
{
    char *t = NULL;
    bool has_sq = strchr(v, '\'') || strpbrk(v, "\r\n");
    if (old_quote == '\'' && !has_sq)
        return asprintf(&t, "'%s'", v) < 0 ? NULL : t;
    if (old_quote != '"' && !env_needs_quotes(v))
        return strdup(v);
    struct cfg_buf b = {0};
    fc_rc rc = cfg_buf_add(&b, "\"", 1);
    for (const char *p = v; *p && rc == FC_OK; p++) {
        if (*p == '\n')
            rc = cfg_buf_adds(&b, "\\n");
        else if (*p == '\r')
            rc = cfg_buf_adds(&b, "\\r");
        else if (strchr("\\\"$`", *p))
            rc = cfg_buf_add(&b, "\\", 1) ?: cfg_buf_add(&b, p, 1);
        else
            rc = cfg_buf_add(&b, p, 1);
    }
    if (rc == FC_OK)
        rc = cfg_buf_add(&b, "\"", 1);
    if (rc != FC_OK || !cfg_buf_str(&b)) {
        cfg_buf_free(&b);
        return NULL;
    }
    return b.p;
}

static fc_rc
env_apply(struct kv *k, const struct cfg_rule *r)
{
    const char *in = k->in;
    long last_key = -1;
    bool export_style = false, found = false;
    fc_rc rc = FC_OK;
    for (size_t i = 0; i < k->nlines && rc == FC_OK; i++) {
        const struct line *l = &k->lines[i];
        size_t p = skip_ws(in, l->start, l->cend);
        if (p == l->cend || in[p] == '#')
            continue;
        bool exp = false;
        if (l->cend - p > 7 && memcmp(in + p, "export", 6) == 0 &&
            (in[p + 6] == ' ' || in[p + 6] == '\t')) {
            p = skip_ws(in, p + 6, l->cend);
            exp = true;
        }
        size_t ks = p;
        while (p < l->cend &&
               (isalnum((unsigned char)in[p]) || in[p] == '_' || in[p] == '.' || in[p] == '-'))
            p++;
        size_t ke = p;
        p = skip_ws(in, p, l->cend);
        if (ke == ks || p == l->cend || in[p] != '=')
            continue;
        last_key = (long)i;
        export_style = exp;
        if (ke - ks != strlen(r->key) || memcmp(in + ks, r->key, ke - ks) != 0)
            continue;
        found = true;
        if (r->del) {
            rc = delete_line(k, i);
            continue;
        }
        size_t vs = skip_ws(in, p + 1, l->cend), ve;
        char q = (vs < l->cend && (in[vs] == '"' || in[vs] == '\'')) ? in[vs] : 0;
        if (q) {
            ve = vs + 1;
            while (ve < l->cend && in[ve] != q)
                ve += (q == '"' && in[ve] == '\\' && ve + 1 < l->cend) ? 2 : 1;
            if (ve >= l->cend)
                return FC_ERR(FC_E_UNSUPPORTED,
                              "%s: line %zu: the value of %s has no closing "
                              "quote on its line (multi-line values are not supported)",
                              r->id, i + 1, r->key);
            ve++;
        } else {
            ve = vs;
            while (ve < l->cend &&
                   !(in[ve] == '#' && ve > vs && (in[ve - 1] == ' ' || in[ve - 1] == '\t')))
                ve++;
            ve = trim_end(in, vs, ve);
        }
        rc = add_edit(k, vs, ve, env_render(r->value, q));
    }
    if (rc != FC_OK || found || r->del)
        return rc;
    char *v = env_render(r->value, 0), *line = NULL;
    if (!v || asprintf(&line, "%s%s=%s", export_style ? "export " : "", r->key, v) < 0) {
        free(v);
        return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    free(v);
    rc = insert_after(k, last_key >= 0 ? last_key : (long)k->nlines - 1, line);
    free(line);
    return rc;
}

/* ---- Java properties ---------------------------------------------------------------- */

/* Appends the UTF-8 of code point c. */
static fc_rc
add_utf8(struct cfg_buf *b, unsigned c)
{
    char u[4];
    size_t n;
    if (c < 0x80) {
        u[0] = (char)c, n = 1;
    } else if (c < 0x800) {
        u[0] = (char)(0xc0 | c >> 6), u[1] = (char)(0x80 | (c & 0x3f)), n = 2;
    } else {
        u[0] = (char)(0xe0 | c >> 12), u[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        u[2] = (char)(0x80 | (c & 0x3f)), n = 3;
    }
    return cfg_buf_add(b, u, n);
}

/* The key of a properties line, unescaped, and where the separator ends / the value starts. */
static fc_rc
props_key(const char *in, size_t p, size_t end, struct cfg_buf *key, size_t *vs)
{
    while (p < end && !strchr("=: \t\f", in[p])) {
        if (in[p] == '\\' && p + 1 < end) {
            char c = in[++p];
            if (c == 'u' && p + 4 < end) {
                char hex[5] = {in[p + 1], in[p + 2], in[p + 3], in[p + 4], 0};
                fc_rc rc = add_utf8(key, (unsigned)strtoul(hex, NULL, 16));
                if (rc != FC_OK)
                    return rc;
                p += 5;
                continue;
            }
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c == 'f' ? '\f' : c;
            fc_rc rc = cfg_buf_add(key, &c, 1);
            if (rc != FC_OK)
                return rc;
            p++;
            continue;
        }
        fc_rc rc = cfg_buf_add(key, in + p, 1);
        if (rc != FC_OK)
            return rc;
        p++;
    }
    p = skip_ws(in, p, end);
    if (p < end && (in[p] == '=' || in[p] == ':'))
        p = skip_ws(in, p + 1, end);
    *vs = p;
    return FC_OK;
}

static char *
props_escape(const char *v, bool is_key)
{
    struct cfg_buf b = {0};
    fc_rc rc = FC_OK;
    for (const char *p = v; *p && rc == FC_OK; p++) {
        if (*p == '\\')
            rc = cfg_buf_adds(&b, "\\\\");
        else if (*p == '\n')
            rc = cfg_buf_adds(&b, "\\n");
        else if (*p == '\r')
            rc = cfg_buf_adds(&b, "\\r");
        else if (*p == '\t')
            rc = cfg_buf_adds(&b, "\\t");
        else if (*p == '\f')
            rc = cfg_buf_adds(&b, "\\f");
        else if ((*p == ' ' && (is_key || p == v)) || (is_key && strchr("=:#!", *p)) ||
                 (!is_key && p == v && strchr("#!", *p)))
            rc = cfg_buf_add(&b, "\\", 1) ?: cfg_buf_add(&b, p, 1);
        else
            rc = cfg_buf_add(&b, p, 1);
    }
    if (rc != FC_OK || !cfg_buf_str(&b)) {
        cfg_buf_free(&b);
        return NULL;
    }
    return b.p;
}

static bool
continues(const char *in, const struct line *l)
{
    size_t n = 0;
    for (size_t p = l->cend; p > l->start && in[p - 1] == '\\'; p--)
        n++;
    return n % 2 == 1;
}

static fc_rc
props_apply(struct kv *k, const struct cfg_rule *r)
{
    const char *in = k->in;
    long last_key = -1, sep_from = -1;
    size_t sep_vs = 0;
    bool found = false;
    fc_rc rc = FC_OK;
    for (size_t i = 0; i < k->nlines && rc == FC_OK; i++) {
        size_t first = i;
        const struct line *l = &k->lines[first];
        size_t p = skip_ws(in, l->start, l->cend);
        if (p == l->cend || in[p] == '#' || in[p] == '!')
            continue; /* a comment line is never continued */
        while (continues(in, &k->lines[i]) && i + 1 < k->nlines)
            i++; /* a logical line: first .. i */
        struct cfg_buf key = {0};
        size_t vs = 0;
        if ((rc = props_key(in, p, l->cend, &key, &vs)) != FC_OK) {
            cfg_buf_free(&key);
            break;
        }
        if (sep_from < 0)
            sep_from = (long)first, sep_vs = vs;
        last_key = (long)i;
        bool match = key.len == strlen(r->key) && memcmp(key.p, r->key, key.len) == 0;
        cfg_buf_free(&key);
        if (!match)
            continue;
        found = true;
        if (r->del) {
            for (size_t j = first; j <= i && rc == FC_OK; j++)
                rc = delete_line(k, j);
            continue;
        }
        rc = add_edit(k, vs, k->lines[i].cend, props_escape(r->value, false));
    }
    if (rc != FC_OK || found || r->del)
        return rc;
    char sep[16] = "=";
    if (sep_from >= 0) {
        const struct line *l = &k->lines[sep_from];
        size_t p = skip_ws(in, l->start, l->cend);
        while (p < sep_vs && !strchr("=: \t\f", in[p]))
            p += in[p] == '\\' ? 2 : 1;
        if (sep_vs - p < sizeof sep && sep_vs > p) {
            memcpy(sep, in + p, sep_vs - p);
            sep[sep_vs - p] = '\0';
        }
    }
    char *ek = props_escape(r->key, true), *ev = props_escape(r->value, false), *line = NULL;
    if (!ek || !ev || asprintf(&line, "%s%s%s", ek, sep, ev) < 0)
        line = NULL;
    free(ek);
    free(ev);
    if (!line)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    rc = insert_after(k, last_key >= 0 ? last_key : (long)k->nlines - 1, line);
    free(line);
    return rc;
}

fc_rc
cfg_kv_apply(const struct cfg_rule *rule, const char *path, const char *in, size_t len,
             struct cfg_buf *out)
{
    struct kv k = {.in = in, .len = len};
    fc_rc rc = split_lines(&k);
    if (rc == FC_OK)
        rc = rule->type == CFG_INI   ? ini_apply(&k, rule)
             : rule->type == CFG_ENV ? env_apply(&k, rule)
                                     : props_apply(&k, rule);
    if (rc == FC_OK)
        rc = finish(&k, out);
    kv_free(&k);
    return rc;
}
