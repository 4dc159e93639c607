/* SPDX-License-Identifier: Apache-2.0 */
/* Normalisers for the raw objects of Nova, Neutron, Glance and Cinder replies, driven by
 * field tables: every field taken is type-checked and bounded; unknown fields are dropped.
 * Also the list calls (one paginated GET per kind). */
#include "fluid/cloud/resources.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "internal.h"

enum ft {
    T_STR,     /* string, max bytes = max (0: 65536) */
    T_ID,      /* identifier: 1..255 bytes, no control, space, '/', '?', '#' */
    T_INT,     /* integer >= 0 */
    T_BOOL,
    T_BOOLSTR, /* true/false or "true"/"false" (Cinder's bootable) */
    T_STRMAP,  /* object of string -> string (metadata, extra specs) */
    T_STRLIST, /* array of strings */
    T_IDLIST,  /* array of identifiers */
    T_OBJ,     /* object, normalised with sub */
    T_OBJLIST, /* array of objects, normalised with sub */
};
enum { REQ = 1 };

struct spec;
struct field {
    const char *src, *dst;
    enum ft t;
    unsigned flags;
    const struct spec *sub;
    size_t max;
};
struct spec {
    const struct field *f;
    size_t n;
    fc_rc (*extra)(const json_t *raw, json_t *out, const char *where);
};
#define SPEC(arr, ex) {arr, sizeof arr / sizeof arr[0], ex}

#define MAX_LIST 10000
#define MAX_MAP 1024

static fc_rc apply(const struct spec *sp, const json_t *raw, const char *where, json_t **out);

static bool
id_ok(const char *s, size_t n)
{
    if (n == 0 || n > 255 || strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || c == '/' || c == '?' || c == '#' || c == '%' || c == '&')
            return false;
    }
    return true;
}

static fc_rc
conv(const struct field *f, const json_t *v, const char *where, json_t **out)
{
    char sub[320];
    size_t i, max = f->max ? f->max : 65536;
    const char *k;
    json_t *e;
    switch (f->t) {
    case T_STR:
        if (!json_is_string(v) || json_string_length(v) > max)
            return FC_ERR(FC_E_INVALID, "%s.%s: expected a string of at most %zu bytes", where,
                          f->src, max);
        *out = json_incref((json_t *)v);
        return FC_OK;
    case T_ID:
        if (!json_is_string(v) || !id_ok(json_string_value(v), json_string_length(v)))
            return FC_ERR(FC_E_INVALID, "%s.%s: expected an identifier", where, f->src);
        *out = json_incref((json_t *)v);
        return FC_OK;
    case T_INT:
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return FC_ERR(FC_E_INVALID, "%s.%s: expected an integer >= 0", where, f->src);
        *out = json_incref((json_t *)v);
        return FC_OK;
    case T_BOOL:
        if (!json_is_boolean(v))
            return FC_ERR(FC_E_INVALID, "%s.%s: expected true or false", where, f->src);
        *out = json_incref((json_t *)v);
        return FC_OK;
    case T_BOOLSTR:
        if (json_is_boolean(v))
            return *out = json_incref((json_t *)v), FC_OK;
        if (json_is_string(v) && (strcmp(json_string_value(v), "true") == 0 ||
                                  strcmp(json_string_value(v), "false") == 0))
            return *out = json_boolean(strcmp(json_string_value(v), "true") == 0), FC_OK;
        return FC_ERR(FC_E_INVALID, "%s.%s: expected true or false", where, f->src);
    case T_STRMAP: {
        if (!json_is_object(v) || json_object_size(v) > MAX_MAP)
            return FC_ERR(FC_E_INVALID, "%s.%s: expected an object of at most %d strings",
                          where, f->src, MAX_MAP);
        json_object_foreach((json_t *)v, k, e) {
            if (!json_is_string(e) || json_string_length(e) > 65536 || strlen(k) > 255)
                return FC_ERR(FC_E_INVALID, "%s.%s.%.64s: expected a string", where, f->src, k);
        }
        *out = json_deep_copy(v);
        return *out ? FC_OK : FC_ERR(FC_E_NOMEM, "out of memory");
    }
    case T_STRLIST:
    case T_IDLIST: {
        if (!json_is_array(v) || json_array_size(v) > MAX_LIST)
            return FC_ERR(FC_E_INVALID, "%s.%s: expected an array", where, f->src);
        json_array_foreach(v, i, e) {
            bool ok = json_is_string(e) &&
                      (f->t == T_STRLIST ? json_string_length(e) <= 4096
                                         : id_ok(json_string_value(e), json_string_length(e)));
            if (!ok)
                return FC_ERR(FC_E_INVALID, "%s.%s[%zu]: expected %s", where, f->src, i,
                              f->t == T_STRLIST ? "a string" : "an identifier");
        }
        *out = json_deep_copy(v);
        return *out ? FC_OK : FC_ERR(FC_E_NOMEM, "out of memory");
    }
    case T_OBJ:
        snprintf(sub, sizeof sub, "%s.%s", where, f->src);
        return apply(f->sub, v, sub, out);
    case T_OBJLIST: {
        if (!json_is_array(v) || json_array_size(v) > MAX_LIST)
            return FC_ERR(FC_E_INVALID, "%s.%s: expected an array", where, f->src);
        json_auto_t *arr = json_array();
        json_array_foreach(v, i, e) {
            json_t *o = NULL;
            snprintf(sub, sizeof sub, "%s.%s[%zu]", where, f->src, i);
            fc_rc rc = apply(f->sub, e, sub, &o);
            if (rc)
                return rc;
            json_array_append_new(arr, o);
        }
        *out = json_incref(arr);
        return FC_OK;
    }
    }
    return FC_ERR(FC_E_INTERNAL, "bad field type");
}

