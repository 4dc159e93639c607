/* SPDX-License-Identifier: Apache-2.0 */
/* The overview of a finished relocation (overview.h): both sides inspected with
 * fc_topology_inspect, each relocated server paired with its source by the metadata
 * fluid_source_id that server-create puts on it, compared field by field; usage from
 * os-simple-tenant-usage on both clouds. */
#include "overview.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fluid/cloud/os.h"
#include "fluid/cloud/plan.h"
#include "fluid/cloud/topology.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/msg.h"
#include "intermediates.h"
#include "planner.h"

struct cmp {
    const json_t *src, *dst;
    const char *rid;
    json_t *diffs;
    json_t *announced; /* differences the plan said would be (kind, name, field, ..., note) */
    size_t compared;
};

static const char *
js(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void
diff(struct cmp *c, const char *kind, const char *name, const char *field, json_t *sv, json_t *tv)
{
    c->compared++;
    if (json_equal(sv, tv) || (!sv && json_is_null(tv)) || (json_is_null(sv) && !tv)) {
        json_decref(sv);
        json_decref(tv);
        return;
    }
    json_array_append_new(c->diffs, json_pack("{s:s,s:s,s:s,s:o,s:o}", "kind", kind, "name",
                                              name ? name : "", "field", field,
                                              "source", sv ? sv : json_null(),
                                              "target", tv ? tv : json_null()));
}

static int
cmp_json_str(const void *a, const void *b)
{
    const char *x = json_string_value(*(json_t *const *)a),
               *y = json_string_value(*(json_t *const *)b);
    return strcmp(x ? x : "", y ? y : "");
}

/* A sorted copy of an array of strings (new reference). */
static json_t *
sorted(json_t *arr)
{
    size_t n = json_array_size(arr);
    json_t **v = calloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; v && i < n; i++)
        v[i] = json_array_get(arr, i);
    if (v)
        qsort(v, n, sizeof *v, cmp_json_str);
    json_t *out = json_array();
    for (size_t i = 0; v && i < n; i++)
        json_array_append(out, v[i]);
    free(v);
    json_decref(arr);
    return out;
}

/* The target name of a source resource name ("default" stays). */
static json_t *
mapped(const struct cmp *c, const char *name)
{
    if (!name)
        return json_null();
    if (strcmp(name, "default") == 0)
        return json_string(name);
    char n[300];
    fc_plan_target_name(c->rid, name, n, sizeof n);
    return json_string(n);
}

static const json_t *
by_id(const json_t *topo, const char *arr, const char *id)
{
    return id ? fc_json_find(json_object_get(topo, arr), "id", id) : NULL;
}

/* Group names of a server (its security_groups hold ids; Nova names as a fallback). */
static json_t *
group_names(const struct cmp *c, const json_t *topo, const json_t *srv, bool map)
{
    json_t *out = json_array(), *g;
    size_t i;
    json_array_foreach(json_object_get(srv, "security_groups"), i, g) {
        const json_t *grp = by_id(topo, "security_groups", json_string_value(g));
        const char *name = grp ? js(grp, "name") : json_string_value(g);
        json_array_append_new(out, map ? mapped(c, name) : json_string(name ? name : "?"));
    }
    return sorted(out);
}

/* Fixed IPs, network names (mapped on the source side) and floating IP count of a server. */
static void
addresses(const struct cmp *c, const json_t *topo, const json_t *srv, bool map, json_t **ips,
          json_t **nets, json_int_t *fips)
{
    *ips = json_array();
    *nets = json_array();
    *fips = 0;
    size_t i, k;
    json_t *p, *f;
    json_array_foreach(json_object_get(srv, "port_ids"), i, p) {
        const json_t *port = by_id(topo, "ports", json_string_value(p));
        if (!port)
            continue;
        json_array_foreach(json_object_get(port, "fixed_ips"), k, f)
            if (js(f, "ip_address"))
                json_array_append_new(*ips, json_string(js(f, "ip_address")));
        const json_t *net = by_id(topo, "networks", js(port, "network_id"));
        const char *nn = net ? js(net, "name") : NULL;
        json_array_append_new(*nets, map ? mapped(c, nn) : json_string(nn ? nn : "?"));
        json_array_foreach(json_object_get(topo, "floating_ips"), k, f)
            if (js(f, "port_id") && strcmp(js(f, "port_id"), json_string_value(p)) == 0)
                (*fips)++;
    }
    *ips = sorted(*ips);
    *nets = sorted(*nets);
}

