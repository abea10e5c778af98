/* libFuzzer target for the request matcher (common/hostcheck.h). The input
 * is two parts, split at the first newline:
 *   [renderer] allowed_hosts   (empty: no list)
 *   the URL of a request       (any bytes, NUL included, no terminator)
 * The list goes through config_parse_hosts, as the renderer gets it; the
 * URL sits in a buffer of exactly its length, so a read past it is caught.
 * Beyond the sanitizers it checks hostcheck.h's promises: a verdict is 0 or
 * -EACCES with a reason in range; the scheme and a malformed URL are refused
 * whatever the list; what a list allows, no list allows too, unless it is a
 * link-local address listed by name; the host check for sockets (any port)
 * never refuses what the request check allows; a parsed host lies inside
 * the URL and its port is 1..65535; the render url's check (query.c) never
 * allows what this one refuses; the resolver rules are one line of
 * printable ASCII. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hostcheck.h"
#include "query.h"

#define FUZZ_NAME "fuzz_hostcheck"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl ? (size_t)(nl - data) : 0;
    const uint8_t *u = nl ? nl + 1 : data;
    size_t ulen = size - (size_t)(u - data);

    char **hosts = NULL;
    if (hlen > 0) {
        char *text = malloc(hlen + 1);
        memcpy(text, data, hlen);
        text[hlen] = '\0';
        char why[256] = "";
        int rc = memchr(text, '\0', hlen) ? -1 : config_parse_hosts(text, &hosts, why, sizeof(why));
        free(text);
        if (rc < 0) {
            config_hosts_free(hosts);
            return 0; /* config.c refuses it: no renderer runs with it */
        }
    }
    const char *const *allowed = (const char *const *)hosts;

    char *url = malloc(ulen ? ulen : 1);
    memcpy(url, u, ulen);

    struct hostcheck_url parsed;
    enum names_refusal why = NAMES_REFUSAL_COUNT, why_none = NAMES_REFUSAL_COUNT, why_sock = NAMES_REFUSAL_COUNT;
    int rc = hostcheck_request(url, ulen, allowed, &parsed, &why);
    FUZZ_CHECK(rc == 0 || rc == -EACCES, "a verdict is 0 or -EACCES");
    FUZZ_CHECK(rc == 0 || (unsigned)why < NAMES_REFUSAL_COUNT, "a refusal has a reason");
    int none = hostcheck_request(url, ulen, NULL, NULL, &why_none);
    int sock = hostcheck_socket(url, ulen, allowed, NULL, &why_sock);
    if (rc < 0 && (why == NAMES_REFUSAL_SCHEME || why == NAMES_REFUSAL_MALFORMED))
        FUZZ_CHECK(none < 0 && why_none == why, "scheme and shape do not depend on the list");
    if (rc == 0 && none < 0)
        FUZZ_CHECK(why_none == NAMES_REFUSAL_LINK_LOCAL && hostcheck_listed(&parsed, allowed),
                   "a list allows only what no list allows, or a listed link-local host");
    if (rc == 0)
        FUZZ_CHECK(sock == 0, "the socket check (any port) allows what the request check allows");

    struct hostcheck_url p2;
    if (hostcheck_parse(url, ulen, &p2) == 0 && p2.scheme == HOSTCHECK_SCHEME_HTTP) {
        FUZZ_CHECK(p2.host >= url && p2.host + p2.host_len <= url + ulen && p2.host_len > 0,
                   "the host lies inside the URL");
        FUZZ_CHECK(p2.auth >= url && p2.auth + p2.auth_len <= url + ulen, "the authority lies inside the URL");
        FUZZ_CHECK(p2.port >= 1 && p2.port <= 65535, "a port is 1..65535");
    }

    /* the render url's rule is this one and stricter */
    if (ulen <= QUERY_URL_MAX && !memchr(url, '\0', ulen)) {
        char *s = malloc(ulen + 1);
        memcpy(s, url, ulen);
        s[ulen] = '\0';
        char qwhy[512];
        if (query_url_allowed(s, allowed, qwhy, sizeof(qwhy)) == 0)
            FUZZ_CHECK(rc == 0, s);
        free(s);
    }

    struct buf rules;
    buf_init(&rules);
    hostcheck_resolver_rules(allowed, &rules);
    for (size_t i = 0; i < rules.len; i++)
        FUZZ_CHECK(rules.data[i] >= 0x20 && rules.data[i] < 0x7f, "the resolver rules are printable");
    buf_fini(&rules);

    free(url);
    config_hosts_free(hosts);
    return 0;
}
