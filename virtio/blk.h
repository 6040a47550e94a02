/* virtio/blk.h — the virtio-blk device model (virtio 1.2, section 5.2). */
#ifndef VMMD_VIRTIO_BLK_H
#define VMMD_VIRTIO_BLK_H

#include "virtio/device.h"

struct blk_backend;

/* Request types (5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_QUEUE_SIZE 256
/* queue size - 2, as QEMU: a 1 MiB request of 4 KiB pages fits one request */
#define VIRTIO_BLK_SEG_MAX (VIRTIO_BLK_QUEUE_SIZE - 2)
#define VIRTIO_BLK_MAX_DISCARD_SEG 16
/* One discard / write-zeroes segment never exceeds this (1 GiB). */
#define VIRTIO_BLK_MAX_DISCARD_SECTORS (1u << 21)

/* Device configuration layout (5.2.4), little-endian, up to the fields we offer. */
struct virtio_blk_config {
	uint64_t capacity; /* 512-byte sectors */
	uint32_t size_max;
	uint32_t seg_max;
	struct {
		uint16_t cylinders;
		uint8_t heads;
		uint8_t sectors;
	} geometry;
	uint32_t blk_size;
	struct {
		uint8_t physical_block_exp;
		uint8_t alignment_offset;
		uint16_t min_io_size;
		uint32_t opt_io_size;
	} topology;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));

/*
 * A virtio-blk device on an open backend, with nr_queues request queues
 * (1..VIRTIO_MAX_QUEUES).  id names it in messages and answers GET_ID (first
 * 20 bytes).  The device owns the backend from here on, including on
 * failure.  Returns NULL with errno set.  ops->destroy frees it.
 */
struct virtio_device *virtio_blk__create(const char *id, struct blk_backend *backend,
					 unsigned int nr_queues);

/* What the device has done since it was created (or since the counters
 * were set): completed requests, data bytes they moved, and how many were
 * answered with an error.  Kept across a paravisor's servicing. */
struct virtio_blk_counters {
	uint64_t requests;
	uint64_t bytes;
	uint64_t errors;
};

/* Only while the device is stopped (the model's thread owns them otherwise). */
void virtio_blk__get_counters(struct virtio_device *vdev, struct virtio_blk_counters *c);
void virtio_blk__set_counters(struct virtio_device *vdev, const struct virtio_blk_counters *c);

#endif
