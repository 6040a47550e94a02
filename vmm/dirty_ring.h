/* vmm/dirty_ring.h — KVM's per-vCPU dirty ring, where the host has it. */
#ifndef VMMD_VMM_DIRTY_RING_H
#define VMMD_VMM_DIRTY_RING_H

#include <stdint.h>

struct vm;
struct vcpu;

/* Before any vCPU: turns the ring on as vm->cfg->dirty_log asks (auto: where
 * KVM has it).  vm->dirty_ring_entries stays 0 when the bitmap is used. */
int dirty_ring__enable(struct vm *vm);
int dirty_ring__map(struct vcpu *v);
void dirty_ring__unmap(struct vcpu *v);
/* Empties one vCPU's ring (only) or all of them into vm->ring_dirty. */
int dirty_ring__harvest(struct vm *vm, struct vcpu *only);
/* ORs every page dirtied since the last fetch into bitmap. */
int dirty_ring__fetch(struct vm *vm, uint64_t *bitmap);

#endif
