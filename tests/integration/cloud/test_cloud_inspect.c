/* SPDX-License-Identifier: Apache-2.0 */
/* A two-server service created through the API on the devcloud's source project (web: a
 * floating IP; db: an attached volume; groups web and db whose rules refer to each other,
 * and a rule of db that refers to a group outside the service), then:
 *  - inspection (library and `fluidctl inspect --json`): every field checked against what
 *    was created, the output valid as a proto Topology;
 *  - planning to the target project: every resource named, a valid order, the rule that
 *    cannot be carried over reported, and neither cloud changed by planning. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloud_test.h"
#include "devcloud_api.h"
#include "fluid/cloud/plan.h"
#include "fluid/cloud/resources.h"
#include "fluid/cloud/topology.h"
#include "fluid/error.h"
#include "fluid/msg.h"
#include "fluid/cleanup.h"
#include "fluid/spawn.h"

#define PUBKEY "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFqyrk2AK28PIi8AVDdyZe+26C/4LsIqzZ96sIXi8Lsv fluid-test@example"

/* what the test created (ids), for the checks and for cleanup */
static struct {
    char tag[48], key[64];
    char net[64], subnet[64], router[64], sg_web[64], sg_db[64], sg_out[64];
    char web[64], db[64], vol[64], fip[64], fip_addr[64], web_port[64], db_port[64];
    char web_ip[64], db_ip[64], web_mac[64], db_mac[64], device[64], ext[64], image[64];
    char medium[64], tiny[64], cidr[32];
    char rule_web80[64], rule_web22[64], rule_db5432[64], rule_db_out[64];
} S;
static struct fc_os *src;
static char *password;

static void
cpy(char *dst, const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    cr_assert_not_null(v, "no %s", k);
    snprintf(dst, 64, "%s", v);
}

static json_t *
rule(const char *sg, const char *proto, int port, const char *remote_group, const char *prefix)
{
    json_t *r = json_pack("{s:s, s:s, s:s}", "security_group_id", sg, "direction", "ingress",
                          "ethertype", "IPv4");
    if (proto)
        json_object_set_new(r, "protocol", json_string(proto));
    if (port) {
        json_object_set_new(r, "port_range_min", json_integer(port));
        json_object_set_new(r, "port_range_max", json_integer(port));
    }
    if (remote_group)
        json_object_set_new(r, "remote_group_id", json_string(remote_group));
    if (prefix)
        json_object_set_new(r, "remote_ip_prefix", json_string(prefix));
    return json_pack("{s:o}", "security_group_rule", r);
}

static void
make_rule(char *id_out, json_t *body)
{
    json_t *r = dc_call(src, FC_SVC_NETWORK, "POST", body, "/security-group-rules");
    cpy(id_out, json_object_get(r, "security_group_rule"), "id");
    json_decref(r);
}

static const char *
flavor_id(const char *name, char *out)
{
    json_t *r = dc_call(src, FC_SVC_COMPUTE, "GET", NULL, "/flavors/detail");
    json_t *f = fc_json_find(json_object_get(r, "flavors"), "name", name);
    cr_assert_not_null(f, "devcloud has no flavor %s", name);
    cpy(out, f, "id");
    json_decref(r);
    return out;
}

static void
make_server(char *id_out, const char *name, const char *flavor, const char *sg, const char *role)
{
    char n[128], g[128];
    snprintf(n, sizeof n, "%s-%s", S.tag, name);
    snprintf(g, sizeof g, "%s-%s", S.tag, sg);
    json_t *r = dc_call(src, FC_SVC_COMPUTE, "POST",
                        json_pack("{s:{s:s, s:s, s:s, s:s, s:[{s:s}], s:[{s:s}], s:{s:s}, s:[s]}}",
                                  "server", "name", n, "imageRef", S.image, "flavorRef", flavor,
                                  "key_name", S.key, "networks", "uuid", S.net,
                                  "security_groups", "name", g, "metadata", "role", role,
                                  "tags", S.tag),
                        "/servers");
    cpy(id_out, json_object_get(r, "server"), "id");
    json_decref(r);
}

