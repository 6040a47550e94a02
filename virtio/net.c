/* virtio/net.c — virtio-net (virtio 1.2, 5.1): one RX and one TX queue,
 * driven by one thread that polls the kick fds together with the backend's
 * fds, so the backend (libslirp is not thread-safe) is only ever entered
 * from here.  RX never blocks: a frame that finds no guest buffers stays
 * with the backend (which holds a few and then drops them, counted). */
#include "virtio/net.h"

#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define NET_POLL_FDS 256
#define TX_BUDGET    256 /* frames per turn, so RX is not starved */
#define RX_SRC_IOV   8

struct virtio_net {
	struct virtio_device vdev;
	struct net_backend *be;
	struct virtio_net_config cfg;
	struct virtio_net_stats stats;

	pthread_t thread;
	bool running;
	int stop_fd;
	bool failed; /* fail() called: stop touching the queues */
	bool tx_more;

	/* Scratch, used by the device thread only. */
	struct virtq_elem rx_first, rx_elem, tx_elem;
	uint16_t rx_heads[VIRTIO_NET_QUEUE_SIZE];
	bool rx_resub[VIRTIO_NET_QUEUE_SIZE];
	uint32_t rx_lens[VIRTIO_NET_QUEUE_SIZE];
	uint16_t tx_heads[TX_BUDGET];
	struct iovec tx_iov[VIRTQ_MAX_IOV];
	uint8_t tx_buf[NET_VNET_HDR_LEN + NET_FRAME_MAX];
	struct pollfd fds[NET_POLL_FDS];
};

#define STAT_ADD(n, field, v) __atomic_fetch_add(&(n)->stats.field, (v), __ATOMIC_RELAXED)

static struct virtio_net *to_net(struct virtio_device *vdev)
{
	return vdev->priv;
}

static void net__fail(struct virtio_net *n, const char *why)
{
	n->failed = true;
	if (n->vdev.fail)
		n->vdev.fail(&n->vdev, why);
}

/* Copies len bytes from src (starting at *soff of the whole src stream)
 * into dst; returns the bytes copied. */
static size_t iov__copy(const struct iovec *dst, int dcnt, const struct iovec *src, int scnt,
			size_t soff, size_t len)
{
	size_t done = 0;
	int si = 0, di = 0;
	size_t doff = 0;

	while (si < scnt && soff >= src[si].iov_len) {
		soff -= src[si].iov_len;
		si++;
	}
	while (done < len && si < scnt && di < dcnt) {
		size_t a = src[si].iov_len - soff, b = dst[di].iov_len - doff;
		size_t c = a < b ? a : b;

		if (c > len - done)
			c = len - done;
		memcpy((uint8_t *)dst[di].iov_base + doff, (uint8_t *)src[si].iov_base + soff, c);
		done += c;
		soff += c;
		doff += c;
		if (soff == src[si].iov_len) {
			si++;
			soff = 0;
		}
		if (doff == dst[di].iov_len) {
			di++;
			doff = 0;
		}
	}
	return done;
}

/* Gives back the n elements popped for a frame that did not fit, newest
 * first: the next pops see the same buffers again. */
static void net__unpop(struct virtio_net *n, struct virtq *q, unsigned int count)
{
	for (unsigned int i = count; i > 0; i--)
		virtq__unpop(q, n->rx_heads[i - 1], n->rx_resub[i - 1]);
}

