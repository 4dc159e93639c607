/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers of the OpenStack client's integration tests (see cloud_test.h). */
#include "cloud_test.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fluid/log.h"

static int saved_fd = -1;
static char cap_path[256];

void
ct_capture_start(void)
{
    snprintf(cap_path, sizeof cap_path, "/tmp/fluid-cloud-test-log-%d-XXXXXX", (int)getpid());
    if (getenv("FLUID_TEST_KEEP_LOG")) /* debugging: keep the log file, print its name */
        fprintf(stderr, "log: %s\n", cap_path);
    int fd = mkstemp(cap_path);
    cr_assert(fd >= 0);
    fflush(stderr);
    saved_fd = dup(2);
    dup2(fd, 2);
    close(fd);
    setenv("FLUID_LOG_FORMAT", "json", 1);
    setenv("FLUID_LOG_LEVEL", "debug", 1);
    fc_log_init("cloud-test");
}

char *
ct_capture_stop(void)
{
    fflush(stderr);
    dup2(saved_fd, 2);
    close(saved_fd);
    saved_fd = -1;
    FILE *f = fopen(cap_path, "r");
    cr_assert_not_null(f);
    char *buf = calloc(1, 1 << 22);
    size_t n = fread(buf, 1, (1 << 22) - 1, f);
    buf[n] = '\0';
    fclose(f);
    if (!getenv("FLUID_TEST_KEEP_LOG"))
        unlink(cap_path);
    return buf;
}

int
ct_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    cr_assert(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
    getsockname(s, (struct sockaddr *)&a, &l);
    close(s);
    return ntohs(a.sin_port);
}

bool
ct_wait_listen(int port, int tries)
{
    for (int i = 0; i < tries; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
        close(s);
        if (ok)
            return true;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

json_t *
ct_fixture_env(const char *name)
{
    const char *dir = getenv("FLUID_TEST_RUN_DIR");
    if (!dir)
        cr_assert_fail("FLUID_TEST_RUN_DIR is not set: run through ctest (fixture %s)", name);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.env", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        cr_assert_fail("fixture %s did not run: %s is missing", name, path);
    json_t *env = json_object();
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *eq = strchr(line, '=');
        if (!eq || line[0] == '#')
            continue;
        *eq = '\0';
        char *v = eq + 1;
        size_t n = strlen(v);
        if (n >= 2 && (v[0] == '\'' || v[0] == '"') && v[n - 1] == v[0]) {
            v[n - 1] = '\0';
            v++;
        }
        char *k = line;
        if (strncmp(k, "export ", 7) == 0)
            k += 7;
        json_object_set_new(env, k, json_string(v));
    }
    fclose(f);
    return env;
}

void
ct_no_secret(const char *text, const char *secret, const char *what)
{
    cr_assert(secret && strlen(secret) >= 3, "no secret to look for");
    cr_assert_null(strstr(text, secret), "the secret appears in %s", what);
}
