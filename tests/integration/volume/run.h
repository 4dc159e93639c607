/* SPDX-License-Identifier: Apache-2.0 */
/* Runs fluid-volume as a child (fc_spawn, argv only) with its events on fd 3, collecting
 * stderr and the event lines; can feed stdin from a file up to a limit and call back on each
 * event (the kill tests cut the connection from there). */
#ifndef VOLUME_TEST_RUN_H
#define VOLUME_TEST_RUN_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fluid/sha256.h"
#include "fluid/spawn.h"

struct run {
    const char *argv[40];
    int argc;
    int stdin_fd;           /* given to the child as is (-1: /dev/null) unless feed_fd >= 0 */
    int stdout_fd;          /* -1: /dev/null */
    int feed_fd;            /* >= 0: the runner copies it into the child's stdin */
    uint64_t feed_limit;    /* stop feeding at this many bytes until raised */
    uint64_t fed;
    void (*on_event)(struct run *r, json_t *ev);
    void (*on_idle)(struct run *r); /* called about every 200 ms and after each read */
    void *ctx;
    char err[1 << 16];
    size_t errlen;
    json_t *done_result;    /* the done event's result */
    char failed_code[32];
    char failed_msg[2048];
    int exit_code;
    pid_t pid;              /* the child, while run_go runs */
    int info_helper;        /* number of info events with mode helper / sftp */
    int info_sftp;
    char hash_record[160];  /* the start event's hash_record ("used", why not, or "") */
};

static inline void
run_init(struct run *r, const char *bin_volume)
{
    memset(r, 0, sizeof *r);
    r->stdin_fd = -1;
    r->stdout_fd = -1;
    r->feed_fd = -1;
    r->feed_limit = UINT64_MAX;
    r->argv[r->argc++] = bin_volume;
}

static inline void
run_arg(struct run *r, const char *a)
{
    cr_assert_lt(r->argc, 38);
    r->argv[r->argc++] = a;
}

static inline void
run_line(struct run *r, char *line)
{
    json_error_t je;
    json_t *ev = json_loads(line, 0, &je);
    cr_assert_not_null(ev, "event is not JSON: %s", line);
    const char *kind = json_string_value(json_object_get(ev, "event"));
    cr_assert_not_null(kind, "event without a kind: %s", line);
    if (!strcmp(kind, "done")) {
        r->done_result = json_incref(json_object_get(ev, "result"));
    } else if (!strcmp(kind, "failed")) {
        json_t *e = json_object_get(ev, "error");
        snprintf(r->failed_code, sizeof r->failed_code, "%s",
                 json_string_value(json_object_get(e, "code")));
        snprintf(r->failed_msg, sizeof r->failed_msg, "%s",
                 json_string_value(json_object_get(e, "message")));
    } else if (!strcmp(kind, "info")) {
        const char *m = json_string_value(json_object_get(ev, "mode"));
        if (m && !strcmp(m, "helper"))
            r->info_helper++;
        if (m && !strcmp(m, "sftp"))
            r->info_sftp++;
        const char *hr = json_string_value(json_object_get(ev, "hash_record"));
        if (hr)
            snprintf(r->hash_record, sizeof r->hash_record, "%s", hr);
    }
    if (r->on_event)
        r->on_event(r, ev);
    json_decref(ev);
}

