/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-config rule sets: parses the rules JSON (docs/config.md,
 * proto/schema/rules.schema.json), checks every field strictly, expands variables and
 * compiles regular expressions and replacement templates. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "fluid/cleanup.h"
#include "fluid/error.h"

#define RULES_SCHEMA "fluid.config-rules/1"

static const char *const type_names[] = {
    [CFG_REGEX] = "regex",      [CFG_REQUIRE] = "require", [CFG_INI] = "ini",   [CFG_ENV] = "env",
    [CFG_PROPS] = "properties", [CFG_JSON] = "json",       [CFG_YAML] = "yaml",
};

/* The fields each object accepts: also what the man page and docs/config.md must name. */
static const char *const k_regex[] = {"type",  "name",   "pattern", "replace",
                                      "flags", "anchor", "count",   NULL};
static const char *const k_require[] = {"type", "name", "pattern", "flags", "anchor", NULL};
static const char *const k_ini[] = {"type", "name", "section", "key", "set", "delete", NULL};
static const char *const k_kv[] = {"type", "name", "key", "set", "delete", NULL};
static const char *const k_json[] = {"type", "name", "pointer", "set", "delete", NULL};
static const char *const k_yaml[] = {"type", "name", "path", "set", NULL};
static const char *const *const keys[] = {
    [CFG_REGEX] = k_regex, [CFG_REQUIRE] = k_require, [CFG_INI] = k_ini,   [CFG_ENV] = k_kv,
    [CFG_PROPS] = k_kv,    [CFG_JSON] = k_json,       [CFG_YAML] = k_yaml,
};
static const char *const k_top[] = {"schema", "roots", "limits", "files", NULL};
static const char *const k_lim[] = {"max_file_bytes", "match_limit", "heap_limit_kib",
                                    "max_matches", NULL};
static const char *const k_set[] = {"glob", "required", "rules", NULL};

/* Fails on a key of obj that is not in the NULL-ended list allowed. */
static fc_rc
check_keys(json_t *obj, const char *where, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            ok = ok || strcmp(*a, k) == 0;
        if (!ok)
            return FC_ERR(FC_E_INVALID, "%s: unknown field \"%s\"", where, k);
    }
    return FC_OK;
}

/* An optional string field, expanded. *out stays NULL when absent. */
static fc_rc
get_str(json_t *obj, const char *key, bool required, enum cfg_expand_mode mode,
        const struct cfg_vars *vars, const char *where, char **out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return FC_ERR(FC_E_INVALID, "%s: missing field \"%s\"", where, key);
        return FC_OK;
    }
    if (!json_is_string(v))
        return FC_ERR(FC_E_INVALID, "%s: field \"%s\" must be a string", where, key);
    char w[512];
    snprintf(w, sizeof w, "%s field \"%s\"", where, key);
    return cfg_expand(vars, json_string_value(v), mode, w, out);
}

static fc_rc
get_u64(json_t *obj, const char *key, const char *where, uint64_t min, uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return FC_OK;
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min)
        return FC_ERR(FC_E_INVALID, "%s: field \"%s\" must be an integer >= %llu", where, key,
                      (unsigned long long)min);
    *out = (uint64_t)json_integer_value(v);
    return FC_OK;
}

/* Expands variables in every string of a JSON value (a new reference in *out). */
static fc_rc
expand_json(json_t *in, const struct cfg_vars *vars, const char *where, json_t **out)
{
    if (json_is_string(in)) {
        char *s = NULL;
        fc_rc rc = cfg_expand(vars, json_string_value(in), CFG_X_TEXT, where, &s);
        if (rc != FC_OK)
            return rc;
        *out = json_string(s);
        free(s);
        return *out ? FC_OK : FC_ERR(FC_E_INVALID, "%s: value is not valid UTF-8", where);
    }
    if (json_is_array(in)) {
        json_t *a = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(in, i, v)
        {
            json_t *e = NULL;
            fc_rc rc = expand_json(v, vars, where, &e);
            if (rc != FC_OK) {
                json_decref(a);
                return rc;
            }
            json_array_append_new(a, e);
        }
        *out = a;
        return FC_OK;
    }
    if (json_is_object(in)) {
        json_t *o = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(in, k, v)
        {
            json_t *e = NULL;
            fc_rc rc = expand_json(v, vars, where, &e);
            if (rc != FC_OK) {
                json_decref(o);
                return rc;
            }
            json_object_set_new(o, k, e);
        }
        *out = o;
        return FC_OK;
    }
    *out = json_incref(in);
    return FC_OK;
}

