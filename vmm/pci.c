/*
 * vmm/pci.c — PCI bus 0: configuration mechanism #1 (0xcf8/0xcfc), ECAM,
 * the i440FX host bridge at 00:00.0 and the device API (vmm/pci.h).
 *
 * The bus has no unregister, so BARs are not registered one by one: the
 * whole 32- and 64-bit MMIO windows go to one handler here that looks up,
 * under a read lock, which BAR currently contains the address.  Moving a
 * BAR is then just a config write.
 */
#include "vmm/pci.h"

#include "common/log.h"
#include "vmm/layout.h"
#include "vmm/state.pb-c.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CF8_ENABLE 0x80000000u

void pci_device__init(struct pci_device *dev, const char *name, uint16_t vendor, uint16_t device,
		      uint32_t class_code, uint8_t revision)
{
	memset(dev, 0, sizeof(*dev));
	dev->name = name;
	pci_cfg__set16(dev, PCI_VENDOR_ID, vendor);
	pci_cfg__set16(dev, PCI_DEVICE_ID, device);
	dev->cfg[PCI_REVISION_ID] = revision;
	dev->cfg[PCI_CLASS_PROG] = (uint8_t)class_code;
	dev->cfg[PCI_CLASS_PROG + 1] = (uint8_t)(class_code >> 8);
	dev->cfg[PCI_CLASS_PROG + 2] = (uint8_t)(class_code >> 16);
	/* COMMAND: I/O, memory, bus master, parity, SERR, INTx disable. */
	dev->wmask[PCI_COMMAND] = 0x47;
	dev->wmask[PCI_COMMAND + 1] = 0x05;
	/* STATUS: the error bits are write-1-to-clear. */
	dev->w1cmask[PCI_STATUS + 1] = 0xf9;
	dev->wmask[PCI_INTERRUPT_LINE] = 0xff;
	dev->cap_end = 0x40;
}

int pci_device__add_bar(struct pci_device *dev, int bar, uint64_t size, unsigned int flags,
			bus_io_fn fn, void *opaque)
{
	uint32_t off = PCI_BAR0 + 4 * (uint32_t)bar;
	uint64_t mask = ~(size - 1);
	bool is64 = flags & PCI_BAR_MEM64;

	if (bar < 0 || bar >= PCI_NR_BARS || (is64 && bar == PCI_NR_BARS - 1))
		return -EINVAL;
	if (size < 16 || (size & (size - 1)) || (!is64 && size > (1ULL << 31)))
		return -EINVAL;
	if (dev->bars[bar].size || (dev->bars[bar].flags & PCI_BAR_UPPER) ||
	    (is64 && dev->bars[bar + 1].size))
		return -EBUSY;
	dev->bars[bar] = (struct pci_bar){.size = size, .flags = flags, .fn = fn, .opaque = opaque};
	pci_cfg__set32(dev, off, flags & (PCI_BAR_MEM64 | PCI_BAR_PREFETCH));
	/* Sizing falls out of the write mask: all-ones reads back ~(size-1). */
	dev->wmask[off] = (uint8_t)(mask & 0xf0);
	dev->wmask[off + 1] = (uint8_t)(mask >> 8);
	dev->wmask[off + 2] = (uint8_t)(mask >> 16);
	dev->wmask[off + 3] = (uint8_t)(mask >> 24);
	if (is64) {
		for (int i = 0; i < 4; i++)
			dev->wmask[off + 4 + i] = (uint8_t)(mask >> (32 + 8 * i));
		dev->bars[bar + 1].flags = PCI_BAR_UPPER;
	}
	return 0;
}

int pci_device__add_cap(struct pci_device *dev, uint8_t cap_id, const void *body, uint8_t body_len)
{
	uint32_t off = (dev->cap_end + 3u) & ~3u;

	if (off + 2u + body_len > 256)
		return -ENOSPC;
	dev->cfg[off] = cap_id;
	dev->cfg[off + 1] = 0;
	if (body_len)
		memcpy(&dev->cfg[off + 2], body, body_len);
	if (dev->cap_last)
		dev->cfg[dev->cap_last + 1] = (uint8_t)off;
	else
		dev->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
	dev->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	dev->cap_last = (uint8_t)off;
	dev->cap_end = (uint16_t)(off + 2 + body_len);
	return (int)off;
}

