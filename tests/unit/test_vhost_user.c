/* tests/unit/test_vhost_user.c — the paravisor's vhost-user back-end driven
 * like a front-end would: messages over a real socketpair, guest RAM in a
 * real memfd (mapped at an offset and named by a front-end address that is
 * not ours), kicks and interrupts through real eventfds, and a virtio-blk
 * read served by the io_uring backend from a temporary image. */
#include "paravisor/vhost_user.h"
#include "paravisor/vu_blk.h"
#include "virtio/vhost_user_msg.h"
#include "virtio/vhost_user_state.h"

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#define RAM_SIZE   (1u << 20)
#define RAM_OFFSET 0x1000u	     /* mmap_offset of the region in the memfd */
#define FE_UVA	   0x7f1200000000ull /* the front-end's address of guest RAM */
#define QSIZE	   16
#define DESC_GPA   0x0000u
#define AVAIL_GPA  0x1000u
#define USED_GPA   0x2000u
#define BUF_GPA	   0x3000u
#define BASE	   5 /* SET_VRING_BASE: the ring resumes at this index */

#define F_NEXT	  1
#define F_WRITE	  2
#define ACK	  (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK)
#define PROTO_ALL                                                                                  \
	(ACK | 1ULL << VHOST_USER_PROTOCOL_F_MQ | 1ULL << VHOST_USER_PROTOCOL_F_CONFIG |           \
	 1ULL << VHOST_USER_PROTOCOL_F_LOG_SHMFD | 1ULL << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD)
#define LOG_ALL (1ULL << VHOST_F_LOG_ALL)

static struct {
	char img[256];
	int sv[2]; /* [0]: the front-end, [1]: the back-end */
	int memfd;
	uint8_t *ram; /* the test's view of guest RAM (gpa 0) */
	struct virtio_device *vdev;
	struct vhost_user *vu;
	int kick, call;
} g;

/* --- the front-end's side --- */

static void send_msg(uint32_t req, uint32_t flags, const void *payload, uint32_t size,
		     const int *fds, unsigned int nr_fds)
{
	struct vhost_user_msg m;

	memset(&m, 0, sizeof(m));
	m.hdr.request = req;
	m.hdr.flags = VHOST_USER_VERSION | flags;
	m.hdr.size = size;
	if (size)
		memcpy(&m.p, payload, size);
	assert_int_equal(vhost_user_msg__send(g.sv[0], &m, fds, nr_fds), 0);
}

/* Sends one message and lets the back-end handle it; returns serve's result. */
static int call_msg(uint32_t req, uint32_t flags, const void *payload, uint32_t size,
		    const int *fds, unsigned int nr_fds)
{
	send_msg(req, flags, payload, size, fds, nr_fds);
	return vhost_user__serve(g.vu, g.sv[1]);
}

/* Reads a reply (the back-end's recv refuses REPLY, so by hand). */
static uint32_t read_reply(uint32_t req, void *payload, uint32_t max)
{
	struct vhost_user_hdr h;

	assert_int_equal(recv(g.sv[0], &h, sizeof(h), MSG_WAITALL), (ssize_t)sizeof(h));
	assert_int_equal(h.request, req);
	assert_int_equal(h.flags, VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY);
	assert_true(h.size <= max);
	if (h.size)
		assert_int_equal(recv(g.sv[0], payload, h.size, MSG_WAITALL), (ssize_t)h.size);
	return h.size;
}

static uint64_t get_u64(uint32_t req)
{
	uint64_t v = 0;

	assert_int_equal(call_msg(req, 0, NULL, 0, NULL, 0), 0);
	assert_int_equal(read_reply(req, &v, sizeof(v)), sizeof(v));
	return v;
}

static void set_u64(uint32_t req, uint64_t v)
{
	assert_int_equal(call_msg(req, 0, &v, sizeof(v), NULL, 0), 0);
}

/* A REPLY_ACK request: the back-end's answer (0 ok, else failed). */
static uint64_t acked(uint32_t req, const void *payload, uint32_t size, const int *fds,
		      unsigned int nr_fds)
{
	uint64_t v = 99;

	assert_int_equal(call_msg(req, VHOST_USER_FLAG_NEED_REPLY, payload, size, fds, nr_fds), 0);
	assert_int_equal(read_reply(req, &v, sizeof(v)), sizeof(v));
	return v;
}

static bool nothing_to_read(void)
{
	struct pollfd p = {g.sv[0], POLLIN, 0};

	return poll(&p, 1, 0) == 0;
}

