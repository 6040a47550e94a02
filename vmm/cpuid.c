/* vmm/cpuid.c — CPUID with a consistent topology: all vCPUs are cores of one
 * package, one thread each, APIC id = vCPU index.  Linux builds its topology
 * from these leaves, so they must agree with the MADT. */
#include "vmm/cpuid.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#define CPUID_MAX_ENTRIES 256

struct kvm_cpuid2 *cpuid__get_supported(int kvm_fd)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + CPUID_MAX_ENTRIES *
						       sizeof(struct kvm_cpuid_entry2));

	if (!c)
		return NULL;
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		int err = errno;

		free(c);
		errno = err;
		return NULL;
	}
	return c;
}

static unsigned int order_of(unsigned int n)
{
	unsigned int bits = 0;

	while ((1u << bits) < n)
		bits++;
	return bits;
}

void cpuid__fixup(struct kvm_cpuid2 *cpuid, unsigned int id, unsigned int nr)
{
	unsigned int core_bits = order_of(nr);

	for (unsigned int i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		switch (e->function) {
		case 1:
			/* APIC id, logical processors per package, HTT when >1. */
			e->ebx = (e->ebx & 0x0000ffff) | (id << 24) |
				 ((nr > 255 ? 255 : nr) << 16);
			if (nr > 1)
				e->edx |= 1u << 28;
			else
				e->edx &= ~(1u << 28);
			e->ecx |= 1u << 31; /* running under a hypervisor */
			break;
		case 4:
			/* Intel deterministic cache: cores per package - 1. */
			e->eax = (e->eax & 0x03ffffff) | (((nr > 64 ? 64 : nr) - 1) << 26);
			/* threads sharing this cache: 1 for L1/L2, all for L3 */
			e->eax &= ~(0xfffu << 14);
			if (((e->eax >> 5) & 7) >= 3)
				e->eax |= (nr - 1) << 14;
			break;
		case 0xb:
		case 0x1f:
			/* x2APIC topology: level 0 = SMT (1 thread), 1 = core. */
			if (e->index == 0) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = (1u << 8) | 0;
			} else if (e->index == 1) {
				e->eax = core_bits;
				e->ebx = nr;
				e->ecx = (2u << 8) | 1;
			} else {
				e->eax = e->ebx = 0;
				e->ecx = e->index;
			}
			e->edx = id;
			break;
		case 0x80000001:
			/* AMD: CmpLegacy says cores come from leaf 0x80000008. */
			if (nr > 1)
				e->ecx |= 1u << 1;
			break;
		case 0x80000008:
			/* AMD: ApicIdSize and NC (cores - 1). */
			e->ecx = (e->ecx & ~0xf0ffu) | (core_bits << 12) | (nr - 1);
			break;
		default:
			break;
		}
	}
}
