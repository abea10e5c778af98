/* proctree: ownership and sums over synthetic process tables, including the
 * cases a live host produces only rarely (orphans, pid reuse, deaths between
 * samples, cycles, very deep chains). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proctree.h"

#define SELF 100
#define TICKS 100.0

/* pid, ppid, sid, start, utime, stime, rss, vsize, pss, pss_known, fds */
#define P(pid_, ppid_, sid_, start_, ut_, st_, rss_, vsz_, pss_, known_, fds_)                     \
    {                                                                                          \
        .pid = (pid_), .ppid = (ppid_), .sid = (sid_), .start_ticks = (start_),                 \
        .utime_ticks = (ut_), .stime_ticks = (st_), .rss_bytes = (rss_), .vsize_bytes = (vsz_), \
        .pss_bytes = (pss_), .pss_known = (known_), .open_fds = (fds_)                          \
    }

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Three running children and one (index 2) that is not running. */
static const int roots[4] = { 1000, 2000, 0, 3000 };

/* Listed children before parents on purpose: the walk must not depend on order. */
static const struct proctree_entry sample1[] = {
    P(1003, 1002, 1000, 5, 400, 40, 4000, 40000, 2000, 1, 3),
    P(1002, 1001, 1000, 5, 300, 30, 3000, 30000, 0, 0, 4), /* PSS unreadable: RSS stands in */
    P(1001, 1000, 1000, 5, 200, 20, 2000, 20000, 1500, 1, 5),
    P(1000, SELF, 1000, 5, 100, 10, 1000, 10000, 500, 1, 10),
    P(1004, 1000, 1000, 5, 500, 50, 5000, 50000, 2500, 1, 2),
    P(1, 0, 1, 1, 9999, 999, 1 << 20, 1 << 24, 1 << 19, 1, 50),
    P(50, 1, 50, 2, 777, 77, 1 << 20, 1 << 24, 1 << 19, 1, 8),  /* another owner */
    P(51, 50, 51, 3, 777, 77, 1 << 20, 1 << 24, 1 << 19, 1, 8), /* and its child */
    P(SELF, 1, SELF, 4, 1, 1, 4096, 8192, 4096, 1, 6),          /* the supervisor */
    P(2101, 2100, 2000, 9, 50, 5, 500, 5000, 250, 1, 1),
    P(2000, SELF, 2000, 6, 10, 1, 100, 1000, 50, 1, 7),
    P(2001, 2000, 2000, 6, 20, 2, 200, 2000, 150, 1, 1),
    P(2002, 2001, 2002, 7, 30, 3, 300, 3000, 300, 1, 1), /* own session, still a descendant */
    P(2100, SELF, 2000, 8, 40, 4, 400, 4000, 200, 1, 1), /* orphan of browser 2000 */
    P(3000, SELF, 3000, 6, 7, 3, 70, 700, 35, 1, 4),
    P(3001, 3000, 3000, 6, 9, 1, 90, 900, 45, 1, 6),
    P(4000, SELF, 4000, 8, 5, 5, 100, 100, 100, 1, 1), /* stray: its session's child is gone */
    P(4001, 4000, 4000, 8, 5, 5, 100, 100, 100, 1, 1), /* under the stray, not a stray itself */
    P(6000, 7777, 6000, 8, 5, 5, 100, 100, 100, 1, 1), /* parent not in the table */
    P(8000, 8001, 8000, 8, 5, 5, 100, 100, 100, 1, 1), /* a parent cycle */
    P(8001, 8000, 8000, 8, 5, 5, 100, 100, 100, 1, 1),
};

static int find(const struct proctree_entry *e, size_t n, int pid)
{
    for (size_t i = 0; i < n; i++)
        if (e[i].pid == pid)
            return (int)i;
    fail_msg("pid %d not in table", pid);
    return -1;
}

