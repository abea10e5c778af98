/* The memory budget (renderer/memory.c): the parsers of /proc and cgroup
 * files, the arithmetic, and whole cgroup v1 and v2 trees built in a
 * temporary directory, nested, with "max", memory.high and missing files. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "memory.h"

#define MIB (1024ull * 1024)

static void test_values(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(memory_parse_value("max\n", &v), 0);
    assert_true(v == MEMORY_UNLIMITED);
    assert_int_equal(memory_parse_value("734003200\n", &v), 0);
    assert_true(v == 700 * MIB);
    /* v1's "no limit" (PAGE_COUNTER_MAX pages, in bytes) */
    assert_int_equal(memory_parse_value("9223372036854771712\n", &v), 0);
    assert_true(v == MEMORY_UNLIMITED);
    assert_int_equal(memory_parse_value("0\n", &v), 0);
    assert_true(v == 0);
    assert_int_equal(memory_parse_value("", &v), -EINVAL);
    assert_int_equal(memory_parse_value("-1\n", &v), -EINVAL);
    assert_int_equal(memory_parse_value("12k\n", &v), -EINVAL);
    assert_int_equal(memory_parse_value("99999999999999999999999\n", &v), -EINVAL);
}

static void test_stat_and_meminfo(void **state)
{
    (void)state;
    const char *v1 = "cache 1000\nrss 2000\ninactive_file 300\ntotal_cache 5000\ntotal_inactive_file 4096\n";
    uint64_t v = 0;
    assert_int_equal(memory_parse_stat(v1, "total_inactive_file", &v), 0);
    assert_true(v == 4096);
    assert_int_equal(memory_parse_stat(v1, "inactive_file", &v), 0);
    assert_true(v == 300);
    assert_int_equal(memory_parse_stat(v1, "active_file", &v), -ENOENT);
    assert_int_equal(memory_parse_stat("inactive_file x\n", "inactive_file", &v), -EINVAL);

    const char *mi = "MemTotal:       24576000 kB\nMemFree:         1000000 kB\nMemAvailable:   20000000 kB\n";
    assert_int_equal(memory_parse_meminfo(mi, &v), 0);
    assert_true(v == 20000000ull * 1024);
    assert_int_equal(memory_parse_meminfo("MemTotal: 1 kB\n", &v), -EINVAL);
    assert_int_equal(memory_parse_meminfo("MemAvailable: 12 MB\n", &v), -EINVAL);
    assert_int_equal(memory_parse_meminfo("MemAvailable: lots\n", &v), -EINVAL);
    assert_int_equal(memory_parse_meminfo("MemAvailable: 99999999999999999999 kB\n", &v), -EINVAL);
}

static void test_self_cgroup(void **state)
{
    (void)state;
    char v2[64], v1[64];
    /* A hybrid machine's (ours). */
    const char *hybrid = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/427f\n1:cpu:/\n0::/\n";
    assert_int_equal(memory_parse_self_cgroup(hybrid, v2, v1, sizeof(v2)), 0);
    assert_string_equal(v2, "/");
    assert_string_equal(v1, "/process_api/427f");
    /* v2 only. */
    assert_int_equal(memory_parse_self_cgroup("0::/system.slice/rendervisor.service\n", v2, v1, sizeof(v2)), 0);
    assert_string_equal(v2, "/system.slice/rendervisor.service");
    assert_string_equal(v1, "");
    /* Controllers mounted together. */
    assert_int_equal(memory_parse_self_cgroup("3:cpu,memory,pids:/a\n", v2, v1, sizeof(v2)), 0);
    assert_string_equal(v1, "/a");
    assert_string_equal(v2, "");
    /* memsw is not memory; a climbing or too long path is refused. */
    assert_int_equal(memory_parse_self_cgroup("3:memsw:/a\n", v2, v1, sizeof(v2)), 0);
    assert_string_equal(v1, "");
    assert_int_equal(memory_parse_self_cgroup("0::/a/../b\n", v2, v1, sizeof(v2)), -EINVAL);
    assert_int_equal(memory_parse_self_cgroup("0::/a/..\n", v2, v1, sizeof(v2)), -EINVAL);
    assert_int_equal(memory_parse_self_cgroup("0::/a/..b\n", v2, v1, sizeof(v2)), 0);
    char tiny[4];
    assert_int_equal(memory_parse_self_cgroup("0::/abcdef\n", tiny, v1, sizeof(tiny)), -EINVAL);
    assert_int_equal(memory_parse_self_cgroup("", v2, v1, sizeof(v2)), 0);
    assert_string_equal(v2, "");
}

