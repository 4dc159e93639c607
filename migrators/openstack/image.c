/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-openstack image actions: snapshot (createImage, waited for until active),
 * image-export (Glance -> stdout, framed or plain, SHA-256 and Glance's SHA-512 checked,
 * resumed after a dropped connection) and image-import (stdin -> Glance, chunked, no
 * temporary copy, checked against Glance's os_hash_value; a re-run reuses the image). */
#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/sha256.h"
#include "fluid/stream.h"
#include "osa.h"

/* ---- hashing both digests ---------------------------------------------------------------- */

struct hashes {
    struct fc_sha256 s256;
    EVP_MD_CTX *s512;
    uint64_t bytes;
    char hex256[65], hex512[129];
};

static fc_rc
hashes_init(struct hashes *h)
{
    memset(h, 0, sizeof *h);
    h->s512 = EVP_MD_CTX_new();
    if (!h->s512 || !EVP_DigestInit_ex(h->s512, EVP_sha512(), NULL))
        return FC_ERR(FC_E_NOMEM, "sha512: cannot start");
    return fc_sha256_init(&h->s256);
}

static void
hashes_update(struct hashes *h, const void *buf, size_t len)
{
    fc_sha256_update(&h->s256, buf, len);
    EVP_DigestUpdate(h->s512, buf, len);
    h->bytes += len;
}

static void
hashes_final(struct hashes *h)
{
    uint8_t d[64];
    unsigned n = 0;
    fc_sha256_final(&h->s256, d);
    fc_hex(d, 32, h->hex256);
    EVP_DigestFinal_ex(h->s512, d, &n);
    fc_hex(d, 64, h->hex512);
}

static void
hashes_free(struct hashes *h)
{
    fc_sha256_free(&h->s256);
    EVP_MD_CTX_free(h->s512);
    h->s512 = NULL;
}

/* Compares Glance's os_hash_value with ours when it is SHA-512; records both in the result. */
static fc_rc
check_glance_hash(struct osa *a, const json_t *img, const struct hashes *h)
{
    const char *algo = osa_js(img, "os_hash_algo"), *val = osa_js(img, "os_hash_value");
    json_object_set_new(a->result, "sha256", json_string(h->hex256));
    json_object_set_new(a->result, "sha512", json_string(h->hex512));
    json_object_set_new(a->result, "bytes", json_integer((json_int_t)h->bytes));
    if (!algo || strcmp(algo, "sha512") != 0 || !val) {
        json_object_set_new(a->result, "glance_hash_checked", json_false());
        return FC_OK;
    }
    if (strcasecmp(val, h->hex512) != 0)
        return FC_ERR(FC_E_CHECKSUM, "cloud '%s': image %s: Glance's os_hash_value (sha512) is "
                      "%.128s but the data hashes to %s", a->cloud, osa_js(img, "id"), val,
                      h->hex512);
    json_object_set_new(a->result, "glance_hash_checked", json_true());
    return FC_OK;
}

/* The project's own images named `name` (new array). */
static fc_rc
own_images(struct osa *a, const char *name, json_t **out)
{
    char q[600], path[900];
    fc_rc rc = osa_q(name, q, sizeof q);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "/images?name=%s&owner=%s", q, fc_os_project_id(a->os));
    return osa_find_named(a, FC_SVC_IMAGE, path, "images", name, out);
}

static bool
ours(struct osa *a, const json_t *img)
{
    const char *m = osa_js(img, "fluid_relocation");
    return m && strcmp(m, a->rid) == 0;
}

/* ---- snapshot ---------------------------------------------------------------------------- */

struct fd_reader {
    int fd;
};

static size_t
read_fd(void *ctx, char *buf, size_t len)
{
    struct fd_reader *r = ctx;
    ssize_t n = read(r->fd, buf, len);
    return n < 0 ? CURL_READFUNC_ABORT : (size_t)n;
}

fc_rc
osa_glance_patch(struct osa *a, const char *path, const json_t *patch)
{
    /* fc_os_call sends application/json; Glance wants the json-patch type: stream it */
    char *body = json_dumps(patch, JSON_COMPACT);
    int p[2];
    if (!body || pipe2(p, O_CLOEXEC) != 0) {
        free(body);
        return FC_ERR(FC_E_IO, "%s: cannot prepare the image update", a->action);
    }
    size_t len = strlen(body);
    fc_rc rc = len < 65536 ? fc_write_all(p[1], body, len)
                           : FC_ERR(FC_E_INVALID, "%s: image update too large", a->action);
    close(p[1]);
    struct fd_reader br = {p[0]};
    if (rc == FC_OK)
        rc = fc_os_stream(a->os, FC_SVC_IMAGE, "PATCH", path,
                          "application/openstack-images-v2.1-json-patch", read_fd, &br,
                          (int64_t)len, NULL, NULL, NULL);
    close(p[0]);
    free(body);
    return rc;
}

