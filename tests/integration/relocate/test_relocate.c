/* SPDX-License-Identifier: Apache-2.0 */
/* `fluidctl relocate` end to end on the devcloud: a small service of project `source` (one
 * server with a keypair, metadata, a private network and two security groups whose rules
 * name each other) is relocated to project `target` by fluid-conduit (which plans the
 * request itself) and two real fluid-broker processes running fluid-openstack. The target
 * is read back; the same request again creates nothing; planning failures (wrong password,
 * unknown cloud, unknown server) end `failed` naming the step; no log holds a password.
 * Nova's fake driver never uploads a snapshot: the test makes the relocation's snapshot
 * beforehand with `fluid-openstack snapshot --test-upload` (same derived name, same
 * relocation marker), so the plan's snapshot task reuses it and everything after it
 * (image export | import, launch) runs for real. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloud_test.h"
#include "devcloud_api.h"
#include "fluid/cloud/plan.h"
#include "fluid/error.h"
#include "helpers.h"

#define PUBKEY                                                                                 \
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIChDy7K0MJJ4z6mFyJ0oVEMNNnkQuOGfpxfF5Z/V/nzU "       \
    "relocate-test"

static char *pw_src, *pw_dst, planted[64];

static void
setup(void)
{
    dc_setup();
    setenv("FLUID_LOG_LEVEL", "debug", 1);
    setenv("FLUID_LOG_FORMAT", "json", 1);
    pw_src = dc_password(dc_source());
    pw_dst = dc_password(dc_target());
    snprintf(planted, sizeof planted, "planted-Pw-%d-x", (int)getpid());
}

struct svc;
static void cleanup_all(void);

static void
teardown(void)
{
    tc_cleanup();
    cleanup_all();
    free(pw_src);
    free(pw_dst);
}

static const char *
rs(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Items of a list whose field "name" is exactly `name` (Nova filters by regex). */
static json_t *
named(struct fc_os *os, enum fc_os_service svc, const char *path, const char *key,
      const char *name)
{
    json_t *l = NULL, *out = json_array();
    cr_assert_eq(fc_os_list(os, svc, path, key, 0, &l), FC_OK, "%s: %s", path, fc_error_msg());
    size_t i;
    json_t *e;
    json_array_foreach(l, i, e) {
        const json_t *o = json_object_get(e, "keypair") ? json_object_get(e, "keypair") : e;
        if (rs(o, "name") && strcmp(rs(o, "name"), name) == 0)
            json_array_append(out, (json_t *)o);
    }
    json_decref(l);
    return out;
}

static size_t
count_named(struct fc_os *os, enum fc_os_service svc, const char *path, const char *key,
            const char *name)
{
    json_t *l = named(os, svc, path, key, name);
    size_t n = json_array_size(l);
    json_decref(l);
    return n;
}

static char *
id_of(const json_t *reply, const char *key)
{
    const char *id = rs(json_object_get(reply, key), "id");
    cr_assert_not_null(id, "no %s.id in the reply", key);
    return strdup(id);
}

struct svc {
    char sfx[32], net[64], subnet[64], key[64], sga[64], sgb[64], server[64];
    char *net_id, *sga_id, *sgb_id, *server_id, *flavor_id;
};

static void
rule(struct fc_os *os, const char *group, const char *remote, int port)
{
    json_decref(dc_call(os, FC_SVC_NETWORK, "POST",
                        json_pack("{s:{s:s,s:s,s:s,s:s,s:i,s:i,s:s}}", "security_group_rule",
                                  "security_group_id", group, "direction", "ingress",
                                  "ethertype", "IPv4", "protocol", "tcp", "port_range_min", port,
                                  "port_range_max", port, "remote_group_id", remote),
                        "/security-group-rules"));
}

