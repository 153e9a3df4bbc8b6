/* access: client addresses, allowed origins, the allow_request command (see access.h). */
#include "server/access.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/netaddr.h"
#include "base/util.h"
#include "proto/json.h"

extern char **environ;

const char *access_client_addr(const server *s, const http_req *req, char *out, size_t n) {
    const char *peer = req->remote_addr ? req->remote_addr : "";
    snprintf(out, n, "%s", peer);
    const char *xff = NULL;
    for (size_t i = 0; req->headers && req->headers[i] && req->headers[i + 1] && i < 200; i += 2)
        if (!strcasecmp(req->headers[i], "x-forwarded-for")) xff = req->headers[i + 1];
    if (!xff || !s->cfg.trusted_proxies) return out;
    /* Right to left: each address is believed while the one after it (the
     * hop that wrote it) is a trusted proxy. */
    const char *end = xff + strlen(xff);
    while (end > xff && netaddr_in_list(s->cfg.trusted_proxies, out)) {
        const char *start = end;
        while (start > xff && start[-1] != ',') start--;
        const char *a = start, *b = end;
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        char cand[64];
        if (b - a <= 0 || (size_t)(b - a) >= sizeof cand) break;
        snprintf(cand, sizeof cand, "%.*s", (int)(b - a), a);
        if (!netaddr_valid(cand)) break;
        snprintf(out, n, "%s", cand);
        end = start > xff ? start - 1 : xff;
    }
    return out;
}

void access_forbidden(http_resp *r, const char *message) {
    r->status = 403;
    r->content_type = "application/json";
    buf_reset(&r->body);
    buf_puts(&r->body, "{\"code\":4,\"message\":");
    json_quote(&r->body, message, strlen(message));
    buf_puts(&r->body, "}");
}

/* The environment of the command: what util_env_kept keeps, and SIO_*
 * variables describing the request.  Strings owned by the returned array
 * (free with env_free); NULL on ENOMEM. */
static char **command_env(const server *s, const char *transport, const char *addr,
                          const char *origin) {
    size_t n = 0;
    for (char **e = environ; e && *e; e++) n++;
    char **env = calloc(n + 6, sizeof *env);
    if (!env) return NULL;
    size_t k = 0;
    int bad = 0;
    for (char **e = environ; e && *e; e++)
        if (util_env_kept(*e)) bad |= !(env[k++] = strdup(*e));
    bad |= asprintf(&env[k++], "SIO_STATE_DIR=%s", s->dir) < 0;
    bad |= asprintf(&env[k++], "SIO_TRANSPORT=%s", transport) < 0;
    bad |= asprintf(&env[k++], "SIO_REMOTE_ADDR=%s", addr) < 0;
    if (origin) bad |= asprintf(&env[k++], "SIO_ORIGIN=%s", origin) < 0;
    if (!bad) return env;
    for (size_t i = 0; i < k; i++) free(env[i]);
    free(env);
    return NULL;
}

static void env_free(char **env) {
    for (size_t i = 0; env && env[i]; i++) free(env[i]);
    free(env);
}

/* Runs `sh -c cmd` with input on stdin; keeps the first line of its
 * output in msg.  1 when it exited 0 within timeout_ms, 0 otherwise
 * (*why says what happened). */
static int run_command(const server *s, char **env, const char *input, char *msg, size_t msglen,
                       const char **why) {
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    *why = "could not be started";
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) {
        for (int i = 0; i < 2; i++) { if (in[i] >= 0) close(in[i]); if (out[i] >= 0) close(out[i]); }
        return 0;
    }
    char dir[4096] = "";
    if (s->cfg.source) { /* the config's directory, as handlers */
        snprintf(dir, sizeof dir, "%s", s->cfg.source);
        char *slash = strrchr(dir, '/');
        if (slash) slash == dir ? (void)(slash[1] = 0) : (void)(*slash = 0);
        else dir[0] = 0;
    }
    int fds[3] = {in[0], out[1], -1}, pid = 0;
    int rc = util_spawn_sh(s->cfg.allow_request, env, dir[0] ? dir : NULL, fds, &pid);
    close(in[0]);
    close(out[1]);
    if (rc) {
        close(in[1]);
        close(out[0]);
        return 0;
    }
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    int pfd = util_pidfd_open(pid);
    size_t inlen = strlen(input), sent = 0, got = 0;
    char line[512];
    int64_t deadline = util_now_ms() + s->cfg.allow_request_timeout;
    int exited = 0, status = 0, timed_out = 0;
    while (!exited) {
        int64_t left = deadline - util_now_ms();
        if (left <= 0) { timed_out = 1; break; }
        struct pollfd p[3] = {{.fd = in[1], .events = POLLOUT}, {.fd = out[0], .events = POLLIN},
                              {.fd = pfd, .events = POLLIN}};
        if (poll(p, 3, pfd >= 0 ? (int)left : (int)(left < 10 ? left : 10)) < 0 && errno != EINTR) break;
        if (in[1] >= 0 && (p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(in[1], input + sent, inlen - sent);
            if (w > 0) sent += (size_t)w;
            if (w < 0 && errno != EAGAIN) sent = inlen;
            if (sent == inlen) { close(in[1]); in[1] = -1; }
        }
        if (out[0] >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            char tmp[512];
            ssize_t r = read(out[0], tmp, sizeof tmp);
            if (r <= 0) { close(out[0]); out[0] = -1; }
            for (ssize_t i = 0; i < r && got + 1 < sizeof line; i++) line[got++] = tmp[i];
        }
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) exited = 1;
        else if (w < 0 && errno == ECHILD) exited = 1, status = -1; /* reaped elsewhere: unknown */
    }
    if (timed_out) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
        *why = "timed out (allow_request_timeout)";
    }
    if (in[1] >= 0) close(in[1]);
    if (out[0] >= 0) close(out[0]);
    if (pfd >= 0) close(pfd);
    line[got] = 0;
    line[strcspn(line, "\r\n")] = 0;
    snprintf(msg, msglen, "%s", line);
    if (timed_out) return 0;
    if (status == -1) { *why = "ended with an unknown status"; return 0; }
    if (WIFSIGNALED(status)) { *why = "was killed by a signal"; return 0; }
    *why = "refused";
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int access_handshake(const server *s, const http_req *req, const char *transport, char *message,
                     size_t n) {
    char addr[64];
    access_client_addr(s, req, addr, sizeof addr);
    snprintf(message, n, "Forbidden");
    if (!strcmp(transport, "websocket") && !http_origin_allowed(s, req->origin)) {
        char esc[256];
        log_info("refused a WebSocket handshake from %s: Origin %s is not in cors_origin", addr,
                 log_escape(esc, sizeof esc, req->origin, strlen(req->origin)));
        return ACCESS_REFUSE;
    }
    if (!s->cfg.allow_request) return ACCESS_ALLOW;
    http_req r = *req;
    r.remote_addr = addr;
    char *json = http_handshake_json(&r, util_now_ms());
    char **env = json ? command_env(s, transport, addr, req->origin) : NULL;
    char out[512] = "";
    const char *why = "could not be started (out of memory)";
    int ok = env && run_command(s, env, json, out, sizeof out, &why);
    env_free(env);
    free(json);
    if (ok) return ACCESS_ALLOW;
    if (out[0] && strcmp(why, "refused") == 0) snprintf(message, n, "%s", out);
    char esc[256];
    log_info("allow_request %s a %s handshake from %s%s%s", why, transport, addr, out[0] ? ": " : "",
             log_escape(esc, sizeof esc, out, strlen(out)));
    return ACCESS_REFUSE;
}
