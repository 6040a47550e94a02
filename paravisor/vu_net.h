/* paravisor/vu_net.h — the paravisor's NIC: --net option to a virtio-net
 * model on a libslirp stack. */
#ifndef VMMD_PARAVISOR_VU_NET_H
#define VMMD_PARAVISOR_VU_NET_H

#include "virtio/device.h"

/*
 * --net slirp[,hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]...
 * [,mac=MAC][,id=NAME], the syntax of vmm's --net (which passes the MAC it
 * chose).  The hostfwd sockets listen from here on.  A bad option or a port
 * that cannot be had is logged on one line naming it; NULL then.
 */
struct virtio_device *vu_net__create(const char *opt);

#endif
