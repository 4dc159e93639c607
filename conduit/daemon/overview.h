/* SPDX-License-Identifier: Apache-2.0 */
/* The overview of a finished relocation: the relocated servers and what they use read back
 * from the target (fc_topology_inspect) and compared field by field with the source (servers:
 * status, flavor, image, metadata, tags, fixed IPs, security groups, keypair, volumes and
 * their devices, floating IPs; security groups and their rules, remote groups mapped to their
 * copies; keypairs by fingerprint; the MTU of the networks it created), every difference
 * listed (one the plan announced, a network's MTU left to the target's default, apart);
 * and the usage
 * (os-simple-tenant-usage) of the servers on both sides. Runs on the planner's thread. */
#ifndef FLUID_CONDUIT_OVERVIEW_H
#define FLUID_CONDUIT_OVERVIEW_H

#include <jansson.h>
#include <stddef.h>

#include "fluid/rc.h"

/* `request`: the request as the store holds it (relocation_id, source/target clouds,
 * selector, plan). *out: {"relocation_id","source","target","ts","servers":[{"source_id",
 * "source_name","target_id","target_name"}],"compared":N,"differences":[{"kind","name",
 * "field","source","target"}],"announced":[{... as differences, "note"}],"usage":{"source":
 * {...},"target":{...}}}. On failure *reason
 * names the step ("overview: inspect target cloud \"t\": ...") and never holds a secret. */
fc_rc fc_overview_build(const char *clouds_file, const json_t *request, json_t **out,
                        char *reason, size_t cap);

/* The comparison alone (pure, unit-testable): source and target Topologies, the relocation
 * id (target names derive from it), adds "servers", "compared", "differences" and
 * "announced" to out. */
fc_rc fc_overview_compare(const json_t *src, const json_t *dst, const char *relocation_id,
                          json_t *out);

#endif
