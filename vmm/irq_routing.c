/*
 * vmm/irq_routing.c — the GSI routing table of the VM.
 *
 * KVM_SET_GSI_ROUTING replaces the whole table, so ours starts as a copy of
 * what KVM installs with KVM_CREATE_IRQCHIP (kvm_setup_default_irq_routing:
 * GSI 0-15 to both PIC and IOAPIC, 16-23 to the IOAPIC) and appends MSI
 * routes.  GSIs are never freed: a device keeps its vectors for the VM's
 * life, and there are at most a few hundred.
 */
#include "vmm/irq_routing.h"

#include "common/log.h"
#include "vmm/device.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define IRQ_ROUTING_MAX 1024

static struct {
	pthread_mutex_t lock;
	struct vm *vm;
	unsigned int nr;
	int next_gsi;
	struct kvm_irq_routing_entry entries[IRQ_ROUTING_MAX];
} rt = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void irq_routing__add_irqchip(unsigned int gsi, unsigned int chip, unsigned int pin)
{
	rt.entries[rt.nr++] = (struct kvm_irq_routing_entry){
	    .gsi = gsi,
	    .type = KVM_IRQ_ROUTING_IRQCHIP,
	    .u.irqchip = {.irqchip = chip, .pin = pin},
	};
}

static int irq_routing__init(struct vm *vm)
{
	pthread_mutex_lock(&rt.lock);
	rt.vm = vm;
	rt.nr = 0;
	rt.next_gsi = IRQ_ROUTING_FIRST_MSI_GSI;
	for (unsigned int i = 0; i < 24; i++) {
		irq_routing__add_irqchip(i, KVM_IRQCHIP_IOAPIC, i);
		if (i < 16)
			irq_routing__add_irqchip(
			    i, i < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, i % 8);
	}
	pthread_mutex_unlock(&rt.lock);
	return 0;
}

static void irq_routing__exit(struct vm *vm)
{
	pthread_mutex_lock(&rt.lock);
	rt.vm = NULL;
	pthread_mutex_unlock(&rt.lock);
}

/* Right after the irqchip (core_init), before any device. */
core_init(irq_routing__init, irq_routing__exit);

static int irq_routing__commit_locked(struct vm *vm)
{
	size_t sz = sizeof(struct kvm_irq_routing) + rt.nr * sizeof(struct kvm_irq_routing_entry);
	struct kvm_irq_routing *table;
	int err = 0;

	if (rt.vm != vm)
		return -ENODEV;
	table = calloc(1, sz);
	if (!table)
		return -ENOMEM;
	table->nr = rt.nr;
	memcpy(table->entries, rt.entries, rt.nr * sizeof(rt.entries[0]));
	if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, table) < 0) {
		err = -errno;
		pr_err("KVM_SET_GSI_ROUTING (%u entries): %s", rt.nr, strerror(errno));
	}
	free(table);
	return err;
}

int irq_routing__commit(struct vm *vm)
{
	int err;

	pthread_mutex_lock(&rt.lock);
	err = irq_routing__commit_locked(vm);
	pthread_mutex_unlock(&rt.lock);
	return err;
}

static void irq_routing__set_msi(struct kvm_irq_routing_entry *e, int gsi, uint64_t addr,
				 uint32_t data)
{
	*e = (struct kvm_irq_routing_entry){
	    .gsi = (uint32_t)gsi,
	    .type = KVM_IRQ_ROUTING_MSI,
	    .u.msi = {.address_lo = (uint32_t)addr,
		      .address_hi = (uint32_t)(addr >> 32),
		      .data = data},
	};
}

int irq_routing__add_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	int gsi, err;

	pthread_mutex_lock(&rt.lock);
	if (rt.vm != vm) {
		err = -ENODEV;
		goto out_unlock;
	}
	if (rt.nr >= IRQ_ROUTING_MAX) {
		err = -ENOSPC;
		goto out_unlock;
	}
	gsi = rt.next_gsi;
	irq_routing__set_msi(&rt.entries[rt.nr++], gsi, addr, data);
	err = irq_routing__commit_locked(vm);
	if (err < 0) {
		rt.nr--;
		goto out_unlock;
	}
	rt.next_gsi++;
	err = gsi;
out_unlock:
	pthread_mutex_unlock(&rt.lock);
	return err;
}

int irq_routing__update_msi(struct vm *vm, int gsi, uint64_t addr, uint32_t data)
{
	int err = -ENOENT;

	pthread_mutex_lock(&rt.lock);
	for (unsigned int i = 0; i < rt.nr; i++) {
		struct kvm_irq_routing_entry *e = &rt.entries[i];

		if (e->gsi != (uint32_t)gsi || e->type != KVM_IRQ_ROUTING_MSI)
			continue;
		if (e->u.msi.address_lo == (uint32_t)addr &&
		    e->u.msi.address_hi == (uint32_t)(addr >> 32) && e->u.msi.data == data) {
			err = 0; /* unchanged: spare KVM a table rebuild */
			break;
		}
		irq_routing__set_msi(e, gsi, addr, data);
		err = irq_routing__commit_locked(vm);
		break;
	}
	pthread_mutex_unlock(&rt.lock);
	return err;
}

int irq_routing__signal_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = {
	    .address_lo = (uint32_t)addr,
	    .address_hi = (uint32_t)(addr >> 32),
	    .data = data,
	};

	if (ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0)
		return -errno;
	return 0;
}

int irq_routing__irqfd(struct vm *vm, int efd, int gsi, bool assign)
{
	struct kvm_irqfd irqfd = {
	    .fd = (uint32_t)efd,
	    .gsi = (uint32_t)gsi,
	    .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0)
		return -errno;
	return 0;
}
