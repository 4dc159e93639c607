/* SPDX-License-Identifier: Apache-2.0 */
/* The conduit's info/cleanup RPC from fluidctl, and the overview and cleanup tables. */
#include "crpc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "fluid/error.h"
#include "rpc.h"

fc_rc
fc_ctl_creq_send(struct fc_amqp *a, const char *rid, const char *action, const char *reply_to,
                 char *corr)
{
    static unsigned seq;
    snprintf(corr, 64, "c-%d-%ld-%u", (int)getpid(), (long)time(NULL), ++seq);
    struct fc_creq q;
    memset(&q, 0, sizeof q);
    snprintf(q.relocation_id, sizeof q.relocation_id, "%s", rid);
    snprintf(q.correlation_id, sizeof q.correlation_id, "%s", corr);
    snprintf(q.reply_to, sizeof q.reply_to, "%s", reply_to);
    snprintf(q.action, sizeof q.action, "%s", action);
    json_t *j = fc_creq_to_json(&q);
    char *body = j ? fc_msg_dump(j) : NULL;
    json_decref(j);
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
fc_ctl_creq_match(const struct fc_amqp_delivery *d, const char *corr, json_t **out)
{
    *out = NULL;
    json_t *j = NULL;
    if (fc_msg_load(d->body, d->len, &j) != FC_OK)
        return FC_ERR(FC_E_NOTFOUND, "not a conduit reply: %s", fc_error_msg());
    const char *schema = json_string_value(json_object_get(j, "schema"));
    const char *c = json_string_value(json_object_get(j, "correlation_id"));
    if (!schema || strcmp(schema, FC_CONDUIT_SCHEMA_CREPLY) != 0 || !c || strcmp(c, corr) != 0) {
        json_decref(j);
        return FC_ERR(FC_E_NOTFOUND, "not the reply awaited");
    }
    *out = j;
    return FC_OK;
}

fc_rc
fc_ctl_conduit_call(const char *rid, const char *action, double timeout, json_t **out)
{
    *out = NULL;
    struct fc_amqp *a = NULL;
    char q[FC_AMQP_NAME_MAX], corr[64];
    fc_rc rc = fc_ctl_connect(&a);
    if (rc == FC_OK)
        rc = fc_ctl_reply_queue(a, q);
    if (rc == FC_OK)
        rc = fc_ctl_creq_send(a, rid, action, q, corr);
    uint64_t deadline = fc_ctl_now_ms() + (uint64_t)(timeout * 1000);
    while (rc == FC_OK && !*out) {
        uint64_t now = fc_ctl_now_ms();
        if (now >= deadline) {
            rc = FC_ERR(FC_E_TIMEOUT, "no answer from the conduit within %.0f s (is "
                        "fluid-conduit running?)", timeout);
            break;
        }
        struct fc_amqp_delivery *d = NULL;
        uint64_t left = deadline - now;
        rc = fc_amqp_wait(a, left > 1000 ? 1000 : (int)left, &d);
        if (rc == FC_OK && d) {
            fc_ctl_creq_match(d, corr, out);
            fc_amqp_ack(a, d);
            fc_amqp_delivery_free(d);
        }
    }
    fc_amqp_close(a);
    return rc;
}

static const char *
js(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* A JSON value as short text into buf. */
static const char *
text(const json_t *v, char *buf, size_t cap)
{
    if (!v || json_is_null(v))
        return "-";
    if (json_is_string(v))
        return json_string_value(v);
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    snprintf(buf, cap, "%s", t ? t : "?");
    free(t);
    return buf;
}

void
fc_ctl_print_overview(FILE *f, const json_t *ov)
{
    if (!ov || json_is_null(ov)) {
        fprintf(f, "overview: none\n");
        return;
    }
    if (js(ov, "error"))
        fprintf(f, "overview: %s\n", js(ov, "error"));
    const json_t *diffs = json_object_get(ov, "differences");
    fprintf(f, "overview of %s (%s -> %s): %lld fields compared, %zu difference(s)\n",
            js(ov, "relocation_id") ? js(ov, "relocation_id") : "?",
            js(ov, "source") ? js(ov, "source") : "?", js(ov, "target") ? js(ov, "target") : "?",
            (long long)json_integer_value(json_object_get(ov, "compared")),
            json_array_size(diffs));
    size_t i;
    json_t *e;
    fprintf(f, "  %-30s %-36s %s\n", "SOURCE SERVER", "TARGET SERVER", "TARGET ID");
    json_array_foreach(json_object_get(ov, "servers"), i, e)
        fprintf(f, "  %-30s %-36s %s\n", js(e, "source_name") ? js(e, "source_name") : "?",
                js(e, "target_name") ? js(e, "target_name") : "(missing)",
                js(e, "target_id") ? js(e, "target_id") : "-");
    if (json_array_size(diffs)) {
        fprintf(f, "  %-16s %-24s %-22s %-28s %s\n", "KIND", "NAME", "FIELD", "SOURCE", "TARGET");
        json_array_foreach(diffs, i, e) {
            char a[512], b[512];
            fprintf(f, "  %-16s %-24s %-22s %-28s %s\n", js(e, "kind"), js(e, "name"),
                    js(e, "field"), text(json_object_get(e, "source"), a, sizeof a),
                    text(json_object_get(e, "target"), b, sizeof b));
        }
    }
    const json_t *ann = json_object_get(ov, "announced");
    if (json_array_size(ann)) {
        fprintf(f, "  announced by the plan (not differences):\n");
        json_array_foreach(ann, i, e) {
            char a[512], b[512];
            fprintf(f, "  %-16s %-24s %-22s %-28s %-12s (%s)\n", js(e, "kind"),
                    js(e, "name") ? js(e, "name") : "", js(e, "field"),
                    text(json_object_get(e, "source"), a, sizeof a),
                    text(json_object_get(e, "target"), b, sizeof b),
                    js(e, "note") ? js(e, "note") : "");
        }
    }
    const json_t *u = json_object_get(ov, "usage");
    if (u) {
        fprintf(f, "  usage (os-simple-tenant-usage):\n");
        const char *sides[] = {"source", "target"};
        for (int k = 0; k < 2; k++) {
            const json_t *side = json_object_get(u, sides[k]);
            if (js(side, "error"))
                fprintf(f, "  %-7s unavailable: %s\n", sides[k], js(side, "error"));
            json_t *s;
            size_t n;
            json_array_foreach(json_object_get(side, "servers"), n, s) {
                char v[64], m[64], g[64];
                fprintf(f, "  %-7s %-30s %9.4f h  vcpus %s  ram %s MB  disk %s GB  %s\n",
                        sides[k], js(s, "name") ? js(s, "name") : js(s, "id"),
                        json_number_value(json_object_get(s, "hours")),
                        text(json_object_get(s, "vcpus"), v, sizeof v),
                        text(json_object_get(s, "memory_mb"), m, sizeof m),
                        text(json_object_get(s, "local_gb"), g, sizeof g),
                        js(s, "state") ? js(s, "state") : "");
            }
        }
    }
    const json_t *im = json_object_get(ov, "intermediates");
    if (json_is_true(json_object_get(im, "kept")))
        fprintf(f, "  intermediate images: kept (options.keep_intermediate)\n");
    else if (im) {
        fprintf(f, "  intermediate images: %zu deleted, %zu error(s)\n",
                json_array_size(json_object_get(im, "deleted")),
                json_array_size(json_object_get(im, "errors")));
        json_array_foreach(json_object_get(im, "deleted"), i, e)
            fprintf(f, "  deleted %-7s image %s (%s)\n", js(e, "cloud") ? js(e, "cloud") : "?",
                    js(e, "name") ? js(e, "name") : "?", js(e, "id") ? js(e, "id") : "?");
        json_array_foreach(json_object_get(im, "errors"), i, e)
            fprintf(f, "  not deleted on %s: %s %s\n", js(e, "cloud") ? js(e, "cloud") : "?",
                    js(e, "name") ? js(e, "name") : "", js(e, "error") ? js(e, "error") : "");
    }
}

void
fc_ctl_print_cleanup(FILE *f, const json_t *cl)
{
    if (!cl || json_is_null(cl)) {
        fprintf(f, "cleanup: none\n");
        return;
    }
    const json_t *del = json_object_get(cl, "deleted"), *err = json_object_get(cl, "errors");
    fprintf(f, "cleanup of %s on %s: %zu deleted, %zu error(s)\n",
            js(cl, "relocation_id") ? js(cl, "relocation_id") : "?",
            js(cl, "cloud") ? js(cl, "cloud") : "?", json_array_size(del), json_array_size(err));
    size_t i;
    json_t *e;
    json_array_foreach(del, i, e)
        fprintf(f, "  deleted %-20s %-38s %s\n", js(e, "kind"), js(e, "id") ? js(e, "id") : "",
                js(e, "name") ? js(e, "name") : "");
    json_array_foreach(err, i, e)
        fprintf(f, "  ERROR   %-20s %-38s %s\n", js(e, "kind"), js(e, "id") ? js(e, "id") : "",
                js(e, "error") ? js(e, "error") : "");
    if (js(cl, "error") && !json_array_size(err))
        fprintf(f, "  error: %s\n", js(cl, "error"));
}
