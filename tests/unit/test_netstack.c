/* tests/unit/test_netstack.c — a paravisor NIC's netstack (`paravisor
 * --netstack`): the table of TCP connections it follows (frames built
 * here), and one real netstack process draining into another while a host
 * client's TCP connection goes on.  The guest is a real TCP/IP stack: the
 * kernel's, in a network namespace of its own behind a tap, whose frames
 * the test carries to and from the netstack's socket as a paravisor would.
 * No KVM is needed; the draining test needs CAP_NET_ADMIN (skipped
 * without). */
#include "net/socket.h"
#include "paravisor/netstack_flows.h"
#include "tests/unit/pv_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* --- the connection table --- */

/* An Ethernet frame with IPv4 and TCP headers, src -> dst. */
static size_t tcp_frame(uint8_t *f, const char *src, uint16_t sport, const char *dst,
			uint16_t dport, uint8_t flags)
{
	uint8_t *ip = f + 14, *tcp = ip + 20;

	memset(f, 0, 14 + 20 + 20);
	f[12] = 0x08; /* IPv4 */
	ip[0] = 0x45;
	ip[9] = 6;
	inet_pton(AF_INET, src, ip + 12);
	inet_pton(AF_INET, dst, ip + 16);
	tcp[0] = (uint8_t)(sport >> 8);
	tcp[1] = (uint8_t)sport;
	tcp[2] = (uint8_t)(dport >> 8);
	tcp[3] = (uint8_t)dport;
	tcp[12] = 5 << 4;
	tcp[13] = flags;
	return 14 + 20 + 20;
}

#define SYN 0x02
#define ACK 0x10
#define FIN 0x01
#define RST 0x04

/* Both directions of one connection name the same key, the guest's view. */
static void test_flow_keys_are_the_guests_view_both_ways(void **state)
{
	struct ns_flow_key a, b;
	uint8_t f[64];
	size_t n;

	(void)state;
	n = tcp_frame(f, "10.0.2.15", 40000, "10.0.2.2", 80, SYN);
	assert_int_equal(ns_flow__parse(f, n, false, &a), NS_FLOW_SYN);
	n = tcp_frame(f, "10.0.2.2", 80, "10.0.2.15", 40000, SYN | ACK);
	assert_int_equal(ns_flow__parse(f, n, true, &b), NS_FLOW_SYN);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(ntohs(a.gport), 40000);
	assert_int_equal(ntohs(a.rport), 80);
	n = tcp_frame(f, "10.0.2.15", 40000, "10.0.2.2", 80, ACK);
	assert_int_equal(ns_flow__parse(f, n, false, &a), NS_FLOW_OTHER);
	n = tcp_frame(f, "10.0.2.15", 40000, "10.0.2.2", 80, FIN | ACK);
	assert_int_equal(ns_flow__parse(f, n, false, &a), NS_FLOW_FIN);
	n = tcp_frame(f, "10.0.2.15", 40000, "10.0.2.2", 80, RST | ACK);
	assert_int_equal(ns_flow__parse(f, n, false, &a), NS_FLOW_RST);
}

/* What is not a whole first TCP segment over IPv4 names no connection. */
static void test_flow_parse_ignores_other_frames(void **state)
{
	struct ns_flow_key k;
	uint8_t f[64];
	size_t n;

	(void)state;
	n = tcp_frame(f, "10.0.2.15", 1, "10.0.2.2", 2, SYN);
	assert_int_equal(ns_flow__parse(f, n - 1, false, &k), NS_FLOW_NONE); /* short */
	assert_int_equal(ns_flow__parse(f, 10, false, &k), NS_FLOW_NONE);
	f[14 + 9] = 17; /* UDP */
	assert_int_equal(ns_flow__parse(f, n, false, &k), NS_FLOW_NONE);
	n = tcp_frame(f, "10.0.2.15", 1, "10.0.2.2", 2, SYN);
	f[14 + 6] = 0x00;
	f[14 + 7] = 0x10; /* a later fragment */
	assert_int_equal(ns_flow__parse(f, n, false, &k), NS_FLOW_NONE);
	n = tcp_frame(f, "10.0.2.15", 1, "10.0.2.2", 2, SYN);
	f[12] = 0x86;
	f[13] = 0xdd; /* IPv6 */
	assert_int_equal(ns_flow__parse(f, n, false, &k), NS_FLOW_NONE);
	n = tcp_frame(f, "10.0.2.15", 1, "10.0.2.2", 2, SYN);
	f[14] = 0x44; /* a header shorter than 20 bytes */
	assert_int_equal(ns_flow__parse(f, n, false, &k), NS_FLOW_NONE);
}