/* device -> size_gb of the volumes attached to a server. */
static json_t *
volumes(const json_t *topo, const json_t *srv)
{
    json_t *out = json_object(), *a;
    size_t i;
    json_array_foreach(json_object_get(srv, "volume_attachments"), i, a) {
        const json_t *v = by_id(topo, "volumes", js(a, "volume_id"));
        const char *dev = js(a, "device") ? js(a, "device") : "?";
        json_object_set_new(out, dev, v ? json_incref(json_object_get(v, "size_gb"))
                                        : json_string("unreadable"));
    }
    return out;
}

static void
compare_server(struct cmp *c, const json_t *s, const json_t *t)
{
    const char *name = js(s, "name");
    diff(c, "server", name, "status", json_incref(json_object_get(s, "status")),
         json_incref(json_object_get(t, "status")));
    const json_t *sf = by_id(c->src, "flavors", js(s, "flavor_id")),
                 *tf = by_id(c->dst, "flavors", js(t, "flavor_id"));
    static const char *const ff[] = {"name", "vcpus", "ram_mb", "disk_gb"};
    for (size_t i = 0; i < 4; i++) {
        char field[32];
        snprintf(field, sizeof field, "flavor.%s", ff[i]);
        diff(c, "server", name, field, json_incref(json_object_get(sf, ff[i])),
             json_incref(json_object_get(tf, ff[i])));
    }
    /* image: the target's must be this relocation's copy (of the source server's disk) */
    if (js(s, "image_id")) {
        const json_t *si = by_id(c->src, "images", js(s, "image_id")),
                     *ti = by_id(c->dst, "images", js(t, "image_id"));
        const char *mark = js(json_object_get(ti, "properties"), "fluid_relocation");
        c->compared++;
        if (!ti || !mark || strcmp(mark, c->rid) != 0)
            json_array_append_new(
                c->diffs, json_pack("{s:s,s:s,s:s,s:s?,s:s?}", "kind", "server", "name", name,
                                    "field", "image", "source", si ? js(si, "name") : js(s, "image_id"),
                                    "target", ti ? js(ti, "name") : js(t, "image_id")));
    } else {
        const json_t *sv = by_id(c->src, "volumes", js(s, "boot_volume_id")),
                     *tv = by_id(c->dst, "volumes", js(t, "boot_volume_id"));
        diff(c, "server", name, "boot_volume.size_gb", json_incref(json_object_get(sv, "size_gb")),
             json_incref(json_object_get(tv, "size_gb")));
    }
    /* metadata, without the relocation's own keys */
    json_t *sm = json_deep_copy(json_object_get(s, "metadata")),
           *tm = json_deep_copy(json_object_get(t, "metadata"));
    json_object_del(tm, "fluid_relocation");
    json_object_del(tm, "fluid_source_id");
    const char *k;
    json_t *v;
    json_object_foreach(sm, k, v) {
        char field[300];
        snprintf(field, sizeof field, "metadata.%s", k);
        diff(c, "server", name, field, json_incref(v), json_incref(json_object_get(tm, k)));
    }
    json_object_foreach(tm, k, v) {
        if (json_object_get(sm, k))
            continue;
        char field[300];
        snprintf(field, sizeof field, "metadata.%s", k);
        diff(c, "server", name, field, NULL, json_incref(v));
    }
    json_decref(sm);
    json_decref(tm);
    diff(c, "server", name, "tags", sorted(json_deep_copy(json_object_get(s, "tags"))),
         sorted(json_deep_copy(json_object_get(t, "tags"))));
    json_t *sips, *snets, *tips, *tnets;
    json_int_t sfip, tfip;
    addresses(c, c->src, s, true, &sips, &snets, &sfip);
    addresses(c, c->dst, t, false, &tips, &tnets, &tfip);
    diff(c, "server", name, "fixed_ips", sips, tips);
    diff(c, "server", name, "networks", snets, tnets);
    diff(c, "server", name, "floating_ips", json_integer(sfip), json_integer(tfip));
    diff(c, "server", name, "security_groups", group_names(c, c->src, s, true),
         group_names(c, c->dst, t, false));
    diff(c, "server", name, "keypair", mapped(c, js(s, "key_name")),
         js(t, "key_name") ? json_string(js(t, "key_name")) : json_null());
    const json_t *sk = fc_json_find(json_object_get(c->src, "keypairs"), "name", js(s, "key_name")),
                 *tk = fc_json_find(json_object_get(c->dst, "keypairs"), "name", js(t, "key_name"));
    if (js(s, "key_name"))
        diff(c, "keypair", js(s, "key_name"), "fingerprint",
             json_incref(json_object_get(sk, "fingerprint")),
             json_incref(json_object_get(tk, "fingerprint")));
    diff(c, "server", name, "volumes", volumes(c->src, s), volumes(c->dst, t));
}

