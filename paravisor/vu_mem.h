/* paravisor/vu_mem.h — guest RAM from a vhost-user memory table.
 *
 * Each region arrives as an fd (a memfd of the front-end's guest RAM) with
 * an offset; it is mapped here and described as a struct guest_mem region, so
 * the device models see the same view as under vmm.  The front-end names
 * vring addresses in ITS virtual address space (userspace_addr), so the table
 * also translates those to guest-physical addresses. */
#ifndef VMMD_PARAVISOR_VU_MEM_H
#define VMMD_PARAVISOR_VU_MEM_H

#include "virtio/mem.h"
#include "virtio/vhost_user_msg.h"

#include <stddef.h>
#include <stdint.h>

struct vu_mem {
	struct guest_mem gm;		     /* what device models use */
	uint64_t uva[GUEST_MEM_MAX_REGIONS]; /* front-end address of gm.r[i] */
	void *map[GUEST_MEM_MAX_REGIONS];    /* our mapping (from offset 0) */
	size_t map_len[GUEST_MEM_MAX_REGIONS];
};

/*
 * Replaces the table with t, mapping fds[i] for region i.  The fds are
 * always closed.  On failure the old table stays and why says which region
 * was wrong: -EINVAL for a bad table, or the mmap errno.
 */
int vu_mem__set(struct vu_mem *m, const struct vhost_user_mem_table *t, const int *fds,
		unsigned int nr_fds, char *why, size_t whylen);
void vu_mem__clear(struct vu_mem *m);
/* Bytes of guest RAM the table maps. */
uint64_t vu_mem__size(const struct vu_mem *m);
/* Guest-physical address of the front-end's [uva, uva+len), if it lies in one
 * region: 0, else -EFAULT. */
int vu_mem__uva_to_gpa(const struct vu_mem *m, uint64_t uva, uint64_t len, uint64_t *gpa);
/* Reads a byte of every page of the front-end's [uva, uva+len), if it lies
 * in one region, so that our page tables map them before they are needed. */
void vu_mem__touch(const struct vu_mem *m, uint64_t uva, uint64_t len);

#endif
