/* Time zone text, as Grafana sends it and as an operator writes it in the
 * config, read into the one id Chromium takes. Grafana inverts the sign of
 * a UTC offset before sending it; the reading here undoes that, so a page
 * renders in the offset its user chose. */
#include "tz.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int tz_is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int tz_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int tz_eq_nocase(const char *v, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(v, word, len) == 0;
}

/* sign hh[[:]mm] into minutes east of UTC, ISO style ('+' is east); -1
 * when it is not that, or past 23:59. */
static int tz_offset(const char *v, size_t len, int *east_min)
{
    if (len < 2 || (v[0] != '+' && v[0] != '-'))
        return -1;
    size_t i = 1;
    int h = 0, m = 0;
    while (i < len && tz_is_digit((unsigned char)v[i]) && i < 3)
        h = h * 10 + (v[i++] - '0');
    size_t hdigits = i - 1;
    if (hdigits == 0)
        return -1;
    if (i < len && v[i] == ':')
        i++;
    else if (i < len && hdigits == 1)
        return -1; /* "+530": which digit is the hour's? */
    if (i < len) {
        if (len - i != 2 || !tz_is_digit((unsigned char)v[i]) || !tz_is_digit((unsigned char)v[i + 1]))
            return -1;
        m = (v[i] - '0') * 10 + (v[i + 1] - '0');
    } else if (v[i - 1] == ':') {
        return -1; /* "+05:" */
    }
    if (h > 23 || m > 59)
        return -1;
    *east_min = (v[0] == '+' ? 1 : -1) * (h * 60 + m);
    return 0;
}

/* The id Chromium resolves to this offset, as tz.h says. */
static void tz_offset_id(int east_min, char *id, size_t id_len)
{
    int a = east_min < 0 ? -east_min : east_min;
    if (east_min == 0)
        snprintf(id, id_len, "UTC");
    else if (a % 60 == 0 && east_min > 0 && a <= 14 * 60)
        snprintf(id, id_len, "Etc/GMT-%d", a / 60); /* IANA's Etc zones: POSIX sign */
    else if (a % 60 == 0 && east_min < 0 && a <= 12 * 60)
        snprintf(id, id_len, "Etc/GMT+%d", a / 60);
    else
        snprintf(id, id_len, "GMT%c%02d:%02d", east_min > 0 ? '+' : '-', a / 60, a % 60);
}

/* What may be passed on as an IANA name: Chromium decides whether it knows
 * it, so this only keeps out what is no name at all. */
static int tz_name_chars(const char *v, size_t len)
{
    if (len == 0 || !tz_is_alpha((unsigned char)v[0]))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!tz_is_alpha(c) && !tz_is_digit(c) && !(c && strchr("/_-+", c)))
            return 0;
    }
    return 1;
}

int tz_parse(const char *text, size_t len, char *id, size_t id_len)
{
    if (id_len > 0)
        id[0] = '\0';
    if (!text || len == 0 || len > TZ_TEXT_MAX || id_len < TZ_TEXT_MAX + 1 || memchr(text, '\0', len))
        return -EINVAL;
    if (tz_eq_nocase(text, len, "browser") || tz_eq_nocase(text, len, "default"))
        return TZ_DEFAULT;

    int east;
    int utc = len >= 3 && strncasecmp(text, "UTC", 3) == 0;
    int gmt = len >= 3 && strncasecmp(text, "GMT", 3) == 0;
    if ((utc || gmt) && (len == 3 || text[3] == '+' || text[3] == '-')) {
        if (len == 3) {
            east = 0;
        } else if (tz_offset(text + 3, len - 3, &east) < 0) {
            return -EINVAL;
        } else if (utc) {
            east = -east; /* POSIX: UTC-05:00 is east of Greenwich */
        }
        tz_offset_id(east, id, id_len);
        return TZ_ZONE;
    }
    if (text[0] == '+' || text[0] == '-') {
        if (tz_offset(text, len, &east) < 0)
            return -EINVAL;
        tz_offset_id(east, id, id_len);
        return TZ_ZONE;
    }
    if (!tz_name_chars(text, len))
        return -EINVAL;
    memcpy(id, text, len);
    id[len] = '\0';
    return TZ_ZONE;
}
