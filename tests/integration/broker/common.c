/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers for the broker-side integration tests (see common.h). */
#include "common.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fluid/error.h"
#include "fluid/spawn.h"

static void
set(char *dst, size_t cap, const char *v)
{
    snprintf(dst, cap, "%s", v);
}

void
tb_env_load(struct tb_env *e, const char *dir)
{
    memset(e, 0, sizeof *e);
    const char *run = dir ? dir : getenv("FLUID_TEST_RUN_DIR");
    if (!run)
        cr_assert_fail("FLUID_TEST_RUN_DIR is not set: run this test through ctest");
    set(e->run_dir, sizeof e->run_dir, run);
    char path[1100];
    snprintf(path, sizeof path, "%s/rabbitmq.env", run);
    FILE *f = fopen(path, "r");
    if (!f)
        cr_assert_fail("%s missing: the rabbitmq fixture did not start", path);
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *k = line, *v = eq + 1;
        if (!strcmp(k, "FLUID_AMQP_URL"))
            set(e->url, sizeof e->url, v);
        else if (!strcmp(k, "FLUID_AMQPS_URL"))
            set(e->tls_url, sizeof e->tls_url, v);
        else if (!strcmp(k, "FLUID_AMQP_CA"))
            set(e->ca, sizeof e->ca, v);
        else if (!strcmp(k, "FLUID_AMQP_OTHER_CA"))
            set(e->other_ca, sizeof e->other_ca, v);
        else if (!strcmp(k, "FLUID_AMQP_PASSWORD"))
            set(e->password, sizeof e->password, v);
        else if (!strcmp(k, "FLUID_RABBITMQ_FIXTURE"))
            set(e->fixture, sizeof e->fixture, v);
    }
    fclose(f);
    if (!e->url[0] || !e->password[0] || !e->fixture[0])
        cr_assert_fail("%s: FLUID_AMQP_URL, FLUID_AMQP_PASSWORD or FLUID_RABBITMQ_FIXTURE missing", path);
}

static void
run_fixture(const char *fixture, const char *verb, const char *dir)
{
    const char *argv[] = {"/bin/bash", fixture, verb, dir, NULL};
    static char out[8192], err[8192];
    int st = -1;
    fc_rc rc = fc_run(argv, out, sizeof out, err, sizeof err, &st);
    cr_assert(rc == FC_OK, "run %s %s: %s", fixture, verb, fc_error_msg());
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s %s %s failed: %s %s", fixture, verb,
              dir, out, err);
}

void
tb_private_node(struct tb_env *e, const char *name)
{
    const char *run = getenv("FLUID_TEST_RUN_DIR");
    const char *src = getenv("FLUID_SOURCE_DIR");
    if (!run || !src)
        cr_assert_fail("FLUID_TEST_RUN_DIR / FLUID_SOURCE_DIR not set: run this test through ctest");
    char dir[1024], fixture[1024];
    snprintf(dir, sizeof dir, "%s/%s", run, name);
    snprintf(fixture, sizeof fixture, "%s/tests/fixtures/rabbitmq.sh", src);
    mkdir(dir, 0755);
    run_fixture(fixture, "start", dir);
    tb_env_load(e, dir);
}

void
tb_node(const struct tb_env *e, const char *verb)
{
    run_fixture(e->fixture, verb, e->run_dir);
}

void
tb_unique(char *buf, size_t cap, const char *prefix)
{
    static unsigned n;
    snprintf(buf, cap, "%s-%ld-%u", prefix, (long)getpid(), ++n);
}

struct fc_amqp *
tb_amqp(const struct tb_env *e, bool reconnect)
{
    struct fc_amqp_config c = {.url = e->url, .reconnect = reconnect, .name = "fluid-test"};
    struct fc_amqp *a = NULL;
    fc_rc rc = fc_amqp_open(&c, &a);
    if (rc != FC_OK)
        cr_assert_fail("connect to the fixture: %s", fc_error_msg());
    return a;
}

uint64_t
tb_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *
tb_bin(const char *prog, char *buf, size_t cap)
{
    const char *bin = getenv("FLUID_BIN_DIR");
    if (!bin)
        cr_assert_fail("FLUID_BIN_DIR not set: run this test through ctest");
    snprintf(buf, cap, "%s/%s", bin, prog);
    return buf;
}

bool
tb_file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap + 1);
    bool found = false;
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        buf[len] = '\0';
        if (memmem(buf, len, needle, strlen(needle))) {
            found = true;
            break;
        }
        if (len == cap) {
            /* keep the last bytes to match across the boundary */
            size_t keep = strlen(needle);
            memmove(buf, buf + len - keep, keep);
            len = keep;
        }
    }
    free(buf);
    fclose(f);
    return found;
}
