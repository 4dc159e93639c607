// SPDX-License-Identifier: Apache-2.0
// A connection lost in the middle of a copy: this test starts its own sshd (the fixture
// script with a private folder), feeds fluid-volume half of a volume, cuts the connection
// once the destination holds part of it, and checks the error (how far it got, nothing
// claims completeness); then --resume completes it identically and re-sends only what was
// missing. SFTP mode and helper mode. Two ways to cut: SIGKILL the sshd processes serving
// the session, and (root with `ip netns`) an sshd in a network namespace as a separate
// "remote host" whose veth link is set down mid-transfer.
#include <criterion/criterion.h>
#include <dirent.h>

#include "common.h"
#include "run.h"

static struct sshd_env E, NS;
static char dir[700], bin[700], script[700], idopt[600], khopt[600];
static char ns_name[32], veth_host[32], veth_ns[32], ns_dir[800];
static bool ns_up;

static int
sh(const char *const *argv)
{
    char err[2048] = "";
    int st;
    if (fc_run(argv, NULL, 0, err, sizeof err, &st) != FC_OK)
        return -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        cr_log_warn("%s %s: %s", argv[0], argv[1] ? argv[1] : "", err);
        return -1;
    }
    return 0;
}

static void
setup(void)
{
    const char *b = getenv("FLUID_BIN_DIR"), *src = getenv("FLUID_SOURCE_DIR"),
               *run = getenv("FLUID_TEST_RUN_DIR");
    if (!b || !src || !run)
        cr_assert_fail("FLUID_BIN_DIR / FLUID_SOURCE_DIR / FLUID_TEST_RUN_DIR not set: run "
                       "through ctest");
    snprintf(bin, sizeof bin, "%s/fluid-volume", b);
    snprintf(script, sizeof script, "%s/tests/fixtures/sshd.sh", src);
    snprintf(dir, sizeof dir, "%s/volume-kill-%d", run, getpid());
    char lsan[1200];
    snprintf(lsan, sizeof lsan,
             "suppressions=%s/tests/integration/volume/lsan-libssh2.supp:print_suppressions=0",
             src);
    setenv("LSAN_OPTIONS", lsan, 1);
    mkdir(dir, 0755);
    const char *argv[] = {"/bin/bash", script, "start", dir, NULL};
    char err[4096];
    int st;
    cr_assert_eq(fc_run(argv, NULL, 0, err, sizeof err, &st), FC_OK);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "private sshd did not start: %s", err);
    sshd_env_load_from(dir, &E);
    snprintf(idopt, sizeof idopt, "--identity=%s", E.identity);
    snprintf(khopt, sizeof khopt, "--known-hosts=%s", E.known_hosts);
}

static void
teardown(void)
{
    int st;
    if (ns_up) {
        const char *stop_ns[] = {"/bin/bash", script, "stop", ns_dir, NULL};
        fc_run(stop_ns, NULL, 0, NULL, 0, &st);
        const char *del[] = {"/usr/sbin/ip", "netns", "del", ns_name, NULL};
        fc_run(del, NULL, 0, NULL, 0, &st);
        const char *ldel[] = {"/usr/sbin/ip", "link", "del", veth_host, NULL};
        fc_run(ldel, NULL, 0, NULL, 0, &st);
        ns_up = false;
    }
    const char *stop[] = {"/bin/bash", script, "stop", dir, NULL};
    fc_run(stop, NULL, 0, NULL, 0, &st);
    const char *rm[] = {"/bin/rm", "-rf", "--", dir, NULL};
    fc_run(rm, NULL, 0, NULL, 0, &st);
}

TestSuite(volume_kill, .init = setup, .fini = teardown, .timeout = 300);

static int
ppid_of(int pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *e = strrchr(buf, ')');
    int pp = -1;
    if (e)
        sscanf(e + 2, "%*c %d", &pp);
    return pp;
}

/* SIGKILL every descendant of pid (the sshd processes serving sessions, and the helper). */
static int
kill_descendants(int pid)
{
    int killed = 0;
    DIR *d = opendir("/proc");
    struct dirent *de;
    int kids[256], nk = 0;
    while (d && (de = readdir(d)))
        if (de->d_name[0] >= '1' && de->d_name[0] <= '9' && nk < 256 &&
            ppid_of(atoi(de->d_name)) == pid)
            kids[nk++] = atoi(de->d_name);
    if (d)
        closedir(d);
    for (int i = 0; i < nk; i++) {
        kill(kids[i], SIGSTOP);
        killed += kill_descendants(kids[i]);
        kill(kids[i], SIGKILL);
        killed++;
    }
    return killed;
}

struct cut {
    char part[900];
    bool netns;
    bool killed;
    int nkilled;
};

static void
link_set(const char *state)
{
    const char *argv[] = {"/usr/sbin/ip", "link", "set", veth_host, state, NULL};
    cr_assert_eq(sh(argv), 0, "ip link set %s %s", veth_host, state);
}

