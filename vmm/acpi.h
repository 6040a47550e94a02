/* vmm/acpi.h — ACPI tables (RSDP, RSDT/XSDT, FADT, FACS, DSDT, MADT, MCFG),
 * built into a caller's buffer so they can be checked without a VM. */
#ifndef VMMD_VMM_ACPI_H
#define VMMD_VMM_ACPI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ACPI_RESET_PORT	 0xcf9
#define ACPI_RESET_VALUE 0x06

/*
 * Lays out every table in buf, which the guest sees at gpa; the RSDP comes
 * first (at gpa, 16-byte aligned for the legacy scan).  Returns the bytes
 * used or -ENOSPC.
 */
ssize_t acpi__build(uint8_t *buf, size_t size, uint64_t gpa, unsigned int nr_cpus);
/* The byte that makes len bytes sum to zero is the one at the checksum. */
uint8_t acpi__checksum(const void *buf, size_t len);

#endif
