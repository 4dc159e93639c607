/* SPDX-License-Identifier: Apache-2.0 */
/* image-export resumes a dropped download with "Range: bytes=N-": Glance is reached through
 * a TCP proxy in this test (clouds.yaml image_endpoint_override) that cuts the connection
 * once after 2 MiB. The exported bytes' SHA-256 equals the source image's, the proxy saw the
 * Range request and carried the image's bytes only once. Also: a 206 for another range is a
 * clear error, and a server that ignores Range (200) restarts cleanly with the same digest. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cloud_test.h"
#include "devcloud_api.h"
#include "fluid/cloud/config.h"
#include "fluid/error.h"
#include "fluid/sha256.h"
#include "os_run.h"

#define IMG_SIZE (5u << 20)
#define CUT_AFTER (2u << 20)

enum px_mode { PX_CUT = 0, PX_BAD_RANGE, PX_NO_RANGE };

static struct {
    int lfd, up_port;
    enum px_mode mode;
    atomic_bool cut;            /* the one cut happened */
    atomic_ullong down;         /* bytes sent to the client, all connections */
    char range[96];             /* the Range header of the last ranged request */
    pthread_mutex_t mu;
} px = {.lfd = -1, .mu = PTHREAD_MUTEX_INITIALIZER};

static void *
relay(void *arg)
{
    int c = (int)(intptr_t)arg;
    int u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)px.up_port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(u, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(c);
        close(u);
        return NULL;
    }
    static char bufs[64][65536];
    static atomic_int slot;
    char *buf = bufs[atomic_fetch_add(&slot, 1) % 64];
    unsigned long long mine = 0;
    bool ranged = false;
    for (;;) {
        struct pollfd pf[2] = {{c, POLLIN, 0}, {u, POLLIN, 0}};
        if (poll(pf, 2, 60000) <= 0)
            break;
        if (pf[0].revents) { /* request bytes */
            ssize_t n = read(c, buf, 65535);
            if (n <= 0)
                break;
            buf[n] = '\0';
            char *r = memmem(buf, (size_t)n, "Range: bytes=", 13);
            if (r) {
                ranged = true;
                pthread_mutex_lock(&px.mu);
                snprintf(px.range, sizeof px.range, "%.*s", (int)strcspn(r, "\r\n"), r);
                pthread_mutex_unlock(&px.mu);
                if (px.mode == PX_NO_RANGE)
                    memcpy(r, "X-Nope:", 7); /* the server never sees it: answers 200 */
            }
            if (write(u, buf, (size_t)n) != n)
                break;
        }
        if (pf[1].revents) { /* reply bytes */
            ssize_t n = read(u, buf, 65536);
            if (n <= 0)
                break;
            if (ranged && px.mode == PX_BAD_RANGE) {
                /* "bytes 2097152-" -> "bytes 1097152-": a 206 for another range */
                char *p = memmem(buf, (size_t)n, "Content-Range: bytes ", 21);
                if (p && p[21] >= '1' && p[21] <= '9')
                    p[21] = p[21] == '1' ? '2' : '1';
            }
            if (!atomic_load(&px.cut) && mine + (unsigned long long)n > CUT_AFTER) {
                size_t part = CUT_AFTER - mine;
                if (write(c, buf, part) != (ssize_t)part)
                    break;
                atomic_fetch_add(&px.down, part);
                atomic_store(&px.cut, true);
                struct linger lg = {1, 0}; /* a reset, as a dropped link looks to curl */
                setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
                break;
            }
            if (write(c, buf, (size_t)n) != n)
                break;
            mine += (unsigned long long)n;
            atomic_fetch_add(&px.down, (unsigned long long)n);
        }
    }
    close(c);
    close(u);
    return NULL;
}

static void *
acceptor(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept4(px.lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        pthread_t t;
        pthread_create(&t, NULL, relay, (void *)(intptr_t)c);
        pthread_detach(t);
    }
}

