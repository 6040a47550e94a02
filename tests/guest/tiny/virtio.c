/*
 * tests/guest/tiny/virtio.c — polled virtio-pci, modern (1.x) only.
 *
 * Discovery walks the vendor capabilities (4.1.4) for the common, notify,
 * ISR and device-specific regions; initialisation follows 3.1.1 and accepts
 * VERSION_1 and nothing else; queues are split rings in a fixed RAM area
 * per device, with no MSI-X vector: completions are found by polling the
 * used ring.  x86 is strongly ordered, so compiler barriers plus one full
 * barrier before each notify are all the ordering the rings need.
 */
#include "virtio.h"
#include "pci.h"
#include "rtc.h"
#include "uart.h"
#include "io.h"

#define PCI_VENDOR_VIRTIO 0x1af4
#define PCI_DEVICE_MODERN_BASE 0x1040
#define PCI_CAP_ID_VENDOR 0x09
#define PCI_CAP_WALK_MAX 48

#define VIRTIO_PCI_CAP_COMMON 1
#define VIRTIO_PCI_CAP_NOTIFY 2
#define VIRTIO_PCI_CAP_ISR 3
#define VIRTIO_PCI_CAP_DEVICE 4

/* struct virtio_pci_common_cfg (4.1.4.3) */
#define COMMON_DFSELECT 0x00
#define COMMON_DF 0x04
#define COMMON_GFSELECT 0x08
#define COMMON_GF 0x0c
#define COMMON_MSIX 0x10
#define COMMON_NUMQ 0x12
#define COMMON_STATUS 0x14
#define COMMON_Q_SELECT 0x16
#define COMMON_Q_SIZE 0x18
#define COMMON_Q_MSIX 0x1a
#define COMMON_Q_ENABLE 0x1c
#define COMMON_Q_NOFF 0x1e
#define COMMON_Q_DESCLO 0x20
#define COMMON_Q_DESCHI 0x24
#define COMMON_Q_AVAILLO 0x28
#define COMMON_Q_AVAILHI 0x2c
#define COMMON_Q_USEDLO 0x30
#define COMMON_Q_USEDHI 0x34

#define VIRTIO_F_VERSION_1_HI 0x1 /* bit 32: bit 0 of feature dword 1 */
#define VIRTIO_MSI_NO_VECTOR 0xffff

#define VIRTQ_AVAIL_OFF 0x100
#define VIRTQ_USED_OFF 0x200
#define VIRTQ_RING_STRIDE 0x1000

#define barrier() asm volatile("" : : : "memory")

static unsigned int virtio_areas_used;

static const char *virtio__name(uint16_t id)
{
	switch (id) {
	case VIRTIO_ID_NET:
		return "net";
	case VIRTIO_ID_BLK:
		return "blk";
	case VIRTIO_ID_RNG:
		return "rng";
	}
	return "?";
}

static void wr8(struct virtio_dev *vd, uint32_t off, uint8_t v)
{
	*(volatile uint8_t *)(vd->common + off) = v;
}

static void wr16(struct virtio_dev *vd, uint32_t off, uint16_t v)
{
	*(volatile uint16_t *)(vd->common + off) = v;
}

static void wr32(struct virtio_dev *vd, uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(vd->common + off) = v;
}

static uint16_t rd16(struct virtio_dev *vd, uint32_t off)
{
	return *(volatile uint16_t *)(vd->common + off);
}

static uint32_t rd32(struct virtio_dev *vd, uint32_t off)
{
	return *(volatile uint32_t *)(vd->common + off);
}

uint8_t virtio__status(struct virtio_dev *vd)
{
	return vd->common[COMMON_STATUS];
}

uint8_t virtio__cfg8(struct virtio_dev *vd, uint32_t off)
{
	return vd->devcfg ? vd->devcfg[off] : 0;
}

uint32_t virtio__cfg32(struct virtio_dev *vd, uint32_t off)
{
	return vd->devcfg ? *(volatile uint32_t *)(vd->devcfg + off) : 0;
}

void deadline__start(struct deadline *d, uint32_t secs)
{
	d->sec = rtc__raw_seconds();
	d->left = secs;
	d->spins = 0;
}

/* Reads the RTC (two port exits) only every 256 calls. */
bool deadline__passed(struct deadline *d)
{
	uint8_t s;

	if (++d->spins & 0xff)
		return false;
	s = rtc__raw_seconds();
	if (s != d->sec) {
		d->sec = s;
		if (d->left <= 1)
			return true;
		d->left--;
	}
	return false;
}

