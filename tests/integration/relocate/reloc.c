/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers of the relocation tests (reloc.h). */
#include "reloc.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloud_test.h"
#include "devcloud_api.h"
#include "fluid/cloud/plan.h"
#include "fluid/error.h"

void
rl_setup(void)
{
    dc_setup();
    setenv("FLUID_LOG_LEVEL", "debug", 1);
    setenv("FLUID_LOG_FORMAT", "json", 1);
    pw_src = dc_password(dc_source());
    pw_dst = dc_password(dc_target());
    snprintf(planted, sizeof planted, "planted-Pw-%d-x", (int)getpid());
}

char *pw_src, *pw_dst, planted[64];

const char *
rs(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Items of a list whose field "name" is exactly `name` (Nova filters by regex). */
json_t *
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

size_t
count_named(struct fc_os *os, enum fc_os_service svc, const char *path, const char *key,
            const char *name)
{
    json_t *l = named(os, svc, path, key, name);
    size_t n = json_array_size(l);
    json_decref(l);
    return n;
}

char *
id_of(const json_t *reply, const char *key)
{
    const char *id = rs(json_object_get(reply, key), "id");
    cr_assert_not_null(id, "no %s.id in the reply", key);
    return strdup(id);
}



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
void
make_service(struct fc_os *os, struct svc *s, const char *tag)
{
    snprintf(s->sfx, sizeof s->sfx, "rl%d%s", (int)getpid(), tag ? tag : "");
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



void
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

void
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
void
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
        ct_no_secret(buf, "gAAAAA", p); /* every Keystone Fernet token starts so */
        free(buf);
        files++;
    }
    closedir(d);
    cr_assert_geq(files, 3, "%s: expected the conduit's and the brokers' logs", dir);
}

/* The fixture's clouds.yaml plus cloud "badsrc-<pid>": the source's user with a wrong
 * (planted) password. */
void
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

pid_t
broker(const struct tc *t, const char *id)
{
    char prog[1200], log[64];
    tc_bin(t, "fluid-broker", prog, sizeof prog);
    snprintf(log, sizeof log, "%s.log", id);
    const char *argv[] = {prog, "--site", "default", "--broker-id", id, "--capacity", "2",
                          "--heartbeat-s", "1", NULL};
    return tc_spawn(t, argv, log);
}

/* fluidctl relocate ... --watch [extra...]; returns the exit status, output in out. */
int
relocate(const struct tc *t, const char *from, const char *server, const char *rid,
         const char *const *extra, char *out, size_t cap)
{
    char prog[1200], err[16384];
    tc_bin(t, "fluidctl", prog, sizeof prog);
    const char *argv[32] = {prog, "relocate", "--from", from, "--to", dc_target(), "--server",
                            server, "--watch", "--timeout", "1500"};
    int n = 11;
    if (rid) {
        argv[n++] = "--relocation-id";
        argv[n++] = rid;
    }
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    int st = tc_run(t, argv, out, cap, err, sizeof err);
    ct_no_secret(out, planted, "fluidctl relocate stdout");
    ct_no_secret(err, planted, "fluidctl relocate stderr");
    ct_no_secret(out, pw_src, "fluidctl relocate stdout");
    ct_no_secret(out, pw_dst, "fluidctl relocate stdout");
    ct_no_secret(err, pw_dst, "fluidctl relocate stderr");
    fprintf(stderr, "relocate --from %s --server %s: exit %d\n%s%s", from, server, st, out, err);
    return st;
}

void
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


char *
slurp_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = calloc(1, (size_t)n + 1);
    cr_assert_not_null(buf);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    if (len)
        *len = got;
    return buf;
}

void
bytes_no_secret(const char *buf, size_t len, const char *secret, const char *what)
{
    size_t n = strlen(secret);
    cr_assert_gt(n, 0);
    for (size_t i = 0; i + n <= len; i++)
        cr_assert(memcmp(buf + i, secret, n) != 0, "%s holds a secret at offset %zu", what, i);
}

