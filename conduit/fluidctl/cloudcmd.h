/* SPDX-License-Identifier: Apache-2.0 */
/* What fluidctl's cloud subcommands (inspect, plan) share: opening a cloud by its
 * clouds.yaml name, and the Topology table view. */
#ifndef FLUID_CTL_CLOUDCMD_H
#define FLUID_CTL_CLOUDCMD_H

#include <jansson.h>
#include <stdio.h>

#include "fluid/cloud/os.h"

/* Loads cloud `name` (clouds.yaml / OS_* as the openstack CLI) and opens a session. */
fc_rc fc_ctl_cloud_open(const char *name, struct fc_os **out);
/* Prints a Topology as a readable table. */
void fc_ctl_topology_print(FILE *f, const json_t *topo, const json_t *warnings);

#endif
