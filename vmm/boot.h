/* vmm/boot.h — direct kernel boot: bzImage (Linux boot protocol, 64-bit
 * entry) and PVH ELF.  The loaders validate everything read from the files
 * and fail with a message naming the file and the problem. */
#ifndef VMMD_VMM_BOOT_H
#define VMMD_VMM_BOOT_H

#include <stddef.h>
#include <stdint.h>

struct vm;

struct boot_image {
	const char *path;
	uint8_t *data;
	size_t size;
};

struct vm_config;

enum boot_kind { BOOT_BZIMAGE, BOOT_PVH };

struct boot_files {
	enum boot_kind kind;
	struct boot_image kernel;
	struct boot_image initrd; /* data == NULL without --initrd */
	const char *cmdline;
};

/* Reads and validates kernel and initrd before any VM exists, so bad input
 * fails fast with one message naming the file.  Returns -EINVAL for bad input. */
int boot__open_files(const struct vm_config *cfg, struct boot_files *bf);
/* Places kernel, initrd and command line in guest RAM and sets vm->entry. */
int boot__load(struct vm *vm, struct boot_files *bf);
void boot__close_files(struct boot_files *bf);

/* Loader internals, exposed for unit tests. */
int boot__read_file(const char *path, struct boot_image *img, size_t max);
void boot__free(struct boot_image *img);
int bzimage__check(const struct boot_image *k, char *why, size_t whylen);
int bzimage__load(struct vm *vm, const struct boot_image *k,
		  const struct boot_image *initrd, const char *cmdline);
int pvh__check(const struct boot_image *k, uint32_t *entry, char *why, size_t whylen);
int pvh__load(struct vm *vm, const struct boot_image *k,
	      const struct boot_image *initrd, const char *cmdline);
/* Highest page-aligned address for an initrd of size bytes in [lo, hi). */
int boot__place_initrd(uint64_t lo, uint64_t hi, uint64_t size, uint64_t *gpa);

#endif
