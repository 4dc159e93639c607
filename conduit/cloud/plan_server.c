/* SPDX-License-Identifier: Apache-2.0 */
/* Planning, the data and the servers: per volume a copy (export -> convert -> import), per
 * server a viaduct (snapshot -> image export -> convert -> import -> launch with the same or
 * closest flavor -> volume attach -> floating IP); the config rewrite is plan_config.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/cleanup.h"
#include "fluid/cloud/plan.h"
#include "fluid/cloud/topology.h"
#include "fluid/error.h"
#include "plan_internal.h"

static bool
accepted(struct pb *b, const char *fmt)
{
    const json_t *f = json_object_get(b->target, "disk_formats");
    size_t i;
    json_t *e;
    if (json_array_size(f) == 0)
        return true; /* the target did not say: assume it takes anything */
    json_array_foreach(f, i, e) if (strcmp(json_string_value(e), fmt) == 0) return true;
    return false;
}

/* The format to import as, and whether a conversion stage is needed. */
static const char *
want_format(struct pb *b, const char *src_fmt, bool *convert)
{
    const char *want = b->o->disk_format;
    if (!want)
        want = src_fmt && accepted(b, src_fmt) ? src_fmt : accepted(b, "qcow2") ? "qcow2" : "raw";
    *convert = !src_fmt || strcmp(src_fmt, want) != 0;
    return want;
}

static json_t *
convert_stage(const char *fmt)
{
    return pb_stage("image", pb_argv_of("convert", "--framed", "-O", fmt, "-", "-", NULL));
}

fc_rc
pb_plan_volumes(struct pb *b)
{
    fc_rc rc;
    size_t i;
    json_t *v;
    bool have = json_is_true(json_object_get(b->target, "has_volume"));
    json_array_foreach(json_object_get(b->topo, "volumes"), i, v) {
        const char *id = pb_str(v, "id"), *name = pb_str(v, "name");
        if (!have) {
            pb_unmappable(b, "volume", id, name,
                       "the target has no block-storage service: volume %s (%lld GiB) cannot be "
                       "recreated", name ? name : id,
                       (long long)json_integer_value(json_object_get(v, "size_gb")));
            continue;
        }
        char tn[256], tid[160], size[24], snap[300];
        fc_plan_target_name(b->rid, name ? name : id, tn, sizeof tn);
        snprintf(snap, sizeof snap, "%s-export", tn);
        pb_task_id(b, "volume", id, tid, sizeof tid);
        snprintf(size, sizeof size, "%lld", (long long)json_integer_value(json_object_get(v, "size_gb")));
        bool ssh = b->o->volume_method && strcmp(b->o->volume_method, "ssh") == 0;
        bool conv;
        const char *fmt = want_format(b, "raw", &conv);
        if (ssh)
            conv = false; /* backend file to backend file: raw bytes both sides */
        json_t *exp = pb_argv_of(ssh ? "volume-ssh-read" : "volume-export", NULL),
               *imp = pb_argv_of(ssh ? "volume-ssh-write" : "volume-import", NULL);
        pb_arg2(exp, "--cloud", b->o->src_cloud);
        pb_arg2(exp, "--volume", id);
        if (!ssh)
            pb_arg2(exp, "--image-name", snap);
        if (pb_str(v, "status") && strcmp(pb_str(v, "status"), "in-use") == 0) {
            if (!ssh)
                json_array_append_new(exp, json_string("--force"));
            pb_note(b, "volume", id, "volume '%s' is in use: its export is crash-consistent unless "
                                  "the server is stopped first", name ? name : id);
        }
        pb_arg2(imp, "--cloud", b->o->dst_cloud);
        pb_arg2(imp, "--name", tn);
        pb_arg2(imp, "--size", size);
        if (!ssh)
            pb_arg2(imp, "--disk-format", fmt);
        const char *type = pb_str(v, "volume_type");
        if (type && strcmp(type, "__DEFAULT__") != 0) {
            if (fc_json_find(json_object_get(b->target, "volume_types"), "name", type))
                pb_arg2(imp, "--volume-type", type);
            else
                pb_note(b, "volume", id, "volume type '%s' does not exist on the target: the "
                                      "default type is used", type);
        }
        if (json_is_true(json_object_get(v, "bootable")))
            json_array_append_new(imp, json_string("--bootable"));
        json_t *stages = json_array();
        json_array_append_new(stages, pb_stage("openstack", exp));
        if (conv)
            json_array_append_new(stages, convert_stage(fmt));
        json_array_append_new(stages, pb_stage("openstack", imp));
        if ((rc = pb_add_task(b, tid, stages, NULL, true, 7200)))
            return rc;
        pb_remember(b, id, tid, tn);
        pb_created(b, "volume", "target", id, name, tn, tid, "volumes");
    }
    return FC_OK;
}

