/* SPDX-License-Identifier: Apache-2.0 */
/* Benchmark of fluid-broker against raw librabbitmq-c, in the same run on the same node:
 *   raw:    persistent publish with confirms + consume/ack, and a request/reply round trip
 *   broker: publish -> done latency of one task (trivial one-stage viaduct, fluid-test),
 *           1,000 queued tasks drained with capacity 8 (tasks/s, broker CPU per task,
 *           loss and duplicate check through the outcome records and the done events).
 * Run by `cmake --build BUILD --target bench-broker` (not part of ctest). */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fluid/amqp.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/msg.h"
#include "fluid/sha256.h"
#include "fluid/spawn.h"

static const char *url, *bindir, *rundir;
static pid_t beam = -1;       /* the RabbitMQ node, for its CPU time */
static double raw_rt_cpu_ms;  /* RabbitMQ CPU per raw round trip */
static void cpu_of(pid_t pid, double *self, double *kids);
static int ntasks = 1000, nlat = 200, capacity = 8;

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static pid_t current_broker = -1;

static void
die(const char *what)
{
    fprintf(stderr, "bench: %s: %s\n", what, fc_error_msg());
    if (current_broker > 0) {
        kill(current_broker, SIGKILL);
        waitpid(current_broker, NULL, 0);
    }
    exit(1);
}

static int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

/* ---- raw librabbitmq-c ---- */

static amqp_connection_state_t
raw_open(void)
{
    struct amqp_connection_info ci;
    char *u = strdup(url);
    amqp_parse_url(u, &ci);
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    if (amqp_socket_open(s, ci.host, ci.port) != AMQP_STATUS_OK) {
        fprintf(stderr, "bench: raw connect failed\n");
        exit(1);
    }
    const char *vhost = ci.vhost && *ci.vhost ? ci.vhost : "/";
    amqp_rpc_reply_t r = amqp_login(c, vhost, 0, 131072, 10, AMQP_SASL_METHOD_PLAIN, ci.user,
                                    ci.password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "bench: raw login failed\n");
        exit(1);
    }
    amqp_channel_open(c, 1);
    amqp_confirm_select(c, 1);
    amqp_get_rpc_reply(c);
    free(u);
    return c;
}

static void
raw_declare(amqp_connection_state_t c, const char *q)
{
    amqp_queue_declare(c, 1, amqp_cstring_bytes(q), 0, 1, 0, 0, amqp_empty_table);
    amqp_get_rpc_reply(c);
    amqp_queue_purge(c, 1, amqp_cstring_bytes(q));
    amqp_get_rpc_reply(c);
}

/* Waits for confirms until `want` publishes are acked. */
static void
raw_confirms(amqp_connection_state_t c, uint64_t want, uint64_t *acked)
{
    while (*acked < want) {
        amqp_frame_t f;
        if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK)
            exit(1);
        if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            *acked = a->multiple ? a->delivery_tag : *acked + 1;
            if (!a->multiple && a->delivery_tag > *acked)
                *acked = a->delivery_tag;
        }
    }
}

static void
raw_publish(amqp_connection_state_t c, const char *q, const char *body)
{
    amqp_basic_properties_t p = {0};
    p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
    p.delivery_mode = 2;
    p.content_type = amqp_cstring_bytes("application/json");
    amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(q), 0, 0, &p,
                       amqp_cstring_bytes(body));
}

