/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-config's documentation stays true to the code: every rule set and rule shown in
 * docs/config.md parses (with the doc's variables), and every rule type, field and command
 * line option is named in the man page and in docs/config.md. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "cfg.h"
#include "fluid/error.h"
#include "fluid/spawn.h"

static char *
slurp(const char *rel)
{
    const char *src = getenv("FLUID_SOURCE_DIR");
    cr_assert_not_null(src, "FLUID_SOURCE_DIR is not set (run through ctest)");
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", src, rel);
    FILE *f = fopen(p, "rb");
    cr_assert_not_null(f, "%s: cannot open", p);
    static char buf[1 << 18];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

Test(doc, examples_parse)
{
    char *doc = slurp("docs/config.md");
    json_t *blocks = json_array();
    for (char *p = doc; (p = strstr(p, "```json\n"));) {
        p += 8;
        char *end = strstr(p, "```");
        cr_assert_not_null(end);
        json_error_t je;
        json_t *j = json_loadb(p, (size_t)(end - p), 0, &je);
        cr_assert_not_null(j, "docs/config.md: a json block does not parse (%s): %.60s", je.text,
                           p);
        json_array_append_new(blocks, j);
        p = end + 3;
    }
    struct cfg_vars v;
    cfg_vars_init(&v);
    size_t i, nsets = 0, nrules = 0;
    json_t *b;
    json_array_foreach(blocks, i, b)
    {
        if (json_object_get(b, "target"))
            cfg_vars_merge(&v, b);
    }
    json_array_foreach(blocks, i, b)
    {
        json_t *set = NULL;
        if (json_object_get(b, "files")) {
            set = json_incref(b);
            nsets++;
        } else if (json_object_get(b, "type")) {
            set = json_pack("{s:[s],s:[{s:s,s:[O]}]}", "roots", "/r", "files", "glob", "**",
                            "rules", b);
            nrules++;
        } else {
            continue;
        }
        char *s = json_dumps(set, 0);
        struct cfg_rules r;
        fc_rc rc = cfg_rules_parse(&r, s, strlen(s), &v);
        cr_assert_eq(rc, FC_OK, "docs/config.md example refused: %s\n%s", fc_error_msg(), s);
        cfg_rules_free(&r);
        free(s);
        json_decref(set);
    }
    cr_assert(nsets >= 1 && nrules >= 10, "examples not found: %zu sets, %zu rules", nsets, nrules);
    cfg_vars_free(&v);
    json_decref(blocks);
    free(doc);
}

/* Whether troff text names word (as a word, "-" written "\-"). */
static bool
troff_has(const char *man, const char *word)
{
    char esc[256];
    size_t w = 0;
    for (const char *p = word; *p && w + 3 < sizeof esc; p++) {
        if (*p == '-')
            esc[w++] = '\\';
        esc[w++] = *p;
    }
    esc[w] = '\0';
    return strstr(man, esc) != NULL;
}

Test(doc, every_type_and_field_is_documented)
{
    char *man = slurp("migrators/config/fluid-config.1"), *doc = slurp("docs/config.md");
    for (int t = 0; cfg_rule_type_name((enum cfg_rule_type)t); t++) {
        const char *name = cfg_rule_type_name((enum cfg_rule_type)t);
        cr_expect(troff_has(man, name), "man page lacks rule type %s", name);
        char h[64];
        snprintf(h, sizeof h, "### `%s`", name);
        cr_expect(strstr(doc, h), "docs/config.md lacks a section %s", h);
    }
    for (int w = -3; w < 7; w++) {
        for (const char *const *k = cfg_rule_fields(w); k && *k; k++) {
            char q[64], q2[64];
            snprintf(q, sizeof q, "`%s`", *k);
            snprintf(q2, sizeof q2, ".%s`", *k); /* `files[].glob` */
            cr_expect(troff_has(man, *k), "man page lacks field %s", *k);
            cr_expect(strstr(doc, q) || strstr(doc, q2), "docs/config.md lacks field %s", q);
        }
    }
    free(man);
    free(doc);
}

Test(doc, every_option_is_documented)
{
    const char *bin = getenv("FLUID_BIN_DIR");
    cr_assert_not_null(bin, "FLUID_BIN_DIR is not set (run through ctest)");
    char prog[1024];
    snprintf(prog, sizeof prog, "%s/fluid-config", bin);
    const char *argv[] = {prog, "--help", NULL};
    char out[8192], err[8192];
    int st = 0;
    cr_assert_eq(fc_run(argv, out, sizeof out, err, sizeof err, &st), FC_OK);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "--help: %s", err);
    char *man = slurp("migrators/config/fluid-config.1"), *doc = slurp("docs/config.md");
    size_t n = 0;
    for (char *p = out; (p = strstr(p, "--"));) {
        char opt[64];
        size_t l = strspn(p, "-abcdefghijklmnopqrstuvwxyz");
        snprintf(opt, sizeof opt, "%.*s", (int)(l < 63 ? l : 63), p);
        cr_expect(troff_has(man, opt), "man page lacks %s", opt);
        cr_expect(strstr(doc, opt), "docs/config.md lacks %s", opt);
        p += l;
        n++;
    }
    cr_assert_geq(n, 7, "--help lists %zu options: %s", n, out);
    free(man);
    free(doc);
}