static int count_one(const struct ns_flow_key *k, void *opaque)
{
	(void)k;
	(*(unsigned int *)opaque)++;
	return 0;
}

/* A SYN adds a connection, data changes nothing, it goes after a FIN from
 * each side or an RST from either. */
static void test_flows_follow_open_and_close(void **state)
{
	struct ns_flows t = {0};
	struct ns_flow_key k;
	unsigned int seen = 0;
	uint8_t f[64];
	size_t n;

	(void)state;
	n = tcp_frame(f, "10.0.2.15", 5000, "1.2.3.4", 443, SYN);
	assert_int_equal(ns_flows__track(&t, f, n, false, &k), 1);
	assert_int_equal(ns_flows__track(&t, f, n, false, &k), 0); /* a resent SYN */
	n = tcp_frame(f, "1.2.3.4", 443, "10.0.2.15", 5000, SYN | ACK);
	assert_int_equal(ns_flows__track(&t, f, n, true, &k), 0);
	n = tcp_frame(f, "10.0.2.15", 5000, "1.2.3.4", 443, ACK);
	assert_int_equal(ns_flows__track(&t, f, n, false, &k), 0);
	assert_true(ns_flows__has(&t, &k));
	n = tcp_frame(f, "10.0.2.15", 5000, "1.2.3.4", 443, FIN | ACK);
	assert_int_equal(ns_flows__track(&t, f, n, false, &k), 0);
	assert_int_equal(ns_flows__track(&t, f, n, false, &k), 0); /* resent */
	assert_int_equal(t.count, 1);
	n = tcp_frame(f, "1.2.3.4", 443, "10.0.2.15", 5000, FIN | ACK);
	assert_int_equal(ns_flows__track(&t, f, n, true, &k), -1);
	assert_false(ns_flows__has(&t, &k));
	assert_int_equal(t.count, 0);

	/* An RST from the remote side, and many connections at once. */
	for (uint16_t p = 1; p <= 3000; p++) {
		n = tcp_frame(f, "10.0.2.15", p, "10.0.2.2", 22, SYN);
		assert_int_equal(ns_flows__track(&t, f, n, false, &k), 1);
	}
	assert_int_equal(t.count, 3000);
	n = tcp_frame(f, "10.0.2.2", 22, "10.0.2.15", 77, RST);
	assert_int_equal(ns_flows__track(&t, f, n, true, &k), -1);
	assert_int_equal(ns_flows__track(&t, f, n, true, &k), 0);
	ns_flows__each(&t, count_one, &seen);
	assert_int_equal(seen, 2999);
	assert_int_equal(ns_flows__del(&t, &k), 0);
	ns_flows__clear(&t);
	assert_int_equal(t.count, 0);
	n = tcp_frame(f, "10.0.2.15", 9, "10.0.2.2", 22, ACK);
	assert_int_equal(ns_flows__track(&t, f, n, false, &k), 0); /* no SYN: not added */
	assert_int_equal(t.count, 0);
}

/* --- draining: two real netstacks, the kernel as the guest --- */

#define GUEST_PORT 8080

/* The guest: a network namespace with a tap at 10.0.2.15 whose default
 * route is slirp's 10.0.2.2, and an echo server on GUEST_PORT.  Its tap's
 * fd comes back to the test, which carries its frames. */
struct guest {
	pid_t pid;
	int tap;
};

static int if_ioctl(int s, unsigned long req, const char *name, struct ifreq *ifr)
{
	snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", name);
	return ioctl(s, req, ifr);
}

