/* virtio/blk.c — virtio-blk (virtio 1.2, section 5.2) on a storage backend.
 *
 * One thread per device waits (epoll) on the kick eventfds of its queues and
 * on the backend's completion eventfd.  A kick pops every available request,
 * queues them all on the backend and submits once; completions are pushed
 * to the used rings and each touched queue is notified once per batch.
 * Everything in a request is the guest's: it is checked before use, and a
 * request that breaks the protocol marks the device NEEDS_RESET. */
#include "virtio/blk.h"

#include "common/log.h"
#include "storage/raw_uring.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define BLK_SECTOR_SHIFT 9
#define BLK_SECTOR_SIZE 512u
#define BLK_NR_REQS 128
#define BLK_BACKEND_DEPTH 256
#define BLK_EV_BACKEND 0xffffu
#define BLK_EV_WAKE	  0xfffeu

struct blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk_discard_seg {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags; /* bit 0: unmap (write zeroes only) */
};

struct blk_req {
	struct virtio_blk *blk;
	unsigned int q;
	uint8_t *status;
	uint32_t written; /* data bytes written into the guest on success */
	uint64_t bytes;	  /* data bytes the request moves, for the counters */
	unsigned int pending;
	uint8_t result;
	struct blk_req *next;
	struct virtq_elem elem; /* large: last */
};

struct virtio_blk {
	struct virtio_device vdev;
	struct blk_backend *be;
	struct virtio_blk_config cfg;
	char serial[VIRTIO_BLK_ID_BYTES];

	/* The model's thread lives from the first start (or prepare) to
	 * destroy, waiting in epoll on its own set (see blk__thread).  Who
	 * serves holds lock: the thread for each batch of events, start and
	 * stop for their whole work, so neither needs the thread to run. */
	pthread_t thread;
	bool thread_alive;
	bool exiting; /* destroy: the thread ends */
	bool running;
	bool failed; /* NEEDS_RESET: take no more requests until a reset */
	pthread_mutex_t lock;
	int epfd;     /* the thread's set: wake_efd, and while running the rest */
	int wake_efd; /* destroy's wake-up */
	int armed_kick[VIRTIO_MAX_QUEUES]; /* kick fds in epfd while running, else -1 */
	struct blk_req *reqs[BLK_NR_REQS];
	struct blk_req *free;
	bool notify[VIRTIO_MAX_QUEUES];
	bool stalled[VIRTIO_MAX_QUEUES]; /* stopped popping for lack of room */
	struct virtio_blk_counters counters; /* the model's thread's; read when stopped */
};

static struct virtio_blk *to_blk(struct virtio_device *vdev)
{
	return vdev->priv;
}

static uint64_t blk__capacity(struct virtio_blk *blk)
{
	return le64toh(__atomic_load_n(&blk->cfg.capacity, __ATOMIC_RELAXED));
}

/* A request past the end: maybe the image grew.  Re-read its size and tell
 * the guest (config change) when it changed. */
static void blk__refresh_capacity(struct virtio_blk *blk)
{
	if (blk_backend__refresh_size(blk->be) <= 0)
		return;
	__atomic_store_n(&blk->cfg.capacity,
			 htole64(blk_backend__size(blk->be) >> BLK_SECTOR_SHIFT), __ATOMIC_RELAXED);
	pr_info("%s: image size changed: %llu sectors", blk->vdev.id,
		(unsigned long long)blk__capacity(blk));
	virtio_device__config_changed(&blk->vdev);
}

static bool blk__in_range(struct virtio_blk *blk, uint64_t sector, uint64_t nsec)
{
	uint64_t cap = blk__capacity(blk);

	if (sector <= cap && nsec <= cap - sector)
		return true;
	blk__refresh_capacity(blk);
	cap = blk__capacity(blk);
	return sector <= cap && nsec <= cap - sector;
}

static void blk__fail(struct virtio_blk *blk, const char *why)
{
	if (blk->failed)
		return;
	blk->failed = true;
	blk->vdev.fail(&blk->vdev, why);
}

