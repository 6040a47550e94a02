/* net/slirp.h — user-mode networking through libslirp: the guest gets
 * 10.0.2.15 by DHCP, the host is 10.0.2.2, DNS 10.0.2.3; hostfwd rules let
 * host clients reach guest servers. */
#ifndef VMMD_NET_SLIRP_H
#define VMMD_NET_SLIRP_H

#include "net/backend.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#define NET_SLIRP_MAX_FWD 16

struct net_slirp_fwd {
	bool udp;
	struct in_addr host_addr; /* 0.0.0.0 = any */
	uint16_t host_port;
	struct in_addr guest_addr; /* 0.0.0.0 = the DHCP address */
	uint16_t guest_port;
};

/* Parses QEMU's hostfwd syntax: [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT.
 * Returns 0 or -EINVAL. */
int net_slirp__parse_hostfwd(const char *s, struct net_slirp_fwd *fwd);

/* Creates the stack.  On failure returns NULL with a reason in err. */
struct net_backend *net_slirp__new(const char *name, const struct net_slirp_fwd *fwd, int nr_fwd,
				   char *err, size_t errlen);

/* Stops or starts listening on the hostfwd ports (connections already
 * accepted go on): a netstack being replaced hands its ports to the new
 * one.  0, or negative errno with err (nothing listens then). */
int net_slirp__listen(struct net_backend *be, bool on, char *err, size_t errlen);

#endif