/* The backend's receive callback: one frame into guest RX buffers. */
static int net__rx(void *opaque, const struct iovec *iov, int iovcnt, size_t len)
{
	struct virtio_net *n = opaque;
	struct virtq *q = &n->vdev.vqs[VIRTIO_NET_RXQ];
	static const uint8_t zero_hdr[NET_VNET_HDR_LEN];
	struct iovec src[RX_SRC_IOV + 1];
	int scnt = 0;
	bool mrg = virtio_device__has(&n->vdev, VIRTIO_NET_F_MRG_RXBUF);
	size_t total, off = 0;
	unsigned int popped = 0;
	char why[128];
	uint16_t nb;

	if (!n->running || n->failed || !q->enabled) {
		STAT_ADD(n, rx_drops, 1);
		return 0;
	}
	if (iovcnt > RX_SRC_IOV || len > NET_VNET_HDR_LEN + NET_FRAME_MAX ||
	    len < (n->be->vnet_hdr ? NET_VNET_HDR_LEN : 0) + NET_FRAME_MIN) {
		STAT_ADD(n, rx_drops, 1);
		return 0;
	}
	if (!n->be->vnet_hdr)
		src[scnt++] =
		    (struct iovec){.iov_base = (void *)zero_hdr, .iov_len = sizeof(zero_hdr)};
	memcpy(&src[scnt], iov, iovcnt * sizeof(*iov));
	scnt += iovcnt;
	total = len + (n->be->vnet_hdr ? 0 : NET_VNET_HDR_LEN);

	while (off < total) {
		struct virtq_elem *e = popped ? &n->rx_elem : &n->rx_first;
		int r = virtq__pop(q, e, why, sizeof(why));
		size_t c;

		if (r == -EAGAIN) {
			/* Ask for a kick, then look again: a buffer posted in between
			 * would otherwise be missed. */
			virtq__set_notify(q, true);
			if (virtq__has_avail(q))
				continue;
			net__unpop(n, q, popped);
			return -EAGAIN;
		}
		if (r < 0) {
			net__unpop(n, q, popped);
			net__fail(n, why);
			STAT_ADD(n, rx_drops, 1);
			return 0;
		}
		n->rx_heads[popped] = e->head;
		n->rx_resub[popped] = e->resubmitted;
		if (e->out_num || (!popped && e->in_len < NET_VNET_HDR_LEN)) {
			net__unpop(n, q, popped + 1);
			net__fail(n, e->out_num ? "rx buffer has device-readable descriptors"
						: "rx buffer smaller than the 12-byte header");
			STAT_ADD(n, rx_drops, 1);
			return 0;
		}
		c = iov__copy(&e->iov[e->out_num], e->in_num, src, scnt, off, total - off);
		n->rx_lens[popped] = c;
		/* The pushes below carry the heads only (rx_elem is reused for
		 * every buffer after the first): mark what was written now. */
		virtq__mark_written(q, e, (uint32_t)c);
		popped++;
		off += c;
		if (!mrg || popped == q->size || popped == VIRTIO_NET_QUEUE_SIZE)
			break;
	}
	if (off < total) {
		/* The frame is bigger than what the guest offers for one frame. */
		net__unpop(n, q, popped);
		STAT_ADD(n, rx_drops, 1);
		pr_warn_once(
		    "%s: dropped a %zu-byte frame: larger than the guest's receive buffers",
		    n->vdev.id, total);
		return 0;
	}
	/* num_buffers, in the first buffer's header (offset 10). */
	nb = htole16(popped);
	{
		struct iovec nbv = {.iov_base = &nb, .iov_len = sizeof(nb)};
		struct iovec *d = &n->rx_first.iov[n->rx_first.out_num];
		size_t skip = offsetof(struct virtio_net_hdr_v1, num_buffers);
		int i = 0;

		while (skip >= d[i].iov_len) {
			skip -= d[i].iov_len;
			i++;
		}
		struct iovec tmp[2];
		int k = 0;
		size_t left = sizeof(nb);

		for (; left && i < (int)n->rx_first.in_num && k < 2; i++, skip = 0) {
			size_t c = d[i].iov_len - skip < left ? d[i].iov_len - skip : left;

			tmp[k++] = (struct iovec){.iov_base = (uint8_t *)d[i].iov_base + skip,
						  .iov_len = c};
			left -= c;
		}
		iov__copy(tmp, k, &nbv, 1, 0, sizeof(nb));
	}
	n->rx_elem.out_num = n->rx_elem.in_num = 0;
	for (unsigned int i = 0; i < popped; i++) {
		n->rx_elem.head = n->rx_heads[i];
		virtq__push(q, &n->rx_elem, n->rx_lens[i]);
	}
	virtio_device__notify(&n->vdev, VIRTIO_NET_RXQ);
	STAT_ADD(n, rx_packets, 1);
	STAT_ADD(n, rx_bytes, total - NET_VNET_HDR_LEN);
	return 0;
}

/* Without CSUM offered the guest should never ask; if it does, finish the
 * checksum here (slirp cannot). */
