/* Logging for all three binaries: one line per event, key=value text or JSON
 * lines. A call reads as a sentence followed by fields:
 *     log_info("child started child=%s pid=%d", name, pid);
 * The words before the first key=value are the message. Values that may hold
 * spaces are written quoted ("path=\"%s\""). Calls come in pairs: log_warn()
 * and log_warn_errno(), the latter appending error="<strerror>".
 * docs/logging.md describes the records for the people who read them. */
#ifndef RV_LOG_H
#define RV_LOG_H

#include <stddef.h>

#include "config.h"

/* The longest record log_write writes, its newline included. */
#define LOG_MAX_RECORD 8192
/* The longest line of a child's output that log_child_output takes whole
 * (the supervisor cuts longer ones into pieces): any record of ours fits. */
#define LOG_LINE_MAX LOG_MAX_RECORD
/* What log_child_output formats a line in: a nested line of LOG_LINE_MAX
 * bytes fits whole even if every byte needs a \u escape. */
#define LOG_RELAY_MAX (6 * LOG_LINE_MAX + 512)
/* The smallest buffer log_format_record fills with a well-formed record. */
#define LOG_RECORD_MIN 160

/* The levels' names, as the config file's log_level and every record spell
 * them; defined here once. */
#define LOG_LEVEL_COUNT (CONFIG_LOG_ERROR + 1)
extern const char *const log_level_names[LOG_LEVEL_COUNT];
/* The level named by the n bytes at s: 0 and *level set, or -1 for no level. */
int log_level_lookup(const char *s, size_t n, enum config_log_level *level);

void log_init(const char *component, enum config_log_level level, enum config_log_format format);
void log_set(enum config_log_level level, enum config_log_format format);
int log_enabled(enum config_log_level level);

void log_write(enum config_log_level level, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A line a child wrote on stdout or stderr (len bytes, no newline). When
 * ours (the exporter, the renderer) and the line is a record in the current
 * log_format, it goes on as it is with child=<child> added after component;
 * anything else is data, escaped into the line field of a "child output"
 * record. */
void log_child_output(const char *child, const char *stream, int ours, const char *line, size_t len);

/* Format one record into buf (for tests and for log_write); returns its length
 * including the trailing newline. A record too long for buf loses its end and
 * says so (truncated=true), and is still well formed when size is at least
 * LOG_RECORD_MIN: every JSON record is one JSON object. */
size_t log_format_record(char *buf, size_t size, enum config_log_format format, double wall_s,
                         enum config_log_level level, const char *component, const char *text,
                         const char *error);

/* log_child_output's two cases, for tests. log_tag_record: when line is a
 * record as log_format_record writes it in format, with no child field,
 * writes it to buf with the child field added after component and returns
 * its length with the newline, and sets *level to the record's level; 0
 * otherwise (buf is then undefined). log_format_output: the "child output"
 * record that nests line. */
size_t log_tag_record(char *buf, size_t size, enum config_log_format format, const char *line, size_t len,
                      const char *child, enum config_log_level *level);
size_t log_format_output(char *buf, size_t size, enum config_log_format format, double wall_s,
                         enum config_log_level level, const char *component, const char *child,
                         const char *stream, const char *line, size_t len);
/* The level a child's line that is not a record of ours is logged at:
 * debug for the lines Chromium writes at every start on a host without a
 * desktop (D-Bus, GPU devices, its sandbox's thread check; listed in
 * docs/logging.md), which say nothing about the service; info for any
 * other. */
enum config_log_level log_output_level(const char *line, size_t len);

#define log_debug(...) log_write(CONFIG_LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_write(CONFIG_LOG_INFO, 0, __VA_ARGS__)
#define log_warn(...) log_write(CONFIG_LOG_WARN, 0, __VA_ARGS__)
#define log_error(...) log_write(CONFIG_LOG_ERROR, 0, __VA_ARGS__)
#define log_info_errno(err, ...) log_write(CONFIG_LOG_INFO, (err), __VA_ARGS__)
#define log_warn_errno(err, ...) log_write(CONFIG_LOG_WARN, (err), __VA_ARGS__)
#define log_error_errno(err, ...) log_write(CONFIG_LOG_ERROR, (err), __VA_ARGS__)

#endif
