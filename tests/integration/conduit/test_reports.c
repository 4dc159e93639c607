/* SPDX-License-Identifier: Apache-2.0 */
/* Without services: the overview's field-by-field comparison (no difference between a
 * source and its faithful copy, then each kind of difference injected and reported with its
 * field and both values), the strict parser of fluid.conduit-request/1, the failure reason
 * naming the step, and the store's reports (which relocations need an overview or an
 * automatic cleanup). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fluid/cloud/plan.h"
#include "fluid/error.h"
#include "intermediates.h"
#include "overview.h"
#include "rpc.h"
#include "store.h"
#include "store_internal.h"

#define RID "r-overview-1"

static char *
tn(const char *name)
{
    static char buf[16][300];
    static int k;
    k = (k + 1) % 16;
    fc_plan_target_name(RID, name, buf[k], sizeof buf[k]);
    return buf[k];
}

/* A one-server service; target = true: its relocated copy (derived names, new ids). */
static json_t *
topo(bool target)
{
    const char *p = target ? "t-" : "s-";
    char id[8][64];
    const char *names[] = {"srv", "flv", "img", "port", "net", "web", "db", "vol"};
    for (int i = 0; i < 8; i++)
        snprintf(id[i], sizeof id[i], "%s%s", p, names[i]);
    json_t *md = json_pack("{s:s}", "role", "web");
    if (target) {
        json_object_set_new(md, "fluid_relocation", json_string(RID));
        json_object_set_new(md, "fluid_source_id", json_string("s-srv"));
    }
    json_t *t = json_pack(
        "{s:[{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:[s],s:[s],s:[s,s],s:[{s:s,s:s}]}],"
        " s:[{s:s,s:s,s:i,s:i,s:i}],"
        " s:[{s:s,s:s,s:{s:s}}],"
        " s:[{s:s,s:s,s:[{s:s}]}],"
        " s:[{s:s,s:s}],"
        " s:[{s:s,s:s,s:[{s:s,s:s,s:s,s:i,s:i,s:s}]},{s:s,s:s,s:[]}],"
        " s:[{s:s,s:s}],"
        " s:[{s:s,s:s,s:i}]}",
        "servers", "id", id[0], "name", target ? tn("web-1") : "web-1", "status", "ACTIVE",
        "flavor_id", id[1], "image_id", id[2], "key_name", target ? tn("ops") : "ops",
        "metadata", md, "tags", "svc", "port_ids", id[3], "security_groups", id[5], id[6],
        "volume_attachments", "volume_id", id[7], "device", "/dev/vdb",
        "flavors", "id", id[1], "name", "m1.tiny", "vcpus", 1, "ram_mb", 512, "disk_gb", 1,
        "images", "id", id[2], "name", target ? tn("web-1-image") : "cirros", "properties",
        "fluid_relocation", target ? RID : "other",
        "ports", "id", id[3], "network_id", id[4], "fixed_ips", "ip_address", "10.0.0.5",
        "networks", "id", id[4], "name", target ? tn("private") : "private",
        "security_groups", "id", id[5], "name", target ? tn("web") : "web", "rules",
        "direction", "ingress", "ethertype", "IPv4", "protocol", "tcp", "port_range_min", 22,
        "port_range_max", 22, "remote_group_id", id[6], "id", id[6], "name",
        target ? tn("db") : "db", "rules",
        "keypairs", "name", target ? tn("ops") : "ops", "fingerprint", "aa:bb",
        "volumes", "id", id[7], "name", target ? tn("data") : "data", "size_gb", 1);
    cr_assert_not_null(t, "json_pack");
    return t;
}

static json_t *
compare(const json_t *s, const json_t *t)
{
    json_t *out = json_object();
    cr_assert_eq(fc_overview_compare(s, t, RID, out), FC_OK);
    return out;
}

static const json_t *
diff_of(const json_t *ov, const char *field)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(ov, "differences"), i, d)
        if (!strcmp(json_string_value(json_object_get(d, "field")), field))
            return d;
    return NULL;
}

