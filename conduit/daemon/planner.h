/* SPDX-License-Identifier: Apache-2.0 */
/* The conduit's planner: a RelocationRequest without an explicit plan is planned here with
 * fluid_cloud (inspect the source, read the target, build the plan: what `fluidctl plan`
 * runs), on a worker thread so that the AMQP loop keeps serving events and status requests
 * while the clouds answer. The caller records the result (store.c) and acks the request. */
#ifndef FLUID_CONDUIT_PLANNER_H
#define FLUID_CONDUIT_PLANNER_H

#include <stddef.h>

#include "fluid/msg.h"

/* Plans r in place (sets r->plan; the plan's relocation_id is r's, so target names derive
 * from it). `clouds_file`: the clouds.yaml to read (NULL: OS_CLIENT_CONFIG_FILE and the
 * usual places, as the openstack CLI). request options read: "disk_format" (string),
 * "exact_flavor" (bool). On failure *reason gets one line naming the step ("planning: inspect
 * source cloud \"src\": ...") and never a password. Blocking (HTTP to both clouds). */
fc_rc fc_planner_plan(const char *clouds_file, struct fc_request *r, char *reason, size_t cap);

struct fc_planner;

/* A planned (or failed) request, handed back by fc_planner_take. */
struct fc_planner_job {
    struct fc_request *req;   /* owned by the job; req->plan set when rc == FC_OK */
    void *tag;                /* the caller's (the conduit: the AMQP delivery) */
    fc_rc rc;
    char reason[1024];
    struct fc_planner_job *next;
};

/* Starts one worker thread. clouds_file as for fc_planner_plan (copied). */
fc_rc fc_planner_start(const char *clouds_file, struct fc_planner **out);
/* Queues r (the planner owns it from now on, even on error) with the caller's tag. */
fc_rc fc_planner_submit(struct fc_planner *p, struct fc_request *r, void *tag);
/* A finished job (in completion order), or NULL; free it with fc_planner_job_free. */
struct fc_planner_job *fc_planner_take(struct fc_planner *p);
/* Whether a job with this idempotency key is queued or being planned. */
bool fc_planner_busy_with(struct fc_planner *p, const char *idempotency_key);
void fc_planner_job_free(struct fc_planner_job *j);
/* Stops the worker (after the job it is planning) and frees every job left; free_tag is
 * called on their tags. NULL is fine. */
void fc_planner_stop(struct fc_planner *p, void (*free_tag)(void *tag));

#endif
