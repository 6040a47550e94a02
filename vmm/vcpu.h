/* vmm/vcpu.h — one thread per vCPU. */
#ifndef VMMD_VMM_VCPU_H
#define VMMD_VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;

struct vcpu {
	struct vm *vm;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	/* KVM's dirty ring of this vCPU (dirty_ring.c), NULL without one. */
	struct kvm_dirty_gfn *ring;
	uint32_t ring_fetch;
	uint32_t ring_idle_fulls; /* "full" exits in a row that found nothing */
	pthread_mutex_t ring_lock;
};

int vcpus__create(struct vm *vm);
/* Applies vm->entry to vCPU 0 (after the kernel is loaded). */
int vcpus__setup_boot(struct vm *vm);
int vcpus__start(struct vm *vm);
/* Makes every vCPU leave KVM_RUN and re-check the stop reason. */
void vcpus__kick(struct vm *vm);
void vcpus__join(struct vm *vm);
void vcpus__destroy(struct vm *vm);

#endif
