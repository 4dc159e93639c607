/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-openstack image-import: stdin (framed or plain) into a Glance image as a chunked
 * upload. A thread decodes the stream into a pipe that curl reads: nothing is spooled to
 * disk. The result has the SHA-256 and SHA-512 of what was sent, checked against Glance's
 * os_hash_value. A re-run finds the image by name and relocation marker and reuses it. */
#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/sha256.h"
#include "fluid/stream.h"
#include "osa.h"

struct feeder {
    struct fc_sink sink; /* first */
    struct fc_stream_writer w; /* plain bytes into the pipe */
    struct fc_sha256 s256;
    EVP_MD_CTX *s512;
    uint64_t bytes;
    int in_fd, pipe_w, pipe_r;
    fc_rc rc;
    char err[512];
    bool end_seen;
    uint8_t d256[32], d512[64];
};

static fc_rc
fd_begin(struct fc_sink *s, const struct fc_stream_info *info)
{
    struct feeder *f = (struct feeder *)s;
    return f->w.sink.begin(&f->w.sink, info);
}

static fc_rc
fd_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    struct feeder *f = (struct feeder *)s;
    fc_sha256_update(&f->s256, buf, len);
    EVP_DigestUpdate(f->s512, buf, len);
    f->bytes += len;
    return f->w.sink.write(&f->w.sink, off, buf, len);
}

static fc_rc
fd_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    struct feeder *f = (struct feeder *)s;
    static const uint8_t z[65536];
    fc_sha256_update_zeros(&f->s256, len);
    for (uint64_t left = len; left;) {
        size_t k = left < sizeof z ? (size_t)left : sizeof z;
        EVP_DigestUpdate(f->s512, z, k);
        left -= k;
    }
    f->bytes += len;
    return f->w.sink.zero(&f->w.sink, off, len);
}

static fc_rc
fd_end(struct fc_sink *s, uint64_t size, const uint8_t *sha256)
{
    struct feeder *f = (struct feeder *)s;
    unsigned n = 0;
    fc_sha256_final(&f->s256, f->d256);
    EVP_DigestFinal_ex(f->s512, f->d512, &n);
    if (sha256 && memcmp(sha256, f->d256, 32) != 0)
        return FC_ERR(FC_E_CHECKSUM, "image-import: the input's END digest does not match its "
                      "content");
    f->end_seen = true;
    return f->w.sink.end(&f->w.sink, size, f->d256);
}

static void *
feed_thread(void *arg)
{
    struct feeder *f = arg;
    struct fc_stream_reader_opts ro = {.verify = true, .cancel = &fc_cancel_requested};
    struct fc_stream_stats st = {0};
    f->rc = fc_stream_read(f->in_fd, &f->sink, &ro, &st);
    if (f->rc)
        snprintf(f->err, sizeof f->err, "%s", fc_error_msg());
    close(f->pipe_w); /* EOF for curl */
    f->pipe_w = -1;
    return NULL;
}

struct upload {
    struct feeder *f;
    pthread_t th;
    bool joined;
    struct fc_migrator *m;
};

static size_t
up_read(void *ctx, char *buf, size_t len)
{
    struct upload *u = ctx;
    ssize_t n = read(u->f->pipe_r, buf, len);
    if (n > 0) {
        fc_event_progress(u->m, u->f->bytes, 0, NULL, false);
        return (size_t)n;
    }
    if (n < 0)
        return CURL_READFUNC_ABORT;
    /* EOF: the input is complete only if the reader succeeded */
    pthread_join(u->th, NULL);
    u->joined = true;
    return u->f->rc == FC_OK && u->f->end_seen ? 0 : CURL_READFUNC_ABORT;
}

