/* The page's own words made fit for the log: a page can write anything in
 * its console, the render key included (Grafana's pages carry it in their
 * cookie, and a page may echo its URL), so every text is redacted before
 * it is cut, and cut before it is logged. Pure functions. */
#include "pagetext.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* The renderKey= spellings whose value is redacted: as a query parameter,
 * a cookie, or percent-encoded inside another URL. */
static const char *const pagetext_params[] = { "renderKey=", "renderKey%3D" };

static int pagetext_value_end(unsigned char c)
{
    return c == '&' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '\'' ||
           (c && strchr(";,<>#)", c));
}

struct pagetext_out {
    char *buf;
    size_t len, max;
    int full;
};

static void pagetext_put(struct pagetext_out *o, const char *s, size_t n)
{
    if (o->full)
        return;
    if (n > o->max - o->len) {
        n = o->max - o->len;
        o->full = 1;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

/* Back off a multi-byte character cut at the end. */
static size_t pagetext_whole_chars(const char *s, size_t len)
{
    size_t k = len;
    while (k > 0 && ((unsigned char)s[k - 1] & 0xc0) == 0x80 && len - k < 3)
        k--;
    if (k == 0)
        return len;
    unsigned char lead = (unsigned char)s[k - 1];
    size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    return want > 1 && len - (k - 1) < want ? k - 1 : len;
}

int pagetext_clean(char *out, size_t size, size_t max, const char *in, size_t n, int more, const char *key)
{
    if (size == 0)
        return 1;
    if (max >= size)
        max = size - 1;
    size_t klen = key ? strlen(key) : 0;
    /* A key cut in two by the end of in would not be seen: leave out the
     * bytes where it could start. */
    size_t scan = n;
    if (more) {
        size_t hold = klen > 16 ? klen : 16;
        scan = n > hold ? n - hold : 0;
    }
    struct pagetext_out o = { out, 0, max, 0 };
    size_t i = 0;
    while (i < scan && !o.full) {
        if (klen && i + klen <= n && memcmp(in + i, key, klen) == 0) {
            pagetext_put(&o, PAGETEXT_REDACTED, strlen(PAGETEXT_REDACTED));
            i += klen;
            continue;
        }
        size_t p;
        for (p = 0; p < sizeof(pagetext_params) / sizeof(pagetext_params[0]); p++) {
            size_t plen = strlen(pagetext_params[p]);
            if (i + plen <= n && strncasecmp(in + i, pagetext_params[p], plen) == 0) {
                pagetext_put(&o, in + i, plen);
                pagetext_put(&o, PAGETEXT_REDACTED, strlen(PAGETEXT_REDACTED));
                i += plen;
                while (i < n && !pagetext_value_end((unsigned char)in[i]))
                    i++;
                break;
            }
        }
        if (p < sizeof(pagetext_params) / sizeof(pagetext_params[0]))
            continue;
        char c = in[i] == '"' ? '\'' : in[i];
        pagetext_put(&o, &c, 1);
        i++;
    }
    int cut = o.full || i < n || more;
    if (o.full)
        o.len = pagetext_whole_chars(out, o.len);
    if (o.len > 0 && out[o.len - 1] == '\\')
        out[o.len - 1] = '/';
    /* A NUL inside would end the log call's text early: none survive. */
    for (size_t k = 0; k < o.len; k++)
        if (out[k] == '\0')
            out[k] = ' ';
    out[o.len] = '\0';
    return cut;
}

void pagetext_url(const char *url, const char *key, char *host, size_t host_size, char *path, size_t path_size,
                  size_t path_max)
{
    if (host_size)
        host[0] = '\0';
    if (path_size)
        path[0] = '\0';
    if (!host_size || !path_size)
        return;
    size_t scheme = strcspn(url, ":/?#");
    const char *auth = NULL;
    if (url[scheme] == ':' && url[scheme + 1] == '/' && url[scheme + 2] == '/')
        auth = url + scheme + 3;
    if (!auth) {
        /* data:, blob:, about:blank ...: the scheme alone */
        size_t k = 0;
        for (size_t i = 0; i < scheme && i < 16 && k + 2 < host_size; i++)
            host[k++] = isalnum((unsigned char)url[i]) || url[i] == '+' || url[i] == '-' ? url[i] : '?';
        host[k++] = ':';
        host[k] = '\0';
        return;
    }
    size_t alen = strcspn(auth, "/?#");
    /* user info never: the host is what follows the last '@' */
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            at = auth + i;
    if (at) {
        alen -= (size_t)(at + 1 - auth);
        auth = at + 1;
    }
    size_t k = 0;
    for (size_t i = 0; i < alen && k + 1 < host_size && k < PAGETEXT_HOST_MAX; i++) {
        unsigned char c = (unsigned char)auth[i];
        host[k++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                            (c && strchr(".-_:[]", c))
                        ? (char)c
                        : '?';
    }
    host[k] = '\0';
    const char *p = auth + alen;
    size_t plen = *p == '/' ? strcspn(p, "?#") : 0;
    pagetext_clean(path, path_size, path_max, p, plen, 0, key);
}
