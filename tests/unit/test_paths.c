/* Unit tests for shared/base/paths.c: the defaults of a checkout and of an
 * install, worked out from where the program is.  The test copies its own
 * binary into made-up trees (PREFIX/bin beside PREFIX/share/sio/www, a
 * checkout's bin/ and build/asan/bin/) and runs each copy, which prints what
 * it found (the child mode below). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/paths.h"
#include "unit.h"

/* The child: one line per fact, in a fixed order. */
static int child(void) {
    static const enum paths_kind kinds[] = {PATHS_STATE, PATHS_WWW, PATHS_CLIENT_JS, PATHS_PLUGINS};
    char p[PATH_MAX];
    printf("%d\n", paths_installed());
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (paths_default(kinds[i], p, sizeof p)) return 1;
        printf("%s\n", p);
    }
    if (paths_state_dir(p, sizeof p)) return 1;
    printf("%s\n", p);
    return 0;
}

typedef struct facts {
    char line[6][PATH_MAX];
} facts;

static void mkdirs(const char *path) {
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *s = tmp + 1; *s; s++)
        if (*s == '/') { *s = 0; mkdir(tmp, 0755); *s = '/'; }
    ASSERT_TRUE(mkdir(tmp, 0755) == 0 || errno == EEXIST);
}

/* Copies this binary to dir/NAME and runs it (env: extra assignments). */
static void run_copy(const char *dir, const char *env, facts *out) {
    mkdirs(dir);
    char exe[PATH_MAX + 16], cmd[2 * PATH_MAX];
    snprintf(exe, sizeof exe, "%s/test_paths", dir);
    snprintf(cmd, sizeof cmd, "cp /proc/%d/exe '%s'", (int)getpid(), exe);
    ASSERT_EQ_INT(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "env PATHS_CHILD=1 %s '%s'", env, exe);
    FILE *f = popen(cmd, "r");
    ASSERT_TRUE(f != NULL);
    memset(out, 0, sizeof *out);
    for (int i = 0; i < 6; i++) {
        if (!fgets(out->line[i], sizeof out->line[i], f)) break;
        out->line[i][strcspn(out->line[i], "\n")] = 0;
    }
    ASSERT_EQ_INT(pclose(f), 0);
}

static char root[PATH_MAX];

static void make_root(void) {
    snprintf(root, sizeof root, "/tmp/sio-paths-XXXXXX");
    ASSERT_TRUE(mkdtemp(root) != NULL);
    char real[PATH_MAX];
    ASSERT_TRUE(realpath(root, real) != NULL); /* the programs see canonical paths */
    snprintf(root, sizeof root, "%s", real);
}

static void remove_root(void) {
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    ASSERT_EQ_INT(system(cmd), 0);
}

TEST(installed_tree_uses_share_sio_and_var_lib) {
    make_root();
    char d[PATH_MAX + 64], want[PATH_MAX + 64];
    snprintf(d, sizeof d, "%s/usr/local/share/sio/www", root);
    mkdirs(d);
    snprintf(d, sizeof d, "%s/usr/local/bin", root);
    facts f;
    run_copy(d, "SIO_STATE_DIR=", &f);
    ASSERT_EQ_STR(f.line[0], "1");
    ASSERT_EQ_STR(f.line[1], PATHS_STATE_DIR);
    snprintf(want, sizeof want, "%s/usr/local/share/sio/www", root);
    ASSERT_EQ_STR(f.line[2], want);
    snprintf(want, sizeof want, "%s/usr/local/share/sio/client/socket.io.min.js", root);
    ASSERT_EQ_STR(f.line[3], want);
    snprintf(want, sizeof want, "%s/usr/local/lib/sio", root);
    ASSERT_EQ_STR(f.line[4], want);
    ASSERT_EQ_STR(f.line[5], PATHS_STATE_DIR); /* an empty SIO_STATE_DIR does not count */
    /* $SIO_STATE_DIR wins */
    run_copy(d, "SIO_STATE_DIR=/srv/state", &f);
    ASSERT_EQ_STR(f.line[5], "/srv/state");
    remove_root();
}

TEST(checkout_bin_uses_the_checkout) {
    make_root();
    char d[PATH_MAX + 64], want[PATH_MAX + 64];
    snprintf(d, sizeof d, "%s/repo/bin", root);
    facts f;
    run_copy(d, "SIO_STATE_DIR=", &f);
    ASSERT_EQ_STR(f.line[0], "0");
    snprintf(want, sizeof want, "%s/repo/var/state", root);
    ASSERT_EQ_STR(f.line[1], want);
    ASSERT_EQ_STR(f.line[5], want);
    snprintf(want, sizeof want, "%s/repo/www", root);
    ASSERT_EQ_STR(f.line[2], want);
    snprintf(want, sizeof want, "%s/repo/tests/node_modules/socket.io-client/dist/socket.io.min.js", root);
    ASSERT_EQ_STR(f.line[3], want);
    ASSERT_EQ_STR(f.line[4], d); /* plugins: next to the programs */
    /* the ASan build: three levels below the checkout */
    snprintf(d, sizeof d, "%s/repo/build/asan/bin", root);
    run_copy(d, "SIO_STATE_DIR=", &f);
    ASSERT_EQ_STR(f.line[0], "0");
    snprintf(want, sizeof want, "%s/repo/var/state", root);
    ASSERT_EQ_STR(f.line[1], want);
    snprintf(want, sizeof want, "%s/repo/www", root);
    ASSERT_EQ_STR(f.line[2], want);
    ASSERT_EQ_STR(f.line[4], d);
    remove_root();
}

TEST(too_small_a_buffer_is_an_error) {
    char small[4];
    ASSERT_EQ_INT(paths_default(PATHS_WWW, small, sizeof small), -ENAMETOOLONG);
    ASSERT_EQ_INT(paths_exe_dir(small, sizeof small), -ENAMETOOLONG);
}

int main(int argc, char **argv) {
    if (getenv("PATHS_CHILD")) return child();
    return unit_main(argc, argv);
}
