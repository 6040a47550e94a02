/*
 * virtio/vhost_user_front.c — the vhost-user front-end as a device model
 * (see the header).  Its calls come from the transport's threads, and
 * vhost_user_front__gone() from anywhere: f->lock orders them, so messages
 * on the socket never interleave and the refuser starts and stops in step
 * with the rings.
 *
 * Every request that changes the back-end asks for an acknowledgement
 * (REPLY_ACK), so a refusal is seen at the request that caused it, not as a
 * silent ring that never runs.  A broken connection or a back-end that does
 * not answer within the timeout fails the device for good: there is no way
 * to know what state the back-end is in, and retrying would block a vCPU.
 */
#include "virtio/vhost_user_front.h"

#include "common/log.h"
#include "common/why.h"
#include "virtio/vhost_user_msg.h"
#include "virtio/vhost_user_state.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* What we use of the back-end; MQ only to ask how many queues it has,
 * LOG_SHMFD only while a live migration runs, DEVICE_STATE only for
 * servicing. */
#define FRONT_PROTOCOL_FEATURES                                                                    \
	(1ULL << VHOST_USER_PROTOCOL_F_MQ | 1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK |              \
	 1ULL << VHOST_USER_PROTOCOL_F_CONFIG | 1ULL << VHOST_USER_PROTOCOL_F_LOG_SHMFD |          \
	 1ULL << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD |                                            \
	 1ULL << VHOST_USER_PROTOCOL_F_DEVICE_STATE)
/* Virtio feature bits the transport offers on its own account. */
#define TRANSPORT_FEATURES                                                                         \
	(1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_INDIRECT_DESC | 1ULL << VIRTIO_F_EVENT_IDX)

struct vhost_user_front {
	struct virtio_device vdev;
	struct virtio_device_ops ops;
	struct vhost_user_front_cfg cfg;
	char type[24];
	int sock;
	uint64_t features;	    /* offered by the back-end */
	uint64_t protocol_features; /* acked by us */
	uint8_t config[VHOST_USER_MAX_CONFIG_SIZE];
	/* A live migration's dirty log (set_log): the caller's fd, -1 if none. */
	int log_fd;
	uint64_t log_size;
	pthread_mutex_t lock;		/* the socket, running, refuser */
	bool running;			/* the transport started us (and has not stopped us) */
	/* vhost_user_front__hold: the transport's start waits (start_held)
	 * until released, as the back-end may not touch guest RAM yet. */
	bool held, start_held;
	int dead;			/* atomic: nothing more is sent */
	struct virtio_refuser *refuser; /* answering in the back-end's place */
	/* INFLIGHT_SHMFD: the region the first back-end made, handed to every
	 * later one (servicing, restart); -1 without it. */
	int inflight_fd;
	struct vhost_user_inflight inflight;
	/* A back-end that served the device before (replace_keep's old one):
	 * its rings are stopped but still enabled, so staging them again
	 * would start them; they are disabled first. */
	bool served_before;
};

static struct vhost_user_front *to_front(struct virtio_device *vdev)
{
	return vdev->priv;
}

/* The connection is unusable: fail the device once, with why. */
static void front__broken(struct vhost_user_front *f, const char *why)
{
	if (__atomic_exchange_n(&f->dead, 1, __ATOMIC_ACQ_REL))
		return;
	/* Before a transport took the model, create() returns why instead. */
	if (f->vdev.fail)
		f->vdev.fail(&f->vdev, why);
}

/* Sends one request, asking for an acknowledgement if ack: 0, or the
 * connection's error after failing the device. */
static int front__send(struct vhost_user_front *f, uint32_t req, const void *payload, uint32_t size,
		       const int *fds, unsigned int nr_fds, bool ack, char *why, size_t whylen)
{
	struct vhost_user_msg m;
	char name[32], bwhy[200];
	int err;

	if (__atomic_load_n(&f->dead, __ATOMIC_ACQUIRE))
		return why__set(why, whylen, -ENOTCONN, "the back-end is gone");
	memset(&m.hdr, 0, sizeof(m.hdr));
	m.hdr.request = req;
	m.hdr.flags = VHOST_USER_VERSION | (ack ? VHOST_USER_FLAG_NEED_REPLY : 0);
	m.hdr.size = size;
	if (size)
		memcpy(&m.p, payload, size);
	err = vhost_user_msg__send(f->sock, &m, fds, nr_fds);
	if (!err)
		return 0;
	snprintf(bwhy, sizeof(bwhy), "sending %s to the back-end: %s",
		 vhost_user_msg__name(req, name, sizeof(name)), strerror(-err));
	front__broken(f, bwhy);
	snprintf(why, whylen, "%s", bwhy);
	return err;
}

/*
 * Waits for the answer to req, the next one on the connection: into reply,
 * or with reply NULL an acknowledgement.  0, -EIO when the back-end
 * refused (why says so; the device is not failed for it), or the
 * connection's error after failing the device.
 */
static int front__wait(struct vhost_user_front *f, uint32_t req, struct vhost_user_msg *reply,
		       char *why, size_t whylen)
{
	struct vhost_user_msg r;
	char name[32], bwhy[200];
	const char *rn = vhost_user_msg__name(req, name, sizeof(name));
	bool ack = !reply;
	int err;

	if (__atomic_load_n(&f->dead, __ATOMIC_ACQUIRE))
		return why__set(why, whylen, -ENOTCONN, "the back-end is gone");
	if (!reply)
		reply = &r;
	err = vhost_user_msg__recv_reply(f->sock, reply, bwhy, sizeof(bwhy));
	if (!err && reply->nr_fds && req != VHOST_USER_GET_INFLIGHT_FD) {
		vhost_user_msg__close_fds(reply);
		snprintf(bwhy, sizeof(bwhy), "the answer carries file descriptors");
		err = -EPROTO;
	}
	if (!err && reply->hdr.request != req) {
		snprintf(bwhy, sizeof(bwhy), "it answered request %u", reply->hdr.request);
		err = -EPROTO;
	}
	if (err) {
		char tmp[sizeof(bwhy)];

		memcpy(tmp, bwhy, sizeof(tmp));
		if (err == -EAGAIN || err == -EWOULDBLOCK)
			snprintf(bwhy, sizeof(bwhy), "the back-end did not answer %s within %u ms",
				 rn, f->cfg.timeout_ms);
		else if (err == -EPROTO)
			snprintf(bwhy, sizeof(bwhy), "bad answer to %s: %s", rn, tmp);
		else
			snprintf(bwhy, sizeof(bwhy), "waiting for the answer to %s: %s", rn,
				 err == -ECONNRESET ? "the back-end closed the connection"
						    : strerror(-err));
		front__broken(f, bwhy);
		snprintf(why, whylen, "%s", bwhy);
		return err;
	}
	if (ack && (r.hdr.size != sizeof(uint64_t) || r.p.u64))
		return why__set(why, whylen, -EIO, "the back-end refused %s", rn);
	return 0;
}

