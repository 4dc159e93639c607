/* SPDX-License-Identifier: Apache-2.0 */
/* The one place where libssh2 return codes and SFTP status codes become fc_rc. */
#include <stdarg.h>
#include <stdio.h>

#include "fluid/error.h"
#include "ssh_priv.h"

fc_rc
fc_sftp_status_rc(unsigned long st, const char **name)
{
    switch (st) {
    case LIBSSH2_FX_EOF: *name = "end of file"; return FC_E_IO;
    case LIBSSH2_FX_NO_SUCH_FILE: *name = "no such file"; return FC_E_NOTFOUND;
    case LIBSSH2_FX_NO_SUCH_PATH: *name = "no such path"; return FC_E_NOTFOUND;
    case LIBSSH2_FX_PERMISSION_DENIED: *name = "permission denied"; return FC_E_IO;
    case LIBSSH2_FX_FAILURE: *name = "failure"; return FC_E_REMOTE;
    case LIBSSH2_FX_BAD_MESSAGE: *name = "bad message"; return FC_E_REMOTE;
    case LIBSSH2_FX_NO_CONNECTION: *name = "no connection"; return FC_E_NET;
    case LIBSSH2_FX_CONNECTION_LOST: *name = "connection lost"; return FC_E_NET;
    case LIBSSH2_FX_OP_UNSUPPORTED: *name = "operation unsupported"; return FC_E_UNSUPPORTED;
    case LIBSSH2_FX_FILE_ALREADY_EXISTS: *name = "file already exists"; return FC_E_CONFLICT;
    case LIBSSH2_FX_WRITE_PROTECT: *name = "write protected"; return FC_E_IO;
    case LIBSSH2_FX_NO_MEDIA: *name = "no media"; return FC_E_IO;
    case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM: *name = "no space on file system"; return FC_E_NOSPACE;
    case LIBSSH2_FX_QUOTA_EXCEEDED: *name = "quota exceeded"; return FC_E_NOSPACE;
    case LIBSSH2_FX_NOT_A_DIRECTORY: *name = "not a directory"; return FC_E_NOTFOUND;
    case LIBSSH2_FX_INVALID_FILENAME: *name = "invalid file name"; return FC_E_INVALID;
    case LIBSSH2_FX_LINK_LOOP: *name = "link loop"; return FC_E_IO;
    case LIBSSH2_FX_DIR_NOT_EMPTY: *name = "directory not empty"; return FC_E_CONFLICT;
    default: *name = "unknown status"; return FC_E_REMOTE;
    }
}

static fc_rc
lib_rc(int lrc)
{
    switch (lrc) {
    case LIBSSH2_ERROR_TIMEOUT:
    case LIBSSH2_ERROR_SOCKET_TIMEOUT:
        return FC_E_TIMEOUT;
    case LIBSSH2_ERROR_ALLOC:
        return FC_E_NOMEM;
    case LIBSSH2_ERROR_AUTHENTICATION_FAILED:
    case LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
    case LIBSSH2_ERROR_KEYFILE_AUTH_FAILED:
    case LIBSSH2_ERROR_FILE:
    case LIBSSH2_ERROR_AGENT_PROTOCOL:
        return FC_E_AUTH;
    case LIBSSH2_ERROR_HOSTKEY_INIT:
    case LIBSSH2_ERROR_HOSTKEY_SIGN:
        return FC_E_VERIFY;
    case LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED:
    case LIBSSH2_ERROR_CHANNEL_FAILURE:
    case LIBSSH2_ERROR_METHOD_NOT_SUPPORTED:
        return FC_E_REMOTE;
    default:
        return FC_E_NET; /* socket, banner, kex, MAC, decrypt, channel closed or EOF */
    }
}

fc_rc
fc_ssh_error(struct fc_ssh *s, int lrc, const char *fmt, ...)
{
    char what[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);

    char *lmsg = NULL;
    int lerr = lrc;
    if (s && s->sess)
        lerr = libssh2_session_last_error(s->sess, &lmsg, NULL, 0);
    if (lerr == 0)
        lerr = lrc;
    if (s && atomic_load(&s->aborted))
        return FC_ERR(FC_E_CANCELLED, "ssh %s: %s: connection shut down", s->peer, what);
    if (lerr == LIBSSH2_ERROR_SFTP_PROTOCOL && s && s->sftp) {
        const char *name;
        unsigned long st = libssh2_sftp_last_error(s->sftp);
        fc_rc rc = fc_sftp_status_rc(st, &name);
        return FC_ERR(rc, "sftp %s: %s: %s (status %lu)", s->peer, what, name, st);
    }
    return FC_ERR(lib_rc(lerr), "ssh %s: %s: %s (libssh2 %d)", s ? s->peer : "?", what,
                  lmsg && *lmsg ? lmsg : "error", lerr);
}
