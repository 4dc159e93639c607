/* SPDX-License-Identifier: Apache-2.0 */
/* Runs fluid-openstack as the broker does (--events-fd), alone or as export | import, and
 * hands back its exit status, its done result and everything it wrote on stderr. */
#ifndef FLUID_TEST_OS_RUN_H
#define FLUID_TEST_OS_RUN_H

#include <jansson.h>

struct osr {
    int exit;        /* exit status (the fc_rc number) */
    json_t *result;  /* the done event's result, or NULL */
    json_t *error;   /* the failed event's error, or NULL */
    char *events;    /* the events descriptor's text */
    char *err;       /* stderr */
};

/* Runs `fluid-openstack args...` (NULL-ended); in_fd/out_fd (or -1 for /dev/null) are its
 * stdin/stdout. */
void osr_run(struct osr *r, int in_fd, int out_fd, const char *const *args);
/* exp | imp, both run to completion. */
void osr_pipe(struct osr *exp, const char *const *exp_args, struct osr *imp,
              const char *const *imp_args);
void osr_free(struct osr *r);
/* The result's resources[i].action ("created"/"reused") of the first of `kind`. */
const char *osr_action(const struct osr *r, const char *kind);
/* How many resources of result have action `action`. */
size_t osr_count(const struct osr *r, const char *action);

/* How many items of the list at `path` (all pages) have `field` (or keypair.`field`)
 * containing `sub`: counts that other tests on the shared devcloud cannot change. */
struct fc_os;
size_t osr_count_matching(struct fc_os *os, int svc, const char *path, const char *key,
                          const char *field, const char *sub);

/* Runs every task of a plan as the broker does (--task-fd, --events-fd, stages joined by
 * pipes) once its dependencies ran; fails the test on a failed stage; returns how many
 * resources were created. */
size_t osr_run_plan(json_t *plan);

/* Writes a clouds.yaml (mode 600) with the fixture's clouds `names` (NULL-ended), read
 * through the current OS_CLIENT_CONFIG_FILE; extra[i] (may be NULL) is YAML text appended
 * under cloud i (indented by 4 spaces). */
void osr_clouds_yaml(const char *path, const char *const *names, const char *const *extra);

#endif
