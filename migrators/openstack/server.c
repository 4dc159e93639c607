/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-openstack server-create: a server with the flavor asked, its ports made first (named
 * after the server, the same fixed IP and MAC where the target network allows, else noted),
 * metadata (with fluid_relocation) and tags kept; a re-run finds it by name and marker (and
 * replaces it when it is in ERROR: the retry of a failed build). */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fluid/error.h"
#include "fluid/log.h"
#include "osa.h"

static bool
ip_in_cidr(const char *ip, const char *cidr)
{
    char net[64];
    const char *sl = strchr(cidr, '/');
    if (!sl || (size_t)(sl - cidr) >= sizeof net)
        return false;
    snprintf(net, sizeof net, "%.*s", (int)(sl - cidr), cidr);
    int bits = atoi(sl + 1);
    unsigned char a[16], b[16];
    int fam = strchr(ip, ':') ? AF_INET6 : AF_INET;
    int len = fam == AF_INET ? 4 : 16;
    if (inet_pton(fam, ip, a) != 1 || inet_pton(fam, net, b) != 1 || bits < 0 || bits > len * 8)
        return false;
    for (int i = 0; i < bits; i++) {
        int m = 0x80 >> (i % 8);
        if ((a[i / 8] & m) != (b[i / 8] & m))
            return false;
    }
    return true;
}

static void note(struct osa *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
note(struct osa *a, const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fc_log(FC_WARN, FC_MSG(buf));
    fc_event_info(a->m, json_pack("{s:s}", "note", buf));
    json_t *n = json_object_get(a->result, "notes");
    if (!n)
        json_object_set_new(a->result, "notes", n = json_array());
    json_array_append_new(n, json_string(buf));
}

/* "network=NET,fixed_ip=IP,mac=MAC" -> its parts (copied into the caller's buffers). */
static fc_rc
parse_port(const char *spec, char *net, char *ip, char *mac, size_t cap)
{
    char buf[600];
    net[0] = ip[0] = mac[0] = '\0';
    if (strlen(spec) >= sizeof buf)
        return FC_ERR(FC_E_INVALID, "server-create: --port too long");
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        char *dst = NULL;
        if (eq) {
            *eq = '\0';
            dst = !strcmp(kv, "network") ? net : !strcmp(kv, "fixed_ip") ? ip
                  : !strcmp(kv, "mac") ? mac : NULL;
        }
        if (!dst || !eq[1])
            return FC_ERR(FC_E_INVALID, "server-create: --port \"%.200s\": expected "
                          "network=NET[,fixed_ip=IP][,mac=MAC]", spec);
        snprintf(dst, cap, "%s", eq + 1);
    }
    if (!net[0])
        return FC_ERR(FC_E_INVALID, "server-create: --port \"%.200s\": network= is required",
                      spec);
    return FC_OK;
}

