/* SPDX-License-Identifier: Apache-2.0 */
/* fluidctl's subcommand table and the helpers subcommands share. A subcommand is
 * `int run(int argc, char **argv)` with argv[0] its own name; it returns an exit status
 * from the list below (documented in fluidctl.1). To add one: write its run function in its
 * own file, declare it here, and add a line to fc_ctl_cmds[] in cmds.c. */
#ifndef FLUID_CTL_CMD_H
#define FLUID_CTL_CMD_H

#include <stdbool.h>

#include "fluid/rc.h"

struct fc_ctl_cmd {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};
/* Ends with a {NULL} entry. */
extern const struct fc_ctl_cmd fc_ctl_cmds[];

/* Exit statuses of fluidctl (never renumber). */
enum {
    FC_CTL_OK = 0,          /* done / found / sent */
    FC_CTL_FAILED = 1,      /* the relocation failed (watch, status) */
    FC_CTL_USAGE = 2,       /* bad command line or configuration */
    FC_CTL_INVALID = 3,     /* the input was rejected (e.g. submit: the request is invalid) */
    FC_CTL_UNREACHABLE = 4, /* RabbitMQ (or a cloud) could not be reached, or refused us */
    FC_CTL_NOTFOUND = 5,    /* unknown relocation, no broker heard, no such file */
    FC_CTL_CANCELLED = 6,   /* the relocation was cancelled (watch, status) */
    FC_CTL_TIMEOUT = 7,     /* no answer in time (status --timeout, watch --timeout) */
    FC_CTL_INTERNAL = 8,    /* anything else */
};

/* Global options, set by main() from the options before the subcommand. */
extern const char *fc_ctl_amqp_flag;   /* --amqp URL, or NULL */
extern const char *fc_ctl_config_path; /* --config FILE, or NULL */

/* The AMQP URL: --amqp, else $FLUID_AMQP_URL, else the config file's amqp_url, else the
 * default. The config file is --config, else ~/.config/fluidcloud/fluidctl.conf, else
 * /etc/fluidcloud/fluidctl.conf (when they exist). NULL after printing an error. */
const char *fc_ctl_amqp_url(void);
/* Maps an fc_rc to an exit status (FC_E_NET/AUTH/VERIFY: UNREACHABLE, INVALID: INVALID...). */
int fc_ctl_exit_for(fc_rc rc);
/* Prints "fluidctl CMD: <fc_error_msg()>" to stderr and returns fc_ctl_exit_for(rc). */
int fc_ctl_fail(const char *cmd, fc_rc rc);
/* Resets getopt for a subcommand's own parsing. */
void fc_ctl_getopt_reset(void);

/* The subcommands of this folder. */
int fc_ctl_submit(int argc, char **argv);
int fc_ctl_watch(int argc, char **argv);
int fc_ctl_status(int argc, char **argv);
int fc_ctl_cancel(int argc, char **argv);
int fc_ctl_brokers(int argc, char **argv);
/* relocate.c: builds a plan-less request, submits it, --watch follows it */
int fc_ctl_relocate(int argc, char **argv);
/* cleanup.c: the conduit deletes what a relocation created on its target; overview */
int fc_ctl_cleanup(int argc, char **argv);
int fc_ctl_overview(int argc, char **argv);
/* resume.c: the conduit runs a failed or cancelled relocation again; --watch follows it */
int fc_ctl_resume(int argc, char **argv);
/* live.c: relocate --watch's live view (per server and volume), ending with the overview */
int fc_ctl_live(const char *rid, bool json, double timeout);
/* inspect.c, plan.c (the OpenStack engineer's) */
int fc_ctl_inspect(int argc, char **argv);
int fc_ctl_plan(int argc, char **argv);

#endif
