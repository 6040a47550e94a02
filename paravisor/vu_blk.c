/* paravisor/vu_blk.c — parses --disk and opens the image behind a virtio-blk
 * model.  The syntax is vmm's, kept here in a few lines because vmm's parser
 * lives in a layer the paravisor must not include. */
#include "paravisor/vu_blk.h"

#include "common/log.h"
#include "storage/raw_uring.h"
#include "virtio/blk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct vu_blk_opts {
	const char *path;
	int fd; /* -1: open path */
	bool readonly;
	enum blk_cache cache;
	unsigned int queues;
	const char *id;
};

static int vu_blk__opt(struct vu_blk_opts *o, const char *k, const char *v)
{
	if (!strcmp(k, "path") && *v) {
		o->path = v;
	} else if (!strcmp(k, "fd")) {
		char *end;
		long n = strtol(v, &end, 10);

		if (!*v || *end || n < 3 || n > 65535 || fcntl((int)n, F_GETFD) < 0) {
			pr_err("--disk: fd=%s: not an open descriptor from 3 up", v);
			return -EINVAL;
		}
		o->fd = (int)n;
	} else if (!strcmp(k, "readonly") && (!strcmp(v, "on") || !strcmp(v, "off"))) {
		o->readonly = !strcmp(v, "on");
	} else if (!strcmp(k, "cache") && (!strcmp(v, "none") || !strcmp(v, "writeback"))) {
		o->cache = !strcmp(v, "none") ? BLK_CACHE_NONE : BLK_CACHE_WRITEBACK;
	} else if (!strcmp(k, "queues")) {
		char *end;
		unsigned long n = strtoul(v, &end, 10);

		if (!*v || *end || n < 1 || n > VIRTIO_MAX_QUEUES) {
			pr_err("--disk: queues=%s: must be a whole number from 1 to %d", v,
			       VIRTIO_MAX_QUEUES);
			return -EINVAL;
		}
		o->queues = (unsigned int)n;
	} else if (!strcmp(k, "id") && *v && strlen(v) < 32) {
		o->id = v;
	} else {
		pr_err("--disk: %s=%s: unknown key or bad value (path=FILE, fd=N, readonly=on|off, "
		       "cache=none|writeback, queues=N, id=NAME)",
		       k, v);
		return -EINVAL;
	}
	return 0;
}

static struct virtio_device *vu_blk__open(const struct vu_blk_opts *o, struct vu_blk_info *info)
{
	struct blk_backend *be;
	struct virtio_device *vdev;
	char self[32];

	/* A handed image is opened again through /proc (the backend wants its
	 * own buffered and O_DIRECT descriptors): the same file, whatever its
	 * path says now.  Then the handed one goes. */
	if (o->fd >= 0)
		snprintf(self, sizeof(self), "/proc/self/fd/%d", o->fd);
	be = blk_backend__open(o->fd >= 0 ? self : o->path, o->readonly, o->cache, 0);
	if (o->fd >= 0)
		close(o->fd);

	if (!be) {
		if (errno == EINVAL && o->cache == BLK_CACHE_NONE)
			pr_err("disk \"%s\": %s: cache=none needs O_DIRECT, which its file system "
			       "does not support (use cache=writeback)",
			       o->id, o->path);
		else
			pr_err("disk \"%s\": cannot open %s: %s", o->id, o->path, strerror(errno));
		return NULL;
	}
	vdev = virtio_blk__create(o->id, be, o->queues);
	if (!vdev) {
		pr_err("disk \"%s\": %s", o->id, strerror(errno));
		return NULL;
	}
	if (info) {
		snprintf(info->path, sizeof(info->path), "%s", o->path);
		info->size = blk_backend__size(be);
		info->readonly = o->readonly;
	}
	pr_info("disk \"%s\": %s, %llu sectors, %u queue(s), cache=%s%s", o->id, o->path,
		(unsigned long long)(blk_backend__size(be) >> 9), o->queues,
		o->cache == BLK_CACHE_NONE ? "none" : "writeback",
		o->readonly ? ", read-only" : "");
	return vdev;
}

struct virtio_device *vu_blk__create(const char *opt, struct vu_blk_info *info)
{
	struct vu_blk_opts o = {.cache = BLK_CACHE_WRITEBACK, .queues = 1, .id = "disk0", .fd = -1};
	struct virtio_device *vdev = NULL;
	char *dup = strdup(opt), *save = NULL;

	if (!dup)
		return NULL;
	for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq || eq == tok) {
			pr_err("--disk: '%s': expected key=value", tok);
			goto out_free;
		}
		*eq = 0;
		if (vu_blk__opt(&o, tok, eq + 1))
			goto out_free;
	}
	if (!o.path && o.fd < 0) {
		pr_err("--disk: path=FILE or fd=N is required");
		goto out_free;
	}
	if (!o.path)
		o.path = "the handed image";
	vdev = vu_blk__open(&o, info);
out_free:
	free(dup);
	return vdev;
}
