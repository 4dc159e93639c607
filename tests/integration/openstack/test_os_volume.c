/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-openstack's volume method `image` against the devcloud: a source volume holding
 * known data (made from an image), volume-export | volume-import into the target twice (the
 * second run creates nothing and the data digests match the expected ones both times), then
 * volume-attach to a target server at the device asked, twice. */
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
#include "os_run.h"

static char rid[64], *pw;

static void
setup(void)
{
    dc_setup();
    setenv("FLUID_LOG_LEVEL", "debug", 1);
    snprintf(rid, sizeof rid, "r-itv%d", (int)getpid());
    pw = dc_password(dc_source());
}

static void
teardown(void)
{
    free(pw);
}

static const char *
rs(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void
ok(const struct osr *r, const char *what)
{
    ct_no_secret(r->err, pw, "stderr");
    ct_no_secret(r->events, pw, "events");
    cr_assert_eq(r->exit, 0, "%s: exit %d\n%s", what, r->exit, r->err);
    cr_assert_not_null(r->result, "%s: no done event", what);
}

struct fdr {
    const uint8_t *p;
    size_t left;
};
static size_t
rd(void *ctx, char *buf, size_t len)
{
    struct fdr *r = ctx;
    size_t k = len < r->left ? len : r->left;
    memcpy(buf, r->p, k);
    r->p += k;
    r->left -= k;
    return k;
}

TestSuite(volume, .init = setup, .fini = teardown, .timeout = 1800);

Test(volume, export_import_attach_idempotent)
{
    struct fc_os *src = dc_open(dc_source()), *dst = dc_open(dc_target());
    int pid = (int)getpid();
    char iname[80], vname[80], tname[80], ename[100], srv[80];
    snprintf(iname, sizeof iname, "vseed%d", pid);
    snprintf(vname, sizeof vname, "vsrc%d", pid);
    snprintf(tname, sizeof tname, "vsrc%d-fc1", pid);
    snprintf(ename, sizeof ename, "vsrc%d-fc1-export", pid);
    snprintf(srv, sizeof srv, "vsrv%d-fc1", pid);
    /* 1 MiB of known bytes at the start of a 1 GiB volume */
    size_t n = 1u << 20;
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)((i * 2654435761u) >> 13);
    struct fc_sha256 h;
    uint8_t d[32];
    char want[65];
    fc_sha256_init(&h);
    fc_sha256_update(&h, data, n);
    fc_sha256_update_zeros(&h, (1ull << 30) - n);
    fc_sha256_final(&h, d);
    fc_sha256_free(&h);
    fc_hex(d, 32, want);
    json_t *img = dc_call(src, FC_SVC_IMAGE, "POST",
                          json_pack("{s:s,s:s,s:s}", "name", iname, "disk_format", "raw",
                                    "container_format", "bare"), "/images");
    char iid[64], p[300];
    snprintf(iid, sizeof iid, "%s", rs(img, "id"));
    json_decref(img);
    snprintf(p, sizeof p, "/images/%s/file", iid);
    struct fdr r0 = {data, n};
    cr_assert_eq(fc_os_stream(src, FC_SVC_IMAGE, "PUT", p, "application/octet-stream", rd, &r0,
                              (int64_t)n, NULL, NULL, NULL), FC_OK, "%s", fc_error_msg());
    free(data);
    json_t *v = dc_call(src, FC_SVC_VOLUME, "POST",
                        json_pack("{s:{s:s,s:i,s:s}}", "volume", "name", vname, "size", 1,
                                  "imageRef", iid), "/volumes");
    char vid[64];
    snprintf(vid, sizeof vid, "%s", rs(json_object_get(v, "volume"), "id"));
    json_decref(v);
    snprintf(p, sizeof p, "/volumes/%s", vid);
    json_decref(dc_wait(src, FC_SVC_VOLUME, p, "volume", "status", "available", 600));

    const char *ex[] = {"volume-export", "--cloud", dc_source(), "--relocation-id", rid,
                        "--volume", vid, "--image-name", ename, "--framed", "--timeout", "900",
                        NULL};
    const char *im[] = {"volume-import", "--cloud", dc_target(), "--relocation-id", rid,
                        "--name", tname, "--size", "1", "--disk-format", "raw", "--timeout",
                        "900", NULL};
    size_t vols0 = osr_count_matching(dst, FC_SVC_VOLUME, "/volumes", "volumes", "name", tname);
    char tvid[64] = "";
    for (int round = 0; round < 2; round++) {
        struct osr e, i;
        osr_pipe(&e, ex, &i, im);
        ok(&e, "volume-export");
        ok(&i, "volume-import");
        cr_assert_str_eq(rs(e.result, "sha256"), want, "what left the source");
        cr_assert_str_eq(rs(i.result, "sha256"), want, "what arrived on the target");
        cr_assert(json_is_true(json_object_get(i.result, "glance_hash_checked")));
        cr_assert_str_eq(osr_action(&e, "image"), round ? "reused" : "created");
        cr_assert_str_eq(osr_action(&i, "volume"), round ? "reused" : "created");
        if (round)
            cr_assert_str_eq(rs(i.result, "volume_id"), tvid);
        snprintf(tvid, sizeof tvid, "%s", rs(i.result, "volume_id"));
        osr_free(&e);
        osr_free(&i);
        cr_assert_eq(osr_count_matching(dst, FC_SVC_VOLUME, "/volumes", "volumes", "name", tname),
                     vols0 + 1);
    }
    v = dc_call(dst, FC_SVC_VOLUME, "GET", NULL, "/volumes/%s", tvid);
    json_t *vo = json_object_get(v, "volume");
    cr_assert_eq(json_integer_value(json_object_get(vo, "size")), 1);
    cr_assert_str_eq(rs(json_object_get(vo, "metadata"), "fluid_relocation"), rid);
    json_decref(v);

    /* attach to a target server at the device asked, twice */
    json_t *ti = dc_call(dst, FC_SVC_IMAGE, "GET", NULL, "/images?name=devcloud-tiny");
    json_t *s = dc_call(dst, FC_SVC_COMPUTE, "POST",
                        json_pack("{s:{s:s,s:O,s:s,s:s}}", "server", "name", srv, "imageRef",
                                  json_object_get(json_array_get(json_object_get(ti, "images"), 0),
                                                  "id"), "flavorRef", "1", "networks", "none"),
                        "/servers");
    char sid[64];
    snprintf(sid, sizeof sid, "%s", rs(json_object_get(s, "server"), "id"));
    json_decref(s);
    json_decref(ti);
    snprintf(p, sizeof p, "/servers/%s", sid);
    json_decref(dc_wait(dst, FC_SVC_COMPUTE, p, "server", "status", "ACTIVE", 300));
    const char *at[] = {"volume-attach", "--cloud", dc_target(), "--relocation-id", rid,
                        "--server", srv, "--volume", tname, "--device", "/dev/vdb", NULL};
    for (int round = 0; round < 2; round++) {
        struct osr a;
        osr_run(&a, -1, -1, at);
        ok(&a, "volume-attach");
        cr_assert_str_eq(osr_action(&a, "volume_attachment"), round ? "reused" : "created");
        osr_free(&a);
    }
    json_t *atts = dc_call(dst, FC_SVC_COMPUTE, "GET", NULL, "/servers/%s/os-volume_attachments",
                           sid);
    json_t *al = json_object_get(atts, "volumeAttachments");
    cr_assert_eq(json_array_size(al), 1u, "one attachment after two runs");
    cr_assert_str_eq(rs(json_array_get(al, 0), "volumeId"), tvid);
    json_decref(atts);
    v = dc_call(dst, FC_SVC_VOLUME, "GET", NULL, "/volumes/%s", tvid);
    cr_assert_str_eq(rs(json_object_get(v, "volume"), "status"), "in-use");
    json_decref(v);

    /* clean up both projects */
    dc_try(dst, FC_SVC_COMPUTE, "DELETE", NULL, "/servers/%s/os-volume_attachments/%s", sid, tvid);
    snprintf(p, sizeof p, "/volumes/%s", tvid);
    json_decref(dc_wait(dst, FC_SVC_VOLUME, p, "volume", "status", "available", 120));
    dc_try(dst, FC_SVC_VOLUME, "DELETE", NULL, "/volumes/%s", tvid);
    dc_try(dst, FC_SVC_COMPUTE, "DELETE", NULL, "/servers/%s", sid);
    json_t *l = dc_call(dst, FC_SVC_IMAGE, "GET", NULL, "/images?name=%s-import", tname);
    dc_try(dst, FC_SVC_IMAGE, "DELETE", NULL, "/images/%s",
           rs(json_array_get(json_object_get(l, "images"), 0), "id"));
    json_decref(l);
    l = dc_call(src, FC_SVC_IMAGE, "GET", NULL, "/images?name=%s", ename);
    dc_try(src, FC_SVC_IMAGE, "DELETE", NULL, "/images/%s",
           rs(json_array_get(json_object_get(l, "images"), 0), "id"));
    json_decref(l);
    dc_try(src, FC_SVC_VOLUME, "DELETE", NULL, "/volumes/%s", vid);
    dc_try(src, FC_SVC_IMAGE, "DELETE", NULL, "/images/%s", iid);
    fc_os_close(src);
    fc_os_close(dst);
}
