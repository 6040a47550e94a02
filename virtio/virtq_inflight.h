/* virtio/virtq_inflight.h — a split ring's inflight region (vhost-user
 * INFLIGHT_SHMFD, "Inflight I/O tracking"): which descriptor heads a
 * back-end took from the avail ring and has not yet put in the used ring,
 * kept in shared memory the front-end holds on to, so a back-end that died
 * mid-request can be replaced by one that re-submits exactly those.
 *
 * The layout is the back-end's own (the front-end only keeps the fd); ours
 * follows the spec's split-ring one: per queue a 16-byte header and one
 * 16-byte state per descriptor, each queue's part 64-byte aligned. */
#ifndef VMMD_VIRTIO_VIRTQ_INFLIGHT_H
#define VMMD_VIRTIO_VIRTQ_INFLIGHT_H

#include <stddef.h>
#include <stdint.h>

struct virtq_inflight_desc {
	uint8_t inflight; /* 1: taken, not yet used */
	uint8_t padding[5];
	uint16_t next;	  /* the batch list, from last_batch_head */
	uint64_t counter; /* order taken, for re-submission */
};

struct virtq_inflight_region {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;	  /* descriptors this part has room for */
	uint16_t last_batch_head; /* last head put in the used ring */
	uint16_t used_idx;	  /* the used index once that batch was done */
	struct virtq_inflight_desc desc[];
};

/* A ring's tracker: the region (shared) and what only the back-end keeps. */
struct virtq_inflight {
	struct virtq_inflight_region *r; /* NULL: not tracked */
	uint64_t counter;		 /* next order number */
	uint16_t *resubmit;		 /* heads still to re-submit, oldest first */
	unsigned int nr_resubmit, next_resubmit;
};

/* Bytes of one queue's part for queues of up to desc_num descriptors. */
size_t virtq_inflight__queue_size(uint16_t desc_num);
/* Formats a fresh (zeroed) part. */
void virtq_inflight__init(struct virtq_inflight_region *r, uint16_t desc_num);

/*
 * Before a ring of `size` descriptors starts on region r (kept in t): the
 * spec's reconnect step.  The last batch, if the used index in guest RAM
 * (guest_used_idx) moved past r->used_idx, is marked done; every head
 * still in flight is queued for re-submission in the order it was taken.
 * Returns how many are in flight (the avail index to go on from is
 * guest_used_idx plus that), or -EINVAL if the region cannot describe this
 * ring (too small, or more in flight than the ring holds).
 */
int virtq_inflight__attach(struct virtq_inflight *t, struct virtq_inflight_region *r, uint16_t size,
			   uint16_t guest_used_idx);
void virtq_inflight__detach(struct virtq_inflight *t);

/* The head taken from the avail ring, before anything is done for it. */
void virtq_inflight__begin(struct virtq_inflight *t, uint16_t head);
/* The head is in the used ring at used index slot; call before publishing
 * the used index, then end() after. */
void virtq_inflight__batch(struct virtq_inflight *t, uint16_t head);
void virtq_inflight__end(struct virtq_inflight *t, uint16_t head, uint16_t used_idx);

/* The next head to re-submit, or -1 if none is left. */
int virtq_inflight__next_resubmit(struct virtq_inflight *t);
/* An element given back unused (virtq__unpop): a head taken from the avail
 * ring is no longer in flight; the last re-submitted one is re-submitted
 * again. */
void virtq_inflight__cancel(struct virtq_inflight *t, uint16_t head);
void virtq_inflight__unresubmit(struct virtq_inflight *t);
static inline unsigned int virtq_inflight__pending(const struct virtq_inflight *t)
{
	return t->nr_resubmit - t->next_resubmit;
}

#endif
