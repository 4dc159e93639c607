/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-openstack against the devcloud, the server side: snapshot (the fake driver leaves
 * the image queued: a clear timeout; --test-upload fills it; a re-run reuses it), network,
 * subnet and router, server-create (flavor, fixed IP, metadata, tags), floating-ip (allocated,
 * associated, reused), server-create over a server in ERROR (its own: replaced; another
 * relocation's: refused), and bad input: unknown server, unknown cloud, wrong password, with
 * no password in any output. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloud_test.h"
#include "devcloud_api.h"
#include "fluid/error.h"
#include "os_run.h"

static char rid[64], *pw_src, *pw_dst;

static void
setup(void)
{
    dc_setup();
    setenv("FLUID_LOG_LEVEL", "debug", 1);
    setenv("FLUID_LOG_FORMAT", "json", 1);
    snprintf(rid, sizeof rid, "r-it%d", (int)getpid());
    pw_src = dc_password(dc_source());
    pw_dst = dc_password(dc_target());
}

static void
teardown(void)
{
    free(pw_src);
    free(pw_dst);
}

static void
no_secret(const struct osr *r, const char *extra)
{
    const char *s[] = {pw_src, pw_dst, extra};
    for (size_t i = 0; i < 3; i++) {
        if (!s[i])
            continue;
        ct_no_secret(r->err, s[i], "stderr");
        ct_no_secret(r->events, s[i], "events");
    }
}

static void
ok(const struct osr *r, const char *what)
{
    no_secret(r, NULL);
    cr_assert_eq(r->exit, 0, "%s: exit %d\n%s", what, r->exit, r->err);
    cr_assert_not_null(r->result, "%s: no done event", what);
}

static size_t
count(struct fc_os *os, enum fc_os_service svc, const char *path, const char *key)
{
    json_t *l = NULL;
    cr_assert_eq(fc_os_list(os, svc, path, key, 0, &l), FC_OK, "%s", fc_error_msg());
    size_t n = json_array_size(l);
    json_decref(l);
    return n;
}

static const char *
rs(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

TestSuite(launch, .init = setup, .fini = teardown, .timeout = 1500);

/* A server of the source project with no network (the fake driver runs it). */
static char *
boot_source(struct fc_os *os, const char *name)
{
    json_t *img = dc_call(os, FC_SVC_IMAGE, "GET", NULL, "/images?name=devcloud-tiny");
    const char *iid = rs(json_array_get(json_object_get(img, "images"), 0), "id");
    cr_assert_not_null(iid, "the devcloud has no devcloud-tiny image");
    json_t *r = dc_call(os, FC_SVC_COMPUTE, "POST",
                        json_pack("{s:{s:s,s:s,s:s,s:s}}", "server", "name", name, "imageRef",
                                  iid, "flavorRef", "1", "networks", "none"), "/servers");
    char *id = strdup(rs(json_object_get(r, "server"), "id"));
    json_decref(r);
    json_decref(img);
    char path[200];
    snprintf(path, sizeof path, "/servers/%s", id);
    json_decref(dc_wait(os, FC_SVC_COMPUTE, path, "server", "status", "ACTIVE", 300));
    return id;
}

Test(launch, snapshot_queued_then_filled_then_reused)
{
    struct fc_os *os = dc_open(dc_source());
    char sname[80], iname[80], tmp[] = "/tmp/fluid-ossnap-XXXXXX";
    snprintf(sname, sizeof sname, "snapsrv%d", (int)getpid());
    snprintf(iname, sizeof iname, "snapsrv%d-fc1-snap", (int)getpid());
    char *sid = boot_source(os, sname);
    /* unknown server: a clear error naming it */
    const char *bad[] = {"snapshot", "--cloud", dc_source(), "--relocation-id", rid, "--server",
                         "no-such-server-xyz", "--name", iname, NULL};
    struct osr r;
    osr_run(&r, -1, -1, bad);
    no_secret(&r, NULL);
    cr_assert_eq(r.exit, FC_E_NOTFOUND, "exit %d\n%s", r.exit, r.err);
    cr_assert(strstr(rs(r.error, "message"), "no-such-server-xyz"), "%s", rs(r.error, "message"));
    osr_free(&r);
    /* the fake driver never uploads: a timeout that says so */
    const char *q[] = {"snapshot", "--cloud", dc_source(), "--relocation-id", rid, "--server",
                       sname, "--name", iname, "--timeout", "5", NULL};
    osr_run(&r, -1, -1, q);
    no_secret(&r, NULL);
    cr_assert_eq(r.exit, FC_E_TIMEOUT, "exit %d\n%s", r.exit, r.err);
    cr_assert(strstr(rs(r.error, "message"), "still queued"), "%s", rs(r.error, "message"));
    cr_assert(strstr(rs(r.error, "message"), "--test-upload"), "%s", rs(r.error, "message"));
    osr_free(&r);
    /* test mode: fill the queued image; the same image is taken up again (not a second) */
    int fd = mkstemp(tmp);
    char data[4096];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)(i * 7);
    cr_assert_eq(write(fd, data, sizeof data), (ssize_t)sizeof data);
    close(fd);
    const char *t[] = {"snapshot", "--cloud", dc_source(), "--relocation-id", rid, "--server",
                       sid, "--name", iname, "--test-upload", tmp, "--timeout", "300", NULL};
    osr_run(&r, -1, -1, t);
    ok(&r, "snapshot --test-upload");
    cr_assert_str_eq(osr_action(&r, "image"), "reused", "the queued image of the first run");
    char iid[64];
    snprintf(iid, sizeof iid, "%s", rs(r.result, "image_id"));
    cr_assert_eq(json_integer_value(json_object_get(r.result, "size")), (json_int_t)sizeof data);
    osr_free(&r);
    json_t *img = dc_call(os, FC_SVC_IMAGE, "GET", NULL, "/images/%s", iid);
    cr_assert_str_eq(rs(img, "status"), "active");
    cr_assert_str_eq(rs(img, "fluid_relocation"), rid);
    cr_assert_str_eq(rs(img, "instance_uuid"), sid, "a snapshot of that server");
    json_decref(img);
    osr_run(&r, -1, -1, q);
    ok(&r, "snapshot again");
    cr_assert_str_eq(osr_action(&r, "image"), "reused");
    cr_assert_str_eq(rs(r.result, "image_id"), iid);
    osr_free(&r);
    char path[200];
    snprintf(path, sizeof path, "/images?name=%s", iname);
    cr_assert_eq(count(os, FC_SVC_IMAGE, path, "images"), 1u);
    unlink(tmp);
    dc_try(os, FC_SVC_IMAGE, "DELETE", NULL, "/images/%s", iid);
    dc_try(os, FC_SVC_COMPUTE, "DELETE", NULL, "/servers/%s", sid);
    free(sid);
    fc_os_close(os);
}

Test(launch, server_create_and_floating_ip_idempotent)
{
    struct fc_os *os = dc_open(dc_target());
    int pid = (int)getpid();
    char net[64], sub[64], rt[64], srv[64], cidr[32], ip[32], port[160], desc[120];
    snprintf(net, sizeof net, "lnet%d", pid);
    snprintf(sub, sizeof sub, "lsub%d", pid);
    snprintf(rt, sizeof rt, "lrt%d", pid);
    snprintf(srv, sizeof srv, "web%d-fc1", pid);
    int oct = 100 + pid % 100;
    snprintf(cidr, sizeof cidr, "10.%d.7.0/24", oct);
    snprintf(ip, sizeof ip, "10.%d.7.55", oct);
    snprintf(port, sizeof port, "network=%s,fixed_ip=%s", net, ip);
    snprintf(desc, sizeof desc, "fluid %s fip-of-web", rid);
    char nid[64] = "", sid_[64] = "", rid_[64] = "";
    const char *nc[] = {"network-create", "--cloud", dc_target(), "--relocation-id", rid,
                        "--name", net, NULL};
    const char *snc[] = {"subnet-create", "--cloud", dc_target(), "--relocation-id", rid,
                         "--network", net, "--name", sub, "--cidr", cidr, "--ip-version", "4",
                         "--dhcp", NULL};
    const char *rc_[] = {"router-create", "--cloud", dc_target(), "--relocation-id", rid,
                         "--name", rt, "--external-network", dc_external_network(),
                         "--subnet", sub, NULL};
    size_t nets0 = osr_count_matching(os, FC_SVC_NETWORK, "/networks", "networks", "name", net);
    size_t rts0 = osr_count_matching(os, FC_SVC_NETWORK, "/routers", "routers", "name", rt);
    for (int round = 0; round < 2; round++) {
        const char *want = round ? "reused" : "created";
        struct osr r;
        osr_run(&r, -1, -1, nc);
        ok(&r, "network-create");
        cr_assert_str_eq(osr_action(&r, "network"), want);
        snprintf(nid, sizeof nid, "%s", rs(r.result, "network_id"));
        osr_free(&r);
        osr_run(&r, -1, -1, snc);
        ok(&r, "subnet-create");
        cr_assert_str_eq(osr_action(&r, "subnet"), want);
        snprintf(sid_, sizeof sid_, "%s", rs(r.result, "subnet_id"));
        osr_free(&r);
        osr_run(&r, -1, -1, rc_);
        ok(&r, "router-create");
        cr_assert_str_eq(osr_action(&r, "router"), want);
        cr_assert_str_eq(osr_action(&r, "router_interface"), want);
        snprintf(rid_, sizeof rid_, "%s", rs(r.result, "router_id"));
        osr_free(&r);
        cr_assert_eq(osr_count_matching(os, FC_SVC_NETWORK, "/networks", "networks", "name", net),
                     nets0 + 1);
        cr_assert_eq(osr_count_matching(os, FC_SVC_NETWORK, "/routers", "routers", "name", rt),
                     rts0 + 1);
    }
    /* read back: the subnet's CIDR, the router's gateway, the network's tag */
    json_t *x = dc_call(os, FC_SVC_NETWORK, "GET", NULL, "/subnets/%s", sid_);
    cr_assert_str_eq(rs(json_object_get(x, "subnet"), "cidr"), cidr);
    cr_assert_str_eq(rs(json_object_get(x, "subnet"), "network_id"), nid);
    json_decref(x);
    x = dc_call(os, FC_SVC_NETWORK, "GET", NULL, "/routers/%s", rid_);
    cr_assert(json_is_object(json_object_get(json_object_get(x, "router"),
                                             "external_gateway_info")), "router has a gateway");
    json_decref(x);
    x = dc_call(os, FC_SVC_NETWORK, "GET", NULL, "/networks/%s", nid);
    char tag[100];
    snprintf(tag, sizeof tag, "fluid-relocation=%s", rid);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(json_object_get(x, "network"),
                                                                      "tags"), 0)), tag);
    json_decref(x);

    const char *sc[] = {"server-create", "--cloud", dc_target(), "--relocation-id", rid,
                        "--name", srv, "--flavor", "m1.tiny", "--image", "devcloud-tiny",
                        "--security-group", "default", "--port", port,
                        "--metadata-json", "{\"role\":\"web\"}",
                        "--tags-json", "[\"web\",\"prod\"]", "--timeout", "600", NULL};
    const char *fi[] = {"floating-ip", "--cloud", dc_target(), "--relocation-id", rid,
                        "--server", srv, "--fixed-ip", ip, "--external-network",
                        dc_external_network(), "--description", desc, NULL};
    size_t servers0 = osr_count_matching(os, FC_SVC_COMPUTE, "/servers", "servers", "name", srv);
    size_t fips0 = osr_count_matching(os, FC_SVC_NETWORK, "/floatingips", "floatingips",
                                      "description", desc);
    char server_id[64] = "", fip_id[64] = "";
    for (int round = 0; round < 2; round++) {
        const char *want = round ? "reused" : "created";
        struct osr r;
        osr_run(&r, -1, -1, sc);
        ok(&r, "server-create");
        cr_assert_str_eq(osr_action(&r, "server"), want);
        if (round)
            cr_assert_str_eq(rs(r.result, "server_id"), server_id);
        snprintf(server_id, sizeof server_id, "%s", rs(r.result, "server_id"));
        osr_free(&r);
        osr_run(&r, -1, -1, fi);
        ok(&r, "floating-ip");
        cr_assert_str_eq(osr_action(&r, "floating_ip"), want);
        if (round)
            cr_assert_str_eq(rs(json_array_get(json_object_get(r.result, "resources"), 0), "id"),
                             fip_id);
        snprintf(fip_id, sizeof fip_id, "%s",
                 rs(json_array_get(json_object_get(r.result, "resources"), 0), "id"));
        osr_free(&r);
        cr_assert_eq(osr_count_matching(os, FC_SVC_COMPUTE, "/servers", "servers", "name", srv),
                     servers0 + 1);
        cr_assert_eq(osr_count_matching(os, FC_SVC_NETWORK, "/floatingips", "floatingips",
                                        "description", desc), fips0 + 1);
    }
    /* read back the server */
    json_t *s = dc_call(os, FC_SVC_COMPUTE, "GET", NULL, "/servers/%s", server_id);
    json_t *so = json_object_get(s, "server");
    cr_assert_str_eq(rs(so, "status"), "ACTIVE");
    cr_assert_str_eq(rs(json_object_get(so, "flavor"), "original_name"), "m1.tiny");
    cr_assert_str_eq(rs(json_object_get(so, "metadata"), "role"), "web");
    cr_assert_str_eq(rs(json_object_get(so, "metadata"), "fluid_relocation"), rid);
    json_t *tags = json_object_get(so, "tags");
    cr_assert_eq(json_array_size(tags), 2u);
    json_t *addrs = json_object_get(json_object_get(so, "addresses"), net);
    cr_assert_str_eq(rs(json_array_get(addrs, 0), "addr"), ip, "the same fixed IP");
    json_decref(s);
    /* read back the floating IP: on the server's port, at that fixed IP */
    json_t *f = dc_call(os, FC_SVC_NETWORK, "GET", NULL, "/floatingips/%s", fip_id);
    json_t *fo = json_object_get(f, "floatingip");
    cr_assert_str_eq(rs(fo, "fixed_ip_address"), ip);
    cr_assert_str_eq(rs(fo, "description"), desc);
    json_t *ports = dc_call(os, FC_SVC_NETWORK, "GET", NULL, "/ports?device_id=%s", server_id);
    cr_assert_str_eq(rs(fo, "port_id"),
                     rs(json_array_get(json_object_get(ports, "ports"), 0), "id"));
    char port_id[64];
    snprintf(port_id, sizeof port_id, "%s", rs(fo, "port_id"));
    json_decref(ports);
    json_decref(f);
    /* clean up */
    dc_try(os, FC_SVC_NETWORK, "DELETE", NULL, "/floatingips/%s", fip_id);
    dc_try(os, FC_SVC_COMPUTE, "DELETE", NULL, "/servers/%s", server_id);
    char sp[120];
    snprintf(sp, sizeof sp, "/servers/%s", server_id);
    dc_wait_gone(os, FC_SVC_COMPUTE, sp, 120);
    dc_try(os, FC_SVC_NETWORK, "DELETE", NULL, "/ports/%s", port_id);
    dc_try(os, FC_SVC_NETWORK, "PUT", json_pack("{s:s}", "subnet_id", sid_),
           "/routers/%s/remove_router_interface", rid_);
    dc_try(os, FC_SVC_NETWORK, "DELETE", NULL, "/routers/%s", rid_);
    dc_try(os, FC_SVC_NETWORK, "DELETE", NULL, "/networks/%s", nid);
    fc_os_close(os);
}

