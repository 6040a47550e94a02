/* tests/unit/test_acpi.c — the ACPI tables, parsed back from the buffer
 * the way an OS finds them: RSDP -> XSDT -> each table. */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/acpi.h"
#include "vmm/layout.h"

#define GPA  ACPI_TABLES_GPA
#define SIZE (ACPI_TABLES_END - ACPI_TABLES_GPA)

static uint8_t *buf;
static ssize_t used;

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Guest address -> pointer into buf, or fail the test. */
static const uint8_t *at(uint64_t gpa, size_t len)
{
	assert_true(gpa >= GPA && gpa + len <= GPA + (uint64_t)used);
	return buf + (gpa - GPA);
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *p++);
	return s;
}

static const uint8_t *table(const uint8_t *xsdt, const char *sig)
{
	uint32_t n = (get32(xsdt + 4) - 36) / 8;

	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *t = at(get64(xsdt + 36 + 8 * i), 36);

		if (!memcmp(t, sig, 4))
			return at(get64(xsdt + 36 + 8 * i), get32(t + 4));
	}
	return NULL;
}

static const uint8_t *build(unsigned int nr_cpus)
{
	free(buf);
	buf = calloc(1, SIZE);
	assert_non_null(buf);
	used = acpi__build(buf, SIZE, GPA, nr_cpus);
	assert_true(used > 0);
	assert_memory_equal(buf, "RSD PTR ", 8);
	return at(get64(buf + 24), 36);
}

static void test_acpi_rsdp_checksums(void **state)
{
	build(1);
	assert_int_equal(buf[15], 2); /* revision */
	assert_int_equal(sum(buf, 20), 0);
	assert_int_equal(sum(buf, 36), 0);
	assert_int_equal(get32(buf + 20), 36);
}

static void test_acpi_every_table_checksums_to_zero(void **state)
{
	const uint8_t *xsdt = build(4);
	const char *sigs[] = {"FACP", "APIC", "MCFG"};
	const uint8_t *fadt, *dsdt, *rsdt;

	assert_memory_equal(xsdt, "XSDT", 4);
	assert_int_equal(sum(xsdt, get32(xsdt + 4)), 0);
	for (size_t i = 0; i < 3; i++) {
		const uint8_t *t = table(xsdt, sigs[i]);

		assert_non_null(t);
		assert_int_equal(sum(t, get32(t + 4)), 0);
	}
	fadt = table(xsdt, "FACP");
	dsdt = at(get64(fadt + 140), 36);
	assert_memory_equal(dsdt, "DSDT", 4);
	assert_int_equal(sum(at(get64(fadt + 140), get32(dsdt + 4)), get32(dsdt + 4)), 0);
	rsdt = at(get32(buf + 16), 36);
	assert_memory_equal(rsdt, "RSDT", 4);
	assert_int_equal(sum(rsdt, get32(rsdt + 4)), 0);
	assert_int_equal(get32(rsdt + 4), 36 + 4 * 3);
}

static void test_acpi_xsdt_points_at_every_table(void **state)
{
	const uint8_t *xsdt = build(2);

	assert_int_equal(get32(xsdt + 4), 36 + 8 * 3);
	assert_non_null(table(xsdt, "FACP"));
	assert_non_null(table(xsdt, "APIC"));
	assert_non_null(table(xsdt, "MCFG"));
}

static void test_acpi_fadt_fields(void **state)
{
	const uint8_t *f = table(build(1), "FACP");
	const uint8_t *facs;

	assert_int_equal(get32(f + 4), 276);
	assert_int_equal(f[8], 6);
	assert_int_equal(get32(f + 40), (uint32_t)get64(f + 140)); /* DSDT == X_DSDT */
	facs = at(get32(f + 36), 64);
	assert_memory_equal(facs, "FACS", 4);
	assert_int_equal((get32(f + 36) & 63), 0);
	assert_int_equal(get16(f + 46), ACPI_SCI_IRQ);
	assert_int_equal(get32(f + 48), 0); /* SMI_CMD */
	assert_int_equal(get32(f + 56), ACPI_PM1A_EVT_PORT);
	assert_int_equal(get32(f + 64), ACPI_PM1A_CNT_PORT);
	assert_int_equal(get32(f + 76), ACPI_PM_TMR_PORT);
	assert_int_equal(f[88], 4);
	assert_int_equal(f[89], 2);
	assert_int_equal(f[91], 4);
	assert_int_equal(f[108], 0x32);			      /* century */
	assert_int_equal(get16(f + 109), 0x5);		      /* legacy devices, no VGA, no 8042 */
	assert_int_equal(get32(f + 112) & (1u << 4), 0);      /* power button fixed */
	assert_int_not_equal(get32(f + 112) & (1u << 5), 0);  /* no sleep button */
	assert_int_not_equal(get32(f + 112) & (1u << 10), 0); /* RESET_REG_SUP */
	assert_int_equal(f[116], 1);			      /* reset register in I/O space */
	assert_int_equal(get64(f + 120), 0xcf9);
	assert_int_equal(f[128], 6);
	assert_int_equal(get64(f + 148 + 4), ACPI_PM1A_EVT_PORT); /* X_PM1a_EVT */
	assert_int_equal(get64(f + 208 + 4), ACPI_PM_TMR_PORT);
}

