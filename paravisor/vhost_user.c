/*
 * paravisor/vhost_user.c — the vhost-user back-end (QEMU's
 * docs/interop/vhost-user.rst) as a virtio transport for one device model.
 *
 * A ring runs when it is started (it has a kick fd: SET_VRING_KICK up to
 * GET_VRING_BASE), enabled (SET_VRING_ENABLE, or at once when the front-end
 * did not ack VHOST_USER_F_PROTOCOL_FEATURES), has a size and addresses, and
 * guest RAM is known.  Running rings are the model's enabled virtqueues.
 *
 * Every message that changes what the model sees (memory table, features,
 * ring addresses, indexes or fds) is applied the same way: quiesce (stop the
 * model, which finishes its in-flight requests, and save each running ring's
 * indexes), change, resume (rebuild every ready ring from the saved indexes
 * and start the model).  So the model never sees a table or fd change under
 * it, GET_VRING_BASE answers with an index no request is still behind, and
 * the same quiesce/resume pair is what servicing will use to hand a device
 * over to a new paravisor.
 *
 * The front-end is trusted with guest RAM but not to be well-formed: every
 * size, index and fd count is checked.  A malformed message closes the
 * connection; a well-formed one that fails is answered with a failure when
 * the front-end asked for a reply (REPLY_ACK), else the connection closes.
 */
#include "paravisor/vhost_user.h"

#include "common/log.h"
#include "common/why.h"
#include "paravisor/vu_inflight.h"
#include "paravisor/vu_log.h"
#include "paravisor/vu_mem.h"
#include "paravisor/vu_trace.h"
#include "virtio/vhost_user_msg.h"
#include "virtio/vhost_user_state.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROTOCOL_FEATURES                                                                          \
	(1ULL << VHOST_USER_PROTOCOL_F_MQ | 1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK |              \
	 1ULL << VHOST_USER_PROTOCOL_F_CONFIG | 1ULL << VHOST_USER_PROTOCOL_F_LOG_SHMFD |          \
	 1ULL << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD)
/* Bits of the feature word that are between us and the front-end. */
#define VHOST_BITS (1ULL << VHOST_USER_F_PROTOCOL_FEATURES | 1ULL << VHOST_F_LOG_ALL)
/* Offered when the device can save and load its state. */
#define DEVICE_STATE_FEATURE (1ULL << VHOST_USER_PROTOCOL_F_DEVICE_STATE)

struct vu_ring {
	uint16_t num;
	bool addr_set;
	uint64_t desc_uva, avail_uva, used_uva; /* front-end addresses */
	uint16_t last_avail, used_idx;		/* while the ring is not running */
	int kick_fd, call_fd, err_fd;
	bool started; /* SET_VRING_KICK ... GET_VRING_BASE */
	bool enabled;
	bool running; /* as of the last resume: for the log */
	bool bad;     /* failed to start; not retried until the front-end changes it */
	bool warm;    /* its pages were touched while it was staged */
};

struct vhost_user {
	struct virtio_device *vdev;
	struct vu_mem mem;
	struct vu_inflight inflight; /* INFLIGHT_SHMFD's region, if given */
	struct vu_log log; /* SET_LOG_BASE; used while VHOST_F_LOG_ALL is acked */
	uint64_t offered;	    /* virtio features, PROTOCOL_FEATURES included */
	uint64_t features;	    /* acked by SET_FEATURES */
	uint64_t protocol_features; /* acked by SET_PROTOCOL_FEATURES */
	bool quiesced;
	bool model_running;
	int reply_fd; /* to send with the reply being made, then close */
	int fail_logged;
	struct vu_ring ring[VIRTIO_MAX_QUEUES];
	struct vhost_user_state_ops state_ops; /* .save NULL: no DEVICE_STATE */
	int state_fd;			       /* LOAD: the pipe CHECK reads */
	uint64_t state_result;		       /* what CHECK answers otherwise */
	/* The last state loaded was refused: the rings stay stopped (the
	 * front-end sends SET_VRING_ENABLE right behind CHECK, not waiting
	 * for its answer) until a load succeeds. */
	uint64_t load_refused;
	bool test_enable_anyway;	       /* vhost_user__test_enable_anyway */
	struct vu_trace trace;		       /* the last messages' timings */
	bool warm_thread;		       /* vhost_user__warm made the model's thread */
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void efd_signal(int fd)
{
	uint64_t one = 1;

	/* EAGAIN: the counter is huge already, the event is pending. */
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
	}
}

/* Called by the model's thread; the ring fds only change while it is stopped. */
static void vhost_user__fail(struct virtio_device *vdev, const char *why)
{
	struct vhost_user *vu = vdev->transport;

	if (!__atomic_exchange_n(&vu->fail_logged, 1, __ATOMIC_ACQ_REL))
		pr_err("%s %s: %s; no more requests until the front-end restarts the rings",
		       vdev->ops->type, vdev->id, why);
	for (unsigned int q = 0; q < vdev->nr_queues; q++)
		if (vdev->vqs[q].enabled)
			efd_signal(vu->ring[q].err_fd);
}

/* --- quiesce and resume --- */

static void vhost_user__quiesce(struct vhost_user *vu)
{
	struct virtio_device *vdev = vu->vdev;

	if (vu->model_running && vdev->ops->stop)
		vdev->ops->stop(vdev);
	vu->model_running = false;
	for (unsigned int q = 0; q < vdev->nr_queues; q++) {
		struct virtq *vq = &vdev->vqs[q];

		if (vq->enabled) {
			vu->ring[q].last_avail = vq->last_avail;
			vu->ring[q].used_idx = vq->used_idx;
			virtq__disable(vq);
		}
		vdev->kick_fd[q] = vdev->call_fd[q] = -1;
	}
	vu->quiesced = true;
}

