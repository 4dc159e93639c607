/* SPDX-License-Identifier: Apache-2.0 */
/* fluidctl status ID (asks the conduit over fluid.conduit.rpc) and fluidctl cancel ID
 * (Cancel on fluid.control for the brokers, and to the conduit's queue). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "ctl.h"
#include "fluid/error.h"

static void
print_status(const struct fc_status *s, bool json)
{
    if (json) {
        json_auto_t *j = fc_status_to_json(s);
        char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (t)
            printf("%s\n", t);
        free(t);
        return;
    }
    if (!s->found) {
        printf("%s: unknown to the conduit\n", s->relocation_id);
        return;
    }
    printf("relocation %s: %s (created %s, updated %s)\n", s->relocation_id,
           fc_reloc_state_name(s->state), s->created, s->updated);
    if (s->error)
        printf("  error: %s\n", s->error);
    printf("  %-24s %-10s %-10s %-10s %s\n", "TASK", "KIND", "SITE", "STATE", "ATTEMPT");
    for (size_t i = 0; i < s->ntasks; i++) {
        const struct fc_status_task *t = &s->tasks[i];
        printf("  %-24s %-10s %-10s %-10s %u\n", t->task_id, t->kind, t->site, t->state,
               t->attempt);
        if (t->error)
            printf("    %s\n", t->error);
    }
}

int
fc_ctl_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    bool json = false;
    double timeout = 10;
    int ch;
    while ((ch = getopt_long(argc, argv, "jt:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j': json = true; break;
        case 't': timeout = atof(optarg); break;
        case 'h':
            printf("usage: fluidctl status [--json] [--timeout SECONDS] RELOCATION_ID\n");
            return FC_CTL_OK;
        default: return FC_CTL_USAGE;
        }
    }
    if (optind != argc - 1 || timeout <= 0) {
        fprintf(stderr, "usage: fluidctl status [--json] [--timeout SECONDS] RELOCATION_ID\n");
        return FC_CTL_USAGE;
    }
    const char *rid = argv[optind];
    if (!fc_id_valid(rid)) {
        fprintf(stderr, "fluidctl status: invalid relocation id \"%s\"\n", rid);
        return FC_CTL_USAGE;
    }
    struct fc_amqp *a = NULL;
    fc_rc rc = fc_ctl_connect(&a);
    char q[FC_AMQP_NAME_MAX], corr[64];
    if (rc == FC_OK)
        rc = fc_ctl_reply_queue(a, q);
    if (rc == FC_OK)
        rc = fc_ctl_status_send(a, rid, q, corr);
    uint64_t deadline = fc_ctl_now_ms() + (uint64_t)(timeout * 1000);
    struct fc_status *s = NULL;
    while (rc == FC_OK && !s) {
        uint64_t now = fc_ctl_now_ms();
        if (now >= deadline) {
            rc = FC_ERR(FC_E_TIMEOUT, "no answer from the conduit within %.1f s (is "
                        "fluid-conduit running?)", timeout);
            break;
        }
        struct fc_amqp_delivery *d = NULL;
        rc = fc_amqp_wait(a, (int)(deadline - now), &d);
        if (rc == FC_OK && d) {
            fc_ctl_status_match(d, corr, &s);
            fc_amqp_ack(a, d);
            fc_amqp_delivery_free(d);
        }
    }
    fc_amqp_close(a);
    if (rc != FC_OK)
        return fc_ctl_fail("status", rc);
    print_status(s, json);
    int code = !s->found ? FC_CTL_NOTFOUND
               : fc_reloc_state_final(s->state) ? fc_ctl_exit_for_state(s->state)
                                                : FC_CTL_OK;
    fc_status_free(s);
    return code;
}

int
fc_ctl_cancel(int argc, char **argv)
{
    static const struct option opts[] = {
        {"task", required_argument, NULL, 't'}, {"reason", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    const char *task = NULL, *reason = "cancelled with fluidctl";
    int ch;
    while ((ch = getopt_long(argc, argv, "t:r:h", opts, NULL)) != -1) {
        switch (ch) {
        case 't': task = optarg; break;
        case 'r': reason = optarg; break;
        case 'h':
            printf("usage: fluidctl cancel [--task TASK_ID] [--reason TEXT] RELOCATION_ID\n");
            return FC_CTL_OK;
        default: return FC_CTL_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: fluidctl cancel [--task TASK_ID] [--reason TEXT] RELOCATION_ID\n");
        return FC_CTL_USAGE;
    }
    struct fc_cancel c = {.relocation_id = argv[optind], .task_id = (char *)task,
                          .reason = (char *)reason};
    json_auto_t *j = fc_cancel_to_json(&c);
    char *body = j ? fc_msg_dump(j) : NULL;
    /* what we send must pass our own parser (ids, reason length) */
    fc_rc rc = body ? fc_msg_validate(body, strlen(body), FC_SCHEMA_CANCEL)
                    : FC_ERR(FC_E_NOMEM, "out of memory");
    if (rc != FC_OK) {
        free(body);
        return fc_ctl_fail("cancel", rc);
    }
    struct fc_amqp *a = NULL;
    rc = fc_ctl_connect(&a);
    char rk[FC_AMQP_NAME_MAX];
    fc_amqp_rk_cancel(rk, sizeof rk, c.relocation_id);
    if (rc == FC_OK) {
        struct fc_amqp_msg m = {.exchange = FC_AMQP_X_CONTROL, .routing_key = rk, .body = body,
                                .len = strlen(body)};
        rc = fc_amqp_publish(a, &m);
    }
    if (rc == FC_OK) {
        struct fc_amqp_msg m = {.exchange = "", .routing_key = FC_CTL_Q_RPC, .body = body,
                                .len = strlen(body), .mandatory = true};
        rc = fc_amqp_publish(a, &m);
    }
    fc_amqp_close(a);
    free(body);
    if (rc != FC_OK)
        return fc_ctl_fail("cancel", rc);
    printf("cancel sent for %s%s%s\n", c.relocation_id, task ? " task " : "", task ? task : "");
    return FC_CTL_OK;
}
