/* SPDX-License-Identifier: Apache-2.0 */
/* proto messages: Plan (DAG checks, order), RelocationRequest (explicit plan, derived keys,
 * selector), Topology (field tables). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "fluid/error.h"
#include "fluid/msg.h"

static void
reject(const char *s, fc_rc rc, const char *path, const char *what)
{
    fc_rc got = fc_msg_validate(s, strlen(s), NULL);
    cr_assert_eq(got, rc, "want %s, got %s (%s)", fc_rc_name(rc), fc_rc_name(got),
                 fc_error_msg());
    cr_assert_str_eq(fc_msg_error_path(), path, "path %s (%s)", fc_msg_error_path(),
                     fc_error_msg());
    cr_assert(strstr(fc_error_msg(), what), "\"%s\" lacks \"%s\"", fc_error_msg(), what);
}

#define T(id, deps) "{\"task_id\":\"" id "\",\"stages\":[{\"kind\":\"checksum\"}],\"depends_on\":" deps "}"
#define PLAN(tasks) "{\"schema\":\"fluid.plan/1\",\"relocation_id\":\"r-1\",\"tasks\":[" tasks "]}"

Test(plan, order_and_defaults)
{
    const char *s = PLAN(T("c", "[\"a\",\"b\"]") "," T("b", "[\"a\"]") "," T("a", "[]") ","
                         T("d", "[]"));
    FC_AUTO(plan) struct fc_plan *p = NULL;
    cr_assert_eq(fc_plan_parse(s, strlen(s), &p), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(p->ntasks, 4);
    cr_assert_str_eq(p->tasks[0]->relocation_id, "r-1");
    cr_assert_str_eq(p->tasks[0]->idempotency_key, "r-1/c");
    size_t order[4];
    fc_plan_topo_order(p, order);
    /* a first (first ready in listing order after c and b wait), then b, c; d anywhere */
    size_t pos[4];
    for (size_t i = 0; i < 4; i++)
        pos[order[i]] = i;
    cr_assert_lt(pos[2], pos[1]); /* a before b */
    cr_assert_lt(pos[1], pos[0]); /* b before c */
    cr_assert_eq(fc_plan_find(p, "d"), 3);
    cr_assert_eq(fc_plan_find(p, "zz"), -1);

    json_auto_t *j = fc_plan_to_json(p);
    FC_AUTO(plan) struct fc_plan *p2 = NULL;
    cr_assert_eq(fc_plan_from_json(j, &p2), FC_OK, "%s", fc_error_msg());
    json_auto_t *j2 = fc_plan_to_json(p2);
    cr_assert(json_equal(j, j2));
}

Test(plan, the_issue_example)
{
    const char *s = PLAN(T("t0", "[]") "," T("t1", "[]") ","
                         "{\"task_id\":\"t2\",\"kind\":\"imge\",\"stages\":[{\"kind\":\"image\"}]}");
    reject(s, FC_E_INVALID, "tasks[2].kind", "");
    cr_assert_str_eq(fc_error_msg(), "tasks[2].kind: unknown migrator kind \"imge\"");
}

Test(plan, dag_rejections)
{
    reject(PLAN(T("a", "[]") "," T("b", "[\"x\"]")), FC_E_INVALID, "tasks[1].depends_on[0]",
           "unknown task \"x\"");
    reject(PLAN(T("a", "[\"c\"]") "," T("b", "[\"a\"]") "," T("c", "[\"b\"]")), FC_E_INVALID,
           "tasks[0].depends_on", "cycle a -> c -> b -> a");
    reject(PLAN(T("a", "[]") "," T("b", "[\"b\"]")), FC_E_INVALID, "tasks[1].depends_on[0]",
           "depends on itself");
    reject(PLAN(T("a", "[]") "," T("a", "[]")), FC_E_INVALID, "tasks[1].task_id",
           "duplicate task_id \"a\"");
    reject(PLAN(""), FC_E_INVALID, "tasks", "0 tasks");
    reject("{\"schema\":\"fluid.plan/1\",\"relocation_id\":\"r-1\",\"tasks\":[{\"task_id\":\"a\","
           "\"relocation_id\":\"r-2\",\"stages\":[{\"kind\":\"test\"}]}]}",
           FC_E_INVALID, "tasks[0].relocation_id", "differs from the plan's");
    reject("{\"schema\":\"fluid.plan/1\",\"relocation_id\":\"r-1\",\"tasks\":[{\"task_id\":\"a\","
           "\"schema\":\"fluid.task/9\",\"stages\":[{\"kind\":\"test\"}]}]}",
           FC_E_UNSUPPORTED, "tasks[0].schema", "unsupported version");
}

