/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-config's SFTP target, on the shared fluid_ssh session (host key checked against
 * known_hosts, never accepted silently). The public fluid_ssh API has no realpath, lstat,
 * readdir or setstat yet: those few calls use the session's SFTP handle through
 * proto/src/ssh/ssh_priv.h, and should move to fluid_ssh when it grows them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "cfg.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/ssh.h"
#include "ssh_priv.h"

struct cfg_ssh_opts cfg_ssh_opts;

struct sftp_target {
    struct fc_ssh *s;
    struct fc_ssh_url url;
};

static struct fc_ssh *
S(struct cfg_target *t)
{
    return ((struct sftp_target *)t->priv)->s;
}

/* Makes sure the SFTP subsystem runs (fluid_ssh starts it on first use). */
static fc_rc
sftp_ready(struct fc_ssh *s)
{
    if (s->sftp)
        return FC_OK;
    struct fc_sftp_stat st;
    fc_rc rc = fc_sftp_stat(s, "/", &st);
    return s->sftp ? FC_OK : rc;
}

static fc_rc
sftp_resolve(struct cfg_target *t, const char *path, char **real)
{
    struct fc_ssh *s = S(t);
    fc_rc rc = sftp_ready(s);
    if (rc != FC_OK)
        return rc;
    char buf[4096];
    int n = libssh2_sftp_symlink_ex(s->sftp, path, (unsigned)strlen(path), buf, sizeof buf - 1,
                                    LIBSSH2_SFTP_REALPATH);
    if (n < 0)
        return fc_ssh_error(s, n, "realpath %s", path);
    buf[n] = '\0';
    /* OpenSSH resolves a missing final name too: make sure the result exists */
    LIBSSH2_SFTP_ATTRIBUTES a;
    int r = libssh2_sftp_stat_ex(s->sftp, buf, (unsigned)n, LIBSSH2_SFTP_LSTAT, &a);
    if (r != 0)
        return fc_ssh_error(s, r, "lstat %s", buf);
    if (!(*real = strdup(buf)))
        return FC_ERR(FC_E_NOMEM, "out of memory");
    return FC_OK;
}

static fc_rc
sftp_lstat(struct fc_ssh *s, const char *path, LIBSSH2_SFTP_ATTRIBUTES *a)
{
    fc_rc rc = sftp_ready(s);
    if (rc != FC_OK)
        return rc;
    memset(a, 0, sizeof *a);
    int r = libssh2_sftp_stat_ex(s->sftp, path, (unsigned)strlen(path), LIBSSH2_SFTP_LSTAT, a);
    if (r != 0)
        return fc_ssh_error(s, r, "lstat %s", path);
    if (!(a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS))
        return FC_ERR(FC_E_REMOTE, "sftp %s: lstat %s: no file type in the answer", fc_ssh_peer(s),
                      path);
    return FC_OK;
}

static fc_rc
sftp_kind(struct cfg_target *t, const char *path, char *kind)
{
    LIBSSH2_SFTP_ATTRIBUTES a;
    fc_rc rc = sftp_lstat(S(t), path, &a);
    if (rc != FC_OK)
        return rc;
    mode_t m = (mode_t)a.permissions;
    *kind = S_ISREG(m) ? 'f' : S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : 'o';
    return FC_OK;
}

static fc_rc
sftp_list(struct cfg_target *t, const char *dir, fc_rc (*fn)(void *ctx, const char *name),
          void *ctx)
{
    struct fc_ssh *s = S(t);
    fc_rc rc = sftp_ready(s);
    if (rc != FC_OK)
        return rc;
    LIBSSH2_SFTP_HANDLE *h =
        libssh2_sftp_open_ex(s->sftp, dir, (unsigned)strlen(dir), 0, 0, LIBSSH2_SFTP_OPENDIR);
    if (!h)
        return fc_ssh_error(s, 0, "opendir %s", dir);
    char name[1024];
    LIBSSH2_SFTP_ATTRIBUTES a;
    for (;;) {
        int n = libssh2_sftp_readdir_ex(h, name, sizeof name - 1, NULL, 0, &a);
        if (n < 0) {
            rc = fc_ssh_error(s, n, "readdir %s", dir);
            break;
        }
        if (n == 0)
            break;
        name[n] = '\0';
        if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0 && !strchr(name, '/'))
            if ((rc = fn(ctx, name)) != FC_OK)
                break;
    }
    libssh2_sftp_close_handle(h);
    return rc;
}

