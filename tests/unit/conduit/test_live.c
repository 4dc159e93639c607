/* SPDX-License-Identifier: Apache-2.0 */
/* fluidctl's live view without services (conduit/fluidctl/live_view.c): what a row shows in
 * each state (a step's own bytes only, what a done row moved), the rate and ETA of the
 * current transfer as progress events arrive, end and stall; and which server or volume the
 * conduit says each task of a real plan works for (conduit/daemon/subject.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "fluid/cloud/plan.h"
#include "fluid/cloud/topology.h"
#include "fluid/error.h"
#include "live_view.h"
#include "subject.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

static struct fc_live_task
task(const char *id, const char *step, const char *subject, const char *state)
{
    struct fc_live_task t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "%s", id);
    snprintf(t.step, sizeof t.step, "%s", step);
    snprintf(t.subject, sizeof t.subject, "%s", subject);
    snprintf(t.state, sizeof t.state, "%s", state);
    return t;
}

static void
bytes(struct fc_live_task *t, uint64_t done, uint64_t total, uint64_t ms)
{
    json_t *p = json_pack("{s:i,s:s,s:I,s:I}", "stage", 0, "kind", "openstack", "done",
                          (json_int_t)done, "total", (json_int_t)total);
    fc_live_task_event(t, "progress", p, ms);
    json_decref(p);
}

static void
waiting(struct fc_live_task *t, const char *state, unsigned s, uint64_t ms)
{
    json_t *p = json_pack("{s:i,s:s,s:i,s:i,s:s,s:s,s:s}", "stage", 0, "kind", "openstack",
                          "done", (int)s, "total", 1800, "unit", "seconds", "state", state,
                          "waiting_for", "server web-fc1");
    fc_live_task_event(t, "progress", p, ms);
    json_decref(p);
}

/* The server web after its image moved 512 KiB: snapshot and image done. */
static size_t
web_after_image(struct fc_live_task *t)
{
    t[0] = task("t-snapshot-1", "snapshot", "server web", "started");
    waiting(&t[0], "queued", 3, 1000);
    fc_live_task_event(&t[0], "done", NULL, 2000);
    t[1] = task("t-image-1", "image", "server web", "started");
    bytes(&t[1], 256 * KIB, 512 * KIB, 3000);
    bytes(&t[1], 512 * KIB, 512 * KIB, 4000);
    fc_live_task_event(&t[1], "done", NULL, 5000);
    t[2] = task("t-launch-1", "launch", "server web", "queued");
    t[3] = task("t-keypair-1", "keypair", "", "done");
    return 4;
}

static const struct fc_live_row *
row_of(const struct fc_live_row *r, size_t n, const char *subject)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(r[i].subject, subject))
            return &r[i];
    cr_assert_fail("no row for \"%s\"", subject);
    return NULL;
}

Test(live, a_launch_row_shows_no_bytes_of_the_image_step)
{
    struct fc_live_task t[4];
    struct fc_live_row r[4];
    size_t nt = web_after_image(t);
    fc_live_task_event(&t[2], "started", NULL, 6000);
    size_t n = fc_live_rows(t, nt, 6100, r, 4);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(r[0].subject, "", "the shared resources come first");
    const struct fc_live_row *w = row_of(r, n, "server web");
    cr_assert_str_eq(w->state, "running");
    cr_assert_str_eq(w->step, "launch");
    cr_assert_eq(w->done, 0, "the image step's bytes shown in the launch step");
    cr_assert_eq(w->total, 0);
    cr_assert_eq(w->rate, 0);
    cr_assert_eq(w->eta, -1);
    cr_assert_eq(w->moved, 512 * KIB);
    char line[512];
    fc_live_format_row(w, line, sizeof line, true);
    cr_assert_null(strstr(line, "KiB"), "%s", line);
    cr_assert_null(strstr(line, "B/s"), "%s", line);
    /* what it waits for on the cloud, once the action says so */
    waiting(&t[2], "BUILD", 12, 7000);
    n = fc_live_rows(t, nt, 7100, r, 4);
    w = row_of(r, n, "server web");
    cr_assert_str_eq(w->wait, "BUILD 12s");
    cr_assert_eq(w->done, 0);
    cr_assert_eq(w->total, 0, "a wait's seconds counted as bytes");
    fc_live_format_row(w, line, sizeof line, true);
    cr_assert_not_null(strstr(line, "waiting: BUILD 12s"), "%s", line);
    cr_assert_null(strstr(line, "KiB"), "%s", line);
    json_t *j = fc_live_row_json("r-1", w);
    cr_assert_eq(json_integer_value(json_object_get(j, "bytes")), 0);
    cr_assert_eq(json_integer_value(json_object_get(j, "rate_bps")), 0);
    cr_assert_eq(json_integer_value(json_object_get(j, "eta_s")), -1);
    cr_assert_eq(json_integer_value(json_object_get(j, "moved")), 512 * KIB);
    cr_assert_str_eq(json_string_value(json_object_get(j, "waiting")), "BUILD 12s");
    json_decref(j);
}

