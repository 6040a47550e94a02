/* vmm/dirty_ring.c — KVM's per-vCPU dirty ring (KVM_CAP_DIRTY_LOG_RING).
 *
 * With the ring, KVM pushes each page a vCPU dirties as one entry into that
 * vCPU's ring instead of setting a bit in a per-slot bitmap: a fetch costs
 * what was dirtied, not the size of RAM, and clearing is one ioctl.  It must
 * be enabled before the first vCPU exists, so vm__create() asks for it up
 * front (it costs nothing while no slot logs).  A vCPU whose ring fills
 * exits with KVM_EXIT_DIRTY_RING_FULL and empties it itself into
 * vm->ring_dirty, which the next fetch takes along. */
#include "vmm/dirty_ring.h"

#include "common/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* 16 Ki entries of 16 bytes: 256 KiB per vCPU, 64 MiB of writes between
 * two fetches before a vCPU has to stop and empty its ring. */
#define DIRTY_RING_WANT_BYTES (16384 * sizeof(struct kvm_dirty_gfn))

int dirty_ring__enable(struct vm *vm)
{
	enum dirty_log_mode mode = vm->cfg->dirty_log;
	struct kvm_enable_cap cap = {.cap = KVM_CAP_DIRTY_LOG_RING};
	int max;
	size_t bytes = DIRTY_RING_WANT_BYTES;

	if (mode == DIRTY_LOG_BITMAP)
		return 0;
	/* kvm_pvm (the host KVM of our own lab machine, 6.18) let a vCPU run
	 * past its ring's soft limit until the ring overflowed, after which it
	 * exited "full" forever with nothing left to harvest. */
	if (mode == DIRTY_LOG_AUTO && access("/sys/module/kvm_pvm", F_OK) == 0) {
		pr_debug("kvm_pvm: migration uses the dirty bitmap (its dirty ring overflows)");
		return 0;
	}
	max = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING);
	if (max <= 0) {
		if (mode == DIRTY_LOG_RING) {
			pr_err("--dirty-log ring: this host's KVM has no dirty ring "
			       "(KVM_CAP_DIRTY_LOG_RING); use --dirty-log bitmap");
			return -ENOTSUP;
		}
		pr_debug("KVM has no dirty ring: migration uses the dirty bitmap");
		return 0;
	}
	if ((size_t)max < bytes)
		bytes = (size_t)max;
	cap.args[0] = bytes;
	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
		int err = -errno;

		if (mode == DIRTY_LOG_RING) {
			pr_err("--dirty-log ring: KVM_ENABLE_CAP(DIRTY_LOG_RING, %zu): %s", bytes,
			       strerror(errno));
			return err;
		}
		pr_debug("KVM refused a dirty ring of %zu bytes (%s): using the bitmap", bytes,
			 strerror(errno));
		return 0;
	}
	vm->ring_dirty = calloc((vm->ram_size / 4096 + 63) / 64, 8);
	if (!vm->ring_dirty)
		return -ENOMEM;
	vm->dirty_ring_entries = (uint32_t)(bytes / sizeof(struct kvm_dirty_gfn));
	return 0;
}

int dirty_ring__map(struct vcpu *v)
{
	struct vm *vm = v->vm;
	size_t len = (size_t)vm->dirty_ring_entries * sizeof(struct kvm_dirty_gfn);
	void *p;

	if (!vm->dirty_ring_entries)
		return 0;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd,
		 KVM_DIRTY_LOG_PAGE_OFFSET * sysconf(_SC_PAGESIZE));
	if (p == MAP_FAILED) {
		pr_err("vCPU %u: mapping its dirty ring: %s", v->id, strerror(errno));
		return -errno;
	}
	v->ring = p;
	pthread_mutex_init(&v->ring_lock, NULL);
	return 0;
}

void dirty_ring__unmap(struct vcpu *v)
{
	if (v->ring)
		munmap(v->ring, (size_t)v->vm->dirty_ring_entries * sizeof(struct kvm_dirty_gfn));
	v->ring = NULL;
}

/* Slot 0 maps RAM from offset 0, slot 1 from low_ram_size (see vm.c). */
static bool dirty_ring__page(struct vm *vm, uint32_t slot, uint64_t gfn, uint64_t *page)
{
	uint64_t low = vm->low_ram_size / 4096, all = vm->ram_size / 4096;

	if (slot == 0 && gfn < low)
		*page = gfn;
	else if (slot == 1 && gfn < all - low)
		*page = low + gfn;
	else
		return false;
	return true;
}

/* Moves v's dirty entries into vm->ring_dirty and hands them back to KVM
 * (the reset ioctl re-protects those pages for the next round). */
static unsigned int dirty_ring__collect(struct vcpu *v)
{
	struct vm *vm = v->vm;
	unsigned int n = 0;

	pthread_mutex_lock(&v->ring_lock);
	for (;;) {
		struct kvm_dirty_gfn *e = &v->ring[v->ring_fetch % vm->dirty_ring_entries];
		uint64_t page;

		if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_DIRTY))
			break;
		if (dirty_ring__page(vm, e->slot, e->offset, &page))
			__atomic_fetch_or(&vm->ring_dirty[page / 64], 1ULL << (page % 64),
					  __ATOMIC_RELAXED);
		else
			pr_warn("vCPU %u: dirty ring entry for slot %u page %llu, outside RAM",
				v->id, e->slot, (unsigned long long)e->offset);
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		v->ring_fetch++;
		n++;
	}
	pthread_mutex_unlock(&v->ring_lock);
	return n;
}

int dirty_ring__harvest(struct vm *vm, struct vcpu *only)
{
	unsigned int n = 0;

	if (only) {
		n = dirty_ring__collect(only);
		/* Full with nothing in it, again and again: KVM's ring is
		 * broken (seen on kvm_pvm); spinning here helps no one. */
		only->ring_idle_fulls = n ? 0 : only->ring_idle_fulls + 1;
		if (only->ring_idle_fulls > 100000) {
			pr_err("vCPU %u: KVM reports its dirty ring full but it holds no entries; "
			       "run this VM with --dirty-log bitmap",
			       only->id);
			return -EIO;
		}
	} else
		for (unsigned int i = 0; i < vm->nr_cpus; i++)
			n += dirty_ring__collect(vm->vcpus[i]);
	/* Even with nothing collected here: a full vCPU may find its entries
	 * already taken by another thread that has not reset them yet. */
	if ((n || only) && ioctl(vm->vm_fd, KVM_RESET_DIRTY_RINGS, 0) < 0) {
		pr_err("KVM_RESET_DIRTY_RINGS: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

int dirty_ring__fetch(struct vm *vm, uint64_t *bitmap)
{
	uint64_t words = (vm->ram_size / 4096 + 63) / 64;
	int err = dirty_ring__harvest(vm, NULL);

	if (err)
		return err;
	for (uint64_t i = 0; i < words; i++)
		bitmap[i] |= __atomic_exchange_n(&vm->ring_dirty[i], 0, __ATOMIC_ACQ_REL);
	return 0;
}
