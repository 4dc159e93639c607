/* SPDX-License-Identifier: Apache-2.0 */
/* Planning the config rewrite: with a rules file, one task per relocated server after every
 * launch, floating IP and volume attach of the relocation. Its stage is fluid-openstack
 * config-rewrite, which reads the new addresses from the target at run time, merges them
 * into the variables planned here (source addresses, names, devices, mount points) and runs
 * fluid-config over SFTP on the server. Also the check of the planning options. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/cleanup.h"
#include "fluid/cloud/plan.h"
#include "fluid/cloud/topology.h"
#include "fluid/error.h"
#include "fluid/msg.h"
#include "plan_internal.h"

#define VARS_PART 4000 /* bytes of the variables' JSON per argument (limit 4096) */

fc_rc
pb_check_options(struct pb *b)
{
    const struct fc_plan_opts *o = b->o;
    if (o->volume_method && strcmp(o->volume_method, "image") != 0 &&
        strcmp(o->volume_method, "ssh") != 0)
        return FC_ERR(FC_E_INVALID, "options.volume_method: \"%.40s\": \"image\" or \"ssh\" "
                      "expected", o->volume_method);
    const struct fc_cloud_config *cf[2] = {o->src_config, o->dst_config};
    for (int i = 0; i < 2 && o->volume_method && strcmp(o->volume_method, "ssh") == 0; i++) {
        if (cf[i] && (!cf[i]->storage_host || !cf[i]->storage_path) &&
            json_array_size(json_object_get(b->topo, "volumes")))
            return FC_ERR(FC_E_INVALID, "options.volume_method \"ssh\": cloud '%s' (%s) has "
                          "no storage_ssh {host, path, ...} entry in its clouds.yaml",
                          cf[i]->name, cf[i]->origin ? cf[i]->origin : "?");
    }
    const json_t *cs = o->config_ssh;
    if (cs) {
        if (!json_is_object(cs))
            return FC_ERR(FC_E_INVALID, "options.config_ssh: an object expected");
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)cs, k, v) {
            if (strcmp(k, "port") == 0) {
                if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                    json_integer_value(v) > 65535)
                    return FC_ERR(FC_E_INVALID, "options.config_ssh.port: 1-65535 expected");
            } else if (strcmp(k, "user") == 0 || strcmp(k, "identity") == 0 ||
                       strcmp(k, "known_hosts") == 0 || strcmp(k, "host") == 0) {
                const char *s = json_string_value(v);
                if (!s || !*s || strlen(s) > 1024 || strpbrk(s, "\n\r"))
                    return FC_ERR(FC_E_INVALID, "options.config_ssh.%s: a non-empty string "
                                  "expected", k);
                if ((strcmp(k, "user") == 0 || strcmp(k, "host") == 0) &&
                    strpbrk(s, "/@: "))
                    return FC_ERR(FC_E_INVALID, "options.config_ssh.%s: holds '/', '@', ':' "
                                  "or a space", k);
            } else {
                return FC_ERR(FC_E_INVALID, "options.config_ssh.%.60s: unknown field (user, "
                              "port, identity, known_hosts, host)", k);
            }
        }
    }
    const json_t *mp = o->mountpoints;
    if (mp) {
        if (!json_is_object(mp))
            return FC_ERR(FC_E_INVALID, "options.mountpoints: an object expected");
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)mp, k, v) {
            const char *s1 = json_string_value(v), *s2 = s1;
            if (json_is_object(v)) {
                s1 = json_string_value(json_object_get(v, "source"));
                s2 = json_string_value(json_object_get(v, "target"));
                if (json_object_size(v) != (size_t)(!!s1 + !!s2))
                    return FC_ERR(FC_E_INVALID, "options.mountpoints.%.60s: only \"source\" "
                                  "and \"target\" (strings) expected", k);
            }
            if ((!s1 && !s2) || (s1 && s1[0] != '/') || (s2 && s2[0] != '/'))
                return FC_ERR(FC_E_INVALID, "options.mountpoints.%.60s: an absolute path (or "
                              "{\"source\", \"target\"}) expected", k);
        }
    }
    return FC_OK;
}

