/* plugin: in-process handlers (see plugin.h). */
#include "handlers/plugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/json.h"
#include "store/inbox.h"
#include "base/log.h"
#include "base/paths.h"
#include "server/actions.h"
#include "handlers/sioh.h"

typedef int (*plugin_fn)(const sioh_event *ev);

/* What plugin_load registers as the server's event hook argument: one
 * entry per namespace section of the config (same index), NULL: none. */
typedef struct plugins {
    plugin_fn *fns;
    size_t n;
} plugins;

/* FILE as a path: absolute as given, else in the plugin folder (paths.h:
 * the programs' folder in a checkout, PREFIX/lib/sio when installed). */
static int resolve(const char *file, char *out, size_t n) {
    char dir[PATH_MAX];
    if (file[0] != '/' && paths_default(PATHS_PLUGINS, dir, sizeof dir)) return -ENAMETOOLONG;
    int w = file[0] == '/' ? snprintf(out, n, "%s", file) : snprintf(out, n, "%s/%s", dir, file);
    return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}

static int run(void *arg, server *srv, store_txn *t, const char *type, const store_socket *so,
               const cJSON *extra, uint64_t *seq);

/* Loads the plugin a section names, if any, into *slot; 0 or <0 with err. */
static int load_one(const cfg_nsp *sec, plugin_fn *slot, char *err, size_t errlen) {
    const char *file = cfg_nsp_get(sec, "plugin");
    if (!file) return 0;
    char path[PATH_MAX * 2];
    if (resolve(file, path, sizeof path)) {
        snprintf(err, errlen, "namespace %s: plugin path too long", sec->name);
        return -ENAMETOOLONG;
    }
    /* The handle stays open for the life of the process. */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, errlen, "namespace %s: cannot load plugin %s: %s", sec->name, path, dlerror());
        return -ENOENT;
    }
    *slot = (plugin_fn)(uintptr_t)dlsym(h, "sio_plugin_event");
    if (!*slot) {
        snprintf(err, errlen, "namespace %s: plugin %s defines no sio_plugin_event()", sec->name,
                 path);
        dlclose(h);
        return -ENOENT;
    }
    log_info("namespace %s: plugin %s loaded", sec->name, path);
    return 0;
}

int plugin_load(server *srv, char *err, size_t errlen) {
    const cfg *c = &srv->cfg;
    plugin_unload(srv);
    plugins *p = calloc(1, sizeof *p);
    if (p) p->fns = calloc(c->nnsp ? c->nnsp : 1, sizeof *p->fns);
    if (!p || !p->fns) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    p->n = c->nnsp;
    int any = 0;
    for (size_t i = 0; i < c->nnsp; i++) {
        int rc = load_one(&c->nsps[i], &p->fns[i], err, errlen);
        if (rc) {
            free(p->fns);
            free(p);
            return rc;
        }
        any |= p->fns[i] != NULL;
    }
    if (!any) { /* no hook: events go straight to the inbox */
        free(p->fns);
        free(p);
        return 0;
    }
    srv->on_event = run;
    srv->on_event_arg = p;
    return 0;
}

void plugin_unload(server *srv) {
    if (srv->on_event != run) return;
    plugins *p = srv->on_event_arg;
    free(p->fns);
    free(p);
    srv->on_event = NULL;
    srv->on_event_arg = NULL;
}

/* Applies the plugin's output (JSON lines) in t. */
static int apply_lines(server *srv, store_txn *t, const char *out, size_t len, const char *self,
                       uint64_t *seq) {
    char err[256], esc[320];
    while (len) {
        const char *nl = memchr(out, '\n', len);
        size_t n = nl ? (size_t)(nl - out) : len;
        cJSON *a = json_parse(out, n);
        uint64_t s = 0;
        int rc = a ? actions_apply_json(srv, t, a, self, &s, err, sizeof err) : ACTIONS_EUSAGE;
        if (!a) snprintf(err, sizeof err, "not JSON");
        cJSON_Delete(a);
        if (rc < 0) return rc;
        if (rc == ACTIONS_EUSAGE || rc == ACTIONS_ELIMIT)
            log_warn("plugin action refused (%s): %s", err, log_escape(esc, sizeof esc, out, n));
        if (s && seq) *seq = s;
        out += n + (nl ? 1 : 0);
        len -= n + (nl ? 1 : 0);
    }
    return 0;
}

/* Applies the plugin's output in t, in the order of its calls: the JSON
 * lines, and between them the acks sioh kept as they are. */
static int apply(server *srv, store_txn *t, const char *out, size_t len, const char *self,
                 uint64_t *seq) {
    size_t done = 0;
    const sioh_hosted_ack *a;
    for (size_t i = 0; (a = sioh_host_ack(i)) != NULL; i++) {
        int rc = apply_lines(srv, t, out + done, a->at - done, self, seq);
        if (rc < 0) return rc;
        done = a->at;
        char err[256];
        uint64_t s = 0;
        rc = actions_ack(t, a->socket, a->id, a->args, &s, err, sizeof err);
        if (rc < 0) return rc;
        if (rc) log_warn("plugin action refused (%s): ack %lld", err, a->id);
        if (s && seq) *seq = s;
    }
    return apply_lines(srv, t, out + done, len - done, self, seq);
}

static int run(void *arg, server *srv, store_txn *t, const char *type, const store_socket *so,
               const cJSON *extra, uint64_t *seq) {
    plugins *p = arg;
    const cfg_nsp *n = cfg_nsp_find(&srv->cfg, so->nsp);
    size_t i = n ? (size_t)(n - srv->cfg.nsps) : SIZE_MAX;
    if (i >= p->n || !p->fns[i]) return 0;
    cJSON *rec = inbox_record(type, so, extra);
    if (!rec) return -ENOMEM;
    sioh_event ev = SIOH_EVENT_INIT;
    sioh_event_from_json(&ev, rec);
    sioh_host_begin();
    int handled = p->fns[i](&ev);
    size_t len;
    const char *out = sioh_host_end(&len);
    sioh_event_clear(&ev);
    if (handled < 0) {
        char esc[160];
        log_warn("namespace %s: plugin failed on a %s (%d): passed on",
                 log_escape(esc, sizeof esc, so->nsp, strlen(so->nsp)), type, handled);
    }
    if (handled <= 0) return 0; /* what it wrote is dropped with the event */
    int rc = apply(srv, t, out, len, so->id, seq);
    return rc < 0 ? rc : 1;
}
