/* tests/lab/kvm_probe.c — is /dev/kvm usable, and does it run guest code natively?
 *
 * Prints one line "native|emulated|none -- <reason>" and exits 0 (1 on "none").
 * It creates a throwaway VM and times a real-mode loop of LOOP_ITERS iterations
 * (about 2 * LOOP_ITERS instructions). Hardware virtualisation (even SVM emulated
 * by TCG one level down) runs it in milliseconds; an instruction-emulating KVM
 * (kvm_pvm, ~1 M instructions/s) would need many seconds, so the run is cut off by
 * a timer instead of waited for.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOOP_ITERS	10000000u
#define NATIVE_SECS	0.5
#define CUTOFF_SECS	2
#define MEM_SIZE	0x10000
#define CODE_ADDR	0x1000

static const uint8_t probe_code[] = {
	0x66, 0xb9, LOOP_ITERS & 0xff, (LOOP_ITERS >> 8) & 0xff,
	(LOOP_ITERS >> 16) & 0xff, LOOP_ITERS >> 24,	/* mov ecx, LOOP_ITERS */
	0x66, 0x49,					/* 1: dec ecx */
	0x75, 0xfc,					/* jnz 1b */
	0xf4,						/* hlt */
};

static void probe__on_alarm(int sig) { (void)sig; }

static int probe__none(const char *what)
{
	printf("none -- %s: %s\n", what, strerror(errno));
	return 1;
}

static double probe__now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
	struct kvm_userspace_memory_region region;
	struct itimerval cutoff = { .it_value = { .tv_sec = CUTOFF_SECS } };
	struct sigaction sa = { .sa_handler = probe__on_alarm };	/* no SA_RESTART */
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run;
	int kvm, vm, vcpu, ret, run_size;
	double start, secs;
	uint8_t *mem;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return probe__none("/dev/kvm");
	ret = ioctl(kvm, KVM_GET_API_VERSION, 0);
	if (ret != KVM_API_VERSION) {
		printf("none -- /dev/kvm: KVM_GET_API_VERSION gave %d, want %d\n", ret, KVM_API_VERSION);
		return 1;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return probe__none("KVM_CREATE_VM");
	ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul);	/* VMX without unrestricted guest */

	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return probe__none("mmap guest memory");
	memcpy(mem + CODE_ADDR, probe_code, sizeof(probe_code));
	region = (struct kvm_userspace_memory_region){
		.slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE,
		.userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return probe__none("KVM_SET_USER_MEMORY_REGION");

	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		return probe__none("KVM_CREATE_VCPU");
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		return probe__none("mmap kvm_run");
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		return probe__none("KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		return probe__none("KVM_SET_SREGS");
	memset(&regs, 0, sizeof(regs));
	regs.rip = CODE_ADDR;
	regs.rflags = 0x2;
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		return probe__none("KVM_SET_REGS");

	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &cutoff, NULL);
	start = probe__now();
	do {
		ret = ioctl(vcpu, KVM_RUN, 0);
	} while (ret == 0 && run->exit_reason != KVM_EXIT_HLT &&
		 (run->exit_reason == KVM_EXIT_IRQ_WINDOW_OPEN || run->exit_reason == KVM_EXIT_INTR));
	secs = probe__now() - start;

	if (ret < 0 && errno == EINTR) {
		ioctl(vcpu, KVM_GET_REGS, &regs);
		printf("emulated -- a %u-iteration real-mode loop was cut off after %.1f s with %u done"
		       " (~%.2f M iterations/s)\n", LOOP_ITERS, secs,
		       LOOP_ITERS - (uint32_t)regs.rcx, (LOOP_ITERS - (uint32_t)regs.rcx) / secs / 1e6);
		return 0;
	}
	if (ret < 0)
		return probe__none("KVM_RUN");
	if (run->exit_reason != KVM_EXIT_HLT) {
		printf("none -- KVM_RUN: unexpected exit reason %u\n", run->exit_reason);
		return 1;
	}
	printf("%s -- a %u-iteration real-mode loop took %.3f s (native if < %.1f s)\n",
	       secs < NATIVE_SECS ? "native" : "emulated", LOOP_ITERS, secs, NATIVE_SECS);
	return 0;
}