static void assert_owner(const struct proctree_entry *e, size_t n, const int *owner, int pid,
                         int want)
{
    int i = find(e, n, pid);
    if (owner[i] != want)
        fail_msg("pid %d: owner %d, want %d", pid, owner[i], want);
}

static void init_ledgers(struct proctree_ledger *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        proctree_ledger_init(&l[i]);
}

static void fini_ledgers(struct proctree_ledger *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        proctree_ledger_fini(&l[i]);
}

static void run(const struct proctree_entry *e, size_t n, const int *rts, size_t nroots,
                struct proctree_ledger *l, struct proctree_figures *out, int *owner)
{
    proctree_assign(e, n, SELF, rts, nroots, owner);
    proctree_aggregate(e, n, owner, nroots, l, TICKS, out);
}

static void test_assign(void **state)
{
    (void)state;
    const size_t n = N(sample1);
    int owner[N(sample1)];
    proctree_assign(sample1, n, SELF, roots, N(roots), owner);

    for (int pid = 1000; pid <= 1004; pid++)
        assert_owner(sample1, n, owner, pid, 0);
    assert_owner(sample1, n, owner, 2000, 1);
    assert_owner(sample1, n, owner, 2001, 1);
    assert_owner(sample1, n, owner, 2002, 1);
    assert_owner(sample1, n, owner, 2100, 1);
    assert_owner(sample1, n, owner, 2101, 1);
    assert_owner(sample1, n, owner, 3000, 3);
    assert_owner(sample1, n, owner, 3001, 3);
    const int nobody[] = { 1, 50, 51, SELF, 4000, 4001, 6000, 8000, 8001 };
    for (size_t k = 0; k < N(nobody); k++)
        assert_owner(sample1, n, owner, nobody[k], -1);

    int strays[4] = { 0 };
    assert_int_equal(proctree_strays(sample1, n, SELF, owner, strays, N(strays)), 1);
    assert_int_equal(strays[0], 4000);
    /* No room: counted, nothing written. */
    strays[0] = 0;
    assert_int_equal(proctree_strays(sample1, n, SELF, owner, strays, 0), 1);
    assert_int_equal(strays[0], 0);
}

static void test_assign_empty(void **state)
{
    (void)state;
    struct proctree_ledger l[4];
    struct proctree_figures out[4];
    init_ledgers(l, 4);
    proctree_assign(NULL, 0, SELF, roots, N(roots), NULL);
    proctree_aggregate(NULL, 0, NULL, N(roots), l, TICKS, out);
    for (size_t r = 0; r < 4; r++) {
        assert_int_equal(out[r].processes, 0);
        assert_true(out[r].cpu_user_seconds == 0.0);
    }
    fini_ledgers(l, 4);
}

static void test_aggregate(void **state)
{
    (void)state;
    struct proctree_ledger l[4];
    struct proctree_figures out[4];
    int owner[N(sample1)];
    init_ledgers(l, 4);
    run(sample1, N(sample1), roots, N(roots), l, out, owner);

    assert_int_equal(out[0].processes, 5);
    assert_true(out[0].cpu_user_seconds == 15.0);   /* 1500 ticks */
    assert_true(out[0].cpu_system_seconds == 1.5);  /* 150 ticks */
    assert_int_equal(out[0].resident_bytes, 15000);
    assert_int_equal(out[0].proportional_bytes, 9500); /* 500+1500+3000(RSS)+2000+2500 */
    assert_int_equal(out[0].virtual_bytes, 150000);
    assert_int_equal(out[0].open_fds, 24);
    assert_int_equal(out[0].max_fds, 0);

    assert_int_equal(out[1].processes, 5);
    assert_true(out[1].cpu_user_seconds == 1.5);
    assert_true(out[1].cpu_system_seconds == 0.15);
    assert_int_equal(out[1].resident_bytes, 1500);
    assert_int_equal(out[1].proportional_bytes, 950);
    assert_int_equal(out[1].virtual_bytes, 15000);
    assert_int_equal(out[1].open_fds, 11);

    assert_int_equal(out[2].processes, 0);
    assert_int_equal(out[2].resident_bytes, 0);
    assert_true(out[2].cpu_user_seconds == 0.0);

    assert_int_equal(out[3].processes, 2);
    assert_true(out[3].cpu_user_seconds == 0.16);
    assert_true(out[3].cpu_system_seconds == 0.04);
    assert_int_equal(out[3].resident_bytes, 160);
    assert_int_equal(out[3].proportional_bytes, 80);
    assert_int_equal(out[3].virtual_bytes, 1600);
    assert_int_equal(out[3].open_fds, 10);

    assert_int_equal(l[0].count, 5);
    for (size_t k = 1; k < l[0].count; k++)
        assert_true(l[0].procs[k - 1].pid < l[0].procs[k].pid);
    fini_ledgers(l, 4);
}

