/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-config engine, pure: rule parsing and its errors, variables, regex (captures,
 * multi-line, UTF-8, CRLF, no final newline, backtracking limit), globs and paths. */
#include <criterion/criterion.h>
#include <string.h>

#include "cfg.h"
#include "fluid/error.h"

/* Applies a rule set (roots ["/r"]) to content as file /r/<name>; NULL on error (rc set). */
static char *
apply(const char *files_json, const char *vars_json, const char *name, const char *content,
      fc_rc *rc)
{
    struct cfg_vars v;
    cfg_vars_init(&v);
    if (vars_json) {
        json_t *j = json_loads(vars_json, 0, NULL);
        cr_assert_not_null(j, "bad vars JSON in the test");
        cfg_vars_merge(&v, j);
        json_decref(j);
    }
    char *doc = NULL;
    cr_assert(asprintf(&doc, "{\"roots\":[\"/r\"],\"files\":%s}", files_json) > 0);
    struct cfg_rules r;
    *rc = cfg_rules_parse(&r, doc, strlen(doc), &v);
    free(doc);
    cfg_vars_free(&v);
    if (*rc != FC_OK)
        return NULL;
    char path[256];
    snprintf(path, sizeof path, "/r/%s", name);
    struct cfg_buf out = {0};
    *rc = cfg_apply_all(&r, path, content, strlen(content), &out, NULL);
    cfg_rules_free(&r);
    if (*rc != FC_OK) {
        cfg_buf_free(&out);
        return NULL;
    }
    char *s = strdup(cfg_buf_str(&out));
    cfg_buf_free(&out);
    return s;
}

#define RULES1(glob, rule) "[{\"glob\":\"" glob "\",\"rules\":[" rule "]}]"

static void
expect(const char *files, const char *vars, const char *name, const char *in, const char *want)
{
    fc_rc rc;
    char *got = apply(files, vars, name, in, &rc);
    cr_assert_eq(rc, FC_OK, "rule failed: %s", fc_error_msg());
    cr_assert_str_eq(got, want);
    free(got);
}

static void
expect_error(const char *files, const char *vars, const char *in, fc_rc want,
             const char *const *needles)
{
    fc_rc rc;
    char *got = apply(files, vars, "a.conf", in, &rc);
    cr_assert_null(got, "expected an error, got output \"%s\"", got ? got : "");
    cr_assert_eq(rc, want, "rc %s, message: %s", fc_rc_name(rc), fc_error_msg());
    for (const char *const *n = needles; *n; n++)
        cr_assert(strstr(fc_error_msg(), *n), "message \"%s\" lacks \"%s\"", fc_error_msg(), *n);
}

Test(regex, capture_groups_and_count)
{
    expect(RULES1("*.conf", "{\"type\":\"regex\",\"pattern\":\"(\\\\w+)=(\\\\d+)\","
                            "\"replace\":\"\\\\2=\\\\1\",\"count\":2}"),
           NULL, "a.conf", "a=1\nb=2\nc=3\n", "1=a\n2=b\nc=3\n");
    expect(RULES1("*.conf", "{\"type\":\"regex\",\"pattern\":\"(?<k>\\\\w+)=\","
                            "\"replace\":\"\\\\g{k}: \"}"),
           NULL, "a.conf", "a=1\n", "a: 1\n");
}

Test(regex, multiline_match_spans_lines)
{
    expect(RULES1("*.conf", "{\"type\":\"regex\",\"pattern\":\"\\\\[db\\\\]\\\\nhost=[^\\\\n]*\","
                            "\"replace\":\"[db]\\nhost=new\"}"),
           NULL, "a.conf", "[web]\nhost=x\n[db]\nhost=old\n", "[web]\nhost=x\n[db]\nhost=new\n");
    expect(RULES1("*.conf", "{\"type\":\"regex\",\"pattern\":\"BEGIN.*END\",\"flags\":\"s\","
                            "\"replace\":\"X\"}"),
           NULL, "a.conf", "1\nBEGIN\n2\nEND\n3\n", "1\nX\n3\n");
}

