/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers for the fluid-image integration tests: a private work folder, running programs
 * (fc_spawn, argv only) with their stderr captured, pipelines through real pipes, and the
 * source image made by qemu-img and qemu-io (the oracle) with scattered data and zero runs
 * and a virtual size that is not a multiple of any cluster size. */
#ifndef IMAGE_TEST_H
#define IMAGE_TEST_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fluid/spawn.h"

/* 5 MiB + 12 KiB + 512: sector aligned, not a multiple of 64 KiB, 2 MiB or a VHD CHS size */
#define SRC_SIZE (5u * 1024 * 1024 + 12288 + 512)
/* The code a sanitizer exits with in children (distinct from every fc_rc). */
#define SANITIZER_EXIT 86

static char *t_qemu_img, *t_qemu_io, *t_fluid, *t_cat;
static char t_dir[1024];
static char t_err[1 << 16];

static void
t_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", t_dir, name);
}

static void
t_setup(const char *test)
{
    const char *bin = getenv("FLUID_BIN_DIR"), *run = getenv("FLUID_TEST_RUN_DIR");
    if (!bin || !run)
        cr_assert_fail("FLUID_BIN_DIR and FLUID_TEST_RUN_DIR must be set (run under ctest)");
    const char *path = getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin";
    t_qemu_img = fc_find_program("qemu-img", path);
    t_qemu_io = fc_find_program("qemu-io", path);
    t_cat = fc_find_program("cat", path);
    if (!t_qemu_img || !t_qemu_io || !t_cat)
        cr_assert_fail("qemu-img, qemu-io (Debian qemu-utils) and cat are needed: the tests use the "
                 "real qemu-img as their oracle");
    char f[PATH_MAX];
    snprintf(f, sizeof f, "%s/fluid-image", bin);
    if (access(f, X_OK) != 0)
        cr_assert_fail("%s is missing: build the fluid-image target", f);
    t_fluid = strdup(f);
    mkdir(run, 0755);
    snprintf(t_dir, sizeof t_dir, "%s/image-%s-%d", run, test, (int)getpid());
    if (mkdir(t_dir, 0755) != 0 && errno != EEXIST)
        cr_assert_fail("mkdir %s: %s", t_dir, strerror(errno));
    /* a sanitizer report in a child must not look like an fc_rc */
    setenv("ASAN_OPTIONS", "exitcode=86:detect_leaks=1", 1);
    setenv("UBSAN_OPTIONS", "exitcode=86:halt_on_error=1:print_stacktrace=1", 1);
    setenv("FLUID_LOG_FORMAT", "text", 1);
    setenv("TMPDIR", t_dir, 1);
}

static void
t_teardown(void)
{
    DIR *d = opendir(t_dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char p[PATH_MAX + 300];
            snprintf(p, sizeof p, "%s/%s", t_dir, e->d_name);
            unlink(p);
        }
        closedir(d);
        rmdir(t_dir);
    }
    free(t_qemu_img);
    free(t_qemu_io);
    free(t_cat);
    free(t_fluid);
}

