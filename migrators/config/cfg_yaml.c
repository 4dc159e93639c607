/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-config YAML edits: set the scalar at a path (mapping keys, sequence indexes) of the
 * first document. libyaml's event marks locate the scalar's bytes, which are spliced with
 * the new value in the old value's quoting style; every other byte stays as it was. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cfg.h"
#include "fluid/cleanup.h"
#include "fluid/error.h"

struct frame {
    bool map, expect_key, on_path, flow;
    char *key; /* the current key of a mapping (NULL: not a plain scalar key) */
    long idx;  /* the current index of a sequence */
};

struct found {
    size_t count;
    size_t start, end; /* byte span of the scalar */
    yaml_scalar_style_t style;
    char *value;
    const char *problem; /* the node is not a plain replaceable scalar: why */
    /* the parent of the last path component (to add a missing key) */
    bool parent_seen, parent_map, parent_flow, have_col;
    size_t parent_col; /* column of its keys */
    size_t parent_end; /* byte after its last content */
};

/* Byte offset of libyaml's character index (libyaml counts characters of its UTF-8 input). */
static size_t
byte_of(const char *in, size_t len, size_t idx)
{
    size_t p = 0;
    if (len >= 3 && memcmp(in, "\xef\xbb\xbf", 3) == 0)
        p = 3;
    for (size_t c = 0; c < idx && p < len; c++) {
        p++;
        while (p < len && ((unsigned char)in[p] & 0xc0) == 0x80)
            p++;
    }
    return p;
}

/* The node just started at this event: is it the one at path[depth]? */
static bool
component_matches(const struct frame *f, const char *comp)
{
    if (f->map)
        return f->key && strcmp(f->key, comp) == 0;
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", f->idx);
    return strcmp(buf, comp) == 0;
}

static fc_rc
locate(const struct cfg_rule *r, const char *in, size_t len, struct found *fd)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return FC_ERR(FC_E_NOMEM, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)in, len);
    struct frame st[256];
    size_t depth = 0;
    fc_rc rc = FC_OK;
    bool doc_done = false, root_seen = false;
    memset(fd, 0, sizeof *fd);
    while (rc == FC_OK && !doc_done) {
        yaml_event_t e;
        if (!yaml_parser_parse(&p, &e)) {
            rc = FC_ERR(FC_E_INVALID, "%s: not valid YAML (line %zu column %zu: %s)", r->id,
                        p.problem_mark.line + 1, p.problem_mark.column + 1,
                        p.problem ? p.problem : "error");
            break;
        }
        bool node = e.type == YAML_SCALAR_EVENT || e.type == YAML_ALIAS_EVENT ||
                    e.type == YAML_MAPPING_START_EVENT || e.type == YAML_SEQUENCE_START_EVENT;
        bool on = false, is_key = false;
        if (node && depth == 0) {
            on = !root_seen;
            root_seen = true;
        } else if (node) {
            struct frame *f = &st[depth - 1];
            is_key = f->map && f->expect_key;
            on = !is_key && f->on_path && depth - 1 < r->npath &&
                 component_matches(f, r->path[depth - 1]);
        }
        bool target = on && depth == r->npath;
        if (target) {
            fd->count++;
            if (e.type == YAML_SCALAR_EVENT) {
                fd->start = byte_of(in, len, e.start_mark.index);
                fd->end = byte_of(in, len, e.end_mark.index);
                fd->style = e.data.scalar.style;
                free(fd->value);
                fd->value = strndup((const char *)e.data.scalar.value, e.data.scalar.length);
                fd->problem = e.data.scalar.anchor ? "has an anchor"
                              : e.data.scalar.tag  ? "has an explicit tag"
                                                   : NULL;
            } else {
                fd->problem =
                    e.type == YAML_ALIAS_EVENT ? "is an alias" : "is a mapping or sequence";
            }
        }
        if (depth >= r->npath && st[r->npath - 1].on_path) { /* inside the parent */
            bool content =
                node || ((e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT) &&
                         depth - 1 >= r->npath && st[depth - 1].flow);
            size_t eb = byte_of(in, len, e.end_mark.index);
            if (content && eb > fd->parent_end)
                fd->parent_end = eb; /* a block collection's end is at the next token */
            if (depth == r->npath && is_key && !fd->have_col) {
                fd->parent_col = e.start_mark.column;
                fd->have_col = true;
            }
        }
        if (e.type == YAML_SCALAR_EVENT && is_key) {
            struct frame *f = &st[depth - 1];
            free(f->key);
            f->key = strndup((const char *)e.data.scalar.value, e.data.scalar.length);
        } else if (node && is_key) {
            free(st[depth - 1].key);
            st[depth - 1].key = NULL;
        }
        if (e.type == YAML_MAPPING_START_EVENT || e.type == YAML_SEQUENCE_START_EVENT) {
            if (depth == sizeof st / sizeof *st) {
                rc = FC_ERR(FC_E_UNSUPPORTED, "%s: YAML nested deeper than %zu levels", r->id,
                            depth);
            } else {
                bool map = e.type == YAML_MAPPING_START_EVENT;
                bool flow = map ? e.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE
                                : e.data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
                st[depth++] = (struct frame){map, true, on && !target, flow, NULL, 0};
                if (on && !target && depth == r->npath) {
                    fd->parent_seen = true;
                    fd->parent_map = map;
                    fd->parent_flow = flow;
                }
                node = false; /* the parent advances when the container ends */
            }
        } else if (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT) {
            free(st[--depth].key);
            node = depth > 0;
        } else if (e.type == YAML_DOCUMENT_END_EVENT || e.type == YAML_STREAM_END_EVENT) {
            doc_done = true;
        }
        if (node && depth > 0) { /* the parent moves on: key <-> value, or the next index */
            struct frame *f = &st[depth - 1];
            if (f->map)
                f->expect_key = !f->expect_key;
            else
                f->idx++;
        }
        yaml_event_delete(&e);
    }
    while (depth > 0)
        free(st[--depth].key);
    yaml_parser_delete(&p);
    return rc;
}

