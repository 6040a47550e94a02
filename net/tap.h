/* net/tap.h — a Linux tap device with the virtio-net header (IFF_VNET_HDR),
 * read and written through io_uring. */
#ifndef VMMD_NET_TAP_H
#define VMMD_NET_TAP_H

#include "net/backend.h"

#include <stddef.h>

/* Opens (or creates, with CAP_NET_ADMIN) tap interface ifname.  On failure
 * returns NULL with a reason in err. */
struct net_backend *net_tap__new(const char *name, const char *ifname, char *err, size_t errlen);

#endif
