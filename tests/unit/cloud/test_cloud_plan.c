/* SPDX-License-Identifier: Apache-2.0 */
/* The planner on a hand-written topology and target (pure): every resource named, a valid
 * order, deterministic names that a re-run finds, and what cannot be carried over. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/cloud/config.h"
#include "fluid/cloud/plan.h"
#include "fluid/cloud/topology.h"
#include "fluid/error.h"
#include "fluid/msg.h"

static const char topo_text[] =
    "{\"schema\":\"fluid.topology/1\",\"relocation_id\":\"\",\"cloud\":\"source\","
    "\"servers\":["
    " {\"id\":\"s-web\",\"name\":\"web\",\"status\":\"ACTIVE\",\"flavor_id\":\"f2\","
    "  \"image_id\":\"img1\",\"boot_volume_id\":null,\"key_name\":\"ops\",\"port_ids\":[\"p-web\"],"
    "  \"security_groups\":[\"g-web\"],\"metadata\":{\"role\":\"web\"},\"tags\":[\"svc\"],"
    "  \"volume_attachments\":[]},"
    " {\"id\":\"s-db\",\"name\":\"db\",\"flavor_id\":\"f1\",\"image_id\":\"img1\",\"key_name\":\"ops\","
    "  \"port_ids\":[\"p-db\"],\"security_groups\":[\"g-db\"],"
    "  \"volume_attachments\":[{\"volume_id\":\"v1\",\"server_id\":\"s-db\",\"device\":\"/dev/vdb\"}]}],"
    "\"flavors\":[{\"id\":\"f1\",\"name\":\"m1.tiny\",\"vcpus\":1,\"ram_mb\":512,\"disk_gb\":1},"
    " {\"id\":\"f2\",\"name\":\"m1.odd\",\"vcpus\":1,\"ram_mb\":1000,\"disk_gb\":5,"
    "  \"extra_specs\":{\"hw:cpu_policy\":\"dedicated\"}}],"
    "\"images\":[{\"id\":\"img1\",\"name\":\"tiny\",\"disk_format\":\"raw\"}],"
    "\"volumes\":[{\"id\":\"v1\",\"name\":\"data\",\"size_gb\":1,\"status\":\"in-use\","
    "  \"attachments\":[{\"server_id\":\"s-db\",\"device\":\"/dev/vdb\"}]}],"
    "\"networks\":[{\"id\":\"n1\",\"name\":\"private\",\"subnet_ids\":[\"sn1\"]},"
    " {\"id\":\"ext\",\"name\":\"public\",\"external\":true}],"
    "\"subnets\":[{\"id\":\"sn1\",\"name\":\"private-v4\",\"network_id\":\"n1\",\"cidr\":\"10.10.0.0/24\","
    "  \"ip_version\":4,\"gateway_ip\":\"10.10.0.1\",\"enable_dhcp\":true,"
    "  \"allocation_pools\":[{\"start\":\"10.10.0.10\",\"end\":\"10.10.0.200\"}]}],"
    "\"routers\":[{\"id\":\"r1\",\"name\":\"gw\",\"external_network_id\":\"ext\","
    "  \"interfaces\":[{\"subnet_id\":\"sn1\",\"port_id\":\"p-r\",\"ip_address\":\"10.10.0.1\"}]}],"
    "\"ports\":[{\"id\":\"p-web\",\"network_id\":\"n1\",\"mac_address\":\"fa:16:3e:00:00:01\","
    "  \"fixed_ips\":[{\"subnet_id\":\"sn1\",\"ip_address\":\"10.10.0.11\"}],\"device_id\":\"s-web\","
    "  \"security_group_ids\":[\"g-web\"]},"
    " {\"id\":\"p-db\",\"network_id\":\"n1\",\"mac_address\":\"fa:16:3e:00:00:02\","
    "  \"fixed_ips\":[{\"subnet_id\":\"sn1\",\"ip_address\":\"10.10.0.12\"}],\"device_id\":\"s-db\","
    "  \"security_group_ids\":[\"g-db\"]}],"
    "\"floating_ips\":[{\"id\":\"fip1\",\"floating_ip_address\":\"203.0.113.20\","
    "  \"floating_network_id\":\"ext\",\"port_id\":\"p-web\",\"fixed_ip_address\":\"10.10.0.11\"}],"
    "\"security_groups\":["
    " {\"id\":\"g-web\",\"name\":\"web\",\"rules\":["
    "   {\"id\":\"r-1\",\"direction\":\"ingress\",\"ethertype\":\"IPv4\",\"protocol\":\"tcp\","
    "    \"port_range_min\":80,\"port_range_max\":80,\"remote_ip_prefix\":\"0.0.0.0/0\"},"
    "   {\"id\":\"r-2\",\"direction\":\"ingress\",\"ethertype\":\"IPv4\",\"remote_group_id\":\"g-db\"}]},"
    " {\"id\":\"g-db\",\"name\":\"db\",\"rules\":["
    "   {\"id\":\"r-3\",\"direction\":\"ingress\",\"ethertype\":\"IPv4\",\"protocol\":\"tcp\","
    "    \"port_range_min\":5432,\"port_range_max\":5432,\"remote_group_id\":\"g-web\"},"
    "   {\"id\":\"r-4\",\"direction\":\"ingress\",\"ethertype\":\"IPv4\",\"remote_group_id\":\"g-outside\"}]}],"
    "\"keypairs\":[{\"name\":\"ops\",\"public_key\":\"ssh-ed25519 AAAAC3 ops@x\"}]}";

static const char target_text[] =
    "{\"flavors\":[{\"id\":\"1\",\"name\":\"m1.tiny\",\"vcpus\":1,\"ram_mb\":512,\"disk_gb\":1},"
    " {\"id\":\"2\",\"name\":\"m1.small\",\"vcpus\":1,\"ram_mb\":2048,\"disk_gb\":20},"
    " {\"id\":\"3\",\"name\":\"m1.medium\",\"vcpus\":2,\"ram_mb\":4096,\"disk_gb\":40}],"
    "\"keypairs\":[],\"security_groups\":[{\"id\":\"d\",\"name\":\"default\"}],"
    "\"networks\":[{\"id\":\"x\",\"name\":\"public\",\"external\":true}],\"subnets\":[],"
    "\"routers\":[],\"images\":[],\"servers\":[],\"volumes\":[],\"volume_types\":[],"
    "\"has_volume\":true,\"disk_formats\":[\"raw\",\"qcow2\",\"vmdk\"]}";

static json_t *
load(const char *s)
{
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    cr_assert_not_null(j, "line %d: %s", je.line, je.text);
    return j;
}

static const struct fc_plan_opts opts = {.src_cloud = "source", .dst_cloud = "target",
                                         .rules = "/etc/fluid/rules.json"};

static const json_t *
task_by_prefix(const json_t *plan, const char *prefix, size_t nth)
{
    size_t i, seen = 0;
    json_t *t;
    json_array_foreach(json_object_get(plan, "tasks"), i, t) {
        if (strncmp(json_string_value(json_object_get(t, "task_id")), prefix, strlen(prefix)) == 0 &&
            seen++ == nth)
            return t;
    }
    return NULL;
}

static bool
depends(const json_t *t, const char *tid)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(t, "depends_on"), i, d)
        if (strcmp(json_string_value(d), tid) == 0) return true;
    return false;
}

static bool
has_arg(const json_t *t, const char *a)
{
    size_t i, j;
    json_t *s, *x;
    json_array_foreach(json_object_get(t, "stages"), i, s)
        json_array_foreach(json_object_get(s, "args"), j, x)
            if (strcmp(json_string_value(x), a) == 0) return true;
    return false;
}

/* the report entry of that kind and target name */
static const json_t *
created(const json_t *rep, const char *kind, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(rep, "creates"), i, c) {
        if (strcmp(json_string_value(json_object_get(c, "kind")), kind) == 0 &&
            strcmp(json_string_value(json_object_get(c, "target_name")), name) == 0)
            return c;
    }
    return NULL;
}

