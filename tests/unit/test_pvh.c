/* tests/unit/test_pvh.c — PVH ELF validation: synthetic ELF32/ELF64 images
 * with and without the Xen PHYS32_ENTRY note, and hostile headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/boot.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define ENTRY 0x1000123u
#define PHDR_OFF 0x40
#define NOTE_OFF 0x200
#define IMAGE_SIZE 0x400

struct image {
	uint8_t *data;
	size_t size;
};

/* A note record: namesz, descsz, type, name padded to 4, desc padded to 4. */
static size_t put_note(uint8_t *p, const char *name, uint32_t namesz, uint32_t type,
		       const void *desc, uint32_t descsz)
{
	size_t off = 12;

	memcpy(p, &namesz, 4);
	memcpy(p + 4, &descsz, 4);
	memcpy(p + 8, &type, 4);
	memcpy(p + off, name, namesz);
	off += (namesz + 3) & ~3u;
	memcpy(p + off, desc, descsz);
	off += (descsz + 3) & ~3u;
	return off;
}

/* Heap buffer of exactly the image's size, so ASan catches any overread. */
static struct image new_image(size_t size)
{
	struct image im = { calloc(1, size), size };

	assert_non_null(im.data);
	return im;
}

static void free_image(struct image *im)
{
	free(im->data);
	im->data = NULL;
}

static void elf64_header(uint8_t *d, uint16_t phnum)
{
	Elf64_Ehdr eh = { 0 };

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_entry = 0x1000000;
	eh.e_phoff = PHDR_OFF;
	eh.e_ehsize = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = phnum;
	memcpy(d, &eh, sizeof(eh));
}

static void elf64_phdr(uint8_t *d, int i, uint32_t type, uint64_t off, uint64_t sz)
{
	Elf64_Phdr ph = { 0 };

	ph.p_type = type;
	ph.p_offset = off;
	ph.p_paddr = ph.p_vaddr = 0x1000000;
	ph.p_filesz = ph.p_memsz = sz;
	ph.p_align = 4;
	memcpy(d + PHDR_OFF + i * sizeof(ph), &ph, sizeof(ph));
}

static void elf32_header(uint8_t *d, uint16_t phnum)
{
	Elf32_Ehdr eh = { 0 };

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_386;
	eh.e_version = EV_CURRENT;
	eh.e_entry = 0x1000000;
	eh.e_phoff = PHDR_OFF;
	eh.e_ehsize = sizeof(eh);
	eh.e_phentsize = sizeof(Elf32_Phdr);
	eh.e_phnum = phnum;
	memcpy(d, &eh, sizeof(eh));
}

static void elf32_phdr(uint8_t *d, int i, uint32_t type, uint32_t off, uint32_t sz)
{
	Elf32_Phdr ph = { 0 };

	ph.p_type = type;
	ph.p_offset = off;
	ph.p_paddr = ph.p_vaddr = 0x1000000;
	ph.p_filesz = ph.p_memsz = sz;
	ph.p_align = 4;
	memcpy(d + PHDR_OFF + i * sizeof(ph), &ph, sizeof(ph));
}

/* PT_LOAD, then a PT_NOTE holding an unrelated note followed by the entry. */
static struct image pvh_elf64(void)
{
	struct image im = new_image(IMAGE_SIZE);
	uint32_t entry = ENTRY, other = 7;
	size_t n;

	elf64_header(im.data, 2);
	elf64_phdr(im.data, 0, PT_LOAD, 0, IMAGE_SIZE);
	n = put_note(im.data + NOTE_OFF, "GNU", 4, 3, &other, 4);
	n += put_note(im.data + NOTE_OFF + n, "Xen", 4, XEN_ELFNOTE_PHYS32_ENTRY, &entry, 4);
	elf64_phdr(im.data, 1, PT_NOTE, NOTE_OFF, n);
	return im;
}

static struct image pvh_elf32(void)
{
	struct image im = new_image(IMAGE_SIZE);
	uint32_t entry = ENTRY;
	size_t n;

