/* SPDX-License-Identifier: Apache-2.0 */
/* What fluidctl's subcommands share: the AMQP URL and configuration, exit statuses, the
 * connection, and the status RPC with the conduit. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "config.h"
#include "ctl.h"
#include "fluid/error.h"

const char *fc_ctl_amqp_flag;
const char *fc_ctl_config_path;

static fc_rc
conf_set(void *arg, const char *key, const char *value)
{
    char **url = arg;
    if (strcmp(key, "amqp_url") != 0)
        return FC_ERR(FC_E_INVALID, "unknown key \"%.64s\" (amqp_url)", key);
    free(*url);
    *url = strdup(value);
    return FC_OK;
}

const char *
fc_ctl_amqp_url(void)
{
    static char *conf_url;
    static bool loaded;
    if (!loaded) {
        loaded = true;
        fc_rc rc = FC_OK;
        if (fc_ctl_config_path) {
            rc = fc_conf_load(fc_ctl_config_path, true, conf_set, &conf_url);
        } else {
            char path[4096];
            const char *home = getenv("HOME");
            bool found = false;
            if (home) {
                snprintf(path, sizeof path, "%s/.config/fluidcloud/fluidctl.conf", home);
                if (access(path, F_OK) == 0) {
                    found = true;
                    rc = fc_conf_load(path, true, conf_set, &conf_url);
                }
            }
            if (!found)
                rc = fc_conf_load(FLUID_SYSCONFDIR "/fluidctl.conf", false, conf_set, &conf_url);
        }
        if (rc != FC_OK) {
            fprintf(stderr, "fluidctl: %s\n", fc_error_msg());
            return NULL;
        }
    }
    return fc_amqp_url_pick(fc_ctl_amqp_flag, conf_url);
}

int
fc_ctl_exit_for(fc_rc rc)
{
    switch (rc) {
    case FC_OK: return FC_CTL_OK;
    case FC_E_INVALID:
    case FC_E_UNSUPPORTED: return FC_CTL_INVALID;
    case FC_E_NET:
    case FC_E_AUTH:
    case FC_E_VERIFY:
    case FC_E_REMOTE: return FC_CTL_UNREACHABLE;
    case FC_E_NOTFOUND: return FC_CTL_NOTFOUND;
    case FC_E_TIMEOUT: return FC_CTL_TIMEOUT;
    case FC_E_CANCELLED: return FC_CTL_CANCELLED;
    default: return FC_CTL_INTERNAL;
    }
}

int
fc_ctl_fail(const char *cmd, fc_rc rc)
{
    fprintf(stderr, "fluidctl %s: %s\n", cmd, fc_error_msg());
    return fc_ctl_exit_for(rc);
}

void
fc_ctl_getopt_reset(void)
{
    optind = 0; /* glibc: full reinitialisation */
    opterr = 1;
}

uint64_t
fc_ctl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int
fc_ctl_exit_for_state(enum fc_reloc_state s)
{
    switch (s) {
    case FC_RS_DONE: return FC_CTL_OK;
    case FC_RS_FAILED: return FC_CTL_FAILED;
    case FC_RS_CANCELLED: return FC_CTL_CANCELLED;
    default: return FC_CTL_OK;
    }
}

fc_rc
fc_ctl_connect(struct fc_amqp **out)
{
    *out = NULL;
    const char *url = fc_ctl_amqp_url();
    if (!url)
        return FC_ERR(FC_E_INVALID, "configuration error");
    struct fc_amqp_config cfg = {.url = url, .name = "fluidctl"};
    struct fc_amqp *a = NULL;
    fc_rc rc = fc_amqp_open(&cfg, &a);
    if (rc == FC_OK)
        rc = fc_amqp_declare_topology(a);
    if (rc == FC_OK)
        rc = fc_amqp_declare_record(a, FC_CTL_Q_RPC, FC_AMQP_X_CONTROL, FC_CTL_RK_RPC, 0, NULL);
    if (rc != FC_OK) {
        fc_amqp_close(a);
        return rc;
    }
    *out = a;
    return FC_OK;
}

fc_rc
fc_ctl_reply_queue(struct fc_amqp *a, char *name)
{
    return fc_amqp_subscribe(a, FC_AMQP_X_CONTROL, NULL, 0, 8, name);
}

fc_rc
fc_ctl_status_send(struct fc_amqp *a, const char *rid, const char *reply_to, char *corr)
{
    static unsigned seq;
    snprintf(corr, 64, "c-%d-%ld-%u", (int)getpid(), (long)time(NULL), ++seq);
    struct fc_status_req q = {.relocation_id = (char *)rid, .correlation_id = corr,
                              .reply_to = (char *)reply_to};
    json_auto_t *j = fc_status_req_to_json(&q);
    char *body = j ? fc_msg_dump(j) : NULL;
    if (!body)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    struct fc_amqp_msg m = {.exchange = "", .routing_key = FC_CTL_Q_RPC, .body = body,
                            .len = strlen(body), .message_id = corr, .transient = true,
                            .mandatory = true};
    fc_rc rc = fc_amqp_publish(a, &m);
    free(body);
    return rc;
}

fc_rc
fc_ctl_status_match(const struct fc_amqp_delivery *d, const char *corr, struct fc_status **out)
{
    *out = NULL;
    struct fc_status *s = NULL;
    if (fc_status_parse(d->body, d->len, &s) != FC_OK)
        return FC_ERR(FC_E_NOTFOUND, "not a status reply: %s", fc_error_msg());
    if (strcmp(s->correlation_id, corr) != 0) {
        fc_status_free(s);
        return FC_ERR(FC_E_NOTFOUND, "reply to another request");
    }
    *out = s;
    return FC_OK;
}
