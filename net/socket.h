/* net/socket.h — frames over a connected SOCK_SEQPACKET socket (one frame
 * per message, no virtio-net header): how a paravisor NIC reaches the
 * netstack process that runs its slirp stack. */
#ifndef VMMD_NET_SOCKET_H
#define VMMD_NET_SOCKET_H

#include "net/backend.h"

#include <stddef.h>

/* The first message a netstack sends, before any frame: its stack is up
 * (the hostfwd ports listen).  Its reader, vmm, never hands it on. */
#define NET_SOCKET_READY "vmmd-netstack-ready"

/* Owns fd once it returns a backend (the caller keeps it on failure).  NULL
 * with a reason in err when fd is not a SOCK_SEQPACKET socket. */
struct net_backend *net_socket__new(const char *name, int fd, char *err, size_t errlen);

#endif
