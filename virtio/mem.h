/* virtio/mem.h — guest RAM as the device layer sees it: a few regions of
 * guest-physical space mapped into this process.  The same view is built by
 * vmm (from its memfd) and, later, by the paravisor (from the vhost-user
 * memory table), so device models never depend on KVM. */
#ifndef VMMD_VIRTIO_MEM_H
#define VMMD_VIRTIO_MEM_H

#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 8

struct guest_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
};

struct guest_mem {
	int nr;
	struct guest_mem_region r[GUEST_MEM_MAX_REGIONS];
};

/* Host pointer for [gpa, gpa+len) if it lies inside ONE region, else NULL.
 * Everything a guest controls goes through this. */
static inline void *guest_mem__ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < m->nr; i++) {
		const struct guest_mem_region *r = &m->r[i];

		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->hva + (gpa - r->gpa);
	}
	return (void *)0;
}

#endif
