/*
 * tests/guest/tiny/pci.c — PCI bus 0 through configuration mechanism #1
 * (ports 0xcf8/0xcfc), and memory BARs placed where a 32-bit guest without
 * paging can reach them.
 *
 * Under QEMU the firmware (SeaBIOS) has assigned every BAR; vmm has no
 * firmware and pre-assigns its own, virtio's 64-bit BARs above 4 GiB.  A
 * BAR that is unassigned or out of reach is moved into MMIO32_WINDOW, above
 * every BAR already there, so nothing overlaps.
 */
#include <stddef.h>

#include "pci.h"
#include "io.h"
#include "uart.h"

#define PCI_CONF_ADDR 0xcf8
#define PCI_CONF_DATA 0xcfc
#define PCI_CONF_ENABLE 0x80000000u

#define PCI_NR_DEVS 32
#define PCI_NR_FUNCS 8
#define PCI_NR_BARS 6
#define PCI_HEADER_MULTI 0x80
#define PCI_HEADER_NORMAL 0x00

#define PCI_BAR_IO 0x1
#define PCI_BAR_TYPE_MASK 0x6
#define PCI_BAR_TYPE_64 0x4
#define PCI_BAR_ADDR_MASK 0xfffffff0u

#define MMIO32_WINDOW_START 0xc0000000u
#define MMIO32_WINDOW_END 0xe0000000u

static uint32_t pci_next_free; /* 0 until the window has been scanned */

static void pci__select(uint32_t bdf, uint8_t off)
{
	outl(PCI_CONF_ADDR, PCI_CONF_ENABLE | (bdf << 8) | (off & 0xfcu));
}

uint8_t pci__read8(uint32_t bdf, uint8_t off)
{
	pci__select(bdf, off);
	return inb(PCI_CONF_DATA + (off & 3));
}

uint16_t pci__read16(uint32_t bdf, uint8_t off)
{
	pci__select(bdf, off);
	return inw(PCI_CONF_DATA + (off & 2));
}

uint32_t pci__read32(uint32_t bdf, uint8_t off)
{
	pci__select(bdf, off);
	return inl(PCI_CONF_DATA);
}

void pci__write16(uint32_t bdf, uint8_t off, uint16_t val)
{
	pci__select(bdf, off);
	outw(PCI_CONF_DATA + (off & 2), val);
}

void pci__write32(uint32_t bdf, uint8_t off, uint32_t val)
{
	pci__select(bdf, off);
	outl(PCI_CONF_DATA, val);
}

static bool pci__present(uint32_t bdf)
{
	return pci__read16(bdf, PCI_VENDOR_ID) != 0xffff;
}

/* Calls fn for every function on bus 0 until it returns true. */
static bool pci__for_each(bool (*fn)(uint32_t bdf, void *arg), void *arg)
{
	for (uint32_t dev = 0; dev < PCI_NR_DEVS; dev++) {
		uint32_t nfn = 1;

		if (!pci__present(PCI_BDF(dev, 0)))
			continue;
		if (pci__read8(PCI_BDF(dev, 0), PCI_HEADER_TYPE) & PCI_HEADER_MULTI)
			nfn = PCI_NR_FUNCS;
		for (uint32_t f = 0; f < nfn; f++)
			if (pci__present(PCI_BDF(dev, f)) && fn(PCI_BDF(dev, f), arg))
				return true;
	}
	return false;
}

struct pci_match {
	uint32_t id; /* vendor | device << 16, as config dword 0 reads */
	unsigned int skip;
	uint32_t bdf;
};

static bool pci__match(uint32_t bdf, void *arg)
{
	struct pci_match *m = arg;

	if (pci__read32(bdf, PCI_VENDOR_ID) != m->id)
		return false;
	if (m->skip) {
		m->skip--;
		return false;
	}
	m->bdf = bdf;
	return true;
}

bool pci__find(uint16_t vendor, uint16_t device, unsigned int index,
	       uint32_t *bdf)
{
	struct pci_match m = { vendor | (uint32_t)device << 16, index, 0 };

	if (!pci__for_each(pci__match, &m))
		return false;
	*bdf = m.bdf;
	return true;
}