static fc_rc
apply(const struct spec *sp, const json_t *raw, const char *where, json_t **out)
{
    if (!json_is_object(raw))
        return FC_ERR(FC_E_INVALID, "%s: expected an object", where);
    json_auto_t *o = json_object();
    if (!o)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    for (size_t i = 0; i < sp->n; i++) {
        const struct field *f = &sp->f[i];
        json_t *v = json_object_get(raw, f->src);
        if (!v || json_is_null(v)) {
            if (f->flags & REQ)
                return FC_ERR(FC_E_INVALID, "%s.%s: missing", where, f->src);
            if (!json_object_get(o, f->dst))
                json_object_set_new(o, f->dst, json_null());
            continue;
        }
        json_t *c = NULL;
        fc_rc rc = conv(f, v, where, &c);
        if (rc)
            return rc;
        json_object_set_new(o, f->dst, c);
    }
    if (sp->extra) {
        fc_rc rc = sp->extra(raw, o, where);
        if (rc)
            return rc;
    }
    *out = json_incref(o);
    return FC_OK;
}

/* ---- the tables ------------------------------------------------------------------------ */

static const struct field f_ipref[] = {
    {"subnet_id", "subnet_id", T_ID, 0, NULL, 0},
    {"ip_address", "ip_address", T_STR, REQ, NULL, 64},
};
static const struct spec s_ipref = SPEC(f_ipref, NULL);
static const struct field f_pool[] = {
    {"start", "start", T_STR, REQ, NULL, 64}, {"end", "end", T_STR, REQ, NULL, 64}};
static const struct spec s_pool = SPEC(f_pool, NULL);
static const struct field f_route[] = {
    {"destination", "destination", T_STR, REQ, NULL, 64},
    {"nexthop", "nexthop", T_STR, REQ, NULL, 64}};
static const struct spec s_route = SPEC(f_route, NULL);
static const struct field f_pair[] = {
    {"ip_address", "ip_address", T_STR, REQ, NULL, 64},
    {"mac_address", "mac_address", T_STR, 0, NULL, 32}};
static const struct spec s_pair = SPEC(f_pair, NULL);