/* The address programmed into a BAR, decoding enabled or not. */
static uint64_t pci_device__bar_raw(const struct pci_device *dev, int bar)
{
	uint64_t addr = pci_cfg__get32(dev, PCI_BAR0 + 4 * (uint32_t)bar) & ~0xfULL;

	if (dev->bars[bar].flags & PCI_BAR_MEM64)
		addr |= (uint64_t)pci_cfg__get32(dev, PCI_BAR0 + 4 * (uint32_t)bar + 4) << 32;
	return addr;
}

uint64_t pci_device__bar_addr(const struct pci_device *dev, int bar)
{
	if (bar < 0 || bar >= PCI_NR_BARS || !dev->bars[bar].size)
		return 0;
	if (!(pci_cfg__get16(dev, PCI_COMMAND) & PCI_COMMAND_MEMORY))
		return 0;
	return pci_device__bar_raw(dev, bar);
}

static void pci_device__check_bars(struct pci_device *dev)
{
	for (int i = 0; i < PCI_NR_BARS; i++) {
		uint64_t now;

		if (!dev->bars[i].size)
			continue;
		now = pci_device__bar_raw(dev, i);
		if (now == dev->bars[i].addr)
			continue;
		if (dev->bar_moved)
			dev->bar_moved(dev, i, dev->bars[i].addr, now);
		dev->bars[i].addr = now;
	}
}

/* --- the host --- */

void pci_host__init(struct pci_host *host, struct vm *vm)
{
	memset(host, 0, sizeof(*host));
	pthread_rwlock_init(&host->lock, NULL);
	host->vm = vm;
	pci_device__init(&host->bridge, "i440fx", 0x8086, 0x1237, 0x060000, 0x02);
	host->devs[0] = &host->bridge;
	host->bridge.devfn = 0;
}

void pci_host__destroy(struct pci_host *host)
{
	pthread_rwlock_destroy(&host->lock);
}

int pci_host__add(struct pci_host *host, struct pci_device *dev, int devfn)
{
	int err = 0;

	pthread_rwlock_wrlock(&host->lock);
	if (devfn < 0) {
		/* Next free slot; function 0 only. */
		for (int slot = PCI_FIRST_DYNAMIC_SLOT; slot < 32; slot++) {
			if (!host->devs[PCI_DEVFN(slot, 0)]) {
				devfn = PCI_DEVFN(slot, 0);
				break;
			}
		}
		if (devfn < 0)
			err = -ENOSPC;
	} else if (devfn > 255) {
		err = -EINVAL;
	} else if (host->devs[devfn]) {
		err = -EBUSY;
	}
	if (!err) {
		dev->devfn = (uint8_t)devfn;
		host->devs[devfn] = dev;
	}
	pthread_rwlock_unlock(&host->lock);
	return err;
}

static struct pci_device *pci_host__dev(struct pci_host *host, uint8_t bus, uint8_t devfn)
{
	if (bus != 0)
		return NULL;
	return host->devs[devfn];
}

uint32_t pci_host__cfg_read(struct pci_host *host, uint8_t bus, uint8_t devfn, uint32_t reg,
			    uint32_t len)
{
	struct pci_device *dev;
	uint32_t v = 0;

	if (len < 1 || len > 4 || reg >= PCI_CFG_SIZE || len > PCI_CFG_SIZE - reg)
		return 0xffffffffu;
	pthread_rwlock_rdlock(&host->lock);
	dev = pci_host__dev(host, bus, devfn);
	if (!dev) {
		/* Absent functions float high: vendor 0xffff. */
		v = len == 4 ? 0xffffffffu : (1u << (8 * len)) - 1;
	} else {
		for (uint32_t i = 0; i < len; i++)
			v |= (uint32_t)dev->cfg[reg + i] << (8 * i);
	}
	pthread_rwlock_unlock(&host->lock);
	return v;
}

