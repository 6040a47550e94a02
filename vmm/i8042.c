/*
 * vmm/i8042.c — the PC keyboard controller, without a keyboard.
 *
 * What matters is the CPU reset line (command 0xfe, or output-port bit 0
 * written low), which old reboot paths use, and a controller that answers
 * the few commands a probing driver sends.  The FADT says there is no 8042,
 * so Linux does not probe it; no interrupts are raised.
 */
#include "common/log.h"
#include "vmm/state.pb-c.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdlib.h>

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT	0x64

#define STS_OBF 0x01 /* output buffer full */
#define STS_SYS 0x04 /* system flag, set after self-test */
#define STS_CMD 0x08 /* last write went to the command port */

#define CB_KBD_INT     0x01
#define CB_SYS	       0x04
#define CB_KBD_DISABLE 0x10
#define CB_AUX_DISABLE 0x20

#define OUTPORT_RESET 0x01 /* active low: 0 holds the CPU in reset */

struct i8042 {
	pthread_mutex_t lock;
	struct vm *vm;
	uint8_t status;
	uint8_t cmd_byte;
	uint8_t output;
	uint8_t pending; /* command that waits for a data byte */
	uint8_t outport;
};

static struct i8042 kbc;

static void i8042__put_output(struct i8042 *k, uint8_t val)
{
	k->output = val;
	k->status |= STS_OBF;
}

static void i8042__reset_cpu(struct i8042 *k)
{
	vm__request_stop(k->vm, VM_STOP_REBOOT, "guest reset via i8042");
}

static void i8042__command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case 0x20: /* read command byte */ i8042__put_output(k, k->cmd_byte); break;
	case 0x60: /* write command byte: data follows */
	case 0xd1: /* write output port: data follows */ k->pending = cmd; break;
	case 0xa7: k->cmd_byte |= CB_AUX_DISABLE; break;
	case 0xa8: k->cmd_byte &= (uint8_t)~CB_AUX_DISABLE; break;
	case 0xa9: /* aux interface test: report a clock line stuck, no mouse */
		i8042__put_output(k, 0x02);
		break;
	case 0xaa: /* controller self test */
		k->status |= STS_SYS;
		k->cmd_byte |= CB_SYS;
		i8042__put_output(k, 0x55);
		break;
	case 0xab: /* keyboard interface test: fine */ i8042__put_output(k, 0x00); break;
	case 0xad: k->cmd_byte |= CB_KBD_DISABLE; break;
	case 0xae: k->cmd_byte &= (uint8_t)~CB_KBD_DISABLE; break;
	case 0xd0: /* read output port */ i8042__put_output(k, k->outport); break;
	default:
		/* 0xf0-0xff pulse output-port bits low; bit 0 is reset. */
		if (cmd >= 0xf0 && !(cmd & OUTPORT_RESET)) {
			i8042__reset_cpu(k);
			break;
		}
		if (cmd < 0xf0)
			pr_debug("i8042: command 0x%02x ignored", cmd);
		break;
	}
}

static void i8042__data(struct i8042 *k, uint8_t val)
{
	uint8_t cmd = k->pending;

	k->pending = 0;
	switch (cmd) {
	case 0x60:
		k->cmd_byte = val;
		k->status = (uint8_t)((k->status & ~STS_SYS) | (val & CB_SYS));
		break;
	case 0xd1:
		k->outport = val;
		if (!(val & OUTPORT_RESET))
			i8042__reset_cpu(k);
		break;
	default:
		/* A byte for the keyboard, which is not there: no answer, so
		 * the driver times out, as with nothing plugged in. */
		break;
	}
}

/* 0x60: data in both directions. */
static void i8042__data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			   bool is_write)
{
	struct i8042 *k = opaque;

	pthread_mutex_lock(&k->lock);
	if (is_write) {
		k->status &= (uint8_t)~STS_CMD;
		i8042__data(k, data[0]);
	} else {
		data[0] = k->output;
		k->status &= (uint8_t)~STS_OBF;
		for (uint32_t i = 1; i < len; i++)
			data[i] = 0xff;
	}
	pthread_mutex_unlock(&k->lock);
}

/* 0x64: status on read, command on write. */
static void i8042__cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;

	pthread_mutex_lock(&k->lock);
	if (is_write) {
		k->status |= STS_CMD;
		i8042__command(k, data[0]);
	} else {
		data[0] = k->status;
		for (uint32_t i = 1; i < len; i++)
			data[i] = 0xff;
	}
	pthread_mutex_unlock(&k->lock);
}

static int i8042__save(void *opaque, uint8_t **buf, size_t *len)
{
	struct i8042 *k = opaque;
	Vmmd__State__V1__I8042State s = VMMD__STATE__V1__I8042_STATE__INIT;

	pthread_mutex_lock(&k->lock);
	s.command_byte = k->cmd_byte;
	s.status = k->status;
	s.output = k->output;
	s.pending_command = k->pending;
	s.output_port = k->outport;
	pthread_mutex_unlock(&k->lock);
	*len = vmmd__state__v1__i8042_state__get_packed_size(&s);
	*buf = malloc(*len ? *len : 1);
	if (!*buf)
		return -ENOMEM;
	vmmd__state__v1__i8042_state__pack(&s, *buf);
	return 0;
}

static int i8042__restore(void *opaque, const uint8_t *buf, size_t len)
{
	struct i8042 *k = opaque;
	Vmmd__State__V1__I8042State *s = vmmd__state__v1__i8042_state__unpack(NULL, len, buf);

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&k->lock);
	k->cmd_byte = (uint8_t)s->command_byte;
	k->status = (uint8_t)s->status;
	k->output = (uint8_t)s->output;
	/* Only the two commands that take data can be pending. */
	k->pending = (s->pending_command == 0x60 || s->pending_command == 0xd1)
			 ? (uint8_t)s->pending_command
			 : 0;
	k->outport = (uint8_t)(s->output_port | OUTPORT_RESET);
	pthread_mutex_unlock(&k->lock);
	vmmd__state__v1__i8042_state__free_unpacked(s, NULL);
	return 0;
}

static const struct state_ops i8042_state_ops = {
    .section = "i8042",
    .save = i8042__save,
    .restore = i8042__restore,
};

static int i8042__init(struct vm *vm)
{
	int err;

	pthread_mutex_init(&kbc.lock, NULL);
	kbc.vm = vm;
	kbc.status = 0;
	kbc.cmd_byte = CB_KBD_INT;
	kbc.outport = OUTPORT_RESET | 0x02; /* reset inactive, A20 on */
	err = bus__register(&vm->pio_bus, I8042_DATA_PORT, 1, i8042__data_io, &kbc, "i8042 data");
	if (err < 0)
		return err;
	err = bus__register(&vm->pio_bus, I8042_CMD_PORT, 1, i8042__cmd_io, &kbc, "i8042 command");
	if (err < 0)
		return err;
	return vm__register_state(vm, &i8042_state_ops, &kbc);
}

device_init(i8042__init, NULL);