/* Nova */
static const struct field f_sflavor[] = { /* embedded flavor, microversion >= 2.47 */
    {"original_name", "name", T_STR, 0, NULL, 255}, {"id", "id", T_ID, 0, NULL, 0},
    {"vcpus", "vcpus", T_INT, 0, NULL, 0},          {"ram", "ram_mb", T_INT, 0, NULL, 0},
    {"disk", "disk_gb", T_INT, 0, NULL, 0},         {"ephemeral", "ephemeral_gb", T_INT, 0, NULL, 0},
    {"extra_specs", "extra_specs", T_STRMAP, 0, NULL, 0},
};
static fc_rc flavor_extra(const json_t *raw, json_t *out, const char *where);
static const struct spec s_sflavor = SPEC(f_sflavor, flavor_extra);
static const struct field f_vattach[] = {
    {"id", "id", T_ID, REQ, NULL, 0},
    {"delete_on_termination", "delete_on_termination", T_BOOL, 0, NULL, 0}};
static const struct spec s_vattach = SPEC(f_vattach, NULL);
static const struct field f_sgname[] = {{"name", "name", T_STR, REQ, NULL, 255}};
static const struct spec s_sgname = SPEC(f_sgname, NULL);

static fc_rc
server_extra(const json_t *raw, json_t *out, const char *where)
{
    /* image: {"id":..} or "" (booted from a volume) */
    json_t *img = json_object_get(raw, "image");
    const char *iid = json_string_value(json_object_get(img, "id"));
    if (img && !json_is_object(img) && !(json_is_string(img) && json_string_length(img) == 0))
        return FC_ERR(FC_E_INVALID, "%s.image: expected an object or \"\"", where);
    if (json_is_object(img) && (!iid || !id_ok(iid, strlen(iid))))
        return FC_ERR(FC_E_INVALID, "%s.image.id: expected an identifier", where);
    json_object_set_new(out, "image_id", iid ? json_string(iid) : json_null());
    /* addresses: {"net": [{"addr","version","OS-EXT-IPS:type","OS-EXT-IPS-MAC:mac_addr"}]} */
    json_t *addrs = json_object_get(raw, "addresses"), *list, *a;
    json_auto_t *flat = json_array();
    const char *net;
    size_t i;
    if (addrs && !json_is_object(addrs) && !json_is_null(addrs))
        return FC_ERR(FC_E_INVALID, "%s.addresses: expected an object", where);
    json_object_foreach(addrs, net, list) {
        if (!json_is_array(list) || strlen(net) > 255)
            return FC_ERR(FC_E_INVALID, "%s.addresses.%.64s: expected an array", where, net);
        json_array_foreach(list, i, a) {
            const char *addr = json_string_value(json_object_get(a, "addr"));
            const char *type = json_string_value(json_object_get(a, "OS-EXT-IPS:type"));
            const char *mac = json_string_value(json_object_get(a, "OS-EXT-IPS-MAC:mac_addr"));
            if (!addr || strlen(addr) > 64 || (type && strlen(type) > 16) ||
                (mac && strlen(mac) > 32))
                return FC_ERR(FC_E_INVALID, "%s.addresses.%.64s[%zu]: bad address", where, net, i);
            if (json_array_size(flat) >= MAX_LIST)
                return FC_ERR(FC_E_INVALID, "%s.addresses: too many", where);
            json_array_append_new(flat, json_pack("{s:s, s:s, s:s?, s:s?}", "network", net,
                                                  "addr", addr, "type", type, "mac", mac));
        }
    }
    json_object_set(out, "addresses", flat);
    /* flavor before 2.47 is {"id":..}; afterwards the embedded copy */
    json_t *fl = json_object_get(out, "flavor");
    if (!json_is_object(fl))
        return FC_ERR(FC_E_INVALID, "%s.flavor: missing", where);
    return FC_OK;
}

