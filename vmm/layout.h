/* vmm/layout.h — the guest-physical address map.  One place, because the
 * e820 map, ACPI tables, PVH start info and the devices must all agree. */
#ifndef VMMD_VMM_LAYOUT_H
#define VMMD_VMM_LAYOUT_H

#define SZ_1K 0x400ULL
#define SZ_1M 0x100000ULL
#define SZ_1G 0x40000000ULL

/* Low memory used by the loaders (all below the EBDA). */
#define BOOT_GDT_GPA 0x1000ULL
#define BOOT_PVH_INFO_GPA 0x6000ULL   /* struct hvm_start_info */
#define BOOT_PVH_MEMMAP_GPA 0x6400ULL /* hvm_memmap_table_entry[] */
#define BOOT_ZERO_PAGE_GPA 0x7000ULL  /* struct boot_params */
/* 0x9000 is the tiny test guest's heartbeat page; loaders keep off it. */
#define BOOT_PML4_GPA 0x10000ULL
#define BOOT_PDPT_GPA 0x11000ULL
#define BOOT_PD_GPA 0x12000ULL /* 4 pages: identity map of the first 4 GiB */
#define BOOT_CMDLINE_GPA 0x20000ULL
#define BOOT_CMDLINE_MAX 0x10000ULL
#define BOOT_STACK_GPA 0x8ff0ULL

#define EBDA_START 0x9fc00ULL
#define ACPI_TABLES_GPA 0xe0000ULL /* RSDP here, found by the legacy scan too */
#define ACPI_TABLES_END 0x100000ULL
#define HIGH_MEMORY_START 0x100000ULL

/* The 32-bit PCI hole: RAM above 3 GiB moves above 4 GiB. */
#define PCI_HOLE_START 0xc0000000ULL
#define PCI_MMIO32_START 0xc0000000ULL
#define PCI_MMIO32_SIZE 0x20000000ULL
#define PCI_ECAM_START 0xe0000000ULL
/* Only bus 0 exists.  Firmware that advertises more buses makes Linux probe
 * all 32 slots of each of them at boot (pcibios_fixup_peer_bridges), which
 * costs thousands of VM exits. */
#define PCI_LAST_BUS 0
#define PCI_ECAM_SIZE ((PCI_LAST_BUS + 1ULL) << 20)
#define IOAPIC_GPA 0xfec00000ULL
#define LAPIC_GPA 0xfee00000ULL
#define RAM_ABOVE_4G 0x100000000ULL
#define PCI_MMIO64_START 0x8000000000ULL /* 512 GiB: above any RAM we allow */
#define PCI_MMIO64_SIZE 0x8000000000ULL
#define MAX_RAM_SIZE (PCI_MMIO64_START - RAM_ABOVE_4G + PCI_HOLE_START)

/* ACPI fixed-hardware registers (PIIX4-like I/O ports). */
#define ACPI_PM1A_EVT_PORT 0x600 /* PM1a status (2) + enable (2) */
#define ACPI_PM1A_CNT_PORT 0x604 /* PM1a control (2) */
#define ACPI_PM_TMR_PORT 0x608   /* PM timer (4) */
#define ACPI_SCI_IRQ 9
#define ACPI_S5_SLP_TYP 5

#endif
