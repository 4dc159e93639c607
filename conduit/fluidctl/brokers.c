/* SPDX-License-Identifier: Apache-2.0 */
/* fluidctl brokers: listens to BrokerHeartbeats (broker.*.*.heartbeat on fluid.events) for
 * about two heartbeat intervals and prints who is alive. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "ctl.h"
#include "fluid/error.h"

struct seen {
    struct fc_heartbeat *hb;
    char *body;
};

int
fc_ctl_brokers(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"wait", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    bool json = false;
    double wait = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "jw:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j': json = true; break;
        case 'w': wait = atof(optarg); break;
        case 'h':
            printf("usage: fluidctl brokers [--json] [--wait SECONDS]\n"
                   "Listens for two heartbeat intervals (default: until 2 x the longest\n"
                   "interval_s heard, at least 4.5 s) and lists the brokers heard.\n");
            return FC_CTL_OK;
        default: return FC_CTL_USAGE;
        }
    }
    if (optind != argc || wait < 0) {
        fprintf(stderr, "usage: fluidctl brokers [--json] [--wait SECONDS]\n");
        return FC_CTL_USAGE;
    }
    struct fc_amqp *a = NULL;
    fc_rc rc = fc_ctl_connect(&a);
    const char *keys[] = {FC_AMQP_BK_HEARTBEATS};
    if (rc == FC_OK)
        rc = fc_amqp_subscribe(a, FC_AMQP_X_EVENTS, keys, 1, 256, NULL);
    if (rc != FC_OK) {
        fc_amqp_close(a);
        return fc_ctl_fail("brokers", rc);
    }
    uint64_t start = fc_ctl_now_ms();
    uint64_t listen_ms = wait > 0 ? (uint64_t)(wait * 1000) : 4500;
    struct seen *s = NULL;
    size_t n = 0;
    while (fc_ctl_now_ms() - start < listen_ms) {
        struct fc_amqp_delivery *d = NULL;
        uint64_t left = listen_ms - (fc_ctl_now_ms() - start);
        if ((rc = fc_amqp_wait(a, (int)(left > 500 ? 500 : left), &d)) != FC_OK)
            break;
        if (!d)
            continue;
        struct fc_heartbeat *hb = NULL;
        if (fc_heartbeat_parse(d->body, d->len, &hb) == FC_OK) {
            size_t i = 0;
            while (i < n && strcmp(s[i].hb->broker_id, hb->broker_id) != 0)
                i++;
            if (i == n) {
                struct seen *ns = realloc(s, (n + 1) * sizeof *ns);
                if (ns) {
                    s = ns;
                    s[n++] = (struct seen){NULL, NULL};
                }
            }
            if (i < n) {
                fc_heartbeat_free(s[i].hb);
                free(s[i].body);
                s[i].hb = hb;
                s[i].body = strndup(d->body, d->len);
                hb = NULL;
                uint64_t want = 2000ull * s[i].hb->interval_s + 500;
                if (wait <= 0 && want > listen_ms)
                    listen_ms = want < 30000 ? want : 30000;
            }
            fc_heartbeat_free(hb);
        }
        fc_amqp_ack(a, d);
        fc_amqp_delivery_free(d);
    }
    fc_amqp_close(a);
    if (rc != FC_OK)
        return fc_ctl_fail("brokers", rc);
    if (!json)
        printf("%-28s %-12s %-20s %8s %8s  %s\n", "BROKER", "SITE", "HOST", "CAPACITY",
               "RUNNING", "KINDS");
    for (size_t i = 0; i < n; i++) {
        const struct fc_heartbeat *h = s[i].hb;
        if (json) {
            printf("%s\n", s[i].body ? s[i].body : "");
        } else {
            printf("%-28s %-12s %-20s %8u %8u  ", h->broker_id, h->site, h->host, h->capacity,
                   h->running);
            for (size_t k = 0; k < h->nkinds; k++)
                printf("%s%s", k ? "," : "", h->kinds[k]);
            printf("\n");
        }
        fc_heartbeat_free(s[i].hb);
        free(s[i].body);
    }
    free(s);
    if (n == 0) {
        fprintf(stderr, "fluidctl brokers: no heartbeat heard in %.1f s\n", listen_ms / 1000.0);
        return FC_CTL_NOTFOUND;
    }
    return FC_CTL_OK;
}
