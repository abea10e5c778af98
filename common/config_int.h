/* What the parts of the config module share, and no other module uses:
 * config.c has the key table and turns values into struct config,
 * config_ini.c reads the file's lines with inih, config_value.c parses one
 * value. All run on the thread that loads a config. */
#ifndef RV_CONFIG_INT_H
#define RV_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <sys/un.h>

#include "config.h"

#define CONFIG_NS_PER_MS INT64_C(1000000)
#define CONFIG_NS_PER_S (1000 * CONFIG_NS_PER_MS)
#define CONFIG_NS_PER_MIN (60 * CONFIG_NS_PER_S)
#define CONFIG_SUN_PATH sizeof(((struct sockaddr_un *)0)->sun_path)

enum config_kind {
    CONFIG_KIND_DIR,
    CONFIG_KIND_DURATION,
    CONFIG_KIND_LOG_LEVEL,
    CONFIG_KIND_LOG_FORMAT,
    CONFIG_KIND_COMMAND,
    CONFIG_KIND_LISTEN,          /* host:port */
    CONFIG_KIND_LISTEN_OPTIONAL, /* host:port, or empty for none */
    CONFIG_KIND_SOCKET,
    CONFIG_KIND_SIZE,
    CONFIG_KIND_BUCKETS,
    CONFIG_KIND_TOKEN,
    CONFIG_KIND_UINT,
    CONFIG_KIND_USER,  /* a user name, or empty for none */
    CONFIG_KIND_HOSTS, /* host[:port] words, or empty for any host */
    CONFIG_KIND_TIMEZONE, /* what a render's timezone may be, or empty */
    CONFIG_KIND_DEVTOOLS, /* pipe or port */
    CONFIG_KIND_FILE,     /* an absolute path, or empty for none (its contents are checked
                             where it is read: secretfile.h) */
    CONFIG_KIND_BOOL,     /* true or false (yes/no, on/off, 1/0) */
    CONFIG_KIND_URL,      /* an http(s) URL, or empty for none */
    CONFIG_KIND_NAME,     /* a non-empty printable name */
    CONFIG_KIND_RATIO,    /* a number from 0 to 1 */
};

/* The line of an entry set from the environment: later than any line of
 * the file, as the environment has the last word. config_error names the
 * variable instead of a line. */
#define CONFIG_LINE_ENV INT_MAX

struct config_key {
    const char *section;
    const char *name;
    enum config_kind kind;
    size_t offset;        /* of the field in struct config */
    const char *fallback; /* when the file leaves the key out; NULL: the default file's */
    int64_t min, max;     /* durations in ns, numbers as they are */
};

/* config.c: every key there is, and the sections they are in. */
extern const struct config_key config_keys[];
extern const size_t config_nkeys;
bool config_section_known(const char *name);
const struct config_key *config_key_find(const char *section, const char *name);

struct config_error {
    int line; /* 0: not about one line */
    size_t seq;
    char *text;
};

struct config_entry {
    char *value; /* continuation lines joined with one space */
    int line;    /* 0: the file does not give the key */
    bool broken; /* already reported: do not check the value */
};

struct config_parser {
    const char *name; /* the file, in messages */
    bool embedded;    /* the embedded default: its values count as defaults */
    const char *pos, *end;

    /* The line inih is working on: the reader hands it out, and inih calls
     * the handler for it (or not) before it asks for the next one. */
    int lineno, max_len, size;
    bool too_long, handled;
    bool continuation; /* inih will hand it to the handler as more of the last key */
    bool owed;         /* a key line: no handler call means inih found no '=' */
    bool full;         /* it filled inih's buffer */

    bool have_prev;           /* mirrors inih's prev_name, which decides continuations */
    bool bad_section;         /* keys after a broken [header] belong nowhere */
    struct config_entry *cur; /* what a continuation extends; NULL drops it */

    struct config_entry *entries; /* one per config_keys[] */
    struct config_error *errors;
    size_t nerrors;
};

/* config_ini.c: read text (len bytes, no NUL) into p->entries, reporting
 * every syntax error, unknown section or key and repeated key in p. */
void config_read(struct config_parser *p, const char *text, size_t len);
/* Report an error. key names the key (section.key, or the bare key outside
 * any section); with no key, section names a [section] line; line 0: the
 * error is not about one line. Line CONFIG_LINE_ENV: about the variable
 * that sets section.key, or with no section about the variable named key. */
void config_error(struct config_parser *p, int line, const char *section, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* All errors in file order, one per line, each ending in a newline; frees
 * each error's text. */
char *config_error_text(struct config_parser *p);

/* config_value.c: a socket name is a plain file name (inside runtime_dir) or
 * an absolute path; the user the children run as exists, and we may run them
 * as that user. */
int config_parse_socket(const char *text, const char **why);
/* true, yes, on, 1 / false, no, off, 0, in any case. */
int config_parse_bool(const char *text, int *out, const char **why);
int config_check_user(const char *name, char *why, size_t why_len);

#endif