void
prefill_snapshot(const struct tc *t, const char *rid, const struct svc *s)
{
    char tn[300], snap[320], data[1200], prog[1200], out[16384], err[16384];
    fc_plan_target_name(rid, s->server, tn, sizeof tn);
    snprintf(snap, sizeof snap, "%s-snap", tn);
    snprintf(data, sizeof data, "%s/snapshot.raw", t->dir);
    FILE *f = fopen(data, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 512 * 1024; i++)
        fputc((int)(((unsigned)i * 7919u + (unsigned)i / 4096u) & 0xffu), f);
    fclose(f);
    tc_bin(t, "fluid-openstack", prog, sizeof prog);
    const char *sa[] = {prog, "snapshot", "--cloud", dc_source(), "--server", s->server_id,
                        "--name", snap, "--relocation-id", rid, "--test-upload", data,
                        "--timeout", "300", NULL};
    int st = tc_run(t, sa, out, sizeof out, err, sizeof err);
    cr_assert_eq(st, 0, "fluid-openstack snapshot --test-upload: exit %d\n%s", st, err);
}

void
start_stack(struct tc *t, const char *bad, char *conf)
{
    char clouds[1200];
    snprintf(clouds, sizeof clouds, "%s/clouds.yaml", t->dir);
    snprintf(conf, 1200, "%s/conduit.conf", t->dir);
    write_clouds(clouds, bad);
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f, "# relocation test\nclouds_file = %s\n", clouds);
    fclose(f);
    const char *extra[] = {"--config", conf, NULL};
    tc_conduit_start(t, extra);
    broker(t, "b-rl-1");
    broker(t, "b-rl-2");
}

int
fluidctl(const struct tc *t, const char *const *args, char *out, size_t cap)
{
    char prog[1200], err[16384];
    tc_bin(t, "fluidctl", prog, sizeof prog);
    const char *argv[32] = {prog};
    int n = 1;
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int st = tc_run(t, argv, out, cap, err, sizeof err);
    ct_no_secret(out, pw_src, "fluidctl stdout");
    ct_no_secret(out, pw_dst, "fluidctl stdout");
    ct_no_secret(err, pw_dst, "fluidctl stderr");
    fprintf(stderr, "fluidctl %s %s: exit %d\n%s%s", args[0], args[1] ? args[1] : "", st, out, err);
    return st;
}

/* kind, service, path, list key, id field */
static const char *const kinds[][5] = {
    {"servers", "compute", "/servers/detail", "servers", "id"},
    {"keypairs", "compute", "/os-keypairs", "keypairs", "name"},
    {"images", "image", "/images", "images", "id"},
    {"volumes", "volume", "/volumes/detail", "volumes", "id"},
    {"networks", "network", "/networks", "networks", "id"},
    {"subnets", "network", "/subnets", "subnets", "id"},
    {"ports", "network", "/ports", "ports", "id"},
    {"routers", "network", "/routers", "routers", "id"},
    {"floatingips", "network", "/floatingips", "floatingips", "id"},
    {"security_groups", "network", "/security-groups", "security_groups", "id"},
    {"security_group_rules", "network", "/security-group-rules", "security_group_rules", "id"},
};

static enum fc_os_service
svc_of(const char *name)
{
    return !strcmp(name, "compute") ? FC_SVC_COMPUTE
           : !strcmp(name, "image") ? FC_SVC_IMAGE
           : !strcmp(name, "volume") ? FC_SVC_VOLUME
                                     : FC_SVC_NETWORK;
}

