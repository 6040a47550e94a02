/* tests/unit/test_raw_uring.c — the io_uring raw image backend on a real
 * temporary file through a real ring: data, alignment fallbacks, flush,
 * discard, write zeroes, read-only, errors and the completion eventfd. */
#include "storage/raw_uring.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define IMG_SIZE (1 << 20)

static char img[256];

struct done_log {
	int n;
	void *cookie[64];
	int res[64];
};

static void on_done(void *cookie, int res, void *opaque)
{
	struct done_log *l = opaque;

	l->cookie[l->n] = cookie;
	l->res[l->n] = res;
	l->n++;
}

/* Waits on the eventfd (as the device thread's epoll would), then reaps. */
static void wait_done(struct blk_backend *b, struct done_log *l, int want)
{
	for (int tries = 0; l->n < want && tries < 100; tries++) {
		struct pollfd p = { blk_backend__event_fd(b), POLLIN, 0 };

		assert_true(poll(&p, 1, 5000) == 1);
		blk_backend__reap(b, on_done, l);
	}
	assert_int_equal(l->n, want);
}

static int setup(void **state)
{
	int fd;

	snprintf(img, sizeof(img), "%s/test_raw_uring.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : ".");
	fd = mkstemp(img);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, IMG_SIZE), 0);
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	unlink(img);
	return 0;
}

static void pattern(uint8_t *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + seed);
}

