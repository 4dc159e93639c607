/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of the planner shared by plan.c and plan_server.c (not installed). */
#ifndef FLUID_CLOUD_PLAN_INTERNAL_H
#define FLUID_CLOUD_PLAN_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "fluid/cloud/plan.h"
#include "fluid/rc.h"

#define SCHEMA_PLAN "fluid.plan/1"
#define RULES_PER_TASK 25

struct pb {
    const json_t *topo, *target;
    const struct fc_plan_opts *o;
    char rid[130];
    json_t *tasks, *creates, *unmappable, *notes;
    json_t *done;  /* source id -> task id of the task that makes its copy */
    json_t *names; /* source id -> target name */
};

void pb_hex_digest(const char *const *parts, size_t n, char *out, size_t nhex);

/* report entries */
void pb_note(struct pb *b, const char *kind, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void pb_unmappable(struct pb *b, const char *kind, const char *id, const char *name,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void pb_created(struct pb *b, const char *kind, const char *cloud, const char *source_id,
                const char *source_name, const char *target_name, const char *tid,
                const char *list);
/* "t-<step>-<10 hex>" from the relocation id, step and source id */
void pb_task_id(struct pb *b, const char *step, const char *source_id, char *out, size_t cap);
bool pb_target_has(struct pb *b, const char *list, const char *name);
/* a stage {"kind","args"} (takes args), an argv array from a NULL-ended list, a flag+value */
json_t *pb_stage(const char *kind, json_t *args);
json_t *pb_argv_of(const char *first, ...);
void pb_arg2(json_t *args, const char *flag, const char *value);
/* appends a task (takes stages and deps); checks argument limits */
fc_rc pb_add_task(struct pb *b, const char *tid, json_t *stages, json_t *deps, bool framed,
                  unsigned timeout_s);
void pb_dep_add(json_t *deps, const char *tid);
/* what was planned for a source id: the task making its copy, and the copy's name */
const char *pb_done_task(struct pb *b, const char *source_id);
const char *pb_target_name_of(struct pb *b, const char *source_id);
void pb_remember(struct pb *b, const char *source_id, const char *tid, const char *tname);
const char *pb_str(const json_t *o, const char *k);
/* the target's external network (by name) for a source external network id, or NULL */
const char *pb_map_external(struct pb *b, const char *src_net_id);

fc_rc pb_plan_volumes(struct pb *b);
fc_rc pb_plan_server(struct pb *b, const json_t *s);
/* checks options config_ssh, mountpoints and volume_method (before anything is planned) */
fc_rc pb_check_options(struct pb *b);
/* one config-rewrite task per planned server, after every launch, floating IP and attach */
fc_rc pb_plan_configs(struct pb *b);

#endif