void pci_host__cfg_write(struct pci_host *host, uint8_t bus, uint8_t devfn, uint32_t reg,
			 uint32_t len, uint32_t val)
{
	struct pci_device *dev;

	if (len < 1 || len > 4 || reg >= PCI_CFG_SIZE || len > PCI_CFG_SIZE - reg)
		return;
	pthread_rwlock_wrlock(&host->lock);
	dev = pci_host__dev(host, bus, devfn);
	if (dev) {
		for (uint32_t i = 0; i < len; i++) {
			uint8_t b = (uint8_t)(val >> (8 * i));
			uint8_t *c = &dev->cfg[reg + i];

			*c = (uint8_t)((*c & ~dev->wmask[reg + i]) | (b & dev->wmask[reg + i]));
			*c &= (uint8_t) ~(b & dev->w1cmask[reg + i]);
		}
		if (reg < PCI_BAR0 + 4 * PCI_NR_BARS && reg + len > PCI_COMMAND)
			pci_device__check_bars(dev);
		if (dev->config_write)
			dev->config_write(dev, reg, len);
	}
	pthread_rwlock_unlock(&host->lock);
}

void pci_host__cf8_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_host *host = opaque;
	uint32_t addr, v = 0;

	if (offset < 4) {
		if (offset == 0 && len == 4) {
			if (is_write) {
				memcpy(&v, data, 4);
				__atomic_store_n(&host->config_address, v & 0x80fffffcu,
						 __ATOMIC_RELAXED);
			} else {
				v = __atomic_load_n(&host->config_address, __ATOMIC_RELAXED);
				memcpy(data, &v, 4);
			}
		} else if (offset == 1 && len == 1) {
			if (is_write)
				piix__reset_control_write(host->vm, data[0]);
			else
				data[0] = piix__reset_control_read();
		} else if (!is_write) {
			memset(data, 0xff, len); /* e.g. Linux's 0xcfb probe */
		}
		return;
	}
	/* 0xcfc-0xcff: any size at any offset that stays in the dword. */
	addr = __atomic_load_n(&host->config_address, __ATOMIC_RELAXED);
	if (!(addr & CF8_ENABLE) || len > 4 || offset - 4 + len > 4) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	if (is_write) {
		for (uint32_t i = 0; i < len; i++)
			v |= (uint32_t)data[i] << (8 * i);
		pci_host__cfg_write(host, (uint8_t)(addr >> 16), (uint8_t)(addr >> 8),
				    (addr & 0xfc) + (uint32_t)(offset - 4), len, v);
	} else {
		v = pci_host__cfg_read(host, (uint8_t)(addr >> 16), (uint8_t)(addr >> 8),
				       (addr & 0xfc) + (uint32_t)(offset - 4), len);
		for (uint32_t i = 0; i < len; i++)
			data[i] = (uint8_t)(v >> (8 * i));
	}
}

/* ECAM: bus in bits 27:20, device 19:15, function 14:12, register 11:0. */
void pci_host__ecam_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_host *host = opaque;
	uint8_t bus = (uint8_t)(offset >> 20), devfn = (uint8_t)(offset >> 12);
	uint32_t reg = (uint32_t)(offset & 0xfff), v = 0;

	if (len > 4 || reg + len > PCI_CFG_SIZE) {
		if (!is_write)
			memset(data, 0xff, len);
		pr_warn_once("pci: ECAM access of %u bytes at 0x%x ignored", len, reg);
		return;
	}
	if (is_write) {
		for (uint32_t i = 0; i < len; i++)
			v |= (uint32_t)data[i] << (8 * i);
		pci_host__cfg_write(host, bus, devfn, reg, len, v);
	} else {
		v = pci_host__cfg_read(host, bus, devfn, reg, len);
		for (uint32_t i = 0; i < len; i++)
			data[i] = (uint8_t)(v >> (8 * i));
	}
}

