/* Control datagrams: the line parser, and a real exchange on Unix datagram
 * sockets that carries the sender's pid. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl.h"

static void test_parse(void **state)
{
    (void)state;
    unsigned n = 99;
    assert_int_equal(ctl_parse("drain 0", "drain", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ctl_parse("drain 15\n", "drain", &n), 0);
    assert_int_equal(n, 15);
    assert_int_equal(ctl_parse("drained 3\n", "drained", &n), 0);
    assert_int_equal(n, 3);
    /* The supervisor's figure for the renderer: KiB, up to 4 TiB. */
    assert_int_equal(ctl_parse("memory_kib 524288\n", "memory_kib", &n), 0);
    assert_int_equal(n, 524288);
    assert_int_equal(ctl_parse("memory_kib 4294967295\n", "memory_kib", &n), 0);
    assert_int_equal(n, 4294967295u);
    const char *bad[] = { "", "drain", "drain ", "drain x", "drain 1x", "drain -1", "drain 1 2", "drain 4294967296",
                          "drain 99999999999999999999",
                          "drained 1", "drain\t1", "DRAIN 1", " drain 1", "drain 1\n\n" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ctl_parse(bad[i], "drain", &n), -EINVAL);
}

static void test_probe_line(void **state)
{
    (void)state;
    char line[CTL_LINE_MAX];
    unsigned seq = 0, ms = 0;
    assert_int_equal(ctl_probe_format(line, sizeof(line), 17, 3000), 0);
    assert_string_equal(line, "probe 17 3000\n");
    assert_int_equal(ctl_probe_parse(line, &seq, &ms), 0);
    assert_int_equal(seq, 17);
    assert_int_equal(ms, 3000);
    assert_int_equal(ctl_probe_format(line, sizeof(line), UINT32_MAX, UINT32_MAX), 0);
    assert_true(strlen(line) < CTL_LINE_MAX);
    assert_int_equal(ctl_probe_parse(line, &seq, &ms), 0);
    assert_int_equal(seq, UINT32_MAX);
    assert_int_equal(ms, UINT32_MAX);
    assert_int_equal(ctl_probe_parse("probe 1 0", &seq, &ms), 0);
    const char *bad[] = { "", "probe", "probe 1", "probe 1 ", "probe  1 2", "probe 1 2 3", "probe x 2",
                          "probe 1 4294967296", "probe 1 2\n\n", "PROBE 1 2", "probe 1\t2", "probe -1 2",
                          "drain 1" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ctl_probe_parse(bad[i], &seq, &ms), -EINVAL);
}

static void test_health_line(void **state)
{
    (void)state;
    char line[CTL_LINE_MAX];
    struct ctl_health h = { .seq = 5, .nbrowsers = 3, .browsers = "us-" }, back;
    assert_int_equal(ctl_health_format(line, sizeof(line), &h), 0);
    assert_string_equal(line, "alive 5 us-\n");
    assert_int_equal(ctl_health_parse(line, &back), 0);
    assert_int_equal(back.seq, 5);
    assert_false(back.stalled);
    assert_int_equal(back.nbrowsers, 3);
    assert_string_equal(back.browsers, "us-");

    h = (struct ctl_health){ .seq = 6, .stalled = 1 };
    assert_int_equal(ctl_health_format(line, sizeof(line), &h), 0);
    assert_string_equal(line, "stalled 6\n");
    assert_int_equal(ctl_health_parse(line, &back), 0);
    assert_int_equal(back.seq, 6);
    assert_true(back.stalled);
    assert_int_equal(back.nbrowsers, 0);

    /* The longest line: the largest number and every browser. */
    h = (struct ctl_health){ .seq = UINT32_MAX, .nbrowsers = CTL_BROWSERS_MAX };
    memset(h.browsers, CTL_BROWSER_SILENT, CTL_BROWSERS_MAX);
    assert_int_equal(ctl_health_format(line, sizeof(line), &h), 0);
    assert_true(strlen(line) < CTL_LINE_MAX);
    assert_int_equal(ctl_health_parse(line, &back), 0);
    assert_int_equal(back.nbrowsers, CTL_BROWSERS_MAX);

    /* What the formatter refuses. */
    h = (struct ctl_health){ .seq = 1, .nbrowsers = CTL_BROWSERS_MAX + 1 };
    assert_int_equal(ctl_health_format(line, sizeof(line), &h), -EINVAL);
    h = (struct ctl_health){ .seq = 1, .nbrowsers = 0 };
    assert_int_equal(ctl_health_format(line, sizeof(line), &h), -EINVAL);
    h = (struct ctl_health){ .seq = 1, .nbrowsers = 2, .browsers = "ux" };
    assert_int_equal(ctl_health_format(line, sizeof(line), &h), -EINVAL);

    const char *bad[] = { "", "alive", "alive 1", "alive 1 ", "alive 1 ux", "alive x u", "alive 1 u u",
                          "alive 4294967296 u", "alive 1 uuuuuuuuuuuuuuuuu", "stalled", "stalled 1 u",
                          "stalled x", "ALIVE 1 u", "alive 1 u\n\n", "drained 1", "probe 1 2" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ctl_health_parse(bad[i], &back), -EINVAL);
}

static void test_exchange(void **state)
{
    (void)state;
    char dir[] = "/tmp/rv-ctl-test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, CTL_RENDERER);

    int rx = ctl_open(path);
    assert_true(rx >= 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    char line[CTL_LINE_MAX];
    pid_t pid = 0;
    assert_int_equal(ctl_recv(rx, line, sizeof(line), &pid), -EAGAIN);

    int tx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_int_equal(ctl_send(tx, path, "drain 1\n"), 0);
    assert_int_equal(ctl_recv(rx, line, sizeof(line), &pid), 8);
    assert_string_equal(line, "drain 1\n");
    assert_int_equal(pid, getpid()); /* the kernel says who sent it */

    /* Too long for a control line: refused as a whole, not cut. */
    char big[CTL_LINE_MAX * 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(ctl_send(tx, path, big), 0);
    assert_int_equal(ctl_recv(rx, line, sizeof(line), &pid), -EMSGSIZE);
    assert_int_equal(ctl_recv(rx, line, sizeof(line), &pid), -EAGAIN);

    /* Nobody there. */
    close(rx);
    unlink(path);
    assert_int_equal(ctl_send(tx, path, "drain 1\n"), -ENOENT);
    close(tx);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_probe_line),
        cmocka_unit_test(test_health_line),
        cmocka_unit_test(test_exchange),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