static void negotiate(void)
{
	set_u64(VHOST_USER_SET_PROTOCOL_FEATURES, PROTO_ALL);
	/* Everything offered but the dirty log, which only a migration wants. */
	assert_int_equal(acked(VHOST_USER_SET_FEATURES,
			       &(uint64_t){get_u64(VHOST_USER_GET_FEATURES) & ~LOG_ALL}, 8, NULL,
			       0),
			 0);
}

static void mem_table(void)
{
	struct vhost_user_mem_table t = {.nregions = 1};
	int fd = dup(g.memfd);

	t.regions[0] = (struct vhost_user_mem_region){0, RAM_SIZE, FE_UVA, RAM_OFFSET};
	assert_int_equal(acked(VHOST_USER_SET_MEM_TABLE, &t, 8 + sizeof(t.regions[0]), &fd, 1), 0);
	close(fd); /* the back-end got its own copy */
}

static uint64_t ring_fd(unsigned int q, int fd, uint32_t req)
{
	uint64_t v = q;

	return acked(req, &v, sizeof(v), &fd, 1);
}

/* Ring 0 set up, resuming at BASE, not enabled yet. */
static void ring_set(void)
{
	struct vhost_user_vring_state num = {0, QSIZE}, base = {0, BASE};
	struct vhost_user_vring_addr addr = {.index = 0,
					     .desc_user_addr = FE_UVA + DESC_GPA,
					     .used_user_addr = FE_UVA + USED_GPA,
					     .avail_user_addr = FE_UVA + AVAIL_GPA};

	/* The driver's view before the stop that produced BASE. */
	*(uint16_t *)(g.ram + AVAIL_GPA + 2) = BASE;
	*(uint16_t *)(g.ram + USED_GPA + 2) = BASE;
	assert_int_equal(acked(VHOST_USER_SET_VRING_NUM, &num, sizeof(num), NULL, 0), 0);
	assert_int_equal(acked(VHOST_USER_SET_VRING_BASE, &base, sizeof(base), NULL, 0), 0);
	assert_int_equal(acked(VHOST_USER_SET_VRING_ADDR, &addr, sizeof(addr), NULL, 0), 0);
	assert_int_equal(ring_fd(0, g.call, VHOST_USER_SET_VRING_CALL), 0);
	assert_int_equal(ring_fd(0, g.kick, VHOST_USER_SET_VRING_KICK), 0);
}

static uint64_t ring_enable(void)
{
	struct vhost_user_vring_state en = {0, 1};

	return acked(VHOST_USER_SET_VRING_ENABLE, &en, sizeof(en), NULL, 0);
}

/* Ring 0 set up and enabled, resuming at BASE. */
static void ring_up(void)
{
	ring_set();
	assert_int_equal(ring_enable(), 0);
}

