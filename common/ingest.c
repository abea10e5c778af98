/* Writing ingest lines and sending them. Both the supervisor and the renderer
 * report through here, so the format is written in exactly one place. */
#include "ingest.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net.h"
#include "xalloc.h"

void ingest_buf_init(struct ingest_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void ingest_buf_fini(struct ingest_buf *b)
{
    free(b->data);
    ingest_buf_init(b);
}

void ingest_buf_reset(struct ingest_buf *b)
{
    b->len = 0;
    b->lines = 0;
    b->overflow = 0;
}

size_t ingest_format_value(char *buf, size_t size, double value)
{
    int n;
    if (isnan(value))
        n = snprintf(buf, size, "NaN");
    else if (isinf(value))
        n = snprintf(buf, size, value > 0 ? "+Inf" : "-Inf");
    else if (value == floor(value) && fabs(value) < 1e15) {
        /* Most values are whole (bytes, counts, buckets): written by hand,
         * the same text as "%.0f" at a fraction of printf's cost. */
        char tmp[24];
        size_t k = 0;
        unsigned long long u = (unsigned long long)fabs(value);
        do {
            tmp[k++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (signbit(value))
            tmp[k++] = '-';
        for (size_t i = 0; i < k && i + 1 < size; i++)
            buf[i] = tmp[k - 1 - i];
        if (size)
            buf[k < size ? k : size - 1] = '\0';
        n = (int)k;
    }
    else {
        /* The shortest precision (from 6) that reads back to the same
         * double. More digits never read back worse, so a binary search
         * finds it: a scrape formats hundreds of these. */
        int lo = 6, hi = 17;
        while (lo < hi) {
            int mid = lo + (hi - lo) / 2;
            n = snprintf(buf, size, "%.*g", mid, value);
            if (n > 0 && (size_t)n < size && strtod(buf, NULL) == value)
                hi = mid;
            else
                lo = mid + 1;
        }
        n = snprintf(buf, size, "%.*g", lo, value);
    }
    if (n < 0)
        n = 0;
    return (size_t)n < size ? (size_t)n : (size ? size - 1 : 0);
}

/* Appends s to line at *len, escaping as the exposition format escapes label
 * values. Returns -ENOSPC when it does not fit. */
static int ingest_put(char *line, size_t *len, const char *s, int escape)
{
    for (; *s; s++) {
        const char *rep = NULL;
        if (escape) {
            if (*s == '\\')
                rep = "\\\\";
            else if (*s == '"')
                rep = "\\\"";
            else if (*s == '\n')
                rep = "\\n";
        }
        size_t n = rep ? 2 : 1;
        if (*len + n >= INGEST_MAX_LINE)
            return -ENOSPC;
        if (rep)
            memcpy(line + *len, rep, 2);
        else
            line[*len] = *s;
        *len += n;
    }
    return 0;
}

/* Writes the line into line (INGEST_MAX_LINE bytes) and its length into
 * *len. Returns 0, or -ENOSPC when it is longer. */
static int ingest_format_line(char *line, size_t *len, const char *family, const char *const *labels,
                              double value)
{
    *len = 0;
    int rc = ingest_put(line, len, family, 0);
    if (labels && labels[0]) {
        rc = rc ? rc : ingest_put(line, len, "{", 0);
        for (size_t i = 0; labels[i] && labels[i + 1] && !rc; i += 2) {
            if (i)
                rc = ingest_put(line, len, ",", 0);
            rc = rc ? rc : ingest_put(line, len, labels[i], 0);
            rc = rc ? rc : ingest_put(line, len, "=\"", 0);
            rc = rc ? rc : ingest_put(line, len, labels[i + 1], 1);
            rc = rc ? rc : ingest_put(line, len, "\"", 0);
        }
        rc = rc ? rc : ingest_put(line, len, "}", 0);
    }
    char num[40];
    ingest_format_value(num, sizeof(num), value);
    rc = rc ? rc : ingest_put(line, len, " ", 0);
    rc = rc ? rc : ingest_put(line, len, num, 0);
    return rc ? rc : ingest_put(line, len, "\n", 0);
}

int ingest_buf_line(struct ingest_buf *b, const char *family, const char *const *labels, double value)
{
    char line[INGEST_MAX_LINE];
    size_t len;
    int rc = ingest_format_line(line, &len, family, labels, value);
    if (rc || b->len + len > INGEST_MAX_DATAGRAM || b->lines == INGEST_MAX_LINES) {
        b->overflow = 1;
        return -ENOSPC;
    }
    if (b->len + len > b->size) {
        /* Doubling from a few lines' worth: a report reaches its size in a
         * few steps, then keeps it. */
        size_t size = b->size ? b->size : 512;
        while (size < b->len + len)
            size *= 2;
        b->size = size < INGEST_MAX_DATAGRAM ? size : INGEST_MAX_DATAGRAM;
        b->data = xrealloc(b->data, b->size);
    }
    memcpy(b->data + b->len, line, len);
    b->len += len;
    b->lines++;
    return 0;
}

int ingest_sender_init(struct ingest_sender *s, const char *path)
{
    struct sockaddr_un sa;
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return -errno;
    s->path = xstrdup(path);
    return 0;
}

void ingest_sender_fini(struct ingest_sender *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    free(s->path);
    s->path = NULL;
}

/* Aims the sender's socket at the socket file at its path, opened without
 * following a link (net_unix_peer_open): a root supervisor reports into a
 * directory of the children's user, whose links must not take its
 * datagrams elsewhere. Connected once, each report needs no lookup; a link
 * put at the path later changes nothing. */
static int ingest_connect(struct ingest_sender *s)
{
    s->connected = 0;
    int dest = net_unix_peer_open(s->path);
    if (dest < 0)
        return dest;
    struct sockaddr_un sa;
    socklen_t len = net_unix_peer_addr(dest, &sa);
    int rc = connect(s->fd, (struct sockaddr *)&sa, len) < 0 ? -errno : 0;
    close(dest);
    s->connected = rc == 0;
    return rc;
}

static int ingest_send_data(struct ingest_sender *s, const char *data, size_t len)
{
    if (len == 0)
        return 0;
    int rc = s->connected ? 0 : ingest_connect(s);
    /* MSG_DONTWAIT as well as O_NONBLOCK: a full receiver queue must cost us a
     * datagram, never a stall of the sender's loop. */
    ssize_t n = rc < 0 ? -1 : send(s->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && rc == 0)
        rc = -errno;
    /* The receiver we were connected to is gone (an exporter that restarted
     * binds a new socket): aim again, once. */
    if (n < 0 && (rc == -ECONNREFUSED || rc == -ENOTCONN)) {
        rc = ingest_connect(s);
        n = rc < 0 ? -1 : send(s->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && rc == 0)
            rc = -errno;
    }
    if (n < 0) {
        s->dropped++;
        return rc;
    }
    s->sent++;
    return 0;
}

int ingest_send(struct ingest_sender *s, const struct ingest_buf *b)
{
    return ingest_send_data(s, b->data, b->len);
}

int ingest_send_line(struct ingest_sender *s, const char *family, const char *const *labels, double value)
{
    char line[INGEST_MAX_LINE];
    size_t len;
    int rc = ingest_format_line(line, &len, family, labels, value);
    return rc ? rc : ingest_send_data(s, line, len);
}

/* ---- parsing -------------------------------------------------------- */

const char *ingest_reject_name(enum ingest_reject r)
{
    static const char *const names[INGEST_REJECT_COUNT] = {
        [INGEST_OK] = "ok",
        [INGEST_REJECT_PARSE] = "parse",
        [INGEST_REJECT_UNKNOWN_FAMILY] = "unknown_family",
        [INGEST_REJECT_UNKNOWN_LABEL] = "unknown_label",
        [INGEST_REJECT_BAD_VALUE] = "bad_value",
        [INGEST_REJECT_TOO_LONG] = "too_long",
        [INGEST_REJECT_CARDINALITY] = "cardinality",
        [INGEST_REJECT_PEER] = "peer",
        [INGEST_REJECT_TOO_MANY_LINES] = "too_many_lines",
    };
    if ((unsigned)r >= INGEST_REJECT_COUNT)
        return "unknown";
    return names[r];
}

/* Character classes by hand: the ctype functions follow the locale, and a
 * name's alphabet must not. */
static int ingest_is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int ingest_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Length of the name at p ([a-zA-Z_:][a-zA-Z0-9_:]*, without ':' for label
 * names); 0 when none starts there. */
static size_t ingest_scan_name(const char *p, const char *end, int colon)
{
    const char *s = p;
    while (s < end && (ingest_is_name_start(*s) || (colon && *s == ':') || (s > p && ingest_is_digit(*s))))
        s++;
    return (size_t)(s - p);
}

/* The UTF-8 the exposition format requires of label values: no overlong
 * forms, no surrogates, nothing past U+10FFFF. */
static int ingest_valid_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return 0;
        }
        if (len - i - 1 < n)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= n; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf)
                return 0;
        i += n + 1;
    }
    return 1;
}