static void
port_of(const char *server, char *port, char *ip, char *mac)
{
    json_t *r = dc_call(src, FC_SVC_NETWORK, "GET", NULL, "/ports?device_id=%s", server);
    json_t *p = json_array_get(json_object_get(r, "ports"), 0);
    cr_assert_not_null(p, "server %s has no port", server);
    cpy(port, p, "id");
    cpy(mac, p, "mac_address");
    cpy(ip, json_array_get(json_object_get(p, "fixed_ips"), 0), "ip_address");
    json_decref(r);
}

static void
create_service(void)
{
    int pid = (int)getpid();
    snprintf(S.tag, sizeof S.tag, "fl-it-%d", pid);
    snprintf(S.key, sizeof S.key, "%s-key", S.tag);
    snprintf(S.cidr, sizeof S.cidr, "10.%d.%d.0/24", 100 + pid % 100, (pid / 100) % 250);
    char name[128];
    json_t *r;

    r = dc_call(src, FC_SVC_COMPUTE, "POST",
                json_pack("{s:{s:s, s:s}}", "keypair", "name", S.key, "public_key", PUBKEY),
                "/os-keypairs");
    json_decref(r);
    r = dc_call(src, FC_SVC_IMAGE, "GET", NULL, "/images?name=devcloud-tiny");
    cpy(S.image, json_array_get(json_object_get(r, "images"), 0), "id");
    json_decref(r);
    r = dc_call(src, FC_SVC_NETWORK, "GET", NULL, "/networks?router:external=true&name=%s",
                dc_external_network());
    cpy(S.ext, json_array_get(json_object_get(r, "networks"), 0), "id");
    json_decref(r);

    snprintf(name, sizeof name, "%s-net", S.tag);
    r = dc_call(src, FC_SVC_NETWORK, "POST", json_pack("{s:{s:s}}", "network", "name", name), "/networks");
    cpy(S.net, json_object_get(r, "network"), "id");
    json_decref(r);
    snprintf(name, sizeof name, "%s-subnet", S.tag);
    r = dc_call(src, FC_SVC_NETWORK, "POST",
                json_pack("{s:{s:s, s:s, s:s, s:i}}", "subnet", "name", name, "network_id", S.net,
                          "cidr", S.cidr, "ip_version", 4),
                "/subnets");
    cpy(S.subnet, json_object_get(r, "subnet"), "id");
    json_decref(r);
    snprintf(name, sizeof name, "%s-router", S.tag);
    r = dc_call(src, FC_SVC_NETWORK, "POST",
                json_pack("{s:{s:s, s:{s:s}}}", "router", "name", name, "external_gateway_info",
                          "network_id", S.ext),
                "/routers");
    cpy(S.router, json_object_get(r, "router"), "id");
    json_decref(r);
    json_decref(dc_call(src, FC_SVC_NETWORK, "PUT", json_pack("{s:s}", "subnet_id", S.subnet),
                        "/routers/%s/add_router_interface", S.router));

    const char *sgn[] = {"web", "db", "outside"};
    char *sgid[] = {S.sg_web, S.sg_db, S.sg_out};
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "%s-%s", S.tag, sgn[i]);
        r = dc_call(src, FC_SVC_NETWORK, "POST",
                    json_pack("{s:{s:s, s:s}}", "security_group", "name", name, "description",
                              "fluid integration test"),
                    "/security-groups");
        cpy(sgid[i], json_object_get(r, "security_group"), "id");
        json_decref(r);
    }
    make_rule(S.rule_web80, rule(S.sg_web, "tcp", 80, NULL, "0.0.0.0/0"));
    make_rule(S.rule_web22, rule(S.sg_web, "tcp", 22, S.sg_db, NULL));
    make_rule(S.rule_db5432, rule(S.sg_db, "tcp", 5432, S.sg_web, NULL));
    make_rule(S.rule_db_out, rule(S.sg_db, "tcp", 9100, S.sg_out, NULL));

    make_server(S.web, "web", flavor_id("m1.medium", S.medium), "web", "web");
    make_server(S.db, "db", flavor_id("m1.tiny", S.tiny), "db", "db");
    char path[256];
    snprintf(path, sizeof path, "/servers/%s", S.web);
    json_decref(dc_wait(src, FC_SVC_COMPUTE, path, "server", "status", "ACTIVE", 180));
    snprintf(path, sizeof path, "/servers/%s", S.db);
    json_decref(dc_wait(src, FC_SVC_COMPUTE, path, "server", "status", "ACTIVE", 180));

    snprintf(name, sizeof name, "%s-data", S.tag);
    r = dc_call(src, FC_SVC_VOLUME, "POST", json_pack("{s:{s:i, s:s}}", "volume", "size", 1, "name", name),
                "/volumes");
    cpy(S.vol, json_object_get(r, "volume"), "id");
    json_decref(r);
    snprintf(path, sizeof path, "/volumes/%s", S.vol);
    json_decref(dc_wait(src, FC_SVC_VOLUME, path, "volume", "status", "available", 120));
    r = dc_call(src, FC_SVC_COMPUTE, "POST",
                json_pack("{s:{s:s}}", "volumeAttachment", "volumeId", S.vol),
                "/servers/%s/os-volume_attachments", S.db);
    cpy(S.device, json_object_get(r, "volumeAttachment"), "device");
    json_decref(r);
    json_decref(dc_wait(src, FC_SVC_VOLUME, path, "volume", "status", "in-use", 120));

    port_of(S.web, S.web_port, S.web_ip, S.web_mac);
    port_of(S.db, S.db_port, S.db_ip, S.db_mac);
    r = dc_call(src, FC_SVC_NETWORK, "POST",
                json_pack("{s:{s:s, s:s}}", "floatingip", "floating_network_id", S.ext, "port_id",
                          S.web_port),
                "/floatingips");
    cpy(S.fip, json_object_get(r, "floatingip"), "id");
    cpy(S.fip_addr, json_object_get(r, "floatingip"), "floating_ip_address");
    json_decref(r);
}

