/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-config: rewrites an application's configuration for its new home, by rules and
 * variables, locally or over SFTP; atomic, all-or-nothing and idempotent. Runs by hand or
 * as a migrator under the broker (docs/config.md, fluid-config.1). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/migrator.h"
#include "fluid/stream.h"

static void
usage(FILE *f)
{
    fputs("usage: fluid-config rewrite --rules RULES.json [--vars VARS.json]... "
          "[--var NAME=VALUE]...\n"
          "                            [--dry-run] [--backup SUFFIX] [--identity KEY]\n"
          "                            [--known-hosts FILE] [TARGET...]\n"
          "       fluid-config check --rules RULES.json [--vars VARS.json]... "
          "[--var NAME=VALUE]...\n"
          "TARGET: a file or folder under the rules' roots, or sftp://[user@]host[:port]/path;\n"
          "without TARGET, the roots themselves (local). See fluid-config(1).\n",
          f);
}

struct opts {
    const char *rules;
    bool dry_run;
    const char *backup;
    struct cfg_vars vars;
};

/* Opens the target of arg; local paths share *local (opened once). */
static fc_rc
open_target(const char *arg, struct cfg_target **local, struct cfg_target **t, const char **path)
{
    if (strncmp(arg, "sftp://", 7) == 0) {
#ifdef FLUID_CONFIG_SFTP
        return cfg_target_sftp(arg, t, path);
#else
        return FC_ERR(FC_E_UNSUPPORTED,
                      "%.*s...: this fluid-config was built without SFTP "
                      "(fluid_ssh)",
                      7, arg);
#endif
    }
    *path = arg;
    if (!*local) {
        fc_rc rc = cfg_target_local(local);
        if (rc != FC_OK)
            return rc;
    }
    *t = *local;
    return FC_OK;
}

static fc_rc
run(struct fc_migrator *m, struct opts *o, char **targets, int ntargets, bool check_only)
{
    struct cfg_rules rules;
    fc_rc rc = cfg_rules_load(&rules, o->rules, &o->vars);
    if (rc != FC_OK)
        return rc;
    if (check_only) {
        size_t n = 0;
        for (size_t i = 0; i < rules.nsets; i++)
            n += rules.sets[i].nrules;
        printf("%s: %zu file glob(s), %zu rule(s): valid\n", o->rules, rules.nsets, n);
        cfg_rules_free(&rules);
        return FC_OK;
    }
    size_t n = ntargets ? (size_t)ntargets : rules.nroots;
    struct cfg_target_path *tp = calloc(n ? n : 1, sizeof *tp);
    char **abs = calloc(n ? n : 1, sizeof *abs);
    if (!tp || !abs)
        rc = FC_ERR(FC_E_NOMEM, "out of memory");
    char cwd[4096];
    struct cfg_target *local = NULL;
    bool *owned = calloc(n ? n : 1, sizeof *owned); /* an SFTP session this entry opened */
    if (!owned)
        rc = FC_ERR(FC_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == FC_OK; i++) {
        const char *arg = ntargets ? targets[i] : rules.roots[i];
        const char *slash = strncmp(arg, "sftp://", 7) == 0 ? strchr(arg + 7, '/') : NULL;
        size_t alen = slash ? (size_t)(slash - arg) : 0;
        for (size_t j = 0; j < i && slash && !tp[i].t; j++) {
            if (owned[j] && strncmp(targets[j], arg, alen) == 0 && targets[j][alen] == '/') {
                tp[i].t = tp[j].t; /* same user@host:port: one session */
                tp[i].path = slash;
            }
        }
        if (tp[i].t)
            continue;
        if ((rc = open_target(arg, &local, &tp[i].t, &tp[i].path)) != FC_OK)
            break;
        owned[i] = tp[i].t != local;
        if (tp[i].path[0] != '/' && tp[i].t->prefix[0] == '\0') {
            if (!getcwd(cwd, sizeof cwd))
                rc = FC_ERRNO(FC_E_IO, "getcwd");
            else if (asprintf(&abs[i], "%s/%s", cwd, tp[i].path) < 0)
                rc = FC_ERR(FC_E_NOMEM, "out of memory");
            else
                tp[i].path = abs[i];
        }
    }
    struct cfg_run r = {0};
    struct cfg_run_opts ro = {
        .dry_run = o->dry_run, .backup_suffix = o->backup, .check_idempotent = true};
    if (rc == FC_OK)
        rc = cfg_run(&rules, tp, n, &ro, &r);
    if (rc == FC_OK && r.nfiles == 0)
        fc_log(FC_WARN, FC_MSG("no file matched a glob of the rules: nothing to do"),
               FC_STR("rules", o->rules));
    if (rc == FC_OK) {
        json_t *changed = json_array(), *unchanged = json_array();
        for (size_t i = 0; i < r.nfiles; i++) {
            struct cfg_file *f = &r.files[i];
            json_array_append_new(f->changed ? changed : unchanged, json_string(f->display));
            fc_log(FC_INFO,
                   FC_MSG(f->changed ? (o->dry_run ? "would change" : "changed") : "unchanged"),
                   FC_STR("path", f->display));
            if (!o->dry_run)
                printf("%s %s\n", f->changed ? "changed" : "unchanged", f->display);
        }
        size_t nch = 0;
        for (size_t i = 0; i < r.nfiles; i++)
            nch += r.files[i].changed;
        fc_log(FC_INFO, FC_MSG(o->dry_run ? "dry run done" : "rewrite done"),
               FC_U64("changed", nch), FC_U64("unchanged", r.nfiles - nch));
        if (o->dry_run && r.diff.len)
            rc = fc_write_all(STDOUT_FILENO, r.diff.p, r.diff.len);
        fflush(stdout);
        if (rc == FC_OK)
            fc_event_done(m, json_pack("{s:o, s:o, s:b}", "changed", changed, "unchanged",
                                       unchanged, "dry_run", o->dry_run));
        else
            json_decref(changed), json_decref(unchanged);
    }
    cfg_run_free(&r);
    for (size_t i = 0; i < n; i++) {
        if (tp && owned && owned[i])
            tp[i].t->ops->close(tp[i].t);
        if (abs)
            free(abs[i]);
    }
    if (local)
        local->ops->close(local);
    free(tp);
    free(abs);
    free(owned);
    cfg_rules_free(&rules);
    return rc;
}

