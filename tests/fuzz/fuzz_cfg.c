/* fuzz_cfg: the config file parser (shared/base/cfg.c cfg_parse) on any
 * bytes, as stated, sio-fcgi, sio-front and sioctl read SIO_CONFIG.  An
 * accepted text gives settings in their documented ranges, "/" first among
 * the namespaces, exact names that cfg_nsp_find finds again and an [engine]
 * section named after engine_path; a refused one gives "line N: ..." and
 * the defaults; parsing is deterministic. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "base/cfg.h"
#include "fuzz.h"

static void check_ok(const cfg *c) {
    CHECK(c->ping_interval >= 50 && c->ping_interval <= 3600000);
    CHECK(c->ping_timeout >= 50 && c->ping_timeout <= 3600000);
    CHECK(c->connect_timeout >= 50 && c->upgrade_timeout >= 50);
    CHECK(c->max_http_buffer_size >= 1024 && c->max_http_buffer_size <= 100000000);
    CHECK(c->max_sessions >= 1 && c->map_size_mb >= 16 && c->fcgi_threads >= 1);
    CHECK(c->max_queue_bytes >= 1024 && c->max_log_bytes >= 65536);
    CHECK(c->per_message_deflate == 0 || c->per_message_deflate == 1);
    CHECK(c->durability == CFG_DURABILITY_FAST || c->durability == CFG_DURABILITY_SAFE);
    CHECK(c->allow_polling || c->allow_websocket);
    size_t pl = strlen(c->path);
    CHECK(pl >= 2 && c->path[0] == '/' && c->path[pl - 1] == '/');
    if (c->engine_path) CHECK(c->engine.name && !strcmp(c->engine.name, c->engine_path));
    CHECK(c->redis_prefix && *c->redis_prefix && strlen(c->redis_prefix) <= 128);
    CHECK(c->cors_origin == NULL || *c->cors_origin);
    CHECK(c->nnsp >= 1 && !c->nsps[0].is_pattern && !strcmp(c->nsps[0].name, "/"));
    CHECK(cfg_nsp_find(c, "/") == &c->nsps[0]);
    for (size_t i = 0; i < c->nnsp; i++) {
        const cfg_nsp *n = &c->nsps[i];
        for (size_t k = 0; k < n->nkv; k++) {
            CHECK(*n->kv[k].key);
            CHECK(cfg_nsp_get(n, n->kv[k].key) != NULL);
        }
        if (n->is_pattern) continue;
        size_t l = strlen(n->name);
        CHECK(l >= 1 && l <= 128 && n->name[0] == '/' && !strchr(n->name, ','));
        const cfg_nsp *f = cfg_nsp_find(c, n->name);
        CHECK(f == n); /* exact names are unique and found before patterns */
    }
    /* names a client could send: only short ones (a pattern is the admin's) */
    static const char *const probe[] = {"/admin", "/chat-1", "/x", "/socket.io", ""};
    for (size_t i = 0; i < sizeof probe / sizeof *probe; i++) {
        const cfg_nsp *f = cfg_nsp_find(c, probe[i]);
        CHECK(!f || (f >= c->nsps && f < c->nsps + c->nnsp));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cfg c;
    char err[256] = "";
    int rc = cfg_parse(&c, (const char *)data, size, err, sizeof err);
    CHECK(rc == 0 || rc == -EINVAL);
    if (rc) {
        CHECK(!strncmp(err, "line ", 5));
        CHECK(c.nnsp == 1 && !strcmp(c.nsps[0].name, "/") && !c.engine_path && !c.cors_origin);
    } else {
        check_ok(&c);
    }
    cfg d;
    char err2[256] = "";
    int rc2 = cfg_parse(&d, (const char *)data, size, err2, sizeof err2);
    CHECK(rc2 == rc && !strcmp(err, err2) && d.nnsp == c.nnsp);
    cfg_free(&d);
    cfg_free(&c);
    return 0;
}
