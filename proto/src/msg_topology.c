/* SPDX-License-Identifier: Apache-2.0 */
/* Topology (fluid.topology/1): a service instance's resources as inspected from a cloud.
 * Validated against the field tables below (docs/protocol.md lists them); kept as JSON.
 * Optional fields may be null (OpenStack APIs answer null for "not set"). */
#include "msg_internal.h"

#include <stdlib.h>
#include <string.h>

enum ft { F_STR, F_INT, F_BOOL, F_OBJ, F_STRV, F_OBJV };

struct field {
    const char *name;
    enum ft type;
    bool required;
    const struct field *sub; /* F_OBJV: fields of each element */
};

#define END {NULL, F_STR, false, NULL}

static const struct field attachment_f[] = {
    {"volume_id", F_STR, true, NULL}, {"server_id", F_STR, false, NULL},
    {"device", F_STR, false, NULL}, END,
};
static const struct field server_f[] = {
    {"id", F_STR, true, NULL}, {"name", F_STR, true, NULL}, {"status", F_STR, false, NULL},
    {"flavor_id", F_STR, false, NULL}, {"image_id", F_STR, false, NULL},
    {"boot_volume_id", F_STR, false, NULL}, {"key_name", F_STR, false, NULL},
    {"availability_zone", F_STR, false, NULL}, {"volume_attachments", F_OBJV, false, attachment_f},
    {"port_ids", F_STRV, false, NULL}, {"security_groups", F_STRV, false, NULL},
    {"metadata", F_OBJ, false, NULL}, {"tags", F_STRV, false, NULL},
    {"created", F_STR, false, NULL}, END,
};
static const struct field flavor_f[] = {
    {"id", F_STR, true, NULL}, {"name", F_STR, true, NULL}, {"vcpus", F_INT, true, NULL},
    {"ram_mb", F_INT, true, NULL}, {"disk_gb", F_INT, true, NULL},
    {"ephemeral_gb", F_INT, false, NULL}, {"swap_mb", F_INT, false, NULL},
    {"is_public", F_BOOL, false, NULL}, {"extra_specs", F_OBJ, false, NULL}, END,
};
static const struct field image_f[] = {
    {"id", F_STR, true, NULL}, {"name", F_STR, false, NULL}, {"status", F_STR, false, NULL},
    {"disk_format", F_STR, false, NULL}, {"container_format", F_STR, false, NULL},
    {"size", F_INT, false, NULL}, {"checksum", F_STR, false, NULL},
    {"min_disk_gb", F_INT, false, NULL}, {"min_ram_mb", F_INT, false, NULL},
    {"visibility", F_STR, false, NULL}, {"properties", F_OBJ, false, NULL}, END,
};
static const struct field vol_attach_f[] = {
    {"server_id", F_STR, true, NULL}, {"device", F_STR, false, NULL}, END,
};
static const struct field volume_f[] = {
    {"id", F_STR, true, NULL}, {"name", F_STR, false, NULL}, {"size_gb", F_INT, true, NULL},
    {"volume_type", F_STR, false, NULL}, {"bootable", F_BOOL, false, NULL},
    {"status", F_STR, false, NULL}, {"image_id", F_STR, false, NULL},
    {"attachments", F_OBJV, false, vol_attach_f}, {"metadata", F_OBJ, false, NULL}, END,
};
static const struct field network_f[] = {
    {"id", F_STR, true, NULL}, {"name", F_STR, false, NULL}, {"external", F_BOOL, false, NULL},
    {"shared", F_BOOL, false, NULL}, {"mtu", F_INT, false, NULL},
    {"subnet_ids", F_STRV, false, NULL}, END,
};
static const struct field pool_f[] = {
    {"start", F_STR, true, NULL}, {"end", F_STR, true, NULL}, END,
};
static const struct field subnet_f[] = {
    {"id", F_STR, true, NULL}, {"name", F_STR, false, NULL}, {"network_id", F_STR, true, NULL},
    {"cidr", F_STR, true, NULL}, {"ip_version", F_INT, false, NULL},
    {"gateway_ip", F_STR, false, NULL}, {"enable_dhcp", F_BOOL, false, NULL},
    {"dns_nameservers", F_STRV, false, NULL}, {"allocation_pools", F_OBJV, false, pool_f}, END,
};
static const struct field router_iface_f[] = {
    {"subnet_id", F_STR, true, NULL}, {"port_id", F_STR, false, NULL},
    {"ip_address", F_STR, false, NULL}, END,
};
static const struct field router_f[] = {
    {"id", F_STR, true, NULL}, {"name", F_STR, false, NULL},
    {"external_network_id", F_STR, false, NULL}, {"interfaces", F_OBJV, false, router_iface_f},
    END,
};
static const struct field fixed_ip_f[] = {
    {"subnet_id", F_STR, false, NULL}, {"ip_address", F_STR, true, NULL}, END,
};
static const struct field port_f[] = {
    {"id", F_STR, true, NULL}, {"name", F_STR, false, NULL}, {"network_id", F_STR, true, NULL},
    {"mac_address", F_STR, false, NULL}, {"fixed_ips", F_OBJV, false, fixed_ip_f},
    {"device_id", F_STR, false, NULL}, {"device_owner", F_STR, false, NULL},
    {"security_group_ids", F_STRV, false, NULL}, END,
};
static const struct field fip_f[] = {
    {"id", F_STR, true, NULL}, {"floating_ip_address", F_STR, true, NULL},
    {"floating_network_id", F_STR, false, NULL}, {"port_id", F_STR, false, NULL},
    {"fixed_ip_address", F_STR, false, NULL}, END,
};
static const struct field rule_f[] = {
    {"id", F_STR, false, NULL}, {"direction", F_STR, true, NULL},
    {"ethertype", F_STR, false, NULL}, {"protocol", F_STR, false, NULL},
    {"port_range_min", F_INT, false, NULL}, {"port_range_max", F_INT, false, NULL},
    {"remote_ip_prefix", F_STR, false, NULL}, {"remote_group_id", F_STR, false, NULL},
    {"description", F_STR, false, NULL}, END,
};
static const struct field sg_f[] = {
    {"id", F_STR, true, NULL}, {"name", F_STR, true, NULL},
    {"description", F_STR, false, NULL}, {"rules", F_OBJV, false, rule_f}, END,
};
static const struct field keypair_f[] = {
    {"name", F_STR, true, NULL}, {"public_key", F_STR, false, NULL},
    {"type", F_STR, false, NULL}, {"fingerprint", F_STR, false, NULL}, END,
};

