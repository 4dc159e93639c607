/* SPDX-License-Identifier: Apache-2.0 */
/* proto messages: Task, TaskEvent, Cancel, BrokerHeartbeat: valid messages round-trip, and
 * every rejection class (syntax, UTF-8, duplicates, unknown/missing fields, types, sizes,
 * identifiers, schema versions) fails with the JSON path and the reason. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/error.h"
#include "fluid/msg.h"

#define TASK_OK                                                                                \
    "{\"schema\":\"fluid.task/1\",\"relocation_id\":\"r-1\",\"task_id\":\"t-1\","             \
    "\"idempotency_key\":\"r-1/t-1\",\"site\":\"default\",\"kind\":\"checksum\","             \
    "\"stages\":[{\"kind\":\"checksum\",\"args\":[\"--framed\"]},{\"kind\":\"checksum\"}],"   \
    "\"timeout_s\":60,\"max_attempts\":2,\"depends_on\":[\"t-0\"],\"framed\":true}"

/* Checks that validating s as schema fails with rc, error path `path` and a message
 * containing `what`. */
static void
reject_as(const char *schema, const char *s, size_t len, fc_rc rc, const char *path,
          const char *what)
{
    fc_error_clear();
    fc_rc got = fc_msg_validate(s, len, schema);
    cr_assert_eq(got, rc, "want %s, got %s (%s) for %s", fc_rc_name(rc), fc_rc_name(got),
                 fc_error_msg(), s);
    cr_assert_str_eq(fc_msg_error_path(), path, "path: %s (msg %s)", fc_msg_error_path(),
                     fc_error_msg());
    cr_assert(strstr(fc_error_msg(), what), "message \"%s\" lacks \"%s\"", fc_error_msg(), what);
    if (*path) {
        char pre[600];
        snprintf(pre, sizeof pre, "%s: ", path);
        cr_assert(strncmp(fc_error_msg(), pre, strlen(pre)) == 0, "message \"%s\" not at %s",
                  fc_error_msg(), path);
    }
}
#define REJECT(schema, s, rc, path, what) reject_as(schema, s, strlen(s), rc, path, what)

static void
accept_as(const char *schema, const char *s)
{
    fc_rc rc = fc_msg_validate(s, strlen(s), schema);
    cr_assert_eq(rc, FC_OK, "%s: %s", s, fc_error_msg());
}

/* TASK_OK with `from` replaced by `to` (first occurrence). */
static char *
task_with(const char *from, const char *to)
{
    static char buf[64 * 1024];
    const char *base = TASK_OK, *at = strstr(base, from);
    cr_assert(at, "test bug: %s not in TASK_OK", from);
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
    return buf;
}

