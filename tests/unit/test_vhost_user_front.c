/* tests/unit/test_vhost_user_front.c — vmm's side of vhost-user (the
 * front-end model, virtio/vhost_user_front.c) against the paravisor's side
 * (paravisor/vhost_user.c, serving on a thread) over a real socketpair: the
 * test plays the transport, as vmm's virtio-pci would.  Guest RAM is a
 * memfd split into two regions at distant guest-physical addresses (like
 * vmm's low RAM and RAM above 4 GiB) with the ring in the second one, so
 * the memory table's offsets and the address translations both matter. */
#include "paravisor/vhost_user.h"
#include "paravisor/vu_blk.h"
#include "paravisor/vu_state.h"
#include "virtio/blk.h"
#include "virtio/vhost_user_front.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
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

#define HALF	 (512u * 1024)
#define HIGH_GPA 0x100000000ull /* region 1: the memfd's second half */
#define QSIZE	 16
/* Offsets inside region 1. */
#define DESC_OFF  0x0000u
#define AVAIL_OFF 0x1000u
#define USED_OFF  0x2000u
#define BUF_OFF	  0x3000u

#define F_NEXT	1
#define F_WRITE 2

static struct {
	char img[256];
	int sv[2]; /* [0]: vmm's end (the front owns it), [1]: the paravisor's */
	int memfd;
	uint8_t *ram;
	struct guest_mem gm;
	struct virtio_device *be; /* the paravisor's model */
	struct vhost_user *vu;
	pthread_t thread;
	bool joined;
	int serve_ret;
	struct virtio_device *vdev; /* the front */
	int kick, call;
	int fails, released;
	char fail_why[256];
	struct vu_state_dev st; /* the back-end's device state */
} g;

static void *backend_thread(void *arg)
{
	int ret;

	while (!(ret = vhost_user__serve(g.vu, g.sv[1])))
		;
	g.serve_ret = ret;
	return NULL;
}

static void on_fail(struct virtio_device *vdev, const char *why)
{
	g.fails++;
	snprintf(g.fail_why, sizeof(g.fail_why), "%s", why);
}

/* The test's error answer: 0xee in the last writable byte. */
static uint32_t on_refuse(struct virtio_device *vdev, struct virtq_elem *e)
{
	const struct iovec *last = &e->iov[e->out_num + e->in_num - 1];

	((uint8_t *)last->iov_base)[last->iov_len - 1] = 0xee;
	return 1;
}

static void on_release(void *opaque)
{
	g.released++;
}

static uint8_t *high(uint32_t off)
{
	return g.ram + HALF + off;
}

