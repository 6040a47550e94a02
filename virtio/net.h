/* virtio/net.h — the virtio-net device model (virtio 1.2, section 5.1):
 * queue 0 receives, queue 1 transmits; frames go to and come from a
 * net/ backend on the model's own thread. */
#ifndef VMMD_VIRTIO_NET_H
#define VMMD_VIRTIO_NET_H

#include "net/backend.h"
#include "virtio/device.h"

#include <stdint.h>

/* Feature bits (section 5.1.3). */
#define VIRTIO_NET_F_CSUM	0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU	3
#define VIRTIO_NET_F_MAC	5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_HOST_TSO4	11
#define VIRTIO_NET_F_HOST_TSO6	12
#define VIRTIO_NET_F_MRG_RXBUF	15
#define VIRTIO_NET_F_STATUS	16

#define VIRTIO_NET_S_LINK_UP 1

#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_GSO_NONE	    0

#define VIRTIO_NET_RXQ	      0
#define VIRTIO_NET_TXQ	      1
#define VIRTIO_NET_QUEUE_SIZE 256

struct virtio_net_hdr_v1 {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));

struct virtio_net_config {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
} __attribute__((packed));

/* Counters for metrics; read with virtio_net__stats from any thread. */
struct virtio_net_stats {
	uint64_t rx_packets, rx_bytes, rx_drops; /* drops: no guest buffers, too big */
	uint64_t tx_packets, tx_bytes, tx_drops; /* drops: bad length or header */
	uint64_t tx_errors;			 /* the backend refused the frame */
};

/* Creates the model around backend be (which it owns from now on).  The
 * transport fills in mem, the queues, the kick/call fds and fail(). */
struct virtio_device *virtio_net__new(const char *id, const uint8_t mac[6], struct net_backend *be);
void virtio_net__stats(struct virtio_device *vdev, struct virtio_net_stats *out);
/* Carries counters on from an earlier model of the same NIC (servicing). */
void virtio_net__set_stats(struct virtio_device *vdev, const struct virtio_net_stats *in);
struct net_backend *virtio_net__backend(struct virtio_device *vdev);

#endif
