/* Unit tests of the libslirp backend: hostfwd parsing, a DHCP exchange
 * through the virtio-net model (fake guest RAM, the real libslirp), and
 * saving the stack's state into a fresh instance. */
#include "net/slirp.h"
#include "tests/unit/net_fake.h"
#include "virtio/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/eventfd.h>

#include <cmocka.h>

__attribute__((weak)) void virtio_device__notify(struct virtio_device *vdev, unsigned int q)
{
}

static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

static void test_slirp_parses_hostfwd(void **state)
{
	struct net_slirp_fwd f;
	char a[INET_ADDRSTRLEN];

	assert_int_equal(net_slirp__parse_hostfwd("tcp:127.0.0.1:5555-:8080", &f), 0);
	assert_false(f.udp);
	assert_int_equal(f.host_port, 5555);
	assert_int_equal(f.guest_port, 8080);
	assert_int_equal(f.guest_addr.s_addr, 0);
	inet_ntop(AF_INET, &f.host_addr, a, sizeof(a));
	assert_string_equal(a, "127.0.0.1");
	assert_int_equal(net_slirp__parse_hostfwd("udp::53-10.0.2.15:53", &f), 0);
	assert_true(f.udp);
	assert_int_equal(f.host_addr.s_addr, 0);
	inet_ntop(AF_INET, &f.guest_addr, a, sizeof(a));
	assert_string_equal(a, "10.0.2.15");

	const char *bad[] = {
	    "",		 "tcp:127.0.0.1:5555", "tcp:1.2.3:80-:80", "tcp::0-:80",  "tcp::70000-:80",
	    "tcp::80-:", "tcp::80-:x",	       "sctp::1-:1",	   "tcp::80x-:80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(net_slirp__parse_hostfwd(bad[i], &f), -EINVAL);
}

static uint16_t ip_csum(const uint8_t *p, size_t len)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += p[i] << 8 | p[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return ~s;
}

/* Ethernet + IPv4 + UDP 68->67 + BOOTP request with DHCP message type 1. */
static size_t dhcp_discover(uint8_t *f)
{
	const size_t bootp = 300, ip_len = 20 + 8 + bootp;
	uint8_t *ip = f + 14, *udp = ip + 20, *b = udp + 8;
	uint16_t c;

	memset(f, 0, 14 + ip_len);
	memset(f, 0xff, 6);
	memcpy(f + 6, guest_mac, 6);
	f[12] = 0x08;
	ip[0] = 0x45;
	ip[2] = ip_len >> 8, ip[3] = ip_len & 0xff;
	ip[8] = 64, ip[9] = 17;
	memset(ip + 16, 0xff, 4);
	c = ip_csum(ip, 20);
	ip[10] = c >> 8, ip[11] = c & 0xff;
	udp[1] = 68, udp[3] = 67;
	udp[4] = (8 + bootp) >> 8, udp[5] = (8 + bootp) & 0xff;
	b[0] = 1, b[1] = 1, b[2] = 6;
	b[4] = 0x12, b[5] = 0x34, b[6] = 0x56, b[7] = 0x78; /* xid */
	memcpy(b + 28, guest_mac, 6);
	b[236] = 99, b[237] = 130, b[238] = 83, b[239] = 99; /* magic cookie */
	b[240] = 53, b[241] = 1, b[242] = 1;		     /* DHCPDISCOVER */
	b[243] = 255;
	return 14 + ip_len;
}

struct ctx {
	struct virtio_device *vdev;
	struct fake_guest g;
	int fails;
};

static void test_fail(struct virtio_device *vdev, const char *why)
{
	((struct ctx *)vdev->transport)->fails++;
}

static void ctx_init(struct ctx *c, struct net_backend *be)
{
	memset(c, 0, sizeof(*c));
	c->vdev = virtio_net__new("net0", guest_mac, be);
	assert_non_null(c->vdev);
	c->vdev->transport = c;
	c->vdev->fail = test_fail;
	c->vdev->driver_features = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_NET_F_MRG_RXBUF;
	for (int q = 0; q < 2; q++)
		c->vdev->kick_fd[q] = eventfd(0, EFD_NONBLOCK);
	fake__init(&c->g, c->vdev);
	assert_int_equal(c->vdev->ops->start(c->vdev), 0);
}

static void ctx_exit(struct ctx *c)
{
	int k0 = c->vdev->kick_fd[0], k1 = c->vdev->kick_fd[1];

	c->vdev->ops->destroy(c->vdev);
	close(k0);
	close(k1);
	fake__exit(&c->g);
}

/* The guest sends DHCPDISCOVER and gets an OFFER of 10.0.2.15 from 10.0.2.2. */
static void dhcp_exchange(struct ctx *c)
{
	uint8_t frame[400];
	size_t len = dhcp_discover(frame);
	uint64_t gpa[2] = {fake__alloc(&c->g, 12), fake__alloc(&c->g, len)}, rx;
	uint32_t lens[2] = {12, len}, id, used_len, rxlen = 2048;
	bool w[2] = {false, false}, wr = true;
	uint8_t *p, *b;
	char a[INET_ADDRSTRLEN];

	rx = fake__alloc(&c->g, rxlen);
	fake__post(&c->g, VIRTIO_NET_RXQ, &rx, &rxlen, &wr, 1);
	fake__kick(c->vdev->kick_fd[VIRTIO_NET_RXQ]);
	memset(fake__ptr(&c->g, gpa[0]), 0, 12);
	memcpy(fake__ptr(&c->g, gpa[1]), frame, len);
	fake__post(&c->g, VIRTIO_NET_TXQ, gpa, lens, w, 2);
	fake__kick(c->vdev->kick_fd[VIRTIO_NET_TXQ]);
	assert_true(fake__wait_used(&c->g, VIRTIO_NET_TXQ, 1));
	assert_true(fake__wait_used(&c->g, VIRTIO_NET_RXQ, 1));
	fake__used_elem(&c->g, VIRTIO_NET_RXQ, 0, &id, &used_len);
	assert_true(used_len > 12 + 14 + 20 + 8 + 240);
	p = fake__ptr(&c->g, rx);
	assert_int_equal(p[10], 1); /* num_buffers */
	p += 12;
	assert_int_equal(p[12], 0x08);	 /* IPv4 */
	assert_int_equal(p[14 + 9], 17); /* UDP */
	inet_ntop(AF_INET, p + 14 + 12, a, sizeof(a));
	assert_string_equal(a, "10.0.2.2"); /* from the virtual host */
	b = p + 14 + 20 + 8;
	assert_int_equal(b[0], 2); /* BOOTREPLY */
	assert_memory_equal(b + 4, ((uint8_t[]){0x12, 0x34, 0x56, 0x78}), 4);
	inet_ntop(AF_INET, b + 16, a, sizeof(a));
	assert_string_equal(a, "10.0.2.15"); /* yiaddr */
	assert_int_equal(b[240], 53);
	assert_int_equal(b[242], 2); /* DHCPOFFER */
}

static void test_slirp_offers_dhcp_lease_through_model(void **state)
{
	char err[160];
	struct net_backend *be = net_slirp__new("net0", NULL, 0, err, sizeof(err));
	struct ctx c;
	struct virtio_net_stats st;

	assert_non_null(be);
	ctx_init(&c, be);
	dhcp_exchange(&c);
	virtio_net__stats(c.vdev, &st);
	assert_int_equal(st.tx_packets, 1);
	assert_int_equal(st.rx_packets, 1);
	assert_int_equal(c.fails, 0);
	ctx_exit(&c);
}

static void test_slirp_state_saves_and_loads_into_fresh_instance(void **state)
{
	char err[160];
	struct net_backend *be = net_slirp__new("net0", NULL, 0, err, sizeof(err)), *fresh;
	struct ctx c;
	uint8_t *buf = NULL, *buf2 = NULL;
	size_t len = 0, len2 = 0;

	assert_non_null(be);
	ctx_init(&c, be);
	dhcp_exchange(&c);
	/* Through the model: it parks its thread around the backend. */
	assert_int_equal(c.vdev->ops->save(c.vdev, &buf, &len), 0);
	assert_true(len > 4);
	ctx_exit(&c);

	fresh = net_slirp__new("net1", NULL, 0, err, sizeof(err));
	assert_non_null(fresh);
	assert_int_equal(fresh->ops->load(fresh, buf, len), 0);
	assert_int_equal(fresh->ops->save(fresh, &buf2, &len2), 0);
	assert_int_equal(len2, len);
	assert_memory_equal(buf2, buf, len);
	/* Garbage is refused, not trusted. */
	assert_int_not_equal(fresh->ops->load(fresh, buf, 3), 0);
	buf[0] = 0xff, buf[3] = 0x7f; /* a version from the future */
	assert_int_not_equal(fresh->ops->load(fresh, buf, len), 0);
	net_backend__free(fresh);
	free(buf);
	free(buf2);
}

static void test_slirp_hostfwd_port_in_use_is_an_error(void **state)
{
	struct net_slirp_fwd f;
	char err[160];
	struct net_backend *a, *b;

	assert_int_equal(net_slirp__parse_hostfwd("tcp:127.0.0.1:47123-:80", &f), 0);
	a = net_slirp__new("net0", &f, 1, err, sizeof(err));
	assert_non_null(a);
	b = net_slirp__new("net1", &f, 1, err, sizeof(err));
	assert_null(b);
	assert_non_null(strstr(err, "127.0.0.1:47123"));
	net_backend__free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_slirp_parses_hostfwd),
	    cmocka_unit_test(test_slirp_offers_dhcp_lease_through_model),
	    cmocka_unit_test(test_slirp_state_saves_and_loads_into_fresh_instance),
	    cmocka_unit_test(test_slirp_hostfwd_port_in_use_is_an_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