static void test_acpi_madt_has_one_lapic_per_cpu(void **state)
{
	for (unsigned int n = 1; n <= 64; n *= 4) {
		const uint8_t *m = table(build(n), "APIC");
		uint32_t len = get32(m + 4), lapics = 0, ioapics = 0, isos = 0, nmis = 0;

		assert_int_equal(get32(m + 36), LAPIC_GPA);
		assert_int_equal(get32(m + 40) & 1, 1); /* PCAT_COMPAT */
		for (uint32_t o = 44; o < len; o += m[o + 1]) {
			assert_true(m[o + 1] >= 2 && o + m[o + 1] <= len);
			switch (m[o]) {
			case 0:
				assert_int_equal(m[o + 3], lapics); /* APIC id = index */
				assert_int_equal(get32(m + o + 4), 1);
				lapics++;
				break;
			case 1:
				assert_int_equal(get32(m + o + 4), IOAPIC_GPA);
				assert_int_equal(get32(m + o + 8), 0);
				ioapics++;
				break;
			case 2:
				if (m[o + 3] == 0)
					assert_int_equal(get32(m + o + 4), 2);
				else
					assert_int_equal(get16(m + o + 8), 0x000d);
				isos++;
				break;
			case 4:
				assert_int_equal(m[o + 5], 1); /* LINT1 */
				nmis++;
				break;
			}
		}
		assert_int_equal(lapics, n);
		assert_int_equal(ioapics, 1);
		assert_int_equal(isos, 2);
		assert_int_equal(nmis, 1);
	}
}

static void test_acpi_mcfg_covers_ecam(void **state)
{
	const uint8_t *m = table(build(1), "MCFG");

	assert_int_equal(get32(m + 4), 36 + 8 + 16);
	assert_int_equal(get64(m + 44), PCI_ECAM_START);
	assert_int_equal(get16(m + 52), 0);
	assert_int_equal(m[54], 0);
	assert_int_equal(m[55], PCI_LAST_BUS);
}

static bool contains(const uint8_t *p, size_t len, const void *needle, size_t n)
{
	for (size_t i = 0; i + n <= len; i++)
		if (!memcmp(p + i, needle, n))
			return true;
	return false;
}

/* dsdt.asl cannot include layout.h: check the values agree. */
static void test_acpi_dsdt_matches_layout(void **state)
{
	const uint8_t *f = table(build(1), "FACP");
	const uint8_t *d = at(get64(f + 140), 36);
	size_t len = get32(d + 4);
	uint32_t mmio32 = PCI_MMIO32_START, mmio32_max = PCI_MMIO32_START + PCI_MMIO32_SIZE - 1;
	uint64_t mmio64 = PCI_MMIO64_START, mmio64_len = PCI_MMIO64_SIZE;
	uint32_t ecam[2] = {PCI_ECAM_START, PCI_ECAM_SIZE};

	d = at(get64(f + 140), len);
	assert_true(contains(d, len, &mmio32, 4));
	assert_true(contains(d, len, &mmio32_max, 4));
	assert_true(contains(d, len, &mmio64, 8));
	assert_true(contains(d, len, &mmio64_len, 8));
	assert_true(contains(d, len, ecam, 8));
	assert_true(contains(d, len, "_S5_", 4));
}

static void test_acpi_refuses_small_buffer(void **state)
{
	uint8_t small[256];

	assert_int_equal(acpi__build(small, sizeof(small), GPA, 1), -ENOSPC);
	assert_int_equal(acpi__build(small, sizeof(small), GPA, 0), -ENOSPC);
}

static int teardown(void **state)
{
	free(buf);
	buf = NULL;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_acpi_rsdp_checksums),
	    cmocka_unit_test(test_acpi_every_table_checksums_to_zero),
	    cmocka_unit_test(test_acpi_xsdt_points_at_every_table),
	    cmocka_unit_test(test_acpi_fadt_fields),
	    cmocka_unit_test(test_acpi_madt_has_one_lapic_per_cpu),
	    cmocka_unit_test(test_acpi_mcfg_covers_ecam),
	    cmocka_unit_test(test_acpi_dsdt_matches_layout),
	    cmocka_unit_test(test_acpi_refuses_small_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, teardown);
}
