/* paravisor/vu_inflight.h — the back-end's side of INFLIGHT_SHMFD: the
 * shared region (virtio/virtq_inflight.h has its per-ring algorithm) that a
 * front-end asks us to make (GET_INFLIGHT_FD) and hands to every later
 * back-end (SET_INFLIGHT_FD), so requests we took and never finished are
 * re-submitted by the next paravisor. */
#ifndef VMMD_PARAVISOR_VU_INFLIGHT_H
#define VMMD_PARAVISOR_VU_INFLIGHT_H

#include "virtio/device.h"
#include "virtio/vhost_user_msg.h"
#include "virtio/virtq_inflight.h"

#include <stddef.h>

struct vu_inflight {
	void *base; /* NULL: no region */
	size_t size;
	uint16_t num_queues, queue_size;
	struct virtq_inflight q[VIRTIO_MAX_QUEUES];
};

/* GET_INFLIGHT_FD: a fresh region for req's queues, mapped as ours from now
 * on; *fd (to send, then close) and reply filled.  0 or negative errno with
 * why. */
int vu_inflight__create(struct vu_inflight *in, const struct vhost_user_inflight *req,
			struct vhost_user_inflight *reply, int *fd, char *why, size_t whylen);
/* SET_INFLIGHT_FD: maps a region another back-end made (fd stays the
 * caller's).  0 or negative errno with why. */
int vu_inflight__set(struct vu_inflight *in, const struct vhost_user_inflight *m, int fd, char *why,
		     size_t whylen);
/* Ring q's part of the region, or NULL (no region, or not that queue). */
struct virtq_inflight_region *vu_inflight__queue(struct vu_inflight *in, unsigned int q);
/* Unmaps the region (the rings are stopped). */
void vu_inflight__clear(struct vu_inflight *in);

#endif