static void desc(uint16_t i, uint64_t gpa, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = g.ram + DESC_GPA + 16u * i;

	memcpy(d, &gpa, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

/* --- fixtures --- */

static int setup(void **state)
{
	uint8_t sector[512];
	char opt[300];
	int fd;

	memset(&g, 0, sizeof(g));
	snprintf(g.img, sizeof(g.img), "%s/test_vhost_user.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : ".");
	fd = mkstemp(g.img);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	for (int i = 0; i < 512; i++)
		sector[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(pwrite(fd, sector, sizeof(sector), 512), 512);
	close(fd);
	snprintf(opt, sizeof(opt), "path=%s", g.img);
	g.vdev = vu_blk__create(opt, NULL);
	assert_non_null(g.vdev);
	g.vu = vhost_user__create(g.vdev);
	assert_non_null(g.vu);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g.sv), 0);
	g.memfd = memfd_create("guest-ram", MFD_CLOEXEC);
	assert_true(g.memfd >= 0);
	assert_int_equal(ftruncate(g.memfd, RAM_OFFSET + RAM_SIZE), 0);
	g.ram = mmap(NULL, RAM_OFFSET + RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g.memfd, 0);
	assert_true(g.ram != MAP_FAILED);
	g.ram += RAM_OFFSET;
	g.kick = eventfd(0, EFD_CLOEXEC);
	g.call = eventfd(0, EFD_CLOEXEC);
	assert_true(g.kick >= 0 && g.call >= 0);
	return 0;
}

static int teardown(void **state)
{
	vhost_user__destroy(g.vu);
	g.vdev->ops->destroy(g.vdev);
	close(g.sv[0]);
	close(g.sv[1]);
	munmap(g.ram - RAM_OFFSET, RAM_OFFSET + RAM_SIZE);
	close(g.memfd);
	close(g.kick);
	close(g.call);
	unlink(g.img);
	return 0;
}

/* --- tests --- */

static void test_vhost_user_negotiates_features(void **state)
{
	uint64_t f = get_u64(VHOST_USER_GET_FEATURES);
	struct vhost_user_config c = {.offset = 0, .size = 8};
	uint64_t capacity;

	assert_true(f & (1ULL << VIRTIO_F_VERSION_1));
	assert_true(f & (1ULL << VIRTIO_F_EVENT_IDX));
	assert_true(f & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES));
	assert_true(f & (1ULL << 9)); /* VIRTIO_BLK_F_FLUSH */
	assert_true(f & LOG_ALL);
	assert_int_equal(get_u64(VHOST_USER_GET_PROTOCOL_FEATURES), PROTO_ALL);
	set_u64(VHOST_USER_SET_PROTOCOL_FEATURES, PROTO_ALL);
	assert_int_equal(call_msg(VHOST_USER_SET_OWNER, 0, NULL, 0, NULL, 0), 0);
	assert_int_equal(get_u64(VHOST_USER_GET_QUEUE_NUM), 1);
	/* A bit that was not offered is refused, and the back-end carries on. */
	assert_int_not_equal(
	    acked(VHOST_USER_SET_FEATURES, &(uint64_t){f | 1ULL << 63}, 8, NULL, 0), 0);
	/* So is the dirty log before there is one to write to. */
	assert_int_not_equal(acked(VHOST_USER_SET_FEATURES, &f, 8, NULL, 0), 0);
	f &= ~LOG_ALL;
	assert_int_equal(acked(VHOST_USER_SET_FEATURES, &f, 8, NULL, 0), 0);
	/* Config space: capacity in 512-byte sectors of the 1 MiB image. */
	assert_int_equal(call_msg(VHOST_USER_GET_CONFIG, 0, &c, 12 + 8, NULL, 0), 0);
	assert_int_equal(read_reply(VHOST_USER_GET_CONFIG, &c, sizeof(c)), 12 + 8);
	memcpy(&capacity, c.payload, 8);
	assert_int_equal(capacity, 2048);
	assert_true(nothing_to_read());
}

static void test_vhost_user_serves_a_read_and_returns_the_base(void **state)
{
	struct vhost_user_vring_state st = {0, 0};
	uint8_t want[512];
	uint32_t hdr[4] = {0 /* VIRTIO_BLK_T_IN */, 0, 1 /* sector */, 0};
	struct pollfd p = {g.call, POLLIN, 0};
	uint64_t v;

	negotiate();
	mem_table();
	ring_up();
	/* One read of sector 1: header, 512 bytes of data, status. */
	memcpy(g.ram + BUF_GPA, hdr, 16);
	desc(0, BUF_GPA, 16, F_NEXT, 1);
	desc(1, BUF_GPA + 0x100, 512, F_NEXT | F_WRITE, 2);
	desc(2, BUF_GPA + 0x400, 1, F_WRITE, 0);
	g.ram[BUF_GPA + 0x400] = 0xff;
	*(uint16_t *)(g.ram + AVAIL_GPA + 4 + 2 * (BASE % QSIZE)) = 0;
	__atomic_store_n((uint16_t *)(g.ram + AVAIL_GPA + 2), BASE + 1, __ATOMIC_RELEASE);
	v = 1;
	assert_int_equal(write(g.kick, &v, 8), 8);

	assert_int_equal(poll(&p, 1, 10000), 1);
	assert_int_equal(read(g.call, &v, 8), 8);
	assert_int_equal(__atomic_load_n((uint16_t *)(g.ram + USED_GPA + 2), __ATOMIC_ACQUIRE),
			 BASE + 1);
	assert_int_equal(g.ram[BUF_GPA + 0x400], 0); /* VIRTIO_BLK_S_OK */
	for (int i = 0; i < 512; i++)
		want[i] = (uint8_t)(i * 7 + 3);
	assert_memory_equal(g.ram + BUF_GPA + 0x100, want, 512);

	/* Stopping the ring answers with the next index to consume. */
	assert_int_equal(call_msg(VHOST_USER_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0), 0);
	assert_int_equal(read_reply(VHOST_USER_GET_VRING_BASE, &st, sizeof(st)), sizeof(st));
	assert_int_equal(st.index, 0);
	assert_int_equal(st.num, BASE + 1);
}

/* Bit p%8 of byte p/8 for guest-physical page p. */
static bool logged(const uint8_t *log, uint64_t gpa)
{
	return log[(gpa >> 12) / 8] & (1u << ((gpa >> 12) % 8));
}

/* With a log and VHOST_F_LOG_ALL, the pages the back-end writes (the read's
 * data and status, the used ring) are marked, and only those. */
static void test_vhost_user_logs_what_it_writes(void **state)
{
	struct vhost_user_log l = {.mmap_size = 64, .mmap_offset = 8};
	uint32_t hdr[4] = {0 /* VIRTIO_BLK_T_IN */, 0, 1 /* sector */, 0};
	struct pollfd p = {g.call, POLLIN, 0};
	int lfd = memfd_create("log", MFD_CLOEXEC);
	uint64_t f = get_u64(VHOST_USER_GET_FEATURES), v;
	uint8_t *log;

	assert_true(lfd >= 0);
	assert_int_equal(ftruncate(lfd, 4096), 0);
	log = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, lfd, 0);
	assert_true(log != MAP_FAILED);
	set_u64(VHOST_USER_SET_PROTOCOL_FEATURES, PROTO_ALL);
	/* SET_LOG_BASE is always answered; the back-end maps its own copy. */
	assert_int_equal(call_msg(VHOST_USER_SET_LOG_BASE, 0, &l, sizeof(l), &lfd, 1), 0);
	v = 99;
	assert_int_equal(read_reply(VHOST_USER_SET_LOG_BASE, &v, sizeof(v)), sizeof(v));
	assert_int_equal(v, 0);
	assert_int_equal(acked(VHOST_USER_SET_FEATURES, &f, 8, NULL, 0), 0);
	mem_table();
	ring_up();
	/* The data buffer on page 5, the status byte on page 6. */
	memcpy(g.ram + BUF_GPA, hdr, 16);
	desc(0, BUF_GPA, 16, F_NEXT, 1);
	desc(1, 0x5000, 512, F_NEXT | F_WRITE, 2);
	desc(2, 0x6000, 1, F_WRITE, 0);
	*(uint16_t *)(g.ram + AVAIL_GPA + 4 + 2 * (BASE % QSIZE)) = 0;
	__atomic_store_n((uint16_t *)(g.ram + AVAIL_GPA + 2), BASE + 1, __ATOMIC_RELEASE);
	v = 1;
	assert_int_equal(write(g.kick, &v, 8), 8);
	assert_int_equal(poll(&p, 1, 10000), 1);
	assert_int_equal(read(g.call, &v, 8), 8);
	assert_int_equal(g.ram[0x6000], 0); /* VIRTIO_BLK_S_OK */
	log += 8;			    /* mmap_offset */
	assert_true(logged(log, 0x5000));
	assert_true(logged(log, 0x6000));
	assert_true(logged(log, USED_GPA));
	assert_false(logged(log, DESC_GPA)); /* read, never written */
	assert_false(logged(log, AVAIL_GPA));
	assert_false(logged(log, BUF_GPA)); /* the request header is the driver's */
	assert_false(logged(log, 0x7000));
	/* Logging off: nothing more is marked. */
	memset(log, 0, 64);
	f &= ~LOG_ALL;
	assert_int_equal(acked(VHOST_USER_SET_FEATURES, &f, 8, NULL, 0), 0);
	g.ram[0x6000] = 0xff;
	*(uint16_t *)(g.ram + AVAIL_GPA + 4 + 2 * ((BASE + 1) % QSIZE)) = 0;
	__atomic_store_n((uint16_t *)(g.ram + AVAIL_GPA + 2), BASE + 2, __ATOMIC_RELEASE);
	v = 1;
	assert_int_equal(write(g.kick, &v, 8), 8);
	assert_int_equal(poll(&p, 1, 10000), 1);
	assert_int_equal(read(g.call, &v, 8), 8);
	assert_int_equal(__atomic_load_n((uint16_t *)(g.ram + USED_GPA + 2), __ATOMIC_ACQUIRE),
			 BASE + 2);
	assert_int_equal(g.ram[0x6000], 0);
	for (int i = 0; i < 64; i++)
		assert_int_equal(log[i], 0);
	munmap(log - 8, 4096);
	close(lfd);
}