/* Items of one kind; Neutron and Glance lists limited to the target's own project. */
static json_t *
list_kind(struct fc_os *dst, size_t k)
{
    char path[300];
    const char *pid = fc_os_project_id(dst);
    if (svc_of(kinds[k][1]) == FC_SVC_NETWORK)
        snprintf(path, sizeof path, "%s?project_id=%s", kinds[k][2], pid);
    else if (svc_of(kinds[k][1]) == FC_SVC_IMAGE)
        snprintf(path, sizeof path, "%s?owner=%s", kinds[k][2], pid);
    else
        snprintf(path, sizeof path, "%s", kinds[k][2]);
    json_t *l = NULL;
    fc_rc rc;
    /* the shared devcloud restarts a service now and then: ride it out (2 minutes) */
    for (int i = 0; (rc = fc_os_list(dst, svc_of(kinds[k][1]), path, kinds[k][3], 0, &l)) ==
                        FC_E_NET && i < 60; i++)
        sleep(2);
    cr_assert_eq(rc, FC_OK, "list %s: %s", path, fc_error_msg());
    return l;
}

static const json_t *
inner(const json_t *e)
{
    return json_object_get(e, "keypair") ? json_object_get(e, "keypair") : e;
}

json_t *
target_ids(struct fc_os *dst)
{
    json_t *out = json_object();
    fc_os_authenticate(dst);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        json_t *l = list_kind(dst, k), *ids = json_array(), *e;
        size_t i;
        json_array_foreach(l, i, e)
            if (rs(inner(e), kinds[k][4]))
                json_array_append_new(ids, json_string(rs(inner(e), kinds[k][4])));
        json_object_set_new(out, kinds[k][0], ids);
        json_decref(l);
    }
    return out;
}

bool
ids_have(const json_t *ids, const char *id)
{
    const char *k;
    json_t *v, *e;
    size_t i;
    json_object_foreach((json_t *)ids, k, v)
        json_array_foreach(v, i, e)
            if (!strcmp(json_string_value(e), id))
                return true;
    return false;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

json_t *
target_marked(struct fc_os *dst, const char *rid)
{
    char sfx[300], tag[200], fipdesc[200];
    fc_plan_target_name(rid, "x", sfx, sizeof sfx); /* "x-fc<8 hex>" */
    snprintf(tag, sizeof tag, "fluid-relocation=%s", rid);
    snprintf(fipdesc, sizeof fipdesc, "fluid %s ", rid);
    json_t *out = json_object();
    fc_os_authenticate(dst);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        json_t *l = list_kind(dst, k), *e;
        size_t i, n = 0;
        char **lines = calloc(json_array_size(l) + 1, sizeof *lines);
        json_array_foreach(l, i, e) {
            const json_t *o = inner(e);
            const char *name = rs(o, "name"), *desc = rs(o, "description");
            const char *m1 = rs(json_object_get(o, "metadata"), "fluid_relocation");
            const char *m2 = rs(o, "fluid_relocation");
            bool ours = (name && strstr(name, sfx + 1)) || (m1 && !strcmp(m1, rid)) ||
                        (m2 && !strcmp(m2, rid)) || (desc && !strcmp(desc, tag)) ||
                        (desc && !strncmp(desc, fipdesc, strlen(fipdesc)));
            size_t t;
            json_t *tg;
            json_array_foreach(json_object_get(o, "tags"), t, tg)
                ours = ours || !strcmp(json_string_value(tg), tag);
            if (!ours)
                continue;
            char line[600];
            snprintf(line, sizeof line, "%s %s", rs(o, kinds[k][4]) ? rs(o, kinds[k][4]) : "?",
                     name ? name : "");
            lines[n++] = strdup(line);
        }
        qsort(lines, n, sizeof *lines, cmp_str);
        if (n) {
            json_t *arr = json_array();
            for (size_t j = 0; j < n; j++)
                json_array_append_new(arr, json_string(lines[j]));
            json_object_set_new(out, kinds[k][0], arr);
        }
        for (size_t j = 0; j < n; j++)
            free(lines[j]);
        free(lines);
        json_decref(l);
    }
    return out;
}
