/* SPDX-License-Identifier: Apache-2.0 */
/* The table of fluidctl's subcommands (see cmd.h). Keep it sorted as shown by --help. */
#include "cmd.h"

#include <stddef.h>

const struct fc_ctl_cmd fc_ctl_cmds[] = {
    {"submit", "validate a RelocationRequest FILE and publish it; prints the relocation id",
     fc_ctl_submit},
    {"relocate", "relocate servers between two clouds (the conduit plans it); --watch follows it",
     fc_ctl_relocate},
    {"watch", "follow a relocation's events until it ends (progress bar, or --json lines)",
     fc_ctl_watch},
    {"status", "ask the conduit for a relocation's state and tasks", fc_ctl_status},
    {"cancel", "cancel a relocation (brokers stop its chains, the conduit stops its plan)",
     fc_ctl_cancel},
    {"resume", "run a failed or cancelled relocation again (what is done is not redone)",
     fc_ctl_resume},
    {"overview", "print a finished relocation's overview (target compared with source, usage)",
     fc_ctl_overview},
    {"cleanup", "delete what a relocation created on its target (never the source)",
     fc_ctl_cleanup},
    {"brokers", "list the brokers alive (site, capacity, running, kinds)", fc_ctl_brokers},
    {"inspect", "print a service instance's topology on a cloud (servers, volumes, networks...)",
     fc_ctl_inspect},
    {"plan", "print the plan of a relocation between two clouds (reads only)", fc_ctl_plan},
    {NULL, NULL, NULL},
};
