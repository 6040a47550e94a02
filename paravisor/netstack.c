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
 * holder of the other end has closed it.
 *
 * Replacing a netstack (servicing it: a new binary) keeps its connections
 * by draining: vmm links the old stack and the new one (a SOCK_SEQPACKET
 * pair: the old one gets its end with NET_CTL_DRAIN, the new one starts
 * with --drain-fd), the old one stops listening on the hostfwd ports and
 * the new one listens there.  Over the link the old stack names every TCP
 * connection it carries (netstack_flows.c) as they come and go, and the
 * new stack sends it the guest's frames of those connections and passes
 * its frames on to the guest once the old paravisor is gone; everything
 * else (new connections, DHCP, DNS, ARP) is the new stack's.  The old
 * stack exits when its last connection has closed.  Stacks chain: one
 * still draining when its successor is replaced names its predecessor's
 * connections too, so their frames go down the chain. */
#include "paravisor/netstack.h"

#include "common/log.h"
#include "net/slirp.h"
#include "net/socket.h"
#include "paravisor/netstack_flows.h"
#include "paravisor/vu_net.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NETSTACK_TX_BURST 64
/* A link message: one tag byte, then a frame or a connection's key. */
#define LINK_FRAME '.'
#define LINK_ADD   '+'
#define LINK_DEL   '-'
/* How long naming a connection may wait for room on the link. */
#define LINK_SEND_MS 1000

struct netstack {
	struct net_backend *be;
	int fd;	       /* the NIC's end; -1 once it closed (draining) */
	int ctl_fd;    /* -1: none, or vmm closed it */
	int older_fd;  /* --drain-fd: the stack draining into this one; -1: none */
	int newer_fd;  /* NET_CTL_DRAIN: the stack this one drains into; -1: none */
	bool want_out; /* a frame waits for room on the way to the guest */
	struct ns_flows own;   /* the connections this stack's slirp carries */
	struct ns_flows older; /* those older_fd's stack (and its own older ones) carry */
	char id[32];
	uint8_t buf[1 + NET_FRAME_MAX];
};

/* Where frames for the guest go: the NIC while its end is open, then the
 * newer stack. */
static int netstack__guest_fd(const struct netstack *ns)
{
	return ns->fd >= 0 ? ns->fd : ns->newer_fd;
}

/* Names a connection to the newer stack (a lost name would send its frames
 * to the wrong stack, so this waits a little for room). */
