/* vmm/e820.c — RAM below the EBDA, the BIOS/ACPI area reserved, RAM from
 * 1 MiB to the PCI hole, the ECAM window reserved (Linux only trusts MMCONFIG
 * that the map reserves), then the rest of RAM above 4 GiB. */
#include "vmm/e820.h"

#include "vmm/layout.h"

int e820__build(uint64_t ram_size, struct e820_entry *out, int max)
{
	uint64_t low = ram_size < PCI_HOLE_START ? ram_size : PCI_HOLE_START;
	struct e820_entry map[E820_MAX_ENTRIES];
	int n = 0;

	map[n++] = (struct e820_entry){ 0, EBDA_START, E820_RAM };
	map[n++] = (struct e820_entry){ EBDA_START, 0xa0000 - EBDA_START, E820_RESERVED };
	map[n++] = (struct e820_entry){ ACPI_TABLES_GPA, ACPI_TABLES_END - ACPI_TABLES_GPA,
					E820_RESERVED };
	map[n++] = (struct e820_entry){ HIGH_MEMORY_START, low - HIGH_MEMORY_START, E820_RAM };
	map[n++] = (struct e820_entry){ PCI_ECAM_START, PCI_ECAM_SIZE, E820_RESERVED };
	if (ram_size > low)
		map[n++] = (struct e820_entry){ RAM_ABOVE_4G, ram_size - low, E820_RAM };
	if (n > max)
		n = max;
	for (int i = 0; i < n; i++)
		out[i] = map[i];
	return n;
}
