/* Unit tests of the virtio-net model: fake guest RAM and virtqueues on one
 * side, a socketpair backend (one datagram = one frame) on the other. */
#include "net/backend.h"
#include "tests/unit/net_fake.h"
#include "virtio/net.h"

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cmocka.h>

/* The transport's helper; a real one may be linked in instead. */
__attribute__((weak)) void virtio_device__notify(struct virtio_device *vdev, unsigned int q)
{
}

struct sock_be {
	struct net_backend be;
	int fd;
	uint8_t held[70000];
	ssize_t held_len; /* a frame the device could not take yet, or 0 */
};

static int sock__send(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	struct sock_be *s = (struct sock_be *)be;
	struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = iovcnt};

	return sendmsg(s->fd, &m, 0) < 0 ? -errno : 0;
}

static int sock__flush(struct net_backend *be)
{
	return 0;
}

static int sock__poll_fill(struct net_backend *be, struct pollfd *fds, int max, int *timeout)
{
	struct sock_be *s = (struct sock_be *)be;

	if (s->held_len) /* backpressure: wait for rx_ready */
		return 0;
	fds[0] = (struct pollfd){.fd = s->fd, .events = POLLIN};
	return 1;
}

static void sock__deliver(struct sock_be *s)
{
	struct iovec iov = {.iov_base = s->held, .iov_len = s->held_len};

	if (s->be.rx(s->be.rx_opaque, &iov, 1, s->held_len) != -EAGAIN)
		s->held_len = 0;
}

static void sock__poll_done(struct net_backend *be, struct pollfd *fds, int n, bool err)
{
	struct sock_be *s = (struct sock_be *)be;

	if (n < 1 || !(fds[0].revents & POLLIN))
		return;
	s->held_len = recv(s->fd, s->held, sizeof(s->held), MSG_DONTWAIT);
	if (s->held_len <= 0)
		s->held_len = 0;
	else
		sock__deliver(s);
}

static void sock__rx_ready(struct net_backend *be)
{
	struct sock_be *s = (struct sock_be *)be;

	if (s->held_len)
		sock__deliver(s);
}

static int sock__set_offload(struct net_backend *be, unsigned int o)
{
	return 0;
}

static void sock__free(struct net_backend *be)
{
	close(((struct sock_be *)be)->fd);
	free(be);
}

static const struct net_backend_ops sock_ops = {
    .kind = "socketpair",
    .send = sock__send,
    .flush = sock__flush,
    .poll_fill = sock__poll_fill,
    .poll_done = sock__poll_done,
    .rx_ready = sock__rx_ready,
    .set_offload = sock__set_offload,
    .free = sock__free,
};

struct ctx {
	struct virtio_device *vdev;
	struct fake_guest g;
	int peer;
	int fails;
	char why[256];
};

static void test_fail(struct virtio_device *vdev, const char *why)
{
	struct ctx *c = vdev->transport;

	c->fails++;
	snprintf(c->why, sizeof(c->why), "%s", why);
}

