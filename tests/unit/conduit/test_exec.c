/* SPDX-License-Identifier: Apache-2.0 */
/* The plan executor's rules (conduit/daemon/exec.c): dependency order, bounded parallelism,
 * stop on failure or cancel, final states. */
#include <criterion/criterion.h>

#include "exec.h"

static const char *const none[] = {NULL};
static const char *const dep_a[] = {"a"};
static const char *const dep_ab[] = {"a", "b"};

Test(exec, publishes_ready_tasks_in_order_within_the_bound)
{
    struct fc_exec_task t[] = {
        {"a", none, 0, FC_X_PENDING}, {"b", dep_a, 1, FC_X_PENDING},
        {"c", none, 0, FC_X_PENDING}, {"d", none, 0, FC_X_PENDING},
    };
    struct fc_exec_decision d;
    cr_assert_eq(fc_exec_decide(t, 4, false, 2, FC_RS_ACCEPTED, &d), FC_OK);
    cr_assert_eq(d.npublish, 2);
    cr_assert_eq(d.publish[0], 0);
    cr_assert_eq(d.publish[1], 2); /* b waits for a */
    cr_assert_eq(d.state, FC_RS_RUNNING);
    fc_exec_decision_free(&d);

    t[0].state = FC_X_DONE;
    t[2].state = FC_X_RUNNING;
    cr_assert_eq(fc_exec_decide(t, 4, false, 2, FC_RS_RUNNING, &d), FC_OK);
    cr_assert_eq(d.npublish, 1);
    cr_assert_eq(d.publish[0], 1); /* b is ready now, one slot left */
    fc_exec_decision_free(&d);
}

Test(exec, done_when_every_task_is_done)
{
    struct fc_exec_task t[] = {{"a", none, 0, FC_X_DONE}, {"b", dep_a, 1, FC_X_DONE}};
    struct fc_exec_decision d;
    cr_assert_eq(fc_exec_decide(t, 2, false, 4, FC_RS_RUNNING, &d), FC_OK);
    cr_assert_eq(d.state, FC_RS_DONE);
    cr_assert_eq(d.npublish, 0);
    fc_exec_decision_free(&d);
}

Test(exec, failure_stops_publishing_and_waits_for_in_flight_tasks)
{
    struct fc_exec_task t[] = {
        {"a", none, 0, FC_X_FAILED}, {"b", none, 0, FC_X_RUNNING},
        {"c", dep_ab, 2, FC_X_PENDING}, {"d", none, 0, FC_X_PENDING},
    };
    struct fc_exec_decision d;
    cr_assert_eq(fc_exec_decide(t, 4, false, 8, FC_RS_RUNNING, &d), FC_OK);
    cr_assert_eq(d.npublish, 0, "nothing is published after a failure");
    cr_assert_eq(d.nskip, 2);
    cr_assert_eq(d.state, FC_RS_RUNNING, "b is still running");
    cr_assert_str_eq(d.cause, "a");
    fc_exec_decision_free(&d);

    t[1].state = FC_X_DONE;
    t[2].state = t[3].state = FC_X_CANCELLED;
    cr_assert_eq(fc_exec_decide(t, 4, false, 8, FC_RS_RUNNING, &d), FC_OK);
    cr_assert_eq(d.state, FC_RS_FAILED);
    cr_assert_str_eq(d.cause, "a", "the failure is the cause, not the skipped tasks");
    fc_exec_decision_free(&d);
}

Test(exec, cancel_and_final_states)
{
    struct fc_exec_task t[] = {{"a", none, 0, FC_X_DONE}, {"b", dep_a, 1, FC_X_PENDING}};
    struct fc_exec_decision d;
    cr_assert_eq(fc_exec_decide(t, 2, true, 8, FC_RS_RUNNING, &d), FC_OK);
    cr_assert_eq(d.npublish, 0);
    cr_assert_eq(d.nskip, 1);
    cr_assert_eq(d.state, FC_RS_CANCELLED);
    fc_exec_decision_free(&d);

    cr_assert_eq(fc_exec_decide(t, 2, false, 8, FC_RS_CANCELLED, &d), FC_OK);
    cr_assert_eq(d.state, FC_RS_CANCELLED, "a final state never changes");
    cr_assert_eq(d.npublish, 0);
    fc_exec_decision_free(&d);
}