static fc_rc
tpl_push(struct cfg_rule *r, size_t *cap, struct cfg_tpl_part part)
{
    if (r->ntpl == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        struct cfg_tpl_part *t = realloc(r->tpl, *cap * sizeof *t);
        if (!t)
            return FC_ERR(FC_E_NOMEM, "out of memory");
        r->tpl = t;
    }
    r->tpl[r->ntpl++] = part;
    return FC_OK;
}

/* Compiles a template: literal bytes, \0..\99, \g{N} or \g{name}, \\ for a backslash.
 * Literal parts point into a copy without the escapes, kept as tpl_src. */
static fc_rc
compile_template(struct cfg_rule *r)
{
    uint32_t ncap = 0;
    pcre2_pattern_info(r->re, PCRE2_INFO_CAPTURECOUNT, &ncap);
    const char *s = r->tpl_src;
    size_t n = strlen(s), cap = 0, lpos = 0, lstart = 0, i = 0;
    char *lit = malloc(n + 1);
    if (!lit)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    fc_rc rc = FC_OK;
    while (i < n && rc == FC_OK) {
        if (s[i] != '\\') {
            lit[lpos++] = s[i++];
            continue;
        }
        char c = s[i + 1];
        if (c == '\\') {
            lit[lpos++] = '\\';
            i += 2;
            continue;
        }
        uint32_t g = 0;
        if (isdigit((unsigned char)c)) {
            g = (uint32_t)(c - '0');
            i += 2;
            if (isdigit((unsigned char)s[i]) && g * 10 + (uint32_t)(s[i] - '0') <= ncap)
                g = g * 10 + (uint32_t)(s[i++] - '0');
        } else if (c == 'g' && s[i + 2] == '{') {
            const char *end = strchr(s + i + 3, '}');
            if (!end) {
                rc = FC_ERR(FC_E_INVALID, "%s: replace: unterminated \\g{ at offset %zu", r->id, i);
                break;
            }
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(end - s - i - 3), s + i + 3);
            char *e2;
            unsigned long num = strtoul(name, &e2, 10);
            int gi = (*name && !*e2 && isdigit((unsigned char)*name))
                         ? (int)(num > 65535 ? 65535 : num)
                         : pcre2_substring_number_from_name(r->re, (PCRE2_SPTR)name);
            if (gi < 0) {
                rc =
                    FC_ERR(FC_E_INVALID, "%s: replace: no capture group named \"%s\"", r->id, name);
                break;
            }
            g = (uint32_t)gi;
            i = (size_t)(end - s) + 1;
        } else {
            rc = FC_ERR(FC_E_INVALID,
                        "%s: replace: unknown escape \\%c at offset %zu (use "
                        "\\1, \\g{name} or \\\\)",
                        r->id, c ? c : ' ', i);
            break;
        }
        if (g > ncap) {
            rc = FC_ERR(FC_E_INVALID,
                        "%s: replace: group %u but the pattern has %u capture "
                        "group(s)",
                        r->id, g, ncap);
            break;
        }
        if (lpos > lstart)
            rc = tpl_push(r, &cap, (struct cfg_tpl_part){lit + lstart, lpos - lstart, 0});
        if (rc == FC_OK)
            rc = tpl_push(r, &cap, (struct cfg_tpl_part){NULL, 0, g});
        lstart = lpos;
    }
    if (rc == FC_OK && lpos > lstart)
        rc = tpl_push(r, &cap, (struct cfg_tpl_part){lit + lstart, lpos - lstart, 0});
    lit[lpos] = '\0';
    free(r->tpl_src);
    r->tpl_src = lit;
    return rc;
}