Test(regex, line_anchor_keeps_crlf_and_missing_final_newline)
{
    const char *rules = RULES1("*.conf", "{\"type\":\"regex\",\"pattern\":\"path=.*\","
                                         "\"anchor\":\"line\",\"replace\":\"path=/new\"}");
    expect(rules, NULL, "a.conf", "a=1\r\npath=/old\r\nb=2\r\n", "a=1\r\npath=/new\r\nb=2\r\n");
    expect(rules, NULL, "a.conf", "a=1\npath=/old", "a=1\npath=/new");
    /* anchored: a key that only contains the pattern does not match */
    expect(rules, NULL, "a.conf", "xpath=/old\n", "xpath=/old\n");
}

Test(regex, utf8_content)
{
    expect(RULES1("*.conf",
                  "{\"type\":\"regex\",\"pattern\":\"caf.=(.)\",\"replace\":\"café=\\\\1!\"}"),
           NULL, "a.conf", "# über\ncafé=ñ\n", "# über\ncafé=ñ!\n");
}

Test(regex, invalid_utf8_input_is_matched_not_rejected)
{
    expect(RULES1("*.conf", "{\"type\":\"regex\",\"pattern\":\"k=1\",\"replace\":\"k=2\"}"), NULL,
           "a.conf", "\xff\xfe junk\nk=1\n", "\xff\xfe junk\nk=2\n");
}

Test(vars, expanded_literally_in_patterns_and_templates)
{
    const char *vars = "{\"source\":{\"ip\":\"10.0.0.5\"},\"target\":{\"ip\":\"192.168.1.9\","
                       "\"path\":\"C:\\\\1\"}}";
    expect(RULES1("*.conf", "{\"type\":\"regex\",\"pattern\":\"${source.ip}\","
                            "\"replace\":\"${target.ip}\"}"),
           vars, "a.conf", "a=10.0.0.5 b=10a0b0c5\n", "a=192.168.1.9 b=10a0b0c5\n");
    /* a backslash in a value is not a group reference */
    expect(
        RULES1("*.conf", "{\"type\":\"regex\",\"pattern\":\"x\",\"replace\":\"${target.path}\"}"),
        vars, "a.conf", "x\n", "C:\\1\n");
    /* literal even with flag x (whitespace ignored in the pattern) and with a \E inside */
    expect(RULES1("*.conf", "{\"type\":\"regex\",\"pattern\":\"k = ${v.s}  # comment\","
                            "\"flags\":\"x\",\"replace\":\"k=X\"}"),
           "{\"v\":{\"s\":\"a b\\\\E(.*\"}}", "a.conf", "k=a b\\E(.*\n", "k=X\n");
    /* $${ is a literal ${ */
    expect(RULES1("*.conf", "{\"type\":\"regex\",\"pattern\":\"x\",\"replace\":\"$${HOME}\"}"),
           vars, "a.conf", "x\n", "${HOME}\n");
}

Test(vars, command_line_values_override_nested)
{
    struct cfg_vars v;
    cfg_vars_init(&v);
    json_t *j = json_loads("{\"a\":{\"b\":\"1\",\"c\":[\"x\",\"y\"]}}", 0, NULL);
    cfg_vars_merge(&v, j);
    json_decref(j);
    cr_assert_eq(cfg_vars_set_arg(&v, "a.b=2"), FC_OK);
    char *s = cfg_vars_lookup(&v, "a.b");
    cr_assert_str_eq(s, "2");
    free(s);
    s = cfg_vars_lookup(&v, "a.c.1");
    cr_assert_str_eq(s, "y");
    free(s);
    cr_assert_null(cfg_vars_lookup(&v, "a.d"));
    cr_assert_neq(cfg_vars_set_arg(&v, "=x"), FC_OK);
    cr_assert_neq(cfg_vars_set_arg(&v, "a..b=x"), FC_OK);
    cfg_vars_free(&v);
}