static void
destroy_service(void)
{
    if (!src)
        return;
    char path[256];
    if (*S.fip)
        dc_try(src, FC_SVC_NETWORK, "DELETE", NULL, "/floatingips/%s", S.fip);
    const char *servers[] = {S.web, S.db};
    for (int i = 0; i < 2; i++) {
        if (!*servers[i])
            continue;
        dc_try(src, FC_SVC_COMPUTE, "DELETE", NULL, "/servers/%s", servers[i]);
    }
    for (int i = 0; i < 2; i++) {
        if (!*servers[i])
            continue;
        snprintf(path, sizeof path, "/servers/%s", servers[i]);
        dc_wait_gone(src, FC_SVC_COMPUTE, path, 120);
    }
    if (*S.vol) {
        for (int i = 0; i < 60; i++) {
            if (dc_try(src, FC_SVC_VOLUME, "DELETE", NULL, "/volumes/%s", S.vol) != FC_E_REMOTE)
                break;
            sleep(1); /* still detaching */
        }
    }
    if (*S.router && *S.subnet)
        dc_try(src, FC_SVC_NETWORK, "PUT", json_pack("{s:s}", "subnet_id", S.subnet),
               "/routers/%s/remove_router_interface", S.router);
    if (*S.router)
        dc_try(src, FC_SVC_NETWORK, "DELETE", NULL, "/routers/%s", S.router);
    if (*S.net)
        dc_try(src, FC_SVC_NETWORK, "DELETE", NULL, "/networks/%s", S.net);
    const char *sgs[] = {S.sg_web, S.sg_db, S.sg_out};
    for (int i = 0; i < 3; i++)
        if (*sgs[i])
            dc_try(src, FC_SVC_NETWORK, "DELETE", NULL, "/security-groups/%s", sgs[i]);
    if (*S.key)
        dc_try(src, FC_SVC_COMPUTE, "DELETE", NULL, "/os-keypairs/%s", S.key);
}

static void
setup(void)
{
    dc_setup();
    password = dc_password(dc_source());
    src = dc_open(dc_source());
    ct_capture_start();
    create_service();
}

static void
teardown(void)
{
    destroy_service();
    fc_os_close(src);
    src = NULL;
    char *log = ct_capture_stop();
    ct_no_secret(log, password, "the log");
    free(log);
    free(password);
}


TestSuite(service, .init = setup, .fini = teardown, .timeout = 900);

static const json_t *
by_id(const json_t *topo, const char *list, const char *id)
{
    const json_t *e = fc_json_find(json_object_get(topo, list), "id", id);
    cr_assert_not_null(e, "%s has no %s", list, id);
    return e;
}