/* Runs argv with stdin from /dev/null; returns the exit status, or 1000 + signal. */
static int
t_run(const char *const *argv)
{
    int st = 0;
    fc_rc rc = fc_run(argv, NULL, 0, t_err, sizeof t_err, &st);
    if (rc != FC_OK)
        cr_assert_fail("cannot run %s", argv[0]);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

#define T_RUN_OK(...)                                                                          \
    do {                                                                                       \
        const char *const a_[] = {__VA_ARGS__, NULL};                                          \
        int s_ = t_run(a_);                                                                    \
        cr_assert_eq(s_, 0, "%s %s %s failed (%d): %s", a_[0], a_[1], a_[2], s_, t_err);       \
    } while (0)

/* Waits for pid; returns the exit status or 1000 + signal. */
static int
t_wait(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

/* cat IN | argv... | cat > OUT, through real pipes; returns argv's exit status. */
__attribute__((unused)) static int
t_pipeline(const char *in, const char *const *argv, const char *out)
{
    int a[2], b[2];
    cr_assert_eq(pipe2(a, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(b, O_CLOEXEC), 0);
    int ifd = open(in, O_RDONLY | O_CLOEXEC);
    int ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int efd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    cr_assert(ifd >= 0 && ofd >= 0 && efd >= 0);
    const char *c1[] = {t_cat, NULL}, *c2[] = {t_cat, NULL};
    struct fc_spawn s1 = {.argv = c1, .fd = {ifd, a[1], 2}};
    struct fc_spawn s2 = {.argv = argv, .fd = {a[0], b[1], efd}};
    struct fc_spawn s3 = {.argv = c2, .fd = {b[0], ofd, 2}};
    pid_t p1, p2, p3;
    cr_assert_eq(fc_spawn(&s1, &p1), FC_OK);
    cr_assert_eq(fc_spawn(&s2, &p2), FC_OK);
    cr_assert_eq(fc_spawn(&s3, &p3), FC_OK);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    close(ifd);
    close(ofd);
    close(efd);
    int r1 = t_wait(p1), r2 = t_wait(p2), r3 = t_wait(p3);
    (void)r1;
    cr_assert_eq(r3, 0, "cat > %s failed", out);
    return r2;
}

/* The source image: raw, SRC_SIZE bytes, with patterned runs (some crossing cluster and
 * block boundaries), explicit zero writes (allocated zeros), random data, and holes. */
static void
t_make_source(const char *raw)
{
    char size[32];
    snprintf(size, sizeof size, "%u", SRC_SIZE);
    T_RUN_OK(t_qemu_img, "create", "-q", "-f", "raw", raw, size);
    T_RUN_OK(t_qemu_io, "-f", "raw", "-c", "write -P 0xab 100k 300k", "-c",
             "write -P 0x11 1M 64k", "-c", "write -P 0 2M 192k", "-c", "write -P 0x5a 2044k 8k",
             "-c", "write -P 0x77 4M 1M", "-c", "write -P 0xc3 5124k 8k", raw);
    /* random bytes, not compressible, from the kernel */
    int r = open("/dev/urandom", O_RDONLY), fd = open(raw, O_WRONLY);
    cr_assert(r >= 0 && fd >= 0);
    char buf[150000];
    cr_assert_eq(read(r, buf, sizeof buf), (ssize_t)sizeof buf);
    cr_assert_eq(pwrite(fd, buf, sizeof buf, 3000000), (ssize_t)sizeof buf);
    cr_assert_eq(pwrite(fd, buf, 4096, SRC_SIZE - 4096), 4096); /* the last partial cluster */
    close(r);
    close(fd);
}

/* qemu-img compare -f A -F B a b == identical */
__attribute__((unused)) static void
t_compare(const char *fa, const char *a, const char *fb, const char *b)
{
    const char *const argv[] = {t_qemu_img, "compare", "-q", "-f", fa, "-F", fb, a, b, NULL};
    int s = t_run(argv);
    cr_assert_eq(s, 0, "qemu-img compare -f %s %s -F %s %s: status %d %s", fa, a, fb, b, s,
                 t_err);
}

/* qemu-img check finds no error (vpc has no checker in qemu-img). */
__attribute__((unused)) static void
t_check(const char *fmt, const char *path)
{
    if (strcmp(fmt, "qcow2") != 0 && strcmp(fmt, "vmdk") != 0)
        return;
    const char *const argv[] = {t_qemu_img, "check", "-q", "-f", fmt, path, NULL};
    int s = t_run(argv);
    cr_assert_eq(s, 0, "qemu-img check -f %s %s: status %d %s", fmt, path, s, t_err);
}

static bool
t_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* No file in the work folder whose name starts with prefix and contains ".tmp-". */
static void
t_no_temp(const char *prefix)
{
    DIR *d = opendir(t_dir);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        cr_assert(!(strncmp(e->d_name, prefix, strlen(prefix)) == 0 &&
                    strstr(e->d_name, ".tmp-")),
                  "a temporary output was left behind: %s", e->d_name);
    closedir(d);
}

#endif
