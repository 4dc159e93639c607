/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-openstack against the devcloud: keypair, security groups (a rule naming the other
 * group's copy), image export -> import byte-identical (and resumed), snapshot (the fake
 * driver's queued image is a clear error; --test-upload fills it), server-create and
 * floating-ip. Each is read back through the API; a second run creates nothing (resources
 * counted before and after); bad input fails clearly; no password in any output. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloud_test.h"
#include "devcloud_api.h"
#include "fluid/error.h"
#include "fluid/sha256.h"
#include "fluid/stream.h"
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

/* Every output of a run holds no password. */
static void
no_secret(const struct osr *r)
{
    ct_no_secret(r->err, pw_src, "stderr");
    ct_no_secret(r->events, pw_src, "events");
    ct_no_secret(r->err, pw_dst, "stderr");
    ct_no_secret(r->events, pw_dst, "events");
}

static void
ok(const struct osr *r, const char *what)
{
    no_secret(r);
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

TestSuite(actions, .init = setup, .fini = teardown, .timeout = 1200);

Test(actions, keypair_import_then_reuse)
{
    struct fc_os *os = dc_open(dc_target());
    const char *pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFwMhP0dWfXKH5Zk0Xn1rQ0aF7mQb0V3"
                      "Zs3Xj2m8Kx1y fluid-test";
    char name[80];
    snprintf(name, sizeof name, "kp%d-fc1", (int)getpid());
    const char *args[] = {"keypair-import", "--cloud", dc_target(), "--relocation-id", rid,
                          "--name", name, "--public-key", pub, NULL};
    size_t before = osr_count_matching(os, FC_SVC_COMPUTE, "/os-keypairs", "keypairs", "name", name);
    struct osr r;
    osr_run(&r, -1, -1, args);
    ok(&r, "keypair-import");
    cr_assert_str_eq(osr_action(&r, "keypair"), "created");
    osr_free(&r);
    json_t *k = dc_call(os, FC_SVC_COMPUTE, "GET", NULL, "/os-keypairs/%s", name);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(k, "keypair"),
                                                       "public_key")), pub);
    json_decref(k);
    osr_run(&r, -1, -1, args);
    ok(&r, "keypair-import again");
    cr_assert_str_eq(osr_action(&r, "keypair"), "reused");
    osr_free(&r);
    cr_assert_eq(osr_count_matching(os, FC_SVC_COMPUTE, "/os-keypairs", "keypairs", "name", name),
                 before + 1);
    /* a private key is refused without being sent anywhere */
    const char *priv[] = {"keypair-import", "--cloud", dc_target(), "--relocation-id", rid,
                          "--name", "kp-priv-fc1", "--public-key",
                          "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n", NULL};
    osr_run(&r, -1, -1, priv);
    cr_assert_eq(r.exit, FC_E_INVALID, "%s", r.err);
    cr_assert(strstr(json_string_value(json_object_get(r.error, "message")), "private key"));
    osr_free(&r);
    dc_try(os, FC_SVC_COMPUTE, "DELETE", NULL, "/os-keypairs/%s", name);
    fc_os_close(os);
}

static const char *
sg_id(struct fc_os *os, const char *name)
{
    static char id[2][64];
    static int slot;
    json_t *r = dc_call(os, FC_SVC_NETWORK, "GET", NULL, "/security-groups?name=%s", name);
    json_t *g = json_array_get(json_object_get(r, "security_groups"), 0);
    cr_assert_not_null(g, "no group %s", name);
    slot ^= 1;
    snprintf(id[slot], sizeof id[slot], "%s", json_string_value(json_object_get(g, "id")));
    json_decref(r);
    return id[slot];
}

static size_t
rule_count(struct fc_os *os, const char *gid)
{
    char path[200];
    snprintf(path, sizeof path, "/security-group-rules?security_group_id=%s", gid);
    return count(os, FC_SVC_NETWORK, path, "security_group_rules");
}

