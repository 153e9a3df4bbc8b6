/* log: one-line log records on stderr: "2026-11-22T13:20:01.123Z stated[123] info: text",
 * or in a file (log_to_file, the daemons' --log FILE) that log_reopen opens
 * again after a rotation (their SIGHUP).
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
/* Sends the log (and everything else written to stderr) to the file at path:
 * opens it for appending (created 0640) and puts it on fd 2.  0 or -errno
 * (stderr unchanged). */
int log_to_file(const char *path);
/* With log_to_file in force: opens the path again (a new file after
 * logrotate renamed the old one) and puts it on fd 2; 0 or -errno (the old
 * file kept).  Without it: 0, nothing done. */
int log_reopen(void);
/* The file log_to_file put the log in, NULL while it goes to stderr. */
const char *log_file(void);
/* What SIGHUP means to the daemons: with a log file, reopen it (logged,
 * also when that fails) and return 1; without one, return 0: the caller
 * stops, as on SIGTERM. */
int log_sighup(void);
/* Writes a printable, escaped copy of s (at most n-1 chars, long input is
 * cut with "...") into out and returns out. */
const char *log_escape(char *out, size_t n, const char *s, size_t len);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
