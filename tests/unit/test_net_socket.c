/* Unit tests of the socket backend (net/socket.c): frames both ways over a
 * real SOCK_SEQPACKET pair, one per message; a frame the guest has no room
 * for is held (and the socket not read) until rx_ready; runts dropped; a
 * peer that hangs up cuts the NIC off without an error to the guest. */
#include "net/socket.h"

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

struct sink {
	int eagain; /* answer -EAGAIN this many times */
	int frames;
	size_t last_len;
	uint8_t last[64];
};

static int sink__rx(void *opaque, const struct iovec *iov, int iovcnt, size_t len)
{
	struct sink *s = opaque;

	assert_int_equal(iovcnt, 1);
	if (s->eagain) {
		s->eagain--;
		return -EAGAIN;
	}
	s->frames++;
	s->last_len = len;
	memcpy(s->last, iov[0].iov_base, len < sizeof(s->last) ? len : sizeof(s->last));
	return 0;
}

/* One poll round as the device thread does it. */
static int round_trip(struct net_backend *be)
{
	struct pollfd fds[4];
	int timeout = 1000;
	int n = be->ops->poll_fill(be, fds, 4, &timeout);

	if (n)
		assert_true(poll(fds, (nfds_t)n, timeout) >= 0);
	be->ops->poll_done(be, fds, n, false);
	return n;
}

/* A backend on one end of a new pair; the other end (the stack's) in *peer. */
static struct net_backend *backend(struct sink *s, int *peer)
{
	struct net_backend *be;
	char why[128];
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	be = net_socket__new("net0", sv[0], why, sizeof(why));
	assert_non_null(be);
	net_backend__set_rx(be, sink__rx, s);
	*peer = sv[1];
	return be;
}

static void frame(uint8_t *f, size_t len, uint8_t tag)
{
	memset(f, tag, len);
}

static void test_socket_refuses_a_stream_socket(void **state)
{
	char why[128];
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_null(net_socket__new("net0", sv[0], why, sizeof(why)));
	assert_non_null(strstr(why, "not a SOCK_SEQPACKET socket"));
	close(sv[0]);
	close(sv[1]);
}

static void test_socket_carries_frames_both_ways(void **state)
{
	struct sink s = {0};
	uint8_t f[60], got[128];
	int peer;
	struct net_backend *be = backend(&s, &peer);
	struct iovec iov[2];

	assert_false(be->vnet_hdr);

	/* Guest to stack: two iovecs make one message. */
	frame(f, sizeof(f), 0xa1);
	iov[0] = (struct iovec){.iov_base = f, .iov_len = 20};
	iov[1] = (struct iovec){.iov_base = f + 20, .iov_len = 40};
	assert_int_equal(be->ops->send(be, iov, 2), 0);
	assert_int_equal(be->ops->flush(be), 0);
	assert_int_equal(recv(peer, got, sizeof(got), 0), 60);
	assert_memory_equal(got, f, 60);

	/* Stack to guest: a runt is dropped, a frame delivered. */
	assert_int_equal(send(peer, f, 10, 0), 10);
	frame(f, sizeof(f), 0xb2);
	assert_int_equal(send(peer, f, sizeof(f), 0), (ssize_t)sizeof(f));
	assert_int_equal(round_trip(be), 1);
	assert_int_equal(s.frames, 1);
	assert_int_equal(s.last_len, sizeof(f));
	assert_int_equal(s.last[0], 0xb2);
	assert_int_equal(be->stats.rx_dropped, 1);
	net_backend__free(be);
	close(peer);
}

static void test_socket_holds_a_frame_until_rx_ready(void **state)
{
	struct sink s = {.eagain = 1};
	uint8_t f[60];
	int peer;
	struct net_backend *be = backend(&s, &peer);
	frame(f, sizeof(f), 1);
	assert_int_equal(send(peer, f, sizeof(f), 0), (ssize_t)sizeof(f));
	frame(f, sizeof(f), 2);
	assert_int_equal(send(peer, f, sizeof(f), 0), (ssize_t)sizeof(f));
	assert_int_equal(round_trip(be), 1);
	assert_int_equal(s.frames, 0);
	/* Held: the socket is not polled (the second frame waits there). */
	assert_int_equal(round_trip(be), 0);
	be->ops->rx_ready(be);
	assert_int_equal(s.frames, 2); /* the held one, then the next, in order */
	assert_int_equal(s.last[0], 2);
	net_backend__free(be);
	close(peer);
}

static void test_socket_peer_gone_cuts_the_nic_off(void **state)
{
	struct sink s = {0};
	uint8_t f[60] = {0};
	struct iovec iov = {.iov_base = f, .iov_len = sizeof(f)};
	int peer;
	struct net_backend *be = backend(&s, &peer);

	close(peer);
	assert_int_equal(round_trip(be), 1);
	assert_int_equal(round_trip(be), 0); /* not polled any more */
	assert_int_equal(be->ops->send(be, &iov, 1), 0);
	assert_int_equal(s.frames, 0);
	net_backend__free(be);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_socket_refuses_a_stream_socket),
	    cmocka_unit_test(test_socket_carries_frames_both_ways),
	    cmocka_unit_test(test_socket_holds_a_frame_until_rx_ready),
	    cmocka_unit_test(test_socket_peer_gone_cuts_the_nic_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