/* Runs to completion; returns the exit code. */
static inline int
run_go(struct run *r)
{
    int ev[2], er[2], in[2] = {-1, -1};
    cr_assert_eq(pipe2(ev, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(er, O_CLOEXEC), 0);
    if (r->feed_fd >= 0)
        cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
    run_arg(r, NULL);
    r->argc--;
    signal(SIGPIPE, SIG_IGN);
    struct fc_spawn sp = {.argv = r->argv,
                          .fd = {r->feed_fd >= 0 ? in[0] : r->stdin_fd, r->stdout_fd, er[1]},
                          .pass = &ev[1], .npass = 1};
    pid_t pid;
    cr_assert_eq(fc_spawn(&sp, &pid), FC_OK, "spawn %s", r->argv[0]);
    r->pid = pid;
    close(ev[1]);
    close(er[1]);
    if (in[0] >= 0)
        close(in[0]);
    int win = in[1];
    if (win >= 0)
        fcntl(win, F_SETFL, O_NONBLOCK);
    char line[1 << 16];
    size_t ll = 0;
    static char fbuf[1 << 16];
    size_t fpos = 0, flen = 0;
    bool ev_open = true, er_open = true;
    while (ev_open || er_open) {
        struct pollfd p[3] = {{ev_open ? ev[0] : -1, POLLIN, 0},
                              {er_open ? er[0] : -1, POLLIN, 0},
                              {win >= 0 && r->fed < r->feed_limit ? win : -1, POLLOUT, 0}};
        int n = poll(p, 3, 200);
        if (r->on_idle)
            r->on_idle(r);
        if (n < 0 && errno == EINTR)
            continue;
        if (p[0].revents) {
            char b[4096];
            ssize_t k = read(ev[0], b, sizeof b);
            if (k <= 0) {
                ev_open = false;
            } else {
                for (ssize_t i = 0; i < k; i++) {
                    if (b[i] == '\n') {
                        line[ll] = 0;
                        run_line(r, line);
                        ll = 0;
                    } else if (ll + 1 < sizeof line) {
                        line[ll++] = b[i];
                    }
                }
            }
        }
        if (p[1].revents) {
            ssize_t k = read(er[0], r->err + r->errlen, sizeof r->err - 1 - r->errlen);
            if (k <= 0)
                er_open = false;
            else
                r->errlen += (size_t)k;
            r->err[r->errlen] = 0;
        }
        if (win >= 0 && p[2].revents) {
            if (p[2].revents & (POLLERR | POLLHUP)) {
                close(win);
                win = -1;
                continue;
            }
            if (fpos == flen) {
                uint64_t room = r->feed_limit - r->fed;
                ssize_t k = read(r->feed_fd, fbuf, room < sizeof fbuf ? (size_t)room : sizeof fbuf);
                if (k <= 0) {
                    close(win);
                    win = -1;
                    continue;
                }
                fpos = 0;
                flen = (size_t)k;
            }
            ssize_t k = write(win, fbuf + fpos, flen - fpos);
            if (k < 0 && errno != EAGAIN) {
                close(win);
                win = -1;
            } else if (k > 0) {
                fpos += (size_t)k;
                r->fed += (uint64_t)k;
            }
        }
    }
    if (win >= 0)
        close(win);
    close(ev[0]);
    close(er[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st), "fluid-volume died: status %d; stderr: %s", st, r->err);
    r->exit_code = WEXITSTATUS(st);
    return r->exit_code;
}

static inline uint64_t
result_u64(struct run *r, const char *key)
{
    cr_assert_not_null(r->done_result, "no done event; stderr: %s", r->err);
    json_t *v = json_object_get(r->done_result, key);
    cr_assert(json_is_integer(v), "done result has no %s", key);
    return (uint64_t)json_integer_value(v);
}

static inline void
run_free(struct run *r)
{
    json_decref(r->done_result);
    r->done_result = NULL;
}

/* SHA-256 of a whole file, hex. */
static inline void
file_sha(const char *path, char hex[65])
{
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0, "open %s", path);
    struct fc_sha256 h = {0};
    cr_assert_eq(fc_sha256_init(&h), FC_OK);
    static uint8_t b[4 << 20];
    ssize_t n;
    while ((n = read(fd, b, sizeof b)) > 0)
        fc_sha256_update(&h, b, (size_t)n);
    close(fd);
    uint8_t d[32];
    fc_sha256_final(&h, d);
    fc_sha256_free(&h);
    fc_hex(d, 32, hex);
}

/* fluid-volume's chunk-tree digest of a file, hex, computed independently of its code:
 * SHA-256 over the SHA-256 of each 1 MiB chunk (the last one may be shorter). */
static inline void
file_tree_sha(const char *path, char hex[65])
{
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0, "open %s", path);
    struct fc_sha256 h = {0}, c = {0};
    cr_assert_eq(fc_sha256_init(&h), FC_OK);
    static uint8_t b[1 << 20];
    for (;;) {
        size_t got = 0;
        ssize_t n;
        while (got < sizeof b && (n = read(fd, b + got, sizeof b - got)) > 0)
            got += (size_t)n;
        if (!got)
            break;
        uint8_t d[32];
        cr_assert_eq(fc_sha256_init(&c), FC_OK);
        fc_sha256_update(&c, b, got);
        fc_sha256_final(&c, d);
        fc_sha256_free(&c);
        fc_sha256_update(&h, d, 32);
    }
    close(fd);
    uint8_t d[32];
    fc_sha256_final(&h, d);
    fc_sha256_free(&h);
    fc_hex(d, 32, hex);
}

/* Deterministic non-zero filler (xorshift), fast enough for hundreds of MiB. */
static inline void
fill(uint8_t *b, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i + 8 <= len; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(b + i, &x, 8);
    }
}

/* A file of `size` bytes: data runs of `run` bytes at every `stride` bytes, holes between
 * (stride == run: dense). */
static inline void
make_image(const char *path, uint64_t size, uint64_t run, uint64_t stride, uint64_t seed)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0, "create %s", path);
    cr_assert_eq(ftruncate(fd, (off_t)size), 0);
    uint8_t *b = malloc(run);
    for (uint64_t off = 0; off + run <= size; off += stride) {
        fill(b, run, seed + off);
        cr_assert_eq(pwrite(fd, b, run, (off_t)off), (ssize_t)run);
    }
    free(b);
    close(fd);
}

#endif
