/* Grafana's rendering query, checked before anything reaches a browser: a
 * parameter is either within its bounds or the request is refused with a
 * line naming it, because whatever gets through ends up in CDP commands. */
#include "query.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hostcheck.h"
#include "tz.h"
#include "xalloc.h"

_Static_assert(QUERY_TIMEZONE_MAX == TZ_TEXT_MAX, "a timezone id fits in render_request");

enum query_key {
    QUERY_KEY_URL,
    QUERY_KEY_WIDTH,
    QUERY_KEY_HEIGHT,
    QUERY_KEY_SCALE,
    QUERY_KEY_TIMEOUT,
    QUERY_KEY_ENCODING,
    QUERY_KEY_RENDER_KEY,
    QUERY_KEY_DOMAIN,
    QUERY_KEY_TIMEZONE,
    QUERY_KEY_PDF_FORMAT,
    QUERY_KEY_PDF_LANDSCAPE,
    QUERY_KEY_PDF_BACKGROUND,
    QUERY_KEY_PDF_RANGES,
    QUERY_KEY_COUNT,
};

static const struct {
    const char *name;
    enum query_key key;
} query_keys[] = {
    { "url", QUERY_KEY_URL },
    { "width", QUERY_KEY_WIDTH },
    { "height", QUERY_KEY_HEIGHT },
    { "deviceScaleFactor", QUERY_KEY_SCALE },
    { "timeout", QUERY_KEY_TIMEOUT },
    { "encoding", QUERY_KEY_ENCODING },
    { "renderKey", QUERY_KEY_RENDER_KEY },
    { "domain", QUERY_KEY_DOMAIN },
    { "timezone", QUERY_KEY_TIMEZONE },
    { "timeZone", QUERY_KEY_TIMEZONE }, /* the Go reference's spelling */
    { "pdf.format", QUERY_KEY_PDF_FORMAT },
    { "pdf.landscape", QUERY_KEY_PDF_LANDSCAPE },
    { "pdf.printBackground", QUERY_KEY_PDF_BACKGROUND },
    { "pdf.pageRanges", QUERY_KEY_PDF_RANGES },
};

#define QUERY_NKEYS (sizeof(query_keys) / sizeof(query_keys[0]))

static const struct {
    const char *name;
    double width, height; /* inches */
} query_papers[] = {
    [QUERY_PAPER_LETTER] = { "letter", 8.5, 11 },
    [QUERY_PAPER_LEGAL] = { "legal", 8.5, 14 },
    [QUERY_PAPER_TABLOID] = { "tabloid", 11, 17 },
    [QUERY_PAPER_LEDGER] = { "ledger", 17, 11 },
    /* ISO 216, from millimetres */
    [QUERY_PAPER_A0] = { "a0", 841 / 25.4, 1189 / 25.4 },
    [QUERY_PAPER_A1] = { "a1", 594 / 25.4, 841 / 25.4 },
    [QUERY_PAPER_A2] = { "a2", 420 / 25.4, 594 / 25.4 },
    [QUERY_PAPER_A3] = { "a3", 297 / 25.4, 420 / 25.4 },
    [QUERY_PAPER_A4] = { "a4", 210 / 25.4, 297 / 25.4 },
    [QUERY_PAPER_A5] = { "a5", 148 / 25.4, 210 / 25.4 },
    [QUERY_PAPER_A6] = { "a6", 105 / 25.4, 148 / 25.4 },
};

#define QUERY_NPAPERS (sizeof(query_papers) / sizeof(query_papers[0]))

/* How much of a bad value is echoed: enough to recognise it, never a whole
 * 8 KiB URL in a log line. */
#define QUERY_ECHO_MAX 40