/* Streams stdin into image `id`; fills f's digests. */
static fc_rc
upload(struct osa *a, const char *id, struct feeder *f, bool discard)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return FC_ERRNO(FC_E_IO, "image-import: pipe");
    f->in_fd = 0;
    f->pipe_w = p[1];
    f->pipe_r = p[0];
    f->sink = (struct fc_sink){fd_begin, fd_write, fd_zero, fd_end};
    fc_stream_writer_init(&f->w, p[1], false);
    f->s512 = EVP_MD_CTX_new();
    if (!f->s512 || !EVP_DigestInit_ex(f->s512, EVP_sha512(), NULL) ||
        fc_sha256_init(&f->s256) != FC_OK) {
        close(p[0]);
        close(p[1]);
        return FC_ERR(FC_E_NOMEM, "image-import: hashing");
    }
    struct upload u = {.f = f, .m = a->m};
    fc_rc rc = FC_OK;
    if (pthread_create(&u.th, NULL, feed_thread, f) != 0) {
        close(p[0]);
        close(p[1]);
        return FC_ERR(FC_E_INTERNAL, "image-import: cannot start the reader thread");
    }
    if (discard) {
        char buf[65536];
        while (up_read(&u, buf, sizeof buf) > 0 && !u.joined)
            ;
    } else {
        /* Glance (uwsgi) gives up on an upload whose body does not come: start it only once
         * the first bytes are there (an upstream stage may wait minutes for its cloud) */
        struct pollfd pf = {p[0], POLLIN, 0};
        while (poll(&pf, 1, 1000) == 0 && !fc_cancel_requested)
            ;
        char path[300];
        snprintf(path, sizeof path, "/images/%s/file", id);
        rc = fc_os_stream(a->os, FC_SVC_IMAGE, "PUT", path, "application/octet-stream", up_read,
                          &u, -1, NULL, NULL, NULL);
    }
    bool early = !u.joined;
    if (early) {
        /* curl stopped early: unblock the reader (EPIPE) and wait for it */
        close(p[0]);
        p[0] = -1;
        pthread_join(u.th, NULL);
    }
    if (p[0] >= 0)
        close(p[0]);
    fc_stream_writer_fini(&f->w);
    fc_sha256_free(&f->s256);
    EVP_MD_CTX_free(f->s512);
    f->s512 = NULL;
    if (early && rc) /* the upload failed first; the reader's EPIPE is its consequence */
        return rc;
    if (f->rc)
        return FC_ERR(f->rc, "%s", f->err); /* the input's failure, not curl's abort */
    if (early)
        return FC_ERR(FC_E_REMOTE, "cloud '%s': Glance ended the upload before the input did",
                      a->cloud);
    return rc;
}

static fc_rc
verify(struct osa *a, const char *id, const struct feeder *f)
{
    char path[300], h256[65], h512[129];
    json_t *img = NULL;
    snprintf(path, sizeof path, "/images/%s", id);
    fc_rc rc = fc_os_call(a->os, FC_SVC_IMAGE, "GET", path, NULL, NULL, &img);
    if (rc)
        return rc;
    fc_hex(f->d256, 32, h256);
    fc_hex(f->d512, 64, h512);
    json_object_set_new(a->result, "sha256", json_string(h256));
    json_object_set_new(a->result, "sha512", json_string(h512));
    json_object_set_new(a->result, "bytes", json_integer((json_int_t)f->bytes));
    const char *algo = osa_js(img, "os_hash_algo"), *val = osa_js(img, "os_hash_value");
    const char *st = osa_js(img, "status");
    json_t *sz = json_object_get(img, "size");
    if (!st || strcmp(st, "active") != 0)
        rc = FC_ERR(FC_E_REMOTE, "cloud '%s': image %s is %s after the upload, not active",
                    a->cloud, id, st ? st : "(no status)");
    else if (json_is_integer(sz) && (uint64_t)json_integer_value(sz) != f->bytes)
        rc = FC_ERR(FC_E_CHECKSUM, "cloud '%s': image %s holds %lld bytes; %llu were sent",
                    a->cloud, id, (long long)json_integer_value(sz),
                    (unsigned long long)f->bytes);
    else if (algo && strcmp(algo, "sha512") == 0 && val && strcasecmp(val, h512) != 0)
        rc = FC_ERR(FC_E_CHECKSUM, "cloud '%s': image %s: Glance's os_hash_value (sha512) "
                    "%.128s differs from the data's %s", a->cloud, id, val, h512);
    json_object_set_new(a->result, "glance_hash_checked",
                        json_boolean(algo && strcmp(algo, "sha512") == 0 && val));
    json_object_set_new(a->result, "image_id", json_string(id));
    json_decref(img);
    return rc;
}

/* Deletes image id of this relocation after a failed upload or check: Glance (under uwsgi)
 * may take an upload cut short for a complete one and make the image active with part of
 * the data, which a retry could not replace. The error at hand stays the one reported. */
