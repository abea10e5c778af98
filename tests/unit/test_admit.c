/* The render cost estimate and the admission sum (renderer/admit.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "admit.h"

#define MIB (1024ull * 1024)

static void test_default_until_learned(void **state)
{
    (void)state;
    struct admit a;
    admit_init(&a, 256 * MIB);
    assert_int_equal(admit_estimate(&a), 256 * MIB);
    /* Measured smaller: the default holds until ADMIT_LEARN renders. */
    struct admit_run r = { .expected = 256 * MIB, .peak = 100 * MIB };
    for (int i = 0; i < ADMIT_LEARN - 1; i++) {
        admit_measured(&a, &r);
        assert_int_equal(admit_estimate(&a), 256 * MIB);
    }
    admit_measured(&a, &r);
    assert_int_equal(admit_estimate(&a), 110 * MIB); /* 100 and the margin */
    /* Measured larger than the default: taken at once. */
    admit_init(&a, 64 * MIB);
    r.peak = 100 * MIB;
    admit_measured(&a, &r);
    assert_int_equal(admit_estimate(&a), 110 * MIB);
}

static void test_largest_of_recent(void **state)
{
    (void)state;
    struct admit a;
    admit_init(&a, 0);
    /* The largest recent peak, and ADMIT_MARGIN_PCT (10) more. */
    struct admit_run r = { .peak = 160 * MIB };
    admit_measured(&a, &r);
    assert_int_equal(admit_estimate(&a), 176 * MIB);
    r.peak = 80 * MIB; /* a low share (its neighbours had let go): the largest holds */
    admit_measured(&a, &r);
    assert_int_equal(admit_estimate(&a), 176 * MIB);
    r.peak = 400 * MIB; /* a rise: at once */
    admit_measured(&a, &r);
    assert_int_equal(admit_estimate(&a), 440 * MIB);
    /* ... and it ages out after ADMIT_WINDOW smaller ones. */
    r.peak = 100 * MIB;
    for (int i = 0; i < ADMIT_WINDOW - 1; i++) {
        admit_measured(&a, &r);
        assert_int_equal(admit_estimate(&a), 440 * MIB);
    }
    admit_measured(&a, &r);
    assert_int_equal(admit_estimate(&a), 110 * MIB);
}

static void test_sample_shares(void **state)
{
    (void)state;
    struct admit a;
    admit_init(&a, 100 * MIB);
    struct admit_run r1 = { .expected = 100 * MIB }, r2 = { .expected = 100 * MIB };
    struct admit_run *runs[] = { &r1, &r2 };
    admit_sample(&a, 300 * MIB, runs, 0, 0); /* at rest: the idle figure */
    assert_int_equal(a.idle, 300 * MIB);
    admit_sample(&a, 420 * MIB, runs, 2, 0); /* two renders grew 120 MiB */
    assert_int_equal(a.share, 60 * MIB);
    assert_int_equal(r1.peak, 60 * MIB);
    assert_int_equal(admit_reserved(&a, runs, 2), 80 * MIB);
    /* A third, admitted since the sample: reserved whole. */
    struct admit_run r3 = { .expected = 100 * MIB };
    struct admit_run *three[] = { &r1, &r2, &r3 };
    assert_int_equal(admit_reserved(&a, three, 3), 180 * MIB);
    admit_sample(&a, 340 * MIB, runs, 2, 0); /* peaks stay */
    assert_int_equal(r2.peak, 60 * MIB);
    assert_int_equal(admit_reserved(&a, runs, 2), 160 * MIB);
    /* Grown past what they were given: nothing reserved, not less than 0. */
    admit_sample(&a, 600 * MIB, runs, 2, 0);
    assert_int_equal(a.share, 150 * MIB);
    assert_int_equal(admit_reserved(&a, runs, 2), 0);
    /* The idle figure falls while renders run (a browser restarted), and
     * the shares are counted from there. */
    admit_sample(&a, 200 * MIB, runs, 2, 0);
    assert_int_equal(a.idle, 200 * MIB);
    assert_int_equal(a.share, 0);
    /* It rises only at rest. */
    admit_sample(&a, 260 * MIB, runs, 1, 0);
    assert_int_equal(a.idle, 200 * MIB);
    admit_sample(&a, 260 * MIB, runs, 0, 0);
    assert_int_equal(a.idle, 260 * MIB);
    /* A render that has just answered still holds its memory for a moment:
     * it counts in the shares, and nothing is at rest yet. */
    admit_sample(&a, 460 * MIB, runs, 1, 1);
    assert_int_equal(a.share, 100 * MIB);
    admit_sample(&a, 400 * MIB, runs, 0, 1);
    assert_int_equal(a.idle, 260 * MIB);
    assert_int_equal(a.share, 140 * MIB);
    /* ... and what it still holds is about to come back: it counts against
     * what the running renders are reserved. One running (expected 100 MiB,
     * grown 100) and one ending (100): 100 - 200 is nothing reserved. */
    admit_sample(&a, 460 * MIB, runs, 1, 1);
    assert_int_equal(admit_reserved(&a, runs, 1), 0);
    r1.expected = 250 * MIB;
    assert_int_equal(admit_reserved(&a, runs, 1), 50 * MIB);
}