__attribute__((format(printf, 3, 4)))
static void query_why(char *why, size_t why_len, const char *fmt, ...)
{
    if (!why || why_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

/* The value as it may be shown back: at most QUERY_ECHO_MAX bytes, with
 * quotes, backslashes and anything not printable ASCII escaped, so the
 * message stays one line of plain text whatever the client sent. */
static void query_echo(char *out, size_t out_len, const char *v, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    size_t n = len < QUERY_ECHO_MAX ? len : QUERY_ECHO_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (o + 5 > out_len)
            break;
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out[o++] = (char)c;
        } else if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (len > n && o + 4 <= out_len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* "name: expected, got "value"", and the code to return. */
static int query_bad(char *why, size_t why_len, int rc, const char *name,
                     const char *expected, const char *v, size_t len)
{
    char echo[QUERY_ECHO_MAX * 4 + 8];
    query_echo(echo, sizeof(echo), v, len);
    query_why(why, why_len, "%s: %s, got \"%s\"", name, expected, echo);
    return rc;
}

static int query_is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int query_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Every byte of v is a letter, a digit or one of extra. */
static int query_only(const char *v, size_t len, const char *extra)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!query_is_alpha(c) && !query_is_digit(c) && !(c && strchr(extra, c)))
            return 0;
    }
    return 1;
}

static int query_eq_nocase(const char *v, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(v, word, len) == 0;
}

/* Past this, a number is past every bound: longer runs of digits saturate
 * here instead of overflowing. */
#define QUERY_NUMBER_BIG INT64_C(1000000000)

/* A whole number, optionally negative, of any length (saturating at
 * QUERY_NUMBER_BIG either way). */