static void desc(uint16_t i, uint64_t gpa, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = high(DESC_OFF) + 16u * i;

	memcpy(d, &gpa, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

/* A back-end on a thread, serving the image at path (size bytes, sector 3
 * filled with the pattern read_sector3() checks) on sv[1]. */
static void serve_image(const char *path, off_t size, struct virtio_device **be,
			struct vhost_user **vu, int sv[2], pthread_t *thread, void *(*fn)(void *),
			struct vu_state_dev *st)
{
	uint8_t sector[512];
	char opt[400];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	for (int i = 0; i < 512; i++)
		sector[i] = (uint8_t)(i * 5 + 1);
	assert_int_equal(pwrite(fd, sector, sizeof(sector), 3 * 512), 512);
	close(fd);
	snprintf(opt, sizeof(opt), "path=%s,id=t0", path);
	*be = vu_blk__create(opt, st ? &st->image : NULL);
	assert_non_null(*be);
	*vu = vhost_user__create(*be);
	assert_non_null(*vu);
	if (st) { /* offers DEVICE_STATE, as the paravisor's main does */
		st->vdev = *be;
		vu_state__attach(*vu, st);
	}
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pthread_create(thread, NULL, fn, NULL), 0);
}

/* The front-end's parameters, as vmm's disk would give them. */
static const struct vhost_user_front_cfg front_cfg = {
    .id = "t0",
    .type = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .config_size = sizeof(struct virtio_blk_config),
    .queue_size = VIRTIO_BLK_QUEUE_SIZE,
    .nr_queues = 1,
    .timeout_ms = 5000,
};

static int setup(void **state)
{
	struct vhost_user_front_cfg cfg = front_cfg;
	char why[256] = "";
	int fd;

	memset(&g, 0, sizeof(g));
	snprintf(g.img, sizeof(g.img), "%s/test_vhost_user_front.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : ".");
	fd = mkstemp(g.img);
	assert_true(fd >= 0);
	close(fd);
	serve_image(g.img, 1 << 20, &g.be, &g.vu, g.sv, &g.thread, backend_thread, &g.st);

	g.memfd = memfd_create("guest-ram", MFD_CLOEXEC);
	assert_true(g.memfd >= 0);
	assert_int_equal(ftruncate(g.memfd, 2 * HALF), 0);
	g.ram = mmap(NULL, 2 * HALF, PROT_READ | PROT_WRITE, MAP_SHARED, g.memfd, 0);
	assert_true(g.ram != MAP_FAILED);
	g.gm.nr = 2;
	g.gm.r[0] = (struct guest_mem_region){0, HALF, g.ram};
	g.gm.r[1] = (struct guest_mem_region){HIGH_GPA, HALF, g.ram + HALF};
	g.kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	g.call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(g.kick >= 0 && g.call >= 0);

	cfg.refuse = on_refuse;
	cfg.release = on_release;
	cfg.mem_fd = g.memfd;
	cfg.mem_base = g.ram;
	g.vdev = vhost_user_front__create(g.sv[0], &cfg, why, sizeof(why));
	if (!g.vdev)
		fail_msg("front-end set-up: %s", why);
	/* What vmm's transport fills in. */
	g.vdev->mem = &g.gm;
	g.vdev->kick_fd[0] = g.kick;
	g.vdev->call_fd[0] = g.call;
	g.vdev->config_call_fd = -1;
	g.vdev->fail = on_fail;
	return 0;
}

static int teardown(void **state)
{
	if (g.vdev)
		g.vdev->ops->destroy(g.vdev); /* closes sv[0]: the back-end sees EOF */
	if (!g.joined)
		pthread_join(g.thread, NULL);
	vhost_user__destroy(g.vu);
	g.be->ops->destroy(g.be);
	close(g.sv[1]);
	munmap(g.ram, 2 * HALF);
	close(g.memfd);
	close(g.kick);
	close(g.call);
	unlink(g.img);
	return 0;
}

/* The transport's part of DRIVER_OK: features and ring 0 in region 1. */
static void driver_ok(uint64_t features)
{
	struct virtq *vq = &g.vdev->vqs[0];
	char why[128];

	g.vdev->driver_features = features;
	vq->size = QSIZE;
	vq->desc_gpa = HIGH_GPA + DESC_OFF;
	vq->avail_gpa = HIGH_GPA + AVAIL_OFF;
	vq->used_gpa = HIGH_GPA + USED_OFF;
	vq->mem = &g.gm;
	assert_int_equal(virtq__enable(vq, why, sizeof(why)), 0);
}

/* Asks for sector 3 at avail slot idx and waits for the answer; returns
 * the status byte. */
static uint8_t request_sector3(uint16_t idx)
{
	uint32_t hdr[4] = {0 /* VIRTIO_BLK_T_IN */, 0, 3 /* sector */, 0};
	struct pollfd p = {g.call, POLLIN, 0};
	uint64_t v = 1;

	/* An interrupt left over from before is not this request's. */
	if (read(g.call, &v, 8) < 0)
		assert_int_equal(errno, EAGAIN);
	v = 1;
	memcpy(high(BUF_OFF), hdr, 16);
	memset(high(BUF_OFF + 0x100), 0, 512);
	desc(0, HIGH_GPA + BUF_OFF, 16, F_NEXT, 1);
	desc(1, HIGH_GPA + BUF_OFF + 0x100, 512, F_NEXT | F_WRITE, 2);
	desc(2, HIGH_GPA + BUF_OFF + 0x400, 1, F_WRITE, 0);
	*high(BUF_OFF + 0x400) = 0xff;
	*(uint16_t *)(high(AVAIL_OFF) + 4 + 2 * (idx % QSIZE)) = 0;
	__atomic_store_n((uint16_t *)(high(AVAIL_OFF) + 2), (uint16_t)(idx + 1), __ATOMIC_RELEASE);
	assert_int_equal(write(g.kick, &v, 8), 8);

	assert_int_equal(poll(&p, 1, 10000), 1);
	assert_int_equal(read(g.call, &v, 8), 8);
	assert_int_equal(__atomic_load_n((uint16_t *)(high(USED_OFF) + 2), __ATOMIC_ACQUIRE),
			 idx + 1);
	return *high(BUF_OFF + 0x400);
}

/* Reads sector 3 through the ring at avail slot idx and checks the data. */
static void read_sector3(uint16_t idx)
{
	uint8_t want[512];

	assert_int_equal(request_sector3(idx), 0); /* VIRTIO_BLK_S_OK */
	for (int i = 0; i < 512; i++)
		want[i] = (uint8_t)(i * 5 + 1);
	assert_memory_equal(high(BUF_OFF + 0x100), want, 512);
}

static void test_vhost_user_front_takes_features_and_config_from_the_back_end(void **state)
{
	const struct virtio_device_ops *ops = g.vdev->ops;
	uint64_t f = ops->features(g.vdev), capacity = 0;

	assert_int_equal(ops->device_id, VIRTIO_ID_BLOCK);
	assert_string_equal(ops->type, "virtio-blk");
	assert_string_equal(g.vdev->id, "t0");
	assert_int_equal(g.vdev->nr_queues, 1);
	assert_true(f & (1ULL << VIRTIO_BLK_F_FLUSH));
	/* vhost-user's own bits stay between the two ends. */
	assert_false(f & (1ULL << 30));
	assert_int_equal(ops->queue_max_size(g.vdev, 0), VIRTIO_BLK_QUEUE_SIZE);
	ops->config_read(g.vdev, 0, &capacity, 8);
	assert_int_equal(capacity, 2048);
}

static void test_vhost_user_front_hands_rings_over_and_gets_the_index_back(void **state)
{
	const struct virtio_device_ops *ops = g.vdev->ops;

	driver_ok(1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_BLK_F_FLUSH);
	assert_int_equal(ops->start(g.vdev), 0);
	read_sector3(0);
	/* Stop: the back-end gives the ring's index back for saved state. */
	ops->stop(g.vdev);
	assert_int_equal(g.vdev->vqs[0].last_avail, 1);
	assert_int_equal(g.vdev->vqs[0].used_idx, 1);
	ops->stop(g.vdev); /* idempotent */
	/* Restart from that index: the next request is served too. */
	assert_int_equal(ops->start(g.vdev), 0);
	read_sector3(1);
	ops->stop(g.vdev);
	assert_int_equal(g.vdev->vqs[0].last_avail, 2);
	assert_int_equal(g.fails, 0);
}

static void test_vhost_user_front_refuses_features_the_back_end_lacks(void **state)
{
	driver_ok(1ULL << VIRTIO_F_VERSION_1 | 1ULL << 23);
	assert_true(g.vdev->ops->start(g.vdev) < 0);
	assert_int_equal(g.fails, 0); /* the transport fails the device, not the front */
}

/* The paravisor's end closes and its model stops (as when its process dies). */
static void back_end_dies(void)
{
	shutdown(g.sv[1], SHUT_RDWR);
	pthread_join(g.thread, NULL);
	g.joined = true;
	vhost_user__disconnect(g.vu);
}

static void test_vhost_user_front_fails_the_device_when_the_back_end_goes(void **state)
{
	const struct virtio_device_ops *ops = g.vdev->ops;

	back_end_dies();
	driver_ok(1ULL << VIRTIO_F_VERSION_1);
	/* The first message fails: the device fails, with the reason; the
	 * rings are answered here, so start itself succeeds. */
	assert_int_equal(ops->start(g.vdev), 0);
	assert_int_equal(g.fails, 1);
	assert_non_null(strstr(g.fail_why, "SET_FEATURES"));
	assert_int_equal(request_sector3(0), 0xee);
	/* Nothing more is tried, nothing more is reported. */
	ops->stop(g.vdev);
	assert_int_equal(ops->start(g.vdev), 0);
	ops->stop(g.vdev);
	vhost_user_front__gone(g.vdev, "gone again");
	assert_int_equal(g.fails, 1);
	ops->destroy(g.vdev);
	g.vdev = NULL;
	assert_int_equal(g.released, 1);
}

static void test_vhost_user_front_answers_with_errors_once_the_back_end_is_gone(void **state)
{
	const struct virtio_device_ops *ops = g.vdev->ops;

	driver_ok(1ULL << VIRTIO_F_VERSION_1);
	assert_int_equal(ops->start(g.vdev), 0);
	read_sector3(0);
	back_end_dies();
	vhost_user_front__gone(g.vdev, "its paravisor (pid 1) died: killed by signal 9");
	assert_int_equal(g.fails, 1);
	/* The ring goes on from where the back-end left it, with errors. */
	assert_int_equal(request_sector3(1), 0xee);
	assert_int_equal(request_sector3(2), 0xee);
	ops->stop(g.vdev);
	assert_int_equal(g.fails, 1);
}

static void test_vhost_user_front_gone_fails_once_and_sends_nothing(void **state)
{
	back_end_dies();
	vhost_user_front__gone(g.vdev, "its paravisor (pid 1) died: killed by signal 9");
	assert_int_equal(g.fails, 1);
	assert_string_equal(g.fail_why, "its paravisor (pid 1) died: killed by signal 9");
	/* Started after that, the rings get errors at once: no message. */
	driver_ok(1ULL << VIRTIO_F_VERSION_1);
	assert_int_equal(g.vdev->ops->start(g.vdev), 0);
	assert_int_equal(request_sector3(0), 0xee);
	assert_int_equal(g.fails, 1);
}

static void test_vhost_user_front_reports_a_back_end_that_closes_at_once(void **state)
{
	struct vhost_user_front_cfg cfg = {
	    .id = "t1",
	    .type = "virtio-blk",
	    .device_id = VIRTIO_ID_BLOCK,
	    .config_size = 8,
	    .queue_size = 16,
	    .nr_queues = 1,
	    .timeout_ms = 1000,
	    .release = on_release,
	};
	char why[256] = "";
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[1]);
	assert_null(vhost_user_front__create(sv[0], &cfg, why, sizeof(why)));
	assert_non_null(strstr(why, "GET_FEATURES"));
	assert_int_equal(g.released, 0); /* only a created model is released */
}

/* --- servicing: a second back-end takes the rings over --- */

static struct {
	char img[300];
	struct vu_state_dev st;
	int sv[2];
	struct virtio_device *be;
	struct vhost_user *vu;
	pthread_t thread;
} g2;

static void *backend2_thread(void *arg)
{
	while (!vhost_user__serve(g2.vu, g2.sv[1]))
		;
	return NULL;
}

/* The new back-end on its own connection, serving an image of size bytes
 * with sector 3 as the first one's; returns the front's model of it. */
static struct virtio_device *next_back_end_on(const char *img, off_t size, bool state)
{
	struct vhost_user_front_cfg cfg = front_cfg;
	struct virtio_device *next;
	char why[256] = "";

	snprintf(g2.img, sizeof(g2.img), "%s", img);
	g2.st.fail_restore = false; /* a test before may have set it */
	serve_image(g2.img, size, &g2.be, &g2.vu, g2.sv, &g2.thread, backend2_thread,
		    state ? &g2.st : NULL);
	cfg.mem_fd = g.memfd;
	cfg.mem_base = g.ram;
	next = vhost_user_front__create(g2.sv[0], &cfg, why, sizeof(why));
	if (!next)
		fail_msg("new back-end set-up: %s", why);
	return next;
}

/* A new back-end on another image, without DEVICE_STATE. */
static struct virtio_device *next_back_end(off_t size)
{
	char img[300];

	snprintf(img, sizeof(img), "%s.next", g.img);
	return next_back_end_on(img, size, false);
}

static void next_back_end_done(void)
{
	shutdown(g2.sv[1], SHUT_RDWR);
	pthread_join(g2.thread, NULL);
	vhost_user__destroy(g2.vu);
	g2.be->ops->destroy(g2.be);
	close(g2.sv[1]);
	unlink(g2.img);
}

static void test_vhost_user_front_replace_moves_the_rings_to_the_new_back_end(void **state)
{
	struct vhost_user_front_swap res;
	char why[256] = "";

	driver_ok(1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_BLK_F_FLUSH);
	assert_int_equal(g.vdev->ops->start(g.vdev), 0);
	read_sector3(0);
	if (vhost_user_front__replace(g.vdev, next_back_end(1 << 20), &res, why, sizeof(why)))
		fail_msg("replace: %s", why);
	assert_true(res.blackout_us > 0);
	/* The old connection is closed: the old back-end's thread ends. */
	pthread_join(g.thread, NULL);
	g.joined = true;
	/* The next request, same ring, same eventfds, is the new one's. */
	read_sector3(1);
	read_sector3(2);
	g.vdev->ops->stop(g.vdev);
	assert_int_equal(g.vdev->vqs[0].last_avail, 3);
	assert_int_equal(g.fails, 0);
	next_back_end_done();
}

/* Bit p%8 of byte p/8 for guest-physical page p. */
static bool logged(const uint8_t *log, uint64_t gpa)
{
	return log[(gpa >> 12) / 8] & (1u << ((gpa >> 12) % 8));
}

static bool log_empty(const uint8_t *log, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (log[i])
			return false;
	return true;
}

/* A migration's dirty log: the back-end marks what it writes (data, status,
 * used ring) by guest-physical page; a servicing hands the log on to the
 * new back-end; off, nothing is marked. */
static void test_vhost_user_front_log_follows_the_rings(void **state)
{
	size_t len = ((HIGH_GPA + 2 * HALF) >> 12) / 8;
	int lfd = memfd_create("log", MFD_CLOEXEC);
	struct vhost_user_front_swap res;
	char why[256] = "";
	uint8_t *log;

	assert_true(lfd >= 0);
	assert_int_equal(ftruncate(lfd, (off_t)len), 0);
	log = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, lfd, 0);
	assert_true(log != MAP_FAILED);
	driver_ok(1ULL << VIRTIO_F_VERSION_1);
	assert_int_equal(g.vdev->ops->start(g.vdev), 0);
	read_sector3(0);
	assert_true(log_empty(log, len));
	if (vhost_user_front__set_log(g.vdev, lfd, len, why, sizeof(why)))
		fail_msg("set_log: %s", why);
	read_sector3(1);
	assert_true(logged(log, HIGH_GPA + BUF_OFF + 0x100)); /* data and status */
	assert_true(logged(log, HIGH_GPA + USED_OFF));
	assert_false(logged(log, HIGH_GPA + AVAIL_OFF));
	assert_false(logged(log, HIGH_GPA + DESC_OFF));
	memset(log, 0, len);
	if (vhost_user_front__replace(g.vdev, next_back_end(1 << 20), &res, why, sizeof(why)))
		fail_msg("replace: %s", why);
	read_sector3(2);
	assert_true(logged(log, HIGH_GPA + BUF_OFF + 0x100));
	assert_true(logged(log, HIGH_GPA + USED_OFF));
	memset(log, 0, len);
	if (vhost_user_front__set_log(g.vdev, -1, 0, why, sizeof(why)))
		fail_msg("set_log off: %s", why);
	read_sector3(3);
	assert_true(log_empty(log, len));
	g.vdev->ops->stop(g.vdev);
	assert_int_equal(g.fails, 0);
	pthread_join(g.thread, NULL);
	g.joined = true;
	next_back_end_done();
	munmap(log, len);
	close(lfd);
}

