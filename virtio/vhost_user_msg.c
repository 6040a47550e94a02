/* virtio/vhost_user_msg.c — one vhost-user message on a Unix stream socket.
 *
 * A message is a 12-byte header and hdr.size bytes of payload; file
 * descriptors ride as SCM_RIGHTS on the header's first byte.  The peer is
 * not trusted: sizes are bounded before anything is read into the buffer,
 * and a message with more fds than fit is refused (the kernel has already
 * closed the ones that did not fit, so nothing leaks). */
#include "virtio/vhost_user_msg.h"

#include "common/why.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void vhost_user_msg__close_fds(struct vhost_user_msg *m)
{
	for (unsigned int i = 0; i < m->nr_fds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nr_fds = 0;
}

/* Reads exactly len bytes (the payload); 0, -ECONNRESET on EOF, -errno. */
static int read_full(int sock, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = recv(sock, p, len, MSG_WAITALL);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void take_fds(struct msghdr *mh, struct vhost_user_msg *m)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n && m->nr_fds < VHOST_USER_MAX_FDS; i++)
			memcpy(&m->fds[m->nr_fds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
}

/* A request from a front-end must not claim to be a reply; a reply must. */
static int msg__recv(int sock, struct vhost_user_msg *m, bool reply, char *why, size_t whylen)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {&m->hdr, sizeof(m->hdr)};
	struct msghdr mh = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = ctl.buf,
	    .msg_controllen = sizeof(ctl.buf),
	};
	char buf[32];
	const char *name;
	ssize_t n;
	int err;

	m->nr_fds = 0;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return -ECONNRESET;
	if (n < 0)
		return -errno;
	take_fds(&mh, m);
	if ((size_t)n < sizeof(m->hdr)) {
		/* MSG_WAITALL returns short only at EOF or on a signal. */
		err = read_full(sock, (uint8_t *)&m->hdr + n, sizeof(m->hdr) - (size_t)n);
		if (err) {
			vhost_user_msg__close_fds(m);
			return err == -ECONNRESET ? why__set(why, whylen, -EPROTO,
							     "connection closed inside a header")
						  : err;
		}
	}
	name = vhost_user_msg__name(m->hdr.request, buf, sizeof(buf));
	if (mh.msg_flags & MSG_CTRUNC) {
		vhost_user_msg__close_fds(m);
		return why__set(why, whylen, -EPROTO, "%s: more than %d file descriptors", name,
				VHOST_USER_MAX_FDS);
	}
	if ((m->hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
	    !(m->hdr.flags & VHOST_USER_FLAG_REPLY) != !reply) {
		vhost_user_msg__close_fds(m);
		return why__set(why, whylen, -EPROTO, "%s: bad flags %#x (version 1, %s REPLY bit)",
				name, m->hdr.flags, reply ? "with the" : "no");
	}
	if (m->hdr.size > sizeof(m->p)) {
		vhost_user_msg__close_fds(m);
		return why__set(why, whylen, -EPROTO, "%s: payload of %u bytes (at most %zu)", name,
				m->hdr.size, sizeof(m->p));
	}
	err = read_full(sock, &m->p, m->hdr.size);
	if (err) {
		vhost_user_msg__close_fds(m);
		return err == -ECONNRESET
			   ? why__set(why, whylen, -EPROTO,
				      "%s: connection closed inside the payload", name)
			   : err;
	}
	return 0;
}

int vhost_user_msg__recv(int sock, struct vhost_user_msg *m, char *why, size_t whylen)
{
	return msg__recv(sock, m, false, why, whylen);
}

int vhost_user_msg__recv_reply(int sock, struct vhost_user_msg *m, char *why, size_t whylen)
{
	return msg__recv(sock, m, true, why, whylen);
}

int vhost_user_msg__send(int sock, const struct vhost_user_msg *m, const int *fds,
			 unsigned int nr_fds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[2] = {
	    {(void *)&m->hdr, sizeof(m->hdr)},
	    {(void *)&m->p, m->hdr.size},
	};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	size_t total = sizeof(m->hdr) + m->hdr.size;
	ssize_t n;

	if (m->hdr.size > sizeof(m->p) || nr_fds > VHOST_USER_MAX_FDS)
		return -EINVAL;
	if (nr_fds) {
		struct cmsghdr *c;

		memset(ctl.buf, 0, sizeof(ctl.buf));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nr_fds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nr_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nr_fds);
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* Stream sockets take small messages whole; a short send means the
	 * peer is going away. */
	return (size_t)n == total ? 0 : -EPIPE;
}

const char *vhost_user_msg__name(uint32_t request, char *buf, size_t len)
{
	static const char *const names[] = {
	    [VHOST_USER_GET_FEATURES] = "GET_FEATURES",
	    [VHOST_USER_SET_FEATURES] = "SET_FEATURES",
	    [VHOST_USER_SET_OWNER] = "SET_OWNER",
	    [VHOST_USER_RESET_OWNER] = "RESET_OWNER",
	    [VHOST_USER_SET_MEM_TABLE] = "SET_MEM_TABLE",
	    [VHOST_USER_SET_LOG_BASE] = "SET_LOG_BASE",
	    [VHOST_USER_SET_LOG_FD] = "SET_LOG_FD",
	    [VHOST_USER_SET_VRING_NUM] = "SET_VRING_NUM",
	    [VHOST_USER_SET_VRING_ADDR] = "SET_VRING_ADDR",
	    [VHOST_USER_SET_VRING_BASE] = "SET_VRING_BASE",
	    [VHOST_USER_GET_VRING_BASE] = "GET_VRING_BASE",
	    [VHOST_USER_SET_VRING_KICK] = "SET_VRING_KICK",
	    [VHOST_USER_SET_VRING_CALL] = "SET_VRING_CALL",
	    [VHOST_USER_SET_VRING_ERR] = "SET_VRING_ERR",
	    [VHOST_USER_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
	    [VHOST_USER_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
	    [VHOST_USER_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
	    [VHOST_USER_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
	    [VHOST_USER_SEND_RARP] = "SEND_RARP",
	    [VHOST_USER_NET_SET_MTU] = "NET_SET_MTU",
	    [VHOST_USER_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD",
	    [VHOST_USER_IOTLB_MSG] = "IOTLB_MSG",
	    [VHOST_USER_SET_VRING_ENDIAN] = "SET_VRING_ENDIAN",
	    [VHOST_USER_GET_CONFIG] = "GET_CONFIG",
	    [VHOST_USER_SET_CONFIG] = "SET_CONFIG",
	    [VHOST_USER_GET_INFLIGHT_FD] = "GET_INFLIGHT_FD",
	    [VHOST_USER_SET_INFLIGHT_FD] = "SET_INFLIGHT_FD",
	    [VHOST_USER_RESET_DEVICE] = "RESET_DEVICE",
	    [VHOST_USER_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
	    [VHOST_USER_SET_STATUS] = "SET_STATUS",
	    [VHOST_USER_GET_STATUS] = "GET_STATUS",
	    [VHOST_USER_SET_DEVICE_STATE_FD] = "SET_DEVICE_STATE_FD",
	    [VHOST_USER_CHECK_DEVICE_STATE] = "CHECK_DEVICE_STATE",
	};

	if (request < sizeof(names) / sizeof(names[0]) && names[request])
		return names[request];
	snprintf(buf, len, "request %u", request);
	return buf;
}
