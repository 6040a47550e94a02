/* vmm/boot_pvh.c — PVH boot of an ELF image: load its PT_LOAD segments at
 * their physical addresses, find the XEN_ELFNOTE_PHYS32_ENTRY note, and hand
 * the kernel an hvm_start_info with the memory map, command line and initrd. */
#include "vmm/boot.h"

#include "common/log.h"
#include "vmm/e820.h"
#include "vmm/layout.h"
#include "vmm/vm.h"

#include <elf.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578
#define PVH_MODLIST_GPA (BOOT_PVH_INFO_GPA + 0x100)

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

/* A uniform view of 32- and 64-bit program headers. */
struct pvh_phdr {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz;
};

static int pvh__phdr(const struct boot_image *k, int i, struct pvh_phdr *ph)
{
	const uint8_t *d = k->data;
	uint64_t at;

	/* memcpy, not casts: nothing says the file's headers are aligned. */
	if (d[EI_CLASS] == ELFCLASS64) {
		Elf64_Ehdr eh;
		Elf64_Phdr p;

		memcpy(&eh, d, sizeof(eh));
		at = eh.e_phoff + (uint64_t)i * sizeof(p);
		if (at < eh.e_phoff || at > k->size || k->size - at < sizeof(p))
			return -EINVAL;
		memcpy(&p, d + at, sizeof(p));
		*ph = (struct pvh_phdr){ p.p_type, p.p_offset, p.p_paddr, p.p_filesz, p.p_memsz };
	} else {
		Elf32_Ehdr eh;
		Elf32_Phdr p;

		memcpy(&eh, d, sizeof(eh));
		at = eh.e_phoff + (uint64_t)i * sizeof(p);
		if (at + sizeof(p) > k->size)
			return -EINVAL;
		memcpy(&p, d + at, sizeof(p));
		*ph = (struct pvh_phdr){ p.p_type, p.p_offset, p.p_paddr, p.p_filesz, p.p_memsz };
	}
	if (ph->offset + ph->filesz < ph->offset || ph->offset + ph->filesz > k->size ||
	    ph->filesz > ph->memsz)
		return -EINVAL;
	return 0;
}

static int pvh__nr_phdrs(const struct boot_image *k)
{
	const uint8_t *d = k->data;

	uint16_t n;

	/* e_phnum sits at a different offset in each class. */
	if (d[EI_CLASS] == ELFCLASS64)
		memcpy(&n, d + offsetof(Elf64_Ehdr, e_phnum), 2);
	else
		memcpy(&n, d + offsetof(Elf32_Ehdr, e_phnum), 2);
	return n;
}

static bool pvh__find_entry(const uint8_t *note, uint64_t len, uint32_t *entry)
{
	uint64_t off = 0;

	while (off + 12 <= len) {
		uint32_t namesz, descsz, type;

		memcpy(&namesz, note + off, 4);
		memcpy(&descsz, note + off + 4, 4);
		memcpy(&type, note + off + 8, 4);
		uint64_t name_off = off + 12;
		uint64_t desc_off = name_off + (((uint64_t)namesz + 3) & ~3ULL);
		uint64_t next = desc_off + (((uint64_t)descsz + 3) & ~3ULL);

		if (next > len || next <= off)
			return false;
		if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 &&
		    memcmp(note + name_off, "Xen", 4) == 0 && descsz >= 4) {
			memcpy(entry, note + desc_off, 4);
			return true;
		}
		off = next;
	}
	return false;
}

int pvh__check(const struct boot_image *k, uint32_t *entry, char *why, size_t whylen)
{
	const uint8_t *d = k->data;
	bool found = false;
	size_t ehsize;
	int n;

	if (k->size < EI_NIDENT || memcmp(d, ELFMAG, SELFMAG) != 0) {
		snprintf(why, whylen, "not an ELF file");
		return -EINVAL;
	}
	if (d[EI_CLASS] != ELFCLASS64 && d[EI_CLASS] != ELFCLASS32) {
		snprintf(why, whylen, "unknown ELF class %u", d[EI_CLASS]);
		return -EINVAL;
	}
	ehsize = d[EI_CLASS] == ELFCLASS64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	if (k->size < ehsize || d[EI_DATA] != ELFDATA2LSB) {
		snprintf(why, whylen, "truncated or big-endian ELF header");
		return -EINVAL;
	}
	n = pvh__nr_phdrs(k);
	if (!n) {
		snprintf(why, whylen, "no program headers");
		return -EINVAL;
	}
	for (int i = 0; i < n; i++) {
		struct pvh_phdr ph;

		if (pvh__phdr(k, i, &ph)) {
			snprintf(why, whylen, "program header %d lies outside the %zu-byte file",
				 i, k->size);
			return -EINVAL;
		}
		/* Keep going after the note: pvh__load uses every header. */
		if (!found && ph.type == PT_NOTE)
			found = pvh__find_entry(d + ph.offset, ph.filesz, entry);
	}
	if (found)
		return 0;
	snprintf(why, whylen, "no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); a kernel needs CONFIG_PVH");
	return -ENOEXEC;
}

