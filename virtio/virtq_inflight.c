/*
 * virtio/virtq_inflight.c — the inflight region's split-ring algorithm
 * (vhost-user, "Inflight I/O tracking").  Only the back-end that runs the
 * ring writes the region; the front-end keeps its fd across back-ends.
 *
 * A head is marked in flight (with an order number) as soon as it is
 * taken from the avail ring, and cleared only after the used index that
 * covers it is published.  A back-end killed anywhere in between leaves
 * one of three states, all of which attach() resolves: marked and not in
 * the used ring (re-submitted), in the used ring and still marked (the
 * used index in guest RAM is ahead of region->used_idx: the last batch is
 * done, clear it), or cleared (nothing to do).  Our batches hold one head:
 * the used index is published per request.
 *
 * The region is written by another process, so every index read from it is
 * checked against the ring before use.
 */
#include "virtio/virtq_inflight.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INFLIGHT_ALIGN	 64
#define INFLIGHT_VERSION 1

size_t virtq_inflight__queue_size(uint16_t desc_num)
{
	size_t n = sizeof(struct virtq_inflight_region) +
		   (size_t)desc_num * sizeof(struct virtq_inflight_desc);

	return (n + INFLIGHT_ALIGN - 1) & ~(size_t)(INFLIGHT_ALIGN - 1);
}

void virtq_inflight__init(struct virtq_inflight_region *r, uint16_t desc_num)
{
	memset(r, 0, virtq_inflight__queue_size(desc_num));
	r->version = INFLIGHT_VERSION;
	r->desc_num = desc_num;
}

void virtq_inflight__detach(struct virtq_inflight *t)
{
	free(t->resubmit);
	memset(t, 0, sizeof(*t));
}

struct inflight_order {
	uint64_t counter;
	uint16_t head;
};

static int inflight_order__cmp(const void *a, const void *b)
{
	const struct inflight_order *x = a, *y = b;

	return x->counter < y->counter ? -1 : x->counter > y->counter;
}

int virtq_inflight__attach(struct virtq_inflight *t, struct virtq_inflight_region *r, uint16_t size,
			   uint16_t guest_used_idx)
{
	struct inflight_order *order;
	unsigned int n = 0;
	uint64_t next = 0;

	virtq_inflight__detach(t);
	if (r->desc_num < size || !size)
		return -EINVAL;
	/* The last batch reached the guest but was not cleared here. */
	if (r->used_idx != guest_used_idx) {
		if (r->last_batch_head < size)
			__atomic_store_n(&r->desc[r->last_batch_head].inflight, 0,
					 __ATOMIC_RELEASE);
		r->used_idx = guest_used_idx;
	}
	order = calloc(size, sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (unsigned int i = 0; i < r->desc_num; i++) {
		struct virtq_inflight_desc *d = &r->desc[i];

		if (!d->inflight)
			continue;
		if (i >= size) {
			/* From a larger ring before a device reset: stale. */
			d->inflight = 0;
			continue;
		}
		order[n].counter = d->counter;
		order[n].head = (uint16_t)i;
		n++;
		if (d->counter >= next)
			next = d->counter + 1;
	}
	qsort(order, n, sizeof(*order), inflight_order__cmp);
	t->resubmit = n ? calloc(n, sizeof(*t->resubmit)) : NULL;
	if (n && !t->resubmit) {
		free(order);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < n; i++)
		t->resubmit[i] = order[i].head;
	free(order);
	t->r = r;
	t->counter = next;
	t->nr_resubmit = n;
	t->next_resubmit = 0;
	return (int)n;
}

void virtq_inflight__begin(struct virtq_inflight *t, uint16_t head)
{
	struct virtq_inflight_desc *d = &t->r->desc[head];

	d->counter = t->counter++;
	/* Release: the order number is there before the mark. */
	__atomic_store_n(&d->inflight, 1, __ATOMIC_RELEASE);
}

void virtq_inflight__batch(struct virtq_inflight *t, uint16_t head)
{
	t->r->desc[head].next = t->r->last_batch_head;
	__atomic_store_n(&t->r->last_batch_head, head, __ATOMIC_RELEASE);
}

void virtq_inflight__end(struct virtq_inflight *t, uint16_t head, uint16_t used_idx)
{
	__atomic_store_n(&t->r->desc[head].inflight, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&t->r->used_idx, used_idx, __ATOMIC_RELEASE);
}

int virtq_inflight__next_resubmit(struct virtq_inflight *t)
{
	if (t->next_resubmit >= t->nr_resubmit)
		return -1;
	return t->resubmit[t->next_resubmit++];
}

void virtq_inflight__cancel(struct virtq_inflight *t, uint16_t head)
{
	__atomic_store_n(&t->r->desc[head].inflight, 0, __ATOMIC_RELEASE);
}

void virtq_inflight__unresubmit(struct virtq_inflight *t)
{
	if (t && t->next_resubmit)
		t->next_resubmit--;
}
