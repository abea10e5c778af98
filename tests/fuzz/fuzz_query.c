/* libFuzzer target for the render query. The input is a request as the
 * renderer's API sees it, one part a line:
 *   /render?url=...&width=...    (or /render/csv?..., or a bare query string)
 *   Accept-Language value        (optional line; absent: no header)
 *   [renderer] allowed_hosts       (optional line; absent or empty: any host)
 *   [renderer] timezone            (optional line; absent or empty: none)
 * The query string is split into parameters and percent-decoded the way
 * libmicrohttpd 0.9.75 does it for MHD_get_connection_values_n, each key and
 * value in a buffer of its own, so a read past one is caught; the allow-list
 * goes through config_parse_hosts and the time zone through a config file,
 * as the renderer gets them. Beyond the sanitizers it checks query.h's
 * promises: a parsed request is within every documented bound (out of range
 * is clamped, not refused), its domain is a host name or a bracketed IPv6
 * address, its time zone is the request's own read by tz_parse (an id that
 * reads back as itself) or the configured one, an allow-list only ever
 * refuses more, an error comes with a one-line message that names the
 * parameter, and query_token_equal agrees with strcmp. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "query.h"
#include "tz.h"

#define FUZZ_NAME "fuzz_query"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The API's own cap (renderer/api.c): more is refused before query_parse. */
#define FUZZ_MAX_PARAMS 64

static int fuzz_unhex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* MHD_unescape_plus, then MHD_http_unescape: '+' is a space, %XX a byte,
 * a broken escape stays as it is. Returns a malloc'd copy, NUL-terminated. */
static char *fuzz_unescape(const char *s, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < len && (hi = fuzz_unhex(s[i + 1])) >= 0 &&
                   (lo = fuzz_unhex(s[i + 2])) >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

struct fuzz_params {
    struct query_param p[FUZZ_MAX_PARAMS];
    size_t n;
};

static void fuzz_params_free(struct fuzz_params *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        free((char *)ps->p[i].key);
        free((char *)ps->p[i].value);
    }
    ps->n = 0;
}

/* MHD_parse_arguments_: '&' separates, the first '=' before it splits key
 * from value, no '=' gives a NULL value. -1: too many for the API. */
static int fuzz_split(const char *q, struct fuzz_params *ps)
{
    ps->n = 0;
    while (*q) {
        size_t seg = strcspn(q, "&");
        const char *eq = memchr(q, '=', seg);
        if (ps->n == FUZZ_MAX_PARAMS)
            return -1;
        struct query_param *p = &ps->p[ps->n++];
        p->key = fuzz_unescape(q, eq ? (size_t)(eq - q) : seg, &p->key_len);
        p->value = NULL;
        p->value_len = 0;
        if (eq)
            p->value = fuzz_unescape(eq + 1, (size_t)(q + seg - eq - 1), &p->value_len);
        q += seg;
        if (*q == '&')
            q++;
    }
    return 0;
}

static int fuzz_only(const char *s, const char *extra)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr(extra, c)))
            return 0;
    }
    return 1;
}

/* query.h: the line starts with the parameter's name. */
static void fuzz_check_why(const char *why, size_t why_len)
{
    static const char *const names[] = {
        "url", "width", "height", "deviceScaleFactor", "timeout", "encoding", "renderKey", "domain",
        "timezone", "timeZone", "pdf.format", "pdf.landscape", "pdf.printBackground", "pdf.pageRanges",
        "Accept-Language",
    };
    size_t len = strnlen(why, why_len);
    FUZZ_CHECK(len > 0 && len < why_len, why);
    for (size_t i = 0; i < len; i++)
        FUZZ_CHECK(why[i] >= 0x20 && why[i] < 0x7f, why);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t n = strlen(names[i]);
        if (strncmp(why, names[i], n) == 0 &&
            (strncmp(why + n, ": ", 2) == 0 || strncmp(why + n, " (in url): ", 11) == 0))
            return;
    }
    fuzz_fail("the message does not start with a parameter's name", why);
}

/* The id a request's timezone (the last of timezone and timeZone given with
 * a value; a second is an error anyway) should have become, else dflt. */
static const char *fuzz_want_tz(const struct fuzz_params *ps, const char *dflt, char *id, size_t id_len)
{
    const struct query_param *tz = NULL;
    for (size_t i = 0; i < ps->n; i++) {
        const struct query_param *p = &ps->p[i];
        /* by its length: a key may hold a NUL (%00), and then it is no
         * timezone key to query.c either */
        int is_tz = p->key_len == 8 && (memcmp(p->key, "timezone", 8) == 0 || memcmp(p->key, "timeZone", 8) == 0);
        if (is_tz && p->value && p->value_len > 0)
            tz = p;
    }
    if (!tz)
        return dflt;
    int rc = tz_parse(tz->value, tz->value_len, id, id_len);
    FUZZ_CHECK(rc == TZ_ZONE || rc == TZ_DEFAULT, tz->value); /* the request was taken */
    return rc == TZ_ZONE ? id : dflt;
}

