/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-broker configuration: defaults, then a "key = value" file, then flags. Every bad
 * value is FC_E_INVALID naming the file and line, or the flag. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "fluid/error.h"

#ifndef FLUID_SYSCONFDIR
#define FLUID_SYSCONFDIR "/etc/fluidcloud"
#endif

static fc_rc
set_str(char **dst, const char *v)
{
    char *n = strdup(v);
    if (!n)
        return FC_ERR(FC_E_NOMEM, "config: out of memory");
    free(*dst);
    *dst = n;
    return FC_OK;
}

static fc_rc
set_uint(unsigned *dst, const char *v, unsigned min, unsigned max, const char *where)
{
    char *end;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (errno || end == v || *end || x < min || x > max)
        return FC_ERR(FC_E_INVALID, "%s: \"%.64s\" is not a number in %u..%u", where, v, min,
                      max);
    *dst = (unsigned)x;
    return FC_OK;
}

/* One setting by name (file keys and long flags share names, '-' = '_'). */
static fc_rc
apply(struct broker_config *c, const char *key, const char *v, const char *where)
{
    char k[64];
    snprintf(k, sizeof k, "%s", key);
    for (char *p = k; *p; p++) {
        if (*p == '-')
            *p = '_';
    }
    if (!strcmp(k, "amqp_url") || !strcmp(k, "amqp"))
        return set_str(&c->amqp_url, v);
    if (!strcmp(k, "amqp_ca_file") || !strcmp(k, "ca_file"))
        return set_str(&c->amqp_ca_file, v);
    if (!strcmp(k, "site")) {
        if (!fc_site_valid(v))
            return FC_ERR(FC_E_INVALID, "%s: site \"%.64s\": expected ^[a-z0-9][a-z0-9_-]{0,63}$",
                          where, v);
        return set_str(&c->site, v);
    }
    if (!strcmp(k, "broker_id")) {
        if (!fc_id_valid(v))
            return FC_ERR(FC_E_INVALID, "%s: broker_id \"%.64s\": expected [A-Za-z0-9_:-]", where,
                          v);
        return set_str(&c->broker_id, v);
    }
    if (!strcmp(k, "migrator_dir")) {
        if (v[0] != '/')
            return FC_ERR(FC_E_INVALID, "%s: migrator_dir must be an absolute path", where);
        return set_str(&c->migrator_dir, v);
    }
    if (!strcmp(k, "capacity"))
        return set_uint(&c->capacity, v, 1, 1000, where);
    if (!strcmp(k, "heartbeat_s"))
        return set_uint(&c->heartbeat_s, v, 1, 3600, where);
    if (!strcmp(k, "retry_base_ms"))
        return set_uint(&c->retry_base_ms, v, 1, 3600000, where);
    if (!strcmp(k, "retry_max_ms"))
        return set_uint(&c->retry_max_ms, v, 1, 86400000, where);
    if (!strcmp(k, "kill_grace_ms"))
        return set_uint(&c->kill_grace_ms, v, 1, 600000, where);
    if (!strcmp(k, "drain_s"))
        return set_uint(&c->drain_s, v, 0, 86400, where);
    if (!strcmp(k, "retention_s"))
        return set_uint(&c->retention_s, v, 60, 2000000, where);
    if (!strcmp(k, "progress_ms"))
        return set_uint(&c->progress_ms, v, 0, 3600000, where);
    return FC_ERR(FC_E_INVALID, "%s: unknown setting \"%.64s\"", where, key);
}