static int pvh__write_start_info(struct vm *vm, const struct boot_image *initrd,
				 uint64_t initrd_gpa)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	struct hvm_memmap_entry mm[E820_MAX_ENTRIES];
	struct hvm_start_info si = {
		.magic = HVM_START_MAGIC,
		.version = 1,
		.cmdline_paddr = BOOT_CMDLINE_GPA,
		.rsdp_paddr = vm->rsdp_gpa,
		.memmap_paddr = BOOT_PVH_MEMMAP_GPA,
	};
	int n = e820__build(vm->ram_size, map, E820_MAX_ENTRIES);

	for (int i = 0; i < n; i++)
		mm[i] = (struct hvm_memmap_entry){ map[i].addr, map[i].size, map[i].type, 0 };
	si.memmap_entries = (uint32_t)n;
	if (initrd) {
		struct hvm_modlist_entry mod = { initrd_gpa, initrd->size, 0, 0 };

		si.nr_modules = 1;
		si.modlist_paddr = PVH_MODLIST_GPA;
		guest_mem__write(vm, PVH_MODLIST_GPA, &mod, sizeof(mod));
	}
	guest_mem__write(vm, BOOT_PVH_MEMMAP_GPA, mm, sizeof(mm[0]) * (size_t)n);
	return guest_mem__write(vm, BOOT_PVH_INFO_GPA, &si, sizeof(si));
}

int pvh__load(struct vm *vm, const struct boot_image *k,
	      const struct boot_image *initrd, const char *cmdline)
{
	uint64_t top = 0, initrd_gpa = 0;
	uint32_t entry = 0;
	char why[160];
	int n;

	if (pvh__check(k, &entry, why, sizeof(why))) {
		pr_err("kernel %s: not a bootable PVH ELF: %s", k->path, why);
		return -EINVAL;
	}
	if (strlen(cmdline) >= BOOT_CMDLINE_MAX) {
		pr_err("--cmdline: longer than %llu bytes", BOOT_CMDLINE_MAX - 1);
		return -EINVAL;
	}
	n = pvh__nr_phdrs(k);
	for (int i = 0; i < n; i++) {
		struct pvh_phdr ph;
		uint8_t *dst;

		if (pvh__phdr(k, i, &ph))
			return -EINVAL; /* pvh__check has already refused this */
		if (ph.type != PT_LOAD || !ph.memsz)
			continue;
		dst = ph.paddr >= HIGH_MEMORY_START ?
			      guest_mem__translate(vm, ph.paddr, ph.memsz) : NULL;
		if (!dst) {
			pr_err("kernel %s: segment %d at 0x%llx+0x%llx is outside guest RAM from 1 MiB (raise --memory?)",
			       k->path, i, (unsigned long long)ph.paddr,
			       (unsigned long long)ph.memsz);
			return -EINVAL;
		}
		memcpy(dst, k->data + ph.offset, ph.filesz);
		memset(dst + ph.filesz, 0, ph.memsz - ph.filesz);
		if (ph.paddr + ph.memsz > top)
			top = ph.paddr + ph.memsz;
	}
	if (entry < HIGH_MEMORY_START || entry >= top) {
		pr_err("kernel %s: PVH entry 0x%x is not inside a loaded segment", k->path, entry);
		return -EINVAL;
	}
	if (initrd) {
		if (boot__place_initrd((top + 0xfff) & ~0xfffULL, vm->low_ram_size,
				       initrd->size, &initrd_gpa)) {
			pr_err("initrd %s: %zu MiB does not fit in guest RAM above the kernel (raise --memory)",
			       initrd->path, initrd->size >> 20);
			return -EINVAL;
		}
		guest_mem__write(vm, initrd_gpa, initrd->data, initrd->size);
	}
	guest_mem__write(vm, BOOT_CMDLINE_GPA, cmdline, strlen(cmdline) + 1);
	pvh__write_start_info(vm, initrd, initrd_gpa);
	vm->entry.long_mode = false;
	vm->entry.rip = entry;
	vm->entry.rbx = BOOT_PVH_INFO_GPA;
	return 0;
}