Test(live, a_done_row_shows_what_it_moved_without_rate_or_eta)
{
    struct fc_live_task t[4];
    struct fc_live_row r[4];
    size_t nt = web_after_image(t);
    fc_live_task_event(&t[2], "started", NULL, 6000);
    waiting(&t[2], "BUILD", 12, 7000);
    fc_live_task_event(&t[2], "done", NULL, 8000);
    size_t n = fc_live_rows(t, nt, 8100, r, 4);
    const struct fc_live_row *w = row_of(r, n, "server web");
    cr_assert_str_eq(w->state, "done");
    cr_assert_str_eq(w->step, "");
    cr_assert_str_eq(w->wait, "");
    cr_assert_eq(w->moved, 512 * KIB);
    cr_assert_eq(w->rate, 0);
    cr_assert_eq(w->eta, -1);
    char line[512];
    fc_live_format_row(w, line, sizeof line, true);
    cr_assert_not_null(strstr(line, "512.0 KiB moved"), "%s", line);
    cr_assert_null(strstr(line, "ETA"), "%s", line);
    cr_assert_null(strstr(line, "B/s"), "%s", line);
    /* the line compared when stdout is not a terminal: no bytes */
    fc_live_format_row(w, line, sizeof line, false);
    cr_assert_null(strstr(line, "moved"), "%s", line);
    /* the shared resources moved nothing: no byte column */
    fc_live_format_row(row_of(r, n, ""), line, sizeof line, true);
    cr_assert_not_null(strstr(line, "shared resources"), "%s", line);
    cr_assert_null(strstr(line, " B"), "%s", line);
}

Test(live, rate_and_eta_are_the_current_transfers)
{
    struct fc_live_task t = task("t-volume-1", "volume", "volume data", "started");
    struct fc_live_row r[1];
    const uint64_t total = 100 * MIB;
    /* 1 MiB/s; every other event from the import stage, 100 KiB behind the export */
    for (uint64_t s = 0; s <= 20; s++)
        bytes(&t, s % 2 ? s * MIB - 100 * KIB : s * MIB, total, 1000 * s);
    double rate = fc_live_task_rate(&t, 20000);
    cr_assert_float_eq(rate, (double)MIB, 1.0, "rate %.0f B/s", rate);
    size_t n = fc_live_rows(&t, 1, 20000, r, 1);
    cr_assert_eq(n, 1);
    cr_assert_eq(r[0].done, 20 * MIB);
    cr_assert_eq(r[0].total, total);
    cr_assert_eq(r[0].eta, 80, "eta %ld", r[0].eta);
    char line[512];
    fc_live_format_row(&r[0], line, sizeof line, true);
    cr_assert_not_null(strstr(line, "1.0 MiB/s"), "%s", line);
    cr_assert_not_null(strstr(line, "ETA 1m20s"), "%s", line);
    /* the rate follows the current speed (the last 10 s), not the whole history */
    for (uint64_t s = 21; s <= 40; s++)
        bytes(&t, 20 * MIB + (s - 20) * 2 * MIB, total, 1000 * s);
    rate = fc_live_task_rate(&t, 40000);
    cr_assert_float_eq(rate, 2.0 * MIB, 1.0, "rate %.0f B/s", rate);
    /* nothing reported for a whole window: stalled, no rate, no ETA */
    n = fc_live_rows(&t, 1, 40000 + FC_LIVE_WINDOW_MS + 1, r, 1);
    cr_assert_eq(r[0].rate, 0);
    cr_assert_eq(r[0].eta, -1);
    /* all bytes moved but the task still runs (the cloud makes the volume available) */
    bytes(&t, total, total, 41000);
    waiting(&t, "downloading", 2, 42000);
    n = fc_live_rows(&t, 1, 42000, r, 1);
    cr_assert_eq(r[0].rate, 0);
    cr_assert_eq(r[0].eta, -1);
    cr_assert_eq(r[0].done, total, "the wait's seconds replaced the bytes");
    /* ended: no rate, no ETA, in the JSON line too */
    fc_live_task_event(&t, "done", NULL, 43000);
    n = fc_live_rows(&t, 1, 43000, r, 1);
    json_t *j = fc_live_row_json("r-1", &r[0]);
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "done");
    cr_assert_eq(json_integer_value(json_object_get(j, "rate_bps")), 0);
    cr_assert_eq(json_integer_value(json_object_get(j, "eta_s")), -1);
    cr_assert_eq(json_integer_value(json_object_get(j, "moved")), (json_int_t)total);
    json_decref(j);
}

