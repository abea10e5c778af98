/* The query of Grafana's rendering API (GET /render, GET /render/csv), read
 * into a struct that the renderer can trust: every known parameter checked
 * for syntax and bounds, the target URL held to http(s) and an optional host
 * allow-list, and the X-Auth-Token compared in constant time. No I/O here. */
#ifndef RV_QUERY_H
#define RV_QUERY_H

#include <stddef.h>

/* What Grafana sends (pkg/services/rendering/http_mode.go in grafana, read
 * for this module): url, renderKey, domain, timezone, encoding (png, pdf, or
 * csv on /render/csv), timeout (whole seconds), width and height (png only),
 * deviceScaleFactor (as "%f", e.g. "1.000000"; not for csv). Its reports
 * also send name, description, from, to, theme, ... which we ignore, as we
 * ignore every unknown parameter. The pdf options are pdf.format,
 * pdf.landscape, pdf.printBackground and pdf.pageRanges: the reference
 * service read them from the target URL's own query (Grafana puts them
 * there) and later also from the render query, which wins; we do both. Its
 * paper names are letter, legal, tabloid, ledger and a0..a6, in any case.
 * The Go reference reads "timeZone"; we take it as another name of timezone. */

/* Defaults of the reference service: a 1000x500 viewport at scale 1. It
 * waited 30 s when Grafana sent no timeout; Grafana always sends one. */
#define QUERY_WIDTH_DEFAULT 1000
#define QUERY_HEIGHT_DEFAULT 500
#define QUERY_SCALE_DEFAULT 1.0
#define QUERY_TIMEOUT_DEFAULT_MS 60000u

/* Bounds. A value past one is rendered at the bound (or at the default)
 * rather than refused, as the reference services do, because Grafana shows
 * a refusal as a missing image; only a value that is no number is a 400.
 * A width or height below QUERY_SIZE_MIN is that dimension's default (the
 * Node reference's rule: Grafana sends 0 for "unset"); above
 * QUERY_SIZE_MAX, QUERY_SIZE_MAX (both references clamp at their
 * configured maximum, 3000 by default; a viewport past 10000 CSS pixels is
 * no dashboard, and at scale 4 is already 1.6 G pixels). A
 * deviceScaleFactor of 0 is the default (Grafana itself sends 1 for 0),
 * one between 0 and QUERY_SCALE_MIN is QUERY_SCALE_MIN, one above
 * QUERY_SCALE_MAX (Grafana's max_device_scale_factor, the Go reference's
 * max-page-scale-factor) is QUERY_SCALE_MAX. A timeout of 0 is the
 * default; below QUERY_TIMEOUT_MIN_MS, that; above QUERY_TIMEOUT_MAX_MS,
 * that. */
#define QUERY_SIZE_MIN 10
#define QUERY_SIZE_MAX 10000
#define QUERY_FULL_PAGE (-1) /* height: capture the whole page */
#define QUERY_SCALE_MIN 0.1
#define QUERY_SCALE_MAX 4.0
#define QUERY_TIMEOUT_MIN_MS 1000u
#define QUERY_TIMEOUT_MAX_MS 300000u

/* Lengths, in bytes, without the NUL. A Grafana dashboard URL with its
 * variables fits in 8 KiB; a renderKey is 32 characters, or a JWT of a few
 * hundred when Grafana signs render keys. */
#define QUERY_URL_MAX 8192
#define QUERY_RENDER_KEY_MAX 2048
#define QUERY_DOMAIN_MAX 253 /* a DNS name */
#define QUERY_TIMEZONE_MAX 64 /* common/tz.h's TZ_TEXT_MAX */
#define QUERY_PAGE_RANGES_MAX 128
#define QUERY_ACCEPT_LANGUAGE_MAX 512

/* Which endpoint the query came to: it decides which encodings are valid. */
enum query_route {
    QUERY_ROUTE_RENDER, /* /render: png (default) or pdf */
    QUERY_ROUTE_CSV,    /* /render/csv: csv only */
};

enum query_encoding {
    QUERY_ENCODING_PNG,
    QUERY_ENCODING_PDF,
    QUERY_ENCODING_CSV,
};

enum query_paper {
    QUERY_PAPER_LETTER,
    QUERY_PAPER_LEGAL,
    QUERY_PAPER_TABLOID,
    QUERY_PAPER_LEDGER,
    QUERY_PAPER_A0,
    QUERY_PAPER_A1,
    QUERY_PAPER_A2,
    QUERY_PAPER_A3,
    QUERY_PAPER_A4,
    QUERY_PAPER_A5,
    QUERY_PAPER_A6,
};

/* One query parameter as libmicrohttpd hands it over, already percent-decoded
 * (MHD_get_connection_values_n with MHD_GET_ARGUMENT_KIND). The lengths are
 * there so that a %00 inside a value is seen rather than silently cutting it.
 * value is NULL for a key given without '=' ("?width"); it reads as empty. */
struct query_param {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
};

/* trace.h's TRACE_PARENT_LEN. */
#define QUERY_TRACEPARENT_LEN 55