/* A rule as one comparable line; remote groups by (mapped) name. */
static json_t *
rule_line(const struct cmp *c, const json_t *topo, const json_t *r, bool map)
{
    char line[600], ports[64] = "any";
    const json_t *lo = json_object_get(r, "port_range_min"), *hi = json_object_get(r, "port_range_max");
    if (json_is_integer(lo) || json_is_integer(hi))
        snprintf(ports, sizeof ports, "%lld-%lld", (long long)json_integer_value(lo),
                 (long long)json_integer_value(hi));
    char remote[400] = "";
    if (js(r, "remote_group_id")) {
        const json_t *g = by_id(topo, "security_groups", js(r, "remote_group_id"));
        json_t *n = g ? (map ? mapped(c, js(g, "name")) : json_string(js(g, "name"))) : NULL;
        snprintf(remote, sizeof remote, " group=%s",
                 n ? json_string_value(n) : js(r, "remote_group_id"));
        json_decref(n);
    } else if (js(r, "remote_ip_prefix")) {
        snprintf(remote, sizeof remote, " ip=%s", js(r, "remote_ip_prefix"));
    }
    snprintf(line, sizeof line, "%s %s %s %s%s", js(r, "direction") ? js(r, "direction") : "?",
             js(r, "ethertype") ? js(r, "ethertype") : "IPv4",
             js(r, "protocol") ? js(r, "protocol") : "any", ports, remote);
    return json_string(line);
}

static void
compare_groups(struct cmp *c)
{
    size_t i, k;
    json_t *g, *r;
    json_array_foreach(json_object_get(c->src, "security_groups"), i, g) {
        json_t *tn = mapped(c, js(g, "name"));
        const json_t *tg = fc_json_find(json_object_get(c->dst, "security_groups"), "name",
                                        json_string_value(tn));
        c->compared++;
        if (!tg) {
            json_array_append_new(c->diffs, json_pack("{s:s,s:s?,s:s,s:s?,s:n}", "kind",
                                                      "security_group", "name", js(g, "name"),
                                                      "field", "exists", "source", js(g, "name"),
                                                      "target"));
            json_decref(tn);
            continue;
        }
        json_t *want = json_object(), *have = json_object();
        json_array_foreach(json_object_get(g, "rules"), k, r) {
            json_t *l = rule_line(c, c->src, r, true);
            json_object_set_new(want, json_string_value(l), json_true());
            json_decref(l);
        }
        json_array_foreach(json_object_get(tg, "rules"), k, r) {
            json_t *l = rule_line(c, c->dst, r, false);
            json_object_set_new(have, json_string_value(l), json_true());
            json_decref(l);
        }
        const char *line;
        json_t *v;
        json_object_foreach(want, line, v) {
            c->compared++;
            if (!json_object_get(have, line))
                json_array_append_new(c->diffs, json_pack("{s:s,s:s?,s:s,s:s,s:n}", "kind",
                                                          "security_group", "name", js(g, "name"),
                                                          "field", "rule", "source", line,
                                                          "target"));
        }
        /* the target's default group also holds rules of other relocations: only its
         * missing rules count */
        bool dflt = strcmp(json_string_value(tn), "default") == 0;
        json_object_foreach(have, line, v) {
            if (!dflt && !json_object_get(want, line))
                json_array_append_new(c->diffs, json_pack("{s:s,s:s?,s:s,s:n,s:s}", "kind",
                                                          "security_group", "name", js(g, "name"),
                                                          "field", "rule", "source", "target",
                                                          line));
        }
        json_decref(want);
        json_decref(have);
        json_decref(tn);
    }
}

/* The networks the relocation created (named after the source's): a different MTU is not a
 * difference but what the plan announced (it leaves the MTU to the target's default). */