static int if_up(int s, const char *name)
{
	struct ifreq ifr = {0};

	if (if_ioctl(s, SIOCGIFFLAGS, name, &ifr))
		return -1;
	ifr.ifr_flags |= IFF_UP;
	return if_ioctl(s, SIOCSIFFLAGS, name, &ifr);
}

static int if_addr(int s, const char *name, unsigned long req, const char *addr)
{
	struct ifreq ifr = {0};
	struct sockaddr_in *a = (struct sockaddr_in *)&ifr.ifr_addr;

	a->sin_family = AF_INET;
	inet_pton(AF_INET, addr, &a->sin_addr);
	return if_ioctl(s, req, name, &ifr);
}

static int guest_route(int s)
{
	struct rtentry rt = {0};
	struct sockaddr_in *gw = (struct sockaddr_in *)&rt.rt_gateway;
	struct sockaddr_in *dst = (struct sockaddr_in *)&rt.rt_dst;
	struct sockaddr_in *mask = (struct sockaddr_in *)&rt.rt_genmask;

	gw->sin_family = dst->sin_family = mask->sin_family = AF_INET;
	inet_pton(AF_INET, "10.0.2.2", &gw->sin_addr);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	return ioctl(s, SIOCADDRT, &rt);
}

static void guest_echo(int c)
{
	char buf[4096];
	ssize_t n;

	while ((n = read(c, buf, sizeof(buf))) > 0)
		if (write(c, buf, (size_t)n) != n)
			break;
	_exit(0);
}

/* In the child: 0 after sending the tap and a byte once it listens. */
static int guest_main(int ctl)
{
	struct ifreq ifr = {0};
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(GUEST_PORT)};
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = "T", .iov_len = 1};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	int tap, s, l, one = 1;

	/* Never outlive the test, even one that failed half-way. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (unshare(CLONE_NEWNET))
		return 10;
	tap = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "g0");
	if (tap < 0 || ioctl(tap, TUNSETIFF, &ifr))
		return 11;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (if_up(s, "lo") || if_addr(s, "g0", SIOCSIFADDR, "10.0.2.15") ||
	    if_addr(s, "g0", SIOCSIFNETMASK, "255.255.255.0") || if_up(s, "g0") || guest_route(s))
		return 12;
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 8))
		return 13;
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &tap, sizeof(int));
	if (sendmsg(ctl, &m, 0) != 1)
		return 14;
	close(tap);
	close(ctl);
	/* A datagram to the gateway: the guest asks for its MAC, so slirp
	 * learns the guest's. */
	a.sin_port = htons(9);
	inet_pton(AF_INET, "10.0.2.2", &a.sin_addr);
	sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof(a));
	signal(SIGCHLD, SIG_IGN);
	for (;;) {
		int conn = accept(l, NULL, NULL);

		if (conn < 0)
			continue;
		if (!fork()) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			guest_echo(conn);
		}
		close(conn);
	}
}

/* false: no namespaces or taps here (not root). */
static bool guest_start(struct guest *g)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	char b;
	struct iovec iov = {.iov_base = &b, .iov_len = 1};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *c;
	int sv[2], status;

	pair(sv, SOCK_STREAM);
	g->pid = fork();
	assert_true(g->pid >= 0);
	if (!g->pid) {
		close(sv[0]);
		_exit(guest_main(sv[1]));
	}
	close(sv[1]);
	if (recvmsg(sv[0], &m, 0) != 1) {
		close(sv[0]);
		waitpid(g->pid, &status, 0);
		print_message("# no guest namespace with a tap here (exit %d)\n",
			      WEXITSTATUS(status));
		return false;
	}
	close(sv[0]);
	c = CMSG_FIRSTHDR(&m);
	if (!c) {
		fail_msg("the tap's descriptor did not come");
		return false;
	}
	memcpy(&g->tap, CMSG_DATA(c), sizeof(int));
	return true;
}

static void guest_stop(struct guest *g)
{
	if (g->pid <= 0)
		return;
	kill(g->pid, SIGKILL);
	waitpid(g->pid, NULL, 0);
	close(g->tap);
	g->pid = 0;
}