static void test_vhost_user_front_replace_refuses_another_disk_untouched(void **state)
{
	struct vhost_user_front_swap res;
	char why[256] = "";

	driver_ok(1ULL << VIRTIO_F_VERSION_1);
	assert_int_equal(g.vdev->ops->start(g.vdev), 0);
	read_sector3(0);
	assert_true(vhost_user_front__replace(g.vdev, next_back_end(2 << 20), &res, why,
					      sizeof(why)) < 0);
	assert_non_null(strstr(why, "different config space"));
	assert_true(res.old_running);
	assert_int_equal(res.blackout_us, 0); /* the old rings never stopped */
	read_sector3(1);
	assert_int_equal(g.fails, 0);
	next_back_end_done();
}

static void test_vhost_user_front_replace_gives_the_rings_back_when_the_new_one_dies(void **state)
{
	struct vhost_user_front_swap res;
	struct virtio_device *next;
	char why[256] = "";

	driver_ok(1ULL << VIRTIO_F_VERSION_1);
	assert_int_equal(g.vdev->ops->start(g.vdev), 0);
	read_sector3(0);
	/* Negotiated, then gone before it took the rings. */
	next = next_back_end(1 << 20);
	shutdown(g2.sv[1], SHUT_RDWR);
	assert_true(vhost_user_front__replace(g.vdev, next, &res, why, sizeof(why)) < 0);
	assert_non_null(strstr(why, "SET_FEATURES"));
	assert_true(res.old_running);
	/* It broke while being staged, before the old rings were touched. */
	assert_int_equal(res.blackout_us, 0);
	/* The old back-end serves the ring on from where it stopped. */
	read_sector3(1);
	assert_int_equal(g.fails, 0);
	next_back_end_done();
}

