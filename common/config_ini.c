/* Reading the config file with inih: inih splits the lines into sections,
 * keys, comments and continuations; our reader hands it the lines and keeps
 * what inih tells no handler (the line number, a line it skipped or found too
 * long, a [section] header), so every mistake is reported at once, with its
 * line. Runs on the thread that loads a config; the entries' values belong to
 * the struct config_parser (config.c frees them). */
#include "config_int.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "xalloc.h"

/* A name from the file as an error message may show it: control bytes
 * (a terminal's escape sequences) become '?'. inih keeps names under 50
 * bytes; a longer one would be cut at size. */
static const char *config_printable(const char *name, char *out, size_t size)
{
    size_t i = 0;
    for (; name[i] && i + 1 < size; i++) {
        unsigned char c = (unsigned char)name[i];
        out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    out[i] = '\0';
    return out;
}

/* key names the key (section.key, or the bare key outside any section); with
 * no key, section names a [section] line. */
void config_error(struct config_parser *p, int line, const char *section, const char *key, const char *fmt, ...)
{
    /* Any length: a value quoted in a message (a command word) may run
     * over many continuation lines. */
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    char where[32] = "", section_buf[64], key_buf[128];

    if (line == CONFIG_LINE_ENV) {
        char var[160];
        if (section)
            config_env_name(section, key, var, sizeof(var));
        else
            config_printable(key, var, sizeof(var));
        char *text = section ? xasprintf("env=%s key=%s.%s: %s", var, section, key, msg)
                             : xasprintf("env=%s: %s", var, msg);
        free(msg);
        p->errors = xreallocarray(p->errors, p->nerrors + 1, sizeof(*p->errors));
        p->errors[p->nerrors] = (struct config_error){ .line = line, .seq = p->nerrors, .text = text };
        p->nerrors++;
        return;
    }
    if (line > 0)
        snprintf(where, sizeof(where), " line=%d", line);
    if (section)
        section = config_printable(section, section_buf, sizeof(section_buf));
    if (key)
        key = config_printable(key, key_buf, sizeof(key_buf));
    char *text;
    if (key && section && section[0])
        text = xasprintf("file=%s%s key=%s.%s: %s", p->name, where, section, key, msg);
    else if (key)
        text = xasprintf("file=%s%s key=%s: %s", p->name, where, key, msg);
    else if (section)
        text = xasprintf("file=%s%s section=%s: %s", p->name, where, section, msg);
    else
        text = xasprintf("file=%s%s: %s", p->name, where, msg);
    free(msg);

    p->errors = xreallocarray(p->errors, p->nerrors + 1, sizeof(*p->errors));
    p->errors[p->nerrors] = (struct config_error){ .line = line, .seq = p->nerrors, .text = text };
    p->nerrors++;
}

static int config_error_cmp(const void *a, const void *b)
{
    const struct config_error *x = a, *y = b;
    unsigned lx = x->line > 0 ? (unsigned)x->line : UINT_MAX;
    unsigned ly = y->line > 0 ? (unsigned)y->line : UINT_MAX;
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* All errors in file order, one per line, each ending in a newline; frees
 * each error's text. */
char *config_error_text(struct config_parser *p)
{
    qsort(p->errors, p->nerrors, sizeof(*p->errors), config_error_cmp);
    size_t len = 0;
    for (size_t i = 0; i < p->nerrors; i++)
        len += strlen(p->errors[i].text) + 1;
    char *text = xmalloc(len + 1), *t = text;
    for (size_t i = 0; i < p->nerrors; i++) {
        t = stpcpy(t, p->errors[i].text);
        *t++ = '\n';
        free(p->errors[i].text);
    }
    *t = '\0';
    return text;
}

/* ---- reading lines for inih --------------------------------------------- */

static void config_error_too_long(struct config_parser *p, const char *section, const char *key)
{
    config_error(p, p->lineno, section, key,
                 "line too long (at most %d characters); continue a long value on the next line, indented",
                 p->max_len);
}

/* What inih will make of the line, by inih's rules: a blank line or a ';' or
 * '#' comment is skipped, an indented line continues the last key, '[' opens
 * a section (whose name inih tells no handler), anything else is key = value. */
static void config_classify(struct config_parser *p, const char *line)
{
    const char *s = line;
    if (p->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3;
    while (isspace((unsigned char)*s))
        s++;
    p->continuation = *s && *s != ';' && *s != '#' && s > line && p->have_prev;
    p->owed = *s && *s != ';' && *s != '#' && !p->continuation && *s != '[';
    if (*s != '[' || p->continuation)
        return;

    /* inih ends the name at ']' or at an inline comment (';' after a space). */
    const char *e = s + 1;
    for (bool was_space = false; *e && *e != ']' && !(was_space && *e == ';'); e++)
        was_space = isspace((unsigned char)*e);
    p->cur = NULL;
    p->bad_section = *e != ']';
    if (p->bad_section) {
        if (!p->too_long)
            config_error(p, p->lineno, NULL, NULL, "a [section] header needs its closing ']'");
        return;
    }
    p->have_prev = false;
    char name[64];
    snprintf(name, sizeof(name), "%.*s", (int)(e - s - 1), s + 1);
    if (!p->too_long && !config_section_known(name))
        config_error(p, p->lineno, name, NULL,
                     "unknown section (expected supervisor, exporter, renderer, browsers or tracing)");
}

/* Report what the handler did not see: a key line inih skipped for want of
 * an '=', or an over-long line that carried no key. */
static void config_finish_line(struct config_parser *p)
{
    if (p->lineno == 0 || p->handled)
        return;
    p->handled = true;
    if (p->too_long)
        config_error_too_long(p, NULL, NULL);
    else if (p->owed)
        config_error(p, p->lineno, NULL, NULL, "expected key = value, a [section] or a ; comment");
    if (p->too_long || p->owed)
        p->cur = NULL;
}

/* inih's reader: one line of the text per call, "\r\n" read as "\n", cut to
 * inih's buffer. */
static char *config_read_line(char *buf, int size, void *stream)
{
    struct config_parser *p = stream;

    /* Newer inih versions read on after a line that fills the buffer, to throw
     * away its rest (with a smaller buffer); our lines are already whole. */
    bool was_full = p->full;
    p->full = false;
    if (was_full && size != p->size)
        return NULL;
    p->size = size;
    config_finish_line(p);
    if (p->pos >= p->end || size < 2)
        return NULL;

    const char *nl = memchr(p->pos, '\n', (size_t)(p->end - p->pos));
    size_t len = (size_t)((nl ? nl : p->end) - p->pos), room = (size_t)size - 1;
    if (len > 0 && p->pos[len - 1] == '\r')
        len--;
    p->lineno++;
    p->handled = false;
    p->max_len = (int)room;
    p->too_long = len > room;
    size_t n = p->too_long ? room : len;
    memcpy(buf, p->pos, n);
    if (n < room)
        buf[n++] = '\n';
    else
        p->full = true;
    buf[n] = '\0';
    p->pos = nl ? nl + 1 : p->end;

    config_classify(p, buf);
    return buf;
}

static void config_entry_append(struct config_entry *e, const char *more)
{
    /* inih 55 leaves inline comments on continuation lines (later versions cut
     * them): cut them here, the same way, so both read a file alike. */
    size_t add = 0;
    for (bool was_space = false; more[add] && !(was_space && more[add] == ';'); add++)
        was_space = isspace((unsigned char)more[add]);
    while (add > 0 && isspace((unsigned char)more[add - 1]))
        add--;
    if (add == 0)
        return;

    size_t len = strlen(e->value);
    e->value = xrealloc(e->value, len + add + 2);
    if (len > 0)
        e->value[len++] = ' ';
    memcpy(e->value + len, more, add);
    e->value[len + add] = '\0';
}

static int config_handle(void *user, const char *section, const char *name, const char *value)
{
    struct config_parser *p = user;
    p->handled = true;

    if (p->continuation) {
        if (p->too_long) {
            config_error_too_long(p, section, name);
            if (p->cur)
                p->cur->broken = true;
        }
        if (p->cur && !p->cur->broken)
            config_entry_append(p->cur, value);
        return 1;
    }

    p->have_prev = name[0] != '\0';
    p->cur = NULL;
    if (p->too_long)
        config_error_too_long(p, section, name[0] ? name : NULL);
    if (p->bad_section)
        return 1;
    if (!name[0]) {
        config_error(p, p->lineno, NULL, NULL, "a key name is missing before '='");
        return 1;
    }
    if (!section[0]) {
        config_error(p, p->lineno, NULL, name,
                     "key outside any section; put it under [supervisor], [exporter], [renderer], [browsers] or [tracing]");
        return 1;
    }
    if (!config_section_known(section))
        return 1; /* reported once, at its header */

    const struct config_key *k = config_key_find(section, name);
    if (!k) {
        char known[256] = "";
        size_t used = 0;
        for (size_t i = 0; i < config_nkeys && used < sizeof(known); i++)
            if (strcmp(config_keys[i].section, section) == 0)
                used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s", used ? ", " : "",
                                         config_keys[i].name);
        config_error(p, p->lineno, section, name, "unknown key (known in [%s]: %s)", section, known);
        return 1;
    }
    struct config_entry *e = &p->entries[k - config_keys];
    if (e->line) {
        config_error(p, p->lineno, section, name, "given twice (first on line %d)", e->line);
        return 1;
    }
    e->line = p->lineno;
    e->value = xstrdup(value);
    e->broken = p->too_long;
    p->cur = e;
    return 1;
}

void config_read(struct config_parser *p, const char *text, size_t len)
{
    p->pos = text;
    p->end = text + len;
    int r = ini_parse_stream(config_read_line, p, config_handle, p);
    config_finish_line(p);
    /* inih only fails a line we have not already reported if our reading of
     * its rules is wrong; do not let such a line pass unnoticed. */
    if (r != 0 && p->nerrors == 0)
        config_error(p, r > 0 ? r : 0, NULL, NULL, "cannot parse this line");
}
