/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-openstack actions on keypairs, security groups and floating IPs: keypair-import
 * (public key only), secgroup-create, secgroup-rules (remote groups by their copy's name),
 * floating-ip (allocate with a description naming the relocation, associate, reuse). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/error.h"
#include "fluid/log.h"
#include "osa.h"

/* ---- keypair-import ---------------------------------------------------------------------- */

/* "type base64" of an OpenSSH public key line (the comment dropped), in out. */
static bool
key_core(const char *k, char *out, size_t cap)
{
    while (*k == ' ' || *k == '\t' || *k == '\n' || *k == '\r')
        k++;
    const char *sp = strpbrk(k, " \t");
    if (!sp)
        return false;
    const char *b = sp;
    while (*b == ' ' || *b == '\t')
        b++;
    size_t bl = strcspn(b, " \t\r\n");
    size_t tl = (size_t)(sp - k);
    if (!bl || tl + 1 + bl >= cap)
        return false;
    snprintf(out, cap, "%.*s %.*s", (int)tl, k, (int)bl, b);
    return true;
}

static fc_rc
read_small_file(const char *path, char **out)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return FC_ERRNO(FC_E_IO, "--public-key-file %s", path);
    char *buf = calloc(1, 16385);
    size_t n = buf ? fread(buf, 1, 16384, f) : 0;
    bool more = buf && fgetc(f) != EOF;
    fclose(f);
    if (!buf)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    if (more) {
        free(buf);
        return FC_ERR(FC_E_INVALID, "--public-key-file %s: more than 16 KiB", path);
    }
    buf[n] = '\0';
    *out = buf;
    return FC_OK;
}

fc_rc
osa_keypair_import(struct osa *a)
{
    const char *name, *pub = osa_str(a, "public-key"), *file = osa_str(a, "public-key-file");
    char *fbuf = NULL;
    fc_rc rc = osa_need(a, "name", &name);
    if (rc)
        return rc;
    if (!pub == !file)
        return FC_ERR(FC_E_INVALID, "keypair-import: give one of --public-key or "
                      "--public-key-file");
    if (file && (rc = read_small_file(file, &fbuf)))
        return rc;
    if (file)
        pub = fbuf;
    char core[16384];
    if (strstr(pub, "PRIVATE KEY")) {
        free(fbuf);
        return FC_ERR(FC_E_INVALID, "keypair-import: that is a private key: only a public key "
                      "is imported (a private key never travels)");
    }
    if (!key_core(pub, core, sizeof core)) {
        free(fbuf);
        return FC_ERR(FC_E_INVALID, "keypair-import: the public key is not \"TYPE BASE64 "
                      "[COMMENT]\"");
    }
    char q[600], path[700];
    if ((rc = osa_q(name, q, sizeof q))) {
        free(fbuf);
        return rc;
    }
    snprintf(path, sizeof path, "/os-keypairs/%s", q);
    for (int attempt = 0; attempt < 2; attempt++) {
        json_t *r = NULL;
        rc = fc_os_call(a->os, FC_SVC_COMPUTE, "GET", path, NULL, NULL, &r);
        if (rc == FC_OK) {
            char have[16384];
            const char *hk = osa_js(json_object_get(r, "keypair"), "public_key");
            bool same = hk && key_core(hk, have, sizeof have) && strcmp(have, core) == 0;
            json_decref(r);
            free(fbuf);
            if (!same)
                return FC_ERR(FC_E_CONFLICT, "cloud '%s': keypair \"%.200s\" exists with another "
                              "public key", a->cloud, name);
            osa_resource(a, "keypair", name, name, false);
            return FC_OK;
        }
        if (rc != FC_E_NOTFOUND)
            break;
        json_t *body = json_pack("{s:{s:s,s:s,s:s}}", "keypair", "name", name, "public_key", pub,
                                 "type", "ssh");
        rc = fc_os_call(a->os, FC_SVC_COMPUTE, "POST", "/os-keypairs", body, NULL, NULL);
        json_decref(body);
        if (rc == FC_OK) {
            free(fbuf);
            osa_resource(a, "keypair", name, name, true);
            return FC_OK;
        }
        if (rc != FC_E_CONFLICT)
            break; /* 409: made meanwhile (a parallel attempt): read it back once */
    }
    free(fbuf);
    return rc;
}

/* ---- security groups --------------------------------------------------------------------- */

