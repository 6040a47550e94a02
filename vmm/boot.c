/* vmm/boot.c — picks the loader by the kernel file's magic. */
#include "vmm/boot.h"

#include "common/log.h"
#include "vmm/config.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_KERNEL_SIZE (256ULL << 20)

void boot__free(struct boot_image *img)
{
	free(img->data);
	img->data = NULL;
	img->size = 0;
}

int boot__read_file(const char *path, struct boot_image *img, size_t max)
{
	struct stat st;
	size_t off = 0;
	int fd, err = 0;

	memset(img, 0, sizeof(*img));
	img->path = path;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EISDIR;
		goto out_close;
	}
	if ((uint64_t)st.st_size > max) {
		err = -EFBIG;
		goto out_close;
	}
	img->size = (size_t)st.st_size;
	img->data = malloc(img->size ? img->size : 1);
	if (!img->data) {
		err = -ENOMEM;
		goto out_close;
	}
	while (off < img->size) {
		ssize_t n = read(fd, img->data + off, img->size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			boot__free(img);
			goto out_close;
		}
		off += (size_t)n;
	}
out_close:
	close(fd);
	return err;
}

int boot__place_initrd(uint64_t lo, uint64_t hi, uint64_t size, uint64_t *gpa)
{
	uint64_t addr;

	if (hi <= lo || size > hi - lo)
		return -ENOSPC;
	addr = (hi - size) & ~0xfffULL;
	if (addr < lo)
		return -ENOSPC;
	*gpa = addr;
	return 0;
}

static int boot__open(const char *what, const char *path, struct boot_image *img,
		      size_t max)
{
	int err = boot__read_file(path, img, max);

	if (err == -EFBIG)
		pr_err("%s %s: larger than %zu MiB%s", what, path, max >> 20,
		       strcmp(what, "initrd") ? "" : ", the whole guest RAM (raise --memory)");
	else if (err == -EISDIR)
		pr_err("%s %s: not a regular file", what, path);
	else if (err)
		pr_err("%s %s: %s", what, path, strerror(-err));
	return err ? -EINVAL : 0;
}

void boot__close_files(struct boot_files *bf)
{
	boot__free(&bf->kernel);
	boot__free(&bf->initrd);
}

int boot__open_files(const struct vm_config *cfg, struct boot_files *bf)
{
	static const uint8_t elf_magic[4] = { 0x7f, 'E', 'L', 'F' };
	uint32_t entry;
	char why[160];
	int err;

	memset(bf, 0, sizeof(*bf));
	bf->cmdline = cfg->cmdline ? cfg->cmdline : "console=ttyS0";
	err = boot__open("kernel", cfg->kernel, &bf->kernel, MAX_KERNEL_SIZE);
	if (err)
		return err;
	if (bf->kernel.size >= 4 && !memcmp(bf->kernel.data, elf_magic, 4)) {
		bf->kind = BOOT_PVH;
		err = pvh__check(&bf->kernel, &entry, why, sizeof(why));
		if (err)
			pr_err("kernel %s: not a bootable PVH ELF: %s", cfg->kernel, why);
	} else {
		bf->kind = BOOT_BZIMAGE;
		err = bzimage__check(&bf->kernel, why, sizeof(why));
		if (err)
			pr_err("kernel %s: not a bzImage or PVH ELF image: %s", cfg->kernel, why);
	}
	if (!err && cfg->initrd) {
		err = boot__open("initrd", cfg->initrd, &bf->initrd, cfg->mem_size);
	}
	if (err) {
		boot__close_files(bf);
		return -EINVAL;
	}
	return 0;
}

int boot__load(struct vm *vm, struct boot_files *bf)
{
	const struct boot_image *initrd = bf->initrd.data ? &bf->initrd : NULL;

	if (bf->kind == BOOT_PVH)
		return pvh__load(vm, &bf->kernel, initrd, bf->cmdline);
	return bzimage__load(vm, &bf->kernel, initrd, bf->cmdline);
}