/* The source addresses of server s: its ports' fixed IPs and the floating IPs on them. */
static json_t *
source_server_vars(struct pb *b, const json_t *s)
{
    json_t *fixed = json_array(), *floating = json_array();
    size_t i, j;
    json_t *e, *ip;
    json_array_foreach(json_object_get(s, "port_ids"), i, e) {
        const json_t *p = fc_json_find(json_object_get(b->topo, "ports"), "id",
                                       json_string_value(e));
        json_array_foreach(json_object_get(p, "fixed_ips"), j, ip)
            json_array_append_new(fixed, json_string(pb_str(ip, "ip_address")));
        json_array_foreach(json_object_get(b->topo, "floating_ips"), j, ip) {
            if (pb_str(ip, "port_id") && strcmp(pb_str(ip, "port_id"), json_string_value(e)) == 0)
                json_array_append_new(floating,
                                      json_string(pb_str(ip, "floating_ip_address")));
        }
    }
    json_t *v = json_pack("{s:s, s:s, s:o, s:o}", "name", pb_str(s, "name"), "id",
                          pb_str(s, "id"), "fixed_ips", fixed, "floating_ips", floating);
    if (json_array_size(fixed))
        json_object_set(v, "fixed_ip", json_array_get(fixed, 0));
    if (json_array_size(floating))
        json_object_set(v, "floating_ip", json_array_get(floating, 0));
    return v;
}

/* The mount point of volume (name, id) on side "source" or "target", or NULL. */
static const char *
mountpoint(struct pb *b, const char *name, const char *id, const char *side)
{
    const json_t *m = json_object_get(b->o->mountpoints, name ? name : "");
    if (!m)
        m = json_object_get(b->o->mountpoints, id);
    if (json_is_string(m))
        return json_string_value(m);
    return json_string_value(json_object_get(m, side));
}

/* The variables known at planning, and every task the config steps wait for. */
static json_t *
planned_vars(struct pb *b, json_t *deps)
{
    json_t *src_srv = json_object(), *dst_srv = json_object(), *src_vol = json_object(),
           *dst_vol = json_object();
    size_t i, j;
    json_t *s, *x;
    json_array_foreach(json_object_get(b->topo, "servers"), i, s) {
        char key[300];
        snprintf(key, sizeof key, "server:%s", pb_str(s, "id"));
        const json_t *pl = json_object_get(b->done, key);
        if (!pl)
            continue; /* not relocated */
        json_object_set_new(src_srv, pb_str(s, "name"), source_server_vars(b, s));
        json_object_set_new(dst_srv, pb_str(s, "name"),
                            json_pack("{s:s}", "name", pb_str(pl, "target_name")));
        pb_dep_add(deps, pb_str(pl, "launch"));
        json_array_foreach(json_object_get(pl, "fips"), j, x) pb_dep_add(deps, json_string_value(x));
        json_array_foreach(json_object_get(pl, "attaches"), j, x)
            pb_dep_add(deps, json_string_value(x));
        json_array_foreach(json_object_get(s, "volume_attachments"), j, x) {
            const char *vid = pb_str(x, "volume_id"), *tn = pb_target_name_of(b, vid);
            const json_t *v = fc_json_find(json_object_get(b->topo, "volumes"), "id", vid);
            if (!tn || !v)
                continue;
            const char *vn = pb_str(v, "name") && *pb_str(v, "name") ? pb_str(v, "name") : vid;
            json_t *sv = json_pack("{s:s, s:s, s:s?, s:s?, s:s}", "name", vn, "id", vid,
                                   "device", pb_str(x, "device"), "mountpoint",
                                   mountpoint(b, pb_str(v, "name"), vid, "source"), "server",
                                   pb_str(s, "name"));
            json_t *tv = json_pack("{s:s, s:s?, s:s?, s:s}", "name", tn, "device",
                                   pb_str(x, "device"), "mountpoint",
                                   mountpoint(b, pb_str(v, "name"), vid, "target"), "server",
                                   pb_str(s, "name"));
            json_object_set_new(src_vol, vn, sv);
            json_object_set_new(dst_vol, vn, tv);
        }
    }
    return json_pack("{s:{s:s}, s:{s:o, s:o}, s:{s:o, s:o}}", "relocation", "id", b->rid,
                     "source", "server", src_srv, "volume", src_vol, "target", "server",
                     dst_srv, "volume", dst_vol);
}

