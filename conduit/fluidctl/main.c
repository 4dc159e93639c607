/* SPDX-License-Identifier: Apache-2.0 */
/* fluidctl: global options, then the subcommand from the table in cmds.c. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fluid/log.h"

static void
usage(FILE *f)
{
    fprintf(f, "usage: fluidctl [--amqp URL] [--config FILE] COMMAND [ARGS...]\n\ncommands:\n");
    for (const struct fc_ctl_cmd *c = fc_ctl_cmds; c->name; c++)
        fprintf(f, "  %-9s %s\n", c->name, c->summary);
    fprintf(f, "\n`fluidctl COMMAND --help` for a command's options; exit statuses in fluidctl(1).\n");
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"amqp", required_argument, NULL, 'a'}, {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},       {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    /* '+': stop at the subcommand */
    while ((ch = getopt_long(argc, argv, "+a:c:hV", opts, NULL)) != -1) {
        switch (ch) {
        case 'a': fc_ctl_amqp_flag = optarg; break;
        case 'c': fc_ctl_config_path = optarg; break;
        case 'h': usage(stdout); return FC_CTL_OK;
        case 'V': printf("fluidctl %s\n", FLUID_VERSION); return FC_CTL_OK;
        default: usage(stderr); return FC_CTL_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return FC_CTL_USAGE;
    }
    setenv("FLUID_LOG_LEVEL", getenv("FLUID_LOG_LEVEL") ? getenv("FLUID_LOG_LEVEL") : "warn", 1);
    fc_log_init("fluidctl");
    signal(SIGPIPE, SIG_IGN);
    const char *name = argv[optind];
    for (const struct fc_ctl_cmd *c = fc_ctl_cmds; c->name; c++) {
        if (strcmp(c->name, name) == 0) {
            int sub_argc = argc - optind;
            char **sub_argv = argv + optind;
            fc_ctl_getopt_reset();
            return c->run(sub_argc, sub_argv);
        }
    }
    fprintf(stderr, "fluidctl: unknown command \"%s\"\n", name);
    usage(stderr);
    return FC_CTL_USAGE;
}
