/* SPDX-License-Identifier: Apache-2.0 */
/* Cleanup of a relocation on its target cloud (cleanup.h). Order: floating IPs, servers
 * (waited until gone, which detaches their volumes), volumes, images, router interfaces and
 * routers, ports, subnets, networks, rules, security groups, keypairs. Each list is read
 * whole and filtered here on the relocation's marks, so nothing without them is touched. */
#include "cleanup.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fluid/cloud/os.h"
#include "fluid/cloud/resources.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/msg.h"
#include "planner.h"

struct cl {
    struct fc_os *os;
    const char *rid;
    char tag[FC_ID_MAX + 32];      /* fluid-relocation=<rid> */
    char fipdesc[FC_ID_MAX + 16];  /* "fluid <rid> " */
    json_t *deleted, *errors;
    const struct fc_cloud_config *cfg;
};

static const char *
js(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static bool
has_tag(const struct cl *c, const json_t *o)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(o, "tags"), i, t)
        if (json_string_value(t) && strcmp(json_string_value(t), c->tag) == 0)
            return true;
    return false;
}

static void
note_error(struct cl *c, const char *kind, const char *id, const char *name)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", fc_error_msg());
    fc_planner_scrub(msg, c->cfg);
    fc_log(FC_WARN, FC_MSG("cleanup: not deleted"), FC_STR("relocation", c->rid),
           FC_STR("kind", kind), FC_STR("id", id ? id : ""), FC_STR("error", msg));
    json_array_append_new(c->errors, json_pack("{s:s,s:s?,s:s?,s:s}", "kind", kind, "id", id,
                                               "name", name, "error", msg));
}

/* DELETE path; a 404 is "already gone" (not listed). */
static bool
del(struct cl *c, enum fc_os_service svc, const char *path, const char *kind, const char *id,
    const char *name)
{
    fc_rc rc = fc_os_call(c->os, svc, "DELETE", path, NULL, NULL, NULL);
    if (rc == FC_E_NOTFOUND)
        return false;
    if (rc != FC_OK) {
        note_error(c, kind, id, name);
        return false;
    }
    fc_log(FC_INFO, FC_MSG("cleanup: deleted"), FC_STR("relocation", c->rid),
           FC_STR("kind", kind), FC_STR("id", id ? id : ""), FC_STR("name", name ? name : ""));
    json_array_append_new(c->deleted,
                          json_pack("{s:s,s:s?,s:s?}", "kind", kind, "id", id, "name", name));
    return true;
}

static json_t *
list(struct cl *c, enum fc_os_service svc, const char *path, const char *key, const char *kind)
{
    json_t *items = NULL;
    if (fc_os_list(c->os, svc, path, key, 0, &items) != FC_OK) {
        note_error(c, kind, NULL, NULL);
        return json_array();
    }
    return items;
}

static void
sleep_s(unsigned s)
{
    struct timespec ts = {s, 0};
    nanosleep(&ts, NULL);
}

/* Polls path until it answers 404 (or `until` fails for a status), at most `secs`. */
static void
wait_gone(struct cl *c, enum fc_os_service svc, const char *path, unsigned secs)
{
    for (unsigned i = 0; i < secs; i++) {
        if (fc_os_call(c->os, svc, "GET", path, NULL, NULL, NULL) == FC_E_NOTFOUND)
            return;
        sleep_s(1);
    }
}

static void
servers_and_volumes(struct cl *c)
{
    char path[600];
    json_t *l = list(c, FC_SVC_COMPUTE, "/servers/detail", "servers", "server"), *e;
    size_t i;
    json_t *gone = json_array();
    json_array_foreach(l, i, e) {
        const char *m = js(json_object_get(e, "metadata"), "fluid_relocation");
        if (!m || strcmp(m, c->rid) != 0 || !js(e, "id"))
            continue;
        snprintf(path, sizeof path, "/servers/%s", js(e, "id"));
        if (del(c, FC_SVC_COMPUTE, path, "server", js(e, "id"), js(e, "name")))
            json_array_append_new(gone, json_string(path));
    }
    json_array_foreach(gone, i, e)
        wait_gone(c, FC_SVC_COMPUTE, json_string_value(e), 180);
    json_decref(gone);
    json_decref(l);
    if (!fc_os_has_service(c->os, FC_SVC_VOLUME))
        return;
    l = list(c, FC_SVC_VOLUME, "/volumes/detail", "volumes", "volume");
    json_array_foreach(l, i, e) {
        const char *m = js(json_object_get(e, "metadata"), "fluid_relocation");
        if (!m || strcmp(m, c->rid) != 0 || !js(e, "id"))
            continue;
        snprintf(path, sizeof path, "/volumes/%s", js(e, "id"));
        /* the server's deletion detaches it: wait for that (at most 2 minutes) */
        for (int k = 0; k < 120; k++) {
            json_t *v = NULL;
            if (fc_os_call(c->os, FC_SVC_VOLUME, "GET", path, NULL, NULL, &v) != FC_OK)
                break;
            const char *st = js(json_object_get(v, "volume"), "status");
            bool busy = st && (!strcmp(st, "in-use") || !strcmp(st, "detaching") ||
                               !strcmp(st, "attaching") || !strcmp(st, "creating") ||
                               !strcmp(st, "downloading"));
            json_decref(v);
            if (!busy)
                break;
            sleep_s(1);
        }
        if (del(c, FC_SVC_VOLUME, path, "volume", js(e, "id"), js(e, "name")))
            wait_gone(c, FC_SVC_VOLUME, path, 120);
    }
    json_decref(l);
}

