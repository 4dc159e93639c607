/* SPDX-License-Identifier: Apache-2.0 */
/* The wire messages (docs/protocol.md is the reference): C types, strict parsers and
 * emitters for every JSON message FluidCloud processes exchange over RabbitMQ.
 *
 * Parsing is strict: unknown fields, wrong types, missing required fields, oversize strings,
 * duplicate keys, non-UTF-8 and an unknown schema are rejected with FC_E_INVALID (an unknown
 * major version of a known message is FC_E_UNSUPPORTED). The message (fc_error_msg()) names
 * the JSON path and the reason, e.g. `tasks[2].kind: unknown migrator kind "imge"`;
 * fc_msg_error_path() gives the path alone. Emitters (fc_*_to_json) produce a new reference
 * that the matching parser accepts. Every *_free accepts NULL. */
#ifndef FLUID_MSG_H
#define FLUID_MSG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fluid/cleanup.h"
#include "fluid/rc.h"

/* ---- schemas ---- */
#define FC_SCHEMA_TASK "fluid.task/1"
#define FC_SCHEMA_EVENT "fluid.event/1"
#define FC_SCHEMA_CANCEL "fluid.cancel/1"
#define FC_SCHEMA_RESUME "fluid.resume/1"
#define FC_SCHEMA_BROKER "fluid.broker/1"
#define FC_SCHEMA_REQUEST "fluid.request/1"
#define FC_SCHEMA_PLAN "fluid.plan/1"
#define FC_SCHEMA_TOPOLOGY "fluid.topology/1"
#define FC_SCHEMA_RELOCATION "fluid.relocation/1" /* relocation state change (conduit) */
#define FC_SCHEMA_REJECTED "fluid.rejected/1"     /* request.rejected event (conduit) */
#define FC_SCHEMA_STATUS_REQ "fluid.status-request/1" /* fluidctl -> conduit RPC */
#define FC_SCHEMA_STATUS "fluid.status/1"             /* conduit -> fluidctl RPC reply */

/* ---- limits (documented in docs/protocol.md; a longer value is rejected) ---- */
#define FC_MSG_MAX_BYTES (4u << 20) /* one message, as bytes on the wire */
/* AMQP routing keys and message ids are at most 255 bytes: the longest routing key,
 * "relocation.<id>.task.<id>.cancelled", is 227 bytes with 100-byte ids, and the
 * idempotency key travels as message_id. */
#define FC_ID_MAX 100        /* relocation_id, task_id, broker_id: [A-Za-z0-9_:-], first alnum */
#define FC_KEY_MAX 200       /* idempotency_key: [A-Za-z0-9_:./-], first alnum */
#define FC_SITE_MAX 64       /* site: ^[a-z0-9][a-z0-9_-]{0,63}$ (a routing-key word) */
#define FC_KIND_MAX 32       /* migrator kind: ^[a-z][a-z0-9-]{0,31}$ and known */
#define FC_NAME_MAX 255      /* names, hosts, versions, cloud names, timestamps */
#define FC_TEXT_MAX 4096     /* reasons and error messages */
#define FC_TAIL_MAX 8192     /* stderr_tail */
#define FC_STAGES_MAX 16     /* stages in one task (one Viaduct) */
#define FC_ARGS_MAX 64       /* args of one stage */
#define FC_ARG_MAX 4096      /* bytes in one arg */
#define FC_DEPS_MAX 256      /* depends_on entries of one task */
#define FC_TASKS_MAX 1024    /* tasks in one plan */
#define FC_LIST_MAX 4096     /* entries of other lists (kinds, servers, topology items) */
#define FC_TIMEOUT_MAX 604800u /* timeout_s: 1 .. one week */
#define FC_ATTEMPTS_MAX 100u   /* max_attempts: 1 .. 100 */
#define FC_DEPTH_MAX 32        /* nesting of free-form objects (options, result, metadata) */

/* Migrator kinds known to proto (a task naming another kind is rejected). */
extern const char *const fc_known_kinds[]; /* NULL-terminated */
bool fc_kind_known(const char *kind);
/* Syntax checks used by the parsers (true when valid). */
bool fc_id_valid(const char *s);   /* relocation_id, task_id, broker_id */
bool fc_key_valid(const char *s);  /* idempotency_key */
bool fc_site_valid(const char *s);