static const char *
tid(const json_t *t)
{
    cr_assert_not_null(t);
    return json_string_value(json_object_get(t, "task_id"));
}

Test(plan, two_server_service)
{
    json_t *topo = load(topo_text), *target = load(target_text), *plan = NULL, *rep = NULL;
    cr_assert_eq(fc_plan_build(topo, target, &opts, &plan, &rep), FC_OK, "%s", fc_error_msg());
    /* a valid proto Plan: ids, kinds, DAG */
    struct fc_plan *p = NULL;
    cr_assert_eq(fc_plan_from_json(plan, &p), FC_OK, "%s", fc_error_msg());
    fc_plan_free(p);
    const char *rid = json_string_value(json_object_get(plan, "relocation_id"));
    cr_assert(strncmp(rid, "r-", 2) == 0);

    char web[256], db[256], ops[256];
    fc_plan_target_name(rid, "web", web, sizeof web);
    fc_plan_target_name(rid, "db", db, sizeof db);
    fc_plan_target_name(rid, "ops", ops, sizeof ops);

    const json_t *kp = task_by_prefix(plan, "t-keypair-", 0);
    const json_t *sg_web = task_by_prefix(plan, "t-secgroup-", 0), *sg_db = task_by_prefix(plan, "t-secgroup-", 1);
    const json_t *rules_web = task_by_prefix(plan, "t-sgrules-", 0), *rules_db = task_by_prefix(plan, "t-sgrules-", 1);
    const json_t *net = task_by_prefix(plan, "t-network-", 0), *sub = task_by_prefix(plan, "t-subnet-", 0);
    const json_t *rtr = task_by_prefix(plan, "t-router-", 0), *vol = task_by_prefix(plan, "t-volume-", 0);
    const json_t *snap_web = task_by_prefix(plan, "t-snapshot-", 0), *img_web = task_by_prefix(plan, "t-image-", 0);
    const json_t *launch_web = task_by_prefix(plan, "t-launch-", 0), *launch_db = task_by_prefix(plan, "t-launch-", 1);
    const json_t *fip = task_by_prefix(plan, "t-fip-", 0), *att = task_by_prefix(plan, "t-attach-", 0);
    const json_t *cfg_web = task_by_prefix(plan, "t-config-", 0);

    cr_assert(has_arg(kp, ops) && has_arg(kp, "ssh-ed25519 AAAAC3 ops@x"));
    /* rules of each group wait for both groups: they refer to each other */
    cr_assert(depends(rules_web, tid(sg_web)) && depends(rules_web, tid(sg_db)));
    cr_assert(depends(rules_db, tid(sg_db)) && depends(rules_db, tid(sg_web)));
    cr_assert(depends(sub, tid(net)) && depends(rtr, tid(sub)));
    cr_assert(has_arg(rtr, "public"), "router gateway on the target's external network");
    cr_assert(depends(img_web, tid(snap_web)));
    cr_assert(depends(launch_web, tid(img_web)) && depends(launch_web, tid(kp)) &&
              depends(launch_web, tid(rules_web)) && depends(launch_web, tid(sg_web)) &&
              depends(launch_web, tid(sub)));
    cr_assert(has_arg(launch_web, web) && has_arg(launch_web, "m1.small"), "closest flavor");
    cr_assert(has_arg(launch_db, db) && has_arg(launch_db, "m1.tiny"), "same flavor");
    cr_assert(has_arg(launch_web, "network=" "private" "-fc") == false);
    cr_assert(depends(att, tid(launch_db)) && depends(att, tid(vol)) && has_arg(att, "/dev/vdb"));
    cr_assert(depends(fip, tid(launch_web)) && depends(fip, tid(rtr)) && has_arg(fip, "10.10.0.11"));
    /* the config steps wait for every launch, floating IP and attach of the relocation and
     * carry the planned variables (source addresses, target names) */
    cr_assert(depends(cfg_web, tid(fip)) && depends(cfg_web, tid(launch_db)) &&
              depends(cfg_web, tid(att)) && has_arg(cfg_web, "/etc/fluid/rules.json"));
    {
        json_t *args = json_object_get(json_array_get(json_object_get(cfg_web, "stages"), 0),
                                       "args");
        cr_assert_str_eq(json_string_value(json_array_get(args, 0)), "config-rewrite");
        size_t i;
        json_t *x;
        json_t *vars = NULL;
        json_array_foreach(args, i, x) if (strcmp(json_string_value(x), "--vars-json") == 0)
            vars = json_loads(json_string_value(json_array_get(args, i + 1)), 0, NULL);
        cr_assert_not_null(vars);
        json_t *sw = json_object_get(json_object_get(json_object_get(vars, "source"), "server"),
                                     "web");
        cr_assert_str_eq(json_string_value(json_object_get(sw, "floating_ip")), "203.0.113.20");
        json_t *tw = json_object_get(json_object_get(json_object_get(vars, "target"), "server"),
                                     "web");
        cr_assert_str_eq(json_string_value(json_object_get(tw, "name")), web);
        json_decref(vars);
    }
    cr_assert(has_arg(vol, "--force"), "in-use volume exported with force");
    /* raw -> raw accepted by the target: no conversion stage */
    cr_assert_eq(json_array_size(json_object_get(img_web, "stages")), 2);

    /* the report: every created resource, and the unmappable rule */
    const json_t *creates = json_object_get(rep, "creates");
    const char *kinds[] = {"keypair", "security_group", "network", "subnet", "router", "volume",
                           "snapshot", "image", "server", "floating_ip"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        cr_assert_not_null(fc_json_find(creates, "kind", kinds[i]), "no %s created", kinds[i]);
    cr_assert_not_null(created(rep, "server", web));
    cr_assert_not_null(created(rep, "security_group", web), "group 'web' and server 'web'");
    const json_t *un = json_object_get(rep, "unmappable");
    cr_assert_eq(json_array_size(un), 1, "%s", json_dumps(un, 0));
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(un, 0), "kind")),
                     "security_group_rule");
    cr_assert(strstr(json_string_value(json_object_get(json_array_get(un, 0), "reason")), "g-outside"));
    const json_t *notes = json_object_get(rep, "notes");
    char *nt = json_dumps(notes, 0);
    cr_assert(strstr(nt, "closest") && strstr(nt, "hw:cpu_policy"), "%s", nt);
    free(nt);

    /* same request, same plan (names and ids are derived, not random) */
    json_t *plan2 = NULL, *rep2 = NULL;
    cr_assert_eq(fc_plan_build(topo, target, &opts, &plan2, &rep2), FC_OK);
    cr_assert(json_equal(plan, plan2));
    json_decref(plan2);
    json_decref(rep2);

    /* after a first run: the target has the copies; a re-plan reuses them */
    json_array_append_new(json_object_get(target, "servers"), json_pack("{s:s}", "name", web));
    json_array_append_new(json_object_get(target, "keypairs"), json_pack("{s:s}", "name", ops));
    cr_assert_eq(fc_plan_build(topo, target, &opts, &plan2, &rep2), FC_OK);
    const json_t *c = created(rep2, "server", web);
    cr_assert_str_eq(json_string_value(json_object_get(c, "action")), "reuse");
    c = created(rep2, "security_group", web);
    cr_assert_str_eq(json_string_value(json_object_get(c, "action")), "create");
    c = created(rep2, "keypair", ops);
    cr_assert_str_eq(json_string_value(json_object_get(c, "action")), "reuse");
    json_decref(plan2);
    json_decref(rep2);
    json_decref(plan);
    json_decref(rep);
    json_decref(topo);
    json_decref(target);
}

