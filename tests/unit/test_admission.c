/* Admission by memory: the parsers of /proc/meminfo, cgroup v2 files and
 * /proc/self/cgroup, and a check against this machine's real files. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "admission.h"

static void test_meminfo(void **state)
{
    (void)state;
    uint64_t v = 0;
    const char *real = "MemTotal:       24576000 kB\n"
                       "MemFree:         1000000 kB\n"
                       "MemAvailable:   20000000 kB\n"
                       "Buffers:           1234 kB\n";
    assert_int_equal(admission_parse_meminfo(real, &v), 0);
    assert_true(v == 20000000ULL * 1024);
    assert_int_equal(admission_parse_meminfo("MemAvailable: 0 kB\n", &v), 0);
    assert_true(v == 0);
    /* Not there (kernels before 3.14), or not a number of kB. */
    assert_int_equal(admission_parse_meminfo("MemTotal: 1 kB\nMemFree: 1 kB\n", &v), -EINVAL);
    assert_int_equal(admission_parse_meminfo("MemAvailable: lots\n", &v), -EINVAL);
    assert_int_equal(admission_parse_meminfo("MemAvailable: 12 MB\n", &v), -EINVAL);
    assert_int_equal(admission_parse_meminfo("MemAvailable: 99999999999999999999 kB\n", &v), -EINVAL);
    assert_int_equal(admission_parse_meminfo("", &v), -EINVAL);
}

static void test_cgroup_values(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(admission_parse_cgroup_value("max\n", &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(admission_parse_cgroup_value("536870912\n", &v), 0);
    assert_true(v == 536870912);
    assert_int_equal(admission_parse_cgroup_value("0\n", &v), 0);
    assert_true(v == 0);
    assert_int_equal(admission_parse_cgroup_value("", &v), -EINVAL);
    assert_int_equal(admission_parse_cgroup_value("-1\n", &v), -EINVAL);
    assert_int_equal(admission_parse_cgroup_value("12 34\n", &v), -EINVAL);
    assert_int_equal(admission_parse_cgroup_value("maximum\n", &v), -EINVAL);
}

static void test_cgroup_path(void **state)
{
    (void)state;
    char path[64];
    assert_int_equal(admission_parse_cgroup_path("0::/system.slice/rendervisor.service\n", path, sizeof(path)), 0);
    assert_string_equal(path, "/system.slice/rendervisor.service");
    assert_int_equal(admission_parse_cgroup_path("0::/\n", path, sizeof(path)), 0);
    assert_string_equal(path, "/");
    /* A hybrid host: v1 lines first, the v2 one last. */
    assert_int_equal(admission_parse_cgroup_path("12:memory:/x\n1:name=systemd:/y\n0::/z\n", path, sizeof(path)), 0);
    assert_string_equal(path, "/z");
    /* v1 only, or nothing usable. */
    assert_int_equal(admission_parse_cgroup_path("12:memory:/x\n", path, sizeof(path)), -EINVAL);
    assert_int_equal(admission_parse_cgroup_path("0::/a/../../etc\n", path, sizeof(path)), -EINVAL);
    char small[4];
    assert_int_equal(admission_parse_cgroup_path("0::/long/path\n", small, sizeof(small)), -EINVAL);
}

/* On this machine: something is read, a need of 0 always admits, a need
 * beyond any machine never does, and a second check within the cache time
 * reads nothing again. */
static void test_check_here(void **state)
{
    (void)state;
    struct admission a;
    uint64_t avail = 0;
    admission_init(&a, 0);
    assert_int_equal(admission_check(&a, 1, &avail), 1);
    assert_true(avail > 0 && avail != UINT64_MAX); /* /proc/meminfo is always there */
    admission_fini(&a);

    admission_init(&a, UINT64_MAX - 1);
    assert_int_equal(admission_check(&a, 1, &avail), 0);
    int64_t read_at = a.read_ns;
    assert_int_equal(admission_check(&a, 1 + ADMISSION_CACHE_NS / 2, &avail), 0);
    assert_true(a.read_ns == read_at);
    assert_int_equal(admission_check(&a, 1 + ADMISSION_CACHE_NS, &avail), 0);
    assert_true(a.read_ns == 1 + ADMISSION_CACHE_NS);
    admission_fini(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meminfo),
        cmocka_unit_test(test_cgroup_values),
        cmocka_unit_test(test_cgroup_path),
        cmocka_unit_test(test_check_here),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
