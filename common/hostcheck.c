/* Which hosts a render may reach, decided in one place for the url Grafana
 * sends and for everything its page then asks for: a page's requests reach
 * us already canonical (Chromium hands Fetch.requestPaused the parsed URL),
 * but the matcher does not rely on it. */
#include "hostcheck.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

static int hostcheck_is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int hostcheck_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int hostcheck_word(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

int hostcheck_v6_parse(const char *s, size_t len, struct in6_addr *addr)
{
    char text[INET6_ADDRSTRLEN];
    if (len == 0 || len >= sizeof(text))
        return -1;
    memcpy(text, s, len);
    text[len] = '\0';
    return inet_pton(AF_INET6, text, addr) == 1 ? 0 : -1;
}

static int hostcheck_bad(struct hostcheck_url *u, const char *why)
{
    u->why = why;
    return -EINVAL;
}

int hostcheck_parse(const char *url, size_t len, struct hostcheck_url *u)
{
    memset(u, 0, sizeof(*u));
    /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
    size_t s = 0;
    if (len > 0 && hostcheck_is_alpha((unsigned char)url[0]))
        while (s < len && (hostcheck_is_alpha((unsigned char)url[s]) || hostcheck_is_digit((unsigned char)url[s]) ||
                           url[s] == '+' || url[s] == '-' || url[s] == '.'))
            s++;
    if (s == 0 || s == len || url[s] != ':')
        return hostcheck_bad(u, "expected a scheme");
    u->scheme_len = s; /* set only for a scheme followed by ':' */
    if (hostcheck_word(url, s, "http") || hostcheck_word(url, s, "ws")) {
        u->scheme = HOSTCHECK_SCHEME_HTTP;
    } else if (hostcheck_word(url, s, "https") || hostcheck_word(url, s, "wss")) {
        u->scheme = HOSTCHECK_SCHEME_HTTP;
        u->secure = 1;
    } else if (hostcheck_word(url, s, "data") || hostcheck_word(url, s, "blob") || hostcheck_word(url, s, "about")) {
        u->scheme = HOSTCHECK_SCHEME_OWN;
        return 0;
    } else {
        u->scheme = HOSTCHECK_SCHEME_OTHER;
        return 0;
    }

    /* What a browser would read otherwise than we do is refused: it drops
     * tabs and newlines anywhere, reads '\\' as '/', decodes '%' in a host
     * and maps non-ASCII ones (IDNA: fullwidth digits are digits). Chromium
     * hands us canonical URLs, where none of these occur. */
    for (size_t k = 0; k < len; k++)
        if ((unsigned char)url[k] <= 0x20 || (unsigned char)url[k] >= 0x7f)
            return hostcheck_bad(u, "expected printable ASCII without spaces");
    size_t i = s + 1;
    if (len - i < 2 || url[i] != '/' || url[i + 1] != '/')
        return hostcheck_bad(u, "expected \"//\" and a host after the scheme");
    i += 2;
    size_t aend = i;
    while (aend < len && url[aend] != '/' && url[aend] != '?' && url[aend] != '#' && url[aend] != '\\')
        aend++;
    /* user info ends at the authority's last '@', as a browser reads it */
    for (size_t k = aend; k > i; k--) {
        if (url[k - 1] == '@') {
            u->userinfo = 1;
            i = k;
            break;
        }
    }
    u->auth = url + i;
    u->auth_len = aend - i;

    size_t after;
    if (i < aend && url[i] == '[') {
        const char *close = memchr(url + i, ']', aend - i);
        if (!close)
            return hostcheck_bad(u, "expected an IPv6 address between [ and ]");
        u->host = url + i + 1;
        u->host_len = (size_t)(close - u->host);
        if (hostcheck_v6_parse(u->host, u->host_len, &u->addr) < 0)
            return hostcheck_bad(u, "expected an IPv6 address between [ and ]");
        u->v6 = 1;
        after = (size_t)(close - url) + 1;
    } else {
        size_t h = i;
        while (h < aend && url[h] != ':')
            h++;
        u->host = url + i;
        u->host_len = h - i;
        after = h;
    }
    if (u->host_len == 0)
        return hostcheck_bad(u, "expected a host");
    if (memchr(u->host, '%', u->host_len))
        return hostcheck_bad(u, "expected a host without '%'");

    /* the port the browser will connect to: an empty one is the scheme's */
    u->port = u->secure ? 443 : 80;
    if (after < aend) {
        static const char bad_port[] = "expected a port from 1 to 65535 after the host";
        if (url[after] != ':')
            return hostcheck_bad(u, bad_port);
        size_t plen = aend - after - 1;
        if (plen > 5)
            return hostcheck_bad(u, bad_port);
        long n = 0;
        for (size_t k = after + 1; k < aend; k++) {
            if (!hostcheck_is_digit((unsigned char)url[k]))
                return hostcheck_bad(u, bad_port);
            n = n * 10 + (url[k] - '0');
        }
        if (plen > 0) {
            if (n < 1 || n > 65535)
                return hostcheck_bad(u, bad_port);
            u->port = n;
        }
    }
    return 0;
}

/* One allow-list entry: "name", "name:port", "[v6]", "[v6]:port" or a bare
 * IPv6 address. *port is 0 when the entry names none (any port). -1 for an
 * entry config.c would have refused: it matches nothing. */
static int hostcheck_entry_split(const char *e, const char **host, size_t *hlen, int *v6, long *port)
{
    size_t len = strlen(e);
    const char *colon = memchr(e, ':', len);
    const char *p = NULL;
    *port = 0;
    *v6 = 0;
    if (len > 0 && e[0] == '[') {
        const char *close = memchr(e, ']', len);
        if (!close)
            return -1;
        *host = e + 1;
        *hlen = (size_t)(close - e - 1);
        *v6 = 1;
        if (close[1] == ':')
            p = close + 2;
        else if (close[1])
            return -1;
    } else if (colon && strchr(colon + 1, ':')) {
        *host = e; /* a bare IPv6 address: every colon is its own */
        *hlen = len;
        *v6 = 1;
    } else {
        *host = e;
        *hlen = colon ? (size_t)(colon - e) : len;
        p = colon ? colon + 1 : NULL;
    }
    if (p) {
        size_t plen = strlen(p);
        if (plen == 0 || plen > 5)
            return -1;
        for (size_t i = 0; i < plen; i++) {
            if (!hostcheck_is_digit((unsigned char)p[i]))
                return -1;
            *port = *port * 10 + (p[i] - '0');
        }
        if (*port < 1 || *port > 65535)
            return -1;
    }
    return 0;
}

int hostcheck_listed(const struct hostcheck_url *u, const char *const *allowed)
{
    if (u->scheme != HOSTCHECK_SCHEME_HTTP)
        return 0;
    for (size_t i = 0; allowed[i]; i++) {
        const char *e;
        size_t elen;
        int ev6;
        long eport;
        if (hostcheck_entry_split(allowed[i], &e, &elen, &ev6, &eport) < 0 || ev6 != u->v6 ||
            (eport && u->port && eport != u->port))
            continue;
        if (u->v6) {
            struct in6_addr ea;
            if (hostcheck_v6_parse(e, elen, &ea) == 0 && memcmp(&ea, &u->addr, sizeof(ea)) == 0)
                return 1;
        } else if (elen == u->host_len && strncasecmp(e, u->host, elen) == 0) {
            return 1;
        }
    }
    return 0;
}

/* One part of an IPv4 address as the URL standard reads it: 0x.. hex, 0..
 * octal, else decimal. -1 for anything else (then the host is a name). */
static int hostcheck_v4_part(const char *s, size_t len, uint64_t *out)
{
    unsigned base = 10;
    if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        len -= 2;
    } else if (len >= 2 && s[0] == '0') {
        base = 8;
        s++;
        len--;
    } else if (len == 0) {
        return -1;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        unsigned d;
        if (hostcheck_is_digit(c))
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        if (d >= base)
            return -1;
        v = v * base + d;
        if (v > 0xffffffffu)
            return -1; /* too large for any part: no IPv4 address */
    }
    *out = v;
    return 0;
}