bool pci_host__mmio(struct pci_host *host, uint64_t addr, uint8_t *data, uint32_t len,
		    bool is_write)
{
	bool found = false;

	pthread_rwlock_rdlock(&host->lock);
	for (int d = 0; d < 256 && !found; d++) {
		struct pci_device *dev = host->devs[d];

		for (int b = 0; dev && b < PCI_NR_BARS; b++) {
			struct pci_bar *bar = &dev->bars[b];
			uint64_t base = pci_device__bar_addr(dev, b);

			if (!base || !bar->fn || addr < base || addr - base >= bar->size)
				continue;
			bar->fn(bar->opaque, addr - base, data, len, is_write);
			found = true;
			break;
		}
	}
	pthread_rwlock_unlock(&host->lock);
	if (!found && !is_write)
		memset(data, 0xff, len);
	return found;
}

/* --- the VM's host --- */

static struct pci_host vm_host;

static void pci__mmio32_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			   bool is_write)
{
	pci_host__mmio(opaque, PCI_MMIO32_START + offset, data, len, is_write);
}

static void pci__mmio64_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			   bool is_write)
{
	pci_host__mmio(opaque, PCI_MMIO64_START + offset, data, len, is_write);
}

int pci__register_device_at(struct vm *vm, struct pci_device *dev, int devfn)
{
	if (vm_host.vm != vm)
		return -ENODEV;
	return pci_host__add(&vm_host, dev, devfn);
}

int pci__register_device(struct vm *vm, struct pci_device *dev)
{
	return pci__register_device_at(vm, dev, -1);
}

/* Bump allocators over the two windows: devices are never unplugged. */
static uint64_t mmio32_next = PCI_MMIO32_START, mmio64_next = PCI_MMIO64_START;

int pci__assign_bars(struct vm *vm, struct pci_device *dev)
{
	uint64_t addr[PCI_NR_BARS] = {0}, next32 = mmio32_next, next64 = mmio64_next;

	if (vm_host.vm != vm)
		return -ENODEV;
	for (int i = 0; i < PCI_NR_BARS; i++) {
		const struct pci_bar *bar = &dev->bars[i];
		bool high = (bar->flags & (PCI_BAR_MEM64 | PCI_BAR_PREFETCH)) ==
			    (PCI_BAR_MEM64 | PCI_BAR_PREFETCH);
		uint64_t *next = high ? &next64 : &next32;
		uint64_t end = high ? PCI_MMIO64_START + PCI_MMIO64_SIZE :
				      PCI_MMIO32_START + PCI_MMIO32_SIZE;

		if (!bar->size)
			continue;
		addr[i] = (*next + bar->size - 1) & ~(bar->size - 1);
		if (addr[i] > end || bar->size > end - addr[i])
			return -ENOSPC;
		*next = addr[i] + bar->size;
	}
	pthread_rwlock_wrlock(&vm_host.lock);
	for (int i = 0; i < PCI_NR_BARS; i++) {
		uint32_t off = PCI_BAR0 + 4 * (uint32_t)i;

		if (!addr[i])
			continue;
		pci_cfg__set32(dev, off, (uint32_t)addr[i] | (pci_cfg__get32(dev, off) & 0xf));
		if (dev->bars[i].flags & PCI_BAR_MEM64)
			pci_cfg__set32(dev, off + 4, (uint32_t)(addr[i] >> 32));
	}
	pci_cfg__set16(dev, PCI_COMMAND, pci_cfg__get16(dev, PCI_COMMAND) | PCI_COMMAND_MEMORY |
						 PCI_COMMAND_MASTER);
	pci_device__check_bars(dev);
	if (dev->config_write)
		dev->config_write(dev, PCI_COMMAND, 2);
	pthread_rwlock_unlock(&vm_host.lock);
	mmio32_next = next32;
	mmio64_next = next64;
	return 0;
}