int
main(int argc, char **argv)
{
    struct fc_migrator m;
    fc_rc rc = fc_migrator_init(&m, "fluid-config", &argc, argv);
    if (rc != FC_OK)
        return fc_migrator_finish(&m, rc);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return fc_migrator_finish(&m, FC_OK);
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("fluid-config %s\n", FLUID_VERSION);
        return fc_migrator_finish(&m, FC_OK);
    }
    bool check_only = argc >= 2 && strcmp(argv[1], "check") == 0;
    if (argc < 2 || (!check_only && strcmp(argv[1], "rewrite") != 0)) {
        usage(stderr);
        return fc_migrator_finish(&m, FC_ERR(FC_E_INVALID, "expected a command: rewrite or "
                                                           "check"));
    }
    struct opts o = {0};
    cfg_vars_init(&o.vars);
    json_t *tv = m.task ? json_object_get(m.task, "vars") : NULL;
    if (tv)
        rc = cfg_vars_merge(&o.vars, tv);
    static const struct option lo[] = {
        {"rules", required_argument, NULL, 'r'},
        {"vars", required_argument, NULL, 'V'},
        {"var", required_argument, NULL, 'v'},
        {"dry-run", no_argument, NULL, 'n'},
        {"backup", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {"identity", required_argument, NULL, 'i'},
        {"known-hosts", required_argument, NULL, 'k'},
        {NULL, 0, NULL, 0},
    };
    optind = 2;
    int c;
    const char *var_args[256];
    size_t nvar = 0;
    while (rc == FC_OK && (c = getopt_long(argc, argv, "+r:V:v:nb:hi:k:", lo, NULL)) != -1) {
        switch (c) {
        case 'r':
            o.rules = optarg;
            break;
        case 'V':
            rc = cfg_vars_load_file(&o.vars, optarg);
            break;
        case 'v': /* applied after every --vars, so that --var wins */
            if (nvar < sizeof var_args / sizeof *var_args)
                var_args[nvar++] = optarg;
            else
                rc = FC_ERR(FC_E_INVALID, "--var: more than %zu",
                            sizeof var_args / sizeof *var_args);
            break;
        case 'n':
            o.dry_run = true;
            break;
#ifdef FLUID_CONFIG_SFTP
        case 'i':
            cfg_ssh_opts.identity = optarg;
            break;
        case 'k':
            cfg_ssh_opts.known_hosts = optarg;
            break;
#else
        case 'i':
        case 'k':
            break; /* only used by SFTP targets, which this build refuses */
#endif
        case 'b':
            if (!*optarg || strchr(optarg, '/'))
                rc = FC_ERR(FC_E_INVALID, "--backup: the suffix must be non-empty, without '/'");
            o.backup = optarg;
            break;
        case 'h':
            usage(stdout);
            cfg_vars_free(&o.vars);
            return fc_migrator_finish(&m, FC_OK);
        default:
            rc = FC_ERR(FC_E_INVALID, "unknown option (see --help)");
        }
    }
    for (size_t i = 0; i < nvar && rc == FC_OK; i++)
        rc = cfg_vars_set_arg(&o.vars, var_args[i]);
    if (rc == FC_OK && !o.rules)
        rc = FC_ERR(FC_E_INVALID, "--rules RULES.json is required");
    if (rc == FC_OK && check_only && optind < argc)
        rc = FC_ERR(FC_E_INVALID, "check takes no TARGET");
    if (rc == FC_OK)
        rc = run(&m, &o, argv + optind, argc - optind, check_only);
    cfg_vars_free(&o.vars);
    return fc_migrator_finish(&m, rc);
}