/* The port named `pname` of this project, made if missing. *id gets its id (malloc'd). */
static fc_rc
ensure_port(struct osa *a, const char *pname, const char *spec, const json_t *sg_ids, char **id)
{
    char net[256], ip[64], mac[64], q[600], path[900];
    fc_rc rc = parse_port(spec, net, ip, mac, sizeof net);
    if (rc || (rc = osa_q(pname, q, sizeof q)))
        return rc;
    json_t *have = NULL;
    snprintf(path, sizeof path, "/ports?name=%s&project_id=%s", q, fc_os_project_id(a->os));
    if ((rc = osa_find_named(a, FC_SVC_NETWORK, path, "ports", pname, &have)))
        return rc;
    if (json_array_size(have) > 0) {
        *id = strdup(osa_js(json_array_get(have, 0), "id"));
        osa_resource(a, "port", *id, pname, false);
        json_decref(have);
        return FC_OK;
    }
    json_decref(have);
    json_t *n = NULL, *subnets = NULL;
    if ((rc = osa_q(net, q, sizeof q)))
        return rc;
    snprintf(path, sizeof path, "/networks?name=%s", q);
    if ((rc = osa_resolve(a, FC_SVC_NETWORK, path, "/networks", "networks", "network", net,
                          "network", &n)))
        return rc;
    const char *nid = osa_js(n, "id");
    bool ip_ok = false;
    if (ip[0]) {
        snprintf(path, sizeof path, "/subnets?network_id=%s", nid);
        if ((rc = fc_os_list(a->os, FC_SVC_NETWORK, path, "subnets", 0, &subnets))) {
            json_decref(n);
            return rc;
        }
        size_t i;
        json_t *s;
        json_array_foreach(subnets, i, s) if (osa_js(s, "cidr") && ip_in_cidr(ip, osa_js(s, "cidr"))) ip_ok = true;
        json_decref(subnets);
        if (!ip_ok)
            note(a, "fixed IP %s is in no subnet of target network %s: the port gets a new "
                    "address", ip, net);
    }
    json_t *r = NULL;
    for (int attempt = 0; attempt < 3; attempt++) {
        json_t *p = json_pack("{s:s,s:s,s:s,s:O}", "name", pname, "network_id", nid,
                              "description", osa_tag(a), "security_groups", sg_ids);
        if (ip_ok)
            json_object_set_new(p, "fixed_ips", json_pack("[{s:s}]", "ip_address", ip));
        if (mac[0])
            json_object_set_new(p, "mac_address", json_string(mac));
        json_t *body = json_pack("{s:o}", "port", p);
        rc = fc_os_call(a->os, FC_SVC_NETWORK, "POST", "/ports", body, NULL, &r);
        json_decref(body);
        if (rc == FC_OK)
            break;
        long st = fc_os_last_error(a->os)->status;
        if (mac[0] && (st == 403 || st == 409 || rc == FC_E_CONFLICT)) {
            note(a, "MAC %s is not allowed on target network %s: the port gets a new MAC", mac,
                 net);
            mac[0] = '\0';
        } else if (ip_ok && (st == 409 || st == 400 || rc == FC_E_CONFLICT)) {
            note(a, "fixed IP %s cannot be had on target network %s (in use or refused): the "
                    "port gets a new address", ip, net);
            ip_ok = false;
        } else {
            break;
        }
    }
    json_decref(n);
    if (rc)
        return rc;
    const json_t *port = json_object_get(r, "port");
    *id = strdup(osa_js(port, "id") ? osa_js(port, "id") : "");
    osa_resource(a, "port", *id, pname, true);
    json_decref(r);
    return FC_OK;
}

static fc_rc
group_ids(struct osa *a, json_t **out)
{
    *out = json_array();
    size_t i;
    json_t *g;
    json_array_foreach(osa_list(a, "security-group"), i, g) {
        char q[600], path[900];
        json_t *x = NULL;
        fc_rc rc = osa_q(json_string_value(g), q, sizeof q);
        if (rc)
            return rc;
        snprintf(path, sizeof path, "/security-groups?name=%s&project_id=%s", q,
                 fc_os_project_id(a->os));
        if ((rc = osa_find_one(a, FC_SVC_NETWORK, path, "security_groups", json_string_value(g),
                               "security group", &x)))
            return rc;
        json_array_append(*out, json_object_get(x, "id"));
        json_decref(x);
    }
    return FC_OK;
}

static fc_rc
parse_json_opt(struct osa *a, const char *opt, json_type want, json_t **out)
{
    const char *s = osa_str(a, opt);
    *out = NULL;
    if (!s)
        return FC_OK;
    json_error_t e;
    json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, &e);
    if (!j || json_typeof(j) != want) {
        json_decref(j);
        return FC_ERR(FC_E_INVALID, "server-create: --%s: not a JSON %s (%s at column %d)", opt,
                      want == JSON_OBJECT ? "object" : "array", j ? "wrong type" : e.text,
                      e.column);
    }
    const char *k;
    json_t *v;
    size_t i;
    if (want == JSON_OBJECT) {
        json_object_foreach(j, k, v) if (!json_is_string(v)) {
            json_decref(j);
            return FC_ERR(FC_E_INVALID, "server-create: --%s: value of \"%.64s\" is not a "
                          "string", opt, k);
        }
    } else {
        json_array_foreach(j, i, v) if (!json_is_string(v)) {
            json_decref(j);
            return FC_ERR(FC_E_INVALID, "server-create: --%s: item %zu is not a string", opt, i);
        }
    }
    *out = j;
    return FC_OK;
}

static const char *const active[] = {"ACTIVE", NULL};
static const char *const failed[] = {"ERROR", "DELETED", "SOFT_DELETED", NULL};

static fc_rc
finish(struct osa *a, const char *id, const char *name, bool created)
{
    char path[300], what[400];
    json_t *srv = NULL;
    snprintf(path, sizeof path, "/servers/%s", id);
    snprintf(what, sizeof what, "server %.200s", name);
    fc_rc rc = osa_wait(a, FC_SVC_COMPUTE, path, "server", "status", active, failed, what, &srv);
    if (rc)
        return rc;
    json_object_set_new(a->result, "server_id", json_string(id));
    json_object_set(a->result, "addresses", json_object_get(srv, "addresses"));
    json_object_set(a->result, "flavor", json_object_get(srv, "flavor"));
    osa_resource(a, "server", id, name, created);
    json_decref(srv);
    return FC_OK;
}