struct render_request {
    /* The request's number in the renderer's life, for the log lines that
     * belong to it (render_id=): set by the HTTP side after query_parse. */
    unsigned long long id;
    char *url;                /* never NULL after a successful parse */
    int width;                /* CSS pixels */
    int height;               /* CSS pixels, or QUERY_FULL_PAGE */
    double device_scale_factor;
    unsigned timeout_ms;
    enum query_encoding encoding;
    char *render_key;         /* NULL: none given (no cookie to set) */
    /* "" when not given; a host name, or an IPv6 address in brackets
     * ("[2001:db8::5]"), whichever way it came (Grafana sends the host of
     * an IPv6 callback URL without them): cdp_set_cookie takes both. */
    char domain[QUERY_DOMAIN_MAX + 1];
    /* The id Chromium's Emulation.setTimezoneOverride takes (common/tz.h
     * reads Grafana's spellings into it: UTC-05:00 arrives as Etc/GMT-5),
     * or the configured default when none was given or it said browser or
     * default; "" keeps the browser's own. */
    char timezone[QUERY_TIMEZONE_MAX + 1];
    char *accept_language;    /* the request's header; NULL when absent */
    struct {
        enum query_paper format;  /* default A4, as the reference service */
        int landscape;            /* default 0 */
        int print_background;     /* default 1 */
        char page_ranges[QUERY_PAGE_RANGES_MAX + 1]; /* "" = all pages */
    } pdf;
    /* Tracing (renderer/trace.h), set by the HTTP side after the parse: the
     * render span's W3C traceparent for the page's requests to its own
     * origin ("" = tracing off), and the incoming tracestate (NULL: none). */
    char traceparent[QUERY_TRACEPARENT_LEN + 1];
    const char *tracestate;
};

/* Read a query into *out (which needs no preparation; anything in it is
 * overwritten, not freed). Parameters are checked in the order given; an
 * empty value counts as not given, as with the reference service (Grafana
 * sends "timezone=" for alerts), except for url. A known parameter given
 * twice is an error; unknown ones are ignored. accept_language is the
 * request's Accept-Language header (NULL: none). allowed_hosts is a
 * NULL-terminated list for query_url_allowed (NULL: any host).
 * default_timezone is [renderer] timezone as config.c keeps it (an id
 * tz_parse wrote; NULL or "": none): the timezone of a request that gives
 * none, or gives browser or default.
 *
 * Returns 0 (call query_fini later), -EINVAL for a bad or missing parameter
 * (answer 400), or -EACCES for a URL that is not http(s), carries
 * credentials, or names a host off the allow-list (answer 403). On failure
 * *out holds nothing to free, and why (when why_len > 0) holds one line
 * that starts with the parameter's name and says what was wrong, e.g.
 * width: expected a whole number of CSS pixels, got "abc"
 * with the offending value quoted, shortened and escaped, so the line is
 * safe to send back and to log. */
int query_parse(struct render_request *out, enum query_route route,
                const struct query_param *params, size_t nparams,
                const char *accept_language, const char *const *allowed_hosts,
                const char *default_timezone, char *why, size_t why_len);
/* Frees what query_parse allocated; safe on a zeroed or already-finished one. */
void query_fini(struct render_request *req);

/* Whether the renderer may open url: an absolute http or https URL (scheme
 * in any case) with "//" and a host, made only of printable ASCII without
 * spaces or backslashes (a browser reads '\' as '/', another parser would
 * not). A host is a name of letters, digits, '-', '.' and '_' (no '%': a
 * browser would decode it), or an IPv6 literal in brackets; the port, if
 * any, is 1..65535 or empty. User info ("http://grafana@evil.example/") is
 * refused outright: it only ever serves to make a URL look like it goes
 * somewhere it does not, and Grafana never sends it. allowed_hosts, when not
 * NULL, is a NULL-terminated list of entries ([renderer] allowed_hosts):
 * "name" or "[IPv6]" allows the host at any port, "name:port" or
 * "[IPv6]:port" only at that port (the URL's own, or 80 for http and 443 for
 * https when it gives none); a bare IPv6 address is an entry without a port.
 * Names match exactly, case-insensitively (no trailing-dot folding, no IPv4
 * shorthand: "127.1" is not "127.0.0.1"); IPv6 addresses match by value.
 * The host compared is the one a browser connects to: user info, '%',
 * backslashes and whitespace never get that far.
 * Returns 0, -EACCES (scheme, user info, host not allowed: 403) or -EINVAL
 * (malformed: 400), with why set as for query_parse. */
int query_url_allowed(const char *url, const char *const *allowed_hosts,
                      char *why, size_t why_len);

/* 1 when given equals expected, else 0. The time taken depends on the
 * length of expected and of given, never on where they differ, so a client
 * cannot find the token a byte at a time. given NULL (no header) reads as "". */
int query_token_equal(const char *given, const char *expected);

const char *query_encoding_name(enum query_encoding enc);
/* "letter", "a4", ... as the reference service names them. */
const char *query_paper_name(enum query_paper paper);
/* Paper size in inches for Page.printToPDF's paperWidth/paperHeight, as
 * puppeteer defines them: portrait, except ledger, which is 17 x 11. */
void query_paper_inches(enum query_paper paper, double *width, double *height);

#endif