static bool vu_ring__ready(const struct vhost_user *vu, const struct vu_ring *r)
{
	return r->started && r->enabled && r->addr_set && r->num && r->kick_fd >= 0 &&
	       vu->mem.gm.nr > 0 && !r->bad;
}

/*
 * With an inflight region, the ring goes on from what it says rather than
 * from SET_VRING_BASE (as libvhost-user does): the used index in guest RAM
 * counts what was finished, and every head still marked in flight was
 * taken and not finished, so the avail index to go on from is their sum
 * and those heads are served again first.  After an orderly stop nothing
 * is in flight and this is the base the front-end gave.
 */
static int vu_ring__track(struct vhost_user *vu, unsigned int q, char *why, size_t whylen)
{
	struct virtq *vq = &vu->vdev->vqs[q];
	struct virtq_inflight_region *region = vu_inflight__queue(&vu->inflight, q);
	uint16_t used;
	int n;

	if (!region) {
		if (vu->inflight.base && q < vu->inflight.num_queues)
			return why__set(why, whylen, -EINVAL,
					"queue %u: its part of the inflight region is corrupt", q);
		return 0;
	}
	used = le16toh(__atomic_load_n((uint16_t *)vq->used + 1, __ATOMIC_ACQUIRE));
	n = virtq_inflight__attach(&vu->inflight.q[q], region, vq->size, used);
	if (n < 0)
		return why__set(why, whylen, n,
				"queue %u: the inflight region cannot track a ring of %u "
				"descriptors (%s)",
				q, vq->size, strerror(-n));
	if (n || used != vq->used_idx)
		pr_info("%s: queue %u: used index %u in guest RAM, %d request(s) left in flight "
			"by the previous back-end: re-submitting them, avail index %u",
			vu->vdev->id, q, used, n, (uint16_t)(used + n));
	vq->used_idx = used;
	vq->last_avail = (uint16_t)(used + n);
	vq->inflight = &vu->inflight.q[q];
	return 0;
}

/* Maps ring q's front-end addresses into guest-physical ones and enables it. */
static int vu_ring__start(struct vhost_user *vu, unsigned int q, char *why, size_t whylen)
{
	struct virtio_device *vdev = vu->vdev;
	struct vu_ring *r = &vu->ring[q];
	struct virtq *vq = &vdev->vqs[q];
	uint64_t n = r->num;
	char vwhy[128];

	memset(vq, 0, sizeof(*vq));
	if (vu_mem__uva_to_gpa(&vu->mem, r->desc_uva, 16 * n, &vq->desc_gpa) ||
	    vu_mem__uva_to_gpa(&vu->mem, r->avail_uva, 6 + 2 * n, &vq->avail_gpa) ||
	    vu_mem__uva_to_gpa(&vu->mem, r->used_uva, 6 + 8 * n, &vq->used_gpa))
		return why__set(why, whylen, -EINVAL,
				"queue %u: ring addresses desc %#llx avail %#llx used %#llx are "
				"not inside one region of the memory table",
				q, (unsigned long long)r->desc_uva,
				(unsigned long long)r->avail_uva, (unsigned long long)r->used_uva);
	vq->size = r->num;
	vq->event_idx = virtio_device__has(vdev, VIRTIO_F_EVENT_IDX);
	vq->indirect = virtio_device__has(vdev, VIRTIO_F_INDIRECT_DESC);
	vq->mem = &vu->mem.gm;
	vq->last_avail = r->last_avail;
	vq->used_idx = r->used_idx;
	if (virtq__enable(vq, vwhy, sizeof(vwhy)) < 0)
		return why__set(why, whylen, -EINVAL, "queue %u: %s", q, vwhy);
	if (vu_ring__track(vu, q, why, whylen)) {
		virtq__disable(vq);
		return -EINVAL;
	}
	vdev->kick_fd[q] = r->kick_fd;
	vdev->call_fd[q] = r->call_fd;
	return 0;
}

static void *vhost_user__idle_thread(void *arg)
{
	return arg;
}

/*
 * A staged ring (all set but SET_VRING_ENABLE) is what servicing hands a
 * new paravisor while the old one still serves; the enable comes inside
 * the guest's blackout.  What a fresh process would pay then is paid here
 * instead: the model makes its thread now (prepare: it waits in epoll, idle, for
 * start), or, for a model without prepare, a thread is started and joined
 * so that glibc keeps its stack for the model's; and the rings' pages are
 * touched in our mapping of guest RAM.  Only reads: the old paravisor may
 * be using the ring meanwhile.
 */
static void vhost_user__warm(struct vhost_user *vu)
{
	struct virtio_device *vdev = vu->vdev;
	pthread_t t;

	for (unsigned int q = 0; q < vdev->nr_queues; q++) {
		struct vu_ring *r = &vu->ring[q];

		if (r->warm || r->enabled || !r->started || !r->addr_set || !r->num ||
		    vu->mem.gm.nr <= 0)
			continue;
		r->warm = true;
		vu_mem__touch(&vu->mem, r->desc_uva, 16ULL * r->num);
		vu_mem__touch(&vu->mem, r->avail_uva, 6 + 2ULL * r->num);
		vu_mem__touch(&vu->mem, r->used_uva, 6 + 8ULL * r->num);
		if (vu->warm_thread)
			continue;
		vu->warm_thread = true;
		if (vdev->ops->prepare)
			vdev->ops->prepare(vdev);
		else if (!pthread_create(&t, NULL, vhost_user__idle_thread, NULL))
			pthread_join(t, NULL);
	}
}

