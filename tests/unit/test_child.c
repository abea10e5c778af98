/* The child state machine and the backoff arithmetic, without processes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>

#include "child.h"

#define MS CLOCK_NS_PER_MS
#define S CLOCK_NS_PER_S
#define STOP_TIMEOUT (5 * S)

/* Wait statuses as waitpid() builds them. */
static int exited(int code) { return (code & 0xff) << 8; }
static int signalled(int sig) { return sig & 0x7f; }

static void start_running(struct child_machine *m, int64_t now)
{
    child_machine_init(m, STOP_TIMEOUT);
    assert_int_equal(child_step(m, CHILD_EV_START, now, 0), CHILD_ACT_SPAWN);
    assert_int_equal(child_step(m, CHILD_EV_SPAWNED, now, 0), CHILD_ACT_NONE);
    assert_int_equal(m->state, CHILD_RUNNING);
}

static void test_backoff_doubles_to_cap(void **state)
{
    (void)state;
    assert_int_equal(child_backoff_next(0), 100 * MS);
    assert_int_equal(child_backoff_next(100 * MS), 200 * MS);
    assert_int_equal(child_backoff_next(200 * MS), 400 * MS);
    int64_t d = 100 * MS;
    int steps = 0;
    while (d < 30 * S) {
        d = child_backoff_next(d);
        steps++;
    }
    assert_int_equal(d, 30 * S);
    /* 100ms * 2^9 = 51.2 s > 30 s: the ninth doubling is capped */
    assert_int_equal(steps, 9);
    assert_int_equal(child_backoff_next(30 * S), 30 * S);
    assert_int_equal(child_backoff_next(20 * S), 30 * S);
    assert_int_equal(child_backoff_next(15 * S), 30 * S);
    assert_int_equal(child_backoff_next(14 * S), 28 * S);
}

static void test_start_spawns(void **state)
{
    (void)state;
    struct child_machine m;
    child_machine_init(&m, STOP_TIMEOUT);
    assert_int_equal(m.state, CHILD_IDLE);
    assert_int_equal(child_step(&m, CHILD_EV_START, 1000, 0), CHILD_ACT_SPAWN);
    /* a second START while the spawn is pending does nothing */
    assert_int_equal(child_step(&m, CHILD_EV_START, 1000, 0), CHILD_ACT_NONE);
    assert_int_equal(child_step(&m, CHILD_EV_SPAWNED, 2000, 0), CHILD_ACT_NONE);
    assert_int_equal(m.state, CHILD_RUNNING);
    assert_int_equal(m.started_ns, 2000);
    assert_int_equal(m.deadline_ns, 0);
}

static void test_exit_counts_and_backs_off(void **state)
{
    (void)state;
    struct child_machine m;
    int64_t now = 10 * S;
    start_running(&m, now);
    now += 1 * S;
    assert_int_equal(child_step(&m, CHILD_EV_EXITED, now, exited(3)), CHILD_ACT_NONE);
    assert_int_equal(m.state, CHILD_BACKOFF);
    assert_int_equal(m.restarts[CHILD_REASON_EXIT], 1);
    assert_int_equal(m.restarts[CHILD_REASON_SIGNAL], 0);
    assert_int_equal(m.deadline_ns, now + 100 * MS);
    assert_int_equal(m.last_status, exited(3));

    /* not due yet */
    assert_int_equal(child_step(&m, CHILD_EV_TICK, now + 99 * MS, 0), CHILD_ACT_NONE);
    assert_int_equal(child_step(&m, CHILD_EV_TICK, now + 100 * MS, 0), CHILD_ACT_SPAWN);
    assert_int_equal(child_step(&m, CHILD_EV_SPAWNED, now + 100 * MS, 0), CHILD_ACT_NONE);
    assert_int_equal(m.state, CHILD_RUNNING);
}