/* The paravisor's part: the guest's frames to the netstack's socket and
 * back.  The socket can change (servicing); the old one is closed then,
 * which is what the old paravisor exiting does. */
struct relay {
	pthread_t thread;
	pthread_mutex_t lock;
	int tap, nic, next; /* next: -1, or the socket to change to */
	bool stop, running;
	bool pause, paused; /* pause: leave the NIC's frames unread */
};

/* The drain test's parts, global so that its teardown ends what a failure
 * left running. */
static struct guest guest;
static struct relay relay = {.next = -1};
static struct pv ns_a, ns_b;

static void *relay_run(void *arg)
{
	struct relay *r = arg;
	static uint8_t buf[70000];

	for (;;) {
		struct pollfd p[2];
		ssize_t n;

		pthread_mutex_lock(&r->lock);
		if (r->next >= 0) {
			close(r->nic);
			r->nic = r->next;
			r->next = -1;
		}
		if (r->stop) {
			pthread_mutex_unlock(&r->lock);
			return NULL;
		}
		r->paused = r->pause;
		pthread_mutex_unlock(&r->lock);
		if (r->paused) {
			usleep(5000);
			continue;
		}
		p[0] = (struct pollfd){.fd = r->tap, .events = POLLIN};
		p[1] = (struct pollfd){.fd = r->nic, .events = POLLIN};
		if (poll(p, 2, 50) <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			n = read(r->tap, buf, sizeof(buf));
			if (n > 0)
				send(r->nic, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
		}
		if (p[1].revents & POLLIN) {
			n = recv(r->nic, buf, sizeof(buf), MSG_DONTWAIT);
			if (n > 0 && write(r->tap, buf, (size_t)n) < 0) {
			}
		}
		if (p[1].revents & POLLHUP)
			usleep(10000);
	}
}

static void relay_stop(struct relay *r)
{
	if (!r->running)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	close(r->nic);
	r->running = false;
}

static void relay_pause(struct relay *r)
{
	pthread_mutex_lock(&r->lock);
	r->pause = true;
	pthread_mutex_unlock(&r->lock);
	for (;;) {
		bool paused;

		pthread_mutex_lock(&r->lock);
		paused = r->paused;
		pthread_mutex_unlock(&r->lock);
		if (paused)
			return;
		usleep(5000);
	}
}

/* Moves the relay to another NIC socket (closing the one it had) and lets
 * it run again if paused. */
static void relay_switch(struct relay *r, int nic)
{
	pthread_mutex_lock(&r->lock);
	r->next = nic;
	r->pause = false;
	pthread_mutex_unlock(&r->lock);
	for (;;) {
		bool taken;

		pthread_mutex_lock(&r->lock);
		taken = r->next < 0;
		pthread_mutex_unlock(&r->lock);
		if (taken)
			return;
		usleep(5000);
	}
}

/* A netstack for NIC n0 forwarding host port to the guest; frames[0] and
 * ctl[0] are the test's ends; link (-1: none) is its --drain-fd. */
static void netstack_start(struct pv *p, int port, int frames[2], int ctl[2], int link)
{
	char net[96], ready[64];
	const char *args[] = {"--netstack", "--fd",  "3", "--control-fd",
			      "4",	    "--net", net, link >= 0 ? "--drain-fd" : NULL,
			      "5",	    NULL};
	int fds[3];

	snprintf(net, sizeof(net), "slirp,hostfwd=tcp:127.0.0.1:%d-:%d,id=n0", port, GUEST_PORT);
	pair(frames, SOCK_SEQPACKET);
	pair(ctl, SOCK_SEQPACKET);
	fds[0] = frames[1];
	fds[1] = ctl[1];
	fds[2] = link;
	pv_start(p, fds, link >= 0 ? 3 : 2, args);
	close(frames[1]);
	close(ctl[1]);
	assert_int_equal(recv(frames[0], ready, sizeof(ready), 0), strlen(NET_SOCKET_READY));
}

/* A host client of the hostfwd port: the socket, or -errno. */
static int client_connect(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), err;

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (!connect(s, (struct sockaddr *)&a, sizeof(a)))
		return s;
	err = -errno;
	close(s);
	return err;
}

