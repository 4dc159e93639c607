/* SPDX-License-Identifier: Apache-2.0 */
/* The conduit's SQLite store: requests recorded once (idempotency keys), tasks published in
 * dependency order through the outbox, events applied once, state survives a reopen. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fluid/error.h"
#include "store.h"

static char dbpath[512];

static void
fresh_db(void)
{
    const char *run = getenv("FLUID_TEST_RUN_DIR");
    static int n;
    if (run)
        mkdir(run, 0755);
    snprintf(dbpath, sizeof dbpath, "%s/test_store-%d-%d.db", run ? run : "/tmp", getpid(), n++);
    unlink(dbpath);
    char side[600];
    snprintf(side, sizeof side, "%s-wal", dbpath);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", dbpath);
    unlink(side);
}

static struct fc_store *
open_db(unsigned par)
{
    struct fc_store *s = NULL;
    cr_assert_eq(fc_store_open(dbpath, par, &s), FC_OK, "%s", fc_error_msg());
    return s;
}

static struct fc_request *
req(const char *json)
{
    struct fc_request *r = NULL;
    cr_assert_eq(fc_request_parse(json, strlen(json), &r), FC_OK, "%s", fc_error_msg());
    return r;
}

/* Pops every outbox message; returns their routing keys joined by ' '. */
static char *
drain(struct fc_store *s)
{
    static char keys[8192];
    keys[0] = '\0';
    for (;;) {
        struct fc_outbox_msg m;
        bool found;
        cr_assert_eq(fc_store_outbox_next(s, &m, &found), FC_OK, "%s", fc_error_msg());
        if (!found)
            break;
        cr_assert_eq(fc_msg_validate(m.body, strlen(m.body), NULL), FC_OK, "%s: %s", m.body,
                     fc_error_msg());
        strcat(keys, keys[0] ? " " : "");
        strcat(keys, m.routing_key);
        cr_assert_eq(fc_store_outbox_delete(s, m.seq), FC_OK);
        fc_outbox_msg_clear(&m);
    }
    return keys;
}