Test(task, parses_every_field)
{
    FC_AUTO(task) struct fc_task *t = NULL;
    cr_assert_eq(fc_task_parse(TASK_OK, strlen(TASK_OK), &t), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(t->relocation_id, "r-1");
    cr_assert_str_eq(t->task_id, "t-1");
    cr_assert_str_eq(t->idempotency_key, "r-1/t-1");
    cr_assert_str_eq(t->site, "default");
    cr_assert_str_eq(t->kind, "checksum");
    cr_assert_eq(t->nstages, 2);
    cr_assert_eq(t->stages[0].nargs, 1);
    cr_assert_str_eq(t->stages[0].args[0], "--framed");
    cr_assert_eq(t->stages[1].nargs, 0);
    cr_assert_eq(t->timeout_s, 60);
    cr_assert_eq(t->max_attempts, 2);
    cr_assert_eq(t->ndepends, 1);
    cr_assert_str_eq(t->depends_on[0], "t-0");
    cr_assert(t->framed);
}

Test(task, defaults_and_round_trip)
{
    const char *s = "{\"schema\":\"fluid.task/1\",\"relocation_id\":\"r-1\",\"task_id\":\"t-1\","
                    "\"idempotency_key\":\"k1\",\"stages\":[{\"kind\":\"image\",\"args\":[\"\"]}]}";
    FC_AUTO(task) struct fc_task *t = NULL;
    cr_assert_eq(fc_task_parse(s, strlen(s), &t), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(t->site, "default");
    cr_assert_str_eq(t->kind, "image");
    cr_assert_eq(t->timeout_s, 600);
    cr_assert_eq(t->max_attempts, 3);
    cr_assert_eq(t->ndepends, 0);
    cr_assert(t->framed);
    cr_assert_str_eq(t->stages[0].args[0], "");

    json_auto_t *j = fc_task_to_json(t);
    cr_assert_not_null(j);
    FC_AUTO(task) struct fc_task *t2 = NULL;
    cr_assert_eq(fc_task_from_json(j, &t2), FC_OK, "%s", fc_error_msg());
    json_auto_t *j2 = fc_task_to_json(t2);
    cr_assert(json_equal(j, j2));
    FC_AUTO(task) struct fc_task *t3 = fc_task_dup(t2);
    cr_assert_not_null(t3);
    cr_assert_str_eq(t3->stages[0].kind, "image");
}

Test(reject, syntax_and_not_an_object)
{
    REJECT(NULL, "{\"schema\":", FC_E_INVALID, "", "invalid JSON");
    REJECT(NULL, "[1,2]", FC_E_INVALID, "", "expected a JSON object");
    REJECT(NULL, "", FC_E_INVALID, "", "invalid JSON");
}

Test(reject, non_utf8_and_nul)
{
    char bad[] = "{\"schema\":\"fluid.task/1\",\"relocation_id\":\"r\xff\"}";
    reject_as(NULL, bad, strlen(bad), FC_E_INVALID, "", "not valid UTF-8");
    /* an overlong encoding of '/' */
    char overlong[] = "{\"schema\":\"fluid.task\xc0\xaf" "1\"}";
    reject_as(NULL, overlong, strlen(overlong), FC_E_INVALID, "", "not valid UTF-8");
    REJECT(FC_SCHEMA_TASK, task_with("\"t-1\"", "\"t\\u0000x\""), FC_E_INVALID, "", "NUL");
    /* a raw NUL byte inside the buffer */
    char raw[] = "{\"schema\":\"fluid.task/1\"}\0";
    reject_as(NULL, raw, sizeof raw - 1, FC_E_INVALID, "", "");
}

Test(reject, duplicate_keys)
{
    REJECT(FC_SCHEMA_TASK, task_with("\"site\":\"default\"", "\"site\":\"a\",\"site\":\"b\""),
           FC_E_INVALID, "", "duplicate key");
}

/* An unknown schema full of characters that are escaped in the error (a fuzzer found the
 * quoting overflowing its buffer): the error names the schema, cut short, and stays bounded. */
Test(reject, unknown_schema_quoted_short)
{
    const char *s = "{\"schema\":\"\\\\\\\\\\\\&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&"
                    "\\\\\\\\\\\\\\\\\\flu/0\",\"relocation_id\":\"r\"}";
    REJECT(NULL, s, FC_E_INVALID, "schema", "unknown schema");
    cr_assert(strstr(fc_error_msg(), "\\x5c\\x5c"), "escaped: %s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), "..."), "cut short: %s", fc_error_msg());
    cr_assert_lt(strlen(fc_error_msg()), 200, "bounded: %s", fc_error_msg());
}

Test(reject, oversize_message)
{
    size_t n = FC_MSG_MAX_BYTES + 1;
    char *big = malloc(n);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    reject_as(NULL, big, n, FC_E_INVALID, "", "more than the limit");
    free(big);
}

Test(reject, schema_missing_unknown_and_versions)
{
    REJECT(NULL, "{\"relocation_id\":\"r\"}", FC_E_INVALID, "schema", "missing required field");
    REJECT(NULL, "{\"schema\":7}", FC_E_INVALID, "schema", "expected a string, got an integer");
    REJECT(NULL, "{\"schema\":\"fluid.nothing/1\"}", FC_E_INVALID, "schema", "unknown schema");
    REJECT(NULL, task_with("fluid.task/1", "fluid.task/2"), FC_E_UNSUPPORTED, "schema",
           "unsupported version \"fluid.task/2\"");
    REJECT(FC_SCHEMA_TASK, task_with("fluid.task/1", "fluid.task/2"), FC_E_UNSUPPORTED,
           "schema", "unsupported version");
    REJECT(FC_SCHEMA_EVENT, TASK_OK, FC_E_INVALID, "schema",
           "expected \"fluid.event/1\", got \"fluid.task/1\"");
    accept_as(NULL, TASK_OK);
    accept_as(FC_SCHEMA_TASK, TASK_OK);
}

Test(reject, unknown_fields)
{
    REJECT(NULL, task_with("\"framed\":true", "\"framed\":true,\"prio\":1"), FC_E_INVALID,
           "prio", "unknown field");
    REJECT(NULL, task_with("\"args\":[\"--framed\"]", "\"args\":[],\"env\":{}"), FC_E_INVALID,
           "stages[0].env", "unknown field");
}

Test(reject, missing_required)
{
    REJECT(NULL, task_with("\"task_id\":\"t-1\",", ""), FC_E_INVALID, "task_id",
           "missing required field");
    REJECT(NULL, task_with("\"idempotency_key\":\"r-1/t-1\",", ""), FC_E_INVALID,
           "idempotency_key", "missing required field");
    REJECT(NULL, task_with("\"relocation_id\":\"r-1\",", ""), FC_E_INVALID, "relocation_id",
           "missing required field");
    REJECT(NULL, task_with("{\"kind\":\"checksum\",\"args\":[\"--framed\"]}", "{\"args\":[]}"),
           FC_E_INVALID, "stages[0].kind", "missing required field");
}

Test(reject, wrong_types)
{
    REJECT(NULL, task_with("\"timeout_s\":60", "\"timeout_s\":\"60\""), FC_E_INVALID,
           "timeout_s", "expected an integer, got a string");
    REJECT(NULL, task_with("\"timeout_s\":60", "\"timeout_s\":60.5"), FC_E_INVALID, "timeout_s",
           "expected an integer, got a number with a fraction");
    REJECT(NULL, task_with("\"framed\":true", "\"framed\":1"), FC_E_INVALID, "framed",
           "expected a boolean");
    REJECT(NULL, task_with("\"depends_on\":[\"t-0\"]", "\"depends_on\":\"t-0\""), FC_E_INVALID,
           "depends_on", "expected an array, got a string");
    REJECT(NULL, task_with("[\"--framed\"]", "[\"--framed\",3]"), FC_E_INVALID,
           "stages[0].args[1]", "expected a string, got an integer");
    REJECT(NULL, task_with("\"site\":\"default\"", "\"site\":null"), FC_E_INVALID, "site",
           "expected a string, got null");
    REJECT(NULL, task_with("{\"kind\":\"checksum\"}", "[\"checksum\"]"), FC_E_INVALID,
           "stages[1]", "expected an object, got an array");
}

Test(reject, ranges)
{
    REJECT(NULL, task_with("\"timeout_s\":60", "\"timeout_s\":0"), FC_E_INVALID, "timeout_s",
           "out of range");
    REJECT(NULL, task_with("\"timeout_s\":60", "\"timeout_s\":-5"), FC_E_INVALID, "timeout_s",
           "out of range");
    REJECT(NULL, task_with("\"max_attempts\":2", "\"max_attempts\":1000"), FC_E_INVALID,
           "max_attempts", "out of range");
    REJECT(NULL, task_with("\"stages\":[", "\"stages\":[],\"x\":["), FC_E_INVALID, "x",
           "unknown field");
}

Test(reject, oversize_strings_and_lists)
{
    char id[FC_ID_MAX + 2];
    memset(id, 'a', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    char rep[300];
    snprintf(rep, sizeof rep, "\"task_id\":\"%s\"", id);
    REJECT(NULL, task_with("\"task_id\":\"t-1\"", rep), FC_E_INVALID, "task_id",
           "longer than the limit of 100");

    static char arg[FC_ARG_MAX + 40];
    memset(arg, 0, sizeof arg);
    strcpy(arg, "[\"");
    memset(arg + 2, 'x', FC_ARG_MAX + 1);
    strcat(arg, "\"]");
    REJECT(NULL, task_with("[\"--framed\"]", arg), FC_E_INVALID, "stages[0].args[0]",
           "longer than the limit of 4096");

    char args[1024] = "[";
    for (int i = 0; i <= FC_ARGS_MAX; i++)
        strcat(args, i ? ",\"a\"" : "\"a\"");
    strcat(args, "]");
    REJECT(NULL, task_with("[\"--framed\"]", args), FC_E_INVALID, "stages[0].args",
           "more than the limit of 64");

    char stages[2048] = "[";
    for (int i = 0; i <= FC_STAGES_MAX; i++)
        strcat(stages, i ? ",{\"kind\":\"test\"}" : "{\"kind\":\"test\"}");
    strcat(stages, "],\"timeout_s\"");
    REJECT(NULL,
           task_with("[{\"kind\":\"checksum\",\"args\":[\"--framed\"]},{\"kind\":\"checksum\"}],"
                     "\"timeout_s\"", stages),
           FC_E_INVALID, "stages", "17 stages: want 1 to 16");
    REJECT(NULL,
           task_with("[{\"kind\":\"checksum\",\"args\":[\"--framed\"]},{\"kind\":\"checksum\"}]",
                     "[]"),
           FC_E_INVALID, "stages", "0 stages");
}

Test(reject, identifiers_and_kinds)
{
    REJECT(NULL, task_with("\"t-1\"", "\"t.1\""), FC_E_INVALID, "task_id", "invalid id \"t.1\"");
    REJECT(NULL, task_with("\"t-1\"", "\"\""), FC_E_INVALID, "task_id", "must not be empty");
    REJECT(NULL, task_with("\"r-1\"", "\"r #1\""), FC_E_INVALID, "relocation_id", "invalid id");
    REJECT(NULL, task_with("\"r-1/t-1\"", "\"-k\""), FC_E_INVALID, "idempotency_key",
           "invalid key");
    REJECT(NULL, task_with("\"default\"", "\"Default\""), FC_E_INVALID, "site", "invalid site");
    REJECT(NULL, task_with("\"default\"", "\"a.b\""), FC_E_INVALID, "site", "invalid site");
    REJECT(NULL, task_with("{\"kind\":\"checksum\"}", "{\"kind\":\"imge\"}"), FC_E_INVALID,
           "stages[1].kind", "unknown migrator kind \"imge\"");
    REJECT(NULL, task_with("{\"kind\":\"checksum\"}", "{\"kind\":\"../bin/sh\"}"), FC_E_INVALID,
           "stages[1].kind", "invalid migrator kind");
    REJECT(NULL, task_with("\"kind\":\"checksum\",\"stages\"", "\"kind\":\"Image\",\"stages\""),
           FC_E_INVALID, "kind", "invalid migrator kind \"Image\"");
    REJECT(NULL, task_with("[\"t-0\"]", "[\"t-1\"]"), FC_E_INVALID, "depends_on[0]",
           "depends on itself");
    REJECT(NULL, task_with("[\"t-0\"]", "[\"t-0\",\"t-0\"]"), FC_E_INVALID, "depends_on[1]",
           "listed twice");
    cr_assert(fc_kind_known("checksum") && fc_kind_known("test") && !fc_kind_known("imge"));
}

#define EV_HEAD                                                                                \
    "{\"schema\":\"fluid.event/1\",\"relocation_id\":\"r-1\",\"task_id\":\"t-1\","            \
    "\"idempotency_key\":\"r-1/t-1\",\"broker\":\"b-1\",\"site\":\"default\",\"attempt\":1,"  \
    "\"ts\":\"2026-11-23T15:20:01.123Z\","

Test(event, states_round_trip)
{
    const char *ok[] = {
        EV_HEAD "\"state\":\"started\"}",
        EV_HEAD "\"state\":\"progress\",\"progress\":{\"stage\":0,\"kind\":\"checksum\","
                "\"done\":10,\"total\":100,\"rate\":5.5}}",
        EV_HEAD "\"state\":\"done\",\"result\":{\"stages\":[{\"kind\":\"checksum\",\"exit\":0,"
                "\"result\":{\"sha256\":\"ab\"},\"bytes_in\":5,\"bytes_out\":5}]}}",
        EV_HEAD "\"state\":\"failed\",\"error\":{\"code\":\"FC_E_CHILD\",\"message\":\"exit 3\","
                "\"stage\":1,\"stderr_tail\":\"boom\\n\"}}",
        EV_HEAD "\"state\":\"retrying\",\"error\":{\"code\":\"FC_E_NET\",\"message\":\"\"}}",
        EV_HEAD "\"state\":\"cancelled\",\"error\":{\"code\":\"FC_E_CANCELLED\","
                "\"message\":\"by operator\"}}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        FC_AUTO(task_event) struct fc_task_event *e = NULL;
        cr_assert_eq(fc_event_parse(ok[i], strlen(ok[i]), &e), FC_OK, "%s: %s", ok[i],
                     fc_error_msg());
        json_auto_t *j = fc_event_to_json(e);
        json_auto_t *orig = json_loads(ok[i], 0, NULL);
        cr_assert(json_equal(j, orig), "round trip of %s", ok[i]);
    }
    FC_AUTO(task_event) struct fc_task_event *e = NULL;
    cr_assert_eq(fc_event_parse(ok[3], strlen(ok[3]), &e), FC_OK);
    cr_assert_eq(e->state, FC_TS_FAILED);
    cr_assert(e->has_error);
    cr_assert_eq(e->error.code, FC_E_CHILD);
    cr_assert_eq(e->error.stage, 1);
    cr_assert_str_eq(e->error.stderr_tail, "boom\n");
    cr_assert(fc_task_state_final(FC_TS_CANCELLED) && !fc_task_state_final(FC_TS_RETRYING));
}

Test(event, rejections)
{
    REJECT(NULL, EV_HEAD "\"state\":\"finished\"}", FC_E_INVALID, "state", "unknown state");
    REJECT(NULL, EV_HEAD "\"state\":\"progress\"}", FC_E_INVALID, "progress", "missing");
    REJECT(NULL, EV_HEAD "\"state\":\"started\",\"result\":{\"stages\":[]}}", FC_E_INVALID,
           "result", "only allowed with state \"done\"");
    REJECT(NULL, EV_HEAD "\"state\":\"failed\"}", FC_E_INVALID, "error", "missing");
    REJECT(NULL,
           EV_HEAD "\"state\":\"failed\",\"error\":{\"code\":\"E_BAD\",\"message\":\"x\"}}",
           FC_E_INVALID, "error.code", "unknown error code \"E_BAD\"");
    REJECT(NULL, EV_HEAD "\"state\":\"progress\",\"progress\":{\"stage\":0,\"done\":-1}}",
           FC_E_INVALID, "progress.done", "out of range");
    REJECT(NULL,
           EV_HEAD "\"state\":\"done\",\"result\":{\"stages\":[{\"kind\":\"checksum\","
                   "\"exit\":0,\"extra\":1}]}}",
           FC_E_INVALID, "result.stages[0].extra", "unknown field");
    char ts[] = "{\"schema\":\"fluid.event/1\",\"relocation_id\":\"r-1\",\"task_id\":\"t-1\","
                "\"idempotency_key\":\"k\",\"broker\":\"b\",\"site\":\"s\",\"attempt\":1,"
                "\"ts\":\"2026-13-01T00:00:00Z\",\"state\":\"started\"}";
    REJECT(NULL, ts, FC_E_INVALID, "ts", "invalid timestamp");
}

Test(cancel, parse_emit_reject)
{
    const char *s = "{\"schema\":\"fluid.cancel/1\",\"relocation_id\":\"r-1\"}";
    FC_AUTO(cancel) struct fc_cancel *c = NULL;
    cr_assert_eq(fc_cancel_parse(s, strlen(s), &c), FC_OK, "%s", fc_error_msg());
    cr_assert_null(c->task_id);
    cr_assert_str_eq(c->reason, "");
    json_auto_t *j = fc_cancel_to_json(c);
    cr_assert_str_eq(json_string_value(json_object_get(j, "schema")), FC_SCHEMA_CANCEL);
    accept_as(FC_SCHEMA_CANCEL, "{\"schema\":\"fluid.cancel/1\",\"relocation_id\":\"r-1\","
                                "\"task_id\":\"t-2\",\"reason\":\"operator\"}");
    REJECT(NULL, "{\"schema\":\"fluid.cancel/1\",\"relocation_id\":\"r-1\",\"all\":true}",
           FC_E_INVALID, "all", "unknown field");
    REJECT(NULL, "{\"schema\":\"fluid.cancel/1\"}", FC_E_INVALID, "relocation_id", "missing");
}

Test(resume, parse_emit_reject)
{
    const char *s = "{\"schema\":\"fluid.resume/1\",\"relocation_id\":\"r-1\"}";
    FC_AUTO(resume) struct fc_resume *r = NULL;
    cr_assert_eq(fc_resume_parse(s, strlen(s), &r), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(r->relocation_id, "r-1");
    json_auto_t *j = fc_resume_to_json(r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "schema")), FC_SCHEMA_RESUME);
    cr_assert_str_eq(json_string_value(json_object_get(j, "relocation_id")), "r-1");
    accept_as(FC_SCHEMA_RESUME, s);
    REJECT(NULL, "{\"schema\":\"fluid.resume/1\",\"relocation_id\":\"r-1\",\"task_id\":\"t\"}",
           FC_E_INVALID, "task_id", "unknown field");
    REJECT(NULL, "{\"schema\":\"fluid.resume/1\",\"relocation_id\":\"r 1\"}", FC_E_INVALID,
           "relocation_id", "");
    REJECT(NULL, "{\"schema\":\"fluid.resume/1\"}", FC_E_INVALID, "relocation_id", "missing");
}

#define HB                                                                                     \
    "{\"schema\":\"fluid.broker/1\",\"relocation_id\":\"\",\"broker_id\":\"b-1\","            \
    "\"site\":\"default\",\"host\":\"node1\",\"capacity\":8,\"running\":2,"                   \
    "\"kinds\":[\"checksum\",\"image\"],\"version\":\"0.1.0\","                               \
    "\"ts\":\"2026-11-23T15:20:01Z\",\"interval_s\":2}"

Test(heartbeat, parse_emit_reject)
{
    FC_AUTO(heartbeat) struct fc_heartbeat *h = NULL;
    cr_assert_eq(fc_heartbeat_parse(HB, strlen(HB), &h), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(h->capacity, 8);
    cr_assert_eq(h->nkinds, 2);
    json_auto_t *j = fc_heartbeat_to_json(h);
    json_auto_t *orig = json_loads(HB, 0, NULL);
    cr_assert(json_equal(j, orig));
    const char *bad = "{\"schema\":\"fluid.broker/1\",\"relocation_id\":\"r-1\"}";
    REJECT(NULL, bad, FC_E_INVALID, "relocation_id", "must be \"\"");
    REJECT(NULL, "{\"schema\":\"fluid.broker/1\",\"broker_id\":\"b\"}", FC_E_INVALID, "site",
           "missing");
}

#include "fluid/amqp_names.h"

Test(limits, longest_ids_fit_in_amqp_routing_keys)
{
    char rid[FC_ID_MAX + 1], tid[FC_ID_MAX + 1], site[FC_SITE_MAX + 1], rk[FC_AMQP_NAME_MAX];
    memset(rid, 'r', FC_ID_MAX);
    memset(tid, 't', FC_ID_MAX);
    memset(site, 's', FC_SITE_MAX);
    rid[FC_ID_MAX] = tid[FC_ID_MAX] = site[FC_SITE_MAX] = '\0';
    cr_assert(fc_id_valid(rid) && fc_site_valid(site));
    cr_assert(fc_amqp_rk_task_event(rk, sizeof rk, rid, tid, "cancelled"));
    cr_assert(fc_amqp_rk_relocation_state(rk, sizeof rk, rid, "cancelled"));
    cr_assert(fc_amqp_rk_heartbeat(rk, sizeof rk, site, tid));
    cr_assert(fc_amqp_rk_task(rk, sizeof rk, site, "openstack"));
    cr_assert(fc_amqp_rk_cancel(rk, sizeof rk, rid));
    cr_assert_lt(FC_KEY_MAX, FC_AMQP_NAME_MAX, "idempotency keys are AMQP message ids");
}