static const struct field f_server[] = {
    {"id", "id", T_ID, REQ, NULL, 0},
    {"name", "name", T_STR, REQ, NULL, 255},
    {"status", "status", T_STR, 0, NULL, 32},
    {"flavor", "flavor", T_OBJ, REQ, &s_sflavor, 0},
    {"key_name", "key_name", T_STR, 0, NULL, 255},
    {"metadata", "metadata", T_STRMAP, 0, NULL, 0},
    {"tags", "tags", T_STRLIST, 0, NULL, 0},
    {"OS-EXT-AZ:availability_zone", "availability_zone", T_STR, 0, NULL, 255},
    {"os-extended-volumes:volumes_attached", "volumes_attached", T_OBJLIST, 0, &s_vattach, 0},
    {"security_groups", "security_group_names", T_OBJLIST, 0, &s_sgname, 0},
    {"created", "created", T_STR, 0, NULL, 64},
    {"description", "description", T_STR, 0, NULL, 0},
};
static const struct field f_flavor[] = {
    {"id", "id", T_ID, REQ, NULL, 0},
    {"name", "name", T_STR, REQ, NULL, 255},
    {"vcpus", "vcpus", T_INT, REQ, NULL, 0},
    {"ram", "ram_mb", T_INT, REQ, NULL, 0},
    {"disk", "disk_gb", T_INT, REQ, NULL, 0},
    {"OS-FLV-EXT-DATA:ephemeral", "ephemeral_gb", T_INT, 0, NULL, 0},
    {"os-flavor-access:is_public", "is_public", T_BOOL, 0, NULL, 0},
    {"extra_specs", "extra_specs", T_STRMAP, 0, NULL, 0},
    {"description", "description", T_STR, 0, NULL, 0},
};

static fc_rc
flavor_extra(const json_t *raw, json_t *out, const char *where)
{
    json_t *sw = json_object_get(raw, "swap"); /* "" when none, else MiB */
    if (json_is_integer(sw) && json_integer_value(sw) >= 0)
        json_object_set(out, "swap_mb", sw);
    else if (!sw || (json_is_string(sw) && json_string_length(sw) == 0))
        json_object_set_new(out, "swap_mb", json_integer(0));
    else
        return FC_ERR(FC_E_INVALID, "%s.swap: expected an integer or \"\"", where);
    return FC_OK;
}

static const struct field f_keypair[] = {
    {"name", "name", T_STR, REQ, NULL, 255},
    {"type", "type", T_STR, 0, NULL, 16},
    {"public_key", "public_key", T_STR, 0, NULL, 16384},
    {"fingerprint", "fingerprint", T_STR, 0, NULL, 128},
};

/* Glance: core fields, and other string properties kept in "properties". */
static const struct field f_image[] = {
    {"id", "id", T_ID, REQ, NULL, 0},
    {"name", "name", T_STR, 0, NULL, 255},
    {"status", "status", T_STR, 0, NULL, 32},
    {"disk_format", "disk_format", T_STR, 0, NULL, 32},
    {"container_format", "container_format", T_STR, 0, NULL, 32},
    {"size", "size", T_INT, 0, NULL, 0},
    {"virtual_size", "virtual_size", T_INT, 0, NULL, 0},
    {"min_disk", "min_disk_gb", T_INT, 0, NULL, 0},
    {"min_ram", "min_ram_mb", T_INT, 0, NULL, 0},
    {"checksum", "checksum", T_STR, 0, NULL, 64},
    {"os_hash_algo", "os_hash_algo", T_STR, 0, NULL, 32},
    {"os_hash_value", "os_hash_value", T_STR, 0, NULL, 256},
    {"visibility", "visibility", T_STR, 0, NULL, 16},
    {"owner", "owner", T_ID, 0, NULL, 0},
    {"tags", "tags", T_STRLIST, 0, NULL, 0},
};

