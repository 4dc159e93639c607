/* SPDX-License-Identifier: Apache-2.0 */
/* Cleanup of a relocation: deletes, on the TARGET cloud only, what the relocation created
 * there, found by the marks the cloud actions put on everything they make (server and volume
 * metadata and image property fluid_relocation=<id>, Neutron tag or description
 * fluid-relocation=<id>, floating IP description "fluid <id> ...") and, for keypairs (which
 * hold no mark), by the names in the relocation's stored plan. Idempotent: a second run finds
 * nothing and deletes nothing. Runs on the planner's thread (blocking HTTP). */
#ifndef FLUID_CONDUIT_CLEANUP_H
#define FLUID_CONDUIT_CLEANUP_H

#include <jansson.h>
#include <stddef.h>

#include "fluid/rc.h"

/* `request`: the request as the store holds it (relocation_id, target.cloud, plan). *out:
 * {"relocation_id","cloud","ts","deleted":[{"kind","id","name"}],"errors":[{"kind","id",
 * "name","error"}]} (also when some deletions failed: rc is then FC_E_REMOTE and *reason
 * names the first; without *out, nothing could be read). Never a secret in either. */
fc_rc fc_cleanup_target(const char *clouds_file, const json_t *request, json_t **out,
                        char *reason, size_t cap);

#endif