/* Starts the proxy to Glance of `os`; returns its port. */
static int
proxy_start(struct fc_os *os, enum px_mode mode)
{
    const char *url = NULL;
    cr_assert_eq(fc_os_endpoint(os, FC_SVC_IMAGE, &url), FC_OK, "%s", fc_error_msg());
    const char *hp = strstr(url, "://");
    cr_assert_not_null(hp);
    hp += 3;
    cr_assert(strncmp(hp, "127.0.0.1:", 10) == 0, "Glance is not on loopback: %s", url);
    px.up_port = atoi(hp + 10);
    px.mode = mode;
    px.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(bind(px.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(px.lfd, 16), 0);
    socklen_t sl = sizeof sa;
    getsockname(px.lfd, (struct sockaddr *)&sa, &sl);
    pthread_t t;
    pthread_create(&t, NULL, acceptor, NULL);
    pthread_detach(t);
    return ntohs(sa.sin_port);
}

/* A YAML double-quoted scalar. */
static void
yq(FILE *f, const char *k, const char *v)
{
    if (!v)
        return;
    fprintf(f, "      %s: \"", k);
    for (const char *p = v; *p; p++)
        fprintf(f, *p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
    fprintf(f, "\"\n");
}

/* clouds.yaml with cloud "resume" = the fixture's source, Glance through the proxy. */
static void
write_clouds(const char *path, int port)
{
    struct fc_cloud_config *c = NULL;
    cr_assert_eq(fc_cloud_config_load(dc_source(), NULL, NULL, NULL, NULL, &c), FC_OK, "%s",
                 fc_error_msg());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "clouds:\n  resume:\n    auth:\n");
    yq(f, "auth_url", c->auth_url);
    yq(f, "username", c->username);
    yq(f, "password", c->password);
    yq(f, "project_name", c->project_name);
    yq(f, "project_id", c->project_id);
    yq(f, "user_domain_name", c->user_domain_name);
    yq(f, "user_domain_id", c->user_domain_id);
    yq(f, "project_domain_name", c->project_domain_name);
    yq(f, "project_domain_id", c->project_domain_id);
    if (c->region_name)
        fprintf(f, "    region_name: \"%s\"\n", c->region_name);
    fprintf(f, "    image_endpoint_override: \"http://127.0.0.1:%d\"\n", port);
    fclose(f);
    fc_cloud_config_free(c);
}

struct fdr {
    int fd;
};

static size_t
rd(void *ctx, char *buf, size_t len)
{
    ssize_t n = read(((struct fdr *)ctx)->fd, buf, len);
    return n < 0 ? 0 : (size_t)n;
}

/* A 5 MiB image of random bytes with a zero run in the middle; its SHA-256 in hex. */
static char *
make_image(struct fc_os *os, const char *name, char hex[65])
{
    char path[] = "/tmp/fluid-osres-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    uint8_t *buf = malloc(IMG_SIZE);
    int ur = open("/dev/urandom", O_RDONLY);
    for (size_t got = 0; got < IMG_SIZE;)
        got += (size_t)read(ur, buf + got, IMG_SIZE - got);
    close(ur);
    memset(buf + (1u << 20), 0, 1u << 20);
    cr_assert_eq(write(fd, buf, IMG_SIZE), (ssize_t)IMG_SIZE);
    struct fc_sha256 h;
    uint8_t d[32];
    fc_sha256_init(&h);
    fc_sha256_update(&h, buf, IMG_SIZE);
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
                              IMG_SIZE, NULL, NULL, NULL), FC_OK, "%s", fc_error_msg());
    close(fd);
    return id;
}

static void
file_sha(int fd, char hex[65])
{
    struct fc_sha256 h;
    uint8_t d[32], b[65536];
    ssize_t n;
    fc_sha256_init(&h);
    lseek(fd, 0, SEEK_SET);
    while ((n = read(fd, b, sizeof b)) > 0)
        fc_sha256_update(&h, b, (size_t)n);
    fc_sha256_final(&h, d);
    fc_sha256_free(&h);
    fc_hex(d, 32, hex);
}

static char *img_id;

/* Exports image `name` through a proxy in `mode`; returns the run, the output's digest. */
static void
export_through(enum px_mode mode, const char *tag, struct osr *r, char out_hex[65],
               char src_hex[65], struct fc_os **keep)
{
    struct fc_os *src = dc_open(dc_source());
    char name[80], dir[] = "/tmp/fluid-osres-dir-XXXXXX", yaml[200], rid[64];
    snprintf(name, sizeof name, "resume-%s-%d", tag, (int)getpid());
    snprintf(rid, sizeof rid, "r-res%d", (int)getpid());
    img_id = make_image(src, name, src_hex);
    int port = proxy_start(src, mode);
    cr_assert_not_null(mkdtemp(dir));
    snprintf(yaml, sizeof yaml, "%s/clouds.yaml", dir);
    write_clouds(yaml, port);
    setenv("OS_CLIENT_CONFIG_FILE", yaml, 1);
    char opath[] = "/tmp/fluid-osres-out-XXXXXX";
    int ofd = mkstemp(opath);
    unlink(opath);
    osr_run(r, -1, ofd, (const char *[]){"image-export", "--cloud", "resume",
                                         "--relocation-id", rid, "--image-name", name,
                                         "--plain", NULL});
    file_sha(ofd, out_hex);
    close(ofd);
    unlink(yaml);
    rmdir(dir);
    *keep = src;
}