Test(plan, long_cycle_and_many_tasks)
{
    static char buf[400000];
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof buf - n,
                          "{\"schema\":\"fluid.plan/1\",\"relocation_id\":\"r\",\"tasks\":[");
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n,
                              "%s{\"task_id\":\"t%d\",\"stages\":[{\"kind\":\"test\"}],"
                              "\"depends_on\":[\"t%d\"]}",
                              i ? "," : "", i, (i + 999) % 1000);
    snprintf(buf + n, sizeof buf - n, "]}");
    fc_rc rc = fc_msg_validate(buf, strlen(buf), FC_SCHEMA_PLAN);
    cr_assert_eq(rc, FC_E_INVALID);
    cr_assert(strstr(fc_error_msg(), "cycle t0 -> t999 -> t998"), "%s", fc_error_msg());
}

#define REQ_HEAD "{\"schema\":\"fluid.request/1\",\"relocation_id\":\"r-7\",\"idempotency_key\":\"op-7\","

Test(request, explicit_plan_and_keys)
{
    const char *s = REQ_HEAD "\"plan\":{\"tasks\":[" T("a", "[]") "," T("b", "[\"a\"]") "]},"
                             "\"options\":{\"note\":[1,{\"x\":null}]}}";
    FC_AUTO(request) struct fc_request *r = NULL;
    cr_assert_eq(fc_request_parse(s, strlen(s), &r), FC_OK, "%s", fc_error_msg());
    cr_assert_not_null(r->plan);
    cr_assert_str_eq(r->plan->relocation_id, "r-7");
    cr_assert_str_eq(r->plan->tasks[1]->idempotency_key, "op-7/b");
    cr_assert_null(r->source_cloud);
    cr_assert_eq(r->nservers, 0);
    json_auto_t *j = fc_request_to_json(r);
    FC_AUTO(request) struct fc_request *r2 = NULL;
    cr_assert_eq(fc_request_from_json(j, &r2), FC_OK, "%s", fc_error_msg());
    json_auto_t *j2 = fc_request_to_json(r2);
    cr_assert(json_equal(j, j2));
}