/* ---- loading and generic validation ---- */

/* Loads one JSON object from buf (json_loadb: rejects non-UTF-8 and NUL in strings, and
 * duplicate keys), at most FC_MSG_MAX_BYTES. Errors name the byte offset. */
fc_rc fc_msg_load(const char *buf, size_t len, json_t **out);
/* Validates a message of any known schema, or exactly expected_schema when not NULL
 * (a known message with another schema is then FC_E_INVALID naming both). */
fc_rc fc_msg_validate(const char *buf, size_t len, const char *expected_schema);
/* The same on an already loaded object. */
fc_rc fc_msg_validate_json(const json_t *msg, const char *expected_schema);
/* The path of the last parse error of this thread ("" for the whole message, e.g. a syntax
 * error; "tasks[2].kind" for a field). */
const char *fc_msg_error_path(void);
/* Compact JSON text of msg (malloc'd, NUL-terminated), or NULL on allocation failure. */
char *fc_msg_dump(const json_t *msg);
/* Current UTC time as "2026-11-23T15:20:01.123Z" (buf of at least 32 bytes); returns buf. */
char *fc_msg_now(char *buf, size_t len);

/* ---- Task: one Viaduct to run on a broker of a site ---- */
struct fc_stage_spec {
    char *kind;    /* a known migrator kind: runs fluid-<kind> */
    char **args;   /* argv after the program name */
    size_t nargs;
};

struct fc_task {
    char *relocation_id, *task_id, *idempotency_key;
    char *site;             /* default "default" */
    char *kind;             /* routing: <site>.<kind>; default stages[0].kind */
    struct fc_stage_spec *stages;
    size_t nstages;         /* 1 .. FC_STAGES_MAX */
    uint32_t timeout_s;     /* default 600 */
    uint32_t max_attempts;  /* default 3 */
    char **depends_on;      /* task_ids of the same plan */
    size_t ndepends;
    bool framed;            /* stages exchange the framed stream (default true) */
};

fc_rc fc_task_parse(const char *buf, size_t len, struct fc_task **out);
fc_rc fc_task_from_json(const json_t *j, struct fc_task **out);
json_t *fc_task_to_json(const struct fc_task *t);
void fc_task_free(struct fc_task *t);
/* A deep copy (NULL on allocation failure). */
struct fc_task *fc_task_dup(const struct fc_task *t);
FC_DEFINE_AUTO(task, struct fc_task, fc_task_free)

/* ---- TaskEvent: what a broker reports about a task ---- */
enum fc_task_state {
    FC_TS_STARTED,
    FC_TS_PROGRESS,
    FC_TS_RETRYING,
    FC_TS_DONE,
    FC_TS_FAILED,
    FC_TS_CANCELLED,
    FC_TS__COUNT
};
const char *fc_task_state_name(enum fc_task_state s); /* "started" ... */
bool fc_task_state_from_name(const char *name, enum fc_task_state *out);
/* done, failed and cancelled end a task. */
bool fc_task_state_final(enum fc_task_state s);

struct fc_task_error {
    fc_rc code;            /* by name on the wire ("FC_E_CHILD") */
    char *message;         /* <= FC_TEXT_MAX */
    int stage;             /* -1 when unknown/absent */
    char *stderr_tail;     /* may be NULL; <= FC_TAIL_MAX */
};

struct fc_task_event {
    char *relocation_id, *task_id, *idempotency_key;
    enum fc_task_state state;
    char *broker, *site;
    uint32_t attempt;      /* 1-based */
    char *ts;              /* RFC 3339 UTC, "...Z" */
    /* progress only: {"stage":N,"done":N, "kind","total" optional, more fields allowed} */
    json_t *progress;
    /* done only: {"stages":[{"kind","exit","result":{...},"bytes_in","bytes_out"}...]} */
    json_t *result;
    /* failed, cancelled, retrying: */
    bool has_error;
    struct fc_task_error error;
};

fc_rc fc_event_parse(const char *buf, size_t len, struct fc_task_event **out);
fc_rc fc_event_from_json(const json_t *j, struct fc_task_event **out);
json_t *fc_event_to_json(const struct fc_task_event *e);
void fc_event_free(struct fc_task_event *e);
FC_DEFINE_AUTO(task_event, struct fc_task_event, fc_event_free)

