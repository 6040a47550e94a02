/* storage/raw_uring.h — a raw disk image served through io_uring.
 *
 * The caller queues requests (each with a cookie), submits them in one
 * batch, then reaps completions when the backend's eventfd is readable.
 * Knows nothing of virtio: offsets and lengths are bytes. */
#ifndef VMMD_STORAGE_RAW_URING_H
#define VMMD_STORAGE_RAW_URING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

enum blk_cache {
	BLK_CACHE_NONE,      /* O_DIRECT: the host page cache is bypassed */
	BLK_CACHE_WRITEBACK, /* buffered; data is durable after a flush */
};

struct blk_backend;

/* Opens path (O_RDONLY when readonly).  NULL with errno set on failure;
 * errno EINVAL with cache=none means the file system cannot do O_DIRECT. */
struct blk_backend *blk_backend__open(const char *path, bool readonly, enum blk_cache cache,
				      unsigned int depth);
void blk_backend__close(struct blk_backend *b);

/* True when the kernel took the ring's restrictions (Linux 5.10+): only
 * read, write, flush, fallocate and no-op requests get through. */
bool blk_backend__restricted(const struct blk_backend *b);
/* For tests: one bare request with this io_uring opcode, submitted and
 * waited for; its result (-EACCES for what the restrictions refuse). */
int blk_backend__try_op(struct blk_backend *b, uint8_t opcode);

/* Size in bytes as last seen by fstat. */
uint64_t blk_backend__size(const struct blk_backend *b);
/* Re-reads the size; returns 1 if it changed, 0 if not, <0 on error. */
int blk_backend__refresh_size(struct blk_backend *b);
bool blk_backend__readonly(const struct blk_backend *b);
/* Readable when completions are waiting (registered with the ring). */
int blk_backend__event_fd(const struct blk_backend *b);
/* How many more requests can be queued before some complete. */
unsigned int blk_backend__room(const struct blk_backend *b);

/* Queue one request; nothing reaches the kernel before blk_backend__submit().
 * 0, -EBUSY (no room: reap first) or -ENOMEM.  The iovecs must stay valid
 * until the request completes (they are copied, the memory is not). */
int blk_backend__read(struct blk_backend *b, const struct iovec *iov, unsigned int n,
		      uint64_t off, void *cookie);
int blk_backend__write(struct blk_backend *b, const struct iovec *iov, unsigned int n,
		       uint64_t off, void *cookie);
int blk_backend__flush(struct blk_backend *b, void *cookie);
/* Deallocates the range (reads back as zeroes). */
int blk_backend__discard(struct blk_backend *b, uint64_t off, uint64_t len, void *cookie);
/* Zeroes the range; unmap allows deallocating it instead of writing zeroes. */
int blk_backend__write_zeroes(struct blk_backend *b, uint64_t off, uint64_t len, bool unmap,
			      void *cookie);

/* Hands every queued request to the kernel.  0 or negative errno. */
int blk_backend__submit(struct blk_backend *b);

/* Calls done(cookie, res, opaque) for each finished request: res is the byte
 * count (read/write), 0, or a negative errno.  Short transfers are reported
 * as -EIO.  Clears the eventfd.  Returns the number of completions. */
typedef void (*blk_done_fn)(void *cookie, int res, void *opaque);
int blk_backend__reap(struct blk_backend *b, blk_done_fn done, void *opaque);

/* Blocks until every request in flight completed (reaping them). */
void blk_backend__drain(struct blk_backend *b, blk_done_fn done, void *opaque);
unsigned int blk_backend__inflight(const struct blk_backend *b);

#endif
