/* SPDX-License-Identifier: Apache-2.0 */
/* What planning reads from the target cloud (reads only): existing resources by name, the
 * disk formats its Glance accepts, its volume types, and whether it has block storage. */
#include <string.h>

#include "fluid/cleanup.h"
#include "fluid/cloud/plan.h"
#include "fluid/cloud/resources.h"
#include "fluid/error.h"

/* Glance's image schema lists the disk formats it accepts. */
static fc_rc
disk_formats(struct fc_os *dst, json_t **out)
{
    json_auto_t *schema = NULL;
    fc_rc rc = fc_os_call(dst, FC_SVC_IMAGE, "GET", "/schemas/image", NULL, NULL, &schema);
    if (rc)
        return rc;
    json_t *en = json_object_get(json_object_get(json_object_get(schema, "properties"),
                                                 "disk_format"), "enum");
    json_auto_t *fmts = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(en, i, e) {
        if (json_is_string(e) && json_string_length(e) > 0 && json_string_length(e) < 32 &&
            json_array_size(fmts) < 64)
            json_array_append(fmts, e);
    }
    *out = json_incref(fmts);
    return FC_OK;
}

static fc_rc
volume_types(struct fc_os *dst, json_t **out)
{
    json_auto_t *raw = NULL;
    fc_rc rc = fc_os_list(dst, FC_SVC_VOLUME, "/types", "volume_types", 1000, &raw);
    if (rc)
        return rc;
    json_auto_t *names = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(raw, i, e) {
        json_t *n = json_object_get(e, "name");
        if (!json_is_string(n) || json_string_length(n) > 255)
            return FC_ERR(FC_E_INVALID, "cloud '%s': volume_types[%zu].name: expected a string",
                          fc_os_cloud_name(dst), i);
        json_array_append_new(names, json_pack("{s:O}", "name", n));
    }
    *out = json_incref(names);
    return FC_OK;
}

fc_rc
fc_plan_read_target(struct fc_os *dst, json_t **out)
{
    static const struct {
        const char *key;
        enum fc_res_kind kind;
    } lists[] = {
        {"flavors", FC_RES_FLAVOR},   {"keypairs", FC_RES_KEYPAIR},
        {"security_groups", FC_RES_SECURITY_GROUP}, {"networks", FC_RES_NETWORK},
        {"subnets", FC_RES_SUBNET},   {"routers", FC_RES_ROUTER},
        {"images", FC_RES_IMAGE},     {"servers", FC_RES_SERVER},
    };
    fc_rc rc;
    json_auto_t *t = json_object();
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        json_t *l = NULL;
        if ((rc = fc_res_list(dst, lists[i].kind, NULL, &l)))
            return rc;
        json_object_set_new(t, lists[i].key, l);
    }
    bool vol = fc_os_has_service(dst, FC_SVC_VOLUME);
    json_object_set_new(t, "has_volume", json_boolean(vol));
    json_t *vols = NULL, *types = NULL, *fmts = NULL;
    if (vol) {
        if ((rc = fc_res_list(dst, FC_RES_VOLUME, NULL, &vols)) || (rc = volume_types(dst, &types))) {
            json_decref(vols);
            return rc;
        }
    }
    json_object_set_new(t, "volumes", vols ? vols : json_array());
    json_object_set_new(t, "volume_types", types ? types : json_array());
    if ((rc = disk_formats(dst, &fmts)))
        return rc;
    json_object_set_new(t, "disk_formats", fmts);
    *out = json_incref(t);
    return FC_OK;
}