static void blk__complete(struct virtio_blk *blk, struct blk_req *r)
{
	struct virtq *vq = &blk->vdev.vqs[r->q];

	*r->status = r->result;
	/* The status byte was cut off the element's last buffer (it may have
	 * been all of it), so virtq__push would not mark its page for a
	 * migration: a destination would see the byte from before. */
	if (vq->mem && guest_mem__tracked(vq->mem))
		guest_mem__mark_dirty(vq->mem, r->status, 1);
	blk->counters.requests++;
	if (r->result == VIRTIO_BLK_S_OK)
		blk->counters.bytes += r->bytes;
	else
		blk->counters.errors++;
	virtq__push(vq, &r->elem,
		    (r->result == VIRTIO_BLK_S_OK ? r->written : 0) + 1);
	blk->notify[r->q] = true;
	r->next = blk->free;
	blk->free = r;
}

static uint8_t blk__status_of(int res)
{
	return res == -EOPNOTSUPP || res == -ENOTTY ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
}

static void blk__done(void *cookie, int res, void *opaque)
{
	struct blk_req *r = cookie;

	if (res < 0 && r->result == VIRTIO_BLK_S_OK) {
		r->result = blk__status_of(res);
		pr_warn_once("%s: I/O error: %s", r->blk->vdev.id, strerror(-res));
	}
	if (--r->pending == 0)
		blk__complete(r->blk, r);
}

/* Copies len bytes starting at byte skip of the iovecs; false if too short. */
static bool iov_gather(const struct iovec *iov, unsigned int n, size_t skip, void *dst,
		       size_t len)
{
	uint8_t *d = dst;

	for (unsigned int i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l -= skip;
		if (l > len)
			l = len;
		memcpy(d, (uint8_t *)iov[i].iov_base + skip, l);
		d += l;
		len -= l;
		skip = 0;
	}
	return len == 0;
}

static uint32_t iov_scatter(const struct iovec *iov, unsigned int n, const void *src,
			    size_t len)
{
	const uint8_t *s = src;
	uint32_t done = 0;

	for (unsigned int i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len < len ? iov[i].iov_len : len;

		memcpy(iov[i].iov_base, s, l);
		s += l;
		len -= l;
		done += (uint32_t)l;
	}
	return done;
}

/* Drops the first skip bytes of the iovecs in place; returns the new start. */
static struct iovec *iov_skip(struct iovec *iov, unsigned int *n, size_t skip)
{
	while (*n && skip >= iov->iov_len) {
		skip -= iov->iov_len;
		iov++;
		(*n)--;
	}
	if (*n && skip) {
		iov->iov_base = (uint8_t *)iov->iov_base + skip;
		iov->iov_len -= skip;
	}
	return iov;
}

/* Queues one discard or write-zeroes request: validates every segment first. */
static uint8_t blk__discard(struct virtio_blk *blk, struct blk_req *r, uint32_t type,
			    struct iovec *iov, unsigned int n, size_t len)
{
	struct blk_discard_seg seg[VIRTIO_BLK_MAX_DISCARD_SEG];
	unsigned int nseg = (unsigned int)(len / sizeof(seg[0]));

	if (!len || len % sizeof(seg[0]) || nseg > VIRTIO_BLK_MAX_DISCARD_SEG)
		return VIRTIO_BLK_S_IOERR;
	if (!iov_gather(iov, n, 0, seg, len))
		return VIRTIO_BLK_S_IOERR;
	for (unsigned int i = 0; i < nseg; i++) {
		uint32_t flags = le32toh(seg[i].flags);

		seg[i].sector = le64toh(seg[i].sector);
		seg[i].num_sectors = le32toh(seg[i].num_sectors);
		if (flags & ~1u || (type == VIRTIO_BLK_T_DISCARD && flags))
			return VIRTIO_BLK_S_UNSUPP;
		if (seg[i].num_sectors > VIRTIO_BLK_MAX_DISCARD_SECTORS ||
		    !blk__in_range(blk, seg[i].sector, seg[i].num_sectors))
			return VIRTIO_BLK_S_IOERR;
		seg[i].flags = flags;
	}
	for (unsigned int i = 0; i < nseg; i++) {
		uint64_t off = seg[i].sector << BLK_SECTOR_SHIFT;
		uint64_t bytes = (uint64_t)seg[i].num_sectors << BLK_SECTOR_SHIFT;
		int err;

		if (!bytes)
			continue;
		if (type == VIRTIO_BLK_T_DISCARD)
			err = blk_backend__discard(blk->be, off, bytes, r);
		else
			err = blk_backend__write_zeroes(blk->be, off, bytes, seg[i].flags & 1, r);
		if (err) {
			r->result = VIRTIO_BLK_S_IOERR;
			break;
		}
		r->pending++;
	}
	return VIRTIO_BLK_S_OK;
}

