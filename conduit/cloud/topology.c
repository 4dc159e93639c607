/* SPDX-License-Identifier: Apache-2.0 */
/* fc_topology_inspect: servers and everything they use, from one list call per resource kind
 * (servers, ports, networks, subnets, routers, floating IPs, security groups, volumes,
 * images, keypairs), joined locally. */
#include "fluid/cloud/topology.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fluid/cleanup.h"
#include "fluid/cloud/resources.h"
#include "fluid/error.h"
#include "fluid/log.h"

json_t *
fc_json_find(const json_t *arr, const char *key, const char *value)
{
    size_t i;
    json_t *e;
    if (!value)
        return NULL;
    json_array_foreach(arr, i, e) {
        const char *v = json_string_value(json_object_get(e, key));
        if (v && strcmp(v, value) == 0)
            return e;
    }
    return NULL;
}

/* Adds string `s` to set array `set` once. */
static void
set_add(json_t *set, const char *s)
{
    size_t i;
    json_t *e;
    if (!s)
        return;
    json_array_foreach(set, i, e) if (strcmp(json_string_value(e), s) == 0) return;
    json_array_append_new(set, json_string(s));
}

static bool
set_has(const json_t *set, const char *s)
{
    size_t i;
    json_t *e;
    if (!s)
        return false;
    json_array_foreach(set, i, e) if (strcmp(json_string_value(e), s) == 0) return true;
    return false;
}

static void warn(json_t *warnings, const char *kind, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void
warn(json_t *warnings, const char *kind, const char *id, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_array_append_new(warnings, json_pack("{s:s, s:s?, s:s}", "kind", kind, "id", id,
                                              "reason", msg));
}

/* The query that lists the selected servers (a tag filter, or everything). */
static fc_rc
servers_query(const struct fc_selector *sel, char *q, size_t cap, bool *has)
{
    *has = false;
    if (!sel->tag)
        return FC_OK;
    char esc[512];
    if (!fc_url_escape(sel->tag, esc, sizeof esc))
        return FC_ERR(FC_E_INVALID, "--tag: too long");
    snprintf(q, cap, "tags=%s", esc);
    *has = true;
    return FC_OK;
}

/* Chooses the servers from the list (all of the project's, or those with the tag). */
static fc_rc
select_servers(struct fc_os *os, const struct fc_selector *sel, json_t *all, json_t **out)
{
    if (sel->tag) {
        if (json_array_size(all) == 0)
            return FC_ERR(FC_E_NOTFOUND, "cloud '%s': no server has tag '%s'",
                          fc_os_cloud_name(os), sel->tag);
        *out = json_incref(all);
        return FC_OK;
    }
    if (sel->all) {
        *out = json_incref(all);
        return FC_OK;
    }
    if (sel->nservers == 0)
        return FC_ERR(FC_E_INVALID, "no server selected (--server, --tag or --all)");
    json_auto_t *chosen = json_array();
    for (size_t k = 0; k < sel->nservers; k++) {
        const char *want = sel->servers[k];
        json_t *byid = fc_json_find(all, "id", want), *match = byid;
        size_t i, n = 0;
        json_t *e;
        if (!byid) {
            json_array_foreach(all, i, e) {
                if (strcmp(json_string_value(json_object_get(e, "name")), want) == 0) {
                    match = e;
                    n++;
                }
            }
            if (n > 1)
                return FC_ERR(FC_E_INVALID, "cloud '%s': server name '%s' matches %zu servers; "
                                            "use the id",
                              fc_os_cloud_name(os), want, n);
        }
        if (!match)
            return FC_ERR(FC_E_NOTFOUND, "cloud '%s': no server named or with id '%s'",
                          fc_os_cloud_name(os), want);
        if (!fc_json_find(chosen, "id", json_string_value(json_object_get(match, "id"))))
            json_array_append(chosen, match);
    }
    *out = json_incref(chosen);
    return FC_OK;
}

/* Glance: the images by id, in batches ("id=in:a,b,c"); missing ones are warnings. */
static fc_rc
read_images(struct fc_os *os, json_t *ids, json_t *images, json_t *warnings)
{
    size_t n = json_array_size(ids);
    for (size_t start = 0; start < n; start += 20) {
        char q[20 * 260 + 16] = "id=in:";
        size_t qlen = strlen(q);
        for (size_t i = start; i < n && i < start + 20; i++)
            qlen += (size_t)snprintf(q + qlen, sizeof q - qlen, "%s%s", i > start ? "," : "",
                                     json_string_value(json_array_get(ids, i)));
        json_auto_t *got = NULL;
        fc_rc rc = fc_res_list(os, FC_RES_IMAGE, q, &got);
        if (rc)
            return rc;
        json_array_extend(images, got);
    }
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id) {
        if (!fc_json_find(images, "id", json_string_value(id)))
            warn(warnings, "image", json_string_value(id),
                 "image %s is not visible to this project (deleted or private)",
                 json_string_value(id));
    }
    return FC_OK;
}