/* Test mode for Nova's fake driver: fill the queued image with a file's bytes. */
static fc_rc
test_upload(struct osa *a, const char *id, const char *file)
{
    FC_AUTOCLOSE int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return FC_ERRNO(FC_E_IO, "--test-upload %s", file);
    char path[300];
    snprintf(path, sizeof path, "/images/%s", id);
    json_t *patch = json_pack("[{s:s,s:s,s:s},{s:s,s:s,s:s}]", "op", "replace", "path",
                              "/disk_format", "value", "raw", "op", "replace", "path",
                              "/container_format", "value", "bare");
    fc_log(FC_WARN, FC_MSG("test mode: uploading a file into the queued snapshot"),
           FC_STR("image", id));
    fc_rc rc = osa_glance_patch(a, path, patch);
    json_decref(patch);
    if (rc)
        return rc;
    struct fd_reader fr = {fd};
    snprintf(path, sizeof path, "/images/%s/file", id);
    return fc_os_stream(a->os, FC_SVC_IMAGE, "PUT", path, "application/octet-stream", read_fd,
                        &fr, -1, NULL, NULL, NULL);
}

static const char *const img_ok[] = {"active", NULL};
static const char *const img_bad[] = {"killed", "deleted", "pending_delete", "deactivated",
                                      NULL};

fc_rc
osa_snapshot(struct osa *a)
{
    const char *sname, *name, *tu = osa_str(a, "test-upload");
    fc_rc rc;
    if ((rc = osa_need(a, "server", &sname)) || (rc = osa_need(a, "name", &name)))
        return rc;
    char q[600], path[900];
    json_t *srv = NULL, *imgs = NULL, *img = NULL;
    if ((rc = osa_q(sname, q, sizeof q)))
        return rc;
    snprintf(path, sizeof path, "/servers/detail?name=%s", q);
    if ((rc = osa_resolve(a, FC_SVC_COMPUTE, path, "/servers", "servers", "server", sname,
                          "server", &srv)))
        return rc;
    const char *sid = osa_js(srv, "id");
    if ((rc = own_images(a, name, &imgs)))
        goto out;
    char id[80] = "";
    bool created = false;
    if (json_array_size(imgs) > 1) {
        rc = FC_ERR(FC_E_CONFLICT, "cloud '%s': %zu images are named \"%.200s\"", a->cloud,
                    json_array_size(imgs), name);
        goto out;
    }
    if (json_array_size(imgs) == 1) {
        const json_t *i0 = json_array_get(imgs, 0);
        if (!ours(a, i0)) {
            rc = FC_ERR(FC_E_CONFLICT, "cloud '%s': image \"%.200s\" exists but was not made "
                        "by relocation %s", a->cloud, name, a->rid);
            goto out;
        }
        snprintf(id, sizeof id, "%s", osa_js(i0, "id"));
    } else {
        json_t *body = json_pack("{s:{s:s,s:{s:s}}}", "createImage", "name", name, "metadata",
                                 "fluid_relocation", a->rid), *r = NULL;
        snprintf(path, sizeof path, "/servers/%s/action", sid);
        rc = fc_os_call(a->os, FC_SVC_COMPUTE, "POST", path, body, NULL, &r);
        json_decref(body);
        if (rc)
            goto out;
        const char *iid = osa_js(r, "image_id");
        snprintf(id, sizeof id, "%s", iid ? iid : "");
        json_decref(r);
        if (!id[0]) {
            rc = FC_ERR(FC_E_INVALID, "cloud '%s': createImage reply has no image_id", a->cloud);
            goto out;
        }
        created = true;
    }
    snprintf(path, sizeof path, "/images/%s", id);
    if (tu) {
        json_t *cur = NULL;
        if ((rc = fc_os_call(a->os, FC_SVC_IMAGE, "GET", path, NULL, NULL, &cur)))
            goto out;
        bool queued = osa_js(cur, "status") && strcmp(osa_js(cur, "status"), "queued") == 0;
        json_decref(cur);
        if (queued && (rc = test_upload(a, id, tu)))
            goto out;
    }
    char what[400];
    snprintf(what, sizeof what, "snapshot %.200s of server %.80s", name, sid);
    rc = osa_wait(a, FC_SVC_IMAGE, path, NULL, "status", img_ok, img_bad, what, &img);
    if (rc == FC_E_TIMEOUT && strstr(fc_error_msg(), "still queued"))
        rc = FC_ERR(FC_E_TIMEOUT, "cloud '%s': snapshot %s (%.200s) is still queued with no "
                    "data after %u s: the hypervisor never uploaded it (Nova's fake driver "
                    "never does; tests use --test-upload FILE)", a->cloud, id, name,
                    a->timeout_s);
    if (rc)
        goto out;
    json_object_set_new(a->result, "image_id", json_string(id));
    json_object_set_new(a->result, "server_id", json_string(sid));
    json_object_set(a->result, "size", json_object_get(img, "size"));
    json_object_set(a->result, "disk_format", json_object_get(img, "disk_format"));
    osa_resource(a, "image", id, name, created);
out:
    json_decref(srv);
    json_decref(imgs);
    json_decref(img);
    return rc;
}

