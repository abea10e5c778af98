/* procfs: the parsers against captured and damaged /proc files, and the
 * readers against this very process and against one that does not exist. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "procfs.h"

#define KB 1024ull

/* Fixtures are small; a fixed buffer keeps the tests free of allocation. */
static size_t load_fixture(const char *name, char *buf, size_t size)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/proc/%s", FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open fixture %s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, size, f);
    assert_true(n < size);
    fclose(f);
    return n;
}

static int parse_rollup_fixture(const char *name, struct procfs_smaps_rollup *out)
{
    char buf[8192];
    size_t n = load_fixture(name, buf, sizeof(buf));
    return procfs_parse_smaps_rollup(buf, n, out);
}

static int parse_rollup_text(const char *text, struct procfs_smaps_rollup *out)
{
    return procfs_parse_smaps_rollup(text, strlen(text), out);
}

/* An unused pid: one above the kernel's pid_max cannot exist. */
static int absent_pid(void)
{
    char buf[32] = { 0 };
    int fd = open("/proc/sys/kernel/pid_max", O_RDONLY);
    assert_true(fd >= 0);
    assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
    close(fd);
    return atoi(buf) + 1;
}

static void test_rollup_shell(void **state)
{
    (void)state;
    struct procfs_smaps_rollup r;
    assert_int_equal(parse_rollup_fixture("smaps_rollup.bash", &r), 0);
    assert_int_equal(r.rss_bytes, 4104 * KB);
    assert_int_equal(r.pss_bytes, 1348 * KB);
}

static void test_rollup_big_process(void **state)
{
    (void)state;
    struct procfs_smaps_rollup r;
    assert_int_equal(parse_rollup_fixture("smaps_rollup.python3", &r), 0);
    assert_int_equal(r.rss_bytes, 76960 * KB);
    assert_int_equal(r.pss_bytes, 75690 * KB);
}

static void test_rollup_truncated(void **state)
{
    (void)state;
    struct procfs_smaps_rollup r;
    /* Cut in the middle of the Pss value: "Pss:   134" instead of 1348 kB. */
    assert_int_equal(parse_rollup_fixture("smaps_rollup.truncated", &r), -EINVAL);
    /* A whole-looking value without its newline may still have been cut. */
    assert_int_equal(parse_rollup_text("Rss: 10 kB\nPss: 5 kB", &r), -EINVAL);
    assert_int_equal(parse_rollup_text("Rss: 10 kB\nPss: 5 k", &r), -EINVAL);
    assert_int_equal(parse_rollup_text("Rss: 10 kB\nPss: 5 kB\n", &r), 0);
    assert_int_equal(r.pss_bytes, 5 * KB);
}

static void test_rollup_missing_pss(void **state)
{
    (void)state;
    struct procfs_smaps_rollup r;
    /* Pss_Dirty, Pss_Anon, ... are there; Pss itself is not. */
    assert_int_equal(parse_rollup_fixture("smaps_rollup.no_pss", &r), -EINVAL);
    assert_int_equal(parse_rollup_text("Pss: 5 kB\n", &r), -EINVAL);
}

static void test_rollup_garbage(void **state)
{
    (void)state;
    struct procfs_smaps_rollup r;
    assert_int_equal(parse_rollup_fixture("smaps_rollup.garbage", &r), -EINVAL);
    assert_int_equal(parse_rollup_text("hello\nworld\n", &r), -EINVAL);
    assert_int_equal(parse_rollup_text("Rss: kB\nPss: 1 kB\n", &r), -EINVAL);
    assert_int_equal(parse_rollup_text("Rss: 1 MB\nPss: 1 kB\n", &r), -EINVAL);
    assert_int_equal(parse_rollup_text("Rss: -1 kB\nPss: 1 kB\n", &r), -EINVAL);
    assert_int_equal(parse_rollup_text("Rss: 1 kB\nRss: 2 kB\nPss: 1 kB\n", &r), -EINVAL);
    /* kB that would overflow 64 bits once in bytes. */
    assert_int_equal(parse_rollup_text("Rss: 18014398509481984 kB\nPss: 1 kB\n", &r), -EINVAL);
    assert_int_equal(parse_rollup_text("Rss: 99999999999999999999999 kB\nPss: 1 kB\n", &r),
                     -EINVAL);
    assert_int_equal(parse_rollup_text("Rss: 18014398509481983 kB\nPss: 1 kB\n", &r), 0);
    assert_int_equal(r.rss_bytes, 18014398509481983ull * KB);
}

static void test_rollup_empty(void **state)
{
    (void)state;
    struct procfs_smaps_rollup r;
    /* What a zombie or a kernel thread shows. */
    assert_int_equal(procfs_parse_smaps_rollup("", 0, &r), -ENODATA);
}

