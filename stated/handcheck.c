/* handcheck: the config's handler commands, checked at start (see handcheck.h). */
#include "handcheck.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "dispatch.h"

/* The keys whose value is a command (dispatch.h). */
static int is_command_key(const char *k) {
    static const char *const keys[] = {"auth", "connection", "disconnect", "any", "process", "message", NULL};
    for (size_t i = 0; keys[i]; i++)
        if (!strcmp(keys[i], k)) return 1;
    return !strncmp(k, "event.", 6) || !strncmp(k, "server_event.", 13);
}

/* Words the shell runs itself: what they run is not a file to look for. */
static int is_shell_word(const char *w) {
    static const char *const words[] = {
        ".", ":", "[", "alias", "bg", "break", "cd", "chdir", "continue", "echo", "eval", "exit",
        "export", "false", "fc", "fg", "getopts", "hash", "jobs", "kill", "local", "printf", "pwd",
        "read", "readonly", "return", "set", "shift", "test", "times", "trap", "true", "type",
        "ulimit", "umask", "unalias", "unset", "wait", "if", "then", "else", "elif", "fi", "case",
        "esac", "for", "while", "until", "do", "done", "{", "}", "!", "function", NULL};
    for (size_t i = 0; words[i]; i++)
        if (!strcmp(words[i], w)) return 1;
    return 0;
}

/* The next shell word of *pp (quotes and backslashes removed) into out:
 * 1, 0 at the end of the simple command, -1 when only the shell could say
 * (an expansion, a glob, a redirection or operator first, too long). */
static int next_word(const char **pp, char *out, size_t n) {
    const char *p = *pp;
    while (*p == ' ' || *p == '\t') p++;
    if (!*p || *p == '#' || *p == '\n' || *p == ';' || *p == '&' || *p == '|') return 0;
    size_t k = 0;
    for (; *p && !strchr(" \t\n;&|", *p); p++) {
        const char *e = p + 1;
        if (strchr("$`*?[<>()", *p) || (*p == '~' && k == 0)) return -1;
        if (*p == '\'' || *p == '"') {
            while (*e && *e != *p) {
                if (*p == '"' && strchr("$`\\", *e)) return -1;
                e++;
            }
            if (!*e || k + (size_t)(e - p) >= n) return -1;
            memcpy(out + k, p + 1, (size_t)(e - p - 1));
            k += (size_t)(e - p - 1);
            p = e;
            continue;
        }
        if (*p == '\\' && !*++p) return -1;
        if (k + 1 >= n) return -1;
        out[k++] = *p;
    }
    out[k] = 0;
    *pp = p;
    return k ? 1 : -1;
}

/* NAME=value: an assignment before the command. */
static int is_assignment(const char *w) {
    if (!(*w == '_' || (*w >= 'A' && *w <= 'Z') || (*w >= 'a' && *w <= 'z'))) return 0;
    while (*w == '_' || (*w >= 'A' && *w <= 'Z') || (*w >= 'a' && *w <= 'z') || (*w >= '0' && *w <= '9')) w++;
    return *w == '=';
}

static const char NOT_EXEC[] = "is not executable (chmod +x?)";

/* What is wrong with a file the shell would run (x) or read (!x), or NULL. */
static const char *file_fault(const char *path, int x) {
    struct stat st;
    if (stat(path, &st)) return errno == ENOENT || errno == ENOTDIR ? "does not exist" : strerror(errno);
    if (S_ISDIR(st.st_mode)) return "is a folder";
    if (access(path, x ? X_OK : R_OK)) return x ? NOT_EXEC : "cannot be read";
    return NULL;
}

/* Resolves word as execvp does (a '/' in it: from cwd; else each PATH
 * directory) or, with !x, a script for sh (cwd, then PATH).  NULL when
 * found, else a sentence about it in why. */
static const char *resolve(const char *word, const char *cwd, const char *path, int x, char *why,
                           size_t n) {
    char full[PATH_MAX];
    const char *fault;
    if (strchr(word, '/') || !x) {
        const char *rel = word;
        while (rel[0] == '.' && rel[1] == '/') rel += 2;
        snprintf(full, sizeof full, "%s%s%s", word[0] == '/' ? "" : cwd, word[0] == '/' ? "" : "/", rel);
        if (!(fault = file_fault(full, x))) return NULL;
        if (strchr(word, '/')) {
            snprintf(why, n, "%s %s", full, fault);
            return why;
        }
    }
    const char *nonexec = NULL;
    for (const char *p = path; *p;) {
        const char *colon = strchr(p, ':');
        size_t l = colon ? (size_t)(colon - p) : strlen(p);
        if (l && l < sizeof full - 2 - strlen(word)) {
            snprintf(full, sizeof full, "%.*s/%s", (int)l, p, word);
            if (!(fault = file_fault(full, x))) return NULL;
            if (fault == NOT_EXEC) nonexec = fault;
        }
        p += l + (colon != NULL);
    }
    if (nonexec) snprintf(why, n, "%s is in PATH but %s", word, nonexec);
    else if (x) snprintf(why, n, "%s is not found in PATH (%s)", word, path);
    else snprintf(why, n, "%s does not exist (in %s or PATH)", word, cwd);
    return why;
}

/* What is wrong with one command, or NULL (also when only the shell knows). */
static const char *command_fault(const char *cmd, const char *cwd, const char *path, char *why, size_t n) {
    char w[PATH_MAX];
    const char *p = cmd;
    int rc;
    while ((rc = next_word(&p, w, sizeof w)) == 1 && is_assignment(w)) {}
    if (rc != 1) return NULL;
    if (!strcmp(w, "exec") || !strcmp(w, "command")) {
        if (next_word(&p, w, sizeof w) != 1 || w[0] == '-') return NULL;
    }
    if (is_shell_word(w)) return NULL;
    if (resolve(w, cwd, path, 1, why, n)) return why;
    const char *base = strrchr(w, '/') ? strrchr(w, '/') + 1 : w;
    if (strcmp(base, "sh") && strcmp(base, "bash") && strcmp(base, "dash")) return NULL;
    if (next_word(&p, w, sizeof w) != 1 || w[0] == '-') return NULL; /* sh -c ..., or stdin */
    return resolve(w, cwd, path, 0, why, n);
}

/* Checks one section's commands; 0 or -ENOENT with err set. */
static int check_section(const cfg_nsp *sec, const char *source, const char *cwd, const char *path,
                         char *err, size_t errlen) {
    char why[PATH_MAX + 256];
    for (size_t i = 0; sec && i < sec->nkv; i++) {
        const cfg_kv *kv = &sec->kv[i];
        if (!is_command_key(kv->key) || !command_fault(kv->value, cwd, path, why, sizeof why)) continue;
        snprintf(err, errlen, "config %s: line %d: %s = %s: %s", source, kv->line, kv->key, kv->value, why);
        return -ENOENT;
    }
    return 0;
}

int handcheck_config(const server *srv, char *err, size_t errlen) {
    const cfg *c = &srv->cfg;
    char cwd[PATH_MAX];
    if (dispatch_cwd(srv, cwd, sizeof cwd) && !getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, ".");
    buf path = BUF_INIT;
    if (dispatch_path(&path)) return -ENOMEM;
    const char *source = c->source ? c->source : "(published by stated)";
    int rc = check_section(&c->engine, source, cwd, path.data, err, errlen);
    for (size_t i = 0; !rc && i < c->nnsp; i++) rc = check_section(&c->nsps[i], source, cwd, path.data, err, errlen);
    buf_free(&path);
    return rc;
}