/* Deaths, a pid reuse and the child's restart across four samples: the CPU
 * counters must never go down. */
static void test_ledger_churn(void **state)
{
    (void)state;
    /* 1003 has died; 1004 died and its pid was reused (new start time);
     * 1001 worked; 3001's reading went down, which must not show. */
    static const struct proctree_entry sample2[] = {
        P(1000, SELF, 1000, 5, 100, 10, 1000, 10000, 500, 1, 10),
        P(1001, 1000, 1000, 5, 250, 25, 2000, 20000, 1500, 1, 5),
        P(1002, 1001, 1000, 5, 300, 30, 3000, 30000, 0, 0, 4),
        P(1004, 1000, 1000, 77, 1, 0, 5000, 50000, 2500, 1, 2),
        P(1050, 1000, 1000, 78, 0, 0, 100, 100, 100, 1, 1),
        P(3000, SELF, 3000, 6, 7, 3, 70, 700, 35, 1, 4),
        P(3001, 3000, 3000, 6, 8, 1, 90, 900, 45, 1, 6),
    };
    /* Child 0 has died and is not running (root 0); 1050 was reparented to
     * us and is now a stray. */
    static const struct proctree_entry sample3[] = {
        P(1050, SELF, 1000, 78, 3, 1, 100, 100, 100, 1, 1),
        P(3000, SELF, 3000, 6, 7, 3, 70, 700, 35, 1, 4),
        P(3001, 3000, 3000, 6, 10, 1, 90, 900, 45, 1, 6),
    };
    /* Child 0 restarted as 1500. */
    static const struct proctree_entry sample4[] = {
        P(1500, SELF, 1500, 90, 5, 1, 1000, 10000, 500, 1, 10),
        P(3000, SELF, 3000, 6, 7, 3, 70, 700, 35, 1, 4),
        P(3001, 3000, 3000, 6, 10, 1, 90, 900, 45, 1, 6),
    };
    struct proctree_ledger l[4];
    struct proctree_figures out[4];
    int owner[N(sample1)];
    init_ledgers(l, 4);

    run(sample1, N(sample1), roots, N(roots), l, out, owner);
    assert_true(out[0].cpu_user_seconds == 15.0);

    run(sample2, N(sample2), roots, N(roots), l, out, owner);
    /* gone: 1003 (400/40) + old 1004 (500/50); live 100+250+300+1+0, 10+25+30+0+0 */
    assert_int_equal(l[0].gone_utime_ticks, 900);
    assert_int_equal(l[0].gone_stime_ticks, 90);
    assert_true(out[0].cpu_user_seconds == 15.51);
    assert_true(out[0].cpu_system_seconds == 1.55);
    assert_int_equal(out[0].processes, 5);
    /* child 1's whole tree vanished from the table: all of it is now gone_ */
    assert_true(out[1].cpu_user_seconds == 1.5);
    assert_true(out[1].cpu_system_seconds == 0.15);
    assert_int_equal(out[1].processes, 0);
    assert_int_equal(out[1].resident_bytes, 0);
    assert_true(out[3].cpu_user_seconds == 0.16); /* not 0.15 */

    const int roots3[4] = { 0, 2000, 0, 3000 };
    run(sample3, N(sample3), roots3, N(roots3), l, out, owner);
    assert_true(out[0].cpu_user_seconds == 15.51);
    assert_true(out[0].cpu_system_seconds == 1.55);
    assert_int_equal(out[0].processes, 0);
    assert_int_equal(out[0].resident_bytes, 0);
    assert_true(out[3].cpu_user_seconds == 0.17);
    int strays[2];
    assert_int_equal(proctree_strays(sample3, N(sample3), SELF, owner, strays, 2), 1);
    assert_int_equal(strays[0], 1050);

    const int roots4[4] = { 1500, 2000, 0, 3000 };
    run(sample4, N(sample4), roots4, N(roots4), l, out, owner);
    assert_true(out[0].cpu_user_seconds == 15.56);
    assert_true(out[0].cpu_system_seconds == 1.56);
    assert_int_equal(out[0].processes, 1);
    assert_int_equal(out[0].resident_bytes, 1000);
    fini_ledgers(l, 4);
}

