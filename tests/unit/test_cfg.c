/* Unit tests for cfg.c: defaults, namespaces and patterns, errors with line
 * numbers, numeric limits. */
#include <errno.h>
#include <string.h>

#include "base/cfg.h"
#include "unit.h"

static int parse(cfg *c, const char *text, char *err) {
    return cfg_parse(c, text, strlen(text), err, 256);
}

TEST(defaults_match_the_node_server) {
    cfg c;
    cfg_defaults(&c);
    ASSERT_EQ_INT((int)c.ping_interval, 25000);
    ASSERT_EQ_INT((int)c.ping_timeout, 20000);
    ASSERT_EQ_INT((int)c.connect_timeout, 45000);
    ASSERT_EQ_INT((int)c.upgrade_timeout, 10000);
    ASSERT_EQ_INT((int)c.http_timeout, 20000);
    ASSERT_EQ_INT((int)c.max_http_buffer_size, 1000000);
    ASSERT_EQ_STR(c.path, "/socket.io/");
    ASSERT_TRUE(cfg_nsp_find(&c, "/") != NULL);
    ASSERT_TRUE(cfg_nsp_find(&c, "/chat") == NULL);
    cfg_free(&c);
}

TEST(namespaces_exact_and_patterns) {
    cfg c;
    char err[256] = "";
    ASSERT_EQ_INT(parse(&c, "# comment\nping_interval = 300 # trailing\n\n[namespace /chat]\n"
                            "[namespace ~/room-[0-9]+]\n[namespace /]\n", err), 0);
    ASSERT_EQ_INT((int)c.ping_interval, 300);
    ASSERT_TRUE(cfg_nsp_find(&c, "/chat") != NULL);
    ASSERT_TRUE(cfg_nsp_find(&c, "/room-12") != NULL);
    ASSERT_TRUE(cfg_nsp_find(&c, "/room-12x") == NULL); /* anchored */
    ASSERT_TRUE(cfg_nsp_find(&c, "/xroom-1") == NULL);
    ASSERT_TRUE(cfg_nsp_find(&c, "/") != NULL);
    ASSERT_EQ_INT((int)c.nnsp, 3); /* "/" is not duplicated */
    cfg_free(&c);
}

