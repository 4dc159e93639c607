/* SPDX-License-Identifier: Apache-2.0 */
/* The volume method `ssh` and the config rewrite step, planned and run as the broker runs a
 * plan: a one-server service with a floating IP and a 1 GiB volume attached at /dev/vdb is
 * made in the source project; data is written straight into the volume's backend file
 * (Cinder's NFS folder on the devcloud); the relocation is planned with volume_method ssh
 * (the sshd fixture stands in for both clouds' storage hosts, named by clouds.yaml
 * storage_ssh), rules and config_ssh (the sshd fixture stands in for the relocated server:
 * the fake driver's guests have no SSH). Checked: the target volume's file is byte-identical
 * (SHA-256), the volume is attached at the source's device, the configuration file holds the target's
 * new addresses read from the API, the device and the mount point; a second run creates and
 * writes nothing. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloud_test.h"
#include "devcloud_api.h"
#include "fluid/cloud/plan.h"
#include "fluid/cloud/topology.h"
#include "fluid/error.h"
#include "fluid/sha256.h"
#include "os_run.h"

static json_t *sshd, *dcenv;

static void
setup(void)
{
    dc_setup();
    sshd = ct_fixture_env("sshd");
    dcenv = ct_fixture_env("devcloud");
}

TestSuite(steps, .init = setup, .timeout = 2400);

static const char *
sv(const char *k)
{
    const char *v = json_string_value(json_object_get(sshd, k));
    cr_assert_not_null(v, "sshd.env lacks %s", k);
    return v;
}

static void
mk(const char *const *args)
{
    struct osr r;
    osr_run(&r, -1, -1, args);
    cr_assert_eq(r.exit, 0, "%s: %s %s", args[0], r.events, r.err);
    osr_free(&r);
}

static void
file_sha(const char *path, char hex[65])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "%s", path);
    struct fc_sha256 h;
    static uint8_t b[1 << 20];
    uint8_t d[32];
    ssize_t n;
    fc_sha256_init(&h);
    while ((n = read(fd, b, sizeof b)) > 0)
        fc_sha256_update(&h, b, (size_t)n);
    close(fd);
    fc_sha256_final(&h, d);
    fc_sha256_free(&h);
    fc_hex(d, 32, hex);
}

static char *
slurp_file(const char *path)
{
    FILE *f = fopen(path, "re");
    cr_assert_not_null(f, "%s", path);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

Test(steps, volume_ssh_and_config_rewrite_then_nothing_twice)
{
    const char *src = dc_source(), *dst = dc_target();
    const char *state = json_string_value(json_object_get(dcenv, "DEVCLOUD_STATE_DIR"));
    cr_assert_not_null(state, "devcloud.env lacks DEVCLOUD_STATE_DIR");
    int pid = (int)getpid();
    char dir[] = "/tmp/fluid-ossteps-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    /* clouds.yaml: the fixture's clouds, each with storage_ssh to the sshd fixture */
    char yaml[300], extra[2048];
    snprintf(yaml, sizeof yaml, "%s/clouds.yaml", dir);
    snprintf(extra, sizeof extra,
             "    storage_ssh:\n      host: \"%s\"\n      port: \"%s\"\n      user: \"%s\"\n"
             "      identity: \"%s\"\n      known_hosts: \"%s\"\n"
             "      path: \"%s/cinder/nfs-export/volume-{id}\"\n",
             sv("SSHD_HOST"), sv("SSHD_PORT"), sv("SSHD_USER"), sv("SSHD_IDENTITY"),
             sv("SSHD_KNOWN_HOSTS"), state);
    osr_clouds_yaml(yaml, (const char *[]){src, dst, NULL}, (const char *[]){extra, extra});
    setenv("OS_CLIENT_CONFIG_FILE", yaml, 1);

    /* the service in the source project */
    char net[40], sub[40], rt[40], srv[40], tag[40], vol[40], seed[40], cidr[40], port[80];
    snprintf(net, sizeof net, "vn%d", pid);
    snprintf(sub, sizeof sub, "vs%d", pid);
    snprintf(rt, sizeof rt, "vr%d", pid);
    snprintf(srv, sizeof srv, "vsrv%d", pid);
    snprintf(tag, sizeof tag, "vapp%d", pid);
    snprintf(vol, sizeof vol, "vdata%d", pid);
    snprintf(seed, sizeof seed, "r-vseed%d", pid);
    snprintf(cidr, sizeof cidr, "10.%d.7.0/24", 100 + pid % 100);
    snprintf(port, sizeof port, "network=%s", net);
    char tagj[60];
    snprintf(tagj, sizeof tagj, "[\"%s\"]", tag);