static fc_rc
compile_regex(struct cfg_rule *r, json_t *o, const struct cfg_vars *vars)
{
    FC_AUTOFREE char *pat = NULL;
    fc_rc rc = get_str(o, "pattern", true, CFG_X_REGEX, vars, r->id, &pat);
    if (rc != FC_OK)
        return rc;
    uint32_t opts = 0;
    json_t *f = json_object_get(o, "flags");
    if (f && !json_is_string(f))
        return FC_ERR(FC_E_INVALID, "%s: field \"flags\" must be a string of i, m, s, x", r->id);
    for (const char *p = f ? json_string_value(f) : ""; *p; p++) {
        switch (*p) {
        case 'i':
            opts |= PCRE2_CASELESS;
            break;
        case 'm':
            opts |= PCRE2_MULTILINE;
            break;
        case 's':
            opts |= PCRE2_DOTALL;
            break;
        case 'x':
            opts |= PCRE2_EXTENDED;
            break;
        default:
            return FC_ERR(FC_E_INVALID, "%s: unknown flag '%c' (expected i, m, s, x)", r->id, *p);
        }
    }
    json_t *a = json_object_get(o, "anchor");
    const char *anchor = a && json_is_string(a) ? json_string_value(a) : a ? "?" : "none";
    FC_AUTOFREE char *full = NULL;
    if (strcmp(anchor, "line") == 0) {
        opts |= PCRE2_MULTILINE;
        if (asprintf(&full, "^(?:%s)$", pat) < 0)
            return FC_ERR(FC_E_NOMEM, "out of memory");
    } else if (strcmp(anchor, "none") == 0) {
        full = FC_STEAL(&pat);
    } else {
        return FC_ERR(FC_E_INVALID, "%s: field \"anchor\" must be \"line\" or \"none\"", r->id);
    }
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (!cc)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    pcre2_set_newline(cc, PCRE2_NEWLINE_ANYCRLF);
    pcre2_set_max_pattern_length(cc, 65536);
    int err = 0;
    PCRE2_SIZE eoff = 0;
    r->re =
        pcre2_compile((PCRE2_SPTR)full, PCRE2_ZERO_TERMINATED, opts | PCRE2_UTF, &err, &eoff, cc);
    if (r->re) {
        /* For files that are not valid UTF-8: bytes, or (when the pattern needs UTF) PCRE2's
         * invalid-UTF mode, which is slower (it scans the subject at every match). */
        int e2;
        PCRE2_SIZE o2;
        r->re_bytes = pcre2_compile((PCRE2_SPTR)full, PCRE2_ZERO_TERMINATED, opts, &e2, &o2, cc);
        if (!r->re_bytes)
            r->re_bytes = pcre2_compile((PCRE2_SPTR)full, PCRE2_ZERO_TERMINATED,
                                        opts | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &e2, &o2, cc);
    }
    pcre2_compile_context_free(cc);
    if (!r->re || !r->re_bytes) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return FC_ERR(FC_E_INVALID, "%s: invalid regular expression at offset %zu: %s", r->id,
                      (size_t)eoff,
                      r->re ? "cannot compile it for non-UTF-8 files" : (const char *)msg);
    }
    return FC_OK;
}

static fc_rc
parse_yaml_path(struct cfg_rule *r, json_t *o, const struct cfg_vars *vars)
{
    json_t *p = json_object_get(o, "path");
    json_t *arr = NULL;
    if (json_is_string(p)) {
        FC_AUTOFREE char *s = NULL;
        char w[300];
        snprintf(w, sizeof w, "%s field \"path\"", r->id);
        fc_rc rc = cfg_expand(vars, json_string_value(p), CFG_X_TEXT, w, &s);
        if (rc != FC_OK)
            return rc;
        arr = json_array();
        for (char *save = NULL, *t = strtok_r(s, ".", &save); t; t = strtok_r(NULL, ".", &save))
            json_array_append_new(arr, json_string(t));
    } else if (json_is_array(p)) {
        arr = json_incref(p);
    } else {
        return FC_ERR(FC_E_INVALID, "%s: field \"path\" must be a dotted string or an array",
                      r->id);
    }
    r->npath = json_array_size(arr);
    r->path = calloc(r->npath + 1, sizeof *r->path);
    fc_rc rc = r->path ? FC_OK : FC_ERR(FC_E_NOMEM, "out of memory");
    for (size_t i = 0; i < r->npath && rc == FC_OK; i++) {
        json_t *e = json_array_get(arr, i);
        if (json_is_integer(e) && json_integer_value(e) >= 0) {
            if (asprintf(&r->path[i], "%lld", (long long)json_integer_value(e)) < 0)
                rc = FC_ERR(FC_E_NOMEM, "out of memory");
        } else if (json_is_string(e)) {
            char w[300];
            snprintf(w, sizeof w, "%s field \"path\"", r->id);
            rc = cfg_expand(vars, json_string_value(e), CFG_X_TEXT, w, &r->path[i]);
        } else {
            rc = FC_ERR(FC_E_INVALID, "%s: path[%zu] must be a string or an index", r->id, i);
        }
    }
    json_decref(arr);
    if (rc == FC_OK && r->npath == 0)
        rc = FC_ERR(FC_E_INVALID, "%s: field \"path\" is empty", r->id);
    return rc;
}