static int query_int(const char *v, size_t len, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    if (len > 0 && v[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == len)
        return -1;
    int64_t n = 0;
    for (; i < len; i++) {
        if (!query_is_digit((unsigned char)v[i]))
            return -1;
        if (n < QUERY_NUMBER_BIG)
            n = n * 10 + (v[i] - '0');
    }
    if (n > QUERY_NUMBER_BIG)
        n = QUERY_NUMBER_BIG;
    *out = neg ? -n : n;
    return 0;
}

/* A width or height: below QUERY_SIZE_MIN the default, above
 * QUERY_SIZE_MAX the maximum, -1 the full page where allowed. */
static int query_size(const char *v, size_t len, int allow_full_page, int dflt, int *out)
{
    int64_t n;
    if (query_int(v, len, &n) < 0)
        return -1;
    if (allow_full_page && n == QUERY_FULL_PAGE)
        *out = QUERY_FULL_PAGE;
    else if (n < QUERY_SIZE_MIN)
        *out = dflt;
    else if (n > QUERY_SIZE_MAX)
        *out = QUERY_SIZE_MAX;
    else
        *out = (int)n;
    return 0;
}

/* Plain decimal ("2", "1.000000", ".5"): Grafana formats it with %f. No
 * sign, exponent, hex, inf or nan, and no strtod, whose decimal point
 * follows the locale. 0 is the default; the rest is clamped into
 * QUERY_SCALE_MIN..QUERY_SCALE_MAX. */
static int query_scale(const char *v, size_t len, double *out)
{
    size_t i = 0, int_digits = 0, frac_digits = 0;
    int nonzero = 0;
    double n = 0;
    while (i < len && query_is_digit((unsigned char)v[i])) {
        nonzero |= v[i] != '0';
        /* past a million it is past the maximum: stop adding */
        if (++int_digits <= 7)
            n = n * 10 + (v[i] - '0');
        i++;
    }
    if (i < len && v[i] == '.') {
        i++;
        uint64_t frac = 0, scale = 1;
        while (i < len && query_is_digit((unsigned char)v[i])) {
            nonzero |= v[i] != '0';
            /* digits past the 18th cannot move a double in our range */
            if (frac_digits < 18) {
                frac = frac * 10 + (uint64_t)(v[i] - '0');
                scale *= 10;
            }
            frac_digits++;
            i++;
        }
        n += (double)frac / (double)scale;
    }
    if (i != len || int_digits + frac_digits == 0)
        return -1;
    if (!nonzero)
        n = QUERY_SCALE_DEFAULT;
    else if (!(n >= QUERY_SCALE_MIN))
        n = QUERY_SCALE_MIN; /* "0.0000000000000000001" too */
    else if (n > QUERY_SCALE_MAX)
        n = QUERY_SCALE_MAX;
    *out = n;
    return 0;
}

/* Whole seconds, as Grafana sends them, or a number with ms, s or m, as the
 * Go reference also takes. 0 is the default; the rest is clamped into
 * QUERY_TIMEOUT_MIN_MS..QUERY_TIMEOUT_MAX_MS. */
static int query_timeout(const char *v, size_t len, unsigned *out_ms)
{
    size_t i = 0;
    uint64_t n = 0;
    while (i < len && query_is_digit((unsigned char)v[i])) {
        if (n < (uint64_t)QUERY_NUMBER_BIG)
            n = n * 10 + (uint64_t)(v[i] - '0');
        i++;
    }
    if (i == 0)
        return -1;
    const char *unit = v + i;
    size_t ulen = len - i;
    uint64_t ms;
    if (ulen == 0 || (ulen == 1 && unit[0] == 's'))
        ms = n * 1000;
    else if (ulen == 2 && unit[0] == 'm' && unit[1] == 's')
        ms = n;
    else if (ulen == 1 && unit[0] == 'm')
        ms = n * 60000;
    else
        return -1;
    if (ms == 0)
        ms = QUERY_TIMEOUT_DEFAULT_MS;
    else if (ms < QUERY_TIMEOUT_MIN_MS)
        ms = QUERY_TIMEOUT_MIN_MS;
    else if (ms > QUERY_TIMEOUT_MAX_MS)
        ms = QUERY_TIMEOUT_MAX_MS;
    *out_ms = (unsigned)ms;
    return 0;
}

static int query_bool(const char *v, size_t len, int *out)
{
    if (query_eq_nocase(v, len, "true") || query_eq_nocase(v, len, "1")) {
        *out = 1;
        return 0;
    }
    if (query_eq_nocase(v, len, "false") || query_eq_nocase(v, len, "0")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int query_paper(const char *v, size_t len, enum query_paper *out)
{
    for (size_t i = 0; i < QUERY_NPAPERS; i++) {
        if (query_eq_nocase(v, len, query_papers[i].name)) {
            *out = (enum query_paper)i;
            return 0;
        }
    }
    return -1;
}

/* Page numbers of at most six digits, from 1. */
static int query_page(const char *v, size_t len, size_t *i, long *out)
{
    size_t start = *i;
    long n = 0;
    while (*i < len && query_is_digit((unsigned char)v[*i])) {
        if (*i - start >= 6)
            return -1;
        n = n * 10 + (v[(*i)++] - '0');
    }
    if (*i == start)
        return 0; /* no number here */
    if (n < 1)
        return -1;
    *out = n;
    return 1;
}

/* Chrome's pageRanges: "1-5, 8, 11-13", a range open at either end ("-3",
 * "4-") allowed; a backwards range is an error in Chrome, so it is here. */
static int query_page_ranges(const char *v, size_t len)
{
    size_t i = 0;
    for (;;) {
        while (i < len && v[i] == ' ')
            i++;
        long a = 0, b = 0;
        int has_a = query_page(v, len, &i, &a);
        if (has_a < 0)
            return -1;
        if (i < len && v[i] == '-') {
            i++;
            int has_b = query_page(v, len, &i, &b);
            if (has_b < 0 || (!has_a && !has_b))
                return -1;
            if (has_a && has_b && a > b)
                return -1;
        } else if (!has_a) {
            return -1;
        }
        while (i < len && v[i] == ' ')
            i++;
        if (i == len)
            return 0;
        if (v[i] != ',')
            return -1;
        i++;
    }
}

/* The host part of a URL we would accept: checked here so that the
 * allow-list compares what a browser will connect to. */
static int query_host_chars(const char *h, size_t len)
{
    return query_only(h, len, "-._");
}

/* A cookie's domain: a host name, or an IPv6 address with or without
 * brackets, kept in brackets (its spelling in a URL). */
static int query_domain(const char *v, size_t len, char out[QUERY_DOMAIN_MAX + 1])
{
    if (v[0] != '[' && !memchr(v, ':', len)) {
        if (len > QUERY_DOMAIN_MAX || !query_host_chars(v, len))
            return -1;
        memcpy(out, v, len);
        out[len] = '\0';
        return 0;
    }
    if (v[0] == '[') {
        if (len < 2 || v[len - 1] != ']')
            return -1;
        v++;
        len -= 2;
    }
    struct in6_addr addr;
    if (hostcheck_v6_parse(v, len, &addr) < 0)
        return -1;
    out[0] = '[';
    memcpy(out + 1, v, len);
    out[len + 1] = ']';
    out[len + 2] = '\0';
    return 0;
}

int query_url_allowed(const char *url, const char *const *allowed_hosts,
                      char *why, size_t why_len)
{
    if (!url || !url[0]) {
        query_why(why, why_len, "url: required");
        return -EINVAL;
    }
    size_t len = strlen(url);
    if (len > QUERY_URL_MAX) {
        query_why(why, why_len, "url: longer than %d bytes", QUERY_URL_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f)
            return query_bad(why, why_len, -EINVAL, "url",
                             "expected printable ASCII without spaces (percent-encode the rest)",
                             url, len);
        if (c == '\\')
            return query_bad(why, why_len, -EINVAL, "url",
                             "expected no backslash (a browser reads it as '/')", url, len);
    }

    struct hostcheck_url u;
    int rc = hostcheck_parse(url, len, &u);
    if (u.scheme_len == 0)
        return query_bad(why, why_len, -EACCES, "url",
                         "expected an absolute http or https URL", url, len);
    if (!(u.scheme_len == 4 && strncasecmp(url, "http", 4) == 0) &&
        !(u.scheme_len == 5 && strncasecmp(url, "https", 5) == 0))
        return query_bad(why, why_len, -EACCES, "url",
                         "expected an http or https URL", url, len);
    /* user info first: whatever follows it, the URL means to mislead */
    if (u.userinfo || (rc == 0 && memchr(u.auth, '@', u.auth_len)))
        return query_bad(why, why_len, -EACCES, "url", "expected no user info (user@host)", url, len);
    if (rc < 0)
        return query_bad(why, why_len, -EINVAL, "url", u.why, url, len);
    if (!u.v6 && (u.host_len > QUERY_DOMAIN_MAX || !query_host_chars(u.host, u.host_len)))
        return query_bad(why, why_len, -EINVAL, "url",
                         "expected a host name of letters, digits, '-', '.' and '_'", url, len);

    /* the same rule as for every request of the page (hostcheck_request) */
    enum names_refusal refusal;
    if (hostcheck_request(url, len, allowed_hosts, NULL, &refusal) < 0) {
        /* the authority is known to be plain characters by now: name it as
         * the URL wrote it, port included */
        if (refusal == NAMES_REFUSAL_LINK_LOCAL)
            query_why(why, why_len,
                      "url: host %.*s is a link-local or metadata address (list it in allowed_hosts to allow it)",
                      (int)u.auth_len, u.auth);
        else
            query_why(why, why_len, "url: host %.*s is not in allowed_hosts", (int)u.auth_len, u.auth);
        return -EACCES;
    }
    return 0;
}

static int query_known(const char *key, size_t key_len, enum query_key *out, const char **name)
{
    for (size_t i = 0; i < QUERY_NKEYS; i++) {
        if (strlen(query_keys[i].name) == key_len &&
            memcmp(query_keys[i].name, key, key_len) == 0) {
            *out = query_keys[i].key;
            *name = query_keys[i].name;
            return 1;
        }
    }
    return 0;
}

static const char *const query_pdf_key_names[] = {
    [QUERY_KEY_PDF_FORMAT] = "pdf.format",
    [QUERY_KEY_PDF_LANDSCAPE] = "pdf.landscape",
    [QUERY_KEY_PDF_BACKGROUND] = "pdf.printBackground",
    [QUERY_KEY_PDF_RANGES] = "pdf.pageRanges",
};

/* Check one value (not empty, no control bytes) and store it. name is what
 * the message calls the parameter. */
static int query_set(struct render_request *out, enum query_route route,
                     enum query_key key, const char *name,
                     const char *v, size_t len,
                     const char *const *allowed_hosts, char *why, size_t why_len)
{
    switch (key) {
    case QUERY_KEY_URL:
        if (len > QUERY_URL_MAX) {
            query_why(why, why_len, "url: longer than %d bytes", QUERY_URL_MAX);
            return -EINVAL;
        }
        /* a copy first: the checks below read a C string */
        out->url = xstrndup(v, len);
        return query_url_allowed(out->url, allowed_hosts, why, why_len);
    case QUERY_KEY_WIDTH:
        if (query_size(v, len, 0, QUERY_WIDTH_DEFAULT, &out->width) < 0)
            return query_bad(why, why_len, -EINVAL, name, "expected a whole number of CSS pixels", v, len);
        return 0;
    case QUERY_KEY_HEIGHT:
        if (query_size(v, len, 1, QUERY_HEIGHT_DEFAULT, &out->height) < 0)
            return query_bad(why, why_len, -EINVAL, name,
                             "expected a whole number of CSS pixels, or -1 for the full page", v, len);
        return 0;
    case QUERY_KEY_SCALE:
        if (query_scale(v, len, &out->device_scale_factor) < 0)
            return query_bad(why, why_len, -EINVAL, name,
                             "expected a decimal number such as 2 or 1.500000", v, len);
        return 0;
    case QUERY_KEY_TIMEOUT:
        if (query_timeout(v, len, &out->timeout_ms) < 0)
            return query_bad(why, why_len, -EINVAL, name,
                             "expected whole seconds, or a number with ms, s or m", v, len);
        return 0;
    case QUERY_KEY_ENCODING:
        if (route == QUERY_ROUTE_CSV) {
            if (!query_eq_nocase(v, len, "csv"))
                return query_bad(why, why_len, -EINVAL, name,
                                 "expected csv on /render/csv", v, len);
            out->encoding = QUERY_ENCODING_CSV;
        } else if (query_eq_nocase(v, len, "png")) {
            out->encoding = QUERY_ENCODING_PNG;
        } else if (query_eq_nocase(v, len, "pdf")) {
            out->encoding = QUERY_ENCODING_PDF;
        } else {
            return query_bad(why, why_len, -EINVAL, name,
                             "expected png or pdf (csv is /render/csv)", v, len);
        }
        return 0;
    case QUERY_KEY_RENDER_KEY:
        /* it becomes a cookie value: token characters only */
        if (len > QUERY_RENDER_KEY_MAX || !query_only(v, len, "-._~+/="))
            return query_bad(why, why_len, -EINVAL, name,
                             "expected at most 2048 of A-Z a-z 0-9 - . _ ~ + / =", v, len);
        out->render_key = xstrndup(v, len);
        return 0;
    case QUERY_KEY_DOMAIN:
        if (query_domain(v, len, out->domain) < 0)
            return query_bad(why, why_len, -EINVAL, name,
                             "expected a host name of at most 253 letters, digits, '-', '.' and '_', "
                             "or an IPv6 address", v, len);
        return 0;
    case QUERY_KEY_TIMEZONE: {
        /* out->timezone holds the configured default until now: browser
         * and default keep it */
        char id[TZ_TEXT_MAX + 1];
        int rc = tz_parse(v, len, id, sizeof(id));
        if (rc < 0)
            return query_bad(why, why_len, -EINVAL, name, "expected " TZ_EXPECTED, v, len);
        if (rc == TZ_ZONE)
            memcpy(out->timezone, id, strlen(id) + 1);
        return 0;
    }
    case QUERY_KEY_PDF_FORMAT:
        if (query_paper(v, len, &out->pdf.format) < 0)
            return query_bad(why, why_len, -EINVAL, name,
                             "expected letter, legal, tabloid, ledger or a0 to a6", v, len);
        return 0;
    case QUERY_KEY_PDF_LANDSCAPE:
        if (query_bool(v, len, &out->pdf.landscape) < 0)
            return query_bad(why, why_len, -EINVAL, name, "expected true or false", v, len);
        return 0;
    case QUERY_KEY_PDF_BACKGROUND:
        if (query_bool(v, len, &out->pdf.print_background) < 0)
            return query_bad(why, why_len, -EINVAL, name, "expected true or false", v, len);
        return 0;
    case QUERY_KEY_PDF_RANGES:
        if (len > QUERY_PAGE_RANGES_MAX || query_page_ranges(v, len) < 0)
            return query_bad(why, why_len, -EINVAL, name,
                             "expected pages and ranges such as 1-5, 8, 11-", v, len);
        memcpy(out->pdf.page_ranges, v, len);
        out->pdf.page_ranges[len] = '\0';
        return 0;
    case QUERY_KEY_COUNT:
        break;
    }
    return -EINVAL;
}

static int query_unhex(unsigned char c)
{
    if (query_is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Form-decode s[0..len) into out ('+' is a space); -1 when an escape is
 * broken or the result does not fit in out_len - 1 bytes. */
static int query_decode(const char *s, size_t len, char *out, size_t out_len, size_t *out_n)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = query_unhex((unsigned char)s[i + 1]);
            int lo = query_unhex((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (o + 1 >= out_len)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    *out_n = o;
    return 0;
}

/* The reference service took the pdf options from the target URL's own
 * query, and Grafana still puts them there: use those the render query did
 * not give. The first occurrence counts, as with Go's url.Query().Get. */
static int query_pdf_from_url(struct render_request *out, int *seen, char *why, size_t why_len)
{
    const char *q = strchr(out->url, '?');
    if (!q)
        return 0;
    q++;
    size_t qlen = strcspn(q, "#");
    while (qlen > 0) {
        size_t plen = strcspn(q, "&");
        if (plen > qlen)
            plen = qlen;
        const char *eq = memchr(q, '=', plen);
        size_t klen = eq ? (size_t)(eq - q) : plen;
        char key[32];
        size_t kn;
        enum query_key k;
        const char *name;
        if (query_decode(q, klen, key, sizeof(key), &kn) == 0 &&
            query_known(key, kn, &k, &name) && k >= QUERY_KEY_PDF_FORMAT && !seen[k]) {
            seen[k] = 1;
            char label[48];
            snprintf(label, sizeof(label), "%s (in url)", query_pdf_key_names[k]);
            const char *raw = eq ? eq + 1 : q + plen;
            size_t rawlen = (size_t)(q + plen - raw);
            char value[QUERY_PAGE_RANGES_MAX + 2];
            size_t vn;
            if (query_decode(raw, rawlen, value, sizeof(value), &vn) < 0)
                return query_bad(why, why_len, -EINVAL, label,
                                 "expected a short, well percent-encoded value", raw, rawlen);
            if (vn > 0) {
                for (size_t i = 0; i < vn; i++)
                    if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
                        return query_bad(why, why_len, -EINVAL, label,
                                         "expected no control characters", value, vn);
                int rc = query_set(out, QUERY_ROUTE_RENDER, k, label, value, vn, NULL,
                                   why, why_len);
                if (rc < 0)
                    return rc;
            }
        }
        if (plen == qlen)
            break;
        q += plen + 1;
        qlen -= plen + 1;
    }
    return 0;
}

int query_parse(struct render_request *out, enum query_route route,
                const struct query_param *params, size_t nparams,
                const char *accept_language, const char *const *allowed_hosts,
                const char *default_timezone, char *why, size_t why_len)
{
    int seen[QUERY_KEY_COUNT] = { 0 };
    int rc;

    memset(out, 0, sizeof(*out));
    out->width = QUERY_WIDTH_DEFAULT;
    out->height = QUERY_HEIGHT_DEFAULT;
    out->device_scale_factor = QUERY_SCALE_DEFAULT;
    out->timeout_ms = QUERY_TIMEOUT_DEFAULT_MS;
    out->encoding = route == QUERY_ROUTE_CSV ? QUERY_ENCODING_CSV : QUERY_ENCODING_PNG;
    out->pdf.format = QUERY_PAPER_A4;
    out->pdf.print_background = 1;
    if (default_timezone && strlen(default_timezone) <= QUERY_TIMEZONE_MAX)
        memcpy(out->timezone, default_timezone, strlen(default_timezone) + 1);
    if (why && why_len)
        why[0] = '\0';

    for (size_t i = 0; i < nparams; i++) {
        const struct query_param *p = &params[i];
        enum query_key k;
        const char *name;
        if (!p->key || !query_known(p->key, p->key_len, &k, &name))
            continue; /* Grafana sends some we have no use for */
        if (seen[k]) {
            query_why(why, why_len, "%s: given more than once", name);
            rc = -EINVAL;
            goto fail;
        }
        seen[k] = 1;
        const char *v = p->value ? p->value : "";
        size_t len = p->value ? p->value_len : 0;
        if (len == 0) {
            if (k != QUERY_KEY_URL)
                continue;
            query_why(why, why_len, "url: required");
            rc = -EINVAL;
            goto fail;
        }
        for (size_t j = 0; j < len; j++) {
            if ((unsigned char)v[j] < 0x20 || v[j] == 0x7f) {
                rc = query_bad(why, why_len, -EINVAL, name,
                               "expected no control characters", v, len);
                goto fail;
            }
        }
        rc = query_set(out, route, k, name, v, len, allowed_hosts, why, why_len);
        if (rc < 0)
            goto fail;
    }

    if (!out->url) {
        query_why(why, why_len, "url: required");
        rc = -EINVAL;
        goto fail;
    }
    if (out->encoding == QUERY_ENCODING_PDF) {
        rc = query_pdf_from_url(out, seen, why, why_len);
        if (rc < 0)
            goto fail;
    }
    if (accept_language && accept_language[0]) {
        size_t len = strlen(accept_language);
        /* passed on as a header: "en-US,en;q=0.9" and nothing else */
        if (len > QUERY_ACCEPT_LANGUAGE_MAX || !query_only(accept_language, len, "-,;=.* ")) {
            rc = query_bad(why, why_len, -EINVAL, "Accept-Language",
                           "expected language tags with q-values, at most 512 bytes",
                           accept_language, len);
            goto fail;
        }
        out->accept_language = xstrndup(accept_language, len);
    }
    return 0;

fail:
    query_fini(out);
    return rc;
}

void query_fini(struct render_request *req)
{
    free(req->url);
    free(req->render_key);
    free(req->accept_language);
    req->url = NULL;
    req->render_key = NULL;
    req->accept_language = NULL;
}

int query_token_equal(const char *given, const char *expected)
{
    if (!given)
        given = "";
    size_t glen = strlen(given), elen = strlen(expected);
    /* Walk expected whole; past the end of given, read given[0] and mask it
     * to zero instead of branching, and let the length difference count as a
     * mismatch of its own. The accumulator is volatile so the compiler
     * cannot turn the loop into one that stops at the first difference. */
    volatile unsigned char acc = glen != elen;
    for (size_t i = 0; i < elen; i++) {
        size_t in = (size_t)0 - (size_t)(i < glen); /* all ones while inside given */
        unsigned char g = (unsigned char)given[i & in] & (unsigned char)in;
        acc |= (unsigned char)(g ^ (unsigned char)expected[i]);
    }
    return acc == 0;
}

const char *query_encoding_name(enum query_encoding enc)
{
    switch (enc) {
    case QUERY_ENCODING_PNG:
        return "png";
    case QUERY_ENCODING_PDF:
        return "pdf";
    case QUERY_ENCODING_CSV:
        return "csv";
    }
    return "?";
}

const char *query_paper_name(enum query_paper paper)
{
    if ((size_t)paper >= QUERY_NPAPERS)
        return "?";
    return query_papers[paper].name;
}

void query_paper_inches(enum query_paper paper, double *width, double *height)
{
    if ((size_t)paper >= QUERY_NPAPERS)
        paper = QUERY_PAPER_A4;
    *width = query_papers[paper].width;
    *height = query_papers[paper].height;
}
