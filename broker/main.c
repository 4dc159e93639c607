/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-broker: consumes fluid.tasks.<site>, runs each task's Viaduct, publishes TaskEvents
 * and heartbeats. One thread, one poll loop: signals, the AMQP socket, every running chain's
 * descriptors and the timers. See fluid-broker.1 and docs/broker.md. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "fluid/error.h"
#include "fluid/log.h"

#ifndef FLUID_LIBEXECDIR
#define FLUID_LIBEXECDIR "/usr/libexec/fluidcloud"
#endif

#define MAX_FDS 4096

uint64_t
broker_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
default_id(struct broker *b)
{
    if (gethostname(b->host, sizeof b->host) != 0 || !b->host[0])
        snprintf(b->host, sizeof b->host, "localhost");
    b->host[sizeof b->host - 1] = '\0';
    if (b->cfg.broker_id)
        return;
    char id[FC_ID_MAX];
    snprintf(id, sizeof id, "%.80s-%ld", b->host, (long)getpid());
    for (char *p = id; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '-' || *p == '_';
        if (!ok)
            *p = '-';
    }
    if (!((id[0] >= 'a' && id[0] <= 'z') || (id[0] >= 'A' && id[0] <= 'Z') ||
          (id[0] >= '0' && id[0] <= '9')))
        id[0] = 'b';
    b->cfg.broker_id = strdup(id);
}

static void
heartbeat(struct broker *b)
{
    char **kinds = fc_viaduct_kinds(b->migdir);
    size_t nk = 0;
    while (kinds && kinds[nk])
        nk++;
    char ts[40];
    struct fc_heartbeat h = {.broker_id = b->cfg.broker_id,
                             .site = b->cfg.site,
                             .host = b->host,
                             .version = FLUID_VERSION,
                             .ts = fc_msg_now(ts, sizeof ts),
                             .capacity = b->stopping ? 0 : b->cfg.capacity,
                             .running = tasks_running(b),
                             .interval_s = b->cfg.heartbeat_s,
                             .kinds = kinds,
                             .nkinds = nk};
    json_t *j = fc_heartbeat_to_json(&h);
    char *body = j ? fc_msg_dump(j) : NULL;
    json_decref(j);
    char rk[FC_AMQP_NAME_MAX];
    if (body && fc_amqp_rk_heartbeat(rk, sizeof rk, b->cfg.site, b->cfg.broker_id)) {
        struct fc_amqp_msg m = {.exchange = FC_AMQP_X_EVENTS, .routing_key = rk, .body = body,
                                .len = strlen(body), .message_id = b->cfg.broker_id};
        fc_amqp_publish_nowait(b->a, &m);
    }
    free(body);
    fc_viaduct_kinds_free(kinds);
}

static void
dispatch(struct broker *b, struct fc_amqp_delivery *d)
{
    if (d->exchange && !strcmp(d->exchange, FC_AMQP_X_CONTROL)) {
        if (d->routing_key && !strncmp(d->routing_key, "resume.", 7))
            task_resume_message(b, d);
        else
            task_cancel_message(b, d);
        return;
    }
    if (b->stopping) {
        fc_amqp_nack(b->a, d, true);
        fc_amqp_delivery_free(d);
        return;
    }
    task_delivery(b, d);
}

static void
begin_stop(struct broker *b)
{
    b->stopping++;
    if (b->stopping == 1) {
        fc_log(FC_INFO, FC_MSG("stopping: no new tasks; waiting for the running ones"),
               FC_U64("running", tasks_running(b)), FC_U64("drain_s", b->cfg.drain_s));
        if (b->consuming) {
            fc_amqp_cancel_consumer(b->a, b->queue);
            b->consuming = false;
        }
        b->stop_deadline_ns = broker_now_ns() + (uint64_t)b->cfg.drain_s * 1000000000u;
        if (b->cfg.drain_s == 0)
            tasks_requeue_all(b);
        if (fc_amqp_connected(b->a))
            heartbeat(b);
    } else if (b->stopping == 2) {
        fc_log(FC_INFO, FC_MSG("stopping now: running tasks go back to the queue"));
        tasks_requeue_all(b);
        b->stop_deadline_ns = broker_now_ns();
    }
}

