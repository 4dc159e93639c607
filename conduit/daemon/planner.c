/* SPDX-License-Identifier: Apache-2.0 */
/* The conduit's planner (planner.h): fluid_cloud's inspection and planning, run for a
 * request that came without a plan, on one worker thread fed by a queue; the same thread
 * runs the overviews (overview.c) and cleanups (cleanup.c), which also talk to the clouds. */
#include "planner.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "overview.h"

#include "fluid/cloud/config.h"
#include "fluid/cloud/os.h"
#include "fluid/cloud/plan.h"
#include "fluid/cloud/topology.h"
#include "fluid/error.h"
#include "fluid/log.h"

extern char **environ;

/* The environment with OS_CLIENT_CONFIG_FILE set to file (the rest shared with environ). */
static char **
env_with(const char *file, char **setting)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    size_t len = strlen("OS_CLIENT_CONFIG_FILE=") + strlen(file) + 1;
    *setting = malloc(len);
    if (!env || !*setting) {
        free(env);
        free(*setting);
        *setting = NULL;
        return NULL;
    }
    snprintf(*setting, len, "OS_CLIENT_CONFIG_FILE=%s", file);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "OS_CLIENT_CONFIG_FILE=", 22) != 0)
            env[k++] = environ[i];
    env[k++] = *setting;
    env[k] = NULL;
    return env;
}

/* Replaces every occurrence of secret in s by "***" (in place: "***" is never longer than
 * a secret of 3 bytes or more; shorter secrets are replaced by as many '*'). */
static void
scrub(char *s, const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    if (!n)
        return;
    char *p;
    while ((p = strstr(s, secret))) {
        size_t stars = n < 3 ? n : 3;
        memset(p, '*', stars);
        memmove(p + stars, p + n, strlen(p + n) + 1);
    }
}

static fc_rc
open_cloud(const char *name, char **env, struct fc_cloud_config **cfg, struct fc_os **os)
{
    fc_rc rc = fc_cloud_config_load(name, env, NULL, NULL, NULL, cfg);
    if (rc == FC_OK)
        rc = fc_os_open(*cfg, os);
    return rc;
}

fc_rc
fc_planner_open_cloud(const char *clouds_file, const char *name, struct fc_cloud_config **cfg,
                      struct fc_os **os)
{
    *cfg = NULL;
    *os = NULL;
    char *setting = NULL, **env = NULL;
    if (clouds_file && !(env = env_with(clouds_file, &setting)))
        return FC_ERR(FC_E_NOMEM, "out of memory");
    fc_rc rc = open_cloud(name, env, cfg, os);
    free(env);
    free(setting);
    return rc;
}

void
fc_planner_scrub(char *s, const struct fc_cloud_config *cfg)
{
    if (!cfg)
        return;
    scrub(s, cfg->password);
    scrub(s, cfg->app_cred_secret);
}