Test(actions, secgroups_with_rules_between_copies)
{
    struct fc_os *os = dc_open(dc_target());
    char web[80], db[80], rg[200];
    snprintf(web, sizeof web, "web%d-fc1", (int)getpid());
    snprintf(db, sizeof db, "db%d-fc1", (int)getpid());
    snprintf(rg, sizeof rg, "direction=ingress,ethertype=IPv4,protocol=tcp,port_min=5432,"
                            "port_max=5432,remote_group=%s", web);
    const char *cw[] = {"secgroup-create", "--cloud", dc_target(), "--relocation-id", rid,
                        "--name", web, "--description", "web tier", NULL};
    const char *cd[] = {"secgroup-create", "--cloud", dc_target(), "--relocation-id", rid,
                        "--name", db, NULL};
    const char *rd[] = {"secgroup-rules", "--cloud", dc_target(), "--relocation-id", rid,
                        "--group", db, "--rule", rg, "--rule",
                        "direction=ingress,ethertype=IPv4,protocol=tcp,port_min=22,port_max=22,"
                        "remote_ip=10.0.0.0/8",
                        "--rule", "direction=egress,ethertype=IPv4", NULL};
    char mine[40];
    snprintf(mine, sizeof mine, "%d-fc1", (int)getpid());
    size_t groups0 = osr_count_matching(os, FC_SVC_NETWORK, "/security-groups",
                                        "security_groups", "name", mine);
    for (int round = 0; round < 2; round++) {
        const char *want = round ? "reused" : "created";
        struct osr r;
        osr_run(&r, -1, -1, cw);
        ok(&r, "secgroup-create web");
        cr_assert_str_eq(osr_action(&r, "security_group"), want);
        osr_free(&r);
        osr_run(&r, -1, -1, cd);
        ok(&r, "secgroup-create db");
        cr_assert_str_eq(osr_action(&r, "security_group"), want);
        osr_free(&r);
        size_t rules0 = rule_count(os, sg_id(os, db));
        osr_run(&r, -1, -1, rd);
        ok(&r, "secgroup-rules");
        /* round 0: two new rules (the egress rule is Neutron's default one, reused) */
        cr_assert_eq(osr_count(&r, "created"), round ? 0u : 2u, "%s", r.events);
        cr_assert_eq(osr_count(&r, "reused"), round ? 3u : 1u, "%s", r.events);
        osr_free(&r);
        cr_assert_eq(rule_count(os, sg_id(os, db)), rules0 + (round ? 0 : 2));
    }
    cr_assert_eq(osr_count_matching(os, FC_SVC_NETWORK, "/security-groups", "security_groups",
                                    "name", mine), groups0 + 2);
    /* read back: the remote-group rule points at the copy of web, tagged with the relocation */
    char wid[64];
    snprintf(wid, sizeof wid, "%s", sg_id(os, web));
    json_t *g = dc_call(os, FC_SVC_NETWORK, "GET", NULL, "/security-groups/%s", sg_id(os, db));
    json_t *sg = json_object_get(g, "security_group");
    bool found = false, tagged = false;
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(sg, "security_group_rules"), i, x) {
        const char *rgid = json_string_value(json_object_get(x, "remote_group_id"));
        if (rgid && strcmp(rgid, wid) == 0 &&
            json_integer_value(json_object_get(x, "port_range_min")) == 5432)
            found = true;
    }
    char tag[100];
    snprintf(tag, sizeof tag, "fluid-relocation=%s", rid);
    json_array_foreach(json_object_get(sg, "tags"), i, x) tagged |= !strcmp(json_string_value(x), tag);
    cr_assert(found, "no rule of %s points at %s", db, web);
    cr_assert(tagged, "group %s lacks tag %s", db, tag);
    json_decref(g);
    dc_try(os, FC_SVC_NETWORK, "DELETE", NULL, "/security-groups/%s", sg_id(os, db));
    dc_try(os, FC_SVC_NETWORK, "DELETE", NULL, "/security-groups/%s", wid);
    fc_os_close(os);
}

/* ---- images ---- */

struct fdr {
    int fd;
};
static size_t
rd(void *ctx, char *buf, size_t len)
{
    ssize_t n = read(((struct fdr *)ctx)->fd, buf, len);
    return n < 0 ? 0 : (size_t)n;
}

/* A 5 MiB image (random, then zeros) in `os`'s project; its SHA-256 in hex. */
static char *
make_image(struct fc_os *os, const char *name, char hex[65])
{
    char path[] = "/tmp/fluid-osimg-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    uint8_t *buf = malloc(5u << 20);
    int ur = open("/dev/urandom", O_RDONLY);
    size_t got = 0;
    while (got < (3u << 20))
        got += (size_t)read(ur, buf + got, (3u << 20) - got);
    close(ur);
    memset(buf + (3u << 20), 0, 2u << 20);
    cr_assert_eq(write(fd, buf, 5u << 20), (ssize_t)(5u << 20));
    struct fc_sha256 h;
    uint8_t d[32];
    fc_sha256_init(&h);
    fc_sha256_update(&h, buf, 5u << 20);
    fc_sha256_final(&h, d);
    fc_sha256_free(&h);
    fc_hex(d, 32, hex);
    free(buf);
    json_t *img = dc_call(os, FC_SVC_IMAGE, "POST",
                          json_pack("{s:s,s:s,s:s}", "name", name, "disk_format", "raw",
                                    "container_format", "bare"), "/images");
    char *id = strdup(json_string_value(json_object_get(img, "id")));
    json_decref(img);
    lseek(fd, 0, SEEK_SET);
    struct fdr r = {fd};
    char p[200];
    snprintf(p, sizeof p, "/images/%s/file", id);
    cr_assert_eq(fc_os_stream(os, FC_SVC_IMAGE, "PUT", p, "application/octet-stream", rd, &r,
                              5 << 20, NULL, NULL, NULL), FC_OK, "%s", fc_error_msg());
    close(fd);
    return id;
}