static void file_read(uint64_t off, void *buf, size_t len)
{
	int fd = open(img, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void roundtrip(enum blk_cache cache, size_t misalign)
{
	struct blk_backend *b = blk_backend__open(img, false, cache, 32);
	static uint8_t wbuf[3 * 4096 + 64] __attribute__((aligned(4096)));
	static uint8_t rbuf[3 * 4096 + 64] __attribute__((aligned(4096)));
	uint8_t check[3 * 4096];
	struct iovec wiov[3], riov[3];
	struct done_log l = { 0 };
	int cookies[8];

	if (!b && cache == BLK_CACHE_NONE && errno == EINVAL)
		skip(); /* this file system has no O_DIRECT */
	assert_non_null(b);
	assert_int_equal(blk_backend__size(b), IMG_SIZE);
	pattern(wbuf + misalign, 3 * 4096, 3);
	for (int i = 0; i < 3; i++) {
		wiov[i] = (struct iovec){ wbuf + misalign + i * 4096, 4096 };
		riov[i] = (struct iovec){ rbuf + misalign + i * 4096, 4096 };
	}
	/* A batch of writes to different places, one submit. */
	for (int i = 0; i < 4; i++)
		assert_int_equal(blk_backend__write(b, wiov, 3, (uint64_t)i * 65536, &cookies[i]), 0);
	assert_int_equal(blk_backend__inflight(b), 4);
	assert_int_equal(blk_backend__submit(b), 0);
	wait_done(b, &l, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(l.res[i], 3 * 4096);
	assert_int_equal(blk_backend__inflight(b), 0);

	file_read(65536, check, sizeof(check));
	assert_memory_equal(check, wbuf + misalign, sizeof(check));

	memset(rbuf, 0, sizeof(rbuf));
	assert_int_equal(blk_backend__read(b, riov, 3, 3 * 65536, &cookies[5]), 0);
	assert_int_equal(blk_backend__flush(b, &cookies[6]), 0);
	assert_int_equal(blk_backend__submit(b), 0);
	l.n = 0;
	wait_done(b, &l, 2);
	for (int i = 0; i < 2; i++) {
		if (l.cookie[i] == &cookies[5])
			assert_int_equal(l.res[i], 3 * 4096);
		else
			assert_true(l.cookie[i] == &cookies[6] && l.res[i] == 0);
	}
	assert_memory_equal(rbuf + misalign, wbuf + misalign, 3 * 4096);
	blk_backend__close(b);
}

static void test_raw_uring_writeback_roundtrip(void **state)
{
	roundtrip(BLK_CACHE_WRITEBACK, 0);
}

static void test_raw_uring_direct_roundtrip(void **state)
{
	roundtrip(BLK_CACHE_NONE, 0);
}

/* Guest buffers not aligned for O_DIRECT go through a bounce buffer. */
static void test_raw_uring_direct_misaligned_memory_bounces(void **state)
{
	roundtrip(BLK_CACHE_NONE, 8);
}

/* An offset that O_DIRECT cannot take (512 aligned, not 4096 aligned, on a
 * 4 KiB-sector file system) or a short odd length still works. */
static void test_raw_uring_direct_odd_offset(void **state)
{
	struct blk_backend *b = blk_backend__open(img, false, BLK_CACHE_NONE, 8);
	uint8_t w[512], r[512], chk[512];
	struct iovec wi = { w + 0, 512 }, ri = { r, 512 };
	struct done_log l = { 0 };

	if (!b && errno == EINVAL)
		skip();
	assert_non_null(b);
	pattern(w, sizeof(w), 9);
	assert_int_equal(blk_backend__write(b, &wi, 1, 512 * 3, NULL), 0);
	assert_int_equal(blk_backend__submit(b), 0);
	wait_done(b, &l, 1);
	assert_int_equal(l.res[0], 512);
	assert_int_equal(blk_backend__read(b, &ri, 1, 512 * 3, NULL), 0);
	assert_int_equal(blk_backend__submit(b), 0);
	wait_done(b, &l, 2);
	assert_int_equal(l.res[1], 512);
	assert_memory_equal(r, w, 512);
	file_read(512 * 3, chk, 512);
	assert_memory_equal(chk, w, 512);
	blk_backend__close(b);
}

static void test_raw_uring_discard_and_write_zeroes_read_back_zero(void **state)
{
	struct blk_backend *b = blk_backend__open(img, false, BLK_CACHE_WRITEBACK, 8);
	static uint8_t buf[65536];
	uint8_t zero[8192] = { 0 }, chk[8192];
	struct iovec iov = { buf, sizeof(buf) };
	struct done_log l = { 0 };
	struct stat st;

	assert_non_null(b);
	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(blk_backend__write(b, &iov, 1, 0, NULL), 0);
	assert_int_equal(blk_backend__submit(b), 0);
	wait_done(b, &l, 1);
	assert_int_equal(blk_backend__discard(b, 8192, 8192, NULL), 0);
	assert_int_equal(blk_backend__write_zeroes(b, 32768, 8192, false, NULL), 0);
	assert_int_equal(blk_backend__write_zeroes(b, 49152, 8192, true, NULL), 0);
	assert_int_equal(blk_backend__submit(b), 0);
	wait_done(b, &l, 4);
	for (int i = 1; i < 4; i++)
		assert_int_equal(l.res[i], 0);
	file_read(8192, chk, sizeof(chk));
	assert_memory_equal(chk, zero, sizeof(chk));
	file_read(32768, chk, sizeof(chk));
	assert_memory_equal(chk, zero, sizeof(chk));
	file_read(49152, chk, sizeof(chk));
	assert_memory_equal(chk, zero, sizeof(chk));
	file_read(16384, chk, sizeof(chk)); /* between them: untouched */
	assert_int_equal(chk[0], 0xa5);
	assert_int_equal(chk[sizeof(chk) - 1], 0xa5);
	assert_int_equal(stat(img, &st), 0);
	assert_int_equal(st.st_size, IMG_SIZE); /* KEEP_SIZE */
	blk_backend__close(b);
}

static void test_raw_uring_readonly_refuses_writes(void **state)
{
	struct blk_backend *b = blk_backend__open(img, true, BLK_CACHE_WRITEBACK, 8);
	uint8_t buf[512] = { 1 };
	struct iovec iov = { buf, sizeof(buf) };
	struct done_log l = { 0 };

	assert_non_null(b);
	assert_true(blk_backend__readonly(b));
	assert_int_equal(blk_backend__write(b, &iov, 1, 0, NULL), -EROFS);
	assert_int_equal(blk_backend__discard(b, 0, 512, NULL), -EROFS);
	assert_int_equal(blk_backend__write_zeroes(b, 0, 512, false, NULL), -EROFS);
	assert_int_equal(blk_backend__inflight(b), 0);
	/* Reads and flushes still work. */
	assert_int_equal(blk_backend__read(b, &iov, 1, 0, NULL), 0);
	assert_int_equal(blk_backend__flush(b, NULL), 0);
	assert_int_equal(blk_backend__submit(b), 0);
	wait_done(b, &l, 2);
	assert_int_equal(l.res[0] >= 0 && l.res[1] >= 0, 1);
	blk_backend__close(b);
}

/* A read past the end of the file (shrunk under us) is an error, not a
 * short read the guest would take for data. */
static void test_raw_uring_read_past_eof_is_eio(void **state)
{
	struct blk_backend *b = blk_backend__open(img, false, BLK_CACHE_WRITEBACK, 8);
	uint8_t buf[4096];
	struct iovec iov = { buf, sizeof(buf) };
	struct done_log l = { 0 };

	assert_non_null(b);
	assert_int_equal(blk_backend__read(b, &iov, 1, IMG_SIZE - 512, NULL), 0);
	assert_int_equal(blk_backend__submit(b), 0);
	wait_done(b, &l, 1);
	assert_int_equal(l.res[0], -EIO);
	blk_backend__close(b);
}

static void test_raw_uring_queue_full_is_ebusy(void **state)
{
	struct blk_backend *b = blk_backend__open(img, false, BLK_CACHE_WRITEBACK, 4);
	struct done_log l = { 0 };

	assert_non_null(b);
	for (int i = 0; i < 4; i++)
		assert_int_equal(blk_backend__flush(b, NULL), 0);
	assert_int_equal(blk_backend__room(b), 0);
	assert_int_equal(blk_backend__flush(b, NULL), -EBUSY);
	blk_backend__drain(b, on_done, &l);
	assert_int_equal(l.n, 4);
	assert_int_equal(blk_backend__room(b), 4);
	blk_backend__close(b);
}

static void test_raw_uring_size_refresh_sees_growth(void **state)
{
	struct blk_backend *b = blk_backend__open(img, false, BLK_CACHE_WRITEBACK, 4);

	assert_non_null(b);
	assert_int_equal(blk_backend__refresh_size(b), 0);
	assert_int_equal(truncate(img, 2 * IMG_SIZE), 0);
	assert_int_equal(blk_backend__refresh_size(b), 1);
	assert_int_equal(blk_backend__size(b), 2 * IMG_SIZE);
	blk_backend__close(b);
}

/* What seccomp cannot see: the ring refuses anything but disk operations. */
static void test_raw_uring_ring_refuses_other_operations(void **state)
{
	struct blk_backend *b = blk_backend__open(img, false, BLK_CACHE_WRITEBACK, 8);

	assert_non_null(b);
	assert_true(blk_backend__restricted(b));
	assert_int_equal(blk_backend__try_op(b, IORING_OP_NOP), 0);
	assert_int_equal(blk_backend__try_op(b, IORING_OP_OPENAT), -EACCES);
	assert_int_equal(blk_backend__try_op(b, IORING_OP_SOCKET), -EACCES);
	assert_int_equal(blk_backend__try_op(b, IORING_OP_CONNECT), -EACCES);
	blk_backend__close(b);
}

static void test_raw_uring_open_errors(void **state)
{
	char dir[300];

	errno = 0;
	assert_null(blk_backend__open("/nonexistent/vmmd.img", false, BLK_CACHE_WRITEBACK, 4));
	assert_int_equal(errno, ENOENT);
	snprintf(dir, sizeof(dir), "%s", img);
	*strrchr(dir, '/') = 0;
	assert_null(blk_backend__open(dir, true, BLK_CACHE_WRITEBACK, 4));
	assert_int_equal(errno, EISDIR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_raw_uring_writeback_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_raw_uring_direct_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_raw_uring_direct_misaligned_memory_bounces,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_raw_uring_direct_odd_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_raw_uring_discard_and_write_zeroes_read_back_zero,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_raw_uring_readonly_refuses_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_raw_uring_read_past_eof_is_eio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_raw_uring_queue_full_is_ebusy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_raw_uring_size_refresh_sees_growth, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_raw_uring_ring_refuses_other_operations, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_raw_uring_open_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
