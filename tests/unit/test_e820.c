/* tests/unit/test_e820.c — the guest memory map given to both loaders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/e820.h"
#include "vmm/layout.h"

#include <string.h>

/* What the map hides from RAM below 1 MiB: the EBDA up to 0xa0000, then the
 * VGA hole and BIOS/ACPI area up to 1 MiB. */
#define LEGACY_HOLE (HIGH_MEMORY_START - EBDA_START)

static int build(uint64_t ram, struct e820_entry *map)
{
	int n;

	memset(map, 0xa5, sizeof(*map) * (E820_MAX_ENTRIES + 1));
	n = e820__build(ram, map, E820_MAX_ENTRIES);
	assert_in_range(n, 1, E820_MAX_ENTRIES);
	return n;
}

static void assert_sorted_and_disjoint(const struct e820_entry *map, int n)
{
	for (int i = 0; i < n; i++) {
		assert_true(map[i].size > 0);
		assert_true(map[i].addr + map[i].size > map[i].addr); /* no wrap */
		assert_in_range(map[i].type, E820_RAM, E820_ACPI);
		if (i && map[i - 1].addr + map[i - 1].size > map[i].addr)
			fail_msg("entry %d [0x%llx, +0x%llx) overlaps or precedes entry %d", i,
				 (unsigned long long)map[i].addr,
				 (unsigned long long)map[i].size, i - 1);
	}
}

static uint64_t total_of(const struct e820_entry *map, int n, uint32_t type)
{
	uint64_t sum = 0;

	for (int i = 0; i < n; i++)
		if (map[i].type == type)
			sum += map[i].size;
	return sum;
}

/* The entry containing [addr, addr + size), or NULL. */
static const struct e820_entry *find(const struct e820_entry *map, int n, uint64_t addr,
				     uint64_t size)
{
	for (int i = 0; i < n; i++)
		if (addr >= map[i].addr && addr + size <= map[i].addr + map[i].size)
			return &map[i];
	return NULL;
}

static void test_e820_256m_layout(void **state)
{
	struct e820_entry map[E820_MAX_ENTRIES + 1];
	const uint64_t ram = 256 * SZ_1M;
	int n = build(ram, map);

	assert_sorted_and_disjoint(map, n);
	/* Conventional RAM: from 0 to the EBDA, not into it. */
	assert_int_equal(map[0].addr, 0);
	assert_int_equal(map[0].size, EBDA_START);
	assert_int_equal(map[0].type, E820_RAM);
	/* The EBDA and the BIOS/ACPI tables area are reserved. */
	assert_non_null(find(map, n, EBDA_START, 0xa0000 - EBDA_START));
	assert_int_equal(find(map, n, EBDA_START, 0xa0000 - EBDA_START)->type, E820_RESERVED);
	assert_non_null(find(map, n, ACPI_TABLES_GPA, ACPI_TABLES_END - ACPI_TABLES_GPA));
	assert_int_equal(find(map, n, ACPI_TABLES_GPA, ACPI_TABLES_END - ACPI_TABLES_GPA)->type,
			 E820_RESERVED);
	/* Nothing claims the VGA window as RAM. */
	for (int i = 0; i < n; i++)
		if (map[i].type == E820_RAM)
			assert_false(map[i].addr < 0xc0000 && map[i].addr + map[i].size > 0xa0000);
	/* High RAM: exactly from 1 MiB to the end of RAM. */
	assert_non_null(find(map, n, HIGH_MEMORY_START, ram - HIGH_MEMORY_START));
	{
		const struct e820_entry *e = find(map, n, HIGH_MEMORY_START, 1);

		assert_int_equal(e->addr, HIGH_MEMORY_START);
		assert_int_equal(e->size, ram - HIGH_MEMORY_START);
		assert_int_equal(e->type, E820_RAM);
	}
	/* ECAM reserved, so Linux trusts MMCONFIG. */
	assert_non_null(find(map, n, PCI_ECAM_START, PCI_ECAM_SIZE));
	assert_int_equal(find(map, n, PCI_ECAM_START, PCI_ECAM_SIZE)->type, E820_RESERVED);
	/* No RAM above 4 GiB for a small guest. */
	for (int i = 0; i < n; i++)
		assert_true(map[i].type != E820_RAM || map[i].addr + map[i].size <= ram);
}

