/* SPDX-License-Identifier: Apache-2.0 */
/* What strict validation costs: parse the docs' Task, TaskEvent and a 1024-task Plan with
 * the proto parsers, next to a bare json_loadb (Jansson alone, the peer) of the same bytes,
 * in the same run, alternating. Prints per-message times and the ratio. Not a ctest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fluid/error.h"
#include "fluid/msg.h"

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char task[] =
    "{\"schema\":\"fluid.task/1\",\"relocation_id\":\"r-20261123-1\",\"task_id\":\"t-sum\","
    "\"idempotency_key\":\"op-42/t-sum\",\"site\":\"default\",\"kind\":\"checksum\","
    "\"stages\":[{\"kind\":\"checksum\",\"args\":[\"--framed\"]},{\"kind\":\"checksum\","
    "\"args\":[\"--framed\"]}],\"timeout_s\":600,\"max_attempts\":3,\"depends_on\":[\"t-fetch\"],"
    "\"framed\":true}";
static const char event[] =
    "{\"schema\":\"fluid.event/1\",\"relocation_id\":\"r-20261123-1\",\"task_id\":\"t-sum\","
    "\"idempotency_key\":\"op-42/t-sum\",\"state\":\"progress\",\"broker\":\"b-node1-4242\","
    "\"site\":\"default\",\"attempt\":1,\"ts\":\"2026-11-23T15:20:01.123Z\",\"progress\":"
    "{\"stage\":0,\"kind\":\"checksum\",\"done\":1048576,\"total\":104857600}}";

static fc_rc parse_task(const char *b, size_t n)
{
    struct fc_task *t = NULL;
    fc_rc rc = fc_task_parse(b, n, &t);
    fc_task_free(t);
    return rc;
}
static fc_rc parse_event(const char *b, size_t n)
{
    struct fc_task_event *e = NULL;
    fc_rc rc = fc_event_parse(b, n, &e);
    fc_event_free(e);
    return rc;
}
static fc_rc parse_plan(const char *b, size_t n)
{
    struct fc_plan *p = NULL;
    fc_rc rc = fc_plan_parse(b, n, &p);
    fc_plan_free(p);
    return rc;
}
static fc_rc bare(const char *b, size_t n)
{
    json_error_t e;
    json_t *j = json_loadb(b, n, JSON_REJECT_DUPLICATES, &e);
    json_decref(j);
    return j ? FC_OK : FC_E_INVALID;
}

static void
bench(const char *name, const char *buf, fc_rc (*fn)(const char *, size_t), int iters)
{
    size_t len = strlen(buf);
    double best_ours = 1e9, best_bare = 1e9;
    for (int round = 0; round < 5; round++) { /* alternate, keep the best of each */
        double t0 = now_s();
        for (int i = 0; i < iters; i++)
            if (fn(buf, len) != FC_OK) {
                fprintf(stderr, "%s: %s\n", name, fc_error_msg());
                exit(1);
            }
        double t1 = now_s();
        for (int i = 0; i < iters; i++)
            bare(buf, len);
        double t2 = now_s();
        if (t1 - t0 < best_ours)
            best_ours = t1 - t0;
        if (t2 - t1 < best_bare)
            best_bare = t2 - t1;
    }
    printf("%-22s %8zu bytes  proto %9.2f us  json_loadb %9.2f us  ratio %.2f\n", name, len,
           best_ours / iters * 1e6, best_bare / iters * 1e6, best_ours / best_bare);
}

int
main(void)
{
    size_t cap = 400000, n = 0;
    char *plan = malloc(cap);
    n += (size_t)snprintf(plan + n, cap - n,
                          "{\"schema\":\"fluid.plan/1\",\"relocation_id\":\"r\",\"tasks\":[");
    for (int i = 0; i < FC_TASKS_MAX; i++)
        n += (size_t)snprintf(plan + n, cap - n,
                              "%s{\"task_id\":\"t%d\",\"stages\":[{\"kind\":\"checksum\","
                              "\"args\":[\"--framed\"]}],\"depends_on\":[%s%d%s]}",
                              i ? "," : "", i, i ? "\"t" : "", i ? i - 1 : 0, i ? "\"" : "");
    snprintf(plan + n, cap - n, "]}");
    /* the first task has "depends_on":[0]: fix it to [] */
    char *z = strstr(plan, "[0]");
    memmove(z + 1, z + 2, strlen(z + 2) + 1);
    bench("Task", task, parse_task, 200000);
    bench("TaskEvent (progress)", event, parse_event, 200000);
    bench("Plan (1024 tasks)", plan, parse_plan, 50);
    free(plan);
    return 0;
}
