/* vmm/e820.h — the guest memory map, shared by the bzImage and PVH loaders. */
#ifndef VMMD_VMM_E820_H
#define VMMD_VMM_E820_H

#include <stdint.h>

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_ACPI 3

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

#define E820_MAX_ENTRIES 8

/* Fills out[] for a VM with ram_size bytes of RAM; returns the count. */
int e820__build(uint64_t ram_size, struct e820_entry *out, int max);

#endif