/* ---- image-export ------------------------------------------------------------------------ */

#define EX_BLOCK (1u << 20)
#define EX_MAX_RESUMES 5

struct exporter {
    struct fc_stream_writer w;
    struct hashes h;
    char *buf;
    size_t fill;
    uint64_t pos;       /* content bytes delivered downstream (or buffered) */
    uint64_t got;       /* bytes received in all replies */
    uint64_t drop_at;   /* test: drop the connection once past this offset (0: never) */
    bool dropped;
    fc_rc rc;
    struct osa *a;
    uint64_t size;
};

static fc_rc
ex_flush(struct exporter *e)
{
    if (!e->fill)
        return FC_OK;
    uint64_t off = e->pos - e->fill;
    fc_rc rc = fc_is_zero(e->buf, e->fill) ? e->w.sink.zero(&e->w.sink, off, e->fill)
                                           : e->w.sink.write(&e->w.sink, off, e->buf, e->fill);
    e->fill = 0;
    return rc;
}

static int
ex_sink(void *ctx, const char *p, size_t n)
{
    struct exporter *e = ctx;
    e->got += n;
    while (n) {
        if (fc_cancel_requested) {
            e->rc = FC_ERR(FC_E_CANCELLED, "image-export: cancelled at offset %llu",
                           (unsigned long long)e->pos);
            return 1;
        }
        if (e->drop_at && !e->dropped && e->pos >= e->drop_at) {
            e->dropped = true; /* test: behave as a dropped connection */
            return 1;
        }
        size_t k = EX_BLOCK - e->fill < n ? EX_BLOCK - e->fill : n;
        memcpy(e->buf + e->fill, p, k);
        hashes_update(&e->h, p, k);
        e->fill += k;
        e->pos += k;
        p += k;
        n -= k;
        if (e->fill == EX_BLOCK && (e->rc = ex_flush(e)))
            return 1;
    }
    fc_event_progress(e->a->m, e->pos, e->size, NULL, false);
    return 0;
}

static bool
want_framed(struct osa *a)
{
    if (osa_flag(a, "framed"))
        return true;
    if (osa_flag(a, "plain"))
        return false;
    return a->m->task && !json_is_false(json_object_get(a->m->task, "framed"));
}

fc_rc
osa_image_export(struct osa *a)
{
    const char *iname = osa_str(a, "image-name"), *iid = osa_str(a, "image");
    if (!iname == !iid)
        return FC_ERR(FC_E_INVALID, "image-export: give one of --image-name or --image");
    char q[600], path[900];
    json_t *img = NULL;
    fc_rc rc = osa_q(iname ? iname : iid, q, sizeof q);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "/images?name=%s", q);
    if ((rc = osa_resolve(a, FC_SVC_IMAGE, path, "/images", "images", NULL,
                          iname ? iname : iid, "image", &img)))
        return rc;
    rc = osa_export_image(a, img);
    json_decref(img);
    return rc;
}

