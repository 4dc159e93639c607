/* SPDX-License-Identifier: Apache-2.0 */
/* fluid_ssh: SSH sessions (libssh2) with strict host-key verification, public-key auth
 * (key file or ssh-agent), exec channels and SFTP helpers. Shared by fluid-volume and
 * fluid-config; docs/ssh.md is the guide. Every libssh2 error becomes an fc_rc here:
 *   FC_E_VERIFY  host key unknown or changed (message has its SHA256:... fingerprint)
 *   FC_E_AUTH    key refused, no usable key or agent
 *   FC_E_NET     connect refused, connection lost; FC_E_TIMEOUT  no answer in time
 *   FC_E_NOTFOUND / FC_E_IO / FC_E_NOSPACE / FC_E_REMOTE  SFTP status codes
 * A session is not thread-safe: use one per thread. No password is ever read or logged. */
#ifndef FLUID_SSH_H
#define FLUID_SSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fluid/rc.h"

struct fc_ssh_opts {
    const char *host;         /* name or address (required) */
    unsigned port;            /* 0 = 22 */
    const char *user;         /* NULL = the current user's login name */
    const char *identity;     /* private key file; NULL = keys of ssh-agent ($SSH_AUTH_SOCK) */
    const char *known_hosts;  /* NULL = $HOME/.ssh/known_hosts; must exist and list the host */
    unsigned connect_timeout_s; /* TCP connect + handshake; 0 = 20 */
    unsigned io_timeout_s;    /* any blocking call that waits longer fails; 0 = 120 */
};

/* An ssh:// URL: ssh://[user@]host[:port]/path (host may be [v6-address]). */
struct fc_ssh_url {
    char user[64];            /* "" when absent */
    char host[256];
    unsigned port;            /* 0 when absent */
    char path[4096];          /* absolute, percent-decoding is not applied */
};
/* FC_E_INVALID naming what is wrong. Does not accept a password in the URL. */
fc_rc fc_ssh_url_parse(const char *url, struct fc_ssh_url *out);
/* True when s starts with "ssh://". */
bool fc_ssh_is_url(const char *s);

struct fc_ssh;

/* Connects, checks the host key against opts->known_hosts (unknown or changed: FC_E_VERIFY
 * with the key's "SHA256:<base64>" fingerprint, never accepted silently), authenticates.
 * The session is blocking with opts->io_timeout_s. */
fc_rc fc_ssh_connect(const struct fc_ssh_opts *opts, struct fc_ssh **out);
/* Disconnects and frees; accepts NULL. */
void fc_ssh_free(struct fc_ssh *s);
/* "host:port" for messages. */
const char *fc_ssh_peer(const struct fc_ssh *s);
/* The server's host key fingerprint as OpenSSH prints it: "SHA256:<base64 without '='>". */
const char *fc_ssh_fingerprint(const struct fc_ssh *s);
/* Bytes written to / read from the TCP socket so far (encrypted, framing included). */
void fc_ssh_socket_bytes(const struct fc_ssh *s, uint64_t *sent, uint64_t *received);
/* Shuts the TCP connection down at once (from another thread too): every call on the
 * session then fails with FC_E_NET. Used for cancel. */
void fc_ssh_abort(struct fc_ssh *s);

/* Makes AES-CTR, the cipher these sessions prefer, compute its keystream in bulk (an
 * OpenSSL provider preferred for AES-CTR in the default library context; see ctr.c): the
 * same bytes on the wire for much less CPU, since libssh2 1.10 encrypts one 16-byte block
 * per call. Process-wide; call before connecting. FC_E_INTERNAL when OpenSSL refuses, and
 * sessions then use OpenSSL's own AES-CTR. */
fc_rc fc_ssh_bulk_ctr(void);
/* Keystream bytes it has made so far (to show that it is in use). */
uint64_t fc_ssh_bulk_ctr_bytes(void);

/* ---- exec channels ---- */
struct fc_ssh_chan;
/* Runs cmd on the server (through the user's login shell: pass only validated words; see
 * fc_ssh_safe_word). The channel's stdin/stdout are the data path. */
fc_rc fc_ssh_exec(struct fc_ssh *s, const char *cmd, struct fc_ssh_chan **out);
/* Writes all of buf. FC_E_REMOTE when the command has ended (closed its stdout) while the
 * window is full, so a caller can read why instead of waiting. */