/* Whether a plain scalar s would resolve to a number or timestamp (YAML 1.1 or 1.2). */
static bool
looks_typed(const char *s)
{
    static const char pat[] =
        "^(?:[-+]?(?:0x[0-9a-fA-F_]+|0o?[0-7_]+|0b[01_]+|[0-9][0-9_]*(?:\\.[0-9_]*)?"
        "(?:[eE][-+]?[0-9]+)?|\\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*(?::[0-5]?[0-9])+"
        "(?:\\.[0-9_]*)?|\\.(?:inf|Inf|INF))|\\.(?:nan|NaN|NAN)|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
        "(?:[Tt ].*)?)$";
    int err;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, 0, &err, &eoff, NULL);
    pcre2_match_data *md = re ? pcre2_match_data_create_from_pattern(re, NULL) : NULL;
    bool typed = !md || pcre2_match(re, (PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) >= 0;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return typed;
}

/* Whether a string can be written as a plain scalar and read back as the same string. */
static bool
plain_ok(const char *s)
{
    static const char *const reserved[] = {"null",  "Null",  "NULL",  "~",   "true", "True", "TRUE",
                                           "false", "False", "FALSE", "yes", "Yes",  "YES",  "no",
                                           "No",    "NO",    "on",    "On",  "ON",   "off",  "Off",
                                           "OFF",   "y",     "Y",     "n",   "N",    NULL};
    size_t n = strlen(s);
    if (n == 0 || strchr("-?:,[]{}#&*!|>'\"%@` \t", s[0]) || s[n - 1] == ' ' || s[n - 1] == ':')
        return false;
    for (const char *const *r = reserved; *r; r++)
        if (strcmp(s, *r) == 0)
            return false;
    if (looks_typed(s))
        return false; /* would read back as a number, a timestamp or a special float */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f || strchr(",[]{}", *p) ||
            (*p == ':' && (p[1] == ' ' || p[1] == '\0')) || (*p == '#' && p[-1] == ' '))
            return false;
    return true;
}

static char *
render(json_t *v, yaml_scalar_style_t old)
{
    if (!json_is_string(v))
        return json_is_null(v) ? strdup("null") : json_dumps(v, JSON_ENCODE_ANY);
    const char *s = json_string_value(v);
    bool ctrl = false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        ctrl = ctrl || *p < 0x20 || *p == 0x7f;
    struct cfg_buf b = {0};
    fc_rc rc = FC_OK;
    if (old == YAML_PLAIN_SCALAR_STYLE && plain_ok(s)) {
        rc = cfg_buf_adds(&b, s);
    } else if (!ctrl && old != YAML_DOUBLE_QUOTED_SCALAR_STYLE) {
        rc = cfg_buf_add(&b, "'", 1);
        for (const char *p = s; *p && rc == FC_OK; p++)
            rc = *p == '\'' ? cfg_buf_adds(&b, "''") : cfg_buf_add(&b, p, 1);
        if (rc == FC_OK)
            rc = cfg_buf_add(&b, "'", 1);
    } else {
        rc = cfg_buf_add(&b, "\"", 1);
        for (const unsigned char *p = (const unsigned char *)s; *p && rc == FC_OK; p++) {
            if (*p == '"' || *p == '\\')
                rc = cfg_buf_addf(&b, "\\%c", *p);
            else if (*p == '\n')
                rc = cfg_buf_adds(&b, "\\n");
            else if (*p == '\t')
                rc = cfg_buf_adds(&b, "\\t");
            else if (*p == '\r')
                rc = cfg_buf_adds(&b, "\\r");
            else if (*p < 0x20 || *p == 0x7f)
                rc = cfg_buf_addf(&b, "\\x%02x", *p);
            else
                rc = cfg_buf_add(&b, p, 1);
        }
        if (rc == FC_OK)
            rc = cfg_buf_add(&b, "\"", 1);
    }
    if (rc != FC_OK || !cfg_buf_str(&b)) {
        cfg_buf_free(&b);
        return NULL;
    }
    return b.p;
}

