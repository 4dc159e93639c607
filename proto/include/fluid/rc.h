/* SPDX-License-Identifier: Apache-2.0 */
/* fc_rc: the one result code of FluidCloud. It is also TaskEvent.error.code (by name) and a
 * migrator's exit status (by number). Grow only at the end; never renumber or reuse. */
#ifndef FLUID_RC_H
#define FLUID_RC_H

#include <stdbool.h>

typedef enum fc_rc {
    FC_OK = 0,
    FC_E_INVALID = 1,     /* bad input: message, config, rule, image header, HTTP body, argv */
    FC_E_UNSUPPORTED = 2, /* valid but not handled: format, schema version */
    FC_E_IO = 3,          /* local file or device */
    FC_E_NET = 4,         /* transient network failure: the broker may retry */
    FC_E_TIMEOUT = 5,     /* transient: the broker may retry */
    FC_E_AUTH = 6,        /* credentials refused */
    FC_E_VERIFY = 7,      /* TLS certificate or SSH host key did not verify: never retried */
    FC_E_REMOTE = 8,      /* the peer answered an error (HTTP 4xx/5xx, AMQP channel error) */
    FC_E_CONFLICT = 9,    /* already exists; an idempotent caller may count it as done */
    FC_E_CHECKSUM = 10,   /* data arrived but does not match */
    FC_E_CHILD = 11,      /* a spawned process failed; the message says how */
    FC_E_NOMEM = 12,
    FC_E_NOTFOUND = 13,
    FC_E_CANCELLED = 14,
    FC_E_INTERNAL = 15,
    FC_E_NOSPACE = 16,    /* destination full */
    FC_RC__COUNT          /* add just above; never renumber or reuse */
} fc_rc;

/* "FC_E_IO" style name; "FC_E_UNKNOWN" for a value outside the enum. */
const char *fc_rc_name(fc_rc rc);
/* Parses a name from fc_rc_name(); returns false if unknown. */
bool fc_rc_from_name(const char *name, fc_rc *out);
/* True when retrying may help (network, timeout, remote 5xx-like failures). */
bool fc_rc_transient(fc_rc rc);

#endif
