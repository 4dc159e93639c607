/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-openstack network-create, subnet-create, router-create: the service's private
 * networks recreated on the target as the planner asks, tagged with the relocation; a re-run
 * finds each by name, and a router gets only the gateway and interfaces it still lacks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/error.h"
#include "fluid/log.h"
#include "osa.h"

/* The project's own `coll` item named `name` (*out new ref), FC_E_NOTFOUND when none. */
static fc_rc
own_named(struct osa *a, const char *coll, const char *key, const char *name, const char *what,
          json_t **out)
{
    char q[600], path[900];
    fc_rc rc = osa_q(name, q, sizeof q);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "/%s?name=%s&project_id=%s", coll, q, fc_os_project_id(a->os));
    return osa_find_one(a, FC_SVC_NETWORK, path, key, name, what, out);
}

static fc_rc
tag(struct osa *a, const char *coll, const json_t *item)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(item, "tags"), i, t)
        if (strcmp(json_string_value(t), osa_tag(a)) == 0) return FC_OK;
    char q[300], path[512];
    fc_rc rc = osa_q(osa_tag(a), q, sizeof q);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "/%s/%s/tags/%s", coll, osa_js(item, "id"), q);
    return fc_os_call(a->os, FC_SVC_NETWORK, "PUT", path, NULL, NULL, NULL);
}

/* Finds `name`, else POSTs {one: body} to /coll (body is taken); tags and records it. */
static fc_rc
ensure(struct osa *a, const char *coll, const char *key, const char *one, const char *kind,
       const char *name, json_t *body, json_t **out)
{
    json_t *item = NULL;
    bool created = false;
    fc_rc rc = own_named(a, coll, key, name, kind, &item);
    if (rc == FC_E_NOTFOUND) {
        char path[64];
        json_t *r = NULL, *wrap = json_pack("{s:O}", one, body);
        snprintf(path, sizeof path, "/%s", coll);
        rc = fc_os_call(a->os, FC_SVC_NETWORK, "POST", path, wrap, NULL, &r);
        json_decref(wrap);
        if (rc == FC_OK) {
            item = json_incref(json_object_get(r, one));
            created = true;
        }
        json_decref(r);
    }
    json_decref(body);
    if (rc)
        return rc;
    if (!osa_js(item, "id")) {
        json_decref(item);
        return FC_ERR(FC_E_INVALID, "cloud '%s': %s reply has no id", a->cloud, kind);
    }
    if ((rc = tag(a, coll, item))) {
        json_decref(item);
        return rc;
    }
    osa_resource(a, kind, osa_js(item, "id"), name, created);
    *out = item;
    return FC_OK;
}

fc_rc
osa_network_create(struct osa *a)
{
    const char *name, *mtu = osa_str(a, "mtu");
    fc_rc rc = osa_need(a, "name", &name);
    if (rc)
        return rc;
    json_t *body = json_pack("{s:s,s:s}", "name", name, "description", osa_tag(a)), *n = NULL;
    if (mtu)
        json_object_set_new(body, "mtu", json_integer(atoll(mtu)));
    if ((rc = ensure(a, "networks", "networks", "network", "network", name, body, &n)))
        return rc;
    json_object_set(a->result, "network_id", json_object_get(n, "id"));
    json_decref(n);
    return FC_OK;
}

