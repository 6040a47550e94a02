/* tests/unit/net_fake.h — fake guest RAM with a driver-side view of split
 * virtqueues, for driving the virtio-net model without a VM. */
#ifndef VMMD_TESTS_NET_FAKE_H
#define VMMD_TESTS_NET_FAKE_H

#include "virtio/device.h"
#include "virtio/virtq.h"

#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FAKE_RAM_GPA  0x100000ULL
#define FAKE_RAM_SIZE (4u << 20)
#define FAKE_QSIZE    64

struct fake_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
} __attribute__((packed));

struct fake_vq {
	uint64_t desc, avail, used; /* gpa */
	uint16_t avail_idx, next_desc, used_seen;
};

struct fake_guest {
	struct guest_mem mem;
	uint8_t *ram;
	uint64_t brk; /* next free gpa for buffers */
	struct fake_vq vq[2];
	int notified[2];
};

static inline void *fake__ptr(struct fake_guest *g, uint64_t gpa)
{
	return g->ram + (gpa - FAKE_RAM_GPA);
}

static inline uint64_t fake__alloc(struct fake_guest *g, uint64_t len)
{
	uint64_t gpa = g->brk;

	g->brk += (len + 15) & ~15ULL;
	return gpa;
}

/* Lays out the rings of both queues and enables them on vdev. */
static inline void fake__init(struct fake_guest *g, struct virtio_device *vdev)
{
	char why[128];

	memset(g, 0, sizeof(*g));
	g->ram = calloc(1, FAKE_RAM_SIZE);
	g->mem.nr = 1;
	g->mem.r[0] =
	    (struct guest_mem_region){.gpa = FAKE_RAM_GPA, .size = FAKE_RAM_SIZE, .hva = g->ram};
	g->brk = FAKE_RAM_GPA;
	vdev->mem = &g->mem;
	for (int q = 0; q < 2; q++) {
		struct virtq *vq = &vdev->vqs[q];

		g->vq[q].desc = fake__alloc(g, 16 * FAKE_QSIZE);
		g->vq[q].avail = fake__alloc(g, 6 + 2 * FAKE_QSIZE);
		g->vq[q].used = fake__alloc(g, 6 + 8 * FAKE_QSIZE);
		vq->size = FAKE_QSIZE;
		vq->desc_gpa = g->vq[q].desc;
		vq->avail_gpa = g->vq[q].avail;
		vq->used_gpa = g->vq[q].used;
		vq->mem = &g->mem;
		if (virtq__enable(vq, why, sizeof(why)))
			abort();
	}
}

static inline void fake__exit(struct fake_guest *g)
{
	free(g->ram);
}

/* Posts one chain of n buffers; returns its head. */
static inline uint16_t fake__post(struct fake_guest *g, int q, const uint64_t *gpa,
				  const uint32_t *len, const bool *writable, int n)
{
	struct fake_vq *v = &g->vq[q];
	struct fake_desc *d = fake__ptr(g, v->desc);
	uint16_t head = v->next_desc % FAKE_QSIZE;
	uint16_t *avail = fake__ptr(g, v->avail);

	for (int i = 0; i < n; i++) {
		uint16_t idx = (v->next_desc++) % FAKE_QSIZE;

		d[idx].addr = htole64(gpa[i]);
		d[idx].len = htole32(len[i]);
		d[idx].flags = htole16((writable[i] ? 2 : 0) | (i + 1 < n ? 1 : 0));
		d[idx].next = htole16((idx + 1) % FAKE_QSIZE);
	}
	avail[2 + v->avail_idx % FAKE_QSIZE] = htole16(head);
	__atomic_store_n(&avail[1], htole16(++v->avail_idx), __ATOMIC_RELEASE);
	return head;
}

static inline uint16_t fake__used_idx(struct fake_guest *g, int q)
{
	uint16_t *used = fake__ptr(g, g->vq[q].used);

	return le16toh(__atomic_load_n(&used[1], __ATOMIC_ACQUIRE));
}

/* Waits up to 3 s for the used index to reach want. */
static inline bool fake__wait_used(struct fake_guest *g, int q, uint16_t want)
{
	for (int i = 0; i < 3000; i++) {
		if ((uint16_t)(fake__used_idx(g, q) - want) < 0x8000)
			return true;
		usleep(1000);
	}
	return false;
}

static inline void fake__used_elem(struct fake_guest *g, int q, uint16_t i, uint32_t *id,
				   uint32_t *len)
{
	uint32_t *e =
	    (uint32_t *)((uint8_t *)fake__ptr(g, g->vq[q].used) + 4 + 8 * (i % FAKE_QSIZE));

	*id = le32toh(e[0]);
	*len = le32toh(e[1]);
}

static inline void fake__kick(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != sizeof(one))
		abort();
}

#endif
