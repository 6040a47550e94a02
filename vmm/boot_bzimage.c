/* vmm/boot_bzimage.c — the Linux x86 boot protocol: validate the setup
 * header, build the zero page with our e820 map, place the command line and
 * initrd, and enter the kernel's 64-bit entry point. */
#include "vmm/boot.h"
#include "vmm/boot_params.h"

#include "common/log.h"
#include "vmm/e820.h"
#include "vmm/layout.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

static size_t bzimage__setup_size(const uint8_t *d)
{
	unsigned int sects = d[HDR_SETUP_SECTS] ? d[HDR_SETUP_SECTS] : 4;

	return (size_t)(sects + 1) * 512;
}

int bzimage__check(const struct boot_image *k, char *why, size_t whylen)
{
	const uint8_t *d = k->data;
	size_t setup;
	uint16_t ver;

	if (k->size < HDR_INIT_SIZE + 4) {
		snprintf(why, whylen, "%zu bytes is too small for a boot sector and setup header",
			 k->size);
		return -EINVAL;
	}
	if (get16(d + HDR_BOOT_FLAG) != 0xaa55 || memcmp(d + HDR_MAGIC, "HdrS", 4) != 0) {
		snprintf(why, whylen, "no boot sector signature or HdrS setup header");
		return -EINVAL;
	}
	ver = get16(d + HDR_VERSION);
	if (ver < BZ_MIN_VERSION) {
		snprintf(why, whylen, "boot protocol %u.%02u is older than 2.12", (unsigned int)ver >> 8,
			 (unsigned int)ver & 0xff);
		return -EINVAL;
	}
	if (!(get16(d + HDR_XLOADFLAGS) & XLF_KERNEL_64)) {
		snprintf(why, whylen, "the kernel has no 64-bit entry point");
		return -EINVAL;
	}
	setup = bzimage__setup_size(d);
	if (setup >= k->size || (uint64_t)get32(d + HDR_SYSSIZE) * 16 > k->size - setup) {
		snprintf(why, whylen, "truncated: %zu bytes, the header promises %llu",
			 k->size, (unsigned long long)setup + (uint64_t)get32(d + HDR_SYSSIZE) * 16);
		return -EINVAL;
	}
	return 0;
}

static int bzimage__write_e820(struct vm *vm, uint8_t *zp)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	int n = e820__build(vm->ram_size, map, E820_MAX_ENTRIES);

	for (int i = 0; i < n; i++) {
		uint8_t *e = zp + BP_E820_TABLE + (size_t)i * 20;

		put64(e, map[i].addr);
		put64(e + 8, map[i].size);
		put32(e + 16, map[i].type);
	}
	zp[BP_E820_ENTRIES] = (uint8_t)n;
	return 0;
}

int bzimage__load(struct vm *vm, const struct boot_image *k,
		  const struct boot_image *initrd, const char *cmdline)
{
	const uint8_t *d = k->data;
	size_t setup = bzimage__setup_size(d), payload = k->size - setup;
	size_t hdr_end = 0x202 + d[HDR_JUMP + 1];
	uint64_t load = HIGH_MEMORY_START, init_size = get32(d + HDR_INIT_SIZE);
	uint64_t cmdline_max = get32(d + HDR_CMDLINE_SIZE), initrd_gpa = 0;
	size_t cmdlen = strlen(cmdline);
	uint8_t *zp;

	if (d[HDR_RELOCATABLE] && get64(d + HDR_PREF_ADDRESS) >= HIGH_MEMORY_START)
		load = get64(d + HDR_PREF_ADDRESS);
	if (init_size < payload)
		init_size = payload;
	if (load + init_size > vm->low_ram_size) {
		pr_err("kernel %s: needs %llu MiB from %llu MiB but --memory gives %llu MiB",
		       k->path, (unsigned long long)(init_size >> 20),
		       (unsigned long long)(load >> 20),
		       (unsigned long long)(vm->low_ram_size >> 20));
		return -EINVAL;
	}
	if (cmdline_max > BOOT_CMDLINE_MAX - 1 || !cmdline_max)
		cmdline_max = BOOT_CMDLINE_MAX - 1;
	if (cmdlen > cmdline_max) {
		pr_err("--cmdline: %zu bytes, the kernel accepts at most %llu", cmdlen,
		       (unsigned long long)cmdline_max);
		return -EINVAL;
	}
	if (hdr_end > BP_SIZE || hdr_end > k->size)
		hdr_end = k->size < BP_SIZE ? k->size : BP_SIZE;

	memcpy(guest_mem__translate(vm, load, payload), d + setup, payload);
	guest_mem__write(vm, BOOT_CMDLINE_GPA, cmdline, cmdlen + 1);

	if (initrd) {
		uint64_t lo = (load + init_size + 0xfff) & ~0xfffULL;
		uint64_t hi = (uint64_t)get32(d + HDR_INITRD_ADDR_MAX) + 1;

		if (hi > vm->low_ram_size)
			hi = vm->low_ram_size;
		if (boot__place_initrd(lo, hi, initrd->size, &initrd_gpa)) {
			pr_err("initrd %s: %zu MiB does not fit in guest RAM between %llu and %llu MiB (raise --memory)",
			       initrd->path, initrd->size >> 20, (unsigned long long)(lo >> 20),
			       (unsigned long long)(hi >> 20));
			return -EINVAL;
		}
		guest_mem__write(vm, initrd_gpa, initrd->data, initrd->size);
	}

	zp = guest_mem__translate(vm, BOOT_ZERO_PAGE_GPA, BP_SIZE);
	memset(zp, 0, BP_SIZE);
	memcpy(zp + HDR_SETUP_SECTS, d + HDR_SETUP_SECTS, hdr_end - HDR_SETUP_SECTS);
	zp[HDR_TYPE_OF_LOADER] = 0xff;
	zp[HDR_LOADFLAGS] |= LOADFLAG_CAN_USE_HEAP | LOADFLAG_LOADED_HIGH;
	put16(zp + HDR_VID_MODE, 0xffff); /* "normal" */
	put16(zp + HDR_HEAP_END_PTR, 0xfe00);
	put32(zp + HDR_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE_GPA);
	put32(zp + HDR_RAMDISK_IMAGE, (uint32_t)initrd_gpa);
	put32(zp + HDR_RAMDISK_SIZE, initrd ? (uint32_t)initrd->size : 0);
	put64(zp + BP_ACPI_RSDP_ADDR, vm->rsdp_gpa);
	bzimage__write_e820(vm, zp);

	vm->entry.long_mode = true;
	vm->entry.rip = load + BZ_ENTRY64_OFFSET;
	vm->entry.rsi = BOOT_ZERO_PAGE_GPA;
	pr_debug("bzImage: protocol %x, loaded at 0x%llx, initrd at 0x%llx", get16(d + HDR_VERSION),
		 (unsigned long long)load, (unsigned long long)initrd_gpa);
	return 0;
}