static int vhost_user__resume(struct vhost_user *vu, char *why, size_t whylen)
{
	struct virtio_device *vdev = vu->vdev;
	bool any = false;
	int err = 0;

	vu->quiesced = false;
	vdev->mem = &vu->mem.gm;
	/* A new memory table starts without the log: it is ours, not the table's. */
	if ((vu->features & (1ULL << VHOST_F_LOG_ALL)) && vu->log.base) {
		vu->mem.gm.gpa_log = vu->log.base;
		vu->mem.gm.gpa_log_len = vu->log.size;
	} else {
		vu->mem.gm.gpa_log = NULL;
		vu->mem.gm.gpa_log_len = 0;
	}
	for (unsigned int q = 0; q < vdev->nr_queues; q++) {
		struct vu_ring *r = &vu->ring[q];
		bool ready;
		char rwhy[256];

		if (vu_ring__ready(vu, r) && vu_ring__start(vu, q, rwhy, sizeof(rwhy))) {
			r->bad = true;
			if (!err)
				err = why__set(why, whylen, -EINVAL, "%s", rwhy);
		}
		ready = vdev->vqs[q].enabled;
		if (ready && !r->running)
			pr_info("%s: queue %u started: size %u, avail index %u, used index %u",
				vdev->id, q, r->num, r->last_avail, r->used_idx);
		else if (!ready && r->running)
			pr_info("%s: queue %u stopped at avail index %u", vdev->id, q,
				r->last_avail);
		r->running = ready;
		any |= ready;
	}
	if (!any) {
		vhost_user__warm(vu);
		return err;
	}
	__atomic_store_n(&vu->fail_logged, 0, __ATOMIC_RELEASE);
	if (vdev->ops->start && vdev->ops->start(vdev) < 0) {
		vhost_user__quiesce(vu);
		vu->quiesced = false;
		return err ? err : why__set(why, whylen, -EIO, "the device model cannot start");
	}
	vu->model_running = true;
	return err;
}

/* --- messages --- */

static void vhost_user__log_features(struct vhost_user *vu, uint64_t f)
{
	static const struct {
		unsigned int bit;
		const char *name;
	} known[] = {
	    {VIRTIO_F_VERSION_1, "VERSION_1"},
	    {VIRTIO_F_INDIRECT_DESC, "INDIRECT_DESC"},
	    {VIRTIO_F_EVENT_IDX, "EVENT_IDX"},
	    {VHOST_USER_F_PROTOCOL_FEATURES, "PROTOCOL_FEATURES"},
	    {VHOST_F_LOG_ALL, "LOG_ALL"},
	};
	uint64_t device = f & ((1ULL << 24) - 1);
	char names[96] = "";
	size_t n = 0;

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (f & (1ULL << known[i].bit) && n < sizeof(names))
			n += (size_t)snprintf(names + n, sizeof(names) - n, " %s", known[i].name);
	pr_info("%s: front-end acked features %#llx: device bits %#llx,%s", vu->vdev->id,
		(unsigned long long)f, (unsigned long long)device,
		n ? names : " no transport bits");
}

static void vhost_user__reset_rings(struct vhost_user *vu)
{
	for (unsigned int q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		struct vu_ring *r = &vu->ring[q];

		close_fd(&r->kick_fd);
		close_fd(&r->call_fd);
		close_fd(&r->err_fd);
		*r = (struct vu_ring){
		    .kick_fd = -1, .call_fd = -1, .err_fd = -1, .running = r->running};
	}
}

static int vhost_user__set_features(struct vhost_user *vu, uint64_t f, char *why, size_t whylen)
{
	if (f & ~vu->offered)
		return why__set(why, whylen, -EINVAL,
				"acked features %#llx that were not offered (%#llx)",
				(unsigned long long)f, (unsigned long long)vu->offered);
	if ((f & (1ULL << VHOST_F_LOG_ALL)) && !vu->log.base)
		return why__set(why, whylen, -EINVAL,
				"VHOST_F_LOG_ALL acked before a log was given (SET_LOG_BASE)");
	vhost_user__quiesce(vu);
	if ((f ^ vu->features) & (1ULL << VHOST_F_LOG_ALL))
		pr_info("%s: dirty logging %s", vu->vdev->id,
			f & (1ULL << VHOST_F_LOG_ALL) ? "on: every page we write is logged for the "
							 "front-end's migration"
						      : "off");
	vu->features = f;
	vu->vdev->driver_features = f & ~VHOST_BITS;
	/* Without protocol features there is no SET_VRING_ENABLE: rings run
	 * as soon as they are started. */
	if (!(f & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES)))
		for (unsigned int q = 0; q < VIRTIO_MAX_QUEUES; q++)
			vu->ring[q].enabled = true;
	vhost_user__log_features(vu, f);
	return 0;
}

static uint64_t vhost_user__protocol_features(const struct vhost_user *vu)
{
	return PROTOCOL_FEATURES | (vu->state_ops.save ? DEVICE_STATE_FEATURE : 0);
}