Test(plan, what_cannot_be_carried)
{
    json_t *topo = load(topo_text), *target = load(target_text), *plan = NULL, *rep = NULL;
    /* no external network, no block storage, and only a tiny flavor */
    json_object_set_new(target, "networks", json_array());
    json_object_set_new(target, "has_volume", json_false());
    json_array_remove(json_object_get(target, "flavors"), 2);
    json_array_remove(json_object_get(target, "flavors"), 1);
    json_object_set_new(target, "disk_formats", json_pack("[s]", "qcow2"));
    cr_assert_eq(fc_plan_build(topo, target, &opts, &plan, &rep), FC_OK, "%s", fc_error_msg());
    char *u = json_dumps(json_object_get(rep, "unmappable"), 0);
    cr_assert(strstr(u, "\"kind\": \"server\"") && strstr(u, "no flavor on the target fits flavor 'm1.odd'"), "%s", u);
    cr_assert(strstr(u, "no block-storage service"), "%s", u);
    cr_assert(strstr(u, "router_gateway"), "%s", u);
    free(u);
    cr_assert_null(task_by_prefix(plan, "t-fip-", 0), "web is not relocated: no floating IP task");
    /* db still goes, with its image converted to the one format the target takes */
    const json_t *img = task_by_prefix(plan, "t-image-", 0);
    cr_assert_eq(json_array_size(json_object_get(img, "stages")), 3);
    cr_assert(has_arg(img, "qcow2"));
    json_decref(plan);
    json_decref(rep);

    /* exact flavors only: db (m1.tiny exists) goes, web does not */
    struct fc_plan_opts ex = opts;
    ex.exact_flavor = true;
    ex.relocation_id = "r-fixed-1";
    cr_assert_eq(fc_plan_build(topo, target, &ex, &plan, &rep), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(json_string_value(json_object_get(plan, "relocation_id")), "r-fixed-1");
    json_decref(plan);
    json_decref(rep);
    ex.relocation_id = "bad id!";
    cr_assert_eq(fc_plan_build(topo, target, &ex, &plan, &rep), FC_E_INVALID);
    json_decref(topo);
    json_decref(target);
}

Test(plan, rejects_an_invalid_topology)
{
    json_t *target = load(target_text), *plan = NULL, *rep = NULL;
    json_t *bad = load("{\"schema\":\"fluid.topology/1\",\"relocation_id\":\"\",\"servers\":[{\"name\":\"x\"}]}");
    cr_assert_eq(fc_plan_build(bad, target, &opts, &plan, &rep), FC_E_INVALID);
    cr_assert(strstr(fc_error_msg(), "servers[0].id"), "%s", fc_error_msg());
    json_decref(bad);
    json_decref(target);
}

Test(plan, volume_method_ssh_and_option_checks)
{
    json_t *topo = load(topo_text), *target = load(target_text), *plan = NULL, *rep = NULL;
    json_t *cs = json_pack("{s:s, s:i, s:s}", "host", "fixed_ip", "port", 2222, "user", "app");
    json_t *mp = json_pack("{s:s}", "data", "/srv/data");
    struct fc_plan_opts o = opts;
    o.volume_method = "ssh";
    o.config_ssh = cs;
    o.mountpoints = mp;
    cr_assert_eq(fc_plan_build(topo, target, &o, &plan, &rep), FC_OK, "%s", fc_error_msg());
    const json_t *vol = task_by_prefix(plan, "t-volume-", 0);
    const json_t *st = json_object_get(vol, "stages");
    cr_assert_eq(json_array_size(st), 2, "no conversion between backend files");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(json_array_get(st, 0),
                                                                      "args"), 0)),
                     "volume-ssh-read");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(json_array_get(st, 1),
                                                                      "args"), 0)),
                     "volume-ssh-write");
    cr_assert(has_arg(vol, "--size") && !has_arg(vol, "--disk-format") &&
              !has_arg(vol, "--force"));
    const json_t *cfg = task_by_prefix(plan, "t-config-", 0);
    cr_assert(has_arg(cfg, "fixed_ip") && has_arg(cfg, "2222") && has_arg(cfg, "app"));
    json_decref(plan);
    json_decref(rep);
    /* bad options name the field */
    struct {
        const char *method;
        json_t *cs, *mp;
        const char *needle;
    } bad[] = {
        {"scp", NULL, NULL, "options.volume_method"},
        {NULL, json_pack("{s:s}", "pasword", "x"), NULL, "options.config_ssh.pasword"},
        {NULL, json_pack("{s:i}", "port", 0), NULL, "options.config_ssh.port"},
        {NULL, json_pack("{s:s}", "user", "a@b"), NULL, "options.config_ssh.user"},
        {NULL, NULL, json_pack("{s:s}", "data", "relative"), "options.mountpoints.data"},
        {NULL, NULL, json_pack("{s:{s:s,s:s}}", "data", "source", "/a", "x", "/b"),
         "options.mountpoints.data"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fc_plan_opts b = opts;
        b.volume_method = bad[i].method;
        b.config_ssh = bad[i].cs;
        b.mountpoints = bad[i].mp;
        plan = rep = NULL;
        cr_assert_eq(fc_plan_build(topo, target, &b, &plan, &rep), FC_E_INVALID, "%s",
                     bad[i].needle);
        cr_assert(strstr(fc_error_msg(), bad[i].needle), "'%s' lacks '%s'", fc_error_msg(),
                  bad[i].needle);
        json_decref(bad[i].cs);
        json_decref(bad[i].mp);
    }
    /* a cloud without storage_ssh: planning fails naming it */
    struct fc_cloud_config *nc = NULL;
    const char *y = "clouds:\n  target:\n    auth:\n      auth_url: http://k:5000\n";
    cr_assert_eq(fc_cloud_config_parse(y, strlen(y), NULL, 0, "c.yaml", "target", &nc), FC_OK);
    o.dst_config = nc;
    plan = rep = NULL;
    cr_assert_eq(fc_plan_build(topo, target, &o, &plan, &rep), FC_E_INVALID);
    cr_assert(strstr(fc_error_msg(), "cloud 'target' (c.yaml) has no storage_ssh"), "%s",
              fc_error_msg());
    fc_cloud_config_free(nc);
    json_decref(cs);
    json_decref(mp);
    json_decref(topo);
    json_decref(target);
}

