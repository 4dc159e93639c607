/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: a fluid-config rule set and a file, from arbitrary bytes
 * ("RULES-JSON\n--8<--\nFILE"). The rule parser must accept or refuse with a message; each
 * accepted rule is applied to the file (must succeed or fail cleanly); the unified diff of
 * the result must be empty exactly when nothing changed, and applying it to the old bytes
 * (as patch does) must give the new bytes exactly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "fluid/error.h"

static struct cfg_vars vars;

/* Applies a unified diff of one file to old, as patch does; aborts on anything malformed. */
static void
apply_diff(const char *old, size_t olen, const char *d, size_t dlen, struct cfg_buf *out)
{
    size_t op = 0, dp = 0, oline = 1;
    const char *e = memchr(d, '\n', dlen);
    if (!e || strncmp(d, "--- a/", 6) != 0)
        abort();
    dp = (size_t)(e - d) + 1;
    e = memchr(d + dp, '\n', dlen - dp);
    if (!e || strncmp(d + dp, "+++ b/", 6) != 0)
        abort();
    dp = (size_t)(e - d) + 1;
    bool last_had_nl = true; /* the last line written: did it end with its newline */
    while (dp < dlen) {
        unsigned long a, b, c, dd;
        if (sscanf(d + dp, "@@ -%lu,%lu +%lu,%lu @@", &a, &b, &c, &dd) != 4)
            abort();
        dp = (size_t)((const char *)memchr(d + dp, '\n', dlen - dp) - d) + 1;
        size_t start = b ? a : a + 1; /* an empty range names the line before */
        while (oline < start) {       /* copy the lines before the hunk */
            const char *nl = memchr(old + op, '\n', olen - op);
            if (!nl)
                abort();
            cfg_buf_add(out, old + op, (size_t)(nl - old - op) + 1);
            op = (size_t)(nl - old) + 1;
            oline++;
        }
        while (dp < dlen && d[dp] != '@') {
            char mark = d[dp];
            const char *nl = memchr(d + dp, '\n', dlen - dp);
            if (!nl)
                abort();
            size_t n = (size_t)(nl - d) - dp - 1; /* the line without mark and newline */
            bool nonl = (size_t)(nl - d) + 1 < dlen && d[(size_t)(nl - d) + 1] == '\\';
            if (mark == ' ' || mark == '-') {
                if (op + n + !nonl > olen || memcmp(old + op, d + dp + 1, n) != 0)
                    abort(); /* context or removed line differs from the old file */
                op += n + !nonl;
                oline++;
            }
            if (mark == ' ' || mark == '+') {
                cfg_buf_add(out, d + dp + 1, n);
                if (!nonl)
                    cfg_buf_add(out, "\n", 1);
                last_had_nl = !nonl;
            } else if (mark != '-') {
                abort();
            }
            dp = (size_t)(nl - d) + 1;
            if (nonl) /* skip the "\ No newline at end of file" line */
                dp = (size_t)((const char *)memchr(d + dp, '\n', dlen - dp) - d) + 1;
        }
    }
    (void)last_had_nl;
    cfg_buf_add(out, old + op, olen - op);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    cfg_vars_init(&vars);
    json_t *j = json_loads("{\"target\":{\"ip\":\"10.0.0.9\",\"path\":\"/a\\\\1$\",\"n\":5,"
                           "\"list\":[\"x\",\"y\"]}}",
                           0, NULL);
    cfg_vars_merge(&vars, j);
    json_decref(j);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char sep[] = "\n--8<--\n";
    const char *in = (const char *)data;
    const char *cut = memmem(in, size, sep, sizeof sep - 1);
    size_t rlen = cut ? (size_t)(cut - in) : size;
    const char *file = cut ? cut + sizeof sep - 1 : "";
    size_t flen = cut ? size - rlen - (sizeof sep - 1) : 0;

    struct cfg_rules r;
    fc_rc rc = cfg_rules_parse(&r, in, rlen, &vars);
    if (rc != FC_OK) {
        if (!fc_error_msg()[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    struct cfg_limits lim = r.limits;
    if (lim.match_limit > 100000)
        lim.match_limit = 100000; /* keep each input fast */
    if (lim.max_matches > 10000)
        lim.max_matches = 10000;
    for (size_t i = 0; i < r.nsets; i++) {
        for (size_t j = 0; j < r.sets[i].nrules; j++) {
            struct cfg_buf out = {0};
            rc = cfg_apply_rule(&r.sets[i].rules[j], &lim, "/r/f", file, flen, &out);
            if (rc != FC_OK && !fc_error_msg()[0])
                abort();
            if (rc == FC_OK) {
                struct cfg_buf d = {0};
                bool same = out.len == flen && (flen == 0 || memcmp(out.p, file, flen) == 0);
                if (cfg_diff("/r/f", file, flen, out.p ? out.p : "", out.len, &d) != FC_OK)
                    abort();
                if ((d.len == 0) != same)
                    abort();
                if (d.len) {
                    struct cfg_buf back = {0};
                    cfg_buf_str(&d); /* sscanf needs the NUL */
                    apply_diff(file, flen, d.p, d.len, &back);
                    if (back.len != out.len || (out.len && memcmp(back.p, out.p, out.len)))
                        abort(); /* the dry-run diff does not give the real run's bytes */
                    cfg_buf_free(&back);
                }
                cfg_buf_free(&d);
            }
            cfg_buf_free(&out);
        }
    }
    cfg_rules_free(&r);
    return 0;
}
