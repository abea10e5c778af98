/* Time zone text: every spelling Grafana sends (the POSIX-inverted UTC
 * offsets above all), what an operator may write, the ids Chromium gets,
 * and what stays an error. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tz.h"

static char id[TZ_TEXT_MAX + 1];

static int parse(const char *text)
{
    memset(id, 'X', sizeof(id));
    return tz_parse(text, strlen(text), id, sizeof(id));
}

struct tz_case {
    const char *text;
    const char *want; /* the id Chromium gets */
};

static const struct tz_case good[] = {
    /* Grafana's isoTimeOffsetToPosixTz: the user's UTC+05:00 arrives as
     * UTC-05:00, which is 5 hours ahead of UTC */
    { "UTC-05:00", "Etc/GMT-5" },
    { "UTC+05:00", "Etc/GMT+5" },
    { "UTC+03:00", "Etc/GMT+3" },
    { "UTC-05:30", "GMT+05:30" },  /* India */
    { "UTC-05:45", "GMT+05:45" },  /* Nepal */
    { "UTC+03:30", "GMT-03:30" },  /* Newfoundland */
    { "UTC+09:30", "GMT-09:30" },  /* the Marquesas */
    { "UTC-14:00", "Etc/GMT-14" }, /* Kiribati: the largest IANA offset */
    { "UTC+12:00", "Etc/GMT+12" },
    { "UTC+13:00", "GMT-13:00" },  /* no Etc/GMT+13 in IANA */
    { "UTC-23:59", "GMT+23:59" },  /* ICU's bound */
    { "UTC+23:59", "GMT-23:59" },
    { "UTC+00:00", "UTC" },
    { "UTC-00:00", "UTC" },
    /* whole hours and other spellings of the same */
    { "UTC-5", "Etc/GMT-5" }, { "UTC-05", "Etc/GMT-5" }, { "UTC-0500", "Etc/GMT-5" },
    { "UTC-5:30", "GMT+05:30" }, { "UTC-0530", "GMT+05:30" }, { "utc-05:00", "Etc/GMT-5" },
    { "Utc+1", "Etc/GMT+1" },
    /* Grafana's 'utc' dashboards, and the plain names */
    { "UTC", "UTC" }, { "utc", "UTC" }, { "GMT", "UTC" }, { "gmt", "UTC" },
    /* GMT offsets are ICU's and JavaScript's: GMT+05:30 is ahead */
    { "GMT+05:30", "GMT+05:30" }, { "GMT+5", "Etc/GMT-5" }, { "GMT-05:00", "Etc/GMT+5" },
    { "gmt+0530", "GMT+05:30" }, { "GMT-3:30", "GMT-03:30" }, { "GMT+0", "UTC" },
    /* ECMAScript offset zones, as Chromium's Intl reports a fixed offset */
    { "+05:30", "GMT+05:30" }, { "-05:00", "Etc/GMT+5" }, { "+14:00", "Etc/GMT-14" },
    { "-12:00", "Etc/GMT+12" }, { "+00:00", "UTC" }, { "+0530", "GMT+05:30" }, { "+5", "Etc/GMT-5" },
    /* IANA names pass as written */
    { "Europe/Stockholm", "Europe/Stockholm" }, { "Etc/GMT+5", "Etc/GMT+5" },
    { "Etc/GMT-14", "Etc/GMT-14" }, { "America/Port-au-Prince", "America/Port-au-Prince" },
    { "America/Argentina/ComodRivadavia", "America/Argentina/ComodRivadavia" },
    { "America/North_Dakota/New_Salem", "America/North_Dakota/New_Salem" }, { "Etc/UTC", "Etc/UTC" },
    { "GMT0", "GMT0" }, { "UTCx", "UTCx" },
};

static void test_zones(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (parse(good[i].text) != TZ_ZONE || strcmp(id, good[i].want) != 0)
            fail_msg("%s: got %s, want %s", good[i].text, id, good[i].want);
        /* what Chromium gets reads back as itself */
        char again[sizeof(id)];
        snprintf(again, sizeof(again), "%s", id);
        assert_int_equal(parse(again), TZ_ZONE);
        assert_string_equal(id, again);
    }
}

static void test_default(void **state)
{
    (void)state;
    const char *words[] = { "browser", "default", "Browser", "DEFAULT", "bRoWsEr" };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        assert_int_equal(parse(words[i]), TZ_DEFAULT);
        assert_string_equal(id, "");
    }
}

static void test_bad(void **state)
{
    (void)state;
    const char *bad[] = {
        "", "UTC+", "UTC-", "UTC+24:00", "UTC-24", "UTC+05:60", "UTC+05:", "UTC+:30", "UTC+530",
        "UTC+123", "UTC+05:3", "UTC+05:300", "UTC+05::30", "UTC+05:30:00", "UTC++5", "UTC+5h",
        "UTC 5", "UTC+ 5", "GMT+24", "GMT+-5", "+", "-", "+24:00", "+5:3", "-05:00x", "+05 ",
        "5", "05:00", "_x", "../etc/passwd", "/etc/localtime", "Europe Stockholm", "Europe/Stockholm;",
        "Europe\\Stockholm", "Europe/Stockholm\xc3\xa9", "Europe:Paris", "UTC%2B05%3A00",
        "default ", " UTC",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i]) != -EINVAL)
            fail_msg("%s was taken as %s", bad[i], id);
        assert_string_equal(id, "");
    }
}

static void test_lengths(void **state)
{
    (void)state;
    char t[TZ_TEXT_MAX + 2];
    memset(t, 'Z', sizeof(t) - 1);
    t[TZ_TEXT_MAX] = '\0';
    assert_int_equal(parse(t), TZ_ZONE);
    assert_int_equal(strlen(id), TZ_TEXT_MAX);
    t[TZ_TEXT_MAX] = 'Z';
    t[TZ_TEXT_MAX + 1] = '\0';
    assert_int_equal(parse(t), -EINVAL);

    /* not NUL-terminated: only len bytes are read */
    assert_int_equal(tz_parse("UTC-05:00garbage", 9, id, sizeof(id)), TZ_ZONE);
    assert_string_equal(id, "Etc/GMT-5");
    /* a NUL inside is no name */
    assert_int_equal(tz_parse("UTC\0-5", 6, id, sizeof(id)), -EINVAL);
    assert_int_equal(tz_parse(NULL, 0, id, sizeof(id)), -EINVAL);
    /* an id buffer too small for every answer is refused outright */
    char small[8] = "XXXXXXX";
    assert_int_equal(tz_parse("UTC", 3, small, sizeof(small)), -EINVAL);
    assert_string_equal(small, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zones),
        cmocka_unit_test(test_default),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
