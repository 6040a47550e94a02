/*
 * vmm/virtio_pci.c — the virtio-pci modern transport (virtio 1.2, 4.1).
 *
 * One 64-bit BAR holds the common, ISR, device and notify structures and
 * the MSI-X table and PBA.  The data path never touches a vCPU thread:
 * notifications arrive on each queue's kick eventfd through KVM ioeventfds
 * and interrupts leave through KVM irqfds bound to each queue's call
 * eventfd, one MSI route (GSI) per vector.
 *
 * A masked vector detaches its irqfds and the event loop watches the call
 * eventfds instead, setting the PBA bit; unmasking injects what is pending
 * with KVM_SIGNAL_MSI and re-attaches.  So there is one code path for every
 * "cannot deliver now" case, and it doubles as the fallback if an irqfd
 * cannot be set up.
 *
 * Register accesses run on vCPU threads under vp->lock.  vdev->fail() is
 * called from model threads, which a reset may be joining under that lock,
 * so it takes no lock: NEEDS_RESET is or'ed in atomically and the config
 * interrupt is an eventfd write.
 */
#include "vmm/virtio_pci.h"

#include "common/log.h"
#include "vmm/irq_routing.h"
#include "vmm/layout.h"
#include "vmm/state.pb-c.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PCI_CAP_ID_VNDR	  0x09
#define PCI_CAP_ID_MSIX	  0x11
#define MSIX_CTRL_ENABLE  0x8000
#define MSIX_CTRL_MASKALL 0x4000

#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG	  3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4

/* Common configuration structure offsets (4.1.4.3). */
#define CC_DFSELECT 0x00
#define CC_DF	    0x04
#define CC_GFSELECT 0x08
#define CC_GF	    0x0c
#define CC_MSIX	    0x10
#define CC_NUMQ	    0x12
#define CC_STATUS   0x14
#define CC_CFGGEN   0x15
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE   0x18
#define CC_Q_MSIX   0x1a
#define CC_Q_ENABLE 0x1c
#define CC_Q_NOFF   0x1e
#define CC_Q_DESC   0x20
#define CC_Q_DRIVER 0x28
#define CC_Q_DEVICE 0x30

static const struct {
	uint8_t off, len;
} cc_fields[] = {
    {CC_DFSELECT, 4}, {CC_DF, 4},     {CC_GFSELECT, 4}, {CC_GF, 4},
    {CC_MSIX, 2},     {CC_NUMQ, 2},   {CC_STATUS, 1},	{CC_CFGGEN, 1},
    {CC_Q_SELECT, 2}, {CC_Q_SIZE, 2}, {CC_Q_MSIX, 2},	{CC_Q_ENABLE, 2},
    {CC_Q_NOFF, 2},   {CC_Q_DESC, 8}, {CC_Q_DRIVER, 8}, {CC_Q_DEVICE, 8},
};

static uint32_t virtio_pci__class(uint16_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_NET: return 0x020000;
	case VIRTIO_ID_BLOCK: return 0x018000;
	case VIRTIO_ID_CONSOLE: return 0x078000;
	default: return 0x00ff00;
	}
}

static uint8_t virtio_pci__status(struct virtio_pci *vp)
{
	return __atomic_load_n(&vp->status, __ATOMIC_ACQUIRE);
}

static void efd__signal(int efd)
{
	uint64_t one = 1;

	if (efd >= 0 && write(efd, &one, sizeof(one)) < 0) {
		/* EAGAIN only if 2^64-2 signals are pending: one is enough */
	}
}