static void
str_is(const json_t *o, const char *k, const char *want)
{
    const char *v = json_string_value(json_object_get(o, k));
    cr_assert(v && strcmp(v, want) == 0, "%s is %s, not %s", k, v ? v : "(null)", want);
}

static void
int_is(const json_t *o, const char *k, json_int_t want)
{
    cr_assert(json_is_integer(json_object_get(o, k)), "%s is not an integer", k);
    cr_assert_eq(json_integer_value(json_object_get(o, k)), want, "%s", k);
}

static void
strv_is(const json_t *o, const char *k, const char *want)
{
    const json_t *a = json_object_get(o, k);
    cr_assert_eq(json_array_size(a), 1, "%s has %zu entries", k, json_array_size(a));
    cr_assert_str_eq(json_string_value(json_array_get(a, 0)), want, "%s", k);
}

static void
check_rule(const json_t *sg, const char *id, const char *proto, int port, const char *rgroup,
           const char *prefix)
{
    const json_t *r = fc_json_find(json_object_get(sg, "rules"), "id", id);
    cr_assert_not_null(r, "rule %s missing", id);
    str_is(r, "direction", "ingress");
    str_is(r, "ethertype", "IPv4");
    str_is(r, "protocol", proto);
    int_is(r, "port_range_min", port);
    int_is(r, "port_range_max", port);
    if (rgroup)
        str_is(r, "remote_group_id", rgroup);
    else
        cr_assert(json_is_null(json_object_get(r, "remote_group_id")));
    if (prefix)
        str_is(r, "remote_ip_prefix", prefix);
}

