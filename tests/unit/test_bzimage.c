/* tests/unit/test_bzimage.c — bzImage header validation on synthetic images,
 * and where the initrd goes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/boot.h"
#include "vmm/boot_params.h"
#include "vmm/layout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETUP_SECTS 4
#define SETUP_SIZE ((SETUP_SECTS + 1) * 512)
#define PAYLOAD_PARAS 256 /* syssize: 16-byte units of protected-mode code */
#define IMAGE_SIZE (SETUP_SIZE + PAYLOAD_PARAS * 16)

static uint8_t image[IMAGE_SIZE + 4096];

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }

/* A minimal valid image: protocol 2.15, 64-bit entry, payload exactly as
 * long as syssize says. */
static struct boot_image valid_image(void)
{
	memset(image, 0, sizeof(image));
	image[HDR_SETUP_SECTS] = SETUP_SECTS;
	put32(image + HDR_SYSSIZE, PAYLOAD_PARAS);
	put16(image + HDR_BOOT_FLAG, 0xaa55);
	image[HDR_JUMP] = 0xeb;
	image[HDR_JUMP + 1] = 0x6a;
	memcpy(image + HDR_MAGIC, "HdrS", 4);
	put16(image + HDR_VERSION, 0x020f);
	image[HDR_LOADFLAGS] = LOADFLAG_LOADED_HIGH;
	put16(image + HDR_XLOADFLAGS, XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G);
	put32(image + HDR_INIT_SIZE, 0x100000);
	return (struct boot_image){ .path = "synthetic", .data = image, .size = IMAGE_SIZE };
}

static void expect_rejected(const struct boot_image *k, const char *reason)
{
	char why[160] = "";

	assert_int_equal(bzimage__check(k, why, sizeof(why)), -EINVAL);
	if (!strstr(why, reason))
		fail_msg("reason \"%s\" does not mention \"%s\"", why, reason);
}

static void test_bzimage_accepts_valid_header(void **state)
{
	struct boot_image k = valid_image();
	char why[160] = "untouched";

	assert_int_equal(bzimage__check(&k, why, sizeof(why)), 0);
}

static void test_bzimage_accepts_extra_bytes_after_payload(void **state)
{
	struct boot_image k = valid_image();
	char why[160];

	k.size += 4096;
	assert_int_equal(bzimage__check(&k, why, sizeof(why)), 0);
}

static void test_bzimage_accepts_protocol_2_12(void **state)
{
	struct boot_image k = valid_image();
	char why[160];

	put16(image + HDR_VERSION, 0x020c);
	assert_int_equal(bzimage__check(&k, why, sizeof(why)), 0);
}

static void test_bzimage_setup_sects_zero_means_four(void **state)
{
	struct boot_image k = valid_image();
	char why[160], expect[80];

	image[HDR_SETUP_SECTS] = 0;
	assert_int_equal(bzimage__check(&k, why, sizeof(why)), 0);
	/* The size it promises counts 4 setup sectors plus the boot sector. */
	k.size -= 1;
	snprintf(expect, sizeof(expect), "the header promises %u", IMAGE_SIZE);
	expect_rejected(&k, expect);
}

static void test_bzimage_rejects_bad_boot_flag(void **state)
{
	struct boot_image k = valid_image();

	put16(image + HDR_BOOT_FLAG, 0x55aa);
	expect_rejected(&k, "boot sector signature");
}

static void test_bzimage_rejects_missing_hdrs(void **state)
{
	struct boot_image k = valid_image();

	memcpy(image + HDR_MAGIC, "HdrZ", 4);
	expect_rejected(&k, "HdrS");
}

static void test_bzimage_rejects_protocol_older_than_2_12(void **state)
{
	struct boot_image k = valid_image();

	put16(image + HDR_VERSION, 0x020b);
	expect_rejected(&k, "boot protocol 2.11 is older than 2.12");
	put16(image + HDR_VERSION, 0x0100);
	expect_rejected(&k, "older than 2.12");
}

static void test_bzimage_rejects_kernel_without_64bit_entry(void **state)
{
	struct boot_image k = valid_image();

	put16(image + HDR_XLOADFLAGS, XLF_CAN_BE_LOADED_ABOVE_4G);
	expect_rejected(&k, "64-bit entry");
}

static void test_bzimage_rejects_truncated_payload(void **state)
{
	struct boot_image k = valid_image();
	char expect[80];

	k.size -= 1;
	snprintf(expect, sizeof(expect), "truncated: %u bytes, the header promises %u",
		 IMAGE_SIZE - 1, IMAGE_SIZE);
	expect_rejected(&k, expect);
}