static void netstack__announce(struct netstack *ns, char tag, const struct ns_flow_key *k)
{
	uint8_t msg[1 + sizeof(*k)];
	struct pollfd p = {.fd = ns->newer_fd, .events = POLLOUT};

	if (ns->newer_fd < 0)
		return;
	msg[0] = (uint8_t)tag;
	memcpy(msg + 1, k, sizeof(*k));
	while (send(ns->newer_fd, msg, sizeof(msg), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		if ((errno != EAGAIN && errno != ENOBUFS) || poll(&p, 1, LINK_SEND_MS) != 1) {
			pr_warn("NIC \"%s\": netstack: cannot name a connection to the next "
				"netstack: %s",
				ns->id, strerror(errno));
			return;
		}
	}
}

static void netstack__track(struct netstack *ns, const uint8_t *frame, size_t len, bool to_guest)
{
	struct ns_flow_key k;
	int r = ns_flows__track(&ns->own, frame, len, to_guest, &k);

	if (r)
		netstack__announce(ns, r > 0 ? LINK_ADD : LINK_DEL, &k);
}

/* A frame for the guest (iov: its pieces); 0, or -EAGAIN: no room now. */
static int netstack__to_guest(struct netstack *ns, const struct iovec *iov, int iovcnt)
{
	static const uint8_t tag = LINK_FRAME;
	struct iovec v[8];
	struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
	int fd = netstack__guest_fd(ns);

	if (fd < 0)
		return 0;
	if (fd == ns->newer_fd) {
		if (iovcnt >= (int)(sizeof(v) / sizeof(v[0])))
			return 0;
		v[0] = (struct iovec){.iov_base = (void *)&tag, .iov_len = 1};
		memcpy(v + 1, iov, (size_t)iovcnt * sizeof(*iov));
		m.msg_iov = v;
		m.msg_iovlen = (size_t)iovcnt + 1;
	}
	if (sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
		return 0;
	if (errno == EAGAIN || errno == ENOBUFS) {
		ns->want_out = true;
		return -EAGAIN;
	}
	return 0; /* that end is gone: the main loop notices */
}

/* slirp has a frame for the guest (one piece: net/slirp.c sends it whole). */
static int netstack__from_slirp(void *opaque, const struct iovec *iov, int iovcnt, size_t len)
{
	struct netstack *ns = opaque;
	int r = netstack__to_guest(ns, iov, iovcnt);

	/* Followed once it went: slirp offers a held frame again. */
	if (!r && iovcnt >= 1)
		netstack__track(ns, iov[0].iov_base, iov[0].iov_len < len ? iov[0].iov_len : len,
				true);
	return r;
}

/* A frame from the guest: the older stack's connection goes there, the
 * rest into slirp. */
static void netstack__from_guest(struct netstack *ns, uint8_t *frame, size_t len)
{
	struct iovec iov = {.iov_base = frame, .iov_len = len};
	struct ns_flow_key k;

	if (ns->older_fd >= 0 && ns->older.count &&
	    ns_flow__parse(frame, len, false, &k) != NS_FLOW_NONE &&
	    ns_flows__has(&ns->older, &k)) {
		/* frame[-1] is the tag's room (both callers read at buf + 1). */
		frame[-1] = LINK_FRAME;
		/* A full link drops it, as a full NIC queue would: TCP resends. */
		if (send(ns->older_fd, frame - 1, len + 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
		    errno != EAGAIN && errno != ENOBUFS)
			pr_debug("NIC \"%s\": netstack: to the older netstack: %s", ns->id,
				 strerror(errno));
		return;
	}
	netstack__track(ns, frame, len, false);
	ns->be->ops->send(ns->be, &iov, 1);
}

/* Frames from the NIC: 1 while its end is open, 0 once every NIC end is
 * closed, negative errno on an error. */
static int netstack__from_nic(struct netstack *ns)
{
	for (int i = 0; i < NETSTACK_TX_BURST; i++) {
		ssize_t n =
		    recv(ns->fd, ns->buf + 1, sizeof(ns->buf) - 1, MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 1;
		/* The last NIC end closed with frames for the guest unread in
		 * it (the paravisor had stopped reading, as in servicing): the
		 * kernel says ECONNRESET then, not end of file. */
		if (n < 0 && errno == ECONNRESET)
			return 0;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		if ((size_t)n > sizeof(ns->buf) - 1 || n < NET_FRAME_MIN)
			continue;
		netstack__from_guest(ns, ns->buf + 1, (size_t)n);
	}
	ns->be->ops->flush(ns->be);
	return 1;
}

/* Messages from the older stack (frames for the guest, names of its
 * connections) or from the newer one (the guest's frames): 1 while the
 * link is open, 0 once it closed. */
static int netstack__from_link(struct netstack *ns, bool older)
{
	int fd = older ? ns->older_fd : ns->newer_fd;
	struct ns_flow_key k;

	for (int i = 0; i < NETSTACK_TX_BURST; i++) {
		ssize_t n = recv(fd, ns->buf, sizeof(ns->buf), MSG_DONTWAIT | MSG_TRUNC);
		struct iovec iov = {.iov_base = ns->buf + 1};

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 1 : 0;
		if (n == 0)
			return 0;
		if ((size_t)n > sizeof(ns->buf) || n < 1)
			continue;
		iov.iov_len = (size_t)n - 1;
		if (ns->buf[0] == LINK_FRAME && iov.iov_len >= NET_FRAME_MIN) {
			if (older)
				netstack__to_guest(ns, &iov, 1);
			else
				netstack__from_guest(ns, ns->buf + 1, iov.iov_len);
		} else if (older && (ns->buf[0] == LINK_ADD || ns->buf[0] == LINK_DEL) &&
			   iov.iov_len == sizeof(k)) {
			memcpy(&k, ns->buf + 1, sizeof(k));
			if (ns->buf[0] == LINK_ADD)
				ns_flows__add(&ns->older, &k);
			else
				ns_flows__del(&ns->older, &k);
			/* A newer stack must send those frames here too. */
			netstack__announce(ns, (char)ns->buf[0], &k);
		}
	}
	if (!older)
		ns->be->ops->flush(ns->be);
	return 1;
}

static int netstack__name_one(const struct ns_flow_key *k, void *opaque)
{
	netstack__announce(opaque, LINK_ADD, k);
	return 0;
}

static int netstack__forget_one(const struct ns_flow_key *k, void *opaque)
{
	netstack__announce(opaque, LINK_DEL, k);
	return 0;
}

/* NET_CTL_DRAIN: fd links this stack to the one replacing it, which takes
 * the hostfwd ports; UNDRAIN (the replacement failed) takes them back. */
static int netstack__drain(struct netstack *ns, int fd)
{
	char why[160];
	int err;

	if (fd < 0)
		return -EBADF;
	if (ns->newer_fd >= 0) {
		close(fd);
		return -EALREADY;
	}
	net_slirp__listen(ns->be, false, why, sizeof(why));
	ns->newer_fd = fd;
	err = ns_flows__each(&ns->own, netstack__name_one, ns);
	if (!err)
		err = ns_flows__each(&ns->older, netstack__name_one, ns);
	pr_info("NIC \"%s\": netstack: draining into the next netstack: %u connection(s) stay "
		"here (%u of older netstacks); the hostfwd ports are its",
		ns->id, ns->own.count, ns->older.count);
	return err;
}

static int netstack__undrain(struct netstack *ns)
{
	char why[160];
	int err;

	if (ns->newer_fd >= 0)
		close(ns->newer_fd);
	ns->newer_fd = -1;
	err = net_slirp__listen(ns->be, true, why, sizeof(why));
	if (err)
		pr_err("NIC \"%s\": netstack: %s", ns->id, why);
	else
		pr_info("NIC \"%s\": netstack: not draining after all; the hostfwd ports are "
			"here again",
			ns->id);
	return err;
}

/* The fd that came with a control request, or -1. */
static int netstack__passed_fd(struct msghdr *m)
{
	struct cmsghdr *c = CMSG_FIRSTHDR(m);
	int fd = -1;

	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
	    c->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	return fd;
}

/* One control request (net/socket.h): 1 while the socket is open, 0 once
 * vmm closed it.  A request that cannot be served is answered with an
 * error; the stack goes on either way. */
static int netstack__control(struct netstack *ns)
{
	static uint8_t req[sizeof(struct net_ctl_msg) + NET_CTL_STATE_MAX];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct iovec riov = {.iov_base = req, .iov_len = sizeof(req)};
	struct msghdr rm = {.msg_iov = &riov,
			    .msg_iovlen = 1,
			    .msg_control = cm.buf,
			    .msg_controllen = sizeof(cm.buf)};
	struct net_ctl_msg ans = {0};
	struct iovec iov[2] = {{.iov_base = &ans, .iov_len = sizeof(ans)}};
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = 1};
	ssize_t n = recvmsg(ns->ctl_fd, &rm, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	uint8_t *state = NULL;
	size_t len = 0;
	int fd;

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 1 : 0;
	if (n == 0)
		return 0;
	fd = netstack__passed_fd(&rm);
	memcpy(&ans, req, sizeof(ans) <= (size_t)n ? sizeof(ans) : (size_t)n);
	if ((size_t)n < sizeof(ans) || (rm.msg_flags & MSG_TRUNC)) {
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
	} else if (ans.op == NET_CTL_DRAIN) {
		ans.status = netstack__drain(ns, fd);
		fd = -1;
	} else if (ans.op == NET_CTL_UNDRAIN) {
		ans.status = netstack__undrain(ns);
	} else {
		ans.status = -EOPNOTSUPP;
	}
	if (fd >= 0)
		close(fd);
	if (ans.status)
		pr_warn("NIC \"%s\": netstack: control request %u failed: %s", ns->id, ans.op,
			strerror(-ans.status));
	else if (ans.op == NET_CTL_SAVE || ans.op == NET_CTL_LOAD)
		pr_info("NIC \"%s\": netstack: slirp state %s (%zu bytes)", ns->id,
			ans.op == NET_CTL_SAVE ? "saved" : "loaded",
			ans.op == NET_CTL_SAVE ? len : (size_t)n - sizeof(ans));
	if (sendmsg(ns->ctl_fd, &m, MSG_NOSIGNAL) < 0)
		pr_warn("NIC \"%s\": netstack: cannot answer a control request: %s", ns->id,
			strerror(errno));
	free(state);
	return 1;
}

struct netstack *netstack__open(int fd, int ctl_fd, int drain_fd, const char *opt)
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
	ns.older_fd = drain_fd;
	ns.newer_fd = -1;
	snprintf(ns.id, sizeof(ns.id), "%s", o.id);
	ns.be = net_slirp__new(o.id, o.fwd, o.nr_fwd, why, sizeof(why));
	if (!ns.be) {
		pr_err("NIC \"%s\": slirp: %s", o.id, why);
		return NULL;
	}
	net_backend__set_rx(ns.be, netstack__from_slirp, &ns);
	pr_info("NIC \"%s\": netstack: slirp with %d hostfwd rule(s), frames on descriptor %d%s",
		o.id, o.nr_fwd, fd,
		drain_fd >= 0 ? "; an older netstack drains into this one" : "");
	return &ns;
}

int netstack__ready(struct netstack *ns)
{
	if (send(ns->fd, NET_SOCKET_READY, strlen(NET_SOCKET_READY), MSG_NOSIGNAL) >= 0)
		return 0;
	pr_err("NIC \"%s\": netstack: cannot say it is ready: %s", ns->id, strerror(errno));
	return -errno;
}

/* The older stack is gone: its connections with it. */
static void netstack__older_gone(struct netstack *ns)
{
	pr_info("NIC \"%s\": netstack: the older netstack is done (%u connection(s) it "
		"still named are gone)",
		ns->id, ns->older.count);
	ns_flows__each(&ns->older, netstack__forget_one, ns);
	ns_flows__clear(&ns->older);
	close(ns->older_fd);
	ns->older_fd = -1;
}

/* A stack that drains exits once nothing of it is left: no NIC end, none of
 * its connections, no older stack behind it. */
static bool netstack__drained(const struct netstack *ns)
{
	return ns->newer_fd >= 0 && ns->fd < 0 && !ns->own.count && ns->older_fd < 0;
}

int netstack__run(struct netstack *ns)
{
	struct pollfd fds[NET_POLL_MAX + 4];
	const char *end = "every NIC end closed; exiting";
	int ret = 0;

	for (;;) {
		int timeout = -1, nb, r, gfd = netstack__guest_fd(ns);

		if (netstack__drained(ns)) {
			end = "drained: its last connection closed; exiting";
			break;
		}
		/* A negative fd is skipped by poll. */
		fds[0] = (struct pollfd){.fd = ns->fd, .events = POLLIN};
		fds[1] = (struct pollfd){.fd = ns->ctl_fd, .events = POLLIN};
		fds[2] = (struct pollfd){.fd = ns->older_fd, .events = POLLIN};
		fds[3] = (struct pollfd){.fd = ns->newer_fd, .events = POLLIN};
		for (int i = 0; i < 4; i++)
			if (ns->want_out && fds[i].fd == gfd && gfd >= 0)
				fds[i].events |= POLLOUT;
		nb = ns->be->ops->poll_fill(ns->be, fds + 4, NET_POLL_MAX, &timeout);
		r = poll(fds, (nfds_t)4 + (nfds_t)nb, timeout);
		if (r < 0 && errno != EINTR) {
			ret = -errno;
			pr_err("NIC \"%s\": netstack: poll: %s", ns->id, strerror(errno));
			break;
		}
		for (int i = 0; r > 0 && i < 4; i++)
			if (fds[i].fd == gfd && gfd >= 0 && fds[i].revents & POLLOUT) {
				ns->want_out = false;
				ns->be->ops->rx_ready(ns->be);
			}
		/* Control first (a state to load before any frame), then the
		 * older stack's names of its connections, which say where the
		 * guest's frames read next go. */
		if (r > 0 && ns->ctl_fd >= 0 && fds[1].revents && !netstack__control(ns))
			ns->ctl_fd = -1; /* vmm is gone or done with it */
		if (r > 0 && ns->older_fd >= 0 && fds[2].revents && !netstack__from_link(ns, true))
			netstack__older_gone(ns);
		if (r > 0 && ns->fd >= 0 && fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ret = netstack__from_nic(ns);
			if (ret < 0) {
				pr_err("NIC \"%s\": netstack: %s", ns->id, strerror(-ret));
				break;
			}
			if (!ret && ns->newer_fd < 0)
				break;
			if (!ret) {
				/* The replaced paravisor is gone: the guest is reached
				 * through the next netstack now.  main() closes fd. */
				pr_info("NIC \"%s\": netstack: the NIC end closed; frames for the "
					"guest go through the next netstack",
					ns->id);
				ns->fd = -1;
			}
			ret = 0;
		}
		if (r > 0 && ns->newer_fd >= 0 && fds[3].revents &&
		    !netstack__from_link(ns, false)) {
			close(ns->newer_fd);
			ns->newer_fd = -1;
			if (ns->fd < 0) {
				end = "the next netstack is gone and no NIC end is left; exiting";
				break;
			}
		}
		ns->be->ops->poll_done(ns->be, fds + 4, nb, r < 0);
	}
	pr_info("NIC \"%s\": netstack: %s", ns->id, ret ? "stopping on an error" : end);
	return ret;
}

void netstack__close(struct netstack *ns)
{
	if (!ns)
		return;
	net_backend__free(ns->be);
	ns_flows__clear(&ns->own);
	ns_flows__clear(&ns->older);
	if (ns->older_fd >= 0)
		close(ns->older_fd);
	if (ns->newer_fd >= 0)
		close(ns->newer_fd);
}
