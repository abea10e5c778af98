/* The page's own words made fit for the renderer's log (renderer/pagelog.c):
 * the render key never in them, cut at a bound on a character boundary,
 * one quoted log value; and of a URL only its host and path. Pure
 * functions, tested on their own (tests/unit/test_pagetext.c). */
#ifndef RV_PAGETEXT_H
#define RV_PAGETEXT_H

#include <stddef.h>

/* What replaces the render key, and the value of a renderKey= parameter. */
#define PAGETEXT_REDACTED "[redacted]"
/* The longest host kept of a URL (a DNS name is 253, a port 6 more). */
#define PAGETEXT_HOST_MAX 260

/* Writes to out (size > max) the first max bytes of in (n bytes) with the
 * render key (key, NULL or "" for none) replaced wherever it occurs, and the
 * value after any "renderKey=" or "renderKey%3D" (in any case) replaced too,
 * up to the next '&', whitespace, quote or one of ";,<>#)"; then a double
 * quote becomes an apostrophe and a backslash that would end the text a
 * slash, so the text is one quoted log value (the log writer escapes
 * control characters and bytes that are not UTF-8). It is cut at a UTF-8
 * character boundary. more says that in was itself cut short: its last
 * bytes, where a key may have been cut in two, are then left out. Returns 1
 * when the text was cut (or more), 0 when whole. */
int pagetext_clean(char *out, size_t size, size_t max, const char *in, size_t n, int more, const char *key);

/* host[:port] (lower case as written; characters outside letters, digits
 * and ".-_:[]" as '?') and path (no query, no fragment; the key redacted,
 * cut at path_max bytes as pagetext_clean cuts) of url. A URL without an
 * authority (data:, blob:, about:) gives its scheme and ':' as the host and
 * an empty path: its text is the data itself. */
void pagetext_url(const char *url, const char *key, char *host, size_t host_size, char *path, size_t path_size,
                  size_t path_max);

#endif
