/* fixture.h: a real store in a temporary directory for unit tests, and
 * a few fixed ids.  Include after unit.h. */
#ifndef UNIT_FIXTURE_H
#define UNIT_FIXTURE_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

__attribute__((unused)) static store *open_tmp(void) {
    char tmpl[] = "/tmp/sio-unit-store-XXXXXX";
    char *d = mkdtemp(tmpl);
    ASSERT_TRUE(d != NULL);
    store *s = NULL;
    store_opts o = {.create = 1, .map_size = 64 << 20};
    ASSERT_EQ_INT(store_open(&s, d, &o), 0);
    return s;
}

__attribute__((unused)) static void drop(store *s) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", store_dir(s));
    store_close(s);
    if (system(cmd)) {
    }
}

__attribute__((unused)) static store_socket mksock(const char *id, const char *sid, const char *nsp, uint64_t seq) {
    store_socket so;
    memset(&so, 0, sizeof so);
    strcpy(so.id, id);
    strcpy(so.sid, sid);
    strcpy(so.nsp, nsp);
    so.created_seq = seq;
    so.data = "{\"auth\":{}}";
    so.data_len = strlen(so.data);
    return so;
}

/* Appends len-byte log records, per_txn to a transaction, until a write
 * fails; returns that error, *stored the records that made it. */
__attribute__((unused)) static int fill_log(store *s, size_t len, int per_txn, uint64_t *stored) {
    char *rec = malloc(len);
    if (!rec) return -ENOMEM;
    memset(rec, 'r', len);
    for (;;) {
        store_txn *t;
        int rc = store_begin(s, 1, &t);
        for (int i = 0; !rc && i < per_txn; i++) rc = store_log_append(t, rec, len, NULL);
        if (!rc) rc = store_commit(t);
        else store_abort(t);
        if (rc) {
            free(rec);
            return rc;
        }
        *stored += (uint64_t)per_txn;
    }
}

#define SID1 "AAAAAAAAAAAAAAAAAAA1"
#define SID2 "AAAAAAAAAAAAAAAAAAA2"
#define SK1 "SSSSSSSSSSSSSSSSSSS1"
#define SK2 "SSSSSSSSSSSSSSSSSSS2"
#define SK3 "SSSSSSSSSSSSSSSSSSS3"

/* A store_log_scan callback that keeps the (last) record it sees. */
typedef struct grabbed {
    const void *p;
    size_t l;
} grabbed;
__attribute__((unused)) static int grab(void *arg, uint64_t sq, const void *r, size_t l) {
    (void)sq;
    grabbed *g = arg;
    g->p = r;
    g->l = l;
    return 0;
}

#endif