static void fuzz_check_request(const struct render_request *r, enum query_route route,
                               const char *accept_language, const char *const *allowed,
                               const char *want_tz)
{
    FUZZ_CHECK(r->url && strlen(r->url) <= QUERY_URL_MAX, r->url);
    char why[512];
    FUZZ_CHECK(query_url_allowed(r->url, allowed, why, sizeof(why)) == 0, r->url);
    FUZZ_CHECK(query_url_allowed(r->url, NULL, why, sizeof(why)) == 0, r->url);
    FUZZ_CHECK(r->width >= QUERY_SIZE_MIN && r->width <= QUERY_SIZE_MAX, NULL);
    FUZZ_CHECK(r->height == QUERY_FULL_PAGE || (r->height >= QUERY_SIZE_MIN && r->height <= QUERY_SIZE_MAX), NULL);
    FUZZ_CHECK(isfinite(r->device_scale_factor) && r->device_scale_factor >= QUERY_SCALE_MIN &&
                   r->device_scale_factor <= QUERY_SCALE_MAX, NULL);
    FUZZ_CHECK(r->timeout_ms >= QUERY_TIMEOUT_MIN_MS && r->timeout_ms <= QUERY_TIMEOUT_MAX_MS, NULL);
    if (route == QUERY_ROUTE_CSV)
        FUZZ_CHECK(r->encoding == QUERY_ENCODING_CSV, NULL);
    else
        FUZZ_CHECK(r->encoding == QUERY_ENCODING_PNG || r->encoding == QUERY_ENCODING_PDF, NULL);
    FUZZ_CHECK(strcmp(query_encoding_name(r->encoding), "?") != 0, NULL);
    if (r->render_key)
        FUZZ_CHECK(r->render_key[0] && strlen(r->render_key) <= QUERY_RENDER_KEY_MAX &&
                       fuzz_only(r->render_key, "-._~+/="), r->render_key);
    size_t dlen = strnlen(r->domain, sizeof(r->domain));
    FUZZ_CHECK(dlen <= QUERY_DOMAIN_MAX, NULL);
    if (r->domain[0] == '[') {
        /* an IPv6 address, in brackets whichever way it came */
        char text[INET6_ADDRSTRLEN];
        struct in6_addr a;
        FUZZ_CHECK(dlen >= 3 && dlen - 2 < sizeof(text) && r->domain[dlen - 1] == ']', r->domain);
        memcpy(text, r->domain + 1, dlen - 2);
        text[dlen - 2] = '\0';
        FUZZ_CHECK(inet_pton(AF_INET6, text, &a) == 1, r->domain);
    } else {
        FUZZ_CHECK(fuzz_only(r->domain, "-._"), r->domain);
    }
    size_t tlen = strnlen(r->timezone, sizeof(r->timezone));
    FUZZ_CHECK(tlen <= QUERY_TIMEZONE_MAX, NULL);
    FUZZ_CHECK(strcmp(r->timezone, want_tz) == 0, r->timezone);
    if (r->timezone[0]) {
        /* what Chromium gets is an id tz_parse writes: it reads back as itself */
        char again[TZ_TEXT_MAX + 1];
        FUZZ_CHECK(tz_parse(r->timezone, tlen, again, sizeof(again)) == TZ_ZONE &&
                       strcmp(again, r->timezone) == 0, r->timezone);
        FUZZ_CHECK(fuzz_only(r->timezone, "/_-+:"), r->timezone);
    }
    if (accept_language && accept_language[0])
        FUZZ_CHECK(r->accept_language && strcmp(r->accept_language, accept_language) == 0 &&
                       strlen(r->accept_language) <= QUERY_ACCEPT_LANGUAGE_MAX &&
                       fuzz_only(r->accept_language, "-,;=.* "), r->accept_language);
    else
        FUZZ_CHECK(r->accept_language == NULL, r->accept_language);
    FUZZ_CHECK((unsigned)r->pdf.format <= QUERY_PAPER_A6 && strcmp(query_paper_name(r->pdf.format), "?") != 0,
               NULL);
    double w, h;
    query_paper_inches(r->pdf.format, &w, &h);
    FUZZ_CHECK(w > 0 && h > 0, NULL);
    FUZZ_CHECK(r->pdf.landscape == 0 || r->pdf.landscape == 1, NULL);
    FUZZ_CHECK(r->pdf.print_background == 0 || r->pdf.print_background == 1, NULL);
    size_t pr = strnlen(r->pdf.page_ranges, sizeof(r->pdf.page_ranges));
    FUZZ_CHECK(pr <= QUERY_PAGE_RANGES_MAX, NULL);
    for (size_t i = 0; i < pr; i++)
        FUZZ_CHECK(strchr("0123456789-, ", r->pdf.page_ranges[i]) != NULL, r->pdf.page_ranges);
}