fc_rc
osa_subnet_create(struct osa *a)
{
    const char *name, *net, *cidr, *gw = osa_str(a, "gateway"), *ipv = osa_str(a, "ip-version");
    fc_rc rc;
    if ((rc = osa_need(a, "name", &name)) || (rc = osa_need(a, "network", &net)) ||
        (rc = osa_need(a, "cidr", &cidr)))
        return rc;
    if (osa_flag(a, "dhcp") && osa_flag(a, "no-dhcp"))
        return FC_ERR(FC_E_INVALID, "subnet-create: --dhcp and --no-dhcp exclude each other");
    json_t *n = NULL, *s = NULL;
    if ((rc = own_named(a, "networks", "networks", net, "network", &n)))
        return rc;
    json_t *body = json_pack("{s:s,s:O,s:s,s:i,s:b,s:s}", "name", name, "network_id",
                             json_object_get(n, "id"), "cidr", cidr, "ip_version",
                             ipv ? atoi(ipv) : 4, "enable_dhcp", !osa_flag(a, "no-dhcp"),
                             "description", osa_tag(a));
    json_decref(n);
    if (gw && strcmp(gw, "none") == 0)
        json_object_set_new(body, "gateway_ip", json_null());
    else if (gw)
        json_object_set_new(body, "gateway_ip", json_string(gw));
    json_t *dns = json_array(), *pools = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(osa_list(a, "dns"), i, x) json_array_append(dns, x);
    json_array_foreach(osa_list(a, "pool"), i, x) {
        char buf[200];
        snprintf(buf, sizeof buf, "%s", json_string_value(x));
        char *dash = strchr(buf, '-');
        if (!dash || strchr(dash + 1, '-')) {
            json_decref(dns);
            json_decref(pools);
            json_decref(body);
            return FC_ERR(FC_E_INVALID, "subnet-create: --pool \"%.100s\" is not START-END",
                          json_string_value(x));
        }
        *dash = '\0';
        json_array_append_new(pools, json_pack("{s:s,s:s}", "start", buf, "end", dash + 1));
    }
    json_object_set_new(body, "dns_nameservers", dns);
    if (json_array_size(pools))
        json_object_set_new(body, "allocation_pools", pools);
    else
        json_decref(pools);
    if ((rc = ensure(a, "subnets", "subnets", "subnet", "subnet", name, body, &s)))
        return rc;
    json_object_set(a->result, "subnet_id", json_object_get(s, "id"));
    json_decref(s);
    return FC_OK;
}

fc_rc
osa_router_create(struct osa *a)
{
    const char *name, *ext = osa_str(a, "external-network");
    fc_rc rc = osa_need(a, "name", &name);
    if (rc)
        return rc;
    json_t *r = NULL, *extnet = NULL;
    if (ext) {
        char q[600], path[900];
        if ((rc = osa_q(ext, q, sizeof q)))
            return rc;
        snprintf(path, sizeof path, "/networks?name=%s&router:external=true", q);
        if ((rc = osa_resolve(a, FC_SVC_NETWORK, path, "/networks", "networks", "network", ext,
                              "external network", &extnet)))
            return rc;
    }
    json_t *body = json_pack("{s:s,s:s}", "name", name, "description", osa_tag(a));
    if (extnet)
        json_object_set_new(body, "external_gateway_info",
                            json_pack("{s:O}", "network_id", json_object_get(extnet, "id")));
    if ((rc = ensure(a, "routers", "routers", "router", "router", name, body, &r)))
        goto out;
    char path[300];
    const char *id = osa_js(r, "id");
    if (extnet && !json_is_object(json_object_get(r, "external_gateway_info"))) {
        json_t *b = json_pack("{s:{s:{s:O}}}", "router", "external_gateway_info", "network_id",
                              json_object_get(extnet, "id"));
        snprintf(path, sizeof path, "/routers/%s", id);
        rc = fc_os_call(a->os, FC_SVC_NETWORK, "PUT", path, b, NULL, NULL);
        json_decref(b);
        if (rc)
            goto out;
    }
    json_t *ports = NULL;
    snprintf(path, sizeof path, "/ports?device_id=%s", id);
    if ((rc = fc_os_list(a->os, FC_SVC_NETWORK, path, "ports", 0, &ports)))
        goto out;
    size_t i, j, k;
    json_t *sn, *p, *ip;
    json_array_foreach(osa_list(a, "subnet"), i, sn) {
        json_t *s = NULL;
        if ((rc = own_named(a, "subnets", "subnets", json_string_value(sn), "subnet", &s)))
            break;
        bool have = false;
        json_array_foreach(ports, j, p) json_array_foreach(json_object_get(p, "fixed_ips"), k, ip)
            have |= osa_js(ip, "subnet_id") && !strcmp(osa_js(ip, "subnet_id"), osa_js(s, "id"));
        if (!have) {
            json_t *b = json_pack("{s:O}", "subnet_id", json_object_get(s, "id"));
            snprintf(path, sizeof path, "/routers/%s/add_router_interface", id);
            rc = fc_os_call(a->os, FC_SVC_NETWORK, "PUT", path, b, NULL, NULL);
            json_decref(b);
        }
        if (rc == FC_OK)
            osa_resource(a, "router_interface", osa_js(s, "id"), json_string_value(sn), !have);
        json_decref(s);
        if (rc)
            break;
    }
    json_decref(ports);
    if (rc == FC_OK)
        json_object_set_new(a->result, "router_id", json_string(id));
out:
    json_decref(r);
    json_decref(extnet);
    return rc;
}
