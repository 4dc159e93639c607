/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-openstack image-import: stdin (framed or plain) into a Glance image as one streamed
 * upload. A thread decodes the stream and hands each piece of content to curl's read callback
 * in place (no pipe, no copy of ours): nothing is spooled to disk. The result has the SHA-256
 * and SHA-512 of what was sent, each computed once: the SHA-256 is compared with the framed
 * input's END digest, the SHA-512 with Glance's os_hash_value. A re-run finds the image by
 * name and relocation marker and reuses it. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/sha256.h"
#include "fluid/stream.h"
#include "osa.h"

#define IM_PIPE_SIZE (1 << 20)

static const uint8_t im_zeros[1 << 20];

/* The reader thread (fc_stream_read into the feeder's sink) and curl's read callback meet
 * here: the reader offers one piece (a DATA payload in the reader's buffer, or zeros) and
 * hashes it while curl copies it out, then waits until curl has taken all of it. */
struct feeder {
    struct fc_sink sink; /* first */
    struct fc_sha256 s256;
    EVP_MD_CTX *s512;
    uint64_t bytes;      /* content handed over (zero runs included) */
    uint64_t size;       /* from the input's BEGIN, FC_SIZE_UNKNOWN when not known */
    int in_fd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const uint8_t *cur;  /* the piece on offer */
    size_t left;         /* its bytes curl has not taken yet */
    bool begun;          /* BEGIN seen: size is known (or known to be unknown) */
    bool done;           /* the reader returned (rc says how) */
    bool closed;         /* the upload stopped taking data */
    fc_rc rc;
    char err[512];
    bool end_seen;
    uint8_t d256[32], d512[64];
};

/* Waits on the feeder's condition for at most 250 ms (cancellation is checked by callers). */
static void
fd_wait(struct feeder *f)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 250000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&f->cv, &f->mu, &ts);
}

static fc_rc
fd_begin(struct fc_sink *s, const struct fc_stream_info *info)
{
    struct feeder *f = (struct feeder *)s;
    pthread_mutex_lock(&f->mu);
    f->size = info->size;
    f->begun = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return FC_OK;
}

/* Offers buf to curl, hashes it meanwhile (both only read it), waits until curl took it. */
static fc_rc
fd_offer(struct feeder *f, const uint8_t *buf, size_t len, bool zeros)
{
    pthread_mutex_lock(&f->mu);
    f->cur = buf;
    f->left = len;
    f->bytes += len;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    if (zeros)
        fc_sha256_update_zeros(&f->s256, len);
    else
        fc_sha256_update(&f->s256, buf, len);
    EVP_DigestUpdate(f->s512, buf, len);
    fc_rc rc = FC_OK;
    pthread_mutex_lock(&f->mu);
    while (f->left && !f->closed && !fc_cancel_requested)
        fd_wait(f);
    if (f->left)
        rc = fc_cancel_requested
                 ? FC_ERR(FC_E_CANCELLED, "image-import: cancelled")
                 : FC_ERR(FC_E_IO, "image-import: the upload stopped taking data");
    f->cur = NULL;
    f->left = 0;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static fc_rc
fd_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    (void)off;
    return fd_offer((struct feeder *)s, buf, len, false);
}

static fc_rc
fd_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    (void)off;
    struct feeder *f = (struct feeder *)s;
    fc_rc rc = FC_OK;
    while (len && rc == FC_OK) {
        size_t k = len < sizeof im_zeros ? (size_t)len : sizeof im_zeros;
        rc = fd_offer(f, im_zeros, k, true);
        len -= k;
    }
    return rc;
}

static fc_rc
fd_end(struct fc_sink *s, uint64_t size, const uint8_t *sha256)
{
    (void)size;
    struct feeder *f = (struct feeder *)s;
    unsigned n = 0;
    fc_sha256_final(&f->s256, f->d256);
    EVP_DigestFinal_ex(f->s512, f->d512, &n);
    /* The reader does not hash (verify off): this is the one SHA-256 of the input, and the
     * framed input's END digest is checked against it here. */
    if (sha256 && memcmp(sha256, f->d256, 32) != 0) {
        char a[65], b[65];
        fc_hex(sha256, 32, a);
        fc_hex(f->d256, 32, b);
        return FC_ERR(FC_E_CHECKSUM, "image-import: SHA-256 mismatch: the producer sent %s, "
                      "the data received hashes to %s", a, b);
    }
    f->end_seen = true;
    return FC_OK;
}

