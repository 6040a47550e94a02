/* tests/guest/tiny/pci.h — PCI bus 0 through configuration mechanism #1. */
#ifndef TINY_PCI_H
#define TINY_PCI_H

#include <stdbool.h>
#include <stdint.h>

#define PCI_BDF(dev, fn) (((uint32_t)(dev) << 3) | (fn)) /* bus 0 only */

#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_CAP_PTR 0x34

#define PCI_COMMAND_MEMORY 0x02
#define PCI_COMMAND_MASTER 0x04
#define PCI_STATUS_CAP_LIST 0x10

uint8_t pci__read8(uint32_t bdf, uint8_t off);
uint16_t pci__read16(uint32_t bdf, uint8_t off);
uint32_t pci__read32(uint32_t bdf, uint8_t off);
void pci__write16(uint32_t bdf, uint8_t off, uint16_t val);
void pci__write32(uint32_t bdf, uint8_t off, uint32_t val);

/* The index-th (0-based) function on bus 0 with this vendor and device id. */
bool pci__find(uint16_t vendor, uint16_t device, unsigned int index,
	       uint32_t *bdf);
/* First capability, or 0; then the one after cap, or 0. */
uint8_t pci__cap_first(uint32_t bdf);
uint8_t pci__cap_next(uint32_t bdf, uint8_t cap);
/*
 * A memory BAR's address below 4 GiB: assigned by us in the 32-bit window if
 * the BAR is unassigned or out of reach; memory decode and bus mastering are
 * enabled.  0 if the BAR is absent or an I/O BAR.
 */
uint32_t pci__bar_map(uint32_t bdf, int bar);
void pci__print_bdf(uint32_t bdf);

#endif
