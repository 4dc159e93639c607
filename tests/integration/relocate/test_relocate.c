/* SPDX-License-Identifier: Apache-2.0 */
/* `fluidctl relocate` end to end on the devcloud: a small service of project `source` (one
 * server with a keypair, metadata, a private network and two security groups whose rules
 * name each other) is relocated to project `target` by fluid-conduit (which plans the
 * request itself) and two real fluid-broker processes running fluid-openstack. The request
 * comes from Debian's amqp-publish (a client that is not ours); the conduit is killed (-9)
 * while the relocation runs and restarted; fluidctl's live view ends with the overview (no
 * difference); the target is read back; the same request again (after another kill -9)
 * creates nothing; planning failures end `failed` naming the step; no log, no event and
 * not the store hold a password or a token.
 * Nova's fake driver never uploads a snapshot: the test makes the relocation's snapshot
 * beforehand with `fluid-openstack snapshot --test-upload` (same derived name, same
 * relocation marker), so the plan's snapshot task reuses it and everything after it
 * (image export | import, launch) runs for real. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cloud_test.h"
#include "devcloud_api.h"
#include "fluid/amqp_names.h"
#include "fluid/cloud/plan.h"
#include "fluid/error.h"
#include "reloc.h"

static void cleanup_all(void);

static void
teardown(void)
{
    tc_cleanup();
    cleanup_all();
    free(pw_src);
    free(pw_dst);
}

/* What the test made, for the suite's .fini (also after a failed assertion). */
static struct svc made;
static char made_rid[64];

static void
cleanup_all(void)
{
    if (!made.sfx[0])
        return;
    struct fc_os *src = dc_open(dc_source()), *dst = dc_open(dc_target());
    cleanup_cloud(src, dst, made_rid, &made);
    fc_os_close(src);
    fc_os_close(dst);
    free(made.net_id);
    free(made.sga_id);
    free(made.sgb_id);
    free(made.server_id);
    free(made.flavor_id);
    memset(&made, 0, sizeof made);
}

TestSuite(relocate, .init = rl_setup, .fini = teardown, .timeout = 2400);

/* Waits (at most secs) until file holds `what` (and `also`, when not NULL) on one line. */
static void
wait_log(const char *file, const char *what, const char *also, int secs)
{
    for (int i = 0; i < secs * 5; i++) {
        FILE *f = fopen(file, "r");
        char line[16384];
        while (f && fgets(line, sizeof line, f))
            if (strstr(line, what) && (!also || strstr(line, also))) {
                fclose(f);
                return;
            }
        if (f)
            fclose(f);
        struct timespec ts = {0, 200000000};
        nanosleep(&ts, NULL);
    }
    cr_assert_fail("%s: no line with \"%s\" within %d s", file, what, secs);
}

static char *
dump(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_not_null(s);
    return s;
}

/* usage.<side>.servers holds id */
static bool
usage_has(const json_t *ov, const char *side, const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(json_object_get(json_object_get(ov, "usage"), side),
                                       "servers"), i, e)
        if (rs(e, "id") && !strcmp(rs(e, "id"), id))
            return true;
    return false;
}