/* The netstack put a frame for the guest into the NIC socket s (left
 * unread), within 10 s. */
static void frame_waits(int s)
{
	struct pollfd p = {.fd = s, .events = POLLIN};

	if (poll(&p, 1, 10000) != 1)
		fail_msg("no frame for the guest came within 10 s");
}

static void client_send(int s, const char *line)
{
	assert_int_equal(send(s, line, strlen(line), MSG_NOSIGNAL), (ssize_t)strlen(line));
}

/* line comes back from the guest's echo server within 20 s. */
static void client_expect(int s, const char *line)
{
	size_t len = strlen(line), got = 0;
	char buf[256];

	while (got < len) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 20000) != 1)
			fail_msg("\"%s\" did not come back from the guest within 20 s", line);
		n = recv(s, buf + got, sizeof(buf) - got, 0);
		if (n <= 0)
			fail_msg("the connection ended before \"%s\" came back", line);
		got += (size_t)n;
	}
	assert_memory_equal(buf, line, len);
}

static void client_echo(int s, const char *line)
{
	client_send(s, line);
	client_expect(s, line);
}

/*
 * A netstack drains into a newer one: the old stops listening on the
 * hostfwd port and hands over; the new one starts on that port with the
 * old one's libslirp state, linked to it (--drain-fd), and the NIC moves to
 * it (the old one's NIC end closes, as when the old paravisor exits, with
 * frames for the guest still unread in it: the paravisor had stopped
 * reading).  A host client's connection opened before goes on (its frames
 * through the
 * new stack to the old one), a new connection is the new stack's, and the
 * old stack exits once the old connection has closed; the new one serves
 * on.
 */
static void test_netstack_drains_into_a_newer_one(void **state)
{
	static uint8_t st[NET_CTL_STATE_MAX];
	int port = 20000 + (int)(getpid() % 20000);
	int fa[2], ca[2], fb[2], cb[2], lk[2], c1, c2, err;
	struct relay *r = &relay;
	struct pv *a = &ns_a, *b = &ns_b;
	size_t len;

	(void)state;
	if (!guest_start(&guest))
		skip();
	netstack_start(a, port, fa, ca, -1);
	r->tap = guest.tap;
	r->nic = fa[0];
	r->next = -1;
	r->stop = false;
	pthread_mutex_init(&r->lock, NULL);
	assert_int_equal(pthread_create(&r->thread, NULL, relay_run, r), 0);
	r->running = true;

	c1 = client_connect(port);
	assert_true(c1 >= 0);
	client_echo(c1, "one: before the netstack is replaced\n");

	/* A hand-over that fails after the new netstack started (its
	 * paravisor did not take over): the new one goes, the old one takes
	 * its port back, the connection goes on. */
	pair(lk, SOCK_SEQPACKET);
	assert_int_equal(ns_ask(ca[0], NET_CTL_DRAIN, NULL, 0, lk[1], NULL, NULL), 0);
	close(lk[1]);
	netstack_start(b, port, fb, cb, lk[0]);
	close(lk[0]);
	close(fb[0]);
	assert_int_equal(pv_exit(b, 20), 0);
	close(cb[0]);
	assert_int_equal(ns_ask(ca[0], NET_CTL_UNDRAIN, NULL, 0, -1, NULL, NULL), 0);
	client_echo(c1, "one and a half: after a hand-over that did not happen\n");

	/* The hand-over, in vmm's order. */
	assert_int_equal(ns_ask(ca[0], NET_CTL_SAVE, NULL, 0, -1, st, &len), 0);
	pair(lk, SOCK_SEQPACKET);
	assert_int_equal(ns_ask(ca[0], NET_CTL_DRAIN, NULL, 0, lk[1], NULL, NULL), 0);
	close(lk[1]);
	err = client_connect(port);
	assert_int_equal(err, -ECONNREFUSED); /* the old one let go of the port */
	netstack_start(b, port, fb, cb, lk[0]);
	close(lk[0]);
	assert_int_equal(ns_ask(cb[0], NET_CTL_LOAD, st, len, -1, NULL, NULL), 0);
	relay_pause(r);
	client_send(c1, "two: through the new netstack to the old one\n");
	frame_waits(fa[0]);
	relay_switch(r, fb[0]);
	pv_log_wait(a, "the NIC end closed; frames for the guest go through the next netstack");
	pv_log_has(a, "draining into the next netstack: 1 connection(s) stay here");

	client_expect(c1, "two: through the new netstack to the old one\n");
	c2 = client_connect(port);
	assert_true(c2 >= 0);
	client_echo(c2, "three: a new connection, the new netstack's\n");
	client_echo(c1, "four: the old one still\n");
	assert_true(pv_alive(a));

	/* The old connection ends: so does the old netstack. */
	close(c1);
	assert_int_equal(pv_exit(a, 20), 0);
	pv_log_has(a, "drained: its last connection closed; exiting");
	pv_log_wait(b, "the older netstack is done");
	client_echo(c2, "five: after the old netstack exited\n");
	close(c2);
	assert_true(pv_alive(b));

	relay_stop(r); /* closes the NIC's end: the new netstack exits */
	assert_int_equal(pv_exit(b, 20), 0);
	close(ca[0]);
	close(cb[0]);
	guest_stop(&guest);
}