Test(errors, undefined_variable_names_it_and_the_rule)
{
    const char *n[] = {"${target.nope}", "files[0].rules[1]", NULL};
    expect_error("[{\"glob\":\"*\",\"rules\":[{\"type\":\"require\",\"pattern\":\"x\"},"
                 "{\"type\":\"regex\",\"pattern\":\"x\",\"replace\":\"${target.nope}\"}]}]",
                 NULL, "x\n", FC_E_INVALID, n);
}

Test(errors, invalid_regex)
{
    const char *n[] = {"files[0].rules[0]", "invalid regular expression", "offset", NULL};
    expect_error(RULES1("*", "{\"type\":\"regex\",\"pattern\":\"(a\",\"replace\":\"\"}"), NULL, "",
                 FC_E_INVALID, n);
}

Test(errors, unknown_type_and_unknown_field)
{
    const char *n[] = {"unknown rule type \"toml\"", NULL};
    expect_error(RULES1("*", "{\"type\":\"toml\",\"key\":\"a\"}"), NULL, "", FC_E_INVALID, n);
    const char *n2[] = {"unknown field \"replacement\"", NULL};
    expect_error(RULES1("*", "{\"type\":\"regex\",\"pattern\":\"a\",\"replacement\":\"b\"}"), NULL,
                 "", FC_E_INVALID, n2);
}

Test(errors, bad_group_reference)
{
    const char *n[] = {"group 2", "1 capture group", NULL};
    expect_error(RULES1("*", "{\"type\":\"regex\",\"pattern\":\"(a)\",\"replace\":\"\\\\2\"}"),
                 NULL, "", FC_E_INVALID, n);
}

Test(errors, require_not_found)
{
    const char *n[] = {"files[0].rules[0] (\"db host set\")", "required pattern not found",
                       "/r/a.conf", NULL};
    expect_error(RULES1("*", "{\"type\":\"require\",\"name\":\"db host set\",\"pattern\":"
                             "\"^db_host=\",\"flags\":\"m\"}"),
                 NULL, "x=1\n", FC_E_INVALID, n);
}

Test(errors, catastrophic_backtracking_is_bounded)
{
    char in[64];
    memset(in, 'a', 40);
    strcpy(in + 40, "!\n");
    const char *n[] = {"match limit", "backtracking", NULL};
    expect_error("[{\"glob\":\"*\",\"rules\":[{\"type\":\"regex\",\"pattern\":\"(a+)+$\","
                 "\"replace\":\"x\"}]}]",
                 NULL, in, FC_E_INVALID, n);
}