/* --- restart: a new back-end after the old one died --- */

static void test_vhost_user_front_reconnect_goes_on_from_the_used_index(void **state)
{
	char why[256] = "";

	driver_ok(1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_BLK_F_FLUSH);
	assert_int_equal(g.vdev->ops->start(g.vdev), 0);
	read_sector3(0);
	read_sector3(1);
	back_end_dies(); /* no GET_VRING_BASE: the front still thinks index 0 */
	assert_int_equal(g.vdev->vqs[0].last_avail, 0);
	if (vhost_user_front__reconnect(g.vdev, next_back_end(1 << 20), why, sizeof(why)))
		fail_msg("reconnect: %s", why);
	assert_int_equal(g.vdev->vqs[0].last_avail, 2);
	/* Same ring, same eventfds, the new back-end answers. */
	read_sector3(2);
	g.vdev->ops->stop(g.vdev);
	assert_int_equal(g.vdev->vqs[0].last_avail, 3);
	assert_int_equal(g.fails, 0);
	next_back_end_done();
}

static void test_vhost_user_front_reconnect_refuses_a_failed_device(void **state)
{
	char why[256] = "";

	driver_ok(1ULL << VIRTIO_F_VERSION_1);
	assert_int_equal(g.vdev->ops->start(g.vdev), 0);
	back_end_dies();
	vhost_user_front__gone(g.vdev, "gone for the test");
	assert_true(vhost_user_front__reconnect(g.vdev, next_back_end(1 << 20), why, sizeof(why)) <
		    0);
	assert_non_null(strstr(why, "the running back-end is gone"));
	assert_int_equal(g.fails, 1);
	next_back_end_done();
}

