/* perm: the state directory's group and modes (see perm.h). */
#include "perm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/stats.h"
#include "base/util.h"
#include "notify/notify.h"

void perm_umask(void) { umask(007); }

/* chown to gid (when not already) and chmod to mode. */
static int fix(const char *path, unsigned gid, mode_t mode, char *err, size_t errlen) {
    struct stat st;
    if (lstat(path, &st)) return errno == ENOENT ? 0 : -errno;
    if (st.st_gid != gid && lchown(path, (uid_t)-1, (gid_t)gid)) {
        int e = errno;
        snprintf(err, errlen, "cannot give %s to group %u: %s (stated's user must be a member of it)",
                 path, (unsigned)gid, strerror(e));
        return -e;
    }
    if ((st.st_mode & 07777) != mode && !S_ISLNK(st.st_mode) && chmod(path, mode)) {
        int e = errno;
        snprintf(err, errlen, "cannot chmod %o %s: %s", (unsigned)mode, path, strerror(e));
        return -e;
    }
    return 0;
}

int perm_apply(const char *dir, const char *group, char *err, size_t errlen) {
    struct stat st;
    if (stat(dir, &st)) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", dir, strerror(e));
        return -e;
    }
    unsigned gid = (unsigned)st.st_gid;
    if (group && util_group_id(group, &gid)) {
        snprintf(err, errlen, "state_group: no group named '%s'", group);
        return -ENOENT;
    }
    int rc = fix(dir, gid, 02770, err, errlen);
    static const char *const files[] = {"data.mdb", "lock.mdb", "stated.lock", STATS_FILE, NOTIFY_SOCK, NULL};
    for (size_t i = 0; !rc && files[i]; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        rc = fix(p, gid, 0660, err, errlen);
    }
    return rc;
}
