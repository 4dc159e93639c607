/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-conduit's service loop: consumes fluid.requests, fluid.conduit.events and
 * fluid.conduit.rpc, applies them to the store, publishes the store's outbox. */
#ifndef FLUID_CONDUIT_H
#define FLUID_CONDUIT_H

#include <signal.h>

#include "fluid/rc.h"

/* Queues of the conduit (docs/fluid-conduit.md). */
#define FC_CONDUIT_Q_RPC "fluid.conduit.rpc"       /* status requests and cancels */
#define FC_CONDUIT_RK_RPC "conduit.rpc"            /* its binding on fluid.control */
#define FC_CONDUIT_Q_EVENTS "fluid.conduit.events" /* TaskEvents, durable */
/* Its bindings on fluid.events: every task state but progress (frequent, not needed to run
 * a plan; fluidctl watch shows progress from its own subscription). */
#define FC_CONDUIT_BK_EVENTS                                                                   \
    {"relocation.*.task.*.started", "relocation.*.task.*.retrying", "relocation.*.task.*.done",  \
     "relocation.*.task.*.failed", "relocation.*.task.*.cancelled"}

struct fc_conduit_opts {
    const char *amqp_url;    /* already picked (flag, env, config, default) */
    const char *state_dir;   /* holds conduit.db */
    unsigned max_parallel;   /* tasks of one relocation in flight */
    unsigned prefetch;       /* unacked requests at most */
    const char *clouds_file; /* clouds.yaml for planning (NULL: OS_CLIENT_CONFIG_FILE and the
                              * openstack CLI's places) */
};

/* Runs until *stop becomes non-zero; returns the exit status (0 after a clean stop). */
int fc_conduit_run(const struct fc_conduit_opts *o, volatile sig_atomic_t *stop);

#endif
