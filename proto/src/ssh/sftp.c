/* SPDX-License-Identifier: Apache-2.0 */
/* SFTP helpers over an fc_ssh session: open/read/write/seek, stat, rename, whole files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "ssh_priv.h"

static fc_rc
sftp_start(struct fc_ssh *s)
{
    if (s->sftp)
        return FC_OK;
    s->sftp = libssh2_sftp_init(s->sess);
    if (!s->sftp)
        return fc_ssh_error(s, 0, "starting the sftp subsystem");
    return FC_OK;
}

fc_rc
fc_sftp_open(struct fc_ssh *s, const char *path, unsigned flags, unsigned mode,
             struct fc_sftp_file **out)
{
    *out = NULL;
    fc_rc rc = sftp_start(s);
    if (rc != FC_OK)
        return rc;
    unsigned long lf = 0;
    if (flags & FC_SFTP_READ)
        lf |= LIBSSH2_FXF_READ;
    if (flags & FC_SFTP_WRITE)
        lf |= LIBSSH2_FXF_WRITE;
    if (flags & FC_SFTP_CREATE)
        lf |= LIBSSH2_FXF_CREAT;
    if (flags & FC_SFTP_TRUNC)
        lf |= LIBSSH2_FXF_TRUNC;
    if (flags & FC_SFTP_EXCL)
        lf |= LIBSSH2_FXF_EXCL;
    LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(s->sftp, path, (unsigned)strlen(path), lf,
                                                  (long)mode, LIBSSH2_SFTP_OPENFILE);
    if (!h)
        return fc_ssh_error(s, 0, "open %s", path);
    struct fc_sftp_file *f = calloc(1, sizeof *f);
    if (!f) {
        libssh2_sftp_close_handle(h);
        return FC_ERR(FC_E_NOMEM, "sftp: out of memory");
    }
    f->s = s;
    f->h = h;
    snprintf(f->path, sizeof f->path, "%s", path);
    *out = f;
    return FC_OK;
}

fc_rc
fc_sftp_read(struct fc_sftp_file *f, void *buf, size_t len, size_t *got)
{
    char *p = buf;
    size_t have = 0;
    *got = 0;
    while (have < len) {
        ssize_t n = libssh2_sftp_read(f->h, p + have, len - have);
        if (n < 0)
            return fc_ssh_error(f->s, (int)n, "read %s at offset %llu", f->path,
                                (unsigned long long)(f->pos + have));
        if (n == 0)
            break;
        have += (size_t)n;
    }
    f->pos += have;
    *got = have;
    return FC_OK;
}

fc_rc
fc_sftp_write(struct fc_sftp_file *f, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = libssh2_sftp_write(f->h, p, len);
        if (n < 0)
            return fc_ssh_error(f->s, (int)n, "write %s at offset %llu", f->path,
                                (unsigned long long)f->pos);
        p += n;
        len -= (size_t)n;
        f->pos += (uint64_t)n;
    }
    return FC_OK;
}

void
fc_sftp_seek(struct fc_sftp_file *f, uint64_t off)
{
    if (off != f->pos)
        libssh2_sftp_seek64(f->h, off);
    f->pos = off;
}

static void
from_attrs(const LIBSSH2_SFTP_ATTRIBUTES *a, struct fc_sftp_stat *st)
{
    st->size = (a->flags & LIBSSH2_SFTP_ATTR_SIZE) ? a->filesize : 0;
    st->mode = (a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) ? (unsigned)a->permissions : 0;
}

fc_rc
fc_sftp_fstat(struct fc_sftp_file *f, struct fc_sftp_stat *st)
{
    LIBSSH2_SFTP_ATTRIBUTES a = {0};
    int r = libssh2_sftp_fstat_ex(f->h, &a, 0);
    if (r != 0)
        return fc_ssh_error(f->s, r, "stat %s", f->path);
    from_attrs(&a, st);
    return FC_OK;
}

fc_rc
fc_sftp_set_size(struct fc_sftp_file *f, uint64_t size)
{
    LIBSSH2_SFTP_ATTRIBUTES a = {.flags = LIBSSH2_SFTP_ATTR_SIZE, .filesize = size};
    int r = libssh2_sftp_fstat_ex(f->h, &a, 1);
    if (r != 0)
        return fc_ssh_error(f->s, r, "set size of %s to %llu", f->path,
                            (unsigned long long)size);
    return FC_OK;
}

fc_rc
fc_sftp_fsync(struct fc_sftp_file *f)
{
    int r = libssh2_sftp_fsync(f->h);
    if (r != 0)
        return fc_ssh_error(f->s, r, "fsync %s", f->path);
    return FC_OK;
}

fc_rc
fc_sftp_close(struct fc_sftp_file *f)
{
    if (!f)
        return FC_OK;
    fc_rc rc = FC_OK;
    int r = libssh2_sftp_close_handle(f->h);
    if (r != 0)
        rc = fc_ssh_error(f->s, r, "close %s", f->path);
    free(f);
    return rc;
}

void
fc_sftp_discard(struct fc_sftp_file *f)
{
    if (!f)
        return;
    if (!atomic_load(&f->s->aborted))
        libssh2_sftp_close_handle(f->h);
    free(f);
}

fc_rc
fc_sftp_stat(struct fc_ssh *s, const char *path, struct fc_sftp_stat *st)
{
    fc_rc rc = sftp_start(s);
    if (rc != FC_OK)
        return rc;
    LIBSSH2_SFTP_ATTRIBUTES a = {0};
    int r = libssh2_sftp_stat_ex(s->sftp, path, (unsigned)strlen(path), LIBSSH2_SFTP_STAT, &a);
    if (r != 0)
        return fc_ssh_error(s, r, "stat %s", path);
    from_attrs(&a, st);
    return FC_OK;
}

fc_rc
fc_sftp_free_space(struct fc_ssh *s, const char *path, uint64_t *bytes)
{
    fc_rc rc = sftp_start(s);
    if (rc != FC_OK)
        return rc;
    LIBSSH2_SFTP_STATVFS v = {0};
    int r = libssh2_sftp_statvfs(s->sftp, path, strlen(path), &v);
    if (r != 0)
        return fc_ssh_error(s, r, "statvfs %s", path);
    *bytes = (uint64_t)v.f_bavail * v.f_frsize;
    return FC_OK;
}

fc_rc
fc_sftp_unlink(struct fc_ssh *s, const char *path)
{
    fc_rc rc = sftp_start(s);
    if (rc != FC_OK)
        return rc;
    int r = libssh2_sftp_unlink_ex(s->sftp, path, (unsigned)strlen(path));
    if (r != 0)
        return fc_ssh_error(s, r, "remove %s", path);
    return FC_OK;
}

fc_rc
fc_sftp_rename(struct fc_ssh *s, const char *from, const char *to)
{
    fc_rc rc = sftp_start(s);
    if (rc != FC_OK)
        return rc;
    long fl = LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC |
              LIBSSH2_SFTP_RENAME_NATIVE;
    int r = libssh2_sftp_rename_ex(s->sftp, from, (unsigned)strlen(from), to,
                                   (unsigned)strlen(to), fl);
    if (r == 0)
        return FC_OK;
    struct fc_sftp_stat st;
    if (fc_sftp_stat(s, to, &st) == FC_OK && !S_ISDIR(st.mode)) {
        if ((rc = fc_sftp_unlink(s, to)) != FC_OK)
            return rc;
        r = libssh2_sftp_rename_ex(s->sftp, from, (unsigned)strlen(from), to,
                                   (unsigned)strlen(to), fl);
        if (r == 0)
            return FC_OK;
    }
    return fc_ssh_error(s, r, "rename %s to %s", from, to);
}

fc_rc
fc_sftp_read_file(struct fc_ssh *s, const char *path, size_t max, char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    struct fc_sftp_file *f = NULL;
    fc_rc rc = fc_sftp_open(s, path, FC_SFTP_READ, 0, &f);
    if (rc != FC_OK)
        return rc;
    size_t cap = 64 << 10, have = 0;
    char *b = malloc(cap + 1);
    if (!b) {
        fc_sftp_discard(f);
        return FC_ERR(FC_E_NOMEM, "sftp: out of memory");
    }
    for (;;) {
        if (have == cap) {
            if (cap > max) {
                rc = FC_ERR(FC_E_INVALID, "sftp %s: %s is larger than %zu bytes", s->peer,
                            path, max);
                break;
            }
            cap *= 2;
            char *nb = realloc(b, cap + 1);
            if (!nb) {
                rc = FC_ERR(FC_E_NOMEM, "sftp: out of memory");
                break;
            }
            b = nb;
        }
        size_t got = 0;
        if ((rc = fc_sftp_read(f, b + have, cap - have, &got)) != FC_OK)
            break;
        have += got;
        if (have > max) {
            rc = FC_ERR(FC_E_INVALID, "sftp %s: %s is larger than %zu bytes", s->peer, path,
                        max);
            break;
        }
        if (got < cap - (have - got))
            break; /* EOF */
    }
    if (rc != FC_OK) {
        free(b);
        fc_sftp_discard(f);
        return rc;
    }
    rc = fc_sftp_close(f);
    if (rc != FC_OK) {
        free(b);
        return rc;
    }
    b[have] = 0;
    *buf = b;
    *len = have;
    return FC_OK;
}

fc_rc
fc_sftp_write_file(struct fc_ssh *s, const char *path, const void *buf, size_t len,
                   unsigned mode)
{
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.fluid-tmp", path) >= sizeof tmp)
        return FC_ERR(FC_E_INVALID, "sftp: path too long");
    struct fc_sftp_file *f = NULL;
    fc_rc rc = fc_sftp_open(s, tmp, FC_SFTP_WRITE | FC_SFTP_CREATE | FC_SFTP_TRUNC, mode, &f);
    if (rc != FC_OK)
        return rc;
    rc = fc_sftp_write(f, buf, len);
    if (rc == FC_OK) {
        rc = fc_sftp_fsync(f);
        if (rc == FC_E_UNSUPPORTED)
            rc = FC_OK;
    }
    fc_rc crc = fc_sftp_close(f);
    if (rc == FC_OK)
        rc = crc;
    if (rc == FC_OK)
        rc = fc_sftp_rename(s, tmp, path);
    if (rc != FC_OK) {
        struct fc_error saved = *fc_error_last();
        fc_sftp_unlink(s, tmp);
        return FC_ERR(saved.rc, "%s", saved.msg);
    }
    return FC_OK;
}