static fc_rc
tag_neutron(struct osa *a, const char *coll, const char *id, const json_t *tags)
{
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) if (strcmp(json_string_value(t), osa_tag(a)) == 0) return FC_OK;
    char q[300], path[512];
    fc_rc rc = osa_q(osa_tag(a), q, sizeof q);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "/%s/%s/tags/%s", coll, id, q);
    return fc_os_call(a->os, FC_SVC_NETWORK, "PUT", path, NULL, NULL, NULL);
}

/* The project's own group named `name` (*out new ref). */
static fc_rc
find_group(struct osa *a, const char *name, json_t **out)
{
    char q[600], path[900];
    fc_rc rc = osa_q(name, q, sizeof q);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "/security-groups?name=%s&project_id=%s", q,
             fc_os_project_id(a->os));
    return osa_find_one(a, FC_SVC_NETWORK, path, "security_groups", name, "security group", out);
}

fc_rc
osa_secgroup_create(struct osa *a)
{
    const char *name, *desc = osa_str(a, "description");
    fc_rc rc = osa_need(a, "name", &name);
    if (rc)
        return rc;
    json_t *g = NULL;
    rc = find_group(a, name, &g);
    bool created = false;
    if (rc == FC_E_NOTFOUND) {
        json_t *body = json_pack("{s:{s:s,s:s}}", "security_group", "name", name, "description",
                                 desc ? desc : "");
        json_t *r = NULL;
        rc = fc_os_call(a->os, FC_SVC_NETWORK, "POST", "/security-groups", body, NULL, &r);
        json_decref(body);
        if (rc)
            return rc;
        g = json_incref(json_object_get(r, "security_group"));
        json_decref(r);
        created = true;
    } else if (rc) {
        return rc;
    }
    const char *id = osa_js(g, "id");
    if (!id) {
        json_decref(g);
        return FC_ERR(FC_E_INVALID, "cloud '%s': security group reply has no id", a->cloud);
    }
    rc = tag_neutron(a, "security-groups", id, json_object_get(g, "tags"));
    if (rc == FC_OK)
        osa_resource(a, "security_group", id, name, created);
    json_decref(g);
    return rc;
}

/* A rule as Neutron would hold it, from "direction=ingress,protocol=tcp,...". */
static fc_rc
parse_rule(struct osa *a, const char *spec, const char *gid, json_t **out)
{
    json_t *r = json_pack("{s:s,s:s,s:n,s:n,s:n,s:n,s:n}", "security_group_id", gid,
                          "ethertype", "IPv4", "protocol", "port_range_min", "port_range_max",
                          "remote_ip_prefix", "remote_group_id");
    char buf[1024];
    if (strlen(spec) >= sizeof buf) {
        json_decref(r);
        return FC_ERR(FC_E_INVALID, "secgroup-rules: --rule too long");
    }
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    bool dir = false;
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq || eq == kv || !eq[1]) {
            json_decref(r);
            return FC_ERR(FC_E_INVALID, "secgroup-rules: --rule \"%.200s\": \"%.64s\" is not "
                          "key=value", spec, kv);
        }
        *eq = '\0';
        const char *k = kv, *v = eq + 1;
        if (strcmp(k, "direction") == 0 && (!strcmp(v, "ingress") || !strcmp(v, "egress"))) {
            json_object_set_new(r, "direction", json_string(v));
            dir = true;
        } else if (strcmp(k, "ethertype") == 0 && (!strcmp(v, "IPv4") || !strcmp(v, "IPv6"))) {
            json_object_set_new(r, "ethertype", json_string(v));
        } else if (strcmp(k, "protocol") == 0) {
            json_object_set_new(r, "protocol", json_string(v));
        } else if (strcmp(k, "remote_ip") == 0) {
            json_object_set_new(r, "remote_ip_prefix", json_string(v));
        } else if (strcmp(k, "remote_group") == 0) {
            json_t *g = NULL;
            fc_rc rc = find_group(a, v, &g);
            if (rc) {
                json_decref(r);
                return rc == FC_E_NOTFOUND
                           ? FC_ERR(FC_E_NOTFOUND, "secgroup-rules: --rule \"%.200s\": remote "
                                    "group \"%.200s\" does not exist on cloud '%s' (create it "
                                    "first)", spec, v, a->cloud)
                           : rc;
            }
            json_object_set(r, "remote_group_id", json_object_get(g, "id"));
            json_decref(g);
        } else if (strcmp(k, "port_min") == 0 || strcmp(k, "port_max") == 0) {
            char *end;
            long p = strtol(v, &end, 10);
            if (*end || p < 0 || p > 65535) {
                json_decref(r);
                return FC_ERR(FC_E_INVALID, "secgroup-rules: --rule \"%.200s\": %s=%.32s is "
                              "not 0..65535", spec, k, v);
            }
            json_object_set_new(r, k[6] == 'i' ? "port_range_min" : "port_range_max",
                                json_integer(p));
        } else {
            json_decref(r);
            return FC_ERR(FC_E_INVALID, "secgroup-rules: --rule \"%.200s\": unknown key or "
                          "value %s=%.64s", spec, k, v);
        }
    }
    if (!dir) {
        json_decref(r);
        return FC_ERR(FC_E_INVALID, "secgroup-rules: --rule \"%.200s\": direction=ingress|"
                      "egress is required", spec);
    }
    *out = r;
    return FC_OK;
}

