/* vmm/bus.c — sorted range tables with binary search. */
#include "vmm/bus.h"

#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int bus__register(struct bus *bus, uint64_t base, uint64_t len, bus_io_fn fn,
		  void *opaque, const char *name)
{
	int i;

	if (!len || base + len < base)
		return -EINVAL;
	for (i = 0; i < bus->nr; i++) {
		struct bus_range *r = &bus->ranges[i];

		if (base < r->base + r->len && r->base < base + len) {
			pr_err("%s bus: %s at 0x%llx+0x%llx overlaps %s", bus->name,
			       name, (unsigned long long)base,
			       (unsigned long long)len, r->name);
			return -EBUSY;
		}
		if (r->base > base)
			break;
	}
	if (bus->nr == bus->cap) {
		int cap = bus->cap ? bus->cap * 2 : 16;
		struct bus_range *n = realloc(bus->ranges, sizeof(*n) * (size_t)cap);

		if (!n)
			return -ENOMEM;
		bus->ranges = n;
		bus->cap = cap;
	}
	memmove(&bus->ranges[i + 1], &bus->ranges[i],
		sizeof(*bus->ranges) * (size_t)(bus->nr - i));
	bus->ranges[i] = (struct bus_range){ base, len, fn, opaque, name };
	bus->nr++;
	return 0;
}

static struct bus_range *bus__find(struct bus *bus, uint64_t addr)
{
	int lo = 0, hi = bus->nr - 1;

	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		struct bus_range *r = &bus->ranges[mid];

		if (addr < r->base)
			hi = mid - 1;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

bool bus__dispatch(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len,
		   bool is_write)
{
	struct bus_range *r = bus__find(bus, addr);

	if (!r) {
		if (!is_write)
			memset(data, 0xff, len);
		return false;
	}
	r->fn(r->opaque, addr - r->base, data, len, is_write);
	return true;
}

void bus__free(struct bus *bus)
{
	free(bus->ranges);
	bus->ranges = NULL;
	bus->nr = bus->cap = 0;
}