/* Starts one popped request.  Completes it at once when nothing is queued. */
static void blk__handle(struct virtio_blk *blk, unsigned int q, struct blk_req *r)
{
	struct virtq_elem *e = &r->elem;
	struct iovec *out = e->iov, *in = e->iov + e->out_num, *last;
	unsigned int out_n = e->out_num, in_n = e->in_num;
	struct blk_req_hdr hdr;
	uint64_t sector, len;
	uint32_t type;
	int err = 0;

	r->q = q;
	r->pending = 0;
	r->written = 0;
	r->bytes = 0;
	r->result = VIRTIO_BLK_S_OK;

	/* The status byte: the last byte of the last writable buffer. */
	last = in_n ? &in[in_n - 1] : NULL;
	if (!last || !last->iov_len) {
		/* Nowhere to report anything: a driver bug, not an I/O error. */
		r->next = blk->free;
		blk->free = r;
		blk__fail(blk, "request without a writable status byte");
		return;
	}
	r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	if (!--last->iov_len)
		in_n--;
	len = e->in_len - 1;

	if (!iov_gather(out, out_n, 0, &hdr, sizeof(hdr))) {
		r->result = VIRTIO_BLK_S_IOERR;
		goto complete;
	}
	out = iov_skip(out, &out_n, sizeof(hdr));
	type = le32toh(hdr.type);
	sector = le64toh(hdr.sector);

	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (type == VIRTIO_BLK_T_OUT) {
			len = e->out_len - sizeof(hdr);
			if (blk_backend__readonly(blk->be)) {
				r->result = VIRTIO_BLK_S_IOERR;
				break;
			}
		}
		if (len % BLK_SECTOR_SIZE || !blk__in_range(blk, sector, len >> BLK_SECTOR_SHIFT)) {
			r->result = VIRTIO_BLK_S_IOERR;
			break;
		}
		if (!len)
			break;
		r->bytes = len;
		if (type == VIRTIO_BLK_T_IN) {
			r->written = (uint32_t)len;
			err = blk_backend__read(blk->be, in, in_n, sector << BLK_SECTOR_SHIFT, r);
		} else {
			err = blk_backend__write(blk->be, out, out_n, sector << BLK_SECTOR_SHIFT, r);
		}
		if (!err)
			r->pending = 1;
		break;
	case VIRTIO_BLK_T_FLUSH:
		err = blk_backend__flush(blk->be, r);
		if (!err)
			r->pending = 1;
		break;
	case VIRTIO_BLK_T_GET_ID:
		r->written = iov_scatter(in, in_n, blk->serial,
					 len < VIRTIO_BLK_ID_BYTES ? len : VIRTIO_BLK_ID_BYTES);
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (blk_backend__readonly(blk->be))
			r->result = VIRTIO_BLK_S_IOERR;
		else
			r->result = blk__discard(blk, r, type, out, out_n, e->out_len - sizeof(hdr));
		break;
	default:
		r->result = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	if (err)
		r->result = VIRTIO_BLK_S_IOERR;
complete:
	if (!r->pending)
		blk__complete(blk, r);
}

/* Pops everything the queue has (while the backend has room) and submits once. */
static void blk__process(struct virtio_blk *blk, unsigned int q)
{
	struct virtq *vq = &blk->vdev.vqs[q];
	char why[128];

	blk->stalled[q] = false;
	if (!vq->enabled)
		return;
	virtq__set_notify(vq, false);
	while (!blk->failed) {
		struct blk_req *r = blk->free;
		int ret;

		if (!r || blk_backend__room(blk->be) < VIRTIO_BLK_MAX_DISCARD_SEG) {
			/* Resumed from the completion path; no kicks needed meanwhile. */
			blk->stalled[q] = true;
			break;
		}
		ret = virtq__pop(vq, &r->elem, why, sizeof(why));
		if (ret == -EAGAIN) {
			/* Re-arm, then look again: a request may have slipped in. */
			virtq__set_notify(vq, true);
			if (!virtq__has_avail(vq))
				break;
			virtq__set_notify(vq, false);
			continue;
		}
		if (ret < 0) {
			blk__fail(blk, why);
			break;
		}
		blk->free = r->next;
		blk__handle(blk, q, r);
	}
	if (blk_backend__submit(blk->be) < 0)
		pr_warn_once("%s: io_uring submit failed", blk->vdev.id);
}

