/* virtio/refuser.c — answering a gone device's requests with errors (see
 * the header).  The thread touches only the rings and the call eventfds,
 * like a model's, and the transport stops it (through the model's stop)
 * before it changes either. */
#include "virtio/refuser.h"

#include "common/log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct virtio_refuser {
	struct virtio_device *vdev;
	virtio_refuse_fn fn;
	int stop_efd;
	pthread_t thread;
	unsigned long answered;
};

/* Answers what is available on every enabled queue.  A queue the guest
 * broke is only logged: the device has failed already. */
static void refuser__drain(struct virtio_refuser *r)
{
	struct virtio_device *vdev = r->vdev;

	for (unsigned int q = 0; q < vdev->nr_queues; q++) {
		struct virtq *vq = &vdev->vqs[q];
		struct virtq_elem e;
		unsigned int n = 0;
		char why[128];
		int ret;

		if (!vq->enabled)
			continue;
		while ((ret = virtq__pop(vq, &e, why, sizeof(why))) == 0) {
			virtq__push(vq, &e, r->fn(vdev, &e));
			n++;
		}
		if (ret != -EAGAIN)
			pr_warn_once("%s: queue %u: %s", vdev->id, q, why);
		if (n)
			virtio_device__notify(vdev, q);
		r->answered += n;
	}
}

static void *refuser__thread(void *arg)
{
	struct virtio_refuser *r = arg;
	struct virtio_device *vdev = r->vdev;
	struct pollfd p[VIRTIO_MAX_QUEUES + 1];
	unsigned int n = 0;
	uint64_t v;

	p[n++] = (struct pollfd){r->stop_efd, POLLIN, 0};
	for (unsigned int q = 0; q < vdev->nr_queues; q++)
		if (vdev->vqs[q].enabled && vdev->kick_fd[q] >= 0)
			p[n++] = (struct pollfd){vdev->kick_fd[q], POLLIN, 0};
	for (;;) {
		refuser__drain(r);
		if (poll(p, n, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		for (unsigned int i = 1; i < n; i++)
			if (p[i].revents && read(p[i].fd, &v, sizeof(v)) < 0) {
				/* EAGAIN: another wake-up drained it */
			}
	}
	return NULL;
}

struct virtio_refuser *virtio_refuser__start(struct virtio_device *vdev, virtio_refuse_fn fn)
{
	struct virtio_refuser *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return NULL;
	r->vdev = vdev;
	r->fn = fn;
	r->stop_efd = eventfd(0, EFD_CLOEXEC);
	if (r->stop_efd < 0)
		goto out_free;
	for (unsigned int q = 0; q < vdev->nr_queues; q++) {
		struct virtq *vq = &vdev->vqs[q];
		uint16_t used;

		if (!vq->enabled)
			continue;
		/* The used ring's index (little-endian, x86 only), after the
		 * flags: how far the gone model got, as the guest sees it. */
		used = __atomic_load_n((uint16_t *)vq->used + 1, __ATOMIC_ACQUIRE);
		vq->last_avail = vq->used_idx = used;
		vq->signalled_used_valid = false;
	}
	err = pthread_create(&r->thread, NULL, refuser__thread, r);
	if (err) {
		errno = err;
		close(r->stop_efd);
		goto out_free;
	}
	return r;

out_free:
	free(r);
	return NULL;
}

void virtio_refuser__stop(struct virtio_refuser *r)
{
	uint64_t one = 1;

	if (!r)
		return;
	if (write(r->stop_efd, &one, sizeof(one)) < 0) {
	}
	pthread_join(r->thread, NULL);
	close(r->stop_efd);
	if (r->answered)
		pr_info("%s: answered %lu request(s) with an error while the device was gone",
			r->vdev->id, r->answered);
	free(r);
}