TestSuite(resume, .init = dc_setup, .timeout = 900);

Test(resume, dropped_download_resumes_with_range_and_is_identical)
{
    struct osr r;
    char out[65], want[65];
    struct fc_os *src = NULL;
    export_through(PX_CUT, "cut", &r, out, want, &src);
    cr_assert_eq(r.exit, 0, "image-export failed: %s %s", r.events, r.err);
    cr_assert(atomic_load(&px.cut), "the proxy never cut the download");
    cr_assert_str_eq(out, want, "exported bytes differ from the source image");
    cr_assert_str_eq(json_string_value(json_object_get(r.result, "sha256")), want);
    cr_assert(json_is_true(json_object_get(r.result, "glance_hash_checked")));
    cr_assert_eq(json_integer_value(json_object_get(r.result, "resumes")), 1);
    cr_assert_eq(json_integer_value(json_object_get(r.result, "range_resumes")), 1);
    /* Range asked from where the cut left off, and only the rest crossed the proxy again:
     * CUT_AFTER bytes before the cut, then image bytes from `from` on, plus the replies'
     * headers. (What the client had not read yet when the cut came, still in socket
     * buffers, is lost with the connection: that depends on the load, not on us.) */
    unsigned long long from = 0;
    cr_assert_eq(sscanf(px.range, "Range: bytes=%llu-", &from), 1, "no Range seen: '%s'",
                 px.range);
    cr_assert(from > 0 && from <= CUT_AFTER, "Range from %llu", from);
    cr_assert_leq(atomic_load(&px.down), CUT_AFTER + (IMG_SIZE - from) + (16u << 10),
                  "%llu bytes crossed the proxy for a %u-byte image resumed at %llu",
                  (unsigned long long)atomic_load(&px.down), IMG_SIZE, from);
    cr_assert_not_null(strstr(r.events, "download dropped: resuming"));
    osr_free(&r);
    dc_try(src, FC_SVC_IMAGE, "DELETE", NULL, "/images/%s", img_id);
    free(img_id);
    fc_os_close(src);
}

Test(resume, a_206_for_another_range_fails_clearly)
{
    struct osr r;
    char out[65], want[65];
    struct fc_os *src = NULL;
    export_through(PX_BAD_RANGE, "bad", &r, out, want, &src);
    cr_assert(atomic_load(&px.cut));
    cr_assert_eq(r.exit, FC_E_REMOTE, "exit %d: %s", r.exit, r.events);
    cr_assert_not_null(r.error);
    const char *m = json_string_value(json_object_get(r.error, "message"));
    cr_assert(m && strstr(m, "Content-Range"), "message: %s", m ? m : "(none)");
    osr_free(&r);
    dc_try(src, FC_SVC_IMAGE, "DELETE", NULL, "/images/%s", img_id);
    free(img_id);
    fc_os_close(src);
}

Test(resume, a_server_ignoring_range_restarts_cleanly)
{
    struct osr r;
    char out[65], want[65];
    struct fc_os *src = NULL;
    export_through(PX_NO_RANGE, "norange", &r, out, want, &src);
    cr_assert_eq(r.exit, 0, "image-export failed: %s %s", r.events, r.err);
    cr_assert(atomic_load(&px.cut));
    cr_assert_str_eq(out, want, "exported bytes differ from the source image");
    cr_assert_eq(json_integer_value(json_object_get(r.result, "resumes")), 1);
    cr_assert_eq(json_integer_value(json_object_get(r.result, "range_resumes")), 0);
    /* the whole image came again after the cut */
    cr_assert_geq(atomic_load(&px.down), (unsigned long long)IMG_SIZE + CUT_AFTER - (64u << 10));
    osr_free(&r);
    dc_try(src, FC_SVC_IMAGE, "DELETE", NULL, "/images/%s", img_id);
    free(img_id);
    fc_os_close(src);
}
