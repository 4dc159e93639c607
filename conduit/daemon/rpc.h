/* SPDX-License-Identifier: Apache-2.0 */
/* The conduit's own RPC beside fluid.status/1 (docs/fluid-conduit.md "Relocation info and
 * cleanup"): fluidctl sends a fluid.conduit-request/1 to queue fluid.conduit.rpc and gets a
 * fluid.conduit-reply/1 on its private queue. Shared by fluid-conduit and fluidctl. */
#ifndef FLUID_CONDUIT_RPC_H
#define FLUID_CONDUIT_RPC_H

#include <jansson.h>
#include <stddef.h>

#include "fluid/msg.h"

#define FC_CONDUIT_SCHEMA_CREQ "fluid.conduit-request/1"
#define FC_CONDUIT_SCHEMA_CREPLY "fluid.conduit-reply/1"

/* action "info": the relocation's state, its tasks with their step and subject (the server
 * or volume each works for), the planner's report, the overview and the cleanup record.
 * action "cleanup": delete what the relocation created on the target (refused while it
 * runs); the reply comes when the cleanup ended and holds its record.
 * action "resume": run a failed or cancelled relocation again (fc_store_resume); the reply
 * is the info after the change, with "resumed" {tasks_reset, full, replan} or "refused". */
struct fc_creq {
    char relocation_id[FC_ID_MAX + 1];
    char correlation_id[FC_ID_MAX + 1];
    char reply_to[256];
    char action[16]; /* "info", "cleanup" or "resume" */
};

/* Strict: exactly these fields (and "schema"), ids valid, reply_to one printable line of at
 * most 255 bytes, action known; errors name the field. */
fc_rc fc_creq_parse(const char *buf, size_t len, struct fc_creq *out);
json_t *fc_creq_to_json(const struct fc_creq *q);

/* The step of a planner task id "t-<step>-<hex>" into out ("" for other ids). */
void fc_task_step(const char *task_id, char *out, size_t cap);

#endif
