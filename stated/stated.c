/* stated: the state daemon.  It creates and owns the store (one LMDB
 * environment in the state directory), runs the notify hub and the handler
 * dispatcher (dispatch.h), the cluster bridge when redis_url is set
 * (cluster/bridge.h), and the housekeeping no request would do by itself
 * (reaper.h): expiring sessions, trimming both logs, keeping room in the
 * map (room.h); it syncs the store to disk every second and clears reader
 * slots of crashed processes.
 * One stated per state directory (a lock file enforces it).  Everything it
 * keeps is in the store, so a restart loses nothing. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <stddef.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "base/paths.h"
#include "base/util.h"
#include "admin.h"
#include "cluster/bridge.h"
#include "dispatch.h"
#include "handcheck.h"
#include "notify/notify.h"
#include "perm.h"
#include "reaper.h"
#include "room.h"
#include "server/server.h"

static void usage(FILE *f) {
    fprintf(f, "usage: stated [--state DIR] [--config FILE] [--log LOGFILE]\n"
               "  Runs the state daemon in the foreground; SIGTERM or SIGINT stops it.\n"
               "  DIR defaults to $SIO_STATE_DIR, else <checkout>/var/state (an installed\n"
               "  stated: " PATHS_STATE_DIR ");\n"
               "  FILE defaults to $SIO_CONFIG, else built-in defaults.\n"
               "  The log goes to stderr, or appended to LOGFILE: then SIGHUP reopens it\n"
               "  (after a rotation); without --log SIGHUP stops stated like SIGTERM.\n");
}

static int summary_sock(void *arg, const store_socket *s) {
    (void)s;
    (*(size_t *)arg)++;
    return 0;
}

/* Creates the state directory and takes its lock before touching anything
 * in it (one stated per directory).  The lock lives as long as the process. */
static int lock_state_dir(const char *sdir) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", sdir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') { *p = 0; mkdir(tmp, 0755); *p = '/'; }
    mkdir(tmp, 02770); /* perm.h: the group's, setgid */
    char lockp[4200];
    snprintf(lockp, sizeof lockp, "%s/stated.lock", sdir);
    int lfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0660);
    if (lfd < 0) {
        log_error("cannot open %s: %s", lockp, strerror(errno));
        return -1;
    }
    if (flock(lfd, LOCK_EX | LOCK_NB)) {
        log_error("another stated is already running on %s", sdir);
        return -1;
    }
    return 0;
}

/* What the store holds, for the start-up line; returns the log head. */
static uint64_t log_summary(server *srv) {
    size_t nsess = 0, nsock = 0;
    uint64_t head = 0;
    store_txn *t;
    if (store_begin(srv->st, 0, &t) == 0) {
        store_session_count(t, &nsess);
        store_socket_each(t, summary_sock, &nsock);
        store_log_bounds(t, NULL, &head);
        store_abort(t);
    }
    log_info("state %s: %zu session(s), %zu socket(s), log head %llu; config %s; notify on %s/%s",
             srv->dir, nsess, nsock, (unsigned long long)head,
             srv->cfg.source ? srv->cfg.source : "(defaults)", srv->dir, NOTIFY_SOCK);
    return head;
}

/* Under systemd (Type=notify, $NOTIFY_SOCKET): says READY=1 once the store
 * and notify.sock are there, so that units ordered after stated's find them.
 * The sd_notify protocol: one datagram on a Unix socket ("@": abstract). */
static void systemd_ready(void) {
    const char *p = getenv("NOTIFY_SOCKET");
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t len = p ? strlen(p) : 0;
    if (!len || (p[0] != '/' && p[0] != '@') || len >= sizeof a.sun_path) return;
    memcpy(a.sun_path, p, len);
    if (a.sun_path[0] == '@') a.sun_path[0] = 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, "READY=1", 7, 0, (struct sockaddr *)&a,
                         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
        log_warn("cannot tell systemd that stated is ready (NOTIFY_SOCKET=%s): %s", p, strerror(errno));
    if (fd >= 0) close(fd);
}