static struct ctx *ctx_new(uint64_t features)
{
	static const uint8_t mac[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
	struct ctx *c = calloc(1, sizeof(*c));
	struct sock_be *s = calloc(1, sizeof(*s));
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	s->be.ops = &sock_ops;
	s->fd = sv[0];
	c->peer = sv[1];
	c->vdev = virtio_net__new("net0", mac, &s->be);
	assert_non_null(c->vdev);
	c->vdev->transport = c;
	c->vdev->fail = test_fail;
	c->vdev->driver_features = features | 1ULL << VIRTIO_F_VERSION_1;
	for (int q = 0; q < 2; q++)
		c->vdev->kick_fd[q] = eventfd(0, EFD_NONBLOCK);
	fake__init(&c->g, c->vdev);
	assert_int_equal(c->vdev->ops->start(c->vdev), 0);
	return c;
}

static void ctx_free(struct ctx *c)
{
	int k0 = c->vdev->kick_fd[0], k1 = c->vdev->kick_fd[1];

	c->vdev->ops->stop(c->vdev);
	c->vdev->ops->stop(c->vdev); /* idempotent */
	c->vdev->ops->destroy(c->vdev);
	close(k0);
	close(k1);
	close(c->peer);
	fake__exit(&c->g);
	free(c);
}

/* Posts [hdr | frame] as two descriptors on the TX queue and kicks. */
static void tx_frame_hdr(struct ctx *c, const struct virtio_net_hdr_v1 *h, const uint8_t *frame,
			 uint32_t len)
{
	uint64_t gpa[2] = {fake__alloc(&c->g, 12), fake__alloc(&c->g, len)};
	uint32_t lens[2] = {12, len};
	bool w[2] = {false, false};

	memcpy(fake__ptr(&c->g, gpa[0]), h, 12);
	memcpy(fake__ptr(&c->g, gpa[1]), frame, len);
	fake__post(&c->g, VIRTIO_NET_TXQ, gpa, lens, w, 2);
	fake__kick(c->vdev->kick_fd[VIRTIO_NET_TXQ]);
}

static void tx_frame(struct ctx *c, const uint8_t *frame, uint32_t len)
{
	struct virtio_net_hdr_v1 h = {0};

	tx_frame_hdr(c, &h, frame, len);
}

static uint64_t rx_buf(struct ctx *c, uint32_t len)
{
	uint64_t gpa = fake__alloc(&c->g, len);
	bool w = true;

	fake__post(&c->g, VIRTIO_NET_RXQ, &gpa, &len, &w, 1);
	fake__kick(c->vdev->kick_fd[VIRTIO_NET_RXQ]);
	return gpa;
}

static void fill(uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = seed + i * 7;
}

static void test_net_config_has_mac_and_link_up(void **state)
{
	struct ctx *c = ctx_new(0);
	struct virtio_net_config cfg;
	uint64_t f = c->vdev->ops->features(c->vdev);

	c->vdev->ops->config_read(c->vdev, 0, &cfg, sizeof(cfg));
	assert_memory_equal(cfg.mac, ((uint8_t[]){0x52, 0x54, 0, 0x12, 0x34, 0x56}), 6);
	assert_int_equal(le16toh(cfg.status), VIRTIO_NET_S_LINK_UP);
	assert_int_equal(le16toh(cfg.max_virtqueue_pairs), 1);
	assert_true(f & 1ULL << VIRTIO_NET_F_MRG_RXBUF);
	assert_false(f & 1ULL << VIRTIO_NET_F_CSUM); /* no offloads without a tap */
	ctx_free(c);
}

static void test_net_tx_strips_header_and_sends_frame(void **state)
{
	struct ctx *c = ctx_new(0);
	uint8_t frame[60], got[100];
	struct virtio_net_stats st;
	uint32_t id, len;

	fill(frame, sizeof(frame), 1);
	tx_frame(c, frame, sizeof(frame));
	assert_true(fake__wait_used(&c->g, VIRTIO_NET_TXQ, 1));
	fake__used_elem(&c->g, VIRTIO_NET_TXQ, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(recv(c->peer, got, sizeof(got), 0), sizeof(frame));
	assert_memory_equal(got, frame, sizeof(frame));
	virtio_net__stats(c->vdev, &st);
	assert_int_equal(st.tx_packets, 1);
	assert_int_equal(st.tx_bytes, 60);
	ctx_free(c);
}

static void test_net_tx_drops_runt_and_oversize_frames(void **state)
{
	struct ctx *c = ctx_new(0);
	static uint8_t big[65551];
	uint8_t frame[60], got[100];
	struct virtio_net_stats st;

	tx_frame(c, frame, 13);	       /* shorter than an Ethernet header */
	tx_frame(c, big, sizeof(big)); /* one byte over the limit */
	fill(frame, sizeof(frame), 9);
	tx_frame(c, frame, sizeof(frame));
	assert_true(fake__wait_used(&c->g, VIRTIO_NET_TXQ, 3));
	/* Only the good frame reached the backend, and the device lives on. */
	assert_int_equal(recv(c->peer, got, sizeof(got), 0), sizeof(frame));
	assert_memory_equal(got, frame, sizeof(frame));
	assert_int_equal(recv(c->peer, got, sizeof(got), MSG_DONTWAIT), -1);
	virtio_net__stats(c->vdev, &st);
	assert_int_equal(st.tx_drops, 2);
	assert_int_equal(st.tx_packets, 1);
	assert_int_equal(c->fails, 0);
	ctx_free(c);
}

static void test_net_rx_merges_buffers(void **state)
{
	struct ctx *c = ctx_new(1ULL << VIRTIO_NET_F_MRG_RXBUF);
	uint8_t frame[2500], out[2512];
	uint64_t gpa[4];
	struct virtio_net_hdr_v1 h;
	uint32_t id, len, lens[3];

	for (int i = 0; i < 4; i++)
		gpa[i] = rx_buf(c, 1000);
	fill(frame, sizeof(frame), 3);
	assert_int_equal(send(c->peer, frame, sizeof(frame), 0), sizeof(frame));
	assert_true(fake__wait_used(&c->g, VIRTIO_NET_RXQ, 3));
	for (int i = 0; i < 3; i++) {
		fake__used_elem(&c->g, VIRTIO_NET_RXQ, i, &id, &lens[i]);
		assert_int_equal(id, i);
		memcpy(out + 1000 * i, fake__ptr(&c->g, gpa[i]), lens[i]);
	}
	assert_int_equal(lens[0], 1000);
	assert_int_equal(lens[1], 1000);
	assert_int_equal(lens[2], 512);
	memcpy(&h, out, sizeof(h));
	assert_int_equal(le16toh(h.num_buffers), 3);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.gso_type, 0);
	assert_memory_equal(out + 12, frame, sizeof(frame));
	assert_int_equal(fake__used_idx(&c->g, VIRTIO_NET_RXQ), 3);
	(void)len;
	ctx_free(c);
}

static void test_net_rx_waits_for_guest_buffers(void **state)
{
	struct ctx *c = ctx_new(1ULL << VIRTIO_NET_F_MRG_RXBUF);
	uint8_t frame[100];
	struct virtio_net_stats st;
	uint64_t gpa;
	uint32_t id, len;

	fill(frame, sizeof(frame), 5);
	assert_int_equal(send(c->peer, frame, sizeof(frame), 0), sizeof(frame));
	usleep(50000);
	assert_int_equal(fake__used_idx(&c->g, VIRTIO_NET_RXQ), 0);
	gpa = rx_buf(c, 2048);
	assert_true(fake__wait_used(&c->g, VIRTIO_NET_RXQ, 1));
	fake__used_elem(&c->g, VIRTIO_NET_RXQ, 0, &id, &len);
	assert_int_equal(len, 112);
	assert_memory_equal((uint8_t *)fake__ptr(&c->g, gpa) + 12, frame, sizeof(frame));
	virtio_net__stats(c->vdev, &st);
	assert_int_equal(st.rx_packets, 1);
	assert_int_equal(st.rx_bytes, 100);
	ctx_free(c);
}

/* While a live migration tracks device writes, a received frame's buffers
 * are marked dirty (the data, not only the used ring): one buffer, and
 * each of a merged frame's. */
static void test_net_rx_marks_the_buffers_it_fills_dirty(void **state)
{
	struct ctx *c = ctx_new(1ULL << VIRTIO_NET_F_MRG_RXBUF);
	uint64_t bitmap[FAKE_RAM_SIZE / 4096 / 64] = {0};
	uint8_t frame[2500];
	uint64_t gpa[3];

	c->g.mem.dirty_base = c->g.ram;
	c->g.mem.dirty_len = FAKE_RAM_SIZE;
	__atomic_store_n(&c->g.mem.dirty, bitmap, __ATOMIC_RELEASE);
	/* Page-aligned buffers, each on a page of its own. */
	for (int i = 0; i < 3; i++) {
		c->g.brk = (c->g.brk + 4095) & ~4095ULL;
		gpa[i] = rx_buf(c, i ? 2048 : 100 + 12);
	}
	fill(frame, 100, 1);
	assert_int_equal(send(c->peer, frame, 100, 0), 100);
	assert_true(fake__wait_used(&c->g, VIRTIO_NET_RXQ, 1));
	fill(frame, sizeof(frame), 2);
	assert_int_equal(send(c->peer, frame, sizeof(frame), 0), sizeof(frame));
	assert_true(fake__wait_used(&c->g, VIRTIO_NET_RXQ, 3));
	for (int i = 0; i < 3; i++) {
		uint64_t pg = (gpa[i] - FAKE_RAM_GPA) >> 12;

		assert_true(bitmap[pg / 64] & 1ULL << (pg % 64));
	}
	__atomic_store_n(&c->g.mem.dirty, NULL, __ATOMIC_RELEASE);
	ctx_free(c);
}

static void test_net_rx_drops_frame_larger_than_buffer(void **state)
{
	struct ctx *c = ctx_new(0); /* no MRG_RXBUF: one buffer per frame */
	uint8_t big[500], small[60];
	struct virtio_net_stats st;
	uint64_t gpa;
	uint32_t id, len;

	gpa = rx_buf(c, 200);
	fill(big, sizeof(big), 1);
	fill(small, sizeof(small), 2);
	assert_int_equal(send(c->peer, big, sizeof(big), 0), sizeof(big));
	assert_int_equal(send(c->peer, small, sizeof(small), 0), sizeof(small));
	assert_true(fake__wait_used(&c->g, VIRTIO_NET_RXQ, 1));
	/* The same buffer got the small frame; the big one was counted. */
	fake__used_elem(&c->g, VIRTIO_NET_RXQ, 0, &id, &len);
	assert_int_equal(len, 72);
	assert_memory_equal((uint8_t *)fake__ptr(&c->g, gpa) + 12, small, sizeof(small));
	virtio_net__stats(c->vdev, &st);
	assert_int_equal(st.rx_drops, 1);
	assert_int_equal(st.rx_packets, 1);
	assert_int_equal(c->fails, 0);
	ctx_free(c);
}

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t s)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		s += p[i] << 8 | p[i + 1];
	if (len & 1)
		s += p[len - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s;
}

