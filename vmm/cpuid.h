/* vmm/cpuid.h — the CPUID a vCPU sees. */
#ifndef VMMD_VMM_CPUID_H
#define VMMD_VMM_CPUID_H

#include <linux/kvm.h>

/* Returns KVM's supported CPUID list (malloc'd) or NULL with errno set. */
struct kvm_cpuid2 *cpuid__get_supported(int kvm_fd);
/* Rewrites the topology leaves for vCPU `id` of `nr` (one socket, one thread
 * per core) and marks the hypervisor bit; pure function, unit tested. */
void cpuid__fixup(struct kvm_cpuid2 *cpuid, unsigned int id, unsigned int nr);

#endif