/* Housekeeping until a signal arrives on sfd. */
static void run(server *srv, int sfd) {
    int64_t next_sync = util_now_ms() + 1000, next_check = util_now_ms() + 10000;
    int64_t next_reap = 0;
    for (;;) {
        int64_t now = util_now_ms();
        if (now >= next_reap) {
            int64_t next = now + 1000;
            int rc = reaper_run(srv, now, &next);
            if (rc == STORE_EFULL && room_make(srv, 1) >= 0) rc = reaper_run(srv, now, &next);
            if (rc < 0) log_error("housekeeping failed: %s", store_strerror(rc));
            next_reap = next < now + 1000 ? next : now + 1000;
            if (next_reap < now + 5) next_reap = now + 5;
        }
        if (now >= next_sync) {
            int rc = reaper_trim_inbox(srv);
            if (rc < 0) log_error("inbox trim failed: %s", store_strerror(rc));
            room_make(srv, 0);
            store_sync(srv->st);
            server_release_memory(srv);
            next_sync = now + 1000;
        }
        if (now >= next_check) {
            int d = store_reader_check(srv->st);
            if (d) log_info("cleared %d stale reader slot(s)", d);
            next_check = now + 10000;
        }
        int64_t wake = next_reap < next_sync ? next_reap : next_sync;
        int timeout = (int)(wake - util_now_ms());
        if (timeout < 0) timeout = 0;
        struct pollfd p = {.fd = sfd, .events = POLLIN};
        struct signalfd_siginfo si;
        if (poll(&p, 1, timeout) > 0 && read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
            if (si.ssi_signo == SIGHUP && log_sighup()) continue;
            log_info("signal %d: stopping", (int)si.ssi_signo);
            return;
        }
    }
}

int main(int argc, char **argv) {
    const char *dir = NULL, *cfgp = NULL, *logp = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--state") && v) dir = v, i++;
        else if (!strcmp(argv[i], "--log") && v) logp = v, i++;
        else if (!strcmp(argv[i], "--config") && v) cfgp = v, i++;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        else {
            fprintf(stderr, "stated: %s %s\n",
                    util_word_in("--state --config --log", argv[i]) ? "a value is needed after"
                                                                                  : "unknown option",
                    argv[i]);
            usage(stderr);
            return 2;
        }
    }
    log_init("stated");
    perm_umask();
    int lrc = logp ? log_to_file(logp) : 0;
    if (lrc) {
        log_error("cannot open the log file %s: %s", logp, strerror(-lrc));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    char sdir[4096];
    if (dir) snprintf(sdir, sizeof sdir, "%s", dir);
    else if (paths_state_dir(sdir, sizeof sdir)) { log_error("state dir path too long"); return 1; }
    if (lock_state_dir(sdir)) return 1;

    server srv;
    char err[512];
    if (server_open(&srv, sdir, cfgp, SERVER_CREATE, err, sizeof err)) {
        log_error("%s", err);
        return 1;
    }
    if (handcheck_config(&srv, err, sizeof err)) {
        log_error("%s", err);
        server_close(&srv);
        return 1;
    }
    int dead = store_reader_check(srv.st);
    if (dead) log_info("cleared %d reader slot(s) left by crashed processes", dead);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before the hub thread starts */
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);

    notify_hub *hub;
    int rc = notify_hub_start(sdir, &hub);
    if (rc) {
        log_error("cannot start the notify hub in %s: %s", sdir, strerror(-rc));
        server_close(&srv);
        return 1;
    }
    /* The directory and the store's files: the group's only (perm.h). */
    if ((rc = perm_apply(sdir, srv.cfg.state_group, err, sizeof err))) {
        if (srv.cfg.state_group) {
            log_error("%s", err);
            notify_hub_stop(hub);
            server_close(&srv);
            return 1;
        }
        log_warn("%s", err);
    }
    /* Sessions may have been waiting on a hub that was not there. */
    notify_send(sdir, log_summary(&srv));

    /* The handler dispatcher: consumes the inbox, runs the config's handlers. */
    dispatch_opts dopts = {0};
    dispatch_opts_env(&dopts);
    dispatch *disp = NULL;
    rc = dispatch_start(&srv, &dopts, &disp);
    if (rc) log_error("cannot start the handler dispatcher: %s", store_strerror(rc));
    /* With redis_url: this node joins the cluster. */
    bridge *br = NULL;
    rc = bridge_start(&srv, &br);
    if (rc) log_error("cannot start the cluster bridge: %s", store_strerror(rc));

    /* With [admin]: the Admin UI namespace. */
    admin *adm = NULL;
    rc = admin_start(&srv, &adm);
    if (rc) log_error("cannot start the Admin UI thread: %s", store_strerror(rc));

    systemd_ready();
    run(&srv, sfd);
    admin_stop(adm);
    bridge_stop(br);
    dispatch_stop(disp);
    notify_hub_stop(hub);
    store_sync(srv.st);
    server_close(&srv);
    close(sfd);
    log_info("stopped");
    return 0;
}