static int vhost_user__set_protocol_features(struct vhost_user *vu, uint64_t f, char *why,
					     size_t whylen)
{
	uint64_t offered = vhost_user__protocol_features(vu);

	if (f & ~offered)
		return why__set(why, whylen, -EINVAL,
				"acked protocol features %#llx that were not offered (%#llx)",
				(unsigned long long)f, (unsigned long long)offered);
	vu->protocol_features = f;
	pr_info("%s: front-end acked protocol features %#llx:%s%s%s%s%s%s", vu->vdev->id,
		(unsigned long long)f, f & (1ULL << VHOST_USER_PROTOCOL_F_MQ) ? " MQ" : "",
		f & (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK) ? " REPLY_ACK" : "",
		f & (1ULL << VHOST_USER_PROTOCOL_F_CONFIG) ? " CONFIG" : "",
		f & (1ULL << VHOST_USER_PROTOCOL_F_LOG_SHMFD) ? " LOG_SHMFD" : "",
		f & (1ULL << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) ? " INFLIGHT_SHMFD" : "",
		f & DEVICE_STATE_FEATURE ? " DEVICE_STATE" : "");
	return 0;
}

/* --- DEVICE_STATE: the device's state through a pipe, while no ring runs --- */

/* Writes the state into fd and closes it. */
static uint64_t vhost_user__state_save(struct vhost_user *vu, int fd)
{
	struct vhost_user_rings t = {.features = vu->features, .nr = vu->vdev->nr_queues};
	uint8_t *buf;
	size_t len;
	char why[160];
	int err;

	for (unsigned int q = 0; q < t.nr; q++) {
		t.q[q].last_avail = vu->ring[q].last_avail;
		t.q[q].used_idx = vu->ring[q].used_idx;
		t.q[q].started = vu->ring[q].started;
	}
	err = vu->state_ops.save(vu->state_ops.opaque, &t, &buf, &len);
	if (err) {
		close(fd);
		pr_err("%s: cannot encode the device state: %s", vu->vdev->id, strerror(-err));
		return VHOST_USER_STATE_E_IO;
	}
	/* The front-end reads after our answer: a pipe holds the whole state.
	 * Closed at once, before anything else: in servicing the reader is
	 * the new back-end, waiting for the end of the state, not for the
	 * log line below. */
	err = vhost_user_state__write_fd(fd, buf, len, why, sizeof(why));
	close(fd);
	free(buf);
	if (err) {
		pr_err("%s: writing the device state: %s", vu->vdev->id, why);
		return VHOST_USER_STATE_E_IO;
	}
	pr_info("%s: device state saved (%zu bytes)", vu->vdev->id, len);
	return VHOST_USER_STATE_OK;
}

/* The state written into the pipe: read, check, apply. */
static uint64_t vhost_user__state_load(struct vhost_user *vu)
{
	struct vhost_user_rings t = {0};
	uint8_t *buf;
	size_t len;
	char why[256];
	int code;

	/* No deadline (it would need poll, which a disk's sandbox does not
	 * allow): the writer is the front-end, or (servicing) the back-end
	 * this one replaces, saving into our pipe as we read; it closes its
	 * end once the state is written, or dies: either ends this read.  One
	 * that hangs stalls only this device, until the front-end gives up
	 * on this process and has it killed. */
	if (vhost_user_state__read_fd(vu->state_fd, 0, &buf, &len, why, sizeof(why))) {
		pr_err("%s: reading the device state: %s", vu->vdev->id, why);
		return VHOST_USER_STATE_E_IO;
	}
	code =
	    vu->state_ops.load(vu->state_ops.opaque, buf, len, vu->offered, &t, why, sizeof(why));
	free(buf);
	if (code) {
		pr_err("%s: device state refused: %s", vu->vdev->id, why);
		return (uint64_t)code;
	}
	/* The front-end sets the bases again; these hold if it does not. */
	for (unsigned int q = 0; q < t.nr && q < vu->vdev->nr_queues; q++) {
		vu->ring[q].last_avail = t.q[q].last_avail;
		vu->ring[q].used_idx = t.q[q].used_idx;
	}
	return VHOST_USER_STATE_OK;
}

static int vhost_user__set_state_fd(struct vhost_user *vu, struct vhost_user_msg *m,
				    struct vhost_user_msg *reply, char *why, size_t whylen)
{
	const struct vhost_user_device_state *s = &m->p.dstate;
	uint64_t code = VHOST_USER_STATE_OK;
	int fd;

	if (m->nr_fds != 1)
		return why__set(why, whylen, -EPROTO, "%u file descriptors instead of a pipe's",
				m->nr_fds);
	fd = m->fds[0];
	m->nr_fds = 0;
	close_fd(&vu->state_fd);
	if (s->phase != VHOST_USER_PHASE_STOPPED || s->direction > VHOST_USER_TRANSFER_LOAD)
		code = VHOST_USER_STATE_E_BAD_REQUEST;
	else if (vu->model_running)
		code = VHOST_USER_STATE_E_RUNNING;
	else if (s->direction == VHOST_USER_TRANSFER_SAVE) {
		code = vhost_user__state_save(vu, fd);
		fd = -1; /* closed there */
	} else {
		vu->state_fd = fd; /* read at CHECK, once the front-end wrote it all */
	}
	if (vu->state_fd != fd)
		close_fd(&fd);
	if (code)
		pr_warn("%s: SET_DEVICE_STATE_FD refused: %s", vu->vdev->id,
			vhost_user_state__reason(code));
	vu->state_result = code;
	reply->p.u64 = code | VHOST_USER_STATE_NO_FD;
	return 1;
}