static void test_e820_4g_splits_ram_at_pci_hole(void **state)
{
	struct e820_entry map[E820_MAX_ENTRIES + 1];
	const uint64_t ram = 4 * SZ_1G;
	const struct e820_entry *e;
	int n = build(ram, map);

	assert_sorted_and_disjoint(map, n);
	e = find(map, n, HIGH_MEMORY_START, 1);
	assert_non_null(e);
	assert_int_equal(e->type, E820_RAM);
	assert_int_equal(e->addr + e->size, PCI_HOLE_START); /* low RAM stops at 3 GiB */
	e = find(map, n, RAM_ABOVE_4G, 1);
	assert_non_null(e);
	assert_int_equal(e->type, E820_RAM);
	assert_int_equal(e->addr, RAM_ABOVE_4G);
	assert_int_equal(e->size, SZ_1G); /* the 1 GiB the hole displaced */
	/* Nothing in the hole is RAM. */
	for (int i = 0; i < n; i++)
		if (map[i].type == E820_RAM)
			assert_false(map[i].addr < RAM_ABOVE_4G &&
				     map[i].addr + map[i].size > PCI_HOLE_START);
	assert_int_equal(find(map, n, PCI_ECAM_START, PCI_ECAM_SIZE)->type, E820_RESERVED);
}

static void test_e820_ram_exactly_3g_has_no_high_entry(void **state)
{
	struct e820_entry map[E820_MAX_ENTRIES + 1];
	int n = build(PCI_HOLE_START, map);

	assert_sorted_and_disjoint(map, n);
	assert_null(find(map, n, RAM_ABOVE_4G, 1));
	assert_int_equal(total_of(map, n, E820_RAM), PCI_HOLE_START - LEGACY_HOLE);
}

static void test_e820_total_ram_is_size_minus_legacy_hole(void **state)
{
	static const uint64_t sizes[] = {
		16 * SZ_1M, 256 * SZ_1M, 2 * SZ_1G, 3 * SZ_1G - 2 * SZ_1M, 3 * SZ_1G + 2 * SZ_1M,
		4 * SZ_1G, 64 * SZ_1G, MAX_RAM_SIZE,
	};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct e820_entry map[E820_MAX_ENTRIES + 1];
		int n = build(sizes[i], map);
		uint64_t ram = total_of(map, n, E820_RAM);

		assert_sorted_and_disjoint(map, n);
		/* 0x60400 bytes: 0x9fc00..0x100000 is not RAM. */
		if (ram != sizes[i] - LEGACY_HOLE)
			fail_msg("ram_size 0x%llx: map has 0x%llx bytes of RAM, expected 0x%llx",
				 (unsigned long long)sizes[i], (unsigned long long)ram,
				 (unsigned long long)(sizes[i] - LEGACY_HOLE));
		/* The highest RAM byte stays below the 64-bit MMIO window. */
		for (int j = 0; j < n; j++)
			assert_true(map[j].addr + map[j].size <= PCI_MMIO64_START);
	}
	assert_int_equal(LEGACY_HOLE, 0x60400);
}

static void test_e820_respects_max(void **state)
{
	struct e820_entry full[E820_MAX_ENTRIES + 1], map[E820_MAX_ENTRIES + 1];
	int all = build(4 * SZ_1G, full);

	for (int max = 0; max <= all; max++) {
		memset(map, 0xa5, sizeof(map));
		assert_int_equal(e820__build(4 * SZ_1G, map, max), max);
		/* Field by field: struct assignment leaves the tail padding undefined. */
		for (int i = 0; i < max; i++) {
			assert_int_equal(map[i].addr, full[i].addr);
			assert_int_equal(map[i].size, full[i].size);
			assert_int_equal(map[i].type, full[i].type);
		}
		/* Nothing written past max. */
		for (size_t b = 0; b < offsetof(struct e820_entry, type) + sizeof(uint32_t); b++)
			assert_int_equal(((const uint8_t *)&map[max])[b], 0xa5);
	}
	/* A larger max changes nothing. */
	assert_int_equal(e820__build(4 * SZ_1G, map, E820_MAX_ENTRIES), all);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_e820_256m_layout),
		cmocka_unit_test(test_e820_4g_splits_ram_at_pci_hole),
		cmocka_unit_test(test_e820_ram_exactly_3g_has_no_high_entry),
		cmocka_unit_test(test_e820_total_ram_is_size_minus_legacy_hole),
		cmocka_unit_test(test_e820_respects_max),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
