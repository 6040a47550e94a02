/* virtio/virtq.h — split virtqueues (virtio 1.x, section 2.7) with every
 * guest-written field validated: a bad descriptor is reported, never trusted. */
#ifndef VMMD_VIRTIO_VIRTQ_H
#define VMMD_VIRTIO_VIRTQ_H

#include "virtio/mem.h"
#include "virtio/virtq_inflight.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define VIRTQ_MAX_SIZE 32768
#define VIRTQ_MAX_IOV 1024 /* longest chain we accept (indirect included) */

struct virtq {
	/* Set by the transport before virtq__enable(). */
	uint16_t size; /* power of two, <= VIRTQ_MAX_SIZE */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx;  /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;   /* VIRTIO_F_INDIRECT_DESC negotiated */
	const struct guest_mem *mem;
	/* A vhost-user back-end's inflight tracking (INFLIGHT_SHMFD); NULL
	 * elsewhere.  Heads it holds for re-submission are popped first. */
	struct virtq_inflight *inflight;

	/* Device-side state (saved and restored across servicing/migration). */
	uint16_t last_avail; /* next avail ring slot to consume */
	uint16_t used_idx;   /* next used ring slot to fill */
	uint16_t signalled_used;
	bool signalled_used_valid;
	bool notify_suppressed; /* virtq__set_notify(q, false) in effect */

	/* Host views of the rings, valid once enabled. */
	void *desc, *avail, *used;
	bool enabled;
};

/* One popped request: readable (out) buffers first, then writable (in) ones. */
struct virtq_elem {
	uint16_t head;
	bool resubmitted; /* from the inflight region, not the avail ring */
	unsigned int out_num, in_num;
	uint32_t out_len, in_len; /* total bytes */
	struct iovec iov[VIRTQ_MAX_IOV];
};

/* Checks the three rings lie in guest RAM and size is a power of two.
 * Returns 0 or -EINVAL with a reason in why. */
int virtq__enable(struct virtq *q, char *why, size_t whylen);
void virtq__disable(struct virtq *q);

/* 0: elem filled; -EAGAIN: nothing available; -EINVAL: the guest broke the
 * protocol (why says how): the device must be marked NEEDS_RESET. */
int virtq__pop(struct virtq *q, struct virtq_elem *e, char *why, size_t whylen);
/*
 * Gives back an element popped and not used (its head, and whether it came
 * from the re-submit list: virtq_elem.resubmitted), so the next pop returns
 * it again (QEMU's virtqueue_unpop); several go back newest first.  A head from
 * the avail ring goes back there and loses its inflight mark; a re-submitted
 * one goes back on the re-submit list, still marked.
 */
void virtq__unpop(struct virtq *q, uint16_t head, bool resubmitted);
/* For a live migration: the first `written` bytes of e's device-writable
 * buffers are dirty.  virtq__push does it for the element it is given; a
 * model that pushes a copy without the buffers calls this itself. */
void virtq__mark_written(struct virtq *q, const struct virtq_elem *e, uint32_t written);
/* Returns an element to the used ring with `written` bytes written. */
void virtq__push(struct virtq *q, const struct virtq_elem *e, uint32_t written);
/* After pushing a batch: does the guest want an interrupt now? */
bool virtq__should_notify(struct virtq *q);
/* Ask (or stop asking) the guest to kick us on new buffers. */
void virtq__set_notify(struct virtq *q, bool enable);
/* True if buffers are available (used after re-enabling notifications). */
bool virtq__has_avail(struct virtq *q);

#endif
