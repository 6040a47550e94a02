/* net/socket.h — frames over a connected SOCK_SEQPACKET socket (one frame
 * per message, no virtio-net header): how a paravisor NIC reaches the
 * netstack process that runs its slirp stack. */
#ifndef VMMD_NET_SOCKET_H
#define VMMD_NET_SOCKET_H

#include "net/backend.h"

#include <stddef.h>
#include <stdint.h>

/* The first message a netstack sends, before any frame: its stack is up
 * (the hostfwd ports listen).  Its reader, vmm, never hands it on. */
#define NET_SOCKET_READY "vmmd-netstack-ready"

/*
 * A netstack's control socket (`paravisor --netstack --control-fd N`, a
 * SOCK_SEQPACKET socket apart from the frames): vmm takes libslirp's saved
 * state out of one stack and puts it into another (a snapshot, a live
 * migration's destination).  One request, one answer, each a message that
 * starts with struct net_ctl_msg: the answer repeats op, status is 0 or a
 * negative errno, and what follows is the state (SAVE's answer, LOAD's
 * request), at most NET_CTL_STATE_MAX bytes.
 */
/*
 * DRAIN carries (SCM_RIGHTS) one end of a SOCK_SEQPACKET pair whose other
 * end a new netstack got as --drain-fd: this one stops listening on the
 * hostfwd ports and drains its connections into the new one
 * (paravisor/netstack.c); UNDRAIN, when the new one did not take over,
 * makes it listen again and forget the link.
 */
enum { NET_CTL_SAVE = 1, NET_CTL_LOAD = 2, NET_CTL_DRAIN = 3, NET_CTL_UNDRAIN = 4 };
#define NET_CTL_STATE_MAX 65536 /* 64 KiB */

struct net_ctl_msg {
	uint32_t op;
	int32_t status;
};

/* Owns fd once it returns a backend (the caller keeps it on failure).  NULL
 * with a reason in err when fd is not a SOCK_SEQPACKET socket. */
struct net_backend *net_socket__new(const char *name, int fd, char *err, size_t errlen);

#endif