static fc_rc
parse_rule(struct cfg_rule *r, json_t *o, const char *where, const struct cfg_vars *vars)
{
    if (!json_is_object(o))
        return FC_ERR(FC_E_INVALID, "%s: a rule must be an object", where);
    json_t *t = json_object_get(o, "type");
    if (!json_is_string(t))
        return FC_ERR(FC_E_INVALID, "%s: missing string field \"type\"", where);
    const char *tn = json_string_value(t);
    int type = -1;
    for (int i = 0; i < (int)(sizeof type_names / sizeof *type_names); i++)
        if (strcmp(type_names[i], tn) == 0)
            type = i;
    if (type < 0)
        return FC_ERR(FC_E_INVALID,
                      "%s: unknown rule type \"%s\" (expected regex, require, "
                      "ini, env, properties, json or yaml)",
                      where, tn);
    r->type = (enum cfg_rule_type)type;
    json_t *name = json_object_get(o, "name");
    if (name && !json_is_string(name))
        return FC_ERR(FC_E_INVALID, "%s: field \"name\" must be a string", where);
    if (asprintf(&r->id, "%s (%s%s%s)", where, name ? "\"" : "",
                 name ? json_string_value(name) : tn, name ? "\"" : "") < 0)
        return FC_ERR(FC_E_NOMEM, "out of memory");

    fc_rc rc = check_keys(o, r->id, keys[r->type]);
    if (rc != FC_OK)
        return rc;

    json_t *del = json_object_get(o, "delete");
    if (del && !json_is_true(del))
        return FC_ERR(FC_E_INVALID, "%s: field \"delete\" can only be true", r->id);
    json_t *set = json_object_get(o, "set");

    switch (r->type) {
    case CFG_REGEX:
    case CFG_REQUIRE:
        if ((rc = compile_regex(r, o, vars)) != FC_OK)
            return rc;
        if (r->type == CFG_REQUIRE)
            return FC_OK;
        if ((rc = get_u64(o, "count", r->id, 1, &r->count)) != FC_OK)
            return rc;
        if ((rc = get_str(o, "replace", true, CFG_X_TEMPLATE, vars, r->id, &r->tpl_src)) != FC_OK)
            return rc;
        return compile_template(r);
    case CFG_INI:
        if ((rc = get_str(o, "section", false, CFG_X_TEXT, vars, r->id, &r->section)) != FC_OK)
            return rc;
        /* fall through */
    case CFG_ENV:
    case CFG_PROPS:
        if ((rc = get_str(o, "key", true, CFG_X_TEXT, vars, r->id, &r->key)) != FC_OK)
            return rc;
        if (!*r->key || strpbrk(r->key, "\r\n"))
            return FC_ERR(FC_E_INVALID, "%s: field \"key\" must be a non-empty single line", r->id);
        if (r->section && strpbrk(r->section, "\r\n]"))
            return FC_ERR(FC_E_INVALID, "%s: field \"section\" must be one line without ']'",
                          r->id);
        if (!!set == !!del)
            return FC_ERR(FC_E_INVALID, "%s: exactly one of \"set\" or \"delete\"", r->id);
        r->del = del != NULL;
        if (set && !json_is_string(set))
            return FC_ERR(FC_E_INVALID, "%s: field \"set\" must be a string", r->id);
        if (set && (rc = get_str(o, "set", true, CFG_X_TEXT, vars, r->id, &r->value)) != FC_OK)
            return rc;
        if (set && r->type == CFG_INI && strpbrk(r->value, "\r\n"))
            return FC_ERR(FC_E_INVALID, "%s: an ini value cannot span lines", r->id);
        return FC_OK;
    case CFG_JSON:
        if ((rc = get_str(o, "pointer", true, CFG_X_TEXT, vars, r->id, &r->pointer)) != FC_OK)
            return rc;
        if (r->pointer[0] != '/' && r->pointer[0] != '\0')
            return FC_ERR(FC_E_INVALID, "%s: a JSON pointer starts with '/' (RFC 6901)", r->id);
        if (!!set == !!del)
            return FC_ERR(FC_E_INVALID, "%s: exactly one of \"set\" or \"delete\"", r->id);
        r->del = del != NULL;
        if (r->del && r->pointer[0] == '\0')
            return FC_ERR(FC_E_INVALID, "%s: cannot delete the whole document", r->id);
        if (set) {
            char w[300];
            snprintf(w, sizeof w, "%s field \"set\"", r->id);
            return expand_json(set, vars, w, &r->jvalue);
        }
        return FC_OK;
    case CFG_YAML:
        if ((rc = parse_yaml_path(r, o, vars)) != FC_OK)
            return rc;
        if (!set || json_is_object(set) || json_is_array(set))
            return FC_ERR(FC_E_INVALID,
                          "%s: field \"set\" must be a scalar (string, number, "
                          "boolean or null)",
                          r->id);
        return expand_json(set, vars, r->id, &r->yvalue);
    }
    return FC_ERR(FC_E_INTERNAL, "%s: unhandled rule type", r->id);
}

