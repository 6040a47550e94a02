/* tests/unit/test_pci.c — configuration space through both access
 * mechanisms, BAR sizing and BAR-based MMIO dispatch, without a VM. */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/pci.h"

static struct pci_host host;
static struct pci_device dev;

static int setup(void **state)
{
	pci_host__init(&host, NULL);
	pci_device__init(&dev, "test", 0x1af4, 0x1041, 0x010000, 1);
	return 0;
}

static int teardown(void **state)
{
	pci_host__destroy(&host);
	return 0;
}

static uint32_t conf1_read(uint8_t devfn, uint32_t reg, uint32_t len)
{
	uint32_t addr = 0x80000000u | (uint32_t)devfn << 8 | (reg & 0xfc);
	uint8_t d[4] = {0};
	uint32_t v = 0;

	pci_host__cf8_io(&host, 0, (uint8_t *)&addr, 4, true);
	pci_host__cf8_io(&host, 4 + (reg & 3), d, len, false);
	for (uint32_t i = 0; i < len; i++)
		v |= (uint32_t)d[i] << (8 * i);
	return v;
}

static void conf1_write(uint8_t devfn, uint32_t reg, uint32_t len, uint32_t v)
{
	uint32_t addr = 0x80000000u | (uint32_t)devfn << 8 | (reg & 0xfc);
	uint8_t d[4];

	for (uint32_t i = 0; i < 4; i++)
		d[i] = (uint8_t)(v >> (8 * i));
	pci_host__cf8_io(&host, 0, (uint8_t *)&addr, 4, true);
	pci_host__cf8_io(&host, 4 + (reg & 3), d, len, true);
}

static uint32_t ecam_read(uint8_t bus, uint8_t devfn, uint32_t reg, uint32_t len)
{
	uint8_t d[4] = {0};
	uint32_t v = 0;

	pci_host__ecam_io(&host, (uint64_t)bus << 20 | (uint64_t)devfn << 12 | reg, d, len, false);
	for (uint32_t i = 0; i < len; i++)
		v |= (uint32_t)d[i] << (8 * i);
	return v;
}

static void ecam_write32(uint8_t devfn, uint32_t reg, uint32_t v)
{
	pci_host__ecam_io(&host, (uint64_t)devfn << 12 | reg, (uint8_t *)&v, 4, true);
}

static void test_pci_host_bridge_ids_both_mechanisms(void **state)
{
	assert_int_equal(conf1_read(0, 0, 4), 0x12378086);
	assert_int_equal(ecam_read(0, 0, 0, 4), 0x12378086);
	assert_int_equal(conf1_read(0, 0x0a, 2), 0x0600); /* class */
	assert_int_equal(ecam_read(0, 0, 0x0b, 1), 0x06);
	assert_int_equal(conf1_read(0, 2, 2), 0x1237); /* word at 0xcfe */
	assert_int_equal(conf1_read(0, 1, 1), 0x80);   /* byte at 0xcfd */
}

static void test_pci_absent_functions_read_all_ones(void **state)
{
	assert_int_equal(conf1_read(PCI_DEVFN(5, 0), 0, 4), 0xffffffffu);
	assert_int_equal(conf1_read(PCI_DEVFN(0, 3), 0, 2), 0xffff);
	assert_int_equal(ecam_read(1, 0, 0, 2), 0xffff); /* other bus */
	assert_int_equal(ecam_read(0, PCI_DEVFN(31, 7), 0xffc, 4), 0xffffffffu);
	/* Disabled conf1 address: nothing decoded. */
	uint32_t addr = 0;
	uint8_t d[4];

	pci_host__cf8_io(&host, 0, (uint8_t *)&addr, 4, true);
	pci_host__cf8_io(&host, 4, d, 4, false);
	assert_int_equal(d[0] & d[1] & d[2] & d[3], 0xff);
}

static void test_pci_register_picks_next_free_slot(void **state)
{
	struct pci_device d2;

	assert_int_equal(pci_host__add(&host, &dev, -1), 0);
	assert_int_equal(dev.devfn, PCI_DEVFN(PCI_FIRST_DYNAMIC_SLOT, 0));
	pci_device__init(&d2, "second", 0x1af4, 0x1042, 0x010000, 1);
	assert_int_equal(pci_host__add(&host, &d2, -1), 0);
	assert_int_equal(d2.devfn, PCI_DEVFN(PCI_FIRST_DYNAMIC_SLOT + 1, 0));
	assert_int_equal(pci_host__add(&host, &d2, 0), -EBUSY);
	assert_int_equal(conf1_read(d2.devfn, 0, 4), 0x10421af4);
}

static void test_pci_read_only_bits_stay(void **state)
{
	assert_int_equal(pci_host__add(&host, &dev, -1), 0);
	conf1_write(dev.devfn, 0, 4, 0xdeadbeef);
	assert_int_equal(conf1_read(dev.devfn, 0, 4), 0x10411af4);
	conf1_write(dev.devfn, PCI_COMMAND, 2, 0xffff);
	assert_int_equal(conf1_read(dev.devfn, PCI_COMMAND, 2), 0x0547);
	conf1_write(dev.devfn, PCI_INTERRUPT_LINE, 1, 0x0b);
	assert_int_equal(conf1_read(dev.devfn, PCI_INTERRUPT_LINE, 1), 0x0b);
	/* STATUS error bits are write-1-to-clear, others read-only. */
	dev.cfg[PCI_STATUS + 1] = 0x80;
	conf1_write(dev.devfn, PCI_STATUS, 2, 0x8000);
	assert_int_equal(conf1_read(dev.devfn, PCI_STATUS, 2), 0);
}

