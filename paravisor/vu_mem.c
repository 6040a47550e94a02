/* paravisor/vu_mem.c — mapping the front-end's memory table.
 *
 * The table is the front-end's word about guest RAM; a wrong one must fail
 * here with a reason, not later as a wild pointer in a device model: regions
 * are non-empty, do not wrap, do not overlap in guest-physical space, and
 * each is mapped whole (mmap_offset + size, from offset 0 of its fd, because
 * mmap_offset need not be page-aligned). */
#include "paravisor/vu_mem.h"

#include "common/why.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

_Static_assert(VHOST_USER_MAX_REGIONS <= GUEST_MEM_MAX_REGIONS,
	       "every vhost-user region needs a guest_mem region");

static void vu_mem__unmap(struct vu_mem *m)
{
	for (int i = 0; i < m->gm.nr; i++)
		if (m->map[i])
			munmap(m->map[i], m->map_len[i]);
	memset(m, 0, sizeof(*m));
}

void vu_mem__clear(struct vu_mem *m)
{
	vu_mem__unmap(m);
}

static int vu_mem__check(const struct vhost_user_mem_table *t, char *why, size_t whylen)
{
	if (t->nregions > VHOST_USER_MAX_REGIONS)
		return why__set(why, whylen, -EINVAL, "%u regions (at most %d)", t->nregions,
				VHOST_USER_MAX_REGIONS);
	for (uint32_t i = 0; i < t->nregions; i++) {
		const struct vhost_user_mem_region *r = &t->regions[i];

		if (!r->memory_size || r->guest_phys_addr + r->memory_size < r->guest_phys_addr ||
		    r->userspace_addr + r->memory_size < r->userspace_addr ||
		    r->mmap_offset + r->memory_size < r->mmap_offset)
			return why__set(why, whylen, -EINVAL,
					"region %u: size %#llx at gpa %#llx is empty or wraps", i,
					(unsigned long long)r->memory_size,
					(unsigned long long)r->guest_phys_addr);
		for (uint32_t j = 0; j < i; j++) {
			const struct vhost_user_mem_region *o = &t->regions[j];

			if (r->guest_phys_addr < o->guest_phys_addr + o->memory_size &&
			    o->guest_phys_addr < r->guest_phys_addr + r->memory_size)
				return why__set(why, whylen, -EINVAL,
						"regions %u and %u overlap in guest-physical space",
						j, i);
		}
	}
	return 0;
}

int vu_mem__set(struct vu_mem *m, const struct vhost_user_mem_table *t, const int *fds,
		unsigned int nr_fds, char *why, size_t whylen)
{
	struct vu_mem next;
	int err = 0;

	memset(&next, 0, sizeof(next));
	if (nr_fds != t->nregions) {
		err = why__set(why, whylen, -EINVAL, "%u regions but %u file descriptors",
			       t->nregions, nr_fds);
		goto out_close;
	}
	err = vu_mem__check(t, why, whylen);
	if (err)
		goto out_close;
	for (uint32_t i = 0; i < t->nregions; i++) {
		const struct vhost_user_mem_region *r = &t->regions[i];
		size_t len = (size_t)(r->mmap_offset + r->memory_size);
		void *p =
		    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fds[i], 0);

		if (p == MAP_FAILED) {
			err = -errno;
			snprintf(why, whylen, "region %u: cannot map %#zx bytes: %s", i, len,
				 strerror(errno));
			vu_mem__unmap(&next);
			goto out_close;
		}
		next.map[i] = p;
		next.map_len[i] = len;
		next.uva[i] = r->userspace_addr;
		next.gm.r[i] = (struct guest_mem_region){
		    .gpa = r->guest_phys_addr,
		    .size = r->memory_size,
		    .hva = (uint8_t *)p + r->mmap_offset,
		};
		next.gm.nr = (int)i + 1;
	}
	vu_mem__unmap(m);
	*m = next;
out_close:
	/* The mappings keep the memory; the fds are not needed any more. */
	for (unsigned int i = 0; i < nr_fds; i++)
		close(fds[i]);
	return err;
}

int vu_mem__uva_to_gpa(const struct vu_mem *m, uint64_t uva, uint64_t len, uint64_t *gpa)
{
	for (int i = 0; i < m->gm.nr; i++) {
		uint64_t start = m->uva[i], size = m->gm.r[i].size;

		if (uva >= start && uva - start <= size && len <= size - (uva - start)) {
			*gpa = m->gm.r[i].gpa + (uva - start);
			return 0;
		}
	}
	return -EFAULT;
}

void vu_mem__touch(const struct vu_mem *m, uint64_t uva, uint64_t len)
{
	uint64_t gpa;
	uintptr_t a, end;
	void *p;

	if (!len || vu_mem__uva_to_gpa(m, uva, len, &gpa))
		return;
	p = guest_mem__ptr(&m->gm, gpa, len);
	if (!p)
		return;
	/* The first byte, then the start of every later page. */
	end = (uintptr_t)p + len;
	for (a = (uintptr_t)p; a < end; a = (a | 4095) + 1)
		(void)*(const volatile uint8_t *)a;
}

uint64_t vu_mem__size(const struct vu_mem *m)
{
	uint64_t s = 0;

	for (int i = 0; i < m->gm.nr; i++)
		s += m->gm.r[i].size;
	return s;
}
