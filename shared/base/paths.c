/* paths: default locations from the program's own place (see paths.h). */
#include "base/paths.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int paths_exe_dir(char *out, size_t n) {
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) {
        strcpy(exe, ".");
    } else {
        exe[len] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        if (!exe[0]) strcpy(exe, "/");
    }
    if (strlen(exe) >= n) return -ENAMETOOLONG;
    strcpy(out, exe);
    return 0;
}

/* The root the layout hangs from: PREFIX for an install, else the checkout
 * (bin/.. or build/asan/bin/../../..), canonical when it can be. */
static int layout_root(int *installed, char *out, size_t n) {
    char dir[PATH_MAX], tmp[PATH_MAX + 32];
    if (paths_exe_dir(dir, sizeof dir)) return -ENAMETOOLONG;
    struct stat st;
    snprintf(tmp, sizeof tmp, "%s/../share/sio/www", dir);
    *installed = stat(tmp, &st) == 0 && S_ISDIR(st.st_mode);
    size_t dl = strlen(dir);
    const char *up = !*installed && dl >= 15 && !strcmp(dir + dl - 15, "/build/asan/bin")
                         ? "/../../.."
                         : "/..";
    snprintf(tmp, sizeof tmp, "%s%s", dir, up);
    char real[PATH_MAX];
    const char *root = realpath(tmp, real) ? real : tmp;
    if (strlen(root) >= n) return -ENAMETOOLONG;
    strcpy(out, root);
    return 0;
}

int paths_installed(void) {
    char root[PATH_MAX];
    int installed = 0;
    return layout_root(&installed, root, sizeof root) ? 0 : installed;
}

int paths_default(enum paths_kind kind, char *out, size_t n) {
    char root[PATH_MAX];
    int inst = 0;
    if (layout_root(&inst, root, sizeof root)) return -ENAMETOOLONG;
    if (kind == PATHS_PLUGINS && !inst) return paths_exe_dir(out, n);
    int w;
    switch (kind) {
    case PATHS_STATE:
        w = inst ? snprintf(out, n, "%s", PATHS_STATE_DIR) : snprintf(out, n, "%s/var/state", root);
        break;
    case PATHS_WWW:
        w = snprintf(out, n, inst ? "%s/share/sio/www" : "%s/www", root);
        break;
    case PATHS_CLIENT_JS:
        w = snprintf(out, n,
                     inst ? "%s/share/sio/client/socket.io.min.js"
                          : "%s/tests/node_modules/socket.io-client/dist/socket.io.min.js",
                     root);
        break;
    case PATHS_PLUGINS:
        w = snprintf(out, n, "%s/lib/sio", root);
        break;
    case PATHS_ADMIN_UI:
        w = snprintf(out, n,
                     inst ? "%s/share/sio/admin-ui" : "%s/tests/node_modules/@socket.io/admin-ui/ui/dist",
                     root);
        break;
    default:
        return -EINVAL;
    }
    return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}

int paths_state_dir(char *out, size_t n) {
    const char *env = getenv("SIO_STATE_DIR");
    if (env && *env) {
        if (strlen(env) >= n) return -ENAMETOOLONG;
        strcpy(out, env);
        return 0;
    }
    return paths_default(PATHS_STATE, out, n);
}
