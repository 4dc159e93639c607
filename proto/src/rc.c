/* SPDX-License-Identifier: Apache-2.0 */
/* Names of fc_rc values and which ones are worth a retry. */
#include "fluid/rc.h"

#include <string.h>

static const char *const names[FC_RC__COUNT] = {
    [FC_OK] = "FC_OK",
    [FC_E_INVALID] = "FC_E_INVALID",
    [FC_E_UNSUPPORTED] = "FC_E_UNSUPPORTED",
    [FC_E_IO] = "FC_E_IO",
    [FC_E_NET] = "FC_E_NET",
    [FC_E_TIMEOUT] = "FC_E_TIMEOUT",
    [FC_E_AUTH] = "FC_E_AUTH",
    [FC_E_VERIFY] = "FC_E_VERIFY",
    [FC_E_REMOTE] = "FC_E_REMOTE",
    [FC_E_CONFLICT] = "FC_E_CONFLICT",
    [FC_E_CHECKSUM] = "FC_E_CHECKSUM",
    [FC_E_CHILD] = "FC_E_CHILD",
    [FC_E_NOMEM] = "FC_E_NOMEM",
    [FC_E_NOTFOUND] = "FC_E_NOTFOUND",
    [FC_E_CANCELLED] = "FC_E_CANCELLED",
    [FC_E_INTERNAL] = "FC_E_INTERNAL",
    [FC_E_NOSPACE] = "FC_E_NOSPACE",
};

const char *
fc_rc_name(fc_rc rc)
{
    if ((unsigned)rc >= FC_RC__COUNT || !names[rc])
        return "FC_E_UNKNOWN";
    return names[rc];
}

bool
fc_rc_from_name(const char *name, fc_rc *out)
{
    for (unsigned i = 0; i < FC_RC__COUNT; i++) {
        if (names[i] && name && strcmp(names[i], name) == 0) {
            *out = (fc_rc)i;
            return true;
        }
    }
    return false;
}

bool
fc_rc_transient(fc_rc rc)
{
    switch (rc) {
    case FC_E_NET:
    case FC_E_TIMEOUT:
    case FC_E_REMOTE:
    case FC_E_IO:
    case FC_E_CHILD:
    case FC_E_CHECKSUM:
    case FC_E_NOMEM:
        return true;
    default:
        return false;
    }
}