static int pci__save(void *opaque, uint8_t **buf, size_t *len)
{
	struct pci_host *host = opaque;
	Vmmd__State__V1__PciHostState s = VMMD__STATE__V1__PCI_HOST_STATE__INIT;
	Vmmd__State__V1__PciFunctionState fns[256], *ptrs[256];
	int err = 0;

	pthread_rwlock_rdlock(&host->lock);
	s.config_address = host->config_address;
	s.reset_control = piix__reset_control_read();
	for (int d = 0; d < 256; d++) {
		if (!host->devs[d])
			continue;
		vmmd__state__v1__pci_function_state__init(&fns[s.n_functions]);
		fns[s.n_functions].devfn = (uint32_t)d;
		fns[s.n_functions].config.data = host->devs[d]->cfg;
		fns[s.n_functions].config.len = PCI_CFG_SIZE;
		ptrs[s.n_functions] = &fns[s.n_functions];
		s.n_functions++;
	}
	s.functions = ptrs;
	*len = vmmd__state__v1__pci_host_state__get_packed_size(&s);
	*buf = malloc(*len ? *len : 1);
	if (*buf)
		vmmd__state__v1__pci_host_state__pack(&s, *buf);
	else
		err = -ENOMEM;
	pthread_rwlock_unlock(&host->lock);
	return err;
}

/* Every saved function must exist here (the same devices were set up from
 * the same configuration); config space is then taken as saved. */
static int pci__restore(void *opaque, const uint8_t *buf, size_t len)
{
	struct pci_host *host = opaque;
	Vmmd__State__V1__PciHostState *s = vmmd__state__v1__pci_host_state__unpack(NULL, len, buf);
	int err = 0;

	if (!s)
		return -EINVAL;
	pthread_rwlock_wrlock(&host->lock);
	for (size_t i = 0; i < s->n_functions; i++) {
		const Vmmd__State__V1__PciFunctionState *f = s->functions[i];

		if (f->devfn > 255 || !host->devs[f->devfn] || f->config.len != PCI_CFG_SIZE) {
			pr_err("pci: saved state has function %u that this VM lacks", f->devfn);
			err = -EINVAL;
			goto out_unlock;
		}
	}
	host->config_address = s->config_address & 0x80fffffcu;
	for (size_t i = 0; i < s->n_functions; i++) {
		struct pci_device *dev = host->devs[s->functions[i]->devfn];

		memcpy(dev->cfg, s->functions[i]->config.data, PCI_CFG_SIZE);
		pci_device__check_bars(dev);
	}
out_unlock:
	pthread_rwlock_unlock(&host->lock);
	vmmd__state__v1__pci_host_state__free_unpacked(s, NULL);
	return err;
}

static const struct state_ops pci_state_ops = {
    .section = "pci.host",
    .save = pci__save,
    .restore = pci__restore,
};

static int pci__init(struct vm *vm)
{
	int err;

	pci_host__init(&vm_host, vm);
	err = bus__register(&vm->pio_bus, 0xcf8, 8, pci_host__cf8_io, &vm_host, "pci conf1");
	if (!err)
		err = bus__register(&vm->mmio_bus, PCI_ECAM_START, PCI_ECAM_SIZE, pci_host__ecam_io,
				    &vm_host, "pci ecam");
	if (!err)
		err = bus__register(&vm->mmio_bus, PCI_MMIO32_START, PCI_MMIO32_SIZE,
				    pci__mmio32_io, &vm_host, "pci mmio32");
	if (!err)
		err = bus__register(&vm->mmio_bus, PCI_MMIO64_START, PCI_MMIO64_SIZE,
				    pci__mmio64_io, &vm_host, "pci mmio64");
	if (!err)
		err = vm__register_state(vm, &pci_state_ops, &vm_host);
	if (err < 0)
		vm_host.vm = NULL;
	return err;
}

bus_init(pci__init, NULL);
