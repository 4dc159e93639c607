/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-conduit: options, configuration file, signals; the work is in conduit.c. */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conduit.h"
#include "config.h"
#include "fluid/amqp.h"
#include "fluid/error.h"
#include "fluid/log.h"

static volatile sig_atomic_t stop_flag;

static void
on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

struct conf {
    char *amqp_url, *state_dir, *clouds_file;
    unsigned max_parallel, prefetch;
};

static fc_rc
conf_set(void *arg, const char *key, const char *value)
{
    struct conf *c = arg;
    if (strcmp(key, "amqp_url") == 0) {
        free(c->amqp_url);
        c->amqp_url = strdup(value);
    } else if (strcmp(key, "state_dir") == 0) {
        free(c->state_dir);
        c->state_dir = strdup(value);
    } else if (strcmp(key, "clouds_file") == 0) {
        free(c->clouds_file);
        c->clouds_file = strdup(value);
    } else if (strcmp(key, "max_parallel") == 0) {
        return fc_conf_uint("max_parallel", value, 1, 1024, &c->max_parallel);
    } else if (strcmp(key, "prefetch") == 0) {
        return fc_conf_uint("prefetch", value, 1, 1000, &c->prefetch);
    } else {
        return FC_ERR(FC_E_INVALID, "unknown key \"%.64s\" (amqp_url, state_dir, clouds_file, "
                      "max_parallel, prefetch)", key);
    }
    return FC_OK;
}

/* True when this program runs from the build tree (its folder is the build's bin/). */
static bool
in_build_tree(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return false;
    *slash = '\0';
    char real[PATH_MAX];
    return realpath(FLUID_BUILD_BINDIR, real) && strcmp(real, exe) == 0;
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: fluid-conduit [--config FILE] [--amqp URL] [--state-dir DIR]\n"
            "                     [--max-parallel N] [--prefetch N]\n"
            "Consumes RelocationRequests from fluid.requests, records them in DIR/conduit.db\n"
            "and runs their plans. See fluid-conduit(1).\n");
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},   {"amqp", required_argument, NULL, 'a'},
        {"state-dir", required_argument, NULL, 's'}, {"max-parallel", required_argument, NULL, 'p'},
        {"prefetch", required_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *amqp = NULL, *state_dir = NULL, *par = NULL, *pre = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:a:s:p:f:hV", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': config = optarg; break;
        case 'a': amqp = optarg; break;
        case 's': state_dir = optarg; break;
        case 'p': par = optarg; break;
        case 'f': pre = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("fluid-conduit %s\n", FLUID_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    fc_log_init("fluid-conduit");
    bool build = in_build_tree();
    struct conf c = {.max_parallel = 8, .prefetch = 16};
    fc_rc rc = FC_OK;
    if (config)
        rc = fc_conf_load(config, true, conf_set, &c);
    else if (!build)
        rc = fc_conf_load(FLUID_SYSCONFDIR "/conduit.conf", false, conf_set, &c);
    if (rc == FC_OK && par)
        rc = fc_conf_uint("--max-parallel", par, 1, 1024, &c.max_parallel);
    if (rc == FC_OK && pre)
        rc = fc_conf_uint("--prefetch", pre, 1, 1000, &c.prefetch);
    if (rc != FC_OK) {
        fc_log(FC_ERROR, FC_MSG("bad configuration"), FC_STR("error", fc_error_msg()));
        return 2;
    }
    struct fc_conduit_opts o = {
        .amqp_url = fc_amqp_url_pick(amqp, c.amqp_url),
        .state_dir = state_dir ? state_dir
                     : c.state_dir ? c.state_dir
                     : build       ? FLUID_BUILD_STATEDIR
                                   : FLUID_STATEDIR,
        .max_parallel = c.max_parallel,
        .prefetch = c.prefetch,
        .clouds_file = c.clouds_file,
    };
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (build && !state_dir && !c.state_dir) {
        /* the build's var/ may not exist yet */
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s", FLUID_BUILD_STATEDIR);
        char *slash = strrchr(parent, '/');
        if (slash) {
            *slash = '\0';
            mkdir(parent, 0755);
        }
    }
    int status = fc_conduit_run(&o, &stop_flag);
    free(c.amqp_url);
    free(c.state_dir);
    free(c.clouds_file);
    return status;
}