/* Same flavor (name and size), else the smallest that fits (RAM, then vCPUs, then disk). */
static const json_t *
match_flavor(struct pb *b, const json_t *sf, bool boot_volume, const char **how)
{
    const json_t *tf = json_object_get(b->target, "flavors"), *best = NULL;
    json_int_t vc = json_integer_value(json_object_get(sf, "vcpus"));
    json_int_t ram = json_integer_value(json_object_get(sf, "ram_mb"));
    json_int_t disk = json_integer_value(json_object_get(sf, "disk_gb"));
    size_t i;
    json_t *f;
    json_array_foreach(tf, i, f) {
        if (strcmp(pb_str(f, "name"), pb_str(sf, "name")) == 0 &&
            json_integer_value(json_object_get(f, "vcpus")) == vc &&
            json_integer_value(json_object_get(f, "ram_mb")) == ram &&
            json_integer_value(json_object_get(f, "disk_gb")) == disk) {
            *how = "same";
            return f;
        }
    }
    if (b->o->exact_flavor)
        return NULL;
    json_array_foreach(tf, i, f) {
        json_int_t fv = json_integer_value(json_object_get(f, "vcpus"));
        json_int_t fr = json_integer_value(json_object_get(f, "ram_mb"));
        json_int_t fd = json_integer_value(json_object_get(f, "disk_gb"));
        if (fv < vc || fr < ram || (!boot_volume && fd < disk))
            continue;
        if (!best) {
            best = f;
            continue;
        }
        json_int_t br = json_integer_value(json_object_get(best, "ram_mb"));
        json_int_t bv = json_integer_value(json_object_get(best, "vcpus"));
        json_int_t bd = json_integer_value(json_object_get(best, "disk_gb"));
        if (fr < br || (fr == br && (fv < bv || (fv == bv && fd < bd))))
            best = f;
    }
    *how = "closest";
    return best;
}

/* Routers (tasks) serving the subnets of a port. */
static void
router_deps(struct pb *b, const json_t *port, json_t *deps)
{
    size_t i, j, k;
    json_t *ip, *r, *itf;
    json_array_foreach(json_object_get(port, "fixed_ips"), i, ip) {
        json_array_foreach(json_object_get(b->topo, "routers"), j, r) {
            json_array_foreach(json_object_get(r, "interfaces"), k, itf) {
                if (pb_str(itf, "subnet_id") && pb_str(ip, "subnet_id") &&
                    strcmp(pb_str(itf, "subnet_id"), pb_str(ip, "subnet_id")) == 0)
                    pb_dep_add(deps, pb_done_task(b, pb_str(r, "id")));
            }
        }
    }
}

