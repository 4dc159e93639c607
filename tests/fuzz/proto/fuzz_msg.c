/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the message parsers (proto/src/msg*.c) on arbitrary bytes. Every parser
 * must reject or accept without crashing, and whatever one accepts must survive a round trip
 * (to_json, then parse again, then to_json gives the same JSON). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/error.h"
#include "fluid/msg.h"

#define ROUND_TRIP(type, parse, from, to, freefn)                                              \
    do {                                                                                       \
        type *x = NULL;                                                                        \
        if (parse((const char *)data, size, &x) == FC_OK) {                                    \
            json_t *j = to(x);                                                                 \
            if (!j)                                                                            \
                abort();                                                                       \
            type *y = NULL;                                                                    \
            if (from(j, &y) != FC_OK) {                                                        \
                fprintf(stderr, "round trip of " #type " failed: %s\n", fc_error_msg());      \
                abort();                                                                       \
            }                                                                                  \
            json_t *j2 = to(y);                                                                \
            if (!json_equal(j, j2)) {                                                          \
                fprintf(stderr, #type ": emitted JSON differs after a round trip\n");          \
                abort();                                                                       \
            }                                                                                  \
            json_decref(j2);                                                                   \
            json_decref(j);                                                                    \
            freefn(y);                                                                         \
        }                                                                                      \
        freefn(x);                                                                             \
    } while (0)

/* The status messages have only text parsers. */
#define ROUND_TRIP_TEXT(type, parse, to, freefn)                                               \
    do {                                                                                       \
        type *x = NULL;                                                                        \
        if (parse((const char *)data, size, &x) == FC_OK) {                                    \
            json_t *j = to(x);                                                                 \
            char *t = j ? fc_msg_dump(j) : NULL;                                               \
            type *y = NULL;                                                                    \
            if (!t || parse(t, strlen(t), &y) != FC_OK) {                                      \
                fprintf(stderr, "round trip of " #type " failed: %s\n", fc_error_msg());      \
                abort();                                                                       \
            }                                                                                  \
            free(t);                                                                           \
            json_decref(j);                                                                    \
            freefn(y);                                                                         \
        }                                                                                      \
        freefn(x);                                                                             \
    } while (0)

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    (void)fc_msg_validate((const char *)data, size, NULL);
    ROUND_TRIP(struct fc_task, fc_task_parse, fc_task_from_json, fc_task_to_json, fc_task_free);
    ROUND_TRIP(struct fc_task_event, fc_event_parse, fc_event_from_json, fc_event_to_json,
               fc_event_free);
    ROUND_TRIP(struct fc_cancel, fc_cancel_parse, fc_cancel_from_json, fc_cancel_to_json,
               fc_cancel_free);
    ROUND_TRIP(struct fc_heartbeat, fc_heartbeat_parse, fc_heartbeat_from_json,
               fc_heartbeat_to_json, fc_heartbeat_free);
    ROUND_TRIP(struct fc_plan, fc_plan_parse, fc_plan_from_json, fc_plan_to_json, fc_plan_free);
    ROUND_TRIP(struct fc_request, fc_request_parse, fc_request_from_json, fc_request_to_json,
               fc_request_free);
    ROUND_TRIP(struct fc_topology, fc_topology_parse, fc_topology_from_json,
               fc_topology_to_json, fc_topology_free);
    ROUND_TRIP(struct fc_reloc_event, fc_reloc_event_parse, fc_reloc_event_from_json,
               fc_reloc_event_to_json, fc_reloc_event_free);
    ROUND_TRIP(struct fc_rejected, fc_rejected_parse, fc_rejected_from_json,
               fc_rejected_to_json, fc_rejected_free);
    ROUND_TRIP_TEXT(struct fc_status_req, fc_status_req_parse, fc_status_req_to_json,
                    fc_status_req_free);
    ROUND_TRIP_TEXT(struct fc_status, fc_status_parse, fc_status_to_json, fc_status_free);
    struct fc_plan *p = NULL;
    if (fc_plan_parse((const char *)data, size, &p) == FC_OK) {
        size_t *order = calloc(p->ntasks, sizeof *order);
        fc_plan_topo_order(p, order);
        /* every dependency comes first */
        size_t *pos = calloc(p->ntasks, sizeof *pos);
        for (size_t i = 0; i < p->ntasks; i++)
            pos[order[i]] = i;
        for (size_t i = 0; i < p->ntasks; i++)
            for (size_t k = 0; k < p->tasks[i]->ndepends; k++)
                if (pos[fc_plan_find(p, p->tasks[i]->depends_on[k])] >= pos[i])
                    abort();
        free(pos);
        free(order);
    }
    fc_plan_free(p);
    return 0;
}
