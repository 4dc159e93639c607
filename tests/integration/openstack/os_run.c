/* SPDX-License-Identifier: Apache-2.0 */
/* Running fluid-openstack from the tests (see os_run.h). */
#include "os_run.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fluid/cloud/os.h"
#include "fluid/error.h"
#include "fluid/cloud/config.h"
#include "fluid/spawn.h"

static char *
slurp(int fd)
{
    lseek(fd, 0, SEEK_SET);
    size_t cap = 65536, n = 0;
    char *b = malloc(cap + 1);
    ssize_t k;
    while ((k = read(fd, b + n, cap - n)) > 0) {
        n += (size_t)k;
        if (n == cap)
            b = realloc(b, (cap *= 2) + 1);
    }
    b[n] = '\0';
    return b;
}

static int
tmpfd(void)
{
    char path[] = "/tmp/fluid-osr-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    return fd;
}

struct running {
    pid_t pid;
    int efd, errfd;
};

static void
start(struct running *x, int in_fd, int out_fd, const char *const *args)
{
    const char *bin = getenv("FLUID_BIN_DIR");
    cr_assert_not_null(bin, "FLUID_BIN_DIR is not set: run through ctest");
    static char prog[1024];
    snprintf(prog, sizeof prog, "%s/fluid-openstack", bin);
    const char *argv[64] = {prog, "--events-fd", "3"};
    size_t n = 3;
    for (size_t i = 0; args[i]; i++) {
        cr_assert_lt(n, 62);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    x->efd = tmpfd();
    x->errfd = tmpfd();
    struct fc_spawn sp = {.argv = argv, .fd = {in_fd, out_fd, x->errfd}, .pass = &x->efd,
                          .npass = 1};
    cr_assert_eq(fc_spawn(&sp, &x->pid), FC_OK, "%s", fc_error_msg());
}

static void
finish(struct running *x, struct osr *r)
{
    int st = 0;
    cr_assert_eq(waitpid(x->pid, &st, 0), x->pid);
    memset(r, 0, sizeof *r);
    r->exit = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r->events = slurp(x->efd);
    r->err = slurp(x->errfd);
    close(x->efd);
    close(x->errfd);
    for (char *line = r->events; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        json_t *e = json_loads(line, 0, NULL);
        const char *ev = json_string_value(json_object_get(e, "event"));
        if (ev && strcmp(ev, "done") == 0)
            r->result = json_incref(json_object_get(e, "result"));
        if (ev && strcmp(ev, "failed") == 0)
            r->error = json_incref(json_object_get(e, "error"));
        json_decref(e);
        if (!nl)
            break;
        *nl = '\n';
        line = nl + 1;
    }
}

void
osr_run(struct osr *r, int in_fd, int out_fd, const char *const *args)
{
    struct running x;
    start(&x, in_fd, out_fd, args);
    finish(&x, r);
}

void
osr_pipe(struct osr *exp, const char *const *exp_args, struct osr *imp,
         const char *const *imp_args)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    struct running a, b;
    start(&a, -1, p[1], exp_args);
    start(&b, p[0], -1, imp_args);
    close(p[0]);
    close(p[1]);
    finish(&a, exp);
    finish(&b, imp);
}

void
osr_free(struct osr *r)
{
    json_decref(r->result);
    json_decref(r->error);
    free(r->events);
    free(r->err);
    memset(r, 0, sizeof *r);
}

const char *
osr_action(const struct osr *r, const char *kind)
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(r->result, "resources"), i, x) {
        if (strcmp(json_string_value(json_object_get(x, "kind")), kind) == 0)
            return json_string_value(json_object_get(x, "action"));
    }
    return NULL;
}

size_t
osr_count(const struct osr *r, const char *action)
{
    size_t i, n = 0;
    json_t *x;
    json_array_foreach(json_object_get(r->result, "resources"), i, x) {
        if (strcmp(json_string_value(json_object_get(x, "action")), action) == 0)
            n++;
    }
    return n;
}

size_t
osr_count_matching(struct fc_os *os, int svc, const char *path, const char *key,
                   const char *field, const char *sub)
{
    json_t *l = NULL;
    cr_assert_eq(fc_os_list(os, (enum fc_os_service)svc, path, key, 0, &l), FC_OK, "%s",
                 fc_error_msg());
    size_t i, n = 0;
    json_t *x;
    json_array_foreach(l, i, x) {
        const char *v = json_string_value(json_object_get(x, field));
        if (!v)
            v = json_string_value(json_object_get(json_object_get(x, "keypair"), field));
        if (v && strstr(v, sub))
            n++;
    }
    json_decref(l);
    return n;
}

/* ---- plans ---- */