static void test_vhost_user_refuses_bad_tables_and_rings(void **state)
{
	struct vhost_user_mem_table t = {.nregions = 2};
	struct vhost_user_vring_state num = {0, 3}, far = {7, QSIZE};
	struct vhost_user_vring_addr addr = {.index = 0,
					     .desc_user_addr = 0x1000,
					     .used_user_addr = 0x2000,
					     .avail_user_addr = 0x3000};
	int fds[2] = {dup(g.memfd), dup(g.memfd)};

	negotiate();
	/* Overlapping regions. */
	t.regions[0] = (struct vhost_user_mem_region){0, RAM_SIZE, FE_UVA, RAM_OFFSET};
	t.regions[1] = (struct vhost_user_mem_region){0x1000, 0x1000, FE_UVA, RAM_OFFSET};
	assert_int_not_equal(acked(VHOST_USER_SET_MEM_TABLE, &t, 8 + 2 * 32, fds, 2), 0);
	close(fds[0]);
	close(fds[1]);
	/* A size that is not a power of two, a queue that does not exist. */
	assert_int_not_equal(acked(VHOST_USER_SET_VRING_NUM, &num, sizeof(num), NULL, 0), 0);
	assert_int_not_equal(acked(VHOST_USER_SET_VRING_NUM, &far, sizeof(far), NULL, 0), 0);
	/* Ring addresses outside the memory table: refused when the ring starts. */
	mem_table();
	num.num = QSIZE;
	assert_int_equal(acked(VHOST_USER_SET_VRING_NUM, &num, sizeof(num), NULL, 0), 0);
	assert_int_equal(acked(VHOST_USER_SET_VRING_ADDR, &addr, sizeof(addr), NULL, 0), 0);
	assert_int_equal(
	    acked(VHOST_USER_SET_VRING_ENABLE, &(struct vhost_user_vring_state){0, 1}, 8, NULL, 0),
	    0);
	assert_int_not_equal(ring_fd(0, g.kick, VHOST_USER_SET_VRING_KICK), 0);
	/* An unknown request with NEED_REPLY is refused and the connection lives. */
	assert_int_not_equal(acked(99, NULL, 0, NULL, 0), 0);
	assert_int_equal(get_u64(VHOST_USER_GET_QUEUE_NUM), 1);
}

