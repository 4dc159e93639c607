/* SPDX-License-Identifier: Apache-2.0 */
/* What the conduit costs per task: a plan of N independent tasks runs through fluid-conduit
 * while this program plays the brokers (takes each task, publishes its done event), timed
 * from submit to the relocation's done event. The peer, in the same run and alternating: the
 * same AMQP traffic without the conduit (N persistent confirmed publishes of the task, their
 * consumption, N confirmed event publishes and their consumption), with fluid_amqp on
 * librabbitmq-c. Prints both and the ratio. Not a ctest: `cmake --build B --target
 * bench-conduit`. Needs FLUID_AMQP_URL (run.sh starts a private node). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fluid/amqp.h"
#include "fluid/error.h"
#include "fluid/msg.h"
#include "fluid/spawn.h"

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
    fprintf(stderr, "bench_conduit: %s: %s\n", what, fc_error_msg());
    exit(1);
}

static struct fc_amqp *
conn(const char *url)
{
    struct fc_amqp_config cfg = {.url = url, .name = "bench-conduit"};
    struct fc_amqp *a = NULL;
    if (fc_amqp_open(&cfg, &a) != FC_OK || fc_amqp_declare_topology(a) != FC_OK)
        die("connect");
    return a;
}

static char *
make_request(const char *rid, int n)
{
    size_t cap = (size_t)n * 120 + 256, len = 0;
    char *b = malloc(cap);
    len += (size_t)snprintf(b + len, cap - len,
                            "{\"schema\":\"fluid.request/1\",\"relocation_id\":\"%s\","
                            "\"idempotency_key\":\"k-%s\",\"plan\":{\"tasks\":[", rid, rid);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(b + len, cap - len,
                                "%s{\"task_id\":\"t%d\",\"stages\":[{\"kind\":\"test\"}]}",
                                i ? "," : "", i);
    snprintf(b + len, cap - len, "]}}");
    return b;
}

/* The conduit's run: submit, play the brokers, wait for relocation.<rid>.state.done. */
static double
with_conduit(const char *url, const char *rid, int n)
{
    struct fc_amqp *a = conn(url), *s = conn(url);
    char key[256];
    snprintf(key, sizeof key, "relocation.%s.state.done", rid);
    const char *keys[] = {key};
    if (fc_amqp_declare_site(a, "default") != FC_OK ||
        fc_amqp_consume(a, "fluid.tasks.default", 200) != FC_OK ||
        fc_amqp_subscribe(s, FC_AMQP_X_EVENTS, keys, 1, 10, NULL) != FC_OK)
        die("subscribe");
    char *req = make_request(rid, n);
    double t0 = now_s();
    struct fc_amqp_msg m = {.exchange = "", .routing_key = FC_AMQP_Q_REQUESTS, .body = req,
                            .len = strlen(req), .mandatory = true};
    if (fc_amqp_publish(a, &m) != FC_OK)
        die("submit");
    int got = 0;
    while (got < n) {
        struct fc_amqp_delivery *d = NULL;
        if (fc_amqp_wait(a, 60000, &d) != FC_OK || !d)
            die("task");
        struct fc_task *t = NULL;
        if (fc_task_parse(d->body, d->len, &t) != FC_OK)
            die("task parse");
        struct fc_task_event e = {.relocation_id = t->relocation_id, .task_id = t->task_id,
                                  .idempotency_key = t->idempotency_key, .state = FC_TS_DONE,
                                  .broker = "bench", .site = "default", .attempt = 1};
        e.result = json_pack("{s:[]}", "stages");
        json_t *j = fc_event_to_json(&e);
        char *body = fc_msg_dump(j), rk[256];
        fc_amqp_rk_task_event(rk, sizeof rk, t->relocation_id, t->task_id, "done");
        struct fc_amqp_msg em = {.exchange = FC_AMQP_X_EVENTS, .routing_key = rk, .body = body,
                                 .len = strlen(body), .message_id = t->idempotency_key};
        if (fc_amqp_publish_nowait(a, &em) != FC_OK)
            die("event");
        free(body);
        json_decref(j);
        json_decref(e.result);
        fc_task_free(t);
        fc_amqp_ack(a, d);
        fc_amqp_delivery_free(d);
        if (++got % 100 == 0 && fc_amqp_confirm_wait(a) != FC_OK)
            die("confirms");
    }
    if (fc_amqp_confirm_wait(a) != FC_OK)
        die("confirms");
    struct fc_amqp_delivery *d = NULL;
    if (fc_amqp_wait(s, 120000, &d) != FC_OK || !d)
        die("done event");
    double t = now_s() - t0;
    fc_amqp_ack(s, d);
    fc_amqp_delivery_free(d);
    fc_amqp_close(a);
    fc_amqp_close(s);
    free(req);
    return t;
}

