/* SPDX-License-Identifier: Apache-2.0 */
/* The conduit's planner: a RelocationRequest without an explicit plan is planned here with
 * fluid_cloud (inspect the source, read the target, build the plan: what `fluidctl plan`
 * runs), on a worker thread so that the AMQP loop keeps serving events and status requests
 * while the clouds answer. The caller records the result (store.c) and acks the request. */
#ifndef FLUID_CONDUIT_PLANNER_H
#define FLUID_CONDUIT_PLANNER_H

#include <stddef.h>

#include "fluid/cloud/config.h"
#include "fluid/cloud/os.h"
#include "fluid/msg.h"

/* Plans r in place (sets r->plan; the plan's relocation_id is r's, so target names derive
 * from it). `clouds_file`: the clouds.yaml to read (NULL: OS_CLIENT_CONFIG_FILE and the
 * usual places, as the openstack CLI). Request options read: "disk_format" (string),
 * "exact_flavor" (bool), "volume_method" ("image" or "ssh"), "config_ssh" and "mountpoints"
 * (objects, checked by fc_plan_build), "rules" (the config rewrite
 * rules document, a string; carried inline in the config tasks, --rules-json). *report (may be NULL) gets the planner's report. On failure *reason gets one line
 * naming the step ("planning: inspect source cloud \"src\": ...") and never a password.
 * Blocking (HTTP to both clouds). */
fc_rc fc_planner_plan(const char *clouds_file, struct fc_request *r,
                      json_t **report, char *reason, size_t cap);

/* Opens cloud `name` of clouds_file (as fc_planner_plan does); the caller closes both. */
fc_rc fc_planner_open_cloud(const char *clouds_file, const char *name,
                            struct fc_cloud_config **cfg, struct fc_os **os);
/* Replaces every occurrence of the config's password and application-credential secret in
 * s by stars (in place). cfg may be NULL. */
void fc_planner_scrub(char *s, const struct fc_cloud_config *cfg);

struct fc_planner;

enum fc_job_kind {
    FC_JOB_PLAN,     /* plan req */
    FC_JOB_OVERVIEW, /* overview.c, of the recorded request */
    FC_JOB_CLEANUP,  /* cleanup.c, of the recorded request */
};

/* A finished job, handed back by fc_planner_take. */
struct fc_planner_job {
    enum fc_job_kind kind;
    struct fc_request *req;   /* PLAN: owned by the job; req->plan set when rc == FC_OK */
    json_t *request;          /* OVERVIEW, CLEANUP: the request as recorded (owned) */
    char key[FC_KEY_MAX + 32];/* PLAN: the idempotency key; else "<kind>/<relocation id>" */
    void *tag;                /* the caller's (the conduit: the AMQP delivery, or a reply) */
    fc_rc rc;
    char reason[1024];
    json_t *report;           /* PLAN: the planner's report; else the overview / cleanup */
    struct fc_planner_job *next;
};

/* Starts one worker thread. clouds_file as for fc_planner_plan (copied). */
fc_rc fc_planner_start(const char *clouds_file, struct fc_planner **out);
/* Queues r (the planner owns it from now on, even on error) with the caller's tag. */
fc_rc fc_planner_submit(struct fc_planner *p, struct fc_request *r, void *tag);
/* Queues an overview or cleanup of the recorded `request` (taken, even on error). */
fc_rc fc_planner_submit_report(struct fc_planner *p, enum fc_job_kind kind, json_t *request,
                               void *tag);
/* A finished job (in completion order), or NULL; free it with fc_planner_job_free. */
struct fc_planner_job *fc_planner_take(struct fc_planner *p);
/* Whether a job with this key (a PLAN's idempotency key, else "<kind>/<relocation id>" with
 * kind "overview" or "cleanup") is queued, running or finished and not yet taken. */
bool fc_planner_busy_with(struct fc_planner *p, const char *idempotency_key);
void fc_planner_job_free(struct fc_planner_job *j);
/* Stops the worker (after the job it is running) and frees every job left; free_tag is
 * called on their kinds and tags. NULL is fine. */
void fc_planner_stop(struct fc_planner *p, void (*free_tag)(enum fc_job_kind kind, void *tag));

#endif
