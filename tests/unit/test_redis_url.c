/* Unit tests for base/redis_url.c: Redis server URLs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/redis_url.h"
#include "unit.h"

/* Parses url, expecting success. */
static redis_url ok_url(const char *url) {
    redis_url u;
    char err[128] = "";
    UNIT_CTX("%s", url);
    int rc = redis_url_parse(url, &u, err, sizeof err);
    if (rc) ASSERT_EQ_STR(err, "(no error)");
    ASSERT_EQ_INT(rc, 0);
    return u;
}

/* Parses url, expecting -EINVAL with exactly want in err. */
static void bad_url(const char *url, const char *want) {
    redis_url u;
    char err[128] = "untouched";
    UNIT_CTX("%.100s", url);
    ASSERT_EQ_INT(redis_url_parse(url, &u, err, sizeof err), -EINVAL);
    ASSERT_EQ_STR(err, want);
}

static void text_is(const redis_url *u, const char *want) {
    char out[1024];
    const char *t = redis_url_text(u, out, sizeof out);
    ASSERT_TRUE(t == out);
    ASSERT_EQ_STR(out, want);
}

#define E_SCHEME "expected redis://HOST[:PORT][/DB] or unix:///PATH"
#define E_HOST "a host is needed"
#define E_PORT "bad port"
#define E_DB "bad database number"
#define E_SPACE "spaces or control characters in the URL"
#define E_UNIX "unix:// needs an absolute socket path"
#define E_QUERY "the only query is ?db=N"
#define E_AUTH "bad user or password (percent-encode special characters)"
#define E_USER "the user needs ':PASSWORD' before '@'"
#define E_V6 "bad [IPv6] host"
#define E_TCPQ "no query or fragment in a redis:// URL (the database is /DB)"

TEST(host_only) {
    redis_url u = ok_url("redis://host");
    ASSERT_EQ_STR(u.host, "host");
    ASSERT_EQ_INT(u.port, 6379);
    ASSERT_EQ_INT(u.db, 0);
    ASSERT_EQ_STR(u.path, "");
    ASSERT_EQ_STR(u.user, "");
    ASSERT_EQ_STR(u.password, "");
    ASSERT_EQ_INT(u.has_password, 0);
    text_is(&u, "redis://host:6379/0");
}

TEST(host_and_port) {
    redis_url u = ok_url("redis://redis.example.com:6380");
    ASSERT_EQ_STR(u.host, "redis.example.com");
    ASSERT_EQ_INT(u.port, 6380);
    ASSERT_EQ_INT(u.db, 0);
    text_is(&u, "redis://redis.example.com:6380/0");
    u = ok_url("redis://127.0.0.1:1");
    ASSERT_EQ_STR(u.host, "127.0.0.1");
    ASSERT_EQ_INT(u.port, 1);
    u = ok_url("redis://h:65535");
    ASSERT_EQ_INT(u.port, 65535);
}

TEST(host_port_db) {
    redis_url u = ok_url("redis://localhost:7000/5");
    ASSERT_EQ_STR(u.host, "localhost");
    ASSERT_EQ_INT(u.port, 7000);
    ASSERT_EQ_INT(u.db, 5);
    text_is(&u, "redis://localhost:7000/5");
    u = ok_url("redis://localhost/12");
    ASSERT_EQ_INT(u.port, 6379);
    ASSERT_EQ_INT(u.db, 12);
    u = ok_url("redis://localhost:6379/");
    ASSERT_EQ_INT(u.db, 0);
    u = ok_url("redis://localhost/1000000");
    ASSERT_EQ_INT(u.db, 1000000);
}

TEST(password_only) {
    redis_url u = ok_url("redis://:secret@host");
    ASSERT_EQ_STR(u.host, "host");
    ASSERT_EQ_STR(u.user, "");
    ASSERT_EQ_STR(u.password, "secret");
    ASSERT_EQ_INT(u.has_password, 1);
    ASSERT_EQ_INT(u.port, 6379);
    text_is(&u, "redis://:***@host:6379/0");
    /* an empty password is still a password */
    u = ok_url("redis://:@host");
    ASSERT_EQ_INT(u.has_password, 1);
    ASSERT_EQ_STR(u.password, "");
}

TEST(user_password_port_db) {
    redis_url u = ok_url("redis://user:pass@host:6390/3");
    ASSERT_EQ_STR(u.user, "user");
    ASSERT_EQ_STR(u.password, "pass");
    ASSERT_EQ_INT(u.has_password, 1);
    ASSERT_EQ_STR(u.host, "host");
    ASSERT_EQ_INT(u.port, 6390);
    ASSERT_EQ_INT(u.db, 3);
    text_is(&u, "redis://user:***@host:6390/3");
}