static fc_rc
image_extra(const json_t *raw, json_t *out, const char *where)
{
    static const char *const core[] = {
        "id", "name", "status", "disk_format", "container_format", "size", "virtual_size",
        "min_disk", "min_ram", "checksum", "os_hash_algo", "os_hash_value", "visibility",
        "owner", "tags", "protected", "created_at", "updated_at", "self", "file", "schema",
        "locations", "direct_url", "stores", "os_hidden"};
    json_auto_t *props = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)raw, k, v) {
        bool is_core = false;
        for (size_t i = 0; i < sizeof core / sizeof core[0] && !is_core; i++)
            is_core = strcmp(k, core[i]) == 0;
        if (is_core || !json_is_string(v))
            continue;
        if (strlen(k) > 255 || json_string_length(v) > 65536 || json_object_size(props) >= MAX_MAP)
            return FC_ERR(FC_E_INVALID, "%s: property '%.64s' too long or too many", where, k);
        json_object_set(props, k, v);
    }
    json_object_set(out, "properties", props);
    return FC_OK;
}

/* Cinder */
static const struct field f_vatt[] = {
    {"server_id", "server_id", T_ID, REQ, NULL, 0},
    {"device", "device", T_STR, 0, NULL, 64},
    {"attachment_id", "attachment_id", T_ID, 0, NULL, 0},
};
static const struct spec s_vatt = SPEC(f_vatt, NULL);
static const struct field f_volume[] = {
    {"id", "id", T_ID, REQ, NULL, 0},
    {"name", "name", T_STR, 0, NULL, 255},
    {"status", "status", T_STR, 0, NULL, 32},
    {"size", "size_gb", T_INT, REQ, NULL, 0},
    {"volume_type", "volume_type", T_STR, 0, NULL, 255},
    {"bootable", "bootable", T_BOOLSTR, 0, NULL, 0},
    {"availability_zone", "availability_zone", T_STR, 0, NULL, 255},
    {"description", "description", T_STR, 0, NULL, 0},
    {"multiattach", "multiattach", T_BOOL, 0, NULL, 0},
    {"encrypted", "encrypted", T_BOOL, 0, NULL, 0},
    {"metadata", "metadata", T_STRMAP, 0, NULL, 0},
    {"attachments", "attachments", T_OBJLIST, 0, &s_vatt, 0},
};

static fc_rc
volume_extra(const json_t *raw, json_t *out, const char *where)
{
    json_t *vim = json_object_get(raw, "volume_image_metadata");
    const char *iid = json_string_value(json_object_get(vim, "image_id"));
    if (iid && !id_ok(iid, strlen(iid)))
        return FC_ERR(FC_E_INVALID, "%s.volume_image_metadata.image_id: bad identifier", where);
    json_object_set_new(out, "image_id", iid ? json_string(iid) : json_null());
    return FC_OK;
}

