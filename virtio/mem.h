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
	/* While a live migration runs: one bit per 4 KiB page of the RAM block
	 * at dirty_base that a device wrote (KVM logs only what vCPUs write);
	 * NULL otherwise.  Set and taken by migration/, marked by virtq. */
	uint64_t *dirty;
	const uint8_t *dirty_base;
	uint64_t dirty_len;
	/* The same for a vhost-user back-end (the paravisor) while its
	 * front-end migrates: the front-end's log, one bit per 4 KiB page of
	 * guest-PHYSICAL space (bit p%8 of byte p/8), shared with it; NULL
	 * otherwise.  Set while the device is stopped. */
	uint8_t *gpa_log;
	uint64_t gpa_log_len; /* bytes */
};

/* Is a migration tracking what devices write to this RAM? */
static inline int guest_mem__tracked(const struct guest_mem *m)
{
	return __atomic_load_n(&m->dirty, __ATOMIC_RELAXED) || m->gpa_log;
}

/* The vhost-user log: [hva, hva+len) lies in one region (device models only
 * write where guest_mem__ptr() pointed them); its guest-physical pages. */
static inline void guest_mem__log_gpa(const struct guest_mem *m, const void *hva, uint64_t len)
{
	const uint8_t *p = hva;

	for (int i = 0; i < m->nr; i++) {
		const struct guest_mem_region *r = &m->r[i];
		uint64_t first, last;

		if (p < r->hva || (uint64_t)(p - r->hva) >= r->size)
			continue;
		first = (r->gpa + (uint64_t)(p - r->hva)) >> 12;
		last = (r->gpa + (uint64_t)(p - r->hva) + len - 1) >> 12;
		for (uint64_t pg = first; pg <= last && pg / 8 < m->gpa_log_len; pg++)
			__atomic_fetch_or(&m->gpa_log[pg / 8], (uint8_t)(1u << (pg % 8)),
					  __ATOMIC_RELAXED);
		return;
	}
}

/* Marks [hva, hva+len) as written by a device, if a migration tracks it. */
static inline void guest_mem__mark_dirty(const struct guest_mem *m, const void *hva,
					 uint64_t len)
{
	uint64_t *bm = __atomic_load_n(&m->dirty, __ATOMIC_ACQUIRE);
	uint64_t off, end;

	if (m->gpa_log && len)
		guest_mem__log_gpa(m, hva, len);
	if (!bm || !len || (const uint8_t *)hva < m->dirty_base)
		return;
	off = (uint64_t)((const uint8_t *)hva - m->dirty_base);
	if (off >= m->dirty_len)
		return;
	end = off + len > m->dirty_len ? m->dirty_len : off + len;
	for (uint64_t p = off >> 12; p <= (end - 1) >> 12; p++)
		__atomic_fetch_or(&bm[p >> 6], 1ULL << (p & 63), __ATOMIC_RELAXED);
}

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