Test(overview, faithful_copy_has_no_difference)
{
    json_t *s = topo(false), *t = topo(true), *ov = compare(s, t);
    char *d = json_dumps(json_object_get(ov, "differences"), JSON_COMPACT);
    cr_assert_eq(json_array_size(json_object_get(ov, "differences")), 0, "%s", d);
    free(d);
    cr_assert_geq(json_integer_value(json_object_get(ov, "compared")), 18);
    const json_t *pair = json_array_get(json_object_get(ov, "servers"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(pair, "target_id")), "t-srv");
    json_decref(ov);
    json_decref(s);
    json_decref(t);
}

Test(overview, every_injected_difference_is_reported)
{
    json_t *s = topo(false), *t = topo(true);
    json_t *srv = json_array_get(json_object_get(t, "servers"), 0);
    json_object_set_new(json_array_get(json_object_get(t, "flavors"), 0), "name",
                        json_string("m1.small"));
    json_object_set_new(json_object_get(srv, "metadata"), "role", json_string("db"));
    json_object_set_new(srv, "tags", json_pack("[s,s]", "svc", "extra"));
    json_object_set_new(json_array_get(json_object_get(json_array_get(json_object_get(t, "ports"),
                                                                      0), "fixed_ips"), 0),
                        "ip_address", json_string("10.0.0.9"));
    json_object_set_new(json_array_get(json_object_get(t, "keypairs"), 0), "fingerprint",
                        json_string("cc:dd"));
    json_object_set_new(srv, "volume_attachments", json_array());
    json_object_set_new(json_object_get(json_array_get(json_object_get(t, "images"), 0),
                                        "properties"), "fluid_relocation", json_string("r-x"));
    /* the web copy's rule names the source group instead of the db copy */
    json_object_set_new(json_array_get(json_object_get(json_array_get(
                            json_object_get(t, "security_groups"), 0), "rules"), 0),
                        "remote_group_id", json_string("s-db"));
    json_t *ov = compare(s, t);
    const char *fields[] = {"flavor.name", "metadata.role", "tags", "fixed_ips", "fingerprint",
                            "volumes", "image", "rule"};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        cr_assert_not_null(diff_of(ov, fields[i]), "no difference reported for %s", fields[i]);
    const json_t *d = diff_of(ov, "flavor.name");
    cr_assert_str_eq(json_string_value(json_object_get(d, "source")), "m1.tiny");
    cr_assert_str_eq(json_string_value(json_object_get(d, "target")), "m1.small");
    d = diff_of(ov, "fixed_ips");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(d, "source"), 0)), "10.0.0.5");
    /* a missing rule and the stray one: two differences for the web group */
    size_t rules = 0, i;
    json_t *e;
    json_array_foreach(json_object_get(ov, "differences"), i, e)
        rules += !strcmp(json_string_value(json_object_get(e, "field")), "rule");
    cr_assert_eq(rules, 2);
    json_decref(ov);
    /* a server without its copy */
    json_object_del(json_object_get(srv, "metadata"), "fluid_source_id");
    ov = compare(s, t);
    cr_assert_not_null(diff_of(ov, "exists"));
    json_decref(ov);
    json_decref(s);
    json_decref(t);
}

/* The plan leaves a network's MTU to the target's default and says so: a copy that got
 * another MTU is listed as announced, not as a difference; the same MTU lists nothing. */
