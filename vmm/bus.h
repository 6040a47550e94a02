/* vmm/bus.h — port-I/O and MMIO buses.  Devices register address ranges at
 * init; after the vCPUs start the tables are read-only, so dispatch takes no
 * lock (each device locks its own state). */
#ifndef VMMD_VMM_BUS_H
#define VMMD_VMM_BUS_H

#include <stdbool.h>
#include <stdint.h>

/* offset is relative to the registered base; len is 1, 2, 4 or 8.
 * On a read the handler fills data[0..len); unhandled bytes read as 0xff. */
typedef void (*bus_io_fn)(void *opaque, uint64_t offset, uint8_t *data,
			  uint32_t len, bool is_write);

struct bus_range {
	uint64_t base;
	uint64_t len;
	bus_io_fn fn;
	void *opaque;
	const char *name;
};

struct bus {
	const char *name; /* "pio" or "mmio" for messages */
	struct bus_range *ranges; /* sorted by base, non-overlapping */
	int nr;
	int cap;
};

int bus__register(struct bus *bus, uint64_t base, uint64_t len, bus_io_fn fn,
		  void *opaque, const char *name);
/* Returns false when no device claims addr (reads then see all ones). */
bool bus__dispatch(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len,
		   bool is_write);
void bus__free(struct bus *bus);

#endif