/* Neutron */
static const struct field f_network[] = {
    {"id", "id", T_ID, REQ, NULL, 0},
    {"name", "name", T_STR, 0, NULL, 255},
    {"status", "status", T_STR, 0, NULL, 32},
    {"mtu", "mtu", T_INT, 0, NULL, 0},
    {"router:external", "external", T_BOOL, 0, NULL, 0},
    {"shared", "shared", T_BOOL, 0, NULL, 0},
    {"admin_state_up", "admin_state_up", T_BOOL, 0, NULL, 0},
    {"port_security_enabled", "port_security_enabled", T_BOOL, 0, NULL, 0},
    {"subnets", "subnet_ids", T_IDLIST, 0, NULL, 0},
    {"description", "description", T_STR, 0, NULL, 0},
    {"tenant_id", "project_id", T_STR, 0, NULL, 255},
};
static const struct field f_subnet[] = {
    {"id", "id", T_ID, REQ, NULL, 0},
    {"name", "name", T_STR, 0, NULL, 255},
    {"network_id", "network_id", T_ID, REQ, NULL, 0},
    {"cidr", "cidr", T_STR, REQ, NULL, 64},
    {"ip_version", "ip_version", T_INT, REQ, NULL, 0},
    {"gateway_ip", "gateway_ip", T_STR, 0, NULL, 64},
    {"enable_dhcp", "enable_dhcp", T_BOOL, 0, NULL, 0},
    {"dns_nameservers", "dns_nameservers", T_STRLIST, 0, NULL, 0},
    {"allocation_pools", "allocation_pools", T_OBJLIST, 0, &s_pool, 0},
    {"host_routes", "host_routes", T_OBJLIST, 0, &s_route, 0},
    {"ipv6_address_mode", "ipv6_address_mode", T_STR, 0, NULL, 32},
    {"ipv6_ra_mode", "ipv6_ra_mode", T_STR, 0, NULL, 32},
    {"description", "description", T_STR, 0, NULL, 0},
};
static const struct field f_gw[] = {
    {"network_id", "network_id", T_ID, REQ, NULL, 0},
    {"enable_snat", "enable_snat", T_BOOL, 0, NULL, 0},
    {"external_fixed_ips", "external_fixed_ips", T_OBJLIST, 0, &s_ipref, 0},
};
static const struct spec s_gw = SPEC(f_gw, NULL);
static const struct field f_router[] = {
    {"id", "id", T_ID, REQ, NULL, 0},
    {"name", "name", T_STR, 0, NULL, 255},
    {"status", "status", T_STR, 0, NULL, 32},
    {"admin_state_up", "admin_state_up", T_BOOL, 0, NULL, 0},
    {"external_gateway_info", "external_gateway", T_OBJ, 0, &s_gw, 0},
    {"routes", "routes", T_OBJLIST, 0, &s_route, 0},
    {"description", "description", T_STR, 0, NULL, 0},
};
static fc_rc
router_extra(const json_t *raw, json_t *out, const char *where)
{
    (void)raw;
    (void)where;
    json_t *gw = json_object_get(out, "external_gateway");
    json_object_set(out, "external_network_id",
                    json_is_object(gw) ? json_object_get(gw, "network_id") : json_null());
    return FC_OK;
}

static const struct field f_port[] = {
    {"id", "id", T_ID, REQ, NULL, 0},
    {"name", "name", T_STR, 0, NULL, 255},
    {"network_id", "network_id", T_ID, REQ, NULL, 0},
    {"mac_address", "mac_address", T_STR, REQ, NULL, 32},
    {"fixed_ips", "fixed_ips", T_OBJLIST, 0, &s_ipref, 0},
    {"security_groups", "security_group_ids", T_IDLIST, 0, NULL, 0},
    {"device_id", "device_id", T_STR, 0, NULL, 255},
    {"device_owner", "device_owner", T_STR, 0, NULL, 255},
    {"port_security_enabled", "port_security_enabled", T_BOOL, 0, NULL, 0},
    {"status", "status", T_STR, 0, NULL, 32},
    {"allowed_address_pairs", "allowed_address_pairs", T_OBJLIST, 0, &s_pair, 0},
    {"description", "description", T_STR, 0, NULL, 0},
};
static const struct field f_fip[] = {
    {"id", "id", T_ID, REQ, NULL, 0},
    {"floating_ip_address", "floating_ip_address", T_STR, REQ, NULL, 64},
    {"floating_network_id", "floating_network_id", T_ID, REQ, NULL, 0},
    {"port_id", "port_id", T_ID, 0, NULL, 0},
    {"fixed_ip_address", "fixed_ip_address", T_STR, 0, NULL, 64},
    {"router_id", "router_id", T_ID, 0, NULL, 0},
    {"status", "status", T_STR, 0, NULL, 32},
    {"description", "description", T_STR, 0, NULL, 0},
};
static const struct field f_rule[] = {
    {"id", "id", T_ID, REQ, NULL, 0},
    {"direction", "direction", T_STR, REQ, NULL, 16},
    {"ethertype", "ethertype", T_STR, 0, NULL, 16},
    {"protocol", "protocol", T_STR, 0, NULL, 32},
    {"port_range_min", "port_range_min", T_INT, 0, NULL, 0},
    {"port_range_max", "port_range_max", T_INT, 0, NULL, 0},
    {"remote_ip_prefix", "remote_ip_prefix", T_STR, 0, NULL, 64},
    {"remote_group_id", "remote_group_id", T_ID, 0, NULL, 0},
    {"description", "description", T_STR, 0, NULL, 0},
};
static const struct spec s_rule = SPEC(f_rule, NULL);
static const struct field f_sg[] = {
    {"id", "id", T_ID, REQ, NULL, 0},
    {"name", "name", T_STR, REQ, NULL, 255},
    {"description", "description", T_STR, 0, NULL, 0},
    {"stateful", "stateful", T_BOOL, 0, NULL, 0},
    {"security_group_rules", "rules", T_OBJLIST, 0, &s_rule, 0},
};