static void blk__notify_all(struct virtio_blk *blk)
{
	for (unsigned int q = 0; q < blk->vdev.nr_queues; q++) {
		if (blk->notify[q]) {
			blk->notify[q] = false;
			virtio_device__notify(&blk->vdev, q);
		}
	}
}

static void blk__completions(struct virtio_blk *blk)
{
	blk_backend__reap(blk->be, blk__done, NULL);
	for (unsigned int q = 0; q < blk->vdev.nr_queues; q++)
		if (blk->stalled[q])
			blk__process(blk, q);
	blk__notify_all(blk);
}

static void blk__efd_signal(int fd)
{
	uint64_t one = 1;

	/* Only fails when the counter is about to overflow: a signal is pending. */
	if (write(fd, &one, sizeof(one)) < 0) {
	}
}

/*
 * Waits for kicks and completions for good.  Kicks are edge-triggered: a
 * kick eventfd still in the set after the model stopped (one closed under
 * us by a front-end, which epoll keeps while the file lives) wakes the
 * thread once per kick, never in a loop, and is ignored while stopped.
 */
static void *blk__thread(void *arg)
{
	struct virtio_blk *blk = arg;
	struct epoll_event ev[VIRTIO_MAX_QUEUES + 2];
	uint64_t v;

	for (;;) {
		int n = epoll_wait(blk->epfd, ev, VIRTIO_MAX_QUEUES + 2, -1);

		if (n < 0 && errno != EINTR) {
			char why[96];

			/* Nothing would serve the rings again: say so to the guest. */
			snprintf(why, sizeof(why), "its thread's epoll_wait failed: %s",
				 strerror(errno));
			pthread_mutex_lock(&blk->lock);
			blk__fail(blk, why);
			pthread_mutex_unlock(&blk->lock);
			return NULL;
		}
		pthread_mutex_lock(&blk->lock);
		if (blk->exiting) {
			pthread_mutex_unlock(&blk->lock);
			return NULL;
		}
		for (int i = 0; i < n && blk->running; i++) {
			uint32_t id = ev[i].data.u32;

			if (id == BLK_EV_WAKE) {
				if (read(blk->wake_efd, &v, sizeof(v)) < 0) {
					/* Taken already: nothing to do. */
				}
			} else if (id == BLK_EV_BACKEND) {
				blk__completions(blk);
			} else if (id < blk->vdev.nr_queues && blk->vdev.kick_fd[id] >= 0) {
				if (read(blk->vdev.kick_fd[id], &v, sizeof(v)) < 0 && errno != EAGAIN)
					continue;
				blk__process(blk, id);
			}
		}
		if (blk->running)
			blk__notify_all(blk);
		pthread_mutex_unlock(&blk->lock);
	}
}

static int blk__prepare(struct virtio_device *vdev)
{
	struct virtio_blk *blk = to_blk(vdev);
	int err;

	if (blk->thread_alive)
		return 0;
	err = pthread_create(&blk->thread, NULL, blk__thread, blk);
	if (err)
		return -err;
	blk->thread_alive = true;
	return 0;
}

static void blk__disarm(struct virtio_blk *blk)
{
	for (unsigned int q = 0; q < blk->vdev.nr_queues; q++) {
		/* Fails harmlessly for a kick fd closed meanwhile (see blk__thread). */
		if (blk->armed_kick[q] >= 0)
			epoll_ctl(blk->epfd, EPOLL_CTL_DEL, blk->armed_kick[q], NULL);
		blk->armed_kick[q] = -1;
	}
	epoll_ctl(blk->epfd, EPOLL_CTL_DEL, blk_backend__event_fd(blk->be), NULL);
}

/*
 * Arms the thread's set with the enabled queues' kicks and the backend,
 * then serves here what was queued before DRIVER_OK (or before a restart):
 * the thread is not woken for it, so a servicing's new paravisor answers
 * its SET_VRING_ENABLE without a switch to another thread first.
 */