	elf32_header(im.data, 2);
	elf32_phdr(im.data, 0, PT_LOAD, 0, IMAGE_SIZE);
	n = put_note(im.data + NOTE_OFF, "Xen", 4, XEN_ELFNOTE_PHYS32_ENTRY, &entry, 4);
	elf32_phdr(im.data, 1, PT_NOTE, NOTE_OFF, n);
	return im;
}

static int check(struct image *im, uint32_t *entry, char *why, size_t whylen)
{
	struct boot_image k = { .path = "synthetic", .data = im->data, .size = im->size };

	return pvh__check(&k, entry, why, whylen);
}

static void expect_rejected(struct image *im, int err, const char *reason)
{
	char why[160] = "";
	uint32_t entry = 0;

	assert_int_equal(check(im, &entry, why, sizeof(why)), err);
	if (!strstr(why, reason))
		fail_msg("reason \"%s\" does not mention \"%s\"", why, reason);
}

static void test_pvh_elf64_note_gives_entry(void **state)
{
	struct image im = pvh_elf64();
	uint32_t entry = 0;
	char why[160];

	assert_int_equal(check(&im, &entry, why, sizeof(why)), 0);
	assert_int_equal(entry, ENTRY);
	free_image(&im);
}

static void test_pvh_elf32_note_gives_entry(void **state)
{
	struct image im = pvh_elf32();
	uint32_t entry = 0;
	char why[160];

	assert_int_equal(check(&im, &entry, why, sizeof(why)), 0);
	assert_int_equal(entry, ENTRY);
	free_image(&im);
}

static void test_pvh_without_note_is_enoexec(void **state)
{
	struct image im = pvh_elf64();

	elf64_header(im.data, 1); /* only the PT_LOAD */
	expect_rejected(&im, -ENOEXEC, "no PVH entry note");
	free_image(&im);
}

static void test_pvh_other_note_types_are_not_the_entry(void **state)
{
	struct image im = new_image(IMAGE_SIZE);
	uint32_t entry = ENTRY;
	size_t n;

	elf64_header(im.data, 1);
	/* Right type, wrong owner; right owner, wrong type. */
	n = put_note(im.data + NOTE_OFF, "Xem", 4, XEN_ELFNOTE_PHYS32_ENTRY, &entry, 4);
	n += put_note(im.data + NOTE_OFF + n, "Xen", 4, 17, &entry, 4);
	elf64_phdr(im.data, 0, PT_NOTE, NOTE_OFF, n);
	expect_rejected(&im, -ENOEXEC, "no PVH entry note");
	free_image(&im);
}

static void test_pvh_rejects_phdr_table_outside_file(void **state)
{
	struct image im = pvh_elf64();
	uint64_t off = IMAGE_SIZE - sizeof(Elf64_Phdr) + 1;

	memcpy(im.data + offsetof(Elf64_Ehdr, e_phoff), &off, 8);
	expect_rejected(&im, -EINVAL, "program header 0 lies outside the 1024-byte file");
	free_image(&im);
}

static void test_pvh_rejects_phdr_count_beyond_file(void **state)
{
	struct image im = pvh_elf64();

	elf64_header(im.data, 0xffff);
	elf64_phdr(im.data, 1, PT_NULL, 0, 0);
	/* Headers 2.. are zeros (PT_NULL) until the table runs off the end
	 * (or into the note bytes, which make no sense as a header). */
	expect_rejected(&im, -EINVAL, "lies outside");
	free_image(&im);
}

static void test_pvh_rejects_elf64_phoff_that_wraps(void **state)
{
	struct image im = pvh_elf64();
	uint64_t off = UINT64_MAX - 8; /* at + sizeof(Elf64_Phdr) wraps to 47 */

	memcpy(im.data + offsetof(Elf64_Ehdr, e_phoff), &off, 8);
	expect_rejected(&im, -EINVAL, "lies outside");
	free_image(&im);
}

static void test_pvh_rejects_elf32_phdr_table_outside_file(void **state)
{
	struct image im = pvh_elf32();
	uint32_t off = 0xfffffff0;

	memcpy(im.data + offsetof(Elf32_Ehdr, e_phoff), &off, 4);
	expect_rejected(&im, -EINVAL, "lies outside");
	free_image(&im);
}

/* pvh__load walks every program header, so all of them must be checked,
 * not only those before the note. */
