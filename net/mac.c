/* net/mac.c — shared by vmm's --net and the paravisor's, which must agree
 * on what a MAC is. */
#include "net/mac.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int net_mac__parse(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	char end;

	if (strlen(s) != NET_MAC_STRLEN - 1 || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1],
						      &b[2], &b[3], &b[4], &b[5], &end) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	if (mac[0] & 1)
		return -EINVAL;
	return 0;
}

void net_mac__format(const uint8_t mac[6], char buf[NET_MAC_STRLEN])
{
	snprintf(buf, NET_MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
		 mac[3], mac[4], mac[5]);
}
