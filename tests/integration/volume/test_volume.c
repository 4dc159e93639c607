// SPDX-License-Identifier: Apache-2.0
// fluid-volume against the real sshd fixture, in SFTP mode (stock OpenSSH) and helper mode
// (`fluid-volume serve` started over SSH): a 1 GiB sparse copy, delta re-sync, local and
// stream copies, and the clear errors (host key, key, source, destination, disk full, paths).
#include <criterion/criterion.h>
#include <sys/mount.h>

#include "common.h"
#include "run.h"

static struct sshd_env E;
static char dir[700], bin[700], idopt[600], khopt[600];

static void
setup(void)
{
    sshd_env_load(&E);
    const char *b = getenv("FLUID_BIN_DIR");
    if (!b)
        cr_assert_fail("FLUID_BIN_DIR not set: run through ctest");
    snprintf(bin, sizeof bin, "%s/fluid-volume", b);
    snprintf(dir, sizeof dir, "%s/volume-test-%d", getenv("FLUID_TEST_RUN_DIR"), getpid());
    mkdir(dir, 0755);
    snprintf(idopt, sizeof idopt, "--identity=%s", E.identity);
    snprintf(khopt, sizeof khopt, "--known-hosts=%s", E.known_hosts);
}

static void
teardown(void)
{
    char mnt[800];
    snprintf(mnt, sizeof mnt, "%s/full", dir);
    umount2(mnt, MNT_DETACH); /* the disk-full test's tmpfs, if it stopped half-way */
    const char *argv[] = {"/bin/rm", "-rf", "--", dir, NULL};
    int st;
    fc_run(argv, NULL, 0, NULL, 0, &st);
}

TestSuite(volume, .init = setup, .fini = teardown, .timeout = 300);

static char *
url(const char *path)
{
    static char u[8][1200];
    static int k;
    char *o = u[k++ % 8];
    snprintf(o, sizeof u[0], "ssh://%s@%s:%u%s", E.user, E.host, E.port, path);
    return o;
}

static char *
p(const char *name)
{
    static char b[8][1200];
    static int k;
    char *o = b[k++ % 8];
    snprintf(o, sizeof b[0], "%s/%s", dir, name);
    return o;
}

/* copy over ssh with the fixture's key; helper: use our binary as the remote helper. */
static int
ssh_copy(struct run *r, bool helper, const char *src, const char *dst, const char *extra1,
         const char *extra2)
{
    run_init(r, bin);
    run_arg(r, "copy");
    run_arg(r, "--events-fd=3");
    run_arg(r, idopt);
    run_arg(r, khopt);
    run_arg(r, "--remote-helper");
    run_arg(r, helper ? bin : "none");
    if (extra1)
        run_arg(r, extra1);
    if (extra2)
        run_arg(r, extra2);
    run_arg(r, src);
    run_arg(r, dst);
    return run_go(r);
}

static bool
exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void
check_mode(struct run *r, bool helper)
{
    cr_assert_not_null(r->done_result);
    const char *m = json_string_value(json_object_get(r->done_result, "mode"));
    cr_assert_str_eq(m, helper ? "helper" : "sftp");
    cr_assert_gt(helper ? r->info_helper : r->info_sftp, 0, "no info event naming the mode");
}

Test(volume, sparse_1gib_copy_sftp_and_helper)
{
    const uint64_t size = 1ull << 30;
    make_image(p("src.img"), size, 1 << 20, 16 << 20, 7);
    /* and a few unaligned bytes near the end */
    int fd = open(p("src.img"), O_WRONLY);
    cr_assert_eq(pwrite(fd, "tail", 4, (off_t)(size - 5000)), 4);
    close(fd);
    char want[65], got[65];
    file_sha(p("src.img"), want);
    for (int helper = 0; helper < 2; helper++) {
        const char *dst = helper ? "dst helper.img" : "dst sftp.img";
        struct run r;
        int rc = ssh_copy(&r, helper, p("src.img"), url(p(dst)), NULL, NULL);
        cr_assert_eq(rc, 0, "exit %d: %s", rc, r.err);
        check_mode(&r, helper);
        file_sha(p(dst), got);
        cr_assert_str_eq(got, want, "%s differs", dst);
        char tree[65];
        file_tree_sha(p("src.img"), tree);
        cr_assert_str_eq(json_string_value(json_object_get(r.done_result, "sha256_tree")),
                         tree);
        /* the plain SHA-256 is only computed where a stream end needs it */
        cr_assert_null(json_object_get(r.done_result, "sha256"));
        struct stat st;
        cr_assert_eq(stat(p(dst), &st), 0);
        cr_assert_eq((uint64_t)st.st_size, size);
        cr_log_info("%s: allocated %lld bytes of %llu; sent %llu", dst,
                    (long long)st.st_blocks * 512, (unsigned long long)size,
                    (unsigned long long)result_u64(&r, "bytes_sent"));
        cr_assert_lt((uint64_t)st.st_blocks * 512, 80ull << 20, "%s is not sparse", dst);
        cr_assert_lt(result_u64(&r, "bytes_sent"), 80ull << 20, "zeros were sent");
        cr_assert(!exists(p(helper ? "dst helper.img.fluid-part" : "dst sftp.img.fluid-part")));
        run_free(&r);
        unlink(p(dst));
    }
    unlink(p("src.img"));
}

