/* net/tap.c — tap backend.  Frames carry the 12-byte virtio-net header both
 * ways, so guest checksum/TSO offloads pass through untouched.  io_uring
 * does the I/O: a batch of TX writev's is submitted at once on flush, and
 * a few readv's stay posted into bounce buffers for RX while the model's
 * rings run; the ring signals completions through an eventfd the device
 * thread polls.
 *
 * Opening the tap (which needs CAP_NET_ADMIN) and building the backend are
 * apart, so that vmm opens it and a sandboxed paravisor builds the backend
 * on the fd it is handed.  Several processes may then hold the same tap:
 * during a servicing the old paravisor lives on, rings stopped, until every
 * device moved.  Reads left posted there would take frames the new one
 * should get, so a stopped backend cancels them and posts none until its
 * rings start again. */
#include "net/tap.h"

#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define TAP_RING_DEPTH 128
#define TAP_TX_BATCH   64
#define TAP_TX_IOV     64
#define TAP_RX_BUFS    16
#define TAP_RX_BUF_LEN (NET_VNET_HDR_LEN + NET_FRAME_MAX + 64)

#define TAG_TX	       1ULL
#define TAG_RX	       2ULL
#define TAG_CANCEL     3ULL
#define TAG(kind, idx) ((kind) << 32 | (idx))

enum rx_state { RX_FREE, RX_POSTED, RX_READY };

struct tap_rx {
	enum rx_state state;
	size_t len;
	struct iovec iov;
	uint8_t *buf;
};

struct net_tap {
	struct net_backend be;
	int fd;
	int ring_efd;
	struct io_uring ring;
	bool ring_ok;
	struct iovec tx_iov[TAP_TX_BATCH][TAP_TX_IOV];
	unsigned int tx_queued, tx_inflight;
	struct tap_rx rx[TAP_RX_BUFS];
	unsigned int ready[TAP_RX_BUFS]; /* completed buffers in arrival order */
	unsigned int ready_head, ready_count;
	bool stopped; /* no reads posted: the model's rings do not run */
	char ifname[IFNAMSIZ];
};

static void tap__post_reads(struct net_tap *t)
{
	if (t->stopped)
		return;
	for (int i = 0; i < TAP_RX_BUFS; i++) {
		struct io_uring_sqe *sqe;

		if (t->rx[i].state != RX_FREE)
			continue;
		sqe = io_uring_get_sqe(&t->ring);
		if (!sqe)
			break;
		t->rx[i].iov = (struct iovec){.iov_base = t->rx[i].buf, .iov_len = TAP_RX_BUF_LEN};
		io_uring_prep_readv(sqe, t->fd, &t->rx[i].iov, 1, 0);
		io_uring_sqe_set_data64(sqe, TAG(TAG_RX, i));
		t->rx[i].state = RX_POSTED;
	}
}

static void tap__complete(struct net_tap *t, struct io_uring_cqe *cqe)
{
	uint64_t tag = io_uring_cqe_get_data64(cqe);
	unsigned int idx = tag & 0xffffffff;

	if (tag >> 32 == TAG_CANCEL)
		return; /* the cancelled read completes on its own */
	if (tag >> 32 == TAG_TX) {
		t->tx_inflight--;
		if (cqe->res < 0) {
			t->be.stats.tx_errors++;
			pr_warn_once("%s: tap %s: write: %s", t->be.name, t->ifname,
				     strerror(-cqe->res));
		}
		return;
	}
	if (idx >= TAP_RX_BUFS)
		return;
	if (cqe->res == -EAGAIN || cqe->res == -EINTR || cqe->res == -ECANCELED ||
	    (cqe->res >= 0 && cqe->res < NET_VNET_HDR_LEN + NET_FRAME_MIN)) {
		t->rx[idx].state = RX_FREE;
		return;
	}
	if (cqe->res < 0) {
		pr_warn_once("%s: tap %s: read: %s", t->be.name, t->ifname, strerror(-cqe->res));
		t->rx[idx].state = RX_FREE;
		return;
	}
	t->rx[idx].state = RX_READY;
	t->rx[idx].len = cqe->res;
	t->ready[(t->ready_head + t->ready_count) % TAP_RX_BUFS] = idx;
	t->ready_count++;
}