static int drain_teardown(void **state)
{
	struct pv *ps[] = {&ns_a, &ns_b};

	(void)state;
	relay_stop(&relay);
	guest_stop(&guest);
	for (unsigned int i = 0; i < 2; i++)
		if (ps[i]->pid > 0 && pv_alive(ps[i])) {
			kill(ps[i]->pid, SIGKILL);
			waitpid(ps[i]->pid, NULL, 0);
			ps[i]->reaped = true;
		}
	return 0;
}

/* A hand-over that does not happen (the new netstack did not start): the
 * old one takes its port back and serves on; it exits cleanly when its NIC
 * end closes with frames for the guest unread in it. */
static void test_netstack_undrain_listens_again(void **state)
{
	int port = 20000 + (int)((getpid() + 7) % 20000);
	int fa[2], ca[2], lk[2], c;
	struct pv a;

	(void)state;
	netstack_start(&a, port, fa, ca, -1);
	c = client_connect(port);
	assert_true(c >= 0);
	close(c);
	pair(lk, SOCK_SEQPACKET);
	assert_int_equal(ns_ask(ca[0], NET_CTL_DRAIN, NULL, 0, lk[1], NULL, NULL), 0);
	close(lk[1]);
	assert_int_equal(client_connect(port), -ECONNREFUSED);
	/* A second hand-over while one is pending is refused. */
	assert_int_equal(ns_ask(ca[0], NET_CTL_DRAIN, NULL, 0, fa[0], NULL, NULL), -EALREADY);
	close(lk[0]);
	assert_int_equal(ns_ask(ca[0], NET_CTL_UNDRAIN, NULL, 0, -1, NULL, NULL), 0);
	c = client_connect(port);
	assert_true(c >= 0);
	close(c);
	/* DRAIN without a descriptor is refused. */
	assert_int_equal(ns_ask(ca[0], NET_CTL_DRAIN, NULL, 0, -1, NULL, NULL), -EBADF);
	pv_log_has(&a, "not draining after all; the hostfwd ports are here again");
	assert_true(pv_alive(&a));
	frame_waits(fa[0]); /* slirp reaching out to the guest for c */
	close(fa[0]);
	assert_int_equal(pv_exit(&a, 20), 0);
	close(ca[0]);
}

static int setup(void **state)
{
	(void)state;
	snprintf(pv_tmpdir, sizeof(pv_tmpdir), "%s/test_netstack.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(pv_tmpdir))
		return -1;
	chmod(pv_tmpdir, 0755);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pv_tmpdir);
	return system(cmd) ? -1 : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_flow_keys_are_the_guests_view_both_ways),
	    cmocka_unit_test(test_flow_parse_ignores_other_frames),
	    cmocka_unit_test(test_flows_follow_open_and_close),
	    cmocka_unit_test_teardown(test_netstack_drains_into_a_newer_one, drain_teardown),
	    cmocka_unit_test(test_netstack_undrain_listens_again),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
