/* net/mac.h — a NIC's Ethernet address as written on command lines. */
#ifndef VMMD_NET_MAC_H
#define VMMD_NET_MAC_H

#include <stddef.h>
#include <stdint.h>

#define NET_MAC_STRLEN 18 /* "52:54:00:12:34:56" and its NUL */

/* "52:54:00:12:34:56" into mac: 0, or -EINVAL for anything else, a
 * multicast address included (it cannot be a NIC's). */
int net_mac__parse(const char *s, uint8_t mac[6]);
void net_mac__format(const uint8_t mac[6], char buf[NET_MAC_STRLEN]);

#endif