static void tap__reap(struct net_tap *t)
{
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&t->ring, &cqe) == 0) {
		tap__complete(t, cqe);
		io_uring_cqe_seen(&t->ring, cqe);
	}
}

/* Hands completed frames to the device in arrival order until it is full. */
static void tap__deliver(struct net_tap *t)
{
	while (t->ready_count) {
		unsigned int idx = t->ready[t->ready_head];
		struct iovec iov = {.iov_base = t->rx[idx].buf, .iov_len = t->rx[idx].len};

		if (t->be.rx && t->be.rx(t->be.rx_opaque, &iov, 1, iov.iov_len) == -EAGAIN)
			break;
		t->rx[idx].state = RX_FREE;
		t->ready_head = (t->ready_head + 1) % TAP_RX_BUFS;
		t->ready_count--;
	}
	tap__post_reads(t);
	io_uring_submit(&t->ring);
}

static int tap__send(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	struct net_tap *t = (struct net_tap *)be;
	struct io_uring_sqe *sqe;
	int r;

	/* Long chains and a full batch go out synchronously (the fd is non-blocking:
	 * a full tap queue drops, as a real NIC would). */
	if (iovcnt > TAP_TX_IOV || t->tx_queued == TAP_TX_BATCH ||
	    !(sqe = io_uring_get_sqe(&t->ring))) {
		r = writev(t->fd, iov, iovcnt);
		if (r < 0) {
			be->stats.tx_errors++;
			return -errno;
		}
		return 0;
	}
	memcpy(t->tx_iov[t->tx_queued], iov, iovcnt * sizeof(*iov));
	io_uring_prep_writev(sqe, t->fd, t->tx_iov[t->tx_queued], iovcnt, 0);
	io_uring_sqe_set_data64(sqe, TAG(TAG_TX, t->tx_queued));
	t->tx_queued++;
	t->tx_inflight++;
	return 0;
}

/* Submits the batch and waits for its writes: only then may the model give
 * the guest its buffers back. */
static int tap__flush(struct net_backend *be)
{
	struct net_tap *t = (struct net_tap *)be;
	struct io_uring_cqe *cqe;
	int r = 0;

	if (!t->tx_queued)
		return 0;
	io_uring_submit(&t->ring);
	while (t->tx_inflight) {
		r = io_uring_wait_cqe(&t->ring, &cqe);
		if (r == -EINTR)
			continue;
		if (r < 0)
			break;
		tap__complete(t, cqe);
		io_uring_cqe_seen(&t->ring, cqe);
	}
	t->tx_queued = 0;
	return r;
}

static int tap__poll_fill(struct net_backend *be, struct pollfd *fds, int max, int *timeout_ms)
{
	struct net_tap *t = (struct net_tap *)be;

	if (max < 1)
		return 0;
	fds[0] = (struct pollfd){.fd = t->ring_efd, .events = POLLIN};
	/* Frames held back for lack of guest buffers wait for rx_ready. */
	return 1;
}