Test(live, a_new_attempt_moves_again_and_a_failure_keeps_its_bytes)
{
    struct fc_live_task t = task("t-image-1", "image", "server web", "started");
    struct fc_live_row r[1];
    bytes(&t, 0, 10 * MIB, 0);
    bytes(&t, 6 * MIB, 10 * MIB, 3000);
    fc_live_task_event(&t, "retrying", NULL, 4000);
    cr_assert_eq(fc_live_task_rate(&t, 4000), 0, "a task waiting to retry has a rate");
    fc_live_task_event(&t, "started", NULL, 9000);
    bytes(&t, 1 * MIB, 10 * MIB, 10000);
    size_t n = fc_live_rows(&t, 1, 10000, r, 1);
    cr_assert_eq(n, 1);
    cr_assert_eq(r[0].done, 1 * MIB, "the first attempt's bytes kept");
    bytes(&t, 3 * MIB, 10 * MIB, 12000);
    fc_live_task_event(&t, "failed", NULL, 13000);
    n = fc_live_rows(&t, 1, 13000, r, 1);
    cr_assert_str_eq(r[0].state, "failed");
    cr_assert_str_eq(r[0].step, "image");
    cr_assert_eq(r[0].done, 3 * MIB);
    cr_assert_eq(r[0].rate, 0);
    cr_assert_eq(r[0].eta, -1);
    char line[512];
    fc_live_format_row(&r[0], line, sizeof line, true);
    cr_assert_not_null(strstr(line, "3.0 MiB / 10.0 MiB"), "%s", line);
    cr_assert_null(strstr(line, "ETA"), "%s", line);
}

/* ---- subjects of a real plan ---------------------------------------------------------- */

static const char topo_text[] =
    "{\"schema\":\"fluid.topology/1\",\"relocation_id\":\"\",\"cloud\":\"source\","
    "\"servers\":["
    " {\"id\":\"s-web\",\"name\":\"web\",\"flavor_id\":\"f1\",\"image_id\":\"img1\","
    "  \"key_name\":\"ops\",\"port_ids\":[\"p-web\"],\"security_groups\":[\"g-web\"],"
    "  \"volume_attachments\":[]},"
    " {\"id\":\"s-db\",\"name\":\"db\",\"flavor_id\":\"f1\",\"image_id\":\"img1\","
    "  \"port_ids\":[\"p-db\"],\"security_groups\":[],"
    "  \"volume_attachments\":[{\"volume_id\":\"v1\",\"server_id\":\"s-db\","
    "   \"device\":\"/dev/vdb\"}]}],"
    "\"flavors\":[{\"id\":\"f1\",\"name\":\"m1.tiny\",\"vcpus\":1,\"ram_mb\":512,\"disk_gb\":1}],"
    "\"images\":[{\"id\":\"img1\",\"name\":\"tiny\",\"disk_format\":\"raw\"}],"
    "\"volumes\":[{\"id\":\"v1\",\"name\":\"data\",\"size_gb\":1,\"status\":\"in-use\"}],"
    "\"networks\":[{\"id\":\"n1\",\"name\":\"private\",\"mtu\":1500,\"subnet_ids\":[\"sn1\"]},"
    " {\"id\":\"ext\",\"name\":\"public\",\"external\":true}],"
    "\"subnets\":[{\"id\":\"sn1\",\"name\":\"private-v4\",\"network_id\":\"n1\","
    "  \"cidr\":\"10.10.0.0/24\",\"ip_version\":4,\"gateway_ip\":\"10.10.0.1\"}],"
    "\"routers\":[{\"id\":\"r1\",\"name\":\"gw\",\"external_network_id\":\"ext\","
    "  \"interfaces\":[{\"subnet_id\":\"sn1\",\"port_id\":\"p-r\",\"ip_address\":\"10.10.0.1\"}]}],"
    "\"ports\":[{\"id\":\"p-web\",\"network_id\":\"n1\","
    "  \"fixed_ips\":[{\"subnet_id\":\"sn1\",\"ip_address\":\"10.10.0.11\"}]},"
    " {\"id\":\"p-db\",\"network_id\":\"n1\","
    "  \"fixed_ips\":[{\"subnet_id\":\"sn1\",\"ip_address\":\"10.10.0.12\"}]}],"
    "\"floating_ips\":[{\"id\":\"fip1\",\"floating_ip_address\":\"203.0.113.20\","
    "  \"floating_network_id\":\"ext\",\"port_id\":\"p-web\",\"fixed_ip_address\":\"10.10.0.11\"}],"
    "\"security_groups\":[{\"id\":\"g-web\",\"name\":\"web\",\"rules\":["
    "   {\"id\":\"r-1\",\"direction\":\"ingress\",\"ethertype\":\"IPv4\",\"protocol\":\"tcp\","
    "    \"port_range_min\":80,\"port_range_max\":80,\"remote_ip_prefix\":\"0.0.0.0/0\"}]}],"
    "\"keypairs\":[{\"name\":\"ops\",\"public_key\":\"ssh-ed25519 AAAAC3 ops@x\"}]}";