/* One quoted label value starting after its opening quote; unescapes into
 * out (size INGEST_MAX_LABEL_VALUE) and leaves *pp after the closing quote. */
static enum ingest_reject ingest_parse_label_value(const char **pp, const char *end, char *out)
{
    const char *p = *pp;
    size_t n = 0;
    for (;;) {
        if (p == end)
            return INGEST_REJECT_PARSE; /* unterminated */
        char c = *p++;
        if (c == '"')
            break;
        if (c == '\n' || c == '\0')
            return INGEST_REJECT_PARSE;
        if (c == '\\') {
            if (p == end)
                return INGEST_REJECT_PARSE;
            char e = *p++;
            if (e == '\\' || e == '"')
                c = e;
            else if (e == 'n')
                c = '\n';
            else
                return INGEST_REJECT_PARSE;
        }
        /* Size first, then copy: the value must leave room for its NUL. */
        if (n + 1 >= INGEST_MAX_LABEL_VALUE)
            return INGEST_REJECT_TOO_LONG;
        out[n++] = c;
    }
    out[n] = '\0';
    if (!ingest_valid_utf8((const unsigned char *)out, n))
        return INGEST_REJECT_PARSE;
    *pp = p;
    return INGEST_OK;
}

/* A decimal number as Go's ParseFloat reads one (sign, digits, point,
 * exponent), without the hexadecimal and Inf/NaN spellings: a sender only
 * ever has a finite value to send. 0 when s[0..len) is one. */