static int vhost_user__check_state(struct vhost_user *vu, struct vhost_user_msg *reply)
{
	bool load = vu->state_fd >= 0;

	reply->p.u64 = load ? vhost_user__state_load(vu) : vu->state_result;
	if (load)
		vu->load_refused = reply->p.u64;
	close_fd(&vu->state_fd);
	vu->state_result = VHOST_USER_STATE_E_NO_TRANSFER;
	return 1;
}

void vhost_user__test_enable_anyway(struct vhost_user *vu)
{
	vu->test_enable_anyway = true;
}

void vhost_user__set_state_ops(struct vhost_user *vu, const struct vhost_user_state_ops *ops)
{
	vu->state_ops = *ops;
}

/* The ring a message names, or NULL (why says so). */
static struct vu_ring *vhost_user__ring(struct vhost_user *vu, uint32_t index, char *why,
					size_t whylen)
{
	if (index >= vu->vdev->nr_queues) {
		why__set(why, whylen, 0, "queue %u does not exist (the device has %u)", index,
			 vu->vdev->nr_queues);
		return NULL;
	}
	return &vu->ring[index];
}

/* SET_VRING_KICK, _CALL, _ERR: the fd (if any) is taken from m. */
static int vhost_user__set_ring_fd(struct vhost_user *vu, struct vhost_user_msg *m, char *why,
				   size_t whylen)
{
	uint64_t v = m->p.u64;
	bool nofd = v & VHOST_USER_VRING_NOFD;
	struct vu_ring *r;
	int fd = -1;

	if (v & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD))
		return why__set(why, whylen, -EPROTO, "unknown bits in %#llx",
				(unsigned long long)v);
	if (m->nr_fds != (nofd ? 0u : 1u))
		return why__set(why, whylen, -EPROTO, "%u file descriptors with%s the no-fd flag",
				m->nr_fds, nofd ? "" : "out");
	r = vhost_user__ring(vu, v & VHOST_USER_VRING_IDX_MASK, why, whylen);
	if (!r)
		return -EINVAL;
	if (m->hdr.request == VHOST_USER_SET_VRING_KICK && nofd)
		return why__set(
		    why, whylen, -ENOTSUP,
		    "a ring without a kick fd would need polling, which is not supported");
	if (!nofd) {
		fd = m->fds[0];
		m->nr_fds = 0;
	}
	vhost_user__quiesce(vu);
	switch (m->hdr.request) {
	case VHOST_USER_SET_VRING_KICK:
		/* The model's thread drains kicks without blocking. */
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		close_fd(&r->kick_fd);
		r->kick_fd = fd;
		r->started = true;
		r->bad = false;
		if (!(vu->features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES)))
			r->enabled = true;
		break;
	case VHOST_USER_SET_VRING_CALL:
		close_fd(&r->call_fd);
		r->call_fd = fd;
		break;
	default:
		close_fd(&r->err_fd);
		r->err_fd = fd;
		break;
	}
	return 0;
}

static int vhost_user__config(struct vhost_user *vu, struct vhost_user_msg *m,
			      struct vhost_user_msg *reply, char *why, size_t whylen)
{
	const struct virtio_device_ops *ops = vu->vdev->ops;
	const struct vhost_user_config *c = &m->p.cfg;
	uint32_t len, size = ops->config_size;

	if (m->hdr.size < VHOST_USER_CONFIG_HDR_SIZE || c->size > VHOST_USER_MAX_CONFIG_SIZE ||
	    m->hdr.size != VHOST_USER_CONFIG_HDR_SIZE + c->size)
		return why__set(why, whylen, -EPROTO, "size %u does not match a config of %u bytes",
				m->hdr.size,
				m->hdr.size >= VHOST_USER_CONFIG_HDR_SIZE ? c->size : 0);
	if (c->offset > VHOST_USER_MAX_CONFIG_SIZE ||
	    c->size > VHOST_USER_MAX_CONFIG_SIZE - c->offset)
		return why__set(why, whylen, -EINVAL, "config range %u+%u is beyond %u bytes",
				c->offset, c->size, VHOST_USER_MAX_CONFIG_SIZE);
	/* Bytes past the model's config space read as zero, writes there are dropped. */
	len = c->offset >= size ? 0 : size - c->offset < c->size ? size - c->offset : c->size;
	if (m->hdr.request == VHOST_USER_SET_CONFIG) {
		if (len && ops->config_write)
			ops->config_write(vu->vdev, c->offset, c->payload, len);
		return 0;
	}
	reply->hdr.size = m->hdr.size;
	reply->p.cfg.offset = c->offset;
	reply->p.cfg.size = c->size;
	reply->p.cfg.flags = c->flags;
	memset(reply->p.cfg.payload, 0, c->size);
	if (len && ops->config_read)
		ops->config_read(vu->vdev, c->offset, reply->p.cfg.payload, len);
	return 1;
}

/* GET_INFLIGHT_FD (1: the reply carries the new region's fd in
 * vu->reply_fd) and SET_INFLIGHT_FD (the region of an earlier back-end). */
static int vhost_user__inflight(struct vhost_user *vu, struct vhost_user_msg *m,
				struct vhost_user_msg *reply, char *why, size_t whylen)
{
	char iwhy[200];
	int err;