Test(request, selector_form)
{
    const char *s = REQ_HEAD "\"source\":{\"cloud\":\"source\"},\"target\":{\"cloud\":\"target\"},"
                             "\"selector\":{\"servers\":[\"web-1\",\"db-1\"]}}";
    FC_AUTO(request) struct fc_request *r = NULL;
    cr_assert_eq(fc_request_parse(s, strlen(s), &r), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(r->source_cloud, "source");
    cr_assert_eq(r->nservers, 2);
    cr_assert_null(r->plan);
}

Test(request, rejections)
{
    reject(REQ_HEAD "\"target\":{\"cloud\":\"t\"},\"selector\":{\"tag\":\"x\"}}", FC_E_INVALID,
           "source", "missing required field");
    reject(REQ_HEAD "\"source\":{\"cloud\":\"s\"},\"target\":{\"cloud\":\"t\"}}", FC_E_INVALID,
           "selector", "missing");
    reject(REQ_HEAD "\"source\":{\"cloud\":\"s\",\"password\":\"x\"},\"target\":{\"cloud\":\"t\"},"
                    "\"selector\":{\"tag\":\"x\"}}",
           FC_E_INVALID, "source.password", "unknown field");
    reject(REQ_HEAD "\"source\":{\"cloud\":\"s\"},\"target\":{\"cloud\":\"t\"},\"selector\":{}}",
           FC_E_INVALID, "selector", "names no servers and no tag");
    reject(REQ_HEAD "\"plan\":{\"relocation_id\":\"r-8\",\"tasks\":[" T("a", "[]") "]}}",
           FC_E_INVALID, "plan.relocation_id", "differs from the request's");
    reject(REQ_HEAD "\"plan\":{\"tasks\":[" T("a", "[\"nope\"]") "]}}", FC_E_INVALID,
           "plan.tasks[0].depends_on[0]", "unknown task \"nope\"");
    reject(REQ_HEAD "\"plan\":{\"tasks\":[" T("a", "[]") "]},\"options\":[]}", FC_E_INVALID,
           "options", "expected an object");
    static char deep[4096];
    size_t n = (size_t)snprintf(deep, sizeof deep, REQ_HEAD "\"plan\":{\"tasks\":[" T("a", "[]")
                                "]},\"options\":");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"k\":");
    n += (size_t)snprintf(deep + n, sizeof deep - n, "1");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(deep + n, sizeof deep - n, "}");
    snprintf(deep + n, sizeof deep - n, "}");
    fc_rc rc = fc_msg_validate(deep, strlen(deep), NULL);
    cr_assert_eq(rc, FC_E_INVALID);
    cr_assert(strstr(fc_error_msg(), "nested deeper than"), "%s", fc_error_msg());
}

#define TOPO(body) "{\"schema\":\"fluid.topology/1\",\"relocation_id\":\"\"," body "}"