static size_t
images_named(struct fc_os *os, const char *name)
{
    char p[300];
    snprintf(p, sizeof p, "/images?name=%s", name);
    return count(os, FC_SVC_IMAGE, p, "images");
}

/* n random bytes in buf; their SHA-256 in hex */
static void
random_bytes(uint8_t *buf, size_t n, char hex[65])
{
    int ur = open("/dev/urandom", O_RDONLY);
    size_t got = 0;
    while (got < n)
        got += (size_t)read(ur, buf + got, n - got);
    close(ur);
    struct fc_sha256 h;
    uint8_t d[32];
    fc_sha256_init(&h);
    fc_sha256_update(&h, buf, n);
    fc_sha256_final(&h, d);
    fc_sha256_free(&h);
    fc_hex(d, 32, hex);
}

/* image-import hashes its input once: the framed input's END digest is checked against
 * that one SHA-256. A stream whose END digest lies fails with FC_E_CHECKSUM and leaves no
 * image (Glance had every byte, by Content-Length, before the END frame came). Plain bytes
 * from a pipe (no size known: a chunked upload) arrive whole, hashed the same way. */
Test(actions, image_import_checks_the_end_digest_and_takes_plain_bytes)
{
    struct fc_os *dst = dc_open(dc_target());
    char bad[80], plain[80], hex[65];
    snprintf(bad, sizeof bad, "img%d-fc1-badend", (int)getpid());
    snprintf(plain, sizeof plain, "img%d-fc1-plain", (int)getpid());
    size_t n = 3u << 20, pn = 600u << 10;
    uint8_t *buf = malloc(n);
    random_bytes(buf, n, hex);

    /* a framed stream: BEGIN 3 MiB + 1 MiB of zeros, DATA, ZERO, END with a wrong digest */
    char tmp[] = "/tmp/fluid-osbad-XXXXXX";
    int fd = mkstemp(tmp);
    unlink(tmp);
    struct fc_stream_writer w;
    fc_stream_writer_init(&w, fd, true);
    struct fc_stream_info info = {.size = n + (1u << 20), .format = "raw"};
    uint8_t lie[32] = {0};
    cr_assert_eq(w.sink.begin(&w.sink, &info), FC_OK);
    cr_assert_eq(w.sink.write(&w.sink, 0, buf, n), FC_OK);
    cr_assert_eq(w.sink.zero(&w.sink, n, 1u << 20), FC_OK);
    cr_assert_eq(w.sink.end(&w.sink, n + (1u << 20), lie), FC_OK);
    fc_stream_writer_fini(&w);
    lseek(fd, 0, SEEK_SET);
    const char *im[] = {"image-import", "--cloud", dc_target(), "--relocation-id", rid,
                        "--name", bad, "--disk-format", "raw", "--container-format", "bare",
                        NULL};
    struct osr r;
    osr_run(&r, fd, -1, im);
    no_secret(&r);
    close(fd);
    cr_assert_eq(r.exit, FC_E_CHECKSUM, "exit %d\n%s", r.exit, r.err);
    cr_assert(strstr(r.err, "SHA-256 mismatch"), "%s", r.err);
    cr_assert(strstr(r.err, "0000000000000000"), "the producer's digest is named: %s", r.err);
    osr_free(&r);
    cr_assert_eq(images_named(dst, bad), 0u, "the image of a lying stream was left behind");

    /* plain bytes through a pipe (written whole first: the pipe holds them) */
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_geq(fcntl(p[1], F_SETPIPE_SZ, 1 << 20), (int)pn, "a pipe of 1 MiB");
    random_bytes(buf, pn, hex);
    cr_assert_eq(write(p[1], buf, pn), (ssize_t)pn);
    close(p[1]);
    const char *ip[] = {"image-import", "--cloud", dc_target(), "--relocation-id", rid,
                        "--name", plain, "--disk-format", "raw", "--container-format", "bare",
                        NULL};
    osr_run(&r, p[0], -1, ip);
    close(p[0]);
    ok(&r, "image-import of plain bytes");
    cr_assert_str_eq(json_string_value(json_object_get(r.result, "sha256")), hex);
    cr_assert_eq(json_integer_value(json_object_get(r.result, "bytes")), (json_int_t)pn);
    cr_assert(json_is_true(json_object_get(r.result, "glance_hash_checked")));
    json_t *img = dc_call(dst, FC_SVC_IMAGE, "GET", NULL, "/images/%s",
                          json_string_value(json_object_get(r.result, "image_id")));
    cr_assert_eq(json_integer_value(json_object_get(img, "size")), (json_int_t)pn);
    json_decref(img);
    dc_try(dst, FC_SVC_IMAGE, "DELETE", NULL, "/images/%s",
           json_string_value(json_object_get(r.result, "image_id")));
    osr_free(&r);
    free(buf);
    fc_os_close(dst);
}