static void tap__poll_done(struct net_backend *be, struct pollfd *fds, int n, bool poll_error)
{
	struct net_tap *t = (struct net_tap *)be;
	uint64_t v;

	if (n < 1 || !(fds[0].revents & POLLIN))
		return;
	if (read(t->ring_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_debug("%s: tap eventfd: %s", be->name, strerror(errno));
	tap__reap(t);
	tap__deliver(t);
}

static void tap__rx_ready(struct net_backend *be)
{
	struct net_tap *t = (struct net_tap *)be;

	tap__reap(t);
	tap__deliver(t);
}

static int tap__set_offload(struct net_backend *be, unsigned int offloads)
{
	struct net_tap *t = (struct net_tap *)be;
	unsigned int f = 0;

	if (offloads & NET_OFFLOAD_CSUM) {
		f |= TUN_F_CSUM;
		if (offloads & NET_OFFLOAD_TSO4)
			f |= TUN_F_TSO4;
		if (offloads & NET_OFFLOAD_TSO6)
			f |= TUN_F_TSO6;
	}
	if (ioctl(t->fd, TUNSETOFFLOAD, f) < 0)
		return -errno;
	return 0;
}

static bool tap__reads_posted(const struct net_tap *t)
{
	for (int i = 0; i < TAP_RX_BUFS; i++)
		if (t->rx[i].state == RX_POSTED)
			return true;
	return false;
}

/* The rings run: pull frames again.  The reads are posted by the device
 * thread's first rx_ready (tap__deliver), not here on the caller's: io_uring
 * runs a request's completion work in the thread that submitted it,
 * interrupting whatever that thread waits in, and only the device thread
 * waits on this ring (in the paravisor, a timed wait of the vhost-user
 * thread would come back as restart_syscall, which the sandbox kills). */
static int tap__start(struct net_backend *be)
{
	struct net_tap *t = (struct net_tap *)be;

	t->stopped = false;
	return 0;
}

/* The rings stopped (GET_VRING_BASE, a reset, a servicing): cancel the
 * posted reads and wait until each has completed, so this process takes no
 * frame from the tap until it starts again; another process holding the
 * tap (the next paravisor) gets them.  A read that won the race keeps its
 * frame, ready for this process's next start (a servicing rolled back). */
static void tap__stop(struct net_backend *be)
{
	struct net_tap *t = (struct net_tap *)be;
	struct __kernel_timespec ts = {.tv_sec = 1};
	struct io_uring_cqe *cqe;
	int r;

	t->stopped = true;
	for (int i = 0; i < TAP_RX_BUFS; i++) {
		struct io_uring_sqe *sqe;

		if (t->rx[i].state != RX_POSTED)
			continue;
		sqe = io_uring_get_sqe(&t->ring);
		if (!sqe) {
			io_uring_submit(&t->ring);
			sqe = io_uring_get_sqe(&t->ring);
		}
		if (!sqe)
			break;
		io_uring_prep_cancel64(sqe, TAG(TAG_RX, i), 0);
		io_uring_sqe_set_data64(sqe, TAG(TAG_CANCEL, i));
	}
	io_uring_submit(&t->ring);
	while (tap__reads_posted(t)) {
		r = io_uring_wait_cqe_timeout(&t->ring, &cqe, &ts);
		if (r == -EINTR)
			continue;
		if (r < 0) {
			pr_warn("%s: tap %s: reads still posted after stop: %s", be->name,
				t->ifname, strerror(-r));
			break;
		}
		tap__complete(t, cqe);
		io_uring_cqe_seen(&t->ring, cqe);
	}
	tap__reap(t); /* the cancellations' own completions */
}

static void tap__free(struct net_backend *be)
{
	struct net_tap *t = (struct net_tap *)be;

	/* Reads still posted hold the tap open until the ring's exit work
	 * cancels them, later, in a kernel worker: whoever opens the tap by
	 * name next (a restarted VM, the next test) would get EBUSY.  So they
	 * are cancelled and waited for here, as a stop does. */
	if (t->ring_ok && tap__reads_posted(t))
		tap__stop(be);
	if (t->ring_ok)
		io_uring_queue_exit(&t->ring);
	if (t->fd >= 0)
		close(t->fd);
	if (t->ring_efd >= 0)
		close(t->ring_efd);
	for (int i = 0; i < TAP_RX_BUFS; i++)
		free(t->rx[i].buf);
	free(t);
}

static const struct net_backend_ops tap_ops = {
    .kind = "tap",
    .send = tap__send,
    .flush = tap__flush,
    .poll_fill = tap__poll_fill,
    .poll_done = tap__poll_done,
    .rx_ready = tap__rx_ready,
    .set_offload = tap__set_offload,
    .start = tap__start,
    .stop = tap__stop,
    .free = tap__free,
};

int net_tap__open(const char *ifname, char *err, size_t errlen)
{
	struct ifreq ifr = {0};
	int fd, hdrsz = NET_VNET_HDR_LEN, r;

	if (!*ifname || strlen(ifname) >= IFNAMSIZ) {
		snprintf(err, errlen, "interface name '%s' is empty or longer than %d characters",
			 ifname, IFNAMSIZ - 1);
		return -EINVAL;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open /dev/net/tun: %s", strerror(errno));
		return r;
	}
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		r = -errno;
		snprintf(err, errlen, "TUNSETIFF %s: %s", ifname, strerror(errno));
		goto out_close;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdrsz) < 0) {
		r = -errno;
		snprintf(err, errlen, "TUNSETVNETHDRSZ: %s", strerror(errno));
		goto out_close;
	}
	/* No receive offloads until the guest's driver accepts them. */
	if (ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
		r = -errno;
		snprintf(err, errlen, "TUNSETOFFLOAD: %s", strerror(errno));
		goto out_close;
	}
	return fd;
out_close:
	close(fd);
	return r;
}