fc_rc
fc_planner_plan(const char *clouds_file, struct fc_request *r,
                json_t **report, char *reason, size_t cap)
{
    reason[0] = '\0';
    if (report)
        *report = NULL;
    char *setting = NULL, **env = NULL;
    if (clouds_file && !(env = env_with(clouds_file, &setting))) {
        snprintf(reason, cap, "planning: out of memory");
        return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    struct fc_cloud_config *scfg = NULL, *dcfg = NULL;
    struct fc_os *src = NULL, *dst = NULL;
    json_t *topo = NULL, *target = NULL, *plan = NULL, *rep = NULL;
    struct fc_selector sel = {.servers = (const char *const *)r->servers,
                              .nservers = r->nservers, .tag = r->tag};
    struct fc_plan_opts o = {.src_cloud = r->source_cloud, .dst_cloud = r->target_cloud,
                             .relocation_id = r->relocation_id};
    const json_t *df = json_object_get(r->options, "disk_format");
    o.disk_format = json_string_value(df);
    o.exact_flavor = json_is_true(json_object_get(r->options, "exact_flavor"));
    const json_t *vm = json_object_get(r->options, "volume_method");
    const json_t *rules = json_object_get(r->options, "rules");
    char step[256];
    fc_rc rc = FC_OK;
    if (vm && (!json_is_string(vm) || (strcmp(json_string_value(vm), "image") != 0 &&
                                       strcmp(json_string_value(vm), "ssh") != 0))) {
        snprintf(step, sizeof step, "request");
        rc = FC_ERR(FC_E_INVALID, "options.volume_method: \"image\" or \"ssh\" expected");
    } else if (json_object_get(r->options, "keep_intermediate") &&
               !json_is_boolean(json_object_get(r->options, "keep_intermediate"))) {
        snprintf(step, sizeof step, "request");
        rc = FC_ERR(FC_E_INVALID, "options.keep_intermediate: true or false expected");
    } else if (rules && !json_is_string(rules)) {
        snprintf(step, sizeof step, "request");
        rc = FC_ERR(FC_E_INVALID, "options.rules: the rules document (a string) expected");
    } else if (vm) {
#ifdef FLUID_PLAN_HAS_VOLUME_METHOD
        o.volume_method = json_string_value(vm);
#else
        if (strcmp(json_string_value(vm), "ssh") == 0) {
            snprintf(step, sizeof step, "build the plan");
            rc = FC_ERR(FC_E_UNSUPPORTED, "options.volume_method \"ssh\": this planner "
                        "(fluid_cloud) only plans the image method");
        }
#endif
    }
#ifdef FLUID_PLAN_HAS_CONFIG_SSH
    /* how the config step reaches the servers, and mount points for the rules: checked by
     * fc_plan_build */
    o.config_ssh = json_object_get(r->options, "config_ssh");
    o.mountpoints = json_object_get(r->options, "mountpoints");
#endif
    /* the rules travel in the config task itself: any broker host can run it */
    o.rules_doc = json_string_value(rules);
    if (rc != FC_OK) {
        /* reported below */
    } else if (!r->source_cloud || !r->target_cloud) {
        snprintf(step, sizeof step, "request");
        rc = FC_ERR(FC_E_INVALID, "source.cloud and target.cloud are needed to plan");
    } else if ((df && !o.disk_format) || (!r->nservers && !r->tag)) {
        snprintf(step, sizeof step, "request");
        rc = FC_ERR(FC_E_INVALID, df && !o.disk_format ? "options.disk_format: not a string"
                                                       : "selector: names no servers and no tag");
    }
    if (rc == FC_OK) {
        snprintf(step, sizeof step, "open source cloud \"%s\"", r->source_cloud);
        rc = open_cloud(r->source_cloud, env, &scfg, &src);
    }
    if (rc == FC_OK) {
        snprintf(step, sizeof step, "inspect source cloud \"%s\"", r->source_cloud);
        rc = fc_topology_inspect(src, &sel, &topo, NULL);
    }
    if (rc == FC_OK) {
        snprintf(step, sizeof step, "open target cloud \"%s\"", r->target_cloud);
        rc = open_cloud(r->target_cloud, env, &dcfg, &dst);
    }
    if (rc == FC_OK) {
        snprintf(step, sizeof step, "read target cloud \"%s\"", r->target_cloud);
        rc = fc_plan_read_target(dst, &target);
    }
    if (rc == FC_OK) {
        snprintf(step, sizeof step, "build the plan");
        rc = fc_plan_build(topo, target, &o, &plan, &rep);
    }
    if (rc == FC_OK) {
        snprintf(step, sizeof step, "check the plan");
        rc = fc_plan_from_json(plan, &r->plan);
    }
    if (rc != FC_OK) {
        snprintf(reason, cap, "planning: %s: %s: %s", step, fc_rc_name(rc), fc_error_msg());
        /* fluid_cloud never puts a secret in a message; this makes sure of it */
        fc_planner_scrub(reason, scfg);
        fc_planner_scrub(reason, dcfg);
    } else {
        fc_log(FC_INFO, FC_MSG("relocation planned"), FC_STR("relocation", r->relocation_id),
               FC_STR("source", r->source_cloud), FC_STR("target", r->target_cloud),
               FC_U64("tasks", r->plan->ntasks),
               FC_U64("unmappable", json_array_size(json_object_get(rep, "unmappable"))));
    }
    fc_os_close(src);
    fc_os_close(dst);
    fc_cloud_config_free(scfg);
    fc_cloud_config_free(dcfg);
    json_decref(topo);
    json_decref(target);
    json_decref(plan);
    if (report && rc == FC_OK)
        *report = rep;
    else
        json_decref(rep);
    free(env);
    free(setting);
    return rc;
}

/* ---- the worker ---- */

struct fc_planner {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *clouds_file;
    struct fc_planner_job *queue, *current, *done; /* queue and done: FIFO lists */
    bool stop;
};

static void
append(struct fc_planner_job **list, struct fc_planner_job *j)
{
    j->next = NULL;
    while (*list)
        list = &(*list)->next;
    *list = j;
}

static void *
worker(void *arg)
{
    struct fc_planner *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && !p->queue)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop)
            break;
        struct fc_planner_job *j = p->queue;
        p->queue = j->next;
        p->current = j;
        pthread_mutex_unlock(&p->mu);
        switch (j->kind) {
        case FC_JOB_PLAN:
            j->rc = fc_planner_plan(p->clouds_file, j->req, &j->report, j->reason,
                                    sizeof j->reason);
            break;
        case FC_JOB_OVERVIEW:
            j->rc = fc_overview_build(p->clouds_file, j->request, &j->report, j->reason,
                                      sizeof j->reason);
            break;
        case FC_JOB_CLEANUP:
            j->rc = fc_cleanup_target(p->clouds_file, j->request, &j->report, j->reason,
                                      sizeof j->reason);
            break;
        }
        pthread_mutex_lock(&p->mu);
        p->current = NULL;
        append(&p->done, j);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