/* With REPLY_ACK negotiated, a request without an answer of its own asks
 * for an acknowledgement, so a refusal is seen at the request. */
static bool front__acks(const struct vhost_user_front *f)
{
	return f->protocol_features & (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK);
}

/*
 * Sends one request; with reply, waits for the answer to it; otherwise, if
 * REPLY_ACK was negotiated, for the acknowledgement.  0, -EIO when the
 * back-end refused (why says so; the device is not failed for it), or the
 * connection's error after failing the device.
 */
static int front__call(struct vhost_user_front *f, uint32_t req, const void *payload, uint32_t size,
		       const int *fds, unsigned int nr_fds, struct vhost_user_msg *reply, char *why,
		       size_t whylen)
{
	bool ack = !reply && front__acks(f);
	int err = front__send(f, req, payload, size, fds, nr_fds, ack, why, whylen);

	if (err || (!reply && !ack))
		return err;
	return front__wait(f, req, reply, why, whylen);
}

/* A request posted now and acknowledged later (front__collect), so that
 * several go to the back-end in one go: it reads them one after another
 * without waiting for us in between. */
static int front__post(struct vhost_user_front *f, uint32_t req, const void *payload, uint32_t size,
		       char *why, size_t whylen)
{
	return front__send(f, req, payload, size, NULL, 0, front__acks(f), why, whylen);
}

static int front__collect(struct vhost_user_front *f, uint32_t req, char *why, size_t whylen)
{
	return front__acks(f) ? front__wait(f, req, NULL, why, whylen) : 0;
}

/* vhost_user_state's view of a connection (ctx being the front): requests
 * answered with 64 bits. */
static int front__state_send(void *ctx, uint32_t req, const void *payload, uint32_t size,
			     const int *fds, unsigned int nr_fds, char *why, size_t whylen)
{
	return front__send(ctx, req, payload, size, fds, nr_fds, false, why, whylen);
}

static int front__state_wait(void *ctx, uint32_t req, uint64_t *answer, char *why, size_t whylen)
{
	struct vhost_user_msg r;
	int err = front__wait(ctx, req, &r, why, whylen);

	if (err)
		return err;
	if (r.hdr.size != sizeof(uint64_t))
		return why__set(why, whylen, -EPROTO, "answer of %u bytes to a 64-bit query",
				r.hdr.size);
	*answer = r.p.u64;
	return 0;
}

static int front__get_u64(struct vhost_user_front *f, uint32_t req, uint64_t *v, char *why,
			  size_t whylen)
{
	int err = front__state_send(f, req, NULL, 0, NULL, 0, why, whylen);

	return err ? err : front__state_wait(f, req, v, why, whylen);
}

static int front__set_u64(struct vhost_user_front *f, uint32_t req, uint64_t v, const int *fds,
			  unsigned int nr_fds, char *why, size_t whylen)
{
	return front__call(f, req, &v, sizeof(v), fds, nr_fds, NULL, why, whylen);
}

static int front__set_state(struct vhost_user_front *f, uint32_t req, unsigned int q, uint32_t num,
			    char *why, size_t whylen)
{
	struct vhost_user_vring_state s = {.index = q, .num = num};

	return front__call(f, req, &s, sizeof(s), NULL, 0, NULL, why, whylen);
}

/* --- the model's ops --- */

static uint64_t front__features(struct virtio_device *vdev)
{
	/* Device bits only: the transport adds its own, and the vhost-user
	 * bits (protocol features, dirty log) are between us and the back-end. */
	return to_front(vdev)->features & ((1ULL << 24) - 1);
}

static uint16_t front__queue_max_size(struct virtio_device *vdev, unsigned int q)
{
	return to_front(vdev)->cfg.queue_size;
}

static void front__config_read(struct virtio_device *vdev, uint32_t offset, void *data,
			       uint32_t len)
{
	/* The transport checked offset+len against config_size. */
	memcpy(data, to_front(vdev)->config + offset, len);
}

static void front__config_write(struct virtio_device *vdev, uint32_t offset, const void *data,
				uint32_t len)
{
	struct vhost_user_front *f = to_front(vdev);
	struct vhost_user_config c = {.offset = offset, .size = len};
	char why[256];

	pthread_mutex_lock(&f->lock);
	memcpy(f->config + offset, data, len);
	memcpy(c.payload, data, len);
	if (front__call(f, VHOST_USER_SET_CONFIG, &c, VHOST_USER_CONFIG_HDR_SIZE + len, NULL, 0,
			NULL, why, sizeof(why)) == -EIO)
		pr_warn("%s: config write at %u: %s", vdev->id, offset, why);
	pthread_mutex_unlock(&f->lock);
}

static int front__set_mem_table(struct vhost_user_front *f, char *why, size_t whylen)
{
	const struct guest_mem *gm = f->vdev.mem;
	struct vhost_user_mem_table t = {0};
	int fds[VHOST_USER_MAX_REGIONS];

	if (!gm || gm->nr <= 0 || gm->nr > VHOST_USER_MAX_REGIONS)
		return why__set(why, whylen, -EINVAL, "no guest RAM to hand over");
	for (int i = 0; i < gm->nr; i++) {
		const struct guest_mem_region *r = &gm->r[i];

		if (r->hva < f->cfg.mem_base)
			return why__set(why, whylen, -EINVAL,
					"guest RAM at %#llx is not in the memfd",
					(unsigned long long)r->gpa);
		t.regions[i] = (struct vhost_user_mem_region){
		    .guest_phys_addr = r->gpa,
		    .memory_size = r->size,
		    .userspace_addr = (uint64_t)(uintptr_t)r->hva,
		    .mmap_offset = (uint64_t)(r->hva - f->cfg.mem_base),
		};
		fds[i] = f->cfg.mem_fd;
	}
	t.nregions = (uint32_t)gm->nr;
	return front__call(f, VHOST_USER_SET_MEM_TABLE, &t,
			   (uint32_t)(8 + t.nregions * sizeof(t.regions[0])), fds, t.nregions, NULL,
			   why, whylen);
}

/* The inflight region (if any) goes to the back-end before any ring runs. */
static int front__set_inflight(struct vhost_user_front *f, char *why, size_t whylen)
{
	if (f->inflight_fd < 0 ||
	    !(f->protocol_features & (1ULL << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD)))
		return 0;
	return front__call(f, VHOST_USER_SET_INFLIGHT_FD, &f->inflight, sizeof(f->inflight),
			   &f->inflight_fd, 1, NULL, why, whylen);
}

/*
 * A ring is handed over in three steps, which servicing also takes one by
 * one: its layout and eventfds (stage), its index (base), then enable.
 * With VHOST_USER_F_PROTOCOL_FEATURES negotiated (we always ack it) a ring
 * stays disabled until SET_VRING_ENABLE, and the paravisor neither touches
 * a disabled ring nor reads its kick eventfd, so a staged ring costs the
 * back-end that serves it now nothing.
 */
