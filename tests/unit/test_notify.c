/* notify_status_text: the STATUS= line systemd shows for the service. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "notify.h"

static struct child_machine machines[4];
static struct notify_child kids[4] = {
    { "exporter", &machines[0] },
    { "browser-0", &machines[1] },
    { "browser-1", &machines[2] },
    { "renderer", &machines[3] },
};

static void set_states(enum child_state a, enum child_state b, enum child_state c, enum child_state d)
{
    memset(machines, 0, sizeof(machines));
    machines[0].state = a;
    machines[1].state = b;
    machines[2].state = c;
    machines[3].state = d;
}

static void test_counts(void **state)
{
    (void)state;
    char buf[NOTIFY_STATUS_MAX];
    set_states(CHILD_RUNNING, CHILD_RUNNING, CHILD_RUNNING, CHILD_RUNNING);
    notify_status_text(kids, 4, 1, 0, buf, sizeof(buf));
    assert_string_equal(buf, "4 of 4 children running, 0 restarting");

    set_states(CHILD_RUNNING, CHILD_IDLE, CHILD_IDLE, CHILD_IDLE);
    notify_status_text(kids, 4, 0, 0, buf, sizeof(buf));
    assert_string_equal(buf, "starting, 1 of 4 children running, 0 restarting");
}

static void test_restarting_children_are_named(void **state)
{
    (void)state;
    char buf[NOTIFY_STATUS_MAX];
    /* Backoff, and stopping to restart, are restarting; stopping for good is not. */
    set_states(CHILD_RUNNING, CHILD_BACKOFF, CHILD_STOPPING, CHILD_STOPPING);
    machines[3].stop_for_good = 1;
    notify_status_text(kids, 4, 1, 0, buf, sizeof(buf));
    assert_string_equal(buf, "1 of 4 children running, 2 restarting (browser-0, browser-1)");
}

static void test_names_that_do_not_fit_are_cut(void **state)
{
    (void)state;
    char buf[48];
    set_states(CHILD_BACKOFF, CHILD_BACKOFF, CHILD_BACKOFF, CHILD_BACKOFF);
    notify_status_text(kids, 4, 1, 0, buf, sizeof(buf));
    assert_string_equal(buf, "0 of 4 children running, 4 restarting (...)");
    assert_true(strlen(buf) < sizeof(buf));
}

static void test_stopping(void **state)
{
    (void)state;
    char buf[NOTIFY_STATUS_MAX];
    set_states(CHILD_STOPPING, CHILD_STOPPED, CHILD_RUNNING, CHILD_STOPPED);
    notify_status_text(kids, 4, 1, 1, buf, sizeof(buf));
    assert_string_equal(buf, "stopping, 2 of 4 children left");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_restarting_children_are_named),
        cmocka_unit_test(test_names_that_do_not_fit_are_cut),
        cmocka_unit_test(test_stopping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
