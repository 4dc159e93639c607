/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-config's local target: reads regular files only (no devices, FIFOs or oversized
 * files), and replaces a file atomically: a temporary file in the same folder with the
 * original's mode, owner and extended attributes (SELinux label, ACLs), fsync, rename,
 * fsync of the folder. Files and folders are opened by their resolved path with
 * RESOLVE_NO_SYMLINKS, so a symlink swapped in after the root check is refused. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cfg.h"
#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/stream.h"

/* Opens a resolved path, refusing any symlink on the way (openat2; O_NOFOLLOW where the
 * kernel lacks it). */
static int
open_resolved(const char *path, int flags)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
                           .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
    if (fd < 0 && errno == ENOSYS)
        fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW);
    return (int)fd;
}

static fc_rc
open_error(const char *what, const char *display)
{
    if (errno == ELOOP)
        return FC_ERR(FC_E_CONFLICT,
                      "%s: refused: a symlink appeared on its path after it was "
                      "checked",
                      display);
    return FC_ERRNO(FC_E_IO, "%s: %s", display, what);
}

/* The folder of a path, opened safely; *base points at the last name. */
static int
open_parent(const char *path, const char **base)
{
    const char *slash = strrchr(path, '/');
    *base = slash + 1;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    return open_resolved(dir, O_RDONLY | O_DIRECTORY);
}

static fc_rc
local_resolve(struct cfg_target *t, const char *path, char **real)
{
    char *r = realpath(path, NULL);
    if (!r)
        return FC_ERRNO(errno == ENOENT ? FC_E_NOTFOUND : FC_E_IO, "%s", path);
    *real = r;
    return FC_OK;
}

static fc_rc
local_kind(struct cfg_target *t, const char *path, char *kind)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return FC_ERRNO(errno == ENOENT ? FC_E_NOTFOUND : FC_E_IO, "%s", path);
    *kind = S_ISREG(st.st_mode) ? 'f' : S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : 'o';
    return FC_OK;
}

static fc_rc
local_list(struct cfg_target *t, const char *dir, fc_rc (*fn)(void *ctx, const char *name),
           void *ctx)
{
    DIR *d = opendir(dir);
    if (!d)
        return FC_ERRNO(FC_E_IO, "%s", dir);
    fc_rc rc = FC_OK;
    struct dirent *e;
    errno = 0;
    while (rc == FC_OK && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            rc = fn(ctx, e->d_name);
        errno = 0;
    }
    if (rc == FC_OK && errno)
        rc = FC_ERRNO(FC_E_IO, "%s: readdir", dir);
    closedir(d);
    return rc;
}

static const char *
kind_name(mode_t m)
{
    return S_ISCHR(m)    ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISSOCK(m) ? "a socket"
           : S_ISDIR(m)  ? "a folder"
                         : "not a regular file";
}

static fc_rc
local_read(struct cfg_target *t, struct cfg_file *f, uint64_t max)
{
    FC_AUTOCLOSE int fd = open_resolved(f->real, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return open_error("open", f->display);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return FC_ERRNO(FC_E_IO, "%s: stat", f->display);
    if (!S_ISREG(st.st_mode))
        return FC_ERR(FC_E_INVALID, "%s: refused: %s, not a regular file", f->display,
                      kind_name(st.st_mode));
    if ((uint64_t)st.st_size > max)
        return FC_ERR(FC_E_INVALID,
                      "%s: refused: %lld bytes, above the limit of %llu bytes "
                      "(limits.max_file_bytes)",
                      f->display, (long long)st.st_size, (unsigned long long)max);
    if (st.st_nlink > 1)
        fc_log(FC_WARN, FC_MSG("file has other hard links: they keep the old content"),
               FC_STR("path", f->display), FC_U64("links", st.st_nlink));
    f->mode = st.st_mode;
    f->uid = st.st_uid;
    f->gid = st.st_gid;
    f->ino = st.st_ino;
    f->dev = st.st_dev;
    f->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return FC_ERRNO(FC_E_IO, "%s: read", f->display);
        if (n == 0)
            break;
        if (f->old.len + (size_t)n > max)
            return FC_ERR(FC_E_INVALID, "%s: refused: grew above the limit of %llu bytes",
                          f->display, (unsigned long long)max);
        fc_rc rc = cfg_buf_add(&f->old, buf, (size_t)n);
        if (rc != FC_OK)
            return rc;
    }
    return FC_OK;
}

/* Copies the extended attributes (security.selinux, system.posix_acl_access, user.*)
 * of src onto fd; what cannot be copied is logged, not fatal. */
static void
copy_xattrs(int src, int fd, const char *display)
{
    char names[4096];
    ssize_t n = flistxattr(src, names, sizeof names);
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
        char val[4096];
        ssize_t vn = fgetxattr(src, names + i, val, sizeof val);
        if (vn < 0 || fsetxattr(fd, names + i, val, (size_t)vn, 0) < 0)
            fc_log(FC_WARN, FC_MSG("extended attribute not kept"), FC_STR("path", display),
                   FC_STR("attr", names + i), FC_STR("error", strerror(errno)));
    }
}

