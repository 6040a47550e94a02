/* tests/unit/test_cpuid.c — topology leaves and the hypervisor bit on a
 * synthetic CPUID table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/cpuid.h"

#include <string.h>

#define HTT (1u << 28)
#define HYPERVISOR (1u << 31)
#define LEVEL_SMT 1
#define LEVEL_CORE 2

enum { L1, L4_L1D, L4_L3, LB0, LB1, LB2, L80000008, L80000001, OTHER, NR_LEAVES };

/* Static storage, so a failing assertion leaks nothing. */
static union {
	struct kvm_cpuid2 c;
	uint8_t raw[sizeof(struct kvm_cpuid2) + NR_LEAVES * sizeof(struct kvm_cpuid_entry2)];
} table_buf;

static struct kvm_cpuid2 *table(void)
{
	struct kvm_cpuid2 *c = &table_buf.c;

	memset(&table_buf, 0, sizeof(table_buf));
	c->nent = NR_LEAVES;
	/* Values as a host might report them: stepping/brand bits to keep,
	 * topology bits from a bigger host to replace. */
	/* Leaf 1 EBX: APIC id 11, 16 logical, CLFLUSH 8, brand 0; HTT clear so
	 * setting it is observable. */
	c->entries[L1] = (struct kvm_cpuid_entry2){ .function = 1, .eax = 0x000906ea,
						      .ebx = 0x0b100800, .ecx = 0x7ffafbff,
						      .edx = 0xbfebfbff & ~HTT };
	c->entries[L4_L1D] = (struct kvm_cpuid_entry2){
		.function = 4, .index = 0, .eax = 0x1c004121 | (7u << 26) | (1u << 14) };
	c->entries[L4_L3] = (struct kvm_cpuid_entry2){
		.function = 4, .index = 3, .eax = 0x1c03c163 | (7u << 26) | (15u << 14) };
	c->entries[LB0] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = 0, .eax = 1,
						       .ebx = 2, .ecx = 0x100, .edx = 11 };
	c->entries[LB1] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = 1, .eax = 4,
						       .ebx = 16, .ecx = 0x201, .edx = 11 };
	c->entries[LB2] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = 2, .eax = 4,
						       .ebx = 16, .ecx = 0x202, .edx = 11 };
	c->entries[L80000008] = (struct kvm_cpuid_entry2){ .function = 0x80000008,
							  .eax = 0x3030, .ecx = 0x0003700f };
	c->entries[L80000001] = (struct kvm_cpuid_entry2){ .function = 0x80000001,
							  .ecx = 0x121 };
	c->entries[OTHER] = (struct kvm_cpuid_entry2){ .function = 7, .ebx = 0x12345678,
						       .ecx = 0x9abcdef0, .edx = 0x0fedcba9 };
	return c;
}

static void test_cpuid_leaf1_apic_id_and_logical_count(void **state)
{
	struct kvm_cpuid2 *c = table();
	struct kvm_cpuid_entry2 *e = &c->entries[L1];

	cpuid__fixup(c, 5, 8);
	assert_int_equal(e->ebx >> 24, 5);              /* initial APIC id */
	assert_int_equal((e->ebx >> 16) & 0xff, 8);      /* logical processors */
	assert_int_equal(e->ebx & 0xffff, 0x0800);       /* CLFLUSH size kept */
	assert_int_equal(e->eax, 0x000906ea);            /* signature untouched */
}

static void test_cpuid_leaf1_htt_only_with_several_cpus(void **state)
{
	struct kvm_cpuid2 *c = table();

	cpuid__fixup(c, 0, 2);
	assert_true(c->entries[L1].edx & HTT);

	c = table();
	c->entries[L1].edx |= HTT; /* host has it; a 1-vCPU guest must not */
	cpuid__fixup(c, 0, 1);
	assert_false(c->entries[L1].edx & HTT);
	assert_int_equal((c->entries[L1].ebx >> 16) & 0xff, 1);
	assert_int_equal(c->entries[L1].ebx >> 24, 0);
	/* Other feature bits survive. */
	assert_int_equal(c->entries[L1].edx, 0xbfebfbff & ~HTT);
}

static void test_cpuid_sets_hypervisor_bit(void **state)
{
	struct kvm_cpuid2 *c = table();

	c->entries[L1].ecx &= ~HYPERVISOR;
	cpuid__fixup(c, 0, 1);
	assert_true(c->entries[L1].ecx & HYPERVISOR);
	assert_int_equal(c->entries[L1].ecx & ~HYPERVISOR, 0x7ffafbff);
}