static void test_pvh_rejects_bad_phdr_after_the_note(void **state)
{
	struct image im = pvh_elf64();
	Elf64_Phdr ph;

	/* Swap: note first, then a PT_LOAD whose bytes lie beyond the file. */
	memcpy(&ph, im.data + PHDR_OFF + sizeof(ph), sizeof(ph));
	memcpy(im.data + PHDR_OFF, &ph, sizeof(ph));
	elf64_phdr(im.data, 1, PT_LOAD, 0x100000, 0x1000);
	expect_rejected(&im, -EINVAL, "program header 1 lies outside");

	/* Or a header table that ends after the note. */
	elf64_phdr(im.data, 1, PT_LOAD, 0, IMAGE_SIZE);
	elf64_header(im.data, 0xffff);
	expect_rejected(&im, -EINVAL, "lies outside");
	free_image(&im);
}

static void test_pvh_rejects_segment_outside_file(void **state)
{
	struct image im = pvh_elf64();

	elf64_phdr(im.data, 1, PT_NOTE, NOTE_OFF, IMAGE_SIZE); /* runs past the end */
	expect_rejected(&im, -EINVAL, "program header 1 lies outside");
	elf64_phdr(im.data, 1, PT_NOTE, UINT64_MAX - 4, 16); /* offset + size wraps */
	expect_rejected(&im, -EINVAL, "program header 1 lies outside");
	free_image(&im);
}

static void test_pvh_huge_descsz_is_rejected_without_crash(void **state)
{
	struct image im = new_image(IMAGE_SIZE);
	uint32_t entry = ENTRY, descsz = 0xfffffffc;
	size_t n;

	elf64_header(im.data, 1);
	n = put_note(im.data + NOTE_OFF, "Xen", 4, XEN_ELFNOTE_PHYS32_ENTRY, &entry, 4);
	memcpy(im.data + NOTE_OFF + 4, &descsz, 4);
	elf64_phdr(im.data, 0, PT_NOTE, NOTE_OFF, n);
	expect_rejected(&im, -ENOEXEC, "no PVH entry note");

	descsz = 0xffffffff; /* rounding up must not wrap to 0 */
	memcpy(im.data + NOTE_OFF + 4, &descsz, 4);
	expect_rejected(&im, -ENOEXEC, "no PVH entry note");
	free_image(&im);
}

static void test_pvh_huge_namesz_is_rejected_without_crash(void **state)
{
	struct image im = new_image(IMAGE_SIZE);
	uint32_t entry = ENTRY, namesz = 0xffffffff;
	size_t n;

	elf64_header(im.data, 1);
	n = put_note(im.data + NOTE_OFF, "Xen", 4, XEN_ELFNOTE_PHYS32_ENTRY, &entry, 4);
	memcpy(im.data + NOTE_OFF, &namesz, 4);
	elf64_phdr(im.data, 0, PT_NOTE, NOTE_OFF, n);
	expect_rejected(&im, -ENOEXEC, "no PVH entry note");
	free_image(&im);
}

static void test_pvh_short_descsz_is_not_the_entry(void **state)
{
	struct image im = new_image(IMAGE_SIZE);
	uint16_t entry16 = 0x1234;
	size_t n;

	elf64_header(im.data, 1);
	n = put_note(im.data + NOTE_OFF, "Xen", 4, XEN_ELFNOTE_PHYS32_ENTRY, &entry16, 2);
	elf64_phdr(im.data, 0, PT_NOTE, NOTE_OFF, n);
	expect_rejected(&im, -ENOEXEC, "no PVH entry note");
	free_image(&im);
}

static void test_pvh_note_at_end_of_file_is_not_overread(void **state)
{
	/* The note segment is the file's last bytes and is one byte short. */
	struct image im = new_image(NOTE_OFF + 20 - 1);
	uint8_t note[20];
	uint32_t entry = ENTRY;

	elf64_header(im.data, 1);
	put_note(note, "Xen", 4, XEN_ELFNOTE_PHYS32_ENTRY, &entry, 4);
	memcpy(im.data + NOTE_OFF, note, 19);
	elf64_phdr(im.data, 0, PT_NOTE, NOTE_OFF, 19);
	expect_rejected(&im, -ENOEXEC, "no PVH entry note");
	free_image(&im);
}

