/* SPDX-License-Identifier: Apache-2.0 */
/* The subject of a planner task: the server or volume it works for, as the conduit's "info"
 * reply names it (rpc.h) and fluidctl's live view groups the tasks by it. */
#ifndef FLUID_CONDUIT_SUBJECT_H
#define FLUID_CONDUIT_SUBJECT_H

#include <jansson.h>
#include <stddef.h>

/* `creates`: the planner report's creates[]; `task`: the plan's task. out gets
 * "server <source name>" for the snapshot, image, launch, volume attach, floating IP and
 * config rewrite of a server, "volume <source name>" for a volume's copy, "" for what the
 * servers share (keypairs, security groups and rules, networks, subnets, routers) or a task
 * it cannot tell. A task with a creates[] entry of its own is a server's or a volume's by
 * that entry; the others by their --server argument: the source name for config-rewrite,
 * the target name for the other actions (docs/openstack.md "The plan"). */
void fc_task_subject(const json_t *creates, const json_t *task, char *out, size_t cap);

#endif
