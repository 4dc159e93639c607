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