static void
compare_networks(struct cmp *c)
{
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(c->src, "networks"), i, n) {
        char tn[256];
        if (json_is_true(json_object_get(n, "external")))
            continue;
        fc_plan_target_name(c->rid, js(n, "name"), tn, sizeof tn);
        const json_t *t = fc_json_find(json_object_get(c->dst, "networks"), "name", tn);
        json_t *sm = json_object_get(n, "mtu"), *tm = json_object_get(t, "mtu");
        if (!t || !json_is_integer(sm) || !json_is_integer(tm))
            continue; /* a mapped network, or one not read: the servers' networks say it */
        c->compared++;
        if (json_equal(sm, tm))
            continue;
        json_array_append_new(c->announced,
                              json_pack("{s:s,s:s?,s:s,s:O,s:O,s:s}", "kind", "network", "name",
                                        js(n, "name"), "field", "mtu", "source", sm, "target", tm,
                                        "note", "the plan leaves a network's MTU to the target's "
                                        "default"));
    }
}

fc_rc
fc_overview_compare(const json_t *src, const json_t *dst, const char *rid, json_t *out)
{
    struct cmp c = {.src = src, .dst = dst, .rid = rid, .diffs = json_array(),
                    .announced = json_array()};
    json_t *pairs = json_array(), *s;
    size_t i;
    json_array_foreach(json_object_get(src, "servers"), i, s) {
        const json_t *t = NULL, *x;
        size_t k;
        json_array_foreach(json_object_get(dst, "servers"), k, x) {
            const char *sid = js(json_object_get(x, "metadata"), "fluid_source_id");
            if (sid && js(s, "id") && strcmp(sid, js(s, "id")) == 0)
                t = x;
        }
        json_array_append_new(pairs, json_pack("{s:s?,s:s?,s:s?,s:s?}", "source_id", js(s, "id"),
                                               "source_name", js(s, "name"), "target_id",
                                               t ? js(t, "id") : NULL, "target_name",
                                               t ? js(t, "name") : NULL));
        c.compared++;
        if (!t) {
            json_array_append_new(c.diffs, json_pack("{s:s,s:s?,s:s,s:s?,s:n}", "kind", "server",
                                                     "name", js(s, "name"), "field", "exists",
                                                     "source", js(s, "id"), "target"));
            continue;
        }
        compare_server(&c, s, t);
    }
    compare_groups(&c);
    compare_networks(&c);
    json_object_set_new(out, "servers", pairs);
    json_object_set_new(out, "compared", json_integer((json_int_t)c.compared));
    json_object_set_new(out, "differences", c.diffs);
    json_object_set_new(out, "announced", c.announced);
    return FC_OK;
}

/* os-simple-tenant-usage of the servers of topo, from their earliest creation to now. */
static json_t *
usage(struct fc_os *os, const json_t *topo, const struct fc_cloud_config *cfg)
{
    time_t now = time(NULL), start = now - 86400;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(topo, "servers"), i, s) {
        int64_t t = js(s, "created") ? fc_os_parse_time(js(s, "created")) : -1;
        if (t > 0 && t - 3600 < start)
            start = (time_t)t - 3600;
    }
    char a[32], b[32], path[400];
    time_t end = now + 60;
    strftime(a, sizeof a, "%Y-%m-%dT%H:%M:%S", gmtime(&start));
    strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", gmtime(&end));
    snprintf(path, sizeof path, "/os-simple-tenant-usage/%s?start=%s&end=%s",
             fc_os_project_id(os), a, b);
    json_t *reply = NULL, *out = json_object(), *list = json_array();
    fc_rc rc = fc_os_call(os, FC_SVC_COMPUTE, "GET", path, NULL, NULL, &reply);
    if (rc != FC_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s: %s", fc_rc_name(rc), fc_error_msg());
        fc_planner_scrub(msg, cfg);
        json_object_set_new(out, "error", json_string(msg));
    }
    double hours = 0;
    json_t *u;
    json_array_foreach(json_object_get(json_object_get(reply, "tenant_usage"), "server_usages"),
                       i, u) {
        const char *iid = js(u, "instance_id");
        if (!iid || !fc_json_find(json_object_get(topo, "servers"), "id", iid))
            continue;
        double h = json_number_value(json_object_get(u, "hours"));
        hours += h;
        json_array_append_new(list, json_pack("{s:s,s:s?,s:f,s:O?,s:O?,s:O?,s:s?,s:O?,s:s?}",
                                              "id", iid, "name", js(u, "name"), "hours", h,
                                              "vcpus", json_object_get(u, "vcpus"),
                                              "memory_mb", json_object_get(u, "memory_mb"),
                                              "local_gb", json_object_get(u, "local_gb"),
                                              "state", js(u, "state"),
                                              "uptime_s", json_object_get(u, "uptime"),
                                              "started_at", js(u, "started_at")));
    }
    json_decref(reply);
    json_object_set_new(out, "start", json_string(a));
    json_object_set_new(out, "end", json_string(b));
    json_object_set_new(out, "servers", list);
    json_object_set_new(out, "total_hours", json_real(hours));
    return out;
}

