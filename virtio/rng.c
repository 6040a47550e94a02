/*
 * virtio/rng.c — virtio-rng: one request queue whose writable buffers are
 * filled from getrandom(2).  One thread per device, woken by the kick
 * eventfd; a guest protocol error fails the device and parks the thread.
 */
#include "virtio/rng.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

struct virtio_rng {
	struct virtio_device vdev;
	pthread_t thread;
	bool running;
	int stop_fd;
	struct virtq_elem elem;
};

static uint16_t rng__queue_max_size(struct virtio_device *vdev, unsigned int q)
{
	return 256;
}

static void rng__fill(const struct iovec *iov, unsigned int n, uint32_t *written)
{
	for (unsigned int i = 0; i < n; i++) {
		size_t done = 0;

		while (done < iov[i].iov_len) {
			ssize_t r =
			    getrandom((uint8_t *)iov[i].iov_base + done, iov[i].iov_len - done, 0);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return; /* cannot happen with the urandom pool */
			done += (size_t)r;
			*written += (uint32_t)r;
		}
	}
}

/* Drains the queue; false once the guest broke the protocol. */
static bool rng__process(struct virtio_rng *rng)
{
	struct virtq *q = &rng->vdev.vqs[0];
	char why[128];
	int err;

	for (;;) {
		virtq__set_notify(q, false);
		while ((err = virtq__pop(q, &rng->elem, why, sizeof(why))) == 0) {
			uint32_t written = 0;

			rng__fill(rng->elem.iov + rng->elem.out_num, rng->elem.in_num, &written);
			virtq__push(q, &rng->elem, written);
		}
		virtio_device__notify(&rng->vdev, 0);
		if (err != -EAGAIN) {
			rng->vdev.fail(&rng->vdev, why);
			return false;
		}
		virtq__set_notify(q, true);
		if (!virtq__has_avail(q))
			return true;
	}
}

static void *rng__thread(void *arg)
{
	struct virtio_rng *rng = arg;
	struct pollfd pfd[2] = {
	    {.fd = rng->stop_fd, .events = POLLIN},
	    {.fd = rng->vdev.kick_fd[0], .events = POLLIN},
	};
	bool ok = rng__process(rng); /* buffers queued before DRIVER_OK */

	for (;;) {
		uint64_t v;

		if (poll(pfd, ok ? 2 : 1, -1) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		if (ok && pfd[1].revents && read(pfd[1].fd, &v, sizeof(v)) >= 0)
			ok = rng__process(rng);
	}
	return NULL;
}

static int rng__start(struct virtio_device *vdev)
{
	struct virtio_rng *rng = vdev->priv;
	uint64_t v;
	int err;

	if (rng->running)
		return 0;
	if (!rng->vdev.vqs[0].enabled)
		return -EINVAL;
	while (read(rng->stop_fd, &v, sizeof(v)) > 0) {
	}
	err = pthread_create(&rng->thread, NULL, rng__thread, rng);
	if (err)
		return -err;
	rng->running = true;
	return 0;
}

static void rng__stop(struct virtio_device *vdev)
{
	struct virtio_rng *rng = vdev->priv;
	uint64_t one = 1;

	if (!rng->running)
		return;
	if (write(rng->stop_fd, &one, sizeof(one)) < 0) {
	}
	pthread_join(rng->thread, NULL);
	rng->running = false;
}

static void rng__destroy(struct virtio_device *vdev)
{
	struct virtio_rng *rng = vdev->priv;

	rng__stop(vdev);
	close(rng->stop_fd);
	free(rng);
}

static const struct virtio_device_ops rng_ops = {
    .type = "virtio-rng",
    .device_id = VIRTIO_ID_RNG,
    .queue_max_size = rng__queue_max_size,
    .start = rng__start,
    .stop = rng__stop,
    .destroy = rng__destroy,
};

struct virtio_device *virtio_rng__create(const char *id)
{
	struct virtio_rng *rng = calloc(1, sizeof(*rng));

	if (!rng)
		return NULL;
	rng->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (rng->stop_fd < 0) {
		free(rng);
		return NULL;
	}
	rng->vdev.ops = &rng_ops;
	rng->vdev.priv = rng;
	rng->vdev.nr_queues = 1;
	snprintf(rng->vdev.id, sizeof(rng->vdev.id), "%s", id);
	return &rng->vdev;
}
