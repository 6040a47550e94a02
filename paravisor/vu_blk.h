/* paravisor/vu_blk.h — the paravisor's disk: --disk option to a virtio-blk
 * model on an io_uring raw image. */
#ifndef VMMD_PARAVISOR_VU_BLK_H
#define VMMD_PARAVISOR_VU_BLK_H

#include "virtio/device.h"

#include <stdbool.h>
#include <stdint.h>

/* The image behind the disk: what its saved state names, so that a state
 * is never restored onto another disk. */
struct vu_blk_info {
	char path[4096]; /* as given in --disk */
	uint64_t size;	 /* bytes */
	bool readonly;
};

/*
 * --disk path=FILE[,readonly=on|off][,cache=none|writeback][,queues=N][,id=NAME],
 * the syntax of vmm's --disk; queues defaults to 1 (a vhost-user front-end
 * uses up to that many, and asks with GET_QUEUE_NUM).  A bad option or image
 * is logged on one line naming the key or file; NULL then.  info (if not
 * NULL) gets the image's identity.
 */
struct virtio_device *vu_blk__create(const char *opt, struct vu_blk_info *info);

#endif