/* A chain as deep as the table, listed deepest first: no recursion, and
 * still linear. */
static void test_deep_chain(void **state)
{
    (void)state;
    enum { DEPTH = 10000 };
    struct proctree_entry *e = calloc(DEPTH + 1, sizeof(*e));
    int *owner = calloc(DEPTH + 1, sizeof(*owner));
    assert_non_null(e);
    assert_non_null(owner);
    for (int k = 0; k < DEPTH; k++) {
        struct proctree_entry *p = &e[DEPTH - 1 - k];
        p->pid = 20000 + k;
        p->ppid = k == 0 ? SELF : 20000 + k - 1;
        p->sid = 20000;
        p->start_ticks = 1;
        p->utime_ticks = 2;
        p->stime_ticks = 1;
        p->rss_bytes = 4096;
        p->vsize_bytes = 8192;
        p->pss_bytes = 1024;
        p->pss_known = k % 2;
        p->open_fds = 1;
    }
    e[DEPTH] = (struct proctree_entry){ .pid = SELF, .ppid = 1, .sid = SELF };

    const int rts[1] = { 20000 };
    struct proctree_ledger l;
    struct proctree_figures out;
    proctree_ledger_init(&l);
    run(e, DEPTH + 1, rts, 1, &l, &out, owner);
    for (int k = 0; k < DEPTH; k++)
        assert_int_equal(owner[k], 0);
    assert_int_equal(owner[DEPTH], -1);
    assert_int_equal(out.processes, DEPTH);
    assert_true(out.cpu_user_seconds == 2.0 * DEPTH / TICKS);
    assert_true(out.cpu_system_seconds == 1.0 * DEPTH / TICKS);
    assert_int_equal(out.resident_bytes, 4096ull * DEPTH);
    assert_int_equal(out.proportional_bytes, (4096ull + 1024ull) * DEPTH / 2);
    assert_int_equal(out.virtual_bytes, 8192ull * DEPTH);
    assert_int_equal(out.open_fds, DEPTH);

    /* The same chain closed into a cycle, with no root in it: nobody's,
     * and the walk ends. */
    const int elsewhere[1] = { 1 };
    e[DEPTH - 1].ppid = 20000 + DEPTH - 1;
    proctree_assign(e, DEPTH + 1, SELF, elsewhere, 1, owner);
    for (int k = 0; k <= DEPTH; k++)
        assert_int_equal(owner[k], -1);

    proctree_ledger_fini(&l);
    free(owner);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assign),
        cmocka_unit_test(test_assign_empty),
        cmocka_unit_test(test_aggregate),
        cmocka_unit_test(test_ledger_churn),
        cmocka_unit_test(test_deep_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
