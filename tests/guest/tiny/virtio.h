/*
 * tests/guest/tiny/virtio.h — a polled virtio 1.x (modern only) PCI driver
 * core: discovery, the 3.1.1 init sequence and split virtqueues; and the
 * entry points of the drivers built on it (vblk.c, vnet.c, vrng.c).
 */
#ifndef TINY_VIRTIO_H
#define TINY_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "tiny.h"

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLK 2
#define VIRTIO_ID_RNG 4

#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER 0x02
#define VIRTIO_STATUS_DRIVER_OK 0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2

/* Each device found gets a fixed 64 KiB of RAM from 2 MiB up: queue q's
 * rings at +q * 4 KiB, buffers from +VIRTIO_DATA_OFF. */
#define VIRTIO_AREA_GPA 0x200000u
#define VIRTIO_AREA_SIZE 0x10000u
#define VIRTIO_AREA_MAX 8
#define VIRTIO_DATA_OFF 0x4000u
#define VIRTQ_MAX_SIZE 16
#define VIRTIO_MAX_QUEUES 2

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[VIRTQ_MAX_SIZE];
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[VIRTQ_MAX_SIZE];
};

struct virtq {
	uint16_t size; /* as written to queue_size; ring indices wrap here */
	uint16_t avail_idx;
	uint16_t last_used;
	uint16_t next_desc;
	volatile struct virtq_desc *desc;
	volatile struct virtq_avail *avail;
	volatile struct virtq_used *used;
	volatile uint16_t *notify;
	uint16_t index;
};

struct virtio_dev {
	uint32_t bdf;
	uint16_t device_id;
	volatile uint8_t *common;
	volatile uint8_t *isr;
	volatile uint8_t *devcfg;
	volatile uint8_t *notify_base;
	uint32_t notify_mult;
	uint32_t mem; /* this device's RAM area */
	struct virtq vq[VIRTIO_MAX_QUEUES];
};

/* One buffer of a chain: device-readable, or device-writable if write. */
struct virtio_buf {
	uint32_t addr;
	uint32_t len;
	bool write;
};

/* The index-th device of this id; prints "tiny: virtio-<id> at ...". */
bool virtio__find(uint16_t device_id, unsigned int index,
		  struct virtio_dev *vd);
/* Reset .. FEATURES_OK, accepting VERSION_1 only. */
bool virtio__negotiate(struct virtio_dev *vd);
/* Rings of queue q in vd's area; size is what we write to queue_size
 * (0: the smaller of the device's maximum and VIRTQ_MAX_SIZE). */
bool virtio__setup_queue(struct virtio_dev *vd, uint16_t q, uint16_t size);
void virtio__driver_ok(struct virtio_dev *vd);
uint8_t virtio__status(struct virtio_dev *vd);
uint8_t virtio__cfg8(struct virtio_dev *vd, uint32_t off);
uint32_t virtio__cfg32(struct virtio_dev *vd, uint32_t off);
/* Starts the standard driver: negotiate, queues 0..nq-1, DRIVER_OK. */
bool virtio__start(struct virtio_dev *vd, uint16_t nq);

/* Puts a chain of n buffers in descriptors and the avail ring: its head. */
uint16_t virtq__submit(struct virtq *vq, const struct virtio_buf *bufs,
		       unsigned int n);
/* Makes the chain starting at head available (descriptors already set). */
void virtq__publish(struct virtq *vq, uint16_t head);
void virtq__kick(struct virtq *vq);
/* Waits up to secs for a used element: true with its id and len. */
bool virtq__wait(struct virtq *vq, uint32_t secs, uint32_t *id,
		 uint32_t *len);

/* Timeouts counted in CMOS RTC second ticks (secs - 1 < t <= secs). */
struct deadline {
	uint8_t sec;
	uint32_t left;
	uint32_t spins;
};
void deadline__start(struct deadline *d, uint32_t secs);
bool deadline__passed(struct deadline *d);

void virtio__put_hex_bytes(const volatile uint8_t *p, uint32_t n);

/* Drivers: each prints its report and powers the guest off (vnet__run
 * returns instead with heartbeat=N). */
void vblk__run(enum tiny_virtio mode) __attribute__((noreturn));
void vnet__run(void);
void vrng__run(void) __attribute__((noreturn));

#endif