static const struct field top_f[] = {
    {"schema", F_STR, true, NULL}, {"relocation_id", F_STR, true, NULL},
    {"cloud", F_STR, false, NULL}, {"region", F_STR, false, NULL},
    {"project_id", F_STR, false, NULL}, {"inspected_at", F_STR, false, NULL},
    {"servers", F_OBJV, false, server_f}, {"flavors", F_OBJV, false, flavor_f},
    {"images", F_OBJV, false, image_f}, {"volumes", F_OBJV, false, volume_f},
    {"networks", F_OBJV, false, network_f}, {"subnets", F_OBJV, false, subnet_f},
    {"routers", F_OBJV, false, router_f}, {"ports", F_OBJV, false, port_f},
    {"floating_ips", F_OBJV, false, fip_f}, {"security_groups", F_OBJV, false, sg_f},
    {"keypairs", F_OBJV, false, keypair_f}, END,
};

static fc_rc check_obj(struct fc_jp *p, const json_t *o, const struct field *f);

static fc_rc
check_value(struct fc_jp *p, const json_t *v, const struct field *f)
{
    int64_t x;
    switch (f->type) {
    case F_STR: return j_str_value(p, v, FC_TEXT_MAX * 4, J_ANY, true, NULL);
    case F_INT: return j_int_value(p, v, INT64_MIN, INT64_MAX, &x);
    case F_BOOL:
        if (!json_is_boolean(v))
            return jp_err(p, FC_E_INVALID, "expected a boolean, got %s", j_type_name(v));
        return FC_OK;
    case F_OBJ: return j_free_form(p, v, true);
    case F_STRV:
    case F_OBJV: {
        if (!json_is_array(v))
            return jp_err(p, FC_E_INVALID, "expected an array, got %s", j_type_name(v));
        if (json_array_size(v) > FC_LIST_MAX)
            return jp_err(p, FC_E_INVALID, "%zu entries, more than the limit of %d",
                          json_array_size(v), FC_LIST_MAX);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            size_t old = jp_idx(p, i);
            fc_rc rc = f->type == F_STRV ? j_str_value(p, e, FC_TEXT_MAX, J_ANY, true, NULL)
                                         : check_obj(p, e, f->sub);
            jp_pop(p, old);
            if (rc != FC_OK)
                return rc;
        }
        return FC_OK;
    }
    }
    return FC_OK;
}

static fc_rc
check_obj(struct fc_jp *p, const json_t *o, const struct field *f)
{
    fc_rc rc = j_want_object(p, o);
    if (rc != FC_OK)
        return rc;
    const char *names[64];
    size_t n = 0;
    for (; f[n].name && n < 63; n++)
        names[n] = f[n].name;
    names[n] = NULL;
    if ((rc = j_only(p, o, names)) != FC_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_object_get(o, f[i].name);
        if (!v || json_is_null(v)) {
            if (f[i].required)
                return jp_err_at(p, f[i].name, FC_E_INVALID, "missing required field");
            continue;
        }
        size_t old = jp_key(p, f[i].name);
        rc = check_value(p, v, &f[i]);
        jp_pop(p, old);
        if (rc != FC_OK)
            return rc;
    }
    return FC_OK;
}

void
fc_topology_free(struct fc_topology *t)
{
    if (!t)
        return;
    free(t->relocation_id);
    json_decref(t->root);
    free(t);
}

fc_rc
fc_topology_from_json(const json_t *j, struct fc_topology **out)
{
    *out = NULL;
    struct fc_jp p = {0};
    jp_set_error_path("");
    fc_rc rc = j_want_object(&p, j);
    if (rc == FC_OK)
        rc = j_schema(&p, j, FC_SCHEMA_TOPOLOGY, false);
    if (rc == FC_OK)
        rc = check_obj(&p, j, top_f);
    char *rid = NULL;
    /* "" when inspected outside a relocation (fluidctl inspect) */
    if (rc == FC_OK)
        rc = j_str(&p, j, "relocation_id", true, FC_ID_MAX, J_ANY, true, NULL, &rid);
    if (rc == FC_OK && *rid && !fc_id_valid(rid))
        rc = jp_err_at(&p, "relocation_id", FC_E_INVALID, "invalid id");
    if (rc != FC_OK) {
        free(rid);
        return rc;
    }
    struct fc_topology *t = calloc(1, sizeof *t);
    if (!t || !(t->root = json_deep_copy(j))) {
        free(rid);
        free(t);
        return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    t->relocation_id = rid;
    *out = t;
    return FC_OK;
}

fc_rc
fc_topology_parse(const char *buf, size_t len, struct fc_topology **out)
{
    *out = NULL;
    json_auto_t *j = NULL;
    fc_rc rc = fc_msg_load(buf, len, &j);
    if (rc != FC_OK)
        return rc;
    return fc_topology_from_json(j, out);
}

json_t *
fc_topology_to_json(const struct fc_topology *t)
{
    return json_deep_copy(t->root);
}