/* ---- Cancel: stop a relocation's tasks (all of them when task_id is NULL) ---- */
struct fc_cancel {
    char *relocation_id;
    char *task_id;   /* NULL: every task of the relocation */
    char *reason;    /* "" when absent */
};
fc_rc fc_cancel_parse(const char *buf, size_t len, struct fc_cancel **out);
fc_rc fc_cancel_from_json(const json_t *j, struct fc_cancel **out);
json_t *fc_cancel_to_json(const struct fc_cancel *c);
void fc_cancel_free(struct fc_cancel *c);
FC_DEFINE_AUTO(cancel, struct fc_cancel, fc_cancel_free)

/* ---- Resume: a failed or cancelled relocation runs again. The conduit publishes it on
 * fluid.control before the resumed tasks; brokers forget the Cancel they remember for the
 * relocation, so that its new tasks are not cancelled before they start. ---- */
struct fc_resume {
    char *relocation_id;
};
fc_rc fc_resume_parse(const char *buf, size_t len, struct fc_resume **out);
fc_rc fc_resume_from_json(const json_t *j, struct fc_resume **out);
json_t *fc_resume_to_json(const struct fc_resume *r);
void fc_resume_free(struct fc_resume *r);
FC_DEFINE_AUTO(resume, struct fc_resume, fc_resume_free)

/* ---- BrokerHeartbeat: a broker says it is alive (relocation_id is "") ---- */
struct fc_heartbeat {
    char *broker_id, *site, *host, *version, *ts;
    uint32_t capacity, running, interval_s;
    char **kinds;
    size_t nkinds;
};
fc_rc fc_heartbeat_parse(const char *buf, size_t len, struct fc_heartbeat **out);
fc_rc fc_heartbeat_from_json(const json_t *j, struct fc_heartbeat **out);
json_t *fc_heartbeat_to_json(const struct fc_heartbeat *h);
void fc_heartbeat_free(struct fc_heartbeat *h);
FC_DEFINE_AUTO(heartbeat, struct fc_heartbeat, fc_heartbeat_free)

/* ---- Plan: the tasks of a relocation, depends_on forming a DAG ----
 * Inside a plan a task may omit schema, relocation_id (then the plan's) and idempotency_key
 * (then "<plan idempotency base>/<task_id>", see fc_plan_from_json_in). The parser checks
 * that task_ids are unique, that every depends_on names a task of the plan and that there is
 * no cycle (the error shows it: `tasks[2].depends_on: cycle t-a -> t-b -> t-a`). */
struct fc_plan {
    char *relocation_id;
    struct fc_task **tasks;
    size_t ntasks;
};
fc_rc fc_plan_parse(const char *buf, size_t len, struct fc_plan **out);
fc_rc fc_plan_from_json(const json_t *j, struct fc_plan **out);
json_t *fc_plan_to_json(const struct fc_plan *p);
void fc_plan_free(struct fc_plan *p);
/* Index of the task with that id, or -1. */
long fc_plan_find(const struct fc_plan *p, const char *task_id);
/* Fills order[0..ntasks) with task indexes such that dependencies come first (the parser
 * has already checked there is no cycle). */
void fc_plan_topo_order(const struct fc_plan *p, size_t *order);
FC_DEFINE_AUTO(plan, struct fc_plan, fc_plan_free)

/* ---- RelocationRequest: what an operator asks for ---- */
struct fc_request {
    char *relocation_id, *idempotency_key;
    char *source_cloud, *target_cloud;  /* names from clouds.yaml */
    char **servers;                     /* selector.servers (names or ids), may be empty */
    size_t nservers;
    char *tag;                          /* selector.tag, or NULL */
    json_t *options;                    /* free-form object (depth-limited), or NULL */
    struct fc_plan *plan;               /* explicit plan, or NULL */
};
fc_rc fc_request_parse(const char *buf, size_t len, struct fc_request **out);
fc_rc fc_request_from_json(const json_t *j, struct fc_request **out);
json_t *fc_request_to_json(const struct fc_request *r);
void fc_request_free(struct fc_request *r);
FC_DEFINE_AUTO(request, struct fc_request, fc_request_free)

