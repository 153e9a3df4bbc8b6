/* util: clock, random ids, default paths (see util.h). */
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/b64.h"

int util_grow(void *items, size_t *cap, size_t n, size_t elem, size_t min) {
    if (n < *cap) return 0;
    size_t c = *cap ? *cap * 2 : min;
    if (c <= n) c = n + 1;
    if (elem && c > SIZE_MAX / elem) return -ENOMEM;
    void **p = items;
    void *np = realloc(*p, c * elem);
    if (!np) return -ENOMEM;
    *p = np;
    *cap = c;
    return 0;
}

int64_t util_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fill_random(void *p, size_t n) {
    uint8_t *b = p;
    while (n) {
        ssize_t r = getrandom(b, n, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

int util_random_id(char out[UTIL_ID_LEN + 1]) {
    uint8_t raw[15];
    int rc = fill_random(raw, sizeof raw);
    if (rc) return rc;
    b64url_encode(out, raw, sizeof raw);
    return 0;
}

uint32_t util_random_u32(void) {
    uint32_t v = 0;
    if (fill_random(&v, sizeof v)) v = (uint32_t)getpid() ^ (uint32_t)util_now_ms();
    return v;
}

int util_is_id(const char *s, size_t len) {
    if (len != UTIL_ID_LEN) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

int util_parse_long(const char *s, long min, long max, long *out) {
    if (!s || !*s) return -EINVAL;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return -EINVAL;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max) return -EINVAL;
    *out = v;
    return 0;
}

int util_env_kept(const char *kv) {
    static const char *const kept[] = {"PATH", "HOME", "LANG", "TZ", "TMPDIR", "USER", "LOGNAME",
                                       "SIO_LOG_LEVEL", NULL};
    size_t n = strcspn(kv, "=");
    if (!kv[n]) return 0;
    if (n > 3 && !strncmp(kv, "LC_", 3)) return 1;
    for (size_t i = 0; kept[i]; i++)
        if (strlen(kept[i]) == n && !strncmp(kv, kept[i], n)) return 1;
    return 0;
}

int util_pid_alive(int pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

int util_pidfd_open(int pid) {
#ifdef SYS_pidfd_open
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
#else
    (void)pid;
    return -1;
#endif
}

int util_group_id(const char *name, unsigned *gid) {
    struct group g, *res = NULL;
    char tmp[4096];
    if (getgrnam_r(name, &g, tmp, sizeof tmp, &res) == 0 && res) {
        *gid = (unsigned)res->gr_gid;
        return 0;
    }
    long v;
    if (util_parse_long(name, 0, 0x7fffffffL, &v) == 0) {
        *gid = (unsigned)v;
        return 0;
    }
    return -ENOENT;
}

int util_spawn_sh(const char *cmd, char *const envp[], const char *cwd, const int fds[3], int *pid) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0) posix_spawn_file_actions_adddup2(&fa, fds[i], i);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (cwd) posix_spawn_file_actions_addchdir_np(&fa, cwd);
    sigset_t none, def;
    sigemptyset(&none);
    sigemptyset(&def);
    int sigs[] = {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaddset(&def, sigs[i]);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &def);
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    pid_t p;
    int rc = posix_spawn(&p, "/bin/sh", &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc) return -rc;
    *pid = (int)p;
    return 0;
}

int util_word_in(const char *list, const char *word) {
    size_t l = strlen(word);
    if (!l) return 0;
    for (const char *p = list; (p = strstr(p, word)); p += l)
        if ((p == list || p[-1] == ' ') && (p[l] == ' ' || !p[l])) return 1;
    return 0;
}
