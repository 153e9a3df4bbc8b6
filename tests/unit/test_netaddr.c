/* Unit tests for netaddr.c: address lists and CIDR ranges (trusted_proxies). */
#include <errno.h>
#include <string.h>

#include "base/netaddr.h"
#include "unit.h"

TEST(lists_check_every_entry) {
    char err[128] = "";
    ASSERT_EQ_INT(netaddr_list_check("127.0.0.1, 10.0.0.0/8 ::1,fd00::/8", err, sizeof err), 0);
    ASSERT_EQ_INT(netaddr_list_check("", err, sizeof err), 0);
    ASSERT_EQ_INT(netaddr_list_check("10.0.0.0/33", err, sizeof err), -EINVAL);
    ASSERT_TRUE(strstr(err, "'10.0.0.0/33'") != NULL);
    ASSERT_EQ_INT(netaddr_list_check("127.0.0.1, localhost", err, sizeof err), -EINVAL);
    ASSERT_TRUE(strstr(err, "'localhost'") != NULL);
    ASSERT_EQ_INT(netaddr_list_check("::1/129", err, sizeof err), -EINVAL);
    ASSERT_EQ_INT(netaddr_list_check("10.0.0.1/", err, sizeof err), -EINVAL);
}

TEST(addresses_match_ranges) {
    const char *l = "127.0.0.1, 10.0.0.0/8, 192.168.1.128/25, fd00::/8";
    ASSERT_EQ_INT(netaddr_in_list(l, "127.0.0.1"), 1);
    ASSERT_EQ_INT(netaddr_in_list(l, "127.0.0.2"), 0);
    ASSERT_EQ_INT(netaddr_in_list(l, "10.200.3.4"), 1);
    ASSERT_EQ_INT(netaddr_in_list(l, "11.0.0.1"), 0);
    ASSERT_EQ_INT(netaddr_in_list(l, "192.168.1.200"), 1);
    ASSERT_EQ_INT(netaddr_in_list(l, "192.168.1.127"), 0);
    ASSERT_EQ_INT(netaddr_in_list(l, "fd12::1"), 1);
    ASSERT_EQ_INT(netaddr_in_list(l, "fe80::1"), 0);
    ASSERT_EQ_INT(netaddr_in_list(l, "::ffff:10.1.2.3"), 1); /* IPv4-mapped */
    ASSERT_EQ_INT(netaddr_in_list(l, "10.0.0.1/8"), 0);      /* an address, not a range */
    ASSERT_EQ_INT(netaddr_in_list(l, "junk"), 0);
    ASSERT_EQ_INT(netaddr_in_list(NULL, "127.0.0.1"), 0);
    ASSERT_EQ_INT(netaddr_in_list(l, NULL), 0);
    ASSERT_EQ_INT(netaddr_in_list("0.0.0.0/0", "8.8.8.8"), 1);
    ASSERT_EQ_INT(netaddr_in_list("0.0.0.0/0", "2001:db8::1"), 0);
    ASSERT_EQ_INT(netaddr_valid("2001:db8::1"), 1);
    ASSERT_EQ_INT(netaddr_valid("1.2.3"), 0);
}

UNIT_MAIN()
