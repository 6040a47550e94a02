/* paravisor/vu_net.h — the paravisor's NIC: --net option to a virtio-net
 * model, and the same option parsed for the netstack process. */
#ifndef VMMD_PARAVISOR_VU_NET_H
#define VMMD_PARAVISOR_VU_NET_H

#include "net/slirp.h"
#include "virtio/device.h"

#include <stdbool.h>
#include <stdint.h>

/* One --net, checked. */
struct vu_net_opts {
	bool socket; /* socket,fd=N: frames to a netstack process */
	bool tap;    /* tap,fd=N: a tap vmm opened */
	int fd;	     /* the socket's or the tap's descriptor */
	struct net_slirp_fwd fwd[NET_SLIRP_MAX_FWD];
	int nr_fwd;
	uint8_t mac[6];
	char id[32];
};

/*
 * --net slirp[,hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]...
 *       [,mac=MAC][,id=NAME]
 * --net socket,fd=N[,mac=MAC][,id=NAME]
 * --net tap,fd=N[,mac=MAC][,id=NAME]
 * the syntax of vmm's --net (which passes the MAC it chose).  0, or -EINVAL
 * after one line naming what is wrong.
 */
int vu_net__parse(const char *opt, struct vu_net_opts *o);

/*
 * The NIC: a virtio-net model on slirp (its hostfwd sockets listen from
 * here on), on the socket to a netstack, or on a tap.  A bad option or a port that
 * cannot be had is logged on one line naming it; NULL then.  *o: what
 * opt said.
 */
struct virtio_device *vu_net__create(const char *opt, struct vu_net_opts *o);

#endif
