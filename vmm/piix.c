/*
 * vmm/piix.c — PIIX3 at 00:01.0: the PCI-to-ISA bridge identity that guests
 * expect next to an i440FX, and the reset control register at 0xcf9 (the
 * FADT's RESET_REG).  The ISA devices themselves are separate files.
 */
#include "common/log.h"
#include "vmm/pci.h"
#include "vmm/vm.h"

#define RCR_SYS_RST 0x02 /* hard reset when RST_CPU fires */
#define RCR_RST_CPU 0x04

static struct pci_device isa_bridge;
static uint8_t reset_control;

/* Linux writes 0x02 then 0x06 (reboot=pci), ACPI writes the FADT's 0x06;
 * either way, bit 2 asks for the reset now. */
void piix__reset_control_write(struct vm *vm, uint8_t val)
{
	__atomic_store_n(&reset_control, val & (RCR_SYS_RST | RCR_RST_CPU), __ATOMIC_RELAXED);
	if (val & RCR_RST_CPU)
		vm__request_stop(vm, VM_STOP_REBOOT, "guest reset via 0xcf9");
}

uint8_t piix__reset_control_read(void)
{
	return __atomic_load_n(&reset_control, __ATOMIC_RELAXED) & RCR_SYS_RST;
}

static int piix__init(struct vm *vm)
{
	pci_device__init(&isa_bridge, "piix3", 0x8086, 0x7000, 0x060100, 0x00);
	/* Multi-function, as on the real chip (IDE and USB would be .1/.2):
	 * Linux then scans the other functions and finds none. */
	isa_bridge.cfg[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_MULTI;
	/* A bridge that forwards ISA cycles is always decoding. */
	isa_bridge.cfg[PCI_COMMAND] = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	return pci__register_device_at(vm, &isa_bridge, PCI_DEVFN(1, 0));
}

device_init(piix__init, NULL);
