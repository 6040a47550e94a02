/*
 * vmm/virtio_pci.h — the virtio-pci modern transport (virtio 1.2, 4.1).
 *
 * How a device's glue (vmm/dev_virtio_*.c) uses it:
 *
 *	static int blk__init(struct vm *vm)
 *	{
 *		struct virtio_device *vdev = my_model__create(...);  // calloc'd
 *		// The glue fills: vdev->ops, vdev->priv, vdev->id ("disk0"),
 *		// vdev->nr_queues (1..VIRTIO_MAX_QUEUES).
 *		err = virtio_pci__register(vm, vdev);
 *		if (err < 0)
 *			vdev->ops->destroy(vdev);   // still ours on failure
 *		return err;
 *	}
 *	device_init(blk__init, NULL);       // no exit hook needed
 *
 * virtio_pci__register() fills the rest of *vdev: mem (&vm->mem), one
 * kick_fd and one call_fd eventfd per queue, config_call_fd, fail and
 * transport.  The fds stay valid until destroy; models read kick_fd (the
 * guest's notifications arrive there via KVM ioeventfd) and never close
 * them.  virtio_device__notify(vdev, q) after pushes raises the queue's
 * MSI-X interrupt (KVM irqfd on call_fd): no vCPU thread is involved.
 *
 * On success the transport owns vdev: at VM teardown it calls
 * ops->stop() then ops->destroy().  The transport calls ops->start() on
 * DRIVER_OK and ops->stop() on a guest reset (status 0), from a vCPU
 * thread.  The queues' struct virtq (size, rings, event_idx, indirect) is
 * set up and virtq__enable()d by the transport before start().
 *
 * It also registers a saved-state section "virtio-pci.<id>" holding the
 * transport state plus the model's ops->save() blob (if any).
 *
 * Each device gets PCI function 0 of the next free slot, with one 64-bit
 * prefetchable memory BAR (BAR 4) pre-assigned in the 64-bit PCI window
 * and memory decode + bus mastering already enabled (we have no firmware).
 */
#ifndef VMMD_VMM_VIRTIO_PCI_H
#define VMMD_VMM_VIRTIO_PCI_H

#include "virtio/device.h"

#include <stdbool.h>
#include <stdint.h>

struct vm;

int virtio_pci__register(struct vm *vm, struct virtio_device *vdev);
/* vdev's model learned its features after register() (a vhost-user model
 * whose back-end started later): the transport offers them from now on.
 * Before the guest runs only. */
void virtio_pci__refresh_features(struct virtio_device *vdev);

/* --- the layout, exposed for tests --- */
#define VIRTIO_PCI_VENDOR	  0x1af4
#define VIRTIO_PCI_DEVICE_BASE	  0x1040 /* + device id */
#define VIRTIO_PCI_BAR		  4
#define VIRTIO_PCI_BAR_SIZE	  0x8000
#define VIRTIO_PCI_COMMON_OFF	  0x0000
#define VIRTIO_PCI_COMMON_LEN	  0x38
#define VIRTIO_PCI_ISR_OFF	  0x1000
#define VIRTIO_PCI_DEVICE_OFF	  0x2000
#define VIRTIO_PCI_DEVICE_LEN	  0x1000
#define VIRTIO_PCI_NOTIFY_OFF	  0x3000
#define VIRTIO_PCI_NOTIFY_MULT	  4 /* queue q notifies at NOTIFY_OFF + 4 * q */
#define VIRTIO_PCI_MSIX_TABLE_OFF 0x4000
#define VIRTIO_PCI_MSIX_PBA_OFF	  0x6000

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER	  0x02
#define VIRTIO_STATUS_DRIVER_OK	  0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED	  0x80

#define VIRTIO_MSI_NO_VECTOR 0xffff

/*
 * Internals, exposed so unit tests can drive a transport without KVM: the
 * KVM side (MSI routes, irqfd, ioeventfd, watching an eventfd on the VM's
 * event loop) goes through struct virtio_pci_hw, which tests replace.
 */
#include "vmm/pci.h"

#include <pthread.h>

#define VIRTIO_PCI_MAX_VECTORS (VIRTIO_MAX_QUEUES + 1)

struct virtio_pci;

struct virtio_pci_hw {
	/* Route gsi (or a new one if gsi < 0) to the MSI; returns the gsi. */
	int (*msi_route)(void *ctx, int gsi, uint64_t addr, uint32_t data);
	int (*irqfd)(void *ctx, int efd, int gsi, bool assign);
	int (*signal_msi)(void *ctx, uint64_t addr, uint32_t data);
	/* Call fn(opaque) on the event loop whenever efd is readable. */
	int (*watch)(void *ctx, int efd, bool on, void (*fn)(int fd, uint32_t events, void *opaque),
		     void *opaque);
	int (*ioeventfd)(void *ctx, uint64_t addr, uint32_t len, int efd, bool assign);
};

struct virtio_pci_msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl; /* ctrl bit 0: masked */
};

/* An interrupt source: queue q's call_fd, or (index nr_queues) config_call_fd. */
struct virtio_pci_irq_src {
	struct virtio_pci *vp;
	int efd;
	uint16_t vector;
	int attached_gsi; /* irqfd bound to it, or -1 */
	bool watched;	  /* on the event loop instead */
};

struct virtio_pci_queue {
	uint16_t size, vector;
	bool enabled;
	uint64_t desc, driver, device;
};

struct virtio_pci {
	struct pci_device pci;
	struct virtio_device *vdev;
	const struct virtio_pci_hw *hw;
	void *hw_ctx;
	pthread_mutex_t lock; /* everything below (not the lock-free fail path) */
	int msix_cap;	      /* config-space offset of the MSI-X capability */
	uint16_t nr_vectors;

	uint64_t device_features;
	uint32_t dfselect, gfselect;
	uint8_t status; /* NEEDS_RESET is or'ed in atomically by fail() */
	uint8_t config_generation, isr;
	uint16_t queue_select, config_vector;
	struct virtio_pci_queue q[VIRTIO_MAX_QUEUES];
	bool started;
	int fail_logged; /* atomic: fail() logged since the last reset */

	struct virtio_pci_msix_entry msix[VIRTIO_PCI_MAX_VECTORS];
	uint64_t pba[2];
	int gsi[VIRTIO_PCI_MAX_VECTORS];
	struct virtio_pci_irq_src src[VIRTIO_PCI_MAX_VECTORS];

	uint64_t ioevent_base; /* BAR address the ioeventfds are at, 0: none */
};

/* Builds the PCI function and the transport around vdev (nr_queues and ops
 * set), creating the eventfds; no VM involved.  virtio_pci__register() is
 * this plus KVM, the PCI bus, BAR placement and saved state. */
int virtio_pci__init(struct virtio_pci *vp, struct virtio_device *vdev,
		     const struct virtio_pci_hw *hw, void *hw_ctx);
void virtio_pci__exit(struct virtio_pci *vp);
/* BAR access, offset relative to the BAR. */
void virtio_pci__bar_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
int virtio_pci__save(void *opaque, uint8_t **buf, size_t *len);
int virtio_pci__restore(void *opaque, const uint8_t *buf, size_t len);

#endif