struct memr {
    const char *p;
    size_t left;
};
static size_t
memrd(void *ctx, char *buf, size_t len)
{
    struct memr *m = ctx;
    size_t n = len < m->left ? len : m->left;
    memcpy(buf, m->p, n);
    m->p += n;
    m->left -= n;
    return n;
}

/* A server named `name` with fluid_relocation=`mark` that fails to build: its image requires
 * a trait no compute host has, so the scheduler finds no host and Nova sets it ERROR. */
static char *
boot_failing(struct fc_os *os, const char *image_id, const char *name, const char *mark)
{
    json_t *r = dc_call(os, FC_SVC_COMPUTE, "POST",
                        json_pack("{s:{s:s,s:s,s:s,s:s,s:{s:s}}}", "server", "name", name,
                                  "imageRef", image_id, "flavorRef", "1", "networks", "none",
                                  "metadata", "fluid_relocation", mark), "/servers");
    char *id = strdup(rs(json_object_get(r, "server"), "id"));
    json_decref(r);
    char path[200];
    snprintf(path, sizeof path, "/servers/%s", id);
    json_decref(dc_wait(os, FC_SVC_COMPUTE, path, "server", "status", "ERROR", 300));
    return id;
}

/* The retry of a launch whose build failed: server-create finds its own server in ERROR,
 * deletes it and launches it again (a note says so); one in ERROR that another relocation
 * made is refused and left alone. */
