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
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define NETSTACK_TX_BURST 64

struct netstack {
	struct net_backend *be;
	int fd;
	int ctl_fd;    /* -1: none, or vmm closed it */
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

/* One control request (net/socket.h): 1 while the socket is open, 0 once
 * vmm closed it.  A request that cannot be served is answered with an
 * error; the stack goes on either way. */
static int netstack__control(struct netstack *ns)
{
	static uint8_t req[sizeof(struct net_ctl_msg) + NET_CTL_STATE_MAX];
	struct net_ctl_msg ans = {0};
	struct iovec iov[2] = {{.iov_base = &ans, .iov_len = sizeof(ans)}};
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = 1};
	ssize_t n = recv(ns->ctl_fd, req, sizeof(req), MSG_DONTWAIT | MSG_TRUNC);
	uint8_t *state = NULL;
	size_t len = 0;

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 1 : 0;
	if (n == 0)
		return 0;
	memcpy(&ans, req, sizeof(ans) <= (size_t)n ? sizeof(ans) : (size_t)n);
	if ((size_t)n < sizeof(ans) || (size_t)n > sizeof(req)) {
		ans.status = -EMSGSIZE;
	} else if (ans.op == NET_CTL_SAVE) {
		ans.status = ns->be->ops->save(ns->be, &state, &len);
		if (!ans.status && len > NET_CTL_STATE_MAX)
			ans.status = -EFBIG;
		if (!ans.status) {
			iov[1] = (struct iovec){.iov_base = state, .iov_len = len};
			m.msg_iovlen = 2;
		}
	} else if (ans.op == NET_CTL_LOAD) {
		ans.status = ns->be->ops->load(ns->be, req + sizeof(ans), (size_t)n - sizeof(ans));
	} else {
		ans.status = -EOPNOTSUPP;
	}
	if (ans.status)
		pr_warn("NIC \"%s\": netstack: control request %u failed: %s", ns->id, ans.op,
			strerror(-ans.status));
	else
		pr_info("NIC \"%s\": netstack: slirp state %s (%zu bytes)", ns->id,
			ans.op == NET_CTL_SAVE ? "saved" : "loaded",
			ans.op == NET_CTL_SAVE ? len : (size_t)n - sizeof(ans));
	if (sendmsg(ns->ctl_fd, &m, MSG_NOSIGNAL) < 0)
		pr_warn("NIC \"%s\": netstack: cannot answer a control request: %s", ns->id,
			strerror(errno));
	free(state);
	return 1;
}

struct netstack *netstack__open(int fd, int ctl_fd, const char *opt)
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
	ns.ctl_fd = ctl_fd;
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
	struct pollfd fds[NET_POLL_MAX + 2];
	int ret;

	for (;;) {
		int timeout = -1, nb, r;

		fds[0] =
		    (struct pollfd){.fd = ns->fd, .events = POLLIN | (ns->want_out ? POLLOUT : 0)};
		/* A negative fd is skipped by poll. */
		fds[1] = (struct pollfd){.fd = ns->ctl_fd, .events = POLLIN};
		nb = ns->be->ops->poll_fill(ns->be, fds + 2, NET_POLL_MAX, &timeout);
		r = poll(fds, (nfds_t)(2 + nb), timeout);
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
		if (r > 0 && fds[1].revents && !netstack__control(ns))
			ns->ctl_fd = -1; /* vmm is gone or done with it */
		ns->be->ops->poll_done(ns->be, fds + 2, nb, r < 0);
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
