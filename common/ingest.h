/* The ingest line format (docs/design.md, "The ingest protocol"): one
 * observation per line, written like an exposition sample line. Senders
 * build datagrams with ingest_buf_* (or send one line with
 * ingest_send_line); ingest_send() hands one over without ever blocking. */
#ifndef RV_INGEST_H
#define RV_INGEST_H

#include <stddef.h>

/* Datagrams larger than this, or of more lines, are not sent (and the
 * exporter refuses them: a datagram too large whole, as one line too_long;
 * the lines past INGEST_MAX_LINES each as too_many_lines). The supervisor's
 * report, the largest, is about 21 lines per child: 400 with 16 browsers. */
#define INGEST_MAX_DATAGRAM 65536
#define INGEST_MAX_LINE 1024
#define INGEST_MAX_LINES 1024

/* A datagram being built. Its storage grows with the lines it is given, up
 * to INGEST_MAX_DATAGRAM, and is kept across resets: a report built again
 * and again costs what it holds, not the datagram limit. A zeroed struct is
 * an empty buffer too. The buffer owns data; ingest_buf_fini frees it. */
struct ingest_buf {
    char *data;   /* NULL until the first line */
    size_t size;  /* bytes allocated at data */
    size_t len;
    size_t lines;
    int overflow; /* a line did not fit; the buffer holds only whole lines */
};

void ingest_buf_init(struct ingest_buf *b);
void ingest_buf_fini(struct ingest_buf *b);
/* Empty again, keeping the storage. */
void ingest_buf_reset(struct ingest_buf *b);
/* Append `family{k1="v1",...} value\n`. labels is k,v,k,v,...,NULL (or NULL).
 * Label values are escaped (\\, \", \n). Returns 0, or -ENOSPC when the line
 * would not fit, or the buffer holds INGEST_MAX_LINES already (the buffer is
 * left as it was and overflow is set). */
int ingest_buf_line(struct ingest_buf *b, const char *family, const char *const *labels, double value);

/* Format a value the way the exposition format does (shortest form that reads
 * back to the same double; +Inf, -Inf, NaN). Returns the length. */
size_t ingest_format_value(char *buf, size_t size, double value);

/* A sender: a non-blocking, close-on-exec datagram socket aimed at a path,
 * connected to the socket file found there (never through a link) at the
 * first send, and again when that receiver has gone. A sender belongs to
 * one thread (it reconnects its fd in ingest_send). */
struct ingest_sender {
    int fd;
    char *path;
    int connected;
    unsigned long long sent;    /* datagrams handed to the kernel */
    unsigned long long dropped; /* datagrams lost: no receiver, or its queue full */
};

int ingest_sender_init(struct ingest_sender *s, const char *path);
void ingest_sender_fini(struct ingest_sender *s);
/* Send one datagram; never blocks. Returns 0, or a negative errno when the
 * datagram was dropped (counted in s->dropped): -ENOENT, -ECONNREFUSED
 * (no receiver), -EAGAIN (its queue full), or a refusal of
 * net_unix_peer_open (-ELOOP, -ENOTSOCK, -EPERM: not a socket to send to). */
int ingest_send(struct ingest_sender *s, const struct ingest_buf *b);
/* Send one line as its own datagram, formatted on the stack (no buffer, no
 * allocation): for the reports of one line. Returns as ingest_send, or
 * -ENOSPC when the line is longer than INGEST_MAX_LINE (nothing sent,
 * nothing counted). */
int ingest_send_line(struct ingest_sender *s, const char *family, const char *const *labels, double value);

/* ---- parsing (the exporter's side) ---------------------------------- */

#define INGEST_MAX_NAME 128        /* family and label names */
#define INGEST_MAX_LABEL_VALUE 128 /* after unescaping */
#define INGEST_MAX_LABELS 4

/* Why a line was refused; each is counted in rendervisor_ingest_rejected_total
 * under the name ingest_reject_name() gives. */
enum ingest_reject {
    INGEST_OK = 0,
    INGEST_REJECT_PARSE,          /* "parse": not a sample line */
    INGEST_REJECT_UNKNOWN_FAMILY, /* "unknown_family" */
    INGEST_REJECT_UNKNOWN_LABEL,  /* "unknown_label": a label name, or a value not in the allowed set */
    INGEST_REJECT_BAD_VALUE,      /* "bad_value": not a finite number, or wrong for the type */
    INGEST_REJECT_TOO_LONG,       /* "too_long": the line, a name or a label value */
    INGEST_REJECT_CARDINALITY,    /* "cardinality": the label already has as many values as it may */
    INGEST_REJECT_PEER,           /* "peer": sent by another user */
    INGEST_REJECT_TOO_MANY_LINES, /* "too_many_lines": past INGEST_MAX_LINES in its datagram */
    INGEST_REJECT_COUNT,
};

struct ingest_label {
    char name[INGEST_MAX_NAME];
    char value[INGEST_MAX_LABEL_VALUE]; /* unescaped */
};

struct ingest_sample {
    char family[INGEST_MAX_NAME];
    struct ingest_label labels[INGEST_MAX_LABELS];
    size_t nlabels;
    double value;
};

const char *ingest_reject_name(enum ingest_reject r);

/* Parse one line (without its newline): `name{k="v",...} value` or
 * `name value`, as ingest_buf_line() writes them, with the exposition
 * format's escapes (\\, \", \n) in label values. Names match
 * [a-zA-Z_:][a-zA-Z0-9_:]* (labels: [a-zA-Z_][a-zA-Z0-9_]*); a label name may
 * not repeat; no timestamp. Exactly one space before the value, nothing
 * after it (a '\r' too is PARSE). The value is a decimal number as Go's
 * ParseFloat reads one, finite: +Inf, NaN, hexadecimal, overflow are
 * BAD_VALUE. Label values must be UTF-8 (PARSE). Returns INGEST_OK or why the
 * line is refused (PARSE, BAD_VALUE, TOO_LONG); *out is only meaningful on
 * INGEST_OK. Reads only line[0..len). */
enum ingest_reject ingest_parse_line(const char *line, size_t len, struct ingest_sample *out);

#endif
