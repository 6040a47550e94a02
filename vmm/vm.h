/* vmm/vm.h — one KVM virtual machine. */
#ifndef VMMD_VMM_VM_H
#define VMMD_VMM_VM_H

#include "common/evloop.h"
#include "vmm/bus.h"
#include "vmm/config.h"
#include "vmm/device.h"
#include "virtio/mem.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vcpu;

enum vm_stop_reason {
	VM_RUNNING = 0,
	VM_STOP_POWEROFF,
	VM_STOP_REBOOT,
	VM_STOP_ERROR, /* vm->stop_message says why */
	VM_STOP_KILLED,
	VM_STOP_MIGRATED, /* handed over to a live migration's destination */
};

struct state_section {
	const struct state_ops *ops;
	void *opaque;
};

struct snapshot_lazy;

struct vm {
	struct vm_config *cfg;
	int kvm_fd;
	int vm_fd;
	int vcpu_mmap_size;

	/* Guest RAM: one memfd; low part at GPA 0, the rest above 4 GiB. */
	int mem_fd;
	uint8_t *ram;
	uint64_t ram_size;
	uint64_t low_ram_size; /* min(ram_size, PCI_HOLE_START) */
	struct guest_mem mem;  /* the same RAM as regions, for device models */
	bool dirty_logging;    /* KVM_MEM_LOG_DIRTY_PAGES on the RAM slots */
	/* KVM's dirty ring (dirty_ring.c): entries per vCPU, 0 if the bitmap
	 * is used; pages that vCPUs emptied from full rings wait here. */
	uint32_t dirty_ring_entries;
	uint64_t *ring_dirty;
	/* vhost_log.c: the paravisors' dirty log and who writes it (NULL
	 * until a vhost-user device registers). */
	struct vhost_log *vhost_log;
	/* vcpu_throttle.c: % of time vCPUs are kept out (0: not throttled). */
	unsigned int throttle_pct;
	pthread_t throttle_thread;
	/* A live migration handed the guest over: this VM stays paused until
	 * stopped (so its statistics can be read), then exits as migrated. */
	bool migrated;
	/* RAM is not all in mem_fd: a lazy restore mapped a snapshot's memory
	 * file privately over it, so what the guest has is that file plus its
	 * own writes since.  Whoever looks for data (snapshot, migration) must
	 * scan RAM itself rather than the memfd's extents. */
	bool ram_private;
	/* Another process maps mem_fd (a paravisor): RAM must stay in it, so
	 * a lazy restore goes through userfaultfd (migration/snapshot_lazy.c)
	 * rather than a private mapping. */
	bool ram_shared;
	/* Such a lazy restore (NULL if RAM was not restored so): whoever
	 * reads RAM through mem_fd (a snapshot, a migration) waits until it
	 * has loaded, as the memfd's holes are not the guest's zeros before. */
	struct snapshot_lazy *ram_loader;

	unsigned int nr_cpus;
	struct vcpu **vcpus;

	struct bus pio_bus;
	struct bus mmio_bus;
	struct evloop loop; /* host fds of devices (serial input, signals) */

	/* Entry point chosen by the loader, applied to vCPU 0. */
	struct {
		bool long_mode; /* bzImage 64-bit entry; else PVH 32-bit */
		uint64_t rip;
		uint64_t rsi; /* bzImage: zero page */
		uint64_t rbx; /* PVH: hvm_start_info */
	} entry;
	uint64_t rsdp_gpa;

	/* Hooks set by devices that other parts need (no central switch). */
	void (*power_button)(struct vm *vm);

	struct state_section *states;
	int nr_states;

	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	int stop_efd; /* eventfd: readable once a stop was requested */
	/* Pause: vCPUs park on pause_cond (under stop_lock) outside KVM_RUN. */
	bool paused;
	unsigned int nr_parked;
	pthread_cond_t pause_cond;
	enum vm_stop_reason stop_reason;
	char stop_message[256];
};

int vm__create(struct vm *vm, struct vm_config *cfg);
void vm__destroy(struct vm *vm);
/* --prefault: allocates every page of RAM not yet allocated (again after a
 * restore emptied it). */
int vm__prefault_ram(struct vm *vm);

/* Translate a guest-physical range to a host pointer; NULL if any byte of it
 * is not RAM.  Use for everything a guest or an input file controls. */
void *guest_mem__translate(struct vm *vm, uint64_t gpa, uint64_t len);
int guest_mem__write(struct vm *vm, uint64_t gpa, const void *src, uint64_t len);

/* Drives a GSI of the in-kernel PIC+IOAPIC (edge devices pulse it). */
int vm__set_irq(struct vm *vm, unsigned int gsi, int level);

/* First caller wins; wakes vm__wait_stop() and kicks every vCPU out. */
void vm__request_stop(struct vm *vm, enum vm_stop_reason why, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
enum vm_stop_reason vm__stop_reason(struct vm *vm);
/* Stops every vCPU outside KVM_RUN and returns once all are parked (or the
 * VM stopped); device threads keep running.  Idempotent. */
int vm__pause(struct vm *vm);
void vm__resume(struct vm *vm);
bool vm__is_paused(struct vm *vm);

/* Set from a constructor by the saved-state layer (migration/snapshot.c),
 * which sits above vmm/: vmm --restore DIR loads guest RAM and every state
 * section through it, after the devices exist and before any vCPU runs.
 * Returns 0 or a negative errno after saying what is wrong. */
extern int (*vm__restore_hook)(struct vm *vm, const char *dir, bool lazy);
/* Likewise for vmm --incoming: receives a live migration's RAM and state
 * into this VM before any vCPU runs. */
extern int (*vm__incoming_hook)(struct vm *vm);
/* Called by vCPU 0's thread of a received VM just before its first
 * KVM_RUN: tells the source the guest runs here (the end of its downtime). */
extern void (*vm__incoming_started_hook)(struct vm *vm);

/* Dirty page logging of guest RAM for live migration: what vCPUs write
 * (KVM) and what vhost-user devices write (vmm/vhost_log.h).  0, or a
 * negative errno with why naming what cannot log (a device by name). */
int vm__dirty_log(struct vm *vm, bool on, char *why, size_t whylen);
/* ORs the pages written since the last fetch into bitmap (one bit per 4 KiB
 * of RAM, linear as in the memfd) and clears KVM's log (ring or bitmap). */
int vm__dirty_log_fetch(struct vm *vm, uint64_t *bitmap);
/* "ring" or "bitmap": which of KVM's two dirty logs this VM uses. */
const char *vm__dirty_log_kind(const struct vm *vm);

#endif
