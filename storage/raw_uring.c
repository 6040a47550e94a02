/* storage/raw_uring.c — raw image backend on io_uring (liburing).
 *
 * One ring per backend, an eventfd registered with it so the owner's epoll
 * wakes on completions.  With cache=none the image is O_DIRECT; requests
 * whose memory is not aligned for it go through an aligned bounce buffer,
 * and requests whose offset or length is not (only on file systems with
 * alignment above 512 bytes) go through a second, buffered descriptor, so a
 * guest never sees an error for an alignment it could not know about. */
#include "storage/raw_uring.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

enum blk_op { BLK_OP_READ, BLK_OP_WRITE, BLK_OP_FLUSH, BLK_OP_FALLOC };

struct blk_io {
	void *cookie;
	enum blk_op op;
	uint64_t len; /* bytes expected for read/write; 0 otherwise */
	/* Bounce buffer and the caller's iovecs to copy a read back into. */
	void *bounce;
	struct iovec biov;
	const struct iovec *uiov;
	unsigned int un;
	struct blk_io *next; /* free list */
};

struct blk_backend {
	struct io_uring ring;
	int fd;
	int buf_fd; /* cache=none: buffered twin for misaligned offsets, else -1 */
	int efd;
	bool readonly, direct;
	bool restricted; /* the ring takes disk operations only */
	uint64_t size;
	uint32_t mem_align, off_align;
	unsigned int depth, inflight, queued;
	struct blk_io *ios, *free;
};

static void blk_backend__dio_align(struct blk_backend *b)
{
	struct statx stx;

	/* 512 is what every block device supports; ask the kernel (6.1+) for
	 * the real figures when it knows them. */
	b->mem_align = b->off_align = 512;
	if (statx(b->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
		b->mem_align = stx.stx_dio_mem_align ? stx.stx_dio_mem_align : 1;
		b->off_align = stx.stx_dio_offset_align;
	}
	if (b->mem_align < sizeof(void *))
		b->mem_align = sizeof(void *); /* posix_memalign's minimum */
}

/* Only the operations a disk needs, and no more registrations: io_uring
 * requests are not seen by seccomp, so without this a compromised
 * paravisor could open files or sockets through its disk's ring. */
static int blk_backend__restrict(struct blk_backend *b)
{
	static const uint8_t ops[] = { IORING_OP_NOP, IORING_OP_READV, IORING_OP_WRITEV,
				       IORING_OP_FSYNC, IORING_OP_FALLOCATE };
	struct io_uring_restriction res[sizeof(ops)];
	int err;

	if (!(b->ring.flags & IORING_SETUP_R_DISABLED))
		return 0;
	memset(res, 0, sizeof(res));
	for (size_t i = 0; i < sizeof(ops); i++) {
		res[i].opcode = IORING_RESTRICTION_SQE_OP;
		res[i].sqe_op = ops[i];
	}
	/* Debian 12's liburing 2.3 declares io_uring_register_restrictions()
	 * and io_uring_enable_rings() but does not export them: the syscall. */
	err = (int)syscall(__NR_io_uring_register, b->ring.ring_fd, IORING_REGISTER_RESTRICTIONS,
			   res, sizeof(ops));
	if (err < 0)
		return -errno;
	b->restricted = true;
	err = (int)syscall(__NR_io_uring_register, b->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS,
			   NULL, 0);
	return err < 0 ? -errno : 0;
}

int blk_backend__try_op(struct blk_backend *b, uint8_t opcode)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
	struct io_uring_cqe *cqe;
	int res;

	if (!sqe)
		return -EBUSY;
	io_uring_prep_nop(sqe);
	sqe->opcode = opcode;
	sqe->fd = -1;
	io_uring_sqe_set_data(sqe, NULL);
	res = io_uring_submit_and_wait(&b->ring, 1);
	if (res < 0)
		return res;
	res = io_uring_wait_cqe(&b->ring, &cqe);
	if (res < 0)
		return res;
	res = cqe->res;
	io_uring_cqe_seen(&b->ring, cqe);
	return res;
}

bool blk_backend__restricted(const struct blk_backend *b)
{
	return b->restricted;
}