/* The service on the source, through the API. */
static void
make_service(struct fc_os *os, struct svc *s)
{
    snprintf(s->sfx, sizeof s->sfx, "rl%d", (int)getpid());
    snprintf(s->net, sizeof s->net, "%s-net", s->sfx);
    snprintf(s->subnet, sizeof s->subnet, "%s-subnet", s->sfx);
    snprintf(s->key, sizeof s->key, "%s-key", s->sfx);
    snprintf(s->sga, sizeof s->sga, "%s-web", s->sfx);
    snprintf(s->sgb, sizeof s->sgb, "%s-db", s->sfx);
    snprintf(s->server, sizeof s->server, "%s-srv", s->sfx);
    json_t *r = dc_call(os, FC_SVC_NETWORK, "POST",
                        json_pack("{s:{s:s}}", "network", "name", s->net), "/networks");
    s->net_id = id_of(r, "network");
    json_decref(r);
    json_decref(dc_call(os, FC_SVC_NETWORK, "POST",
                        json_pack("{s:{s:s,s:s,s:s,s:i}}", "subnet", "name", s->subnet,
                                  "network_id", s->net_id, "cidr", "10.199.7.0/24",
                                  "ip_version", 4),
                        "/subnets"));
    json_decref(dc_call(os, FC_SVC_COMPUTE, "POST",
                        json_pack("{s:{s:s,s:s}}", "keypair", "name", s->key, "public_key",
                                  PUBKEY),
                        "/os-keypairs"));
    r = dc_call(os, FC_SVC_NETWORK, "POST",
                json_pack("{s:{s:s}}", "security_group", "name", s->sga), "/security-groups");
    s->sga_id = id_of(r, "security_group");
    json_decref(r);
    r = dc_call(os, FC_SVC_NETWORK, "POST",
                json_pack("{s:{s:s}}", "security_group", "name", s->sgb), "/security-groups");
    s->sgb_id = id_of(r, "security_group");
    json_decref(r);
    rule(os, s->sga_id, s->sgb_id, 22);   /* web accepts ssh from db */
    rule(os, s->sgb_id, s->sga_id, 5432); /* db accepts postgres from web */

    json_t *fl = named(os, FC_SVC_COMPUTE, "/flavors", "flavors", "m1.tiny");
    cr_assert_eq(json_array_size(fl), 1, "the devcloud has no flavor m1.tiny");
    s->flavor_id = strdup(rs(json_array_get(fl, 0), "id"));
    json_decref(fl);
    json_t *img = dc_call(os, FC_SVC_IMAGE, "GET", NULL, "/images?name=devcloud-tiny");
    const char *iid = rs(json_array_get(json_object_get(img, "images"), 0), "id");
    cr_assert_not_null(iid, "the devcloud has no devcloud-tiny image");
    r = dc_call(os, FC_SVC_COMPUTE, "POST",
                json_pack("{s:{s:s,s:s,s:s,s:s,s:[{s:s},{s:s}],s:[{s:s}],s:{s:s,s:s}}}",
                          "server", "name", s->server, "imageRef", iid, "flavorRef",
                          s->flavor_id, "key_name", s->key, "security_groups", "name", s->sga,
                          "name", s->sgb, "networks", "uuid", s->net_id, "metadata", "role",
                          "web", "tier", "front"),
                "/servers");
    s->server_id = id_of(r, "server");
    json_decref(r);
    json_decref(img);
    char path[200];
    snprintf(path, sizeof path, "/servers/%s", s->server_id);
    json_decref(dc_wait(os, FC_SVC_COMPUTE, path, "server", "status", "ACTIVE", 300));
}

/* What the target holds of the service's copies: counts, for "nothing new" checks. */
struct counts {
    size_t servers, keys, groups, images, networks, rules_a, rules_b;
};

static void
target_counts(struct fc_os *os, const char *rid, const struct svc *s, struct counts *c)
{
    char n[300];
    memset(c, 0, sizeof *c);
    fc_plan_target_name(rid, s->server, n, sizeof n);
    char path[400];
    snprintf(path, sizeof path, "/servers/detail?name=%s", n);
    c->servers = count_named(os, FC_SVC_COMPUTE, path, "servers", n);
    char img[320];
    snprintf(img, sizeof img, "%s-image", n);
    snprintf(path, sizeof path, "/images?name=%s", img);
    c->images = count_named(os, FC_SVC_IMAGE, path, "images", img);
    fc_plan_target_name(rid, s->key, n, sizeof n);
    c->keys = count_named(os, FC_SVC_COMPUTE, "/os-keypairs", "keypairs", n);
    fc_plan_target_name(rid, s->net, n, sizeof n);
    snprintf(path, sizeof path, "/networks?name=%s", n);
    c->networks = count_named(os, FC_SVC_NETWORK, path, "networks", n);
    const char *g[2] = {s->sga, s->sgb};
    for (int i = 0; i < 2; i++) {
        fc_plan_target_name(rid, g[i], n, sizeof n);
        snprintf(path, sizeof path, "/security-groups?name=%s", n);
        json_t *l = named(os, FC_SVC_NETWORK, path, "security_groups", n);
        c->groups += json_array_size(l);
        size_t nr = json_array_size(json_object_get(json_array_get(l, 0),
                                                    "security_group_rules"));
        *(i ? &c->rules_b : &c->rules_a) = nr;
        json_decref(l);
    }
}