/* Target server names: the --name of the plan's server-create stages. */
static size_t
target_names(const json_t *plan, const char **names, size_t cap)
{
    size_t n = 0, i, k;
    json_t *t, *a;
    json_array_foreach(json_object_get(plan, "tasks"), i, t) {
        json_t *args = json_object_get(json_array_get(json_object_get(t, "stages"), 0), "args");
        const char *verb = json_string_value(json_array_get(args, 0));
        if (!verb || strcmp(verb, "server-create") != 0)
            continue;
        json_array_foreach(args, k, a)
            if (json_string_value(a) && !strcmp(json_string_value(a), "--name") &&
                json_string_value(json_array_get(args, k + 1)) && n < cap)
                names[n++] = json_string_value(json_array_get(args, k + 1));
    }
    return n;
}

fc_rc
fc_overview_build(const char *clouds_file, const json_t *request, json_t **out, char *reason,
                  size_t cap)
{
    *out = NULL;
    reason[0] = '\0';
    const char *rid = js(request, "relocation_id");
    const char *from = js(json_object_get(request, "source"), "cloud");
    const char *to = js(json_object_get(request, "target"), "cloud");
    const json_t *sel = json_object_get(request, "selector");
    const char *snames[256], *tnames[256];
    size_t ns = 0, nt = target_names(json_object_get(request, "plan"), tnames, 256);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(sel, "servers"), i, e)
        if (ns < 256 && json_string_value(e))
            snames[ns++] = json_string_value(e);
    struct fc_selector ssel = {.servers = snames, .nservers = ns, .tag = js(sel, "tag")};
    struct fc_selector tsel = {.servers = tnames, .nservers = nt};
    struct fc_cloud_config *scfg = NULL, *dcfg = NULL;
    struct fc_os *src = NULL, *dst = NULL;
    json_t *stopo = NULL, *ttopo = NULL;
    char step[300];
    fc_rc rc = FC_OK;
    if (!rid || !from || !to || !nt) {
        snprintf(step, sizeof step, "request");
        rc = FC_ERR(FC_E_INVALID, "no clouds or no server launched in the recorded request");
    }
    if (rc == FC_OK) {
        snprintf(step, sizeof step, "open source cloud \"%s\"", from);
        rc = fc_planner_open_cloud(clouds_file, from, &scfg, &src);
    }
    if (rc == FC_OK) {
        snprintf(step, sizeof step, "inspect source cloud \"%s\"", from);
        rc = fc_topology_inspect(src, &ssel, &stopo, NULL);
    }
    if (rc == FC_OK) {
        snprintf(step, sizeof step, "open target cloud \"%s\"", to);
        rc = fc_planner_open_cloud(clouds_file, to, &dcfg, &dst);
    }
    if (rc == FC_OK) {
        snprintf(step, sizeof step, "inspect target cloud \"%s\"", to);
        rc = fc_topology_inspect(dst, &tsel, &ttopo, NULL);
    }
    if (rc == FC_OK) {
        char now[40];
        *out = json_pack("{s:s,s:s,s:s,s:s}", "relocation_id", rid, "source", from, "target", to,
                         "ts", fc_msg_now(now, sizeof now));
        fc_overview_compare(stopo, ttopo, rid, *out);
        json_object_set_new(*out, "usage", json_pack("{s:o,s:o}", "source",
                                                     usage(src, stopo, scfg), "target",
                                                     usage(dst, ttopo, dcfg)));
        json_object_set_new(*out, "intermediates",
                            fc_intermediates_remove(src, scfg, dst, dcfg, request));
        fc_log(FC_INFO, FC_MSG("overview"), FC_STR("relocation", rid),
               FC_U64("compared", (uint64_t)json_integer_value(json_object_get(*out, "compared"))),
               FC_U64("differences", json_array_size(json_object_get(*out, "differences"))));
    } else {
        snprintf(reason, cap, "overview: %s: %s: %s", step, fc_rc_name(rc), fc_error_msg());
        fc_planner_scrub(reason, scfg);
        fc_planner_scrub(reason, dcfg);
    }
    json_decref(stopo);
    json_decref(ttopo);
    fc_os_close(src);
    fc_os_close(dst);
    fc_cloud_config_free(scfg);
    fc_cloud_config_free(dcfg);
    return rc;
}