static void test_cpuid_leaf_b_levels_shift_and_x2apic_id(void **state)
{
	struct kvm_cpuid2 *c = table();
	struct kvm_cpuid_entry2 *smt = &c->entries[LB0], *core = &c->entries[LB1];

	cpuid__fixup(c, 6, 8);
	/* Level 0: SMT, one thread, shift 0. */
	assert_int_equal((smt->ecx >> 8) & 0xff, LEVEL_SMT);
	assert_int_equal(smt->ecx & 0xff, 0);
	assert_int_equal(smt->eax & 0x1f, 0);
	assert_int_equal(smt->ebx & 0xffff, 1);
	assert_int_equal(smt->edx, 6);
	/* Level 1: core, 8 logical processors, shift 3. */
	assert_int_equal((core->ecx >> 8) & 0xff, LEVEL_CORE);
	assert_int_equal(core->ecx & 0xff, 1);
	assert_int_equal(core->eax & 0x1f, 3);
	assert_int_equal(core->ebx & 0xffff, 8);
	assert_int_equal(core->edx, 6);
	/* Level 2 is invalid: type 0, level number echoed, id still there. */
	assert_int_equal((c->entries[LB2].ecx >> 8) & 0xff, 0);
	assert_int_equal(c->entries[LB2].ecx & 0xff, 2);
	assert_int_equal(c->entries[LB2].ebx, 0);
	assert_int_equal(c->entries[LB2].edx, 6);
}

static void test_cpuid_leaf_b_shift_rounds_up_to_power_of_two(void **state)
{
	static const struct { unsigned int nr, shift; } cases[] = {
		{ 1, 0 }, { 2, 1 }, { 3, 2 }, { 4, 2 }, { 5, 3 }, { 128, 7 }, { 129, 8 }, { 255, 8 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kvm_cpuid2 *c = table();

		cpuid__fixup(c, cases[i].nr - 1, cases[i].nr);
		if ((c->entries[LB1].eax & 0x1f) != cases[i].shift)
			fail_msg("%u vCPUs: core shift %u, expected %u", cases[i].nr,
				 c->entries[LB1].eax & 0x1f, cases[i].shift);
		/* The highest APIC id fits in the core shift. */
		assert_true(cases[i].nr - 1 < (1u << (c->entries[LB1].eax & 0x1f)));
		assert_int_equal(c->entries[LB1].ebx & 0xffff, cases[i].nr);
		assert_int_equal(c->entries[L1].ebx >> 24, cases[i].nr - 1);
	}
}

static void test_cpuid_leaf_80000008_core_count_and_id_size(void **state)
{
	struct kvm_cpuid2 *c = table();
	struct kvm_cpuid_entry2 *e = &c->entries[L80000008];

	cpuid__fixup(c, 0, 6);
	assert_int_equal(e->ecx & 0xff, 5);          /* NC = cores - 1 */
	assert_int_equal((e->ecx >> 12) & 0xf, 3);   /* ApicIdSize: 6 -> 3 bits */
	assert_int_equal(e->ecx & ~0xf0ffu, 0x30000); /* other bits kept */
	assert_int_equal(e->eax, 0x3030);            /* address sizes untouched */
	assert_true(c->entries[L80000001].ecx & 2);  /* CmpLegacy */
}

static void test_cpuid_leaf4_cores_per_package(void **state)
{
	struct kvm_cpuid2 *c = table();

	cpuid__fixup(c, 0, 4);
	assert_int_equal(c->entries[L4_L1D].eax >> 26, 3);
	assert_int_equal((c->entries[L4_L1D].eax >> 14) & 0xfff, 0); /* L1 private */
	assert_int_equal(c->entries[L4_L3].eax >> 26, 3);
	assert_int_equal((c->entries[L4_L3].eax >> 14) & 0xfff, 3);  /* L3 shared */
	assert_int_equal(c->entries[L4_L1D].eax & 0x3fff, 0x0121);    /* type/level kept */
}

static void test_cpuid_leaf4_core_field_saturates(void **state)
{
	/* EAX[31:26] holds cores - 1 in 6 bits: more than 64 vCPUs must not wrap
	 * into a small count. */
	struct kvm_cpuid2 *c = table();

	cpuid__fixup(c, 0, 65);
	assert_int_equal(c->entries[L4_L1D].eax >> 26, 63);
}

static void test_cpuid_leaves_not_about_topology_untouched(void **state)
{
	struct kvm_cpuid2 *c = table();
	struct kvm_cpuid_entry2 before = c->entries[OTHER];

	cpuid__fixup(c, 3, 4);
	assert_memory_equal(&c->entries[OTHER], &before, sizeof(before));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpuid_leaf1_apic_id_and_logical_count),
		cmocka_unit_test(test_cpuid_leaf1_htt_only_with_several_cpus),
		cmocka_unit_test(test_cpuid_sets_hypervisor_bit),
		cmocka_unit_test(test_cpuid_leaf_b_levels_shift_and_x2apic_id),
		cmocka_unit_test(test_cpuid_leaf_b_shift_rounds_up_to_power_of_two),
		cmocka_unit_test(test_cpuid_leaf_80000008_core_count_and_id_size),
		cmocka_unit_test(test_cpuid_leaf4_cores_per_package),
		cmocka_unit_test(test_cpuid_leaf4_core_field_saturates),
		cmocka_unit_test(test_cpuid_leaves_not_about_topology_untouched),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