/* --- servicing with device state (DEVICE_STATE, paravisor/vu_state.c) --- */

static void test_vhost_user_front_replace_moves_the_device_state(void **state)
{
	struct virtio_blk_counters c;
	struct vhost_user_front_swap res;
	char why[256] = "";

	driver_ok(1ULL << VIRTIO_F_VERSION_1);
	assert_int_equal(g.vdev->ops->start(g.vdev), 0);
	read_sector3(0);
	read_sector3(1);
	/* The same image, as a servicing's new paravisor opens it. */
	if (vhost_user_front__replace(g.vdev, next_back_end_on(g.img, 1 << 20, true), &res, why,
				      sizeof(why)))
		fail_msg("replace: %s", why);
	pthread_join(g.thread, NULL);
	g.joined = true;
	read_sector3(2);
	g.vdev->ops->stop(g.vdev);
	/* Two requests on the old back-end, one on the new: the counters
	 * came along. */
	virtio_blk__get_counters(g2.be, &c);
	assert_int_equal(c.requests, 3);
	assert_int_equal(c.bytes, 3 * 512);
	assert_int_equal(c.errors, 0);
	assert_int_equal(g.fails, 0);
	next_back_end_done();
}

/* Servicing several devices of one paravisor process: a device switched to
 * the new back-end goes back to the old one (whose connection was kept)
 * when a later device fails, and the old one takes the rings and the state
 * the new one built meanwhile. */
