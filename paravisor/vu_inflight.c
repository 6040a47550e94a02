/*
 * paravisor/vu_inflight.c — making and mapping the inflight region.
 *
 * The front-end trusts nothing about the layout (it keeps the fd only), so
 * it is ours: num_queues parts of virtq_inflight__queue_size(queue_size)
 * bytes each.  A region handed to us by SET_INFLIGHT_FD was made by an
 * earlier paravisor, maybe another build: sizes and each part's header are
 * checked before a ring uses it.
 */
#include "paravisor/vu_inflight.h"

#include "common/why.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int vu_inflight__check(const struct vhost_user_inflight *m, size_t *size, char *why,
			      size_t whylen)
{
	if (!m->num_queues || m->num_queues > VIRTIO_MAX_QUEUES || !m->queue_size ||
	    m->queue_size > VIRTQ_MAX_SIZE)
		return why__set(why, whylen, -EINVAL,
				"%u queue(s) of %u descriptors (at most %d of %d)", m->num_queues,
				m->queue_size, VIRTIO_MAX_QUEUES, VIRTQ_MAX_SIZE);
	*size = (size_t)m->num_queues * virtq_inflight__queue_size(m->queue_size);
	return 0;
}

void vu_inflight__clear(struct vu_inflight *in)
{
	for (unsigned int q = 0; q < VIRTIO_MAX_QUEUES; q++)
		virtq_inflight__detach(&in->q[q]);
	if (in->base)
		munmap(in->base, in->size);
	in->base = NULL;
	in->size = 0;
	in->num_queues = in->queue_size = 0;
}

static int vu_inflight__map(struct vu_inflight *in, int fd, size_t size, uint64_t offset,
			    const struct vhost_user_inflight *m, char *why, size_t whylen)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);

	if (p == MAP_FAILED)
		return why__set(why, whylen, -errno, "cannot map %zu bytes at offset %llu: %s",
				size, (unsigned long long)offset, strerror(errno));
	vu_inflight__clear(in);
	in->base = p;
	in->size = size;
	in->num_queues = m->num_queues;
	in->queue_size = m->queue_size;
	return 0;
}

int vu_inflight__create(struct vu_inflight *in, const struct vhost_user_inflight *req,
			struct vhost_user_inflight *reply, int *fd, char *why, size_t whylen)
{
	size_t size, part = virtq_inflight__queue_size(req->queue_size);
	int err, mfd;

	err = vu_inflight__check(req, &size, why, whylen);
	if (err)
		return err;
	mfd = memfd_create("vhost-user-inflight", MFD_CLOEXEC);
	if (mfd < 0)
		return why__set(why, whylen, -errno, "memfd_create: %s", strerror(errno));
	if (ftruncate(mfd, (off_t)size)) {
		err = why__set(why, whylen, -errno, "ftruncate to %zu bytes: %s", size,
			       strerror(errno));
		goto out_close;
	}
	err = vu_inflight__map(in, mfd, size, 0, req, why, whylen);
	if (err)
		goto out_close;
	for (unsigned int q = 0; q < req->num_queues; q++)
		virtq_inflight__init((void *)((char *)in->base + q * part), req->queue_size);
	*reply = (struct vhost_user_inflight){
	    .mmap_size = size,
	    .mmap_offset = 0,
	    .num_queues = req->num_queues,
	    .queue_size = req->queue_size,
	};
	*fd = mfd;
	return 0;

out_close:
	close(mfd);
	return err;
}

int vu_inflight__set(struct vu_inflight *in, const struct vhost_user_inflight *m, int fd, char *why,
		     size_t whylen)
{
	size_t size;
	int err = vu_inflight__check(m, &size, why, whylen);

	if (err)
		return err;
	if (m->mmap_size != size)
		return why__set(why, whylen, -EINVAL,
				"a region of %llu bytes for %u queue(s) of %u descriptors (this "
				"back-end's layout needs %zu)",
				(unsigned long long)m->mmap_size, m->num_queues, m->queue_size,
				size);
	if (m->mmap_offset % (uint64_t)sysconf(_SC_PAGESIZE))
		return why__set(why, whylen, -EINVAL, "offset %llu is not page aligned",
				(unsigned long long)m->mmap_offset);
	return vu_inflight__map(in, fd, size, m->mmap_offset, m, why, whylen);
}

struct virtq_inflight_region *vu_inflight__queue(struct vu_inflight *in, unsigned int q)
{
	struct virtq_inflight_region *r;

	if (!in->base || q >= in->num_queues)
		return NULL;
	r = (void *)((char *)in->base + q * virtq_inflight__queue_size(in->queue_size));
	/* Another back-end wrote it: a part that does not fit is not used. */
	if (r->desc_num != in->queue_size)
		return NULL;
	return r;
}