static int front__stage_ring(struct vhost_user_front *f, unsigned int q, char *why, size_t whylen)
{
	struct virtio_device *vdev = &f->vdev;
	const struct virtq *vq = &vdev->vqs[q];
	struct vhost_user_vring_addr a = {
	    .index = q,
	    .desc_user_addr = (uint64_t)(uintptr_t)vq->desc,
	    .used_user_addr = (uint64_t)(uintptr_t)vq->used,
	    .avail_user_addr = (uint64_t)(uintptr_t)vq->avail,
	};
	int err;

	if (f->log_fd >= 0) {
		a.flags = VHOST_VRING_F_LOG;
		a.log_guest_addr = vq->used_gpa;
	}
	err = front__set_state(f, VHOST_USER_SET_VRING_NUM, q, vq->size, why, whylen);
	if (!err)
		err = front__call(f, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, NULL, why,
				  whylen);
	if (!err && vdev->call_fd[q] >= 0)
		err = front__set_u64(f, VHOST_USER_SET_VRING_CALL, q, &vdev->call_fd[q], 1, why,
				     whylen);
	if (!err)
		err = front__set_u64(f, VHOST_USER_SET_VRING_KICK, q, &vdev->kick_fd[q], 1, why,
				     whylen);
	return err;
}

/*
 * Staged rings go live at the transport's indexes: ring q, or every
 * enabled ring for q < 0.  Every SET_VRING_BASE and SET_VRING_ENABLE is
 * posted before any acknowledgement is read, so the back-end takes them in
 * one go rather than waiting for us after each.  A base is a 16-bit index
 * the back-end has no reason to refuse; all acknowledgements are read
 * even after a refusal, so the connection stays in step, and the first
 * refusal is the answer.
 */
static int front__run_rings_post(struct vhost_user_front *f, int only, bool base, char *why,
				 size_t whylen)
{
	struct virtio_device *vdev = &f->vdev;
	int err = 0;

	for (unsigned int q = 0; !err && q < vdev->nr_queues; q++) {
		struct vhost_user_vring_state b = {.index = q, .num = vdev->vqs[q].last_avail};
		struct vhost_user_vring_state e = {.index = q, .num = 1};

		if (!vdev->vqs[q].enabled || (only >= 0 && q != (unsigned int)only))
			continue;
		if (base)
			err = front__post(f, VHOST_USER_SET_VRING_BASE, &b, sizeof(b), why, whylen);
		if (!err)
			err = front__post(f, VHOST_USER_SET_VRING_ENABLE, &e, sizeof(e), why,
					  whylen);
	}
	return err; /* the connection broke: nothing more to read */
}

/* The answers to front__run_rings_post; *enabled (if not NULL) counts the
 * rings whose SET_VRING_ENABLE was acknowledged. */
static int front__run_rings_collect(struct vhost_user_front *f, int only, bool base,
				    unsigned int *enabled, char *why, size_t whylen)
{
	struct virtio_device *vdev = &f->vdev;
	char rest[64] = ""; /* why after the first refusal: not reported */
	int err, first = 0;

	for (unsigned int q = 0; q < vdev->nr_queues; q++) {
		if (!vdev->vqs[q].enabled || (only >= 0 && q != (unsigned int)only))
			continue;
		err = base ? front__collect(f, VHOST_USER_SET_VRING_BASE, first ? rest : why,
					    first ? sizeof(rest) : whylen)
			   : 0;
		if (!first)
			first = err;
		err = front__collect(f, VHOST_USER_SET_VRING_ENABLE, first ? rest : why,
				     first ? sizeof(rest) : whylen);
		if (!first)
			first = err;
		if (!err && enabled)
			(*enabled)++;
	}
	return first;
}

static int front__run_rings(struct vhost_user_front *f, int only, char *why, size_t whylen)
{
	int err = front__run_rings_post(f, only, true, why, whylen);

	return err ? err : front__run_rings_collect(f, only, true, NULL, why, whylen);
}

/* The virtio and vhost-user feature bits we ack. */
static uint64_t front__acked(const struct vhost_user_front *f)
{
	return f->vdev.driver_features | 1ULL << VHOST_USER_F_PROTOCOL_FEATURES |
	       (f->log_fd >= 0 ? 1ULL << VHOST_F_LOG_ALL : 0);
}

static bool front__can_log(const struct vhost_user_front *f)
{
	return (f->protocol_features & (1ULL << VHOST_USER_PROTOCOL_F_LOG_SHMFD)) &&
	       (f->features & (1ULL << VHOST_F_LOG_ALL));
}

/* SET_LOG_BASE: the back-end maps the log (it always answers this one). */
static int front__send_log(struct vhost_user_front *f, char *why, size_t whylen)
{
	struct vhost_user_log l = {.mmap_size = f->log_size, .mmap_offset = 0};
	struct vhost_user_msg r;
	int err;

	err = front__call(f, VHOST_USER_SET_LOG_BASE, &l, sizeof(l), &f->log_fd, 1, &r, why,
			  whylen);
	if (!err && r.hdr.size == sizeof(uint64_t) && r.p.u64)
		return why__set(why, whylen, -EIO, "the back-end refused the dirty log");
	return err;
}

/* What every ring needs first: the dirty log if a migration runs, the
 * features the guest acked and its RAM. */
static int front__stage_device(struct vhost_user_front *f, char *why, size_t whylen)
{
	int err = f->log_fd >= 0 ? front__send_log(f, why, whylen) : 0;

	if (!err)
		err = front__set_u64(f, VHOST_USER_SET_FEATURES, front__acked(f), NULL, 0, why,
				     whylen);
	return err ? err : front__set_mem_table(f, why, whylen);
}

/* The back-end is gone while the rings run: answer them ourselves (locked). */
static void front__refuse(struct vhost_user_front *f)
{
	if (!f->running || f->refuser || !f->cfg.refuse)
		return;
	f->refuser = virtio_refuser__start(&f->vdev, f->cfg.refuse);
	if (!f->refuser)
		pr_err("%s: cannot answer its requests with errors: %s; they stay pending",
		       f->vdev.id, strerror(errno));
	else
		pr_info("%s: answering its requests with I/O errors from now on", f->vdev.id);
}

/* GET_VRING_BASE of every enabled ring, sent without waiting (the
 * answers are front__stop_wait's): 0, or the connection's error. */
static int front__stop_send(struct vhost_user_front *f, char *why, size_t whylen)
{
	struct virtio_device *vdev = &f->vdev;

	for (unsigned int q = 0; q < vdev->nr_queues; q++) {
		struct vhost_user_vring_state s = {.index = q};
		int err;

		if (!vdev->vqs[q].enabled)
			continue;
		err = front__send(f, VHOST_USER_GET_VRING_BASE, &s, sizeof(s), NULL, 0, false, why,
				  whylen);
		if (err)
			return err;
	}
	return 0;
}

/* The indexes GET_VRING_BASE gave: 0, or the connection's error (the
 * device failed, the indexes stay as they were). */