/* The rules document given inline (as the conduit does with a request's options.rules) is
 * carried in each config task as --rules-json parts that join to exactly the document, never
 * cutting a UTF-8 character; no --rules path. Too big a document is refused by name. */
Test(plan, inline_rules_travel_in_the_task)
{
    json_t *topo = load(topo_text), *target = load(target_text), *plan = NULL, *rep = NULL;
    /* > 2 parts, with multi-byte characters around the cut points */
    size_t len = 9000;
    char *doc = malloc(len + 64);
    size_t n = (size_t)snprintf(doc, 64, "{\"roots\":[\"/etc/app\"],\"note\":\"");
    while (n + 3 < len) {
        memcpy(doc + n, "\xc3\xa9", 2); /* é */
        n += 2;
    }
    memcpy(doc + n, "\"}", 3);
    struct fc_plan_opts o = opts;
    o.rules = NULL;
    o.rules_doc = doc;
    cr_assert_eq(fc_plan_build(topo, target, &o, &plan, &rep), FC_OK, "%s", fc_error_msg());
    const json_t *cfg = task_by_prefix(plan, "t-config-", 0);
    cr_assert_not_null(cfg, "no config task");
    const json_t *args = json_object_get(json_array_get(json_object_get(cfg, "stages"), 0), "args");
    size_t i, parts = 0;
    json_t *a;
    char *joined = calloc(1, strlen(doc) + 1);
    json_array_foreach(args, i, a) {
        cr_assert_str_neq(json_string_value(a), "--rules");
        if (strcmp(json_string_value(a), "--rules-json") == 0) {
            const char *p = json_string_value(json_array_get(args, i + 1));
            cr_assert_leq(strlen(p), 4000u);
            cr_assert_neq((unsigned char)p[0] & 0xc0, 0x80, "part %zu starts mid-character", parts);
            strcat(joined, p);
            parts++;
        }
    }
    cr_assert_geq(parts, 3u);
    cr_assert_str_eq(joined, doc);
    free(joined);
    json_decref(plan);
    json_decref(rep);
    /* more than a task carries */
    char *big = malloc(200000);
    memset(big, 'x', 199999);
    big[199999] = '\0';
    o.rules_doc = big;
    plan = rep = NULL;
    cr_assert_eq(fc_plan_build(topo, target, &o, &plan, &rep), FC_E_UNSUPPORTED);
    cr_assert(strstr(fc_error_msg(), "the config rules take 199999 bytes"), "%s", fc_error_msg());
    free(big);
    free(doc);
    json_decref(topo);
    json_decref(target);
}