#define SRC "--cloud", src, "--relocation-id", seed
    mk((const char *[]){"network-create", SRC, "--name", net, NULL});
    mk((const char *[]){"subnet-create", SRC, "--network", net, "--name", sub, "--cidr", cidr,
                        "--dhcp", NULL});
    mk((const char *[]){"router-create", SRC, "--name", rt, "--external-network",
                        dc_external_network(), "--subnet", sub, NULL});
    mk((const char *[]){"server-create", SRC, "--name", srv, "--flavor", "m1.tiny", "--image",
                        "devcloud-tiny", "--port", port, "--tags-json", tagj, NULL});
    mk((const char *[]){"floating-ip", SRC, "--server", srv, "--external-network",
                        dc_external_network(), NULL});
    struct fc_os *so = dc_open(src), *to = dc_open(dst);
    json_t *v = dc_call(so, FC_SVC_VOLUME, "POST",
                        json_pack("{s:{s:s,s:i}}", "volume", "name", vol, "size", 1), "/volumes");
    char vid[80];
    snprintf(vid, sizeof vid, "%s", json_string_value(json_object_get(json_object_get(v, "volume"), "id")));
    json_decref(v);
    char vpath[300];
    snprintf(vpath, sizeof vpath, "/volumes/%s", vid);
    json_decref(dc_wait(so, FC_SVC_VOLUME, vpath, "volume", "status", "available", 300));
    mk((const char *[]){"volume-attach", SRC, "--server", srv, "--volume", vid, "--device",
                        "/dev/vdb", NULL});
