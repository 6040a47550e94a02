/* vmm/pci.h — PCI bus 0: host bridge, configuration access and the device
 * API that PCI devices (PIIX3, virtio-pci) build on. */
#ifndef VMMD_VMM_PCI_H
#define VMMD_VMM_PCI_H

#include "vmm/bus.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

#define PCI_CFG_SIZE	       4096 /* PCIe extended space; mechanism #1 sees 256 */
#define PCI_NR_BARS	       6
#define PCI_DEVFN(slot, fn)    ((uint8_t)(((slot) << 3) | (fn)))
#define PCI_FIRST_DYNAMIC_SLOT 2 /* 0: host bridge, 1: PIIX3 */

/* Standard header offsets and bits used by more than one file. */
#define PCI_VENDOR_ID		 0x00
#define PCI_DEVICE_ID		 0x02
#define PCI_COMMAND		 0x04
#define PCI_COMMAND_IO		 0x0001
#define PCI_COMMAND_MEMORY	 0x0002
#define PCI_COMMAND_MASTER	 0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS		 0x06
#define PCI_STATUS_CAP_LIST	 0x0010
#define PCI_REVISION_ID		 0x08
#define PCI_CLASS_PROG		 0x09
#define PCI_HEADER_TYPE		 0x0e
#define PCI_HEADER_TYPE_MULTI	 0x80
#define PCI_BAR0		 0x10
#define PCI_SUBSYSTEM_VENDOR_ID	 0x2c
#define PCI_SUBSYSTEM_ID	 0x2e
#define PCI_CAPABILITY_LIST	 0x34
#define PCI_INTERRUPT_LINE	 0x3c
#define PCI_INTERRUPT_PIN	 0x3d

#define PCI_BAR_MEM64	 0x04
#define PCI_BAR_PREFETCH 0x08
#define PCI_BAR_UPPER	 0x100 /* internal: high half of the 64-bit BAR below */

struct pci_device;

struct pci_bar {
	uint64_t size;	    /* power of two >= 16; 0 = not implemented */
	unsigned int flags; /* PCI_BAR_MEM64 | PCI_BAR_PREFETCH */
	/* offset is relative to the BAR's current address */
	bus_io_fn fn;
	void *opaque;
	uint64_t addr; /* last address seen, for bar_moved */
};

struct pci_device {
	const char *name;
	uint8_t devfn; /* set by registration */
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];   /* bits the guest may write */
	uint8_t w1cmask[PCI_CFG_SIZE]; /* bits the guest clears by writing 1 */
	struct pci_bar bars[PCI_NR_BARS];
	uint8_t cap_last; /* offset of the last capability, 0 if none */
	uint16_t cap_end; /* next free byte for a capability */

	/* Optional, called with the PCI lock held after the bytes changed. */
	void (*config_write)(struct pci_device *dev, uint32_t offset, uint32_t len);
	/* Optional: the guest moved BAR bar (old/new address; a BAR being
	 * sized shows up as a move too).  MMIO keeps flowing to bar.fn at
	 * the new place without it; it is for ioeventfds and the like. */
	void (*bar_moved)(struct pci_device *dev, int bar, uint64_t old_addr, uint64_t new_addr);
	void *opaque;
};

/* Empty config space with IDs, class (base << 16 | sub << 8 | prog-if)
 * and the usual writable bits of COMMAND, STATUS and the interrupt line. */
void pci_device__init(struct pci_device *dev, const char *name, uint16_t vendor, uint16_t device,
		      uint32_t class_code, uint8_t revision);
int pci_device__add_bar(struct pci_device *dev, int bar, uint64_t size, unsigned int flags,
			bus_io_fn fn, void *opaque);
/* Appends a capability (body excludes the id/next bytes); returns its
 * config offset or a negative errno.  wmask of the body stays 0: set the
 * bits the guest may write afterwards. */
int pci_device__add_cap(struct pci_device *dev, uint8_t cap_id, const void *body, uint8_t body_len);
/* The BAR's guest address (0 if unassigned or out of memory decode). */
uint64_t pci_device__bar_addr(const struct pci_device *dev, int bar);

static inline uint16_t pci_cfg__get16(const struct pci_device *d, uint32_t o)
{
	return (uint16_t)(d->cfg[o] | d->cfg[o + 1] << 8);
}
static inline uint32_t pci_cfg__get32(const struct pci_device *d, uint32_t o)
{
	return (uint32_t)pci_cfg__get16(d, o) | (uint32_t)pci_cfg__get16(d, o + 2) << 16;
}
static inline void pci_cfg__set16(struct pci_device *d, uint32_t o, uint16_t v)
{
	d->cfg[o] = (uint8_t)v;
	d->cfg[o + 1] = (uint8_t)(v >> 8);
}
static inline void pci_cfg__set32(struct pci_device *d, uint32_t o, uint32_t v)
{
	pci_cfg__set16(d, o, (uint16_t)v);
	pci_cfg__set16(d, o + 2, (uint16_t)(v >> 16));
}

/*
 * The host: bus 0 only.  Other buses read as empty.  Exposed so unit
 * tests can drive one without a VM; the VM's host lives in pci.c.
 */
struct pci_host {
	pthread_rwlock_t lock; /* config writes exclusive; BAR dispatch shared */
	struct vm *vm;
	uint32_t config_address;      /* 0xcf8 */
	struct pci_device *devs[256]; /* by devfn */
	struct pci_device bridge;     /* 00:00.0 */
};

void pci_host__init(struct pci_host *host, struct vm *vm);
void pci_host__destroy(struct pci_host *host);
int pci_host__add(struct pci_host *host, struct pci_device *dev, int devfn);
/* Configuration read/write of len 1, 2 or 4 bytes (data is little endian). */
uint32_t pci_host__cfg_read(struct pci_host *host, uint8_t bus, uint8_t devfn, uint32_t reg,
			    uint32_t len);
void pci_host__cfg_write(struct pci_host *host, uint8_t bus, uint8_t devfn, uint32_t reg,
			 uint32_t len, uint32_t val);
/* Bus handlers, exposed for tests: 0xcf8-0xcff, ECAM, BAR windows. */
void pci_host__cf8_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void pci_host__ecam_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* MMIO to addr inside the PCI windows: returns false if no BAR claims it. */
bool pci_host__mmio(struct pci_host *host, uint64_t addr, uint8_t *data, uint32_t len,
		    bool is_write);

/* Registers dev at the next free slot of the VM's bus 0 (function 0). */
int pci__register_device(struct vm *vm, struct pci_device *dev);
/* What firmware would do, for a registered device: place each implemented
 * BAR in the MMIO window (64-bit prefetchable ones above 4 GiB), naturally
 * aligned, and enable memory decode and bus mastering. */
int pci__assign_bars(struct vm *vm, struct pci_device *dev);
/* At a fixed devfn, for the chipset's own functions. */
int pci__register_device_at(struct vm *vm, struct pci_device *dev, int devfn);

/* PIIX reset control register (0xcf9), shares its port dword with 0xcf8. */
void piix__reset_control_write(struct vm *vm, uint8_t val);
uint8_t piix__reset_control_read(void);

#endif
