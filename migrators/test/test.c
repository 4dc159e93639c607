/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-test: a migrator for the spine's fault tests only (built, never installed). It does
 * what its options say, in this order: write --pidfile, --stderr lines, --progress events,
 * --sleep (or --hang), pass stdin to stdout (--pass), then exit as told (--exit, --fail,
 * --fail-times, --no-event, --bad-event). SIGTERM ends a sleep unless --ignore-term. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fluid/error.h"
#include "fluid/migrator.h"
#include "fluid/stream.h"

static long
num(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0) {
        fprintf(stderr, "fluid-test: %s: \"%s\" is not a number\n", opt, s);
        exit(FC_E_INVALID);
    }
    return v;
}

/* Counts runs in file: returns how many runs came before this one. */
static long
bump(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return 0;
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    long before = n > 0 ? strtol(buf, NULL, 10) : 0;
    int len = snprintf(buf, sizeof buf, "%ld\n", before + 1);
    if (pwrite(fd, buf, (size_t)len, 0) != len)
        before = 0;
    close(fd);
    return before;
}

static void
sleep_ms(long ms, bool ignore_term)
{
    struct timespec end, now;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += ms / 1000;
    end.tv_nsec += (ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    for (;;) {
        if (fc_cancel_requested && !ignore_term)
            return;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
            return;
        struct timespec step = {0, 10000000L};
        nanosleep(&step, NULL);
    }
}

int
main(int argc, char **argv)
{
    struct fc_migrator m;
    fc_rc rc = fc_migrator_init(&m, "fluid-test", &argc, argv);
    if (rc != FC_OK)
        return fc_migrator_finish(&m, rc);
    static const struct option opts[] = {
        {"sleep", required_argument, NULL, 's'},  {"hang", no_argument, NULL, 'H'},
        {"ignore-term", no_argument, NULL, 'I'},  {"exit", required_argument, NULL, 'x'},
        {"fail", required_argument, NULL, 'f'},   {"message", required_argument, NULL, 'm'},
        {"fail-times", required_argument, NULL, 'F'},
        {"state", required_argument, NULL, 'S'},  {"stderr", required_argument, NULL, 'e'},
        {"progress", required_argument, NULL, 'p'}, {"pass", no_argument, NULL, 'P'},
        {"progress-unit", required_argument, NULL, 'u'},
        {"no-event", no_argument, NULL, 'n'},     {"bad-event", no_argument, NULL, 'b'},
        {"pidfile", required_argument, NULL, 'i'}, {NULL, 0, NULL, 0}};
    long sleep = 0, exit_code = 0, progress = 0, fail_times = -1;
    bool hang = false, ignore_term = false, pass = false, no_event = false, bad_event = false;
    const char *fail = NULL, *message = "fluid-test failed as told", *state = NULL;
    const char *pidfile = NULL, *unit = NULL;
    const char *errs[32];
    int nerrs = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': sleep = num("--sleep", optarg); break;
        case 'H': hang = true; break;
        case 'I': ignore_term = true; break;
        case 'x': exit_code = num("--exit", optarg); break;
        case 'f': fail = optarg; break;
        case 'm': message = optarg; break;
        case 'F': fail_times = num("--fail-times", optarg); break;
        case 'S': state = optarg; break;
        case 'e': if (nerrs < 32) errs[nerrs++] = optarg; break;
        case 'p': progress = num("--progress", optarg); break;
        case 'u': unit = optarg; break;
        case 'P': pass = true; break;
        case 'n': no_event = true; break;
        case 'b': bad_event = true; break;
        case 'i': pidfile = optarg; break;
        default:
            return fc_migrator_finish(&m, FC_ERR(FC_E_INVALID, "unknown option"));
        }
    }
    if (ignore_term)
        signal(SIGTERM, SIG_IGN);
    if (pidfile) {
        FILE *f = fopen(pidfile, "w");
        if (f) {
            fprintf(f, "%ld\n", (long)getpid());
            fclose(f);
        }
    }
    for (int i = 0; i < nerrs; i++)
        fprintf(stderr, "%s\n", errs[i]);
    for (long i = 0; i < progress; i++)
        fc_event_progress(&m, (uint64_t)i + 1, (uint64_t)progress,
                          unit ? json_pack("{s:s,s:s,s:s}", "unit", unit, "state", "WAITING",
                                           "waiting_for", "fluid-test")
                               : NULL,
                          true);
    if (hang) {
        for (;;) {
            if (fc_cancel_requested && !ignore_term)
                return fc_migrator_finish(&m, FC_ERR(FC_E_CANCELLED, "fluid-test: cancelled"));
            pause();
        }
    }
    if (sleep) {
        sleep_ms(sleep, ignore_term);
        if (fc_cancel_requested && !ignore_term)
            return fc_migrator_finish(&m, FC_ERR(FC_E_CANCELLED, "fluid-test: cancelled"));
    }
    uint64_t moved = 0;
    if (pass) {
        char buf[65536];
        for (;;) {
            ssize_t n = read(0, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            if (fc_write_all(1, buf, (size_t)n) != FC_OK)
                return fc_migrator_finish(&m, FC_E_IO);
            moved += (uint64_t)n;
        }
    }
    if (state && fail_times >= 0) {
        long before = bump(state);
        if (before < fail_times)
            return fc_migrator_finish(&m, FC_ERR(FC_E_NET, "fluid-test: failing run %ld of %ld",
                                                 before + 1, fail_times));
    }
    if (bad_event && m.events_fd >= 0) {
        const char bad[] = "{\"event\":\"done\", not json\n";
        fc_write_all(m.events_fd, bad, sizeof bad - 1);
    }
    if (no_event) {
        json_decref(m.task);
        return (int)exit_code;
    }
    if (fail) {
        fc_rc code;
        if (!fc_rc_from_name(fail, &code) || code == FC_OK)
            code = FC_E_INTERNAL;
        return fc_migrator_finish(&m, FC_ERR(code, "%s", message));
    }
    if (exit_code) {
        json_decref(m.task);
        return (int)exit_code;
    }
    fc_event_done(&m, json_pack("{s:I,s:I}", "bytes_in", (json_int_t)moved, "bytes_out",
                                (json_int_t)moved));
    return fc_migrator_finish(&m, FC_OK);
}
