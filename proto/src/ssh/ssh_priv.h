/* SPDX-License-Identifier: Apache-2.0 */
/* Private parts of fluid_ssh shared by its files (session, channels, SFTP, error mapping). */
#ifndef FLUID_SSH_PRIV_H
#define FLUID_SSH_PRIV_H

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <stdatomic.h>

#include "fluid/ssh.h"

struct fc_ssh {
    int fd;
    LIBSSH2_SESSION *sess;
    LIBSSH2_SFTP *sftp;
    char peer[300];
    char fingerprint[64];
    _Atomic uint64_t sent, received;
    atomic_bool aborted;
    int io_timeout_ms;
};

struct fc_ssh_chan {
    struct fc_ssh *s;
    LIBSSH2_CHANNEL *ch;
};

struct fc_sftp_file {
    struct fc_ssh *s;
    LIBSSH2_SFTP_HANDLE *h;
    uint64_t pos;
    char path[512]; /* for messages (truncated) */
};

/* The one place where libssh2 and SFTP error codes become fc_rc (ssh_rc.c). lrc is the
 * libssh2 return value; the message is "<what>: <libssh2's text>". */
fc_rc fc_ssh_error(struct fc_ssh *s, int lrc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Maps an SFTP status (LIBSSH2_FX_*) to fc_rc and its name. */
fc_rc fc_sftp_status_rc(unsigned long st, const char **name);

#endif