/* Maps a capability's region; bars[] caches BARs already mapped. */
static volatile uint8_t *virtio__cap_region(uint32_t bdf, uint8_t cap,
					    uint32_t bars[6])
{
	uint8_t bar = pci__read8(bdf, cap + 4);
	uint32_t off = pci__read32(bdf, cap + 8);

	if (bar > 5)
		return NULL;
	if (!bars[bar])
		bars[bar] = pci__bar_map(bdf, bar);
	if (!bars[bar] || off >= 0x10000000u)
		return NULL;
	return (volatile uint8_t *)(bars[bar] + off);
}

bool virtio__find(uint16_t device_id, unsigned int index,
		  struct virtio_dev *vd)
{
	uint32_t bars[6] = { 0 };
	uint8_t cap;
	int n = 0;

	memset(vd, 0, sizeof(*vd));
	if (!pci__find(PCI_VENDOR_VIRTIO, PCI_DEVICE_MODERN_BASE + device_id,
		       index, &vd->bdf))
		return false;
	vd->device_id = device_id;
	uart__puts("tiny: virtio-");
	uart__puts(virtio__name(device_id));
	uart__puts(" at ");
	pci__print_bdf(vd->bdf);
	for (cap = pci__cap_first(vd->bdf); cap && n < PCI_CAP_WALK_MAX;
	     cap = pci__cap_next(vd->bdf, cap), n++) {
		uint8_t type = pci__read8(vd->bdf, cap + 3);

		if (pci__read8(vd->bdf, cap) != PCI_CAP_ID_VENDOR)
			continue;
		if (type == VIRTIO_PCI_CAP_COMMON && !vd->common) {
			vd->common = virtio__cap_region(vd->bdf, cap, bars);
		} else if (type == VIRTIO_PCI_CAP_NOTIFY && !vd->notify_base) {
			vd->notify_base = virtio__cap_region(vd->bdf, cap, bars);
			vd->notify_mult = pci__read32(vd->bdf, cap + 16);
		} else if (type == VIRTIO_PCI_CAP_ISR && !vd->isr) {
			vd->isr = virtio__cap_region(vd->bdf, cap, bars);
		} else if (type == VIRTIO_PCI_CAP_DEVICE && !vd->devcfg) {
			vd->devcfg = virtio__cap_region(vd->bdf, cap, bars);
		}
	}
	if (!vd->common || !vd->notify_base || !vd->isr) {
		uart__puts(": missing virtio capabilities\n");
		return false;
	}
	if (virtio_areas_used >= VIRTIO_AREA_MAX) {
		uart__puts(": too many devices\n");
		return false;
	}
	vd->mem = VIRTIO_AREA_GPA + virtio_areas_used++ * VIRTIO_AREA_SIZE;
	memset((void *)vd->mem, 0, VIRTIO_AREA_SIZE);
	uart__puts(" common ");
	uart__put_hex((uint32_t)vd->common);
	uart__putc('\n');
	return true;
}

static void virtio__fail(struct virtio_dev *vd, const char *why)
{
	uart__puts("tiny: virtio-");
	uart__puts(virtio__name(vd->device_id));
	uart__puts(": ");
	uart__puts(why);
	uart__puts(", status ");
	uart__put_hex(virtio__status(vd));
	uart__putc('\n');
	wr8(vd, COMMON_STATUS, virtio__status(vd) | VIRTIO_STATUS_FAILED);
}

