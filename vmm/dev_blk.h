/* vmm/dev_blk.h — a --disk option once parsed, shared by the two ways vmm
 * serves a disk: its own virtio-blk model on io_uring (dev_virtio_blk.c) or
 * a paravisor process over vhost-user (dev_vhost_user_blk.c). */
#ifndef VMMD_VMM_DEV_BLK_H
#define VMMD_VMM_DEV_BLK_H

#include "storage/raw_uring.h"
#include "virtio/blk.h"

#include <stdbool.h>

struct vm;

struct blk_opts {
	const char *path;
	bool readonly;
	enum blk_cache cache;
	unsigned int queues;
	bool paravisor; /* backend=paravisor */
	bool restart;	/* restart=on: a paravisor that dies is restarted */
	char id[32];
};

/* backend=paravisor: starts a paravisor for the disk and puts a virtio-pci
 * device in front of it; *id points at the device's id then.  -EINVAL after
 * saying what is wrong. */
int vhost_user_blk__add(struct vm *vm, const struct blk_opts *o, const char **id);

#endif
