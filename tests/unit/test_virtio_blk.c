/* tests/unit/test_virtio_blk.c — the virtio-blk model driven like a guest
 * driver would: split virtqueues in a fake guest RAM buffer, kicks through
 * the eventfds, requests served by the real io_uring backend on a real
 * temporary file.  Checks request parsing and every validation path. */
#include "storage/raw_uring.h"
#include "virtio/blk.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include <cmocka.h>

#define RAM_SIZE (4u << 20)
#define QSIZE 64
#define DATA_BASE 0x100000u
#define IMG_SECTORS 2048 /* 1 MiB */

#define F_NEXT 1
#define F_WRITE 2

struct buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

static struct {
	char img[256];
	uint8_t *ram;
	struct guest_mem mem;
	struct virtio_device *vdev;
	uint16_t next_desc[VIRTIO_MAX_QUEUES], avail[VIRTIO_MAX_QUEUES];
	uint64_t bump;
	int notifies, config_changes, fails;
	char why[256];
} g;

/* The transport's side of the contract, as virtio-pci provides it. */
void virtio_device__notify(struct virtio_device *vdev, unsigned int q)
{
	__atomic_add_fetch(&g.notifies, 1, __ATOMIC_SEQ_CST);
}

void virtio_device__config_changed(struct virtio_device *vdev)
{
	__atomic_add_fetch(&g.config_changes, 1, __ATOMIC_SEQ_CST);
}

static void fake_fail(struct virtio_device *vdev, const char *why)
{
	snprintf(g.why, sizeof(g.why), "%s", why);
	__atomic_add_fetch(&g.fails, 1, __ATOMIC_SEQ_CST);
}

static uint64_t q_base(unsigned int q)
{
	return 0x10000u * (q + 1);
}

static uint64_t galloc(uint32_t len)
{
	uint64_t gpa = g.bump;

	g.bump = (g.bump + len + 4095) & ~4095ull;
	assert_true(g.bump <= RAM_SIZE);
	return gpa;
}

static void *gp(uint64_t gpa)
{
	return g.ram + gpa;
}

static void dev_up(bool readonly, enum blk_cache cache, unsigned int nq)
{
	struct blk_backend *be = blk_backend__open(g.img, readonly, cache, 0);
	struct virtio_device *vdev;
	char why[128];

	assert_non_null(be);
	vdev = virtio_blk__create("disk0", be, nq);
	assert_non_null(vdev);
	vdev->mem = &g.mem;
	vdev->fail = fake_fail;
	vdev->config_call_fd = -1;
	vdev->driver_features = vdev->ops->features(vdev);
	for (unsigned int q = 0; q < nq; q++) {
		struct virtq *vq = &vdev->vqs[q];

		vq->size = QSIZE;
		vq->desc_gpa = q_base(q);
		vq->avail_gpa = q_base(q) + 0x1000;
		vq->used_gpa = q_base(q) + 0x2000;
		vq->mem = &g.mem;
		assert_int_equal(virtq__enable(vq, why, sizeof(why)), 0);
		vdev->kick_fd[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		vdev->call_fd[q] = -1;
	}
	assert_int_equal(vdev->ops->start(vdev), 0);
	g.vdev = vdev;
}

static void dev_down(void)
{
	struct virtio_device *vdev = g.vdev;

	vdev->ops->stop(vdev);
	for (unsigned int q = 0; q < vdev->nr_queues; q++)
		close(vdev->kick_fd[q]);
	vdev->ops->destroy(vdev);
	g.vdev = NULL;
}

static int setup(void **state)
{
	int fd;

	memset(&g, 0, sizeof(g));
	snprintf(g.img, sizeof(g.img), "%s/test_virtio_blk.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : ".");
	fd = mkstemp(g.img);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, IMG_SECTORS * 512), 0);
	close(fd);
	g.ram = aligned_alloc(4096, RAM_SIZE);
	assert_non_null(g.ram);
	memset(g.ram, 0, RAM_SIZE);
	g.mem.nr = 1;
	g.mem.r[0] = (struct guest_mem_region){ 0, RAM_SIZE, g.ram };
	g.bump = DATA_BASE;
	return 0;
}

static int teardown(void **state)
{
	if (g.vdev)
		dev_down();
	free(g.ram);
	unlink(g.img);
	return 0;
}

