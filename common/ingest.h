/* The ingest line format (DESIGN.md, "Ingest protocol"): one observation per
 * line, written like an exposition sample line. Senders build datagrams with
 * ingest_buf_*; ingest_send() hands one over without ever blocking. */
#ifndef RV_INGEST_H
#define RV_INGEST_H

#include <stddef.h>

/* Datagrams larger than this are not sent (and the exporter refuses them). */
#define INGEST_MAX_DATAGRAM 65536
#define INGEST_MAX_LINE 1024

struct ingest_buf {
    char data[INGEST_MAX_DATAGRAM];
    size_t len;
    int overflow; /* a line did not fit; the buffer holds only whole lines */
};

void ingest_buf_reset(struct ingest_buf *b);
/* Append `family{k1="v1",...} value\n`. labels is k,v,k,v,...,NULL (or NULL).
 * Label values are escaped (\\, \", \n). Returns 0, or -ENOSPC when the line
 * would not fit (the buffer is left as it was and overflow is set). */
int ingest_buf_line(struct ingest_buf *b, const char *family, const char *const *labels, double value);

/* Format a value the way the exposition format does (shortest form that reads
 * back to the same double; +Inf, -Inf, NaN). Returns the length. */
size_t ingest_format_value(char *buf, size_t size, double value);

/* A sender: a non-blocking, close-on-exec datagram socket aimed at a path. */
struct ingest_sender {
    int fd;
    char *path;
    unsigned long long sent;    /* datagrams handed to the kernel */
    unsigned long long dropped; /* datagrams lost: no receiver, or its queue full */
};

int ingest_sender_init(struct ingest_sender *s, const char *path);
void ingest_sender_fini(struct ingest_sender *s);
/* Send one datagram; never blocks. Returns 0, or a negative errno when the
 * datagram was dropped (counted in s->dropped). */
int ingest_send(struct ingest_sender *s, const struct ingest_buf *b);

#endif