static void test_growing_intervals(void **state)
{
    (void)state;
    struct child_machine m;
    int64_t now = 0;
    start_running(&m, now);
    int64_t expect = 100 * MS;
    for (int i = 0; i < 12; i++) {
        now += 10 * MS; /* dies at once, every time */
        child_step(&m, CHILD_EV_EXITED, now, exited(3));
        assert_int_equal(m.deadline_ns - now, expect);
        now = m.deadline_ns;
        assert_int_equal(child_step(&m, CHILD_EV_TICK, now, 0), CHILD_ACT_SPAWN);
        child_step(&m, CHILD_EV_SPAWNED, now, 0);
        expect = expect * 2 > 30 * S ? 30 * S : expect * 2;
    }
    assert_int_equal(m.restarts[CHILD_REASON_EXIT], 12);
    assert_int_equal(child_restarts_total(&m), 12);
}

static void test_backoff_resets_after_healthy_minute(void **state)
{
    (void)state;
    struct child_machine m;
    int64_t now = 0;
    start_running(&m, now);
    for (int i = 0; i < 4; i++) { /* 100, 200, 400, 800 ms */
        child_step(&m, CHILD_EV_EXITED, now, exited(1));
        now = m.deadline_ns;
        child_step(&m, CHILD_EV_TICK, now, 0);
        child_step(&m, CHILD_EV_SPAWNED, now, 0);
    }
    assert_int_equal(m.backoff_ns, 1600 * MS);
    /* 59.9 s up: not yet healthy long enough */
    now += 59900 * MS;
    child_step(&m, CHILD_EV_EXITED, now, exited(1));
    assert_int_equal(m.deadline_ns - now, 1600 * MS);
    now = m.deadline_ns;
    child_step(&m, CHILD_EV_TICK, now, 0);
    child_step(&m, CHILD_EV_SPAWNED, now, 0);
    /* a full minute up: back to the minimum */
    now += 60 * S;
    child_step(&m, CHILD_EV_EXITED, now, exited(1));
    assert_int_equal(m.deadline_ns - now, 100 * MS);
}

static void test_signal_reason(void **state)
{
    (void)state;
    struct child_machine m;
    start_running(&m, 0);
    child_step(&m, CHILD_EV_EXITED, 5 * MS, signalled(SIGKILL));
    assert_int_equal(m.restarts[CHILD_REASON_SIGNAL], 1);
    assert_int_equal(m.restarts[CHILD_REASON_EXIT], 0);
    assert_true(WIFSIGNALED(m.last_status));
}

static void test_memory_limit_restart(void **state)
{
    (void)state;
    struct child_machine m;
    int64_t now = 1 * S;
    start_running(&m, now);
    assert_int_equal(child_step(&m, CHILD_EV_RESTART, now, CHILD_REASON_MEMORY_LIMIT), CHILD_ACT_TERM);
    assert_int_equal(m.state, CHILD_STOPPING);
    assert_int_equal(m.deadline_ns, now + STOP_TIMEOUT);
    /* another restart request while stopping changes nothing */
    assert_int_equal(child_step(&m, CHILD_EV_RESTART, now, CHILD_REASON_UNHEALTHY), CHILD_ACT_NONE);
    /* it dies of our SIGTERM: counted as memory_limit, not signal */
    child_step(&m, CHILD_EV_EXITED, now + 10 * MS, signalled(SIGTERM));
    assert_int_equal(m.restarts[CHILD_REASON_MEMORY_LIMIT], 1);
    assert_int_equal(m.restarts[CHILD_REASON_SIGNAL], 0);
    assert_int_equal(child_restarts_total(&m), 1);
    assert_int_equal(m.state, CHILD_BACKOFF);
    assert_int_equal(m.deadline_ns, now + 10 * MS + 100 * MS);
}