static void
event(struct fc_store *s, const char *rid, const char *tid, const char *key,
      enum fc_task_state state, bool want_known)
{
    struct fc_task_event e = {.relocation_id = (char *)rid, .task_id = (char *)tid,
                              .idempotency_key = (char *)key, .state = state,
                              .broker = "b-1", .site = "default", .attempt = 1};
    if (state == FC_TS_DONE)
        e.result = json_pack("{s:[]}", "stages");
    if (state == FC_TS_FAILED) {
        e.has_error = true;
        e.error = (struct fc_task_error){FC_E_CHILD, "exit 3", 0, NULL};
    }
    bool known;
    cr_assert_eq(fc_store_apply_event(s, &e, &known), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(known, want_known);
    json_decref(e.result);
}

static const char *
state_of(struct fc_store *s, const char *rid)
{
    static char st[32];
    cr_assert_eq(fc_store_reloc_state(s, rid, st, sizeof st, NULL), FC_OK);
    return st;
}

#define REQ(rid, key, tasks)                                                                   \
    "{\"schema\":\"fluid.request/1\",\"relocation_id\":\"" rid "\",\"idempotency_key\":\"" key \
    "\",\"plan\":{\"tasks\":[" tasks "]}}"
#define T(id, deps) "{\"task_id\":\"" id "\",\"stages\":[{\"kind\":\"checksum\"}],\"depends_on\":" deps "}"

Test(store, plan_runs_in_dependency_order_to_done)
{
    fresh_db();
    struct fc_store *s = open_db(8);
    struct fc_request *r = req(REQ("r-1", "k-1", T("a", "[]") "," T("b", "[\"a\"]") "," T("c", "[]")));
    bool dup;
    cr_assert_eq(fc_store_add_request(s, r, &dup, NULL), FC_OK, "%s", fc_error_msg());
    cr_assert(!dup);
    cr_assert_str_eq(drain(s), "relocation.r-1.state.accepted default.checksum default.checksum "
                               "relocation.r-1.state.running");
    cr_assert_str_eq(state_of(s, "r-1"), "running");

    event(s, "r-1", "a", "k-1/a", FC_TS_STARTED, true);
    cr_assert_str_eq(drain(s), "");
    event(s, "r-1", "a", "k-1/a", FC_TS_DONE, true);
    cr_assert_str_eq(drain(s), "default.checksum", "b is published once a is done");
    event(s, "r-1", "c", "k-1/c", FC_TS_DONE, true);
    event(s, "r-1", "b", "k-1/b", FC_TS_DONE, true);
    cr_assert_str_eq(drain(s), "relocation.r-1.state.done");
    cr_assert_str_eq(state_of(s, "r-1"), "done");

    /* a late or repeated event changes nothing */
    event(s, "r-1", "b", "k-1/b", FC_TS_FAILED, true);
    cr_assert_str_eq(drain(s), "");
    cr_assert_str_eq(state_of(s, "r-1"), "done");
    /* not ours */
    event(s, "r-1", "zz", "k-1/zz", FC_TS_DONE, false);
    event(s, "r-1", "a", "other-key", FC_TS_DONE, false);

    struct fc_status st = {0};
    cr_assert_eq(fc_store_status(s, "r-1", &st), FC_OK);
    cr_assert(st.found);
    cr_assert_eq(st.ntasks, 3);
    cr_assert_str_eq(st.tasks[1].task_id, "b");
    cr_assert_str_eq(st.tasks[1].state, "done");
    st.relocation_id = strdup("r-1");
    st.correlation_id = strdup("c-1");
    json_auto_t *j = fc_status_to_json(&st);
    cr_assert_eq(fc_msg_validate_json(j, FC_SCHEMA_STATUS), FC_OK, "%s", fc_error_msg());
    free(st.relocation_id);
    free(st.correlation_id);
    st.relocation_id = st.correlation_id = NULL;
    struct fc_status *heap = malloc(sizeof *heap);
    *heap = st;
    fc_status_free(heap);
    fc_request_free(r);
    fc_store_close(s);
}

Test(store, resubmit_is_a_no_op_and_conflicts_are_rejected)
{
    fresh_db();
    struct fc_store *s = open_db(8);
    struct fc_request *r = req(REQ("r-2", "k-2", T("a", "[]")));
    bool dup;
    cr_assert_eq(fc_store_add_request(s, r, &dup, NULL), FC_OK);
    drain(s);
    cr_assert_eq(fc_store_add_request(s, r, &dup, NULL), FC_OK);
    cr_assert(dup);
    cr_assert_str_eq(drain(s), "", "a re-submitted request publishes nothing");

    struct fc_request *r2 = req(REQ("r-2", "k-other", T("a", "[]")));
    const char *path = NULL;
    cr_assert_eq(fc_store_add_request(s, r2, &dup, &path), FC_E_CONFLICT);
    cr_assert_str_eq(path, "relocation_id");
    cr_assert_str_eq(drain(s), "");
    fc_request_free(r);
    fc_request_free(r2);
    fc_store_close(s);
}

Test(store, reopen_resumes_without_republishing)
{
    fresh_db();
    struct fc_store *s = open_db(1);
    struct fc_request *r = req(REQ("r-3", "k-3", T("a", "[]") "," T("b", "[]") "," T("c", "[]")));
    bool dup;
    cr_assert_eq(fc_store_add_request(s, r, &dup, NULL), FC_OK);
    cr_assert_str_eq(drain(s), "relocation.r-3.state.accepted default.checksum "
                               "relocation.r-3.state.running", "one task at a time");
    event(s, "r-3", "a", "k-3/a", FC_TS_DONE, true);
    /* crash before b's message left the outbox */
    fc_store_close(s);

    s = open_db(1);
    cr_assert_eq(fc_store_advance_all(s), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(drain(s), "default.checksum", "b, still in the outbox, goes out once");
    cr_assert_eq(fc_store_advance_all(s), FC_OK);
    cr_assert_str_eq(drain(s), "", "nothing is published twice");
    event(s, "r-3", "b", "k-3/b", FC_TS_DONE, true);
    cr_assert_str_eq(drain(s), "default.checksum");
    fc_request_free(r);
    fc_store_close(s);
}

Test(store, failure_and_cancel)
{
    fresh_db();
    struct fc_store *s = open_db(8);
    struct fc_request *r = req(REQ("r-4", "k-4", T("a", "[]") "," T("b", "[\"a\"]")));
    bool dup, known;
    cr_assert_eq(fc_store_add_request(s, r, &dup, NULL), FC_OK);
    drain(s);
    event(s, "r-4", "a", "k-4/a", FC_TS_FAILED, true);
    cr_assert_str_eq(drain(s), "relocation.r-4.state.failed");
    struct fc_status st = {0};
    cr_assert_eq(fc_store_status(s, "r-4", &st), FC_OK);
    cr_assert_str_eq(st.error, "task a: FC_E_CHILD: exit 3");
    cr_assert_str_eq(st.tasks[1].state, "cancelled");
    struct fc_status *heap = malloc(sizeof *heap);
    *heap = st;
    fc_status_free(heap);

    struct fc_request *r5 = req(REQ("r-5", "k-5", T("a", "[]") "," T("b", "[\"a\"]")));
    cr_assert_eq(fc_store_add_request(s, r5, &dup, NULL), FC_OK);
    drain(s);
    cr_assert_eq(fc_store_cancel(s, "r-5", "operator", &known), FC_OK);
    cr_assert(known);
    cr_assert_str_eq(drain(s), "", "a is still queued: the relocation waits for it");
    event(s, "r-5", "a", "k-5/a", FC_TS_DONE, true);
    cr_assert_str_eq(drain(s), "relocation.r-5.state.cancelled");
    cr_assert_eq(fc_store_cancel(s, "r-nope", "x", &known), FC_OK);
    cr_assert(!known);
    fc_request_free(r);
    fc_request_free(r5);
    fc_store_close(s);
}

Test(store, long_chain_one_task_at_a_time)
{
    fresh_db();
    struct fc_store *s = open_db(4);
    enum { N = 300 };
    static char buf[100000];
    size_t n = (size_t)snprintf(buf, sizeof buf,
                                "{\"schema\":\"fluid.request/1\",\"relocation_id\":\"r-6\","
                                "\"idempotency_key\":\"k-6\",\"plan\":{\"tasks\":[");
    for (int i = 0; i < N; i++) {
        char dep[32] = "[]";
        if (i)
            snprintf(dep, sizeof dep, "[\"t%d\"]", i - 1);
        n += (size_t)snprintf(buf + n, sizeof buf - n,
                              "%s{\"task_id\":\"t%d\",\"stages\":[{\"kind\":\"test\"}],"
                              "\"depends_on\":%s}", i ? "," : "", i, dep);
    }
    snprintf(buf + n, sizeof buf - n, "]}}");
    struct fc_request *r = req(buf);
    bool dup;
    cr_assert_eq(fc_store_add_request(s, r, &dup, NULL), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(drain(s), "relocation.r-6.state.accepted default.test "
                               "relocation.r-6.state.running");
    for (int i = 0; i < N; i++) {
        char tid[16], key[32];
        snprintf(tid, sizeof tid, "t%d", i);
        snprintf(key, sizeof key, "k-6/t%d", i);
        event(s, "r-6", tid, key, FC_TS_DONE, true);
        cr_assert_str_eq(drain(s), i + 1 < N ? "default.test" : "relocation.r-6.state.done",
                         "after t%d", i);
    }
    fc_request_free(r);
    fc_store_close(s);
}

/* fluidctl resume: only what failed or was cancelled runs again, under new keys (the brokers
 * answer an old key with its recorded outcome); done tasks stay done. */
Test(store, resume_runs_failed_and_cancelled_tasks_again)
{
    fresh_db();
    struct fc_store *s = open_db(8);
    struct fc_request *r = req(REQ("r-7", "k-7", T("a", "[]") "," T("b", "[\"a\"]") "," T("c", "[]")));
    bool dup;
    struct fc_resume_result res;
    cr_assert_eq(fc_store_add_request(s, r, &dup, NULL), FC_OK);
    drain(s);
    cr_assert_eq(fc_store_resume(s, "r-7", &res), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(res.refused, "the relocation is still running");
    cr_assert_str_eq(drain(s), "", "a refused resume changes nothing");
    event(s, "r-7", "c", "k-7/c", FC_TS_DONE, true);
    event(s, "r-7", "a", "k-7/a", FC_TS_FAILED, true);
    cr_assert_str_eq(drain(s), "relocation.r-7.state.failed");

    cr_assert_eq(fc_store_resume(s, "r-7", &res), FC_OK, "%s", fc_error_msg());
    cr_assert_null(res.refused);
    cr_assert_eq(res.reset, 2, "a (failed) and b (cancelled), not c (done)");
    cr_assert(!res.full && !res.replan);
    cr_assert_str_eq(drain(s), "resume.r-7 relocation.r-7.state.accepted default.checksum "
                               "relocation.r-7.state.running",
                     "brokers told first, then a runs again");
    cr_assert_str_eq(state_of(s, "r-7"), "running");
    struct fc_status st = {0};
    cr_assert_eq(fc_store_status(s, "r-7", &st), FC_OK);
    cr_assert_null(st.error, "the old failure is cleared");
    cr_assert_str_eq(st.tasks[0].state, "queued");
    cr_assert_str_eq(st.tasks[1].state, "pending");
    cr_assert_str_eq(st.tasks[2].state, "done");
    struct fc_status *heap = malloc(sizeof *heap);
    *heap = st;
    fc_status_free(heap);

    /* a late event of the first run (old key) is not this run's */
    event(s, "r-7", "a", "k-7/a", FC_TS_DONE, false);
    cr_assert_str_eq(drain(s), "");
    event(s, "r-7", "a", "k-7/a/r1", FC_TS_FAILED, true);
    cr_assert_str_eq(drain(s), "relocation.r-7.state.failed");

    /* resumed again: the next key */
    cr_assert_eq(fc_store_resume(s, "r-7", &res), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(res.reset, 2);
    drain(s);
    event(s, "r-7", "a", "k-7/a/r1", FC_TS_DONE, false);
    event(s, "r-7", "a", "k-7/a/r2", FC_TS_DONE, true);
    cr_assert_str_eq(drain(s), "default.checksum", "b follows a");
    event(s, "r-7", "b", "k-7/b/r2", FC_TS_DONE, true);
    cr_assert_str_eq(drain(s), "relocation.r-7.state.done");

    cr_assert_eq(fc_store_resume(s, "r-7", &res), FC_OK);
    cr_assert_str_eq(res.refused, "the relocation is done: nothing to resume");
    cr_assert_str_eq(drain(s), "");
    cr_assert_eq(fc_store_resume(s, "r-nope", &res), FC_E_NOTFOUND);
    fc_request_free(r);
    fc_store_close(s);
}

Test(store, resume_after_cancel_and_after_cleanup)
{
    fresh_db();
    struct fc_store *s = open_db(8);
    struct fc_request *r = req(REQ("r-8", "k-8", T("a", "[]") "," T("b", "[\"a\"]")));
    bool dup, known;
    struct fc_resume_result res;
    cr_assert_eq(fc_store_add_request(s, r, &dup, NULL), FC_OK);
    drain(s);
    cr_assert_eq(fc_store_cancel(s, "r-8", "operator", &known), FC_OK);
    event(s, "r-8", "a", "k-8/a", FC_TS_DONE, true);
    cr_assert_str_eq(drain(s), "relocation.r-8.state.cancelled");
    cr_assert_eq(fc_store_resume(s, "r-8", &res), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(res.reset, 1, "b only: a is done");
    cr_assert_str_eq(drain(s), "resume.r-8 relocation.r-8.state.accepted default.checksum "
                               "relocation.r-8.state.running",
                     "the cancel is lifted: b is published");
    event(s, "r-8", "b", "k-8/b/r1", FC_TS_FAILED, true);
    cr_assert_str_eq(drain(s), "relocation.r-8.state.failed");

    /* cleaned up since: what a made is gone, so every task runs again */
    json_auto_t *rep = json_pack("{s:[]}", "deleted");
    cr_assert_eq(fc_store_report_put(s, "r-8", "cleanup", rep, false), FC_OK);
    cr_assert_eq(fc_store_resume(s, "r-8", &res), FC_OK, "%s", fc_error_msg());
    cr_assert(res.full);
    cr_assert_eq(res.reset, 2);
    cr_assert_str_eq(drain(s), "resume.r-8 relocation.r-8.state.accepted default.checksum "
                               "relocation.r-8.state.running");
    json_t *gone = NULL;
    cr_assert_eq(fc_store_report_get(s, "r-8", "cleanup", &gone), FC_OK);
    cr_assert_null(gone, "the cleanup record is dropped: a new failure can be cleaned up");
    event(s, "r-8", "a", "k-8/a/r1", FC_TS_DONE, true);
    event(s, "r-8", "b", "k-8/b/r2", FC_TS_DONE, true);
    cr_assert_str_eq(drain(s), "default.checksum relocation.r-8.state.done");
    fc_request_free(r);
    fc_store_close(s);
}

Test(store, resume_after_a_planning_failure_plans_again)
{
    fresh_db();
    struct fc_store *s = open_db(8);
    const char *body = "{\"schema\":\"fluid.request/1\",\"relocation_id\":\"r-9\","
                       "\"idempotency_key\":\"k-9\",\"source\":{\"cloud\":\"a\"},"
                       "\"target\":{\"cloud\":\"b\"},\"selector\":{\"tag\":\"web\"}}";
    struct fc_request *r = req(body);
    bool dup, found;
    struct fc_resume_result res;
    cr_assert_eq(fc_store_add_failed(s, r, "planning: open source cloud \"a\": unknown", &dup,
                                     NULL), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(drain(s), "relocation.r-9.state.failed");
    cr_assert_eq(fc_store_resume(s, "r-9", &res), FC_OK, "%s", fc_error_msg());
    cr_assert(res.replan);
    cr_assert_eq(res.reset, 0);
    cr_assert_str_eq(state_of(s, "r-9"), "", "forgotten until the request arrives again");
    cr_assert_eq(fc_store_has_key(s, "k-9", &found), FC_OK);
    cr_assert(!found, "so that the conduit plans it");
    struct fc_outbox_msg m;
    cr_assert_eq(fc_store_outbox_next(s, &m, &found), FC_OK);
    cr_assert(found);
    cr_assert_str_eq(m.exchange, "");
    cr_assert_str_eq(m.routing_key, "fluid.requests");
    cr_assert_str_eq(m.message_id, "k-9");
    struct fc_request *again = NULL;
    cr_assert_eq(fc_request_parse(m.body, strlen(m.body), &again), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(again->relocation_id, "r-9");
    cr_assert_str_eq(again->idempotency_key, "k-9");
    fc_request_free(again);
    fc_outbox_msg_clear(&m);
    cr_assert_eq(fc_store_resume(s, "r-9", &res), FC_E_NOTFOUND);
    fc_request_free(r);
    fc_store_close(s);
}