Test(overview, network_mtu_difference_is_announced_not_unexplained)
{
    json_t *s = topo(false), *t = topo(true);
    json_object_set_new(json_array_get(json_object_get(s, "networks"), 0), "mtu",
                        json_integer(1500));
    json_object_set_new(json_array_get(json_object_get(t, "networks"), 0), "mtu",
                        json_integer(1450));
    json_t *ov = compare(s, t);
    cr_assert_null(diff_of(ov, "mtu"), "the MTU counted as an unexplained difference");
    cr_assert_eq(json_array_size(json_object_get(ov, "differences")), 0);
    const json_t *a = json_object_get(ov, "announced");
    cr_assert_eq(json_array_size(a), 1);
    const json_t *e = json_array_get(a, 0);
    cr_assert_str_eq(json_string_value(json_object_get(e, "kind")), "network");
    cr_assert_str_eq(json_string_value(json_object_get(e, "name")), "private");
    cr_assert_str_eq(json_string_value(json_object_get(e, "field")), "mtu");
    cr_assert_eq(json_integer_value(json_object_get(e, "source")), 1500);
    cr_assert_eq(json_integer_value(json_object_get(e, "target")), 1450);
    cr_assert_not_null(strstr(json_string_value(json_object_get(e, "note")), "default"));
    json_decref(ov);
    json_object_set_new(json_array_get(json_object_get(t, "networks"), 0), "mtu",
                        json_integer(1500));
    ov = compare(s, t);
    cr_assert_eq(json_array_size(json_object_get(ov, "announced")), 0);
    cr_assert_eq(json_array_size(json_object_get(ov, "differences")), 0);
    json_decref(ov);
    json_decref(s);
    json_decref(t);
}

