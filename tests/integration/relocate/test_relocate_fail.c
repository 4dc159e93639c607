/* SPDX-License-Identifier: Apache-2.0 */
/* A relocation whose task fails: the target project's server quota set to 0 (admin, restored
 * after), so the launch step fails after the keypair, groups, rules, network, subnet and the
 * image were made on the target. The relocation ends `failed` with a reason naming the launch
 * step; `fluidctl cleanup` deletes exactly what it made there (none of the target's resources
 * listed before it, all of the relocation's marks gone, the source untouched), and again
 * deletes nothing; a second relocation with --cleanup-on-failure is cleaned up by the conduit
 * on its own. `fluidctl resume` after the quota is restored: a third failed relocation runs
 * only its failed and cancelled tasks again and ends done with one copy of everything; the
 * cleaned-up second one runs every task again and ends done too. Same fake-driver snapshot
 * arrangement as test_relocate. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloud_test.h"
#include "devcloud_api.h"
#include "fluid/error.h"
#include "reloc.h"

static struct svc made;
static char made_rid[3][64];
static int saved_quota = -2; /* the target's instances quota while set to 0, else -2 */

static const char *
admin_cloud(void)
{
    const char *a = getenv("DEVCLOUD_CLOUD_ADMIN");
    return a && *a ? a : "devcloud-admin";
}

static void
set_quota(int instances)
{
    struct fc_os *dst = dc_open(dc_target()), *adm = dc_open(admin_cloud());
    cr_assert_eq(fc_os_authenticate(dst), FC_OK, "%s", fc_error_msg());
    const char *pid = fc_os_project_id(dst);
    if (instances == 0) {
        json_t *q = dc_call(adm, FC_SVC_COMPUTE, "GET", NULL, "/os-quota-sets/%s", pid);
        saved_quota = (int)json_integer_value(
            json_object_get(json_object_get(q, "quota_set"), "instances"));
        json_decref(q);
    }
    json_decref(dc_call(adm, FC_SVC_COMPUTE, "PUT",
                        /* force: Nova refuses a limit under the usage otherwise */
                        json_pack("{s:{s:i,s:b}}", "quota_set", "instances", instances,
                                  "force", 1),
                        "/os-quota-sets/%s", pid));
    if (instances != 0)
        saved_quota = -2;
    fc_os_close(dst);
    fc_os_close(adm);
}

static void
teardown(void)
{
    tc_cleanup();
    if (saved_quota != -2)
        set_quota(saved_quota);
    if (made.sfx[0]) {
        struct fc_os *src = dc_open(dc_source()), *dst = dc_open(dc_target());
        for (int i = 0; i < 3; i++)
            cleanup_cloud(src, dst, made_rid[i], &made);
        fc_os_close(src);
        fc_os_close(dst);
    }
    free(pw_src);
    free(pw_dst);
}

TestSuite(relocate_fail, .init = rl_setup, .fini = teardown, .timeout = 2400);

/* The ids of "  deleted KIND ID NAME" lines (fluidctl's cleanup table) into arr. */
static void
deleted_ids(const char *out, json_t *arr)
{
    const char *p = out;
    while ((p = strstr(p, "\n  deleted "))) {
        p += 1;
        /* "  deleted %-20s %-38s %s": the id starts at column 31 */
        const char *id = p + 31;
        size_t n = strcspn(id, " \n");
        if (n)
            json_array_append_new(arr, json_stringn(id, n));
    }
}

/* Nothing of `rid` is left on the target, and none of `deleted` existed before. */
static void
target_as_before(struct fc_os *dst, const json_t *before, const char *rid, const json_t *deleted)
{
    json_t *m = target_marked(dst, rid);
    char *d = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_eq(json_object_size(m), 0, "the target still holds resources of %s: %s", rid, d);
    free(d);
    json_decref(m);
    size_t i;
    json_t *e;
    json_array_foreach(deleted, i, e)
        cr_assert(!ids_have(before, json_string_value(e)),
                  "cleanup of %s deleted %s, which was on the target before", rid,
                  json_string_value(e));
}