static void test_bzimage_rejects_huge_syssize_without_overflow(void **state)
{
	struct boot_image k = valid_image();

	/* 0xffffffff * 16 does not fit in 32 bits: must not wrap to "fits". */
	put32(image + HDR_SYSSIZE, 0xffffffff);
	expect_rejected(&k, "truncated");
	put32(image + HDR_SYSSIZE, 0x10000000); /* * 16 == 2^32 */
	expect_rejected(&k, "truncated");
}

static void test_bzimage_rejects_setup_larger_than_file(void **state)
{
	struct boot_image k = valid_image();

	image[HDR_SETUP_SECTS] = 255; /* 128 KiB of setup in a 9 KiB file */
	put32(image + HDR_SYSSIZE, 0);
	expect_rejected(&k, "truncated");
}

static void test_bzimage_rejects_tiny_file(void **state)
{
	struct boot_image k = valid_image();

	k.size = HDR_INIT_SIZE + 3;
	expect_rejected(&k, "too small");
	k.size = 0;
	expect_rejected(&k, "0 bytes is too small");
}

static void test_bzimage_tiny_file_is_not_read_past_its_end(void **state)
{
	/* A heap copy exactly as long as the file, so ASan sees any overread. */
	struct boot_image v = valid_image();
	struct boot_image k = { .path = "tiny", .size = 16 };
	char why[160];

	k.data = malloc(k.size);
	assert_non_null(k.data);
	memcpy(k.data, v.data, k.size);
	assert_int_equal(bzimage__check(&k, why, sizeof(why)), -EINVAL);
	free(k.data);
}

/* --- boot__place_initrd ---------------------------------------------- */

static void test_initrd_placed_at_top(void **state)
{
	uint64_t gpa = 0;

	assert_int_equal(boot__place_initrd(0x1000000, 0x10000000, 0x200000, &gpa), 0);
	assert_int_equal(gpa, 0x10000000 - 0x200000);
}

static void test_initrd_placement_is_page_aligned_and_inside(void **state)
{
	uint64_t gpa = 0;

	/* Odd size and odd top: start rounds down to a page, end stays <= hi. */
	assert_int_equal(boot__place_initrd(0x1000000, 0x7fff123, 12345, &gpa), 0);
	assert_int_equal(gpa & 0xfff, 0);
	assert_true(gpa + 12345 <= 0x7fff123);
	assert_true(gpa >= 0x1000000);
	assert_true(gpa + 12345 + 0x1000 > 0x7fff123); /* as high as it can go */
}

static void test_initrd_exact_fit(void **state)
{
	uint64_t gpa = 0;

	assert_int_equal(boot__place_initrd(0x100000, 0x200000, 0x100000, &gpa), 0);
	assert_int_equal(gpa, 0x100000);
}

static void test_initrd_too_big_is_refused(void **state)
{
	uint64_t gpa = 0x1234;

	assert_int_equal(boot__place_initrd(0x100000, 0x200000, 0x100001, &gpa), -ENOSPC);
	assert_int_equal(boot__place_initrd(0x100000, 0x200000, UINT64_MAX, &gpa), -ENOSPC);
	/* Fits by size, but aligning down to a page would cross lo. */
	assert_int_equal(boot__place_initrd(0x100800, 0x200400, 0xffc00, &gpa), -ENOSPC);
	assert_int_equal(boot__place_initrd(0x200000, 0x200000, 1, &gpa), -ENOSPC);
	assert_int_equal(boot__place_initrd(0x300000, 0x200000, 1, &gpa), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bzimage_accepts_valid_header),
		cmocka_unit_test(test_bzimage_accepts_extra_bytes_after_payload),
		cmocka_unit_test(test_bzimage_accepts_protocol_2_12),
		cmocka_unit_test(test_bzimage_setup_sects_zero_means_four),
		cmocka_unit_test(test_bzimage_rejects_bad_boot_flag),
		cmocka_unit_test(test_bzimage_rejects_missing_hdrs),
		cmocka_unit_test(test_bzimage_rejects_protocol_older_than_2_12),
		cmocka_unit_test(test_bzimage_rejects_kernel_without_64bit_entry),
		cmocka_unit_test(test_bzimage_rejects_truncated_payload),
		cmocka_unit_test(test_bzimage_rejects_huge_syssize_without_overflow),
		cmocka_unit_test(test_bzimage_rejects_setup_larger_than_file),
		cmocka_unit_test(test_bzimage_rejects_tiny_file),
		cmocka_unit_test(test_bzimage_tiny_file_is_not_read_past_its_end),
		cmocka_unit_test(test_initrd_placed_at_top),
		cmocka_unit_test(test_initrd_placement_is_page_aligned_and_inside),
		cmocka_unit_test(test_initrd_exact_fit),
		cmocka_unit_test(test_initrd_too_big_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
