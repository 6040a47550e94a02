/* Unit tests of the tap backend (net/tap.c) on real tap interfaces: the
 * backend is built on a handed fd (as the paravisor's is), refuses fds that
 * are not a tap with the virtio-net header, and pulls frames only while
 * started: frames the host sends while it is stopped stay in the tap for
 * whoever starts (another backend on the same tap, as the next paravisor
 * during a servicing), and frames it read but could not deliver are kept
 * for its own next start.  Needs /dev/net/tun and CAP_NET_ADMIN; each test
 * is skipped without them. */
#include "net/tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define TEST_IF	       "vmmdut0"
#define TEST_ETHERTYPE 0x88b5 /* IEEE local experimental: no other traffic uses it */

struct sink {
	int eagain; /* answer -EAGAIN (no guest buffers) while set */
	int frames;
	uint8_t seq[32]; /* the test frames' sequence bytes, in arrival order */
};

/* Counts the test's frames only: an interface that comes up sends IPv6
 * router solicitations and the like of its own. */
static int sink__rx(void *opaque, const struct iovec *iov, int iovcnt, size_t len)
{
	struct sink *s = opaque;
	const uint8_t *f = (const uint8_t *)iov[0].iov_base + NET_VNET_HDR_LEN;

	assert_int_equal(iovcnt, 1);
	if (len < NET_VNET_HDR_LEN + 15 || (f[12] << 8 | f[13]) != TEST_ETHERTYPE)
		return 0;
	if (s->eagain)
		return -EAGAIN;
	if (s->frames < (int)sizeof(s->seq))
		s->seq[s->frames] = f[14];
	s->frames++;
	return 0;
}

/* Rounds of the device thread's loop for ms milliseconds, or until s has
 * want frames. */
static void pump(struct net_backend *be, struct sink *s, int want, int ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd fds[NET_POLL_MAX];
		int timeout = 20, n, r;

		n = be->ops->poll_fill(be, fds, NET_POLL_MAX, &timeout);
		r = poll(fds, n, timeout);
		be->ops->poll_done(be, fds, n, r < 0);
		if (s->frames >= want)
			return;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > ms)
			return;
	}
}

/* A tap for the test, or skip: no /dev/net/tun or no CAP_NET_ADMIN. */
static int tap_open_or_skip(void)
{
	char err[160];
	int fd = net_tap__open(TEST_IF, err, sizeof(err));

	if (fd == -ENOENT || fd == -ENODEV || fd == -EPERM || fd == -EACCES) {
		print_message("# %s\n", err);
		skip();
	}
	if (fd < 0)
		fail_msg("net_tap__open: %s", err);
	return fd;
}

/* Brings the interface up and opens a packet socket that sends out of it:
 * what it sends is what a host-side peer sends to the guest. */
static int host_side(int *ifindex)
{
	struct ifreq ifr = {0};
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", TEST_IF);
	assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	assert_int_equal(ioctl(s, SIOCGIFINDEX, &ifr), 0);
	*ifindex = ifr.ifr_ifindex;
	return s;
}

static void host_send(int s, int ifindex, uint8_t seq)
{
	uint8_t f[60] = {0x52,
			 0x54,
			 0x00,
			 0x12,
			 0x34,
			 0x56,
			 0x02,
			 0,
			 0,
			 0,
			 0,
			 1,
			 TEST_ETHERTYPE >> 8,
			 TEST_ETHERTYPE & 0xff,
			 seq};
	struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6};

	memcpy(to.sll_addr, f, 6);
	assert_int_equal(sendto(s, f, sizeof(f), 0, (struct sockaddr *)&to, sizeof(to)),
			 (ssize_t)sizeof(f));
}

static void test_tap_backend_on_a_handed_fd(void **state)
{
	int fd = tap_open_or_skip();
	struct net_backend *be;
	char err[160] = "";
	int fl = fcntl(fd, F_GETFD);

	assert_true(fl >= 0 && (fl & FD_CLOEXEC));
	be = net_tap__new_fd("net0", fd, err, sizeof(err));
	if (!be)
		fail_msg("net_tap__new_fd: %s", err);
	assert_string_equal(be->ops->kind, "tap");
	assert_true(be->vnet_hdr);
	assert_true(be->offloads);
	/* The guest's driver sets offloads after the rings start. */
	assert_int_equal(be->ops->set_offload(be, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4), 0);
	net_backend__free(be);
	assert_int_equal(fcntl(fd, F_GETFD), -1); /* the backend owned it */
}