/* Runs one task's stages joined by pipes; returns how many resources were created. */
static size_t
run_task(json_t *task, const char *bin)
{
    json_t *stages = json_object_get(task, "stages");
    size_t n = json_array_size(stages), created = 0;
    pid_t pids[16];
    int efd[16], errfd[16], in = -1;
    char *tj = json_dumps(task, JSON_COMPACT);
    for (size_t i = 0; i < n; i++) {
        json_t *st = json_array_get(stages, i);
        char prog[1024];
        snprintf(prog, sizeof prog, "%s/fluid-%s", bin,
                 json_string_value(json_object_get(st, "kind")));
        const char *argv[80] = {prog, "--task-fd", "3", "--events-fd", "4"};
        size_t k = 5, j;
        json_t *a;
        json_array_foreach(json_object_get(st, "args"), j, a) {
            cr_assert_lt(k, 78);
            argv[k++] = json_string_value(a);
        }
        argv[k] = NULL;
        int tfd = tmpfd();
        cr_assert_eq(write(tfd, tj, strlen(tj)), (ssize_t)strlen(tj));
        lseek(tfd, 0, SEEK_SET);
        efd[i] = tmpfd();
        errfd[i] = tmpfd();
        int p[2] = {-1, -1};
        if (i + 1 < n)
            cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        int pass[2] = {tfd, efd[i]};
        struct fc_spawn sp = {.argv = argv, .fd = {in, p[1], errfd[i]}, .pass = pass,
                              .npass = 2};
        cr_assert_eq(fc_spawn(&sp, &pids[i]), FC_OK, "%s", fc_error_msg());
        close(tfd);
        if (in >= 0)
            close(in);
        if (p[1] >= 0)
            close(p[1]);
        in = p[0];
    }
    free(tj);
    for (size_t i = 0; i < n; i++) {
        int st = 0;
        waitpid(pids[i], &st, 0);
        char ev[65536];
        ssize_t got = pread(efd[i], ev, sizeof ev - 1, 0);
        ev[got > 0 ? got : 0] = '\0';
        close(efd[i]);
        char *err = slurp(errfd[i]);
        close(errfd[i]);
        size_t el = strlen(err);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "task %s stage %zu failed: %s\n%s",
                  json_string_value(json_object_get(task, "task_id")), i, ev,
                  err + (el > 3000 ? el - 3000 : 0));
        free(err);
        for (char *p = strstr(ev, "\"action\":\"created\""); p;
             p = strstr(p + 1, "\"action\":\"created\""))
            created++;
    }
    return created;
}

/* Runs every task once its dependencies ran; returns the resources created. */
size_t
osr_run_plan(json_t *plan)
{
    const char *bin = getenv("FLUID_BIN_DIR");
    json_t *tasks = json_object_get(plan, "tasks"), *done = json_object();
    size_t total = 0, ran = 0, n = json_array_size(tasks);
    while (ran < n) {
        size_t before = ran, i, j;
        json_t *t, *d;
        json_array_foreach(tasks, i, t) {
            const char *id = json_string_value(json_object_get(t, "task_id"));
            bool ready = !json_object_get(done, id);
            json_array_foreach(json_object_get(t, "depends_on"), j, d)
                ready = ready && json_object_get(done, json_string_value(d));
            if (!ready)
                continue;
            json_object_set(t, "relocation_id", json_object_get(plan, "relocation_id"));
            total += run_task(t, bin);
            json_object_set_new(done, id, json_true());
            ran++;
        }
        cr_assert_gt(ran, before, "the plan's dependencies do not resolve");
    }
    json_decref(done);
    return total;
}


/* A YAML double-quoted scalar line. */
static void
yq(FILE *f, const char *indent, const char *k, const char *v)
{
    if (!v)
        return;
    fprintf(f, "%s%s: \"", indent, k);
    for (const char *p = v; *p; p++)
        fprintf(f, *p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
    fprintf(f, "\"\n");
}

void
osr_clouds_yaml(const char *path, const char *const *names, const char *const *extra)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "clouds:\n");
    for (size_t i = 0; names[i]; i++) {
        struct fc_cloud_config *c = NULL;
        cr_assert_eq(fc_cloud_config_load(names[i], NULL, NULL, NULL, NULL, &c), FC_OK, "%s",
                     fc_error_msg());
        fprintf(f, "  %s:\n    auth:\n", names[i]);
        yq(f, "      ", "auth_url", c->auth_url);
        yq(f, "      ", "username", c->username);
        yq(f, "      ", "password", c->password);
        yq(f, "      ", "project_name", c->project_name);
        yq(f, "      ", "project_id", c->project_id);
        yq(f, "      ", "user_domain_name", c->user_domain_name);
        yq(f, "      ", "user_domain_id", c->user_domain_id);
        yq(f, "      ", "project_domain_name", c->project_domain_name);
        yq(f, "      ", "project_domain_id", c->project_domain_id);
        yq(f, "    ", "region_name", c->region_name);
        if (extra && extra[i])
            fputs(extra[i], f);
        fc_cloud_config_free(c);
    }
    fclose(f);
}