/* The copy of group `name`, or fails. */
static json_t *
group_copy(struct fc_os *os, const char *rid, const char *name)
{
    char n[300], path[400];
    fc_plan_target_name(rid, name, n, sizeof n);
    snprintf(path, sizeof path, "/security-groups?name=%s", n);
    json_t *l = named(os, FC_SVC_NETWORK, path, "security_groups", n);
    cr_assert_eq(json_array_size(l), 1, "target: %zu security groups named %s", json_array_size(l), n);
    json_t *g = json_incref(json_array_get(l, 0));
    json_decref(l);
    return g;
}

/* A tcp ingress rule of g on `port` whose remote group is `remote_id`. */
static bool
has_rule(const json_t *g, int port, const char *remote_id)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(g, "security_group_rules"), i, r) {
        if (rs(r, "direction") && strcmp(rs(r, "direction"), "ingress") == 0 &&
            json_integer_value(json_object_get(r, "port_range_min")) == port &&
            rs(r, "remote_group_id") && strcmp(rs(r, "remote_group_id"), remote_id) == 0)
            return true;
    }
    return false;
}

static void
check_target(struct fc_os *os, const char *rid, const struct svc *s)
{
    char n[300], path[400];
    /* keypair: the same public key under the derived name */
    fc_plan_target_name(rid, s->key, n, sizeof n);
    json_t *k = dc_call(os, FC_SVC_COMPUTE, "GET", NULL, "/os-keypairs/%s", n);
    cr_assert_str_eq(rs(json_object_get(k, "keypair"), "public_key"), PUBKEY, "keypair %s", n);
    json_decref(k);
    /* groups: each rule's remote group is the other copy */
    json_t *ga = group_copy(os, rid, s->sga), *gb = group_copy(os, rid, s->sgb);
    cr_assert(has_rule(ga, 22, rs(gb, "id")), "target group %s lacks tcp/22 from %s's copy %s",
              rs(ga, "name"), s->sgb, rs(gb, "id"));
    cr_assert(has_rule(gb, 5432, rs(ga, "id")), "target group %s lacks tcp/5432 from %s",
              rs(gb, "name"), rs(ga, "id"));
    cr_assert(!has_rule(ga, 22, s->sgb_id) && !has_rule(gb, 5432, s->sga_id),
              "a target rule still names a source group");
    /* the server: same flavor, metadata kept, the relocation's marker, the copied groups */
    fc_plan_target_name(rid, s->server, n, sizeof n);
    snprintf(path, sizeof path, "/servers/detail?name=%s", n);
    json_t *l = named(os, FC_SVC_COMPUTE, path, "servers", n);
    cr_assert_eq(json_array_size(l), 1, "target: %zu servers named %s", json_array_size(l), n);
    const json_t *srv = json_array_get(l, 0);
    cr_assert_str_eq(rs(srv, "status"), "ACTIVE");
    /* microversion >= 2.47 shows the flavor's name and sizes, older ones its id */
    const json_t *fl = json_object_get(srv, "flavor");
    if (rs(fl, "original_name"))
        cr_assert_str_eq(rs(fl, "original_name"), "m1.tiny", "flavor");
    else
        cr_assert_str_eq(rs(fl, "id"), s->flavor_id, "flavor");
    const json_t *md = json_object_get(srv, "metadata");
    cr_assert_str_eq(rs(md, "role"), "web");
    cr_assert_str_eq(rs(md, "tier"), "front");
    cr_assert_str_eq(rs(md, "fluid_relocation"), rid);
    char kn[300];
    fc_plan_target_name(rid, s->key, kn, sizeof kn);
    cr_assert_str_eq(rs(srv, "key_name"), kn);
    size_t i, seen = 0;
    json_t *e;
    json_array_foreach(json_object_get(srv, "security_groups"), i, e)
        seen += strcmp(rs(e, "name"), rs(ga, "name")) == 0 || strcmp(rs(e, "name"), rs(gb, "name")) == 0;
    cr_assert_geq(seen, 2, "server %s is not in both copied groups", n);
    /* on the copy of the network, at the same fixed IP */
    char nn[300];
    fc_plan_target_name(rid, s->net, nn, sizeof nn);
    const json_t *addrs = json_object_get(json_object_get(srv, "addresses"), nn);
    cr_assert(json_array_size(addrs) >= 1, "server %s has no address on %s", n, nn);
    json_decref(l);
    json_decref(ga);
    json_decref(gb);
}