static void
images(struct cl *c)
{
    char path[600];
    snprintf(path, sizeof path, "/images?owner=%s", fc_os_project_id(c->os));
    json_t *l = list(c, FC_SVC_IMAGE, path, "images", "image"), *e;
    size_t i;
    json_array_foreach(l, i, e) {
        const char *m = js(e, "fluid_relocation");
        if (!m || strcmp(m, c->rid) != 0 || !js(e, "id"))
            continue;
        snprintf(path, sizeof path, "/images/%s", js(e, "id"));
        del(c, FC_SVC_IMAGE, path, "image", js(e, "id"), js(e, "name"));
    }
    json_decref(l);
}

static void
network(struct cl *c)
{
    char path[600];
    const char *pid = fc_os_project_id(c->os);
    size_t i, k;
    json_t *e, *p;
    /* floating IPs went first (cleanup_target); routers: interfaces, then the router */
    snprintf(path, sizeof path, "/routers?project_id=%s", pid);
    json_t *l = list(c, FC_SVC_NETWORK, path, "routers", "router");
    json_array_foreach(l, i, e) {
        if (!has_tag(c, e) || !js(e, "id"))
            continue;
        snprintf(path, sizeof path, "/ports?device_id=%s", js(e, "id"));
        json_t *ports = list(c, FC_SVC_NETWORK, path, "ports", "router interface");
        json_array_foreach(ports, k, p) {
            const char *owner = js(p, "device_owner");
            if (!owner || !strstr(owner, "router_interface") || !js(p, "id"))
                continue;
            json_t *body = json_pack("{s:s}", "port_id", js(p, "id"));
            snprintf(path, sizeof path, "/routers/%s/remove_router_interface", js(e, "id"));
            fc_rc rc = fc_os_call(c->os, FC_SVC_NETWORK, "PUT", path, body, NULL, NULL);
            json_decref(body);
            if (rc != FC_OK && rc != FC_E_NOTFOUND)
                note_error(c, "router interface", js(p, "id"), js(e, "name"));
        }
        json_decref(ports);
        snprintf(path, sizeof path, "/routers/%s", js(e, "id"));
        del(c, FC_SVC_NETWORK, path, "router", js(e, "id"), js(e, "name"));
    }
    json_decref(l);
    /* ports server-create made (Nova leaves ports it was given) */
    snprintf(path, sizeof path, "/ports?project_id=%s", pid);
    l = list(c, FC_SVC_NETWORK, path, "ports", "port");
    json_array_foreach(l, i, e) {
        const char *d = js(e, "description");
        if (!d || strcmp(d, c->tag) != 0 || !js(e, "id"))
            continue;
        snprintf(path, sizeof path, "/ports/%s", js(e, "id"));
        del(c, FC_SVC_NETWORK, path, "port", js(e, "id"), js(e, "name"));
    }
    json_decref(l);
    static const char *const kinds[][3] = {{"subnets", "subnets", "subnet"},
                                           {"networks", "networks", "network"}};
    for (int n = 0; n < 2; n++) {
        snprintf(path, sizeof path, "/%s?project_id=%s", kinds[n][0], pid);
        l = list(c, FC_SVC_NETWORK, path, kinds[n][1], kinds[n][2]);
        json_array_foreach(l, i, e) {
            if (!has_tag(c, e) || !js(e, "id"))
                continue;
            snprintf(path, sizeof path, "/%s/%s", kinds[n][0], js(e, "id"));
            del(c, FC_SVC_NETWORK, path, kinds[n][2], js(e, "id"), js(e, "name"));
        }
        json_decref(l);
    }
    /* rules added to groups that stay (the target's default), then the groups made */
    snprintf(path, sizeof path, "/security-groups?project_id=%s", pid);
    l = list(c, FC_SVC_NETWORK, path, "security_groups", "security group");
    json_array_foreach(l, i, e) {
        if (has_tag(c, e))
            continue;
        json_array_foreach(json_object_get(e, "security_group_rules"), k, p) {
            const char *d = js(p, "description");
            if (!d || strcmp(d, c->tag) != 0 || !js(p, "id"))
                continue;
            snprintf(path, sizeof path, "/security-group-rules/%s", js(p, "id"));
            del(c, FC_SVC_NETWORK, path, "security group rule", js(p, "id"), js(e, "name"));
        }
    }
    json_array_foreach(l, i, e) {
        if (!has_tag(c, e) || !js(e, "id"))
            continue;
        snprintf(path, sizeof path, "/security-groups/%s", js(e, "id"));
        del(c, FC_SVC_NETWORK, path, "security group", js(e, "id"), js(e, "name"));
    }
    json_decref(l);
}

