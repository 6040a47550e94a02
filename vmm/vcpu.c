/* vmm/vcpu.c — vCPU creation, register state at entry, and the run loop. */
#include "vmm/vcpu.h"

#include "common/log.h"
#include "vmm/cpuid.h"
#include "vmm/dirty_ring.h"
#include "vmm/layout.h"
#include "vmm/vcpu_throttle.h"
#include "vmm/vm.h"

#include <asm/kvm.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIG_VCPU_KICK SIGUSR1

#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static void vcpu__kick_handler(int sig)
{
	(void)sig; /* only interrupts KVM_RUN */
}

static int vcpu__init_msrs(struct vcpu *v)
{
	static const uint32_t zero_msrs[] = {
		MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP,
		MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK, MSR_KERNEL_GS_BASE,
	};
	const int n = (int)(sizeof(zero_msrs) / sizeof(zero_msrs[0])) + 2;
	struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + (size_t)n * sizeof(struct kvm_msr_entry));
	int i, ret;

	if (!msrs)
		return -ENOMEM;
	for (i = 0; i < n - 2; i++)
		msrs->entries[i].index = zero_msrs[i];
	msrs->entries[i].index = MSR_IA32_MISC_ENABLE;
	msrs->entries[i++].data = 1; /* fast strings */
	msrs->entries[i].index = MSR_MTRR_DEF_TYPE;
	msrs->entries[i++].data = (1 << 11) | 6; /* MTRRs on, default write-back */
	msrs->nmsrs = (uint32_t)i;
	ret = ioctl(v->fd, KVM_SET_MSRS, msrs);
	free(msrs);
	if (ret != n) {
		pr_err("vCPU %u: KVM_SET_MSRS set %d of %d", v->id, ret, n);
		return -EIO;
	}
	return 0;
}

/* What firmware would do: LINT0 delivers the 8259's ExtINT, LINT1 the NMI. */
static int vcpu__init_lapic(struct vcpu *v)
{
	struct kvm_lapic_state lapic;
	uint32_t *lvt0 = (uint32_t *)&lapic.regs[APIC_LVT0];
	uint32_t *lvt1 = (uint32_t *)&lapic.regs[APIC_LVT1];

	if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
		return -errno;
	*lvt0 = (*lvt0 & ~0x1700u & ~(1u << 16)) | (APIC_MODE_EXTINT << 8);
	*lvt1 = (*lvt1 & ~0x1700u & ~(1u << 16)) | (APIC_MODE_NMI << 8);
	if (ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0)
		return -errno;
	return 0;
}

static int vcpu__init_fpu(struct vcpu *v)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };

	return ioctl(v->fd, KVM_SET_FPU, &fpu) < 0 ? -errno : 0;
}

static int vcpu__create_one(struct vm *vm, unsigned int id,
			    const struct kvm_cpuid2 *supported)
{
	struct vcpu *v = calloc(1, sizeof(*v));
	size_t sz = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *cpuid = malloc(sz);
	int err;

	if (!v || !cpuid) {
		free(v);
		free(cpuid);
		return -ENOMEM;
	}
	vm->vcpus[id] = v;
	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		err = -errno;
		pr_err("vCPU %u: KVM_CREATE_VCPU: %s", id, strerror(errno));
		goto out_free;
	}
	v->run = mmap(NULL, (size_t)vm->vcpu_mmap_size, PROT_READ | PROT_WRITE,
		      MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		err = -errno;
		goto out_free;
	}
	err = dirty_ring__map(v);
	if (err)
		goto out_free;
	memcpy(cpuid, supported, sz);
	cpuid__fixup(cpuid, id, vm->nr_cpus);
	if (ioctl(v->fd, KVM_SET_CPUID2, cpuid) < 0) {
		err = -errno;
		pr_err("vCPU %u: KVM_SET_CPUID2: %s", id, strerror(errno));
		goto out_free;
	}
	err = vcpu__init_msrs(v);
	if (!err)
		err = vcpu__init_lapic(v);
	if (!err)
		err = vcpu__init_fpu(v);
	if (err)
		pr_err("vCPU %u: initial state: %s", id, strerror(-err));
out_free:
	free(cpuid);
	return err;
}

int vcpus__create(struct vm *vm)
{
	struct kvm_cpuid2 *supported;
	struct sigaction sa = { .sa_handler = vcpu__kick_handler };
	int err = 0;

	sigaction(SIG_VCPU_KICK, &sa, NULL);
	vm->vcpus = calloc(vm->nr_cpus, sizeof(struct vcpu *));
	if (!vm->vcpus)
		return -ENOMEM;
	supported = cpuid__get_supported(vm->kvm_fd);
	if (!supported) {
		pr_err("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		return -errno;
	}
	for (unsigned int i = 0; i < vm->nr_cpus && !err; i++)
		err = vcpu__create_one(vm, i, supported);
	free(supported);
	return err;
}

static void seg_flat(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .db = !code64, .s = 1, .l = code64, .g = 1,
	};
}

