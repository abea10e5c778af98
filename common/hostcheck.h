/* The one matcher of URLs against [renderer] allowed_hosts: the render's url
 * (query.c, before any browser sees it), every request its page makes
 * (renderer/intercept.c, on Fetch.requestPaused) and the browsers' resolver rules
 * (supervisor/spec.c, for WebSockets, which Fetch never pauses) come from
 * the same code, so they cannot disagree on what a host is. Pure: no I/O;
 * only hostcheck_resolver_rules allocates (its buf). */
#ifndef RV_HOSTCHECK_H
#define RV_HOSTCHECK_H

#include <netinet/in.h>
#include <stddef.h>

#include "buf.h"
#include "names.h"

/* The schemes a URL may have. HTTP and WS are checked against the list;
 * the page's own (data:, blob:, about:) are always allowed; anything else
 * is refused. */
enum hostcheck_scheme {
    HOSTCHECK_SCHEME_HTTP,  /* http, https, ws, wss: a host to connect to */
    HOSTCHECK_SCHEME_OWN,   /* data, blob, about: nothing leaves the browser */
    HOSTCHECK_SCHEME_OTHER, /* file, ftp, chrome, filesystem, javascript, ... */
};

/* A URL taken apart as far as the check needs; the pointers point into the
 * URL. For HOSTCHECK_SCHEME_HTTP only, the rest is filled in. */
struct hostcheck_url {
    enum hostcheck_scheme scheme;
    size_t scheme_len;
    int secure;            /* https, wss */
    const char *auth;      /* the authority after any user info, as written */
    size_t auth_len;
    int userinfo;          /* "user@" or "user:pass@" was there */
    const char *host;      /* the host, without the brackets of an IPv6 literal */
    size_t host_len;
    int v6;                /* host is an IPv6 literal; addr holds it */
    struct in6_addr addr;
    long port;             /* given, or 80/443 by the scheme */
    const char *why;       /* after a failed parse: what was expected (static text) */
};

/* Take url (len bytes, need not be NUL-terminated) apart. 0, or -EINVAL when
 * an http(s)/ws(s) URL has no "//", no host, a broken IPv6 literal or a port
 * that is not 1..65535 (an empty port is the scheme's), or when the text has
 * no scheme at all, and when an http(s)/ws(s) URL holds what a browser reads
 * otherwise than as written: a byte outside printable ASCII or a space
 * (tabs and newlines are dropped, other hosts mapped by IDNA), or '%' in the
 * host (decoded). A host is everything up to ':', '/', '\\', '?', '#' (user
 * info before the last '@' of the authority is set aside); the caller
 * decides what else a host may be made of. userinfo is
 * set before anything after the authority's start can fail. */
int hostcheck_parse(const char *url, size_t len, struct hostcheck_url *u);
/* An IPv6 address of len bytes at s, without brackets: 0 with *addr, or -1. */
int hostcheck_v6_parse(const char *s, size_t len, struct in6_addr *addr);

/* Whether u's host and port match an entry of allowed (a NULL-terminated
 * list of [renderer] allowed_hosts entries): names exactly and
 * case-insensitively, IPv6 addresses by value; an entry without a port takes
 * any. */
int hostcheck_listed(const struct hostcheck_url *u, const char *const *allowed);

/* Whether u's host is a link-local or cloud metadata address: 169.254.0.0/16
 * written in any form a browser reads as IPv4 (decimal, octal, hex, fewer
 * than four parts, a trailing dot), fe80::/10, those IPv4 addresses mapped
 * into IPv6 (::ffff:169.254.x.x, 64:ff9b::169.254.x.x), and fd00:ec2::254
 * (the IPv6 address of EC2's metadata service). A name that resolves to one
 * is not seen here: the check reads the URL, not DNS. */
int hostcheck_link_local(const struct hostcheck_url *u);

/* The rule for a request of a page: 0 when it may go, else -EACCES with
 * *why set: NAMES_REFUSAL_SCHEME (not http, https, ws, wss, data, blob or
 * about), NAMES_REFUSAL_MALFORMED (hostcheck_parse refused it),
 * NAMES_REFUSAL_LINK_LOCAL (hostcheck_link_local, and not listed),
 * NAMES_REFUSAL_NOT_ALLOWED (allowed is set and the host is not in it).
 * allowed NULL: any host but a link-local one. u (may be NULL) gets the
 * parsed URL. */
int hostcheck_request(const char *url, size_t len, const char *const *allowed, struct hostcheck_url *u,
                      enum names_refusal *why);

/* hostcheck_request at the granularity of the browser's resolver rules: the
 * host only, any port. What intercept.c counts for a WebSocket, which those
 * rules (not Fetch) stop. */
int hostcheck_socket(const char *url, size_t len, const char *const *allowed, struct hostcheck_url *u,
                     enum names_refusal *why);

/* Chromium's --host-resolver-rules value that holds every connection of the
 * browser (WebSockets above all) to the same hosts, appended to out: with a
 * list, "MAP * ~NOTFOUND" and an EXCLUDE per listed host (IPv6 compressed,
 * without brackets, as Chromium matches them; the ports are not the
 * resolver's business, Fetch checks them); without one, ~NOTFOUND for the
 * link-local and metadata addresses as Chromium writes them in a parsed URL
 * (169.254.*, fe80::/10, ::ffff:a9fe:*, 64:ff9b::a9fe:*, fd00:ec2::254). A
 * name that resolves to one of them is not caught: rules match the host as
 * written. An entry config.c would refuse is left out (refused). */
void hostcheck_resolver_rules(const char *const *allowed, struct buf *out);

#endif