static void
cut_when_half_there(struct run *r)
{
    struct cut *c = r->ctx;
    struct stat st;
    if (c->killed || stat(c->part, &st) != 0 || (uint64_t)st.st_blocks * 512 < (24u << 20))
        return;
    if (c->netns)
        link_set("down");
    else
        c->nkilled = kill_descendants(E.pid);
    c->killed = true;
    r->feed_limit = UINT64_MAX; /* let the copy run into the cut */
}

/* An sshd in its own network namespace behind a veth pair: a separate "remote host". */
static void
netns_up(void)
{
    if (geteuid() != 0)
        cr_skip_test("the network-namespace test needs root");
    int id = getpid() % 100000;
    snprintf(ns_name, sizeof ns_name, "fvol%d", id);
    snprintf(veth_host, sizeof veth_host, "fvh%d", id);
    snprintf(veth_ns, sizeof veth_ns, "fvn%d", id);
    char hostip[32], nsip[32];
    snprintf(hostip, sizeof hostip, "10.%d.%d.1/30", 200 + id % 50, (id / 50) % 250);
    snprintf(nsip, sizeof nsip, "10.%d.%d.2", 200 + id % 50, (id / 50) % 250);
    char nsip_cidr[40];
    snprintf(nsip_cidr, sizeof nsip_cidr, "%s/30", nsip);
    const char *add[] = {"/usr/sbin/ip", "netns", "add", ns_name, NULL};
    if (sh(add) != 0)
        cr_skip_test("`ip netns add` does not work here");
    ns_up = true;
    const char *cmds[][12] = {
        {"/usr/sbin/ip", "link", "add", veth_host, "type", "veth", "peer", "name", veth_ns, NULL},
        {"/usr/sbin/ip", "link", "set", veth_ns, "netns", ns_name, NULL},
        {"/usr/sbin/ip", "addr", "add", hostip, "dev", veth_host, NULL},
        {"/usr/sbin/ip", "link", "set", veth_host, "up", NULL},
        {"/usr/sbin/ip", "-n", ns_name, "addr", "add", nsip_cidr, "dev", veth_ns, NULL},
        {"/usr/sbin/ip", "-n", ns_name, "link", "set", veth_ns, "up", NULL},
        {"/usr/sbin/ip", "-n", ns_name, "link", "set", "lo", "up", NULL},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
        cr_assert_eq(sh(cmds[i]), 0, "network namespace setup step %zu failed", i);
    snprintf(ns_dir, sizeof ns_dir, "%s/ns", dir);
    setenv("SSHD_NETNS", ns_name, 1);
    setenv("SSHD_LISTEN", nsip, 1);
    const char *start[] = {"/bin/bash", script, "start", ns_dir, NULL};
    int rc = sh(start);
    unsetenv("SSHD_NETNS");
    unsetenv("SSHD_LISTEN");
    cr_assert_eq(rc, 0, "sshd in the network namespace did not start");
    sshd_env_load_from(ns_dir, &NS);
}

static void
kill_then_resume(bool helper, bool netns)
{
    if (netns) {
        netns_up();
        E = NS;
        snprintf(idopt, sizeof idopt, "--identity=%s", E.identity);
        snprintf(khopt, sizeof khopt, "--known-hosts=%s", E.known_hosts);
    }
    const uint64_t size = 96ull << 20;
    char src[800], dst[800], u[1200];
    snprintf(src, sizeof src, "%s/src.img", dir);
    snprintf(dst, sizeof dst, "%s/dst %s.img", dir, helper ? "helper" : "sftp");
    snprintf(u, sizeof u, "ssh://%s@%s:%u%s", E.user, E.host, E.port, dst);
    make_image(src, size, size, size, 21);
    char want[65], got[65];
    file_sha(src, want);

    struct cut c = {.netns = netns};
    snprintf(c.part, sizeof c.part, "%s.fluid-part", dst);
    struct run r;
    run_init(&r, bin);
    const char *args[] = {"copy", "--events-fd=3", "--timeout=5", idopt, khopt,
                          "--remote-helper", helper ? bin : "none", "-", u};
    for (size_t i = 0; i < sizeof args / sizeof *args; i++)
        run_arg(&r, args[i]);
    r.feed_fd = open(src, O_RDONLY);
    r.feed_limit = 48u << 20; /* half: the copy cannot finish before the cut */
    r.on_idle = cut_when_half_there;
    r.ctx = &c;
    int rc = run_go(&r);
    close(r.feed_fd);
    cr_assert(c.killed, "the destination never held 24 MiB; stderr: %s", r.err);
    cr_log_info("%s: %s; exit %d: %s", helper ? "helper" : "sftp",
                netns ? "link cut" : "sshd session killed", rc, r.failed_msg);
    if (netns) {
        cr_assert(rc == 4 || rc == 5, "exit %d (want FC_E_NET or FC_E_TIMEOUT): %s", rc, r.err);
        link_set("up");
    } else {
        cr_assert_eq(rc, 4, "exit %d (want FC_E_NET): %s", rc, r.err);
        cr_assert_str_eq(r.failed_code, "FC_E_NET");
    }
    cr_assert(strstr(r.failed_msg, "had been sent") && strstr(r.failed_msg, "--resume"),
              "the error does not say how far it got: %s", r.failed_msg);
    cr_assert_null(r.done_result, "a done event after a failure");
    struct stat st;
    cr_assert_neq(stat(dst, &st), 0, "the destination claims to be complete");
    cr_assert_eq(stat(c.part, &st), 0, "the partial copy is gone");

    /* resume from the whole file */
    run_init(&r, bin);
    const char *args2[] = {"copy", "--events-fd=3", idopt, khopt, "--remote-helper",
                           helper ? bin : "none", "--resume", src, u};
    for (size_t i = 0; i < sizeof args2 / sizeof *args2; i++)
        run_arg(&r, args2[i]);
    rc = run_go(&r);
    cr_assert_eq(rc, 0, "resume: exit %d: %s", rc, r.err);
    uint64_t kept = result_u64(&r, "unchanged_bytes"), sent = result_u64(&r, "bytes_sent");
    cr_log_info("%s resume: %llu bytes were already there, sent %llu", helper ? "helper" : "sftp",
                (unsigned long long)kept, (unsigned long long)sent);
    cr_assert_geq(kept, 16u << 20, "resume re-sent what was already there");
    cr_assert_lt(sent, size - kept + (4u << 20));
    file_sha(dst, got);
    cr_assert_str_eq(got, want);
    cr_assert_neq(stat(c.part, &st), 0, "the partial copy is left behind");
    run_free(&r);
}

Test(volume_kill, sftp_connection_killed_then_resume)
{
    kill_then_resume(false, false);
}

Test(volume_kill, helper_connection_killed_then_resume)
{
    kill_then_resume(true, false);
}

Test(volume_kill, sftp_netns_link_cut_then_resume)
{
    kill_then_resume(false, true);
}

Test(volume_kill, helper_netns_link_cut_then_resume)
{
    kill_then_resume(true, true);
}

/* Cancel (SIGTERM, as the broker does) while the link is cut and the sender sits in a
 * blocked SSH write: with a one-hour stall timeout only the cancel path can end the run,
 * and it must end as FC_E_CANCELLED with nothing claiming completeness. */
static void
cut_then_cancel(struct run *r)
{
    struct cut *c = r->ctx;
    struct stat st;
    if (c->killed || stat(c->part, &st) != 0 || (uint64_t)st.st_blocks * 512 < (24u << 20))
        return;
    link_set("down");
    c->killed = true;
    kill(r->pid, SIGTERM);
}

static void
cancel_while_cut(bool helper)
{
    netns_up();
    E = NS;
    snprintf(idopt, sizeof idopt, "--identity=%s", E.identity);
    snprintf(khopt, sizeof khopt, "--known-hosts=%s", E.known_hosts);
    char src[800], dst[800], u[1200];
    snprintf(src, sizeof src, "%s/src.img", dir);
    snprintf(dst, sizeof dst, "%s/cancel.img", dir);
    snprintf(u, sizeof u, "ssh://%s@%s:%u%s", E.user, E.host, E.port, dst);
    make_image(src, 256ull << 20, 256ull << 20, 256ull << 20, 33);
    struct cut c = {.netns = true};
    snprintf(c.part, sizeof c.part, "%s.fluid-part", dst);
    struct run r;
    run_init(&r, bin);
    const char *args[] = {"copy", "--events-fd=3", "--timeout=3600", idopt, khopt,
                          "--remote-helper", helper ? bin : "none", src, u};
    for (size_t i = 0; i < sizeof args / sizeof *args; i++)
        run_arg(&r, args[i]);
    r.on_idle = cut_then_cancel;
    r.ctx = &c;
    int rc = run_go(&r);
    link_set("up");
    cr_assert(c.killed, "the copy ended before the cut: %s", r.err);
    cr_log_info("%s cancel: exit %d: %s", helper ? "helper" : "sftp", rc, r.failed_msg);
    cr_assert_eq(rc, 14, "exit %d (want FC_E_CANCELLED): %s", rc, r.err);
    cr_assert_str_eq(r.failed_code, "FC_E_CANCELLED");
    struct stat st;
    cr_assert_neq(stat(dst, &st), 0, "the destination claims to be complete");
}

Test(volume_kill, helper_cancel_while_link_is_cut)
{
    cancel_while_cut(true);
}

Test(volume_kill, sftp_cancel_while_link_is_cut)
{
    cancel_while_cut(false);
}