/* GDT: 0x08 32-bit code (PVH), 0x10 64-bit code, 0x18 data (Linux's __BOOT_CS/DS). */
static int vcpu__write_gdt(struct vm *vm)
{
	static const uint64_t gdt[] = {
		0, 0x00cf9b000000ffffULL, 0x00af9b000000ffffULL, 0x00cf93000000ffffULL,
	};

	return guest_mem__write(vm, BOOT_GDT_GPA, gdt, sizeof(gdt));
}

/* Identity map of the first 4 GiB with 2 MiB pages, for the 64-bit entry. */
static int vcpu__write_page_tables(struct vm *vm)
{
	uint64_t *pml4 = guest_mem__translate(vm, BOOT_PML4_GPA, 4096);
	uint64_t *pdpt = guest_mem__translate(vm, BOOT_PDPT_GPA, 4096);
	uint64_t *pd = guest_mem__translate(vm, BOOT_PD_GPA, 4ULL * 4096);

	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = BOOT_PDPT_GPA | 3;
	for (int i = 0; i < 4; i++)
		pdpt[i] = (BOOT_PD_GPA + (uint64_t)i * 4096) | 3;
	for (uint64_t i = 0; i < 4ULL * 512; i++)
		pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB */
	return 0;
}

int vcpus__setup_boot(struct vm *vm)
{
	struct vcpu *v = vm->vcpus[0];
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rflags = 2 };
	int err;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	err = vcpu__write_gdt(vm);
	if (err)
		return err;
	sregs.gdt.base = BOOT_GDT_GPA;
	sregs.gdt.limit = 4 * 8 - 1;
	seg_flat(&sregs.ds, 0x18, 3, false);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	/* VMX wants a usable busy TSS and an LDT descriptor even if unused. */
	sregs.tr = (struct kvm_segment){ .limit = 0x67, .type = 11, .present = 1 };
	sregs.ldt = (struct kvm_segment){ .limit = 0xffff, .type = 2, .present = 1 };
	if (vm->entry.long_mode) {
		err = vcpu__write_page_tables(vm);
		if (err)
			return err;
		seg_flat(&sregs.cs, 0x10, 11, true);
		sregs.cr3 = BOOT_PML4_GPA;
		sregs.cr4 = 1u << 5;                        /* PAE */
		sregs.cr0 = 0x80000011;                     /* PG, ET, PE */
		sregs.efer = (1u << 8) | (1u << 10);        /* LME, LMA */
		regs.rsi = vm->entry.rsi;
	} else {
		seg_flat(&sregs.cs, 0x08, 11, false);
		sregs.cr0 = 0x11; /* ET, PE: flat protected mode, no paging */
		sregs.cr4 = 0;
		sregs.efer = 0;
		regs.rbx = vm->entry.rbx;
	}
	regs.rip = vm->entry.rip;
	regs.rsp = BOOT_STACK_GPA;
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

static void vcpu__io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;

	for (uint32_t i = 0; i < run->io.count; i++) {
		if (!bus__dispatch(&v->vm->pio_bus, run->io.port, data, run->io.size, write))
			pr_debug("vCPU %u: unclaimed port %s 0x%x", v->id,
				 write ? "write" : "read", run->io.port);
		data += run->io.size;
	}
}

static void vcpu__mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	if (run->mmio.len > 8)
		return;
	if (!bus__dispatch(&v->vm->mmio_bus, run->mmio.phys_addr, run->mmio.data,
			   run->mmio.len, run->mmio.is_write))
		pr_debug("vCPU %u: unclaimed MMIO %s 0x%llx", v->id,
			 run->mmio.is_write ? "write" : "read",
			 (unsigned long long)run->mmio.phys_addr);
}

static uint64_t vcpu__rip(struct vcpu *v)
{
	struct kvm_regs regs;

	return ioctl(v->fd, KVM_GET_REGS, &regs) < 0 ? ~0ULL : regs.rip;
}

