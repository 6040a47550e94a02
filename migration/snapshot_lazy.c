/*
 * migration/snapshot_lazy.c — lazy restore by userfaultfd.
 *
 * The plain lazy restore (snapshot_mem__map) maps the memory file
 * privately over guest RAM: the guest runs at once and pages come in as it
 * touches them, but RAM is then no longer the memfd, which a paravisor
 * maps from its own process and would see empty.  Here RAM stays the
 * memfd: it is emptied, its mapping in vmm is registered for missing-page
 * faults, and one thread fills pages with UFFDIO_COPY, those something
 * waits on first (a vCPU, through KVM, or a vmm thread), the rest in file
 * order between faults.  Once every data extent of the file is in, the
 * range is unregistered: a page still missing is a hole of the file, a
 * zero page, which the memfd gives by itself from then on.
 *
 * A page another process touches first would be allocated zero-filled in
 * the memfd behind our back (its mapping is not registered here), so the
 * caller keeps those processes off RAM until ops->loaded.
 */
#include "common/why.h"
#include "migration/snapshot_lazy.h"
#include "migration/snapshot_file.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE	   4096u
#define FAULT_RUN  (64u << 10)	/* filled around a fault: its 64 KiB */
#define FILL_RUN   (256u << 10) /* filled in order between two faults */
#define COPY_TRIES 100		/* EAGAIN (the mm is changing) retries */

struct snapshot_lazy {
	int uffd, file_fd;
	uint8_t *ram;
	uint64_t size;
	struct snapshot_lazy_ops ops;
	uint64_t next;	/* the fill's position in the file */
	uint64_t pages; /* filled (faults and fill) */
	uint8_t *buf;	/* FILL_RUN bytes */
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	int done; /* 0 loading, 1 loaded, <0 failed */
};

/* RAM at off gets len bytes of buf; pages already there are left alone
 * (something filled them first, and the guest may have written them). */
static int lazy__copy(struct snapshot_lazy *l, uint64_t off, const uint8_t *buf, uint64_t len)
{
	int tries = 0;

	while (len) {
		struct uffdio_copy c = {
		    .dst = (uint64_t)(uintptr_t)(l->ram + off),
		    .src = (uint64_t)(uintptr_t)buf,
		    .len = len,
		};
		uint64_t done;

		if (!ioctl(l->uffd, UFFDIO_COPY, &c)) {
			l->pages += len / PAGE;
			return 0;
		}
		if (errno == EEXIST) {
			/* The first page is there: wake whoever may wait on it. */
			struct uffdio_range r = {.start = c.dst, .len = PAGE};

			ioctl(l->uffd, UFFDIO_WAKE, &r);
			done = PAGE;
		} else if (errno == EAGAIN && c.copy > 0) {
			done = (uint64_t)c.copy; /* stopped at a page that is there */
			l->pages += done / PAGE;
		} else if ((errno == EAGAIN || errno == EINTR) && ++tries < COPY_TRIES) {
			continue;
		} else {
			return -errno;
		}
		off += done;
		buf += done;
		len -= done;
	}
	return 0;
}

/* [off, off + len) of the file into RAM (holes read as zeros). */
static int lazy__fill(struct snapshot_lazy *l, uint64_t off, uint64_t len, char *why, size_t wlen)
{
	uint64_t got = 0;
	int err;

	while (got < len) {
		ssize_t n = pread(l->file_fd, l->buf + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return why__set(why, wlen, n < 0 ? -errno : -EIO,
					"cannot read the memory file at %llu: %s",
					(unsigned long long)(off + got),
					n < 0 ? strerror(errno) : "it ended early");
		got += (uint64_t)n;
	}
	err = lazy__copy(l, off, l->buf, len);
	if (err)
		return why__set(why, wlen, err, "cannot fill guest RAM at %llu: %s",
				(unsigned long long)off, strerror(-err));
	return 0;
}

/* Every fault that waits: 0, or negative errno with why. */
static int lazy__faults(struct snapshot_lazy *l, char *why, size_t wlen)
{
	struct uffd_msg msg;

	for (;;) {
		ssize_t n = read(l->uffd, &msg, sizeof(msg));
		uint64_t off, len;
		int err;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n != (ssize_t)sizeof(msg))
			return why__set(why, wlen, n < 0 ? -errno : -EIO, "userfaultfd: %s",
					n < 0 ? strerror(errno) : "a short message");
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		off = (msg.arg.pagefault.address - (uint64_t)(uintptr_t)l->ram) &
		      ~(uint64_t)(FAULT_RUN - 1);
		if (off >= l->size)
			continue;
		len = l->size - off < FAULT_RUN ? l->size - off : FAULT_RUN;
		err = lazy__fill(l, off, len, why, wlen);
		if (err)
			return err;
	}
}

/* The next run of file data at or after l->next, up to FILL_RUN: its
 * length (0: the file has no more data). */