static void test_mountinfo(void **state)
{
    (void)state;
    const char *mi =
        "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
        "30 25 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755\n"
        "31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate\n"
        "35 30 0:31 / /sys/fs/cgroup/cpu rw shared:14 - cgroup cgroup rw,cpu\n"
        "38 30 0:34 / /sys/fs/cgroup/memory rw shared:17 - cgroup cgroup rw,memory\n";
    struct memory_mounts m;
    memory_parse_mountinfo(mi, &m);
    assert_string_equal(m.v2, "/sys/fs/cgroup/unified");
    assert_string_equal(m.v2_root, "/");
    assert_string_equal(m.v1, "/sys/fs/cgroup/memory");
    /* A container's bind mount of its own cgroup. */
    memory_parse_mountinfo("40 30 0:30 /docker/abc /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n", &m);
    assert_string_equal(m.v2, "/sys/fs/cgroup");
    assert_string_equal(m.v2_root, "/docker/abc");
    assert_string_equal(m.v1, "");
    memory_parse_mountinfo("garbage\n\n - \n", &m);
    assert_string_equal(m.v2, "");

    char *d = memory_cgroup_dir("/sys/fs/cgroup", "/", "/a/b");
    assert_string_equal(d, "/sys/fs/cgroup/a/b");
    free(d);
    d = memory_cgroup_dir("/sys/fs/cgroup", "/", "/");
    assert_string_equal(d, "/sys/fs/cgroup");
    free(d);
    d = memory_cgroup_dir("/sys/fs/cgroup", "/docker/abc", "/docker/abc/x");
    assert_string_equal(d, "/sys/fs/cgroup/x");
    free(d);
    d = memory_cgroup_dir("/sys/fs/cgroup", "/docker/abc", "/docker/abc");
    assert_string_equal(d, "/sys/fs/cgroup");
    free(d);
    assert_null(memory_cgroup_dir("/sys/fs/cgroup", "/docker/abc", "/docker/abcd"));
    assert_null(memory_cgroup_dir("/sys/fs/cgroup", "/docker/abc", "/other"));
}

static void test_compute(void **state)
{
    (void)state;
    struct memory_budget b;
    /* Our cgroup's limit binds. */
    struct memory_inputs in = { .levels = { { 700 * MIB, 300 * MIB }, { MEMORY_UNLIMITED, 0 } },
                                .nlevels = 2,
                                .host_available = 20000 * MIB,
                                .used = 300 * MIB };
    memory_compute(&in, &b);
    assert_true(b.available == 400 * MIB && b.budget == 700 * MIB && b.used == 300 * MIB);
    assert_int_equal(b.bound, NAMES_BOUND_CGROUP);
    /* A parent's, tighter: its other children use memory too. */
    in.levels[1] = (struct memory_level){ 1024 * MIB, 924 * MIB };
    memory_compute(&in, &b);
    assert_true(b.available == 100 * MIB && b.budget == 400 * MIB);
    /* The host, tighter still. */
    in.host_available = 50 * MIB;
    memory_compute(&in, &b);
    assert_true(b.available == 50 * MIB);
    assert_int_equal(b.bound, NAMES_BOUND_HOST);
    /* The operator's budget. */
    in.config_budget = 320 * MIB;
    memory_compute(&in, &b);
    assert_true(b.available == 20 * MIB && b.budget == 320 * MIB);
    assert_int_equal(b.bound, NAMES_BOUND_CONFIG);
    /* Over a limit: nothing available, never less. */
    in.config_budget = 0;
    in.levels[0].used = 800 * MIB;
    memory_compute(&in, &b);
    assert_true(b.available == 0);
    assert_int_equal(b.bound, NAMES_BOUND_CGROUP);
    /* Nothing known. */
    struct memory_inputs none = { .host_available = MEMORY_UNLIMITED, .used = 10 * MIB };
    memory_compute(&none, &b);
    assert_true(b.available == MEMORY_UNLIMITED && b.budget == MEMORY_UNLIMITED);
}

