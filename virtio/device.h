/* virtio/device.h — the contract between a virtio transport (vmm's
 * virtio-pci today; a vhost-user backend in the paravisor later) and a device
 * model (blk, net, console, rng).  Models know nothing of KVM or PCI: they
 * get guest memory, enabled queues, a kick eventfd and a call eventfd per
 * queue, and run their own thread. */
#ifndef VMMD_VIRTIO_DEVICE_H
#define VMMD_VIRTIO_DEVICE_H

#include "virtio/mem.h"
#include "virtio/virtq.h"

#include <stdint.h>

/* Device types (virtio 1.2, section 5). */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4

/* Transport-level feature bits (section 6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_F_RING_PACKED 34

#define VIRTIO_MAX_QUEUES 64

struct virtio_device;

struct virtio_device_ops {
	const char *type;   /* "virtio-blk", for messages */
	uint16_t device_id; /* VIRTIO_ID_* */
	/* Device-specific feature bits it offers (transport adds VERSION_1,
	 * INDIRECT_DESC, EVENT_IDX). */
	uint64_t (*features)(struct virtio_device *vdev);
	uint16_t (*queue_max_size)(struct virtio_device *vdev, unsigned int q);
	/* Device configuration space (section 4.1.4.6). */
	uint32_t config_size;
	void (*config_read)(struct virtio_device *vdev, uint32_t offset, void *data, uint32_t len);
	void (*config_write)(struct virtio_device *vdev, uint32_t offset, const void *data,
			     uint32_t len);
	/* DRIVER_OK: features are final and the enabled queues set up; start
	 * processing (typically a thread polling the kick fds).  Return <0 to
	 * fail (the transport sets NEEDS_RESET). */
	int (*start)(struct virtio_device *vdev);
	/* Optional: start() will come soon (a paravisor staged for a
	 * servicing): make now what start() would have to make (a thread),
	 * touching no ring, so start() is only a go.  0 or <0 (start() then
	 * makes it as usual). */
	int (*prepare)(struct virtio_device *vdev);
	/* Reset or teardown: stop processing, finish or cancel in-flight
	 * requests, join threads.  Must be idempotent. */
	void (*stop)(struct virtio_device *vdev);
	/* Frees the model (after stop). */
	void (*destroy)(struct virtio_device *vdev);
	/* Saved state of the model itself (queues are saved by the transport). */
	int (*save)(struct virtio_device *vdev, uint8_t **buf, size_t *len);
	int (*restore)(struct virtio_device *vdev, const uint8_t *buf, size_t len);
};

struct virtio_device {
	const struct virtio_device_ops *ops;
	void *priv;  /* the model's own state */
	char id[32]; /* user-visible name, e.g. "disk0", for messages */
	const struct guest_mem *mem;

	unsigned int nr_queues;
	struct virtq vqs[VIRTIO_MAX_QUEUES];
	int kick_fd[VIRTIO_MAX_QUEUES]; /* non-blocking eventfd: the guest kicked (ioeventfd) */
	int call_fd[VIRTIO_MAX_QUEUES]; /* eventfd: interrupt the guest (irqfd); -1 if none */
	int config_call_fd;             /* eventfd: config change interrupt; -1 if none */
	uint64_t driver_features;       /* negotiated */

	/* Set by the transport: the device found a guest error it cannot
	 * recover from.  Sets DEVICE_NEEDS_RESET, logs `why` once. */
	void (*fail)(struct virtio_device *vdev, const char *why);
	void *transport;
};

/* Helpers for models. */
static inline bool virtio_device__has(const struct virtio_device *vdev, unsigned int bit)
{
	return vdev->driver_features & (1ULL << bit);
}
/* Pushes done: raise the queue's interrupt if the guest wants one. */
void virtio_device__notify(struct virtio_device *vdev, unsigned int q);
/* Signals a configuration change (e.g. a resized disk). */
void virtio_device__config_changed(struct virtio_device *vdev);

#endif