/* Rules that fit the byte limit but not a task's 64 arguments (with the variables) are
 * refused with both sizes named, never cut. */
Test(plan, inline_rules_over_the_argument_limit)
{
    json_t *topo = load(topo_text), *target = load(target_text), *plan = NULL, *rep = NULL;
    char *doc = malloc(150001);
    memset(doc, 'x', 150000);
    doc[150000] = '\0';
    struct fc_plan_opts o = opts;
    o.rules = NULL;
    o.rules_doc = doc;
    cr_assert_eq(fc_plan_build(topo, target, &o, &plan, &rep), FC_E_UNSUPPORTED);
    cr_assert(strstr(fc_error_msg(), "rules (150000 bytes)") &&
                  strstr(fc_error_msg(), "more than a task's 64"),
              "%s", fc_error_msg());
    free(doc);
    json_decref(topo);
    json_decref(target);
}

/* The target's network type decides the MTU it can carry (VXLAN 1450 where the source had
 * 1500): the copy is created without --mtu and the plan says what the source had. */
Test(plan, network_mtu_left_to_the_target)
{
    json_auto_t *topo = load(topo_text), *target = load(target_text), *plan = NULL, *rep = NULL;
    json_t *net = fc_json_find(json_object_get(topo, "networks"), "id", "n1");
    json_object_set_new(net, "mtu", json_integer(1500));
    cr_assert_eq(fc_plan_build(topo, target, &opts, &plan, &rep), FC_OK, "%s", fc_error_msg());
    const json_t *t = task_by_prefix(plan, "t-network-", 0);
    cr_assert_not_null(t);
    cr_assert(!has_arg(t, "--mtu"), "network-create forces the source's MTU");
    size_t i;
    json_t *n;
    bool noted = false;
    json_array_foreach(json_object_get(rep, "notes"), i, n)
        if (strstr(json_string_value(json_object_get(n, "note")), "MTU 1500 on the source") &&
            !strcmp(json_string_value(json_object_get(n, "id")), "n1"))
            noted = true;
    cr_assert(noted, "no note of the source's MTU");
}