static bool
is_boot_device(const char *dev)
{
    return dev && (strcmp(dev, "/dev/vda") == 0 || strcmp(dev, "/dev/sda") == 0 ||
                   strcmp(dev, "/dev/xvda") == 0 || strcmp(dev, "/dev/hda") == 0);
}

/* A copy of `o` holding only `keys` (absent ones as null). */
static json_t *
project(const json_t *o, const char *const *keys)
{
    json_t *r = json_object();
    for (; *keys; keys++) {
        json_t *v = json_object_get(o, *keys);
        json_object_set_new(r, *keys, v ? json_deep_copy(v) : json_null());
    }
    return r;
}

static json_t *
project_all(const json_t *arr, const char *const *keys)
{
    json_t *r = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) json_array_append_new(r, project(e, keys));
    return r;
}

static const char *const k_flavor[] = {"id", "name", "vcpus", "ram_mb", "disk_gb", "ephemeral_gb",
                                       "swap_mb", "is_public", "extra_specs", NULL};
static const char *const k_image[] = {"id", "name", "status", "disk_format", "container_format",
                                      "size", "checksum", "min_disk_gb", "min_ram_mb",
                                      "visibility", "properties", NULL};
static const char *const k_vatt[] = {"server_id", "device", NULL};
static const char *const k_network[] = {"id", "name", "external", "shared", "mtu",
                                        "subnet_ids", NULL};
static const char *const k_subnet[] = {"id", "name", "network_id", "cidr", "ip_version",
                                       "gateway_ip", "enable_dhcp", "dns_nameservers",
                                       "allocation_pools", NULL};
static const char *const k_router[] = {"id", "name", "external_network_id", "interfaces", NULL};
static const char *const k_port[] = {"id", "name", "network_id", "mac_address", "fixed_ips",
                                     "device_id", "device_owner", "security_group_ids", NULL};
static const char *const k_fip[] = {"id", "floating_ip_address", "floating_network_id",
                                    "port_id", "fixed_ip_address", NULL};
static const char *const k_rule[] = {"id", "direction", "ethertype", "protocol",
                                     "port_range_min", "port_range_max", "remote_ip_prefix",
                                     "remote_group_id", "description", NULL};
static const char *const k_keypair[] = {"name", "public_key", "type", "fingerprint", NULL};

static json_t *
volume_out(const json_t *v)
{
    static const char *const k[] = {"id", "name", "size_gb", "volume_type", "bootable",
                                    "status", "image_id", "metadata", NULL};
    json_t *o = project(v, k);
    json_object_set_new(o, "attachments", project_all(json_object_get(v, "attachments"), k_vatt));
    return o;
}

static json_t *
sg_out(const json_t *g)
{
    static const char *const k[] = {"id", "name", "description", NULL};
    json_t *o = project(g, k);
    json_object_set_new(o, "rules", project_all(json_object_get(g, "rules"), k_rule));
    return o;
}

/* The flavor id for a server's embedded flavor: by name in the flavor list. */
static const char *
flavor_id(json_t *flavors_all, json_t *fl, json_t *warnings)
{
    const char *id = json_string_value(json_object_get(fl, "id"));
    if (id)
        return id; /* microversion < 2.47 */
    const char *name = json_string_value(json_object_get(fl, "name"));
    json_t *f = fc_json_find(flavors_all, "name", name);
    if (f)
        return json_string_value(json_object_get(f, "id"));
    if (name && !fc_json_find(warnings, "id", name))
        warn(warnings, "flavor", name,
             "flavor '%s' is no longer listed (deleted or private): its name stands for its id",
             name);
    return name;
}