static void test_pci_bar_sizing(void **state)
{
	assert_int_equal(pci_device__add_bar(&dev, 0, 0x1000, 0, NULL, NULL), 0);
	assert_int_equal(
	    pci_device__add_bar(&dev, 2, 0x4000, PCI_BAR_MEM64 | PCI_BAR_PREFETCH, NULL, NULL), 0);
	assert_int_equal(pci_device__add_bar(&dev, 3, 0x1000, 0, NULL, NULL), -EBUSY);
	assert_int_equal(pci_device__add_bar(&dev, 1, 0x1001, 0, NULL, NULL), -EINVAL);
	assert_int_equal(pci_host__add(&host, &dev, -1), 0);

	ecam_write32(dev.devfn, PCI_BAR0, 0xffffffff);
	assert_int_equal(ecam_read(0, dev.devfn, PCI_BAR0, 4), 0xfffff000u);
	ecam_write32(dev.devfn, PCI_BAR0 + 8, 0xffffffff);
	ecam_write32(dev.devfn, PCI_BAR0 + 12, 0xffffffff);
	assert_int_equal(ecam_read(0, dev.devfn, PCI_BAR0 + 8, 4), 0xffffc00cu);
	assert_int_equal(ecam_read(0, dev.devfn, PCI_BAR0 + 12, 4), 0xffffffffu);
	/* Unimplemented BARs read 0 whatever is written. */
	ecam_write32(dev.devfn, PCI_BAR0 + 4, 0xffffffff);
	assert_int_equal(ecam_read(0, dev.devfn, PCI_BAR0 + 4, 4), 0);
	ecam_write32(dev.devfn, PCI_BAR0 + 20, 0xffffffff);
	assert_int_equal(ecam_read(0, dev.devfn, PCI_BAR0 + 20, 4), 0);
}

static uint64_t last_offset;
static int moves;

static void bar_fn(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	last_offset = offset;
	if (!is_write)
		memset(data, 0x42, len);
}

static void bar_moved(struct pci_device *d, int bar, uint64_t old, uint64_t new)
{
	moves++;
}

static void test_pci_mmio_follows_the_bar(void **state)
{
	uint8_t d[4];

	dev.bar_moved = bar_moved;
	assert_int_equal(pci_device__add_bar(&dev, 2, 0x4000, PCI_BAR_MEM64, bar_fn, NULL), 0);
	assert_int_equal(pci_host__add(&host, &dev, -1), 0);
	ecam_write32(dev.devfn, PCI_BAR0 + 8, 0xc0004000);
	ecam_write32(dev.devfn, PCI_BAR0 + 12, 0x80);
	assert_int_equal(moves, 2);
	/* Memory decoding still off: nobody answers. */
	assert_false(pci_host__mmio(&host, 0x80c0004010ULL, d, 4, false));
	assert_int_equal(d[0], 0xff);
	conf1_write(dev.devfn, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_true(pci_host__mmio(&host, 0x80c0004010ULL, d, 4, false));
	assert_int_equal(last_offset, 0x10);
	assert_int_equal(d[0], 0x42);
	assert_int_equal(pci_device__bar_addr(&dev, 2), 0x80c0004000ULL);
	/* Moved: the old place is dead, the new one answers. */
	ecam_write32(dev.devfn, PCI_BAR0 + 12, 0);
	assert_false(pci_host__mmio(&host, 0x80c0004010ULL, d, 4, true));
	assert_true(pci_host__mmio(&host, 0xc0007ffcULL, d, 4, false));
	assert_int_equal(last_offset, 0x3ffc);
	assert_false(pci_host__mmio(&host, 0xc0008000ULL, d, 4, false));
}

static void test_pci_capability_list(void **state)
{
	uint8_t body[6] = {1, 2, 3, 4, 5, 6};
	int a = pci_device__add_cap(&dev, 0x11, body, 6);
	int b = pci_device__add_cap(&dev, 0x09, body, 3);

	assert_int_equal(a, 0x40);
	assert_int_equal(b, 0x48);
	assert_int_equal(pci_host__add(&host, &dev, -1), 0);
	assert_int_equal(conf1_read(dev.devfn, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST,
			 PCI_STATUS_CAP_LIST);
	assert_int_equal(conf1_read(dev.devfn, PCI_CAPABILITY_LIST, 1), 0x40);
	assert_int_equal(conf1_read(dev.devfn, 0x40, 2), 0x4811);
	assert_int_equal(conf1_read(dev.devfn, 0x48, 2), 0x0009);
	assert_int_equal(conf1_read(dev.devfn, 0x42, 1), 1);
	assert_true(pci_device__add_cap(&dev, 0x09, body, 250) < 0);
}

static void test_pci_ecam_rejects_oversized_access(void **state)
{
	uint8_t d[8];

	pci_host__ecam_io(&host, 0xffe, d, 4, false); /* crosses 4 KiB */
	assert_int_equal(d[0], 0xff);
	pci_host__ecam_io(&host, 0, d, 8, false);
	assert_int_equal(d[7], 0xff);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_pci_host_bridge_ids_both_mechanisms, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_pci_absent_functions_read_all_ones, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_pci_register_picks_next_free_slot, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_pci_read_only_bits_stay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pci_bar_sizing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pci_mmio_follows_the_bar, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pci_capability_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pci_ecam_rejects_oversized_access, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