/* Deletes server `id` (one this relocation made, in ERROR) and waits until Nova no longer
 * lists it (404 or DELETED), at most 300 s. */
static fc_rc
delete_failed(struct osa *a, const char *id, const char *name)
{
    char path[300];
    snprintf(path, sizeof path, "/servers/%s", id);
    fc_rc rc = fc_os_call(a->os, FC_SVC_COMPUTE, "DELETE", path, NULL, NULL, NULL);
    if (rc && rc != FC_E_NOTFOUND)
        return rc;
    for (int waited = 0; waited < 300; waited += 2) {
        if (fc_cancel_requested)
            return FC_ERR(FC_E_CANCELLED, "%s: cancelled while deleting server %.200s",
                          a->action, name);
        json_t *r = NULL;
        rc = fc_os_call(a->os, FC_SVC_COMPUTE, "GET", path, NULL, NULL, &r);
        if (rc == FC_E_NOTFOUND)
            return FC_OK;
        if (rc)
            return rc;
        const char *st = osa_js(json_object_get(r, "server"), "status");
        bool gone = st && strcmp(st, "DELETED") == 0;
        json_decref(r);
        if (gone)
            return FC_OK;
        sleep(2);
    }
    return FC_ERR(FC_E_TIMEOUT, "cloud '%s': server %.200s (%s), in ERROR, was not deleted "
                  "within 300 s", a->cloud, name, id);
}

/* After a 409 on POST /servers: polls for up to 30 s for the server named `name` made by
 * this relocation; when it shows, finishes it (*rc) and returns true. */
static bool
adopt_raced(struct osa *a, const char *name, json_t **l, fc_rc *rc)
{
    char q[600], path[900];
    if (osa_q(name, q, sizeof q) != FC_OK)
        return false;
    snprintf(path, sizeof path, "/servers/detail?name=%s", q);
    for (int i = 0; i < 15 && !fc_cancel_requested; i++) {
        json_decref(*l);
        *l = NULL;
        if (osa_find_named(a, FC_SVC_COMPUTE, path, "servers", name, l) != FC_OK)
            return false;
        size_t k;
        json_t *s;
        json_array_foreach(*l, k, s) {
            const char *m = osa_js(json_object_get(s, "metadata"), "fluid_relocation");
            if (m && strcmp(m, a->rid) == 0) {
                note(a, "server %.200s was made by an earlier run of this task: adopted", name);
                *rc = finish(a, osa_js(s, "id"), name, false);
                return true;
            }
        }
        sleep(2);
    }
    return false;
}

