/* SPDX-License-Identifier: Apache-2.0 */
/* Exec channels: run a validated command on the server and talk to its stdin/stdout. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/error.h"
#include "ssh_priv.h"

#define CHAN_WINDOW (16u << 20)

fc_rc
fc_ssh_exec(struct fc_ssh *s, const char *cmd, struct fc_ssh_chan **out)
{
    *out = NULL;
    LIBSSH2_CHANNEL *ch = libssh2_channel_open_ex(s->sess, "session", 7, CHAN_WINDOW,
                                                  LIBSSH2_CHANNEL_PACKET_DEFAULT, NULL, 0);
    if (!ch)
        return fc_ssh_error(s, 0, "opening a session channel");
    int r = libssh2_channel_process_startup(ch, "exec", 4, cmd, (unsigned)strlen(cmd));
    if (r != 0) {
        fc_rc rc = fc_ssh_error(s, r, "starting a remote command");
        libssh2_channel_free(ch);
        return rc;
    }
    struct fc_ssh_chan *c = calloc(1, sizeof *c);
    if (!c) {
        libssh2_channel_free(ch);
        return FC_ERR(FC_E_NOMEM, "ssh: out of memory");
    }
    c->s = s;
    c->ch = ch;
    *out = c;
    return FC_OK;
}

/* Waits until the socket is ready in the direction libssh2 needs. */
static fc_rc
wait_socket(struct fc_ssh *s)
{
    int dir = libssh2_session_block_directions(s->sess);
    struct pollfd p = {.fd = s->fd};
    if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
        p.events |= POLLIN;
    if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
        p.events |= POLLOUT;
    if (!p.events)
        p.events = POLLIN;
    int r;
    do
        r = poll(&p, 1, s->io_timeout_ms > 0 ? s->io_timeout_ms : 120000);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return FC_ERR(FC_E_TIMEOUT, "ssh %s: no progress writing to the remote command for "
                                    "%d s", s->peer, s->io_timeout_ms / 1000);
    return FC_OK;
}

fc_rc
fc_ssh_chan_write(struct fc_ssh_chan *c, const void *buf, size_t len)
{
    const char *p = buf;
    fc_rc rc = FC_OK;
    /* Non-blocking, so that a command that stopped reading (it exited, maybe after writing
     * why on its stdout) is noticed instead of waiting for window space forever. */
    libssh2_session_set_blocking(c->s->sess, 0);
    while (len) {
        ssize_t n = libssh2_channel_write(c->ch, p, len);
        if (n == LIBSSH2_ERROR_EAGAIN) {
            if (libssh2_channel_eof(c->ch)) {
                rc = FC_ERR(FC_E_REMOTE, "ssh %s: the remote command ended and no longer "
                                         "reads its input", c->s->peer);
                break;
            }
            if ((rc = wait_socket(c->s)) != FC_OK)
                break;
            continue;
        }
        if (n < 0) {
            rc = fc_ssh_error(c->s, (int)n, "writing to the remote command");
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    libssh2_session_set_blocking(c->s->sess, 1);
    return rc;
}

fc_rc
fc_ssh_chan_read(struct fc_ssh_chan *c, void *buf, size_t len, size_t *got)
{
    *got = 0;
    for (;;) {
        ssize_t n = libssh2_channel_read(c->ch, buf, len);
        if (n < 0)
            return fc_ssh_error(c->s, (int)n, "reading from the remote command");
        if (n > 0 || libssh2_channel_eof(c->ch)) {
            *got = (size_t)n;
            return FC_OK;
        }
    }
}

fc_rc
fc_ssh_chan_read_full(struct fc_ssh_chan *c, void *buf, size_t len, const char *what)
{
    char *p = buf;
    while (len) {
        size_t got;
        fc_rc rc = fc_ssh_chan_read(c, p, len, &got);
        if (rc != FC_OK)
            return rc;
        if (got == 0)
            return FC_ERR(FC_E_NET, "ssh %s: the remote command ended while reading %s",
                          c->s->peer, what);
        p += got;
        len -= got;
    }
    return FC_OK;
}

size_t
fc_ssh_chan_stderr(struct fc_ssh_chan *c, char *buf, size_t cap)
{
    size_t have = 0;
    if (cap == 0)
        return 0;
    libssh2_session_set_blocking(c->s->sess, 0);
    while (have + 1 < cap) {
        ssize_t n = libssh2_channel_read_stderr(c->ch, buf + have, cap - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    libssh2_session_set_blocking(c->s->sess, 1);
    buf[have] = 0;
    return have;
}

fc_rc
fc_ssh_chan_send_eof(struct fc_ssh_chan *c)
{
    int r = libssh2_channel_send_eof(c->ch);
    if (r != 0)
        return fc_ssh_error(c->s, r, "closing the remote command's input");
    return FC_OK;
}

bool
fc_ssh_chan_eof(struct fc_ssh_chan *c)
{
    return libssh2_channel_eof(c->ch) == 1;
}

void
fc_ssh_chan_close(struct fc_ssh_chan *c, int *exit_status)
{
    if (exit_status)
        *exit_status = -1;
    if (!c)
        return;
    if (!atomic_load(&c->s->aborted)) {
        /* The exit status comes after the command ends: wait for its EOF before closing,
         * or the server may drop the status when our close arrives first. */
        if (exit_status && libssh2_channel_send_eof(c->ch) == 0)
            libssh2_channel_wait_eof(c->ch);
        if (libssh2_channel_close(c->ch) == 0 && libssh2_channel_wait_closed(c->ch) == 0 &&
            exit_status) {
            char *sig = NULL;
            libssh2_channel_get_exit_signal(c->ch, &sig, NULL, NULL, NULL, NULL, NULL);
            if (sig)
                libssh2_free(c->s->sess, sig);
            else
                *exit_status = libssh2_channel_get_exit_status(c->ch);
        }
    }
    libssh2_channel_free(c->ch);
    free(c);
}
