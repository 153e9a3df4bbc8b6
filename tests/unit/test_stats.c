/* Unit tests for shared/base/stats.c: the counters every process shares.
 * Other processes are real ones: this binary run again in child mode
 * (STATS_CHILD=DIR), which opens the counters in DIR, adds what its
 * arguments say, and then exits without folding (as a crash would), folds
 * its own slot and waits (as sioctl does), or waits holding its slot. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/stats.h"
#include "unit.h"

static char exe[4096];
static char dir[64];

/* The child: STATS_CHILD=DIR, argv: MODE N.  Adds N to handshakes (polling)
 * and 2N bytes in (websocket).  MODE die: exits at once (its slot left
 * claimed); hold: prints "ready", waits for stdin to close, exits; close:
 * stats_close, prints "ready", waits. */
static int child(const char *d, const char *mode, long n) {
    if (stats_open(d)) return 10;
    stats_add(STATS_HANDSHAKES + STATS_T_POLLING, (uint64_t)n);
    stats_add(STATS_BYTES_IN + STATS_T_WEBSOCKET, 2 * (uint64_t)n);
    if (!strcmp(mode, "die")) _exit(0);
    if (!strcmp(mode, "close")) stats_close();
    printf("ready\n");
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) {
    }
    _exit(0);
}

typedef struct kid {
    int pid, in; /* in: its stdin (close it to end a hold/close child) */
} kid;

/* Starts a child in mode with n; waits for it to be ready (die: to exit). */
static kid spawn(const char *mode, long n) {
    int pin[2], pout[2];
    ASSERT_TRUE(pipe2(pin, O_CLOEXEC) == 0 && pipe2(pout, O_CLOEXEC) == 0);
    int pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        close(pin[1]);
        close(pout[0]);
        char nb[32];
        snprintf(nb, sizeof nb, "%ld", n);
        setenv("STATS_CHILD", dir, 1);
        execl(exe, exe, mode, nb, (char *)NULL);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    kid k = {pid, pin[1]};
    if (!strcmp(mode, "die")) {
        int st;
        ASSERT_EQ_INT(waitpid(pid, &st, 0), pid);
        ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        close(k.in);
        k.in = -1;
    } else {
        char buf[16] = "";
        ASSERT_EQ_INT(read(pout[0], buf, 6), 6);
        ASSERT_EQ_STR(buf, "ready\n");
    }
    close(pout[0]);
    return k;
}

static void end(kid *k) {
    int st;
    close(k->in);
    ASSERT_EQ_INT(waitpid(k->pid, &st, 0), k->pid);
}

static void setup(void) {
    if (dir[0]) return;
    strcpy(dir, "/tmp/sio-unit-stats-XXXXXX");
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    ASSERT_EQ_INT(stats_open(dir), 0);
}

static int listed(int pid) {
    stats_proc p[300];
    int n = stats_processes(p, 300);
    for (int i = 0; i < n && i < 300; i++)
        if (p[i].pid == pid) return 1;
    return 0;
}

/* The counters read now are exactly b. */
static void unchanged_since(const uint64_t *b) {
    uint64_t c[STATS_NCOUNTERS];
    ASSERT_EQ_INT(stats_read(c), 0);
    ASSERT_MEM(c, sizeof c, b, sizeof c);
}

/* b is a plus what children given n in all added (see child). */
static void kids_added(const uint64_t *a, const uint64_t *b, uint64_t n) {
    ASSERT_TRUE(b[STATS_HANDSHAKES + STATS_T_POLLING] == a[STATS_HANDSHAKES + STATS_T_POLLING] + n);
    ASSERT_TRUE(b[STATS_BYTES_IN + STATS_T_WEBSOCKET] == a[STATS_BYTES_IN + STATS_T_WEBSOCKET] + 2 * n);
}

TEST(own_adds_are_read_back) {
    setup();
    uint64_t a[STATS_NCOUNTERS], b[STATS_NCOUNTERS];
    ASSERT_EQ_INT(stats_read(a), 0);
    stats_add(STATS_BROADCASTS, 3);
    stats_add(STATS_PACKETS_OUT + STATS_T_WEBSOCKET, 7);
    ASSERT_EQ_INT(stats_read(b), 0);
    ASSERT_TRUE(b[STATS_BROADCASTS] == a[STATS_BROADCASTS] + 3);
    ASSERT_TRUE(b[STATS_PACKETS_OUT + STATS_T_WEBSOCKET] == a[STATS_PACKETS_OUT + STATS_T_WEBSOCKET] + 7);
    ASSERT_TRUE(listed(getpid()));
    ASSERT_EQ_INT(stats_open(dir), 0); /* once per process: nothing changes */
    unchanged_since(b);
}