/* The next line of [*p, end) as a NUL-terminated copy; NULL once the last
 * line (the one without a newline) has been taken. */
static char *fuzz_line(const char **p, const char *end)
{
    if (!*p)
        return NULL;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    const char *e = nl ? nl : end;
    char *s = malloc((size_t)(e - *p) + 1);
    memcpy(s, *p, (size_t)(e - *p));
    s[e - *p] = '\0';
    *p = nl ? nl + 1 : NULL;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    char *target = fuzz_line(&p, end);
    char *lang = fuzz_line(&p, end);
    char *hosts = fuzz_line(&p, end);
    char *tzline = fuzz_line(&p, end);

    /* The allow-list as config.c reads it; an empty line (a file's last
     * newline) is no list, as no line is. A list config.c refuses never
     * reaches the renderer: no request then. */
    char **allowed_hosts = NULL;
    int hosts_ok = 1;
    if (hosts && hosts[0]) {
        char hosts_why[256] = "";
        hosts_ok = config_parse_hosts(hosts, &allowed_hosts, hosts_why, sizeof(hosts_why)) == 0;
        FUZZ_CHECK(hosts_ok || (hosts_why[0] && !allowed_hosts), hosts_why);
    }
    const char *const *allowed = (const char *const *)allowed_hosts;

    /* [renderer] timezone as the renderer gets it: through a config file
     * (a value config.c refuses means no renderer, so no request) */
    struct config *cfg = NULL;
    int tz_ok = 1;
    if (tzline && tzline[0]) {
        size_t n = strlen(tzline) + 128;
        char *text = malloc(n);
        snprintf(text, n, "[exporter]\ncommand = e\n[renderer]\ncommand = r\ntimezone = %s\n"
                 "[browsers]\ncommand = b\n", tzline);
        char *errors = NULL;
        cfg = config_load_string(text, "fuzz.ini", &errors);
        tz_ok = cfg != NULL;
        FUZZ_CHECK(tz_ok || errors, tzline);
        free(errors);
        free(text);
    }
    const char *default_tz = cfg ? cfg->renderer.timezone : NULL;
    if (default_tz && default_tz[0]) {
        char again[TZ_TEXT_MAX + 1];
        FUZZ_CHECK(tz_parse(default_tz, strlen(default_tz), again, sizeof(again)) == TZ_ZONE &&
                       strcmp(again, default_tz) == 0, default_tz);
    }

    enum query_route route = QUERY_ROUTE_RENDER;
    const char *query = target;
    const char *qmark = strchr(target, '?');
    if (qmark) {
        if ((size_t)(qmark - target) == strlen("/render/csv") && strncmp(target, "/render/csv", 11) == 0)
            route = QUERY_ROUTE_CSV;
        query = qmark + 1;
    }

    struct fuzz_params ps = { .n = 0 };
    if (hosts_ok && tz_ok && fuzz_split(query, &ps) == 0) {
        struct render_request req;
        char why[512];
        int rc = query_parse(&req, route, ps.p, ps.n, lang, allowed, default_tz, why, sizeof(why));
        FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -EACCES, why);
        if (rc == 0) {
            char id[TZ_TEXT_MAX + 1];
            fuzz_check_request(&req, route, lang, allowed,
                               fuzz_want_tz(&ps, default_tz ? default_tz : "", id, sizeof(id)));
            query_fini(&req);
            FUZZ_CHECK(!req.url && !req.render_key && !req.accept_language, NULL);
            query_fini(&req);
        } else {
            fuzz_check_why(why, sizeof(why));
            FUZZ_CHECK(!req.url && !req.render_key && !req.accept_language, why);
        }

        /* Again with a short message buffer (or none): the same answer, the
         * message cut to fit, nothing written past it. */
        size_t short_len = size % 24;
        char small[24 + 8];
        memset(small, 'Z', sizeof(small));
        int again = query_parse(&req, route, ps.p, ps.n, lang, allowed, default_tz, short_len ? small : NULL,
                                short_len);
        FUZZ_CHECK(again == rc, why);
        if (again == 0)
            query_fini(&req);
        if (short_len) {
            FUZZ_CHECK(strnlen(small, short_len) < short_len, why);
            FUZZ_CHECK(strncmp(small, why, strlen(small)) == 0, why);
            for (size_t i = short_len; i < sizeof(small); i++)
                FUZZ_CHECK(small[i] == 'Z', why);
        }
    }
    fuzz_params_free(&ps);

    /* The token check against strcmp, with and without a header. */
    FUZZ_CHECK(query_token_equal(lang, target) == (strcmp(lang ? lang : "", target) == 0), target);
    FUZZ_CHECK(query_token_equal(target, target) == 1, target);
    FUZZ_CHECK(query_token_equal(NULL, target) == (target[0] == '\0'), target);

    config_hosts_free(allowed_hosts);
    config_free(cfg);
    free(target);
    free(lang);
    free(hosts);
    free(tzline);
    return 0;
}