static int blk__start(struct virtio_device *vdev)
{
	struct virtio_blk *blk = to_blk(vdev);
	struct epoll_event be = {.events = EPOLLIN, .data.u32 = BLK_EV_BACKEND};
	int err;

	if (blk->running)
		return 0;
	err = blk__prepare(vdev);
	if (err)
		return err;
	pthread_mutex_lock(&blk->lock);
	blk->failed = false;
	for (unsigned int q = 0; q < blk->vdev.nr_queues; q++) {
		struct epoll_event e = {.events = EPOLLIN | EPOLLET, .data.u32 = q};
		int fd = blk->vdev.kick_fd[q];
		uint64_t v;

		if (!blk->vdev.vqs[q].enabled || fd < 0)
			continue;
		/* A kick from before is served below; armed with it pending,
		 * the thread would wake for nothing. */
		if (read(fd, &v, sizeof(v)) < 0) {
			/* None pending (kick fds are non-blocking). */
		}
		if (epoll_ctl(blk->epfd, EPOLL_CTL_ADD, fd, &e) < 0 &&
		    (errno != EEXIST || epoll_ctl(blk->epfd, EPOLL_CTL_MOD, fd, &e) < 0)) {
			err = -errno;
			goto fail;
		}
		blk->armed_kick[q] = fd;
	}
	if (epoll_ctl(blk->epfd, EPOLL_CTL_ADD, blk_backend__event_fd(blk->be), &be) < 0) {
		err = -errno;
		goto fail;
	}
	blk->running = true;
	for (unsigned int q = 0; q < blk->vdev.nr_queues; q++)
		blk__process(blk, q);
	blk__notify_all(blk);
	pthread_mutex_unlock(&blk->lock);
	return 0;
fail:
	blk__disarm(blk);
	pthread_mutex_unlock(&blk->lock);
	return err;
}

/* Takes the model from its thread without waking it, then finishes what is
 * in flight so no completion writes into a reset queue later. */
static void blk__stop(struct virtio_device *vdev)
{
	struct virtio_blk *blk = to_blk(vdev);

	if (!blk->running)
		return;
	pthread_mutex_lock(&blk->lock);
	blk->running = false;
	blk__disarm(blk);
	blk_backend__drain(blk->be, blk__done, NULL);
	blk__notify_all(blk);
	memset(blk->stalled, 0, sizeof(blk->stalled));
	pthread_mutex_unlock(&blk->lock);
}

static void blk__destroy(struct virtio_device *vdev)
{
	struct virtio_blk *blk = to_blk(vdev);

	blk__stop(vdev);
	if (blk->thread_alive) {
		pthread_mutex_lock(&blk->lock);
		blk->exiting = true;
		pthread_mutex_unlock(&blk->lock);
		blk__efd_signal(blk->wake_efd);
		pthread_join(blk->thread, NULL);
	}
	for (int i = 0; i < BLK_NR_REQS; i++)
		free(blk->reqs[i]);
	blk_backend__close(blk->be);
	if (blk->epfd >= 0)
		close(blk->epfd);
	if (blk->wake_efd >= 0)
		close(blk->wake_efd);
	pthread_mutex_destroy(&blk->lock);
	free(blk);
}

static uint64_t blk__features(struct virtio_device *vdev)
{
	struct virtio_blk *blk = to_blk(vdev);
	uint64_t f = 1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE |
		     1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_BLK_F_MQ;

	if (blk_backend__readonly(blk->be))
		f |= 1ULL << VIRTIO_BLK_F_RO;
	else
		f |= 1ULL << VIRTIO_BLK_F_DISCARD | 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
	return f;
}

static uint16_t blk__queue_max_size(struct virtio_device *vdev, unsigned int q)
{
	return VIRTIO_BLK_QUEUE_SIZE;
}

static void blk__config_read(struct virtio_device *vdev, uint32_t offset, void *data,
			     uint32_t len)
{
	struct virtio_blk *blk = to_blk(vdev);
	struct virtio_blk_config cfg;

	memcpy(&cfg, &blk->cfg, sizeof(cfg));
	cfg.capacity = __atomic_load_n(&blk->cfg.capacity, __ATOMIC_RELAXED);
	memset(data, 0, len);
	if (offset < sizeof(cfg))
		memcpy(data, (uint8_t *)&cfg + offset,
		       len < sizeof(cfg) - offset ? len : sizeof(cfg) - offset);
}