static const char target_text[] =
    "{\"flavors\":[{\"id\":\"1\",\"name\":\"m1.tiny\",\"vcpus\":1,\"ram_mb\":512,\"disk_gb\":1}],"
    "\"keypairs\":[],\"security_groups\":[{\"id\":\"d\",\"name\":\"default\"}],"
    "\"networks\":[{\"id\":\"x\",\"name\":\"public\",\"external\":true}],\"subnets\":[],"
    "\"routers\":[],\"images\":[],\"servers\":[],\"volumes\":[],\"volume_types\":[],"
    "\"has_volume\":true,\"disk_formats\":[\"raw\",\"qcow2\"]}";

Test(subject, every_task_of_a_server_is_under_that_server)
{
    json_error_t je;
    json_auto_t *topo = json_loads(topo_text, 0, &je), *target = json_loads(target_text, 0, &je);
    cr_assert_not_null(topo, "%s", je.text);
    cr_assert_not_null(target);
    const struct fc_plan_opts o = {.src_cloud = "source", .dst_cloud = "target",
                                   .rules_doc = "{\"rules\":[]}"};
    json_auto_t *plan = NULL, *rep = NULL;
    cr_assert_eq(fc_plan_build(topo, target, &o, &plan, &rep), FC_OK, "%s", fc_error_msg());
    static const struct {
        const char *prefix, *subject;
    } want[] = {
        {"t-keypair-", ""},           {"t-secgroup-", ""},          {"t-sgrules-", ""},
        {"t-network-", ""},           {"t-subnet-", ""},            {"t-router-", ""},
        {"t-volume-", "volume data"}, {"t-snapshot-", NULL},        {"t-image-", NULL},
        {"t-launch-", NULL},          {"t-attach-", "server db"},   {"t-fip-", "server web"},
        {"t-config-", NULL},
    };
    size_t seen[sizeof want / sizeof *want] = {0}, i;
    json_t *t;
    json_array_foreach(json_object_get(plan, "tasks"), i, t) {
        const char *tid = json_string_value(json_object_get(t, "task_id"));
        char subj[300];
        fc_task_subject(json_object_get(rep, "creates"), t, subj, sizeof subj);
        size_t k = 0;
        while (k < sizeof want / sizeof *want && strncmp(tid, want[k].prefix,
                                                         strlen(want[k].prefix)) != 0)
            k++;
        cr_assert_lt(k, sizeof want / sizeof *want, "unexpected task %s", tid);
        seen[k]++;
        if (want[k].subject)
            cr_assert_str_eq(subj, want[k].subject, "task %s", tid);
        else /* one per server: web or db */
            cr_assert(!strcmp(subj, "server web") || !strcmp(subj, "server db"),
                      "task %s: \"%s\"", tid, subj);
    }
    for (size_t k = 0; k < sizeof want / sizeof *want; k++)
        cr_assert_gt(seen[k], 0, "no %s task in the plan", want[k].prefix);
    cr_assert_eq(seen[12], 2, "a config task per server");
    /* each config task under the server it rewrites */
    char b[300];
    size_t configs = 0;
    json_array_foreach(json_object_get(plan, "tasks"), i, t) {
        if (strncmp(json_string_value(json_object_get(t, "task_id")), "t-config-", 9) != 0)
            continue;
        fc_task_subject(json_object_get(rep, "creates"), t, b, sizeof b);
        json_t *args = json_object_get(json_array_get(json_object_get(t, "stages"), 0), "args");
        size_t k;
        json_t *x;
        json_array_foreach(args, k, x)
            if (!strcmp(json_string_value(x), "--server")) {
                char w[300];
                snprintf(w, sizeof w, "server %s",
                         json_string_value(json_array_get(args, k + 1)));
                cr_assert_str_eq(b, w);
                configs++;
            }
    }
    cr_assert_eq(configs, 2);
}