TEST(a_dead_process_slot_is_folded_without_loss) {
    setup();
    uint64_t a[STATS_NCOUNTERS], b[STATS_NCOUNTERS];
    ASSERT_EQ_INT(stats_read(a), 0);
    kid k = spawn("die", 5);
    ASSERT_EQ_INT(stats_read(b), 0); /* its slot is still there, still summed */
    kids_added(a, b, 5);
    ASSERT_TRUE(!listed(k.pid));
    ASSERT_TRUE(stats_fold_dead() >= 1);
    ASSERT_EQ_INT(stats_fold_dead(), 0); /* nothing left to fold */
    unchanged_since(b);
}

TEST(a_live_process_keeps_its_slot_and_close_folds_it) {
    setup();
    uint64_t a[STATS_NCOUNTERS], b[STATS_NCOUNTERS];
    ASSERT_EQ_INT(stats_read(a), 0);
    kid h = spawn("hold", 4);
    kid cl = spawn("close", 6);
    ASSERT_TRUE(listed(h.pid));
    ASSERT_TRUE(!listed(cl.pid)); /* gave its slot back */
    ASSERT_EQ_INT(stats_fold_dead(), 0);
    ASSERT_EQ_INT(stats_read(b), 0);
    kids_added(a, b, 10);
    stats_proc p[300];
    int n = stats_processes(p, 300);
    int named = 0;
    for (int i = 0; i < n && i < 300; i++)
        if (p[i].pid == h.pid) named = !strcmp(p[i].name, "test_stats");
    ASSERT_TRUE(named);
    end(&h);
    end(&cl);
    ASSERT_EQ_INT(stats_fold_dead(), 1);
    unchanged_since(b);
}

/* A reader that checks every counter only grows while slots are folded. */
static volatile int stop_reading;
static volatile int went_down;
static void *reader(void *arg) {
    (void)arg;
    uint64_t prev[STATS_NCOUNTERS], cur[STATS_NCOUNTERS];
    stats_read(prev);
    while (!stop_reading) {
        stats_read(cur);
        for (int c = 0; c < STATS_NCOUNTERS; c++)
            if (cur[c] < prev[c]) went_down = 1;
        memcpy(prev, cur, sizeof cur);
    }
    return NULL;
}

TEST(counters_never_go_down_while_slots_fold) {
    setup();
    uint64_t a[STATS_NCOUNTERS], b[STATS_NCOUNTERS];
    ASSERT_EQ_INT(stats_read(a), 0);
    pthread_t th;
    stop_reading = 0;
    went_down = 0;
    ASSERT_EQ_INT(pthread_create(&th, NULL, reader, NULL), 0);
    for (int i = 0; i < 40; i++) {
        spawn("die", 1000);
        ASSERT_TRUE(stats_fold_dead() >= 0);
    }
    stop_reading = 1;
    pthread_join(th, NULL);
    ASSERT_EQ_INT(went_down, 0);
    ASSERT_EQ_INT(stats_read(b), 0);
    ASSERT_TRUE(b[STATS_HANDSHAKES + STATS_T_POLLING] == a[STATS_HANDSHAKES + STATS_T_POLLING] + 40000);
}

TEST(a_file_of_another_layout_is_started_again) {
    char d[] = "/tmp/sio-unit-stats2-XXXXXX";
    ASSERT_TRUE(mkdtemp(d) != NULL);
    char p[200];
    snprintf(p, sizeof p, "%s/%s", d, STATS_FILE);
    int fd = open(p, O_CREAT | O_WRONLY, 0600);
    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ_INT(write(fd, "not a counters file", 19), 19);
    close(fd);
    char saved[64];
    strcpy(saved, dir);
    strcpy(dir, d);
    kid k = spawn("hold", 2); /* it opens and counts there */
    end(&k);
    strcpy(dir, saved);
    struct stat st;
    ASSERT_EQ_INT(stat(p, &st), 0);
    ASSERT_TRUE(st.st_size > 19);
    unlink(p);
    rmdir(d);
}

TEST(reason_names_are_node_s) {
    ASSERT_EQ_STR(stats_reason_name(STATS_R_PING_TIMEOUT), "ping timeout");
    ASSERT_EQ_INT(stats_reason_of("client namespace disconnect"), STATS_R_CLIENT_NSP);
    ASSERT_EQ_INT(stats_reason_of("server namespace disconnect"), STATS_R_SERVER_NSP);
    ASSERT_EQ_INT(stats_reason_of("no such reason"), STATS_R_OTHER);
    ASSERT_EQ_STR(stats_transport_name(STATS_T_WEBSOCKET), "websocket");
}

int main(int argc, char **argv) {
    const char *d = getenv("STATS_CHILD");
    if (d) return child(d, argc > 1 ? argv[1] : "die", argc > 2 ? atol(argv[2]) : 1);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return 1;
    exe[n] = 0;
    int rc = unit_main(argc, argv);
    if (dir[0]) {
        char p[200];
        snprintf(p, sizeof p, "%s/%s", dir, STATS_FILE);
        unlink(p);
        rmdir(dir);
    }
    return rc;
}