static int front__stop_wait(struct vhost_user_front *f, char *why, size_t whylen)
{
	struct virtio_device *vdev = &f->vdev;

	for (unsigned int q = 0; q < vdev->nr_queues; q++) {
		struct virtq *vq = &vdev->vqs[q];
		struct vhost_user_msg r;
		int err;

		if (!vq->enabled)
			continue;
		/* The back-end stops the ring after finishing what it took, so
		 * everything before this index is in the used ring. */
		err = front__wait(f, VHOST_USER_GET_VRING_BASE, &r, why, whylen);
		if (err)
			return err;
		if (r.hdr.size != sizeof(r.p.state) || r.p.state.index != q ||
		    r.p.state.num > UINT16_MAX) {
			front__broken(f, "bad answer to GET_VRING_BASE");
			return why__set(why, whylen, -EPROTO, "bad answer to GET_VRING_BASE");
		}
		vq->last_avail = vq->used_idx = (uint16_t)r.p.state.num;
	}
	return 0;
}

/* Takes the rings back: 0, or the connection's error (the device failed). */
static int front__stop_locked(struct vhost_user_front *f, char *why, size_t whylen)
{
	int err;

	f->start_held = false;
	if (f->refuser) {
		virtio_refuser__stop(f->refuser);
		f->refuser = NULL;
	}
	if (!f->running)
		return 0;
	f->running = false;
	err = front__stop_send(f, why, whylen);
	return err ? err : front__stop_wait(f, why, whylen);
}

static void front__stop(struct virtio_device *vdev)
{
	struct vhost_user_front *f = to_front(vdev);
	char why[256];

	pthread_mutex_lock(&f->lock);
	front__stop_locked(f, why, sizeof(why));
	pthread_mutex_unlock(&f->lock);
}

int vhost_user_front__set_log(struct virtio_device *vdev, int log_fd, uint64_t log_size,
			      char *why, size_t whylen)
{
	struct vhost_user_front *f = to_front(vdev);
	int err = 0;

	pthread_mutex_lock(&f->lock);
	if (log_fd >= 0 && !front__can_log(f)) {
		err = why__set(why, whylen, -ENOTSUP,
			       "its back-end cannot log the guest pages it writes (no LOG_SHMFD "
			       "or VHOST_F_LOG_ALL)");
		goto out_unlock;
	}
	f->log_fd = log_fd;
	f->log_size = log_fd >= 0 ? log_size : 0;
	if (!f->running || __atomic_load_n(&f->dead, __ATOMIC_ACQUIRE))
		goto out_unlock; /* start() sends it, if ever */
	if (log_fd >= 0)
		err = front__send_log(f, why, whylen);
	if (!err)
		err = front__set_u64(f, VHOST_USER_SET_FEATURES, front__acked(f), NULL, 0, why,
				     whylen);
	/* The rings' addresses again, with or without the used ring's log. */
	for (unsigned int q = 0; !err && q < vdev->nr_queues; q++) {
		const struct virtq *vq = &vdev->vqs[q];
		struct vhost_user_vring_addr a = {
		    .index = q,
		    .flags = log_fd >= 0 ? VHOST_VRING_F_LOG : 0,
		    .desc_user_addr = (uint64_t)(uintptr_t)vq->desc,
		    .used_user_addr = (uint64_t)(uintptr_t)vq->used,
		    .avail_user_addr = (uint64_t)(uintptr_t)vq->avail,
		    .log_guest_addr = log_fd >= 0 ? vq->used_gpa : 0,
		};

		if (vq->enabled)
			err = front__call(f, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0,
					  NULL, why, whylen);
	}
	if (err && log_fd >= 0) {
		f->log_fd = -1;
		f->log_size = 0;
	}
out_unlock:
	pthread_mutex_unlock(&f->lock);
	return err;
}

/* Hands the rings to the back-end; 0, or negative errno with why. */
static int front__start_locked(struct vhost_user_front *f, char *why, size_t whylen)
{
	struct virtio_device *vdev = &f->vdev;
	uint64_t unknown = vdev->driver_features & ~(f->features | TRANSPORT_FEATURES);
	unsigned int n = 0;
	int err;

	if (f->running)
		return 0;
	if (unknown || (vdev->driver_features & TRANSPORT_FEATURES & ~f->features))
		return why__set(why, whylen, -EINVAL,
				"the guest acked features %#llx that the back-end does not offer",
				(unsigned long long)(vdev->driver_features & ~f->features));
	err = front__stage_device(f, why, whylen);
	if (!err)
		err = front__set_inflight(f, why, whylen);
	for (unsigned int q = 0; !err && q < vdev->nr_queues; q++) {
		if (!vdev->vqs[q].enabled)
			continue;
		err = front__stage_ring(f, q, why, whylen);
		if (!err)
			err = front__run_rings(f, (int)q, why, whylen);
		n++;
	}
	if (err && __atomic_load_n(&f->dead, __ATOMIC_ACQUIRE) && f->cfg.refuse) {
		/* Gone (the device has failed and said why): the guest's
		 * requests get errors rather than no answer. */
		f->running = true;
		front__refuse(f);
		return f->refuser ? 0 : err;
	}
	if (err)
		return err;
	f->running = true;
	pr_info("%s: %u queue(s) handed to the vhost-user back-end", vdev->id, n);
	return 0;
}

