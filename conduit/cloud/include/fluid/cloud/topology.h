/* SPDX-License-Identifier: Apache-2.0 */
/* Inspection: the topology of a service instance (a set of servers) on one cloud, read with
 * one paginated list call per resource kind (no per-server round trips), as the proto
 * Topology message ("schema":"fluid.topology/1"; fields in docs/openstack.md). */
#ifndef FLUID_CLOUD_TOPOLOGY_H
#define FLUID_CLOUD_TOPOLOGY_H

#include <jansson.h>
#include <stdbool.h>

#include "fluid/cloud/os.h"
#include "fluid/rc.h"

#define FC_TOPOLOGY_SCHEMA "fluid.topology/1"

/* Which servers: names or ids, or a tag, or all of the project's. Exactly one is set. */
struct fc_selector {
    const char *const *servers;
    size_t nservers;
    const char *tag;
    bool all;
};

/* Reads the servers chosen by `sel` and everything they use: flavors, images or boot
 * volumes, attached volumes, ports, floating IPs, security groups (all rules), keypairs,
 * networks, subnets and routers. A name matching several servers, or nothing selected, is an
 * error. *out is a new Topology object holding exactly the fields of docs/protocol.md.
 * Things that exist but cannot be read (another user's keypair, a deleted image) are logged
 * and, when `warnings` is not NULL, returned there as [{"kind","id","reason"}]. */
fc_rc fc_topology_inspect(struct fc_os *os, const struct fc_selector *sel, json_t **out,
                          json_t **warnings);

/* Finds an element of array `arr` whose string field `key` equals `value` (NULL if none). */
json_t *fc_json_find(const json_t *arr, const char *key, const char *value);

#endif
