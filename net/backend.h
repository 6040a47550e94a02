/* net/backend.h — what a virtio-net model needs from a network backend
 * (libslirp user networking, tap).  Everything runs on the device thread:
 * the model asks the backend for the fds to poll and a timeout, polls them
 * together with its own kick fds, then lets the backend handle what became
 * ready.  Frames travel as iovecs; a backend with vnet_hdr set carries a
 * 12-byte struct virtio_net_hdr_v1 in front of every frame, both ways. */
#ifndef VMMD_NET_BACKEND_H
#define VMMD_NET_BACKEND_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define NET_VNET_HDR_LEN 12    /* struct virtio_net_hdr_v1 (with num_buffers) */
#define NET_FRAME_MIN	 14    /* an Ethernet header */
#define NET_FRAME_MAX	 65550 /* 64 KiB TSO frame plus headers */
#define NET_POLL_MAX	 64    /* fds one backend may add per iteration */

/* Offloads the guest accepted for frames it receives (tap only). */
#define NET_OFFLOAD_CSUM (1u << 0)
#define NET_OFFLOAD_TSO4 (1u << 1)
#define NET_OFFLOAD_TSO6 (1u << 2)

struct net_backend;

/* Delivers one received frame to the device.  Returns 0 when it was taken
 * (or dropped for good), -EAGAIN when the guest has no buffers now: the
 * backend keeps the frame and offers it again after net_backend__rx_ready. */
typedef int (*net_rx_fn)(void *opaque, const struct iovec *iov, int iovcnt, size_t len);

struct net_backend_stats {
	uint64_t rx_dropped; /* frames the backend dropped (backlog full) */
	uint64_t tx_errors;  /* frames the host side refused */
};

struct net_backend_ops {
	const char *kind;
	/* Sends one frame from the guest; may only queue it until flush. */
	int (*send)(struct net_backend *be, const struct iovec *iov, int iovcnt);
	/* Completes everything send queued (guest buffers may be reused after). */
	int (*flush)(struct net_backend *be);
	/* Adds pollfds (at most max), lowers *timeout_ms if it has timers. */
	int (*poll_fill)(struct net_backend *be, struct pollfd *fds, int max, int *timeout_ms);
	/* Handles what poll() reported for the fds poll_fill added. */
	void (*poll_done)(struct net_backend *be, struct pollfd *fds, int n, bool poll_error);
	/* The guest posted receive buffers: offer held-back frames again. */
	void (*rx_ready)(struct net_backend *be);
	/* The guest's receive offloads (NET_OFFLOAD_*). */
	int (*set_offload)(struct net_backend *be, unsigned int offloads);
	/* The model's rings start and stop running (may be NULL).  A backend
	 * that pulls frames ahead of the guest (tap's posted reads) stops
	 * pulling while stopped: another process may hold the same host side
	 * (the next paravisor during a servicing) and must get those frames.
	 * Frames already pulled are kept for the next start.  Called with the
	 * device thread parked. */
	int (*start)(struct net_backend *be);
	void (*stop)(struct net_backend *be);
	/* Saved state (may be NULL). */
	int (*save)(struct net_backend *be, uint8_t **buf, size_t *len);
	int (*load)(struct net_backend *be, const uint8_t *buf, size_t len);
	void (*free)(struct net_backend *be);
};

struct net_backend {
	const struct net_backend_ops *ops;
	bool vnet_hdr; /* frames carry the 12-byte virtio-net header */
	bool offloads; /* may take/give checksum and TSO offloads */
	net_rx_fn rx;
	void *rx_opaque;
	struct net_backend_stats stats;
	char name[32]; /* "net0", for messages */
};

static inline void net_backend__set_rx(struct net_backend *be, net_rx_fn fn, void *opaque)
{
	be->rx = fn;
	be->rx_opaque = opaque;
}

static inline void net_backend__free(struct net_backend *be)
{
	if (be)
		be->ops->free(be);
}

#endif