static bool
same_field(const json_t *a, const json_t *b, const char *k)
{
    const json_t *x = json_object_get(a, k), *y = json_object_get(b, k);
    if (json_is_null(x) || !x)
        return json_is_null(y) || !y;
    return json_equal(x, y);
}

static const json_t *
find_rule(const json_t *rules, const json_t *want)
{
    static const char *const keys[] = {"direction", "ethertype", "protocol", "port_range_min",
                                       "port_range_max", "remote_group_id"};
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r) {
        bool same = true;
        for (size_t k = 0; same && k < sizeof keys / sizeof *keys; k++)
            same = same_field(r, want, keys[k]);
        /* Neutron may normalise the CIDR (normalized_cidr): either form matches */
        if (same && !same_field(r, want, "remote_ip_prefix") &&
            !same_field(r, want, "normalized_cidr")) {
            const char *w = osa_js(want, "remote_ip_prefix"), *n = osa_js(r, "normalized_cidr");
            same = w && n && strcmp(w, n) == 0;
        }
        if (same)
            return r;
    }
    return NULL;
}

fc_rc
osa_secgroup_rules(struct osa *a)
{
    const char *gname;
    fc_rc rc = osa_need(a, "group", &gname);
    if (rc)
        return rc;
    const json_t *specs = osa_list(a, "rule");
    json_t *g = NULL;
    if ((rc = find_group(a, gname, &g)))
        return rc;
    const char *gid = osa_js(g, "id");
    json_t *rules = json_incref(json_object_get(g, "security_group_rules"));
    json_object_set_new(a->result, "group_id", json_string(gid ? gid : ""));
    size_t i;
    json_t *s;
    json_array_foreach(specs, i, s) {
        json_t *want = NULL;
        if ((rc = parse_rule(a, json_string_value(s), gid, &want)))
            break;
        const json_t *have = find_rule(rules, want);
        if (have) {
            osa_resource(a, "security_group_rule", osa_js(have, "id"), json_string_value(s),
                         false);
            json_decref(want);
            continue;
        }
        json_object_set_new(want, "description", json_string(osa_tag(a)));
        json_t *body = json_pack("{s:o}", "security_group_rule", want), *r = NULL;
        rc = fc_os_call(a->os, FC_SVC_NETWORK, "POST", "/security-group-rules", body, NULL, &r);
        json_decref(body);
        if (rc)
            break;
        json_t *made = json_object_get(r, "security_group_rule");
        osa_resource(a, "security_group_rule", osa_js(made, "id"), json_string_value(s), true);
        json_array_append(rules, made);
        json_decref(r);
    }
    json_decref(rules);
    json_decref(g);
    return rc;
}

/* ---- floating-ip ------------------------------------------------------------------------- */

static bool
port_has_ip(const json_t *p, const char *ip)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(p, "fixed_ips"), i, f) {
        const char *x = osa_js(f, "ip_address");
        if (x && ip && strcmp(x, ip) == 0)
            return true;
    }
    return false;
}

static const char *
first_v4(const json_t *p)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(p, "fixed_ips"), i, f) {
        const char *x = osa_js(f, "ip_address");
        if (x && strchr(x, '.'))
            return x;
    }
    return NULL;
}

