/* SPDX-License-Identifier: Apache-2.0 */
/* A tiny configuration file format shared by fluid-conduit and fluidctl:
 *   # comment
 *   key = value
 * Blank lines and comments are skipped; the value runs to the end of the line (trimmed).
 * Unknown keys are errors naming the file and line. */
#ifndef FLUID_CONDUIT_CONFIG_H
#define FLUID_CONDUIT_CONFIG_H

#include <stdbool.h>

#include "fluid/rc.h"

/* set() returns FC_E_INVALID for an unknown key or a bad value (its message is prefixed
 * with "FILE:LINE: "). A missing file is FC_E_NOTFOUND unless !must_exist (then FC_OK). */
fc_rc fc_conf_load(const char *path, bool must_exist,
                   fc_rc (*set)(void *arg, const char *key, const char *value), void *arg);

/* Parses an unsigned decimal in [min, max]; FC_E_INVALID naming what otherwise. */
fc_rc fc_conf_uint(const char *what, const char *value, unsigned min, unsigned max,
                   unsigned *out);

#endif
