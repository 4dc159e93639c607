/* SPDX-License-Identifier: Apache-2.0 */
/* fluidctl's side of the conduit's own RPC (conduit/daemon/rpc.h): relocation info and
 * cleanup, and the printing of overviews and cleanup records shared by relocate, overview
 * and cleanup. */
#ifndef FLUID_CTL_CRPC_H
#define FLUID_CTL_CRPC_H

#include <jansson.h>
#include <stdio.h>

#include "fluid/amqp.h"

/* Sends a fluid.conduit-request/1 (action "info" or "cleanup") for rid with reply_to; corr
 * (>= 64 bytes) gets its correlation id. */
fc_rc fc_ctl_creq_send(struct fc_amqp *a, const char *rid, const char *action,
                       const char *reply_to, char *corr);
/* Parses d as the fluid.conduit-reply/1 to corr: FC_OK and *out (new reference), or
 * FC_E_NOTFOUND when it is something else. */
fc_rc fc_ctl_creq_match(const struct fc_amqp_delivery *d, const char *corr, json_t **out);
/* One request and its reply, on a connection of its own (timeout in seconds). */
fc_rc fc_ctl_conduit_call(const char *rid, const char *action, double timeout, json_t **out);

/* Readable tables: the overview (servers, differences, usage) and a cleanup record. */
void fc_ctl_print_overview(FILE *f, const json_t *overview);
void fc_ctl_print_cleanup(FILE *f, const json_t *cleanup);

#endif