fc_rc
fc_topology_inspect(struct fc_os *os, const struct fc_selector *sel, json_t **out,
                    json_t **warnings_out)
{
    fc_rc rc;
    json_auto_t *servers = NULL, *ports_all = NULL, *nets_all = NULL, *subnets_all = NULL,
                *routers_all = NULL, *fips_all = NULL, *sgs_all = NULL, *vols_all = NULL,
                *keys_all = NULL, *flavors_all = NULL;
    json_auto_t *warnings = json_array(), *listed = NULL;
    if (!sel->tag && !sel->all && sel->nservers == 0)
        return FC_ERR(FC_E_INVALID, "no server selected (--server, --tag or --all)");
    /* every list at once, one connection each: the wall time is the slowest list's */
    char q[600];
    bool has_q;
    if ((rc = servers_query(sel, q, sizeof q, &has_q)))
        return rc;
    bool have_volume = fc_os_has_service(os, FC_SVC_VOLUME);
    struct fc_res_req reqs[] = {
        {FC_RES_SERVER, has_q ? q : NULL, NULL}, {FC_RES_FLAVOR, NULL, NULL},
        {FC_RES_KEYPAIR, NULL, NULL},            {FC_RES_PORT, NULL, NULL},
        {FC_RES_SECURITY_GROUP, NULL, NULL},     {FC_RES_FLOATING_IP, NULL, NULL},
        {FC_RES_NETWORK, NULL, NULL},            {FC_RES_SUBNET, NULL, NULL},
        {FC_RES_ROUTER, NULL, NULL},             {FC_RES_VOLUME, NULL, NULL},
    };
    size_t nreq = sizeof reqs / sizeof reqs[0] - (have_volume ? 0 : 1);
    if ((rc = fc_res_list_parallel(os, reqs, nreq)))
        return rc;
    listed = reqs[0].out;
    flavors_all = reqs[1].out;
    keys_all = reqs[2].out;
    ports_all = reqs[3].out;
    sgs_all = reqs[4].out;
    fips_all = reqs[5].out;
    nets_all = reqs[6].out;
    subnets_all = reqs[7].out;
    routers_all = reqs[8].out;
    vols_all = have_volume ? reqs[9].out : json_array();
    if ((rc = select_servers(os, sel, listed, &servers)))
        return rc;

    json_auto_t *t_servers = json_array(), *t_ports = json_array(), *t_fips = json_array(),
                *t_sgs = json_array(), *t_vols = json_array(), *t_keys = json_array(),
                *t_flavors = json_array(), *t_images = json_array(), *t_nets = json_array(),
                *t_subnets = json_array(), *t_routers = json_array();
    json_auto_t *image_ids = json_array(), *net_ids = json_array(), *subnet_ids = json_array(),
                *router_ids = json_array();
    size_t i, j;
    json_t *s, *e;

    json_array_foreach(servers, i, s) {
        const char *sid = json_string_value(json_object_get(s, "id"));
        json_t *pids = json_array(), *sgids = json_array(), *vatts = json_array();
        /* ports of this server, and through them floating IPs and security groups */
        json_array_foreach(ports_all, j, e) {
            const char *dev = json_string_value(json_object_get(e, "device_id"));
            if (!dev || strcmp(dev, sid) != 0)
                continue;
            const char *pid = json_string_value(json_object_get(e, "id"));
            set_add(pids, pid);
            if (!fc_json_find(t_ports, "id", pid))
                json_array_append_new(t_ports, project(e, k_port));
            set_add(net_ids, json_string_value(json_object_get(e, "network_id")));
            size_t k;
            json_t *x;
            json_array_foreach(json_object_get(e, "fixed_ips"), k, x)
                set_add(subnet_ids, json_string_value(json_object_get(x, "subnet_id")));
            json_array_foreach(json_object_get(e, "security_group_ids"), k, x)
                set_add(sgids, json_string_value(x));
            json_array_foreach(fips_all, k, x) {
                const char *fp = json_string_value(json_object_get(x, "port_id"));
                if (!fp || strcmp(fp, pid) != 0)
                    continue;
                if (!fc_json_find(t_fips, "id", json_string_value(json_object_get(x, "id"))))
                    json_array_append_new(t_fips, project(x, k_fip));
                set_add(net_ids, json_string_value(json_object_get(x, "floating_network_id")));
                set_add(router_ids, json_string_value(json_object_get(x, "router_id")));
            }
        }
        /* a server without ports: its groups by name */
        if (json_array_size(pids) == 0) {
            json_array_foreach(json_object_get(s, "security_group_names"), j, e) {
                json_t *g = fc_json_find(sgs_all, "name",
                                         json_string_value(json_object_get(e, "name")));
                if (g)
                    set_add(sgids, json_string_value(json_object_get(g, "id")));
            }
        }
        json_array_foreach(sgids, j, e) {
            json_t *g = fc_json_find(sgs_all, "id", json_string_value(e));
            if (g && !fc_json_find(t_sgs, "id", json_string_value(e)))
                json_array_append_new(t_sgs, sg_out(g));
            else if (!g)
                warn(warnings, "security_group", json_string_value(e),
                     "security group %s is not visible to this project", json_string_value(e));
        }
        /* volumes: Cinder's attachments give the device */
        const char *boot_vol = NULL;
        bool no_image = json_is_null(json_object_get(s, "image_id"));
        json_array_foreach(vols_all, j, e) {
            size_t k;
            json_t *a;
            json_array_foreach(json_object_get(e, "attachments"), k, a) {
                const char *as = json_string_value(json_object_get(a, "server_id"));
                if (!as || strcmp(as, sid) != 0)
                    continue;
                const char *vid = json_string_value(json_object_get(e, "id"));
                const char *dev = json_string_value(json_object_get(a, "device"));
                if (no_image && is_boot_device(dev)) {
                    boot_vol = vid;
                    set_add(image_ids, json_string_value(json_object_get(e, "image_id")));
                }
                json_array_append_new(vatts, json_pack("{s:s, s:s, s:s?}", "volume_id", vid,
                                                       "server_id", sid, "device", dev));
                if (!fc_json_find(t_vols, "id", vid))
                    json_array_append_new(t_vols, volume_out(e));
            }
        }
        json_array_foreach(json_object_get(s, "volumes_attached"), j, e) {
            const char *vid = json_string_value(json_object_get(e, "id"));
            if (!fc_json_find(vatts, "volume_id", vid)) {
                json_array_append_new(vatts, json_pack("{s:s, s:s, s:n}", "volume_id", vid,
                                                       "server_id", sid, "device"));
                warn(warnings, "volume", vid,
                     "volume %s is attached but not visible in the block-storage service", vid);
            }
        }
        set_add(image_ids, json_string_value(json_object_get(s, "image_id")));
        /* keypair */
        const char *kn = json_string_value(json_object_get(s, "key_name"));
        if (kn && !fc_json_find(t_keys, "name", kn)) {
            json_t *kp = fc_json_find(keys_all, "name", kn);
            if (kp) {
                json_array_append_new(t_keys, project(kp, k_keypair));
            } else {
                json_array_append_new(t_keys, json_pack("{s:s, s:n, s:n, s:n}", "name", kn,
                                                        "public_key", "type", "fingerprint"));
                warn(warnings, "keypair", kn,
                     "keypair '%s' belongs to another user: its public key cannot be read", kn);
            }
        }
        /* flavor: embedded in the server (microversion >= 2.47), id from the flavor list */
        json_t *fl = json_object_get(s, "flavor");
        const char *fid = flavor_id(flavors_all, fl, warnings);
        if (fid && !fc_json_find(t_flavors, "id", fid)) {
            json_t *f = json_object_get(fl, "vcpus") ? fl : fc_json_find(flavors_all, "id", fid);
            if (f) {
                json_t *fo = project(f, k_flavor);
                json_object_set_new(fo, "id", json_string(fid));
                json_t *lf = fc_json_find(flavors_all, "id", fid);
                if (lf)
                    json_object_set(fo, "is_public", json_object_get(lf, "is_public"));
                json_array_append_new(t_flavors, fo);
            }
        }
        json_t *srv = json_pack(
            "{s:O, s:O, s:O, s:s?, s:O, s:s?, s:O, s:O, s:o, s:o, s:o, s:O, s:O, s:O}", "id",
            json_object_get(s, "id"), "name", json_object_get(s, "name"), "status",
            json_object_get(s, "status"), "flavor_id", fid, "image_id",
            json_object_get(s, "image_id"), "boot_volume_id", boot_vol, "key_name",
            json_object_get(s, "key_name"), "availability_zone",
            json_object_get(s, "availability_zone"), "volume_attachments", vatts, "port_ids",
            pids, "security_groups", sgids, "metadata", json_object_get(s, "metadata"), "tags",
            json_object_get(s, "tags"), "created", json_object_get(s, "created"));
        if (!srv)
            return FC_ERR(FC_E_INTERNAL, "server %s: building the topology entry", sid);
        json_array_append_new(t_servers, srv);
    }
    /* networks and their subnets (all subnets of a used tenant network) */
    json_array_foreach(nets_all, i, e) {
        if (!set_has(net_ids, json_string_value(json_object_get(e, "id"))))
            continue;
        json_array_append_new(t_nets, project(e, k_network));
        if (!json_is_true(json_object_get(e, "external")))
            json_array_foreach(json_object_get(e, "subnet_ids"), j, s)
                set_add(subnet_ids, json_string_value(s));
    }
    json_array_foreach(net_ids, i, e) {
        if (!fc_json_find(t_nets, "id", json_string_value(e)))
            warn(warnings, "network", json_string_value(e),
                 "network %s is not visible to this project", json_string_value(e));
    }
    json_array_foreach(subnets_all, i, e) {
        if (set_has(subnet_ids, json_string_value(json_object_get(e, "id"))))
            json_array_append_new(t_subnets, project(e, k_subnet));
    }
    /* routers: those with an interface on a used subnet, or behind a floating IP */
    json_auto_t *ifaces = json_object();
    json_array_foreach(ports_all, i, e) {
        const char *owner = json_string_value(json_object_get(e, "device_owner"));
        const char *rid = json_string_value(json_object_get(e, "device_id"));
        if (!owner || !rid || strncmp(owner, "network:router_interface", 24) != 0)
            continue;
        json_t *x;
        json_array_foreach(json_object_get(e, "fixed_ips"), j, x) {
            const char *sn = json_string_value(json_object_get(x, "subnet_id"));
            if (!set_has(subnet_ids, sn))
                continue;
            set_add(router_ids, rid);
            json_t *l = json_object_get(ifaces, rid);
            if (!l)
                json_object_set_new(ifaces, rid, l = json_array());
            json_array_append_new(l, json_pack("{s:O, s:s, s:O}", "port_id",
                                               json_object_get(e, "id"), "subnet_id", sn,
                                               "ip_address", json_object_get(x, "ip_address")));
        }
    }
    json_array_foreach(routers_all, i, e) {
        const char *rid = json_string_value(json_object_get(e, "id"));
        if (!set_has(router_ids, rid))
            continue;
        json_t *r = project(e, k_router);
        json_t *l = json_object_get(ifaces, rid);
        json_object_set_new(r, "interfaces", l ? json_incref(l) : json_array());
        json_array_append_new(t_routers, r);
    }
    json_auto_t *imgs = json_array();
    if ((rc = read_images(os, image_ids, imgs, warnings)))
        return rc;
    json_array_foreach(imgs, i, e) json_array_append_new(t_images, project(e, k_image));

    char now[40];
    time_t tnow = time(NULL);
    struct tm tm;
    gmtime_r(&tnow, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *topo = json_pack(
        "{s:s, s:s, s:s, s:s?, s:s?, s:s, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O}",
        "schema", FC_TOPOLOGY_SCHEMA, "relocation_id", "", "cloud", fc_os_cloud_name(os),
        "region", fc_os_region(os), "project_id", fc_os_project_id(os), "inspected_at", now, "servers", t_servers,
        "flavors", t_flavors, "images", t_images, "volumes", t_vols, "networks", t_nets,
        "subnets", t_subnets, "routers", t_routers, "ports", t_ports, "floating_ips", t_fips,
        "security_groups", t_sgs, "keypairs", t_keys);
    if (!topo)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    size_t wi;
    json_t *w;
    json_array_foreach(warnings, wi, w)
        fc_log(FC_WARN, FC_MSG("inspect"), FC_STR("cloud", fc_os_cloud_name(os)),
               FC_STR("reason", json_string_value(json_object_get(w, "reason"))));
    fc_log(FC_INFO, FC_MSG("inspected"), FC_STR("cloud", fc_os_cloud_name(os)),
           FC_U64("servers", json_array_size(t_servers)),
           FC_U64("requests", fc_os_stats(os)->requests));
    if (warnings_out)
        *warnings_out = json_incref(warnings);
    *out = topo;
    return FC_OK;
}