	if (!(vu->protocol_features & (1ULL << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD)))
		return why__set(why, whylen, -EPROTO, "INFLIGHT_SHMFD was not negotiated");
	if (m->hdr.request == VHOST_USER_SET_INFLIGHT_FD && m->nr_fds != 1)
		return why__set(why, whylen, -EPROTO, "%u file descriptors (expected 1)",
				m->nr_fds);
	vhost_user__quiesce(vu);
	if (m->hdr.request == VHOST_USER_SET_INFLIGHT_FD) {
		err =
		    vu_inflight__set(&vu->inflight, &m->p.inflight, m->fds[0], iwhy, sizeof(iwhy));
		if (err)
			return why__set(why, whylen, err, "inflight region: %s", iwhy);
		pr_info("%s: inflight region handed over: %u queue(s) of %u", vu->vdev->id,
			m->p.inflight.num_queues, m->p.inflight.queue_size);
		return 0;
	}
	err = vu_inflight__create(&vu->inflight, &m->p.inflight, &reply->p.inflight, &vu->reply_fd,
				  iwhy, sizeof(iwhy));
	if (err)
		return why__set(why, whylen, err, "inflight region: %s", iwhy);
	reply->hdr.size = sizeof(reply->p.inflight);
	pr_info("%s: inflight region made: %u queue(s) of %u, %llu bytes", vu->vdev->id,
		m->p.inflight.num_queues, m->p.inflight.queue_size,
		(unsigned long long)reply->p.inflight.mmap_size);
	return 1;
}

/* Payload size and fd count a request must carry (SET_MEM_TABLE and the
 * ring fds are checked by their handlers).  -1: any. */
static int expected_size(uint32_t req)
{
	switch (req) {
	case VHOST_USER_GET_FEATURES:
	case VHOST_USER_GET_PROTOCOL_FEATURES:
	case VHOST_USER_GET_QUEUE_NUM:
	case VHOST_USER_SET_OWNER:
	case VHOST_USER_RESET_OWNER: return 0;
	case VHOST_USER_SET_FEATURES:
	case VHOST_USER_SET_PROTOCOL_FEATURES:
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR: return sizeof(uint64_t);
	case VHOST_USER_SET_VRING_NUM:
	case VHOST_USER_SET_VRING_BASE:
	case VHOST_USER_GET_VRING_BASE:
	case VHOST_USER_SET_VRING_ENABLE: return sizeof(struct vhost_user_vring_state);
	case VHOST_USER_SET_DEVICE_STATE_FD: return sizeof(struct vhost_user_device_state);
	case VHOST_USER_CHECK_DEVICE_STATE: return 0;
	case VHOST_USER_SET_VRING_ADDR: return sizeof(struct vhost_user_vring_addr);
	case VHOST_USER_GET_INFLIGHT_FD:
	case VHOST_USER_SET_INFLIGHT_FD: return sizeof(struct vhost_user_inflight);
	case VHOST_USER_SET_LOG_BASE: return 2 * sizeof(uint64_t);
	default: return -1;
	}
}

/* 1: reply filled; 0: done; <0: failed (-EPROTO: malformed). */
static int vhost_user__handle(struct vhost_user *vu, struct vhost_user_msg *m,
			      struct vhost_user_msg *reply, char *why, size_t whylen)
{
	struct virtio_device *vdev = vu->vdev;
	uint32_t req = m->hdr.request;
	int want = expected_size(req);
	struct vu_ring *r = NULL;

	if (want >= 0 && m->hdr.size != (uint32_t)want)
		return why__set(why, whylen, -EPROTO, "payload of %u bytes (expected %d)",
				m->hdr.size, want);
	if (want >= 0 && req != VHOST_USER_SET_VRING_KICK && req != VHOST_USER_SET_VRING_CALL &&
	    req != VHOST_USER_SET_VRING_ERR && req != VHOST_USER_SET_LOG_BASE &&
	    req != VHOST_USER_SET_INFLIGHT_FD && req != VHOST_USER_SET_DEVICE_STATE_FD && m->nr_fds)
		return why__set(why, whylen, -EPROTO, "carries %u unexpected file descriptors",
				m->nr_fds);
	if (req == VHOST_USER_SET_VRING_NUM || req == VHOST_USER_SET_VRING_BASE ||
	    req == VHOST_USER_GET_VRING_BASE || req == VHOST_USER_SET_VRING_ENABLE ||
	    req == VHOST_USER_SET_VRING_ADDR) {
		r = vhost_user__ring(vu, m->p.state.index, why, whylen);
		if (!r)
			return -EINVAL;
	}
	reply->hdr.size = sizeof(uint64_t);