TEST(percent_encoded_user_and_password) {
    redis_url u = ok_url("redis://us%65r:p%40ss%3Aw%2fd@host");
    ASSERT_EQ_STR(u.user, "user");
    ASSERT_EQ_STR(u.password, "p@ss:w/d");
    ASSERT_EQ_STR(u.host, "host");
    u = ok_url("redis://:%40@h");
    ASSERT_EQ_STR(u.password, "@");
    /* the password never appears in the text */
    text_is(&u, "redis://:***@h:6379/0");
}

TEST(ipv6_host) {
    redis_url u = ok_url("redis://[::1]:6380/2");
    ASSERT_EQ_STR(u.host, "::1");
    ASSERT_EQ_INT(u.port, 6380);
    ASSERT_EQ_INT(u.db, 2);
    text_is(&u, "redis://[::1]:6380/2");
    u = ok_url("redis://[fe80::1:2]");
    ASSERT_EQ_STR(u.host, "fe80::1:2");
    ASSERT_EQ_INT(u.port, 6379);
    text_is(&u, "redis://[fe80::1:2]:6379/0");
    u = ok_url("redis://:pw@[::1]/4");
    ASSERT_EQ_STR(u.host, "::1");
    ASSERT_EQ_STR(u.password, "pw");
    ASSERT_EQ_INT(u.db, 4);
    text_is(&u, "redis://:***@[::1]:6379/4");
}

TEST(unix_socket) {
    redis_url u = ok_url("unix:///path/to/sock");
    ASSERT_EQ_STR(u.path, "/path/to/sock");
    ASSERT_EQ_STR(u.host, "");
    ASSERT_EQ_INT(u.db, 0);
    ASSERT_EQ_INT(u.has_password, 0);
    text_is(&u, "unix:///path/to/sock?db=0");
    u = ok_url("unix:///path?db=4");
    ASSERT_EQ_STR(u.path, "/path");
    ASSERT_EQ_INT(u.db, 4);
    text_is(&u, "unix:///path?db=4");
    u = ok_url("unix://:pw@/path");
    ASSERT_EQ_STR(u.path, "/path");
    ASSERT_EQ_STR(u.password, "pw");
    ASSERT_EQ_STR(u.user, "");
    ASSERT_EQ_INT(u.has_password, 1);
    text_is(&u, "unix://:***@/path?db=0");
    u = ok_url("unix://me:p%40w@/run/redis.sock?db=2");
    ASSERT_EQ_STR(u.user, "me");
    ASSERT_EQ_STR(u.password, "p@w");
    ASSERT_EQ_STR(u.path, "/run/redis.sock");
    ASSERT_EQ_INT(u.db, 2);
    text_is(&u, "unix://me:***@/run/redis.sock?db=2");
}

TEST(rejections) {
    bad_url("http://x", E_SCHEME);
    bad_url("", E_SCHEME);
    bad_url("redis:/host", E_SCHEME);
    bad_url("REDIS://host", E_SCHEME);
    bad_url("redis://", E_HOST);
    bad_url("redis://:6379", E_HOST);
    bad_url("redis:///0", E_HOST);
    bad_url("redis://host:0", E_PORT);
    bad_url("redis://host:70000", E_PORT);
    bad_url("redis://host:65536", E_PORT);
    bad_url("redis://host:12a", E_PORT);
    bad_url("redis://host:", E_PORT);
    bad_url("redis://host:-1", E_PORT);
    bad_url("redis://host:99999999999", E_PORT);
    bad_url("redis://host/abc", E_DB);
    bad_url("redis://host/1/2", E_DB);
    bad_url("redis://host/1000001", E_DB);
    bad_url("redis://host/-1", E_DB);
    bad_url("redis://us er@host", E_SPACE);
    bad_url("redis://host ", E_SPACE);
    bad_url("redis://ho\tst", E_SPACE);
    bad_url("redis://host\x7f", E_SPACE);
    bad_url("unix://relative", E_UNIX);
    bad_url("unix://", E_UNIX);
    bad_url("unix:///p?x=1", E_QUERY);
    bad_url("unix:///p?db=", E_QUERY);
    bad_url("unix:///p?db=x", E_QUERY);
    bad_url("redis://:p%4@host", E_AUTH);
    bad_url("redis://:p%zz@host", E_AUTH);
    bad_url("redis://:p%@host", E_AUTH);
    bad_url("redis://:p%00@host", E_AUTH);
    bad_url("redis://u%g0:p@host", E_AUTH);
    bad_url("redis://user@host", E_USER);
    bad_url("redis://[::1", E_V6);
    bad_url("redis://[]:1", E_V6);
    bad_url("redis://[::1]x", E_V6);
    bad_url("redis://[::1]:", E_PORT);
    bad_url("redis://host?db=1", E_TCPQ);
    bad_url("redis://host/1#x", E_TCPQ);
}