static bool net__finish_csum(uint8_t *frame, size_t len, const struct virtio_net_hdr_v1 *h)
{
	uint16_t start = le16toh(h->csum_start), offset = le16toh(h->csum_offset);
	uint32_t sum = 0;
	uint16_t c;

	if (start > len || offset > len - start || len - start - offset < 2)
		return false;
	/* The field holds the pseudo-header sum the guest put there: it is
	 * summed with the rest (virtio 1.2, 5.1.6.2). */
	for (size_t i = start; i + 1 < len; i += 2)
		sum += frame[i] << 8 | frame[i + 1];
	if ((len - start) & 1)
		sum += frame[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	c = ~sum;
	frame[start + offset] = c >> 8;
	frame[start + offset + 1] = c & 0xff;
	return true;
}

/* One TX element: validate, strip or keep the header, hand to the backend.
 * Returns false if the frame was dropped. */
static bool net__tx_one(struct virtio_net *n, struct virtq_elem *e)
{
	struct virtio_net_hdr_v1 h = {0};
	struct iovec hv = {.iov_base = &h, .iov_len = sizeof(h)};
	size_t flen;
	int r;

	if (e->out_len < NET_VNET_HDR_LEN + NET_FRAME_MIN ||
	    e->out_len - NET_VNET_HDR_LEN > NET_FRAME_MAX) {
		pr_warn_once("%s: dropped a tx frame of %u bytes (with header)", n->vdev.id,
			     e->out_len);
		STAT_ADD(n, tx_drops, 1);
		return false;
	}
	flen = e->out_len - NET_VNET_HDR_LEN;
	iov__copy(&hv, 1, e->iov, e->out_num, 0, sizeof(h));

	if (n->be->vnet_hdr) {
		/* tap checks the header itself; it gets the chain as is. */
		r = n->be->ops->send(n->be, e->iov, e->out_num);
	} else if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
		pr_warn_once("%s: dropped a GSO frame: no TSO was offered", n->vdev.id);
		STAT_ADD(n, tx_drops, 1);
		return false;
	} else if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		struct iovec fv = {.iov_base = n->tx_buf, .iov_len = flen};

		iov__copy(&fv, 1, e->iov, e->out_num, NET_VNET_HDR_LEN, flen);
		if (!net__finish_csum(n->tx_buf, flen, &h)) {
			STAT_ADD(n, tx_drops, 1);
			return false;
		}
		r = n->be->ops->send(n->be, &fv, 1);
	} else {
		/* Strip the header without copying the frame. */
		size_t skip = NET_VNET_HDR_LEN;
		int k = 0;

		for (unsigned int i = 0; i < e->out_num; i++) {
			if (skip >= e->iov[i].iov_len) {
				skip -= e->iov[i].iov_len;
				continue;
			}
			n->tx_iov[k++] =
			    (struct iovec){.iov_base = (uint8_t *)e->iov[i].iov_base + skip,
					   .iov_len = e->iov[i].iov_len - skip};
			skip = 0;
		}
		r = n->be->ops->send(n->be, n->tx_iov, k);
	}
	if (r < 0) {
		STAT_ADD(n, tx_errors, 1);
		return false;
	}
	STAT_ADD(n, tx_packets, 1);
	STAT_ADD(n, tx_bytes, flen);
	return true;
}

static void net__tx(struct virtio_net *n)
{
	struct virtq *q = &n->vdev.vqs[VIRTIO_NET_TXQ];
	char why[128];
	int budget = TX_BUDGET;

	n->tx_more = false;
	if (n->failed || !q->enabled)
		return;
	for (;;) {
		unsigned int nr = 0;
		int r = 0;

		virtq__set_notify(q, false);
		while (nr < TX_BUDGET && budget > 0) {
			r = virtq__pop(q, &n->tx_elem, why, sizeof(why));
			if (r)
				break;
			net__tx_one(n, &n->tx_elem);
			n->tx_heads[nr++] = n->tx_elem.head;
			budget--;
		}
		/* The backend may still read the buffers until flush returns. */
		n->be->ops->flush(n->be);
		for (unsigned int i = 0; i < nr; i++) {
			n->tx_elem.head = n->tx_heads[i];
			virtq__push(q, &n->tx_elem, 0);
		}
		if (nr)
			virtio_device__notify(&n->vdev, VIRTIO_NET_TXQ);
		if (r == -EINVAL) {
			net__fail(n, why);
			return;
		}
		if (budget == 0) {
			n->tx_more = true; /* come back after a look at RX */
			return;
		}
		virtq__set_notify(q, true);
		if (!virtq__has_avail(q))
			return;
	}
}