	switch (req) {
	case VHOST_USER_GET_FEATURES: reply->p.u64 = vu->offered; return 1;
	case VHOST_USER_SET_FEATURES: return vhost_user__set_features(vu, m->p.u64, why, whylen);
	case VHOST_USER_GET_PROTOCOL_FEATURES:
		reply->p.u64 = vhost_user__protocol_features(vu);
		return 1;
	case VHOST_USER_SET_PROTOCOL_FEATURES:
		return vhost_user__set_protocol_features(vu, m->p.u64, why, whylen);
	case VHOST_USER_GET_QUEUE_NUM: reply->p.u64 = vdev->nr_queues; return 1;
	case VHOST_USER_SET_OWNER: return 0;
	case VHOST_USER_RESET_OWNER:
		/* A device reset: rings and features go, guest RAM stays mapped. */
		vhost_user__quiesce(vu);
		vhost_user__reset_rings(vu);
		vu->features = 0;
		vdev->driver_features = 0;
		return 0;
	case VHOST_USER_SET_MEM_TABLE: {
		const struct vhost_user_mem_table *t = &m->p.mem;
		int err;

		if (m->hdr.size < 8 || t->nregions > VHOST_USER_MAX_REGIONS ||
		    m->hdr.size != 8 + t->nregions * sizeof(t->regions[0]))
			return why__set(why, whylen, -EPROTO,
					"payload of %u bytes does not hold %u regions", m->hdr.size,
					m->hdr.size >= 8 ? t->nregions : 0);
		vhost_user__quiesce(vu);
		for (unsigned int q = 0; q < VIRTIO_MAX_QUEUES; q++)
			vu->ring[q].bad = vu->ring[q].warm = false;
		err = vu_mem__set(&vu->mem, t, m->fds, m->nr_fds, why, whylen);
		m->nr_fds = 0;
		if (!err)
			pr_info("%s: guest RAM: %d region(s), %llu MiB", vdev->id, vu->mem.gm.nr,
				(unsigned long long)(vu_mem__size(&vu->mem) >> 20));
		return err;
	}
	case VHOST_USER_SET_VRING_NUM: {
		uint32_t n = m->p.state.num;

		if (!n || (n & (n - 1)) || n > vdev->ops->queue_max_size(vdev, m->p.state.index))
			return why__set(why, whylen, -EINVAL,
					"queue %u: size %u is not a power of two up to %u",
					m->p.state.index, n,
					vdev->ops->queue_max_size(vdev, m->p.state.index));
		vhost_user__quiesce(vu);
		r->num = (uint16_t)n;
		r->warm = false;
		r->bad = false;
		return 0;
	}
	case VHOST_USER_SET_VRING_ADDR:
		vhost_user__quiesce(vu);
		/* VHOST_VRING_F_LOG and log_guest_addr need no handling: the
		 * used ring is logged by its guest-physical address like every
		 * other page we write (virtq__push). */
		r->warm = false;
		r->desc_uva = m->p.addr.desc_user_addr;
		r->avail_uva = m->p.addr.avail_user_addr;
		r->used_uva = m->p.addr.used_user_addr;
		r->addr_set = true;
		r->bad = false;
		return 0;
	case VHOST_USER_SET_VRING_BASE:
		if (m->p.state.num > UINT16_MAX)
			return why__set(why, whylen, -EINVAL,
					"queue %u: base %u is not a split-ring index",
					m->p.state.index, m->p.state.num);
		vhost_user__quiesce(vu);
		/* Nothing is in flight across a stop, so used follows avail. */
		r->last_avail = r->used_idx = (uint16_t)m->p.state.num;
		return 0;
	case VHOST_USER_GET_VRING_BASE:
		vhost_user__quiesce(vu);
		r->started = false;
		r->bad = false;
		close_fd(&r->kick_fd);
		reply->hdr.size = sizeof(struct vhost_user_vring_state);
		reply->p.state.index = m->p.state.index;
		reply->p.state.num = r->last_avail;
		return 1;
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR: return vhost_user__set_ring_fd(vu, m, why, whylen);
	case VHOST_USER_SET_VRING_ENABLE:
		if (m->p.state.num > 1)
			return why__set(why, whylen, -EINVAL, "queue %u: enable=%u is not 0 or 1",
					m->p.state.index, m->p.state.num);
		if (m->p.state.num && !vu->test_enable_anyway &&
		    (vu->load_refused || vu->state_fd >= 0))
			return why__set(why, whylen, -EPERM,
					"queue %u: the device state %s, so the rings stay stopped",
					m->p.state.index,
					vu->state_fd >= 0
					    ? "is being loaded (no CHECK_DEVICE_STATE yet)"
					    : "loaded last was refused");
		vhost_user__quiesce(vu);
		r->enabled = m->p.state.num;
		return 0;
	case VHOST_USER_GET_INFLIGHT_FD:
	case VHOST_USER_SET_INFLIGHT_FD: return vhost_user__inflight(vu, m, reply, why, whylen);
	case VHOST_USER_SET_LOG_BASE: {
		int err;

		if (!(vu->protocol_features & (1ULL << VHOST_USER_PROTOCOL_F_LOG_SHMFD)) ||
		    m->nr_fds != 1)
			return why__set(why, whylen, -EPROTO,
					"a log needs LOG_SHMFD acked and one fd (%u given)",
					m->nr_fds);
		vhost_user__quiesce(vu);
		err = vu_log__set(&vu->log, m->fds[0], m->p.log.mmap_size, m->p.log.mmap_offset,
				  why, whylen);
		m->nr_fds = 0;
		/* The front-end waits for this answer whatever REPLY_ACK says,
		 * so a refusal is an answer too (non-zero). */
		if (err)
			pr_warn("%s: SET_LOG_BASE refused: %s", vdev->id, why);
		else
			pr_info("%s: dirty log of %llu KiB from the front-end", vdev->id,
				(unsigned long long)(vu->log.size >> 10));
		reply->p.u64 = err ? 1 : 0;
		return 1;
	}
	case VHOST_USER_GET_CONFIG:
	case VHOST_USER_SET_CONFIG:
		if (m->nr_fds)
			return why__set(why, whylen, -EPROTO,
					"carries %u unexpected file descriptors", m->nr_fds);
		return vhost_user__config(vu, m, reply, why, whylen);
	case VHOST_USER_SET_DEVICE_STATE_FD:
	case VHOST_USER_CHECK_DEVICE_STATE:
		if (!(vu->protocol_features & DEVICE_STATE_FEATURE))
			return why__set(why, whylen, -ENOTSUP, "DEVICE_STATE was not negotiated");
		return req == VHOST_USER_CHECK_DEVICE_STATE
			   ? vhost_user__check_state(vu, reply)
			   : vhost_user__set_state_fd(vu, m, reply, why, whylen);
	default: return why__set(why, whylen, -ENOTSUP, "not supported by this back-end");
	}
}