fc_rc
osa_floating_ip(struct osa *a)
{
    const char *sname, *ext, *fixed = osa_str(a, "fixed-ip"), *desc = osa_str(a, "description");
    fc_rc rc;
    if ((rc = osa_need(a, "server", &sname)) || (rc = osa_need(a, "external-network", &ext)))
        return rc;
    char q[600], path[900], dbuf[400];
    if (!desc) {
        snprintf(dbuf, sizeof dbuf, "fluid %s %.200s", a->rid, sname);
        desc = dbuf;
    }
    if ((rc = osa_q(sname, q, sizeof q)))
        return rc;
    snprintf(path, sizeof path, "/servers/detail?name=%s", q);
    json_t *srv = NULL, *ports = NULL, *fips = NULL, *fip = NULL;
    if ((rc = osa_resolve(a, FC_SVC_COMPUTE, path, "/servers", "servers", "server", sname,
                          "server", &srv)))
        return rc;
    snprintf(path, sizeof path, "/ports?device_id=%s", osa_js(srv, "id"));
    if ((rc = fc_os_list(a->os, FC_SVC_NETWORK, path, "ports", 0, &ports)))
        goto out;
    const json_t *port = NULL;
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p) if (!port && fixed && port_has_ip(p, fixed)) port = p;
    if (!port) {
        json_array_foreach(ports, i, p) if (!port && first_v4(p)) port = p;
        if (port && fixed)
            fc_event_info(a->m, json_pack("{s:s}", "note", "the server has no port with the "
                                          "fixed IP asked: its first IPv4 port is used"));
    }
    if (!port) {
        rc = FC_ERR(FC_E_NOTFOUND, "cloud '%s': server \"%.200s\" has no port with an IPv4 "
                    "address", a->cloud, sname);
        goto out;
    }
    const char *pid = osa_js(port, "id");
    const char *pip = port_has_ip(port, fixed) ? fixed : first_v4(port);
    snprintf(path, sizeof path, "/floatingips?project_id=%s", fc_os_project_id(a->os));
    if ((rc = fc_os_list(a->os, FC_SVC_NETWORK, path, "floatingips", 0, &fips)))
        goto out;
    json_array_foreach(fips, i, p) {
        const char *d = osa_js(p, "description");
        if (d && strcmp(d, desc) == 0) {
            if (fip) {
                rc = FC_ERR(FC_E_CONFLICT, "cloud '%s': several floating IPs have description "
                            "\"%.200s\"", a->cloud, desc);
                goto out;
            }
            fip = json_incref(p);
        }
    }
    bool created = false;
    if (!fip) {
        json_t *net = NULL;
        if ((rc = osa_q(ext, q, sizeof q)))
            goto out;
        snprintf(path, sizeof path, "/networks?name=%s&router:external=true", q);
        if ((rc = osa_resolve(a, FC_SVC_NETWORK, path, "/networks", "networks", "network",
                              ext, "external network", &net)))
            goto out;
        json_t *body = json_pack("{s:{s:O,s:s,s:s,s:s}}", "floatingip", "floating_network_id",
                                 json_object_get(net, "id"), "port_id", pid,
                                 "fixed_ip_address", pip, "description", desc), *r = NULL;
        json_decref(net);
        rc = fc_os_call(a->os, FC_SVC_NETWORK, "POST", "/floatingips", body, NULL, &r);
        json_decref(body);
        if (rc)
            goto out;
        fip = json_incref(json_object_get(r, "floatingip"));
        json_decref(r);
        created = true;
    } else if (!osa_js(fip, "port_id") || strcmp(osa_js(fip, "port_id"), pid) != 0) {
        json_t *body = json_pack("{s:{s:s,s:s}}", "floatingip", "port_id", pid,
                                 "fixed_ip_address", pip);
        snprintf(path, sizeof path, "/floatingips/%s", osa_js(fip, "id"));
        rc = fc_os_call(a->os, FC_SVC_NETWORK, "PUT", path, body, NULL, NULL);
        json_decref(body);
        if (rc)
            goto out;
    }
    if ((rc = tag_neutron(a, "floatingips", osa_js(fip, "id"), json_object_get(fip, "tags"))))
        goto out;
    json_object_set_new(a->result, "floating_ip_address",
                        json_string(osa_js(fip, "floating_ip_address")));
    json_object_set_new(a->result, "port_id", json_string(pid));
    json_object_set_new(a->result, "fixed_ip_address", json_string(pip));
    osa_resource(a, "floating_ip", osa_js(fip, "id"), osa_js(fip, "floating_ip_address"),
                 created);
out:
    json_decref(srv);
    json_decref(ports);
    json_decref(fips);
    json_decref(fip);
    return rc;
}
