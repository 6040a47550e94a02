/* virtio/console.h — virtio-console (virtio 1.2, 5.3) with a single port
 * (no MULTIPORT): queue 0 receives host bytes, queue 1 carries guest output. */
#ifndef VMMD_VIRTIO_CONSOLE_H
#define VMMD_VIRTIO_CONSOLE_H

#include "virtio/device.h"

/*
 * The host end, opened by the caller; the model takes ownership of the fds
 * (except 0, 1 and 2) and closes them on destroy.
 *  - in_fd: bytes for the guest, or -1; out_fd: guest output, or -1.
 *  - listen_fd: a listening unix socket, or -1: each accepted client is
 *    both input and output until it hangs up (in_fd/out_fd unused).
 */
struct virtio_console_backend {
	int in_fd, out_fd, listen_fd;
};

struct virtio_device *virtio_console__create(const char *id,
					     const struct virtio_console_backend *be);

#endif