/* The peer: the same messages through RabbitMQ with nothing in between. */
static double
raw(const char *url, int n)
{
    struct fc_amqp *a = conn(url);
    const char *qt = "bench.raw.tasks", *qe = "bench.raw.events";
    fc_amqp_declare_record(a, qt, FC_AMQP_X_CONTROL, "bench.raw.tasks", 0, NULL);
    fc_amqp_declare_record(a, qe, FC_AMQP_X_CONTROL, "bench.raw.events", 0, NULL);
    fc_amqp_queue_purge(a, qt);
    fc_amqp_queue_purge(a, qe);
    char body[400];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    double t0 = now_s();
    for (int i = 0; i < n; i++) { /* the conduit confirms each task before the next */
        struct fc_amqp_msg m = {.exchange = "", .routing_key = qt, .body = body, .len = 300};
        if (fc_amqp_publish(a, &m) != FC_OK)
            die("raw publish");
    }
    if (fc_amqp_consume(a, qt, 200) != FC_OK || fc_amqp_consume(a, qe, 200) != FC_OK)
        die("raw consume");
    int tasks = 0, events = 0;
    while (tasks < n || events < n) {
        struct fc_amqp_delivery *d = NULL;
        if (fc_amqp_wait(a, 60000, &d) != FC_OK || !d)
            die("raw wait");
        if (strcmp(d->queue, qt) == 0) {
            tasks++;
            struct fc_amqp_msg m = {.exchange = "", .routing_key = qe, .body = body, .len = 400};
            if (fc_amqp_publish_nowait(a, &m) != FC_OK)
                die("raw event");
            if (tasks % 100 == 0 && fc_amqp_confirm_wait(a) != FC_OK)
                die("raw confirms");
        } else {
            events++;
        }
        fc_amqp_ack(a, d);
        fc_amqp_delivery_free(d);
    }
    double t = now_s() - t0;
    fc_amqp_queue_delete(a, qt);
    fc_amqp_queue_delete(a, qe);
    fc_amqp_close(a);
    return t;
}

int
main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_conduit BIN_DIR RUN_DIR NTASKS (FLUID_AMQP_URL set)\n");
        return 2;
    }
    const char *url = getenv("FLUID_AMQP_URL");
    int n = atoi(argv[3]);
    if (!url || n < 1 || n > FC_TASKS_MAX)
        return 2;
    char prog[2048], state[2048], log[2048];
    snprintf(prog, sizeof prog, "%s/fluid-conduit", argv[1]);
    snprintf(state, sizeof state, "%s/conduit-state", argv[2]);
    snprintf(log, sizeof log, "%s/conduit.log", argv[2]);
    char par[16];
    snprintf(par, sizeof par, "%d", n);
    const char *cargv[] = {prog, "--state-dir", state, "--max-parallel", par, NULL};
    FILE *lf = fopen(log, "w");
    struct fc_spawn sp = {.argv = cargv, .fd = {-1, fileno(lf), fileno(lf)}};
    pid_t pid;
    if (fc_spawn(&sp, &pid) != FC_OK)
        die("spawn fluid-conduit");
    fclose(lf);
    struct fc_amqp *w = conn(url);
    for (;;) { /* ready when it consumes fluid.requests */
        uint32_t msgs = 0, cons = 0;
        if (fc_amqp_queue_info(w, FC_AMQP_Q_REQUESTS, &msgs, &cons) == FC_OK && cons > 0)
            break;
        usleep(50000);
    }
    fc_amqp_close(w);
    double c[3], r[3];
    for (int round = 0; round < 3; round++) {
        char rid[32];
        snprintf(rid, sizeof rid, "bench-%d-%d", (int)getpid(), round);
        c[round] = with_conduit(url, rid, n);
        r[round] = raw(url, n);
        printf("round %d: conduit %.3f s (%.3f ms/task)  raw AMQP %.3f s (%.3f ms/task)  "
               "ratio %.2f\n", round, c[round], c[round] * 1e3 / n, r[round],
               r[round] * 1e3 / n, c[round] / r[round]);
        fflush(stdout);
    }
    kill(pid, SIGTERM);
    struct rusage ru;
    int st;
    wait4(pid, &st, 0, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("fluid-conduit CPU: %.3f s in all for %d tasks: %.3f ms of CPU per task\n", cpu,
           3 * n, cpu * 1e3 / (3.0 * n));
    return 0;
}
