/* SPDX-License-Identifier: Apache-2.0 */
/* The server or volume a planner task works for (subject.h). */
#include "subject.h"

#include <stdio.h>
#include <string.h>

static const char *
str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

void
fc_task_subject(const json_t *creates, const json_t *task, char *out, size_t cap)
{
    const char *tid = str(task, "task_id");
    size_t i, k;
    json_t *c, *a;
    out[0] = '\0';
    json_array_foreach(creates, i, c) {
        const char *ct = str(c, "task_id"), *kind = str(c, "kind"), *sn = str(c, "source_name");
        if (!ct || !tid || strcmp(ct, tid) != 0 || !kind || !sn)
            continue;
        if (!strcmp(kind, "volume")) {
            snprintf(out, cap, "volume %s", sn);
            return;
        }
        if (!strcmp(kind, "server") || !strcmp(kind, "snapshot") || !strcmp(kind, "image")) {
            snprintf(out, cap, "server %s", sn);
            return;
        }
        if (strcmp(kind, "floating_ip") != 0)
            return; /* shared: keypair, group, network, subnet, router */
        break;      /* a floating IP is its server's: by --server below */
    }
    json_t *args = json_object_get(json_array_get(json_object_get(task, "stages"), 0), "args");
    const char *verb = json_string_value(json_array_get(args, 0));
    /* config-rewrite names the server by its source name, the others by its target name */
    const char *by = verb && !strcmp(verb, "config-rewrite") ? "source_name" : "target_name";
    json_array_foreach(args, k, a) {
        const char *v = json_string_value(a), *next = json_string_value(json_array_get(args, k + 1));
        if (!v || strcmp(v, "--server") != 0 || !next)
            continue;
        json_array_foreach(creates, i, c) {
            const char *kind = str(c, "kind"), *name = str(c, by), *sn = str(c, "source_name");
            if (kind && name && sn && !strcmp(kind, "server") && !strcmp(name, next)) {
                snprintf(out, cap, "server %s", sn);
                return;
            }
        }
    }
}
