/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-config structured edits, pure: ini, .env, properties, JSON pointer and YAML set and
 * delete change only the bytes of their value; every other byte (comments, spacing, CRLF,
 * a missing final newline) stays as it was. */
#include <criterion/criterion.h>
#include <string.h>

#include "cfg.h"
#include "fluid/error.h"

static char *
run1(const char *rule, const char *name, const char *in, fc_rc *rc)
{
    char *doc = NULL;
    cr_assert(asprintf(&doc, "{\"roots\":[\"/r\"],\"files\":[{\"glob\":\"**\",\"rules\":[%s]}]}",
                       rule) > 0);
    struct cfg_vars v;
    cfg_vars_init(&v);
    struct cfg_rules r;
    *rc = cfg_rules_parse(&r, doc, strlen(doc), &v);
    free(doc);
    cfg_vars_free(&v);
    cr_assert_eq(*rc, FC_OK, "rule rejected: %s", fc_error_msg());
    char path[128];
    snprintf(path, sizeof path, "/r/%s", name);
    struct cfg_buf out = {0};
    *rc = cfg_apply_all(&r, path, in, strlen(in), &out, NULL);
    cfg_rules_free(&r);
    char *s = *rc == FC_OK ? strdup(cfg_buf_str(&out)) : NULL;
    cfg_buf_free(&out);
    return s;
}