Test(errors, roots_and_globs)
{
    struct cfg_vars v;
    cfg_vars_init(&v);
    struct cfg_rules r;
    const char *docs[] = {
        "{\"roots\":[\"/srv/../"
        "etc\"],\"files\":[{\"glob\":\"*\",\"rules\":[{\"type\":\"require\",\"pattern\":\"x\"}]}]}",
        "{\"roots\":[\"srv\"],\"files\":[{\"glob\":\"*\",\"rules\":[{\"type\":\"require\","
        "\"pattern\":\"x\"}]}]}",
        "{\"roots\":[\"/srv\"],\"files\":[{\"glob\":\"../"
        "*\",\"rules\":[{\"type\":\"require\",\"pattern\":\"x\"}]}]}",
        "{\"roots\":[\"/srv\"],\"files\":[]}",
        "{\"roots\":[\"/"
        "srv\"],\"files\":[{\"glob\":\"*\",\"rules\":[{\"type\":\"json\",\"pointer\":\"a\",\"set\":"
        "1}]}]}",
        "{\"schema\":\"other/1\",\"roots\":[\"/"
        "srv\"],\"files\":[{\"glob\":\"*\",\"rules\":[{\"type\":\"require\",\"pattern\":\"x\"}]}]}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++)
        cr_expect_eq(cfg_rules_parse(&r, docs[i], strlen(docs[i]), &v), FC_E_INVALID,
                     "document %zu accepted", i);
    cfg_vars_free(&v);
}

Test(glob, matching)
{
    cr_assert(cfg_glob_match("*.conf", "a.conf"));
    cr_assert_not(cfg_glob_match("*.conf", "d/a.conf"));
    cr_assert(cfg_glob_match("**/*.conf", "a.conf"));
    cr_assert(cfg_glob_match("**/*.conf", "d/e/a.conf"));
    cr_assert(cfg_glob_match("etc/**", "etc/x/y"));
    cr_assert(cfg_glob_match("a?c.[jy]son", "abc.json"));
    cr_assert_not(cfg_glob_match("a?c.[!j]son", "abc.json"));
    cr_assert(cfg_glob_match("/srv/*/x", "/srv/app/x"));
    cr_assert_not(cfg_glob_match("*", "a/b"));
}

Test(paths, normalise_and_under)
{
    char *p = NULL;
    cr_assert_eq(cfg_path_normalise("//srv/./app/", "t", &p), FC_OK);
    cr_assert_str_eq(p, "/srv/app");
    free(p);
    cr_assert_eq(cfg_path_normalise("/srv/app/../etc/passwd", "t", &p), FC_E_INVALID);
    cr_assert(strstr(fc_error_msg(), "\"..\""));
    cr_assert(cfg_path_under("/srv/app/x", "/srv/app"));
    cr_assert(cfg_path_under("/srv/app", "/srv/app"));
    cr_assert_not(cfg_path_under("/srv/application", "/srv/app"));
    cr_assert(cfg_path_under("/x", "/"));
}

Test(diff, hunks_and_no_final_newline)
{
    struct cfg_buf out = {0};
    const char *a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12",
               *b = "1\n2\nthree\n4\n5\n6\n7\n8\n9\n10\n11\n12\n";
    cr_assert_eq(cfg_diff("/r/f", a, strlen(a), b, strlen(b), &out), FC_OK);
    cr_assert_str_eq(cfg_buf_str(&out),
                     "--- a/r/f\n+++ b/r/f\n@@ -1,6 +1,6 @@\n 1\n 2\n-3\n+three\n 4\n 5\n 6\n"
                     "@@ -9,4 +9,4 @@\n 9\n 10\n 11\n-12\n\\ No newline at end of file\n+12\n");
    cfg_buf_free(&out);
    cr_assert_eq(cfg_diff("/r/f", a, strlen(a), a, strlen(a), &out), FC_OK);
    cr_assert_eq(out.len, 0);
}

Test(regex, non_utf8_files_match_bytewise)
{
    /* Latin-1 file: '.' is one byte, literal and group replacements keep the other bytes */
    expect(RULES1("*.conf", "{\"type\":\"regex\",\"pattern\":\"name=(.)(.*)\","
                            "\"anchor\":\"line\",\"replace\":\"name=\\\\2\\\\1\"}"),
           NULL, "a.conf", "name=\xe9t\xe9\nx=1\n", "name=t\xe9\xe9\nx=1\n");
    /* a pattern that needs UTF still works on such a file */
    expect(RULES1("*.conf", "{\"type\":\"regex\",\"pattern\":\"\\\\x{263a}\",\"replace\":\":)\"}"),
           NULL, "a.conf", "\xff smile \xe2\x98\xba\n", "\xff smile :)\n");
}

Test(utf8, validity)
{
    cr_assert(cfg_utf8_valid("caf\xc3\xa9 \xe2\x98\xba \xf0\x9f\x98\x80", 14));
    cr_assert_not(cfg_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    cr_assert_not(cfg_utf8_valid("\xed\xa0\x80", 3));     /* a surrogate */
    cr_assert_not(cfg_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
    cr_assert_not(cfg_utf8_valid("\xe2\x98", 2));         /* cut short */
    cr_assert_not(cfg_utf8_valid("\xe9t", 2));            /* Latin-1 */
}