static void test_limits(void **state)
{
    (void)state;
    char buf[8192];
    uint64_t soft = 0;
    size_t n = load_fixture("limits.bash", buf, sizeof(buf));
    assert_int_equal(procfs_parse_limits_nofile(buf, n, &soft), 0);
    assert_int_equal(soft, 20000);
    n = load_fixture("limits.unlimited", buf, sizeof(buf));
    assert_int_equal(procfs_parse_limits_nofile(buf, n, &soft), 0);
    assert_int_equal(soft, UINT64_MAX);
    /* Cut right after the soft value: it may have lost digits. */
    const char *cut = "Max open files            1024";
    assert_int_equal(procfs_parse_limits_nofile(cut, strlen(cut), &soft), -EINVAL);
    const char *none = "Max processes 100 100 processes\n";
    assert_int_equal(procfs_parse_limits_nofile(none, strlen(none), &soft), -EINVAL);
    const char *junk = "Max open files            lots                 lots"
                       "                 files\n";
    assert_int_equal(procfs_parse_limits_nofile(junk, strlen(junk), &soft), -EINVAL);
    n = load_fixture("smaps_rollup.garbage", buf, sizeof(buf));
    assert_int_equal(procfs_parse_limits_nofile(buf, n, &soft), -EINVAL);
}

static void test_live_self(void **state)
{
    (void)state;
    struct procfs_smaps_rollup r;
    assert_int_equal(procfs_read_smaps_rollup(getpid(), &r), 0);
    assert_true(r.pss_bytes > 0);
    assert_true(r.rss_bytes >= r.pss_bytes);

    unsigned before = 0, after = 0;
    assert_int_equal(procfs_count_fds(getpid(), &before), 0);
    assert_true(before >= 3);
    int extra = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(extra >= 0);
    assert_int_equal(procfs_count_fds(getpid(), &after), 0);
    assert_int_equal(after, before + 1);
    close(extra);

    /* The fallback count agrees with the stat() size (plus the directory's
     * own fd, open while it counts). */
    unsigned listed = 0;
    assert_int_equal(procfs_count_dir_entries("/proc/self/fd", &listed), 0);
    assert_int_equal(listed, before + 1);

    struct rlimit rl;
    uint64_t max = 0;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_int_equal(procfs_max_fds(getpid(), &max), 0);
    assert_int_equal(max, rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur);
}

static void test_live_absent(void **state)
{
    (void)state;
    int pid = absent_pid();
    struct procfs_smaps_rollup r;
    unsigned fds;
    uint64_t max;
    assert_int_equal(procfs_read_smaps_rollup(pid, &r), -ESRCH);
    assert_int_equal(procfs_count_fds(pid, &fds), -ESRCH);
    assert_int_equal(procfs_max_fds(pid, &max), -ESRCH);
    assert_int_equal(procfs_count_dir_entries("/proc/self/no-such-dir", &fds), -ESRCH);
}

static void test_live_zombie(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    /* Wait until it is a zombie, without reaping it. */
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);

    /* A zombie has no address space left: gone, as far as memory goes. Its
     * fd table is gone too, which reads as no fds. */
    struct procfs_smaps_rollup r;
    unsigned fds = 99;
    assert_int_equal(procfs_read_smaps_rollup(pid, &r), -ESRCH);
    assert_int_equal(procfs_count_fds(pid, &fds), 0);
    assert_int_equal(fds, 0);

    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_int_equal(procfs_read_smaps_rollup(pid, &r), -ESRCH);
}

static void test_loadavg_last_pid(void **state)
{
    (void)state;
    int pid = -1;
    static const char good[] = "0.52 0.58 0.59 2/613 123456\n";
    assert_int_equal(procfs_parse_loadavg_last_pid(good, strlen(good), &pid), 0);
    assert_int_equal(pid, 123456);
    static const char no_newline[] = "0.00 0.01 0.05 1/99 7";
    assert_int_equal(procfs_parse_loadavg_last_pid(no_newline, strlen(no_newline), &pid), 0);
    assert_int_equal(pid, 7);

    pid = -1;
    static const char *bad[] = { "", "\n", "123", "0.00 0.01 0.05 1/99 ", "0.00 0.01 0.05 1/99 x1",
                                 "0.00 0.01 0.05 1/99 12345678901" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(procfs_parse_loadavg_last_pid(bad[i], strlen(bad[i]), &pid), -EINVAL);
    assert_int_equal(pid, -1);

    /* the live file parses, and a new process moves it */
    int before = 0, after = 0;
    assert_int_equal(procfs_last_pid(&before), 0);
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    assert_int_equal(procfs_last_pid(&after), 0);
    assert_int_not_equal(before, after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rollup_shell),
        cmocka_unit_test(test_rollup_big_process),
        cmocka_unit_test(test_rollup_truncated),
        cmocka_unit_test(test_rollup_missing_pss),
        cmocka_unit_test(test_rollup_garbage),
        cmocka_unit_test(test_rollup_empty),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_live_self),
        cmocka_unit_test(test_live_absent),
        cmocka_unit_test(test_live_zombie),
        cmocka_unit_test(test_loadavg_last_pid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
