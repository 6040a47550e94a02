/* vmm/vm.c — the KVM VM: /dev/kvm, guest RAM in a memfd, in-kernel irqchip
 * and PIT, and the stop protocol shared by vCPUs, devices and signals. */
#include "vmm/vm.h"

#include "common/log.h"
#include "common/why.h"
#include "vmm/dirty_ring.h"
#include "vmm/vhost_log.h"
#include "vmm/layout.h"
#include "vmm/vcpu.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; glibc 2.36's headers lack it */
#endif

/* Two pages below the BIOS area that Intel VMX needs for real-mode guests. */
#define KVM_TSS_GPA 0xfffbd000ULL
#define KVM_IDENTITY_MAP_GPA 0xfffbc000ULL

static int vm__open_kvm(struct vm *vm)
{
	int ver;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int err = -errno;

		pr_err("/dev/kvm: %s%s", strerror(errno),
		       errno == ENOENT || errno == ENODEV ?
			       " (KVM is not available on this host; tests/lab/run provides a nested one)" :
			       "");
		return err;
	}
	ver = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (ver != KVM_API_VERSION) {
		pr_err("/dev/kvm: API version %d, need %d", ver, KVM_API_VERSION);
		return -ENOTSUP;
	}
	vm->vcpu_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->vcpu_mmap_size <= 0) {
		pr_err("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static int vm__check_limits(struct vm *vm)
{
	int max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);

	if (max_vcpus <= 0)
		max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max_vcpus > 0 && vm->nr_cpus > (unsigned int)max_vcpus) {
		pr_err("--cpus %u: above this host's KVM limit of %d vCPUs", vm->nr_cpus,
		       max_vcpus);
		return -E2BIG;
	}
	return 0;
}

static int vm__set_slot(struct vm *vm, uint32_t slot, uint64_t gpa, uint64_t size,
			void *hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = vm->dirty_logging ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
	};

	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		pr_err("KVM_SET_USER_MEMORY_REGION slot %u: %s", slot, strerror(errno));
		return -errno;
	}
	return 0;
}

int (*vm__restore_hook)(struct vm *vm, const char *dir, bool lazy);
int (*vm__incoming_hook)(struct vm *vm);
void (*vm__incoming_started_hook)(struct vm *vm);

/* Slot i maps RAM from offset slot_off[i]: 0, then low_ram_size. */
static int vm__set_ram_slots(struct vm *vm)
{
	int err = vm__set_slot(vm, 0, 0, vm->low_ram_size, vm->ram);

	if (!err && vm->ram_size > vm->low_ram_size)
		err = vm__set_slot(vm, 1, RAM_ABOVE_4G, vm->ram_size - vm->low_ram_size,
				   vm->ram + vm->low_ram_size);
	return err;
}

int vm__dirty_log(struct vm *vm, bool on, char *why, size_t whylen)
{
	int err;

	/* The paravisors first: if one cannot log, KVM's log is not started. */
	if (on) {
		err = vhost_log__enable(vm, true, why, whylen);
		if (err)
			return err;
	}
	vm->dirty_logging = on;
	err = vm__set_ram_slots(vm);
	if (err)
		why__set(why, whylen, err, "KVM cannot %s logging the RAM's dirty pages: %s",
			 on ? "start" : "stop", strerror(-err));
	if (err || !on)
		vhost_log__enable(vm, false, NULL, 0);
	return err;
}

static int vm__kvm_dirty_log_fetch(struct vm *vm, uint64_t *bitmap);

int vm__dirty_log_fetch(struct vm *vm, uint64_t *bitmap)
{
	int err = vm__kvm_dirty_log_fetch(vm, bitmap);

	if (!err)
		vhost_log__fetch(vm, bitmap);
	return err;
}

/* KVM_GET_DIRTY_LOG returns and clears each slot's bitmap; slot 1 starts at
 * low_ram_size (3 GiB, a multiple of 64 pages), so its words OR in whole. */
static int vm__kvm_dirty_log_fetch(struct vm *vm, uint64_t *bitmap)
{
	uint64_t low_pages = vm->low_ram_size >> 12;
	uint64_t high_pages = (vm->ram_size - vm->low_ram_size) >> 12;
	uint64_t *tmp = calloc((low_pages > high_pages ? low_pages : high_pages) / 64 + 1, 8);
	struct kvm_dirty_log log = { .slot = 0, .dirty_bitmap = tmp };
	int err = 0;

	if (vm->dirty_ring_entries) {
		free(tmp);
		return dirty_ring__fetch(vm, bitmap);
	}
	if (!tmp)
		return -ENOMEM;
	if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
		err = -errno;
		goto out;
	}
	for (uint64_t i = 0; i < (low_pages + 63) / 64; i++)
		bitmap[i] |= tmp[i];
	if (high_pages) {
		memset(tmp, 0, (high_pages + 63) / 64 * 8);
		log.slot = 1;
		if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
			err = -errno;
			goto out;
		}
		for (uint64_t i = 0; i < (high_pages + 63) / 64; i++)
			bitmap[low_pages / 64 + i] |= tmp[i];
	}
