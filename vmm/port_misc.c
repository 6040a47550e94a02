/*
 * vmm/port_misc.c — ports Linux touches that need no device behind them.
 *
 * 0x80 is the POST code port; Linux writes it as an I/O delay.  Claiming it
 * keeps those writes off the unhandled-port path (and its logging).
 */
#include "vmm/vm.h"

#include <string.h>

#define POST_PORT 0x80

static void port_misc__sink(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			    bool is_write)
{
	if (!is_write)
		memset(data, 0xff, len);
}

static int port_misc__init(struct vm *vm)
{
	return bus__register(&vm->pio_bus, POST_PORT, 1, port_misc__sink, NULL, "post");
}

device_init(port_misc__init, NULL);