/* host as an IPv4 address in any form a browser takes (1 to 4 parts, the
 * last filling the bytes left, one trailing dot allowed); -1 when it is not
 * one. */
static int hostcheck_v4(const char *h, size_t len, uint32_t *out)
{
    if (len > 0 && h[len - 1] == '.')
        len--;
    uint64_t parts[4];
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && h[i] != '.')
            continue;
        if (n == 4 || hostcheck_v4_part(h + start, i - start, &parts[n]) < 0)
            return -1;
        n++;
        start = i + 1;
    }
    if (n == 0)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (parts[i] > 255)
            return -1;
        v |= parts[i] << (8 * (3 - i));
    }
    if (parts[n - 1] >= (uint64_t)1 << (8 * (5 - n)))
        return -1;
    *out = (uint32_t)(v | parts[n - 1]);
    return 0;
}

static int hostcheck_v4_link_local(uint32_t a)
{
    return (a >> 16) == ((169u << 8) | 254u);
}

int hostcheck_link_local(const struct hostcheck_url *u)
{
    if (u->scheme != HOSTCHECK_SCHEME_HTTP)
        return 0;
    if (!u->v6) {
        uint32_t a;
        return hostcheck_v4(u->host, u->host_len, &a) == 0 && hostcheck_v4_link_local(a);
    }
    const uint8_t *b = u->addr.s6_addr;
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b };
    static const uint8_t ec2[16] = { 0xfd, 0x00, 0x0e, 0xc2, [15] = 0x54, [14] = 0x02 };
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return 1;
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
        return hostcheck_v4_link_local(((uint32_t)b[12] << 24) | ((uint32_t)b[13] << 16));
    return memcmp(b, ec2, 16) == 0;
}