int vhost_user__serve(struct vhost_user *vu, int sock)
{
	struct vhost_user_msg m, reply;
	bool need_ack;
	char why[256], rwhy[256], buf[32];
	const char *name;
	bool was_running = vu->model_running;
	int ret, err;

	err = vhost_user_msg__recv(sock, &m, why, sizeof(why));
	if (err == -ECONNRESET) {
		vu_trace__report(&vu->trace, vu->vdev->id, "the front-end left");
		pr_info("%s: the front-end closed the connection", vu->vdev->id);
		return 1;
	}
	if (err == -EPROTO) {
		pr_err("%s: malformed message from the front-end: %s; closing the connection",
		       vu->vdev->id, why);
		return err;
	}
	if (err) {
		pr_err("%s: reading from the front-end: %s", vu->vdev->id, strerror(-err));
		return err;
	}
	name = vhost_user_msg__name(m.hdr.request, buf, sizeof(buf));
	pr_debug("%s: %s, %u bytes, %u fds", vu->vdev->id, name, m.hdr.size, m.nr_fds);

	vu_trace__received(&vu->trace);
	memset(&reply.hdr, 0, sizeof(reply.hdr));
	ret = vhost_user__handle(vu, &m, &reply, why, sizeof(why));
	vhost_user_msg__close_fds(&m);
	vu_trace__handled(&vu->trace);
	if (vu->quiesced) {
		err = vhost_user__resume(vu, rwhy, sizeof(rwhy));
		if (err && ret >= 0) {
			ret = err;
			memcpy(why, rwhy, sizeof(why));
		}
		vu_trace__resumed(&vu->trace);
	}
	if (ret == -EPROTO) {
		pr_err("%s: malformed %s from the front-end: %s; closing the connection",
		       vu->vdev->id, name, why);
		return ret;
	}
	need_ack = ret != 1 && (m.hdr.flags & VHOST_USER_FLAG_NEED_REPLY) &&
		   (vu->protocol_features & (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK));
	if (ret < 0 && !need_ack) {
		pr_err("%s: %s failed: %s; the front-end asked for no reply, so closing the "
		       "connection",
		       vu->vdev->id, name, why);
		return ret;
	}
	if (ret < 0)
		pr_warn("%s: %s refused: %s", vu->vdev->id, name, why);
	if (ret != 1 && !need_ack)
		goto out_trace;
	if (need_ack) {
		reply.hdr.size = sizeof(uint64_t);
		reply.p.u64 = ret < 0 ? 1 : 0;
	}
	reply.hdr.request = m.hdr.request;
	reply.hdr.flags = VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY;
	err = vhost_user_msg__send(sock, &reply, vu->reply_fd >= 0 ? &vu->reply_fd : NULL,
				   vu->reply_fd >= 0 ? 1 : 0);
	close_fd(&vu->reply_fd);
	if (err) {
		pr_err("%s: cannot answer %s: %s", vu->vdev->id, name, strerror(-err));
		return err;
	}
out_trace:
	/* After the answer: the log line costs the front-end no wait. */
	vu_trace__answered(&vu->trace, m.hdr.request);
	if (!was_running && vu->model_running)
		vu_trace__report(&vu->trace, vu->vdev->id, "rings started");
	return 0;
}

void vhost_user__disconnect(struct vhost_user *vu)
{
	vhost_user__quiesce(vu);
	vhost_user__reset_rings(vu);
	for (unsigned int q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vu->ring[q].running = false;
	vu->quiesced = false;
	vu_mem__clear(&vu->mem);
	vu_inflight__clear(&vu->inflight);
	vu_log__clear(&vu->log);
	close_fd(&vu->state_fd);
	vu->load_refused = 0;
	vu->features = vu->protocol_features = 0;
	vu->vdev->driver_features = 0;
}

struct vhost_user *vhost_user__create(struct virtio_device *vdev)
{
	struct vhost_user *vu;

	if (!vdev->nr_queues || vdev->nr_queues > VIRTIO_MAX_QUEUES || !vdev->ops->queue_max_size) {
		errno = EINVAL;
		return NULL;
	}
	vu = calloc(1, sizeof(*vu));
	if (!vu)
		return NULL;
	vu->vdev = vdev;
	vu->reply_fd = -1;
	vu->state_fd = -1;
	vu->state_result = VHOST_USER_STATE_E_NO_TRANSFER;
	vu->offered = (vdev->ops->features ? vdev->ops->features(vdev) : 0) |
		      1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_INDIRECT_DESC |
		      1ULL << VIRTIO_F_EVENT_IDX | 1ULL << VHOST_USER_F_PROTOCOL_FEATURES |
		      1ULL << VHOST_F_LOG_ALL;
	for (unsigned int q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		vu->ring[q].kick_fd = vu->ring[q].call_fd = vu->ring[q].err_fd = -1;
		vdev->kick_fd[q] = vdev->call_fd[q] = -1;
	}
	vdev->config_call_fd = -1; /* config interrupts need BACKEND_REQ, not offered */
	vdev->mem = &vu->mem.gm;
	vdev->fail = vhost_user__fail;
	vdev->transport = vu;
	return vu;
}

void vhost_user__destroy(struct vhost_user *vu)
{
	if (!vu)
		return;
	vhost_user__disconnect(vu);
	close_fd(&vu->reply_fd);
	free(vu);
}
