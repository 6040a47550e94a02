/* vmm/irq_routing.h — the VM's GSI routing table: the default irqchip routes
 * KVM starts with plus one MSI route per GSI handed out here, so irqfds can
 * deliver MSI-X interrupts without a vCPU thread. */
#ifndef VMMD_VMM_IRQ_ROUTING_H
#define VMMD_VMM_IRQ_ROUTING_H

#include <stdbool.h>
#include <stdint.h>

struct vm;

#define IRQ_ROUTING_FIRST_MSI_GSI 24 /* after the IOAPIC's 24 pins */

/* A new GSI routed to the MSI (addr, data); returns it or a negative errno.
 * Takes effect at once (the table is committed). */
int irq_routing__add_msi(struct vm *vm, uint64_t addr, uint32_t data);
/* Re-points an MSI GSI and commits. */
int irq_routing__update_msi(struct vm *vm, int gsi, uint64_t addr, uint32_t data);
/* Pushes the whole table to KVM (KVM_SET_GSI_ROUTING replaces all of it). */
int irq_routing__commit(struct vm *vm);
/* One-off MSI (KVM_SIGNAL_MSI), e.g. a pending vector being unmasked. */
int irq_routing__signal_msi(struct vm *vm, uint64_t addr, uint32_t data);
/* Binds (or unbinds) an eventfd to a GSI with KVM_IRQFD. */
int irq_routing__irqfd(struct vm *vm, int efd, int gsi, bool assign);

#endif