static int hostcheck_decide(const char *url, size_t len, const char *const *allowed, struct hostcheck_url *u,
                            enum names_refusal *why, int any_port)
{
    struct hostcheck_url local;
    if (!u)
        u = &local;
    if (hostcheck_parse(url, len, u) < 0) {
        *why = NAMES_REFUSAL_MALFORMED;
        return -EACCES;
    }
    if (u->scheme == HOSTCHECK_SCHEME_OWN)
        return 0;
    if (u->scheme == HOSTCHECK_SCHEME_OTHER) {
        *why = NAMES_REFUSAL_SCHEME;
        return -EACCES;
    }
    if (any_port)
        u->port = 0; /* hostcheck_listed: an entry's port then matches */
    if (allowed && hostcheck_listed(u, allowed))
        return 0;
    if (hostcheck_link_local(u)) {
        *why = NAMES_REFUSAL_LINK_LOCAL;
        return -EACCES;
    }
    if (allowed) {
        *why = NAMES_REFUSAL_NOT_ALLOWED;
        return -EACCES;
    }
    return 0;
}

int hostcheck_request(const char *url, size_t len, const char *const *allowed, struct hostcheck_url *u,
                      enum names_refusal *why)
{
    return hostcheck_decide(url, len, allowed, u, why, 0);
}

int hostcheck_socket(const char *url, size_t len, const char *const *allowed, struct hostcheck_url *u,
                     enum names_refusal *why)
{
    return hostcheck_decide(url, len, allowed, u, why, 1);
}

/* Checked with Chromium 156: its rules match the host of the parsed URL,
 * an IPv6 one without brackets and compressed, the IPv4 part of a mapped
 * or NAT64 address in hex; '?' and '*' are its wildcards. fe8?:* and the
 * like cannot match a name, which holds no ':'. */
static const char *const hostcheck_link_local_rules[] = {
    "169.254.*", "fe8?:*", "fe9?:*", "fea?:*", "feb?:*", "::ffff:a9fe:*", "64:ff9b::a9fe:*", "fd00:ec2::254",
    NULL,
};

void hostcheck_resolver_rules(const char *const *allowed, struct buf *out)
{
    if (!allowed) {
        for (size_t i = 0; hostcheck_link_local_rules[i]; i++)
            buf_printf(out, "%sMAP %s ~NOTFOUND", i ? ", " : "", hostcheck_link_local_rules[i]);
        return;
    }
    buf_puts(out, "MAP * ~NOTFOUND");
    for (size_t i = 0; allowed[i]; i++) {
        const char *h;
        size_t hlen;
        int v6;
        long port;
        if (hostcheck_entry_split(allowed[i], &h, &hlen, &v6, &port) < 0 || hlen == 0)
            continue;
        if (v6) {
            struct in6_addr a;
            char text[INET6_ADDRSTRLEN];
            if (hostcheck_v6_parse(h, hlen, &a) < 0 || !inet_ntop(AF_INET6, &a, text, sizeof(text)))
                continue;
            buf_printf(out, ", EXCLUDE %s", text);
            continue;
        }
        /* config.c lets only letters, digits, '-', '.' and '_' through:
         * nothing that could end the rule or start another */
        int plain = 1;
        for (size_t k = 0; k < hlen; k++)
            plain &= h[k] != ',' && h[k] != ' ' && h[k] != '*' && h[k] != '?';
        if (plain)
            buf_printf(out, ", EXCLUDE %.*s", (int)hlen, h);
    }
}