/* slirp gets no CSUM offload; a guest that asks anyway gets it done here. */
static void test_net_tx_finishes_partial_checksum(void **state)
{
	struct ctx *c = ctx_new(0);
	uint8_t f[14 + 20 + 8 + 21] = {0}, got[200], pseudo[12];
	uint8_t *ip = f + 14, *udp = ip + 20;
	struct virtio_net_hdr_v1 h = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				      .csum_start = htole16(34),
				      .csum_offset = htole16(6)};
	uint16_t ulen = 8 + 21, ps;

	f[12] = 0x08;
	ip[0] = 0x45, ip[9] = 17;
	memcpy(ip + 12, ((uint8_t[]){10, 0, 2, 15, 10, 0, 2, 2}), 8);
	udp[0] = 0x30, udp[1] = 0x39, udp[2] = 0x1f, udp[3] = 0x90;
	udp[4] = ulen >> 8, udp[5] = ulen & 0xff;
	fill(udp + 8, 21, 11);
	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0, pseudo[9] = 17, pseudo[10] = ulen >> 8, pseudo[11] = ulen & 0xff;
	ps = fold(sum16(pseudo, 12, 0)); /* what Linux leaves in the field */
	udp[6] = ps >> 8, udp[7] = ps & 0xff;
	tx_frame_hdr(c, &h, f, sizeof(f));
	assert_true(fake__wait_used(&c->g, VIRTIO_NET_TXQ, 1));
	assert_int_equal(recv(c->peer, got, sizeof(got), 0), sizeof(f));
	assert_int_not_equal(got[34 + 6] << 8 | got[34 + 7], ps);
	/* A receiver's check: pseudo header + segment sums to 0xffff. */
	assert_int_equal(fold(sum16(got + 34, ulen, sum16(pseudo, 12, 0))), 0xffff);
	ctx_free(c);
}