Test(relocate, service_relocated_once_failures_named_no_password)
{
    struct tc t;
    tc_init(&t, "relocate");
    struct fc_os *src = dc_open(dc_source()), *dst = dc_open(dc_target());
    make_service(src, &made, NULL); /* filled as it goes: cleanup_all removes what exists */
    struct svc s = made;            /* the same ids (freed by cleanup_all) */
    char rid[64];
    snprintf(rid, sizeof rid, "r-%s", s.sfx);
    snprintf(made_rid, sizeof made_rid, "%s", rid);
    prefill_snapshot(&t, rid, &s);

    /* every relocation event of the vhost is kept in a durable queue of the test's, read at
     * the end */
    char evq[128];
    snprintf(evq, sizeof evq, "test.relocate.events.%d", (int)getpid());
    struct fc_amqp *a = tc_amqp(&t);
    /* (not the brokers' heartbeats: they never stop) */
    cr_assert_eq(fc_amqp_declare_record(a, evq, FC_AMQP_X_EVENTS, "relocation.#", 0, NULL), FC_OK,
                 "%s", fc_error_msg());
    cr_assert_eq(fc_amqp_declare_record(a, evq, FC_AMQP_X_EVENTS, "request.#", 0, NULL), FC_OK,
                 "%s", fc_error_msg());
    fc_amqp_close(a);

    char bad[64], conf[1200], out[65536];
    snprintf(bad, sizeof bad, "badsrc%d", (int)getpid());
    start_stack(&t, bad, conf);
    const char *extra[] = {"--config", conf, NULL};

    /* the request, printed by fluidctl into a file, published by amqp-publish */
    const char *pr[] = {"relocate", "--from", dc_source(), "--to", dc_target(), "--server",
                        s.server, "--relocation-id", rid, "--print", NULL};
    cr_assert_eq(fluidctl(&t, pr, out, sizeof out), 0);
    char reqf[1200];
    snprintf(reqf, sizeof reqf, "%s/request.json", t.dir);
    FILE *f = fopen(reqf, "w");
    cr_assert(f && fputs(out, f) >= 0 && fclose(f) == 0, "%s", reqf);
    char *body = slurp_file(reqf, NULL);
    tc_amqp_publish_cli(&t, body);
    free(body);

    /* the conduit killed (-9) as soon as it recorded the plan (its first tasks are being
     * published), restarted */
    char log1[1200];
    snprintf(log1, sizeof log1, "%s/conduit-1.log", t.dir);
    wait_log(log1, "\"relocation accepted\"", rid, 600);
    tc_conduit_stop(&t, SIGKILL);
    tc_conduit_start(&t, extra);

    /* fluidctl relocate of the same request: recorded already; its live view follows the
     * relocation to its end and prints the overview */
    int st = relocate(&t, dc_source(), s.server, rid, NULL, out, sizeof out);
    cr_assert_eq(st, 0, "relocation did not end done (exit %d):\n%s", st, out);
    char want[400];
    snprintf(want, sizeof want, "overview of %s (%s -> %s): ", rid, dc_source(), dc_target());
    cr_assert(strstr(out, want) && strstr(out, " 0 difference(s)"),
              "no overview without differences at the end of:\n%s", out);
    snprintf(want, sizeof want, "server %s ", s.server);
    cr_assert(strstr(out, want), "no line for server %s in the live view:\n%s", s.server, out);
    check_target(dst, rid, &s);
    struct counts c1, c2;
    target_counts(dst, rid, &s, &c1);
    cr_assert(c1.servers == 1 && c1.keys == 1 && c1.groups == 2 && c1.images == 1 &&
                  c1.networks == 1,
              "target: %zu servers, %zu keypairs, %zu groups, %zu images, %zu networks",
              c1.servers, c1.keys, c1.groups, c1.images, c1.networks);
    /* planned once, by the conduit that received amqp-publish's request */
    char log2[1200];
    snprintf(log2, sizeof log2, "%s/conduit-2.log", t.dir);
    char *l1 = slurp_file(log1, NULL), *l2 = slurp_file(log2, NULL);
    cr_assert(strstr(l1, "\"relocation planned\"") && !strstr(l2, "\"relocation planned\""),
              "the request was not planned exactly once, by the first conduit");
    free(l1);
    free(l2);

    /* the overview: every field compared equal, usage of the server on both sides */
    const char *ov[] = {"overview", "--json", rid, NULL};
    cr_assert_eq(fluidctl(&t, ov, out, sizeof out), 0, "fluidctl overview");
    json_error_t je;
    json_t *o = json_loads(out, 0, &je);
    cr_assert_not_null(o, "overview --json: %s", je.text);
    char *d = dump(json_object_get(o, "differences"));
    cr_assert_eq(json_array_size(json_object_get(o, "differences")), 0, "differences: %s", d);
    free(d);
    cr_assert_geq(json_integer_value(json_object_get(o, "compared")), 20);
    const json_t *pair = json_array_get(json_object_get(o, "servers"), 0);
    char tn[300];
    fc_plan_target_name(rid, s.server, tn, sizeof tn);
    cr_assert_str_eq(rs(pair, "source_id"), s.server_id);
    cr_assert_str_eq(rs(pair, "target_name"), tn);
    cr_assert(usage_has(o, "source", s.server_id), "no source usage of %s", s.server_id);
    cr_assert(usage_has(o, "target", rs(pair, "target_id")), "no target usage of %s",
              rs(pair, "target_id"));
    /* the intermediate snapshot on the source is gone, and the overview says so; the
     * relocated server's own image on the target stays (c1.images above) */
    char snap[320], spath[400];
    snprintf(snap, sizeof snap, "%s-snap", tn);
    snprintf(spath, sizeof spath, "/images?name=%s", snap);
    cr_assert_eq(count_named(src, FC_SVC_IMAGE, spath, "images", snap), 0u,
                 "intermediate snapshot %s still on the source", snap);
    const json_t *im = json_object_get(o, "intermediates");
    d = dump(json_object_get(im, "deleted"));
    cr_assert(json_is_false(json_object_get(im, "kept")) && strstr(d, snap),
              "overview.intermediates.deleted does not name %s: %s", snap, d);
    free(d);
    cr_assert_eq(json_array_size(json_object_get(im, "errors")), 0);
    json_decref(o);

    /* the conduit killed and restarted, then the same request again: done at once from the
     * stored plan (not planned again), the target's resources of this relocation unchanged */
    json_t *m1 = target_marked(dst, rid);
    tc_conduit_stop(&t, SIGKILL);
    tc_conduit_start(&t, extra);
    const char *js[] = {"--json", NULL};
    st = relocate(&t, dc_source(), s.server, rid, js, out, sizeof out);
    cr_assert_eq(st, 0, "re-submitted relocation: exit %d:\n%s", st, out);
    /* --json: JSON lines, the last one with the state and the overview */
    char *last = out + strlen(out);
    while (last > out && last[-1] == '\n')
        *--last = '\0';
    last = strrchr(out, '\n') ? strrchr(out, '\n') + 1 : out;
    json_t *end = json_loads(last, 0, &je);
    cr_assert_not_null(end, "last line of relocate --json is not JSON: %s", last);
    cr_assert_str_eq(rs(end, "schema"), "fluidctl.live/1");
    cr_assert_str_eq(rs(end, "state"), "done");
    cr_assert_eq(json_array_size(json_object_get(json_object_get(end, "overview"), "differences")),
                 0);
    cr_assert(json_is_array(json_object_get(json_object_get(end, "overview"), "differences")),
              "no overview in %s", last);
    json_decref(end);
    target_counts(dst, rid, &s, &c2);
    json_t *m2 = target_marked(dst, rid);
    char *d1 = dump(m1), *d2 = dump(m2);
    cr_assert_str_eq(d1, d2, "the second run changed the target");
    free(d1);
    free(d2);
    json_decref(m1);
    json_decref(m2);
    char log3[1200];
    snprintf(log3, sizeof log3, "%s/conduit-3.log", t.dir);
    FILE *lf = fopen(log3, "r");
    cr_assert_not_null(lf, "%s", log3);
    char line[8192];
    bool recorded = false;
    while (fgets(line, sizeof line, lf)) {
        cr_assert(!strstr(line, "relocation planned") && !strstr(line, "planning a relocation"),
                  "the restarted conduit planned the re-submitted request again: %s", line);
        recorded = recorded || (strstr(line, "request already recorded") && strstr(line, rid));
    }
    fclose(lf);
    cr_assert(recorded, "%s: the re-submitted request was not recognised", log3);
    cr_assert(!memcmp(&c1, &c2, sizeof c1), "the second run changed the target: servers %zu->%zu "
              "rules %zu->%zu / %zu->%zu", c1.servers, c2.servers, c1.rules_a, c2.rules_a,
              c1.rules_b, c2.rules_b);

    /* planning failures end the relocation failed, naming the step */
    st = relocate(&t, bad, s.server, NULL, NULL, out, sizeof out);
    cr_assert_eq(st, 1, "wrong password: exit %d", st);
    snprintf(want, sizeof want, " failed: planning: inspect source cloud \"%s\": FC_E_AUTH", bad);
    cr_assert(strstr(out, want), "wrong password: want \"%s\" in: %s", want, out);
    char nosuch[64];
    snprintf(nosuch, sizeof nosuch, "nosuchcloud%d", (int)getpid());
    st = relocate(&t, nosuch, s.server, NULL, NULL, out, sizeof out);
    cr_assert_eq(st, 1, "unknown cloud: exit %d", st);
    snprintf(want, sizeof want, "planning: open source cloud \"%s\": ", nosuch);
    cr_assert(strstr(out, want) && strstr(out, " failed"), "unknown cloud: want \"%s\" in: %s",
              want, out);
    char ghost[64];
    snprintf(ghost, sizeof ghost, "ghost%d", (int)getpid());
    st = relocate(&t, dc_source(), ghost, NULL, NULL, out, sizeof out);
    cr_assert_eq(st, 1, "unknown server: exit %d", st);
    snprintf(want, sizeof want, "planning: inspect source cloud \"%s\": ", dc_source());
    cr_assert(strstr(out, want) && strstr(out, ghost) && strstr(out, " failed"),
              "unknown server: want \"%s\" and %s in: %s", want, ghost, out);

    /* no password (the clouds' or the planted one) nor token: logs, store, events */
    tc_conduit_stop(&t, SIGTERM);
    logs_hold_no_password(t.dir);
    const char *store[] = {"conduit.db", "conduit.db-wal"};
    for (int i = 0; i < 2; i++) {
        char p[1300];
        snprintf(p, sizeof p, "%s/state/%s", t.dir, store[i]);
        if (i == 1 && access(p, F_OK) != 0)
            continue;
        size_t len;
        char *b = slurp_file(p, &len);
        cr_assert_gt(len, 0, "%s is empty", p);
        const char *sec[] = {pw_src, pw_dst, planted, "gAAAAA"};
        for (int k = 0; k < 4; k++)
            bytes_no_secret(b, len, sec[k], p);
        free(b);
    }
    a = tc_amqp(&t);
    cr_assert_eq(fc_amqp_consume(a, evq, 64), FC_OK, "%s", fc_error_msg());
    size_t events = 0;
    for (;;) {
        struct fc_amqp_delivery *ev = NULL;
        cr_assert_eq(fc_amqp_wait(a, 2000, &ev), FC_OK, "%s", fc_error_msg());
        if (!ev)
            break;
        const char *sec[] = {pw_src, pw_dst, planted, "gAAAAA"};
        for (int k = 0; k < 4; k++)
            bytes_no_secret(ev->body, ev->len, sec[k], "an event on fluid.events");
        events++;
        fc_amqp_ack(a, ev);
        fc_amqp_delivery_free(ev);
    }
    fc_amqp_close(a);
    cr_assert_geq(events, 20, "only %zu events captured", events);
    cleanup_all();
    fc_os_close(src);
    fc_os_close(dst);
    tc_fini(&t);
}