static void test_pvh_rejects_non_elf(void **state)
{
	struct image im = new_image(IMAGE_SIZE);

	memcpy(im.data, "MZ\x90\0", 4);
	expect_rejected(&im, -EINVAL, "not an ELF file");
	free_image(&im);

	im = new_image(3);
	memcpy(im.data, ELFMAG, 3);
	expect_rejected(&im, -EINVAL, "not an ELF file");
	free_image(&im);
}

static void test_pvh_rejects_unknown_class_big_endian_and_truncated(void **state)
{
	struct image im = pvh_elf64();

	im.data[EI_CLASS] = 3;
	expect_rejected(&im, -EINVAL, "unknown ELF class 3");
	im.data[EI_CLASS] = ELFCLASS64;
	im.data[EI_DATA] = ELFDATA2MSB;
	expect_rejected(&im, -EINVAL, "big-endian");
	free_image(&im);

	/* ELF64 identity but shorter than an Elf64_Ehdr. */
	im = new_image(sizeof(Elf64_Ehdr) - 1);
	memcpy(im.data, ELFMAG, SELFMAG);
	im.data[EI_CLASS] = ELFCLASS64;
	im.data[EI_DATA] = ELFDATA2LSB;
	expect_rejected(&im, -EINVAL, "truncated");
	free_image(&im);
}

static void test_pvh_rejects_no_program_headers(void **state)
{
	struct image im = pvh_elf32();

	elf32_header(im.data, 0);
	expect_rejected(&im, -EINVAL, "no program headers");
	free_image(&im);
}

static void test_pvh_accepts_tiny_guest(void **state)
{
	const char *dir = getenv("VMMD_BUILDDIR");
	struct boot_image k;
	char path[4096], why[160] = "";
	uint32_t entry = 0;

	if (!dir) {
		skip();
		return;
	}
	snprintf(path, sizeof(path), "%s/tests/guest/tiny/tiny.elf", dir);
	if (boot__read_file(path, &k, 64 << 20)) {
		skip();
		return;
	}
	if (pvh__check(&k, &entry, why, sizeof(why)))
		fail_msg("%s: %s", path, why);
	assert_true(entry >= 0x100000); /* loaders put nothing below 1 MiB */
	/* tiny.ld's ENTRY() and the note both name pvh_start. */
	if (k.data[EI_CLASS] == ELFCLASS32) {
		Elf32_Ehdr eh;

		memcpy(&eh, k.data, sizeof(eh));
		assert_int_equal(entry, eh.e_entry);
	}
	boot__free(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pvh_elf64_note_gives_entry),
		cmocka_unit_test(test_pvh_elf32_note_gives_entry),
		cmocka_unit_test(test_pvh_without_note_is_enoexec),
		cmocka_unit_test(test_pvh_other_note_types_are_not_the_entry),
		cmocka_unit_test(test_pvh_rejects_phdr_table_outside_file),
		cmocka_unit_test(test_pvh_rejects_phdr_count_beyond_file),
		cmocka_unit_test(test_pvh_rejects_elf32_phdr_table_outside_file),
		cmocka_unit_test(test_pvh_rejects_bad_phdr_after_the_note),
		cmocka_unit_test(test_pvh_rejects_segment_outside_file),
		cmocka_unit_test(test_pvh_huge_descsz_is_rejected_without_crash),
		cmocka_unit_test(test_pvh_huge_namesz_is_rejected_without_crash),
		cmocka_unit_test(test_pvh_short_descsz_is_not_the_entry),
		cmocka_unit_test(test_pvh_note_at_end_of_file_is_not_overread),
		cmocka_unit_test(test_pvh_rejects_non_elf),
		cmocka_unit_test(test_pvh_rejects_unknown_class_big_endian_and_truncated),
		cmocka_unit_test(test_pvh_rejects_no_program_headers),
		cmocka_unit_test(test_pvh_accepts_tiny_guest),
		/* Last: before the fix, ASan aborts the whole program here. */
		cmocka_unit_test(test_pvh_rejects_elf64_phoff_that_wraps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