static void blk__config_write(struct virtio_device *vdev, uint32_t offset, const void *data,
			      uint32_t len)
{
	/* Every field is read-only without CONFIG_WCE, which we do not offer. */
}

static const struct virtio_device_ops virtio_blk_ops = {
	.type = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.features = blk__features,
	.queue_max_size = blk__queue_max_size,
	.config_size = sizeof(struct virtio_blk_config),
	.config_read = blk__config_read,
	.config_write = blk__config_write,
	.start = blk__start,
	.prepare = blk__prepare,
	.stop = blk__stop,
	.destroy = blk__destroy,
	/* No save/restore: the model has no state of its own once stop()
	 * drained it; capacity and features come from the configuration. */
};

void virtio_blk__get_counters(struct virtio_device *vdev, struct virtio_blk_counters *c)
{
	*c = to_blk(vdev)->counters;
}

void virtio_blk__set_counters(struct virtio_device *vdev, const struct virtio_blk_counters *c)
{
	to_blk(vdev)->counters = *c;
}

struct virtio_device *virtio_blk__create(const char *id, struct blk_backend *backend,
					 unsigned int nr_queues)
{
	struct virtio_blk *blk;
	struct virtio_blk_config *c;

	if (!nr_queues || nr_queues > VIRTIO_MAX_QUEUES) {
		blk_backend__close(backend);
		errno = EINVAL;
		return NULL;
	}
	blk = calloc(1, sizeof(*blk));
	if (!blk) {
		blk_backend__close(backend);
		return NULL;
	}
	blk->be = backend;
	blk->vdev.ops = &virtio_blk_ops;
	blk->vdev.priv = blk;
	pthread_mutex_init(&blk->lock, NULL);
	for (unsigned int q = 0; q < VIRTIO_MAX_QUEUES; q++)
		blk->armed_kick[q] = -1;
	blk->wake_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	blk->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (blk->wake_efd < 0 || blk->epfd < 0 ||
	    epoll_ctl(blk->epfd, EPOLL_CTL_ADD, blk->wake_efd,
		      &(struct epoll_event){.events = EPOLLIN, .data.u32 = BLK_EV_WAKE}) < 0)
		goto fail;
	for (int i = 0; i < BLK_NR_REQS; i++) {
		blk->reqs[i] = calloc(1, sizeof(*blk->reqs[i]));
		if (!blk->reqs[i])
			goto fail;
		blk->reqs[i]->blk = blk;
		blk->reqs[i]->next = blk->free;
		blk->free = blk->reqs[i];
	}
	blk->vdev.nr_queues = nr_queues;
	snprintf(blk->vdev.id, sizeof(blk->vdev.id), "%s", id);
	/* Zero-padded; an id of 20 bytes or more has no NUL (5.2.6). */
	memcpy(blk->serial, blk->vdev.id, strnlen(blk->vdev.id, sizeof(blk->serial)));

	c = &blk->cfg;
	c->capacity = htole64(blk_backend__size(backend) >> BLK_SECTOR_SHIFT);
	c->seg_max = htole32(VIRTIO_BLK_SEG_MAX);
	c->blk_size = htole32(BLK_SECTOR_SIZE);
	c->writeback = 1;
	c->num_queues = htole16((uint16_t)nr_queues);
	c->max_discard_sectors = htole32(VIRTIO_BLK_MAX_DISCARD_SECTORS);
	c->max_discard_seg = htole32(VIRTIO_BLK_MAX_DISCARD_SEG);
	/* Hole punching works on file system blocks (4 KiB on ext4 and xfs). */
	c->discard_sector_alignment = htole32(4096 / BLK_SECTOR_SIZE);
	c->max_write_zeroes_sectors = htole32(VIRTIO_BLK_MAX_DISCARD_SECTORS);
	c->max_write_zeroes_seg = htole32(VIRTIO_BLK_MAX_DISCARD_SEG);
	c->write_zeroes_may_unmap = 1;
	return &blk->vdev;

fail:
	blk__destroy(&blk->vdev);
	errno = ENOMEM;
	return NULL;
}