#undef SRC
    /* the device the hypervisor chose (the fake driver picks /dev/sdb): kept on the target */
    char sdev[64];
    v = dc_call(so, FC_SVC_VOLUME, "GET", NULL, "/volumes/%s", vid);
    snprintf(sdev, sizeof sdev, "%s", json_string_value(json_object_get(json_array_get(
        json_object_get(json_object_get(v, "volume"), "attachments"), 0), "device")));
    json_decref(v);
    cr_assert(strncmp(sdev, "/dev/", 5) == 0, "source attachment device: %s", sdev);
    /* data straight into the volume's backend file: 2 MiB at 0, 1 MiB at 700 MiB */
    char sfile[400], shex[65];
    snprintf(sfile, sizeof sfile, "%s/cinder/nfs-export/volume-%s", state, vid);
    int fd = open(sfile, O_WRONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "the source volume's file %s", sfile);
    uint8_t *data = malloc(2u << 20);
    int ur = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    cr_assert_eq(read(ur, data, 2u << 20), (ssize_t)(2u << 20));
    close(ur);
    cr_assert_eq(pwrite(fd, data, 2u << 20, 0), (ssize_t)(2u << 20));
    cr_assert_eq(pwrite(fd, data, 1u << 20, 700ull << 20), (ssize_t)(1u << 20));
    fsync(fd);
    close(fd);
    free(data);
    file_sha(sfile, shex);

    /* the application's configuration (on the "relocated server": the sshd fixture) */
    char app[300], conf[400], rules[300];
    snprintf(app, sizeof app, "%s/app", dir);
    cr_assert_eq(mkdir(app, 0755), 0);
    snprintf(conf, sizeof conf, "%s/app.conf", app);
    FILE *f = fopen(conf, "we");
    fprintf(f, "listen = 198.51.100.7\npeer = 10.0.0.1\nold = none\ndata = /var/lib/app\n"
               "device = none\nkeep = this line\n");
    fclose(f);
    snprintf(rules, sizeof rules, "%s/rules.json", dir);
    f = fopen(rules, "we");
    fprintf(f,
            "{\"schema\": \"fluid.config-rules/1\", \"roots\": [\"%s\"], \"files\": [\n"
            " {\"glob\": \"app.conf\", \"required\": true, \"rules\": [\n"
            "  {\"type\": \"regex\", \"pattern\": \"^listen = .*$\", \"flags\": \"m\", "
            "\"replace\": \"listen = ${self.target.floating_ip}\"},\n"
            "  {\"type\": \"regex\", \"pattern\": \"^peer = .*$\", \"flags\": \"m\", "
            "\"replace\": \"peer = ${target.server.%s.fixed_ip}\"},\n"
            "  {\"type\": \"regex\", \"pattern\": \"^old = .*$\", \"flags\": \"m\", "
            "\"replace\": \"old = ${source.server.%s.floating_ip}\"},\n"
            "  {\"type\": \"regex\", \"pattern\": \"^data = .*$\", \"flags\": \"m\", "
            "\"replace\": \"data = ${target.volume.%s.mountpoint}\"},\n"
            "  {\"type\": \"regex\", \"pattern\": \"^device = .*$\", \"flags\": \"m\", "
            "\"replace\": \"device = ${target.volume.%s.device}\"}]}]}\n",
            app, srv, srv, vol, vol);
    fclose(f);

    /* the plan: inspected, read, built as the conduit does */
    json_t *topo = NULL, *target = NULL, *plan = NULL, *rep = NULL;
    struct fc_selector sel = {.tag = tag};
    cr_assert_eq(fc_topology_inspect(so, &sel, &topo, NULL), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(fc_plan_read_target(to, &target), FC_OK, "%s", fc_error_msg());
    json_t *cssh = json_pack("{s:s, s:i, s:s, s:s, s:s}", "host", sv("SSHD_HOST"), "port",
                             atoi(sv("SSHD_PORT")), "user", sv("SSHD_USER"), "identity",
                             sv("SSHD_IDENTITY"), "known_hosts", sv("SSHD_KNOWN_HOSTS"));
    json_t *mps = json_pack("{s:s}", vol, "/srv/data");
    char rid[64];
    snprintf(rid, sizeof rid, "r-steps%d", pid);
    /* the rules inline, as the conduit passes a request's options.rules (--rules-json) */
    static char rules_doc[16384];
    FILE *rf = fopen(rules, "re");
    cr_assert_not_null(rf, "%s", rules);
    size_t rlen = fread(rules_doc, 1, sizeof rules_doc - 1, rf);
    fclose(rf);
    rules_doc[rlen] = '\0';
    struct fc_plan_opts o = {.src_cloud = src, .dst_cloud = dst, .relocation_id = rid,
                             .rules_doc = rules_doc, .volume_method = "ssh",
                             .config_ssh = cssh, .mountpoints = mps};
    cr_assert_eq(fc_plan_build(topo, target, &o, &plan, &rep), FC_OK, "%s", fc_error_msg());
    /* the fake driver's snapshot, filled under the plan's name first (as test_os_plan) */
    size_t i;
    json_t *t;
    bool ssh_task = false;
    json_array_foreach(json_object_get(plan, "tasks"), i, t) {
        json_t *args = json_object_get(json_array_get(json_object_get(t, "stages"), 0), "args");
        const char *a0 = json_string_value(json_array_get(args, 0));
        if (strcmp(a0, "volume-ssh-read") == 0)
            ssh_task = true;
        cr_assert(strcmp(a0, "volume-export") != 0, "the image method was planned");
        if (strcmp(a0, "snapshot") != 0)
            continue;
        char img[300];
        snprintf(img, sizeof img, "%s/img", dir);
        int ifd = open(img, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        char blk[65536];
        memset(blk, 0x3c, sizeof blk);
        cr_assert_eq(write(ifd, blk, sizeof blk), (ssize_t)sizeof blk);
        close(ifd);
        mk((const char *[]){"snapshot", "--cloud", src, "--relocation-id", rid, "--server",
                            json_string_value(json_array_get(args, 4)), "--name",
                            json_string_value(json_array_get(args, 6)), "--test-upload", img,
                            "--timeout", "300", NULL});
        unlink(img);
    }
    cr_assert(ssh_task, "no volume-ssh-read task in the plan");
    size_t c1 = osr_run_plan(plan);
    cr_assert_geq(c1, 8u, "the first run created only %zu resources", c1);

    /* the volume: byte-identical, marked, attached at /dev/vdb */
    char tvol[256], tsrv[256], thex[65], tfile[400];
    fc_plan_target_name(rid, vol, tvol, sizeof tvol);
    fc_plan_target_name(rid, srv, tsrv, sizeof tsrv);
    json_t *l = dc_call(to, FC_SVC_VOLUME, "GET", NULL, "/volumes/detail?name=%s", tvol);
    json_t *tv = json_array_get(json_object_get(l, "volumes"), 0);
    cr_assert_not_null(tv, "no volume %s on the target", tvol);
    cr_assert_eq(json_array_size(json_object_get(l, "volumes")), 1);
    snprintf(tfile, sizeof tfile, "%s/cinder/nfs-export/volume-%s", state,
             json_string_value(json_object_get(tv, "id")));
    file_sha(tfile, thex);
    cr_assert_str_eq(thex, shex, "the target volume's data differs from the source's");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(tv, "metadata"),
                                                       "fluid_ssh_sha256")), shex);
    json_t *att = json_array_get(json_object_get(tv, "attachments"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(att, "device")), sdev);
    json_t *sl = dc_call(to, FC_SVC_COMPUTE, "GET", NULL, "/servers/detail?name=%s", tsrv);
    json_t *ts = json_array_get(json_object_get(sl, "servers"), 0);
    cr_assert_not_null(ts);
    cr_assert_str_eq(json_string_value(json_object_get(att, "server_id")),
                     json_string_value(json_object_get(ts, "id")));
    json_decref(l);

    /* the configuration: the target's addresses as the API has them */
    json_t *ports = dc_call(to, FC_SVC_NETWORK, "GET", NULL, "/ports?device_id=%s",
                            json_string_value(json_object_get(ts, "id")));
    json_t *p0 = json_array_get(json_object_get(ports, "ports"), 0);
    const char *fixed = json_string_value(json_object_get(
        json_array_get(json_object_get(p0, "fixed_ips"), 0), "ip_address"));
    json_t *fl = dc_call(to, FC_SVC_NETWORK, "GET", NULL, "/floatingips?port_id=%s",
                         json_string_value(json_object_get(p0, "id")));
    const char *fip = json_string_value(json_object_get(
        json_array_get(json_object_get(fl, "floatingips"), 0), "floating_ip_address"));
    cr_assert(fixed && fip, "the relocated server has no fixed or floating IP");
    char want[2048];
    json_t *srcfip = NULL;
    {
        json_t *ss = dc_call(so, FC_SVC_COMPUTE, "GET", NULL, "/servers/detail?name=%s", srv);
        json_t *sp = dc_call(so, FC_SVC_NETWORK, "GET", NULL, "/ports?device_id=%s",
                             json_string_value(json_object_get(
                                 json_array_get(json_object_get(ss, "servers"), 0), "id")));
        srcfip = dc_call(so, FC_SVC_NETWORK, "GET", NULL, "/floatingips?port_id=%s",
                         json_string_value(json_object_get(
                             json_array_get(json_object_get(sp, "ports"), 0), "id")));
        json_decref(ss);
        json_decref(sp);
    }
    const char *old = json_string_value(json_object_get(
        json_array_get(json_object_get(srcfip, "floatingips"), 0), "floating_ip_address"));
    snprintf(want, sizeof want,
             "listen = %s\npeer = %s\nold = %s\ndata = /srv/data\ndevice = %s\n"
             "keep = this line\n", fip, fixed, old, sdev);
    cr_assert_str_eq(slurp_file(conf), want);
    struct stat st1, st2;
    cr_assert_eq(stat(conf, &st1), 0);
    struct stat vt1, vt2;
    cr_assert_eq(stat(tfile, &vt1), 0);

    /* the second run, planned with the rules as a file (--rules FILE, the action's other
     * way): nothing created, nothing written */
    json_t *plan2 = NULL, *rep2 = NULL;
    o.rules_doc = NULL;
    o.rules = rules;
    cr_assert_eq(fc_plan_build(topo, target, &o, &plan2, &rep2), FC_OK, "%s", fc_error_msg());
    size_t c2 = osr_run_plan(plan2);
    json_decref(plan2);
    json_decref(rep2);
    cr_assert_eq(c2, 0u, "the second run created %zu resources", c2);
    cr_assert_eq(stat(conf, &st2), 0);
    cr_assert(st1.st_ino == st2.st_ino && st1.st_mtime == st2.st_mtime,
              "the config file was written again");
    cr_assert_eq(stat(tfile, &vt2), 0);
    cr_assert(vt1.st_ino == vt2.st_ino && vt1.st_mtime == vt2.st_mtime,
              "the target volume's file was written again");
    cr_assert_str_eq(slurp_file(conf), want);
    l = dc_call(to, FC_SVC_VOLUME, "GET", NULL, "/volumes/detail?name=%s", tvol);
    cr_assert_eq(json_array_size(json_object_get(l, "volumes")), 1);
    json_decref(l);

    json_decref(srcfip);
    json_decref(fl);
    json_decref(ports);
    json_decref(sl);
    json_decref(topo);
    json_decref(target);
    json_decref(plan);
    json_decref(rep);
    json_decref(cssh);
    json_decref(mps);
    fc_os_close(so);
    fc_os_close(to);
    unlink(conf);
    rmdir(app);
    unlink(rules);
    unlink(yaml);
    rmdir(dir);
}
