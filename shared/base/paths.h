/* paths: where a program finds its files, worked out from where it is.
 * Two layouts:
 *   a checkout   <checkout>/bin/PROG (or <checkout>/build/asan/bin/PROG):
 *                www/, var/state, plugins next to the programs, and the
 *                client bundle of the socket.io-client npm package and the
 *                Admin UI of @socket.io/admin-ui (ui/dist) in
 *                tests/node_modules;
 *   an install   PREFIX/bin/PROG beside PREFIX/share/sio/ (`make install`):
 *                share/sio/www, share/sio/client/socket.io.min.js,
 *                share/sio/admin-ui, plugins
 *                in PREFIX/lib/sio, and the state in PATHS_STATE_DIR
 *                (/var/lib/sio, the service's StateDirectory).
 * A program is installed when <its folder>/../share/sio/www is a directory,
 * so an installed tree works wherever it is copied (DESTDIR, a moved PREFIX).
 * Every command-line option and environment variable still overrides these. */
#ifndef SIO_PATHS_H
#define SIO_PATHS_H

#include <stddef.h>

#ifndef PATHS_STATE_DIR
#define PATHS_STATE_DIR "/var/lib/sio"
#endif

enum paths_kind {
    PATHS_STATE,     /* the state directory (after $SIO_STATE_DIR) */
    PATHS_WWW,       /* sio-front's static files */
    PATHS_CLIENT_JS, /* socket.io.min.js, served as /socket.io/socket.io.js */
    PATHS_PLUGINS,   /* where a relative `plugin = FILE` is looked for */
    PATHS_ADMIN_UI,  /* the Admin UI's files, served at /admin-ui/ with [admin] */
};

/* The folder of the running program (no trailing slash), "." when
 * /proc/self/exe cannot be read.  0 or -ENAMETOOLONG. */
int paths_exe_dir(char *out, size_t n);
/* 1 when the running program is an installed one (see above), else 0. */
int paths_installed(void);
/* The default path of kind for the running program's layout into out (size
 * n); 0 or -ENAMETOOLONG. */
int paths_default(enum paths_kind kind, char *out, size_t n);
/* The state directory: $SIO_STATE_DIR when set, else paths_default(PATHS_STATE).
 * 0 or -ENAMETOOLONG. */
int paths_state_dir(char *out, size_t n);

#endif