TEST(errors_name_the_line_and_reset_to_defaults) {
    static const struct { const char *text; const char *err; } rows[] = {
        {"ping_interval = 10\n", "line 1: ping_interval must be an integer in [50, 3600000]"},
        {"\n\nbogus = 1\n", "line 3: unknown setting 'bogus'"},
        {"ping_timeout = 12abc\n", "line 1: ping_timeout must be an integer"},
        {"[namespace chat]\n", "line 1: namespace must start with '/'"},
        {"[nsp /x]\n", "line 1: unknown section"},
        {"[namespace ~(]\n", "line 1: bad namespace pattern"},
        {"[namespace /a]\nfoo = bar\n", "line 2: unknown namespace setting 'foo'"},
        {"just words\n", "line 1: expected key = value"},
        {"path = socket.io\n", "line 1: path must start and end with '/'"},
        {"max_http_buffer_size = 100\n", "line 1: max_http_buffer_size must be an integer in [1024"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        UNIT_CTX("row %zu", i);
        cfg c;
        char err[256] = "";
        ASSERT_EQ_INT(parse(&c, rows[i].text, err), -EINVAL);
        ASSERT_TRUE(strncmp(err, rows[i].err, strlen(rows[i].err)) == 0 || (printf("got: %s\n", err), 0));
        ASSERT_EQ_INT((int)c.ping_interval, 25000);
        cfg_free(&c);
    }
}

TEST(transports_option) {
    cfg c;
    char err[256] = "";
    ASSERT_EQ_INT(parse(&c, "transports = polling\n", err), 0);
    ASSERT_EQ_INT(c.allow_polling, 1);
    ASSERT_EQ_INT(c.allow_websocket, 0);
    cfg_free(&c);
    ASSERT_EQ_INT(parse(&c, "transports = websocket, polling\n", err), 0);
    ASSERT_EQ_INT(c.allow_polling + c.allow_websocket, 2);
    cfg_free(&c);
    ASSERT_EQ_INT(parse(&c, "transports = carrier-pigeon\n", err), -EINVAL);
    cfg_free(&c);
}

TEST(durability_option) {
    cfg c;
    char err[256] = "";
    ASSERT_EQ_INT(parse(&c, "", err), 0);
    ASSERT_EQ_INT(c.durability, CFG_DURABILITY_FAST);
    cfg_free(&c);
    ASSERT_EQ_INT(parse(&c, "durability = safe\n", err), 0);
    ASSERT_EQ_INT(c.durability, CFG_DURABILITY_SAFE);
    cfg_free(&c);
    ASSERT_EQ_INT(parse(&c, "durability = fast\n", err), 0);
    ASSERT_EQ_INT(c.durability, CFG_DURABILITY_FAST);
    cfg_free(&c);
    ASSERT_EQ_INT(parse(&c, "durability = paranoid\n", err), -EINVAL);
    ASSERT_TRUE(strstr(err, "line 1: durability must be fast or safe") != NULL);
    cfg_free(&c);
}

TEST(access_and_per_socket_keys) {
    cfg c;
    char err[256] = "";
    cfg_defaults(&c);
    ASSERT_EQ_INT((int)c.allow_request_timeout, 2000);
    ASSERT_EQ_INT((int)c.max_rooms_per_socket, 10000);
    ASSERT_EQ_INT((int)c.max_queue_packets, 100000);
    ASSERT_EQ_INT((int)c.max_handler_queue, 1000);
    ASSERT_TRUE(!c.trusted_proxies && !c.allow_request && !c.state_group);
    cfg_free(&c);
    ASSERT_EQ_INT(parse(&c, "trusted_proxies = 127.0.0.1, 10.0.0.0/8\nallow_request = ./ok.sh --x\n"
                            "state_group = sio\nmax_rooms_per_socket = 3\n", err), 0);
    ASSERT_EQ_STR(c.trusted_proxies, "127.0.0.1, 10.0.0.0/8");
    ASSERT_EQ_STR(c.allow_request, "./ok.sh --x");
    ASSERT_EQ_STR(c.state_group, "sio");
    ASSERT_EQ_INT((int)c.max_rooms_per_socket, 3);
    cfg_free(&c);
    ASSERT_EQ_INT(parse(&c, "\ntrusted_proxies = 10.0.0.0/40\n", err), -EINVAL);
    ASSERT_TRUE(strstr(err, "line 2: trusted_proxies: '10.0.0.0/40'") != NULL);
    cfg_free(&c);
    ASSERT_EQ_INT(parse(&c, "state_group = a b\n", err), -EINVAL);
    cfg_free(&c);
    ASSERT_EQ_INT(parse(&c, "max_rooms_per_socket = 0\n", err), -EINVAL);
    cfg_free(&c);
}

/* Found by fuzz_cfg: "x++++..." (and nested intervals) made glibc's regcomp
 * allocate memory exponential in the nesting, over 1 GB for 60 '+'; a
 * pattern over 256 bytes was silently cut before it was compiled. */
TEST(namespace_patterns_bounded) {
    cfg c;
    char err[256] = "";
    char text[1024];
    snprintf(text, sizeof text, "[namespace ~/dyn-%.*s]\n", 60,
             "++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++");
    ASSERT_EQ_INT(parse(&c, text, err), -EINVAL);
    ASSERT_TRUE(strstr(err, "line 1: namespace pattern too long or too complex") != NULL);
    cfg_free(&c);
    ASSERT_EQ_INT(parse(&c, "[namespace ~((a{99}){99}){99}]\n", err), -EINVAL);
    cfg_free(&c);
    snprintf(text, sizeof text, "[namespace ~/%0300d]\n", 0);
    ASSERT_EQ_INT(parse(&c, text, err), -EINVAL);
    cfg_free(&c);
    /* a count past LONG_MAX is refused, and counted without overflow (fuzz_cfg, UBSan) */
    ASSERT_EQ_INT(parse(&c, "[namespace ~{9223372036854775808,}c]\n", err), -EINVAL);
    ASSERT_TRUE(strstr(err, "line 1: namespace pattern too long or too complex") != NULL);
    cfg_free(&c);
    /* Found by fuzz_cfg (a timeout): 160 patterns each just under the bound
     * took seconds to compile.  The bound holds for all patterns together. */
    char many[8192] = "";
    for (int i = 0; i < 160; i++) strcat(many, "[namespace ~(a{99}){99}]\n");
    ASSERT_EQ_INT(parse(&c, many, err), -EINVAL);
    ASSERT_TRUE(strstr(err, "line 2: namespace patterns too complex together") != NULL);
    cfg_free(&c);
    /* ordinary patterns still compile, many of them too */
    ASSERT_EQ_INT(parse(&c, "[namespace ~/[a-z]+-[0-9]{1,4}(/[a-z]+)?]\n[namespace ~/x{2,}]\n", err), 0);
    ASSERT_TRUE(cfg_nsp_find(&c, "/room-12/b") != NULL);
    ASSERT_TRUE(cfg_nsp_find(&c, "/xxx") != NULL);
    cfg_free(&c);
    many[0] = 0;
    for (int i = 0; i < 200; i++) snprintf(many + strlen(many), sizeof many - strlen(many), "[namespace ~/r%d-[0-9]+]\n", i);
    ASSERT_EQ_INT(parse(&c, many, err), 0);
    ASSERT_TRUE(cfg_nsp_find(&c, "/r199-7") != NULL);
    cfg_free(&c);
}

#define HASH "$2y$05$abcdefghijklmnopqrstuu5dJ1tq0tDJxbdUPmiSHaQPpYv3Jg3Pe"

TEST(admin_section) {
    cfg c;
    char err[256] = "";
    /* none: no admin namespace */
    ASSERT_EQ_INT(parse(&c, "ping_interval = 300\n", err), 0);
    ASSERT_TRUE(!c.admin.enabled && !cfg_is_admin_nsp(&c, "/admin") && !cfg_nsp_find(&c, "/admin"));
    cfg_free(&c);
    /* the defaults: /admin, development mode; its namespace exists */
    ASSERT_EQ_INT(parse(&c, "[admin]\nauth = none\n[namespace /chat]\n", err), 0);
    ASSERT_TRUE(c.admin.enabled && c.admin.auth_none && c.admin.development && !c.admin.readonly);
    ASSERT_EQ_STR(c.admin.nsp, "/admin");
    ASSERT_TRUE(cfg_is_admin_nsp(&c, "/admin") && !cfg_is_admin_nsp(&c, "/chat"));
    ASSERT_TRUE(cfg_nsp_find(&c, "/admin") != NULL && cfg_nsp_find(&c, "/chat") != NULL);
    cfg_free(&c);
    ASSERT_EQ_INT(parse(&c, "[admin]\nnamespace = /ops\nusername = boss\npassword_hash = " HASH
                            "\nmode = production\nreadonly = true\nserver_id = node-a\n", err), 0);
    ASSERT_TRUE(!c.admin.auth_none && !c.admin.development && c.admin.readonly);
    ASSERT_EQ_STR(c.admin.username, "boss");
    ASSERT_EQ_STR(c.admin.password_hash, HASH);
    ASSERT_EQ_STR(c.admin.server_id, "node-a");
    ASSERT_TRUE(cfg_is_admin_nsp(&c, "/ops") && cfg_nsp_find(&c, "/admin") == NULL);
    cfg_free(&c);
    static const struct { const char *text; const char *err; } rows[] = {
        {"[admin]\n", "line 1: [admin]: set auth = none, or both username and password_hash"},
        {"[admin]\nusername = a\n", "line 1: [admin]: set auth = none"},
        {"\n[admin]\nauth = none\nusername = a\n", "line 2: [admin]: auth = none, or username"},
        {"[admin]\nauth = basic\n", "line 2: auth: the only value is none"},
        {"[admin]\npassword_hash = $1$abc$def\n", "line 2: password_hash must be a bcrypt hash"},
        {"[admin]\npassword_hash = $2y$05$abc\n", "line 2: password_hash must be a bcrypt hash"},
        {"[admin]\nmode = test\n", "line 2: mode must be development or production"},
        {"[admin]\nnamespace = admin\n", "line 2: admin namespace must start with '/'"},
        {"[admin]\nnamespace = /\n", "line 2: admin namespace must start with '/', not be '/'"},
        {"[admin]\nfoo = 1\n", "line 2: unknown admin setting 'foo'"},
        {"[admin]\nauth = none\n[admin]\n", "line 3: a second [admin] section"},
        {"[admin]\nauth = none\n[namespace /admin]\nany = true\n", "line 1: [namespace /admin] is the admin namespace"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        UNIT_CTX("row %zu", i);
        ASSERT_EQ_INT(parse(&c, rows[i].text, err), -EINVAL);
        ASSERT_TRUE(strncmp(err, rows[i].err, strlen(rows[i].err)) == 0 || (printf("got: %s\n", err), 0));
        ASSERT_TRUE(!c.admin.enabled);
        cfg_free(&c);
    }
}

TEST(load_reports_missing_files) {
    cfg c;
    char err[256] = "";
    ASSERT_EQ_INT(cfg_load(&c, "/nonexistent/sio.conf", err, sizeof err), -ENOENT);
    ASSERT_TRUE(strstr(err, "/nonexistent/sio.conf") != NULL);
    cfg_free(&c);
}

UNIT_MAIN()