/* ---- whole trees ------------------------------------------------------------- */

static char tmp[256];

static void put(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmp, rel);
    for (char *p = path + strlen(tmp) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int tree_setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof(tmp), "/tmp/rv-test-memory-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    put("proc/meminfo", "MemTotal: 24000000 kB\nMemAvailable: 20000000 kB\n");
    return 0;
}

static int tree_teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    return system(cmd);
}

static void mountinfo(const char *fstype, const char *super)
{
    char text[1024];
    snprintf(text, sizeof(text), "38 30 0:34 / %s/cg rw shared:17 - %s cgroup %s\n", tmp, fstype, super);
    put("proc/self/mountinfo", text);
}

static void init(struct memory *m, uint64_t config_budget)
{
    char proc[300];
    snprintf(proc, sizeof(proc), "%s/proc", tmp);
    memory_init(m, config_budget, proc);
}

static void test_tree_v1(void **state)
{
    (void)state;
    mountinfo("cgroup", "rw,memory");
    put("proc/self/cgroup", "4:memory:/outer/rv\n0::/\n");
    /* The root: whole-host figures and no limit. */
    put("cg/memory.limit_in_bytes", "9223372036854771712\n");
    put("cg/memory.usage_in_bytes", "9000000000\n");
    put("cg/outer/memory.limit_in_bytes", "2147483648\n"); /* 2 GiB, 1.5 GiB of it used */
    put("cg/outer/memory.usage_in_bytes", "1610612736\n");
    put("cg/outer/memory.stat", "total_inactive_file 0\n");
    put("cg/outer/rv/memory.limit_in_bytes", "734003200\n"); /* 700 MiB */
    put("cg/outer/rv/memory.usage_in_bytes", "419430400\n"); /* 400 MiB, 100 of it inactive cache */
    put("cg/outer/rv/memory.stat", "inactive_file 1\ntotal_inactive_file 104857600\n");
    struct memory m;
    struct memory_budget b;
    init(&m, 0);
    assert_int_equal(m.version, 1);
    assert_true(m.own);
    memory_read(&m, &b);
    assert_true(b.used == 300 * MIB);
    assert_true(b.available == 400 * MIB);
    assert_int_equal(b.bound, NAMES_BOUND_CGROUP);
    /* The outer cgroup fills up with others: it binds. */
    put("cg/outer/memory.usage_in_bytes", "1992294400\n"); /* 1900 MiB */
    memory_read(&m, &b);
    assert_true(b.available == 148 * MIB);
    /* Our limit goes: the outer one still holds. */
    put("cg/outer/rv/memory.limit_in_bytes", "9223372036854771712\n");
    memory_read(&m, &b);
    assert_true(b.available == 148 * MIB);
    memory_fini(&m);
    /* No memory.stat: usage counted whole. A limit without usage: unread. */
    unlink(strcat(strcpy((char[300]){ 0 }, tmp), "/cg/outer/rv/memory.stat"));
    put("cg/outer/rv/memory.limit_in_bytes", "734003200\n");
    init(&m, 0);
    memory_read(&m, &b);
    assert_true(b.used == 400 * MIB && b.available == 148 * MIB);
    memory_fini(&m);
}

