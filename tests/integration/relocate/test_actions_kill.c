/* SPDX-License-Identifier: Apache-2.0 */
/* kill -9 in the middle of a relocation (devcloud + RabbitMQ fixtures, the real conduit and
 * two real brokers running fluid-openstack): once the relocated server's port (made first)
 * or the server itself exists on the target but its server-create has not finished, either the broker running that migrator or the
 * migrator itself is killed with SIGKILL. The relocation must still end `done` (the task is
 * redelivered to the other broker, or retried by the same one), and the target must hold
 * exactly one copy of each resource: one server, one port per source port, one image, one
 * keypair, two groups, one network. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cloud_test.h"
#include "devcloud_api.h"
#include "fluid/cloud/plan.h"
#include "fluid/error.h"
#include "reloc.h"

static struct svc made;
static char made_rid[64];

static void
teardown(void)
{
    tc_cleanup();
    if (made.sfx[0]) {
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
    free(pw_src);
    free(pw_dst);
}

TestSuite(actions_kill, .init = rl_setup, .fini = teardown, .timeout = 2400);

/* /proc/<pid>/cmdline with NULs turned into spaces ("" when gone). */
static void
cmdline(pid_t pid, char *out, size_t cap)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/cmdline", (int)pid);
    out[0] = '\0';
    FILE *f = fopen(p, "re");
    if (!f)
        return;
    size_t n = fread(out, 1, cap - 1, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (!out[i])
            out[i] = ' ';
    out[n] = '\0';
}

static pid_t
parent_of(pid_t pid)
{
    char p[64], buf[1024];
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(p, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *rp = strrchr(buf, ')'); /* "pid (comm) state ppid ..." */
    int ppid = -1;
    char st;
    if (!rp || sscanf(rp + 1, " %c %d", &st, &ppid) != 2)
        return -1;
    return (pid_t)ppid;
}

/* The fluid-openstack process running server-create for target server tn, or -1. */
static pid_t
find_server_create(const char *tn)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t found = -1;
    char cl[8192];
    while (d && (e = readdir(d)) && found < 0) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        cmdline((pid_t)pid, cl, sizeof cl);
        if (strstr(cl, "fluid-openstack ") && strstr(cl, " server-create ") && strstr(cl, tn))
            found = (pid_t)pid;
    }
    if (d)
        closedir(d);
    return found;
}

static void
nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Relocates the service; kills (SIGKILL) the broker or the migrator once the target server
 * exists while its server-create still runs; checks done + exactly one copy of each. */
static void
relocate_with_kill(const char *name, bool kill_broker)
{
    struct tc t;
    tc_init(&t, name);
    struct fc_os *src = dc_open(dc_source()), *dst = dc_open(dc_target());
    make_service(src, &made, kill_broker ? "kb" : "km");
    struct svc s = made;
    char rid[64];
    snprintf(rid, sizeof rid, "r-%s", s.sfx);
    snprintf(made_rid, sizeof made_rid, "%s", rid);
    prefill_snapshot(&t, rid, &s);
    char bad[64], conf[1200], out[65536];
    snprintf(bad, sizeof bad, "badsrc%d", (int)getpid());
    start_stack(&t, bad, conf);

    /* the request, published by amqp-publish; the relocation runs on its own */
    const char *pr[] = {"relocate", "--from", dc_source(), "--to", dc_target(), "--server",
                        s.server, "--relocation-id", rid, "--print", NULL};
    cr_assert_eq(fluidctl(&t, pr, out, sizeof out), 0);
    tc_amqp_publish_cli(&t, out);

    /* wait for server-create of the copy; kill once the server is on the target */
    char tn[300], path[400], cl[8192];
    fc_plan_target_name(rid, s.server, tn, sizeof tn);
    snprintf(path, sizeof path, "/servers/detail?name=%s", tn);
    bool killed = false;
    char p0[320], ppath[400];
    snprintf(p0, sizeof p0, "%s-port0", tn);
    snprintf(ppath, sizeof ppath, "/ports?name=%s", p0);
    for (int i = 0; i < 9000 && !killed; i++) { /* 100 ms apart: 15 minutes at most */
        if (find_server_create(tn) > 0 &&
            (count_named(dst, FC_SVC_NETWORK, ppath, "ports", p0) > 0 ||
             count_named(dst, FC_SVC_COMPUTE, path, "servers", tn) > 0)) {
            /* its port (made first) or the server exists: server-create has made something
             * and still runs (it waits for ACTIVE); looked up again right before the kill */
            pid_t mig = find_server_create(tn);
            cr_assert_gt(mig, 0, "server-create of %s finished before it could be killed", tn);
            pid_t victim = kill_broker ? parent_of(mig) : mig;
            if (victim <= 0)
                continue; /* it ended in between: the assertion above says so next time */
            cmdline(victim, cl, sizeof cl);
            if (!cl[0])
                continue;
            cr_assert(strstr(cl, kill_broker ? "fluid-broker " : "fluid-openstack "),
                      "process %d is not what it should be: %s", (int)victim, cl);
            if (kill(victim, SIGKILL) == 0) {
                killed = true;
                fprintf(stderr, "killed %s %d while server-create of %s ran (server %s)\n",
                        kill_broker ? "broker" : "migrator", (int)victim, tn,
                        count_named(dst, FC_SVC_COMPUTE, path, "servers", tn) ? "made"
                                                                              : "not yet made");
            }
        }
        if (!killed)
            nap_ms(100);
    }
    cr_assert(killed, "no server-create of %s ran within 15 minutes", tn);

    /* the same request followed to its end */
    int st = relocate(&t, dc_source(), s.server, rid, NULL, out, sizeof out);
    cr_assert_eq(st, 0, "relocation did not end done after the kill (exit %d):\n%s", st, out);
    check_target(dst, rid, &s);
    struct counts c;
    target_counts(dst, rid, &s, &c);
    cr_assert(c.servers == 1 && c.keys == 1 && c.groups == 2 && c.images == 1 &&
                  c.networks == 1,
              "target after the kill: %zu servers, %zu keypairs, %zu groups, %zu images, %zu "
              "networks", c.servers, c.keys, c.groups, c.images, c.networks);
    /* one port per source port: server-create names them <server>-port<i> */
    char port[320];
    snprintf(port, sizeof port, "%s-port0", tn);
    snprintf(path, sizeof path, "/ports?name=%s", port);
    cr_assert_eq(count_named(dst, FC_SVC_NETWORK, path, "ports", port), 1u,
                 "ports named %s on the target", port);
    snprintf(port, sizeof port, "%s-port1", tn);
    snprintf(path, sizeof path, "/ports?name=%s", port);
    cr_assert_eq(count_named(dst, FC_SVC_NETWORK, path, "ports", port), 0u);
    fc_os_close(src);
    fc_os_close(dst);
    tc_fini(&t);
}

Test(actions_kill, broker_killed_mid_server_create_relocation_completes_once)
{
    relocate_with_kill("akill-broker", true);
}

Test(actions_kill, migrator_killed_mid_server_create_relocation_completes_once)
{
    relocate_with_kill("akill-migrator", false);
}