/* Every file of dir: no password of the clouds and not the planted one. */
static void
logs_hold_no_password(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    struct dirent *de;
    size_t files = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (!strstr(de->d_name, ".log"))
            continue;
        FILE *f = fopen(p, "r");
        if (!f)
            continue;
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        rewind(f);
        char *buf = calloc(1, (size_t)len + 1);
        cr_assert_not_null(buf);
        size_t got = fread(buf, 1, (size_t)len, f);
        buf[got] = '\0';
        fclose(f);
        ct_no_secret(buf, pw_src, p);
        ct_no_secret(buf, pw_dst, p);
        ct_no_secret(buf, planted, p);
        free(buf);
        files++;
    }
    closedir(d);
    cr_assert_geq(files, 3, "%s: expected the conduit's and the brokers' logs", dir);
}

/* The fixture's clouds.yaml plus cloud "badsrc-<pid>": the source's user with a wrong
 * (planted) password. */
static void
write_clouds(const char *path, const char *bad)
{
    FILE *in = fopen(getenv("OS_CLIENT_CONFIG_FILE"), "r"), *out = fopen(path, "w");
    cr_assert(in && out, "clouds.yaml copy");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    fclose(in);
    fprintf(out,
            "  %s:\n    auth:\n      auth_url: http://127.0.0.1:5000/v3\n"
            "      username: source\n      password: %s\n      project_name: source\n"
            "      user_domain_name: Default\n      project_domain_name: Default\n"
            "    region_name: RegionOne\n    interface: public\n"
            "    identity_api_version: 3\n",
            bad, planted);
    cr_assert_eq(fclose(out), 0);
}

static pid_t
broker(const struct tc *t, const char *id)
{
    char prog[1200], log[64];
    tc_bin(t, "fluid-broker", prog, sizeof prog);
    snprintf(log, sizeof log, "%s.log", id);
    const char *argv[] = {prog, "--site", "default", "--broker-id", id, "--capacity", "2",
                          "--heartbeat-s", "1", NULL};
    return tc_spawn(t, argv, log);
}

/* fluidctl relocate ... --watch; returns the exit status, output in out. */
static int
relocate(const struct tc *t, const char *from, const char *server, const char *rid, char *out,
         size_t cap)
{
    char prog[1200], err[16384];
    tc_bin(t, "fluidctl", prog, sizeof prog);
    const char *argv[16] = {prog, "relocate", "--from", from, "--to", dc_target(), "--server",
                            server, "--watch", "--timeout", "1500"};
    int n = 11;
    if (rid) {
        argv[n++] = "--relocation-id";
        argv[n++] = rid;
    }
    argv[n] = NULL;
    int st = tc_run(t, argv, out, cap, err, sizeof err);
    ct_no_secret(out, planted, "fluidctl relocate stdout");
    ct_no_secret(err, planted, "fluidctl relocate stderr");
    ct_no_secret(out, pw_src, "fluidctl relocate stdout");
    fprintf(stderr, "relocate --from %s --server %s: exit %d\n%s%s", from, server, st, out, err);
    return st;
}