/* ---- Topology: a service instance's resources, as inspected (issue 7) ----
 * Kept as the validated JSON object: every collection is checked against the field table
 * in msg_topology.c (docs/protocol.md lists it). */
struct fc_topology {
    char *relocation_id;
    json_t *root; /* the whole validated message */
};
fc_rc fc_topology_parse(const char *buf, size_t len, struct fc_topology **out);
fc_rc fc_topology_from_json(const json_t *j, struct fc_topology **out);
json_t *fc_topology_to_json(const struct fc_topology *t);
void fc_topology_free(struct fc_topology *t);
FC_DEFINE_AUTO(topology, struct fc_topology, fc_topology_free)

/* ---- conduit messages: relocation state, rejection, status RPC ---- */
enum fc_reloc_state {
    FC_RS_ACCEPTED,
    FC_RS_RUNNING,
    FC_RS_DONE,
    FC_RS_FAILED,
    FC_RS_CANCELLED,
    FC_RS__COUNT
};
const char *fc_reloc_state_name(enum fc_reloc_state s); /* "accepted" ... */
bool fc_reloc_state_from_name(const char *name, enum fc_reloc_state *out);
bool fc_reloc_state_final(enum fc_reloc_state s);      /* done, failed, cancelled */

struct fc_task_counts {
    uint32_t total, pending, running, done, failed, cancelled;
};

/* fluid.relocation/1 on fluid.events, routing key relocation.<id>.state.<state>. */
struct fc_reloc_event {
    char *relocation_id;
    enum fc_reloc_state state;
    char *ts;
    struct fc_task_counts tasks;
    char *error; /* NULL unless failed/cancelled */
};
fc_rc fc_reloc_event_parse(const char *buf, size_t len, struct fc_reloc_event **out);
fc_rc fc_reloc_event_from_json(const json_t *j, struct fc_reloc_event **out);
json_t *fc_reloc_event_to_json(const struct fc_reloc_event *e);
void fc_reloc_event_free(struct fc_reloc_event *e);
FC_DEFINE_AUTO(reloc_event, struct fc_reloc_event, fc_reloc_event_free)

/* fluid.rejected/1 on fluid.events, routing key request.rejected. relocation_id is "" when
 * the request had none that could be read; path names the bad field ("" = the whole body). */
struct fc_rejected {
    char *relocation_id, *path, *reason, *ts;
};
fc_rc fc_rejected_parse(const char *buf, size_t len, struct fc_rejected **out);
fc_rc fc_rejected_from_json(const json_t *j, struct fc_rejected **out);
json_t *fc_rejected_to_json(const struct fc_rejected *r);
void fc_rejected_free(struct fc_rejected *r);
FC_DEFINE_AUTO(rejected, struct fc_rejected, fc_rejected_free)

/* fluid.status-request/1: sent to queue fluid.conduit.rpc; the conduit answers with a
 * fluid.status/1 published to the default exchange with routing key reply_to. */
struct fc_status_req {
    char *relocation_id, *correlation_id, *reply_to;
};
fc_rc fc_status_req_parse(const char *buf, size_t len, struct fc_status_req **out);
json_t *fc_status_req_to_json(const struct fc_status_req *r);
void fc_status_req_free(struct fc_status_req *r);
FC_DEFINE_AUTO(status_req, struct fc_status_req, fc_status_req_free)

/* A task as the conduit records it. state: "pending" (not published yet), "queued"
 * (published), or a TaskEvent state. */
struct fc_status_task {
    char *task_id, *kind, *site, *state, *error;
    uint32_t attempt;
};
struct fc_status {
    char *relocation_id, *correlation_id;
    bool found;
    enum fc_reloc_state state;   /* when found */
    char *created, *updated;     /* when found */
    char *error;                 /* may be NULL */
    struct fc_status_task *tasks;
    size_t ntasks;
};
fc_rc fc_status_parse(const char *buf, size_t len, struct fc_status **out);
json_t *fc_status_to_json(const struct fc_status *s);
void fc_status_free(struct fc_status *s);
FC_DEFINE_AUTO(status, struct fc_status, fc_status_free)

#endif
