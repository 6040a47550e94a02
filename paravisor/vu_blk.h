/* paravisor/vu_blk.h — the paravisor's disk: --disk option to a virtio-blk
 * model on an io_uring raw image. */
#ifndef VMMD_PARAVISOR_VU_BLK_H
#define VMMD_PARAVISOR_VU_BLK_H

#include "virtio/device.h"

/*
 * --disk path=FILE[,readonly=on|off][,cache=none|writeback][,queues=N][,id=NAME],
 * the syntax of vmm's --disk; queues defaults to 1 (a vhost-user front-end
 * uses up to that many, and asks with GET_QUEUE_NUM).  A bad option or image
 * is logged on one line naming the key or file; NULL then.
 */
struct virtio_device *vu_blk__create(const char *opt);

#endif