static void test_fits(void **state)
{
    (void)state;
    const uint64_t none = UINT64_MAX;
    assert_int_equal(admit_fits(1000, 0, 0, 100, 0), 1); /* nothing runs: one always may */
    assert_int_equal(admit_fits(none, 100, 0, 100, 1), 1);
    assert_int_equal(admit_fits(none, 99, 0, 100, 1), 0);
    assert_int_equal(admit_fits(none, 300, 200, 100, 2), 1);
    assert_int_equal(admit_fits(none, 300, 201, 100, 2), 0);
    assert_int_equal(admit_fits(none, 100, 200, 0, 2), 0); /* more reserved than available */
    assert_int_equal(admit_fits(none, none, 200, 100, 2), 1); /* no limit known */
    /* The headroom: 3% of a 1000-byte budget is 30. */
    assert_int_equal(admit_fits(1000, 330, 200, 100, 2), 1);
    assert_int_equal(admit_fits(1000, 329, 200, 100, 2), 0);
}

/* Issue 12's host: 700 MiB for the service, 200 MiB of it at rest, renders
 * that take 150 MiB each. Three fit (with the 21 MiB headroom) before any
 * of them has grown, the fourth does not; as they grow the sum stays the
 * same. */
static void test_issue_host(void **state)
{
    (void)state;
    const uint64_t budget = 700 * MIB;
    struct admit a;
    admit_init(&a, 150 * MIB);
    struct admit_run runs[4];
    struct admit_run *p[4] = { &runs[0], &runs[1], &runs[2], &runs[3] };
    uint64_t used = 200 * MIB;
    admit_sample(&a, used, p, 0, 0);
    unsigned n = 0;
    while (n < 4 && admit_fits(budget, budget - used, admit_reserved(&a, p, n), admit_estimate(&a), n)) {
        runs[n] = (struct admit_run){ .expected = admit_estimate(&a) };
        n++;
    }
    assert_int_equal(n, 3);
    used += 3 * 100 * MIB; /* each has grown 100 MiB of its 150 */
    admit_sample(&a, used, p, n, 0);
    assert_int_equal(admit_reserved(&a, p, n), 150 * MIB);
    assert_int_equal(admit_fits(budget, budget - used, admit_reserved(&a, p, n), admit_estimate(&a), n), 0);
    /* A crash: the estimate grows by a quarter; the others that crashed
     * with it (admitted with the old estimate) do not grow it again. */
    admit_crashed(&a, &runs[0]);
    uint64_t grown = admit_estimate(&a);
    assert_true(grown >= 187 * MIB && grown <= 188 * MIB);
    admit_crashed(&a, &runs[1]);
    assert_int_equal(admit_estimate(&a), grown);
    /* One admitted with the grown estimate: at least to what it was seen to take. */
    runs[3] = (struct admit_run){ .expected = grown, .peak = 400 * MIB };
    admit_crashed(&a, &runs[3]);
    assert_int_equal(admit_estimate(&a), 400 * MIB);
    /* It lasts ADMIT_WINDOW renders. */
    struct admit_run small = { .peak = 100 * MIB };
    for (int i = 0; i < ADMIT_WINDOW - 1; i++)
        admit_measured(&a, &small);
    assert_int_equal(admit_estimate(&a), 400 * MIB);
    admit_measured(&a, &small);
    assert_int_equal(admit_estimate(&a), 110 * MIB);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_until_learned),
        cmocka_unit_test(test_largest_of_recent),
        cmocka_unit_test(test_sample_shares),
        cmocka_unit_test(test_fits),
        cmocka_unit_test(test_issue_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