struct blk_backend *blk_backend__open(const char *path, bool readonly, enum blk_cache cache,
				      unsigned int depth)
{
	int flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct blk_backend *b;
	struct stat st;
	int err;

	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->fd = b->buf_fd = b->efd = -1;
	b->readonly = readonly;
	b->direct = cache == BLK_CACHE_NONE;
	b->depth = depth ? depth : 128;

	/* Open buffered first: a missing file says ENOENT, not O_DIRECT's EINVAL. */
	b->fd = open(path, flags);
	if (b->fd < 0)
		goto fail;
	if (fstat(b->fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = S_ISDIR(st.st_mode) ? EISDIR : ENOTSUP;
		goto fail;
	}
	b->size = (uint64_t)st.st_size;
	if (b->direct) {
		b->buf_fd = b->fd;
		b->fd = open(path, flags | O_DIRECT);
		if (b->fd < 0)
			goto fail;
		blk_backend__dio_align(b);
	}

	b->ios = calloc(b->depth, sizeof(*b->ios));
	if (!b->ios)
		goto fail;
	for (unsigned int i = 0; i < b->depth; i++) {
		b->ios[i].next = b->free;
		b->free = &b->ios[i];
	}
	b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (b->efd < 0)
		goto fail;
	/* CQ twice the SQ (liburing's default) and inflight <= depth: no overflow.
	 * Created disabled so its restrictions are in place before it runs. */
	err = io_uring_queue_init(b->depth, &b->ring, IORING_SETUP_R_DISABLED);
	if (err == -EINVAL) /* before Linux 5.10: no restrictions either */
		err = io_uring_queue_init(b->depth, &b->ring, 0);
	if (err < 0) {
		errno = -err;
		goto fail;
	}
	err = io_uring_register_eventfd(&b->ring, b->efd);
	if (!err)
		err = blk_backend__restrict(b);
	if (err < 0) {
		io_uring_queue_exit(&b->ring);
		errno = -err;
		goto fail;
	}
	return b;

fail:
	err = errno;
	if (b->efd >= 0)
		close(b->efd);
	if (b->fd >= 0)
		close(b->fd);
	if (b->buf_fd >= 0)
		close(b->buf_fd);
	free(b->ios);
	free(b);
	errno = err;
	return NULL;
}

void blk_backend__close(struct blk_backend *b)
{
	if (!b)
		return;
	io_uring_queue_exit(&b->ring);
	close(b->efd);
	close(b->fd);
	if (b->buf_fd >= 0)
		close(b->buf_fd);
	for (unsigned int i = 0; i < b->depth; i++)
		free(b->ios[i].bounce);
	free(b->ios);
	free(b);
}

uint64_t blk_backend__size(const struct blk_backend *b)
{
	return __atomic_load_n(&b->size, __ATOMIC_RELAXED);
}

int blk_backend__refresh_size(struct blk_backend *b)
{
	struct stat st;

	if (fstat(b->fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size == blk_backend__size(b))
		return 0;
	__atomic_store_n(&b->size, (uint64_t)st.st_size, __ATOMIC_RELAXED);
	return 1;
}

bool blk_backend__readonly(const struct blk_backend *b)
{
	return b->readonly;
}

int blk_backend__event_fd(const struct blk_backend *b)
{
	return b->efd;
}

unsigned int blk_backend__room(const struct blk_backend *b)
{
	return b->depth - b->inflight;
}

unsigned int blk_backend__inflight(const struct blk_backend *b)
{
	return b->inflight;
}

static struct blk_io *blk_backend__get(struct blk_backend *b, struct io_uring_sqe **sqe,
				       enum blk_op op, void *cookie)
{
	struct blk_io *io = b->free;

	if (!io)
		return NULL;
	*sqe = io_uring_get_sqe(&b->ring);
	if (!*sqe) {
		/* Only when the SQ is full of unsubmitted entries. */
		if (io_uring_submit(&b->ring) < 0)
			return NULL;
		b->queued = 0;
		*sqe = io_uring_get_sqe(&b->ring);
		if (!*sqe)
			return NULL;
	}
	b->free = io->next;
	io->cookie = cookie;
	io->op = op;
	io->len = 0;
	io->uiov = NULL;
	io->un = 0;
	b->inflight++;
	b->queued++;
	return io;
}

static bool iov_aligned(const struct iovec *iov, unsigned int n, uint32_t align)
{
	for (unsigned int i = 0; i < n; i++)
		if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & (align - 1))
			return false;
	return true;
}

static uint64_t iov_len(const struct iovec *iov, unsigned int n)
{
	uint64_t len = 0;

	for (unsigned int i = 0; i < n; i++)
		len += iov[i].iov_len;
	return len;
}

static int blk_backend__bounce(struct blk_backend *b, struct blk_io *io, uint64_t len)
{
	/* Kept between requests; regrown when a longer one needs it. */
	if (io->bounce && io->biov.iov_len >= len) {
		io->biov.iov_len = len;
		return 0;
	}
	free(io->bounce);
	io->bounce = NULL;
	if (posix_memalign(&io->bounce, b->mem_align, len ? len : b->mem_align))
		return -ENOMEM;
	io->biov = (struct iovec){ io->bounce, len };
	return 0;
}

static void blk_backend__put(struct blk_backend *b, struct blk_io *io)
{
	io->next = b->free;
	b->free = io;
	b->inflight--;
}

static int blk_backend__rw(struct blk_backend *b, bool write, const struct iovec *iov,
			   unsigned int n, uint64_t off, void *cookie)
{
	struct io_uring_sqe *sqe;
	struct blk_io *io;
	uint64_t len = iov_len(iov, n);
	int fd = b->fd;

	if (write && b->readonly)
		return -EROFS;
	io = blk_backend__get(b, &sqe, write ? BLK_OP_WRITE : BLK_OP_READ, cookie);
	if (!io)
		return -EBUSY;
	io->len = len;
	if (b->direct && ((off | len) & (b->off_align - 1))) {
		fd = b->buf_fd;
	} else if (b->direct && !iov_aligned(iov, n, b->mem_align)) {
		/* An unaligned length forces a bounce as well; the read/write
		 * length itself stays the caller's (offset alignment holds). */
		if (blk_backend__bounce(b, io, len)) {
			/* The SQE is taken: turn it into a no-op nobody waits for. */
			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data(sqe, NULL);
			blk_backend__put(b, io);
			return -ENOMEM;
		}
		if (write) {
			uint8_t *p = io->bounce;

			for (unsigned int i = 0; i < n; i++) {
				memcpy(p, iov[i].iov_base, iov[i].iov_len);
				p += iov[i].iov_len;
			}
		} else {
			io->uiov = iov;
			io->un = n;
		}
		iov = &io->biov;
		n = 1;
	}
	if (write)
		io_uring_prep_writev(sqe, fd, iov, n, off);
	else
		io_uring_prep_readv(sqe, fd, iov, n, off);
	io_uring_sqe_set_data(sqe, io);
	return 0;
}

int blk_backend__read(struct blk_backend *b, const struct iovec *iov, unsigned int n,
		      uint64_t off, void *cookie)
{
	return blk_backend__rw(b, false, iov, n, off, cookie);
}

int blk_backend__write(struct blk_backend *b, const struct iovec *iov, unsigned int n,
		       uint64_t off, void *cookie)
{
	return blk_backend__rw(b, true, iov, n, off, cookie);
}

int blk_backend__flush(struct blk_backend *b, void *cookie)
{
	struct io_uring_sqe *sqe;
	struct blk_io *io = blk_backend__get(b, &sqe, BLK_OP_FLUSH, cookie);

	if (!io)
		return -EBUSY;
	/* The inode is shared by both descriptors: one fdatasync covers
	 * writes that went through the buffered twin too. */
	io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data(sqe, io);
	return 0;
}

static int blk_backend__fallocate(struct blk_backend *b, int mode, uint64_t off, uint64_t len,
				  void *cookie)
{
	struct io_uring_sqe *sqe;
	struct blk_io *io;

	if (b->readonly)
		return -EROFS;
	io = blk_backend__get(b, &sqe, BLK_OP_FALLOC, cookie);
	if (!io)
		return -EBUSY;
	io_uring_prep_fallocate(sqe, b->fd, mode, (off_t)off, (off_t)len);
	io_uring_sqe_set_data(sqe, io);
	return 0;
}

int blk_backend__discard(struct blk_backend *b, uint64_t off, uint64_t len, void *cookie)
{
	return blk_backend__fallocate(b, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len,
				      cookie);
}

int blk_backend__write_zeroes(struct blk_backend *b, uint64_t off, uint64_t len, bool unmap,
			      void *cookie)
{
	int mode = unmap ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE;

	return blk_backend__fallocate(b, mode | FALLOC_FL_KEEP_SIZE, off, len, cookie);
}

int blk_backend__submit(struct blk_backend *b)
{
	int ret;

	if (!b->queued)
		return 0;
	do
		ret = io_uring_submit(&b->ring);
	while (ret == -EINTR);
	if (ret < 0)
		return ret;
	b->queued = 0;
	return 0;
}

static int blk_backend__result(struct blk_io *io, int res)
{
	if (res < 0)
		return res;
	if (io->op == BLK_OP_READ || io->op == BLK_OP_WRITE) {
		if ((uint64_t)res != io->len)
			return -EIO; /* past the end of a shrunk file, or out of space */
		if (io->uiov) {
			const uint8_t *p = io->bounce;

			for (unsigned int i = 0; i < io->un; i++) {
				memcpy(io->uiov[i].iov_base, p, io->uiov[i].iov_len);
				p += io->uiov[i].iov_len;
			}
		}
	}
	return res;
}

int blk_backend__reap(struct blk_backend *b, blk_done_fn done, void *opaque)
{
	struct io_uring_cqe *cqe;
	uint64_t v;
	int n = 0;

	/* Clear first: a completion landing after this read signals again. */
	if (read(b->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	while (io_uring_peek_cqe(&b->ring, &cqe) == 0) {
		struct blk_io *io = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&b->ring, cqe);
		if (!io)
			continue;
		void *cookie = io->cookie;

		res = blk_backend__result(io, res);
		blk_backend__put(b, io);
		done(cookie, res, opaque);
		n++;
	}
	return n;
}

void blk_backend__drain(struct blk_backend *b, blk_done_fn done, void *opaque)
{
	blk_backend__submit(b);
	while (b->inflight) {
		struct io_uring_cqe *cqe;

		int err = io_uring_wait_cqe(&b->ring, &cqe);

		if (err < 0 && err != -EINTR)
			break;
		blk_backend__reap(b, done, opaque);
	}
}
