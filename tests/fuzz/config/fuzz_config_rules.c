/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: a fluid-config rule set and a file, from arbitrary bytes
 * ("RULES-JSON\n--8<--\nFILE"). The rule parser must accept or refuse with a message; each
 * accepted rule is applied to the file (must succeed or fail cleanly), and the diff of the
 * result must be empty exactly when nothing changed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "fluid/error.h"

static struct cfg_vars vars;

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
                if (cfg_diff("/r/f", file, flen, out.p ? out.p : "", out.len, &d) == FC_OK &&
                    (d.len == 0) != same)
                    abort();
                cfg_buf_free(&d);
            }
            cfg_buf_free(&out);
        }
    }
    cfg_rules_free(&r);
    return 0;
}
