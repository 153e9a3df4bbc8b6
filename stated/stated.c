/* stated: the state daemon.  It creates and owns the store (one LMDB
 * environment in the state directory), runs the notify hub, and does the
 * housekeeping no request would do by itself: it closes sessions that missed
 * pingInterval + pingTimeout or never connected to a namespace (their
 * sockets leave every room), deletes closed sessions, trims the packet log,
 * syncs the store to disk every second, and clears reader slots of crashed
 * processes.  One stated per state directory (a lock file enforces it).
 * Everything it keeps is in the store, so a restart loses nothing. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dispatch.h"
#include "server/engine.h"
#include "base/log.h"
#include "notify/notify.h"
#include "base/util.h"

static void usage(FILE *f) {
    fprintf(f, "usage: stated [--state DIR] [--config FILE]\n"
               "  Runs the state daemon in the foreground; SIGTERM or SIGINT stops it.\n"
               "  DIR defaults to $SIO_STATE_DIR, else <checkout>/var/state;\n"
               "  FILE defaults to $SIO_CONFIG, else built-in defaults.\n");
}

static int summary_sock(void *arg, const store_socket *s) {
    (void)s;
    (*(size_t *)arg)++;
    return 0;
}

int main(int argc, char **argv) {
    const char *dir = NULL, *cfgp = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--state") && v) dir = v, i++;
        else if (!strcmp(argv[i], "--config") && v) cfgp = v, i++;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        else { usage(stderr); return 2; }
    }
    log_init("stated");
    signal(SIGPIPE, SIG_IGN);

    char sdir[4096];
    if (dir) snprintf(sdir, sizeof sdir, "%s", dir);
    else if (util_state_dir(sdir, sizeof sdir)) { log_error("state dir path too long"); return 1; }
    /* Create the directory and take the lock before touching anything in it. */
    {
        /* store_open creates the directory; create it early for the lock file. */
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s", sdir);
        for (char *p = tmp + 1; *p; p++)
            if (*p == '/') { *p = 0; mkdir(tmp, 0755); *p = '/'; }
        mkdir(tmp, 0755);
    }
    char lockp[4200];
    snprintf(lockp, sizeof lockp, "%s/stated.lock", sdir);
    int lfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0) {
        log_error("cannot open %s: %s", lockp, strerror(errno));
        return 1;
    }
    if (flock(lfd, LOCK_EX | LOCK_NB)) {
        log_error("another stated is already running on %s", sdir);
        return 1;
    }

    engine e;
    char err[512];
    if (engine_open(&e, sdir, cfgp, ENGINE_CREATE, err, sizeof err)) {
        log_error("%s", err);
        return 1;
    }
    int dead = store_reader_check(e.st);
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
        engine_close(&e);
        return 1;
    }

    size_t nsess = 0, nsock = 0;
    uint64_t head = 0;
    store_txn *t;
    if (store_begin(e.st, 0, &t) == 0) {
        store_session_count(t, &nsess);
        store_socket_each(t, summary_sock, &nsock);
        store_log_bounds(t, NULL, &head);
        store_abort(t);
    }
    log_info("state %s: %zu session(s), %zu socket(s), log head %llu; config %s; notify on %s/%s",
             sdir, nsess, nsock, (unsigned long long)head,
             e.cfg.source ? e.cfg.source : "(defaults)", sdir, NOTIFY_SOCK);
    /* Sessions may have been waiting on a hub that was not there. */
    notify_send(sdir, head);

    /* The handler dispatcher: consumes the inbox, runs the config's handlers. */
    dispatch_opts dopts = {0};
    dispatch_opts_env(&dopts);
    dispatch *disp = NULL;
    rc = dispatch_start(&e, &dopts, &disp);
    if (rc) log_error("cannot start the handler dispatcher: %s", store_strerror(rc));

    int64_t next_sync = util_now_ms() + 1000, next_check = util_now_ms() + 10000;
    int64_t next_reap = 0;
    for (;;) {
        int64_t now = util_now_ms();
        if (now >= next_reap) {
            int64_t next = now + 1000;
            rc = engine_reap(&e, now, &next);
            if (rc < 0) log_error("housekeeping failed: %s", store_strerror(rc));
            next_reap = next < now + 1000 ? next : now + 1000;
            if (next_reap < now + 5) next_reap = now + 5;
        }
        if (now >= next_sync) {
            rc = dispatch_trim_inbox(&e);
            if (rc < 0) log_error("inbox trim failed: %s", store_strerror(rc));
            store_sync(e.st);
            next_sync = now + 1000;
        }
        if (now >= next_check) {
            int d = store_reader_check(e.st);
            if (d) log_info("cleared %d stale reader slot(s)", d);
            next_check = now + 10000;
        }
        int64_t wake = next_reap < next_sync ? next_reap : next_sync;
        int timeout = (int)(wake - util_now_ms());
        if (timeout < 0) timeout = 0;
        struct pollfd p = {.fd = sfd, .events = POLLIN};
        if (poll(&p, 1, timeout) > 0) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                log_info("signal %d: stopping", (int)si.ssi_signo);
                break;
            }
        }
    }
    dispatch_stop(disp);
    notify_hub_stop(hub);
    store_sync(e.st);
    engine_close(&e);
    close(sfd);
    log_info("stopped");
    return 0;
}