static void assert_refused(int fd, const char *why)
{
	struct net_backend *be;
	char err[160] = "";

	be = net_tap__new_fd("net0", fd, err, sizeof(err));
	if (be)
		fail_msg("descriptor %d was taken for a tap", fd);
	print_message("# refused: %s\n", err);
	if (!strstr(err, why))
		fail_msg("\"%s\" does not say \"%s\"", err, why);
	assert_true(fcntl(fd, F_GETFD) >= 0); /* still the caller's */
	close(fd);
}

static void test_tap_refuses_what_is_not_a_vnet_hdr_tap(void **state)
{
	struct ifreq ifr = {0};
	int sv[2], fd;

	close(tap_open_or_skip());
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_refused(fd, "is not a tap device");
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[1]);
	assert_refused(sv[0], "is not a tap device");
	/* /dev/net/tun not attached to an interface yet. */
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_refused(fd, "is not a tap device");
	/* A tun (layer 3) interface. */
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "vmmdut1");
	assert_int_equal(ioctl(fd, TUNSETIFF, &ifr), 0);
	assert_refused(fd, "not a tap");
	/* A tap without the virtio-net header: frames would be misread. */
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "vmmdut2");
	assert_int_equal(ioctl(fd, TUNSETIFF, &ifr), 0);
	assert_refused(fd, "virtio-net header");
}

/* The servicing case: two backends on one tap (the old paravisor's and the
 * new one's).  Frames sent while the first is stopped go to the second,
 * and none is taken by the stopped one. */
static void test_tap_stopped_backend_leaves_frames_to_the_next(void **state)
{
	int fd = tap_open_or_skip(), fd2, s, ifindex;
	struct sink a = {0}, b = {0};
	struct net_backend *old, *new;
	char err[160];

	old = net_tap__new_fd("old", fd, err, sizeof(err));
	assert_non_null(old);
	fd2 = dup(fd);
	new = net_tap__new_fd("new", fd2, err, sizeof(err));
	assert_non_null(new);
	net_backend__set_rx(old, sink__rx, &a);
	net_backend__set_rx(new, sink__rx, &b);
	s = host_side(&ifindex);

	/* Created stopped: nothing is read. */
	host_send(s, ifindex, 1);
	pump(old, &a, 1, 200);
	assert_int_equal(a.frames, 0);
	/* Started, it gets what waited in the tap and what follows. */
	assert_int_equal(old->ops->start(old), 0);
	old->ops->rx_ready(old); /* the device thread's first call */
	pump(old, &a, 1, 2000);
	host_send(s, ifindex, 2);
	pump(old, &a, 2, 2000);
	assert_int_equal(a.frames, 2);
	assert_int_equal(a.seq[0], 1);
	assert_int_equal(a.seq[1], 2);

	/* Stopped with its reads posted: the next backend gets every frame. */
	old->ops->stop(old);
	for (int i = 3; i < 3 + 8; i++)
		host_send(s, ifindex, (uint8_t)i);
	pump(old, &a, 3, 200);
	assert_int_equal(a.frames, 2);
	assert_int_equal(new->ops->start(new), 0);
	new->ops->rx_ready(new);
	pump(new, &b, 8, 2000);
	assert_int_equal(b.frames, 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(b.seq[i], 3 + i);
	pump(old, &a, 3, 100);
	assert_int_equal(a.frames, 2);

	close(s);
	net_backend__free(new);
	net_backend__free(old);
}

/* A servicing rolled back: frames this backend read but the guest had no
 * buffers for stay with it across stop and start, in order. */
static void test_tap_keeps_read_frames_across_stop_and_start(void **state)
{
	int fd = tap_open_or_skip(), s, ifindex;
	struct sink a = {.eagain = 1};
	struct net_backend *be;
	char err[160];

	be = net_tap__new_fd("net0", fd, err, sizeof(err));
	assert_non_null(be);
	net_backend__set_rx(be, sink__rx, &a);
	s = host_side(&ifindex);
	assert_int_equal(be->ops->start(be), 0);
	be->ops->rx_ready(be);
	for (int i = 1; i <= 3; i++)
		host_send(s, ifindex, (uint8_t)i);
	pump(be, &a, 1, 300); /* read, offered, refused: held */
	assert_int_equal(a.frames, 0);
	be->ops->stop(be);
	host_send(s, ifindex, 4);
	a.eagain = 0;
	assert_int_equal(be->ops->start(be), 0);
	be->ops->rx_ready(be); /* the device thread's first call */
	pump(be, &a, 4, 2000);
	assert_int_equal(a.frames, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(a.seq[i], 1 + i);
	close(s);
	net_backend__free(be);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tap_backend_on_a_handed_fd),
	    cmocka_unit_test(test_tap_refuses_what_is_not_a_vnet_hdr_tap),
	    cmocka_unit_test(test_tap_stopped_backend_leaves_frames_to_the_next),
	    cmocka_unit_test(test_tap_keeps_read_frames_across_stop_and_start),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
