/* paravisor/netstack.c — `paravisor --netstack`: a NIC's slirp stack in a
 * process of its own, speaking Ethernet frames over one SOCK_SEQPACKET
 * socket (one frame per message) to the paravisor that runs the NIC's
 * virtio-net model.
 *
 * Why apart: libslirp cannot hand its connections to another process (its
 * saved state holds no host socket, and it cannot adopt one), so a stack
 * inside the serviced paravisor would lose every NAT connection at each
 * servicing.  Here the stack, its host sockets and its timers stay put
 * while paravisors come and go: vmm keeps the other end of the socket and
 * hands it to each new one, like a tap fd.  The process is sandboxed like a
 * NIC paravisor (host network, no files, seccomp) and exits once every
 * holder of the other end has closed it. */
#include "paravisor/netstack.h"

#include "common/log.h"
#include "net/slirp.h"
#include "net/socket.h"
#include "paravisor/vu_net.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define NETSTACK_TX_BURST 64

struct netstack {
	struct net_backend *be;
	int fd;
	bool want_out; /* a frame waits for room in the socket */
	char id[32];
	uint8_t buf[NET_FRAME_MAX];
};

/* slirp has a frame for the guest. */
static int netstack__to_nic(void *opaque, const struct iovec *iov, int iovcnt, size_t len)
{
	struct netstack *ns = opaque;
	struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};

	if (sendmsg(ns->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
		return 0;
	if (errno == EAGAIN || errno == ENOBUFS) {
		/* slirp keeps it and offers it again after rx_ready. */
		ns->want_out = true;
		return -EAGAIN;
	}
	return 0; /* the NIC side is gone: the main loop notices */
}

/* Frames from the guest: 1 while the socket is open, 0 once every NIC end
 * is closed, negative errno on an error. */
static int netstack__from_nic(struct netstack *ns)
{
	for (int i = 0; i < NETSTACK_TX_BURST; i++) {
		struct iovec iov = {.iov_base = ns->buf};
		ssize_t n = recv(ns->fd, ns->buf, sizeof(ns->buf), MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 1 : -errno;
		if (n == 0)
			return 0;
		if ((size_t)n > sizeof(ns->buf) || n < NET_FRAME_MIN)
			continue;
		iov.iov_len = (size_t)n;
		ns->be->ops->send(ns->be, &iov, 1);
	}
	ns->be->ops->flush(ns->be);
	return 1;
}

struct netstack *netstack__open(int fd, const char *opt)
{
	static struct netstack ns;
	struct vu_net_opts o;
	char why[160];

	if (vu_net__parse(opt, &o))
		return NULL;
	if (o.socket) {
		pr_err("--netstack: --net %s: the netstack runs slirp (slirp,...)", opt);
		return NULL;
	}
	ns.fd = fd;
	snprintf(ns.id, sizeof(ns.id), "%s", o.id);
	ns.be = net_slirp__new(o.id, o.fwd, o.nr_fwd, why, sizeof(why));
	if (!ns.be) {
		pr_err("NIC \"%s\": slirp: %s", o.id, why);
		return NULL;
	}
	net_backend__set_rx(ns.be, netstack__to_nic, &ns);
	pr_info("NIC \"%s\": netstack: slirp with %d hostfwd rule(s), frames on descriptor %d",
		o.id, o.nr_fwd, fd);
	return &ns;
}

int netstack__ready(struct netstack *ns)
{
	if (send(ns->fd, NET_SOCKET_READY, strlen(NET_SOCKET_READY), MSG_NOSIGNAL) >= 0)
		return 0;
	pr_err("NIC \"%s\": netstack: cannot say it is ready: %s", ns->id, strerror(errno));
	return -errno;
}

int netstack__run(struct netstack *ns)
{
	struct pollfd fds[NET_POLL_MAX + 1];
	int ret;

	for (;;) {
		int timeout = -1, nb, r;

		fds[0] =
		    (struct pollfd){.fd = ns->fd, .events = POLLIN | (ns->want_out ? POLLOUT : 0)};
		nb = ns->be->ops->poll_fill(ns->be, fds + 1, NET_POLL_MAX, &timeout);
		r = poll(fds, (nfds_t)(1 + nb), timeout);
		if (r < 0 && errno != EINTR) {
			ret = -errno;
			pr_err("NIC \"%s\": netstack: poll: %s", ns->id, strerror(errno));
			break;
		}
		if (r > 0 && fds[0].revents & POLLOUT) {
			ns->want_out = false;
			ns->be->ops->rx_ready(ns->be);
		}
		if (r > 0 && fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ret = netstack__from_nic(ns);
			if (ret <= 0) {
				if (ret)
					pr_err("NIC \"%s\": netstack: %s", ns->id, strerror(-ret));
				break;
			}
		}
		ns->be->ops->poll_done(ns->be, fds + 1, nb, r < 0);
	}
	pr_info("NIC \"%s\": netstack: %s", ns->id,
		ret ? "stopping on an error" : "every NIC end closed; exiting");
	return ret;
}

void netstack__close(struct netstack *ns)
{
	if (ns)
		net_backend__free(ns->be);
}