/* Makes a chain of bufs available on queue q (does not kick). */
static uint16_t post(unsigned int q, const struct buf *b, int n)
{
	uint8_t *desc = gp(q_base(q));
	uint16_t *avail = gp(q_base(q) + 0x1000);
	uint16_t head = g.next_desc[q];

	for (int i = 0; i < n; i++) {
		uint16_t d = (uint16_t)((head + i) % QSIZE);
		uint64_t addr = htole64(b[i].gpa);
		uint32_t len = htole32(b[i].len);
		uint16_t flags = htole16((uint16_t)((i + 1 < n ? F_NEXT : 0) | (b[i].write ? F_WRITE : 0)));
		uint16_t next = htole16((uint16_t)((d + 1) % QSIZE));

		memcpy(desc + d * 16, &addr, 8);
		memcpy(desc + d * 16 + 8, &len, 4);
		memcpy(desc + d * 16 + 12, &flags, 2);
		memcpy(desc + d * 16 + 14, &next, 2);
	}
	g.next_desc[q] = (uint16_t)((head + n) % QSIZE);
	avail[2 + g.avail[q] % QSIZE] = htole16(head);
	g.avail[q]++;
	__atomic_store_n(&avail[1], htole16(g.avail[q]), __ATOMIC_RELEASE);
	return head;
}

static void kick(unsigned int q)
{
	uint64_t one = 1;

	assert_int_equal(write(g.vdev->kick_fd[q], &one, 8), 8);
}

static uint16_t used_idx(unsigned int q)
{
	uint16_t *used = gp(q_base(q) + 0x2000);

	return le16toh(__atomic_load_n(&used[1], __ATOMIC_ACQUIRE));
}