/* Appends --vars-json PART... (the JSON cut at UTF-8 character boundaries). */
static void
json_args(json_t *args, const char *opt, const char *js)
{
    size_t n = strlen(js), at = 0;
    while (at < n) {
        size_t k = n - at < VARS_PART ? n - at : VARS_PART;
        while (at + k < n && ((unsigned char)js[at + k] & 0xc0) == 0x80)
            k--; /* never split a multi-byte character */
        char *part = strndup(js + at, k);
        pb_arg2(args, opt, part);
        free(part);
        at += k;
    }
}

fc_rc
pb_plan_configs(struct pb *b)
{
    size_t i;
    json_t *s;
    if (!b->o->rules && !b->o->rules_doc) {
        json_array_foreach(json_object_get(b->topo, "servers"), i, s) {
            char key[300];
            snprintf(key, sizeof key, "server:%s", pb_str(s, "id"));
            if (json_object_get(b->done, key))
                pb_note(b, "server", pb_str(s, "id"), "server '%s': no configuration rules "
                        "given (--rules): no config rewrite step", pb_str(s, "name"));
        }
        return FC_OK;
    }
    json_auto_t *deps = json_array();
    json_auto_t *vars = planned_vars(b, deps);
    FC_AUTOFREE char *js = json_dumps(vars, JSON_COMPACT | JSON_SORT_KEYS);
    if (!js)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    if (strlen(js) > 40 * VARS_PART)
        return FC_ERR(FC_E_UNSUPPORTED, "plan: the config step's variables take %zu bytes, "
                      "more than a task carries (%u)", strlen(js), 40 * VARS_PART);
    const char *doc = b->o->rules ? NULL : b->o->rules_doc;
    if (doc && strlen(doc) > 40 * VARS_PART)
        return FC_ERR(FC_E_UNSUPPORTED, "plan: the config rules take %zu bytes, more than a "
                      "task carries (%u)", strlen(doc), 40 * VARS_PART);
    const json_t *cs = b->o->config_ssh;
    json_array_foreach(json_object_get(b->topo, "servers"), i, s) {
        char key[300], tid[160], port[16];
        snprintf(key, sizeof key, "server:%s", pb_str(s, "id"));
        if (!json_object_get(b->done, key))
            continue;
        pb_task_id(b, "config", pb_str(s, "id"), tid, sizeof tid);
        json_t *a = pb_argv_of("config-rewrite", NULL);
        pb_arg2(a, "--cloud", b->o->dst_cloud);
        pb_arg2(a, "--server", pb_str(s, "name"));
        if (doc)
            json_args(a, "--rules-json", doc);
        else
            pb_arg2(a, "--rules", b->o->rules);
        pb_arg2(a, "--host", json_string_value(json_object_get(cs, "host")));
        pb_arg2(a, "--ssh-user", json_string_value(json_object_get(cs, "user")));
        if (json_is_integer(json_object_get(cs, "port"))) {
            snprintf(port, sizeof port, "%lld",
                     (long long)json_integer_value(json_object_get(cs, "port")));
            pb_arg2(a, "--ssh-port", port);
        }
        pb_arg2(a, "--identity", json_string_value(json_object_get(cs, "identity")));
        pb_arg2(a, "--known-hosts", json_string_value(json_object_get(cs, "known_hosts")));
        json_args(a, "--vars-json", js);
        if (json_array_size(a) > FC_ARGS_MAX) {
            size_t na = json_array_size(a);
            json_decref(a);
            return FC_ERR(FC_E_UNSUPPORTED, "plan: the config step's variables (%zu bytes) and "
                          "rules (%zu bytes) need %zu arguments, more than a task's %d",
                          strlen(js), doc ? strlen(doc) : 0, na, FC_ARGS_MAX);
        }
        fc_rc rc = pb_add_task(b, tid, json_pack("[o]", pb_stage("openstack", a)),
                               json_deep_copy(deps), false, 900);
        if (rc)
            return rc;
    }
    return FC_OK;
}