static void test_stop_escalates_to_kill(void **state)
{
    (void)state;
    struct child_machine m;
    int64_t now = 0;
    start_running(&m, now);
    assert_int_equal(child_step(&m, CHILD_EV_STOP, now, 0), CHILD_ACT_TERM);
    assert_int_equal(child_step(&m, CHILD_EV_TICK, now + STOP_TIMEOUT - 1, 0), CHILD_ACT_NONE);
    assert_int_equal(child_step(&m, CHILD_EV_TICK, now + STOP_TIMEOUT, 0), CHILD_ACT_KILL);
    /* SIGKILL is sent once */
    assert_int_equal(child_step(&m, CHILD_EV_TICK, now + 2 * STOP_TIMEOUT, 0), CHILD_ACT_NONE);
    child_step(&m, CHILD_EV_EXITED, now + STOP_TIMEOUT + 1, signalled(SIGKILL));
    assert_int_equal(m.state, CHILD_STOPPED);
    assert_int_equal(m.deadline_ns, 0);
    /* a stop for good is not a restart */
    for (int r = 0; r < CHILD_REASON_COUNT; r++)
        assert_int_equal(m.restarts[r], 0);
    /* nothing brings it back but START */
    assert_int_equal(child_step(&m, CHILD_EV_TICK, now + 100 * S, 0), CHILD_ACT_NONE);
    assert_int_equal(child_step(&m, CHILD_EV_START, now + 100 * S, 0), CHILD_ACT_SPAWN);
}

/* A child that drains on SIGTERM (the renderer) gets its drain on top of
 * stop_timeout before SIGKILL, when it stops for good and when it restarts,
 * but not when it is unhealthy: then it answers nothing anyway. */
static void test_drain_delays_kill_but_not_when_unhealthy(void **state)
{
    (void)state;
    struct child_machine m;
    int64_t now = 1 * S;
    start_running(&m, now);
    m.drain_ns = 15 * S;
    assert_int_equal(child_step(&m, CHILD_EV_STOP, now, 0), CHILD_ACT_TERM);
    assert_int_equal(m.deadline_ns, now + 15 * S + STOP_TIMEOUT);
    assert_int_equal(child_step(&m, CHILD_EV_TICK, now + STOP_TIMEOUT, 0), CHILD_ACT_NONE);
    assert_int_equal(child_step(&m, CHILD_EV_TICK, now + 15 * S + STOP_TIMEOUT, 0), CHILD_ACT_KILL);

    start_running(&m, now);
    m.drain_ns = 15 * S;
    assert_int_equal(child_step(&m, CHILD_EV_RESTART, now, CHILD_REASON_REQUESTED), CHILD_ACT_TERM);
    assert_int_equal(m.deadline_ns, now + 15 * S + STOP_TIMEOUT);

    start_running(&m, now);
    m.drain_ns = 15 * S;
    assert_int_equal(child_step(&m, CHILD_EV_RESTART, now, CHILD_REASON_UNHEALTHY), CHILD_ACT_TERM);
    assert_int_equal(m.deadline_ns, now + STOP_TIMEOUT);
    assert_int_equal(child_step(&m, CHILD_EV_TICK, now + STOP_TIMEOUT, 0), CHILD_ACT_KILL);
}

static void test_stop_during_backoff_and_restart(void **state)
{
    (void)state;
    struct child_machine m;
    start_running(&m, 0);
    child_step(&m, CHILD_EV_EXITED, 1, exited(1));
    assert_int_equal(m.state, CHILD_BACKOFF);
    assert_int_equal(child_step(&m, CHILD_EV_STOP, 2, 0), CHILD_ACT_NONE);
    assert_int_equal(m.state, CHILD_STOPPED);
    assert_int_equal(child_step(&m, CHILD_EV_TICK, 100 * S, 0), CHILD_ACT_NONE);

    /* a stop while a restart is under way wins */
    start_running(&m, 0);
    child_step(&m, CHILD_EV_RESTART, 0, CHILD_REASON_UNHEALTHY);
    assert_int_equal(child_step(&m, CHILD_EV_STOP, 1, 0), CHILD_ACT_NONE);
    child_step(&m, CHILD_EV_EXITED, 2, signalled(SIGTERM));
    assert_int_equal(m.state, CHILD_STOPPED);
}