Test(topology, valid_and_rejections)
{
    const char *ok = TOPO(
        "\"cloud\":\"source\",\"servers\":[{\"id\":\"s1\",\"name\":\"web\",\"flavor_id\":\"f1\","
        "\"image_id\":null,\"metadata\":{\"role\":\"web\"},\"tags\":[\"svc\"],"
        "\"volume_attachments\":[{\"volume_id\":\"v1\",\"device\":\"/dev/vdb\"}]}],"
        "\"flavors\":[{\"id\":\"f1\",\"name\":\"m1\",\"vcpus\":1,\"ram_mb\":512,\"disk_gb\":1}],"
        "\"security_groups\":[{\"id\":\"g1\",\"name\":\"web\",\"rules\":[{\"direction\":"
        "\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":80,\"port_range_max\":80,"
        "\"remote_group_id\":\"g2\"}]}],\"keypairs\":[{\"name\":\"k\",\"public_key\":\"ssh-ed25519 A\"}]");
    FC_AUTO(topology) struct fc_topology *t = NULL;
    cr_assert_eq(fc_topology_parse(ok, strlen(ok), &t), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(t->relocation_id, "");
    json_auto_t *j = fc_topology_to_json(t);
    cr_assert_eq(json_array_size(json_object_get(j, "servers")), 1);

    reject(TOPO("\"servers\":[{\"id\":\"s1\"}]"), FC_E_INVALID, "servers[0].name",
           "missing required field");
    reject(TOPO("\"flavors\":[{\"id\":\"f\",\"name\":\"m\",\"vcpus\":\"1\",\"ram_mb\":1,"
                "\"disk_gb\":1}]"),
           FC_E_INVALID, "flavors[0].vcpus", "expected an integer");
    reject(TOPO("\"security_groups\":[{\"id\":\"g\",\"name\":\"n\",\"rules\":[{\"direction\":"
                "\"in\",\"color\":1}]}]"),
           FC_E_INVALID, "security_groups[0].rules[0].color", "unknown field");
    reject(TOPO("\"volumes\":{}"), FC_E_INVALID, "volumes", "expected an array");
    reject(TOPO("\"clouds\":[]"), FC_E_INVALID, "clouds", "unknown field");
}

Test(conduit_msgs, round_trips_and_rejections)
{
    struct fc_reloc_event ev = {.relocation_id = "r-1", .state = FC_RS_FAILED,
                                .ts = "2026-11-23T15:20:01Z",
                                .tasks = {.total = 2, .done = 1, .failed = 1},
                                .error = "t-b: FC_E_CHILD"};
    json_auto_t *j = fc_reloc_event_to_json(&ev);
    char *text = fc_msg_dump(j);
    FC_AUTO(reloc_event) struct fc_reloc_event *e2 = NULL;
    cr_assert_eq(fc_reloc_event_parse(text, strlen(text), &e2), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(e2->state, FC_RS_FAILED);
    cr_assert_eq(e2->tasks.failed, 1);
    free(text);

    struct fc_rejected rj = {.relocation_id = "", .path = "plan.tasks[0].kind",
                             .reason = "plan.tasks[0].kind: unknown migrator kind \"x\""};
    json_auto_t *jr = fc_rejected_to_json(&rj);
    cr_assert_eq(fc_msg_validate_json(jr, FC_SCHEMA_REJECTED), FC_OK, "%s", fc_error_msg());

    struct fc_status_task tasks[] = {{"t-a", "checksum", "default", "queued", NULL, 0}};
    struct fc_status st = {.relocation_id = "r-1", .correlation_id = "c-1", .found = true,
                           .state = FC_RS_RUNNING, .tasks = tasks, .ntasks = 1};
    json_auto_t *js = fc_status_to_json(&st);
    cr_assert_eq(fc_msg_validate_json(js, NULL), FC_OK, "%s", fc_error_msg());
    json_object_set_new(js, "tasks", json_pack("[{s:s,s:s,s:s,s:s,s:i}]", "task_id", "t",
                                               "kind", "checksum", "site", "default", "state",
                                               "sleeping", "attempt", 0));
    cr_assert_eq(fc_msg_validate_json(js, NULL), FC_E_INVALID);
    cr_assert_str_eq(fc_msg_error_path(), "tasks[0].state");

    reject("{\"schema\":\"fluid.relocation/1\",\"relocation_id\":\"r\",\"state\":\"paused\","
           "\"ts\":\"2026-11-23T15:20:01Z\",\"tasks\":{}}",
           FC_E_INVALID, "state", "unknown state \"paused\"");
}

Test(plan, largest_plan_in_reverse_order)
{
    /* FC_TASKS_MAX tasks listed last-first: t0 depends on t1, ..., so the order reverses */
    static char buf[200000];
    size_t n = (size_t)snprintf(buf, sizeof buf,
                                "{\"schema\":\"fluid.plan/1\",\"relocation_id\":\"r\",\"tasks\":[");
    for (int i = 0; i < FC_TASKS_MAX; i++) {
        char dep[32] = "[]";
        if (i + 1 < FC_TASKS_MAX)
            snprintf(dep, sizeof dep, "[\"t%d\"]", i + 1);
        n += (size_t)snprintf(buf + n, sizeof buf - n,
                              "%s{\"task_id\":\"t%d\",\"stages\":[{\"kind\":\"test\"}],"
                              "\"depends_on\":%s}", i ? "," : "", i, dep);
    }
    snprintf(buf + n, sizeof buf - n, "]}");
    FC_AUTO(plan) struct fc_plan *p = NULL;
    cr_assert_eq(fc_plan_parse(buf, strlen(buf), &p), FC_OK, "%s", fc_error_msg());
    static size_t order[FC_TASKS_MAX];
    fc_plan_topo_order(p, order);
    for (size_t i = 0; i < FC_TASKS_MAX; i++)
        cr_assert_eq(order[i], FC_TASKS_MAX - 1 - i);
    /* one more is too many */
    n = strlen(buf) - 2;
    snprintf(buf + n, sizeof buf - n, ",{\"task_id\":\"x\",\"stages\":[{\"kind\":\"test\"}]}]}");
    fc_rc rc = fc_msg_validate(buf, strlen(buf), NULL);
    cr_assert_eq(rc, FC_E_INVALID);
    cr_assert_str_eq(fc_msg_error_path(), "tasks");
}