/* As URL parsers read it: the last '@' of the authority ends the password,
 * and an '@' in a Unix socket's path is part of the path. */
TEST(at_signs) {
    redis_url u = ok_url("redis://:p@ss@host:7000");
    ASSERT_EQ_STR(u.password, "p@ss");
    ASSERT_EQ_STR(u.host, "host");
    ASSERT_EQ_INT(u.port, 7000);
    u = ok_url("unix:///run/a@b.sock");
    ASSERT_EQ_STR(u.path, "/run/a@b.sock");
    ASSERT_EQ_INT(u.has_password, 0);
    u = ok_url("unix://:x@/run/a@b.sock");
    ASSERT_EQ_STR(u.password, "x");
    ASSERT_EQ_STR(u.path, "/run/a@b.sock");
}

TEST(fields_longer_than_their_buffers) {
    char url[2048], field[1024];
    redis_url u;
    /* host: 255 bytes fit, 256 do not */
    memset(field, 'h', 255);
    field[255] = 0;
    snprintf(url, sizeof url, "redis://%s:1", field);
    u = ok_url(url);
    ASSERT_EQ_INT(strlen(u.host), 255);
    field[255] = 'h';
    field[256] = 0;
    snprintf(url, sizeof url, "redis://%s:1", field);
    bad_url(url, E_HOST);
    snprintf(url, sizeof url, "redis://[%s]:1", field);
    bad_url(url, E_V6);
    /* user: 127 bytes fit, 128 do not */
    memset(field, 'u', 127);
    field[127] = 0;
    snprintf(url, sizeof url, "redis://%s:p@h", field);
    u = ok_url(url);
    ASSERT_EQ_INT(strlen(u.user), 127);
    field[127] = 'u';
    field[128] = 0;
    snprintf(url, sizeof url, "redis://%s:p@h", field);
    bad_url(url, E_AUTH);
    /* password: 255 bytes fit, 256 do not (nor 86 %XX escapes = 258 bytes decoded) */
    memset(field, 'p', 255);
    field[255] = 0;
    snprintf(url, sizeof url, "redis://:%s@h", field);
    u = ok_url(url);
    ASSERT_EQ_INT(strlen(u.password), 255);
    field[255] = 'p';
    field[256] = 0;
    snprintf(url, sizeof url, "redis://:%s@h", field);
    bad_url(url, E_AUTH);
    field[0] = 0;
    for (int i = 0; i < 86; i++) strcat(field, "%41%41%41");
    snprintf(url, sizeof url, "redis://:%s@h", field);
    bad_url(url, E_AUTH);
    /* path: 255 bytes fit, 256 do not */
    field[0] = '/';
    memset(field + 1, 'd', 254);
    field[255] = 0;
    snprintf(url, sizeof url, "unix://%s", field);
    u = ok_url(url);
    ASSERT_EQ_INT(strlen(u.path), 255);
    field[255] = 'd';
    field[256] = 0;
    snprintf(url, sizeof url, "unix://%s", field);
    bad_url(url, E_UNIX);
}

TEST(err_may_be_null_or_short) {
    redis_url u;
    ASSERT_EQ_INT(redis_url_parse("http://x", &u, NULL, 0), -EINVAL);
    char err[6] = "zzzzz";
    ASSERT_EQ_INT(redis_url_parse("redis://host:0", &u, err, sizeof err), -EINVAL);
    ASSERT_EQ_STR(err, "bad p");
}

TEST(parse_resets_the_output) {
    redis_url u = ok_url("redis://u:p@host:1/2");
    ASSERT_EQ_INT(redis_url_parse("unix:///s", &u, NULL, 0), 0);
    ASSERT_EQ_STR(u.host, "");
    ASSERT_EQ_STR(u.user, "");
    ASSERT_EQ_STR(u.password, "");
    ASSERT_EQ_INT(u.has_password, 0);
    ASSERT_EQ_INT(u.port, 6379);
    ASSERT_EQ_INT(u.db, 0);
    ASSERT_EQ_STR(u.path, "/s");
}

TEST(text_masks_password_and_truncates) {
    redis_url u = ok_url("redis://admin:hunter2@db.internal:6400/9");
    char out[256];
    redis_url_text(&u, out, sizeof out);
    ASSERT_EQ_STR(out, "redis://admin:***@db.internal:6400/9");
    ASSERT_TRUE(strstr(out, "hunter2") == NULL);
    char small[10];
    ASSERT_TRUE(redis_url_text(&u, small, sizeof small) == small);
    ASSERT_EQ_STR(small, "redis://a");
}

UNIT_MAIN()