static fc_rc
local_stage(struct cfg_target *t, const struct cfg_file *f, const char *dst, const char *data,
            size_t len, char **tmp_out)
{
    const char *base;
    FC_AUTOCLOSE int dfd = open_parent(dst, &base);
    if (dfd < 0)
        return open_error("open its folder", f->display);
    unsigned char rnd[6];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return FC_ERRNO(FC_E_IO, "getrandom");
    FC_AUTOFREE char *name = NULL, *tmp = NULL;
    if (asprintf(&name, ".%s.fluid-%02x%02x%02x%02x%02x%02x", base, rnd[0], rnd[1], rnd[2], rnd[3],
                 rnd[4], rnd[5]) < 0 ||
        asprintf(&tmp, "%.*s%s", (int)(base - dst), dst, name) < 0)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    FC_AUTOCLOSE int fd =
        openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return FC_ERRNO(FC_E_IO, "%s: cannot create a temporary file beside it", f->display);
    fc_rc rc = FC_OK;
    if (fchown(fd, f->uid, f->gid) < 0 && (geteuid() == 0 || f->uid != geteuid()))
        fc_log(FC_WARN, FC_MSG("owner not kept"), FC_STR("path", f->display),
               FC_STR("error", strerror(errno)));
    FC_AUTOCLOSE int src = open_resolved(f->real, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (src >= 0)
        copy_xattrs(src, fd, f->display);
    if ((rc = fc_write_all(fd, data, len)) != FC_OK)
        fc_error_prefix("%s: writing the temporary file", f->display);
    /* after fchown, which may clear setuid bits */
    if (rc == FC_OK && fchmod(fd, f->mode & 07777) < 0)
        rc = FC_ERRNO(FC_E_IO, "%s: chmod of the temporary file", f->display);
    if (rc == FC_OK)
        sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE); /* fsync'd by local_sync */
    if (rc != FC_OK) {
        unlinkat(dfd, name, 0);
        return rc;
    }
    *tmp_out = FC_STEAL(&tmp);
    return FC_OK;
}

static fc_rc
local_check(struct cfg_target *t, const struct cfg_file *f)
{
    struct stat st;
    if (lstat(f->real, &st) < 0)
        return FC_ERRNO(FC_E_CONFLICT, "%s: changed while the rules ran", f->display);
    uint64_t mt = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
    if (st.st_ino != f->ino || st.st_dev != f->dev || mt != f->mtime_ns ||
        (size_t)st.st_size != f->old.len)
        return FC_ERR(FC_E_CONFLICT, "%s: changed while the rules ran: nothing was written",
                      f->display);
    return FC_OK;
}

static fc_rc
local_sync(struct cfg_target *t, const char *tmp)
{
    FC_AUTOCLOSE int fd = open_resolved(tmp, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return open_error("open", tmp);
    if (fsync(fd) < 0)
        return FC_ERRNO(FC_E_IO, "%s: fsync", tmp);
    return FC_OK;
}

static fc_rc
local_commit(struct cfg_target *t, const char *tmp, const char *dst)
{
    const char *base, *tbase = strrchr(tmp, '/') + 1;
    FC_AUTOCLOSE int dfd = open_parent(dst, &base);
    if (dfd < 0)
        return open_error("open its folder", dst);
    if (renameat(dfd, tbase, dfd, base) < 0)
        return FC_ERRNO(FC_E_IO, "%s: rename", dst);
    return FC_OK;
}

static void
local_sync_dir(struct cfg_target *t, const char *path)
{
    const char *base;
    FC_AUTOCLOSE int dfd = open_parent(path, &base);
    if (dfd < 0 || fsync(dfd) < 0)
        fc_log(FC_WARN, FC_MSG("fsync of the folder failed"), FC_STR("path", path),
               FC_STR("error", strerror(errno)));
}

static void
local_discard(struct cfg_target *t, const char *tmp)
{
    const char *base;
    FC_AUTOCLOSE int dfd = open_parent(tmp, &base);
    if (dfd >= 0)
        unlinkat(dfd, base, 0);
}

static void
local_close(struct cfg_target *t)
{
    free(t->prefix);
    free(t);
}

static const struct cfg_target_ops local_ops = {
    .name = "local",
    .resolve = local_resolve,
    .kind = local_kind,
    .list = local_list,
    .read = local_read,
    .stage = local_stage,
    .sync = local_sync,
    .check = local_check,
    .commit = local_commit,
    .sync_dir = local_sync_dir,
    .discard = local_discard,
    .close = local_close,
};

fc_rc
cfg_target_local(struct cfg_target **out)
{
    struct cfg_target *t = calloc(1, sizeof *t);
    if (!t || !(t->prefix = strdup(""))) {
        free(t);
        return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    t->ops = &local_ops;
    *out = t;
    return FC_OK;
}
