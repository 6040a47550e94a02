/* net/tap.h — a Linux tap device with the virtio-net header (IFF_VNET_HDR),
 * read and written through io_uring. */
#ifndef VMMD_NET_TAP_H
#define VMMD_NET_TAP_H

#include "net/backend.h"

#include <stddef.h>

/* Opens (or creates, with CAP_NET_ADMIN) tap interface ifname with the
 * virtio-net header and no receive offloads: the fd (non-blocking,
 * close-on-exec), or negative errno with a reason in err. */
int net_tap__open(const char *ifname, char *err, size_t errlen);

/* The backend on fd, a tap as net_tap__open leaves it (perhaps opened by
 * another process, which handed it over).  Anything else is refused with a
 * reason in err, NULL then, and fd stays the caller's; on success the
 * backend owns it.  The backend reads nothing until its start op. */
struct net_backend *net_tap__new_fd(const char *name, int fd, char *err, size_t errlen);

/* Both of the above: vmm's own model. */
struct net_backend *net_tap__new(const char *name, const char *ifname, char *err, size_t errlen);

#endif