Test(actions, image_export_import_identical_and_idempotent)
{
    struct fc_os *src = dc_open(dc_source()), *dst = dc_open(dc_target());
    char sname[80], dname[80], hex[65];
    snprintf(sname, sizeof sname, "img%d-fc1-snap", (int)getpid());
    snprintf(dname, sizeof dname, "img%d-fc1-image", (int)getpid());
    char *sid = make_image(src, sname, hex);
    const char *ex[] = {"image-export", "--cloud", dc_source(), "--relocation-id", rid,
                        "--image-name", sname, "--framed", NULL};
    const char *im[] = {"image-import", "--cloud", dc_target(), "--relocation-id", rid,
                        "--name", dname, "--disk-format", "raw", "--container-format", "bare",
                        NULL};
    for (int round = 0; round < 2; round++) {
        struct osr e, i;
        osr_pipe(&e, ex, &i, im);
        ok(&e, "image-export");
        ok(&i, "image-import");
        const char *s_out = json_string_value(json_object_get(e.result, "sha256"));
        const char *s_in = json_string_value(json_object_get(i.result, "sha256"));
        cr_assert_str_eq(s_out, hex, "export's SHA-256");
        cr_assert_str_eq(s_in, hex, "import's SHA-256");
        cr_assert(json_is_true(json_object_get(e.result, "glance_hash_checked")));
        cr_assert(json_is_true(json_object_get(i.result, "glance_hash_checked")));
        cr_assert_str_eq(osr_action(&i, "image"), round ? "reused" : "created");
        osr_free(&e);
        osr_free(&i);
        cr_assert_eq(images_named(dst, dname), 1u, "round %d: one image %s", round, dname);
    }
    /* a rate that is not one is refused, naming the option */
    const char *badrate[] = {"image-export", "--cloud", dc_target(), "--relocation-id", rid,
                             "--image-name", dname, "--plain", "--max-rate", "-5M", NULL};
    struct osr br;
    osr_run(&br, -1, -1, badrate);
    cr_assert_eq(br.exit, FC_E_INVALID, "exit %d\n%s", br.exit, br.err);
    cr_assert(strstr(br.err, "--max-rate: ") && strstr(br.err, "-5M") &&
                  strstr(br.err, "is not a rate in bytes per second"),
              "%s", br.err);
    osr_free(&br);
    /* read back from the target, with a dropped connection on the way and the data held to
     * 4 MiB/s (--max-rate): same bytes */
    char tmp[] = "/tmp/fluid-osexp-XXXXXX";
    int fd = mkstemp(tmp);
    unlink(tmp);
    const char *back[] = {"image-export", "--cloud", dc_target(), "--relocation-id", rid,
                          "--image-name", dname, "--plain", "--test-drop-at", "2000000",
                          "--max-rate", "4M", NULL};
    struct osr b;
    osr_run(&b, -1, fd, back);
    ok(&b, "image-export from the target");
    cr_assert_eq(json_integer_value(json_object_get(b.result, "resumes")), 1);
    osr_free(&b);
    uint8_t *buf = malloc(6u << 20);
    ssize_t n = pread(fd, buf, 6u << 20, 0);
    cr_assert_eq(n, (ssize_t)(5u << 20));
    struct fc_sha256 h;
    uint8_t d[32];
    char got[65];
    fc_sha256_init(&h);
    fc_sha256_update(&h, buf, (size_t)n);
    fc_sha256_final(&h, d);
    fc_sha256_free(&h);
    fc_hex(d, 32, got);
    cr_assert_str_eq(got, hex, "the target image differs from the source image");
    free(buf);
    close(fd);
    json_t *l = dc_call(dst, FC_SVC_IMAGE, "GET", NULL, "/images?name=%s", dname);
    json_t *img = json_array_get(json_object_get(l, "images"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(img, "fluid_relocation")), rid);
    dc_try(dst, FC_SVC_IMAGE, "DELETE", NULL, "/images/%s",
           json_string_value(json_object_get(img, "id")));
    json_decref(l);
    dc_try(src, FC_SVC_IMAGE, "DELETE", NULL, "/images/%s", sid);
    free(sid);
    fc_os_close(src);
    fc_os_close(dst);
}