/* Each malformed message ends the connection (serve < 0) without a reply;
 * the back-end then serves a new connection as if nothing happened. */
static void test_vhost_user_closes_on_malformed_messages(void **state)
{
	struct vhost_user_msg m;
	int fds[2] = {dup(g.call), dup(g.call)};

	set_u64(VHOST_USER_SET_PROTOCOL_FEATURES, PROTO_ALL);
	/* SET_FEATURES with 4 bytes instead of 8. */
	assert_int_equal(call_msg(VHOST_USER_SET_FEATURES, 0, "abcd", 4, NULL, 0), -EPROTO);
	/* SET_VRING_CALL with two fds. */
	assert_int_equal(call_msg(VHOST_USER_SET_VRING_CALL, 0, &(uint64_t){0}, 8, fds, 2),
			 -EPROTO);
	close(fds[0]);
	close(fds[1]);
	/* GET_QUEUE_NUM carrying an fd. */
	assert_int_equal(call_msg(VHOST_USER_GET_QUEUE_NUM, 0, NULL, 0, &g.kick, 1), -EPROTO);
	/* An unknown request without NEED_REPLY. */
	assert_true(call_msg(77, 0, NULL, 0, NULL, 0) < 0);
	/* Version 2 in the flags. */
	memset(&m, 0, sizeof(m));
	m.hdr.request = VHOST_USER_GET_FEATURES;
	m.hdr.flags = 2;
	assert_int_equal(vhost_user_msg__send(g.sv[0], &m, NULL, 0), 0);
	assert_int_equal(vhost_user__serve(g.vu, g.sv[1]), -EPROTO);
	/* A header that claims a 1 MiB payload. */
	m.hdr.flags = VHOST_USER_VERSION;
	m.hdr.size = 0;
	assert_int_equal(vhost_user_msg__send(g.sv[0], &m, NULL, 0), 0);
	{
		struct vhost_user_hdr big = {VHOST_USER_SET_MEM_TABLE, VHOST_USER_VERSION, 1 << 20};
		uint64_t f;

		assert_int_equal(vhost_user__serve(g.vu, g.sv[1]), 0); /* the GET_FEATURES */
		assert_int_equal(read_reply(VHOST_USER_GET_FEATURES, &f, 8), 8);
		assert_int_equal(send(g.sv[0], &big, sizeof(big), 0), (ssize_t)sizeof(big));
		assert_int_equal(vhost_user__serve(g.vu, g.sv[1]), -EPROTO);
	}
	assert_true(nothing_to_read());

	/* The front-end goes away: serve says so; a new one starts clean. */
	vhost_user__disconnect(g.vu);
	close(g.sv[0]);
	assert_int_equal(vhost_user__serve(g.vu, g.sv[1]), 1);
	close(g.sv[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g.sv), 0);
	negotiate();
	mem_table();
	ring_up();
	assert_int_equal(get_u64(VHOST_USER_GET_QUEUE_NUM), 1);
}

