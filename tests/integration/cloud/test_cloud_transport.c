/* SPDX-License-Identifier: Apache-2.0 */
/* The OpenStack client's transport against real servers that are not OpenStack: a TLS server
 * with a self-signed certificate (openssl s_server), Python's http.server (which answers 501
 * to a POST and 404 to a missing path), and a closed port. Each failure is a clear error of
 * the right kind, retried only when it should be, with no secret in any error or log.
 * (4xx replies, never retried, are tested against the devcloud in test_cloud_devcloud.c.) */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloud_test.h"
#include "fluid/cloud/config.h"
#include "fluid/cloud/os.h"
#include "fluid/error.h"
#include "fluid/spawn.h"

#define PLANTED "Pl4nted-s3cret-f1uid"

static char dir[128], crt[256], key[256];
static pid_t server = -1;
static int port;

static void
start(const char *const *argv)
{
    struct fc_spawn sp = {.argv = argv, .fd = {-1, -1, -1}, .new_pgroup = true};
    cr_assert_eq(fc_spawn(&sp, &server), FC_OK, "%s", fc_error_msg());
    cr_assert(ct_wait_listen(port, 100), "%s did not listen on %d", argv[0], port);
}

static void
stop(void)
{
    if (server > 0) {
        kill(-server, SIGTERM);
        waitpid(server, NULL, 0);
        server = -1;
    }
    if (*crt)
        unlink(crt);
    if (*key)
        unlink(key);
    if (*dir)
        rmdir(dir);
}

static void
tls_server(void)
{
    snprintf(dir, sizeof dir, "/tmp/fluid-cloud-tls-%d-XXXXXX", (int)getpid());
    cr_assert_not_null(mkdtemp(dir));
    snprintf(crt, sizeof crt, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    const char *gen[] = {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                         "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=127.0.0.1",
                         "-addext", "subjectAltName=IP:127.0.0.1", NULL};
    int status = -1;
    char err[4096];
    cr_assert_eq(fc_run(gen, NULL, 0, err, sizeof err, &status), FC_OK, "%s", fc_error_msg());
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "openssl req: %s", err);
    port = ct_free_port();
    char acc[32];
    snprintf(acc, sizeof acc, "%d", port);
    const char *srv[] = {"/usr/bin/openssl", "s_server", "-accept", acc, "-cert", crt, "-key",
                         key, "-www", "-quiet", NULL};
    start(srv);
}

static void
http_server(void)
{
    port = ct_free_port();
    char p[32];
    snprintf(p, sizeof p, "%d", port);
    const char *srv[] = {"/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", p, NULL};
    *dir = *crt = *key = '\0';
    start(srv);
}

static struct fc_cloud_config *
cfg(const char *scheme, const char *extra)
{
    char y[2048];
    snprintf(y, sizeof y,
             "clouds:\n  t:\n    auth:\n      auth_url: %s://127.0.0.1:%d/v3\n"
             "      username: alice\n      password: " PLANTED "\n      project_name: p\n%s",
             scheme, port, extra ? extra : "");
    struct fc_cloud_config *c = NULL;
    cr_assert_eq(fc_cloud_config_parse(y, strlen(y), NULL, 0, "test.yaml", "t", &c), FC_OK, "%s",
                 fc_error_msg());
    return c;
}

/* Authenticates with `c` (quick retries); returns the rc, the error and the log. */
static unsigned total_timeout = 300;

static fc_rc
try_auth(struct fc_cloud_config *c, char *msg, size_t cap, char **log, struct fc_os_stats *st)
{
    struct fc_os *os = NULL;
    ct_capture_start();
    cr_assert_eq(fc_os_open(c, &os), FC_OK, "%s", fc_error_msg());
    fc_os_set_retry(os, 3, 20);
    fc_os_set_timeouts(os, 5, total_timeout);
    fc_rc rc = fc_os_authenticate(os);
    snprintf(msg, cap, "%s", fc_error_msg());
    if (st)
        *st = *fc_os_stats(os);
    fc_os_close(os);
    fc_cloud_config_free(c);
    *log = ct_capture_stop();
    ct_no_secret(msg, PLANTED, "the error");
    ct_no_secret(*log, PLANTED, "the log");
    return rc;
}

TestSuite(tls, .init = tls_server, .fini = stop, .timeout = 120);

Test(tls, untrusted_certificate_is_refused)
{
    char msg[1024], *log = NULL;
    fc_rc rc = try_auth(cfg("https", NULL), msg, sizeof msg, &log, NULL);
    cr_assert_eq(rc, FC_E_VERIFY, "%s", msg);
    cr_assert(strstr(msg, "TLS verification failed"), "%s", msg);
    cr_assert(strstr(msg, "cloud 't'"), "%s", msg);
    free(log);
}

/* s_server -www answers GET only: our POST gets no reply, so once TLS is through the
 * request runs into its (short) timeout instead of a TLS error. */
Test(tls, cacert_makes_it_trusted)
{
    char extra[512], msg[1024], *log = NULL;
    total_timeout = 2;
    snprintf(extra, sizeof extra, "    cacert: %s\n", crt);
    fc_rc rc = try_auth(cfg("https", extra), msg, sizeof msg, &log, NULL);
    /* TLS passes; the server is no Keystone, so the reply is refused as such */
    cr_assert_neq(rc, FC_E_VERIFY, "%s", msg);
    cr_assert_eq(rc, FC_E_TIMEOUT, "%s", msg);
    cr_assert_null(strstr(msg, "TLS"), "%s", msg);
    free(log);
}

Test(tls, verify_false_skips_the_check)
{
    char msg[1024], *log = NULL;
    total_timeout = 2;
    fc_rc rc = try_auth(cfg("https", "    verify: false\n"), msg, sizeof msg, &log, NULL);
    cr_assert_eq(rc, FC_E_TIMEOUT, "%s", msg);
    free(log);
}

TestSuite(http, .init = http_server, .fini = stop, .timeout = 120);

Test(http, server_error_is_retried_and_reported)
{
    char msg[1024], *log = NULL;
    struct fc_os_stats st;
    fc_rc rc = try_auth(cfg("http", NULL), msg, sizeof msg, &log, &st);
    /* http.server answers 501 Unsupported method to a POST: a 5xx, retried */
    cr_assert_eq(rc, FC_E_REMOTE, "%s", msg);
    cr_assert(strstr(msg, "HTTP 501"), "%s", msg);
    cr_assert(strstr(msg, "Unsupported method"), "the HTML body's message: %s", msg);
    cr_assert(strstr(msg, "authenticating user 'alice'") || strstr(msg, "identity POST"), "%s", msg);
    cr_assert_eq(st.requests, 3, "3 attempts, got %lu", (unsigned long)st.requests);
    cr_assert_eq(st.retries, 2);
    cr_assert(strstr(log, "server error, retrying"), "retries are logged");
    free(log);
}

Test(closed, unreachable_endpoint)
{
    port = ct_free_port();
    char msg[1024], *log = NULL;
    struct fc_os_stats st;
    fc_rc rc = try_auth(cfg("http", NULL), msg, sizeof msg, &log, &st);
    cr_assert_eq(rc, FC_E_NET, "%s", msg);
    cr_assert(strstr(msg, "127.0.0.1"), "names the host: %s", msg);
    cr_assert(strstr(msg, "after 3 attempts"), "%s", msg);
    cr_assert_eq(st.retries, 2);
    free(log);
}