fc_rc
fc_planner_start(const char *clouds_file, struct fc_planner **out)
{
    struct fc_planner *p = calloc(1, sizeof *p);
    if (!p || (clouds_file && !(p->clouds_file = strdup(clouds_file)))) {
        free(p);
        return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    int e = pthread_create(&p->thread, NULL, worker, p);
    if (e != 0) {
        free(p->clouds_file);
        free(p);
        return FC_ERR(FC_E_IO, "cannot start the planner thread: %s", strerror(e));
    }
    *out = p;
    return FC_OK;
}

fc_rc
fc_planner_submit(struct fc_planner *p, struct fc_request *r, void *tag)
{
    struct fc_planner_job *j = calloc(1, sizeof *j);
    if (!j) {
        fc_request_free(r);
        return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    j->kind = FC_JOB_PLAN;
    j->req = r;
    j->tag = tag;
    snprintf(j->key, sizeof j->key, "%s", r->idempotency_key);
    pthread_mutex_lock(&p->mu);
    append(&p->queue, j);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return FC_OK;
}

fc_rc
fc_planner_submit_report(struct fc_planner *p, enum fc_job_kind kind, json_t *request,
                         void *tag)
{
    struct fc_planner_job *j = calloc(1, sizeof *j);
    if (!j) {
        json_decref(request);
        return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    j->kind = kind;
    j->request = request;
    j->tag = tag;
    const char *rid = json_string_value(json_object_get(request, "relocation_id"));
    snprintf(j->key, sizeof j->key, "%s/%s", kind == FC_JOB_OVERVIEW ? "overview" : "cleanup",
             rid ? rid : "");
    pthread_mutex_lock(&p->mu);
    append(&p->queue, j);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return FC_OK;
}

struct fc_planner_job *
fc_planner_take(struct fc_planner *p)
{
    pthread_mutex_lock(&p->mu);
    struct fc_planner_job *j = p->done;
    if (j) {
        p->done = j->next;
        j->next = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    return j;
}

bool
fc_planner_busy_with(struct fc_planner *p, const char *key)
{
    bool busy = false;
    pthread_mutex_lock(&p->mu);
    if (p->current && strcmp(p->current->key, key) == 0)
        busy = true;
    for (struct fc_planner_job *j = p->queue; j && !busy; j = j->next)
        busy = strcmp(j->key, key) == 0;
    for (struct fc_planner_job *j = p->done; j && !busy; j = j->next)
        busy = strcmp(j->key, key) == 0;
    pthread_mutex_unlock(&p->mu);
    return busy;
}

void
fc_planner_job_free(struct fc_planner_job *j)
{
    if (!j)
        return;
    fc_request_free(j->req);
    json_decref(j->request);
    json_decref(j->report);
    free(j);
}

static void
free_list(struct fc_planner_job *j, void (*free_tag)(enum fc_job_kind, void *))
{
    while (j) {
        struct fc_planner_job *next = j->next;
        if (free_tag)
            free_tag(j->kind, j->tag);
        fc_planner_job_free(j);
        j = next;
    }
}

void
fc_planner_stop(struct fc_planner *p, void (*free_tag)(enum fc_job_kind kind, void *tag))
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    free_list(p->queue, free_tag);
    free_list(p->done, free_tag);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->clouds_file);
    free(p);
}