static fc_rc
sftp_read(struct cfg_target *t, struct cfg_file *f, uint64_t max)
{
    struct fc_ssh *s = S(t);
    LIBSSH2_SFTP_ATTRIBUTES a;
    fc_rc rc = sftp_lstat(s, f->real, &a); /* before open: opening a FIFO would block */
    if (rc != FC_OK)
        return rc;
    if (!S_ISREG((mode_t)a.permissions))
        return FC_ERR(FC_E_INVALID, "%s: refused: not a regular file (device, FIFO or socket)",
                      f->display);
    if (a.filesize > max)
        return FC_ERR(FC_E_INVALID,
                      "%s: refused: %llu bytes, above the limit of %llu bytes "
                      "(limits.max_file_bytes)",
                      f->display, (unsigned long long)a.filesize, (unsigned long long)max);
    f->mode = (mode_t)a.permissions;
    f->uid = (uid_t)a.uid;
    f->gid = (gid_t)a.gid;
    f->mtime_ns = (uint64_t)a.mtime * 1000000000u;
    f->ino = a.filesize; /* SFTP has no inode: size and mtime are what check() compares */
    struct fc_sftp_file *h = NULL;
    if ((rc = fc_sftp_open(s, f->real, FC_SFTP_READ, 0, &h)) != FC_OK)
        return rc;
    char buf[65536];
    for (;;) {
        size_t got = 0;
        if ((rc = fc_sftp_read(h, buf, sizeof buf, &got)) != FC_OK)
            break;
        if (f->old.len + got > max) {
            rc = FC_ERR(FC_E_INVALID, "%s: refused: grew above the limit of %llu bytes", f->display,
                        (unsigned long long)max);
            break;
        }
        if ((rc = cfg_buf_add(&f->old, buf, got)) != FC_OK || got < sizeof buf)
            break;
    }
    if (rc != FC_OK) {
        fc_sftp_discard(h);
        return rc;
    }
    return fc_sftp_close(h);
}

static fc_rc
sftp_stage(struct cfg_target *t, const struct cfg_file *f, const char *dst, const char *data,
           size_t len, char **tmp_out)
{
    struct fc_ssh *s = S(t);
    const char *slash = strrchr(dst, '/');
    unsigned char rnd[6];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return FC_ERRNO(FC_E_IO, "getrandom");
    char *tmp = NULL;
    if (asprintf(&tmp, "%.*s/.%s.fluid-%02x%02x%02x%02x%02x%02x", (int)(slash - dst), dst,
                 slash + 1, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]) < 0)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    struct fc_sftp_file *h = NULL;
    fc_rc rc = fc_sftp_open(s, tmp, FC_SFTP_WRITE | FC_SFTP_CREATE | FC_SFTP_EXCL, 0600, &h);
    if (rc != FC_OK) {
        free(tmp);
        return rc;
    }
    rc = fc_sftp_write(h, data, len);
    if (rc == FC_OK) {
        /* owner first (may be refused to a non-root user), then the mode */
        LIBSSH2_SFTP_ATTRIBUTES a = {
            .flags = LIBSSH2_SFTP_ATTR_UIDGID, .uid = f->uid, .gid = f->gid};
        if (libssh2_sftp_fsetstat(h->h, &a) != 0)
            fc_log(FC_WARN, FC_MSG("owner not kept"), FC_STR("path", f->display));
        a = (LIBSSH2_SFTP_ATTRIBUTES){.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS,
                                      .permissions = f->mode & 07777};
        int r = libssh2_sftp_fsetstat(h->h, &a);
        if (r != 0)
            rc = fc_ssh_error(s, r, "chmod %s", tmp);
    }
    if (rc == FC_OK && (rc = fc_sftp_fsync(h)) == FC_E_UNSUPPORTED)
        rc = FC_OK;
    fc_rc crc = fc_sftp_close(h);
    if (rc == FC_OK)
        rc = crc;
    if (rc != FC_OK) {
        struct fc_error saved = *fc_error_last();
        fc_sftp_unlink(s, tmp);
        free(tmp);
        return FC_ERR(saved.rc, "%s", saved.msg);
    }
    *tmp_out = tmp;
    return FC_OK;
}