static void
ok(const char *rule, const char *name, const char *in, const char *want)
{
    fc_rc rc;
    char *got = run1(rule, name, in, &rc);
    cr_assert_eq(rc, FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(got, want, "rule %s", rule);
    /* idempotent: the same rule on its own output changes nothing */
    char *again = run1(rule, name, got, &rc);
    cr_assert_eq(rc, FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(again, got, "second run of %s changed the file", rule);
    free(got);
    free(again);
}

static void
fails(const char *rule, const char *name, const char *in, const char *needle)
{
    fc_rc rc;
    char *got = run1(rule, name, in, &rc);
    cr_assert_null(got);
    cr_assert_neq(rc, FC_OK);
    cr_assert(strstr(fc_error_msg(), needle), "message \"%s\" lacks \"%s\"", fc_error_msg(),
              needle);
}

static const char ini[] = "; top comment\r\nglobal=1\r\n\r\n[db]\r\nhost = 10.0.0.1 \r\n"
                          "port=5432\r\n\r\n[web]\r\nbind = 0.0.0.0";

Test(ini, set_existing_keeps_every_other_byte)
{
    ok("{\"type\":\"ini\",\"section\":\"db\",\"key\":\"host\",\"set\":\"192.168.0.2\"}", "a.ini",
       ini,
       "; top comment\r\nglobal=1\r\n\r\n[db]\r\nhost = 192.168.0.2 \r\nport=5432\r\n\r\n[web]\r\n"
       "bind = 0.0.0.0");
}

Test(ini, add_key_in_section_and_global_and_new_section)
{
    ok("{\"type\":\"ini\",\"section\":\"db\",\"key\":\"user\",\"set\":\"app\"}", "a.ini", ini,
       "; top comment\r\nglobal=1\r\n\r\n[db]\r\nhost = 10.0.0.1 \r\nport=5432\r\nuser=app\r\n"
       "\r\n[web]\r\nbind = 0.0.0.0");
    ok("{\"type\":\"ini\",\"key\":\"g2\",\"set\":\"x\"}", "a.ini", ini,
       "; top comment\r\nglobal=1\r\ng2=x\r\n\r\n[db]\r\nhost = 10.0.0.1 \r\nport=5432\r\n\r\n"
       "[web]\r\nbind = 0.0.0.0");
    /* the last line has no final newline: it stays without one */
    ok("{\"type\":\"ini\",\"section\":\"web\",\"key\":\"port\",\"set\":\"80\"}", "a.ini", ini,
       "; top comment\r\nglobal=1\r\n\r\n[db]\r\nhost = 10.0.0.1 \r\nport=5432\r\n\r\n[web]\r\n"
       "bind = 0.0.0.0\r\nport=80");
    ok("{\"type\":\"ini\",\"section\":\"new\",\"key\":\"k\",\"set\":\"v\"}", "a.ini", "[a]\nx=1\n",
       "[a]\nx=1\n\n[new]\nk=v\n");
}

Test(ini, multi_line_values)
{
    /* configparser: lines indented deeper than their key continue its value */
    const char *in = "[db]\nhosts = a\n    b\n    c\nport = 1\n[git]\n\tbare = false\n"
                     "\tname = x\n";
    ok("{\"type\":\"ini\",\"section\":\"db\",\"key\":\"hosts\",\"set\":\"z\"}", "a.ini", in,
       "[db]\nhosts = z\nport = 1\n[git]\n\tbare = false\n\tname = x\n");
    ok("{\"type\":\"ini\",\"section\":\"db\",\"key\":\"hosts\",\"delete\":true}", "a.ini", in,
       "[db]\nport = 1\n[git]\n\tbare = false\n\tname = x\n");
    /* keys indented alike (git config style) are separate keys */
    ok("{\"type\":\"ini\",\"section\":\"git\",\"key\":\"name\",\"set\":\"y\"}", "a.ini", in,
       "[db]\nhosts = a\n    b\n    c\nport = 1\n[git]\n\tbare = false\n\tname = y\n");
}

Test(ini, delete)
{
    ok("{\"type\":\"ini\",\"section\":\"db\",\"key\":\"port\",\"delete\":true}", "a.ini", ini,
       "; top comment\r\nglobal=1\r\n\r\n[db]\r\nhost = 10.0.0.1 \r\n\r\n[web]\r\n"
       "bind = 0.0.0.0");
    ok("{\"type\":\"ini\",\"section\":\"web\",\"key\":\"bind\",\"delete\":true}", "a.ini", ini,
       "; top comment\r\nglobal=1\r\n\r\n[db]\r\nhost = 10.0.0.1 \r\nport=5432\r\n\r\n[web]");
    /* a key in another section with the same name is not touched */
    ok("{\"type\":\"ini\",\"section\":\"db\",\"key\":\"bind\",\"delete\":true}", "a.ini", ini, ini);
}

Test(env, set_add_delete_with_quoting)
{
    const char *in = "# app\nexport PATH_X=/usr/bin\nNAME=\"two words\" # comment\nQ='x'\n";
    ok("{\"type\":\"env\",\"key\":\"NAME\",\"set\":\"a \\\"b\\\" $c\"}", ".env", in,
       "# app\nexport PATH_X=/usr/bin\nNAME=\"a \\\"b\\\" \\$c\" # comment\nQ='x'\n");
    ok("{\"type\":\"env\",\"key\":\"PATH_X\",\"set\":\"/opt/bin\"}", ".env", in,
       "# app\nexport PATH_X=/opt/bin\nNAME=\"two words\" # comment\nQ='x'\n");
    ok("{\"type\":\"env\",\"key\":\"Q\",\"set\":\"y z\"}", ".env", in,
       "# app\nexport PATH_X=/usr/bin\nNAME=\"two words\" # comment\nQ='y z'\n");
    ok("{\"type\":\"env\",\"key\":\"NEW\",\"set\":\"1\"}", ".env", in,
       "# app\nexport PATH_X=/usr/bin\nNAME=\"two words\" # comment\nQ='x'\nNEW=1\n");
    ok("{\"type\":\"env\",\"key\":\"NAME\",\"delete\":true}", ".env", in,
       "# app\nexport PATH_X=/usr/bin\nQ='x'\n");
}

Test(properties, continuation_escapes_and_separators)
{
    const char *in = "# c\n! c2\nserver.host : 10.0.0.1\nlong = a,\\\n    b\nmy\\ key=v\n";
    ok("{\"type\":\"properties\",\"key\":\"long\",\"set\":\"z\"}", "a.properties", in,
       "# c\n! c2\nserver.host : 10.0.0.1\nlong = z\nmy\\ key=v\n");
    ok("{\"type\":\"properties\",\"key\":\"my key\",\"set\":\"w\"}", "a.properties", in,
       "# c\n! c2\nserver.host : 10.0.0.1\nlong = a,\\\n    b\nmy\\ key=w\n");
    ok("{\"type\":\"properties\",\"key\":\"new=k\",\"set\":\" x\\\\y\"}", "a.properties", in,
       "# c\n! c2\nserver.host : 10.0.0.1\nlong = a,\\\n    b\nmy\\ key=v\nnew\\=k : \\ x\\\\y\n");
    ok("{\"type\":\"properties\",\"key\":\"long\",\"delete\":true}", "a.properties", in,
       "# c\n! c2\nserver.host : 10.0.0.1\nmy\\ key=v\n");
    /* a comment ending in a backslash does not continue onto the next line */
    ok("{\"type\":\"properties\",\"key\":\"a\",\"set\":\"2\"}", "a.properties", "# see C:\\\na=1\n",
       "# see C:\\\na=2\n");
}

static const char js[] = "{\n  \"db\": {\n    \"host\": \"10.0.0.1\",\n    \"port\": 5432\n  },\n"
                         "  \"list\": [1, 2],\n  \"empty\": {},\n  \"name\": \"x\"\n}";

Test(json, set_replaces_only_the_value)
{
    ok("{\"type\":\"json\",\"pointer\":\"/db/host\",\"set\":\"192.168.0.2\"}", "a.json", js,
       "{\n  \"db\": {\n    \"host\": \"192.168.0.2\",\n    \"port\": 5432\n  },\n"
       "  \"list\": [1, 2],\n  \"empty\": {},\n  \"name\": \"x\"\n}");
    ok("{\"type\":\"json\",\"pointer\":\"/list/1\",\"set\":{\"a\":[true,null]}}", "a.json", js,
       "{\n  \"db\": {\n    \"host\": \"10.0.0.1\",\n    \"port\": 5432\n  },\n"
       "  \"list\": [1, {\"a\": [true, null]}],\n  \"empty\": {},\n  \"name\": \"x\"\n}");
    /* an equal value written differently is left as it is */
    ok("{\"type\":\"json\",\"pointer\":\"/db/port\",\"set\":5432}", "a.json",
       "{\"db\":{\"port\":5432}}", "{\"db\":{\"port\":5432}}");
}

Test(json, add_member_in_the_style_of_its_neighbours)
{
    ok("{\"type\":\"json\",\"pointer\":\"/db/user\",\"set\":\"app\"}", "a.json", js,
       "{\n  \"db\": {\n    \"host\": \"10.0.0.1\",\n    \"port\": 5432,\n    \"user\": \"app\"\n"
       "  },\n  \"list\": [1, 2],\n  \"empty\": {},\n  \"name\": \"x\"\n}");
    ok("{\"type\":\"json\",\"pointer\":\"/list/-\",\"set\":3}", "a.json", "{\"list\":[1, 2]}",
       "{\"list\":[1, 2, 3]}");
    ok("{\"type\":\"json\",\"pointer\":\"/empty/a~1b\",\"set\":1}", "a.json", "{\"empty\":{}}",
       "{\"empty\":{\"a/b\": 1}}");
}

Test(json, delete_first_middle_last)
{
    const char *in = "{\"a\": 1, \"b\": 2, \"c\": 3}";
    ok("{\"type\":\"json\",\"pointer\":\"/a\",\"delete\":true}", "a.json", in,
       "{\"b\": 2, \"c\": 3}");
    ok("{\"type\":\"json\",\"pointer\":\"/b\",\"delete\":true}", "a.json", in,
       "{\"a\": 1, \"c\": 3}");
    ok("{\"type\":\"json\",\"pointer\":\"/c\",\"delete\":true}", "a.json", in,
       "{\"a\": 1, \"b\": 2}");
    ok("{\"type\":\"json\",\"pointer\":\"/x\",\"delete\":true}", "a.json", in, in);
    ok("{\"type\":\"json\",\"pointer\":\"/a/0\",\"delete\":true}", "a.json", "{\"a\":[7]}",
       "{\"a\":[]}");
}

Test(json, errors)
{
    fails("{\"type\":\"json\",\"pointer\":\"/a/b/c\",\"set\":1}", "a.json", "{\"a\":{}}",
          "\"b\" does not exist");
    fails("{\"type\":\"json\",\"pointer\":\"/a\",\"set\":1}", "a.json", "{\"a\":1,}",
          "not valid JSON");
    fails("{\"type\":\"json\",\"pointer\":\"/a/5\",\"set\":1}", "a.json", "{\"a\":[1]}",
          "not an index");
}

static const char ym[] = "# app\ndb:\n  host: 10.0.0.1   # primary\n  name: 'main'\n"
                         "  dsn: \"x\\ty\"\nservers:\n  - web1\n  - {name: web2, ip: 10.0.0.3}\n"
                         "motd: |\n  hello\n  world\nport: 80";

Test(yaml, set_scalars_in_their_style)
{
    ok("{\"type\":\"yaml\",\"path\":\"db.host\",\"set\":\"192.168.0.2\"}", "a.yaml", ym,
       "# app\ndb:\n  host: 192.168.0.2   # primary\n  name: 'main'\n  dsn: \"x\\ty\"\nservers:\n"
       "  - web1\n  - {name: web2, ip: 10.0.0.3}\nmotd: |\n  hello\n  world\nport: 80");
    ok("{\"type\":\"yaml\",\"path\":\"db.name\",\"set\":\"it's\"}", "a.yaml", ym,
       "# app\ndb:\n  host: 10.0.0.1   # primary\n  name: 'it''s'\n  dsn: \"x\\ty\"\nservers:\n"
       "  - web1\n  - {name: web2, ip: 10.0.0.3}\nmotd: |\n  hello\n  world\nport: 80");
    ok("{\"type\":\"yaml\",\"path\":[\"servers\",1,\"ip\"],\"set\":\"10.9.9.9\"}", "a.yaml", ym,
       "# app\ndb:\n  host: 10.0.0.1   # primary\n  name: 'main'\n  dsn: \"x\\ty\"\nservers:\n"
       "  - web1\n  - {name: web2, ip: 10.9.9.9}\nmotd: |\n  hello\n  world\nport: 80");
    ok("{\"type\":\"yaml\",\"path\":\"port\",\"set\":8080}", "a.yaml", ym,
       "# app\ndb:\n  host: 10.0.0.1   # primary\n  name: 'main'\n  dsn: \"x\\ty\"\nservers:\n"
       "  - web1\n  - {name: web2, ip: 10.0.0.3}\nmotd: |\n  hello\n  world\nport: 8080");
    ok("{\"type\":\"yaml\",\"path\":\"motd\",\"set\":\"bye\"}", "a.yaml", ym,
       "# app\ndb:\n  host: 10.0.0.1   # primary\n  name: 'main'\n  dsn: \"x\\ty\"\nservers:\n"
       "  - web1\n  - {name: web2, ip: 10.0.0.3}\nmotd: 'bye'\nport: 80");
    /* a string that would read back as a boolean or number gets quotes */
    ok("{\"type\":\"yaml\",\"path\":\"servers.0\",\"set\":\"yes\"}", "a.yaml",
       "servers:\n  - web1\n", "servers:\n  - 'yes'\n");
    ok("{\"type\":\"yaml\",\"path\":\"a\",\"set\":\"1.5\"}", "a.yaml", "a: x\r\nb: y\r\n",
       "a: '1.5'\r\nb: y\r\n");
    ok("{\"type\":\"yaml\",\"path\":\"a\",\"set\":\"é ü\"}", "a.yaml", "a: x # ü\n",
       "a: é ü # ü\n");
}

Test(yaml, add_a_missing_key_to_a_block_mapping)
{
    ok("{\"type\":\"yaml\",\"path\":\"db.user\",\"set\":\"app\"}", "a.yaml", ym,
       "# app\ndb:\n  host: 10.0.0.1   # primary\n  name: 'main'\n  dsn: \"x\\ty\"\n"
       "  user: app\nservers:\n  - web1\n  - {name: web2, ip: 10.0.0.3}\nmotd: |\n  hello\n"
       "  world\nport: 80");
    /* at the top level, after a block scalar, into a file without a final newline */
    ok("{\"type\":\"yaml\",\"path\":\"tls\",\"set\":true}", "a.yaml", ym,
       "# app\ndb:\n  host: 10.0.0.1   # primary\n  name: 'main'\n  dsn: \"x\\ty\"\nservers:\n"
       "  - web1\n  - {name: web2, ip: 10.0.0.3}\nmotd: |\n  hello\n  world\nport: 80\ntls: true");
    ok("{\"type\":\"yaml\",\"path\":\"a.new key\",\"set\":\"yes\"}", "a.yaml",
       "a:\r\n    b: |\r\n      x\r\n# end\r\n",
       "a:\r\n    b: |\r\n      x\r\n    new key: 'yes'\r\n# end\r\n");
    /* after a nested mapping: at the parent's own indentation */
    ok("{\"type\":\"yaml\",\"path\":\"a.c\",\"set\":1}", "a.yaml",
       "a:\n  b:\n    x: 1\n    y: [1, 2]\nz: 0\n",
       "a:\n  b:\n    x: 1\n    y: [1, 2]\n  c: 1\nz: 0\n");
}

Test(yaml, errors)
{
    fails("{\"type\":\"yaml\",\"path\":\"nodb.user\",\"set\":\"x\"}", "a.yaml", ym,
          "its parent does not exist");
    fails("{\"type\":\"yaml\",\"path\":\"servers.1.port\",\"set\":1}", "a.yaml", ym,
          "a flow mapping");
    fails("{\"type\":\"yaml\",\"path\":\"servers.7\",\"set\":1}", "a.yaml", ym, "a sequence");
    fails("{\"type\":\"yaml\",\"path\":\"db\",\"set\":\"x\"}", "a.yaml", ym,
          "is a mapping or sequence");
    fails("{\"type\":\"yaml\",\"path\":\"a\",\"set\":\"x\"}", "a.yaml", "a: [1\n",
          "not valid YAML");
    fails("{\"type\":\"yaml\",\"path\":\"b\",\"set\":\"x\"}", "a.yaml", "a: &x 1\nb: *x\n",
          "is an alias");
}

Test(json, nul_byte_is_refused_not_overrun)
{
    /* found by fuzz_config_rules: Jansson stops at a NUL, the byte scanner did not */
    fc_rc rc;
    char in[] = "{\"a\": {\"b\": 1},\n \"c\": nul\0}\n";
    char doc[] = "{\"roots\":[\"/r\"],\"files\":[{\"glob\":\"**\",\"rules\":[{\"type\":\"json\","
                 "\"pointer\":\"/a/x\",\"set\":3}]}]}";
    struct cfg_vars v;
    cfg_vars_init(&v);
    struct cfg_rules r;
    cr_assert_eq(cfg_rules_parse(&r, doc, strlen(doc), &v), FC_OK);
    struct cfg_buf out = {0};
    rc = cfg_apply_all(&r, "/r/a.json", in, sizeof in - 1, &out, NULL);
    cr_assert_eq(rc, FC_E_INVALID);
    cr_assert(strstr(fc_error_msg(), "NUL byte at offset"), "%s", fc_error_msg());
    cfg_buf_free(&out);
    cfg_rules_free(&r);
    cfg_vars_free(&v);
}
