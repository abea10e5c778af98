/* Health probe decisions: what the renderer's answer means for itself and
 * for each browser, what a probe without an answer means, and the /proc
 * fallback against a real stopped process. Answers go through the line
 * parser (common/ctl.c), as they arrive in the supervisor. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl.h"
#include "probe.h"
#include "procstat.h"

static struct ctl_health answer(const char *line)
{
    struct ctl_health h;
    assert_int_equal(ctl_health_parse(line, &h), 0);
    return h;
}

static void test_renderer(void **state)
{
    (void)state;
    struct ctl_health h = answer("alive 7 uu\n");
    assert_int_equal(probe_renderer_answer(&h), PROBE_OK);
    /* No browser connected is still alive: restarting the renderer would
     * not bring one. */
    h = answer("alive 8 --\n");
    assert_int_equal(probe_renderer_answer(&h), PROBE_OK);
    h = answer("stalled 9\n");
    assert_int_equal(probe_renderer_answer(&h), PROBE_MISS_STALLED);
    assert_true(probe_is_miss(PROBE_MISS_STALLED));
    assert_int_equal(probe_renderer_deadline(), PROBE_MISS_TIMEOUT);
    /* Its control socket is not there (yet): a miss now, not at the deadline. */
    assert_int_equal(probe_send_failed(1, -ENOENT), PROBE_MISS_UNREACHABLE);
    assert_int_equal(probe_send_failed(1, -ECONNREFUSED), PROBE_MISS_UNREACHABLE);
    assert_true(probe_is_miss(PROBE_MISS_UNREACHABLE));
    /* A browser's probe waits for /proc at its deadline. */
    assert_int_equal(probe_send_failed(0, -ENOENT), PROBE_WAIT);
    assert_true(probe_is_miss(probe_renderer_deadline()));
}

static void test_browser(void **state)
{
    (void)state;
    struct ctl_health h = answer("alive 7 us-\n");
    assert_int_equal(probe_browser_answer(&h, 0), PROBE_OK);
    assert_int_equal(probe_browser_answer(&h, 1), PROBE_MISS_SILENT);
    assert_true(probe_is_miss(PROBE_MISS_SILENT));
    /* The renderer has no connection to it: /proc decides at the deadline. */
    assert_int_equal(probe_browser_answer(&h, 2), PROBE_WAIT);
    /* More browsers than the renderer knows (a reload raised the count). */
    assert_int_equal(probe_browser_answer(&h, 3), PROBE_WAIT);
    /* A stalled renderer cannot tell about anyone. */
    h = answer("stalled 9\n");
    assert_int_equal(probe_browser_answer(&h, 0), PROBE_WAIT);
    assert_false(probe_is_miss(PROBE_WAIT));
}

static void test_browser_deadline(void **state)
{
    (void)state;
    /* Stopped for the whole probe: a miss. Stopped at one end only: it
     * may be a debugger's pause, or a SIGCONT; not a miss this time. */
    assert_int_equal(probe_browser_deadline(1, 1), PROBE_MISS_STOPPED);
    assert_true(probe_is_miss(PROBE_MISS_STOPPED));
    assert_int_equal(probe_browser_deadline(1, 0), PROBE_UNKNOWN);
    assert_int_equal(probe_browser_deadline(0, 1), PROBE_UNKNOWN);
    assert_int_equal(probe_browser_deadline(0, 0), PROBE_UNKNOWN);
    assert_false(probe_is_miss(PROBE_UNKNOWN));
    assert_false(probe_is_miss(PROBE_OK));
    for (int r = PROBE_WAIT; r <= PROBE_MISS_STOPPED; r++)
        assert_string_not_equal(probe_result_text((enum probe_result)r), "?");
}

static char state_of(pid_t pid)
{
    struct procstat st;
    assert_int_equal(procstat_read(pid, &st), 0);
    return st.state;
}

/* Waits (up to 5 s) until pid's state is stopped or not, as wanted. */
static int wait_stopped(pid_t pid, int want)
{
    for (int i = 0; i < 500; i++) {
        if (probe_state_stopped(state_of(pid)) == want)
            return 1;
        nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
    }
    return 0;
}

static void test_stopped_process(void **state)
{
    (void)state;
    assert_true(probe_state_stopped('T'));
    assert_true(probe_state_stopped('t'));
    assert_false(probe_state_stopped('S'));
    assert_false(probe_state_stopped('R'));
    assert_false(probe_state_stopped('Z'));

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (;;)
            pause();
    }
    assert_true(wait_stopped(pid, 0));
    kill(pid, SIGSTOP);
    assert_true(wait_stopped(pid, 1));
    kill(pid, SIGCONT);
    assert_true(wait_stopped(pid, 0));
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_renderer),
        cmocka_unit_test(test_browser),
        cmocka_unit_test(test_browser_deadline),
        cmocka_unit_test(test_stopped_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
