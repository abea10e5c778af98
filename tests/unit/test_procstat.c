/* /proc/PID/stat parsing: odd command names, truncation, garbage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "procstat.h"

/* A real line from this kind of machine, with a command name that holds a
 * space and a closing parenthesis. */
static const char line[] =
    "4242 (we ird) (x) S 1 4242 4242 0 -1 4194560 1517 0 0 0 123 45 0 0 20 0 1 0 "
    "98765 12345678 2048 18446744073709551615 1 1 0 0 0 0 0 4096 65538 0 0 0 17 1 0 0 0 0 0\n";

static void test_parse_fields(void **state)
{
    (void)state;
    struct procstat st;
    assert_int_equal(procstat_parse(line, strlen(line), &st), 0);
    assert_int_equal(st.state, 'S');
    assert_int_equal(st.ppid, 1);
    assert_int_equal(st.pgrp, 4242);
    assert_int_equal(st.sid, 4242);
    assert_int_equal(st.utime_ticks, 123);
    assert_int_equal(st.stime_ticks, 45);
    assert_int_equal(st.start_ticks, 98765);
    assert_int_equal(st.vsize_bytes, 12345678);
    assert_int_equal(st.rss_pages, 2048);
}

static void test_truncated_and_garbage(void **state)
{
    (void)state;
    struct procstat st;
    /* cut before rss */
    const char *cut = strstr(line, " 2048");
    assert_int_equal(procstat_parse(line, (size_t)(cut - line), &st), -EINVAL);
    assert_int_equal(procstat_parse("", 0, &st), -EINVAL);
    const char *bad[] = {
        "no parens at all 1 2 3",
        "12 (x) SS 1 2 3",
        "12 (x) S one 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22",
        "12 x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(procstat_parse(bad[i], strlen(bad[i]), &st), -EINVAL);
}

static void test_read_self_and_gone(void **state)
{
    (void)state;
    struct procstat st;
    assert_int_equal(procstat_read(0, &st), 0);
    assert_int_equal(st.ppid, getppid());
    assert_true(st.rss_pages > 0);
    assert_true(st.vsize_bytes > 0);
    assert_int_equal(procstat_read(getpid(), &st), 0);
    assert_int_equal(st.sid, getsid(0));
    /* pid_max is at most 4194304 */
    assert_int_equal(procstat_read(4194305 + 7, &st), -ESRCH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_truncated_and_garbage),
        cmocka_unit_test(test_read_self_and_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