/* A state the test's load takes: "good"; anything else is refused. */
static int state_save(void *opaque, const struct vhost_user_rings *rings, uint8_t **buf,
		      size_t *len)
{
	*buf = (uint8_t *)strdup("good");
	*len = 4;
	return *buf ? 0 : -ENOMEM;
}

static int state_load(void *opaque, const uint8_t *buf, size_t len, uint64_t offered,
		      struct vhost_user_rings *rings, char *why, size_t whylen)
{
	if (len == 4 && !memcmp(buf, "good", 4))
		return VHOST_USER_STATE_OK;
	snprintf(why, whylen, "not the test's state");
	return VHOST_USER_STATE_E_MALFORMED;
}

/* SET_DEVICE_STATE_FD LOAD; *wfd: the pipe's end to write the state into. */
static void state_load_begin(int *wfd)
{
	struct vhost_user_device_state ds = {VHOST_USER_TRANSFER_LOAD, VHOST_USER_PHASE_STOPPED};
	uint64_t v = 99;
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(call_msg(VHOST_USER_SET_DEVICE_STATE_FD, 0, &ds, sizeof(ds), &p[0], 1), 0);
	close(p[0]);
	assert_int_equal(read_reply(VHOST_USER_SET_DEVICE_STATE_FD, &v, sizeof(v)), sizeof(v));
	assert_int_equal(v & 0xff, 0);
	*wfd = p[1];
}

static uint64_t state_check(int wfd, const char *state)
{
	uint64_t v = 99;

	assert_int_equal(write(wfd, state, strlen(state)), (ssize_t)strlen(state));
	close(wfd);
	assert_int_equal(call_msg(VHOST_USER_CHECK_DEVICE_STATE, 0, NULL, 0, NULL, 0), 0);
	assert_int_equal(read_reply(VHOST_USER_CHECK_DEVICE_STATE, &v, sizeof(v)), sizeof(v));
	return v;
}

/* vmm sends SET_VRING_ENABLE right behind CHECK_DEVICE_STATE without
 * waiting for its answer: the back-end must not enable a ring while a state
 * is loading or after it refused one, and must once one loaded. */
static void test_vhost_user_keeps_rings_stopped_after_a_refused_state(void **state)
{
	const struct vhost_user_state_ops ops = {.save = state_save, .load = state_load};
	int wfd;

	vhost_user__set_state_ops(g.vu, &ops);
	set_u64(VHOST_USER_SET_PROTOCOL_FEATURES,
		PROTO_ALL | 1ULL << VHOST_USER_PROTOCOL_F_DEVICE_STATE);
	assert_int_equal(acked(VHOST_USER_SET_FEATURES,
			       &(uint64_t){get_u64(VHOST_USER_GET_FEATURES) & ~LOG_ALL}, 8, NULL,
			       0),
			 0);
	mem_table();
	ring_set();
	state_load_begin(&wfd);
	assert_int_not_equal(ring_enable(), 0); /* loading: no CHECK yet */
	assert_int_equal(state_check(wfd, "bad"), VHOST_USER_STATE_E_MALFORMED);
	assert_int_not_equal(ring_enable(), 0); /* refused */
	state_load_begin(&wfd);
	assert_int_equal(state_check(wfd, "good"), VHOST_USER_STATE_OK);
	assert_int_equal(ring_enable(), 0);
	assert_true(nothing_to_read());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_vhost_user_negotiates_features, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vhost_user_serves_a_read_and_returns_the_base,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vhost_user_logs_what_it_writes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vhost_user_refuses_bad_tables_and_rings, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_vhost_user_keeps_rings_stopped_after_a_refused_state, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vhost_user_closes_on_malformed_messages, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