/* Is fd a tap as net_tap__open leaves it?  Learns its name into t. */
static int tap__check_fd(struct net_tap *t, int fd, char *err, size_t errlen)
{
	struct ifreq ifr = {0};
	int hdrsz = 0, fl;

	if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
		snprintf(err, errlen,
			 "descriptor %d is not a tap device attached to an interface "
			 "(TUNGETIFF: %s)",
			 fd, strerror(errno));
		return -EINVAL;
	}
	memcpy(t->ifname, ifr.ifr_name, IFNAMSIZ - 1);
	if ((ifr.ifr_flags & (IFF_TUN | IFF_TAP)) != IFF_TAP) {
		snprintf(err, errlen, "descriptor %d is tun device %s, not a tap (IFF_TAP)", fd,
			 t->ifname);
		return -EINVAL;
	}
	if (!(ifr.ifr_flags & IFF_VNET_HDR) || !(ifr.ifr_flags & IFF_NO_PI) ||
	    ioctl(fd, TUNGETVNETHDRSZ, &hdrsz) < 0 || hdrsz != NET_VNET_HDR_LEN) {
		snprintf(err, errlen,
			 "tap %s (descriptor %d) was not opened with the %d-byte "
			 "virtio-net header (IFF_VNET_HDR, IFF_NO_PI)",
			 t->ifname, fd, NET_VNET_HDR_LEN);
		return -EINVAL;
	}
	/* Writes must never block the device thread: a full tap drops. */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)) {
		snprintf(err, errlen, "tap %s: cannot make descriptor %d non-blocking: %s",
			 t->ifname, fd, strerror(errno));
		return -EINVAL;
	}
	return 0;
}

struct net_backend *net_tap__new_fd(const char *name, int fd, char *err, size_t errlen)
{
	struct net_tap *t = calloc(1, sizeof(*t));
	int r;

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->be.ops = &tap_ops;
	t->be.vnet_hdr = true;
	t->be.offloads = true;
	t->stopped = true;
	t->fd = -1; /* the caller's until we succeed */
	t->ring_efd = -1;
	snprintf(t->be.name, sizeof(t->be.name), "%s", name);
	if (tap__check_fd(t, fd, err, errlen))
		goto fail;
	t->ring_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->ring_efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	r = io_uring_queue_init(TAP_RING_DEPTH, &t->ring, 0);
	if (r < 0) {
		snprintf(err, errlen, "io_uring_queue_init: %s", strerror(-r));
		goto fail;
	}
	t->ring_ok = true;
	r = io_uring_register_eventfd(&t->ring, t->ring_efd);
	if (r < 0) {
		snprintf(err, errlen, "io_uring_register_eventfd: %s", strerror(-r));
		goto fail;
	}
	for (int i = 0; i < TAP_RX_BUFS; i++) {
		t->rx[i].buf = malloc(TAP_RX_BUF_LEN);
		if (!t->rx[i].buf) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	t->fd = fd;
	return &t->be;
fail:
	tap__free(&t->be);
	return NULL;
}

struct net_backend *net_tap__new(const char *name, const char *ifname, char *err, size_t errlen)
{
	struct net_backend *be;
	int fd = net_tap__open(ifname, err, errlen);

	if (fd < 0)
		return NULL;
	be = net_tap__new_fd(name, fd, err, errlen);
	if (!be)
		close(fd);
	return be;
}