fc_rc
cfg_rules_parse(struct cfg_rules *r, const char *text, size_t len, const struct cfg_vars *vars)
{
    memset(r, 0, sizeof *r);
    r->limits = (struct cfg_limits){CFG_MAX_FILE_BYTES, CFG_MATCH_LIMIT, CFG_HEAP_LIMIT_KIB,
                                    CFG_MAX_MATCHES};
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        return FC_ERR(FC_E_INVALID, "rules: line %d column %d: %s", je.line, je.column, je.text);
    fc_rc rc = FC_OK;
    json_t *schema, *roots, *lim, *files;
    if (!json_is_object(doc)) {
        rc = FC_ERR(FC_E_INVALID, "rules: the document must be a JSON object");
        goto out;
    }
    if ((rc = check_keys(doc, "rules", k_top)) != FC_OK)
        goto out;
    schema = json_object_get(doc, "schema");
    if (schema &&
        !(json_is_string(schema) && strcmp(json_string_value(schema), RULES_SCHEMA) == 0)) {
        rc = FC_ERR(FC_E_INVALID, "rules: field \"schema\" must be \"" RULES_SCHEMA "\"");
        goto out;
    }
    roots = json_object_get(doc, "roots");
    if (!json_is_array(roots) || json_array_size(roots) == 0) {
        rc = FC_ERR(FC_E_INVALID, "rules: field \"roots\" must be a non-empty array of "
                                  "absolute paths");
        goto out;
    }
    r->roots = calloc(json_array_size(roots), sizeof *r->roots);
    for (size_t i = 0; r->roots && i < json_array_size(roots) && rc == FC_OK; i++) {
        json_t *e = json_array_get(roots, i);
        char w[64];
        snprintf(w, sizeof w, "rules: roots[%zu]", i);
        FC_AUTOFREE char *s = NULL;
        if (!json_is_string(e))
            rc = FC_ERR(FC_E_INVALID, "%s: must be a string", w);
        else if ((rc = cfg_expand(vars, json_string_value(e), CFG_X_TEXT, w, &s)) == FC_OK &&
                 (rc = cfg_path_normalise(s, w, &r->roots[i])) == FC_OK)
            r->nroots++;
    }
    if (rc != FC_OK)
        goto out;
    lim = json_object_get(doc, "limits");
    if (lim && !json_is_object(lim)) {
        rc = FC_ERR(FC_E_INVALID, "rules: field \"limits\" must be an object");
        goto out;
    }
    if (lim &&
        ((rc = check_keys(lim, "rules: limits", k_lim)) != FC_OK ||
         (rc = get_u64(lim, "max_file_bytes", "rules: limits", 1, &r->limits.max_file_bytes)) !=
             FC_OK ||
         (rc = get_u64(lim, "match_limit", "rules: limits", 1, &r->limits.match_limit)) != FC_OK ||
         (rc = get_u64(lim, "heap_limit_kib", "rules: limits", 1, &r->limits.heap_limit_kib)) !=
             FC_OK ||
         (rc = get_u64(lim, "max_matches", "rules: limits", 1, &r->limits.max_matches)) != FC_OK))
        goto out;
    files = json_object_get(doc, "files");
    if (!json_is_array(files) || json_array_size(files) == 0) {
        rc = FC_ERR(FC_E_INVALID, "rules: field \"files\" must be a non-empty array");
        goto out;
    }
    r->sets = calloc(json_array_size(files), sizeof *r->sets);
    if (!r->sets || !r->roots) {
        rc = FC_ERR(FC_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(files) && rc == FC_OK; i++) {
        json_t *fo = json_array_get(files, i);
        struct cfg_fileset *fs = &r->sets[r->nsets++];
        char w[64];
        snprintf(w, sizeof w, "files[%zu]", i);
        if (!json_is_object(fo)) {
            rc = FC_ERR(FC_E_INVALID, "%s: must be an object", w);
            break;
        }
        if ((rc = check_keys(fo, w, k_set)) != FC_OK ||
            (rc = get_str(fo, "glob", true, CFG_X_TEXT, vars, w, &fs->glob)) != FC_OK)
            break;
        if (strstr(fs->glob, "..")) {
            rc = FC_ERR(FC_E_INVALID, "%s: \"..\" is not allowed in a glob", w);
            break;
        }
        json_t *req = json_object_get(fo, "required");
        if (req && !json_is_boolean(req)) {
            rc = FC_ERR(FC_E_INVALID, "%s: field \"required\" must be a boolean", w);
            break;
        }
        fs->required = json_is_true(req);
        json_t *rules = json_object_get(fo, "rules");
        if (!json_is_array(rules) || json_array_size(rules) == 0) {
            rc = FC_ERR(FC_E_INVALID, "%s: field \"rules\" must be a non-empty array", w);
            break;
        }
        fs->rules = calloc(json_array_size(rules), sizeof *fs->rules);
        if (!fs->rules) {
            rc = FC_ERR(FC_E_NOMEM, "out of memory");
            break;
        }
        for (size_t j = 0; j < json_array_size(rules) && rc == FC_OK; j++) {
            char rw[96];
            snprintf(rw, sizeof rw, "files[%zu].rules[%zu]", i, j);
            fs->nrules++;
            rc = parse_rule(&fs->rules[j], json_array_get(rules, j), rw, vars);
        }
    }
out:
    json_decref(doc);
    if (rc != FC_OK)
        cfg_rules_free(r);
    return rc;
}

fc_rc
cfg_rules_load(struct cfg_rules *r, const char *path, const struct cfg_vars *vars)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return FC_ERRNO(FC_E_IO, "--rules %s", path);
    struct cfg_buf b = {0};
    char chunk[65536];
    size_t n;
    fc_rc rc = FC_OK;
    while (rc == FC_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        rc = cfg_buf_add(&b, chunk, n);
        if (b.len > (4u << 20))
            rc = FC_ERR(FC_E_INVALID, "--rules %s: larger than 4 MiB", path);
    }
    if (rc == FC_OK && ferror(f))
        rc = FC_ERRNO(FC_E_IO, "--rules %s: read", path);
    fclose(f);
    if (rc == FC_OK) {
        rc = cfg_rules_parse(r, b.p ? b.p : "", b.len, vars);
        if (rc != FC_OK)
            fc_error_prefix("--rules %s", path);
    }
    cfg_buf_free(&b);
    return rc;
}

