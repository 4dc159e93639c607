/* SPDX-License-Identifier: Apache-2.0 */
/* The man pages stay true to the programs: every fluidctl command (from its --help, i.e.
 * the table in cmds.c) and every fluid-conduit option and configuration key is in its page. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/error.h"
#include "fluid/spawn.h"

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    static char buf[256 * 1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strdup(buf);
}

static void
env(const char **src, const char **bin)
{
    *src = getenv("FLUID_SOURCE_DIR");
    *bin = getenv("FLUID_BIN_DIR");
    if (!*src || !*bin)
        cr_assert_fail("FLUID_SOURCE_DIR/FLUID_BIN_DIR not set: run through ctest");
}

Test(docs, every_fluidctl_command_is_in_the_man_page)
{
    const char *src, *bin;
    env(&src, &bin);
    char prog[2048], page[2048], out[16384];
    snprintf(prog, sizeof prog, "%s/fluidctl", bin);
    snprintf(page, sizeof page, "%s/conduit/fluidctl/fluidctl.1", src);
    const char *argv[] = {prog, "--help", NULL};
    int st;
    cr_assert_eq(fc_run(argv, out, sizeof out, NULL, 0, &st), FC_OK, "%s", fc_error_msg());
    char *man = slurp(page);
    int n = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        char name[64];
        if (strncmp(line, "  ", 2) != 0 || sscanf(line, " %63s", name) != 1)
            continue;
        char want[100];
        snprintf(want, sizeof want, ".TP\n\\fB%s", name); /* a command's entry opens so */
        cr_assert(strstr(man, want), "fluidctl.1 does not document \"%s\"", name);
        n++;
    }
    cr_assert_geq(n, 5, "fluidctl --help listed %d commands", n);
    free(man);
}

Test(docs, every_fluid_conduit_option_and_key_is_in_the_man_page)
{
    const char *src, *bin;
    env(&src, &bin);
    char prog[2048], page[2048], conf[2048], out[16384];
    snprintf(prog, sizeof prog, "%s/fluid-conduit", bin);
    snprintf(page, sizeof page, "%s/conduit/daemon/fluid-conduit.1", src);
    snprintf(conf, sizeof conf, "%s/conduit/daemon/conduit.conf.example", src);
    const char *argv[] = {prog, "--help", NULL};
    int st;
    cr_assert_eq(fc_run(argv, out, sizeof out, NULL, 0, &st), FC_OK, "%s", fc_error_msg());
    char *man = slurp(page), *ex = slurp(conf);
    int n = 0;
    for (char *p = out; (p = strstr(p, "--")); p += 2) {
        char opt[64];
        if (sscanf(p + 2, "%63[a-z-]", opt) != 1)
            continue;
        char want[100];
        snprintf(want, sizeof want, "\\-\\-%s", opt);
        for (char *c = want + 4; *c; c++)
            if (*c == '-') { /* troff writes every '-' of an option as "\-" */
                memmove(c + 1, c, strlen(c) + 1);
                *c = '\\';
                c++;
            }
        cr_assert(strstr(man, want), "fluid-conduit.1 lacks %s", want);
        n++;
    }
    cr_assert_geq(n, 5);
    for (char *line = strtok(ex, "\n"); line; line = strtok(NULL, "\n")) {
        char key[64];
        if (sscanf(line, "#%63[a-z_] =", key) == 1 && strchr(line, '=')) {
            char want[100];
            snprintf(want, sizeof want, "\\fB%s\\fR", key);
            cr_assert(strstr(man, want), "fluid-conduit.1 lacks the key %s", key);
        }
    }
    free(man);
    free(ex);
}