static void test_vhost_user_front_replace_keep_switches_back(void **state)
{
	struct virtio_blk_counters c;
	struct vhost_user_front_swap res;
	struct virtio_device *old = NULL;
	char why[256] = "";

	driver_ok(1ULL << VIRTIO_F_VERSION_1);
	assert_int_equal(g.vdev->ops->start(g.vdev), 0);
	read_sector3(0);
	if (vhost_user_front__replace_keep(g.vdev, next_back_end_on(g.img, 1 << 20, true), &old,
					   &res, why, sizeof(why)))
		fail_msg("replace: %s", why);
	assert_non_null(old);
	read_sector3(1);
	virtio_blk__get_counters(g2.be, &c);
	assert_int_equal(c.requests, 2);
	if (vhost_user_front__replace(g.vdev, old, &res, why, sizeof(why)))
		fail_msg("switching back: %s", why);
	assert_true(res.blackout_us > 0);
	read_sector3(2);
	g.vdev->ops->stop(g.vdev);
	assert_int_equal(g.vdev->vqs[0].last_avail, 3);
	/* The third request was the old back-end's, on top of the two the
	 * new one's state carried back. */
	virtio_blk__get_counters(g.be, &c);
	assert_int_equal(c.requests, 3);
	assert_int_equal(g.fails, 0);
	next_back_end_done();
}