/* Returns true when the VM must stop because of this exit. */
static bool vcpu__handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	struct vm *vm = v->vm;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu__io(v);
		return false;
	case KVM_EXIT_MMIO:
		vcpu__mmio(v);
		return false;
	case KVM_EXIT_INTR:
		return false;
	case KVM_EXIT_DIRTY_RING_FULL:
		if (dirty_ring__harvest(vm, v)) {
			vm__request_stop(vm, VM_STOP_ERROR,
					 "vCPU %u: KVM's dirty ring cannot be emptied (try "
					 "--dirty-log bitmap)", v->id);
			return true;
		}
		return false;
	case KVM_EXIT_HLT:
		/* Only without an in-kernel LAPIC; treat as a stop of this vCPU. */
		vm__request_stop(vm, VM_STOP_ERROR, "vCPU %u halted with interrupts off at RIP 0x%llx",
				 v->id, (unsigned long long)vcpu__rip(v));
		return true;
	case KVM_EXIT_SHUTDOWN:
		vm__request_stop(vm, VM_STOP_ERROR, "vCPU %u: triple fault at RIP 0x%llx",
				 v->id, (unsigned long long)vcpu__rip(v));
		return true;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
			vm__request_stop(vm, VM_STOP_REBOOT, "vCPU %u: system reset", v->id);
		else
			vm__request_stop(vm, VM_STOP_POWEROFF, "vCPU %u: system shutdown", v->id);
		return true;
	case KVM_EXIT_FAIL_ENTRY:
		vm__request_stop(vm, VM_STOP_ERROR,
				 "vCPU %u: KVM entry failed, hardware reason 0x%llx",
				 v->id,
				 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return true;
	case KVM_EXIT_INTERNAL_ERROR:
		vm__request_stop(vm, VM_STOP_ERROR,
				 "vCPU %u: KVM internal error %u at RIP 0x%llx", v->id,
				 run->internal.suberror, (unsigned long long)vcpu__rip(v));
		return true;
	default:
		vm__request_stop(vm, VM_STOP_ERROR, "vCPU %u: unexpected KVM exit %u at RIP 0x%llx",
				 v->id, run->exit_reason, (unsigned long long)vcpu__rip(v));
		return true;
	}
}

/* Paused vCPUs wait here, outside KVM_RUN, until resumed or stopped. */
static void vcpu__park_if_paused(struct vcpu *v)
{
	struct vm *vm = v->vm;

	pthread_mutex_lock(&vm->stop_lock);
	if (vm->paused) {
		vm->nr_parked++;
		pthread_cond_broadcast(&vm->pause_cond);
		while (vm->paused && vm->stop_reason == VM_RUNNING)
			pthread_cond_wait(&vm->pause_cond, &vm->stop_lock);
		vm->nr_parked--;
	}
	pthread_mutex_unlock(&vm->stop_lock);
}

static void *vcpu__thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	bool first = v->id == 0 && vm->cfg->incoming;
	sigset_t set;

	/* Only the kick signal reaches vCPU threads; main handles the rest. */
	sigfillset(&set);
	sigdelset(&set, SIG_VCPU_KICK);
	pthread_sigmask(SIG_SETMASK, &set, NULL);

	while (vm__stop_reason(vm) == VM_RUNNING) {
		vcpu__park_if_paused(v);
		/* vCPU 0 about to run a received guest: the downtime ends. */
		if (first && vm__stop_reason(vm) == VM_RUNNING && vm__incoming_started_hook)
			vm__incoming_started_hook(vm);
		first = false;
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				v->run->immediate_exit = 0;
				vcpu__throttle(v);
				continue;
			}
			vm__request_stop(vm, VM_STOP_ERROR, "vCPU %u: KVM_RUN: %s", v->id,
					 strerror(errno));
			break;
		}
		if (vcpu__handle_exit(v))
			break;
	}
	return NULL;
}

int vcpus__start(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->nr_cpus; i++) {
		struct vcpu *v = vm->vcpus[i];
		int err = pthread_create(&v->thread, NULL, vcpu__thread, v);

		if (err) {
			vm__request_stop(vm, VM_STOP_ERROR, "vCPU %u: thread: %s", i, strerror(err));
			return -err;
		}
		v->started = true;
	}
	return 0;
}

void vcpus__kick(struct vm *vm)
{
	if (!vm->vcpus)
		return;
	for (unsigned int i = 0; i < vm->nr_cpus; i++) {
		struct vcpu *v = vm->vcpus[i];

		if (!v || !v->started)
			continue;
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		pthread_kill(v->thread, SIG_VCPU_KICK);
	}
}

void vcpus__join(struct vm *vm)
{
	for (unsigned int i = 0; vm->vcpus && i < vm->nr_cpus; i++) {
		struct vcpu *v = vm->vcpus[i];

		if (v && v->started) {
			pthread_join(v->thread, NULL);
			v->started = false;
		}
	}
}

void vcpus__destroy(struct vm *vm)
{
	for (unsigned int i = 0; vm->vcpus && i < vm->nr_cpus; i++) {
		struct vcpu *v = vm->vcpus[i];

		if (!v)
			continue;
		if (v->run)
			munmap(v->run, (size_t)vm->vcpu_mmap_size);
		dirty_ring__unmap(v);
		if (v->fd >= 0)
			close(v->fd);
		free(v);
	}
	free(vm->vcpus);
	vm->vcpus = NULL;
}
