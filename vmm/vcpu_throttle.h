/* vmm/vcpu_throttle.h — vCPU duty-cycle throttling (migration auto-converge). */
#ifndef VMMD_VMM_VCPU_THROTTLE_H
#define VMMD_VMM_VCPU_THROTTLE_H

struct vm;
struct vcpu;

/* Keeps every vCPU out of the guest pct% of the time (0 ends it, at most
 * 99).  Called by one thread at a time (the migration's). */
int vm__throttle(struct vm *vm, unsigned int pct);
/* In a vCPU thread after a kick: sleeps its share of the period. */
void vcpu__throttle(struct vcpu *v);

#endif