static void
drop_image(struct osa *a, const char *id)
{
    char path[300], keep[1024];
    snprintf(keep, sizeof keep, "%s", fc_error_msg());
    fc_rc keep_rc = fc_error_last()->rc;
    snprintf(path, sizeof path, "/images/%s", id);
    fc_rc rc = fc_os_call(a->os, FC_SVC_IMAGE, "DELETE", path, NULL, NULL, NULL);
    fc_log(rc == FC_OK || rc == FC_E_NOTFOUND ? FC_INFO : FC_WARN,
           FC_MSG(rc == FC_OK || rc == FC_E_NOTFOUND
                      ? "deleted the image of the failed upload: a retry uploads it again"
                      : "could not delete the image of the failed upload"),
           FC_STR("image", id));
    FC_ERR(keep_rc, "%s", keep);
}

fc_rc
osa_image_import(struct osa *a)
{
    const char *name, *dfmt, *cfmt = osa_str(a, "container-format");
    fc_rc rc;
    if ((rc = osa_need(a, "name", &name)) || (rc = osa_need(a, "disk-format", &dfmt)))
        return rc;
    char id[80];
    return osa_import_image(a, name, dfmt, cfmt ? cfmt : "bare", osa_str(a, "min-disk"),
                            osa_str(a, "min-ram"), id);
}

fc_rc
osa_import_image(struct osa *a, const char *name, const char *dfmt, const char *cfmt,
                 const char *md, const char *mr, char id[80])
{
    fc_rc rc;
    char q[600], path[900];
    json_t *imgs = NULL;
    if ((rc = osa_q(name, q, sizeof q)))
        return rc;
    snprintf(path, sizeof path, "/images?name=%s&owner=%s", q, fc_os_project_id(a->os));
    if ((rc = osa_find_named(a, FC_SVC_IMAGE, path, "images", name, &imgs)))
        return rc;
    id[0] = '\0';
    bool reuse_active = false, created = false;
    size_t i;
    json_t *it;
    json_array_foreach(imgs, i, it) {
        const char *m = osa_js(it, "fluid_relocation"), *st = osa_js(it, "status");
        if (!m || strcmp(m, a->rid) != 0) {
            rc = FC_ERR(FC_E_CONFLICT, "cloud '%s': image \"%.200s\" exists but was not made by "
                        "relocation %s", a->cloud, name, a->rid);
            break;
        }
        if (st && (strcmp(st, "active") == 0 || strcmp(st, "queued") == 0) && !id[0]) {
            snprintf(id, 80, "%s", osa_js(it, "id"));
            reuse_active = strcmp(st, "active") == 0;
            continue;
        }
        /* an earlier attempt died mid-upload (saving, killed...): remove its image */
        char dp[300];
        snprintf(dp, sizeof dp, "/images/%s", osa_js(it, "id"));
        fc_log(FC_WARN, FC_MSG("deleting an unfinished image of an earlier attempt"),
               FC_STR("image", osa_js(it, "id")), FC_STR("status", st ? st : ""));
        if ((rc = fc_os_call(a->os, FC_SVC_IMAGE, "DELETE", dp, NULL, NULL, NULL)) &&
            rc != FC_E_NOTFOUND)
            break;
        rc = FC_OK;
    }
    json_decref(imgs);
    if (rc)
        return rc;
    if (!id[0]) {
        json_t *body = json_pack("{s:s,s:s,s:s,s:s,s:s}", "name", name, "disk_format", dfmt,
                                 "container_format", cfmt, "visibility", "private",
                                 "fluid_relocation", a->rid), *r = NULL;
        if (md)
            json_object_set_new(body, "min_disk", json_integer(atoll(md)));
        if (mr)
            json_object_set_new(body, "min_ram", json_integer(atoll(mr)));
        rc = fc_os_call(a->os, FC_SVC_IMAGE, "POST", "/images", body, NULL, &r);
        json_decref(body);
        if (rc)
            return rc;
        snprintf(id, 80, "%s", osa_js(r, "id") ? osa_js(r, "id") : "");
        json_decref(r);
        created = true;
    }
    struct feeder f = {.pipe_w = -1, .pipe_r = -1};
    /* an image already active: read the input all the same (the upstream stages must not
     * see a broken pipe) and check that it holds the same data */
    rc = upload(a, id, &f, reuse_active);
    bool bad = rc != FC_OK && !reuse_active; /* an upload cut short may still go active */
    if (rc == FC_OK && (rc = verify(a, id, &f)) != FC_OK)
        bad = true;                          /* it does not hold what was sent */
    if (bad)
        drop_image(a, id);
    if (rc)
        return rc;
    osa_resource(a, "image", id, name, created);
    return FC_OK;
}