static int front__start(struct virtio_device *vdev)
{
	struct vhost_user_front *f = to_front(vdev);
	char why[256];
	int err;

	pthread_mutex_lock(&f->lock);
	if (f->held) {
		f->start_held = true;
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	err = front__start_locked(f, why, sizeof(why));
	/* A refusal: the transport fails the device; say what was refused. */
	if (err == -EIO || err == -EINVAL)
		pr_err("%s: %s", vdev->id, why);
	pthread_mutex_unlock(&f->lock);
	return err;
}

void vhost_user_front__hold(struct virtio_device *vdev, bool hold)
{
	struct vhost_user_front *f = to_front(vdev);
	char why[256];

	pthread_mutex_lock(&f->lock);
	f->held = hold;
	if (!hold && f->start_held) {
		f->start_held = false;
		if (front__start_locked(f, why, sizeof(why)) && !f->running) {
			pr_err("%s: %s", vdev->id, why);
			front__broken(f, why);
		}
	}
	pthread_mutex_unlock(&f->lock);
}

/* State the back-end does not hold, kept where the device's owner says. */
static int front__save(struct virtio_device *vdev, uint8_t **buf, size_t *len)
{
	struct vhost_user_front *f = to_front(vdev);

	return f->cfg.save(f->cfg.opaque, buf, len);
}

static int front__restore(struct virtio_device *vdev, const uint8_t *buf, size_t len)
{
	struct vhost_user_front *f = to_front(vdev);

	return f->cfg.restore(f->cfg.opaque, buf, len);
}

static void front__destroy(struct virtio_device *vdev)
{
	struct vhost_user_front *f = to_front(vdev);

	front__stop(vdev);
	if (f->sock >= 0)
		close(f->sock);
	if (f->inflight_fd >= 0)
		close(f->inflight_fd);
	if (f->cfg.release)
		f->cfg.release(f->cfg.opaque);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* --- servicing: moving a running device onto another back-end --- */

static uint64_t front__now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* What the new back-end must match before the old one is touched, so a
 * mismatch costs the guest nothing. */
static int front__check_next(struct vhost_user_front *f, struct vhost_user_front *n, char *why,
			     size_t whylen)
{
	uint64_t missing = f->vdev.driver_features & ~TRANSPORT_FEATURES & ~n->features;

	if (__atomic_load_n(&f->dead, __ATOMIC_ACQUIRE))
		return why__set(why, whylen, -ENOTCONN,
				"the running back-end is gone (the device has failed)");
	missing |= f->vdev.driver_features & TRANSPORT_FEATURES & ~n->features;
	if (missing)
		return why__set(why, whylen, -ENOTSUP,
				"the new back-end does not offer features %#llx that the guest "
				"driver acked",
				(unsigned long long)missing);
	if (f->log_fd >= 0 && !front__can_log(n))
		return why__set(why, whylen, -ENOTSUP,
				"a live migration is running and the new back-end cannot log "
				"the pages it writes (no LOG_SHMFD)");
	/* virtio-blk's config is the back-end's (capacity, limits); the
	 * guest read it already and gets no config-change interrupt here. */
	if (memcmp(f->config, n->config, f->cfg.config_size))
		return why__set(why, whylen, -EINVAL,
				"the new back-end presents a different config space");
	return 0;
}

/* The connections change places: f (the transport's model) talks to the
 * new back-end, n keeps the old socket for destroy() to close. */
static void front__swap_conn(struct vhost_user_front *f, struct vhost_user_front *n)
{
	struct timeval tv = {f->cfg.timeout_ms / 1000, (f->cfg.timeout_ms % 1000) * 1000};
	int sock = f->sock;
	uint64_t feat = f->features, pf = f->protocol_features;

	f->sock = n->sock;
	f->features = n->features;
	f->protocol_features = n->protocol_features;
	n->sock = sock;
	n->features = feat;
	n->protocol_features = pf;
	/* The new connection was made with the servicing's deadline. */
	if (f->cfg.timeout_ms) {
		setsockopt(f->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(f->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
}

/* n (a new back-end) gets f's inflight region instead of the one it made,
 * so a later death of it is recoverable from the same region. */
static void front__share_inflight(struct vhost_user_front *f, struct vhost_user_front *n)
{
	int fd = f->inflight_fd >= 0 ? fcntl(f->inflight_fd, F_DUPFD_CLOEXEC, 0) : -1;

	if (n->inflight_fd >= 0)
		close(n->inflight_fd);
	n->inflight_fd = fd;
	n->inflight = f->inflight;
}

/*
 * Servicing, in the order the blackout needs:
 *   1. front__prestage(): before the old back-end is touched, the new one
 *      gets the features, the memory table, every ring's layout and
 *      eventfds (its rings left disabled), the inflight region and the read
 *      end of the pipe its device state will come through;
 *   2. the blackout starts: the old one is asked for each ring's index
 *      (GET_VRING_BASE: it finishes the requests it took and stops) and
 *      for its device state in one go, and answers them one after another;
 *   3. the state goes into the new one's pipe, which checks it;
 *   4. the new one enables its rings.
 * Only 2 to 4 hold the guest's requests.  When both back-ends move device
 * state and the new one acknowledges requests (REPLY_ACK), they are sent
 * in one go and the state goes from one back-end to the other directly
 * (front__switch_chained): one wait.  Otherwise the front-end relays the state and
 * each step is a wait of its own (front__stop_and_move, then
 * front__run_rings): without REPLY_ACK nothing would say whether a ring
 * was enabled after a refused state.
 *
 * The inflight region can go at 1 although the old back-end still uses
 * it: the paravisor maps it then, and reads it only when a ring starts
 * (after 4), when the old one has stopped.  Nothing is in flight by then
 * (GET_VRING_BASE finished it all); the region goes on for a later crash.
 *
 * The rings go to n through n's own connection: a failure there fails n,
 * which no transport holds (no fail hook, no refuser), never the device.
 * n gets a copy of the transport's ring state; the eventfds stay the
 * transport's, so the guest's kicks and interrupts are the same ones.
 */
struct front_service {
	struct vhost_user_state_conn from, to;
	bool state; /* both back-ends take DEVICE_STATE */
	int state_wfd; /* the new one's pipe, from 1 to 3; -1 otherwise */
};

static int front__prestage(struct vhost_user_front *f, struct vhost_user_front *n,
			   struct front_service *sv, char *why, size_t whylen)
{
	struct virtio_device *vdev = &n->vdev;
	char swhy[256];
	int err;

	vdev->mem = f->vdev.mem;
	vdev->driver_features = f->vdev.driver_features;
	n->log_fd = f->log_fd; /* still f's: n only sends it */
	n->log_size = f->log_size;
	memcpy(vdev->vqs, f->vdev.vqs, sizeof(vdev->vqs));
	memcpy(vdev->kick_fd, f->vdev.kick_fd, sizeof(vdev->kick_fd));
	memcpy(vdev->call_fd, f->vdev.call_fd, sizeof(vdev->call_fd));
	err = 0;
	for (unsigned int q = 0; !err && n->served_before && q < vdev->nr_queues; q++)
		err = front__set_state(n, VHOST_USER_SET_VRING_ENABLE, q, 0, why, whylen);
	if (!err)
		err = front__stage_device(n, why, whylen);
	for (unsigned int q = 0; !err && q < vdev->nr_queues; q++)
		if (vdev->vqs[q].enabled)
			err = front__stage_ring(n, q, why, whylen);
	if (!err) {
		front__share_inflight(f, n);
		err = front__set_inflight(n, why, whylen);
	}
	if (err || !sv->state)
		return err;
	err = vhost_user_state__load_begin(&sv->to, &sv->state_wfd, swhy, sizeof(swhy));
	if (err)
		why__set(why, whylen, err, "the new back-end did not load the device state: %s",
			 swhy);
	return err;
}

/* Without DEVICE_STATE on the old back-end there is nothing to move (the
 * rings' indexes are all a device without it has); with it on the old one
 * only, the new one starts afresh (an older build: it would not know the
 * state anyway), and the log says so. */
static bool front__moves_state(struct vhost_user_front *f, struct vhost_user_front *n)
{
	const uint64_t ds = 1ULL << VHOST_USER_PROTOCOL_F_DEVICE_STATE;

	if (!(f->protocol_features & ds))
		return false;
	if (!(n->protocol_features & ds)) {
		pr_warn("%s: the new back-end does not take device state (no DEVICE_STATE): it "
			"starts with its own",
			f->vdev.id);
		return false;
	}
	return true;
}

/* 2 and 3 above: the old back-end stopped (0, or its connection's error
 * with owhy: the device failed) and its state in the new one (-EIO etc.
 * with why: the old one can take the rings back). */
static int front__stop_and_move(struct vhost_user_front *f, struct vhost_user_front *n,
				struct front_service *sv, struct vhost_user_front_swap *res,
				uint64_t t0, int *state_err, char *owhy, size_t owhylen, char *why,
				size_t whylen)
{
	char swhy[256];
	uint8_t *buf = NULL;
	size_t len = 0;
	int err, rfd = -1;

	f->running = false;
	err = front__stop_send(f, owhy, owhylen);
	if (!err && sv->state)
		err = vhost_user_state__save_send(&sv->from, &rfd, owhy, owhylen);
	if (!err)
		err = front__stop_wait(f, owhy, owhylen);
	if (err) {
		if (rfd >= 0)
			close(rfd);
		return err;
	}
	res->stop_us = front__now_us() - t0;
	*state_err = 0;
	if (!sv->state)
		return 0;
	*state_err = vhost_user_state__save_end(&sv->from, rfd, f->cfg.timeout_ms, &buf, &len, swhy,
						sizeof(swhy));
	if (*state_err) {
		why__set(why, whylen, *state_err,
			 "saving the device state on the running back-end: %s", swhy);
		return 0;
	}
	*state_err =
	    vhost_user_state__load_end(&sv->to, sv->state_wfd, buf, len, swhy, sizeof(swhy));
	sv->state_wfd = -1;
	free(buf);
	if (*state_err)
		why__set(why, whylen, *state_err,
			 "the new back-end did not load the device state: %s", swhy);
	return 0;
}

/* After a failed switch: the new back-end had enabled rings (a back-end
 * that takes SET_VRING_ENABLE although its state was refused, or the old
 * one failed meanwhile).  They are stopped, and the old back-end resumes
 * at the indexes the new one gives. */
static void front__unswitch(struct vhost_user_front *f, struct vhost_user_front *n,
			    unsigned int enabled)
{
	char owhy[128];

	pr_warn("%s: the new back-end enabled %u ring(s) although the switch failed; stopping "
		"them",
		f->vdev.id, enabled);
	if (front__stop_send(n, owhy, sizeof(owhy)) || front__stop_wait(n, owhy, sizeof(owhy))) {
		pr_err("%s: stopping the new back-end's rings failed: %s", f->vdev.id, owhy);
		return;
	}
	for (unsigned int q = 0; q < n->vdev.nr_queues; q++) {
		f->vdev.vqs[q].last_avail = n->vdev.vqs[q].last_avail;
		f->vdev.vqs[q].used_idx = n->vdev.vqs[q].used_idx;
	}
}

/*
 * 2 to 4 chained, when the new back-end acknowledges requests and both
 * move device state: the old one gets GET_VRING_BASE for each ring and the
 * write end of the new one's state pipe (from prestage) with SAVE and
 * CHECK_DEVICE_STATE; right behind, the new one gets CHECK_DEVICE_STATE
 * and SET_VRING_ENABLE, no SET_VRING_BASE: its CHECK reads the state as
 * the old one writes it, after stopping, and the state carries the rings'
 * indexes (the paravisor's does, vu_state.c; a disk's inflight region
 * says them too).  The front-end then only reads answers, so the state
 * and the rings go from one back-end to the other without waiting for it.
 * A back-end that refused the state must refuse to enable its rings (the
 * paravisor does); one that enabled anyway is stopped again
 * (front__unswitch), as is one that enabled while the old one broke.
 * 0: switched.  *old_err (with owhy): the old back-end broke, the device
 * failed.  Otherwise negative errno with why: roll back.
 */
static int front__switch_chained(struct vhost_user_front *f, struct vhost_user_front *n,
				 struct front_service *sv, struct vhost_user_front_swap *res,
				 uint64_t t0, int *old_err, char *owhy, size_t owhylen, char *why,
				 size_t whylen)
{
	char swhy[256], nwhy[320], rwhy[256], cwhy[256];
	unsigned int enabled = 0;
	int oerr, serr = 0, nerr, rerr;

	f->running = false;
	oerr = front__stop_send(f, owhy, owhylen);
	if (!oerr)
		oerr = vhost_user_state__save_send_fd(&sv->from, sv->state_wfd, owhy, owhylen);
	else
		close(sv->state_wfd);
	sv->state_wfd = -1;
	*old_err = oerr;
	if (oerr)
		return oerr; /* nothing went to the new one */
	nerr = vhost_user_state__check_send(&sv->to, rwhy, sizeof(rwhy));
	if (!nerr)
		nerr = front__run_rings_post(n, -1, false, rwhy, sizeof(rwhy));
	if (nerr)
		snprintf(nwhy, sizeof(nwhy), "failed: %s", rwhy);
	oerr = front__stop_wait(f, owhy, owhylen);
	res->stop_us = front__now_us() - t0;
	if (!oerr) {
		serr = vhost_user_state__save_wait(&sv->from, swhy, sizeof(swhy));
		if (serr && __atomic_load_n(&f->dead, __ATOMIC_ACQUIRE)) {
			oerr = serr;
			snprintf(owhy, owhylen, "%s", swhy);
		}
	}
	*old_err = oerr;
	res->state_us = front__now_us() - t0 - res->stop_us;
	for (unsigned int q = 0; q < n->vdev.nr_queues; q++) {
		n->vdev.vqs[q].last_avail = f->vdev.vqs[q].last_avail;
		n->vdev.vqs[q].used_idx = f->vdev.vqs[q].used_idx;
	}
	if (!nerr) {
		nerr = vhost_user_state__load_wait(&sv->to, cwhy, sizeof(cwhy));
		rerr = front__run_rings_collect(n, -1, false, &enabled, rwhy, sizeof(rwhy));
		if (nerr)
			snprintf(nwhy, sizeof(nwhy), "did not load the device state: %s", cwhy);
		else if (rerr)
			snprintf(nwhy, sizeof(nwhy), "failed: %s", rwhy);
		nerr = nerr ? nerr : rerr;
	}
	if (!oerr && !serr && !nerr)
		return 0;
	if (enabled)
		front__unswitch(f, n, enabled);
	if (oerr)
		return oerr;
	if (serr)
		return why__set(why, whylen, serr,
				"saving the device state on the running back-end: %s", swhy);
	return why__set(why, whylen, nerr, "the new back-end %s", nwhy);
}

int vhost_user_front__replace_keep(struct virtio_device *vdev, struct virtio_device *next,
				   struct virtio_device **old, struct vhost_user_front_swap *res,
				   char *why, size_t whylen)
{
	struct vhost_user_front *f = to_front(vdev), *n = to_front(next);
	struct front_service sv = {
	    .from = {front__state_send, front__state_wait, f},
	    .to = {front__state_send, front__state_wait, n},
	    .state_wfd = -1,
	};
	char owhy[256];
	uint64_t t0;
	size_t size = 0;
	int err, state_err = 0;

	memset(res, 0, sizeof(*res));
	res->old_running = true;
	n->cfg.refuse = NULL; /* a failure of n must never answer the guest */
	pthread_mutex_lock(&f->lock);
	err = front__check_next(f, n, why, whylen);
	if (err) {
		res->old_running = !__atomic_load_n(&f->dead, __ATOMIC_ACQUIRE);
		goto out_unlock;
	}
	sv.state = front__moves_state(f, n);
	if (!f->running) {
		/* No rings (the driver has not started, or reset the device):
		 * the state moves (counters, the image's identity) and the
		 * next start() simply goes to the new back-end. */
		err = sv.state ? vhost_user_state__transfer(&sv.from, &sv.to, f->cfg.timeout_ms,
							    &size, why, whylen)
			       : 0;
		if (err)
			res->old_running = !__atomic_load_n(&f->dead, __ATOMIC_ACQUIRE);
		else
			front__swap_conn(f, n);
		goto out_unlock;
	}
	/* The old back-end serves on meanwhile; a refusal here costs the
	 * guest nothing. */
	t0 = front__now_us();
	err = front__prestage(f, n, &sv, why, whylen);
	if (err)
		goto out_unlock;
	/* From here the guest's requests on this device wait in the rings.
	 * Nothing is left half done: after GET_VRING_BASE every request the
	 * old one took is in the used ring, and the rest is still in the
	 * avail ring for the next one. */
	res->stage_us = front__now_us() - t0;
	t0 = front__now_us();
	if (sv.state && front__acks(n)) {
		int old_err = 0;

		err = front__switch_chained(f, n, &sv, res, t0, &old_err, owhy, sizeof(owhy), why,
					    whylen);
		if (old_err)
			goto old_broke;
	} else {
		err = front__stop_and_move(f, n, &sv, res, t0, &state_err, owhy, sizeof(owhy), why,
					   whylen);
		if (err)
			goto old_broke;
		res->state_us = front__now_us() - t0 - res->stop_us;
		err = state_err;
		for (unsigned int q = 0; !err && q < n->vdev.nr_queues; q++) {
			n->vdev.vqs[q].last_avail = f->vdev.vqs[q].last_avail;
			n->vdev.vqs[q].used_idx = f->vdev.vqs[q].used_idx;
		}
		if (!err)
			err = front__run_rings(n, -1, why, whylen);
	}
	if (!err) {
		res->blackout_us = front__now_us() - t0;
		front__swap_conn(f, n);
		f->running = true;
		goto out_unlock;
	}
	/* Rollback: the old back-end gets the rings at the indexes it gave
	 * (unless it broke while saving its state: then the rings are
	 * answered with errors, and that is no rollback). */
	snprintf(owhy, sizeof(owhy), "it broke while saving its device state");
	if (front__start_locked(f, owhy, sizeof(owhy)) ||
	    __atomic_load_n(&f->dead, __ATOMIC_ACQUIRE)) {
		res->old_running = false;
		pr_err("%s: giving the rings back to the running back-end failed: %s", vdev->id,
		       owhy);
	} else {
		res->blackout_us = front__now_us() - t0;
	}
	goto out_unlock;
old_broke:
	/* The old back-end broke while stopping (the device failed): there
	 * is no state to move; answer the guest with errors. */
	f->running = true;
	front__refuse(f);
	res->old_running = false;
	why__set(why, whylen, err, "the running back-end failed while stopping: %s", owhy);
out_unlock:
	pthread_mutex_unlock(&f->lock);
	if (sv.state_wfd >= 0)
		close(sv.state_wfd);
	/* n holds the connection that is no longer used: the old one after a
	 * switch, the new one otherwise.  Closing it lets that back-end go;
	 * after a switch the caller may keep it, to switch back. */
	if (old)
		*old = err ? NULL : next;
	n->served_before = true;
	if (err || !old)
		next->ops->destroy(next);
	if (!err && res->blackout_us)
		pr_info("%s: queue(s) moved to the new vhost-user back-end: blackout %llu us (old "
			"one stopped %llu, device state moved %llu, new one enabled %llu); staged "
			"in %llu us before",
			vdev->id, (unsigned long long)res->blackout_us,
			(unsigned long long)res->stop_us, (unsigned long long)res->state_us,
			(unsigned long long)(res->blackout_us - res->stop_us - res->state_us),
			(unsigned long long)res->stage_us);
	else if (!err && size)
		pr_info("%s: device state moved to the new back-end (%zu bytes)", vdev->id, size);
	return err;
}

int vhost_user_front__replace(struct virtio_device *vdev, struct virtio_device *next,
			      struct vhost_user_front_swap *res, char *why, size_t whylen)
{
	return vhost_user_front__replace_keep(vdev, next, NULL, res, why, whylen);
}

/*
 * Restart: the back-end died without giving the rings back.  The ring base
 * cannot be asked for, so it is derived as QEMU does for a reconnect: the
 * used index in guest RAM (everything the dead one finished is there); the
 * new back-end adds what the inflight region says was still in flight and
 * serves those requests again.
 */
int vhost_user_front__reconnect(struct virtio_device *vdev, struct virtio_device *next, char *why,
				size_t whylen)
{
	struct vhost_user_front *f = to_front(vdev), *n = to_front(next);
	bool was_running;
	int err;

	n->cfg.refuse = NULL;
	pthread_mutex_lock(&f->lock);
	err = front__check_next(f, n, why, whylen);
	if (err)
		goto out_unlock;
	if (f->refuser) {
		virtio_refuser__stop(f->refuser);
		f->refuser = NULL;
	}
	front__swap_conn(f, n);
	/* f keeps its inflight region; n's (unused) goes with n. */
	was_running = f->running;
	f->running = false;
	if (!was_running)
		goto out_unlock;
	for (unsigned int q = 0; q < vdev->nr_queues; q++) {
		struct virtq *vq = &vdev->vqs[q];

		if (vq->enabled)
			vq->last_avail = vq->used_idx =
			    le16toh(__atomic_load_n((uint16_t *)vq->used + 1, __ATOMIC_ACQUIRE));
	}
	err = front__start_locked(f, why, whylen);
	if (err) {
		/* Half set up: this back-end cannot be trusted with the rings. */
		front__broken(f, why);
		f->running = true;
		front__refuse(f);
		goto out_unlock;
	}
	/* The dead one may have filled the used ring and died before the
	 * interrupt: one more is harmless, a missing one leaves the guest
	 * waiting for requests that are done. */
	for (unsigned int q = 0; q < vdev->nr_queues; q++) {
		uint64_t one = 1;

		if (vdev->vqs[q].enabled && vdev->call_fd[q] >= 0 &&
		    write(vdev->call_fd[q], &one, sizeof(one)) < 0) {
			/* EAGAIN: an interrupt is pending anyway. */
		}
	}
out_unlock:
	pthread_mutex_unlock(&f->lock);
	next->ops->destroy(next);
	return err;
}

void vhost_user_front__gone(struct virtio_device *vdev, const char *why)
{
	struct vhost_user_front *f = to_front(vdev);

	pthread_mutex_lock(&f->lock);
	front__broken(f, why);
	front__refuse(f);
	pthread_mutex_unlock(&f->lock);
}

/* --- set-up --- */

/* Asks the back-end for an inflight region for every queue the guest may
 * use, at the largest size it may choose: once per device, kept for every
 * later back-end. */
static int front__get_inflight(struct vhost_user_front *f, char *why, size_t whylen)
{
	struct vhost_user_inflight req = {
	    .num_queues = (uint16_t)f->cfg.nr_queues,
	    .queue_size = f->cfg.queue_size,
	};
	struct vhost_user_msg r;
	int err;

	if (!(f->protocol_features & (1ULL << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD)))
		return 0;
	err =
	    front__call(f, VHOST_USER_GET_INFLIGHT_FD, &req, sizeof(req), NULL, 0, &r, why, whylen);
	if (err)
		return err;
	if (r.hdr.size != sizeof(req) || r.nr_fds != 1 || !r.p.inflight.mmap_size) {
		vhost_user_msg__close_fds(&r);
		return why__set(why, whylen, -EPROTO,
				"GET_INFLIGHT_FD answered %u bytes and %u file descriptors",
				r.hdr.size, r.nr_fds);
	}
	f->inflight_fd = r.fds[0];
	f->inflight = r.p.inflight;
	f->inflight.num_queues = req.num_queues;
	f->inflight.queue_size = req.queue_size;
	return 0;
}

static int front__negotiate(struct vhost_user_front *f, char *why, size_t whylen)
{
	struct vhost_user_config c = {.offset = 0, .size = f->cfg.config_size};
	struct vhost_user_msg r;
	uint64_t pf = 0, nq = 1;
	int err;

	err = front__get_u64(f, VHOST_USER_GET_FEATURES, &f->features, why, whylen);
	if (err)
		return err;
	if (!(f->features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES)) ||
	    !(f->features & (1ULL << VIRTIO_F_VERSION_1)))
		return why__set(why, whylen, -ENOTSUP,
				"the back-end offers features %#llx, without VERSION_1 or "
				"PROTOCOL_FEATURES",
				(unsigned long long)f->features);
	err = front__get_u64(f, VHOST_USER_GET_PROTOCOL_FEATURES, &pf, why, whylen);
	if (err)
		return err;
	if (!(pf & (1ULL << VHOST_USER_PROTOCOL_F_CONFIG)))
		return why__set(why, whylen, -ENOTSUP,
				"the back-end cannot tell its config space (no CONFIG in "
				"protocol features %#llx)",
				(unsigned long long)pf);
	err = front__set_u64(f, VHOST_USER_SET_PROTOCOL_FEATURES, pf & FRONT_PROTOCOL_FEATURES,
			     NULL, 0, why, whylen);
	if (err)
		return err;
	f->protocol_features = pf & FRONT_PROTOCOL_FEATURES;
	err = front__get_inflight(f, why, whylen);
	if (err)
		return err;
	if (pf & (1ULL << VHOST_USER_PROTOCOL_F_MQ)) {
		err = front__get_u64(f, VHOST_USER_GET_QUEUE_NUM, &nq, why, whylen);
		if (err)
			return err;
	}
	if (nq < f->cfg.nr_queues)
		return why__set(why, whylen, -EINVAL, "the back-end serves %llu queue(s), not %u",
				(unsigned long long)nq, f->cfg.nr_queues);
	err = front__call(f, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0, NULL, why, whylen);
	if (err)
		return err;
	err = front__call(f, VHOST_USER_GET_CONFIG, &c, VHOST_USER_CONFIG_HDR_SIZE + c.size, NULL,
			  0, &r, why, whylen);
	if (err)
		return err;
	if (r.hdr.size != VHOST_USER_CONFIG_HDR_SIZE + c.size || r.p.cfg.size != c.size ||
	    r.p.cfg.offset != 0)
		return why__set(why, whylen, -EPROTO, "GET_CONFIG answered %u bytes for %u",
				r.hdr.size, VHOST_USER_CONFIG_HDR_SIZE + c.size);
	memcpy(f->config, r.p.cfg.payload, c.size);
	return 0;
}

struct virtio_device *vhost_user_front__alloc(const struct vhost_user_front_cfg *cfg, char *why,
					      size_t whylen)
{
	struct vhost_user_front *f;

	if (!cfg->nr_queues || cfg->nr_queues > VIRTIO_MAX_QUEUES ||
	    cfg->config_size > VHOST_USER_MAX_CONFIG_SIZE || !cfg->queue_size) {
		errno = EINVAL;
		why__set(why, whylen, 0, "bad front-end parameters");
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		why__set(why, whylen, 0, "out of memory");
		return NULL;
	}
	f->sock = -1;
	f->inflight_fd = -1;
	f->log_fd = -1;
	f->cfg = *cfg;
	pthread_mutex_init(&f->lock, NULL);
	snprintf(f->type, sizeof(f->type), "%s", cfg->type);
	snprintf(f->vdev.id, sizeof(f->vdev.id), "%s", cfg->id);
	f->ops = (struct virtio_device_ops){
	    .type = f->type,
	    .device_id = cfg->device_id,
	    .features = front__features,
	    .queue_max_size = front__queue_max_size,
	    .config_size = cfg->config_size,
	    .config_read = front__config_read,
	    .config_write = front__config_write,
	    .start = front__start,
	    .stop = front__stop,
	    .save = cfg->save ? front__save : NULL,
	    .restore = cfg->restore ? front__restore : NULL,
	    .destroy = front__destroy,
	};
	f->vdev.ops = &f->ops;
	f->vdev.priv = f;
	f->vdev.nr_queues = cfg->nr_queues;
	return &f->vdev;
}

int vhost_user_front__connect(struct virtio_device *vdev, int sock, char *why, size_t whylen)
{
	struct vhost_user_front *f = to_front(vdev);
	struct timeval tv = {f->cfg.timeout_ms / 1000, (f->cfg.timeout_ms % 1000) * 1000};
	int err;

	if (f->sock >= 0) {
		close(sock);
		return why__set(why, whylen, -EISCONN, "already connected to a back-end");
	}
	/* A hung back-end must not hold a vCPU forever. */
	if (f->cfg.timeout_ms) {
		setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	pthread_mutex_lock(&f->lock);
	f->sock = sock;
	err = front__negotiate(f, why, whylen);
	if (err) {
		close(f->sock);
		f->sock = -1;
		if (f->inflight_fd >= 0)
			close(f->inflight_fd);
		f->inflight_fd = -1;
	}
	pthread_mutex_unlock(&f->lock);
	return err;
}

struct virtio_device *vhost_user_front__create(int sock, const struct vhost_user_front_cfg *cfg,
					       char *why, size_t whylen)
{
	struct virtio_device *vdev = vhost_user_front__alloc(cfg, why, whylen);
	int err;

	if (!vdev) {
		close(sock);
		return NULL;
	}
	err = vhost_user_front__connect(vdev, sock, why, whylen);
	if (err) {
		/* Not handed to a transport yet: no fail hook, and the
		 * caller says what went wrong. */
		to_front(vdev)->dead = 1;
		to_front(vdev)->cfg.release = NULL;
		front__destroy(vdev);
		errno = -err;
		return NULL;
	}
	return vdev;
}