static uint64_t efd__drain(int efd)
{
	uint64_t v = 0;

	if (read(efd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* --- failure: lock-free, callable from any thread --- */

static void virtio_pci__fail(struct virtio_device *vdev, const char *why)
{
	struct virtio_pci *vp = vdev->transport;

	__atomic_or_fetch(&vp->status, VIRTIO_STATUS_NEEDS_RESET, __ATOMIC_ACQ_REL);
	if (!__atomic_exchange_n(&vp->fail_logged, 1, __ATOMIC_ACQ_REL))
		pr_err("%s %s: %s; device needs reset", vdev->ops->type, vdev->id, why);
	efd__signal(vdev->config_call_fd);
}

/* --- MSI-X and interrupt sources --- */

static bool msix__enabled(struct virtio_pci *vp)
{
	return pci_cfg__get16(&vp->pci, (uint32_t)vp->msix_cap + 2) & MSIX_CTRL_ENABLE;
}

static bool msix__masked(struct virtio_pci *vp, uint16_t vec)
{
	return (pci_cfg__get16(&vp->pci, (uint32_t)vp->msix_cap + 2) & MSIX_CTRL_MASKALL) ||
	       (vp->msix[vec].ctrl & 1);
}

static uint64_t msix__addr(struct virtio_pci *vp, uint16_t vec)
{
	return (uint64_t)vp->msix[vec].addr_hi << 32 | vp->msix[vec].addr_lo;
}

static void msix__set_pending(struct virtio_pci *vp, uint16_t vec, bool on)
{
	if (on)
		vp->pba[vec / 64] |= 1ULL << (vec % 64);
	else
		vp->pba[vec / 64] &= ~(1ULL << (vec % 64));
}

static bool msix__pending(struct virtio_pci *vp, uint16_t vec)
{
	return vp->pba[vec / 64] & (1ULL << (vec % 64));
}

static void msix__deliver(struct virtio_pci *vp, uint16_t vec)
{
	int err = vp->hw->signal_msi(vp->hw_ctx, msix__addr(vp, vec), vp->msix[vec].data);

	if (err < 0)
		pr_warn_once("%s: KVM_SIGNAL_MSI: %s", vp->pci.name, strerror(-err));
}

/* An event on a source that is not bound to an irqfd (event loop thread). */
static void virtio_pci__src_event(int fd, uint32_t events, void *opaque)
{
	struct virtio_pci_irq_src *src = opaque;
	struct virtio_pci *vp = src->vp;
	uint16_t vec;

	pthread_mutex_lock(&vp->lock);
	/* Re-attached meanwhile: the irqfd owns the counter now. */
	if (!src->watched || src->attached_gsi >= 0)
		goto out_unlock;
	if (!efd__drain(src->efd))
		goto out_unlock;
	vec = src->vector;
	if (!msix__enabled(vp) || vec >= vp->nr_vectors)
		goto out_unlock; /* no way to interrupt: dropped, as on hardware */
	if (msix__masked(vp, vec))
		msix__set_pending(vp, vec, true);
	else
		msix__deliver(vp, vec); /* irqfd could not be attached */
out_unlock:
	pthread_mutex_unlock(&vp->lock);
}

static void src__watch(struct virtio_pci *vp, struct virtio_pci_irq_src *src, bool on)
{
	if (src->watched == on)
		return;
	if (vp->hw->watch(vp->hw_ctx, src->efd, on, virtio_pci__src_event, src) < 0 && on) {
		pr_warn_once("%s: cannot watch an interrupt eventfd", vp->pci.name);
		return;
	}
	src->watched = on;
}

/* Bind the source to what its vector currently allows. */
static void src__update(struct virtio_pci *vp, struct virtio_pci_irq_src *src)
{
	uint16_t vec = src->vector;
	bool usable = msix__enabled(vp) && vec < vp->nr_vectors;
	int want = -1;

	if (usable && !msix__masked(vp, vec)) {
		if (vp->gsi[vec] < 0)
			vp->gsi[vec] = vp->hw->msi_route(vp->hw_ctx, -1, msix__addr(vp, vec),
							 vp->msix[vec].data);
		want = vp->gsi[vec];
	}
	if (src->attached_gsi == want && (want >= 0 || src->watched))
		return;
	if (src->attached_gsi >= 0) {
		vp->hw->irqfd(vp->hw_ctx, src->efd, src->attached_gsi, false);
		src->attached_gsi = -1;
	}
	if (want < 0) {
		src__watch(vp, src, true);
		return;
	}
	/* Moving to an irqfd: what arrived while watched is pending now. */
	src__watch(vp, src, false);
	if (efd__drain(src->efd))
		msix__set_pending(vp, vec, true);
	if (msix__pending(vp, vec)) {
		msix__set_pending(vp, vec, false);
		msix__deliver(vp, vec);
	}
	if (vp->hw->irqfd(vp->hw_ctx, src->efd, want, true) < 0) {
		pr_warn_once("%s: KVM_IRQFD failed; interrupts go through the event loop",
			     vp->pci.name);
		src__watch(vp, src, true);
		return;
	}
	src->attached_gsi = want;
}

static void virtio_pci__update_irqs(struct virtio_pci *vp)
{
	unsigned int n = vp->vdev->nr_queues + 1;

	for (unsigned int i = 0; i < n; i++)
		src__update(vp, &vp->src[i]);
	/* Pending vectors that no source uses any more still fire on unmask. */
	for (uint16_t v = 0; v < vp->nr_vectors; v++) {
		if (msix__pending(vp, v) && msix__enabled(vp) && !msix__masked(vp, v)) {
			msix__set_pending(vp, v, false);
			msix__deliver(vp, v);
		}
	}
}

static void msix__table_io(struct virtio_pci *vp, uint64_t off, uint8_t *data, uint32_t len,
			   bool is_write)
{
	uint16_t vec = (uint16_t)(off / 16);
	uint32_t word = (uint32_t)(off % 16) / 4, v = 0;
	uint32_t *e;

	/* Dword (or qword, split) accesses only, as the PCI spec requires. */
	if ((len != 4 && len != 8) || off % 4 || vec >= vp->nr_vectors) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (len == 8) {
		msix__table_io(vp, off, data, 4, is_write);
		msix__table_io(vp, off + 4, data + 4, 4, is_write);
		return;
	}
	e = (uint32_t *)&vp->msix[vec] + word;
	if (!is_write) {
		memcpy(data, e, 4);
		return;
	}
	memcpy(&v, data, 4);
	if (word == 3)
		v &= 1; /* only the mask bit is writable */
	if (*e == v)
		return;
	*e = v;
	if (word < 3 && vp->gsi[vec] >= 0)
		vp->hw->msi_route(vp->hw_ctx, vp->gsi[vec], msix__addr(vp, vec),
				  vp->msix[vec].data);
	if (word == 3)
		virtio_pci__update_irqs(vp);
}

/* --- ioeventfds follow the BAR --- */

static void virtio_pci__sync_ioeventfds(struct virtio_pci *vp)
{
	uint64_t base = pci_device__bar_addr(&vp->pci, VIRTIO_PCI_BAR);

	if (base == vp->ioevent_base)
		return;
	for (unsigned int q = 0; q < vp->vdev->nr_queues; q++) {
		uint64_t off = VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * q;

		if (vp->ioevent_base)
			vp->hw->ioeventfd(vp->hw_ctx, vp->ioevent_base + off, 2,
					  vp->vdev->kick_fd[q], false);
		if (base &&
		    vp->hw->ioeventfd(vp->hw_ctx, base + off, 2, vp->vdev->kick_fd[q], true) < 0)
			pr_warn_once("%s: KVM_IOEVENTFD failed; notifications exit to vmm",
				     vp->pci.name);
	}
	vp->ioevent_base = base;
}

static void virtio_pci__bar_moved(struct pci_device *dev, int bar, uint64_t old_addr,
				  uint64_t new_addr)
{
	struct virtio_pci *vp = dev->opaque;

	pthread_mutex_lock(&vp->lock);
	virtio_pci__sync_ioeventfds(vp);
	pthread_mutex_unlock(&vp->lock);
}

static void virtio_pci__config_write(struct pci_device *dev, uint32_t offset, uint32_t len)
{
	struct virtio_pci *vp = dev->opaque;

	pthread_mutex_lock(&vp->lock);
	virtio_pci__sync_ioeventfds(vp); /* memory decode may have changed */
	if (offset < (uint32_t)vp->msix_cap + 4 && offset + len > (uint32_t)vp->msix_cap + 2)
		virtio_pci__update_irqs(vp);
	pthread_mutex_unlock(&vp->lock);
}

/* --- device status and reset --- */

static void virtio_pci__reset(struct virtio_pci *vp)
{
	struct virtio_device *vdev = vp->vdev;

	if (vdev->ops->stop)
		vdev->ops->stop(vdev);
	vp->started = false;
	for (unsigned int q = 0; q < vdev->nr_queues; q++) {
		virtq__disable(&vdev->vqs[q]);
		memset(&vdev->vqs[q], 0, sizeof(vdev->vqs[q]));
		vp->q[q] = (struct virtio_pci_queue){
		    .size = vdev->ops->queue_max_size(vdev, q),
		    .vector = VIRTIO_MSI_NO_VECTOR,
		};
		vp->src[q].vector = VIRTIO_MSI_NO_VECTOR;
	}
	vp->config_vector = VIRTIO_MSI_NO_VECTOR;
	vp->src[vdev->nr_queues].vector = VIRTIO_MSI_NO_VECTOR;
	vdev->driver_features = 0;
	vp->dfselect = vp->gfselect = 0;
	vp->queue_select = 0;
	vp->isr = 0;
	__atomic_store_n(&vp->status, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&vp->fail_logged, 0, __ATOMIC_RELEASE);
	virtio_pci__update_irqs(vp);
}

static void virtio_pci__set_status(struct virtio_pci *vp, uint8_t val)
{
	struct virtio_device *vdev = vp->vdev;
	uint8_t old = virtio_pci__status(vp), add;

	if (!val) {
		virtio_pci__reset(vp);
		return;
	}
	/* Bits are only ever added until the next reset; NEEDS_RESET is ours. */
	add = (uint8_t)(val & ~old & ~VIRTIO_STATUS_NEEDS_RESET);
	if (add & VIRTIO_STATUS_FEATURES_OK) {
		uint64_t f = vdev->driver_features;

		if (!(f & (1ULL << VIRTIO_F_VERSION_1)) || (f & ~vp->device_features))
			add &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK; /* the driver sees it refused */
	}
	__atomic_or_fetch(&vp->status, add, __ATOMIC_ACQ_REL);
	if (!(add & VIRTIO_STATUS_DRIVER_OK))
		return;
	if (!(old & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_pci__fail(vdev, "DRIVER_OK without FEATURES_OK");
		return;
	}
	if (vdev->ops->start && vdev->ops->start(vdev) < 0) {
		virtio_pci__fail(vdev, "cannot start");
		return;
	}
	vp->started = true;
}

static void virtio_pci__queue_enable(struct virtio_pci *vp, unsigned int qi)
{
	struct virtio_device *vdev = vp->vdev;
	struct virtio_pci_queue *pq = &vp->q[qi];
	struct virtq *q = &vdev->vqs[qi];
	char why[128], msg[160];

	if (pq->enabled)
		return;
	if (!(virtio_pci__status(vp) & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_pci__fail(vdev, "queue enabled before FEATURES_OK");
		return;
	}
	memset(q, 0, sizeof(*q));
	q->size = pq->size;
	q->desc_gpa = pq->desc;
	q->avail_gpa = pq->driver;
	q->used_gpa = pq->device;
	q->event_idx = virtio_device__has(vdev, VIRTIO_F_EVENT_IDX);
	q->indirect = virtio_device__has(vdev, VIRTIO_F_INDIRECT_DESC);
	q->mem = vdev->mem;
	if (virtq__enable(q, why, sizeof(why)) < 0) {
		snprintf(msg, sizeof(msg), "queue %u: %s", qi, why);
		virtio_pci__fail(vdev, msg);
		return;
	}
	pq->enabled = true;
}

/* --- the common configuration structure --- */

static void put_le(uint8_t *p, uint64_t v, unsigned int len)
{
	for (unsigned int i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned int len)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < len; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* The structure as the driver reads it now. */
static void common__image(struct virtio_pci *vp, uint8_t *img)
{
	struct virtio_device *vdev = vp->vdev;
	uint16_t qs = vp->queue_select;
	uint32_t df = 0;

	memset(img, 0, VIRTIO_PCI_COMMON_LEN);
	if (vp->dfselect < 2)
		df = (uint32_t)(vp->device_features >> (32 * vp->dfselect));
	put_le(img + CC_DFSELECT, vp->dfselect, 4);
	put_le(img + CC_DF, df, 4);
	put_le(img + CC_GFSELECT, vp->gfselect, 4);
	if (vp->gfselect < 2)
		put_le(img + CC_GF, vdev->driver_features >> (32 * vp->gfselect), 4);
	put_le(img + CC_MSIX, vp->config_vector, 2);
	put_le(img + CC_NUMQ, vdev->nr_queues, 2);
	img[CC_STATUS] = virtio_pci__status(vp);
	img[CC_CFGGEN] = vp->config_generation;
	put_le(img + CC_Q_SELECT, qs, 2);
	if (qs < vdev->nr_queues) {
		const struct virtio_pci_queue *q = &vp->q[qs];

		put_le(img + CC_Q_SIZE, q->size, 2);
		put_le(img + CC_Q_MSIX, q->vector, 2);
		put_le(img + CC_Q_ENABLE, q->enabled, 2);
		put_le(img + CC_Q_NOFF, qs, 2);
		put_le(img + CC_Q_DESC, q->desc, 8);
		put_le(img + CC_Q_DRIVER, q->driver, 8);
		put_le(img + CC_Q_DEVICE, q->device, 8);
	}
}

static uint16_t vector__accept(struct virtio_pci *vp, uint64_t v)
{
	/* A vector we do not have reads back as NO_VECTOR (4.1.5.1.2). */
	return v < vp->nr_vectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
}

static void common__write_field(struct virtio_pci *vp, unsigned int off, uint64_t v)
{
	struct virtio_device *vdev = vp->vdev;
	uint16_t qs = vp->queue_select;
	struct virtio_pci_queue *q = qs < vdev->nr_queues ? &vp->q[qs] : NULL;
	char why[96];

	switch (off) {
	case CC_DFSELECT: vp->dfselect = (uint32_t)v; break;
	case CC_GFSELECT: vp->gfselect = (uint32_t)v; break;
	case CC_GF:
		if (vp->gfselect >= 2 || (virtio_pci__status(vp) & VIRTIO_STATUS_FEATURES_OK))
			break;
		vdev->driver_features &= ~(0xffffffffULL << (32 * vp->gfselect));
		vdev->driver_features |= (v & 0xffffffffULL) << (32 * vp->gfselect);
		break;
	case CC_MSIX:
		vp->config_vector = vector__accept(vp, v);
		vp->src[vdev->nr_queues].vector = vp->config_vector;
		src__update(vp, &vp->src[vdev->nr_queues]);
		break;
	case CC_STATUS: virtio_pci__set_status(vp, (uint8_t)v); break;
	case CC_Q_SELECT: vp->queue_select = (uint16_t)v; break;
	case CC_Q_SIZE:
		if (!q || q->enabled)
			break;
		if (!v || (v & (v - 1)) || v > vdev->ops->queue_max_size(vdev, qs)) {
			snprintf(why, sizeof(why), "queue %u: bad size %u (max %u)", qs,
				 (unsigned int)v, vdev->ops->queue_max_size(vdev, qs));
			virtio_pci__fail(vdev, why);
			break;
		}
		q->size = (uint16_t)v;
		break;
	case CC_Q_MSIX:
		if (!q)
			break;
		q->vector = vector__accept(vp, v);
		vp->src[qs].vector = q->vector;
		src__update(vp, &vp->src[qs]);
		break;
	case CC_Q_ENABLE:
		/* Writing 0 is not allowed to the driver (4.1.4.3.2): ignored. */
		if (q && v == 1)
			virtio_pci__queue_enable(vp, qs);
		break;
	case CC_Q_DESC:
	case CC_Q_DRIVER:
	case CC_Q_DEVICE:
		if (!q || q->enabled)
			break;
		if (off == CC_Q_DESC)
			q->desc = v;
		else if (off == CC_Q_DRIVER)
			q->driver = v;
		else
			q->device = v;
		break;
	default: /* read-only */ break;
	}
}

static void common__io(struct virtio_pci *vp, uint32_t off, uint8_t *data, uint32_t len,
		       bool is_write)
{
	uint8_t img[VIRTIO_PCI_COMMON_LEN];

	if (len > 8 || off >= VIRTIO_PCI_COMMON_LEN || len > VIRTIO_PCI_COMMON_LEN - off) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (!is_write) {
		common__image(vp, img);
		memcpy(data, img + off, len);
		return;
	}
	/* Field by field, each merged into its current value (so the two
	 * halves of queue_desc work), re-reading the state in between because
	 * an earlier field (queue_select) changes what later ones mean. */
	for (size_t i = 0; i < sizeof(cc_fields) / sizeof(cc_fields[0]); i++) {
		unsigned int fo = cc_fields[i].off, fl = cc_fields[i].len;

		if (off >= fo + fl || off + len <= fo)
			continue;
		common__image(vp, img);
		memcpy(img + off, data, len);
		common__write_field(vp, fo, get_le(img + fo, fl));
	}
}

/* --- the BAR --- */

void virtio_pci__bar_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_pci *vp = opaque;
	struct virtio_device *vdev = vp->vdev;

	pthread_mutex_lock(&vp->lock);
	if (offset < VIRTIO_PCI_COMMON_OFF + VIRTIO_PCI_COMMON_LEN) {
		common__io(vp, (uint32_t)offset, data, len, is_write);
	} else if (offset == VIRTIO_PCI_ISR_OFF) {
		if (!is_write) {
			memset(data, 0, len);
			data[0] = vp->isr; /* read to clear */
			vp->isr = 0;
		}
	} else if (offset >= VIRTIO_PCI_DEVICE_OFF &&
		   offset < VIRTIO_PCI_DEVICE_OFF + VIRTIO_PCI_DEVICE_LEN) {
		uint32_t o = (uint32_t)(offset - VIRTIO_PCI_DEVICE_OFF);

		if (o >= vdev->ops->config_size || len > vdev->ops->config_size - o) {
			if (!is_write)
				memset(data, 0, len);
		} else if (is_write) {
			if (vdev->ops->config_write)
				vdev->ops->config_write(vdev, o, data, len);
		} else if (vdev->ops->config_read) {
			vdev->ops->config_read(vdev, o, data, len);
		} else {
			memset(data, 0, len);
		}
	} else if (offset >= VIRTIO_PCI_NOTIFY_OFF &&
		   offset < VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * vdev->nr_queues) {
		/* No ioeventfd (yet, or a 4-byte write): kick by hand. */
		if (is_write)
			efd__signal(vdev->kick_fd[(offset - VIRTIO_PCI_NOTIFY_OFF) /
						  VIRTIO_PCI_NOTIFY_MULT]);
		else
			memset(data, 0, len);
	} else if (offset >= VIRTIO_PCI_MSIX_TABLE_OFF &&
		   offset < VIRTIO_PCI_MSIX_TABLE_OFF + 16u * vp->nr_vectors) {
		msix__table_io(vp, offset - VIRTIO_PCI_MSIX_TABLE_OFF, data, len, is_write);
	} else if (offset >= VIRTIO_PCI_MSIX_PBA_OFF &&
		   offset + len <= VIRTIO_PCI_MSIX_PBA_OFF + 16) {
		if (!is_write)
			memcpy(data, (uint8_t *)vp->pba + (offset - VIRTIO_PCI_MSIX_PBA_OFF), len);
	} else if (!is_write) {
		memset(data, 0, len);
	}
	pthread_mutex_unlock(&vp->lock);
}

/* --- construction --- */

static int virtio_pci__add_vcap(struct virtio_pci *vp, uint8_t type, uint32_t off, uint32_t len,
				bool notify)
{
	uint8_t body[18] = {0};

	body[0] = notify ? 20 : 16; /* cap_len, including id and next */
	body[1] = type;
	body[2] = VIRTIO_PCI_BAR;
	put_le(body + 6, off, 4);
	put_le(body + 10, len, 4);
	if (notify)
		put_le(body + 14, VIRTIO_PCI_NOTIFY_MULT, 4);
	return pci_device__add_cap(&vp->pci, PCI_CAP_ID_VNDR, body, notify ? 18 : 14);
}

static uint64_t virtio_pci__device_features(struct virtio_device *vdev)
{
	const struct virtio_device_ops *ops = vdev->ops;

	return (ops->features ? ops->features(vdev) : 0) | 1ULL << VIRTIO_F_VERSION_1 |
	       1ULL << VIRTIO_F_INDIRECT_DESC | 1ULL << VIRTIO_F_EVENT_IDX;
}

void virtio_pci__refresh_features(struct virtio_device *vdev)
{
	struct virtio_pci *vp = vdev->transport;

	pthread_mutex_lock(&vp->lock);
	vp->device_features = virtio_pci__device_features(vdev);
	pthread_mutex_unlock(&vp->lock);
}

int virtio_pci__init(struct virtio_pci *vp, struct virtio_device *vdev,
		     const struct virtio_pci_hw *hw, void *hw_ctx)
{
	const struct virtio_device_ops *ops = vdev->ops;
	uint8_t msix[10];
	pthread_mutexattr_t attr;
	unsigned int i;
	int err;

	if (!vdev->nr_queues || vdev->nr_queues > VIRTIO_MAX_QUEUES || !ops->queue_max_size ||
	    ops->config_size > VIRTIO_PCI_DEVICE_LEN)
		return -EINVAL;
	memset(vp, 0, sizeof(*vp));
	vp->vdev = vdev;
	vp->hw = hw;
	vp->hw_ctx = hw_ctx;
	vp->nr_vectors = (uint16_t)(vdev->nr_queues + 1);
	vp->device_features = virtio_pci__device_features(vdev);
	/* fail() must be callable from the start: it is lock-free. */
	vdev->fail = virtio_pci__fail;
	vdev->transport = vp;
	for (i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vdev->kick_fd[i] = vdev->call_fd[i] = -1;
	vdev->config_call_fd = -1;
	for (i = 0; i < VIRTIO_PCI_MAX_VECTORS; i++) {
		vp->gsi[i] = -1;
		vp->msix[i].ctrl = 1; /* entries start masked (PCI 6.8.2.9) */
		vp->src[i] = (struct virtio_pci_irq_src){
		    .vp = vp, .efd = -1, .vector = VIRTIO_MSI_NO_VECTOR, .attached_gsi = -1};
	}
	for (i = 0; i < vdev->nr_queues; i++) {
		vdev->kick_fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		vdev->call_fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vdev->kick_fd[i] < 0 || vdev->call_fd[i] < 0)
			goto out_errno;
		vp->src[i].efd = vdev->call_fd[i];
		vp->q[i].size = ops->queue_max_size(vdev, i);
		vp->q[i].vector = VIRTIO_MSI_NO_VECTOR;
	}
	vdev->config_call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vdev->config_call_fd < 0)
		goto out_errno;
	vp->src[vdev->nr_queues].efd = vdev->config_call_fd;
	vp->config_vector = VIRTIO_MSI_NO_VECTOR;

	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&vp->lock, &attr);
	pthread_mutexattr_destroy(&attr);

	pci_device__init(&vp->pci, vdev->id, VIRTIO_PCI_VENDOR,
			 (uint16_t)(VIRTIO_PCI_DEVICE_BASE + ops->device_id),
			 virtio_pci__class(ops->device_id), 1);
	pci_cfg__set16(&vp->pci, PCI_SUBSYSTEM_VENDOR_ID, VIRTIO_PCI_VENDOR);
	pci_cfg__set16(&vp->pci, PCI_SUBSYSTEM_ID,
		       (uint16_t)(VIRTIO_PCI_DEVICE_BASE + ops->device_id));
	vp->pci.cfg[PCI_INTERRUPT_PIN] = 0; /* MSI-X only: no INTx emulation */
	vp->pci.opaque = vp;
	vp->pci.config_write = virtio_pci__config_write;
	vp->pci.bar_moved = virtio_pci__bar_moved;
	err = pci_device__add_bar(&vp->pci, VIRTIO_PCI_BAR, VIRTIO_PCI_BAR_SIZE,
				  PCI_BAR_MEM64 | PCI_BAR_PREFETCH, virtio_pci__bar_io, vp);
	if (err < 0)
		goto out_close;

	put_le(msix, vp->nr_vectors - 1u, 2);
	put_le(msix + 2, VIRTIO_PCI_MSIX_TABLE_OFF | VIRTIO_PCI_BAR, 4);
	put_le(msix + 6, VIRTIO_PCI_MSIX_PBA_OFF | VIRTIO_PCI_BAR, 4);
	err = vp->msix_cap = pci_device__add_cap(&vp->pci, PCI_CAP_ID_MSIX, msix, sizeof(msix));
	if (err >= 0) {
		vp->pci.wmask[vp->msix_cap + 3] = 0xc0; /* enable, function mask */
		err = virtio_pci__add_vcap(vp, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF,
					   VIRTIO_PCI_COMMON_LEN, false);
	}
	if (err >= 0)
		err =
		    virtio_pci__add_vcap(vp, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1, false);
	if (err >= 0)
		err = virtio_pci__add_vcap(vp, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF,
					   ops->config_size ? ops->config_size : 4, false);
	if (err >= 0)
		err = virtio_pci__add_vcap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
					   VIRTIO_PCI_NOTIFY_MULT * vdev->nr_queues, true);
	if (err < 0)
		goto out_destroy;
	/* Every source starts on the event loop (MSI-X is off). */
	pthread_mutex_lock(&vp->lock);
	virtio_pci__update_irqs(vp);
	pthread_mutex_unlock(&vp->lock);
	return 0;

out_errno:
	err = -errno;
	goto out_close;
out_destroy:
	pthread_mutex_destroy(&vp->lock);
out_close:
	for (i = 0; i < vdev->nr_queues; i++) {
		if (vdev->kick_fd[i] >= 0)
			close(vdev->kick_fd[i]);
		if (vdev->call_fd[i] >= 0)
			close(vdev->call_fd[i]);
		vdev->kick_fd[i] = vdev->call_fd[i] = -1;
	}
	if (vdev->config_call_fd >= 0)
		close(vdev->config_call_fd);
	vdev->config_call_fd = -1;
	return err;
}

/* Stops the model and releases the transport; the model is not destroyed. */
void virtio_pci__exit(struct virtio_pci *vp)
{
	struct virtio_device *vdev = vp->vdev;

	pthread_mutex_lock(&vp->lock);
	if (vdev->ops->stop)
		vdev->ops->stop(vdev);
	vp->started = false;
	for (unsigned int i = 0; i <= vdev->nr_queues; i++) {
		struct virtio_pci_irq_src *src = &vp->src[i];

		if (src->attached_gsi >= 0)
			vp->hw->irqfd(vp->hw_ctx, src->efd, src->attached_gsi, false);
		src->attached_gsi = -1;
		src__watch(vp, src, false);
	}
	if (vp->ioevent_base)
		for (unsigned int q = 0; q < vdev->nr_queues; q++)
			vp->hw->ioeventfd(vp->hw_ctx,
					  vp->ioevent_base + VIRTIO_PCI_NOTIFY_OFF +
					      VIRTIO_PCI_NOTIFY_MULT * q,
					  2, vdev->kick_fd[q], false);
	vp->ioevent_base = 0;
	pthread_mutex_unlock(&vp->lock);
	for (unsigned int q = 0; q < vdev->nr_queues; q++) {
		virtq__disable(&vdev->vqs[q]);
		close(vdev->kick_fd[q]);
		close(vdev->call_fd[q]);
		vdev->kick_fd[q] = vdev->call_fd[q] = -1;
	}
	close(vdev->config_call_fd);
	vdev->config_call_fd = -1;
	pthread_mutex_destroy(&vp->lock);
}

/* --- saved state --- */

int virtio_pci__save(void *opaque, uint8_t **buf, size_t *len)
{
	struct virtio_pci *vp = opaque;
	struct virtio_device *vdev = vp->vdev;
	Vmmd__State__V1__VirtioPciState s = VMMD__STATE__V1__VIRTIO_PCI_STATE__INIT;
	Vmmd__State__V1__VirtioPciQueueState qs[VIRTIO_MAX_QUEUES], *qp[VIRTIO_MAX_QUEUES];
	Vmmd__State__V1__MsixEntryState ms[VIRTIO_PCI_MAX_VECTORS], *mp[VIRTIO_PCI_MAX_VECTORS];
	uint8_t *dev_buf = NULL;
	size_t dev_len = 0;
	bool quiesced;
	int err = 0;

	pthread_mutex_lock(&vp->lock);
	/* Quiesce: in-flight requests complete and the device thread stops,
	 * so the ring indexes saved below are final; it restarts after. */
	quiesced = vp->started && vdev->ops->stop &&
		   !(virtio_pci__status(vp) & VIRTIO_STATUS_NEEDS_RESET);
	if (quiesced)
		vdev->ops->stop(vdev);
	if (vdev->ops->save) {
		err = vdev->ops->save(vdev, &dev_buf, &dev_len);
		if (err < 0)
			goto out_unlock;
	}
	s.status = virtio_pci__status(vp);
	s.driver_features = vdev->driver_features;
	s.device_feature_select = vp->dfselect;
	s.driver_feature_select = vp->gfselect;
	s.config_msix_vector = vp->config_vector;
	s.queue_select = vp->queue_select;
	s.config_generation = vp->config_generation;
	for (unsigned int i = 0; i < vdev->nr_queues; i++) {
		const struct virtq *q = &vdev->vqs[i];

		vmmd__state__v1__virtio_pci_queue_state__init(&qs[i]);
		qs[i].size = vp->q[i].size;
		qs[i].msix_vector = vp->q[i].vector;
		qs[i].enabled = vp->q[i].enabled;
		qs[i].desc = vp->q[i].desc;
		qs[i].driver = vp->q[i].driver;
		qs[i].device = vp->q[i].device;
		qs[i].last_avail = q->last_avail;
		qs[i].used_idx = q->used_idx;
		qs[i].signalled_used = q->signalled_used;
		qs[i].signalled_used_valid = q->signalled_used_valid;
		qp[i] = &qs[i];
	}
	s.n_queues = vdev->nr_queues;
	s.queues = qp;
	for (unsigned int i = 0; i < vp->nr_vectors; i++) {
		vmmd__state__v1__msix_entry_state__init(&ms[i]);
		ms[i].addr_lo = vp->msix[i].addr_lo;
		ms[i].addr_hi = vp->msix[i].addr_hi;
		ms[i].data = vp->msix[i].data;
		ms[i].ctrl = vp->msix[i].ctrl;
		mp[i] = &ms[i];
	}
	s.n_msix = vp->nr_vectors;
	s.msix = mp;
	s.n_msix_pba = 2;
	s.msix_pba = vp->pba;
	s.device.data = dev_buf;
	s.device.len = dev_len;
	*len = vmmd__state__v1__virtio_pci_state__get_packed_size(&s);
	*buf = malloc(*len ? *len : 1);
	if (*buf)
		vmmd__state__v1__virtio_pci_state__pack(&s, *buf);
	else
		err = -ENOMEM;
out_unlock:
	if (quiesced && vdev->ops->start && vdev->ops->start(vdev) < 0)
		virtio_pci__fail(vdev, "cannot restart the device after saving its state");
	pthread_mutex_unlock(&vp->lock);
	free(dev_buf);
	return err;
}

static int virtio_pci__check_saved(struct virtio_pci *vp, const Vmmd__State__V1__VirtioPciState *s)
{
	struct virtio_device *vdev = vp->vdev;

	if (s->n_queues != vdev->nr_queues || s->n_msix != vp->nr_vectors || s->n_msix_pba != 2 ||
	    s->status > 0xff || (s->driver_features & ~vp->device_features) ||
	    (s->config_msix_vector != VIRTIO_MSI_NO_VECTOR &&
	     s->config_msix_vector >= vp->nr_vectors))
		return -EINVAL;
	for (unsigned int i = 0; i < vdev->nr_queues; i++) {
		const Vmmd__State__V1__VirtioPciQueueState *q = s->queues[i];

		if (!q->size || (q->size & (q->size - 1)) ||
		    q->size > vdev->ops->queue_max_size(vdev, i) ||
		    (q->msix_vector != VIRTIO_MSI_NO_VECTOR && q->msix_vector >= vp->nr_vectors) ||
		    q->last_avail > 0xffff || q->used_idx > 0xffff || q->signalled_used > 0xffff)
			return -EINVAL;
	}
	return 0;
}

/* The device as saved: queues re-enabled (their rings checked again against
 * this VM's memory), interrupts re-bound, the model restarted if it ran. */
int virtio_pci__restore(void *opaque, const uint8_t *buf, size_t len)
{
	struct virtio_pci *vp = opaque;
	struct virtio_device *vdev = vp->vdev;
	Vmmd__State__V1__VirtioPciState *s =
	    vmmd__state__v1__virtio_pci_state__unpack(NULL, len, buf);
	int err;

	if (!s)
		return -EINVAL;
	err = virtio_pci__check_saved(vp, s);
	if (err < 0) {
		pr_err("%s %s: saved transport state does not fit this device", vdev->ops->type,
		       vdev->id);
		goto out_free;
	}
	pthread_mutex_lock(&vp->lock);
	virtio_pci__reset(vp);
	vdev->driver_features = s->driver_features;
	vp->dfselect = s->device_feature_select;
	vp->gfselect = s->driver_feature_select;
	vp->config_vector = (uint16_t)s->config_msix_vector;
	vp->src[vdev->nr_queues].vector = vp->config_vector;
	vp->queue_select = (uint16_t)s->queue_select;
	vp->config_generation = (uint8_t)s->config_generation;
	for (unsigned int i = 0; i < vp->nr_vectors; i++) {
		vp->msix[i].addr_lo = s->msix[i]->addr_lo;
		vp->msix[i].addr_hi = s->msix[i]->addr_hi;
		vp->msix[i].data = s->msix[i]->data;
		vp->msix[i].ctrl = s->msix[i]->ctrl & 1;
		if (vp->gsi[i] >= 0)
			vp->hw->msi_route(vp->hw_ctx, vp->gsi[i], msix__addr(vp, (uint16_t)i),
					  vp->msix[i].data);
	}
	vp->pba[0] = s->msix_pba[0];
	vp->pba[1] = s->msix_pba[1];
	__atomic_store_n(&vp->status, (uint8_t)s->status, __ATOMIC_RELEASE);
	for (unsigned int i = 0; i < vdev->nr_queues; i++) {
		const Vmmd__State__V1__VirtioPciQueueState *q = s->queues[i];

		vp->q[i].size = (uint16_t)q->size;
		vp->q[i].vector = (uint16_t)q->msix_vector;
		vp->src[i].vector = vp->q[i].vector;
		vp->q[i].desc = q->desc;
		vp->q[i].driver = q->driver;
		vp->q[i].device = q->device;
		if (!q->enabled)
			continue;
		virtio_pci__queue_enable(vp, i);
		if (!vp->q[i].enabled) {
			err = -EINVAL;
			goto out_unlock;
		}
		vdev->vqs[i].last_avail = (uint16_t)q->last_avail;
		vdev->vqs[i].used_idx = (uint16_t)q->used_idx;
		vdev->vqs[i].signalled_used = (uint16_t)q->signalled_used;
		vdev->vqs[i].signalled_used_valid = q->signalled_used_valid;
	}
	if (vdev->ops->restore && s->device.len) {
		err = vdev->ops->restore(vdev, s->device.data, s->device.len);
		if (err < 0)
			goto out_unlock;
	}
	virtio_pci__update_irqs(vp);
	if ((s->status & VIRTIO_STATUS_DRIVER_OK) && !(s->status & VIRTIO_STATUS_NEEDS_RESET) &&
	    vdev->ops->start) {
		err = vdev->ops->start(vdev);
		if (err < 0)
			goto out_unlock;
		vp->started = true;
	}
out_unlock:
	pthread_mutex_unlock(&vp->lock);
out_free:
	vmmd__state__v1__virtio_pci_state__free_unpacked(s, NULL);
	return err;
}