static fc_rc
plan_image(struct pb *b, const json_t *s, const char *tn, json_t *launch_deps, const char **img_tn)
{
    fc_rc rc;
    const char *sid = pb_str(s, "id");
    const json_t *img = fc_json_find(json_object_get(b->topo, "images"), "id", pb_str(s, "image_id"));
    const char *src_fmt = img ? pb_str(img, "disk_format") : NULL;
    bool conv;
    const char *fmt = want_format(b, src_fmt, &conv);
    if (!src_fmt)
        pb_note(b, "server", sid, "the format of server '%s''s disk is not known: the snapshot is "
                               "converted to %s on the way", pb_str(s, "name"), fmt);
    static _Thread_local char imgname[300];
    char snap_tid[160], img_tid[160], snap[300];
    snprintf(snap, sizeof snap, "%s-snap", tn);
    snprintf(imgname, sizeof imgname, "%s-image", tn);
    pb_task_id(b, "snapshot", sid, snap_tid, sizeof snap_tid);
    pb_task_id(b, "image", sid, img_tid, sizeof img_tid);
    json_t *sa = pb_argv_of("snapshot", NULL);
    pb_arg2(sa, "--cloud", b->o->src_cloud);
    pb_arg2(sa, "--server", sid);
    pb_arg2(sa, "--name", snap);
    if ((rc = pb_add_task(b, snap_tid, json_pack("[o]", pb_stage("openstack", sa)), NULL, false, 3600)))
        return rc;
    pb_created(b, "snapshot", "source", sid, pb_str(s, "name"), snap, snap_tid, NULL);
    json_t *ex = pb_argv_of("image-export", NULL), *im = pb_argv_of("image-import", NULL);
    pb_arg2(ex, "--cloud", b->o->src_cloud);
    pb_arg2(ex, "--image-name", snap);
    pb_arg2(im, "--cloud", b->o->dst_cloud);
    pb_arg2(im, "--name", imgname);
    pb_arg2(im, "--disk-format", fmt);
    pb_arg2(im, "--container-format", "bare");
    if (img && json_is_integer(json_object_get(img, "min_disk_gb"))) {
        char md[24];
        snprintf(md, sizeof md, "%lld", (long long)json_integer_value(json_object_get(img, "min_disk_gb")));
        pb_arg2(im, "--min-disk", md);
    }
    json_t *stages = json_array();
    json_array_append_new(stages, pb_stage("openstack", ex));
    if (conv)
        json_array_append_new(stages, convert_stage(fmt));
    json_array_append_new(stages, pb_stage("openstack", im));
    if ((rc = pb_add_task(b, img_tid, stages, json_pack("[s]", snap_tid), true, 7200)))
        return rc;
    pb_created(b, "image", "target", sid, pb_str(s, "name"), imgname, img_tid, "images");
    pb_dep_add(launch_deps, img_tid);
    *img_tn = imgname;
    return FC_OK;
}

