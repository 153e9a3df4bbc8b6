/* log: one-line log records on stderr: "2026-11-22T13:20:01.123Z stated[123] info: text".
 * Untrusted bytes (ids, namespaces, bodies from the network) go through
 * log_escape so a log line can never be split or forged. */
#ifndef SIO_LOG_H
#define SIO_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Sets the program name shown in every line and the level (from $SIO_LOG_LEVEL
 * when set: error|warn|info|debug). */
void log_init(const char *prog);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int log_enabled(int level);
/* Writes a printable, escaped copy of s (at most n-1 chars, long input is
 * cut with "...") into out and returns out. */
const char *log_escape(char *out, size_t n, const char *s, size_t len);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