static void eventfd__drain(int fd)
{
	uint64_t v;

	if (fd >= 0 && read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_debug("eventfd read: %s", strerror(errno));
}

static void *net__thread(void *arg)
{
	struct virtio_net *n = arg;
	struct virtio_device *vdev = &n->vdev;

	/* Buffers may have been posted before DRIVER_OK. */
	n->be->ops->rx_ready(n->be);
	net__tx(n);
	for (;;) {
		int timeout = n->tx_more ? 0 : -1, nb, r;

		n->fds[0] = (struct pollfd){.fd = n->stop_fd, .events = POLLIN};
		n->fds[1] = (struct pollfd){.fd = vdev->kick_fd[VIRTIO_NET_RXQ], .events = POLLIN};
		n->fds[2] = (struct pollfd){.fd = vdev->kick_fd[VIRTIO_NET_TXQ], .events = POLLIN};
		nb = n->be->ops->poll_fill(n->be, n->fds + 3, NET_POLL_FDS - 3, &timeout);
		r = poll(n->fds, 3 + nb, timeout);
		if (r < 0 && errno != EINTR) {
			pr_err("%s: poll: %s", vdev->id, strerror(errno));
			break;
		}
		if (r > 0 && n->fds[0].revents)
			break;
		if (r > 0 && n->fds[1].revents & POLLIN) {
			eventfd__drain(n->fds[1].fd);
			if (!n->failed)
				n->be->ops->rx_ready(n->be);
		}
		if ((r > 0 && n->fds[2].revents & POLLIN) || n->tx_more) {
			if (n->fds[2].revents & POLLIN)
				eventfd__drain(n->fds[2].fd);
			net__tx(n);
		}
		n->be->ops->poll_done(n->be, n->fds + 3, nb, r < 0);
	}
	return NULL;
}

static uint64_t net__features(struct virtio_device *vdev)
{
	struct virtio_net *n = to_net(vdev);
	uint64_t f =
	    1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_STATUS | 1ULL << VIRTIO_NET_F_MRG_RXBUF;

	if (n->be->offloads)
		f |= 1ULL << VIRTIO_NET_F_CSUM | 1ULL << VIRTIO_NET_F_GUEST_CSUM |
		     1ULL << VIRTIO_NET_F_HOST_TSO4 | 1ULL << VIRTIO_NET_F_HOST_TSO6 |
		     1ULL << VIRTIO_NET_F_GUEST_TSO4 | 1ULL << VIRTIO_NET_F_GUEST_TSO6;
	return f;
}

static uint16_t net__queue_max_size(struct virtio_device *vdev, unsigned int q)
{
	return q < 2 ? VIRTIO_NET_QUEUE_SIZE : 0;
}

static void net__config_read(struct virtio_device *vdev, uint32_t offset, void *data, uint32_t len)
{
	struct virtio_net *n = to_net(vdev);

	if (offset > sizeof(n->cfg) || len > sizeof(n->cfg) - offset) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, (uint8_t *)&n->cfg + offset, len);
}

static void net__config_write(struct virtio_device *vdev, uint32_t offset, const void *data,
			      uint32_t len)
{
	/* Read-only in virtio 1.x (the MAC is writable only through CTRL_VQ). */
}

static int net__thread_start(struct virtio_net *n);

static int net__start(struct virtio_device *vdev)
{
	struct virtio_net *n = to_net(vdev);
	unsigned int off = 0;
	int r;

	if (n->running)
		return 0;
	if (n->be->offloads) {
		if (virtio_device__has(vdev, VIRTIO_NET_F_GUEST_CSUM))
			off |= NET_OFFLOAD_CSUM;
		if (virtio_device__has(vdev, VIRTIO_NET_F_GUEST_TSO4))
			off |= NET_OFFLOAD_TSO4;
		if (virtio_device__has(vdev, VIRTIO_NET_F_GUEST_TSO6))
			off |= NET_OFFLOAD_TSO6;
	}
	r = n->be->ops->set_offload(n->be, off);
	if (r < 0) {
		pr_err("%s: %s: cannot set offloads: %s", vdev->id, n->be->ops->kind, strerror(-r));
		return r;
	}
	n->failed = false;
	return net__thread_start(n);
}

static int net__thread_start(struct virtio_net *n)
{
	int r;

	n->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (n->stop_fd < 0)
		return -errno;
	if (n->be->ops->start) {
		r = n->be->ops->start(n->be);
		if (r < 0)
			goto out_close;
	}
	n->tx_more = false;
	n->running = true;
	r = pthread_create(&n->thread, NULL, net__thread, n);
	if (r) {
		n->running = false;
		if (n->be->ops->stop)
			n->be->ops->stop(n->be);
		r = -r;
		goto out_close;
	}
	return 0;
out_close:
	close(n->stop_fd);
	n->stop_fd = -1;
	return r;
}

