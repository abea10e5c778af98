/* A growable byte buffer for text built piece by piece (exposition output,
 * HTTP bodies). Allocation goes through xalloc, so it cannot fail here. */
#ifndef RV_BUF_H
#define RV_BUF_H

#include <stddef.h>

struct buf {
    char *data; /* NUL-terminated while len < cap */
    size_t len;
    size_t cap;
};

void buf_init(struct buf *b);
void buf_fini(struct buf *b);
void buf_reset(struct buf *b);
void buf_append(struct buf *b, const char *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the data over to the caller (who frees it); b is left empty. */
char *buf_steal(struct buf *b, size_t *len);

#endif