fc_rc
pb_plan_server(struct pb *b, const json_t *s)
{
    fc_rc rc;
    const char *sid = pb_str(s, "id"), *sname = pb_str(s, "name");
    const json_t *sf = fc_json_find(json_object_get(b->topo, "flavors"), "id", pb_str(s, "flavor_id"));
    const char *boot_vol = pb_str(s, "boot_volume_id"), *how = NULL;
    const json_t *tf = sf ? match_flavor(b, sf, boot_vol != NULL, &how) : NULL;
    if (!tf) {
        pb_unmappable(b, "server", sid, sname, "no flavor on the target fits flavor '%s' (%lld vCPU, "
                   "%lld MiB RAM, %lld GiB disk)%s: the server is not relocated",
                   sf ? pb_str(sf, "name") : pb_str(s, "flavor_id"),
                   (long long)json_integer_value(json_object_get(sf, "vcpus")),
                   (long long)json_integer_value(json_object_get(sf, "ram_mb")),
                   (long long)json_integer_value(json_object_get(sf, "disk_gb")),
                   b->o->exact_flavor ? " with the same name and size" : "");
        return FC_OK;
    }
    if (strcmp(how, "closest") == 0)
        pb_note(b, "server", sid, "server '%s': flavor '%s' is not on the target; '%s' is the "
                               "closest that fits", sname, pb_str(sf, "name"), pb_str(tf, "name"));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(sf, "extra_specs"), k, v) {
        const char *tv = pb_str(json_object_get(tf, "extra_specs"), k);
        if (!tv || strcmp(tv, json_string_value(v)) != 0)
            pb_note(b, "flavor", pb_str(sf, "id"), "extra spec %s=%s of flavor '%s' is not on target "
                                             "flavor '%s'", k, json_string_value(v),
                 pb_str(sf, "name"), pb_str(tf, "name"));
    }
    char tn[256], tid[160];
    fc_plan_target_name(b->rid, sname, tn, sizeof tn);
    json_t *deps = json_array();
    const char *img_tn = NULL;
    if (!boot_vol && (rc = plan_image(b, s, tn, deps, &img_tn))) {
        json_decref(deps);
        return rc;
    }
    pb_task_id(b, "launch", sid, tid, sizeof tid);
    json_t *args = pb_argv_of("server-create", NULL);
    pb_arg2(args, "--cloud", b->o->dst_cloud);
    pb_arg2(args, "--name", tn);
    pb_arg2(args, "--flavor", pb_str(tf, "name"));
    if (boot_vol) {
        if (!pb_target_name_of(b, boot_vol)) {
            pb_unmappable(b, "server", sid, sname, "its boot volume %s cannot be recreated on the "
                                                "target: the server is not relocated", boot_vol);
            json_decref(deps);
            json_decref(args);
            return FC_OK;
        }
        pb_arg2(args, "--boot-volume", pb_target_name_of(b, boot_vol));
        pb_dep_add(deps, pb_done_task(b, boot_vol));
    } else {
        pb_arg2(args, "--image", img_tn);
    }
    const char *key = pb_str(s, "key_name");
    if (key) {
        char kk[300];
        snprintf(kk, sizeof kk, "keypair:%s", key);
        pb_arg2(args, "--key-name", pb_target_name_of(b, kk));
        pb_dep_add(deps, pb_done_task(b, kk));
    }
    size_t i, j;
    json_t *e;
    json_array_foreach(json_object_get(s, "security_groups"), i, e) {
        const char *g = json_string_value(e);
        char rk[300];
        pb_arg2(args, "--security-group", pb_target_name_of(b, g));
        pb_dep_add(deps, pb_done_task(b, g));
        snprintf(rk, sizeof rk, "rules:%s", g);
        json_t *x;
        json_array_foreach(json_object_get(b->done, rk), j, x) pb_dep_add(deps, json_string_value(x));
    }
    json_auto_t *ports = json_array();
    json_array_foreach(json_object_get(s, "port_ids"), i, e) {
        const json_t *p = fc_json_find(json_object_get(b->topo, "ports"), "id", json_string_value(e));
        if (!p)
            continue;
        json_array_append(ports, (json_t *)p);
        const char *net = pb_str(p, "network_id"), *tnet = pb_target_name_of(b, net);
        const json_t *n = fc_json_find(json_object_get(b->topo, "networks"), "id", net);
        if (!tnet && n && json_is_true(json_object_get(n, "external")))
            tnet = pb_map_external(b, net);
        if (!tnet) {
            pb_unmappable(b, "port", pb_str(p, "id"), pb_str(p, "name"), "port %s of server '%s' is on "
                       "network %s, which has no counterpart on the target", pb_str(p, "id"), sname, net);
            continue;
        }
        char spec[600];
        size_t n0 = (size_t)snprintf(spec, sizeof spec, "network=%s", tnet);
        const json_t *ip0 = json_array_get(json_object_get(p, "fixed_ips"), 0);
        if (ip0 && pb_done_task(b, net))
            n0 += (size_t)snprintf(spec + n0, sizeof spec - n0, ",fixed_ip=%s", pb_str(ip0, "ip_address"));
        if (pb_str(p, "mac_address") && pb_done_task(b, net) && n0 < sizeof spec)
            snprintf(spec + n0, sizeof spec - n0, ",mac=%s", pb_str(p, "mac_address"));
        pb_arg2(args, "--port", spec);
        json_t *ip;
        json_array_foreach(json_object_get(p, "fixed_ips"), j, ip) pb_dep_add(deps, pb_done_task(b, pb_str(ip, "subnet_id")));
        pb_dep_add(deps, pb_done_task(b, net));
    }
    json_auto_t *meta = json_deep_copy(json_object_get(s, "metadata"));
    if (!json_is_object(meta))
        meta = json_object();
    json_object_set_new(meta, "fluid_relocation", json_string(b->rid));
    json_object_set_new(meta, "fluid_source_id", json_string(sid));
    FC_AUTOFREE char *mj = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
    pb_arg2(args, "--metadata-json", mj);
    if (json_array_size(json_object_get(s, "tags"))) {
        FC_AUTOFREE char *tj = json_dumps(json_object_get(s, "tags"), JSON_COMPACT);
        pb_arg2(args, "--tags-json", tj);
    }
    if ((rc = pb_add_task(b, tid, json_pack("[o]", pb_stage("openstack", args)), deps, false, 1800)))
        return rc;
    pb_created(b, "server", "target", sid, sname, tn, tid, "servers");
    const char *launch = tid;
    char launch_tid[160];
    snprintf(launch_tid, sizeof launch_tid, "%s", launch);

    /* data volumes: attach at the same device once copied and launched */
    json_auto_t *attach_tasks = json_array();
    json_array_foreach(json_object_get(s, "volume_attachments"), i, e) {
        const char *vid = pb_str(e, "volume_id");
        if (boot_vol && strcmp(vid, boot_vol) == 0)
            continue;
        if (!pb_target_name_of(b, vid))
            continue; /* reported with the volume */
        char atid[160], src[300];
        snprintf(src, sizeof src, "%s/%s", sid, vid);
        pb_task_id(b, "attach", src, atid, sizeof atid);
        json_t *aa = pb_argv_of("volume-attach", NULL);
        pb_arg2(aa, "--cloud", b->o->dst_cloud);
        pb_arg2(aa, "--server", tn);
        pb_arg2(aa, "--volume", pb_target_name_of(b, vid));
        pb_arg2(aa, "--device", pb_str(e, "device"));
        if ((rc = pb_add_task(b, atid, json_pack("[o]", pb_stage("openstack", aa)),
                           json_pack("[s, s]", launch_tid, pb_done_task(b, vid)), false, 600)))
            return rc;
        json_array_append_new(attach_tasks, json_string(atid));
    }
    /* floating IPs */
    json_auto_t *fip_tasks = json_array();
    json_array_foreach(json_object_get(b->topo, "floating_ips"), i, e) {
        const json_t *p = fc_json_find(ports, "id", pb_str(e, "port_id"));
        if (!p)
            continue;
        const char *ext = pb_map_external(b, pb_str(e, "floating_network_id"));
        if (!ext) {
            pb_unmappable(b, "floating_ip", pb_str(e, "id"), pb_str(e, "floating_ip_address"),
                       "the target has no external network for floating IP %s of server '%s'",
                       pb_str(e, "floating_ip_address"), sname);
            continue;
        }
        char ftid[160], desc[300];
        pb_task_id(b, "fip", pb_str(e, "id"), ftid, sizeof ftid);
        snprintf(desc, sizeof desc, "fluid %s %s", b->rid, pb_str(e, "id"));
        json_t *fa = pb_argv_of("floating-ip", NULL), *fdeps = json_pack("[s]", launch_tid);
        pb_arg2(fa, "--cloud", b->o->dst_cloud);
        pb_arg2(fa, "--server", tn);
        pb_arg2(fa, "--fixed-ip", pb_str(e, "fixed_ip_address"));
        pb_arg2(fa, "--external-network", ext);
        pb_arg2(fa, "--description", desc);
        router_deps(b, p, fdeps);
        if ((rc = pb_add_task(b, ftid, json_pack("[o]", pb_stage("openstack", fa)), fdeps, false, 600)))
            return rc;
        json_array_append_new(fip_tasks, json_string(ftid));
        json_array_append_new(b->creates, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "kind",
                                                    "floating_ip", "cloud", "target", "source_id",
                                                    pb_str(e, "id"), "source_name",
                                                    pb_str(e, "floating_ip_address"), "target_name",
                                                    desc, "task_id", ftid, "action", "create"));
    }
    /* what the config step waits for and needs: planned once every server is (plan_config.c) */
    char skey[300];
    snprintf(skey, sizeof skey, "server:%s", sid);
    json_object_set_new(b->done, skey, json_pack("{s:s, s:s, s:O, s:O}", "launch", launch_tid,
                                                "target_name", tn, "fips", fip_tasks,
                                                "attaches", attach_tasks));
    return FC_OK;
}