Test(relocate_fail, quota_failure_named_then_cleanup_leaves_target_as_before)
{
    struct tc t;
    tc_init(&t, "relocfail");
    struct fc_os *src = dc_open(dc_source()), *dst = dc_open(dc_target());
    make_service(src, &made, "f");
    struct svc s = made;
    for (int i = 0; i < 3; i++) {
        snprintf(made_rid[i], sizeof made_rid[i], "r-%s-%c", s.sfx, "abc"[i]);
        prefill_snapshot(&t, made_rid[i], &s);
    }
    char bad[64], conf[1200], out[65536];
    snprintf(bad, sizeof bad, "badsrc%d", (int)getpid());
    start_stack(&t, bad, conf);
    json_t *before = target_ids(dst);

    /* the launch step fails: failed, naming it */
    set_quota(0);
    int st = relocate(&t, dc_source(), s.server, made_rid[0], NULL, out, sizeof out);
    set_quota(saved_quota);
    cr_assert_eq(st, 1, "quota 0: exit %d, not 1 (failed):\n%s", st, out);
    cr_assert(strstr(out, " failed: step launch (task t-launch-"),
              "the reason does not name the launch step:\n%s", out);
    cr_assert(strstr(out, "uota"), "the reason does not say the quota:\n%s", out);
    json_t *m = target_marked(dst, made_rid[0]);
    cr_assert_geq(json_object_size(m), 3, "the failed relocation made nearly nothing on the "
                  "target: cleanup would prove nothing");
    json_decref(m);

    /* fluidctl cleanup: exactly what the relocation made, then nothing */
    const char *cl[] = {"cleanup", "--json", made_rid[0], NULL};
    cr_assert_eq(fluidctl(&t, cl, out, sizeof out), 0, "fluidctl cleanup");
    json_error_t je;
    json_t *rec = json_loads(out, 0, &je);
    cr_assert_not_null(rec, "cleanup --json: %s", je.text);
    json_t *ids = json_array(), *e;
    size_t i;
    json_array_foreach(json_object_get(rec, "deleted"), i, e)
        json_array_append_new(ids, json_string(rs(e, "id")));
    cr_assert_geq(json_array_size(ids), 5, "cleanup deleted only %zu resources",
                  json_array_size(ids));
    cr_assert_eq(json_array_size(json_object_get(rec, "errors")), 0, "cleanup errors: %s", out);
    json_decref(rec);
    target_as_before(dst, before, made_rid[0], ids);
    json_decref(ids);
    cr_assert_eq(fluidctl(&t, cl, out, sizeof out), 0, "fluidctl cleanup, again");
    rec = json_loads(out, 0, &je);
    cr_assert_not_null(rec, "cleanup --json: %s", je.text);
    cr_assert_eq(json_array_size(json_object_get(rec, "deleted")), 0,
                 "the second cleanup deleted something: %s", out);
    json_decref(rec);
    /* the source is untouched */
    json_t *srv = dc_call(src, FC_SVC_COMPUTE, "GET", NULL, "/servers/%s", s.server_id);
    cr_assert_str_eq(rs(json_object_get(srv, "server"), "status"), "ACTIVE");
    json_decref(srv);
    json_decref(dc_call(src, FC_SVC_NETWORK, "GET", NULL, "/security-groups/%s", s.sga_id));
    json_decref(dc_call(src, FC_SVC_NETWORK, "GET", NULL, "/networks/%s", s.net_id));

    /* --cleanup-on-failure: the conduit cleans up by itself; the live view ends with it */
    const char *opt[] = {"--cleanup-on-failure", NULL};
    set_quota(0);
    st = relocate(&t, dc_source(), s.server, made_rid[1], opt, out, sizeof out);
    set_quota(saved_quota);
    cr_assert_eq(st, 1, "quota 0 with --cleanup-on-failure: exit %d:\n%s", st, out);
    char want[200];
    snprintf(want, sizeof want, "cleanup of %s on %s: ", made_rid[1], dc_target());
    cr_assert(strstr(out, want) && strstr(out, " 0 error(s)"), "no clean cleanup record:\n%s",
              out);
    ids = json_array();
    deleted_ids(out, ids);
    cr_assert_geq(json_array_size(ids), 5, "the automatic cleanup deleted %zu resources",
                  json_array_size(ids));
    target_as_before(dst, before, made_rid[1], ids);
    json_decref(ids);
    const char *cl2[] = {"cleanup", made_rid[1], NULL};
    cr_assert_eq(fluidctl(&t, cl2, out, sizeof out), 0);
    cr_assert(strstr(out, ": 0 deleted, 0 error(s)"), "cleanup after the automatic one:\n%s", out);

    /* resume: a failed relocation runs its failed and cancelled tasks again, nothing else */
    set_quota(0);
    st = relocate(&t, dc_source(), s.server, made_rid[2], NULL, out, sizeof out);
    set_quota(saved_quota);
    cr_assert_eq(st, 1, "quota 0 (third): exit %d:\n%s", st, out);
    const char *stq[] = {"status", "--json", made_rid[2], NULL};
    fluidctl(&t, stq, out, sizeof out); /* exit 1: the relocation failed */
    json_t *sj = json_loads(out, 0, &je);
    cr_assert_not_null(sj, "status --json: %s", je.text);
    size_t done_before = 0, rerun = 0, ntasks = json_array_size(json_object_get(sj, "tasks"));
    json_array_foreach(json_object_get(sj, "tasks"), i, e) {
        const char *ts = rs(e, "state");
        done_before += !strcmp(ts, "done");
        rerun += !strcmp(ts, "failed") || !strcmp(ts, "cancelled");
    }
    json_decref(sj);
    cr_assert_geq(done_before, 3, "the failed relocation had done only %zu tasks", done_before);
    cr_assert_eq(done_before + rerun, ntasks, "a task of the failed relocation is in flight");
    const char *re[] = {"resume", "--watch", "--timeout", "1500", made_rid[2], NULL};
    st = fluidctl(&t, re, out, sizeof out);
    cr_assert_eq(st, 0, "resume of %s: exit %d:\n%s", made_rid[2], st, out);
    char line[200];
    snprintf(line, sizeof line, "relocation %s resumed: %zu task%s run again\n", made_rid[2],
             rerun, rerun == 1 ? "" : "s");
    cr_assert_not_null(strstr(out, line) ? out : NULL, "want \"%s\" in:\n%s", line, out);
    check_target(dst, made_rid[2], &s);
    struct counts c3;
    target_counts(dst, made_rid[2], &s, &c3);
    cr_assert(c3.servers == 1 && c3.keys == 1 && c3.groups == 2 && c3.images == 1 &&
                  c3.networks == 1,
              "resumed: %zu servers, %zu keypairs, %zu groups, %zu images, %zu networks",
              c3.servers, c3.keys, c3.groups, c3.images, c3.networks);
    /* done: nothing to resume */
    const char *re2[] = {"resume", made_rid[2], NULL};
    cr_assert_eq(fluidctl(&t, re2, out, sizeof out), 3, "resume of a done relocation");

    /* resume after the automatic cleanup: every task runs again; one copy of everything */
    const char *re3[] = {"resume", "--watch", "--timeout", "1500", made_rid[1], NULL};
    st = fluidctl(&t, re3, out, sizeof out);
    cr_assert_eq(st, 0, "resume of the cleaned-up %s: exit %d:\n%s", made_rid[1], st, out);
    cr_assert(strstr(out, "(every task: it was cleaned up)"), "not a full re-run:\n%s", out);
    check_target(dst, made_rid[1], &s);

    /* an unknown relocation is not found */
    const char *cl3[] = {"cleanup", "r-nosuch-relocation", NULL};
    cr_assert_eq(fluidctl(&t, cl3, out, sizeof out), 5);

    tc_conduit_stop(&t, 15);
    logs_hold_no_password(t.dir);
    json_decref(before);
    fc_os_close(src);
    fc_os_close(dst);
    tc_fini(&t);
}