static int ingest_decimal_syntax(const char *s, size_t len)
{
    size_t i = 0, digits = 0;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        i++;
    while (i < len && ingest_is_digit(s[i]))
        i++, digits++;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && ingest_is_digit(s[i]))
            i++, digits++;
    }
    if (digits == 0)
        return -1;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t exp_digits = 0;
        while (i < len && ingest_is_digit(s[i]))
            i++, exp_digits++;
        if (exp_digits == 0)
            return -1;
    }
    return i == len ? 0 : -1;
}

enum ingest_reject ingest_parse_line(const char *line, size_t len, struct ingest_sample *out)
{
    if (len > INGEST_MAX_LINE)
        return INGEST_REJECT_TOO_LONG;
    const char *p = line, *end = line + len;

    size_t n = ingest_scan_name(p, end, 1);
    if (n == 0)
        return INGEST_REJECT_PARSE;
    if (n >= INGEST_MAX_NAME)
        return INGEST_REJECT_TOO_LONG;
    memcpy(out->family, p, n);
    out->family[n] = '\0';
    p += n;
    out->nlabels = 0;

    if (p < end && *p == '{') {
        p++;
        if (p < end && *p == '}') {
            p++;
        } else {
            for (;;) {
                n = ingest_scan_name(p, end, 0);
                if (n == 0)
                    return INGEST_REJECT_PARSE;
                if (n >= INGEST_MAX_NAME || out->nlabels == INGEST_MAX_LABELS)
                    return INGEST_REJECT_TOO_LONG;
                struct ingest_label *l = &out->labels[out->nlabels];
                memcpy(l->name, p, n);
                l->name[n] = '\0';
                p += n;
                for (size_t i = 0; i < out->nlabels; i++)
                    if (strcmp(out->labels[i].name, l->name) == 0)
                        return INGEST_REJECT_PARSE;
                if (end - p < 2 || p[0] != '=' || p[1] != '"')
                    return INGEST_REJECT_PARSE;
                p += 2;
                enum ingest_reject r = ingest_parse_label_value(&p, end, l->value);
                if (r != INGEST_OK)
                    return r;
                out->nlabels++;
                if (p < end && *p == ',') {
                    p++;
                    continue;
                }
                if (p < end && *p == '}') {
                    p++;
                    break;
                }
                return INGEST_REJECT_PARSE;
            }
        }
    }

    /* Exactly one space, then the value and nothing after it. */
    if (p == end || *p != ' ')
        return INGEST_REJECT_PARSE;
    p++;
    size_t vlen = (size_t)(end - p);
    if (vlen == 0)
        return INGEST_REJECT_PARSE;
    for (size_t i = 0; i < vlen; i++)
        if (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
            return INGEST_REJECT_PARSE; /* a timestamp, or trailing bytes */
    if (ingest_decimal_syntax(p, vlen) < 0)
        return INGEST_REJECT_BAD_VALUE;
    char num[INGEST_MAX_LINE + 1];
    memcpy(num, p, vlen); /* vlen < len <= INGEST_MAX_LINE */
    num[vlen] = '\0';
    double v = strtod(num, NULL);
    if (!isfinite(v))
        return INGEST_REJECT_BAD_VALUE; /* overflowed to infinity */
    out->value = v;
    return INGEST_OK;
}