static void
path_str(const struct cfg_rule *r, char *buf, size_t n)
{
    size_t w = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < r->npath && w < n; i++)
        w += (size_t)snprintf(buf + w, n - w, "%s%s", i ? "." : "", r->path[i]);
}

/* The text that adds the missing last key of the path to its (block mapping) parent, and
 * where: after the line of the parent's last content, at the column of its keys. */
static fc_rc
add_key(const struct cfg_rule *r, const char *ps, const char *in, size_t len,
        const struct found *fd, size_t *at, char **text)
{
    if (!fd->parent_seen)
        return FC_ERR(FC_E_NOTFOUND,
                      "%s: path %s not found: its parent does not exist (only "
                      "the last key of a path can be added)",
                      r->id, ps);
    if (!fd->parent_map || fd->parent_flow || !fd->have_col)
        return FC_ERR(FC_E_UNSUPPORTED,
                      "%s: path %s not found, and its parent is %s: a key can "
                      "only be added to a block mapping",
                      r->id, ps, !fd->parent_map ? "a sequence" : "a flow mapping");
    const char *eol = cfg_eol_of(in, len);
    json_t *k = json_string(r->path[r->npath - 1]);
    FC_AUTOFREE char *key = k ? render(k, YAML_PLAIN_SCALAR_STYLE) : NULL;
    json_decref(k);
    FC_AUTOFREE char *val = render(r->yvalue, YAML_PLAIN_SCALAR_STYLE);
    if (!key || !val)
        return FC_ERR(FC_E_INVALID, "%s: the key or value is not valid UTF-8", r->id);
    size_t p = fd->parent_end;
    const char *lead = "", *tail = eol;
    if (!(p > 0 && in[p - 1] == '\n')) {
        const char *nl = memchr(in + p, '\n', len - p);
        if (nl) {
            p = (size_t)(nl - in) + 1;
        } else { /* the last line has no newline: keep it so */
            p = len;
            lead = eol;
            tail = "";
        }
    }
    *at = p;
    if (asprintf(text, "%s%*s%s: %s%s", lead, (int)fd->parent_col, "", key, val, tail) < 0)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    return FC_OK;
}

fc_rc
cfg_yaml_apply(const struct cfg_rule *rule, const char *path, const char *in, size_t len,
               struct cfg_buf *out)
{
    struct found fd;
    char ps[512];
    path_str(rule, ps, sizeof ps);
    fc_rc rc = locate(rule, in, len, &fd);
    if (rc == FC_OK && fd.count > 1)
        rc = FC_ERR(FC_E_INVALID, "%s: path %s is found %zu times (duplicate keys)", rule->id, ps,
                    fd.count);
    else if (rc == FC_OK && fd.count == 1 && fd.problem)
        rc = FC_ERR(FC_E_UNSUPPORTED, "%s: the node at path %s %s: only a scalar can be set",
                    rule->id, ps, fd.problem);
    if (rc != FC_OK) {
        free(fd.value);
        return rc;
    }
    const char *s = json_string_value(rule->yvalue);
    FC_AUTOFREE char *text = NULL;
    size_t start = out->len;
    if (fd.count == 0) { /* a new key */
        size_t at = 0;
        if ((rc = add_key(rule, ps, in, len, &fd, &at, &text)) != FC_OK)
            return rc;
        rc = cfg_buf_add(out, in, at) ?: cfg_buf_adds(out, text) ?:
             cfg_buf_add(out, in + at, len - at);
        free(text);
        text = render(rule->yvalue, YAML_PLAIN_SCALAR_STYLE);
    } else {
        text = render(rule->yvalue, fd.style);
        bool same =
            text &&
            (s ? strcmp(fd.value, s) == 0 && (fd.style != YAML_PLAIN_SCALAR_STYLE || plain_ok(s))
               : (fd.style == YAML_PLAIN_SCALAR_STYLE && strcmp(fd.value, text) == 0));
        free(fd.value);
        if (!text)
            return FC_ERR(FC_E_NOMEM, "out of memory");
        if (same)
            return cfg_buf_add(out, in, len);
        bool block = fd.style == YAML_LITERAL_SCALAR_STYLE || fd.style == YAML_FOLDED_SCALAR_STYLE;
        rc = cfg_buf_add(out, in, fd.start) ?: cfg_buf_adds(out, text);
        if (rc == FC_OK && block && fd.end > fd.start && in[fd.end - 1] == '\n')
            rc = cfg_buf_adds(out, cfg_eol_of(in, len)); /* the block took its line ending */
        if (rc == FC_OK)
            rc = cfg_buf_add(out, in + fd.end, len - fd.end);
    }
    if (rc != FC_OK)
        return rc;
    if (!text)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    /* check: the result parses and holds the new value at the path, once */
    struct found chk;
    rc = locate(rule, out->p + start, out->len - start, &chk);
    bool ok = rc == FC_OK && chk.count == 1 && !chk.problem && chk.value &&
              strcmp(chk.value, s ? s : text) == 0;
    free(chk.value);
    if (!ok)
        return FC_ERR(FC_E_INTERNAL, "%s: setting path %s would not read back as the new value",
                      rule->id, ps);
    return FC_OK;
}
