// SPDX-License-Identifier: MIT
/*
 * blkload — random direct reads from a block device, for tests/bench/blk.
 *
 * busybox dd can only read sequentially, and fio from Debian links 64
 * libraries (ceph's among them, 80 MB), too much for a test initramfs.  This
 * is the one fio job the benchmark needs: DEPTH threads each keep one
 * O_DIRECT pread of BS bytes at a random aligned offset in flight, for
 * SECONDS, so the device sees a queue depth of DEPTH.
 *
 *   blkload DEVICE BS DEPTH SECONDS
 * prints "VMMD-BLKLOAD ios=<n> bytes=<n> secs=<s> iops=<n> mbs=<MB/s>
 * max_us=<n> over10ms=<n>": the slowest single read, and how many took
 * longer than 10 ms (tests/bench/service: what a servicing's blackout looks
 * like from the guest).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

struct job {
	int fd;
	size_t bs;
	uint64_t blocks;
	double deadline;
	uint64_t seed;
	uint64_t ios;
	uint64_t max_us;   /* the slowest read */
	uint64_t over10ms; /* reads slower than 10 ms */
	int err;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* xorshift64*: cheap, and each thread has its own state. */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static void *blkload__worker(void *arg)
{
	struct job *j = arg;
	void *buf;

	if (posix_memalign(&buf, 4096, j->bs)) {
		j->err = ENOMEM;
		return NULL;
	}
	/* Each read is timed (the stall a servicing causes is one slow read);
	 * a clock read costs little next to a read through the device. */
	for (double t = now(); t < j->deadline;) {
		off_t off = (off_t)(next_rand(&j->seed) % j->blocks) * (off_t)j->bs;
		double t1;
		uint64_t us;

		if (pread(j->fd, buf, j->bs, off) != (ssize_t)j->bs) {
			j->err = errno ? errno : EIO;
			break;
		}
		t1 = now();
		us = (uint64_t)((t1 - t) * 1e6);
		if (us > j->max_us)
			j->max_us = us;
		j->over10ms += us > 10000;
		j->ios++;
		t = t1;
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	uint64_t size, total = 0, max_us = 0, over10ms = 0;
	size_t bs;
	int depth, secs, fd, rc = 0;
	struct job *jobs;
	pthread_t *tids;
	double start, elapsed;

	if (argc != 5) {
		fprintf(stderr, "usage: blkload DEVICE BS DEPTH SECONDS\n");
		return 2;
	}
	bs = strtoul(argv[2], NULL, 0);
	depth = atoi(argv[3]);
	secs = atoi(argv[4]);
	if (bs < 512 || bs % 512 || depth < 1 || depth > 256 || secs < 1) {
		fprintf(stderr, "blkload: BS must be a multiple of 512, DEPTH 1..256, SECONDS >= 1\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY | O_DIRECT);
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size) < 0) {
		fprintf(stderr, "blkload: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (size < bs) {
		fprintf(stderr, "blkload: %s: smaller than one block\n", argv[1]);
		return 1;
	}
	jobs = calloc(depth, sizeof(*jobs));
	tids = calloc(depth, sizeof(*tids));
	if (!jobs || !tids)
		return 1;
	start = now();
	for (int i = 0; i < depth; i++) {
		jobs[i] = (struct job){ .fd = fd, .bs = bs, .blocks = size / bs,
					.deadline = start + secs,
					.seed = 0x9e3779b97f4a7c15ULL * (i + 1) };
		if (pthread_create(&tids[i], NULL, blkload__worker, &jobs[i])) {
			fprintf(stderr, "blkload: cannot start thread %d\n", i);
			return 1;
		}
	}
	for (int i = 0; i < depth; i++) {
		pthread_join(tids[i], NULL);
		total += jobs[i].ios;
		over10ms += jobs[i].over10ms;
		if (jobs[i].max_us > max_us)
			max_us = jobs[i].max_us;
		if (jobs[i].err) {
			fprintf(stderr, "blkload: %s: read failed: %s\n", argv[1],
				strerror(jobs[i].err));
			rc = 1;
		}
	}
	elapsed = now() - start;
	printf("VMMD-BLKLOAD ios=%llu bytes=%llu secs=%.3f iops=%.0f mbs=%.1f max_us=%llu "
	       "over10ms=%llu\n",
	       (unsigned long long)total, (unsigned long long)(total * bs), elapsed,
	       total / elapsed, total * bs / elapsed / 1e6, (unsigned long long)max_us,
	       (unsigned long long)over10ms);
	free(jobs);
	free(tids);
	close(fd);
	return rc;
}
