/* net/socket.c — a NIC's frames over a connected SOCK_SEQPACKET socket, one
 * Ethernet frame per message.  The paravisor's NIC uses it to reach its
 * netstack process (the slirp stack, apart from the serviced paravisor):
 * the socket is a backend fd like a tap fd, handed to each new paravisor
 * and never reopened, so the stack and its connections outlive a servicing.
 * While nobody reads (the old paravisor stopped, the new one not started),
 * frames wait in the socket; none is lost or reordered by the handover.
 *
 * Frames carry no virtio-net header.  A frame the socket has no room for is
 * dropped (counted), as on a congested link: TCP sends it again. */
#include "net/socket.h"

#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Frames read per poll round, so a busy peer cannot starve the rings. */
#define SOCKET_RX_BURST 64

struct net_socket {
	struct net_backend be;
	int fd;
	bool gone; /* the peer hung up: nothing more to read or send */
	bool held; /* buf holds a frame the guest had no buffers for */
	size_t held_len;
	uint8_t buf[NET_FRAME_MAX];
};

static void socket__gone(struct net_socket *s, const char *why)
{
	if (s->gone)
		return;
	s->gone = true;
	pr_err("%s: the link to the network stack is gone (%s); the NIC is cut off", s->be.name,
	       why);
}

static int socket__send(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	struct net_socket *s = (struct net_socket *)be;
	struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};

	if (s->gone)
		return 0;
	if (sendmsg(s->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
		return 0;
	if (errno == EPIPE || errno == ECONNRESET)
		socket__gone(s, strerror(errno));
	else
		be->stats.tx_errors++;
	return 0;
}

static int socket__flush(struct net_backend *be)
{
	return 0;
}

static int socket__poll_fill(struct net_backend *be, struct pollfd *fds, int max, int *timeout_ms)
{
	struct net_socket *s = (struct net_socket *)be;

	/* A held frame waits for rx_ready; reading more would only drop. */
	if (max < 1 || s->gone || s->held)
		return 0;
	fds[0] = (struct pollfd){.fd = s->fd, .events = POLLIN};
	return 1;
}

/* Offers the held frame: true when the guest took it. */
static bool socket__deliver(struct net_socket *s)
{
	struct iovec iov = {.iov_base = s->buf, .iov_len = s->held_len};

	if (s->be.rx(s->be.rx_opaque, &iov, 1, s->held_len) == -EAGAIN)
		return false;
	s->held = false;
	return true;
}

static void socket__read(struct net_socket *s)
{
	for (int i = 0; i < SOCKET_RX_BURST && !s->held; i++) {
		ssize_t n = recv(s->fd, s->buf, sizeof(s->buf), MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				socket__gone(s, strerror(errno));
			return;
		}
		if (n == 0) {
			socket__gone(s, "the other end closed it");
			return;
		}
		if ((size_t)n > sizeof(s->buf) || n < NET_FRAME_MIN) {
			s->be.stats.rx_dropped++;
			continue;
		}
		s->held = true;
		s->held_len = (size_t)n;
		socket__deliver(s);
	}
}

static void socket__poll_done(struct net_backend *be, struct pollfd *fds, int n, bool poll_error)
{
	struct net_socket *s = (struct net_socket *)be;

	if (n < 1 || poll_error)
		return;
	if (fds[0].revents & POLLIN)
		socket__read(s);
	else if (fds[0].revents & (POLLHUP | POLLERR))
		socket__gone(s, "it hung up");
}

static void socket__rx_ready(struct net_backend *be)
{
	struct net_socket *s = (struct net_socket *)be;

	if (s->held && socket__deliver(s))
		socket__read(s);
}

static int socket__set_offload(struct net_backend *be, unsigned int offloads)
{
	return offloads ? -EOPNOTSUPP : 0;
}

static void socket__free(struct net_backend *be)
{
	struct net_socket *s = (struct net_socket *)be;

	close(s->fd);
	free(s);
}

static const struct net_backend_ops socket_ops = {
    .kind = "socket",
    .send = socket__send,
    .flush = socket__flush,
    .poll_fill = socket__poll_fill,
    .poll_done = socket__poll_done,
    .rx_ready = socket__rx_ready,
    .set_offload = socket__set_offload,
    .free = socket__free,
};

struct net_backend *net_socket__new(const char *name, int fd, char *err, size_t errlen)
{
	struct net_socket *s;
	int type = 0;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) || type != SOCK_SEQPACKET) {
		snprintf(err, errlen, "descriptor %d is not a SOCK_SEQPACKET socket", fd);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->be.ops = &socket_ops;
	s->fd = fd;
	snprintf(s->be.name, sizeof(s->be.name), "%s", name);
	return &s->be;
}