static void test_requested_restart_is_immediate(void **state)
{
    (void)state;
    struct child_machine m;
    start_running(&m, 0);
    /* make the backoff long first */
    m.backoff_ns = 10 * S;
    child_step(&m, CHILD_EV_RESTART, 5, CHILD_REASON_REQUESTED);
    child_step(&m, CHILD_EV_EXITED, 7, signalled(SIGTERM));
    assert_int_equal(m.restarts[CHILD_REASON_REQUESTED], 1);
    assert_int_equal(m.deadline_ns, 7);
    assert_int_equal(m.backoff_ns, 10 * S);
    assert_int_equal(child_step(&m, CHILD_EV_TICK, 7, 0), CHILD_ACT_SPAWN);

    /* during a long backoff, a requested restart cuts the wait */
    child_step(&m, CHILD_EV_SPAWNED, 7, 0);
    child_step(&m, CHILD_EV_EXITED, 8, exited(1));
    assert_int_equal(m.deadline_ns, 8 + 10 * S);
    child_step(&m, CHILD_EV_RESTART, 9, CHILD_REASON_REQUESTED);
    assert_int_equal(m.deadline_ns, 9);
}

static void test_spawn_failure_backs_off(void **state)
{
    (void)state;
    struct child_machine m;
    child_machine_init(&m, STOP_TIMEOUT);
    child_step(&m, CHILD_EV_START, 0, 0);
    child_step(&m, CHILD_EV_SPAWN_FAILED, 0, 0);
    assert_int_equal(m.state, CHILD_BACKOFF);
    assert_int_equal(m.deadline_ns, 100 * MS);
    assert_int_equal(child_step(&m, CHILD_EV_TICK, 100 * MS, 0), CHILD_ACT_SPAWN);
    child_step(&m, CHILD_EV_SPAWN_FAILED, 100 * MS, 0);
    assert_int_equal(m.deadline_ns, 300 * MS);
}

static void test_ignores_events_that_do_not_apply(void **state)
{
    (void)state;
    struct child_machine m;
    child_machine_init(&m, STOP_TIMEOUT);
    assert_int_equal(child_step(&m, CHILD_EV_EXITED, 0, exited(0)), CHILD_ACT_NONE);
    assert_int_equal(child_step(&m, CHILD_EV_SPAWNED, 0, 0), CHILD_ACT_NONE);
    assert_int_equal(m.state, CHILD_IDLE);
    assert_int_equal(child_step(&m, CHILD_EV_RESTART, 0, 99), CHILD_ACT_NONE);
    assert_int_equal(child_step(&m, CHILD_EV_RESTART, 0, -1), CHILD_ACT_NONE);
    start_running(&m, 0);
    assert_int_equal(child_step(&m, CHILD_EV_RESTART, 0, 42), CHILD_ACT_NONE);
    assert_int_equal(m.state, CHILD_RUNNING);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(child_state_name(CHILD_RUNNING), "running");
    assert_string_equal(child_state_name(CHILD_BACKOFF), "backoff");
    assert_string_equal(child_reason_name(CHILD_REASON_MEMORY_LIMIT), "memory_limit");
    assert_string_equal(child_reason_name(CHILD_REASON_REQUESTED), "requested");
    assert_string_equal(child_reason_name(CHILD_REASON_COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_doubles_to_cap),
        cmocka_unit_test(test_start_spawns),
        cmocka_unit_test(test_exit_counts_and_backs_off),
        cmocka_unit_test(test_growing_intervals),
        cmocka_unit_test(test_backoff_resets_after_healthy_minute),
        cmocka_unit_test(test_signal_reason),
        cmocka_unit_test(test_memory_limit_restart),
        cmocka_unit_test(test_stop_escalates_to_kill),
        cmocka_unit_test(test_drain_delays_kill_but_not_when_unhealthy),
        cmocka_unit_test(test_stop_during_backoff_and_restart),
        cmocka_unit_test(test_requested_restart_is_immediate),
        cmocka_unit_test(test_spawn_failure_backs_off),
        cmocka_unit_test(test_ignores_events_that_do_not_apply),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
