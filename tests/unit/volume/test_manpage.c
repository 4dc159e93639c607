// SPDX-License-Identifier: Apache-2.0
// Every option that `fluid-volume --help` lists is documented in fluid-volume.1.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/spawn.h"

Test(manpage, every_option_is_documented)
{
    const char *bin = getenv("FLUID_BIN_DIR"), *src = getenv("FLUID_SOURCE_DIR");
    if (!bin || !src)
        cr_assert_fail("FLUID_BIN_DIR / FLUID_SOURCE_DIR not set: run through ctest");
    char prog[700], page[700];
    snprintf(prog, sizeof prog, "%s/fluid-volume", bin);
    snprintf(page, sizeof page, "%s/migrators/volume/fluid-volume.1", src);
    static char help[16384], man[65536];
    const char *argv[] = {prog, "--help", NULL};
    int st;
    cr_assert_eq(fc_run(argv, help, sizeof help, NULL, 0, &st), FC_OK);
    FILE *f = fopen(page, "r");
    cr_assert_not_null(f, "%s", page);
    size_t n = fread(man, 1, sizeof man - 1, f);
    fclose(f);
    man[n] = 0;
    int checked = 0;
    for (char *p = strstr(help, "--"); p; p = strstr(p + 2, "--")) {
        char opt[64];
        size_t k = 0;
        for (const char *q = p + 2; k + 1 < sizeof opt && (*q == '-' || (*q >= 'a' && *q <= 'z'));
             q++)
            opt[k++] = *q;
        opt[k] = 0;
        if (!k)
            continue;
        /* troff spells "--no-sparse" as "\-\-no\-sparse" */
        char esc[160] = "\\-\\-";
        for (size_t i = 0; i < k; i++)
            strncat(esc, opt[i] == '-' ? "\\-" : (char[]){opt[i], 0}, sizeof esc - strlen(esc) - 1);
        cr_assert(strstr(man, esc), "--%s is not in %s", opt, page);
        checked++;
    }
    cr_assert_geq(checked, 12, "only %d options found in --help: %s", checked, help);
}
