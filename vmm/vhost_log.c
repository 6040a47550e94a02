/* vmm/vhost_log.c — the paravisors' dirty log (see the header).
 *
 * The log is indexed by guest-physical page, the migration's bitmap by RAM
 * offset (the memfd), and they differ above the PCI hole; each RAM region of
 * vm->mem maps one range onto the other.  Regions start on 64-page
 * boundaries in both (0 and 4 GiB; offsets 0 and the low RAM size, 3 GiB at
 * most), so whole 64-bit words move at once, each taken with an atomic
 * exchange because the back-ends keep setting bits meanwhile. */
#include "vmm/vhost_log.h"

#include "common/log.h"
#include "common/why.h"
#include "virtio/device.h"
#include "virtio/vhost_user_front.h"
#include "vmm/vm.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct vhost_log_dev {
	struct virtio_device *vdev;
	struct vhost_log_dev *next;
};

struct vhost_log {
	pthread_mutex_t lock;
	struct vhost_log_dev *devs;
	int fd; /* -1: not logging */
	uint64_t *words;
	uint64_t size; /* bytes, a multiple of 8 */
};

static struct vhost_log *vhost_log__get(struct vm *vm)
{
	struct vhost_log *l = vm->vhost_log;

	if (l)
		return l;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	pthread_mutex_init(&l->lock, NULL);
	l->fd = -1;
	vm->vhost_log = l;
	return l;
}

int vhost_log__register(struct vm *vm, struct virtio_device *vdev)
{
	struct vhost_log *l = vhost_log__get(vm);
	struct vhost_log_dev *d = calloc(1, sizeof(*d));

	if (!l || !d) {
		free(d);
		return -ENOMEM;
	}
	d->vdev = vdev;
	pthread_mutex_lock(&l->lock);
	d->next = l->devs;
	l->devs = d;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

void vhost_log__unregister(struct vm *vm, struct virtio_device *vdev)
{
	struct vhost_log *l = vm->vhost_log;

	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	for (struct vhost_log_dev **p = &l->devs; *p; p = &(*p)->next) {
		if ((*p)->vdev == vdev) {
			struct vhost_log_dev *d = *p;

			*p = d->next;
			free(d);
			break;
		}
	}
	pthread_mutex_unlock(&l->lock);
}

/* Bytes for a bit per page up to the highest guest-physical RAM address. */
static uint64_t vhost_log__bytes(const struct vm *vm)
{
	uint64_t end = 0;

	for (int i = 0; i < vm->mem.nr; i++)
		if (vm->mem.r[i].gpa + vm->mem.r[i].size > end)
			end = vm->mem.r[i].gpa + vm->mem.r[i].size;
	return ((end >> 12) + 63) / 64 * 8;
}

static void vhost_log__free(struct vhost_log *l)
{
	if (l->words)
		munmap(l->words, l->size);
	if (l->fd >= 0)
		close(l->fd);
	l->words = NULL;
	l->fd = -1;
	l->size = 0;
}

static int vhost_log__start(struct vm *vm, struct vhost_log *l, char *why, size_t whylen)
{
	char dwhy[256], ignored[256];
	int err = 0;

	l->size = vhost_log__bytes(vm);
	l->fd = memfd_create("vmm-vhost-log", MFD_CLOEXEC);
	if (l->fd < 0 || ftruncate(l->fd, (off_t)l->size) < 0) {
		err = why__set(why, whylen, -errno, "cannot create the paravisors' dirty log: %s",
			       strerror(errno));
		vhost_log__free(l);
		return err;
	}
	l->words = mmap(NULL, l->size, PROT_READ | PROT_WRITE, MAP_SHARED, l->fd, 0);
	if (l->words == MAP_FAILED) {
		err = why__set(why, whylen, -errno, "cannot map the paravisors' dirty log: %s",
			       strerror(errno));
		l->words = NULL;
		vhost_log__free(l);
		return err;
	}
	for (struct vhost_log_dev *d = l->devs; d; d = d->next) {
		err = vhost_user_front__set_log(d->vdev, l->fd, l->size, dwhy, sizeof(dwhy));
		if (err) {
			/* The device by name, and why: the operator's next step. */
			why__set(why, whylen, err,
				 "%s \"%s\" (vhost-user) cannot log the pages it writes: %s",
				 d->vdev->ops->type, d->vdev->id, dwhy);
			for (struct vhost_log_dev *u = l->devs; u != d; u = u->next)
				vhost_user_front__set_log(u->vdev, -1, 0, ignored, sizeof(ignored));
			vhost_log__free(l);
			return err;
		}
	}
	return 0;
}

int vhost_log__enable(struct vm *vm, bool on, char *why, size_t whylen)
{
	struct vhost_log *l = vm->vhost_log;
	char dwhy[256];
	int err = 0;

	if (!l)
		return 0;
	pthread_mutex_lock(&l->lock);
	if (on && l->fd < 0 && l->devs) {
		err = vhost_log__start(vm, l, why, whylen);
	} else if (!on && l->fd >= 0) {
		for (struct vhost_log_dev *d = l->devs; d; d = d->next)
			if (vhost_user_front__set_log(d->vdev, -1, 0, dwhy, sizeof(dwhy)))
				pr_warn("%s: cannot stop its dirty log: %s", d->vdev->id, dwhy);
		vhost_log__free(l);
	}
	pthread_mutex_unlock(&l->lock);
	return err;
}

void vhost_log__fetch(struct vm *vm, uint64_t *bitmap)
{
	struct vhost_log *l = vm->vhost_log;

	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	for (int i = 0; l->words && i < vm->mem.nr; i++) {
		const struct guest_mem_region *r = &vm->mem.r[i];
		uint64_t gpage = r->gpa >> 12, opage = (uint64_t)(r->hva - vm->ram) >> 12;
		uint64_t pages = r->size >> 12;

		for (uint64_t p = 0; p < pages;) {
			uint64_t g = gpage + p, o = opage + p, w;

			if (g % 64 == 0 && o % 64 == 0 && pages - p >= 64) {
				w = __atomic_exchange_n(&l->words[g / 64], 0, __ATOMIC_ACQ_REL);
				bitmap[o / 64] |= w;
				p += 64;
				continue;
			}
			/* A region edge off a word boundary: bit by bit. */
			w = __atomic_fetch_and(&l->words[g / 64], ~(1ULL << (g % 64)),
					       __ATOMIC_ACQ_REL);
			if (w & (1ULL << (g % 64)))
				bitmap[o / 64] |= 1ULL << (o % 64);
			p++;
		}
	}
	pthread_mutex_unlock(&l->lock);
}

void vhost_log__release(struct vm *vm)
{
	struct vhost_log *l = vm->vhost_log;

	if (!l)
		return;
	while (l->devs) {
		struct vhost_log_dev *d = l->devs;

		l->devs = d->next;
		free(d);
	}
	vhost_log__free(l);
	pthread_mutex_destroy(&l->lock);
	free(l);
	vm->vhost_log = NULL;
}