static char *
trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static fc_rc
load_file(struct broker_config *c, const char *path, bool must_exist)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        if (!must_exist && errno == ENOENT)
            return FC_OK;
        return FC_ERRNO(FC_E_IO, "config %s", path);
    }
    char line[4096];
    unsigned no = 0;
    fc_rc rc = FC_OK;
    while (rc == FC_OK && fgets(line, sizeof line, f)) {
        no++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        char where[PATH_MAX + 32];
        snprintf(where, sizeof where, "%s:%u", path, no);
        if (!eq) {
            rc = FC_ERR(FC_E_INVALID, "%s: expected \"key = value\"", where);
            break;
        }
        *eq = '\0';
        rc = apply(c, trim(s), trim(eq + 1), where);
    }
    fclose(f);
    return rc;
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: fluid-broker [--config FILE] [--amqp URL] [--ca-file FILE] [--site SITE]\n"
            "                    [--broker-id ID] [--capacity N] [--migrator-dir DIR]\n"
            "                    [--heartbeat-s S] [--retry-base-ms MS] [--retry-max-ms MS]\n"
            "                    [--kill-grace-ms MS] [--drain-s S] [--retention-s S]\n"
            "                    [--progress-ms MS] [--version] [--help]\n");
}

fc_rc
broker_config_load(struct broker_config *c, int argc, char **argv, bool *exit_now)
{
    memset(c, 0, sizeof *c);
    *exit_now = false;
    c->capacity = 4;
    c->heartbeat_s = 5;
    c->retry_base_ms = 1000;
    c->retry_max_ms = 60000;
    c->kill_grace_ms = 2000;
    c->drain_s = 60;
    c->retention_s = 7 * 86400;
    c->progress_ms = 1000;
    fc_rc rc = set_str(&c->site, "default");
    if (rc != FC_OK)
        return rc;

    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"amqp", required_argument, NULL, 1},
        {"ca-file", required_argument, NULL, 1},  {"site", required_argument, NULL, 1},
        {"broker-id", required_argument, NULL, 1}, {"capacity", required_argument, NULL, 1},
        {"migrator-dir", required_argument, NULL, 1},
        {"heartbeat-s", required_argument, NULL, 1},
        {"retry-base-ms", required_argument, NULL, 1},
        {"retry-max-ms", required_argument, NULL, 1},
        {"kill-grace-ms", required_argument, NULL, 1},
        {"drain-s", required_argument, NULL, 1},  {"retention-s", required_argument, NULL, 1},
        {"progress-ms", required_argument, NULL, 1},
        {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    /* first pass: --config, --help, --version */
    const char *cfg = NULL;
    int idx, ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        if (ch == 'c')
            cfg = optarg;
        else if (ch == 'h') {
            usage(stdout);
            *exit_now = true;
            return FC_OK;
        } else if (ch == 'V') {
            printf("fluid-broker %s\n", FLUID_VERSION);
            *exit_now = true;
            return FC_OK;
        } else if (ch == '?' || ch == ':') {
            usage(stderr);
            return FC_ERR(FC_E_INVALID, "argument \"%s\": unknown option or missing value",
                          argv[optind - 1]);
        }
    }
    if (optind < argc)
        return FC_ERR(FC_E_INVALID, "unexpected argument \"%s\"", argv[optind]);
    if (!cfg)
        cfg = getenv("FLUID_BROKER_CONFIG");
    rc = cfg ? load_file(c, cfg, true) : load_file(c, FLUID_SYSCONFDIR "/broker.conf", false);
    if (rc != FC_OK)
        return rc;
    /* second pass: flags override the file */
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        if (ch != 1)
            continue;
        char where[80];
        snprintf(where, sizeof where, "--%s", opts[idx].name);
        if ((rc = apply(c, opts[idx].name, optarg, where)) != FC_OK)
            return rc;
        if (!strcmp(opts[idx].name, "amqp"))
            c->amqp_from_flag = true;
        if (!strcmp(opts[idx].name, "migrator-dir"))
            c->migrator_dir_from_flag = true;
    }
    if (c->retry_max_ms < c->retry_base_ms)
        c->retry_max_ms = c->retry_base_ms;
    return FC_OK;
}

void
broker_config_free(struct broker_config *c)
{
    if (c->amqp_url) {
        memset(c->amqp_url, 0, strlen(c->amqp_url));
        free(c->amqp_url);
    }
    free(c->amqp_ca_file);
    free(c->site);
    free(c->broker_id);
    free(c->migrator_dir);
    memset(c, 0, sizeof *c);
}
