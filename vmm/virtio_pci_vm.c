/*
 * vmm/virtio_pci_vm.c — puts a virtio-pci transport (virtio_pci.c) on the
 * VM: KVM for its MSI routes, irqfds and ioeventfds, the VM's event loop
 * for masked vectors, a slot on PCI bus 0 with its BAR placed, a saved-state
 * section, and teardown of every registered device at exit.
 */
#include "vmm/virtio_pci.h"

#include "common/log.h"
#include "vmm/device.h"
#include "vmm/irq_routing.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>

struct virtio_pci_vm {
	struct virtio_pci vp;
	struct vm *vm;
	char section[48];
	struct state_ops state_ops;
	struct virtio_pci_vm *next;
};

static struct virtio_pci_vm *devices;

static int kvm__msi_route(void *ctx, int gsi, uint64_t addr, uint32_t data)
{
	if (gsi < 0)
		return irq_routing__add_msi(ctx, addr, data);
	return irq_routing__update_msi(ctx, gsi, addr, data) < 0 ? -1 : gsi;
}

static int kvm__irqfd(void *ctx, int efd, int gsi, bool assign)
{
	return irq_routing__irqfd(ctx, efd, gsi, assign);
}

static int kvm__signal_msi(void *ctx, uint64_t addr, uint32_t data)
{
	return irq_routing__signal_msi(ctx, addr, data);
}

static int kvm__watch(void *ctx, int efd, bool on, void (*fn)(int, uint32_t, void *), void *opaque)
{
	struct vm *vm = ctx;

	if (on)
		return evloop__add(&vm->loop, efd, EPOLLIN, fn, opaque);
	return evloop__del(&vm->loop, efd);
}

static int kvm__ioeventfd(void *ctx, uint64_t addr, uint32_t len, int efd, bool assign)
{
	struct vm *vm = ctx;
	struct kvm_ioeventfd io = {
	    .addr = addr,
	    .len = len,
	    .fd = efd,
	    .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
	};

	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0) {
		int err = -errno;

		pr_debug("KVM_IOEVENTFD %s 0x%llx: %s", assign ? "assign" : "deassign",
			 (unsigned long long)addr, strerror(errno));
		return err;
	}
	return 0;
}

static const struct virtio_pci_hw kvm_hw = {
    .msi_route = kvm__msi_route,
    .irqfd = kvm__irqfd,
    .signal_msi = kvm__signal_msi,
    .watch = kvm__watch,
    .ioeventfd = kvm__ioeventfd,
};

int virtio_pci__register(struct vm *vm, struct virtio_device *vdev)
{
	struct virtio_pci_vm *d = calloc(1, sizeof(*d));
	int err;

	if (!d)
		return -ENOMEM;
	vdev->mem = &vm->mem;
	err = virtio_pci__init(&d->vp, vdev, &kvm_hw, vm);
	if (err < 0) {
		pr_err("%s %s: cannot create the virtio-pci function: %s", vdev->ops->type,
		       vdev->id, strerror(-err));
		free(d);
		return err;
	}
	d->vm = vm;
	snprintf(d->section, sizeof(d->section), "virtio-pci.%s", vdev->id);
	d->state_ops = (struct state_ops){
	    .section = d->section,
	    .save = virtio_pci__save,
	    .restore = virtio_pci__restore,
	};
	err = pci__register_device(vm, &d->vp.pci);
	if (!err)
		err = pci__assign_bars(vm, &d->vp.pci);
	if (!err)
		err = vm__register_state(vm, &d->state_ops, &d->vp);
	if (err < 0) {
		/* A registered PCI function cannot be removed: only fails
		 * at setup, which then tears the whole VM down. */
		pr_err("%s %s: cannot add the PCI function: %s", vdev->ops->type, vdev->id,
		       strerror(-err));
		return err;
	}
	d->next = devices;
	devices = d;
	pr_debug("%s %s: PCI 00:%02x.0, BAR%d at 0x%llx", vdev->ops->type, vdev->id,
		 d->vp.pci.devfn >> 3, VIRTIO_PCI_BAR,
		 (unsigned long long)pci_device__bar_addr(&d->vp.pci, VIRTIO_PCI_BAR));
	return 0;
}

static int virtio_pci__vm_init(struct vm *vm)
{
	return 0;
}

static void virtio_pci__vm_exit(struct vm *vm)
{
	while (devices) {
		struct virtio_pci_vm *d = devices;
		struct virtio_device *vdev = d->vp.vdev;

		devices = d->next;
		virtio_pci__exit(&d->vp);
		if (vdev->ops->destroy)
			vdev->ops->destroy(vdev);
		/* d stays allocated: the PCI bus keeps pointing at it. */
	}
}

/* At bus priority: its exit runs after every device hook's, and also when
 * a later device fails to set up. */
bus_init(virtio_pci__vm_init, virtio_pci__vm_exit);
