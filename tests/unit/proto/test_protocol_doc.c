/* SPDX-License-Identifier: Apache-2.0 */
/* docs/protocol.md stays true to the parser: every ```json example in it parses, and every
 * schema the parser knows has at least one example. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/error.h"
#include "fluid/msg.h"

static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    char *buf = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (*len + 4096 + 1 > cap) {
            cap = (cap + 4096) * 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        size_t n = fread(buf + *len, 1, 4096, f);
        *len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    buf[*len] = '\0';
    return buf;
}

Test(protocol_doc, every_example_parses_and_every_schema_has_one)
{
    const char *src = getenv("FLUID_SOURCE_DIR");
    if (!src)
        cr_assert_fail("FLUID_SOURCE_DIR is not set (run through ctest)");
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/protocol.md", src);
    size_t len;
    char *doc = slurp(path, &len);

    const char *schemas[] = {FC_SCHEMA_TASK,       FC_SCHEMA_EVENT,    FC_SCHEMA_CANCEL,
                             FC_SCHEMA_BROKER,     FC_SCHEMA_REQUEST,  FC_SCHEMA_PLAN,
                             FC_SCHEMA_TOPOLOGY,   FC_SCHEMA_RELOCATION, FC_SCHEMA_REJECTED,
                             FC_SCHEMA_STATUS_REQ, FC_SCHEMA_STATUS,   FC_SCHEMA_RESUME};
    size_t nschemas = sizeof schemas / sizeof schemas[0];
    int seen[sizeof schemas / sizeof schemas[0]] = {0};
    int examples = 0;
    for (char *p = doc; (p = strstr(p, "```json\n")); ) {
        char *body = p + 8, *end = strstr(body, "```");
        cr_assert_not_null(end, "unterminated ```json block at byte %td", p - doc);
        size_t n = (size_t)(end - body);
        fc_rc rc = fc_msg_validate(body, n, NULL);
        cr_assert_eq(rc, FC_OK, "example %d (byte %td of protocol.md) is rejected: %s\n%.*s",
                     examples + 1, body - doc, fc_error_msg(), (int)n, body);
        json_auto_t *j = NULL;
        cr_assert_eq(fc_msg_load(body, n, &j), FC_OK);
        const char *s = json_string_value(json_object_get(j, "schema"));
        for (size_t i = 0; i < nschemas; i++)
            if (strcmp(s, schemas[i]) == 0)
                seen[i]++;
        examples++;
        p = end + 3;
    }
    cr_assert_geq(examples, (int)nschemas);
    for (size_t i = 0; i < nschemas; i++)
        cr_assert(seen[i] > 0, "docs/protocol.md has no example of %s", schemas[i]);
    free(doc);
}