Test(rpc, strict_parser)
{
    struct fc_creq q;
    const char *ok = "{\"schema\":\"fluid.conduit-request/1\",\"relocation_id\":\"r-1\","
                     "\"correlation_id\":\"c-1\",\"reply_to\":\"amq.gen-x\",\"action\":\"cleanup\"}";
    cr_assert_eq(fc_creq_parse(ok, strlen(ok), &q), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(q.action, "cleanup");
    struct {
        const char *body, *want;
    } bad[] = {
        {"{\"schema\":\"fluid.conduit-request/1\",\"relocation_id\":\"r-1\",\"correlation_id\":"
         "\"c-1\",\"reply_to\":\"q\",\"action\":\"info\",\"x\":1}", "x: unknown field"},
        {"{\"schema\":\"fluid.conduit-request/1\",\"relocation_id\":\"r 1\",\"correlation_id\":"
         "\"c-1\",\"reply_to\":\"q\",\"action\":\"info\"}", "relocation_id"},
        {"{\"schema\":\"fluid.conduit-request/1\",\"relocation_id\":\"r-1\",\"correlation_id\":"
         "\"c-1\",\"reply_to\":\"q\",\"action\":\"drop\"}", "action"},
        {"{\"schema\":\"fluid.conduit-request/1\",\"relocation_id\":\"r-1\",\"correlation_id\":"
         "\"c-1\",\"action\":\"info\"}", "reply_to: missing"},
        {"{\"schema\":\"fluid.status/1\"}", "schema"},
        {"[1]", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_eq(fc_creq_parse(bad[i].body, strlen(bad[i].body), &q), FC_E_INVALID,
                     "accepted %s", bad[i].body);
        cr_assert(strstr(fc_error_msg(), bad[i].want), "%s: \"%s\" lacks \"%s\"", bad[i].body,
                  fc_error_msg(), bad[i].want);
    }
}

Test(rpc, failure_reason_names_the_step)
{
    char out[256];
    fc_store_failure_reason("t-launch-0c83dd90b6", "FC_E_REMOTE: quota", out, sizeof out);
    cr_assert_str_eq(out, "step launch (task t-launch-0c83dd90b6): FC_E_REMOTE: quota");
    fc_store_failure_reason("a", "FC_E_CHILD: exit 3", out, sizeof out);
    cr_assert_str_eq(out, "task a: FC_E_CHILD: exit 3");
    fc_task_step("t-image-c3ae4ae839", out, sizeof out);
    cr_assert_str_eq(out, "image");
}

static struct fc_store *
fresh(void)
{
    const char *run = getenv("FLUID_TEST_RUN_DIR");
    char path[600];
    if (run)
        mkdir(run, 0755);
    snprintf(path, sizeof path, "%s/test_reports-%d.db", run ? run : "/tmp", (int)getpid());
    unlink(path);
    struct fc_store *s = NULL;
    cr_assert_eq(fc_store_open(path, 4, &s), FC_OK, "%s", fc_error_msg());
    return s;
}

static void
add(struct fc_store *s, const char *rid, bool cof)
{
    char body[2048];
    snprintf(body, sizeof body,
             "{\"schema\":\"fluid.request/1\",\"relocation_id\":\"%s\",\"idempotency_key\":\"k-%s\","
             "%s\"plan\":{\"schema\":\"fluid.plan/1\",\"relocation_id\":\"%s\",\"tasks\":["
             "{\"schema\":\"fluid.task/1\",\"relocation_id\":\"%s\",\"task_id\":\"t-a\","
             "\"idempotency_key\":\"%s/t-a\",\"kind\":\"checksum\",\"stages\":[{\"kind\":"
             "\"checksum\",\"args\":[]}]}]}}",
             rid, rid, cof ? "\"options\":{\"cleanup_on_failure\":true}," : "", rid, rid, rid);
    struct fc_request *r = NULL;
    cr_assert_eq(fc_request_parse(body, strlen(body), &r), FC_OK, "%s", fc_error_msg());
    bool dup;
    cr_assert_eq(fc_store_add_request(s, r, &dup, NULL), FC_OK, "%s", fc_error_msg());
    fc_request_free(r);
}

static void
finish(struct fc_store *s, const char *rid, enum fc_task_state st)
{
    char key[128];
    snprintf(key, sizeof key, "%s/t-a", rid);
    struct fc_task_event e = {.relocation_id = (char *)rid, .task_id = "t-a",
                              .idempotency_key = key, .state = st, .broker = "b-1",
                              .site = "default", .attempt = 1};
    if (st == FC_TS_FAILED) {
        e.has_error = true;
        e.error.code = FC_E_CHILD;
        e.error.message = "exit 3";
    } else {
        e.result = json_pack("{s:[]}", "stages");
    }
    bool known;
    cr_assert_eq(fc_store_apply_event(s, &e, &known), FC_OK, "%s", fc_error_msg());
    cr_assert(known);
    json_decref(e.result);
}

static size_t
due(struct fc_store *s, char *list, size_t cap)
{
    struct fc_report_due *d = NULL;
    size_t n = 0;
    cr_assert_eq(fc_store_reports_due(s, &d, &n), FC_OK, "%s", fc_error_msg());
    list[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(list + strlen(list), cap - strlen(list), "%s%s/%s", i ? " " : "", d[i].kind,
                 d[i].relocation_id);
    free(d);
    return n;
}

Test(store, reports_due_only_for_planned_relocations)
{
    struct fc_store *s = fresh();
    add(s, "r-done", false);
    add(s, "r-fail", true);
    add(s, "r-fail-keep", false);
    finish(s, "r-done", FC_TS_DONE);
    finish(s, "r-fail", FC_TS_FAILED);
    finish(s, "r-fail-keep", FC_TS_FAILED);
    char list[512];
    cr_assert_eq(due(s, list, sizeof list), 0, "explicit plans get no report: %s", list);
    json_t *plan = json_pack("{s:[]}", "creates");
    const char *rids[] = {"r-done", "r-fail", "r-fail-keep"};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(fc_store_report_put(s, rids[i], "plan", plan, false), FC_OK);
    due(s, list, sizeof list);
    cr_assert_str_eq(list, "overview/r-done cleanup/r-fail");
    json_t *ov = json_pack("{s:[]}", "differences");
    cr_assert_eq(fc_store_report_put(s, "r-done", "overview", ov, true), FC_OK);
    cr_assert_eq(fc_store_report_put(s, "r-fail", "cleanup", ov, true), FC_OK);
    cr_assert_eq(due(s, list, sizeof list), 0, "%s", list);
    json_t *got = NULL;
    cr_assert_eq(fc_store_report_get(s, "r-done", "overview", &got), FC_OK);
    cr_assert(json_equal(got, ov));
    json_decref(got);
    /* the report events are in the outbox, on relocation.<id>.report.<kind> */
    struct fc_outbox_msg m;
    bool found;
    int seen = 0;
    int64_t after = 0;
    while (fc_store_outbox_after(s, after, &m, &found) == FC_OK && found) {
        after = m.seq;
        seen += !strcmp(m.routing_key, "relocation.r-done.report.overview") ||
                !strcmp(m.routing_key, "relocation.r-fail.report.cleanup");
        fc_outbox_msg_clear(&m);
    }
    cr_assert_eq(seen, 2);
    json_decref(plan);
    json_decref(ov);
    fc_store_close(s);
}

/* The intermediate images of a real plan (fc_plan_build on a one-server service with a
 * volume): the server's snapshot and the volume's upload on the source, the volume's
 * -import image on the target; never the server's own image on the target. */
Test(intermediates, names_from_the_plan)
{
    static const char topo_text[] =
        "{\"schema\":\"fluid.topology/1\",\"relocation_id\":\"\",\"cloud\":\"source\","
        "\"servers\":[{\"id\":\"s-db\",\"name\":\"db\",\"flavor_id\":\"f1\",\"image_id\":\"img1\","
        " \"port_ids\":[],\"security_groups\":[],"
        " \"volume_attachments\":[{\"volume_id\":\"v1\",\"server_id\":\"s-db\",\"device\":\"/dev/vdb\"}]}],"
        "\"flavors\":[{\"id\":\"f1\",\"name\":\"m1.tiny\",\"vcpus\":1,\"ram_mb\":512,\"disk_gb\":1}],"
        "\"images\":[{\"id\":\"img1\",\"name\":\"tiny\",\"disk_format\":\"raw\"}],"
        "\"volumes\":[{\"id\":\"v1\",\"name\":\"data\",\"size_gb\":1,\"status\":\"in-use\","
        " \"attachments\":[{\"server_id\":\"s-db\",\"device\":\"/dev/vdb\"}]}],"
        "\"networks\":[],\"subnets\":[],\"routers\":[],\"ports\":[],\"floating_ips\":[],"
        "\"security_groups\":[],\"keypairs\":[]}";
    static const char target_text[] =
        "{\"flavors\":[{\"id\":\"1\",\"name\":\"m1.tiny\",\"vcpus\":1,\"ram_mb\":512,\"disk_gb\":1}],"
        "\"keypairs\":[],\"security_groups\":[],\"networks\":[],\"subnets\":[],\"routers\":[],"
        "\"images\":[],\"servers\":[],\"volumes\":[],\"volume_types\":[],\"has_volume\":true,"
        "\"disk_formats\":[\"raw\",\"qcow2\"]}";
    json_t *topo = json_loads(topo_text, 0, NULL), *target = json_loads(target_text, 0, NULL);
    cr_assert(topo && target);
    struct fc_plan_opts o = {.src_cloud = "source", .dst_cloud = "target"};
    json_t *plan = NULL, *rep = NULL;
    cr_assert_eq(fc_plan_build(topo, target, &o, &plan, &rep), FC_OK, "%s", fc_error_msg());
    const char *rid = json_string_value(json_object_get(plan, "relocation_id"));
    char db[256], data[256], want[300];
    fc_plan_target_name(rid, "db", db, sizeof db);
    fc_plan_target_name(rid, "data", data, sizeof data);
    json_t *src = json_array(), *dst = json_array();
    fc_intermediate_names(plan, src, dst);
    char *s = json_dumps(src, 0), *d = json_dumps(dst, 0);
    cr_assert_eq(json_array_size(src), 2, "source: %s", s);
    snprintf(want, sizeof want, "\"%s-snap\"", db);
    cr_assert(strstr(s, want), "source: %s, no %s", s, want);
    snprintf(want, sizeof want, "\"%s-export\"", data);
    cr_assert(strstr(s, want), "source: %s, no %s", s, want);
    cr_assert_eq(json_array_size(dst), 1, "target: %s", d);
    snprintf(want, sizeof want, "%s-import", data);
    cr_assert_str_eq(json_string_value(json_array_get(dst, 0)), want, "target: %s", d);
    /* the server's own image is not among them */
    snprintf(want, sizeof want, "%s-image", db);
    cr_assert_null(strstr(d, want), "%s", d);
    free(s);
    free(d);
    json_decref(src);
    json_decref(dst);
    json_decref(plan);
    json_decref(rep);
    json_decref(topo);
    json_decref(target);
}
