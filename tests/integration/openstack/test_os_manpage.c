/* SPDX-License-Identifier: Apache-2.0 */
/* Every action of fluid-openstack and every option it takes (as `ACTION --help` lists them)
 * is in the man page, migrators/openstack/fluid-openstack.1. No network. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "fluid/error.h"
#include "fluid/spawn.h"

static char *
manpage(void)
{
    const char *src = getenv("FLUID_SOURCE_DIR");
    cr_assert_not_null(src, "FLUID_SOURCE_DIR is not set: run through ctest");
    char path[1024];
    snprintf(path, sizeof path, "%s/migrators/openstack/fluid-openstack.1", src);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char *b = calloc(1, 1 << 20);
    size_t n = fread(b, 1, (1 << 20) - 1, f);
    b[n] = '\0';
    fclose(f);
    return b;
}

/* "--no-dhcp" as troff writes it: "\-\-no\-dhcp". */
static void
troff(const char *opt, char *out, size_t cap)
{
    size_t n = 0;
    for (; *opt && n + 3 < cap; opt++) {
        if (*opt == '-')
            out[n++] = '\\';
        out[n++] = *opt;
    }
    out[n] = '\0';
}

static void
run(const char *const *argv, char *out, size_t cap)
{
    int st = 0;
    cr_assert_eq(fc_run(argv, out, cap, NULL, 0, &st), FC_OK, "%s", fc_error_msg());
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s %s failed", argv[0], argv[1]);
}

Test(manpage, every_action_and_option_documented)
{
    char prog[1024], *man = manpage();
    snprintf(prog, sizeof prog, "%s/fluid-openstack", getenv("FLUID_BIN_DIR"));
    static char list[65536], help[65536];
    const char *a1[] = {prog, "--help", NULL};
    run(a1, list, sizeof list);
    size_t actions = 0, options = 0;
    for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "  ", 2) != 0)
            continue;
        char action[64];
        if (sscanf(line, " %63s", action) != 1)
            continue;
        char t[200];
        troff(action, t, sizeof t);
        cr_assert(strstr(man, t), "action %s is not in the man page", action);
        actions++;
        const char *a2[] = {prog, action, "--help", NULL};
        run(a2, help, sizeof help);
        for (char *p = strstr(help, "  --"); p; p = strstr(p + 1, "  --")) {
            char opt[64];
            cr_assert_eq(sscanf(p, " %63s", opt), 1);
            troff(opt, t, sizeof t);
            cr_assert(strstr(man, t), "option %s of %s is not in the man page", opt, action);
            options++;
        }
    }
    cr_assert_geq(actions, 14u, "only %zu actions listed", actions);
    cr_assert_geq(options, 60u, "only %zu options seen", options);
    free(man);
}
