/* vmm/dev_virtio_blk.c — one virtio-blk PCI device per --disk option.
 *
 * --disk path=FILE[,readonly=on|off][,cache=none|writeback][,queues=N][,id=NAME]
 *        [,backend=vmm|paravisor][,restart=on|off]
 * backend=vmm (the default) runs the device model in this process;
 * backend=paravisor hands it to a paravisor process (dev_vhost_user_blk.c),
 * which vmm restarts if it dies (restart=on, the default; see
 * paravisor_restart.c).
 * Every mistake in the option or the image gets one line naming the disk and
 * the key, and -EINVAL (vmm exits 2). */
#include "common/log.h"
#include "storage/raw_uring.h"
#include "virtio/blk.h"
#include "vmm/dev_blk.h"
#include "vmm/device.h"
#include "vmm/virtio_pci.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int blk_opts__bool(const char *disk, const char *key, const char *val, bool *out)
{
	if (!strcmp(val, "on") || !strcmp(val, "true") || !strcmp(val, "yes"))
		*out = true;
	else if (!strcmp(val, "off") || !strcmp(val, "false") || !strcmp(val, "no"))
		*out = false;
	else {
		pr_err("disk \"%s\": %s=%s: expected on or off", disk, key, val);
		return -EINVAL;
	}
	return 0;
}

static int blk_opts__parse(const struct kv_opt *o, int index, unsigned int nr_cpus,
			   struct blk_opts *b)
{
	bool restart_set = false;
	const char *id = kv_opt__get(o, "id");

	memset(b, 0, sizeof(*b));
	b->cache = BLK_CACHE_WRITEBACK;
	b->restart = true;
	b->queues = nr_cpus < VIRTIO_MAX_QUEUES ? nr_cpus : VIRTIO_MAX_QUEUES;
	if (id && (!*id || strlen(id) >= sizeof(b->id))) {
		pr_err("disk %d: id=%s: must be 1 to %zu characters", index, id, sizeof(b->id) - 1);
		return -EINVAL;
	}
	if (id)
		snprintf(b->id, sizeof(b->id), "%s", id);
	else
		snprintf(b->id, sizeof(b->id), "disk%d", index);
	if (o->kind) {
		pr_err("disk \"%s\": unexpected '%s' (expected path=FILE)", b->id, o->kind);
		return -EINVAL;
	}
	for (int i = 0; i < o->n; i++) {
		const char *k = o->key[i], *v = o->val[i];

		if (!strcmp(k, "path")) {
			if (!*v) {
				pr_err("disk \"%s\": path= is empty", b->id);
				return -EINVAL;
			}
			b->path = v;
		} else if (!strcmp(k, "readonly")) {
			if (blk_opts__bool(b->id, k, v, &b->readonly))
				return -EINVAL;
		} else if (!strcmp(k, "cache")) {
			if (!strcmp(v, "none"))
				b->cache = BLK_CACHE_NONE;
			else if (!strcmp(v, "writeback"))
				b->cache = BLK_CACHE_WRITEBACK;
			else {
				pr_err("disk \"%s\": cache=%s: expected none or writeback", b->id, v);
				return -EINVAL;
			}
		} else if (!strcmp(k, "queues")) {
			char *end;
			unsigned long n = strtoul(v, &end, 10);

			if (!*v || *end || n < 1 || n > VIRTIO_MAX_QUEUES) {
				pr_err("disk \"%s\": queues=%s: must be a whole number from 1 to %d",
				       b->id, v, VIRTIO_MAX_QUEUES);
				return -EINVAL;
			}
			b->queues = (unsigned int)n;
		} else if (!strcmp(k, "backend")) {
			if (strcmp(v, "vmm") && strcmp(v, "paravisor")) {
				pr_err("disk \"%s\": backend=%s: expected vmm or paravisor", b->id,
				       v);
				return -EINVAL;
			}
			b->paravisor = !strcmp(v, "paravisor");
		} else if (!strcmp(k, "restart")) {
			if (blk_opts__bool(b->id, k, v, &b->restart))
				return -EINVAL;
			restart_set = true;
		} else if (strcmp(k, "id")) {
			pr_err("disk \"%s\": unknown key '%s' (known: path, readonly, cache, queues, "
			       "id, backend, restart)",
			       b->id, k);
			return -EINVAL;
		}
	}
	if (restart_set && !b->paravisor) {
		pr_err("disk \"%s\": restart= applies to backend=paravisor only", b->id);
		return -EINVAL;
	}
	if (!b->path) {
		pr_err("disk \"%s\": path=FILE is required", b->id);
		return -EINVAL;
	}
	return 0;
}

static int blk__init_one(struct vm *vm, int index, const char *seen[])
{
	struct blk_opts o;
	struct blk_backend *be;
	struct virtio_device *vdev;
	int err;

	err = blk_opts__parse(&vm->cfg->disks[index], index, vm->nr_cpus, &o);
	if (err)
		return err;
	for (int i = 0; i < index; i++) {
		if (!strcmp(seen[i], o.id)) {
			pr_err("disk \"%s\": id=%s is used by another disk", o.id, o.id);
			return -EINVAL;
		}
	}
	if (o.paravisor) {
		/* seen[] keeps the device's own copy of the id. */
		return vhost_user_blk__add(vm, &o, &seen[index]);
	}
	be = blk_backend__open(o.path, o.readonly, o.cache, 0);
	if (!be) {
		err = errno;
		if (err == EINVAL && o.cache == BLK_CACHE_NONE)
			pr_err("disk \"%s\": %s: cache=none needs O_DIRECT, which its file system "
			       "does not support (use cache=writeback)", o.id, o.path);
		else if (err == ENOTSUP)
			pr_err("disk \"%s\": %s: not a regular file", o.id, o.path);
		else
			pr_err("disk \"%s\": cannot open %s: %s", o.id, o.path, strerror(err));
		return -EINVAL;
	}
	if (blk_backend__size(be) % 512)
		pr_warn("disk \"%s\": %s: size is not a multiple of 512; the last %llu bytes are "
			"not visible", o.id, o.path,
			(unsigned long long)(blk_backend__size(be) % 512));
	vdev = virtio_blk__create(o.id, be, o.queues);
	if (!vdev) {
		pr_err("disk \"%s\": %s", o.id, strerror(errno));
		return -errno;
	}
	err = virtio_pci__register(vm, vdev);
	if (err < 0) {
		pr_err("disk \"%s\": cannot add the PCI device: %s", o.id, strerror(-err));
		vdev->ops->destroy(vdev);
		return err;
	}
	seen[index] = vdev->id;
	pr_debug("disk \"%s\": %s, %llu sectors, %u queue(s), cache=%s%s", o.id, o.path,
		 (unsigned long long)(blk_backend__size(be) >> 9), o.queues,
		 o.cache == BLK_CACHE_NONE ? "none" : "writeback", o.readonly ? ", read-only" : "");
	return 0;
}

static int virtio_blk__init(struct vm *vm)
{
	const char *seen[VMM_MAX_DISKS] = { 0 };

	for (int i = 0; i < vm->cfg->nr_disks; i++) {
		int err = blk__init_one(vm, i, seen);

		if (err)
			return err;
	}
	return 0;
}
/* The transport owns registered devices and tears them down itself. */
device_init(virtio_blk__init, NULL);
