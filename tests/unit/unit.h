/* unit.h: a tiny header-only test framework.
 *
 *   #include "unit.h"
 *   TEST(adds) { ASSERT_EQ_INT(1 + 1, 2); }
 *   UNIT_MAIN()
 *
 * Each TEST registers itself before main runs.  A failing assertion prints
 * file:line with both values and ends the current test only (it jumps back to
 * the runner, so it also works inside helper functions; cleanup after it is
 * skipped).  The binary prints "ok NAME" or "FAIL NAME: ..." per test, then
 * exactly "N passed, N failed" and exits 1 when anything failed.  An argument
 * runs only the tests whose name contains it.
 *
 * For table-driven tests, UNIT_CTX("row %d", i) names the row being checked;
 * a failure message then includes it.  Include this header in one .c file per
 * binary (its definitions are static). */
#ifndef UNIT_H
#define UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct unit_test {
    const char *name;
    void (*fn)(void);
    struct unit_test *next;
} unit_test;

static unit_test *unit_head;
static unit_test **unit_tail = &unit_head;
static jmp_buf unit_jmp;
static char unit_ctx_buf[256];

__attribute__((unused)) static void unit_register(unit_test *t) {
    *unit_tail = t;
    unit_tail = &t->next;
}

#define TEST(name)                                                            \
    static void unit_fn_##name(void);                                         \
    static unit_test unit_rec_##name = {#name, unit_fn_##name, NULL};         \
    __attribute__((constructor)) static void unit_reg_##name(void) {          \
        unit_register(&unit_rec_##name);                                      \
    }                                                                         \
    static void unit_fn_##name(void)

__attribute__((format(printf, 1, 2), unused)) static void unit_ctx(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(unit_ctx_buf, sizeof unit_ctx_buf, fmt, ap);
    va_end(ap);
}
#define UNIT_CTX(...) unit_ctx(__VA_ARGS__)

static char unit_msg[2048];
static size_t unit_msg_len;

__attribute__((format(printf, 1, 2), unused)) static void unit_msgf(const char *fmt, ...) {
    va_list ap;
    if (unit_msg_len >= sizeof unit_msg - 1) return;
    va_start(ap, fmt);
    int n = vsnprintf(unit_msg + unit_msg_len, sizeof unit_msg - unit_msg_len, fmt, ap);
    va_end(ap);
    if (n > 0) unit_msg_len += (size_t)n;
    if (unit_msg_len > sizeof unit_msg - 1) unit_msg_len = sizeof unit_msg - 1;
}

__attribute__((unused)) static void unit_where(const char *file, int line) {
    unit_msg_len = 0;
    unit_msg[0] = 0;
    unit_msgf("%s:%d: ", file, line);
    if (unit_ctx_buf[0]) unit_msgf("[%s] ", unit_ctx_buf);
}

/* Records the failure and leaves the current test. */
__attribute__((format(printf, 3, 4), noreturn, unused)) static void
unit_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    unit_where(file, line);
    va_start(ap, fmt);
    if (unit_msg_len < sizeof unit_msg - 1)
        vsnprintf(unit_msg + unit_msg_len, sizeof unit_msg - unit_msg_len, fmt, ap);
    va_end(ap);
    longjmp(unit_jmp, 1);
}

/* Appends bytes printably: \n, \xNN, and a mark when truncated. */
__attribute__((unused)) static void unit_show(const void *p, size_t len) {
    const unsigned char *s = p;
    size_t max = len > 300 ? 300 : len;
    unit_msgf("\"");
    for (size_t i = 0; i < max; i++) {
        if (s[i] == '"' || s[i] == '\\') unit_msgf("\\%c", s[i]);
        else if (s[i] == '\n') unit_msgf("\\n");
        else if (s[i] >= 0x20 && s[i] < 0x7f) unit_msgf("%c", s[i]);
        else unit_msgf("\\x%02x", s[i]);
    }
    unit_msgf("\"");
    if (max < len) unit_msgf("... (%zu bytes)", len);
}

__attribute__((unused)) static void unit_mem(const char *file, int line, const char *ea,
                                             const void *a, size_t alen, const char *eb,
                                             const void *b, size_t blen) {
    if (alen == blen && (alen == 0 || memcmp(a, b, alen) == 0)) return;
    unit_where(file, line);
    unit_msgf("%s == %s\n    got:  ", ea, eb);
    unit_show(a, alen);
    unit_msgf("\n    want: ");
    unit_show(b, blen);
    longjmp(unit_jmp, 1);
}

#define ASSERT_TRUE(c)                                                        \
    do {                                                                      \
        if (!(c)) unit_fail(__FILE__, __LINE__, "expected true: %s", #c);     \
    } while (0)

#define ASSERT_EQ_INT(a, b)                                                   \
    do {                                                                      \
        long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);         \
        if (unit_a_ != unit_b_)                                               \
            unit_fail(__FILE__, __LINE__, "%s == %s: got %lld, want %lld", #a, \
                      #b, unit_a_, unit_b_);                                  \
    } while (0)

/* NUL-terminated strings; NULL equals only NULL. */
#define ASSERT_EQ_STR(a, b)                                                   \
    do {                                                                      \
        const char *unit_a_ = (a), *unit_b_ = (b);                            \
        if (!unit_a_ || !unit_b_) {                                           \
            if (unit_a_ != unit_b_)                                           \
                unit_fail(__FILE__, __LINE__, "%s == %s: got %s%s%s, want %s%s%s", \
                          #a, #b, unit_a_ ? "\"" : "", unit_a_ ? unit_a_ : "NULL", \
                          unit_a_ ? "\"" : "", unit_b_ ? "\"" : "",           \
                          unit_b_ ? unit_b_ : "NULL", unit_b_ ? "\"" : "");   \
        } else {                                                              \
            unit_mem(__FILE__, __LINE__, #a, unit_a_, strlen(unit_a_), #b,    \
                     unit_b_, strlen(unit_b_));                               \
        }                                                                     \
    } while (0)

/* Byte ranges: ASSERT_MEM(got, got_len, want, want_len). */
#define ASSERT_MEM(a, alen, b, blen)                                          \
    unit_mem(__FILE__, __LINE__, #a, (a), (alen), #b, (b), (blen))

/* Runs one test: 1 when it passed. */
__attribute__((unused)) static int unit_run(const unit_test *t) {
    unit_ctx_buf[0] = 0;
    unit_msg[0] = 0;
    if (setjmp(unit_jmp)) return 0;
    t->fn();
    return 1;
}

__attribute__((unused)) static int unit_main(int argc, char **argv) {
    int passed = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (const unit_test *t = unit_head; t; t = t->next) {
        if (argc > 1 && !strstr(t->name, argv[1])) continue;
        if (unit_run(t)) {
            printf("ok %s\n", t->name);
            passed++;
        } else {
            printf("FAIL %s: %s\n", t->name, unit_msg);
            failed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#define UNIT_MAIN()                                                           \
    int main(int argc, char **argv) { return unit_main(argc, argv); }

#endif