static void test_net_bad_descriptor_fails_device(void **state)
{
	struct ctx *c = ctx_new(0);
	uint64_t gpa = 0xdead0000000ULL; /* outside guest RAM */
	uint32_t len = 100;
	bool w = false;
	uint8_t frame[60], got[100];

	fake__post(&c->g, VIRTIO_NET_TXQ, &gpa, &len, &w, 1);
	fake__kick(c->vdev->kick_fd[VIRTIO_NET_TXQ]);
	for (int i = 0; i < 3000 && !__atomic_load_n(&c->fails, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	assert_int_equal(c->fails, 1);
	assert_true(strlen(c->why) > 0);
	/* The failed device sends nothing more. */
	tx_frame(c, frame, sizeof(frame));
	usleep(50000);
	assert_int_equal(recv(c->peer, got, sizeof(got), MSG_DONTWAIT), -1);
	ctx_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_net_config_has_mac_and_link_up),
	    cmocka_unit_test(test_net_tx_strips_header_and_sends_frame),
	    cmocka_unit_test(test_net_tx_drops_runt_and_oversize_frames),
	    cmocka_unit_test(test_net_rx_merges_buffers),
	    cmocka_unit_test(test_net_rx_waits_for_guest_buffers),
	    cmocka_unit_test(test_net_rx_marks_the_buffers_it_fills_dirty),
	    cmocka_unit_test(test_net_rx_drops_frame_larger_than_buffer),
	    cmocka_unit_test(test_net_tx_finishes_partial_checksum),
	    cmocka_unit_test(test_net_bad_descriptor_fails_device),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
