/* virtio/device.c — helpers models call; the transport is behind the fds. */
#include "virtio/device.h"

#include <unistd.h>

static void virtio_device__signal(int efd)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already huge: the interrupt is pending. */
	if (efd >= 0 && write(efd, &one, sizeof(one)) < 0) {
	}
}

void virtio_device__notify(struct virtio_device *vdev, unsigned int q)
{
	if (q >= vdev->nr_queues || !virtq__should_notify(&vdev->vqs[q]))
		return;
	virtio_device__signal(vdev->call_fd[q]);
}

void virtio_device__config_changed(struct virtio_device *vdev)
{
	virtio_device__signal(vdev->config_call_fd);
}