int
main(int argc, char **argv)
{
    fc_log_init("fluid-broker");
    signal(SIGPIPE, SIG_IGN);
    struct broker b;
    memset(&b, 0, sizeof b);
    bool exit_now = false;
    fc_rc rc = broker_config_load(&b.cfg, argc, argv, &exit_now);
    if (rc != FC_OK || exit_now) {
        if (rc != FC_OK)
            fc_log(FC_ERROR, FC_MSG(fc_error_msg()), FC_STR("code", fc_rc_name(rc)));
        broker_config_free(&b.cfg);
        return rc == FC_OK ? 0 : (int)rc;
    }
    default_id(&b);
    /* migrators need no RabbitMQ credentials: keep the URL out of their environment */
    extern char **environ;
    size_t ne = 0;
    for (char **p = environ; *p; p++)
        ne++;
    b.env = calloc(ne + 1, sizeof *b.env);
    for (size_t i = 0, k = 0; b.env && i < ne; i++) {
        if (strncmp(environ[i], "FLUID_AMQP_URL=", 15) != 0)
            b.env[k++] = environ[i];
    }
    b.migdir = fc_viaduct_migrator_dir(b.cfg.migrator_dir_from_flag ? b.cfg.migrator_dir : NULL,
                                       b.cfg.migrator_dir, FLUID_LIBEXECDIR);
    const char *url = fc_amqp_url_pick(b.cfg.amqp_from_flag ? b.cfg.amqp_url : NULL,
                                       b.cfg.amqp_url);
    char where[512];
    fc_amqp_url_redact(url, where, sizeof where);

    char name[300];
    snprintf(name, sizeof name, "fluid-broker %s", b.cfg.broker_id);
    /* a short connect timeout: a reconnect attempt to a host that does not answer blocks
     * the loop (and the supervision of running chains) that long */
    struct fc_amqp_config ac = {.url = url, .ca_file = b.cfg.amqp_ca_file, .name = name,
                                .reconnect = true, .connect_timeout_ms = 2000};
    if ((rc = fc_amqp_new(&ac, &b.a)) != FC_OK) {
        fc_log(FC_ERROR, FC_MSG(fc_error_msg()), FC_STR("code", fc_rc_name(rc)));
        broker_config_free(&b.cfg);
        free(b.migdir);
        free(b.env);
        return (int)rc;
    }
    fc_amqp_q_tasks(b.queue, sizeof b.queue, b.cfg.site);
    const char *ckeys[] = {FC_AMQP_BK_CANCEL, FC_AMQP_BK_RESUME};
    /* remembered, then done by every (re)connect */
    if ((rc = fc_amqp_declare_topology(b.a)) != FC_OK ||
        (rc = fc_amqp_declare_site(b.a, b.cfg.site)) != FC_OK ||
        (rc = fc_amqp_consume(b.a, b.queue, (uint16_t)b.cfg.capacity)) != FC_OK ||
        (rc = fc_amqp_subscribe(b.a, FC_AMQP_X_CONTROL, ckeys, 2, 64, b.control)) != FC_OK) {
        fc_log(FC_ERROR, FC_MSG(fc_error_msg()), FC_STR("code", fc_rc_name(rc)));
        fc_amqp_close(b.a);
        broker_config_free(&b.cfg);
        free(b.migdir);
        free(b.env);
        return (int)rc;
    }
    b.consuming = true;
    char **kinds = fc_viaduct_kinds(b.migdir);
    char klist[512] = "";
    for (size_t i = 0; kinds && kinds[i]; i++)
        snprintf(klist + strlen(klist), sizeof klist - strlen(klist), "%s%s", i ? "," : "",
                 kinds[i]);
    fc_viaduct_kinds_free(kinds);
    fc_log(FC_INFO, FC_MSG("fluid-broker starting"), FC_STR("broker", b.cfg.broker_id),
           FC_STR("site", b.cfg.site), FC_U64("capacity", b.cfg.capacity),
           FC_STR("amqp", where), FC_STR("migrators", b.migdir), FC_STR("kinds", klist));
    if (fc_amqp_connect(b.a) != FC_OK)
        fc_log(FC_WARN, FC_MSG("RabbitMQ not reachable yet; retrying"),
               FC_STR("error", fc_error_msg()));

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

    static struct pollfd pfd[MAX_FDS];
    static struct btask *owner[MAX_FDS];
    bool requeued = false;
    for (;;) {
        if (b.stopping && b.ntasks == 0)
            break;
        /* a third SIGTERM, or RabbitMQ unreachable 30 s past the drain time: leave anyway
         * (unconfirmed outcomes are not lost: the tasks are redelivered and run again) */
        if (b.stopping >= 3 || (requeued && broker_now_ns() > b.stop_deadline_ns + 30000000000u &&
                                !fc_amqp_connected(b.a))) {
            fc_log(FC_WARN, FC_MSG("leaving with tasks not settled; RabbitMQ redelivers them"),
                   FC_U64("tasks", b.ntasks));
            break;
        }
        uint64_t now = broker_now_ns();
        if (b.stopping && !requeued && now >= b.stop_deadline_ns) {
            fc_log(FC_WARN, FC_MSG("drain time over: running tasks go back to the queue"));
            tasks_requeue_all(&b);
            requeued = true;
        }
        /* timers first: they may start chains, whose descriptors this poll must include */
        int t = tasks_timers(&b);
        size_t n = 0;
        pfd[n++] = (struct pollfd){sfd, POLLIN, 0};
        int afd = fc_amqp_fd(b.a);
        pfd[n++] = (struct pollfd){afd, POLLIN, 0};
        size_t base = n;
        n += tasks_pollfds(&b, pfd + base, MAX_FDS - base, owner);
        int timeout = 200; /* heartbeats of the AMQP connection, reconnects */
        if (t >= 0 && t < timeout)
            timeout = t;
        if (fc_amqp_connected(b.a) && b.next_hb_ns > now &&
            (b.next_hb_ns - now) / 1000000u < (uint64_t)timeout)
            timeout = (int)((b.next_hb_ns - now) / 1000000u);
        if (fc_amqp_pending(b.a))
            timeout = 0; /* frames read while waiting for a confirm or an RPC */
        if (poll(pfd, n, timeout) < 0 && errno != EINTR)
            break;
        if (pfd[0].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                begin_stop(&b);
        }
        for (;;) {
            struct fc_amqp_delivery *d = NULL;
            fc_amqp_wait(b.a, 0, &d);
            if (!d)
                break;
            dispatch(&b, d);
        }
        if (fc_amqp_connected(b.a) && fc_amqp_generation(b.a) != b.gen_seen) {
            if (b.gen_seen)
                tasks_reconnected(&b);
            b.gen_seen = fc_amqp_generation(b.a);
            b.next_hb_ns = 0;
        }
        tasks_step(&b, pfd + base, n - base, owner);
        tasks_timers(&b);
        now = broker_now_ns();
        if (fc_amqp_connected(b.a) && now >= b.next_hb_ns) {
            heartbeat(&b);
            b.next_hb_ns = now + (uint64_t)b.cfg.heartbeat_s * 1000000000u;
        }
    }
    fc_log(FC_INFO, FC_MSG("fluid-broker stopped"));
    fc_amqp_confirm_wait(b.a);
    fc_amqp_close(b.a);
    for (size_t i = 0; i < b.ncancels; i++) {
        free(b.cancels[i].relocation_id);
        free(b.cancels[i].task_id);
    }
    free(b.cancels);
    free(b.migdir);
    free(b.env);
    broker_config_free(&b.cfg);
    if (sfd >= 0)
        close(sfd);
    return 0;
}