Test(launch, server_in_error_replaced_only_when_ours)
{
    struct fc_os *os = dc_open(dc_target());
    int pid = (int)getpid();
    char iname[64], srv[64], other[64], path[200];
    snprintf(iname, sizeof iname, "noplace%d", pid);
    snprintf(srv, sizeof srv, "err%d-fc1", pid);
    snprintf(other, sizeof other, "r-other%d", pid);
    json_t *img = dc_call(os, FC_SVC_IMAGE, "POST",
                          json_pack("{s:s,s:s,s:s,s:s}", "name", iname, "disk_format", "raw",
                                    "container_format", "bare", "trait:CUSTOM_FLUID_NOWHERE",
                                    "required"), "/images");
    char *iid = strdup(rs(img, "id"));
    json_decref(img);
    static char bytes[4096];
    struct memr m = {bytes, sizeof bytes};
    snprintf(path, sizeof path, "/images/%s/file", iid);
    cr_assert_eq(fc_os_stream(os, FC_SVC_IMAGE, "PUT", path, "application/octet-stream", memrd,
                              &m, sizeof bytes, NULL, NULL, NULL), FC_OK, "%s", fc_error_msg());
    img = dc_call(os, FC_SVC_IMAGE, "GET", NULL, "/images/%s", iid);
    cr_assert_str_eq(rs(img, "status"), "active");
    json_decref(img);
    const char *sc[] = {"server-create", "--cloud", dc_target(), "--relocation-id", rid,
                        "--name", srv, "--flavor", "m1.tiny", "--image", "devcloud-tiny",
                        "--timeout", "600", NULL};
    struct osr r;

    /* another relocation's server in ERROR: refused, not touched */
    char *foreign = boot_failing(os, iid, srv, other);
    osr_run(&r, -1, -1, sc);
    no_secret(&r, NULL);
    cr_assert_eq(r.exit, FC_E_CONFLICT, "exit %d\n%s", r.exit, r.err);
    cr_assert(strstr(rs(r.error, "message"), other), "%s", rs(r.error, "message"));
    osr_free(&r);
    json_t *x = dc_call(os, FC_SVC_COMPUTE, "GET", NULL, "/servers/%s", foreign);
    cr_assert_str_eq(rs(json_object_get(x, "server"), "status"), "ERROR", "left as it was");
    json_decref(x);
    dc_try(os, FC_SVC_COMPUTE, "DELETE", NULL, "/servers/%s", foreign);
    snprintf(path, sizeof path, "/servers/%s", foreign);
    dc_wait_gone(os, FC_SVC_COMPUTE, path, 120);

    /* ours in ERROR (a failed build of an earlier attempt): deleted and launched again */
    char *failed = boot_failing(os, iid, srv, rid);
    osr_run(&r, -1, -1, sc);
    ok(&r, "server-create over its own ERROR server");
    cr_assert_str_eq(osr_action(&r, "server"), "created");
    char sid[64];
    snprintf(sid, sizeof sid, "%s", rs(r.result, "server_id"));
    cr_assert_str_neq(sid, failed, "a new server, not the failed one");
    json_t *notes = json_object_get(r.result, "notes");
    cr_assert(json_array_size(notes) == 1 && strstr(json_string_value(json_array_get(notes, 0)),
                                                    "in ERROR"), "a note says why: %s", r.err);
    osr_free(&r);
    snprintf(path, sizeof path, "/servers/%s", failed);
    cr_assert_eq(dc_try(os, FC_SVC_COMPUTE, "GET", NULL, "%s", path), FC_E_NOTFOUND,
                 "the failed server is gone");
    cr_assert_eq(osr_count_matching(os, FC_SVC_COMPUTE, "/servers", "servers", "name", srv), 1u);
    x = dc_call(os, FC_SVC_COMPUTE, "GET", NULL, "/servers/%s", sid);
    cr_assert_str_eq(rs(json_object_get(x, "server"), "status"), "ACTIVE");
    json_decref(x);
    /* and a re-run takes the ACTIVE one up again */
    osr_run(&r, -1, -1, sc);
    ok(&r, "server-create again");
    cr_assert_str_eq(osr_action(&r, "server"), "reused");
    cr_assert_str_eq(rs(r.result, "server_id"), sid);
    osr_free(&r);

    dc_try(os, FC_SVC_COMPUTE, "DELETE", NULL, "/servers/%s", sid);
    snprintf(path, sizeof path, "/servers/%s", sid);
    dc_wait_gone(os, FC_SVC_COMPUTE, path, 120);
    dc_try(os, FC_SVC_IMAGE, "DELETE", NULL, "/images/%s", iid);
    free(foreign);
    free(failed);
    free(iid);
    fc_os_close(os);
}