static fc_rc
sftp_check(struct cfg_target *t, const struct cfg_file *f)
{
    LIBSSH2_SFTP_ATTRIBUTES a;
    fc_rc rc = sftp_lstat(S(t), f->real, &a);
    if (rc != FC_OK)
        return rc;
    if (a.filesize != f->old.len || (uint64_t)a.mtime * 1000000000u != f->mtime_ns ||
        !S_ISREG((mode_t)a.permissions))
        return FC_ERR(FC_E_CONFLICT, "%s: changed while the rules ran: nothing was written",
                      f->display);
    return FC_OK;
}

static fc_rc
sftp_commit(struct cfg_target *t, const char *tmp, const char *dst)
{
    return fc_sftp_rename(S(t), tmp, dst);
}

static void
sftp_discard(struct cfg_target *t, const char *tmp)
{
    fc_sftp_unlink(S(t), tmp);
}

static void
sftp_close(struct cfg_target *t)
{
    struct sftp_target *st = t->priv;
    fc_ssh_free(st->s);
    free(st);
    free(t->prefix);
    free(t);
}

static const struct cfg_target_ops sftp_ops = {
    .name = "sftp",
    .resolve = sftp_resolve,
    .kind = sftp_kind,
    .list = sftp_list,
    .read = sftp_read,
    .stage = sftp_stage,
    .check = sftp_check,
    .commit = sftp_commit,
    .discard = sftp_discard,
    .close = sftp_close,
};

fc_rc
cfg_target_sftp(const char *url, struct cfg_target **out, const char **path)
{
    if (strncmp(url, "sftp://", 7) != 0)
        return FC_ERR(FC_E_INVALID, "target: expected sftp://[user@]host[:port]/path");
    char *ssh_url = NULL;
    if (asprintf(&ssh_url, "ssh://%s", url + 7) < 0)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    struct cfg_target *t = calloc(1, sizeof *t);
    struct sftp_target *st = calloc(1, sizeof *st);
    fc_rc rc = t && st ? FC_OK : FC_ERR(FC_E_NOMEM, "out of memory");
    if (rc == FC_OK && (rc = fc_ssh_url_parse(ssh_url, &st->url)) != FC_OK)
        fc_error_prefix("target sftp://");
    free(ssh_url);
    if (rc == FC_OK) {
        struct fc_ssh_url *u = &st->url;
        struct fc_ssh_opts o = {.host = u->host,
                                .port = u->port,
                                .user = u->user[0] ? u->user : NULL,
                                .identity = cfg_ssh_opts.identity,
                                .known_hosts = cfg_ssh_opts.known_hosts};
        bool v6 = strchr(u->host, ':') != NULL;
        char port[16] = "";
        if (u->port)
            snprintf(port, sizeof port, ":%u", u->port);
        if (asprintf(&t->prefix, "sftp://%s%s%s%s%s%s", u->user, u->user[0] ? "@" : "",
                     v6 ? "[" : "", u->host, v6 ? "]" : "", port) < 0)
            t->prefix = NULL;
        if (!t->prefix)
            rc = FC_ERR(FC_E_NOMEM, "out of memory");
        else
            rc = fc_ssh_connect(&o, &st->s);
    }
    if (rc != FC_OK) {
        if (t)
            free(t->prefix);
        free(t);
        if (st)
            fc_ssh_free(st->s);
        free(st);
        return rc;
    }
    t->ops = &sftp_ops;
    t->priv = st;
    *path = st->url.path;
    *out = t;
    return FC_OK;
}
