/* SPDX-License-Identifier: Apache-2.0 */
/* Planning a relocation: from a source Topology and what the target cloud already has (read
 * only), the proto Plan ("fluid.plan/1": tasks with depends_on forming a DAG) and a report of
 * what will be created on the target under which names, what is reused, and what cannot be
 * carried over and why. Target names are derived from the relocation id, so a re-run finds
 * and reuses what an earlier run created. The stage vocabulary (fluid-openstack commands and
 * their arguments) is documented in docs/openstack.md. */
#ifndef FLUID_CLOUD_PLAN_H
#define FLUID_CLOUD_PLAN_H

#include <jansson.h>

#include "fluid/cloud/config.h"
#include "fluid/cloud/os.h"
#include "fluid/rc.h"

struct fc_plan_opts {
    const char *src_cloud, *dst_cloud; /* clouds.yaml names, passed to the migrators */
    const char *relocation_id;         /* NULL: derived from clouds and servers */
    const char *disk_format;           /* image format wanted on the target (NULL: keep) */
    const char *rules;                 /* config rules file for the config rewrite, or NULL */
    const char *rules_doc;             /* or the rules document itself: carried in the task
                                        * (--rules-json), so any broker host can run it */
    bool exact_flavor;                 /* refuse the closest-fitting flavor */
    const char *volume_method;         /* "image" (also NULL) or "ssh" (storage_ssh) */
    /* request options.config_ssh {"user","port","identity","known_hosts","host"}: how the
     * config step reaches a relocated server over SFTP; options.mountpoints {"<source volume
     * name or id>": "/mnt/x" | {"source": "/mnt/x", "target": "/mnt/y"}}: variables for the
     * rules. Both may be NULL; checked by fc_plan_build. */
    const json_t *config_ssh;
    const json_t *mountpoints;
    /* the clouds' configurations, when the caller has them (may be NULL): with
     * volume_method "ssh", a cloud without storage_ssh fails planning, naming it */
    const struct fc_cloud_config *src_config, *dst_config;
};
#define FLUID_PLAN_HAS_VOLUME_METHOD 1
#define FLUID_PLAN_HAS_CONFIG_SSH 1

/* Reads what planning needs from the target (reads only): flavors, keypairs, security
 * groups, networks, subnets, routers, images, servers, volumes, accepted disk formats and
 * whether it has block storage. *out: {"flavors":[...], ..., "disk_formats":[...],
 * "has_volume":bool}. */
fc_rc fc_plan_read_target(struct fc_os *dst, json_t **out);

/* Derives the relocation id "r-<16 hex>" from the clouds and the sorted server ids. */
void fc_plan_relocation_id(const char *src, const char *dst, const json_t *topology,
                           char out[24]);

/* The target name of a source resource: "<name>-fc<8 hex of sha256(relocation id)>"
 * (names longer than 200 bytes are cut). */
void fc_plan_target_name(const char *relocation_id, const char *name, char *out, size_t cap);

/* Builds the plan (pure: no network). `topology` is a validated Topology, `target` the
 * output of fc_plan_read_target. *plan is a fluid.plan/1 message; *report is
 * {"relocation_id","source","target","creates":[{"kind","source_id","source_name",
 * "target_name","task_id","action":"create"|"reuse"}],"unmappable":[{"kind","id","name",
 * "reason"}],"notes":[{"kind","id","note"}]}. */
fc_rc fc_plan_build(const json_t *topology, const json_t *target,
                    const struct fc_plan_opts *opts, json_t **plan, json_t **report);

#endif