fc_rc
osa_server_create(struct osa *a)
{
    const char *name, *flavor, *image = osa_str(a, "image"), *bootvol = osa_str(a, "boot-volume");
    fc_rc rc;
    if ((rc = osa_need(a, "name", &name)) || (rc = osa_need(a, "flavor", &flavor)))
        return rc;
    if (!image == !bootvol)
        return FC_ERR(FC_E_INVALID, "server-create: give one of --image or --boot-volume");
    json_t *meta = NULL, *tags = NULL, *l = NULL, *fl = NULL, *img = NULL, *sgs = NULL;
    json_t *nets = json_array();
    if ((rc = parse_json_opt(a, "metadata-json", JSON_OBJECT, &meta)) ||
        (rc = parse_json_opt(a, "tags-json", JSON_ARRAY, &tags)))
        goto out;
    if (!meta)
        meta = json_object();
    const char *mark = osa_js(meta, "fluid_relocation");
    if (mark && strcmp(mark, a->rid) != 0) {
        rc = FC_ERR(FC_E_INVALID, "server-create: --metadata-json has fluid_relocation=%.64s, "
                    "not this relocation (%s)", mark, a->rid);
        goto out;
    }
    json_object_set_new(meta, "fluid_relocation", json_string(a->rid));
    char q[600], path[900];
    if ((rc = osa_q(name, q, sizeof q)))
        goto out;
    snprintf(path, sizeof path, "/servers/detail?name=%s", q);
    if ((rc = osa_find_named(a, FC_SVC_COMPUTE, path, "servers", name, &l)))
        goto out;
    if (json_array_size(l) > 1) {
        rc = FC_ERR(FC_E_CONFLICT, "cloud '%s': %zu servers are named \"%.200s\"", a->cloud,
                    json_array_size(l), name);
        goto out;
    }
    if (json_array_size(l) == 1) {
        const json_t *s = json_array_get(l, 0);
        const char *m = osa_js(json_object_get(s, "metadata"), "fluid_relocation");
        if (!m || strcmp(m, a->rid) != 0) {
            rc = FC_ERR(FC_E_CONFLICT, "cloud '%s': server \"%.200s\" exists but was not made "
                        "by relocation %s (metadata fluid_relocation=%.64s)", a->cloud, name,
                        a->rid, m ? m : "(none)");
            goto out;
        }
        const char *st = osa_js(s, "status");
        if (!st || strcmp(st, "ERROR") != 0) {
            rc = finish(a, osa_js(s, "id"), name, false);
            goto out;
        }
        /* Ours, but its build failed (e.g. Nova's "Failed to allocate the network(s)" when
         * the VIF-plugged event came too late): a retry of this task launches it again.
         * Its ports were made apart from it, so Nova leaves them and they are reused. */
        const char *fault = osa_js(json_object_get(s, "fault"), "message");
        note(a, "server %.200s of an earlier attempt is in ERROR (%.200s): deleted, launched "
             "again", name, fault ? fault : "no fault given");
        if ((rc = delete_failed(a, osa_js(s, "id"), name)))
            goto out;
    }
    if ((rc = osa_resolve(a, FC_SVC_COMPUTE, "/flavors/detail", "/flavors", "flavors",
                          "flavor", flavor, "flavor", &fl)))
        goto out;
    if ((rc = group_ids(a, &sgs)))
        goto out;
    size_t i;
    json_t *p;
    json_array_foreach(osa_list(a, "port"), i, p) {
        char pname[400];
        char *pid = NULL;
        snprintf(pname, sizeof pname, "%.300s-port%zu", name, i);
        if ((rc = ensure_port(a, pname, json_string_value(p), sgs, &pid)))
            goto out;
        json_array_append_new(nets, json_pack("{s:s}", "port", pid));
        free(pid);
    }
    json_t *srv = json_pack("{s:s,s:O,s:O}", "name", name, "flavorRef",
                            json_object_get(fl, "id"), "metadata", meta);
    if (json_array_size(nets))
        json_object_set(srv, "networks", nets);
    else
        json_object_set_new(srv, "networks", json_string("none"));
    if (tags)
        json_object_set(srv, "tags", tags);
    if (osa_str(a, "key-name"))
        json_object_set_new(srv, "key_name", json_string(osa_str(a, "key-name")));
    if (image) {
        if ((rc = osa_q(image, q, sizeof q))) {
            json_decref(srv);
            goto out;
        }
        snprintf(path, sizeof path, "/images?name=%s", q);
        if ((rc = osa_resolve(a, FC_SVC_IMAGE, path, "/images", "images", NULL, image,
                              "image", &img))) {
            json_decref(srv);
            goto out;
        }
        json_object_set(srv, "imageRef", json_object_get(img, "id"));
    } else {
        json_t *v = NULL;
        if ((rc = osa_q(bootvol, q, sizeof q))) {
            json_decref(srv);
            goto out;
        }
        snprintf(path, sizeof path, "/volumes/detail?name=%s", q);
        if ((rc = osa_resolve(a, FC_SVC_VOLUME, path, "/volumes", "volumes", "volume",
                              bootvol, "volume", &v))) {
            json_decref(srv);
            goto out;
        }
        json_object_set_new(srv, "block_device_mapping_v2",
                            json_pack("[{s:O,s:s,s:s,s:i,s:b}]", "uuid", json_object_get(v, "id"),
                                      "source_type", "volume", "destination_type", "volume",
                                      "boot_index", 0, "delete_on_termination", 0));
        json_decref(v);
    }
    json_t *body = json_pack("{s:o}", "server", srv), *r = NULL;
    rc = fc_os_call(a->os, FC_SVC_COMPUTE, "POST", "/servers", body, NULL, &r);
    json_decref(body);
    if (rc && fc_os_last_error(a->os)->status == 409 && json_array_size(nets)) {
        /* a port in use: an earlier run of this task (killed while its POST was on the
         * wire) may have made the server; adopt it when it carries our marker */
        struct fc_error saved = *fc_error_last();
        if (adopt_raced(a, name, &l, &rc))
            goto out;
        rc = FC_ERR(saved.rc, "%s", saved.msg);
    }
    if (rc)
        goto out;
    const char *id = osa_js(json_object_get(r, "server"), "id");
    if (!id)
        rc = FC_ERR(FC_E_INVALID, "cloud '%s': server create reply has no id", a->cloud);
    else
        rc = finish(a, id, name, true);
    json_decref(r);
out:
    json_decref(meta);
    json_decref(tags);
    json_decref(l);
    json_decref(fl);
    json_decref(img);
    json_decref(sgs);
    json_decref(nets);
    return rc;
}
