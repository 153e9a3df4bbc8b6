/* netaddr: IP addresses and CIDR ranges as the config names them
 * (trusted_proxies = 127.0.0.1, 10.0.0.0/8, ::1): checking a list, and
 * whether an address is in it.  A list is comma or space separated; an entry
 * is an IPv4 or IPv6 address with an optional /PREFIX.  An IPv4-mapped IPv6
 * address (::ffff:10.1.2.3) matches as the IPv4 address it carries. */
#ifndef SIO_NETADDR_H
#define SIO_NETADDR_H

#include <stddef.h>

/* 0 when every entry of list parses; else -EINVAL with the reason in err. */
int netaddr_list_check(const char *list, char *err, size_t errlen);
/* 1 when addr is an IPv4 or IPv6 address (no prefix). */
int netaddr_valid(const char *addr);
/* 1 when addr (text, as REMOTE_ADDR gives it) is in one of list's ranges;
 * 0 when not, or when addr or list is NULL or does not parse. */
int netaddr_in_list(const char *list, const char *addr);

#endif