static const struct spec specs[FC_RES__COUNT] = {
    [FC_RES_SERVER] = SPEC(f_server, server_extra),
    [FC_RES_FLAVOR] = SPEC(f_flavor, flavor_extra),
    [FC_RES_KEYPAIR] = SPEC(f_keypair, NULL),
    [FC_RES_IMAGE] = SPEC(f_image, image_extra),
    [FC_RES_VOLUME] = SPEC(f_volume, volume_extra),
    [FC_RES_NETWORK] = SPEC(f_network, NULL),
    [FC_RES_SUBNET] = SPEC(f_subnet, NULL),
    [FC_RES_ROUTER] = SPEC(f_router, router_extra),
    [FC_RES_PORT] = SPEC(f_port, NULL),
    [FC_RES_FLOATING_IP] = SPEC(f_fip, NULL),
    [FC_RES_SECURITY_GROUP] = SPEC(f_sg, NULL),
};

static const struct {
    const char *name, *key, *path;
    enum fc_os_service svc;
} kinds[FC_RES__COUNT] = {
    [FC_RES_SERVER] = {"server", "servers", "/servers/detail", FC_SVC_COMPUTE},
    [FC_RES_FLAVOR] = {"flavor", "flavors", "/flavors/detail", FC_SVC_COMPUTE},
    [FC_RES_KEYPAIR] = {"keypair", "keypairs", "/os-keypairs", FC_SVC_COMPUTE},
    [FC_RES_IMAGE] = {"image", "images", "/images", FC_SVC_IMAGE},
    [FC_RES_VOLUME] = {"volume", "volumes", "/volumes/detail", FC_SVC_VOLUME},
    [FC_RES_NETWORK] = {"network", "networks", "/networks", FC_SVC_NETWORK},
    [FC_RES_SUBNET] = {"subnet", "subnets", "/subnets", FC_SVC_NETWORK},
    [FC_RES_ROUTER] = {"router", "routers", "/routers", FC_SVC_NETWORK},
    [FC_RES_PORT] = {"port", "ports", "/ports", FC_SVC_NETWORK},
    [FC_RES_FLOATING_IP] = {"floating_ip", "floatingips", "/floatingips", FC_SVC_NETWORK},
    [FC_RES_SECURITY_GROUP] = {"security_group", "security_groups", "/security-groups",
                               FC_SVC_NETWORK},
};

const char *
fc_res_kind_name(enum fc_res_kind kind)
{
    return (unsigned)kind < FC_RES__COUNT ? kinds[kind].name : "?";
}

const char *
fc_res_list_key(enum fc_res_kind kind)
{
    return (unsigned)kind < FC_RES__COUNT ? kinds[kind].key : "?";
}

fc_rc
fc_res_normalize(enum fc_res_kind kind, const json_t *raw, const char *where, json_t **out)
{
    if ((unsigned)kind >= FC_RES__COUNT)
        return FC_ERR(FC_E_INTERNAL, "bad resource kind");
    if (kind == FC_RES_KEYPAIR && json_is_object(json_object_get(raw, "keypair")))
        raw = json_object_get(raw, "keypair"); /* list items are {"keypair": {...}} */
    return apply(&specs[kind], raw, where, out);
}