static void
cleanup_cloud(struct fc_os *src, struct fc_os *dst, const char *rid, const struct svc *s)
{
    char n[300], path[400];
    fc_plan_target_name(rid, s->server, n, sizeof n);
    snprintf(path, sizeof path, "/servers/detail?name=%s", n);
    json_t *l = named(dst, FC_SVC_COMPUTE, path, "servers", n);
    size_t i;
    json_t *e;
    json_array_foreach(l, i, e) {
        char sp[200];
        snprintf(sp, sizeof sp, "/servers/%s", rs(e, "id"));
        dc_try(dst, FC_SVC_COMPUTE, "DELETE", NULL, "%s", sp);
        dc_wait_gone(dst, FC_SVC_COMPUTE, sp, 120);
    }
    json_decref(l);
    if (s->server_id) {
        char sp[200];
        snprintf(sp, sizeof sp, "/servers/%s", s->server_id);
        dc_try(src, FC_SVC_COMPUTE, "DELETE", NULL, "%s", sp);
        dc_wait_gone(src, FC_SVC_COMPUTE, sp, 120);
    }
    struct fc_os *os[2] = {src, dst};
    for (int c = 0; c < 2; c++) {
        /* server-create made its ports itself (Nova leaves them): ports, then groups, then
         * the network */
        const char *names[] = {s->net, s->sga, s->sgb, s->net, s->key};
        for (int k = 0; k < 5; k++) {
            char nm[300];
            if (c)
                fc_plan_target_name(rid, names[k], nm, sizeof nm);
            else
                snprintf(nm, sizeof nm, "%s", names[k]);
            if (k == 4) {
                dc_try(os[c], FC_SVC_COMPUTE, "DELETE", NULL, "/os-keypairs/%s", nm);
                continue;
            }
            bool net = k == 0 || k == 3;
            snprintf(path, sizeof path, "/%s?name=%s", net ? "networks" : "security-groups", nm);
            json_t *g = named(os[c], FC_SVC_NETWORK, path, net ? "networks" : "security_groups", nm);
            json_array_foreach(g, i, e) {
                if (k == 0) {
                    json_t *ports = NULL;
                    char pp[200];
                    snprintf(pp, sizeof pp, "/ports?network_id=%s", rs(e, "id"));
                    if (fc_os_list(os[c], FC_SVC_NETWORK, pp, "ports", 0, &ports) == FC_OK) {
                        size_t j;
                        json_t *p;
                        json_array_foreach(ports, j, p)
                            if (strcmp(rs(p, "device_owner") ? rs(p, "device_owner") : "",
                                       "network:dhcp") != 0)
                                dc_try(os[c], FC_SVC_NETWORK, "DELETE", NULL, "/ports/%s",
                                       rs(p, "id"));
                    }
                    json_decref(ports);
                } else {
                    dc_try(os[c], FC_SVC_NETWORK, "DELETE", NULL, "/%s/%s",
                           net ? "networks" : "security-groups", rs(e, "id"));
                }
            }
            json_decref(g);
        }
        char img[320];
        fc_plan_target_name(rid, s->server, n, sizeof n);
        snprintf(img, sizeof img, "%s-%s", n, c ? "image" : "snap");
        snprintf(path, sizeof path, "/images?name=%s", img);
        json_t *g = named(os[c], FC_SVC_IMAGE, path, "images", img);
        json_array_foreach(g, i, e)
            dc_try(os[c], FC_SVC_IMAGE, "DELETE", NULL, "/images/%s", rs(e, "id"));
        json_decref(g);
    }
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

TestSuite(relocate, .init = setup, .fini = teardown, .timeout = 2400);

Test(relocate, service_relocated_once_failures_named_no_password)
{
    struct tc t;
    tc_init(&t, "relocate");
    struct fc_os *src = dc_open(dc_source()), *dst = dc_open(dc_target());
    snprintf(made_rid, sizeof made_rid, "r-rl%d", (int)getpid());
    make_service(src, &made); /* filled as it goes: cleanup_all removes what exists */
    struct svc s = made;      /* the same ids (freed by cleanup_all) */
    char rid[64];
    snprintf(rid, sizeof rid, "r-%s", s.sfx);

    /* the snapshot the fake driver cannot make, made as the plan's task would find it */
    char tn[300], snap[320], data[1200], prog[1200], out[65536], err[16384];
    fc_plan_target_name(rid, s.server, tn, sizeof tn);
    snprintf(snap, sizeof snap, "%s-snap", tn);
    snprintf(data, sizeof data, "%s/snapshot.raw", t.dir);
    FILE *f = fopen(data, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 512 * 1024; i++)
        fputc((int)(((unsigned)i * 7919u + (unsigned)i / 4096u) & 0xffu), f);
    fclose(f);
    tc_bin(&t, "fluid-openstack", prog, sizeof prog);
    const char *sa[] = {prog, "snapshot", "--cloud", dc_source(), "--server", s.server_id,
                        "--name", snap, "--relocation-id", rid, "--test-upload", data,
                        "--timeout", "300", NULL};
    int st = tc_run(&t, sa, out, sizeof out, err, sizeof err);
    cr_assert_eq(st, 0, "fluid-openstack snapshot --test-upload: exit %d\n%s", st, err);

    /* the conduit reads its own clouds.yaml (config key clouds_file) */
    char clouds[1200], conf[1200], bad[64];
    snprintf(bad, sizeof bad, "badsrc%d", (int)getpid());
    snprintf(clouds, sizeof clouds, "%s/clouds.yaml", t.dir);
    snprintf(conf, sizeof conf, "%s/conduit.conf", t.dir);
    write_clouds(clouds, bad);
    f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f, "# test_relocate\nclouds_file = %s\n", clouds);
    fclose(f);
    const char *extra[] = {"--config", conf, NULL};
    tc_conduit_start(&t, extra);
    broker(&t, "b-rl-1");
    broker(&t, "b-rl-2");

    st = relocate(&t, dc_source(), s.server, rid, out, sizeof out);
    cr_assert_eq(st, 0, "relocation did not end done (exit %d):\n%s", st, out);
    check_target(dst, rid, &s);
    struct counts c1, c2;
    target_counts(dst, rid, &s, &c1);
    cr_assert(c1.servers == 1 && c1.keys == 1 && c1.groups == 2 && c1.images == 1 &&
                  c1.networks == 1,
              "target: %zu servers, %zu keypairs, %zu groups, %zu images, %zu networks",
              c1.servers, c1.keys, c1.groups, c1.images, c1.networks);

    /* the conduit killed and restarted, then the same request again: done at once from the
     * stored plan (not planned again), nothing new on the target */
    tc_conduit_stop(&t, SIGKILL);
    tc_conduit_start(&t, extra);
    st = relocate(&t, dc_source(), s.server, rid, out, sizeof out);
    cr_assert_eq(st, 0, "re-submitted relocation: exit %d:\n%s", st, out);
    target_counts(dst, rid, &s, &c2);
    char log2[1200];
    snprintf(log2, sizeof log2, "%s/conduit-2.log", t.dir);
    FILE *lf = fopen(log2, "r");
    cr_assert_not_null(lf, "%s", log2);
    char line[8192];
    bool recorded = false;
    while (fgets(line, sizeof line, lf)) {
        cr_assert(!strstr(line, "relocation planned") && !strstr(line, "planning a relocation"),
                  "the restarted conduit planned the re-submitted request again: %s", line);
        recorded = recorded || (strstr(line, "request already recorded") && strstr(line, rid));
    }
    fclose(lf);
    cr_assert(recorded, "%s: the re-submitted request was not recognised", log2);
    cr_assert(!memcmp(&c1, &c2, sizeof c1), "the second run changed the target: servers %zu->%zu "
              "rules %zu->%zu / %zu->%zu", c1.servers, c2.servers, c1.rules_a, c2.rules_a,
              c1.rules_b, c2.rules_b);

    /* planning failures end the relocation failed, naming the step */
    st = relocate(&t, bad, s.server, NULL, out, sizeof out);
    cr_assert_eq(st, 1, "wrong password: exit %d", st);
    char want[200];
    snprintf(want, sizeof want, " failed: planning: inspect source cloud \"%s\": FC_E_AUTH", bad);
    cr_assert(strstr(out, want), "wrong password: want \"%s\" in: %s", want, out);
    char nosuch[64];
    snprintf(nosuch, sizeof nosuch, "nosuchcloud%d", (int)getpid());
    st = relocate(&t, nosuch, s.server, NULL, out, sizeof out);
    cr_assert_eq(st, 1, "unknown cloud: exit %d", st);
    snprintf(want, sizeof want, "planning: open source cloud \"%s\": ", nosuch);
    cr_assert(strstr(out, want) && strstr(out, " failed "), "unknown cloud: want \"%s\" in: %s",
              want, out);
    char ghost[64];
    snprintf(ghost, sizeof ghost, "ghost%d", (int)getpid());
    st = relocate(&t, dc_source(), ghost, NULL, out, sizeof out);
    cr_assert_eq(st, 1, "unknown server: exit %d", st);
    snprintf(want, sizeof want, "planning: inspect source cloud \"%s\": ", dc_source());
    cr_assert(strstr(out, want) && strstr(out, ghost) && strstr(out, " failed "),
              "unknown server: want \"%s\" and %s in: %s", want, ghost, out);

    tc_conduit_stop(&t, SIGTERM);
    logs_hold_no_password(t.dir);
    cleanup_all();
    fc_os_close(src);
    fc_os_close(dst);
    tc_fini(&t);
}