/* A refused state is a failed servicing: the old back-end serves on. */
static void replace_refused(struct virtio_device *next, const char *want)
{
	struct vhost_user_front_swap res;
	char why[256] = "";

	assert_true(vhost_user_front__replace(g.vdev, next, &res, why, sizeof(why)) < 0);
	if (!strstr(why, want))
		fail_msg("\"%s\" does not say \"%s\"", why, want);
	assert_true(res.old_running);
	assert_false(g2.be->vqs[0].enabled); /* the new one serves nothing */
	read_sector3(2);
	g.vdev->ops->stop(g.vdev);
	assert_int_equal(g.vdev->vqs[0].last_avail, 3);
	assert_int_equal(g.fails, 0);
	next_back_end_done();
}

/* Two requests served, then a new back-end that will refuse the state. */
static struct virtio_device *refusing_back_end(void)
{
	struct virtio_device *next;

	driver_ok(1ULL << VIRTIO_F_VERSION_1);
	assert_int_equal(g.vdev->ops->start(g.vdev), 0);
	read_sector3(0);
	read_sector3(1);
	next = next_back_end_on(g.img, 1 << 20, true);
	g2.st.fail_restore = true;
	return next;
}

static void test_vhost_user_front_replace_rolls_back_when_the_state_is_refused(void **state)
{
	replace_refused(refusing_back_end(), "did not load the device state: the test hook "
					     "--test-fail-restore refused it");
}