bool virtio__negotiate(struct virtio_dev *vd)
{
	struct deadline d;
	uint8_t status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	wr8(vd, COMMON_STATUS, 0);
	deadline__start(&d, 2);
	while (virtio__status(vd) != 0) {
		if (deadline__passed(&d)) {
			virtio__fail(vd, "reset did not complete");
			return false;
		}
	}
	wr8(vd, COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr8(vd, COMMON_STATUS, status);
	wr32(vd, COMMON_DFSELECT, 1);
	if (!(rd32(vd, COMMON_DF) & VIRTIO_F_VERSION_1_HI)) {
		virtio__fail(vd, "VERSION_1 not offered");
		return false;
	}
	wr32(vd, COMMON_GFSELECT, 0);
	wr32(vd, COMMON_GF, 0);
	wr32(vd, COMMON_GFSELECT, 1);
	wr32(vd, COMMON_GF, VIRTIO_F_VERSION_1_HI);
	status |= VIRTIO_STATUS_FEATURES_OK;
	wr8(vd, COMMON_STATUS, status);
	if (!(virtio__status(vd) & VIRTIO_STATUS_FEATURES_OK)) {
		virtio__fail(vd, "FEATURES_OK not accepted");
		return false;
	}
	wr16(vd, COMMON_MSIX, VIRTIO_MSI_NO_VECTOR);
	return true;
}

bool virtio__setup_queue(struct virtio_dev *vd, uint16_t q, uint16_t size)
{
	struct virtq *vq = &vd->vq[q];
	uint32_t ring = vd->mem + q * VIRTQ_RING_STRIDE;
	uint16_t max;

	if (q >= VIRTIO_MAX_QUEUES || q >= rd16(vd, COMMON_NUMQ)) {
		virtio__fail(vd, "too few queues");
		return false;
	}
	wr16(vd, COMMON_Q_SELECT, q);
	max = rd16(vd, COMMON_Q_SIZE);
	if (!size)
		size = max < VIRTQ_MAX_SIZE ? max : VIRTQ_MAX_SIZE;
	if (!max || size > max || size > VIRTQ_MAX_SIZE) {
		virtio__fail(vd, "queue size unusable");
		return false;
	}
	memset(vq, 0, sizeof(*vq));
	vq->size = size;
	vq->index = q;
	vq->desc = (volatile struct virtq_desc *)ring;
	vq->avail = (volatile struct virtq_avail *)(ring + VIRTQ_AVAIL_OFF);
	vq->used = (volatile struct virtq_used *)(ring + VIRTQ_USED_OFF);
	vq->notify = (volatile uint16_t *)(vd->notify_base +
					   rd16(vd, COMMON_Q_NOFF) *
						   vd->notify_mult);
	memset((void *)ring, 0, VIRTQ_RING_STRIDE);
	wr16(vd, COMMON_Q_SIZE, size);
	wr16(vd, COMMON_Q_MSIX, VIRTIO_MSI_NO_VECTOR);
	wr32(vd, COMMON_Q_DESCLO, ring);
	wr32(vd, COMMON_Q_DESCHI, 0);
	wr32(vd, COMMON_Q_AVAILLO, ring + VIRTQ_AVAIL_OFF);
	wr32(vd, COMMON_Q_AVAILHI, 0);
	wr32(vd, COMMON_Q_USEDLO, ring + VIRTQ_USED_OFF);
	wr32(vd, COMMON_Q_USEDHI, 0);
	wr16(vd, COMMON_Q_ENABLE, 1);
	return true;
}

void virtio__driver_ok(struct virtio_dev *vd)
{
	wr8(vd, COMMON_STATUS, virtio__status(vd) | VIRTIO_STATUS_DRIVER_OK);
}

bool virtio__start(struct virtio_dev *vd, uint16_t nq)
{
	if (!virtio__negotiate(vd))
		return false;
	for (uint16_t q = 0; q < nq; q++)
		if (!virtio__setup_queue(vd, q, 0))
			return false;
	virtio__driver_ok(vd);
	if (virtio__status(vd) & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) {
		virtio__fail(vd, "device unhappy after DRIVER_OK");
		return false;
	}
	return true;
}

void virtq__publish(struct virtq *vq, uint16_t head)
{
	vq->avail->ring[vq->avail_idx % vq->size] = head;
	barrier();
	vq->avail->idx = ++vq->avail_idx;
}

uint16_t virtq__submit(struct virtq *vq, const struct virtio_buf *bufs,
		       unsigned int n)
{
	uint16_t head = vq->next_desc;

	for (unsigned int i = 0; i < n; i++) {
		volatile struct virtq_desc *d = &vq->desc[vq->next_desc];

		vq->next_desc = (vq->next_desc + 1) % vq->size;
		d->addr = bufs[i].addr;
		d->len = bufs[i].len;
		d->flags = (bufs[i].write ? VIRTQ_DESC_F_WRITE : 0) |
			   (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
		d->next = i + 1 < n ? vq->next_desc : 0;
	}
	virtq__publish(vq, head);
	return head;
}

void virtq__kick(struct virtq *vq)
{
	mb();
	*vq->notify = vq->index;
}

bool virtq__wait(struct virtq *vq, uint32_t secs, uint32_t *id,
		 uint32_t *len)
{
	struct deadline d;
	volatile struct virtq_used_elem *e;

	deadline__start(&d, secs);
	while (vq->used->idx == vq->last_used) {
		heartbeat__tick();
		if (deadline__passed(&d))
			return false;
	}
	barrier();
	e = &vq->used->ring[vq->last_used % vq->size];
	*id = e->id;
	*len = e->len;
	vq->last_used++;
	return true;
}

void virtio__put_hex_bytes(const volatile uint8_t *p, uint32_t n)
{
	static const char hex[] = "0123456789abcdef";

	for (uint32_t i = 0; i < n; i++) {
		uart__putc(hex[p[i] >> 4]);
		uart__putc(hex[p[i] & 0xf]);
	}
}
