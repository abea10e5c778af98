/* Logging for all three binaries: one line per event, key=value text or JSON
 * lines. A call reads as a sentence followed by fields:
 *     log_info("child started child=%s pid=%d", name, pid);
 * The words before the first key=value are the message. Values that may hold
 * spaces are written quoted ("path=\"%s\""). Calls come in pairs: log_warn()
 * and log_warn_errno(), the latter appending error="<strerror>". */
#ifndef RV_LOG_H
#define RV_LOG_H

#include <stddef.h>

#include "config.h"

void log_init(const char *component, enum config_log_level level, enum config_log_format format);
void log_set(enum config_log_level level, enum config_log_format format);
int log_enabled(enum config_log_level level);

void log_write(enum config_log_level level, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A line a child wrote on stdout or stderr, logged as it is, escaped. */
void log_child_output(const char *child, const char *stream, const char *line, size_t len);

/* Format one record into buf (for tests and for log_write); returns its length
 * including the trailing newline, truncated to size - 1. */
size_t log_format_record(char *buf, size_t size, enum config_log_format format, double wall_s,
                         enum config_log_level level, const char *component, const char *text,
                         const char *error);

#define log_debug(...) log_write(CONFIG_LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_write(CONFIG_LOG_INFO, 0, __VA_ARGS__)
#define log_warn(...) log_write(CONFIG_LOG_WARN, 0, __VA_ARGS__)
#define log_error(...) log_write(CONFIG_LOG_ERROR, 0, __VA_ARGS__)
#define log_info_errno(err, ...) log_write(CONFIG_LOG_INFO, (err), __VA_ARGS__)
#define log_warn_errno(err, ...) log_write(CONFIG_LOG_WARN, (err), __VA_ARGS__)
#define log_error_errno(err, ...) log_write(CONFIG_LOG_ERROR, (err), __VA_ARGS__)

#endif