static void test_tree_v2(void **state)
{
    (void)state;
    mountinfo("cgroup2", "rw,nsdelegate");
    put("proc/self/cgroup", "0::/system.slice/rv.service\n");
    put("cg/memory.stat", "inactive_file 5\n"); /* the root: no memory.max, no memory.current */
    put("cg/system.slice/memory.max", "max\n");
    put("cg/system.slice/memory.current", "3000000000\n");
    put("cg/system.slice/rv.service/memory.max", "1073741824\n"); /* 1 GiB */
    put("cg/system.slice/rv.service/memory.high", "max\n");
    put("cg/system.slice/rv.service/memory.current", "524288000\n"); /* 500 MiB */
    put("cg/system.slice/rv.service/memory.stat", "anon 1\nfile 2\ninactive_file 209715200\n");
    struct memory m;
    struct memory_budget b;
    init(&m, 0);
    assert_int_equal(m.version, 2);
    memory_read(&m, &b);
    assert_true(b.used == 300 * MIB);
    assert_true(b.available == 724 * MIB && b.budget == 1024 * MIB);
    /* memory.high below memory.max is the line. */
    put("cg/system.slice/rv.service/memory.high", "838860800\n"); /* 800 MiB */
    memory_read(&m, &b);
    assert_true(b.available == 500 * MIB && b.budget == 800 * MIB);
    /* The operator's budget, lower. */
    memory_fini(&m);
    init(&m, 400 * MIB);
    memory_read(&m, &b);
    assert_true(b.available == 100 * MIB);
    assert_int_equal(b.bound, NAMES_BOUND_CONFIG);
    memory_fini(&m);

    /* A host with many mounts: the cgroup2 line past the first 64 KiB. */
    char *big = malloc(200000), line[600];
    big[0] = '\0';
    for (int i = 0; i < 2000; i++) {
        snprintf(line, sizeof(line), "%d 30 0:%d / /run/containers/overlay-%04d rw - overlay overlay rw\n", 100 + i,
                 100 + i, i);
        strcat(big, line);
    }
    snprintf(line, sizeof(line), "38 30 0:34 / %s/cg rw - cgroup2 cgroup2 rw\n", tmp);
    strcat(big, line);
    assert_true(strlen(big) > 65536);
    put("proc/self/mountinfo", big);
    free(big);
    init(&m, 0);
    assert_int_equal(m.version, 2);
    memory_read(&m, &b);
    assert_true(b.budget == 800 * MIB);
    memory_fini(&m);

    /* At the real root (no memory.current): no cgroup; the supervisor's
     * figure is what is used. */
    put("proc/self/cgroup", "0::/\n");
    init(&m, 0);
    assert_null(m.dir);
    memory_set_tree(&m, 123 * MIB);
    memory_read(&m, &b);
    assert_true(b.used == 123 * MIB && b.available == 20000000ull * 1024);
    assert_int_equal(b.bound, NAMES_BOUND_HOST);
    memory_fini(&m);
}

/* Whatever this machine is: something sensible comes back. */
static void test_here(void **state)
{
    (void)state;
    struct memory m;
    struct memory_budget b;
    memory_init(&m, 0, "/proc");
    memory_read(&m, &b);
    assert_true(b.available > 0 && b.available != MEMORY_UNLIMITED);
    char text[512];
    assert_non_null(memory_describe(&m, text, sizeof(text)));
    memory_fini(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_stat_and_meminfo),
        cmocka_unit_test(test_self_cgroup),
        cmocka_unit_test(test_mountinfo),
        cmocka_unit_test(test_compute),
        cmocka_unit_test_setup_teardown(test_tree_v1, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_tree_v2, tree_setup, tree_teardown),
        cmocka_unit_test(test_here),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
