/* SPDX-License-Identifier: Apache-2.0 */
/* The plan of `fluidctl plan` runs as it is: a one-server service (network, router, two
 * security groups whose rules name each other, keypair, floating IP) is made in the source
 * project, planned to the target, and every task's stages are run as the broker runs them
 * (--task-fd with the task, --events-fd, stages joined by pipes) in dependency order. The
 * fake driver's snapshot is filled first with --test-upload under the plan's own name. A
 * second run of the whole plan creates nothing (every resource "reused", counts equal). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloud_test.h"
#include "devcloud_api.h"
#include "fluid/error.h"
#include "fluid/spawn.h"
#include "os_run.h"

static void
setup(void)
{
    dc_setup();
}

TestSuite(plan, .init = setup, .timeout = 1800);

static void
mk(const char *const *args)
{
    struct osr r;
    osr_run(&r, -1, -1, args);
    cr_assert_eq(r.exit, 0, "%s: %s", args[0], r.err);
    osr_free(&r);
}

Test(plan, runs_as_planned_then_reuses_everything)
{
    const char *bin = getenv("FLUID_BIN_DIR"), *src = dc_source();
    int pid = (int)getpid();
    char net[40], sub[40], rt[40], web[40], db[40], kp[40], srv[40], tag[40], port[80];
    char rule_db[160], seed[40], cidr[40];
    snprintf(net, sizeof net, "pn%d", pid);
    snprintf(sub, sizeof sub, "ps%d", pid);
    snprintf(rt, sizeof rt, "pr%d", pid);
    snprintf(web, sizeof web, "pweb%d", pid);
    snprintf(db, sizeof db, "pdb%d", pid);
    snprintf(kp, sizeof kp, "pkp%d", pid);
    snprintf(srv, sizeof srv, "psrv%d", pid);
    snprintf(tag, sizeof tag, "app%d", pid);
    snprintf(seed, sizeof seed, "r-seed%d", pid);
    snprintf(cidr, sizeof cidr, "10.%d.9.0/24", 100 + pid % 100);
    snprintf(port, sizeof port, "network=%s", net);
    snprintf(rule_db, sizeof rule_db, "direction=ingress,protocol=tcp,port_min=5432,"
                                      "port_max=5432,remote_group=%s", web);
    char tagj[60];
    snprintf(tagj, sizeof tagj, "[\"%s\"]", tag);
#define SRC "--cloud", src, "--relocation-id", seed
    mk((const char *[]){"network-create", SRC, "--name", net, NULL});
    mk((const char *[]){"subnet-create", SRC, "--network", net, "--name", sub, "--cidr", cidr,
                        "--dhcp", NULL});
    mk((const char *[]){"router-create", SRC, "--name", rt, "--external-network",
                        dc_external_network(), "--subnet", sub, NULL});
    mk((const char *[]){"keypair-import", SRC, "--name", kp, "--public-key",
                        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFwMhP0dWfXKH5Zk0Xn1rQ0aF7mQb0V3"
                        "Zs3Xj2m8Kx1y plan-test", NULL});
    mk((const char *[]){"secgroup-create", SRC, "--name", web, NULL});
    mk((const char *[]){"secgroup-create", SRC, "--name", db, NULL});
    mk((const char *[]){"secgroup-rules", SRC, "--group", db, "--rule", rule_db, NULL});
    mk((const char *[]){"server-create", SRC, "--name", srv, "--flavor", "m1.tiny", "--image",
                        "devcloud-tiny", "--key-name", kp, "--security-group", web,
                        "--security-group", db, "--port", port, "--tags-json", tagj, NULL});
    mk((const char *[]){"floating-ip", SRC, "--server", srv, "--external-network",
                        dc_external_network(), NULL});
#undef SRC
    /* the plan, as fluidctl writes it */
    char prog[1024], *out = malloc(1 << 20), *err = malloc(65536);
    snprintf(prog, sizeof prog, "%s/fluidctl", bin);
    const char *pa[] = {prog, "plan", "--from", src, "--to", dc_target(), "--tag", tag,
                        "--json", NULL};
    int st = 0;
    cr_assert_eq(fc_run(pa, out, 1 << 20, err, 65536, &st), FC_OK, "%s", fc_error_msg());
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fluidctl plan: %s", err);
    json_t *plan = json_loads(out, 0, NULL);
    cr_assert_not_null(plan, "fluidctl plan --json: %s", out);
    free(out);
    free(err);
    const char *rid = json_string_value(json_object_get(plan, "relocation_id"));
    /* the fake driver's snapshot: filled first, under the name the plan gives it */
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(plan, "tasks"), i, t) {
        json_t *st0 = json_array_get(json_object_get(t, "stages"), 0);
        json_t *args = json_object_get(st0, "args");
        if (strcmp(json_string_value(json_array_get(args, 0)), "snapshot") != 0)
            continue;
        char data[] = "/tmp/fluid-osplan-data-XXXXXX";
        int fd = mkstemp(data);
        char blk[65536];
        memset(blk, 0x5a, sizeof blk);
        cr_assert_eq(write(fd, blk, sizeof blk), (ssize_t)sizeof blk);
        close(fd);
        const char *sa[] = {"snapshot", "--cloud", src, "--relocation-id", rid, "--server",
                            json_string_value(json_array_get(args, 4)), "--name",
                            json_string_value(json_array_get(args, 6)), "--test-upload", data,
                            "--timeout", "300", NULL};
        cr_assert_str_eq(json_string_value(json_array_get(args, 5)), "--name");
        mk(sa);
        unlink(data);
    }
    struct fc_os *dst = dc_open(dc_target());
    size_t c1 = osr_run_plan(plan);
    cr_assert_geq(c1, 10u, "the first run created only %zu resources", c1);
    /* what this relocation made: names with its suffix, rules with its marker */
    char mark[80];
    snprintf(mark, sizeof mark, "fluid-relocation=%s", rid);
    size_t servers = osr_count_matching(dst, FC_SVC_COMPUTE, "/servers", "servers", "name", srv);
    size_t fips = osr_count_matching(dst, FC_SVC_NETWORK, "/floatingips", "floatingips",
                                     "description", rid);
    size_t rules = osr_count_matching(dst, FC_SVC_NETWORK, "/security-group-rules",
                                      "security_group_rules", "description", mark);
    size_t images = osr_count_matching(dst, FC_SVC_IMAGE, "/images", "images", "name", srv);
    cr_assert_eq(servers, 1u);
    cr_assert_eq(fips, 1u);
    cr_assert_eq(images, 1u);
    cr_assert_geq(rules, 1u, "the db group's rule naming the web group's copy");
    size_t c2 = osr_run_plan(plan);
    cr_assert_eq(c2, 0u, "the second run created %zu resources", c2);
    cr_assert_eq(osr_count_matching(dst, FC_SVC_COMPUTE, "/servers", "servers", "name", srv),
                 servers);
    cr_assert_eq(osr_count_matching(dst, FC_SVC_NETWORK, "/floatingips", "floatingips",
                                    "description", rid), fips);
    cr_assert_eq(osr_count_matching(dst, FC_SVC_NETWORK, "/security-group-rules",
                                    "security_group_rules", "description", mark), rules);
    cr_assert_eq(osr_count_matching(dst, FC_SVC_IMAGE, "/images", "images", "name", srv),
                 images);
    /* the relocated server, read back */
    json_t *l = dc_call(dst, FC_SVC_COMPUTE, "GET", NULL, "/servers/detail?tags=%s", tag);
    json_t *s = json_array_get(json_object_get(l, "servers"), 0);
    cr_assert_not_null(s, "no server tagged %s on the target", tag);
    cr_assert_str_eq(json_string_value(json_object_get(s, "status")), "ACTIVE");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(s, "metadata"),
                                                       "fluid_relocation")), rid);
    cr_assert_eq(json_array_size(json_object_get(s, "security_groups")), 2u);
    json_decref(l);
    json_decref(plan);
    fc_os_close(dst);
}
