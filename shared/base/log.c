/* log: stderr or file logging (see log.h). */
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "sio";
static int log_level = LOG_INFO;
static char *log_path; /* log_to_file's path, NULL: stderr as inherited */

void log_init(const char *prog) {
    log_prog = prog;
    const char *l = getenv("SIO_LOG_LEVEL");
    if (!l) return;
    if (!strcmp(l, "error")) log_level = LOG_ERROR;
    else if (!strcmp(l, "warn")) log_level = LOG_WARN;
    else if (!strcmp(l, "info")) log_level = LOG_INFO;
    else if (!strcmp(l, "debug")) log_level = LOG_DEBUG;
}

int log_enabled(int level) { return level <= log_level; }

void log_msg(int level, const char *fmt, ...) {
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (level > log_level) return;
    char line[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s[%d] %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(tv.tv_usec / 1000), log_prog, (int)getpid(), names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(2, line, len); /* one write: lines from threads do not mix */
    (void)w;
}

/* Opens path and puts it on fd 2 (dup2 replaces it atomically: a line
 * written meanwhile goes to the old file or the new one, whole). */
static int log_open_on_stderr(const char *path) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0) return -errno;
    int rc = fd == 2 || dup2(fd, 2) == 2 ? 0 : -errno;
    if (fd != 2) close(fd);
    return rc;
}

int log_to_file(const char *path) {
    char *copy = strdup(path);
    if (!copy) return -ENOMEM;
    int rc = log_open_on_stderr(path);
    if (rc) {
        free(copy);
        return rc;
    }
    free(log_path);
    log_path = copy;
    return 0;
}

int log_reopen(void) { return log_path ? log_open_on_stderr(log_path) : 0; }

const char *log_file(void) { return log_path; }

int log_sighup(void) {
    if (!log_path) return 0;
    int rc = log_reopen();
    if (rc) log_error("SIGHUP: cannot reopen the log file %s: %s", log_path, strerror(-rc));
    else log_info("SIGHUP: log file %s reopened", log_path);
    return 1;
}

const char *log_escape(char *out, size_t n, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (n == 0) return out;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 8 >= n) {
            if (n > 4) { o = o > n - 4 ? n - 4 : o; memcpy(out + o, "...", 3); o += 3; }
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = 0;
    return out;
}
