/* migration/snapshot_lazy.h — a lazy restore into guest RAM that other
 * processes map too (the paravisor's memfd), by userfaultfd: see
 * snapshot_lazy.c. */
#ifndef VMMD_MIGRATION_SNAPSHOT_LAZY_H
#define VMMD_MIGRATION_SNAPSHOT_LAZY_H

#include <stddef.h>
#include <stdint.h>

struct snapshot_lazy;

struct snapshot_lazy_ops {
	/* Every page of the file is in RAM (from the loader's thread). */
	void (*loaded)(void *opaque, uint64_t pages);
	/* The file could not be read: RAM is incomplete, and whatever touches
	 * a missing page waits for good; the VM must stop (why says why). */
	void (*failed)(void *opaque, const char *why);
	void *opaque;
};

/*
 * Empties mem_fd (ram is its shared mapping, size bytes), registers ram
 * with userfaultfd and starts a thread that fills each page from the
 * snapshot's memory file (dirfd's) as it is first touched (vCPUs through
 * KVM, vmm's own threads, the kernel on their behalf) and, meanwhile, the
 * rest in order; then it unregisters ram (holes left are zero pages, as in
 * the file) and calls ops->loaded.  Pages that other processes map (the
 * paravisor) are filled only by that thread: the caller keeps them from
 * touching RAM until loaded.  0 and *out, or negative errno with why.
 */
int snapshot_lazy__start(int dirfd, uint8_t *ram, uint64_t size, int mem_fd,
			 const struct snapshot_lazy_ops *ops, struct snapshot_lazy **out, char *why,
			 size_t wlen);
/* Waits until every page is loaded (or loading failed: negative errno). */
int snapshot_lazy__wait(struct snapshot_lazy *l);
/* Waits as above, then frees l. */
void snapshot_lazy__free(struct snapshot_lazy *l);

#endif
