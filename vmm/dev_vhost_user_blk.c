/*
 * vmm/dev_vhost_user_blk.c — a --disk with backend=paravisor: what is
 * particular to a disk served by a paravisor (vmm/dev_vhost_user.c does the
 * rest).  vmm opens the image and hands it to each paravisor of the disk;
 * once the paravisor is gone for good (not restarted), requests fail with
 * an I/O error.
 */
#include "common/log.h"
#include "vmm/dev_blk.h"
#include "vmm/dev_vhost_user.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The paravisor is gone: a request fails with VIRTIO_BLK_S_IOERR in its
 * status byte, the last byte the device may write. */
static uint32_t pv_disk__refuse(struct virtio_device *vdev, struct virtq_elem *e)
{
	const struct iovec *last;

	if (!e->in_num)
		return 0;
	last = &e->iov[e->out_num + e->in_num - 1];
	if (!last->iov_len)
		return 0;
	((uint8_t *)last->iov_base)[last->iov_len - 1] = VIRTIO_BLK_S_IOERR;
	return 1;
}

/* vmm opens the image and hands it to each paravisor of the disk: a new one
 * (servicing, restart) gets the very same file even if the path changed
 * meanwhile, and none needs a right to open it by name.  The fd, or
 * -EINVAL (a bad --disk: vmm exits 2) after saying why. */
static int pv_disk__open_image(const struct blk_opts *o)
{
	struct stat st;
	int fd = open(o->path, (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		int err = fd < 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : ENOTSUP;

		pr_err("disk \"%s\": cannot open %s: %s", o->id, o->path,
		       err == ENOTSUP ? "not a regular file" : strerror(err));
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	return fd;
}

int vhost_user_blk__add(struct vm *vm, const struct blk_opts *o, const char **id)
{
	struct pv_dev_desc desc = {
	    .noun = "disk",
	    .flag = "--disk",
	    .opt_head = "",
	    .serviceable = true,
	    .restart = o->restart,
	    .fc =
		{
		    .id = o->id,
		    .type = "virtio-blk",
		    .device_id = VIRTIO_ID_BLOCK,
		    .config_size = sizeof(struct virtio_blk_config),
		    .queue_size = VIRTIO_BLK_QUEUE_SIZE,
		    .nr_queues = o->queues,
		    .refuse = pv_disk__refuse,
		},
	};
	char opt[4200];

	desc.extra_fd = pv_disk__open_image(o);
	if (desc.extra_fd < 0)
		return desc.extra_fd;
	/* The paravisor's --disk: the same keys, already checked by vmm; the
	 * image is the descriptor it is handed (fd=, which vmm adds; path=
	 * only names it in messages). */
	snprintf(opt, sizeof(opt), "path=%s,readonly=%s,cache=%s,queues=%u,id=%s", o->path,
		 o->readonly ? "on" : "off", o->cache == BLK_CACHE_NONE ? "none" : "writeback",
		 o->queues, o->id);
	desc.opt = opt;
	return pv_dev__add(vm, &desc, id);
}
