/* plugin: in-process handlers (see plugin.h). */
#include "handlers/plugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/inbox.h"
#include "base/log.h"
#include "server/ops.h"
#include "handlers/sioh.h"

typedef int (*plugin_fn)(const sioh_event *ev);

/* One entry per namespace section of the config (same index), NULL: none.
 * One engine per process, so one table. */
static plugin_fn *g_fns;
static size_t g_nfns;
static int g_any; /* some namespace has one */

/* FILE as a path: absolute as given, else in the running program's folder. */
static int resolve(const char *file, char *out, size_t n) {
    char dir[PATH_MAX] = ".";
    if (file[0] != '/') {
        ssize_t len = readlink("/proc/self/exe", dir, sizeof dir - 1);
        if (len > 0) {
            dir[len] = 0;
            char *slash = strrchr(dir, '/');
            if (slash) *slash = 0;
        } else {
            strcpy(dir, ".");
        }
    }
    int w = file[0] == '/' ? snprintf(out, n, "%s", file) : snprintf(out, n, "%s/%s", dir, file);
    return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}

int plugin_load(engine *e, char *err, size_t errlen) {
    const cfg *c = &e->cfg;
    free(g_fns);
    g_fns = calloc(c->nnsp ? c->nnsp : 1, sizeof *g_fns);
    if (!g_fns) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    g_nfns = c->nnsp;
    g_any = 0;
    for (size_t i = 0; i < c->nnsp; i++) {
        const char *file = cfg_nsp_get(&c->nsps[i], "plugin");
        if (!file) continue;
        char path[PATH_MAX * 2];
        if (resolve(file, path, sizeof path)) {
            snprintf(err, errlen, "namespace %s: plugin path too long", c->nsps[i].name);
            return -ENAMETOOLONG;
        }
        /* The handle stays open for the life of the process. */
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            snprintf(err, errlen, "namespace %s: cannot load plugin %s: %s", c->nsps[i].name, path,
                     dlerror());
            return -ENOENT;
        }
        g_fns[i] = (plugin_fn)(uintptr_t)dlsym(h, "sio_plugin_event");
        if (!g_fns[i]) {
            snprintf(err, errlen, "namespace %s: plugin %s defines no sio_plugin_event()",
                     c->nsps[i].name, path);
            dlclose(h);
            return -ENOENT;
        }
        g_any = 1;
        log_info("namespace %s: plugin %s loaded", c->nsps[i].name, path);
    }
    return 0;
}

/* Applies the plugin's output (JSON lines) in t. */
static int apply(engine *e, store_txn *t, const char *out, size_t len, const char *self,
                 uint64_t *seq) {
    char err[256], esc[320];
    while (len) {
        const char *nl = memchr(out, '\n', len);
        size_t n = nl ? (size_t)(nl - out) : len;
        cJSON *a = cJSON_ParseWithLength(out, n);
        uint64_t s = 0;
        int rc = a ? ops_apply_json(e, t, a, self, &s, err, sizeof err) : OPS_EUSAGE;
        if (!a) snprintf(err, sizeof err, "not JSON");
        cJSON_Delete(a);
        if (rc < 0) return rc;
        if (rc == OPS_EUSAGE)
            log_warn("plugin action refused (%s): %s", err, log_escape(esc, sizeof esc, out, n));
        if (s && seq) *seq = s;
        out += n + (nl ? 1 : 0);
        len -= n + (nl ? 1 : 0);
    }
    return 0;
}

int plugin_run(engine *e, store_txn *t, const char *type, const store_socket *so,
               const cJSON *extra, uint64_t *seq) {
    if (!g_any) return 0;
    const cfg_nsp *n = cfg_nsp_find(&e->cfg, so->nsp);
    size_t i = n ? (size_t)(n - e->cfg.nsps) : SIZE_MAX;
    if (i >= g_nfns || !g_fns[i]) return 0;
    cJSON *rec = inbox_record(type, so, extra);
    if (!rec) return -ENOMEM;
    sioh_event ev = SIOH_EVENT_INIT;
    sioh_event_from_json(&ev, rec);
    sioh_host_begin();
    int handled = g_fns[i](&ev);
    size_t len;
    const char *out = sioh_host_end(&len);
    sioh_event_clear(&ev);
    if (handled < 0) {
        char esc[160];
        log_warn("namespace %s: plugin failed on a %s (%d): passed on",
                 log_escape(esc, sizeof esc, so->nsp, strlen(so->nsp)), type, handled);
    }
    if (handled <= 0) return 0; /* what it wrote is dropped with the event */
    int rc = apply(e, t, out, len, so->id, seq);
    return rc < 0 ? rc : 1;
}