static void *
feed_thread(void *arg)
{
    struct feeder *f = arg;
    struct fc_stream_reader_opts ro = {.verify = false, .cancel = &fc_cancel_requested};
    struct fc_stream_stats st = {0};
    fc_rc rc = fc_stream_read(f->in_fd, &f->sink, &ro, &st);
    pthread_mutex_lock(&f->mu);
    f->rc = rc;
    if (rc)
        snprintf(f->err, sizeof f->err, "%s", fc_error_msg());
    f->done = true; /* EOF for curl */
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
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
    struct feeder *f = u->f;
    pthread_mutex_lock(&f->mu);
    while (!f->left && !f->done && !fc_cancel_requested)
        fd_wait(f);
    if (f->left) {
        size_t k = f->left < len ? f->left : len;
        memcpy(buf, f->cur, k);
        f->cur += k;
        f->left -= k;
        if (!f->left)
            pthread_cond_broadcast(&f->cv);
        uint64_t bytes = f->bytes, size = f->size;
        pthread_mutex_unlock(&f->mu);
        fc_event_progress(u->m, bytes, size, NULL, false);
        return k;
    }
    bool done = f->done;
    pthread_mutex_unlock(&f->mu);
    if (!done) /* cancelled while waiting */
        return CURL_READFUNC_ABORT;
    /* EOF: the input is complete only if the reader succeeded */
    pthread_join(u->th, NULL);
    u->joined = true;
    return f->rc == FC_OK && f->end_seen ? 0 : CURL_READFUNC_ABORT;
}

/* Streams stdin into image `id`; fills f's digests. */
static fc_rc
upload(struct osa *a, const char *id, struct feeder *f, bool discard)
{
    f->in_fd = 0;
    f->size = FC_SIZE_UNKNOWN;
    f->sink = (struct fc_sink){fd_begin, fd_write, fd_zero, fd_end};
    (void)fcntl(0, F_SETPIPE_SZ, IM_PIPE_SIZE); /* fewer wake-ups; refused unless a pipe */
    f->s512 = EVP_MD_CTX_new();
    if (!f->s512 || !EVP_DigestInit_ex(f->s512, EVP_sha512(), NULL) ||
        fc_sha256_init(&f->s256) != FC_OK) {
        fc_sha256_free(&f->s256);
        EVP_MD_CTX_free(f->s512);
        f->s512 = NULL;
        return FC_ERR(FC_E_NOMEM, "image-import: hashing");
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    struct upload u = {.f = f, .m = a->m};
    fc_rc rc = FC_OK;
    if (pthread_create(&u.th, NULL, feed_thread, f) != 0) {
        rc = FC_ERR(FC_E_INTERNAL, "image-import: cannot start the reader thread");
        pthread_cond_destroy(&f->cv);
        pthread_mutex_destroy(&f->mu);
        fc_sha256_free(&f->s256);
        EVP_MD_CTX_free(f->s512);
        f->s512 = NULL;
        return rc;
    }
    if (discard) {
        char buf[65536];
        while (!u.joined && up_read(&u, buf, sizeof buf) != CURL_READFUNC_ABORT)
            ;
    } else {
        /* Glance (uwsgi) gives up on an upload whose body does not come: start it only once
         * the first bytes are there (an upstream stage may wait minutes for its cloud) */
        pthread_mutex_lock(&f->mu);
        while (!f->left && !f->done && !fc_cancel_requested)
            fd_wait(f);
        /* a framed input's BEGIN gives the exact byte count (its reader fails the stream
         * unless END comes there): a plain Content-Length, as curl -T sends a file; chunked
         * otherwise */
        int64_t clen = f->begun && f->size != FC_SIZE_UNKNOWN ? (int64_t)f->size : -1;
        pthread_mutex_unlock(&f->mu);
        char path[300];
        snprintf(path, sizeof path, "/images/%s/file", id);
        if (fc_cancel_requested)
            rc = FC_ERR(FC_E_CANCELLED, "image-import: cancelled before the upload began");
        else
            rc = fc_os_stream(a->os, FC_SVC_IMAGE, "PUT", path, "application/octet-stream",
                              up_read, &u, clen, NULL, NULL, NULL);
    }
    bool early = !u.joined;
    if (early) {
        /* curl stopped before the reader's EOF: with a Content-Length once it had every byte
         * (the reader has yet to check the END frame), else because the upload failed.
         * Unblock the reader (a piece it offers now is never taken) and wait for it; it may
         * be blocked reading stdin until the upstream stage ends or we are cancelled. */
        pthread_mutex_lock(&f->mu);
        f->closed = true;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(u.th, NULL);
    }
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    fc_sha256_free(&f->s256);
    EVP_MD_CTX_free(f->s512);
    f->s512 = NULL;
    if (early && rc) /* the upload failed first; the reader's failure is its consequence */
        return rc;
    if (f->rc)
        return FC_ERR(f->rc, "%s", f->err); /* the input's failure, not curl's abort */
    if (!f->end_seen)
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
    struct feeder f = {.in_fd = 0};
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