static void
floating_ips(struct cl *c)
{
    char path[600];
    snprintf(path, sizeof path, "/floatingips?project_id=%s", fc_os_project_id(c->os));
    json_t *l = list(c, FC_SVC_NETWORK, path, "floatingips", "floating IP"), *e;
    size_t i;
    json_array_foreach(l, i, e) {
        const char *d = js(e, "description");
        bool ours = has_tag(c, e) || (d && strncmp(d, c->fipdesc, strlen(c->fipdesc)) == 0);
        if (!ours || !js(e, "id"))
            continue;
        snprintf(path, sizeof path, "/floatingips/%s", js(e, "id"));
        del(c, FC_SVC_NETWORK, path, "floating IP", js(e, "id"), js(e, "floating_ip_address"));
    }
    json_decref(l);
}

/* Keypairs hold no mark: the names the plan's keypair-import tasks gave them. */
static void
keypairs(struct cl *c, const json_t *plan)
{
    size_t i, k;
    json_t *t, *a;
    json_array_foreach(json_object_get(plan, "tasks"), i, t) {
        json_t *args = json_object_get(json_array_get(json_object_get(t, "stages"), 0), "args");
        if (!json_string_value(json_array_get(args, 0)) ||
            strcmp(json_string_value(json_array_get(args, 0)), "keypair-import") != 0)
            continue;
        json_array_foreach(args, k, a) {
            const char *v = json_string_value(a);
            const char *name = json_string_value(json_array_get(args, k + 1));
            if (!v || strcmp(v, "--name") != 0 || !name)
                continue;
            char q[600], path[700];
            if (!fc_url_escape(name, q, sizeof q))
                continue;
            snprintf(path, sizeof path, "/os-keypairs/%s", q);
            del(c, FC_SVC_COMPUTE, path, "keypair", name, name);
        }
    }
}

fc_rc
fc_cleanup_target(const char *clouds_file, const json_t *request, json_t **out, char *reason,
                  size_t cap)
{
    *out = NULL;
    reason[0] = '\0';
    const char *rid = js(request, "relocation_id");
    const char *target = js(json_object_get(request, "target"), "cloud");
    if (!rid || !target) {
        snprintf(reason, cap, "cleanup: the request names no target cloud");
        return FC_ERR(FC_E_INVALID, "%s", reason);
    }
    struct fc_cloud_config *cfg = NULL;
    struct cl c = {.rid = rid};
    fc_rc rc = fc_planner_open_cloud(clouds_file, target, &cfg, &c.os);
    if (rc == FC_OK)
        rc = fc_os_authenticate(c.os);
    if (rc != FC_OK) {
        snprintf(reason, cap, "cleanup: open target cloud \"%s\": %s: %s", target,
                 fc_rc_name(rc), fc_error_msg());
        fc_planner_scrub(reason, cfg);
        fc_os_close(c.os);
        fc_cloud_config_free(cfg);
        return rc;
    }
    c.cfg = cfg;
    snprintf(c.tag, sizeof c.tag, "fluid-relocation=%s", rid);
    snprintf(c.fipdesc, sizeof c.fipdesc, "fluid %s ", rid);
    c.deleted = json_array();
    c.errors = json_array();
    floating_ips(&c);
    servers_and_volumes(&c);
    images(&c);
    network(&c);
    keypairs(&c, json_object_get(request, "plan"));
    char now[40];
    *out = json_pack("{s:s,s:s,s:s,s:o,s:o}", "relocation_id", rid, "cloud", target, "ts",
                     fc_msg_now(now, sizeof now), "deleted", c.deleted, "errors", c.errors);
    size_t nerr = json_array_size(json_object_get(*out, "errors"));
    if (nerr) {
        json_t *e0 = json_array_get(json_object_get(*out, "errors"), 0);
        snprintf(reason, cap, "cleanup: %zu resource(s) of the target could not be deleted or "
                 "listed; first: %s %s: %s", nerr, js(e0, "kind"), js(e0, "id") ? js(e0, "id") : "",
                 js(e0, "error"));
        rc = FC_ERR(FC_E_REMOTE, "%s", reason);
    }
    fc_log(FC_INFO, FC_MSG("cleanup done"), FC_STR("relocation", rid), FC_STR("cloud", target),
           FC_U64("deleted", json_array_size(json_object_get(*out, "deleted"))),
           FC_U64("errors", nerr));
    fc_os_close(c.os);
    fc_cloud_config_free(cfg);
    return rc;
}
