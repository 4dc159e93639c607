/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the volume integration tests: the sshd fixture's env, files, commands. */
#ifndef VOLUME_TEST_COMMON_H
#define VOLUME_TEST_COMMON_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sshd_env {
    char host[64], user[64], identity[512], wrong_identity[512], known_hosts[512];
    char dir[512], log[512], ssh_config[512];
    unsigned port;
    int pid;
};

/* Reads RUN/sshd.env (FLUID_TEST_RUN_DIR, or the given run dir); cr_fatal when missing. */
static inline void
sshd_env_load_from(const char *run, struct sshd_env *e)
{
    char path[1024];
    memset(e, 0, sizeof *e);
    if ((size_t)snprintf(path, sizeof path, "%s/sshd.env", run) >= sizeof path)
        cr_assert_fail("run dir path too long");
    FILE *f = fopen(path, "r");
    if (!f)
        cr_assert_fail("sshd fixture env %s missing: run through ctest (fixture.sshd)", path);
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *v = strchr(line, '=');
        if (!v)
            continue;
        *v++ = 0;
#define S(k, fld) if (!strcmp(line, k)) snprintf(e->fld, sizeof e->fld, "%s", v);
        S("SSHD_HOST", host) S("SSHD_USER", user) S("SSHD_IDENTITY", identity)
        S("SSHD_WRONG_IDENTITY", wrong_identity) S("SSHD_KNOWN_HOSTS", known_hosts)
        S("SSHD_DIR", dir) S("SSHD_LOG", log) S("SSHD_SSH_CONFIG", ssh_config)
#undef S
        if (!strcmp(line, "SSHD_PORT"))
            e->port = (unsigned)atoi(v);
        if (!strcmp(line, "SSHD_PID"))
            e->pid = atoi(v);
    }
    fclose(f);
    if (!e->port || !e->host[0])
        cr_assert_fail("sshd fixture env %s incomplete", path);
}

static inline void
sshd_env_load(struct sshd_env *e)
{
    const char *run = getenv("FLUID_TEST_RUN_DIR");
    if (!run)
        cr_assert_fail("FLUID_TEST_RUN_DIR not set: run through ctest");
    sshd_env_load_from(run, e);
}

#endif