out:
	free(tmp);
	return err;
}

const char *vm__dirty_log_kind(const struct vm *vm)
{
	return vm->dirty_ring_entries ? "ring" : "bitmap";
}

/* --prefault: every page allocated now rather than on the guest's (or a
 * migration's) first write to it; huge where MADV_HUGEPAGE got them. */
int vm__prefault_ram(struct vm *vm)
{
	if (!madvise(vm->ram, vm->ram_size, MADV_POPULATE_WRITE))
		return 0;
	if (errno == EINVAL && !fallocate(vm->mem_fd, 0, 0, (off_t)vm->ram_size))
		return 0; /* kernels before 5.14: no MADV_POPULATE_WRITE */
	pr_err("--prefault: cannot allocate %lluM of guest RAM: %s",
	       (unsigned long long)(vm->ram_size / SZ_1M), strerror(errno));
	return -ENOMEM;
}

/* One memfd holds all RAM so the paravisor and a servicing successor can map
 * the very same pages; it is split around the PCI hole only in GPA space. */
static int vm__init_ram(struct vm *vm)
{
	int err;

	vm->mem_fd = memfd_create("vmm-guest-ram", MFD_CLOEXEC);
	if (vm->mem_fd < 0) {
		pr_err("memfd_create: %s", strerror(errno));
		return -errno;
	}
	if (ftruncate(vm->mem_fd, (off_t)vm->ram_size) < 0) {
		pr_err("guest RAM of %lluM: %s", (unsigned long long)(vm->ram_size / SZ_1M),
		       strerror(errno));
		return -errno;
	}
	vm->ram = mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_NORESERVE, vm->mem_fd, 0);
	if (vm->ram == MAP_FAILED) {
		vm->ram = NULL;
		pr_err("mmap guest RAM: %s", strerror(errno));
		return -errno;
	}
	/* Huge pages where the host allows them for shmem (transparent_hugepage/
	 * shmem_enabled = advise): far fewer EPT faults and TLB misses. */
	madvise(vm->ram, vm->ram_size, MADV_HUGEPAGE);
	if (vm->cfg->prefault) {
		err = vm__prefault_ram(vm);
		if (err)
			return err;
	}
	vm->low_ram_size = vm->ram_size < PCI_HOLE_START ? vm->ram_size : PCI_HOLE_START;
	err = vm__set_ram_slots(vm);
	if (err)
		return err;
	vm->mem.r[vm->mem.nr++] = (struct guest_mem_region){ 0, vm->low_ram_size, vm->ram };
	if (vm->ram_size > vm->low_ram_size)
		vm->mem.r[vm->mem.nr++] = (struct guest_mem_region){
			RAM_ABOVE_4G, vm->ram_size - vm->low_ram_size, vm->ram + vm->low_ram_size
		};
	return 0;
}

