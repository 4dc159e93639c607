/* SPDX-License-Identifier: Apache-2.0 */
/* fc_plan_build: a source Topology + the target's existing resources -> the Plan (tasks and
 * their order) and a report of names, reuse and what cannot be carried over. Pure: the only
 * network reads are in fc_plan_read_target (plan_target.c). */
#include "fluid/cloud/plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/cleanup.h"
#include "fluid/cloud/topology.h"
#include "fluid/error.h"
#include "fluid/msg.h"
#include "fluid/sha256.h"

#include "plan_internal.h"

void
pb_hex_digest(const char *const *parts, size_t n, char *out, size_t nhex)
{
    struct fc_sha256 h;
    uint8_t d[32];
    fc_sha256_init(&h);
    for (size_t i = 0; i < n; i++) {
        fc_sha256_update(&h, parts[i] ? parts[i] : "", strlen(parts[i] ? parts[i] : ""));
        fc_sha256_update(&h, "\n", 1);
    }
    fc_sha256_final(&h, d);
    fc_sha256_free(&h);
    for (size_t i = 0; i < nhex && i < 64; i++)
        out[i] = "0123456789abcdef"[(d[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[nhex < 64 ? nhex : 64] = '\0';
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void
fc_plan_relocation_id(const char *src, const char *dst, const json_t *topology, char out[24])
{
    const json_t *servers = json_object_get(topology, "servers");
    size_t n = json_array_size(servers);
    const char **parts = calloc(n + 2, sizeof *parts);
    if (!parts) {
        snprintf(out, 24, "r-0");
        return;
    }
    for (size_t i = 0; i < n; i++)
        parts[i + 2] = json_string_value(json_object_get(json_array_get(servers, i), "id"));
    qsort(parts + 2, n, sizeof *parts, cmp_str);
    parts[0] = src;
    parts[1] = dst;
    char hex[17];
    pb_hex_digest(parts, n + 2, hex, 16);
    snprintf(out, 24, "r-%s", hex);
    free(parts);
}

void
fc_plan_target_name(const char *relocation_id, const char *name, char *out, size_t cap)
{
    char hex[9];
    const char *parts[] = {relocation_id};
    pb_hex_digest(parts, 1, hex, 8);
    snprintf(out, cap, "%.200s-fc%s", name && *name ? name : "unnamed", hex);
}

/* ---- report and task helpers ---------------------------------------------------------- */

void
pb_note(struct pb *b, const char *kind, const char *id, const char *fmt, ...)
{
    char m[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    json_array_append_new(b->notes, json_pack("{s:s, s:s?, s:s}", "kind", kind, "id", id, "note", m));
}

void
pb_unmappable(struct pb *b, const char *kind, const char *id, const char *name, const char *fmt, ...)
{
    char m[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    json_array_append_new(b->unmappable, json_pack("{s:s, s:s?, s:s?, s:s}", "kind", kind, "id",
                                                   id, "name", name, "reason", m));
}

void
pb_task_id(struct pb *b, const char *step, const char *source_id, char *out, size_t cap)
{
    char hex[11];
    const char *parts[] = {b->rid, step, source_id};
    pb_hex_digest(parts, 3, hex, 10);
    snprintf(out, cap, "t-%s-%s", step, hex);
}

/* Is there already a resource named `name` in the target's list `list`? */
bool
pb_target_has(struct pb *b, const char *list, const char *name)
{
    return fc_json_find(json_object_get(b->target, list), "name", name) != NULL;
}

void
pb_created(struct pb *b, const char *kind, const char *cloud, const char *source_id,
        const char *source_name, const char *target_name, const char *tid, const char *list)
{
    bool reuse = list && pb_target_has(b, list, target_name);
    json_array_append_new(b->creates,
                          json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s?, s:s}", "kind", kind,
                                    "cloud", cloud, "source_id", source_id, "source_name",
                                    source_name, "target_name", target_name, "task_id", tid,
                                    "action", reuse ? "reuse" : "create"));
}

/* args: a NULL-terminated list of strings; NULL-valued pairs are skipped by the callers */
json_t *
pb_stage(const char *kind, json_t *args)
{
    return json_pack("{s:s, s:o}", "kind", kind, "args", args);
}

json_t *
pb_argv_of(const char *first, ...)
{
    json_t *a = json_array();
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        json_array_append_new(a, json_string(s));
    va_end(ap);
    return a;
}

void
pb_arg2(json_t *args, const char *flag, const char *value)
{
    if (!value)
        return;
    json_array_append_new(args, json_string(flag));
    json_array_append_new(args, json_string(value));
}

fc_rc
pb_add_task(struct pb *b, const char *tid, json_t *stages, json_t *deps, bool framed,
         unsigned timeout_s)
{
    size_t i;
    json_t *s;
    json_array_foreach(stages, i, s) {
        json_t *args = json_object_get(s, "args");
        size_t j;
        json_t *a;
        if (json_array_size(args) > 64) {
            json_decref(stages);
            json_decref(deps);
            return FC_ERR(FC_E_UNSUPPORTED, "task %s: more than 64 arguments in one stage", tid);
        }
        json_array_foreach(args, j, a) {
            if (json_string_length(a) > 4096) {
                json_decref(stages);
                json_decref(deps);
                return FC_ERR(FC_E_UNSUPPORTED, "task %s: argument %zu longer than 4096 bytes",
                              tid, j);
            }
        }
    }
    json_t *t = json_pack("{s:s, s:o, s:b, s:i, s:i}", "task_id", tid, "stages", stages,
                          "framed", framed, "timeout_s", (int)timeout_s, "max_attempts", 3);
    if (deps && json_array_size(deps))
        json_object_set_new(t, "depends_on", deps);
    else
        json_decref(deps);
    json_array_append_new(b->tasks, t);
    return FC_OK;
}

void
pb_dep_add(json_t *deps, const char *tid)
{
    size_t i;
    json_t *e;
    if (!tid)
        return;
    json_array_foreach(deps, i, e) if (strcmp(json_string_value(e), tid) == 0) return;
    json_array_append_new(deps, json_string(tid));
}

const char *
pb_done_task(struct pb *b, const char *source_id)
{
    return source_id ? json_string_value(json_object_get(b->done, source_id)) : NULL;
}

const char *
pb_target_name_of(struct pb *b, const char *source_id)
{
    return source_id ? json_string_value(json_object_get(b->names, source_id)) : NULL;
}

void
pb_remember(struct pb *b, const char *source_id, const char *tid, const char *tname)
{
    if (tid)
        json_object_set_new(b->done, source_id, json_string(tid));
    if (tname)
        json_object_set_new(b->names, source_id, json_string(tname));
}

const char *
pb_str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* ---- the steps ------------------------------------------------------------------------- */

static fc_rc
plan_keypairs(struct pb *b)
{
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(b->topo, "keypairs"), i, k) {
        const char *name = pb_str(k, "name"), *pub = pb_str(k, "public_key");
        if (!pub) {
            pb_unmappable(b, "keypair", name, name,
                       "its public key cannot be read (a keypair of another user): the servers "
                       "using it are launched without a key");
            continue;
        }
        char tn[256], tid[160];
        fc_plan_target_name(b->rid, name, tn, sizeof tn);
        pb_task_id(b, "keypair", name, tid, sizeof tid);
        json_t *args = pb_argv_of("keypair-import", NULL);
        pb_arg2(args, "--cloud", b->o->dst_cloud);
        pb_arg2(args, "--name", tn);
        pb_arg2(args, "--public-key", pub);
        fc_rc rc = pb_add_task(b, tid, json_pack("[o]", pb_stage("openstack", args)), NULL, false, 600);
        if (rc)
            return rc;
        char key[300];
        snprintf(key, sizeof key, "keypair:%s", name);
        pb_remember(b, key, tid, tn);
        pb_created(b, "keypair", "target", name, name, tn, tid, "keypairs");
    }
    return FC_OK;
}

/* "direction=ingress,ethertype=IPv4,protocol=tcp,port_min=22,port_max=22,remote_ip=..." */
static void
rule_spec(const json_t *r, const char *remote_group, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "direction=%s", pb_str(r, "direction"));
    const char *kv[][2] = {{"ethertype", pb_str(r, "ethertype")},
                           {"protocol", pb_str(r, "protocol")},
                           {"remote_ip", pb_str(r, "remote_ip_prefix")},
                           {"remote_group", remote_group}};
    for (size_t i = 0; i < 4 && n < cap; i++)
        if (kv[i][1])
            n += (size_t)snprintf(out + n, cap - n, ",%s=%s", kv[i][0], kv[i][1]);
    json_t *pmin = json_object_get(r, "port_range_min"), *pmax = json_object_get(r, "port_range_max");
    if (json_is_integer(pmin) && n < cap)
        n += (size_t)snprintf(out + n, cap - n, ",port_min=%lld", (long long)json_integer_value(pmin));
    if (json_is_integer(pmax) && n < cap)
        snprintf(out + n, cap - n, ",port_max=%lld", (long long)json_integer_value(pmax));
}

static fc_rc
plan_secgroups(struct pb *b)
{
    const json_t *sgs = json_object_get(b->topo, "security_groups");
    size_t i, j;
    json_t *g, *r;
    fc_rc rc;
    /* groups first, so that rules can name any group of the service */
    json_array_foreach(sgs, i, g) {
        const char *id = pb_str(g, "id"), *name = pb_str(g, "name");
        char tn[256], tid[160];
        if (strcmp(name, "default") == 0) { /* every project has one: its rules are added */
            pb_remember(b, id, NULL, "default");
            pb_created(b, "security_group", "target", id, name, "default", NULL, NULL);
            json_object_set_new(json_array_get(b->creates, json_array_size(b->creates) - 1),
                                "action", json_string("reuse"));
            continue;
        }
        fc_plan_target_name(b->rid, name, tn, sizeof tn);
        pb_task_id(b, "secgroup", id, tid, sizeof tid);
        json_t *args = pb_argv_of("secgroup-create", NULL);
        pb_arg2(args, "--cloud", b->o->dst_cloud);
        pb_arg2(args, "--name", tn);
        pb_arg2(args, "--description", pb_str(g, "description"));
        if ((rc = pb_add_task(b, tid, json_pack("[o]", pb_stage("openstack", args)), NULL, false, 600)))
            return rc;
        pb_remember(b, id, tid, tn);
        pb_created(b, "security_group", "target", id, name, tn, tid, "security_groups");
    }
    json_array_foreach(sgs, i, g) {
        const char *id = pb_str(g, "id");
        json_t *rules = json_object_get(g, "rules");
        json_auto_t *specs = json_array(), *deps = json_array();
        pb_dep_add(deps, pb_done_task(b, id));
        json_array_foreach(rules, j, r) {
            const char *rg = pb_str(r, "remote_group_id"), *rgname = NULL;
            if (rg) {
                rgname = pb_target_name_of(b, rg);
                if (!rgname) {
                    pb_unmappable(b, "security_group_rule", pb_str(r, "id"), pb_str(g, "name"),
                               "rule of group '%s' refers to group %s, which no server of the "
                               "service uses",
                               pb_str(g, "name"), rg);
                    continue;
                }
                pb_dep_add(deps, pb_done_task(b, rg));
            }
            char spec[512];
            rule_spec(r, rgname, spec, sizeof spec);
            json_array_append_new(specs, json_string(spec));
        }
        size_t n = json_array_size(specs);
        for (size_t start = 0, part = 0; start < n; start += RULES_PER_TASK, part++) {
            char tid[160], src[300];
            snprintf(src, sizeof src, "%s/%zu", id, part);
            pb_task_id(b, "sgrules", src, tid, sizeof tid);
            json_t *args = pb_argv_of("secgroup-rules", NULL);
            pb_arg2(args, "--cloud", b->o->dst_cloud);
            pb_arg2(args, "--group", pb_target_name_of(b, id));
            for (size_t k = start; k < n && k < start + RULES_PER_TASK; k++)
                pb_arg2(args, "--rule", json_string_value(json_array_get(specs, k)));
            if ((rc = pb_add_task(b, tid, json_pack("[o]", pb_stage("openstack", args)),
                               json_deep_copy(deps), false, 600)))
                return rc;
            char key[300];
            snprintf(key, sizeof key, "rules:%s", id);
            json_t *l = json_object_get(b->done, key);
            if (!l)
                json_object_set_new(b->done, key, l = json_array());
            json_array_append_new(l, json_string(tid));
        }
    }
    return FC_OK;
}

/* The target's external network for a source external network (same name, else the first). */
const char *
pb_map_external(struct pb *b, const char *src_net_id)
{
    const json_t *tn = json_object_get(b->target, "networks");
    const json_t *sn = fc_json_find(json_object_get(b->topo, "networks"), "id", src_net_id);
    size_t i;
    json_t *n;
    if (sn) {
        json_array_foreach(tn, i, n) {
            if (json_is_true(json_object_get(n, "external")) && pb_str(sn, "name") && pb_str(n, "name") &&
                strcmp(pb_str(sn, "name"), pb_str(n, "name")) == 0)
                return pb_str(n, "name");
        }
    }
    json_array_foreach(tn, i, n) if (json_is_true(json_object_get(n, "external"))) return pb_str(n, "name");
    return NULL;
}

static fc_rc
plan_networks(struct pb *b)
{
    fc_rc rc;
    size_t i, j;
    json_t *n, *s;
    json_array_foreach(json_object_get(b->topo, "networks"), i, n) {
        const char *id = pb_str(n, "id"), *name = pb_str(n, "name");
        if (json_is_true(json_object_get(n, "external")))
            continue; /* mapped, not copied */
        if (json_is_true(json_object_get(n, "shared")) && name &&
            pb_target_has(b, "networks", name)) {
            pb_remember(b, id, NULL, name);
            pb_note(b, "network", id, "shared network '%s' maps to the target's network of the "
                                   "same name", name);
            continue;
        }
        char tn[256], tid[160];
        fc_plan_target_name(b->rid, name, tn, sizeof tn);
        pb_task_id(b, "network", id, tid, sizeof tid);
        json_t *args = pb_argv_of("network-create", NULL);
        pb_arg2(args, "--cloud", b->o->dst_cloud);
        pb_arg2(args, "--name", tn);
        /* No --mtu: the target's network type decides what it can carry (a VXLAN network
         * 1450 where the source's VLAN had 1500) and Neutron refuses a larger one. The
         * overview lists a different MTU as announced here (conduit/daemon/overview.c). */
        if (json_is_integer(json_object_get(n, "mtu")))
            pb_note(b, "network", id, "network '%s': MTU %lld on the source; the copy gets the "
                    "target's default MTU (the overview shows it when it differs)",
                    name ? name : id, (long long)json_integer_value(json_object_get(n, "mtu")));
        if ((rc = pb_add_task(b, tid, json_pack("[o]", pb_stage("openstack", args)), NULL, false, 600)))
            return rc;
        pb_remember(b, id, tid, tn);
        pb_created(b, "network", "target", id, name, tn, tid, "networks");
    }
    json_array_foreach(json_object_get(b->topo, "subnets"), i, s) {
        const char *id = pb_str(s, "id"), *net = pb_str(s, "network_id");
        if (!pb_target_name_of(b, net) || !pb_done_task(b, net))
            continue; /* subnet of a mapped network */
        char tn[256], tid[160], ipv[8];
        fc_plan_target_name(b->rid, pb_str(s, "name"), tn, sizeof tn);
        pb_task_id(b, "subnet", id, tid, sizeof tid);
        json_t *args = pb_argv_of("subnet-create", NULL);
        pb_arg2(args, "--cloud", b->o->dst_cloud);
        pb_arg2(args, "--network", pb_target_name_of(b, net));
        pb_arg2(args, "--name", tn);
        pb_arg2(args, "--cidr", pb_str(s, "cidr"));
        snprintf(ipv, sizeof ipv, "%lld", (long long)json_integer_value(json_object_get(s, "ip_version")));
        pb_arg2(args, "--ip-version", json_is_integer(json_object_get(s, "ip_version")) ? ipv : "4");
        pb_arg2(args, "--gateway", pb_str(s, "gateway_ip") ? pb_str(s, "gateway_ip") : "none");
        json_array_append_new(args, json_string(json_is_false(json_object_get(s, "enable_dhcp"))
                                                    ? "--no-dhcp" : "--dhcp"));
        json_t *x;
        json_array_foreach(json_object_get(s, "dns_nameservers"), j, x)
            pb_arg2(args, "--dns", json_string_value(x));
        json_array_foreach(json_object_get(s, "allocation_pools"), j, x) {
            char pool[160];
            snprintf(pool, sizeof pool, "%s-%s", pb_str(x, "start"), pb_str(x, "end"));
            pb_arg2(args, "--pool", pool);
        }
        if ((rc = pb_add_task(b, tid, json_pack("[o]", pb_stage("openstack", args)),
                           json_pack("[s]", pb_done_task(b, net)), false, 600)))
            return rc;
        pb_remember(b, id, tid, tn);
        pb_created(b, "subnet", "target", id, pb_str(s, "name"), tn, tid, "subnets");
    }
    json_array_foreach(json_object_get(b->topo, "routers"), i, n) {
        const char *id = pb_str(n, "id"), *name = pb_str(n, "name");
        char tn[256], tid[160];
        fc_plan_target_name(b->rid, name, tn, sizeof tn);
        pb_task_id(b, "router", id, tid, sizeof tid);
        json_t *args = pb_argv_of("router-create", NULL), *deps = json_array();
        pb_arg2(args, "--cloud", b->o->dst_cloud);
        pb_arg2(args, "--name", tn);
        const char *ext = pb_str(n, "external_network_id");
        const char *text = ext ? pb_map_external(b, ext) : NULL;
        if (ext && !text)
            pb_unmappable(b, "router_gateway", id, name,
                       "the target has no external network: router '%s' gets no gateway",
                       name ? name : id);
        pb_arg2(args, "--external-network", text);
        json_array_foreach(json_object_get(n, "interfaces"), j, s) {
            const char *sn = pb_str(s, "subnet_id");
            if (pb_target_name_of(b, sn)) {
                pb_arg2(args, "--subnet", pb_target_name_of(b, sn));
                pb_dep_add(deps, pb_done_task(b, sn));
            }
        }
        if ((rc = pb_add_task(b, tid, json_pack("[o]", pb_stage("openstack", args)), deps, false, 600)))
            return rc;
        pb_remember(b, id, tid, tn);
        pb_created(b, "router", "target", id, name, tn, tid, "routers");
    }
    return FC_OK;
}

fc_rc
fc_plan_build(const json_t *topology, const json_t *target, const struct fc_plan_opts *opts,
              json_t **plan, json_t **report)
{
    fc_rc rc;
    FC_AUTO(topology) struct fc_topology *valid = NULL;
    if ((rc = fc_topology_from_json(topology, &valid))) {
        fc_error_prefix("source topology");
        return rc;
    }
    if (!opts->src_cloud || !opts->dst_cloud)
        return FC_ERR(FC_E_INVALID, "plan: source and target clouds must be named");
    struct pb b = {.topo = topology, .target = target, .o = opts};
    if (opts->relocation_id) {
        if (!fc_id_valid(opts->relocation_id))
            return FC_ERR(FC_E_INVALID, "relocation id '%.64s' is not valid ([A-Za-z0-9_:-], "
                                        "first alphanumeric)", opts->relocation_id);
        snprintf(b.rid, sizeof b.rid, "%s", opts->relocation_id);
    } else {
        char r[24];
        fc_plan_relocation_id(opts->src_cloud, opts->dst_cloud, topology, r);
        snprintf(b.rid, sizeof b.rid, "%s", r);
    }
    json_auto_t *tasks = json_array(), *creates = json_array(), *unm = json_array(),
                *notes = json_array(), *done = json_object(), *names = json_object();
    b.tasks = tasks;
    b.creates = creates;
    b.unmappable = unm;
    b.notes = notes;
    b.done = done;
    b.names = names;
    if ((rc = pb_check_options(&b)) || (rc = plan_keypairs(&b)) ||
        (rc = plan_secgroups(&b)) || (rc = plan_networks(&b)) || (rc = pb_plan_volumes(&b)))
        return rc;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(topology, "servers"), i, s)
        if ((rc = pb_plan_server(&b, s)))
            return rc;
    if ((rc = pb_plan_configs(&b)))
        return rc;
    json_auto_t *p = json_pack("{s:s, s:s, s:O}", "schema", SCHEMA_PLAN, "relocation_id", b.rid,
                               "tasks", tasks);
    FC_AUTO(plan) struct fc_plan *checked = NULL;
    if (json_array_size(tasks) == 0)
        return FC_ERR(FC_E_INVALID, "plan: nothing can be relocated (%zu unmappable)",
                      json_array_size(unm));
    if ((rc = fc_plan_from_json(p, &checked))) {
        fc_error_prefix("the plan does not validate (a bug)");
        return FC_E_INTERNAL;
    }
    *report = json_pack("{s:s, s:s, s:s, s:O, s:O, s:O}", "relocation_id", b.rid, "source",
                        opts->src_cloud, "target", opts->dst_cloud, "creates", creates,
                        "unmappable", unm, "notes", notes);
    *plan = json_incref(p);
    return FC_OK;
}