fc_rc
fc_res_normalize_list(enum fc_res_kind kind, const json_t *raw_array, json_t **out)
{
    if ((unsigned)kind >= FC_RES__COUNT)
        return FC_ERR(FC_E_INTERNAL, "bad resource kind");
    if (!json_is_array(raw_array))
        return FC_ERR(FC_E_INVALID, "%s: expected an array", kinds[kind].key);
    json_auto_t *arr = json_array();
    size_t i;
    json_t *e;
    char where[96];
    json_array_foreach(raw_array, i, e) {
        json_t *o = NULL;
        snprintf(where, sizeof where, "%s[%zu]", kinds[kind].key, i);
        fc_rc rc = fc_res_normalize(kind, e, where, &o);
        if (rc)
            return rc;
        json_array_append_new(arr, o);
    }
    *out = json_incref(arr);
    return FC_OK;
}

bool
fc_url_escape(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.' || c == '~';
        if (o + (plain ? 1 : 3) + 1 > cap)
            return false;
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return true;
}

fc_rc
fc_res_list(struct fc_os *os, enum fc_res_kind kind, const char *query, json_t **out)
{
    if ((unsigned)kind >= FC_RES__COUNT)
        return FC_ERR(FC_E_INTERNAL, "bad resource kind");
    FC_AUTOFREE char *path = NULL;
    const char *sep = strchr(kinds[kind].path, '?') ? "&" : "?";
    /* Neutron pages only when asked; ask, so that no reply is unbounded */
    const char *limit = kinds[kind].svc == FC_SVC_NETWORK ? "limit=1000" : NULL;
    if (asprintf(&path, "%s%s%s%s%s", kinds[kind].path, (query || limit) ? sep : "",
                 limit ? limit : "", (query && limit) ? "&" : "", query ? query : "") < 0)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    json_auto_t *raw = NULL;
    fc_rc rc = fc_os_list(os, kinds[kind].svc, path, kinds[kind].key, 0, &raw);
    if (rc)
        return rc;
    if ((rc = fc_res_normalize_list(kind, raw, out)))
        fc_error_prefix("cloud '%s': %s %s", fc_os_cloud_name(os),
                        fc_os_service_name(kinds[kind].svc), kinds[kind].path);
    return rc;
}

struct list_job {
    struct fc_os *os;
    struct fc_res_req *req;
    fc_rc rc;
    char err[sizeof fc_error_last()->msg];
};

static void *
list_thread(void *arg)
{
    struct list_job *j = arg;
    j->rc = fc_res_list(j->os, j->req->kind, j->req->query, &j->req->out);
    if (j->rc)
        snprintf(j->err, sizeof j->err, "%s", fc_error_msg());
    return NULL;
}

fc_rc
fc_res_list_parallel(struct fc_os *os, struct fc_res_req *reqs, size_t n)
{
    struct list_job jobs[16];
    pthread_t th[16];
    bool started[16] = {false};
    fc_rc rc;
    if (n > 16)
        return FC_ERR(FC_E_INTERNAL, "fc_res_list_parallel: more than 16 lists");
    if ((rc = fc_os_ensure_token(os)))
        return rc;
    memset(jobs, 0, sizeof jobs);
    for (size_t i = 0; i < n; i++) {
        reqs[i].out = NULL;
        jobs[i].req = &reqs[i];
        if ((rc = fc_os_fork(os, &jobs[i].os)))
            break;
        if (pthread_create(&th[i], NULL, list_thread, &jobs[i]) != 0) {
            rc = FC_ERR(FC_E_INTERNAL, "pthread_create failed");
            break;
        }
        started[i] = true;
    }
    for (size_t i = 0; i < n; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        fc_os_join(os, jobs[i].os);
    }
    if (!rc) {
        for (size_t i = 0; i < n; i++) {
            if (jobs[i].rc) {
                rc = FC_ERR(jobs[i].rc, "%s", jobs[i].err);
                break;
            }
        }
    }
    if (rc) {
        for (size_t i = 0; i < n; i++) {
            json_decref(reqs[i].out);
            reqs[i].out = NULL;
        }
    }
    return rc;
}