static void
check_topology(const json_t *t)
{
    FC_AUTO(topology) struct fc_topology *v = NULL;
    cr_assert_eq(fc_topology_from_json(t, &v), FC_OK, "not a valid Topology: %s", fc_error_msg());
    cr_assert_eq(json_array_size(json_object_get(t, "servers")), 2);
    char n[128];

    const json_t *web = by_id(t, "servers", S.web), *db = by_id(t, "servers", S.db);
    snprintf(n, sizeof n, "%s-web", S.tag);
    str_is(web, "name", n);
    str_is(web, "status", "ACTIVE");
    str_is(web, "flavor_id", S.medium);
    str_is(web, "image_id", S.image);
    cr_assert(json_is_null(json_object_get(web, "boot_volume_id")));
    str_is(web, "key_name", S.key);
    strv_is(web, "port_ids", S.web_port);
    strv_is(web, "security_groups", S.sg_web);
    strv_is(web, "tags", S.tag);
    str_is(json_object_get(web, "metadata"), "role", "web");
    cr_assert_eq(json_array_size(json_object_get(web, "volume_attachments")), 0);
    str_is(db, "flavor_id", S.tiny);
    strv_is(db, "security_groups", S.sg_db);
    str_is(json_object_get(db, "metadata"), "role", "db");
    const json_t *va = json_array_get(json_object_get(db, "volume_attachments"), 0);
    cr_assert_eq(json_array_size(json_object_get(db, "volume_attachments")), 1);
    str_is(va, "volume_id", S.vol);
    str_is(va, "server_id", S.db);
    str_is(va, "device", S.device);

    /* flavors: as Nova has them, extra specs included */
    json_t *fr = dc_call(src, FC_SVC_COMPUTE, "GET", NULL, "/flavors/%s", S.medium);
    json_t *es = dc_call(src, FC_SVC_COMPUTE, "GET", NULL, "/flavors/%s/os-extra_specs", S.medium);
    const json_t *api = json_object_get(fr, "flavor"), *fl = by_id(t, "flavors", S.medium);
    str_is(fl, "name", "m1.medium");
    int_is(fl, "vcpus", json_integer_value(json_object_get(api, "vcpus")));
    int_is(fl, "ram_mb", json_integer_value(json_object_get(api, "ram")));
    int_is(fl, "disk_gb", json_integer_value(json_object_get(api, "disk")));
    cr_assert(json_object_size(json_object_get(es, "extra_specs")) > 0, "m1.medium has extra specs");
    cr_assert(json_equal(json_object_get(fl, "extra_specs"), json_object_get(es, "extra_specs")),
              "extra specs differ");
    json_decref(fr);
    json_decref(es);
    by_id(t, "flavors", S.tiny);

    json_t *ir = dc_call(src, FC_SVC_IMAGE, "GET", NULL, "/images/%s", S.image);
    const json_t *im = by_id(t, "images", S.image);
    str_is(im, "name", "devcloud-tiny");
    str_is(im, "disk_format", json_string_value(json_object_get(ir, "disk_format")));
    int_is(im, "size", json_integer_value(json_object_get(ir, "size")));
    json_decref(ir);

    json_t *vr = dc_call(src, FC_SVC_VOLUME, "GET", NULL, "/volumes/%s", S.vol);
    const json_t *vol = by_id(t, "volumes", S.vol);
    snprintf(n, sizeof n, "%s-data", S.tag);
    str_is(vol, "name", n);
    int_is(vol, "size_gb", 1);
    cr_assert(json_is_false(json_object_get(vol, "bootable")));
    str_is(vol, "volume_type", json_string_value(json_object_get(json_object_get(vr, "volume"), "volume_type")));
    str_is(vol, "status", "in-use");
    const json_t *att = json_array_get(json_object_get(vol, "attachments"), 0);
    str_is(att, "server_id", S.db);
    str_is(att, "device", S.device);
    json_decref(vr);

    const json_t *wp = by_id(t, "ports", S.web_port), *dp = by_id(t, "ports", S.db_port);
    str_is(wp, "network_id", S.net);
    str_is(wp, "mac_address", S.web_mac);
    str_is(wp, "device_id", S.web);
    strv_is(wp, "security_group_ids", S.sg_web);
    str_is(json_array_get(json_object_get(wp, "fixed_ips"), 0), "ip_address", S.web_ip);
    str_is(json_array_get(json_object_get(wp, "fixed_ips"), 0), "subnet_id", S.subnet);
    str_is(dp, "mac_address", S.db_mac);
    str_is(json_array_get(json_object_get(dp, "fixed_ips"), 0), "ip_address", S.db_ip);

    cr_assert_eq(json_array_size(json_object_get(t, "floating_ips")), 1);
    const json_t *fip = by_id(t, "floating_ips", S.fip);
    str_is(fip, "floating_ip_address", S.fip_addr);
    str_is(fip, "port_id", S.web_port);
    str_is(fip, "fixed_ip_address", S.web_ip);
    str_is(fip, "floating_network_id", S.ext);

    /* security groups: the two of the service, with every rule Neutron has for them */
    cr_assert_eq(json_array_size(json_object_get(t, "security_groups")), 2);
    const json_t *gw = by_id(t, "security_groups", S.sg_web), *gd = by_id(t, "security_groups", S.sg_db);
    check_rule(gw, S.rule_web80, "tcp", 80, NULL, "0.0.0.0/0");
    check_rule(gw, S.rule_web22, "tcp", 22, S.sg_db, NULL);
    check_rule(gd, S.rule_db5432, "tcp", 5432, S.sg_web, NULL);
    check_rule(gd, S.rule_db_out, "tcp", 9100, S.sg_out, NULL);
    const json_t *groups[] = {gw, gd};
    for (int i = 0; i < 2; i++) {
        json_t *rr = dc_call(src, FC_SVC_NETWORK, "GET", NULL, "/security-group-rules?security_group_id=%s",
                             json_string_value(json_object_get(groups[i], "id")));
        cr_assert_eq(json_array_size(json_object_get(groups[i], "rules")),
                     json_array_size(json_object_get(rr, "security_group_rules")), "every rule");
        json_decref(rr);
    }

    cr_assert_eq(json_array_size(json_object_get(t, "keypairs")), 1);
    const json_t *kp = json_array_get(json_object_get(t, "keypairs"), 0);
    str_is(kp, "name", S.key);
    str_is(kp, "public_key", PUBKEY);

    const json_t *net = by_id(t, "networks", S.net), *ext = by_id(t, "networks", S.ext);
    snprintf(n, sizeof n, "%s-net", S.tag);
    str_is(net, "name", n);
    strv_is(net, "subnet_ids", S.subnet);
    cr_assert(json_is_true(json_object_get(ext, "external")));
    const json_t *sn = by_id(t, "subnets", S.subnet);
    str_is(sn, "cidr", S.cidr);
    str_is(sn, "network_id", S.net);
    int_is(sn, "ip_version", 4);
    const json_t *rt = by_id(t, "routers", S.router);
    str_is(rt, "external_network_id", S.ext);
    str_is(json_array_get(json_object_get(rt, "interfaces"), 0), "subnet_id", S.subnet);
}

