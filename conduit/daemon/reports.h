/* SPDX-License-Identifier: Apache-2.0 */
/* The conduit's side of overviews, cleanups and its own RPC (rpc.h): which relocations need
 * an overview or an automatic cleanup (queued on the planner's thread), recording what those
 * jobs found, and answering fluid.conduit-request/1. Used from the conduit's loop only. */
#ifndef FLUID_CONDUIT_REPORTS_H
#define FLUID_CONDUIT_REPORTS_H

#include "fluid/amqp.h"
#include "planner.h"
#include "store.h"

struct fc_reports {
    struct fc_store *store;
    struct fc_amqp *a;
    struct fc_planner *planner;
};

/* Queues the overviews and automatic cleanups that are due (store.h fc_store_reports_due)
 * and not queued yet. */
void fc_reports_schedule(struct fc_reports *r);
/* Records a finished OVERVIEW or CLEANUP job (its report, or its error) and answers the
 * fluidctl waiting for it, if any. Frees j. */
void fc_reports_finish(struct fc_reports *r, struct fc_planner_job *j);
/* Handles a fluid.conduit-request/1 delivery (answers, queues a cleanup, or dead-letters an
 * invalid one) and settles it. */
void fc_reports_rpc(struct fc_reports *r, const struct fc_amqp_delivery *d);
/* Frees the tag of a report job (what fc_planner_stop hands back). */
void fc_reports_free_tag(void *tag);

#endif