Test(volume, delta_sends_about_one_percent)
{
    const uint64_t size = 200ull << 20;
    make_image(p("src.img"), size, size, size, 11);
    for (int helper = 0; helper < 2; helper++) {
        const char *dst = helper ? "dh.img" : "ds.img";
        struct run r;
        /* a first --delta: nothing to compare with, a whole copy (the source's hashes,
         * computed while connecting, make its digest) */
        cr_assert_eq(ssh_copy(&r, helper, p("src.img"), url(p(dst)), "--delta", NULL), 0,
                     "%s", r.err);
        uint64_t full = result_u64(&r, "bytes_sent");
        cr_assert_eq(result_u64(&r, "unchanged_bytes"), 0);
        char t[65];
        file_tree_sha(p(dst), t);
        cr_assert_str_eq(json_string_value(json_object_get(r.done_result, "sha256_tree")), t);
        run_free(&r);
        /* change 2 of 200 chunks (1%) */
        int fd = open(p("src.img"), O_WRONLY);
        cr_assert_eq(pwrite(fd, "changed!", 8, (off_t)(50ull << 20) + 12345), 8);
        cr_assert_eq(pwrite(fd, "changed!", 8, (off_t)(150ull << 20) + 999), 8);
        close(fd);
        /* SFTP mode writes no hash record: one an earlier helper copy left is removed */
        char rec[1100];
        snprintf(rec, sizeof rec, "%.1000s.fluid-hashes", p(dst));
        if (!helper) {
            int rfd = open(rec, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            cr_assert(rfd >= 0 && write(rfd, "FCVHREC1", 8) == 8);
            close(rfd);
        }
        cr_assert_eq(ssh_copy(&r, helper, p("src.img"), url(p(dst)), "--delta", NULL), 0,
                     "%s", r.err);
        cr_assert_eq(access(rec, F_OK) == 0, helper, "%s: hash record %s", dst,
                     helper ? "missing" : "left behind");
        uint64_t sent = result_u64(&r, "bytes_sent");
        cr_log_info("%s: full copy sent %llu bytes, delta sent %llu (%.2f%%)",
                    helper ? "helper" : "sftp", (unsigned long long)full,
                    (unsigned long long)sent, 100.0 * sent / full);
        cr_assert_eq(result_u64(&r, "unchanged_bytes"), size - (2u << 20));
        cr_assert_geq(sent, 2u << 20, "the changed chunks must be sent");
        cr_assert_leq(sent, (2u << 20) + (3u << 19), "delta sent %llu bytes",
                      (unsigned long long)sent);
        cr_assert_gt(full, size);
        char a[65], b[65];
        file_sha(p("src.img"), a);
        file_sha(p(dst), b);
        cr_assert_str_eq(a, b);
        file_tree_sha(p(dst), t);
        cr_assert_str_eq(json_string_value(json_object_get(r.done_result, "sha256_tree")), t);
        run_free(&r);
        unlink(p(dst));
        unlink(rec);
        /* put the source back for the next mode */
        make_image(p("src.img"), size, size, size, 11);
    }
}

/* src.img to `to`: a local copy (to is a path) or one over SSH with the helper. */
static int
either_copy(struct run *r, bool local, const char *to, const char *extra1, const char *extra2)
{
    if (!local)
        return ssh_copy(r, true, p("src.img"), to, extra1, extra2);
    run_init(r, bin);
    run_arg(r, "copy");
    run_arg(r, "--events-fd=3");
    if (extra1)
        run_arg(r, extra1);
    if (extra2)
        run_arg(r, extra2);
    run_arg(r, p("src.img"));
    run_arg(r, to);
    return run_go(r);
}

/* The hash record: a verified copy leaves <dest>.fluid-hashes; the next --delta takes the
 * destination's chunk hashes from it (helper over SSH, and a local destination) and still
 * ends byte-identical; after the destination was written behind our back, the record is
 * refused and the changed chunk is found and sent again; --rehash reads the file;
 * --no-hash-record leaves none. */
Test(volume, delta_hash_record)
{
    const uint64_t size = 200ull << 20;
    make_image(p("src.img"), size, size, size, 13);
    for (int local = 0; local < 2; local++) {
        /* p() and url() reuse 8 buffers: these are copies */
        const char *name = local ? "rec-local.img" : "rec-helper.img";
        char dst[1200], to[1200], rec[1200];
        snprintf(dst, sizeof dst, "%.1000s", p(name));
        snprintf(to, sizeof to, "%.1100s", local ? p(name) : url(p(name)));
        snprintf(rec, sizeof rec, "%.1000s.fluid-hashes", p(name));
        struct run r;
        cr_assert_eq(either_copy(&r, local, to, NULL, NULL), 0, "%s", r.err);
        run_free(&r);
        cr_assert(exists(rec), "no hash record after a verified copy to %s", dst);

        int fd = open(p("src.img"), O_WRONLY);
        cr_assert_eq(pwrite(fd, "changed!", 8, (off_t)(20ull << 20) + 77), 8);
        cr_assert_eq(pwrite(fd, "changed!", 8, (off_t)(120ull << 20) + 5), 8);
        close(fd);
        char a[65], b[65];
        for (int round = 0; round < 3; round++) {
            /* round 1: someone else changes chunk 100 of the destination first */
            if (round == 1) {
                fd = open(dst, O_WRONLY);
                cr_assert_eq(pwrite(fd, "X", 1, (off_t)(100ull << 20) + 4242), 1);
                close(fd);
            }
            const char *rehash = round == 2 ? "--rehash" : NULL;
            cr_assert_eq(either_copy(&r, local, to, "--delta", rehash), 0, "%s", r.err);
            cr_log_info("%s round %d: hash_record \"%s\", unchanged %llu", dst, round,
                        r.hash_record, (unsigned long long)result_u64(&r, "unchanged_bytes"));
            if (round == 0) {
                cr_assert_str_eq(r.hash_record, "used");
                cr_assert_eq(result_u64(&r, "unchanged_bytes"), size - (2u << 20));
            } else if (round == 1) {
                cr_assert(strstr(r.hash_record, "changed since the record"), "%s",
                          r.hash_record);
                cr_assert_eq(result_u64(&r, "unchanged_bytes"), size - (1u << 20));
            } else {
                cr_assert_str_eq(r.hash_record, "", "--rehash looked at the record");
                cr_assert_eq(result_u64(&r, "unchanged_bytes"), size);
            }
            file_sha(p("src.img"), a);
            file_sha(dst, b);
            cr_assert_str_eq(a, b, "%s differs after round %d", dst, round);
            run_free(&r);
        }
        /* --no-hash-record: a verified copy that leaves none (and removes the old one) */
        cr_assert(exists(rec));
        cr_assert_eq(either_copy(&r, local, to, "--delta", "--no-hash-record"), 0, "%s", r.err);
        cr_assert_str_eq(r.hash_record, "used");
        run_free(&r);
        cr_assert(!exists(rec), "--no-hash-record left %s", rec);
        file_sha(dst, b);
        cr_assert_str_eq(a, b);
        unlink(dst);
        unlink(rec);
        make_image(p("src.img"), size, size, size, 13);
    }
}

Test(volume, local_and_framed_stream_copies)
{
    make_image(p("src.img"), 48 << 20, 1 << 20, 8 << 20, 3);
    char want[65], got[65];
    file_sha(p("src.img"), want);
    struct run r;
    run_init(&r, bin);
    run_arg(&r, "copy");
    run_arg(&r, "--framed");
    run_arg(&r, p("src.img"));
    run_arg(&r, "-");
    int out = open(p("stream.fc"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    r.stdout_fd = out;
    cr_assert_eq(run_go(&r), 0, "%s", r.err);
    close(out);
    struct stat st;
    stat(p("stream.fc"), &st);
    cr_assert_lt(st.st_size, 8 << 20, "zeros crossed the stream as bytes");
    run_init(&r, bin);
    run_arg(&r, "copy");
    run_arg(&r, "--events-fd=3");
    run_arg(&r, "-");
    run_arg(&r, p("local.img"));
    r.stdin_fd = open(p("stream.fc"), O_RDONLY);
    cr_assert_eq(run_go(&r), 0, "%s", r.err);
    close(r.stdin_fd);
    file_sha(p("local.img"), got);
    cr_assert_str_eq(got, want);
    stat(p("local.img"), &st);
    cr_assert_lt(st.st_blocks * 512, 16 << 20);
    run_free(&r);
}

Test(volume, unknown_host_key_is_refused)
{
    make_image(p("src.img"), 1 << 20, 1 << 20, 1 << 20, 1);
    int fd = open(p("empty_kh"), O_WRONLY | O_CREAT, 0600);
    close(fd);
    char kh[800];
    snprintf(kh, sizeof kh, "--known-hosts=%s", p("empty_kh"));
    struct run r;
    int rc = ssh_copy(&r, false, p("src.img"), url(p("dst.img")), kh, NULL);
    cr_assert_eq(rc, 7, "exit %d: %s", rc, r.err);
    cr_assert_str_eq(r.failed_code, "FC_E_VERIFY");
    cr_assert(strstr(r.failed_msg, "unknown host key") && strstr(r.failed_msg, "SHA256:"),
              "%s", r.failed_msg);
    cr_assert(!exists(p("dst.img")) && !exists(p("dst.img.fluid-part")));
}

Test(volume, wrong_key_is_refused)
{
    make_image(p("src.img"), 1 << 20, 1 << 20, 1 << 20, 1);
    char id[800];
    snprintf(id, sizeof id, "--identity=%s", E.wrong_identity);
    struct run r;
    int rc = ssh_copy(&r, true, p("src.img"), url(p("dst.img")), id, NULL);
    cr_assert_eq(rc, 6, "exit %d: %s", rc, r.err);
    cr_assert(strstr(r.failed_msg, "refused the key"), "%s", r.failed_msg);
    cr_assert(!exists(p("dst.img")) && !exists(p("dst.img.fluid-part")));
}

Test(volume, unreadable_or_missing_source)
{
    struct run r;
    int rc = ssh_copy(&r, true, "/proc/self/mem", url(p("dst.img")), NULL, NULL);
    cr_assert_eq(rc, 3, "exit %d: %s", rc, r.err);
    cr_assert(strstr(r.failed_msg, "source /proc/self/mem"), "%s", r.failed_msg);
    rc = ssh_copy(&r, false, p("no-such.img"), url(p("dst.img")), NULL, NULL);
    cr_assert_eq(rc, 13, "exit %d: %s", rc, r.err);
    cr_assert(strstr(r.failed_msg, "no-such.img"), "%s", r.failed_msg);
    cr_assert(!exists(p("dst.img")) && !exists(p("dst.img.fluid-part")));
}

Test(volume, missing_destination_directory)
{
    make_image(p("src.img"), 1 << 20, 1 << 20, 1 << 20, 1);
    for (int helper = 0; helper < 2; helper++) {
        struct run r;
        int rc = ssh_copy(&r, helper, p("src.img"), url(p("no/such/dir/dst.img")), NULL, NULL);
        cr_assert_eq(rc, 13, "exit %d: %s", rc, r.err);
        cr_assert(strstr(r.failed_msg, "no/such/dir") && strstr(r.failed_msg, "does not exist"),
                  "%s", r.failed_msg);
    }
    struct run r;
    run_init(&r, bin);
    run_arg(&r, "copy");
    run_arg(&r, "--events-fd=3");
    run_arg(&r, p("src.img"));
    run_arg(&r, p("no/such/dst.img"));
    cr_assert_eq(run_go(&r), 13, "%s", r.err);
    cr_assert(strstr(r.failed_msg, "does not exist"), "%s", r.failed_msg);
}

Test(volume, disk_full_is_a_clear_error)
{
    if (geteuid() != 0)
        cr_skip_test("mounting a small tmpfs needs root");
    const char *mnt = p("full");
    mkdir(mnt, 0755);
    cr_assert_eq(mount("tmpfs", mnt, "tmpfs", 0, "size=12m"), 0, "mount tmpfs: %s",
                 strerror(errno));
    make_image(p("src.img"), 32 << 20, 32 << 20, 32 << 20, 5);
    for (int mode = 0; mode < 3; mode++) {
        char dst[900];
        snprintf(dst, sizeof dst, "%s/dst%d.img", mnt, mode);
        struct run r;
        int rc;
        if (mode < 2) {
            rc = ssh_copy(&r, mode == 1, p("src.img"), url(dst), NULL, NULL);
        } else {
            run_init(&r, bin);
            run_arg(&r, "copy");
            run_arg(&r, "--events-fd=3");
            run_arg(&r, p("src.img"));
            run_arg(&r, dst);
            rc = run_go(&r);
        }
        cr_assert_eq(rc, 16, "mode %d: exit %d: %s", mode, rc, r.err);
        cr_assert_str_eq(r.failed_code, "FC_E_NOSPACE");
        cr_log_info("disk full (mode %d): %s", mode, r.failed_msg);
        cr_assert(strstr(r.failed_msg, "full") || strstr(r.failed_msg, "No space"), "%s",
                  r.failed_msg);
        cr_assert(!exists(dst), "the destination claims to be complete");
        char part[1000];
        snprintf(part, sizeof part, "%s.fluid-part", dst);
        unlink(part);
    }
    cr_assert_eq(umount(mnt), 0);
}

Test(volume, paths_with_spaces_and_shell_metacharacters)
{
    make_image(p("src.img"), 4 << 20, 1 << 20, 2 << 20, 9);
    char want[65], got[65];
    file_sha(p("src.img"), want);
    for (int helper = 0; helper < 2; helper++) {
        char name[300];
        snprintf(name, sizeof name, "a b;touch pwned$(touch pwned2)`touch pwned3`'\"&|%d.img",
                 helper);
        struct run r;
        int rc = ssh_copy(&r, helper, p("src.img"), url(p(name)), NULL, NULL);
        cr_assert_eq(rc, 0, "exit %d: %s", rc, r.err);
        check_mode(&r, helper);
        file_sha(p(name), got);
        cr_assert_str_eq(got, want);
        run_free(&r);
    }
    cr_assert(!exists(p("pwned")) && !exists("pwned") && !exists("/root/pwned2"));
    /* a helper path the remote shell would interpret is refused before connecting */
    struct run r;
    run_init(&r, bin);
    run_arg(&r, "copy");
    run_arg(&r, "--events-fd=3");
    run_arg(&r, "--remote-helper=/tmp/x;touch pwned");
    run_arg(&r, p("src.img"));
    run_arg(&r, url(p("x.img")));
    cr_assert_eq(run_go(&r), 1, "%s", r.err);
    cr_assert(strstr(r.failed_msg, "--remote-helper"), "%s", r.failed_msg);
}

Test(volume, streams_compression_and_ssh_source)
{
    make_image(p("src.img"), 40 << 20, 1 << 20, 3 << 20, 13);
    /* compressible data too: a run of text */
    int fd = open(p("src.img"), O_WRONLY);
    static char txt[4 << 20];
    for (size_t i = 0; i < sizeof txt; i++)
        txt[i] = "fluidcloud volume "[i % 18];
    cr_assert_eq(pwrite(fd, txt, sizeof txt, 20 << 20), (ssize_t)sizeof txt);
    close(fd);
    char want[65], got[65];
    file_sha(p("src.img"), want);
    struct run r;
    /* helper, 3 connections, zstd */
    cr_assert_eq(ssh_copy(&r, true, p("src.img"), url(p("multi.img")), "--streams=3",
                          "--compress=zstd:3"), 0, "%s", r.err);
    check_mode(&r, true);
    uint64_t zsent = result_u64(&r, "bytes_sent");
    file_sha(p("multi.img"), got);
    cr_assert_str_eq(got, want);
    run_free(&r);
    /* SFTP, 2 connections */
    cr_assert_eq(ssh_copy(&r, false, p("src.img"), url(p("multi2.img")), "--streams=2", NULL),
                 0, "%s", r.err);
    check_mode(&r, false);
    uint64_t sent = result_u64(&r, "bytes_sent");
    file_sha(p("multi2.img"), got);
    cr_assert_str_eq(got, want);
    run_free(&r);
    cr_log_info("sent with zstd: %llu, without: %llu", (unsigned long long)zsent,
                (unsigned long long)sent);
    cr_assert_lt(zsent + (3u << 20), sent, "compression saved nothing");
    /* an ssh:// source read over SFTP into a local file */
    run_init(&r, bin);
    run_arg(&r, "copy");
    run_arg(&r, "--events-fd=3");
    run_arg(&r, idopt);
    run_arg(&r, khopt);
    run_arg(&r, url(p("multi.img")));
    run_arg(&r, p("back.img"));
    cr_assert_eq(run_go(&r), 0, "%s", r.err);
    file_sha(p("back.img"), got);
    cr_assert_str_eq(got, want);
    struct stat st;
    stat(p("back.img"), &st);
    cr_assert_lt(st.st_blocks * 512, 24 << 20, "the local copy is not sparse");
    run_free(&r);
}
