/* SPDX-License-Identifier: Apache-2.0 */
/* The hash record: <path>.fluid-hashes, written after a verified copy has been committed,
 * holds the chunk hashes of the destination as verified together with the file's identity
 * (device, inode, size, mtime, ctime). A later --delta or --resume over the same file takes
 * its chunk hashes from the record instead of reading the file, while the identity still
 * matches: any write to the file, a truncate, a rename or a replacement changes the inode's
 * ctime, which no program can set back. docs/volume.md "The hash record" has the rules.
 *
 * Layout (little-endian): "FCVHREC1", u32 chunk size, u32 0, u64 device, inode, size,
 * mtime s, mtime ns, ctime s, ctime ns, chunk count n; 32 * n chunk hashes; SHA-256 of all
 * that precedes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "volume.h"

#define REC_MAGIC "FCVHREC1"
#define REC_HDR 80u

static char *
record_name(const char *path, const char *extra)
{
    size_t n = strlen(path), s = sizeof VOL_RECORD_SUFFIX - 1, e = strlen(extra);
    char *p = malloc(n + s + e + 1);
    if (p) {
        memcpy(p, path, n);
        memcpy(p + n, VOL_RECORD_SUFFIX, s);
        memcpy(p + n + s, extra, e + 1);
    }
    return p;
}

static void
put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void
identity(const struct stat *st, uint8_t out[56])
{
    put64(out, (uint64_t)st->st_dev);
    put64(out + 8, (uint64_t)st->st_ino);
    put64(out + 16, (uint64_t)st->st_size);
    put64(out + 24, (uint64_t)st->st_mtim.tv_sec);
    put64(out + 32, (uint64_t)st->st_mtim.tv_nsec);
    put64(out + 40, (uint64_t)st->st_ctim.tv_sec);
    put64(out + 48, (uint64_t)st->st_ctim.tv_nsec);
}

void
record_drop(const char *path)
{
    FC_AUTOFREE char *name = record_name(path, "");
    if (name)
        (void)unlink(name);
}

fc_rc
record_save(const char *path, int fd, const uint8_t *hashes, uint64_t n)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return FC_ERR(FC_E_IO, "hash record: %s is not a regular file", path);
    if (n != ((uint64_t)st.st_size + VOL_CHUNK - 1) / VOL_CHUNK)
        return FC_ERR(FC_E_INVALID, "hash record: %llu chunk hashes for %lld bytes",
                      (unsigned long long)n, (long long)st.st_size);
    FC_AUTOFREE char *name = record_name(path, "");
    FC_AUTOFREE char *tmp = record_name(path, ".XXXXXX");
    size_t len = REC_HDR + (size_t)n * 32 + 32;
    FC_AUTOFREE uint8_t *buf = malloc(len);
    if (!name || !tmp || !buf)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    memcpy(buf, REC_MAGIC, 8);
    memset(buf + 8, 0, 8);
    buf[8] = (uint8_t)VOL_CHUNK;
    buf[9] = (uint8_t)(VOL_CHUNK >> 8);
    buf[10] = (uint8_t)(VOL_CHUNK >> 16);
    buf[11] = (uint8_t)(VOL_CHUNK >> 24);
    identity(&st, buf + 16);
    put64(buf + 72, n);
    memcpy(buf + REC_HDR, hashes, (size_t)n * 32);
    sha256_buf(buf, len - 32, buf + len - 32);
    int t = mkstemp(tmp); /* mode 0600, owned by us: what record_load demands */
    if (t < 0)
        return FC_ERRNO(FC_E_IO, "hash record: create %s", tmp);
    fc_rc rc = fc_write_all(t, buf, len);
    if (close(t) != 0 && rc == FC_OK)
        rc = FC_ERRNO(FC_E_IO, "hash record: write %s", tmp);
    if (rc == FC_OK && rename(tmp, name) != 0)
        rc = FC_ERRNO(FC_E_IO, "hash record: rename %s", tmp);
    if (rc != FC_OK)
        (void)unlink(tmp);
    return rc;
}

void
record_load(const char *path, int fd, uint8_t **hashes, uint64_t *nout, const char **why)
{
    *hashes = NULL;
    *nout = 0;
    *why = NULL;
    FC_AUTOFREE char *name = record_name(path, "");
    if (!name)
        return;
    int rfd = open(name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (rfd < 0) {
        if (errno != ENOENT)
            *why = "the hash record cannot be opened";
        return;
    }
    struct stat rs, st;
    FC_AUTOFREE uint8_t *buf = NULL;
    uint64_t n = 0;
    if (fstat(rfd, &rs) != 0 || !S_ISREG(rs.st_mode)) {
        *why = "the hash record is not a regular file";
    } else if (rs.st_uid != geteuid() || (rs.st_mode & 022)) {
        /* only a record this user wrote (and nobody else may change) is trusted */
        *why = "the hash record is not owned by this user or is writable by others";
    } else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        *why = "the destination is not a regular file";
    } else {
        n = ((uint64_t)st.st_size + VOL_CHUNK - 1) / VOL_CHUNK;
        size_t len = REC_HDR + (size_t)n * 32 + 32;
        uint8_t id[56], sum[32];
        identity(&st, id);
        if ((uint64_t)rs.st_size != len) {
            *why = "the hash record does not match the destination's size";
        } else if (!(buf = malloc(len))) {
            *why = "out of memory for the hash record";
        } else if (pread(rfd, buf, len, 0) != (ssize_t)len) {
            *why = "the hash record cannot be read";
        } else if (memcmp(buf, REC_MAGIC, 8) != 0 ||
                   (buf[8] | buf[9] << 8 | buf[10] << 16 | (uint32_t)buf[11] << 24) !=
                       VOL_CHUNK ||
                   get64(buf + 72) != n) {
            *why = "the hash record is not in this version's format";
        } else if (sha256_buf(buf, len - 32, sum), memcmp(sum, buf + len - 32, 32) != 0) {
            *why = "the hash record is damaged (its checksum differs)";
        } else if (memcmp(buf + 16, id, 16) != 0) {
            *why = "the destination is another file than the one recorded";
        } else if (memcmp(buf + 32, id + 16, 40) != 0) {
            *why = "the destination changed since the record was written";
        }
    }
    close(rfd);
    if (*why || !buf)
        return;
    memmove(buf, buf + REC_HDR, (size_t)n * 32);
    *hashes = buf;
    buf = NULL;
    *nout = n;
    *why = "used";
}
