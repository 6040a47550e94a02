/* paravisor/vu_log.c — mapping the front-end's dirty log (see the header). */
#include "paravisor/vu_log.h"

#include "common/why.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* 1 TiB of guest-physical space; a larger log is a front-end's mistake. */
#define VU_LOG_MAX_BYTES (1ULL << 25)

void vu_log__clear(struct vu_log *l)
{
	if (l->map)
		munmap(l->map, l->map_len);
	memset(l, 0, sizeof(*l));
}

int vu_log__set(struct vu_log *l, int fd, uint64_t size, uint64_t offset, char *why, size_t whylen)
{
	void *p;
	int err;

	if (!size || size > VU_LOG_MAX_BYTES || offset > VU_LOG_MAX_BYTES) {
		err = why__set(why, whylen, -EINVAL,
			       "log of %#llx bytes at offset %#llx (at most %#llx each)",
			       (unsigned long long)size, (unsigned long long)offset,
			       (unsigned long long)VU_LOG_MAX_BYTES);
		goto out_close;
	}
	/* From 0: the offset need not be page-aligned. */
	p = mmap(NULL, (size_t)(offset + size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		err = -errno;
		snprintf(why, whylen, "cannot map the log (%#llx bytes): %s",
			 (unsigned long long)(offset + size), strerror(errno));
		goto out_close;
	}
	vu_log__clear(l);
	l->map = p;
	l->map_len = (size_t)(offset + size);
	l->base = (uint8_t *)p + offset;
	l->size = size;
	err = 0;
out_close:
	close(fd);
	return err;
}