static uint64_t lazy__next_data(struct snapshot_lazy *l)
{
	off_t data, hole;

	if (l->next >= l->size)
		return 0;
	data = lseek(l->file_fd, (off_t)l->next, SEEK_DATA);
	if (data < 0 || (uint64_t)data >= l->size)
		return 0;
	hole = lseek(l->file_fd, data, SEEK_HOLE);
	if (hole < 0 || (uint64_t)hole > l->size)
		hole = (off_t)l->size;
	l->next = (uint64_t)data & ~(uint64_t)(PAGE - 1);
	hole = (off_t)(((uint64_t)hole + PAGE - 1) & ~(uint64_t)(PAGE - 1));
	if ((uint64_t)hole > l->size)
		hole = (off_t)l->size;
	return (uint64_t)hole - l->next < FILL_RUN ? (uint64_t)hole - l->next : FILL_RUN;
}

static void lazy__end(struct snapshot_lazy *l, int result)
{
	pthread_mutex_lock(&l->lock);
	l->done = result;
	pthread_cond_broadcast(&l->done_cond);
	pthread_mutex_unlock(&l->lock);
}

static void *lazy__thread(void *arg)
{
	struct snapshot_lazy *l = arg;
	struct uffdio_range r = {.start = (uint64_t)(uintptr_t)l->ram, .len = l->size};
	char why[256] = "";
	uint64_t len;
	int err = 0;

	/* Faults first, then one run of the file, until the file is in. */
	while (!err) {
		err = lazy__faults(l, why, sizeof(why));
		if (err)
			break;
		len = lazy__next_data(l);
		if (!len)
			break;
		err = lazy__fill(l, l->next, len, why, sizeof(why));
		l->next += len;
	}
	if (!err && ioctl(l->uffd, UFFDIO_UNREGISTER, &r))
		err = why__set(why, sizeof(why), -errno, "userfaultfd: cannot unregister RAM: %s",
			       strerror(errno));
	if (!err) {
		/* Faults that raced the unregister were woken by it. */
		close(l->uffd);
		close(l->file_fd);
		l->uffd = l->file_fd = -1;
		free(l->buf);
		l->buf = NULL;
		l->ops.loaded(l->ops.opaque, l->pages);
		lazy__end(l, 1);
	} else {
		/* Touched pages stay missing: the VM stops, and nothing it
		 * waits on is answered with wrong data. */
		free(l->buf);
		l->buf = NULL;
		l->ops.failed(l->ops.opaque, why);
		lazy__end(l, err);
	}
	return NULL;
}

int snapshot_lazy__wait(struct snapshot_lazy *l)
{
	int r;

	pthread_mutex_lock(&l->lock);
	while (!l->done)
		pthread_cond_wait(&l->done_cond, &l->lock);
	r = l->done;
	pthread_mutex_unlock(&l->lock);
	return r < 0 ? r : 0;
}

void snapshot_lazy__free(struct snapshot_lazy *l)
{
	if (!l)
		return;
	snapshot_lazy__wait(l);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->done_cond);
	free(l);
}

int snapshot_lazy__start(int dirfd, uint8_t *ram, uint64_t size, int mem_fd,
			 const struct snapshot_lazy_ops *ops, struct snapshot_lazy **out, char *why,
			 size_t wlen)
{
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_MISSING_SHMEM};
	struct uffdio_register reg = {
	    .range = {.start = (uint64_t)(uintptr_t)ram, .len = size},
	    .mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	struct snapshot_lazy *l = calloc(1, sizeof(*l));
	pthread_t t;
	int err;

	if (!l)
		return why__set(why, wlen, -ENOMEM, "no memory");
	l->ram = ram;
	l->size = size;
	l->ops = *ops;
	l->uffd = -1;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->done_cond, NULL);
	l->buf = malloc(FILL_RUN);
	if (!l->buf) {
		err = why__set(why, wlen, -ENOMEM, "no memory");
		goto out_free;
	}
	l->file_fd = snapshot_mem__open(dirfd, size, why, wlen);
	if (l->file_fd < 0) {
		err = l->file_fd;
		goto out_free;
	}
	l->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (l->uffd < 0) {
		err = why__set(why, wlen, -errno, "userfaultfd: %s", strerror(errno));
		goto out_close;
	}
	if (ioctl(l->uffd, UFFDIO_API, &api)) {
		err = why__set(why, wlen, -errno,
			       "userfaultfd: no missing-page faults on shared "
			       "memory here (%s)",
			       strerror(errno));
		goto out_close;
	}
	/* Whatever set-up wrote goes: RAM is exactly the file's. */
	if (fallocate(mem_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)size)) {
		err = why__set(why, wlen, -errno, "cannot empty guest RAM: %s", strerror(errno));
		goto out_close;
	}
	errno = 0;
	if (ioctl(l->uffd, UFFDIO_REGISTER, &reg) || !(reg.ioctls & (1ULL << _UFFDIO_COPY)) ||
	    !(reg.ioctls & (1ULL << _UFFDIO_WAKE))) {
		err = why__set(why, wlen, errno ? -errno : -ENOTSUP,
			       "userfaultfd: cannot register guest RAM: %s",
			       errno ? strerror(errno) : "no UFFDIO_COPY for it");
		goto out_close;
	}
	err = -pthread_create(&t, NULL, lazy__thread, l);
	if (err) {
		why__set(why, wlen, err, "cannot start the loader thread: %s", strerror(-err));
		goto out_close;
	}
	pthread_detach(t);
	*out = l;
	return 0;

out_close:
	if (l->uffd >= 0)
		close(l->uffd);
	if (l->file_fd >= 0)
		close(l->file_fd);
out_free:
	free(l->buf);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->done_cond);
	free(l);
	return err;
}
