/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-openstack internals: the action table, the context every action gets (session,
 * relocation id, result under construction) and the helpers shared by the actions. */
#ifndef FLUID_OSA_H
#define FLUID_OSA_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "fluid/cloud/config.h"
#include "fluid/cloud/os.h"
#include "fluid/migrator.h"
#include "fluid/rc.h"

/* One option an action accepts: "--name" with a value, a flag, or a repeated value. */
enum osa_optkind { OSA_VAL = 0, OSA_FLAG, OSA_LIST };
struct osa_opt {
    const char *name; /* without the leading "--" */
    enum osa_optkind kind;
};

struct osa {
    struct fc_migrator *m;
    struct fc_os *os;
    struct fc_cloud_config *cfg; /* the cloud's configuration (storage_ssh and the rest) */
    const char *action;
    const char *cloud;
    const char *rid;      /* relocation id: --relocation-id, else the task's */
    unsigned timeout_s;   /* --timeout (waits for a resource to become ready) */
    json_t *args;         /* the parsed options: name -> string | true | [strings] */
    json_t *result;       /* the done result; actions add to "resources" */
};

struct osa_action {
    const char *name, *summary;
    const struct osa_opt *opts; /* NULL-ended; the common options are added */
    fc_rc (*run)(struct osa *a);
    bool data_out;              /* writes data on stdout: the by-hand result goes to stderr */
};

extern const struct osa_action osa_actions[];

/* Options: the string value of --name (NULL when absent), a flag, a list (never NULL). */
const char *osa_str(struct osa *a, const char *name);
bool osa_flag(struct osa *a, const char *name);
const json_t *osa_list(struct osa *a, const char *name);
/* The value of a required option, or FC_E_INVALID naming it. */
fc_rc osa_need(struct osa *a, const char *name, const char **out);

/* Records a resource in the result: kind, id, name and how (created|reused). */
void osa_resource(struct osa *a, const char *kind, const char *id, const char *name,
                  bool created);
/* The metadata/tag value marking what this relocation made: "fluid-relocation=<rid>". */
const char *osa_tag(struct osa *a);

/* JSON string field or NULL. */
const char *osa_js(const json_t *o, const char *key);

/* Finds the items of list `key` at `path` whose "name" is exactly `name` (path may already
 * filter by name; this re-checks). *out is a new array. */
fc_rc osa_find_named(struct osa *a, enum fc_os_service svc, const char *path, const char *key,
                     const char *name, json_t **out);
/* The single item named `name`: FC_E_NOTFOUND when none (with `what` in the message),
 * FC_E_CONFLICT when several. *out is a new reference. */
fc_rc osa_find_one(struct osa *a, enum fc_os_service svc, const char *path, const char *key,
                   const char *name, const char *what, json_t **out);
/* An id, or a name resolved to one item (id tried first). */
fc_rc osa_resolve(struct osa *a, enum fc_os_service svc, const char *list_path,
                  const char *item_prefix, const char *key, const char *one_key,
                  const char *id_or_name, const char *what, json_t **out);

/* Polls GET `path` every second until reply[key][field] is one of `ok` (NULL-ended list,
 * FC_OK), one of `bad` (FC_E_REMOTE naming the state and `fault` text if any), or
 * a->timeout_s passes (FC_E_TIMEOUT naming the last state). Progress events each poll.
 * *last (may be NULL) gets the last object (new reference). */
fc_rc osa_wait(struct osa *a, enum fc_os_service svc, const char *path, const char *key,
               const char *field, const char *const *ok, const char *const *bad,
               const char *what, json_t **last);

/* Percent-encodes a name for a query value (FC_E_INVALID when too long). */
fc_rc osa_q(const char *s, char *out, size_t cap);

/* PATCHes a Glance image (application/openstack-images-v2.1-json-patch). */
fc_rc osa_glance_patch(struct osa *a, const char *path, const json_t *patch);
/* Streams an active image to stdout (image-export's work; options framed/plain and
 * test-drop-at are read from a->args). */
fc_rc osa_export_image(struct osa *a, const json_t *img);
/* Imports stdin into the image `name` of this relocation (found or made); id gets its id.
 * md, mr: min disk (GB) and min RAM (MB), or NULL. */
fc_rc osa_import_image(struct osa *a, const char *name, const char *dfmt, const char *cfmt,
                       const char *md, const char *mr, char id[80]);

/* Finds this relocation's volume `name` or creates it (gb GiB, type and image_id may be
 * NULL: an empty volume), marked with the relocation id; waits until it is available (or
 * in-use when reused). vid gets its id, *vol (may be NULL) the volume object. */
fc_rc osa_ensure_volume(struct osa *a, const char *name, long gb, const char *type,
                        const char *image_id, char vid[80], bool *created, json_t **vol);
/* The cloud's volume id `id_or_name` (id first, else a unique name) as a volume object. */
fc_rc osa_find_volume(struct osa *a, const char *id_or_name, json_t **out);
/* Runs fluid-<kind> (the program beside this one) with args (NULL-ended, the command
 * first), stdin/stdout in_fd/out_fd (-1: /dev/null), stderr shared, events on its fd 3 and
 * `extra` fds as its 4, 5, ... (at most 7); relays its progress and info events; *result
 * gets its done result. Its failure is returned with its code and message; SIGTERM to us is
 * passed on. */
fc_rc osa_run_sibling(struct osa *a, const char *kind, const char *const *args, int in_fd,
                      int out_fd, const int *extra, size_t nextra, json_t **result);

/* The actions (image.c, import.c, net.c, netcreate.c, server.c, volume.c). */
fc_rc osa_snapshot(struct osa *a);
fc_rc osa_image_export(struct osa *a);
fc_rc osa_image_import(struct osa *a);
fc_rc osa_keypair_import(struct osa *a);
fc_rc osa_secgroup_create(struct osa *a);
fc_rc osa_secgroup_rules(struct osa *a);
fc_rc osa_floating_ip(struct osa *a);
fc_rc osa_server_create(struct osa *a);
fc_rc osa_network_create(struct osa *a);
fc_rc osa_subnet_create(struct osa *a);
fc_rc osa_router_create(struct osa *a);
fc_rc osa_volume_export(struct osa *a);
fc_rc osa_volume_import(struct osa *a);
fc_rc osa_volume_attach(struct osa *a);
fc_rc osa_volume_ssh_read(struct osa *a);
fc_rc osa_volume_ssh_write(struct osa *a);
fc_rc osa_config_rewrite(struct osa *a);

#endif