Test(launch, bad_cloud_and_wrong_password)
{
    /* unknown cloud */
    const char *uc[] = {"keypair-import", "--cloud", "no-such-cloud", "--relocation-id", rid,
                        "--name", "x-fc1", "--public-key", "ssh-ed25519 AAAA x", NULL};
    struct osr r;
    osr_run(&r, -1, -1, uc);
    no_secret(&r, NULL);
    cr_assert_neq(r.exit, 0);
    cr_assert(strstr(rs(r.error, "message"), "no-such-cloud"), "%s", rs(r.error, "message"));
    osr_free(&r);
    /* wrong password: a copy of clouds.yaml with another password, planted and grepped for */
    const char *cf = getenv("OS_CLIENT_CONFIG_FILE");
    FILE *in = fopen(cf, "r");
    cr_assert_not_null(in);
    char dir[] = "/tmp/fluid-oswp-XXXXXX", path[300], planted[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/clouds.yaml", dir);
    snprintf(planted, sizeof planted, "Planted-%d-Secret", (int)getpid());
    FILE *out = fopen(path, "w");
    char line[1024];
    while (fgets(line, sizeof line, in)) {
        char *p = strstr(line, "password:");
        if (p) {
            fprintf(out, "%.*spassword: %s\n", (int)(p - line), line, planted);
            continue;
        }
        fputs(line, out);
    }
    fclose(in);
    fclose(out);
    char *old = strdup(cf);
    setenv("OS_CLIENT_CONFIG_FILE", path, 1);
    const char *wp[] = {"secgroup-create", "--cloud", dc_target(), "--relocation-id", rid,
                        "--name", "never-made-fc1", NULL};
    osr_run(&r, -1, -1, wp);
    setenv("OS_CLIENT_CONFIG_FILE", old, 1);
    free(old);
    no_secret(&r, planted);
    cr_assert_eq(r.exit, FC_E_AUTH, "exit %d\n%s", r.exit, r.err);
    cr_assert_str_eq(rs(r.error, "code"), "FC_E_AUTH");
    osr_free(&r);
    unlink(path);
    rmdir(dir);
    /* bad option */
    const char *bo[] = {"server-create", "--cloud", dc_target(), "--relocation-id", rid,
                        "--name", "x", "--flavor", "m1.tiny", "--image", "y", "--bogus", "1",
                        NULL};
    osr_run(&r, -1, -1, bo);
    cr_assert_eq(r.exit, FC_E_INVALID);
    cr_assert(strstr(rs(r.error, "message"), "--bogus"), "%s", rs(r.error, "message"));
    osr_free(&r);
}