static void
rule_free(struct cfg_rule *r)
{
    free(r->id);
    pcre2_code_free(r->re);
    pcre2_code_free(r->re_bytes);
    free(r->tpl_src);
    free(r->tpl);
    free(r->section);
    free(r->key);
    free(r->value);
    free(r->pointer);
    json_decref(r->jvalue);
    for (size_t i = 0; r->path && i < r->npath; i++)
        free(r->path[i]);
    free(r->path);
    json_decref(r->yvalue);
}

void
cfg_rules_free(struct cfg_rules *r)
{
    for (size_t i = 0; i < r->nroots; i++)
        free(r->roots[i]);
    free(r->roots);
    for (size_t i = 0; i < r->nsets; i++) {
        for (size_t j = 0; j < r->sets[i].nrules; j++)
            rule_free(&r->sets[i].rules[j]);
        free(r->sets[i].rules);
        free(r->sets[i].glob);
    }
    free(r->sets);
    memset(r, 0, sizeof *r);
}

const char *
cfg_rule_type_name(enum cfg_rule_type t)
{
    return (unsigned)t < sizeof type_names / sizeof *type_names ? type_names[t] : NULL;
}

const char *const *
cfg_rule_fields(int which)
{
    if (which >= 0 && which < (int)(sizeof keys / sizeof *keys))
        return keys[which];
    return which == -1 ? k_top : which == -2 ? k_lim : which == -3 ? k_set : NULL;
}