fc_rc
osa_export_image(struct osa *a, const json_t *img)
{
    char path[900];
    fc_rc rc = FC_OK;
    if (osa_flag(a, "framed") && osa_flag(a, "plain"))
        return FC_ERR(FC_E_INVALID, "%s: --framed and --plain exclude each other", a->action);
    const char *id = osa_js(img, "id"), *st = osa_js(img, "status");
    if (!st || strcmp(st, "active") != 0)
        return FC_ERR(FC_E_INVALID, "cloud '%s': image %s is %s, not active: it has no data to "
                      "export", a->cloud, id, st ? st : "(no status)");
    json_t *jsz = json_object_get(img, "size");
    struct exporter e = {.a = a, .size = json_is_integer(jsz) ? (uint64_t)json_integer_value(jsz)
                                                              : FC_SIZE_UNKNOWN};
    const char *da = osa_str(a, "test-drop-at");
    if (da)
        e.drop_at = strtoull(da, NULL, 10);
    e.buf = malloc(EX_BLOCK);
    if (!e.buf)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    if ((rc = hashes_init(&e.h))) {
        hashes_free(&e.h);
        free(e.buf);
        return rc;
    }
    bool framed = want_framed(a);
    fc_stream_writer_init(&e.w, 1, framed);
    /* 1 MiB blocks go out: a pipe that holds one wakes the reader once per block (the
     * broker sets this on its pipes; a shell's pipe is 64 KiB). Refused unless a pipe. */
    (void)fcntl(1, F_SETPIPE_SZ, (int)EX_BLOCK);
    struct fc_stream_info info = {.size = e.size};
    snprintf(info.format, sizeof info.format, "%s",
             osa_js(img, "disk_format") ? osa_js(img, "disk_format") : "");
    rc = e.w.sink.begin(&e.w.sink, &info);
    snprintf(path, sizeof path, "/images/%s/file", id);
    unsigned resumes = 0, ranged = 0;
    while (rc == FC_OK) {
        e.rc = FC_OK;
        long status = 0;
        bool partial = false;
        int64_t total = -1;
        uint64_t start = e.pos;
        /* from the start, or (after a drop) from the first byte not yet delivered */
        rc = fc_os_stream_from(a->os, FC_SVC_IMAGE, path, e.pos, ex_sink, &e, &partial, &total,
                               &status);
        if (start && partial && e.size != FC_SIZE_UNKNOWN && total >= 0 &&
            (uint64_t)total != e.size && !e.rc && rc != FC_E_REMOTE)
            rc = FC_ERR(FC_E_REMOTE, "cloud '%s': image %s: a resumed download says the image "
                        "has %lld bytes, Glance's record says %llu: the image changed",
                        a->cloud, id, (long long)total, (unsigned long long)e.size);
        if (rc == FC_OK && e.size != FC_SIZE_UNKNOWN && e.pos < e.size)
            rc = FC_ERR(FC_E_NET, "image-export: the reply ended at %llu of %llu bytes",
                        (unsigned long long)e.pos, (unsigned long long)e.size);
        if (start && partial)
            ranged++;
        if (rc == FC_OK || e.rc)
            break;
        if (e.size != FC_SIZE_UNKNOWN && e.pos == e.size && (rc == FC_E_NET || e.dropped)) {
            rc = FC_OK; /* cut after the last byte: nothing is missing */
            break;
        }
        bool drop = (e.dropped && resumes == 0) || rc == FC_E_NET || rc == FC_E_TIMEOUT ||
                    (rc == FC_E_REMOTE && status >= 500);
        if (!drop || resumes >= EX_MAX_RESUMES) {
            if (drop)
                fc_error_prefix("image-export: gave up after %u resumed attempts at offset "
                                "%llu", resumes, (unsigned long long)e.pos);
            break;
        }
        resumes++;
        fc_log(FC_WARN, FC_MSG("download dropped: resuming with a Range request"),
               FC_U64("offset", e.pos), FC_U64("attempt", resumes), FC_STR("why", fc_error_msg()));
        fc_event_info(a->m, json_pack("{s:s,s:I,s:i}", "note", "download dropped: resuming",
                                      "offset", (json_int_t)e.pos, "attempt", (int)resumes));
        rc = FC_OK;
        if (resumes > 1)
            sleep(resumes - 1 < 4 ? resumes - 1 : 4);
    }
    if (e.rc)
        rc = e.rc;
    if (rc == FC_OK)
        rc = ex_flush(&e);
    if (rc == FC_OK) {
        hashes_final(&e.h);
        uint8_t d[32];
        fc_unhex(e.h.hex256, d, 32);
        rc = check_glance_hash(a, img, &e.h);
        if (rc == FC_OK)
            rc = e.w.sink.end(&e.w.sink, e.pos, d);
    }
    if (rc && framed)
        fc_stream_writer_abort(&e.w, rc, fc_error_msg());
    if (rc == FC_OK) {
        json_object_set_new(a->result, "image_id", json_string(id));
        json_object_set_new(a->result, "resumes", json_integer(resumes));
        json_object_set_new(a->result, "range_resumes", json_integer(ranged));
        json_object_set_new(a->result, "bytes_received", json_integer((json_int_t)e.got));
        json_object_set_new(a->result, "framed", json_boolean(framed));
        json_object_set(a->result, "disk_format", json_object_get(img, "disk_format"));
        fc_event_progress(a->m, e.pos, e.size, NULL, true);
    }
    fc_stream_writer_fini(&e.w);
    hashes_free(&e.h);
    free(e.buf);
    return rc;
}