uint8_t pci__cap_first(uint32_t bdf)
{
	if (!(pci__read16(bdf, PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return 0;
	return pci__read8(bdf, PCI_CAP_PTR) & 0xfc;
}

uint8_t pci__cap_next(uint32_t bdf, uint8_t cap)
{
	return pci__read8(bdf, cap + 1) & 0xfc;
}

/* Size of a memory BAR (64-bit: both halves), decoding off meanwhile. */
static uint64_t pci__bar_size(uint32_t bdf, uint8_t off, bool is64)
{
	uint16_t cmd = pci__read16(bdf, PCI_COMMAND);
	uint32_t lo = pci__read32(bdf, off), hi = 0;
	uint64_t mask;

	pci__write16(bdf, PCI_COMMAND, cmd & ~PCI_COMMAND_MEMORY);
	pci__write32(bdf, off, 0xffffffffu);
	mask = pci__read32(bdf, off) & PCI_BAR_ADDR_MASK;
	pci__write32(bdf, off, lo);
	if (is64) {
		hi = pci__read32(bdf, off + 4);
		pci__write32(bdf, off + 4, 0xffffffffu);
		mask |= (uint64_t)pci__read32(bdf, off + 4) << 32;
		pci__write32(bdf, off + 4, hi);
	} else {
		mask |= 0xffffffff00000000ull;
	}
	pci__write16(bdf, PCI_COMMAND, cmd);
	return mask ? ~mask + 1 : 0;
}

/* Raises pci_next_free above every memory BAR of bdf inside the window. */
static bool pci__note_bars(uint32_t bdf, void *arg)
{
	(void)arg;
	if ((pci__read8(bdf, PCI_HEADER_TYPE) & 0x7f) != PCI_HEADER_NORMAL)
		return false;
	for (int bar = 0; bar < PCI_NR_BARS; bar++) {
		uint8_t off = PCI_BAR0 + 4 * bar;
		uint32_t lo = pci__read32(bdf, off);
		bool is64 = (lo & PCI_BAR_TYPE_MASK) == PCI_BAR_TYPE_64;
		uint32_t hi = is64 ? pci__read32(bdf, off + 4) : 0;
		uint32_t base = lo & PCI_BAR_ADDR_MASK;
		uint64_t end;

		if (is64)
			bar++;
		if ((lo & PCI_BAR_IO) || hi || base < MMIO32_WINDOW_START ||
		    base >= MMIO32_WINDOW_END)
			continue;
		end = base + pci__bar_size(bdf, off, is64);
		if (end > pci_next_free && end <= MMIO32_WINDOW_END)
			pci_next_free = (uint32_t)end;
	}
	return false;
}

static uint32_t pci__alloc(uint64_t size)
{
	uint64_t base;

	if (!pci_next_free) {
		pci_next_free = MMIO32_WINDOW_START;
		pci__for_each(pci__note_bars, NULL);
	}
	if (size < 16 || (size & (size - 1)))
		return 0;
	base = ((uint64_t)pci_next_free + size - 1) & ~(size - 1);
	if (base + size > MMIO32_WINDOW_END)
		return 0;
	pci_next_free = (uint32_t)(base + size);
	return (uint32_t)base;
}

uint32_t pci__bar_map(uint32_t bdf, int bar)
{
	uint8_t off = PCI_BAR0 + 4 * bar;
	uint32_t lo, hi = 0, base;
	uint64_t size;
	uint16_t cmd;
	bool is64;

	if (bar < 0 || bar >= PCI_NR_BARS)
		return 0;
	lo = pci__read32(bdf, off);
	if (lo & PCI_BAR_IO)
		return 0;
	is64 = (lo & PCI_BAR_TYPE_MASK) == PCI_BAR_TYPE_64;
	if (is64 && bar == PCI_NR_BARS - 1)
		return 0;
	if (is64)
		hi = pci__read32(bdf, off + 4);
	base = lo & PCI_BAR_ADDR_MASK;
	size = pci__bar_size(bdf, off, is64);
	if (!size)
		return 0;
	cmd = pci__read16(bdf, PCI_COMMAND);
	if (!base || hi || (uint64_t)base + size > 0x100000000ull) {
		base = pci__alloc(size);
		if (!base) {
			uart__puts("tiny: pci: no room for a BAR of ");
			uart__put_hex(size);
			uart__putc('\n');
			return 0;
		}
		pci__write16(bdf, PCI_COMMAND, cmd & ~PCI_COMMAND_MEMORY);
		pci__write32(bdf, off, base);
		if (is64)
			pci__write32(bdf, off + 4, 0);
	}
	pci__write16(bdf, PCI_COMMAND,
		     cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	return base;
}

void pci__print_bdf(uint32_t bdf)
{
	static const char hex[] = "0123456789abcdef";
	uint32_t dev = bdf >> 3;

	uart__puts("00:");
	uart__putc(hex[dev >> 4]);
	uart__putc(hex[dev & 0xf]);
	uart__putc('.');
	uart__putc(hex[bdf & 7]);
}