/* What fn wrote to stderr (the log), into buf. */
static void stderr_of(void (*fn)(void *), void *arg, char *buf, size_t len)
{
	char path[] = "/tmp/test_vhost_user_front.log.XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	assert_int_equal(dup2(fd, 2), 2);
	fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, buf, len - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	fputs(buf, stderr);
}

static void replace_refused_enabled_anyway(void *next)
{
	replace_refused(next, "did not load the device state: the test hook "
			      "--test-fail-restore refused it");
}

/*
 * A new back-end that enables its rings although it refused the state
 * (ours never does: test hook) is stopped again by the front-end, and the
 * old one serves on from the indexes it gives.
 */
static void test_vhost_user_front_replace_stops_a_new_back_end_that_enabled_anyway(void **state)
{
	struct virtio_device *next = refusing_back_end();
	char log[16384];

	vhost_user__test_enable_anyway(g2.vu);
	stderr_of(replace_refused_enabled_anyway, next, log, sizeof(log));
	if (!strstr(log, "the new back-end enabled 1 ring(s) although the switch failed; "
			 "stopping them"))
		fail_msg("no fallback in the log:\n%s", log);
	if (strstr(log, "stopping the new back-end's rings failed"))
		fail_msg("the fallback failed:\n%s", log);
}

static void test_vhost_user_front_replace_refuses_the_state_of_another_image(void **state)
{
	char img[300];

	driver_ok(1ULL << VIRTIO_F_VERSION_1);
	assert_int_equal(g.vdev->ops->start(g.vdev), 0);
	read_sector3(0);
	read_sector3(1);
	/* Same size, so the same config space: only the state tells. */
	snprintf(img, sizeof(img), "%s.other", g.img);
	replace_refused(next_back_end_on(img, 1 << 20, true),
			"the state is of another device or disk image");
}

/* Before the driver started the rings, the state moves too (counters, the
 * image's identity), and a refusal leaves the device on the old back-end. */
static void test_vhost_user_front_replace_without_rings_checks_the_state(void **state)
{
	struct vhost_user_front_swap res;
	struct virtio_device *next;
	char why[256] = "";

	next = next_back_end_on(g.img, 1 << 20, true);
	g2.st.fail_restore = true;
	assert_true(vhost_user_front__replace(g.vdev, next, &res, why, sizeof(why)) < 0);
	assert_non_null(strstr(why, "the test hook --test-fail-restore refused it"));
	assert_true(res.old_running);
	next_back_end_done();
	driver_ok(1ULL << VIRTIO_F_VERSION_1);
	assert_int_equal(g.vdev->ops->start(g.vdev), 0);
	read_sector3(0);
	g.vdev->ops->stop(g.vdev);
	assert_int_equal(g.fails, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_vhost_user_front_takes_features_and_config_from_the_back_end, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vhost_user_front_replace_keep_switches_back, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_vhost_user_front_hands_rings_over_and_gets_the_index_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_vhost_user_front_refuses_features_the_back_end_lacks, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_vhost_user_front_fails_the_device_when_the_back_end_goes, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_vhost_user_front_answers_with_errors_once_the_back_end_is_gone, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_vhost_user_front_gone_fails_once_and_sends_nothing,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_vhost_user_front_reports_a_back_end_that_closes_at_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_vhost_user_front_replace_moves_the_rings_to_the_new_back_end, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vhost_user_front_log_follows_the_rings, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_vhost_user_front_replace_stops_a_new_back_end_that_enabled_anyway, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(
		test_vhost_user_front_replace_refuses_another_disk_untouched, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_vhost_user_front_reconnect_goes_on_from_the_used_index, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vhost_user_front_reconnect_refuses_a_failed_device,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_vhost_user_front_replace_gives_the_rings_back_when_the_new_one_dies, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_vhost_user_front_replace_moves_the_device_state,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_vhost_user_front_replace_rolls_back_when_the_state_is_refused, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(
		test_vhost_user_front_replace_refuses_the_state_of_another_image, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_vhost_user_front_replace_without_rings_checks_the_state, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