static void net__stop(struct virtio_device *vdev)
{
	struct virtio_net *n = to_net(vdev);
	uint64_t one = 1;

	if (!n->running)
		return;
	if (write(n->stop_fd, &one, sizeof(one)) < 0)
		pr_err("%s: cannot stop the device thread: %s", vdev->id, strerror(errno));
	pthread_join(n->thread, NULL);
	n->running = false;
	/* Only now: the backend is the device thread's while it runs. */
	if (n->be->ops->stop)
		n->be->ops->stop(n->be);
	close(n->stop_fd);
	n->stop_fd = -1;
}

static void net__destroy(struct virtio_device *vdev)
{
	struct virtio_net *n = to_net(vdev);

	net__stop(vdev);
	net_backend__free(n->be);
	free(n);
}

/* The model's own state is the backend's (slirp's connections); the rest
 * (MAC, link) is configuration. */
/* The backend is entered from the device thread only, so the thread is
 * parked around save and restore. */
static int net__save(struct virtio_device *vdev, uint8_t **buf, size_t *len)
{
	struct virtio_net *n = to_net(vdev);
	bool was_running = n->running;
	int r;

	*buf = NULL;
	*len = 0;
	if (!n->be->ops->save)
		return 0;
	net__stop(vdev);
	r = n->be->ops->save(n->be, buf, len);
	if (was_running && net__thread_start(n) < 0)
		pr_err("%s: cannot restart the device thread after save", vdev->id);
	return r;
}

static int net__restore(struct virtio_device *vdev, const uint8_t *buf, size_t len)
{
	struct virtio_net *n = to_net(vdev);
	bool was_running = n->running;
	int r;

	if (!len)
		return 0;
	if (!n->be->ops->load)
		return -EINVAL;
	net__stop(vdev);
	r = n->be->ops->load(n->be, buf, len);
	if (was_running && net__thread_start(n) < 0)
		pr_err("%s: cannot restart the device thread after restore", vdev->id);
	return r;
}

static const struct virtio_device_ops virtio_net_ops = {
    .type = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .features = net__features,
    .queue_max_size = net__queue_max_size,
    .config_size = sizeof(struct virtio_net_config),
    .config_read = net__config_read,
    .config_write = net__config_write,
    .start = net__start,
    .stop = net__stop,
    .destroy = net__destroy,
    .save = net__save,
    .restore = net__restore,
};

struct virtio_device *virtio_net__new(const char *id, const uint8_t mac[6], struct net_backend *be)
{
	struct virtio_net *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->be = be;
	n->stop_fd = -1;
	memcpy(n->cfg.mac, mac, 6);
	n->cfg.status = htole16(VIRTIO_NET_S_LINK_UP);
	n->cfg.max_virtqueue_pairs = htole16(1);
	n->cfg.mtu = htole16(1500);
	n->vdev.ops = &virtio_net_ops;
	n->vdev.priv = n;
	n->vdev.nr_queues = 2;
	n->vdev.config_call_fd = -1;
	for (int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		n->vdev.kick_fd[i] = n->vdev.call_fd[i] = -1;
	snprintf(n->vdev.id, sizeof(n->vdev.id), "%s", id);
	net_backend__set_rx(be, net__rx, n);
	return &n->vdev;
}

void virtio_net__stats(struct virtio_device *vdev, struct virtio_net_stats *out)
{
	struct virtio_net *n = to_net(vdev);

	out->rx_packets = __atomic_load_n(&n->stats.rx_packets, __ATOMIC_RELAXED);
	out->rx_bytes = __atomic_load_n(&n->stats.rx_bytes, __ATOMIC_RELAXED);
	out->rx_drops =
	    __atomic_load_n(&n->stats.rx_drops, __ATOMIC_RELAXED) + n->be->stats.rx_dropped;
	out->tx_packets = __atomic_load_n(&n->stats.tx_packets, __ATOMIC_RELAXED);
	out->tx_bytes = __atomic_load_n(&n->stats.tx_bytes, __ATOMIC_RELAXED);
	out->tx_drops = __atomic_load_n(&n->stats.tx_drops, __ATOMIC_RELAXED);
	out->tx_errors =
	    __atomic_load_n(&n->stats.tx_errors, __ATOMIC_RELAXED) + n->be->stats.tx_errors;
}

struct net_backend *virtio_net__backend(struct virtio_device *vdev)
{
	return to_net(vdev)->be;
}

/* A servicing's new model carries the old one's counters on (the device
 * is the same to the guest).  Before the rings start, on a new backend,
 * whose own counters are still zero. */
void virtio_net__set_stats(struct virtio_device *vdev, const struct virtio_net_stats *in)
{
	to_net(vdev)->stats = *in;
}