static void
bench_raw(const char *body, double *pub_rate, double *cons_rate, double *rt50, double *rt99)
{
    const int n = 10000;
    char q[64], q2[64];
    snprintf(q, sizeof q, "bench.raw.%d", (int)getpid());
    snprintf(q2, sizeof q2, "bench.raw.reply.%d", (int)getpid());
    amqp_connection_state_t p = raw_open(), s = raw_open();
    raw_declare(p, q);
    raw_declare(p, q2);
    uint64_t acked = 0;
    double t0 = now_s();
    for (int i = 1; i <= n; i++) {
        raw_publish(p, q, body);
        if (i % 100 == 0)
            raw_confirms(p, (uint64_t)i, &acked);
    }
    *pub_rate = n / (now_s() - t0);

    amqp_basic_qos(s, 1, 0, 100, 0);
    amqp_basic_consume(s, 1, amqp_cstring_bytes(q), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    amqp_get_rpc_reply(s);
    t0 = now_s();
    for (int i = 0; i < n; i++) {
        amqp_envelope_t e;
        amqp_maybe_release_buffers(s);
        if (amqp_consume_message(s, &e, NULL, 0).reply_type != AMQP_RESPONSE_NORMAL)
            exit(1);
        amqp_basic_ack(s, 1, e.delivery_tag, 0);
        amqp_destroy_envelope(&e);
    }
    *cons_rate = n / (now_s() - t0);
    amqp_channel_close(s, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(s, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(s);

    /* round trip: request (persistent, confirmed) -> a consumer that publishes a reply
     * (persistent, confirmed) and acks -> the requester consumes the reply */
    s = raw_open();
    amqp_connection_state_t srv = raw_open();
    amqp_basic_qos(srv, 1, 0, 8, 0);
    amqp_basic_consume(srv, 1, amqp_cstring_bytes(q), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    amqp_get_rpc_reply(srv);
    amqp_basic_consume(s, 1, amqp_cstring_bytes(q2), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    amqp_get_rpc_reply(s);
    double *lat = calloc((size_t)nlat, sizeof *lat);
    uint64_t cacked = 0, sacked = 0, sseq = 0;
    double b0 = 0, b1 = 0, bk = 0;
    if (beam > 0)
        cpu_of(beam, &b0, &bk);
    for (int i = 0; i < nlat; i++) {
        double a = now_s();
        raw_publish(s, q, body);
        raw_confirms(s, (uint64_t)i + 1, &cacked);
        amqp_envelope_t e;
        amqp_maybe_release_buffers(srv);
        if (amqp_consume_message(srv, &e, NULL, 0).reply_type != AMQP_RESPONSE_NORMAL)
            exit(1);
        raw_publish(srv, q2, body);
        raw_confirms(srv, ++sseq, &sacked);
        amqp_basic_ack(srv, 1, e.delivery_tag, 0);
        amqp_destroy_envelope(&e);
        amqp_maybe_release_buffers(s);
        amqp_envelope_t r;
        amqp_rpc_reply_t rr;
        do {
            rr = amqp_consume_message(s, &r, NULL, 0);
            if (rr.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                rr.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
                amqp_frame_t f; /* a late confirm */
                amqp_simple_wait_frame(s, &f);
                continue;
            }
            break;
        } while (1);
        if (rr.reply_type != AMQP_RESPONSE_NORMAL)
            exit(1);
        amqp_basic_ack(s, 1, r.delivery_tag, 0);
        amqp_destroy_envelope(&r);
        lat[i] = now_s() - a;
    }
    if (beam > 0) {
        cpu_of(beam, &b1, &bk);
        raw_rt_cpu_ms = (b1 - b0) * 1000 / nlat;
    }
    *rt50 = pct(lat, nlat, 0.50) * 1000;
    *rt99 = pct(lat, nlat, 0.99) * 1000;
    free(lat);
    amqp_queue_delete(p, 1, amqp_cstring_bytes(q), 0, 0);
    amqp_get_rpc_reply(p);
    amqp_queue_delete(p, 1, amqp_cstring_bytes(q2), 0, 0);
    amqp_get_rpc_reply(p);
    amqp_connection_state_t cs[] = {p, s, srv};
    for (int i = 0; i < 3; i++) {
        amqp_connection_close(cs[i], AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(cs[i]);
    }
}

/* ---- the broker ---- */

static pid_t
start_broker(const char *site, const char *id)
{
    char bin[1024], log[1200], cap[16];
    snprintf(bin, sizeof bin, "%s/fluid-broker", bindir);
    snprintf(log, sizeof log, "%s/%s.log", rundir, id);
    snprintf(cap, sizeof cap, "%d", capacity);
    const char *argv[] = {bin, "--site", site, "--broker-id", id, "--capacity", cap,
                          "--progress-ms", "1000", NULL};
    /* the URL holds a password: through the environment, never argv */
    static char env_url[1100];
    snprintf(env_url, sizeof env_url, "FLUID_AMQP_URL=%s", url);
    const char *env[] = {env_url, "PATH=/usr/bin:/bin", NULL};
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    struct fc_spawn sp = {.argv = argv, .env = env, .fd = {-1, fd, fd}};
    pid_t pid;
    if (fc_spawn(&sp, &pid) != FC_OK)
        die("spawn fluid-broker");
    close(fd);
    current_broker = pid;
    return pid;
}

/* utime+stime (own) and cutime+cstime (waited-for children: the migrators) in seconds */
static void
cpu_of(pid_t pid, double *self, double *kids)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    *self = *kids = 0;
    if (!f || !fgets(buf, sizeof buf, f)) {
        if (f)
            fclose(f);
        return;
    }
    fclose(f);
    char *p = strrchr(buf, ')');
    unsigned long long v[20] = {0};
    /* fields after the name: state(3) ... utime(14) stime(15) cutime(16) cstime(17) */
    int k = 0;
    for (char *t = strtok(p + 2, " "); t && k < 20; t = strtok(NULL, " "))
        v[k++] = strtoull(t, NULL, 10);
    double hz = (double)sysconf(_SC_CLK_TCK);
    *self = (double)(v[11] + v[12]) / hz;
    *kids = (double)(v[13] + v[14]) / hz;
}

static void
task_json(char *buf, size_t cap, const char *rid, int i, const char *site)
{
    snprintf(buf, cap,
             "{\"schema\":\"fluid.task/1\",\"relocation_id\":\"%s\",\"task_id\":\"t-%d\","
             "\"idempotency_key\":\"%s/t-%d\",\"site\":\"%s\",\"kind\":\"test\","
             "\"stages\":[{\"kind\":\"test\",\"args\":[]}],\"timeout_s\":60,\"max_attempts\":1}",
             rid, i, rid, i, site);
}

static struct fc_amqp *
client(const char *rid)
{
    struct fc_amqp_config c = {.url = url};
    struct fc_amqp *a = NULL;
    if (fc_amqp_open(&c, &a) != FC_OK || fc_amqp_declare_topology(a) != FC_OK)
        die("connect");
    char key[256];
    snprintf(key, sizeof key, "relocation.%s.task.*.done", rid);
    const char *keys[] = {key};
    if (fc_amqp_subscribe(a, FC_AMQP_X_EVENTS, keys, 1, 1000, NULL) != FC_OK)
        die("subscribe");
    return a;
}

static int
wait_done(struct fc_amqp *a, unsigned char *seen, int *dups)
{
    struct fc_amqp_delivery *d = NULL;
    while (!d) {
        if (fc_amqp_wait(a, 10000, &d) != FC_OK || !d)
            die("no done event within 10 s");
    }
    struct fc_task_event *e = NULL;
    int i = -1;
    if (fc_event_parse(d->body, d->len, &e) == FC_OK && e->state == FC_TS_DONE)
        i = atoi(e->task_id + 2);
    fc_event_free(e);
    fc_amqp_ack(a, d);
    fc_amqp_delivery_free(d);
    if (i >= 0 && seen) {
        if (seen[i])
            (*dups)++;
        seen[i] = 1;
    }
    return i;
}

int
main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_broker URL BINDIR RUNDIR [ntasks]\n");
        return 2;
    }
    url = argv[1];
    bindir = argv[2];
    rundir = argv[3];
    if (argc > 4)
        ntasks = atoi(argv[4]);
    fc_log_min_level = FC_WARN;
    char site[64], rid[64], body[2048];
    snprintf(site, sizeof site, "bench%d", (int)getpid());
    task_json(body, sizeof body, "r-bench", 0, site);

    {
        char pf[1200];
        snprintf(pf, sizeof pf, "%s/rabbitmq/rabbitmq.pid", rundir);
        FILE *f = fopen(pf, "r");
        long v = 0;
        if (f && fscanf(f, "%ld", &v) == 1)
            beam = (pid_t)v;
        if (f)
            fclose(f);
    }
    double pub, cons, rt50, rt99;
    bench_raw(body, &pub, &cons, &rt50, &rt99);

    /* latency: one task at a time */
    snprintf(rid, sizeof rid, "r-lat-%d", (int)getpid());
    struct fc_amqp *a = client(rid);
    if (fc_amqp_declare_site(a, site) != FC_OK)
        die("declare site");
    pid_t br = start_broker(site, "bench-lat");
    char rk[128];
    snprintf(rk, sizeof rk, "%s.test", site);
    double *lat = calloc((size_t)nlat, sizeof *lat);
    for (int i = -10; i < nlat; i++) { /* 10 warm-up tasks */
        char tid_rid[64];
        snprintf(tid_rid, sizeof tid_rid, "%s", rid);
        task_json(body, sizeof body, tid_rid, i + 10, site);
        struct fc_amqp_msg m = {.exchange = FC_AMQP_X_TASKS, .routing_key = rk, .body = body,
                                .len = strlen(body)};
        double t0 = now_s();
        if (fc_amqp_publish(a, &m) != FC_OK)
            die("publish");
        wait_done(a, NULL, NULL);
        if (i >= 0)
            lat[i] = now_s() - t0;
    }
    double l50 = pct(lat, nlat, 0.5) * 1000, l99 = pct(lat, nlat, 0.99) * 1000;
    kill(br, SIGTERM);
    waitpid(br, NULL, 0);
    fc_amqp_close(a);

    /* throughput: ntasks queued first, then one broker with capacity 8 drains them */
    snprintf(rid, sizeof rid, "r-thr-%d", (int)getpid());
    a = client(rid);
    for (int i = 0; i < ntasks; i++) {
        task_json(body, sizeof body, rid, i, site);
        struct fc_amqp_msg m = {.exchange = FC_AMQP_X_TASKS, .routing_key = rk, .body = body,
                                .len = strlen(body)};
        if (fc_amqp_publish_nowait(a, &m) != FC_OK)
            die("publish");
        if (i % 100 == 99 && fc_amqp_confirm_wait(a) != FC_OK)
            die("confirms");
    }
    if (fc_amqp_confirm_wait(a) != FC_OK)
        die("confirms");
    unsigned char *seen = calloc((size_t)ntasks, 1);
    int dups = 0, got = 0;
    double r0s = 0, r0k = 0, r1s = 0, r1k = 0;
    if (beam > 0)
        cpu_of(beam, &r0s, &r0k);
    double t0 = now_s();
    br = start_broker(site, "bench-thr");
    double c0s, c0k;
    cpu_of(br, &c0s, &c0k);
    while (got < ntasks) {
        wait_done(a, seen, &dups);
        got++;
    }
    double dt = now_s() - t0, c1s, c1k;
    cpu_of(br, &c1s, &c1k);
    if (beam > 0)
        cpu_of(beam, &r1s, &r1k);
    kill(br, SIGTERM);
    waitpid(br, NULL, 0);
    int missing = 0, records_bad = 0;
    for (int i = 0; i < ntasks; i++) {
        missing += !seen[i];
        char key[128], q[128], hex[65];
        uint8_t h[32];
        snprintf(key, sizeof key, "%s/t-%d", rid, i);
        struct fc_sha256 s;
        fc_sha256_init(&s);
        fc_sha256_update(&s, key, strlen(key));
        fc_sha256_final(&s, h);
        fc_sha256_free(&s);
        fc_hex(h, 16, hex);
        snprintf(q, sizeof q, "fluid.outcome.%s", hex);
        uint32_t n = 0;
        if (fc_amqp_queue_info(a, q, &n, NULL) != FC_OK || n != 1)
            records_bad++;
        fc_amqp_queue_delete(a, q);
    }
    fc_amqp_close(a);

    double tps = ntasks / dt;
    printf("| measure | value |\n|---|---|\n");
    printf("| raw librabbitmq-c: persistent publish, confirms per 100 | %.0f msg/s |\n", pub);
    printf("| raw librabbitmq-c: consume + ack, prefetch 100 | %.0f msg/s |\n", cons);
    printf("| raw librabbitmq-c: request/reply round trip (both persistent, confirmed) p50 / p99 "
           "| %.3f / %.3f ms |\n", rt50, rt99);
    printf("| fluid-broker: publish -> done event, one task at a time, p50 / p99 | %.3f / %.3f ms "
           "|\n", l50, l99);
    printf("| fluid-broker: %d queued tasks drained, capacity %d | %.0f tasks/s (%.2f s) |\n",
           ntasks, capacity, tps, dt);
    printf("| fluid-broker CPU per task (its own process) | %.3f ms |\n",
           (c1s - c0s) * 1000 / ntasks);
    printf("| migrator CPU per task (fluid-test processes) | %.3f ms |\n",
           (c1k - c0k) * 1000 / ntasks);
    if (beam > 0)
        printf("| RabbitMQ CPU: per raw round trip / per broker task (drain) | %.3f / %.3f ms |\n",
               raw_rt_cpu_ms, (r1s - r0s) * 1000 / ntasks);
    printf("| ratio latency p50 broker / raw round trip | %.1fx |\n", l50 / rt50);
    printf("| ratio throughput raw consume+ack / broker tasks | %.1fx |\n", cons / tps);
    printf("| loss / duplicates / bad outcome records | %d / %d / %d |\n", missing, dups,
           records_bad);
    free(seen);
    free(lat);
    return missing || dups || records_bad ? 1 : 0;
}
