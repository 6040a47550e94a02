/* vmm/device.h — self-registering init hooks (kvmtool style) and saved-state
 * sections.  A device file ends with device_init(fn); nothing central lists it. */
#ifndef VMMD_VMM_DEVICE_H
#define VMMD_VMM_DEVICE_H

#include <stddef.h>
#include <stdint.h>

struct vm;

enum init_prio {
	INIT_PRIO_CORE = 0,	/* irqchip, clock */
	INIT_PRIO_BUS = 1,	/* PCI host bridge */
	INIT_PRIO_DEVICE = 2,	/* platform and PCI devices */
	INIT_PRIO_BACKEND = 3,	/* processes serving several devices: after them */
	INIT_PRIO_FIRMWARE = 4, /* ACPI tables: after every device exists */
};

struct init_hook {
	const char *name;
	int (*init)(struct vm *vm);
	void (*exit)(struct vm *vm); /* may be NULL */
	enum init_prio prio;
	struct init_hook *next;
};

void init_hook__register(struct init_hook *hook);
/* Runs every hook in priority order; on failure unwinds what ran. */
int init_hooks__run(struct vm *vm);
void init_hooks__exit(struct vm *vm);

#define __vmm_init(fn, exitfn, p)                                              \
	static struct init_hook __hook_##fn = { .name = #fn,                   \
						.init = fn,                    \
						.exit = exitfn,                \
						.prio = p };                   \
	static void __attribute__((constructor)) __register_##fn(void)         \
	{                                                                      \
		init_hook__register(&__hook_##fn);                             \
	}

#define core_init(fn, exitfn) __vmm_init(fn, exitfn, INIT_PRIO_CORE)
#define bus_init(fn, exitfn) __vmm_init(fn, exitfn, INIT_PRIO_BUS)
#define device_init(fn, exitfn) __vmm_init(fn, exitfn, INIT_PRIO_DEVICE)
#define backend_init(fn, exitfn)  __vmm_init(fn, exitfn, INIT_PRIO_BACKEND)
#define firmware_init(fn, exitfn) __vmm_init(fn, exitfn, INIT_PRIO_FIRMWARE)

/*
 * Saved state: each stateful device registers a section whose payload is its
 * own packed protobuf message (vmm/state.proto).  save() returns a malloc'd
 * buffer; restore() must reject a payload it cannot parse without touching
 * the device.
 */
struct state_ops {
	const char *section; /* stable name, e.g. "uart_16550.com1" */
	int (*save)(void *opaque, uint8_t **buf, size_t *len);
	int (*restore)(void *opaque, const uint8_t *buf, size_t len);
};

int vm__register_state(struct vm *vm, const struct state_ops *ops, void *opaque);

#endif