/* Runs fluidctl with args; returns its stdout (malloc'd) and exit status. */
static char *
fluidctl(const char *const *args, int *code)
{
    const char *bin = getenv("FLUID_BIN_DIR");
    cr_assert_not_null(bin, "FLUID_BIN_DIR is not set: run through ctest");
    char exe[1024];
    snprintf(exe, sizeof exe, "%s/fluidctl", bin);
    cr_assert(access(exe, X_OK) == 0, "%s was not built", exe);
    const char *argv[32] = {exe};
    size_t n = 1;
    for (; args[n - 1]; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    size_t cap = 8 << 20;
    char *out = calloc(1, cap), err[65536];
    int status = -1;
    cr_assert_eq(fc_run(argv, out, cap, err, sizeof err, &status), FC_OK, "%s", fc_error_msg());
    ct_no_secret(out, password, "fluidctl's output");
    ct_no_secret(err, password, "fluidctl's stderr");
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (*code != 0)
        fprintf(stderr, "fluidctl stderr: %s\n", err);
    return out;
}

Test(service, inspect_and_plan)
{
    /* inspection through the library */
    struct fc_selector sel = {.tag = S.tag};
    json_auto_t *topo = NULL, *warnings = NULL;
    cr_assert_eq(fc_topology_inspect(src, &sel, &topo, &warnings), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(json_array_size(warnings), 0, "%s", json_dumps(warnings, 0));
    check_topology(topo);

    /* and through fluidctl: --json is the same topology; the table names everything */
    int code;
    const char *a1[] = {"inspect", "--cloud", dc_source(), "--tag", S.tag, "--json", NULL};
    char *out = fluidctl(a1, &code);
    cr_assert_eq(code, 0);
    json_auto_t *t2 = json_loads(out, 0, NULL);
    cr_assert_not_null(t2, "fluidctl inspect --json printed no JSON");
    check_topology(t2);
    free(out);
    const char *a2[] = {"inspect", "--cloud", dc_source(), "--server", S.web, "--server", S.db, NULL};
    out = fluidctl(a2, &code);
    cr_assert_eq(code, 0);
    char want[256];
    snprintf(want, sizeof want, "SERVER %s-web (%s) ACTIVE", S.tag, S.web);
    cr_assert(strstr(out, want), "table lacks '%s':\n%s", want, out);
    snprintf(want, sizeof want, "SECURITY GROUP %s-db", S.tag);
    cr_assert(strstr(out, want) && strstr(out, S.fip_addr) && strstr(out, S.device), "%s", out);
    free(out);

    /* planning to the target: reads only */
    struct fc_os *dst = dc_open(dc_target());
    json_auto_t *before = NULL, *after = NULL, *plan = NULL, *rep = NULL;
    size_t k;
    json_t *c;
    cr_assert_eq(fc_plan_read_target(dst, &before), FC_OK, "%s", fc_error_msg());
    struct fc_plan_opts o = {.src_cloud = dc_source(), .dst_cloud = dc_target()};
    cr_assert_eq(fc_plan_build(topo, before, &o, &plan, &rep), FC_OK, "%s", fc_error_msg());
    FC_AUTO(plan) struct fc_plan *p = NULL;
    cr_assert_eq(fc_plan_from_json(plan, &p), FC_OK, "%s", fc_error_msg());
    /* a valid order: every task after what it depends on */
    size_t *order = calloc(p->ntasks, sizeof *order);
    fc_plan_topo_order(p, order);
    for (size_t i = 0; i < p->ntasks; i++)
        for (size_t d = 0; d < p->tasks[order[i]]->ndepends; d++) {
            long dep = fc_plan_find(p, p->tasks[order[i]]->depends_on[d]);
            bool earlier = false;
            for (size_t j = 0; j < i; j++)
                earlier = earlier || order[j] == (size_t)dep;
            cr_assert(earlier, "task %s runs before its dependency", p->tasks[order[i]]->task_id);
        }
    free(order);
    /* every resource of the service gets a target name derived from the relocation */
    const char *rid = p->relocation_id;
    struct {
        const char *kind, *source;
    } want_created[] = {{"keypair", S.key}, {"security_group", "web"}, {"security_group", "db"},
                        {"network", "net"}, {"subnet", "subnet"}, {"router", "router"},
                        {"volume", "data"}, {"server", "web"}, {"server", "db"}};
    for (size_t i = 0; i < sizeof want_created / sizeof want_created[0]; i++) {
        char src_name[128], tn[256];
        if (strcmp(want_created[i].kind, "keypair") == 0)
            snprintf(src_name, sizeof src_name, "%s", want_created[i].source);
        else
            snprintf(src_name, sizeof src_name, "%s-%s", S.tag, want_created[i].source);
        fc_plan_target_name(rid, src_name, tn, sizeof tn);
        bool found = false;
        json_array_foreach(json_object_get(rep, "creates"), k, c) {
            found = found || (strcmp(json_string_value(json_object_get(c, "kind")), want_created[i].kind) == 0 &&
                              strcmp(json_string_value(json_object_get(c, "target_name")), tn) == 0);
        }
        cr_assert(found, "no %s named %s in the plan", want_created[i].kind, tn);
    }
    size_t snaps = 0, images = 0, fips = 0;
    json_array_foreach(json_object_get(rep, "creates"), k, c) {
        const char *kind = json_string_value(json_object_get(c, "kind"));
        snaps += strcmp(kind, "snapshot") == 0;
        images += strcmp(kind, "image") == 0;
        fips += strcmp(kind, "floating_ip") == 0;
        str_is(c, "action", "create");
    }
    cr_assert(snaps == 2 && images == 2 && fips == 1, "%zu %zu %zu", snaps, images, fips);
    /* what cannot be carried over: the rule to the group outside the service */
    cr_assert_eq(json_array_size(json_object_get(rep, "unmappable")), 1,
                 "%s", json_dumps(json_object_get(rep, "unmappable"), 0));
    const json_t *u = json_array_get(json_object_get(rep, "unmappable"), 0);
    str_is(u, "kind", "security_group_rule");
    str_is(u, "id", S.rule_db_out);
    cr_assert(strstr(json_string_value(json_object_get(u, "reason")), S.sg_out));

    /* fluidctl plan gives the same plan (names and ids are derived, not random) */
    const char *a3[] = {"plan", "--from", dc_source(), "--to", dc_target(), "--tag", S.tag, "--json", NULL};
    out = fluidctl(a3, &code);
    cr_assert_eq(code, 0);
    json_auto_t *plan2 = json_loads(out, 0, NULL);
    cr_assert(json_equal(plan, plan2), "fluidctl's plan differs from the library's");
    free(out);

    /* neither cloud changed: nothing the plan names exists on the target after planning
     * (other tests share the target project, so its totals may move meanwhile) */
    cr_assert_eq(fc_plan_read_target(dst, &after), FC_OK, "%s", fc_error_msg());
    const struct {
        const char *kind, *list;
    } lists[] = {{"server", "servers"}, {"network", "networks"}, {"subnet", "subnets"},
                 {"router", "routers"}, {"security_group", "security_groups"},
                 {"keypair", "keypairs"}, {"image", "images"}, {"volume", "volumes"}};
    json_array_foreach(json_object_get(rep, "creates"), k, c) {
        for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
            if (strcmp(json_string_value(json_object_get(c, "kind")), lists[i].kind) != 0)
                continue;
            const char *tn = json_string_value(json_object_get(c, "target_name"));
            cr_assert_null(fc_json_find(json_object_get(after, lists[i].list), "name", tn),
                           "planning created %s %s on the target", lists[i].kind, tn);
        }
    }
    json_auto_t *topo2 = NULL;
    cr_assert_eq(fc_topology_inspect(src, &sel, &topo2, NULL), FC_OK);
    json_object_del(topo, "inspected_at");
    json_object_del(topo2, "inspected_at");
    cr_assert(json_equal(topo, topo2), "the source changed");
    fc_os_close(dst);
}
