/* SPDX-License-Identifier: Apache-2.0 */
/* SSH host keys of a server from its console log (hostkeys.c). */
#ifndef FLUID_OSA_HOSTKEYS_H
#define FLUID_OSA_HOSTKEYS_H
#include <stddef.h>

#include "osa.h"

/* Parses the last complete "-----BEGIN SSH HOST KEY KEYS-----" block of a console log into
 * known_hosts lines for `host` ("HOST TYPE BASE64\n"), keeping only key types OpenSSH knows
 * and well-formed base64; returns how many keys it wrote to out (0: none yet). */
size_t osa_parse_console_keys(const char *console, const char *host, char *out, size_t cap);

/* Waits (up to the action's --timeout) until server_id has printed its host keys on its
 * console and returns them as a known_hosts file for `host` in a memfd (*fd_out). */
fc_rc osa_console_known_hosts(struct osa *a, const char *server_id, const char *host,
                              int *fd_out);
#endif