/* Waits (5 s at most) until the device used `want` buffers in total. */
static bool wait_used(unsigned int q, uint16_t want)
{
	for (int i = 0; i < 5000; i++) {
		if ((int16_t)(used_idx(q) - want) >= 0)
			return true;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	return false;
}

static uint32_t used_len(unsigned int q, uint16_t slot)
{
	uint8_t *used = gp(q_base(q) + 0x2000);
	uint32_t len;

	memcpy(&len, used + 4 + (slot % QSIZE) * 8 + 4, 4);
	return le32toh(len);
}

static uint64_t header(uint32_t type, uint64_t sector)
{
	uint64_t gpa = galloc(16);
	uint32_t t = htole32(type), z = 0;
	uint64_t s = htole64(sector);

	memcpy(gp(gpa), &t, 4);
	memcpy(gp(gpa + 4), &z, 4);
	memcpy(gp(gpa + 8), &s, 8);
	return gpa;
}

/* One request on queue 0 with a data buffer; returns the status byte. */
static int request(uint32_t type, uint64_t sector, uint64_t data, uint32_t len, bool wr)
{
	uint64_t st = galloc(1);
	struct buf b[3] = { { header(type, sector), 16, false }, { data, len, wr }, { st, 1, true } };
	uint16_t before = used_idx(0);

	*(uint8_t *)gp(st) = 0xff;
	if (len)
		post(0, b, 3);
	else
		post(0, (struct buf[]){ b[0], b[2] }, 2);
	kick(0);
	if (!wait_used(0, (uint16_t)(before + 1)))
		return -1;
	return *(uint8_t *)gp(st);
}

static void file_read(uint64_t off, void *buf, size_t len)
{
	int fd = open(g.img, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void write_read(enum blk_cache cache)
{
	uint64_t w = galloc(8192), r = galloc(8192);
	uint8_t chk[8192];

	dev_up(false, cache, 1);
	for (int i = 0; i < 8192; i++)
		((uint8_t *)gp(w))[i] = (uint8_t)(i * 13 + 1);
	assert_int_equal(request(VIRTIO_BLK_T_OUT, 100, w, 8192, false), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len(0, 0), 1);
	file_read(100 * 512, chk, sizeof(chk));
	assert_memory_equal(chk, gp(w), sizeof(chk));
	assert_int_equal(request(VIRTIO_BLK_T_IN, 100, r, 8192, true), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len(0, 1), 8192 + 1);
	assert_memory_equal(gp(r), gp(w), 8192);
	assert_int_equal(request(VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), VIRTIO_BLK_S_OK);
	assert_true(__atomic_load_n(&g.notifies, __ATOMIC_SEQ_CST) > 0);
	assert_int_equal(g.fails, 0);
}

static void test_virtio_blk_write_then_read_writeback(void **state)
{
	write_read(BLK_CACHE_WRITEBACK);
}

static void test_virtio_blk_write_then_read_direct(void **state)
{
	write_read(BLK_CACHE_NONE);
}

/* A header split over two descriptors and data over several. */
static void test_virtio_blk_split_header_and_data(void **state)
{
	uint64_t h = header(VIRTIO_BLK_T_OUT, 8), d1 = galloc(512), d2 = galloc(1024), st = galloc(1);
	uint8_t chk[1536];
	struct buf b[5] = { { h, 5, false }, { h + 5, 11, false }, { d1, 512, false },
			    { d2, 1024, false }, { st, 1, true } };

	dev_up(false, BLK_CACHE_WRITEBACK, 1);
	memset(gp(d1), 0x11, 512);
	memset(gp(d2), 0x22, 1024);
	post(0, b, 5);
	kick(0);
	assert_true(wait_used(0, 1));
	assert_int_equal(*(uint8_t *)gp(st), VIRTIO_BLK_S_OK);
	file_read(8 * 512, chk, sizeof(chk));
	assert_int_equal(chk[0], 0x11);
	assert_int_equal(chk[511], 0x11);
	assert_int_equal(chk[512], 0x22);
	assert_int_equal(chk[1535], 0x22);
}

/* Many requests in one kick all complete (batched submission). */
static void test_virtio_blk_batch_of_requests(void **state)
{
	uint64_t st[21], d[21]; /* 3 descriptors each: 63 of the 64 */

	dev_up(false, BLK_CACHE_WRITEBACK, 1);
	for (int i = 0; i < 21; i++) {
		d[i] = galloc(4096);
		st[i] = galloc(1);
		memset(gp(d[i]), i + 1, 4096);
		*(uint8_t *)gp(st[i]) = 0xff;
		post(0, (struct buf[]){ { header(VIRTIO_BLK_T_OUT, (uint64_t)i * 8), 16, false },
					{ d[i], 4096, false }, { st[i], 1, true } }, 3);
	}
	kick(0);
	assert_true(wait_used(0, 21));
	for (int i = 0; i < 21; i++) {
		uint8_t chk[4096];

		assert_int_equal(*(uint8_t *)gp(st[i]), VIRTIO_BLK_S_OK);
		file_read((uint64_t)i * 4096, chk, sizeof(chk));
		assert_int_equal(chk[0], i + 1);
		assert_int_equal(chk[4095], i + 1);
	}
}

static void test_virtio_blk_rejects_short_header(void **state)
{
	uint64_t h = header(VIRTIO_BLK_T_IN, 0), st = galloc(1);

	dev_up(false, BLK_CACHE_WRITEBACK, 1);
	*(uint8_t *)gp(st) = 0xff;
	post(0, (struct buf[]){ { h, 8, false }, { st, 1, true } }, 2);
	kick(0);
	assert_true(wait_used(0, 1));
	assert_int_equal(*(uint8_t *)gp(st), VIRTIO_BLK_S_IOERR);
	assert_int_equal(g.fails, 0);
}

static void test_virtio_blk_rejects_out_of_range(void **state)
{
	uint64_t d = galloc(4096);

	dev_up(false, BLK_CACHE_WRITEBACK, 1);
	assert_int_equal(request(VIRTIO_BLK_T_IN, IMG_SECTORS, d, 512, true), VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(VIRTIO_BLK_T_IN, IMG_SECTORS - 1, d, 1024, true),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(VIRTIO_BLK_T_OUT, UINT64_MAX, d, 512, false), VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(VIRTIO_BLK_T_OUT, UINT64_MAX >> 9, d, 4096, false),
			 VIRTIO_BLK_S_IOERR);
	/* The last sector itself is fine. */
	assert_int_equal(request(VIRTIO_BLK_T_IN, IMG_SECTORS - 1, d, 512, true), VIRTIO_BLK_S_OK);
	/* So is a length that is not a whole sector: it is not. */
	assert_int_equal(request(VIRTIO_BLK_T_IN, 0, d, 100, true), VIRTIO_BLK_S_IOERR);
	assert_int_equal(g.fails, 0);
}

static void test_virtio_blk_readonly_refuses_writes(void **state)
{
	uint64_t d = galloc(512), seg = galloc(16);
	uint8_t chk[512], zero[512] = { 0 };

	dev_up(true, BLK_CACHE_WRITEBACK, 1);
	assert_true(g.vdev->ops->features(g.vdev) & (1ull << VIRTIO_BLK_F_RO));
	assert_false(g.vdev->ops->features(g.vdev) & (1ull << VIRTIO_BLK_F_DISCARD));
	memset(gp(d), 0x77, 512);
	assert_int_equal(request(VIRTIO_BLK_T_OUT, 0, d, 512, false), VIRTIO_BLK_S_IOERR);
	memset(gp(seg), 0, 16);
	*(uint32_t *)gp(seg + 8) = htole32(1);
	assert_int_equal(request(VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 16, false), VIRTIO_BLK_S_IOERR);
	file_read(0, chk, 512);
	assert_memory_equal(chk, zero, 512);
	assert_int_equal(request(VIRTIO_BLK_T_IN, 0, d, 512, true), VIRTIO_BLK_S_OK);
}

static void test_virtio_blk_get_id_and_unsupported(void **state)
{
	uint64_t d = galloc(20);

	dev_up(false, BLK_CACHE_WRITEBACK, 1);
	memset(gp(d), 0xee, 20);
	assert_int_equal(request(VIRTIO_BLK_T_GET_ID, 0, d, 20, true), VIRTIO_BLK_S_OK);
	assert_memory_equal(gp(d), "disk0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
	assert_int_equal(used_len(0, 0), 21);
	assert_int_equal(request(99, 0, d, 20, true), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(g.fails, 0);
}

static uint64_t segment(uint64_t sector, uint32_t n, uint32_t flags)
{
	uint64_t gpa = galloc(16);
	uint64_t s = htole64(sector);
	uint32_t nn = htole32(n), f = htole32(flags);

	memcpy(gp(gpa), &s, 8);
	memcpy(gp(gpa + 8), &nn, 4);
	memcpy(gp(gpa + 12), &f, 4);
	return gpa;
}

static void test_virtio_blk_discard_and_write_zeroes(void **state)
{
	uint64_t d = galloc(65536);
	uint8_t chk[4096], zero[4096] = { 0 };

	dev_up(false, BLK_CACHE_WRITEBACK, 1);
	memset(gp(d), 0x5a, 65536);
	assert_int_equal(request(VIRTIO_BLK_T_OUT, 0, d, 65536, false), VIRTIO_BLK_S_OK);
	assert_int_equal(request(VIRTIO_BLK_T_DISCARD, 0, segment(8, 8, 0), 16, false),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(request(VIRTIO_BLK_T_WRITE_ZEROES, 0, segment(32, 8, 0), 16, false),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(request(VIRTIO_BLK_T_WRITE_ZEROES, 0, segment(64, 8, 1), 16, false),
			 VIRTIO_BLK_S_OK);
	file_read(8 * 512, chk, 4096);
	assert_memory_equal(chk, zero, 4096);
	file_read(32 * 512, chk, 4096);
	assert_memory_equal(chk, zero, 4096);
	file_read(64 * 512, chk, 4096);
	assert_memory_equal(chk, zero, 4096);
	file_read(16 * 512, chk, 4096);
	assert_int_equal(chk[0], 0x5a);
	/* discard with unmap set, unknown flags: UNSUPP; beyond the disk, bad size: IOERR. */
	assert_int_equal(request(VIRTIO_BLK_T_DISCARD, 0, segment(0, 8, 1), 16, false),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(request(VIRTIO_BLK_T_WRITE_ZEROES, 0, segment(0, 8, 2), 16, false),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(request(VIRTIO_BLK_T_DISCARD, 0, segment(IMG_SECTORS - 4, 8, 0), 16, false),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(VIRTIO_BLK_T_DISCARD, 0, segment(0, 8, 0), 12, false),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(g.fails, 0);
}

/* No writable status byte: the device cannot answer, so it needs a reset
 * and takes no further requests; nothing crashes. */
static void test_virtio_blk_missing_status_fails_device(void **state)
{
	uint64_t h = header(VIRTIO_BLK_T_IN, 0), d = galloc(512);

	dev_up(false, BLK_CACHE_WRITEBACK, 1);
	post(0, (struct buf[]){ { h, 16, false }, { d, 512, false } }, 2);
	kick(0);
	for (int i = 0; i < 5000 && !__atomic_load_n(&g.fails, __ATOMIC_SEQ_CST); i++)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	assert_int_equal(g.fails, 1);
	assert_non_null(strstr(g.why, "status"));
	assert_int_equal(request(VIRTIO_BLK_T_IN, 0, d, 512, true), -1); /* ignored */
	assert_int_equal(g.fails, 1);
}

/* A descriptor pointing outside guest RAM is a protocol error from virtq__pop. */
static void test_virtio_blk_bad_descriptor_fails_device(void **state)
{
	uint64_t st = galloc(1);

	dev_up(false, BLK_CACHE_WRITEBACK, 1);
	post(0, (struct buf[]){ { RAM_SIZE + 4096, 16, false }, { st, 1, true } }, 2);
	kick(0);
	for (int i = 0; i < 5000 && !__atomic_load_n(&g.fails, __ATOMIC_SEQ_CST); i++)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	assert_int_equal(g.fails, 1);
}

static void test_virtio_blk_config_space(void **state)
{
	struct virtio_blk_config c;
	uint8_t tail[8];

	dev_up(false, BLK_CACHE_WRITEBACK, 3);
	assert_int_equal(g.vdev->ops->config_size, 60);
	g.vdev->ops->config_read(g.vdev, 0, &c, sizeof(c));
	assert_int_equal(le64toh(c.capacity), IMG_SECTORS);
	assert_int_equal(le32toh(c.blk_size), 512);
	assert_int_equal(le16toh(c.num_queues), 3);
	assert_int_equal(le32toh(c.seg_max), VIRTIO_BLK_SEG_MAX);
	assert_int_equal(le32toh(c.max_discard_seg), VIRTIO_BLK_MAX_DISCARD_SEG);
	assert_int_equal(offsetof(struct virtio_blk_config, num_queues), 34);
	assert_int_equal(offsetof(struct virtio_blk_config, write_zeroes_may_unmap), 56);
	/* Reads past the end return zeroes, not our memory. */
	memset(tail, 0xff, sizeof(tail));
	g.vdev->ops->config_read(g.vdev, 56, tail, sizeof(tail));
	assert_int_equal(tail[0], 1);
	assert_int_equal(tail[4] | tail[5] | tail[6] | tail[7], 0);
}

/* Queues other than 0 work, each with its own ring. */
static void test_virtio_blk_second_queue(void **state)
{
	uint64_t d = galloc(512), st = galloc(1);

	dev_up(false, BLK_CACHE_WRITEBACK, 2);
	memset(gp(d), 0x3c, 512);
	post(1, (struct buf[]){ { header(VIRTIO_BLK_T_OUT, 5), 16, false }, { d, 512, false },
				{ st, 1, true } }, 3);
	kick(1);
	assert_true(wait_used(1, 1));
	assert_int_equal(*(uint8_t *)gp(st), VIRTIO_BLK_S_OK);
	assert_int_equal(used_idx(0), 0);
}

/* A grown image: a request past the old end succeeds and the guest is told. */
static void test_virtio_blk_grown_image_raises_config_change(void **state)
{
	uint64_t d = galloc(512);
	struct virtio_blk_config c;

	dev_up(false, BLK_CACHE_WRITEBACK, 1);
	assert_int_equal(truncate(g.img, 2 * IMG_SECTORS * 512), 0);
	assert_int_equal(request(VIRTIO_BLK_T_IN, IMG_SECTORS, d, 512, true), VIRTIO_BLK_S_OK);
	assert_int_equal(g.config_changes, 1);
	g.vdev->ops->config_read(g.vdev, 0, &c, sizeof(c));
	assert_int_equal(le64toh(c.capacity), 2 * IMG_SECTORS);
}

/* Stop and start again (a guest reset): requests still work afterwards. */
static void test_virtio_blk_restart(void **state)
{
	uint64_t d = galloc(512);

	dev_up(false, BLK_CACHE_WRITEBACK, 1);
	assert_int_equal(request(VIRTIO_BLK_T_IN, 0, d, 512, true), VIRTIO_BLK_S_OK);
	g.vdev->ops->stop(g.vdev);
	g.vdev->ops->stop(g.vdev); /* idempotent */
	assert_int_equal(g.vdev->ops->start(g.vdev), 0);
	assert_int_equal(request(VIRTIO_BLK_T_IN, 0, d, 512, true), VIRTIO_BLK_S_OK);
}

/* Threads of this process (its /proc/self/task entries). */
static int nr_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/*
 * The device thread lives from prepare (or the first start) to destroy,
 * across stop and start, so a servicing's blackout neither ends a thread
 * (the old paravisor) nor makes one (the new one).
 */
static void test_virtio_blk_thread_parks_between_stop_and_start(void **state)
{
	uint64_t d = galloc(512);
	int n;

	dev_up(false, BLK_CACHE_WRITEBACK, 1);
	n = nr_threads();
	assert_int_equal(g.vdev->ops->prepare(g.vdev), 0); /* made already: nothing new */
	assert_int_equal(nr_threads(), n);
	g.vdev->ops->stop(g.vdev);
	assert_int_equal(nr_threads(), n);
	assert_int_equal(g.vdev->ops->start(g.vdev), 0);
	assert_int_equal(nr_threads(), n);
	assert_int_equal(request(VIRTIO_BLK_T_IN, 0, d, 512, true), VIRTIO_BLK_S_OK);
	dev_down();
	assert_int_equal(nr_threads(), n - 1);
}

/* The device thread: the one task dev_up added to this process. */
static int device_tid(const int *before, int nbefore)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int tid = -1;

	assert_non_null(d);
	while ((e = readdir(d))) {
		int t = atoi(e->d_name), seen = 0;

		for (int i = 0; i < nbefore; i++)
			seen |= before[i] == t;
		if (t > 0 && !seen)
			tid = t;
	}
	closedir(d);
	return tid;
}

static long voluntary_switches(int tid)
{
	char path[64], line[128];
	long n = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		sscanf(line, "voluntary_ctxt_switches: %ld", &n);
	fclose(f);
	return n;
}

static int task_ids(int *ids, int max)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) && n < max)
		if (atoi(e->d_name) > 0)
			ids[n++] = atoi(e->d_name);
	closedir(d);
	return n;
}

/*
 * Stop and start take the model from an idle device thread and give it
 * back without waking it (servicing's blackout has no thread switch in
 * either paravisor for them); what was queued meanwhile is served by
 * start itself.
 */
static void test_virtio_blk_stop_and_start_leave_idle_thread_asleep(void **state)
{
	uint64_t d = galloc(512), st = galloc(1);
	int before[64], nbefore = task_ids(before, 64), tid;
	long n;

	dev_up(false, BLK_CACHE_WRITEBACK, 1);
	tid = device_tid(before, nbefore);
	assert_true(tid > 0);
	assert_int_equal(request(VIRTIO_BLK_T_IN, 0, d, 512, true), VIRTIO_BLK_S_OK);
	nanosleep(&(struct timespec){0, 50000000}, NULL); /* back in epoll_wait */
	n = voluntary_switches(tid);
	g.vdev->ops->stop(g.vdev);
	/* Queued and kicked while stopped: start serves it. */
	*(uint8_t *)gp(st) = 0xff;
	post(0,
	     (struct buf[]){{header(VIRTIO_BLK_T_GET_ID, 0), 16, false},
			    {d, VIRTIO_BLK_ID_BYTES, true},
			    {st, 1, true}},
	     3);
	kick(0);
	nanosleep(&(struct timespec){0, 20000000}, NULL);
	assert_int_equal(voluntary_switches(tid), n);
	assert_int_equal(used_idx(0), 1);
	assert_int_equal(g.vdev->ops->start(g.vdev), 0);
	assert_int_equal(used_idx(0), 2); /* GET_ID needs no backend: served in start */
	assert_int_equal(*(uint8_t *)gp(st), VIRTIO_BLK_S_OK);
	nanosleep(&(struct timespec){0, 20000000}, NULL); /* a wake-up would show by now */
	assert_int_equal(voluntary_switches(tid), n);
	/* And the thread still serves kicks after the restart. */
	assert_int_equal(request(VIRTIO_BLK_T_IN, 0, d, 512, true), VIRTIO_BLK_S_OK);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_virtio_blk_write_then_read_writeback),
	    T(test_virtio_blk_write_then_read_direct),
	    T(test_virtio_blk_split_header_and_data),
	    T(test_virtio_blk_batch_of_requests),
	    T(test_virtio_blk_rejects_short_header),
	    T(test_virtio_blk_rejects_out_of_range),
	    T(test_virtio_blk_readonly_refuses_writes),
	    T(test_virtio_blk_get_id_and_unsupported),
	    T(test_virtio_blk_discard_and_write_zeroes),
	    T(test_virtio_blk_missing_status_fails_device),
	    T(test_virtio_blk_bad_descriptor_fails_device),
	    T(test_virtio_blk_config_space),
	    T(test_virtio_blk_second_queue),
	    T(test_virtio_blk_grown_image_raises_config_change),
	    T(test_virtio_blk_restart),
	    T(test_virtio_blk_thread_parks_between_stop_and_start),
	    T(test_virtio_blk_stop_and_start_leave_idle_thread_asleep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