static int vm__init_irqchip(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_GPA) < 0) {
		pr_err("KVM_SET_TSS_ADDR: %s", strerror(errno));
		return -errno;
	}
	uint64_t idmap = KVM_IDENTITY_MAP_GPA;

	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		pr_debug("KVM_SET_IDENTITY_MAP_ADDR: %s (ignored)", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		pr_err("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		pr_err("KVM_CREATE_PIT2: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

int vm__create(struct vm *vm, struct vm_config *cfg)
{
	int err;

	memset(vm, 0, sizeof(*vm));
	vm->cfg = cfg;
	vm->kvm_fd = vm->vm_fd = vm->mem_fd = -1;
	vm->nr_cpus = cfg->nr_cpus;
	vm->ram_size = cfg->mem_size;
	vm->pio_bus.name = "pio";
	vm->mmio_bus.name = "mmio";
	pthread_mutex_init(&vm->stop_lock, NULL);
	pthread_cond_init(&vm->stop_cond, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0)
		return -errno;

	err = vm__open_kvm(vm);
	if (err)
		goto out_destroy;
	err = vm__check_limits(vm);
	if (err)
		goto out_destroy;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		err = -errno;
		pr_err("KVM_CREATE_VM: %s", strerror(errno));
		goto out_destroy;
	}
	err = vm__init_irqchip(vm);
	if (err)
		goto out_destroy;
	err = vm__init_ram(vm);
	if (err)
		goto out_destroy;
	err = dirty_ring__enable(vm);
	if (err)
		goto out_destroy;
	err = evloop__init(&vm->loop);
	if (err) {
		pr_err("event loop: %s", strerror(-err));
		goto out_destroy;
	}
	return 0;

out_destroy:
	vm__destroy(vm);
	return err;
}

void vm__destroy(struct vm *vm)
{
	if (vm->loop.epfd > 0)
		evloop__exit(&vm->loop);
	if (vm->ram)
		munmap(vm->ram, vm->ram_size);
	free(vm->ring_dirty);
	vhost_log__release(vm);
	vm->ring_dirty = NULL;
	if (vm->mem_fd >= 0)
		close(vm->mem_fd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	vm->stop_efd = -1;
	bus__free(&vm->pio_bus);
	bus__free(&vm->mmio_bus);
	free(vm->states);
	vm->ram = NULL;
	vm->states = NULL;
	vm->mem_fd = vm->vm_fd = vm->kvm_fd = -1;
}

void *guest_mem__translate(struct vm *vm, uint64_t gpa, uint64_t len)
{
	uint64_t high_size = vm->ram_size - vm->low_ram_size;

	if (gpa + len < gpa)
		return NULL;
	if (gpa + len <= vm->low_ram_size)
		return vm->ram + gpa;
	if (gpa >= RAM_ABOVE_4G && gpa - RAM_ABOVE_4G + len <= high_size)
		return vm->ram + vm->low_ram_size + (gpa - RAM_ABOVE_4G);
	return NULL;
}

int guest_mem__write(struct vm *vm, uint64_t gpa, const void *src, uint64_t len)
{
	void *dst = guest_mem__translate(vm, gpa, len);

	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int vm__set_irq(struct vm *vm, unsigned int gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		return -errno;
	return 0;
}

void vm__request_stop(struct vm *vm, enum vm_stop_reason why, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&vm->stop_lock);
	if (vm->stop_reason == VM_RUNNING) {
		vm->stop_reason = __atomic_load_n(&vm->migrated, __ATOMIC_ACQUIRE) ? VM_STOP_MIGRATED
										     : why;
		va_start(ap, fmt);
		vsnprintf(vm->stop_message, sizeof(vm->stop_message), fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
		va_end(ap);
		pthread_cond_broadcast(&vm->stop_cond);
		pthread_cond_broadcast(&vm->pause_cond);
		if (write(vm->stop_efd, &(uint64_t){ 1 }, 8) < 0)
			pr_debug("stop eventfd: %s", strerror(errno));
	}
	pthread_mutex_unlock(&vm->stop_lock);
	vcpus__kick(vm);
}

enum vm_stop_reason vm__stop_reason(struct vm *vm)
{
	enum vm_stop_reason r;

	pthread_mutex_lock(&vm->stop_lock);
	r = vm->stop_reason;
	pthread_mutex_unlock(&vm->stop_lock);
	return r;
}

int vm__pause(struct vm *vm)
{
	unsigned int started = 0;

	for (unsigned int i = 0; vm->vcpus && i < vm->nr_cpus; i++)
		started += vm->vcpus[i] && vm->vcpus[i]->started;
	pthread_mutex_lock(&vm->stop_lock);
	vm->paused = true;
	pthread_mutex_unlock(&vm->stop_lock);
	vcpus__kick(vm);
	pthread_mutex_lock(&vm->stop_lock);
	while (vm->nr_parked < started && vm->stop_reason == VM_RUNNING)
		pthread_cond_wait(&vm->pause_cond, &vm->stop_lock);
	pthread_mutex_unlock(&vm->stop_lock);
	/* Tell the guest's kvmclock it was stopped, so it does not report
	 * soft lockups for the time spent paused. */
	for (unsigned int i = 0; vm->vcpus && i < vm->nr_cpus; i++)
		if (vm->vcpus[i])
			ioctl(vm->vcpus[i]->fd, KVM_KVMCLOCK_CTRL, 0);
	return vm__stop_reason(vm) == VM_RUNNING ? 0 : -ESHUTDOWN;
}

void vm__resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->stop_lock);
	/* Never two copies of one guest: after a migration only the
	 * destination runs it. */
	if (!__atomic_load_n(&vm->migrated, __ATOMIC_ACQUIRE))
		vm->paused = false;
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->stop_lock);
}

bool vm__is_paused(struct vm *vm)
{
	bool p;

	pthread_mutex_lock(&vm->stop_lock);
	p = vm->paused;
	pthread_mutex_unlock(&vm->stop_lock);
	return p;
}
