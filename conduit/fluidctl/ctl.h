/* SPDX-License-Identifier: Apache-2.0 */
/* AMQP helpers of fluidctl's own subcommands (submit, watch, status, cancel, brokers). */
#ifndef FLUID_CTL_H
#define FLUID_CTL_H

#include <stdint.h>

#include "fluid/amqp.h"
#include "fluid/msg.h"

/* Queue of the conduit's status/cancel RPC (see conduit/daemon/conduit.h). */
#define FC_CTL_Q_RPC "fluid.conduit.rpc"
#define FC_CTL_RK_RPC "conduit.rpc"

/* Opens a connection (no reconnect) and declares the topology and the RPC queue. */
fc_rc fc_ctl_connect(struct fc_amqp **out);
/* A private reply queue (server-named, exclusive); name gets FC_AMQP_NAME_MAX bytes. */
fc_rc fc_ctl_reply_queue(struct fc_amqp *a, char *name);
/* Sends a status request for rid; corr (>= 64 bytes) gets its correlation id. */
fc_rc fc_ctl_status_send(struct fc_amqp *a, const char *rid, const char *reply_to, char *corr);
/* Parses d as the status reply to corr: FC_OK and *out, or FC_E_NOTFOUND if it is not. */
fc_rc fc_ctl_status_match(const struct fc_amqp_delivery *d, const char *corr,
                          struct fc_status **out);
/* Monotonic milliseconds. */
uint64_t fc_ctl_now_ms(void);
/* Exit status for a final relocation state. */
int fc_ctl_exit_for_state(enum fc_reloc_state s);

#endif