fc_rc fc_ssh_chan_write(struct fc_ssh_chan *c, const void *buf, size_t len);
/* Reads up to len bytes of stdout; *got = 0 at EOF. */
fc_rc fc_ssh_chan_read(struct fc_ssh_chan *c, void *buf, size_t len, size_t *got);
/* Reads exactly len bytes; EOF before that is FC_E_NET naming what. */
fc_rc fc_ssh_chan_read_full(struct fc_ssh_chan *c, void *buf, size_t len, const char *what);
/* Reads what is available of the remote stderr without waiting (NUL-terminated). */
size_t fc_ssh_chan_stderr(struct fc_ssh_chan *c, char *buf, size_t cap);
fc_rc fc_ssh_chan_send_eof(struct fc_ssh_chan *c);
/* True once the remote command closed its stdout (seen by the last read or write). */
bool fc_ssh_chan_eof(struct fc_ssh_chan *c);
/* Closes; with exit_status, first sends EOF and waits for the command to end, then gets its
 * exit status (-1 when the server sent none). Accepts NULL. */
void fc_ssh_chan_close(struct fc_ssh_chan *c, int *exit_status);
/* True when w is a non-empty word with only [A-Za-z0-9/._+-] and no leading '-', so that a
 * POSIX shell passes it unchanged. */
bool fc_ssh_safe_word(const char *w);

/* ---- SFTP (the subsystem starts on first use) ---- */
struct fc_sftp_file;
struct fc_sftp_stat {
    uint64_t size;
    unsigned mode; /* st_mode bits (S_IFREG, S_IFDIR, S_IFBLK, permissions) */
};
enum {
    FC_SFTP_READ = 1,
    FC_SFTP_WRITE = 2,
    FC_SFTP_CREATE = 4,
    FC_SFTP_TRUNC = 8,
    FC_SFTP_EXCL = 16,
};
/* Opens path with FC_SFTP_* flags (mode for a new file, e.g. 0600). Missing: FC_E_NOTFOUND. */
fc_rc fc_sftp_open(struct fc_ssh *s, const char *path, unsigned flags, unsigned mode,
                   struct fc_sftp_file **out);
/* Reads up to len bytes at the current position, looping until len or EOF (*got < len). */
fc_rc fc_sftp_read(struct fc_sftp_file *f, void *buf, size_t len, size_t *got);
/* Writes all of buf at the current position (large buffers are pipelined). */
fc_rc fc_sftp_write(struct fc_sftp_file *f, const void *buf, size_t len);
void fc_sftp_seek(struct fc_sftp_file *f, uint64_t off);
fc_rc fc_sftp_fstat(struct fc_sftp_file *f, struct fc_sftp_stat *st);
/* Sets the file size (truncates or extends with a hole). */
fc_rc fc_sftp_set_size(struct fc_sftp_file *f, uint64_t size);
/* fsync@openssh.com; FC_E_UNSUPPORTED when the server lacks it. */
fc_rc fc_sftp_fsync(struct fc_sftp_file *f);
/* Closes; the server's close status is returned (a full disk may show only here). */
fc_rc fc_sftp_close(struct fc_sftp_file *f);
/* Frees without caring about the result; accepts NULL. */
void fc_sftp_discard(struct fc_sftp_file *f);

fc_rc fc_sftp_stat(struct fc_ssh *s, const char *path, struct fc_sftp_stat *st);
/* Bytes available to the user on the file system holding path (statvfs@openssh.com). */
fc_rc fc_sftp_free_space(struct fc_ssh *s, const char *path, uint64_t *bytes);
fc_rc fc_sftp_unlink(struct fc_ssh *s, const char *path);
/* Renames from -> to; replaces an existing `to` (OpenSSH's v3 rename refuses to replace:
 * then `to` is removed first, so a reader may briefly find no file, never a partial one). */
fc_rc fc_sftp_rename(struct fc_ssh *s, const char *from, const char *to);
/* Reads a whole file of at most max bytes into a malloc'd, NUL-terminated buffer. */
fc_rc fc_sftp_read_file(struct fc_ssh *s, const char *path, size_t max, char **buf,
                        size_t *len);
/* Writes a whole file atomically: "<path>.fluid-tmp" written, fsync'd, renamed over path. */
fc_rc fc_sftp_write_file(struct fc_ssh *s, const char *path, const void *buf, size_t len,
                         unsigned mode);

#endif
