/*
 * vmm/uart_16550.c — 16550A UART on COM1 (0x3f8, IRQ 4).
 *
 * Enough of the chip for Linux's 8250 driver to run interrupt driven both
 * ways: divisor latch, 16-byte RX FIFO with trigger levels, THR-empty and
 * RX interrupts with the datasheet's IIR priorities, loopback, and the PC's
 * OUT2 gate on the interrupt line.  Transmission is instant: THR and the
 * shift register are always empty again by the time the guest looks.
 */
#include "vmm/serial.h"

#include "common/log.h"
#include "vmm/state.pb-c.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define COM1_BASE 0x3f8
#define COM1_IRQ  4

enum { RBR = 0, IER = 1, IIR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

#define IER_RDI	 0x01 /* received data available */
#define IER_THRI 0x02 /* THR empty */
#define IER_RLSI 0x04 /* receiver line status */
#define IER_MSI	 0x08 /* modem status */

#define IIR_NO_INT 0x01
#define IIR_MSI	   0x00
#define IIR_THRI   0x02
#define IIR_RDI	   0x04
#define IIR_RLSI   0x06
#define IIR_CTI	   0x0c /* character timeout: data below the trigger level */
#define IIR_FIFO   0xc0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04

#define LCR_DLAB 0x80

#define MCR_DTR	 0x01
#define MCR_RTS	 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR	   0x01
#define LSR_OE	   0x02
#define LSR_BI	   0x10
#define LSR_THRE   0x20
#define LSR_TEMT   0x40
#define LSR_ERRORS (LSR_OE | 0x04 | 0x08 | LSR_BI)

#define MSR_DELTAS 0x0f
#define MSR_CTS	   0x10
#define MSR_DSR	   0x20
#define MSR_RI	   0x40
#define MSR_DCD	   0x80

static const unsigned int fifo_trigger[4] = {1, 4, 8, 14};

/* What the modem lines say: a cable with everything asserted, or in
 * loopback the chip's own outputs (RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD). */
static uint8_t uart__modem_lines(const struct uart16550 *u)
{
	uint8_t m = u->mcr;

	if (!(m & MCR_LOOP))
		return MSR_CTS | MSR_DSR | MSR_DCD;
	return (uint8_t)(((m & MCR_RTS) ? MSR_CTS : 0) | ((m & MCR_DTR) ? MSR_DSR : 0) |
			 ((m & MCR_OUT1) ? MSR_RI : 0) | ((m & MCR_OUT2) ? MSR_DCD : 0));
}

static void uart__update_msr(struct uart16550 *u)
{
	uint8_t lines = uart__modem_lines(u);
	uint8_t changed = (u->msr ^ lines) & 0xf0;
	uint8_t delta = 0;

	if (changed & MSR_CTS)
		delta |= 0x01;
	if (changed & MSR_DSR)
		delta |= 0x02;
	if ((u->msr & MSR_RI) && !(lines & MSR_RI))
		delta |= 0x04; /* trailing edge of RI only */
	if (changed & MSR_DCD)
		delta |= 0x08;
	u->msr = (uint8_t)(lines | ((u->msr | delta) & MSR_DELTAS));
}

static uint8_t uart__iir(const struct uart16550 *u)
{
	uint8_t fifo = (u->fcr & FCR_ENABLE) ? IIR_FIFO : 0;

	if ((u->ier & IER_RLSI) && (u->lsr & LSR_ERRORS))
		return fifo | IIR_RLSI;
	if ((u->ier & IER_RDI) && u->rx_count) {
		unsigned int trig = (u->fcr & FCR_ENABLE) ? fifo_trigger[u->fcr >> 6] : 1;

		/* Below the trigger level real chips wait four character
		 * times; we report the timeout at once, which is allowed. */
		return fifo | (u->rx_count >= trig ? IIR_RDI : IIR_CTI);
	}
	if ((u->ier & IER_THRI) && u->thre_pending)
		return fifo | IIR_THRI;
	if ((u->ier & IER_MSI) && (u->msr & MSR_DELTAS))
		return fifo | IIR_MSI;
	return fifo | IIR_NO_INT;
}

/* On a PC the line reaches the PIC only through the OUT2 gate, and OUT2
 * is not driven out while in loopback. */
static void uart__update_irq(struct uart16550 *u)
{
	int level = !(uart__iir(u) & IIR_NO_INT) && (u->mcr & MCR_OUT2) && !(u->mcr & MCR_LOOP);

	if (level != u->irq_level) {
		u->irq_level = level;
		if (u->ops && u->ops->set_irq)
			u->ops->set_irq(u->opaque, level);
	}
}

static unsigned int uart__fifo_depth(const struct uart16550 *u)
{
	return (u->fcr & FCR_ENABLE) ? UART_FIFO_SIZE : 1;
}

static unsigned int uart__push(struct uart16550 *u, const uint8_t *buf, unsigned int len)
{
	unsigned int depth = uart__fifo_depth(u), i;

	for (i = 0; i < len; i++) {
		if (u->rx_count >= depth) {
			u->lsr |= LSR_OE;
			break;
		}
		u->rx[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = buf[i];
		u->rx_count++;
	}
	if (u->rx_count)
		u->lsr |= LSR_DR;
	if (u->rx_count >= depth)
		u->rx_was_full = true;
	return i;
}

static void uart__clear_rx(struct uart16550 *u)
{
	u->rx_head = u->rx_count = 0;
	u->lsr &= (uint8_t)~LSR_DR;
}

void uart__init(struct uart16550 *u, const struct uart_ops *ops, void *opaque)
{
	memset(u, 0, sizeof(*u));
	pthread_mutex_init(&u->lock, NULL);
	u->ops = ops;
	u->opaque = opaque;
	u->lsr = LSR_THRE | LSR_TEMT;
	u->lcr = 0x03;
	uart__update_msr(u);
	u->msr &= (uint8_t)~MSR_DELTAS; /* power-on is not a change */
}

void uart__destroy(struct uart16550 *u)
{
	pthread_mutex_destroy(&u->lock);
}

static uint8_t uart__read_locked(struct uart16550 *u, unsigned int off)
{
	uint8_t v = 0;

	switch (off) {
	case RBR:
		if (u->lcr & LCR_DLAB)
			return u->dll;
		if (!u->rx_count)
			return 0;
		v = u->rx[u->rx_head];
		u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
		u->rx_count--;
		if (!u->rx_count)
			u->lsr &= (uint8_t)~LSR_DR;
		if (u->rx_was_full) {
			u->rx_was_full = false;
			if (u->ops && u->ops->rx_room)
				u->ops->rx_room(u->opaque);
		}
		return v;
	case IER: return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case IIR:
		v = uart__iir(u);
		/* Reading IIR acknowledges a THR-empty interrupt it reports. */
		if ((v & 0x0f) == IIR_THRI)
			u->thre_pending = false;
		return v;
	case LCR: return u->lcr;
	case MCR: return u->mcr;
	case LSR:
		v = u->lsr;
		u->lsr &= (uint8_t)~LSR_ERRORS;
		return v;
	case MSR:
		v = u->msr;
		u->msr &= (uint8_t)~MSR_DELTAS;
		return v;
	default: return u->scr;
	}
}

static void uart__write_locked(struct uart16550 *u, unsigned int off, uint8_t val)
{
	switch (off) {
	case RBR: /* THR */
		if (u->lcr & LCR_DLAB) {
			u->dll = val;
			break;
		}
		if (u->mcr & MCR_LOOP)
			uart__push(u, &val, 1);
		else if (u->ops && u->ops->tx)
			u->ops->tx(u->opaque, val);
		/* Sent at once: THR is empty again, which is a new event. */
		u->lsr |= LSR_THRE | LSR_TEMT;
		u->thre_pending = true;
		break;
	case IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = val;
			break;
		}
		/* Enabling THRI while THR is empty interrupts at once; Linux's
		 * 8250 start-up test depends on it. */
		if ((val & IER_THRI) && !(u->ier & IER_THRI) && (u->lsr & LSR_THRE))
			u->thre_pending = true;
		u->ier = val & 0x0f;
		break;
	case IIR: /* FCR */
		if ((val ^ u->fcr) & FCR_ENABLE)
			uart__clear_rx(u); /* toggling FIFO mode resets them */
		if (val & FCR_CLEAR_RX)
			uart__clear_rx(u);
		u->fcr = val & (FCR_ENABLE | 0xc0);
		break;
	case LCR: u->lcr = val; break;
	case MCR:
		u->mcr = val & 0x1f;
		uart__update_msr(u);
		break;
	case LSR: /* read-only (factory test mode not modelled) */
	case MSR: break;
	default: u->scr = val; break;
	}
}

uint8_t uart__read(struct uart16550 *u, unsigned int offset)
{
	uint8_t v;

	pthread_mutex_lock(&u->lock);
	v = uart__read_locked(u, offset & 7);
	uart__update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return v;
}

void uart__write(struct uart16550 *u, unsigned int offset, uint8_t val)
{
	pthread_mutex_lock(&u->lock);
	uart__write_locked(u, offset & 7, val);
	uart__update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

unsigned int uart__rx_room(struct uart16550 *u)
{
	unsigned int room;

	pthread_mutex_lock(&u->lock);
	room = uart__fifo_depth(u) -
	       (u->rx_count < uart__fifo_depth(u) ? u->rx_count : uart__fifo_depth(u));
	if (!room)
		u->rx_was_full = true;
	pthread_mutex_unlock(&u->lock);
	return room;
}

unsigned int uart__receive(struct uart16550 *u, const uint8_t *buf, unsigned int len)
{
	unsigned int n;

	pthread_mutex_lock(&u->lock);
	/* In loopback the receiver hears only the transmitter. */
	n = (u->mcr & MCR_LOOP) ? 0 : uart__push(u, buf, len);
	uart__update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

int uart__save(struct uart16550 *u, uint8_t **buf, size_t *len)
{
	Vmmd__State__V1__Uart16550State s = VMMD__STATE__V1__UART16550_STATE__INIT;
	uint8_t fifo[UART_FIFO_SIZE];
	unsigned int i;

	pthread_mutex_lock(&u->lock);
	s.ier = u->ier;
	s.lcr = u->lcr;
	s.mcr = u->mcr;
	s.lsr = u->lsr;
	s.msr = u->msr;
	s.scr = u->scr;
	s.fcr = u->fcr;
	s.dll = u->dll;
	s.dlm = u->dlm;
	s.thre_pending = u->thre_pending;
	for (i = 0; i < u->rx_count; i++)
		fifo[i] = u->rx[(u->rx_head + i) % UART_FIFO_SIZE];
	s.rx_fifo.data = fifo;
	s.rx_fifo.len = u->rx_count;
	pthread_mutex_unlock(&u->lock);

	*len = vmmd__state__v1__uart16550_state__get_packed_size(&s);
	*buf = malloc(*len ? *len : 1);
	if (!*buf)
		return -ENOMEM;
	vmmd__state__v1__uart16550_state__pack(&s, *buf);
	return 0;
}

int uart__restore(struct uart16550 *u, const uint8_t *buf, size_t len)
{
	Vmmd__State__V1__Uart16550State *s =
	    vmmd__state__v1__uart16550_state__unpack(NULL, len, buf);

	if (!s)
		return -EINVAL;
	if (s->rx_fifo.len > UART_FIFO_SIZE) {
		vmmd__state__v1__uart16550_state__free_unpacked(s, NULL);
		return -EINVAL;
	}
	pthread_mutex_lock(&u->lock);
	u->ier = s->ier & 0x0f;
	u->lcr = (uint8_t)s->lcr;
	u->mcr = s->mcr & 0x1f;
	u->lsr = (uint8_t)s->lsr;
	u->msr = (uint8_t)s->msr;
	u->scr = (uint8_t)s->scr;
	u->fcr = s->fcr & (FCR_ENABLE | 0xc0);
	u->dll = (uint8_t)s->dll;
	u->dlm = (uint8_t)s->dlm;
	u->thre_pending = s->thre_pending;
	u->rx_head = 0;
	u->rx_count = (unsigned int)s->rx_fifo.len;
	if (u->rx_count)
		memcpy(u->rx, s->rx_fifo.data, u->rx_count);
	u->irq_level = -1; /* force the line to be driven again */
	uart__update_irq(u);
	pthread_mutex_unlock(&u->lock);
	vmmd__state__v1__uart16550_state__free_unpacked(s, NULL);
	return 0;
}

/* --- COM1 on the VM's port bus --- */

struct com_port {
	struct vm *vm;
	struct uart16550 uart;
	struct serial *backend;
};

static struct com_port com1;

static void com__set_irq(void *opaque, int level)
{
	struct com_port *c = opaque;

	vm__set_irq(c->vm, COM1_IRQ, level);
}

static void com__tx(void *opaque, uint8_t byte)
{
	struct com_port *c = opaque;

	if (c->backend)
		serial__tx(c->backend, byte);
}

static void com__rx_room(void *opaque)
{
	struct com_port *c = opaque;

	if (c->backend)
		serial__rx_room(c->backend);
}

static const struct uart_ops com_ops = {
    .set_irq = com__set_irq,
    .tx = com__tx,
    .rx_room = com__rx_room,
};

/* Wider accesses are split into byte accesses of consecutive registers. */
static void com__io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct com_port *c = opaque;

	for (uint32_t i = 0; i < len; i++) {
		if (offset + i >= 8) {
			if (!is_write)
				data[i] = 0xff;
			continue;
		}
		if (is_write)
			uart__write(&c->uart, (unsigned int)(offset + i), data[i]);
		else
			data[i] = uart__read(&c->uart, (unsigned int)(offset + i));
	}
}

static int com__save(void *opaque, uint8_t **buf, size_t *len)
{
	struct com_port *c = opaque;

	return uart__save(&c->uart, buf, len);
}

static int com__restore(void *opaque, const uint8_t *buf, size_t len)
{
	struct com_port *c = opaque;

	return uart__restore(&c->uart, buf, len);
}

static const struct state_ops com_state_ops = {
    .section = "uart_16550.com1",
    .save = com__save,
    .restore = com__restore,
};

static int uart_16550__init(struct vm *vm)
{
	int err;

	com1.vm = vm;
	uart__init(&com1.uart, &com_ops, &com1);
	err = bus__register(&vm->pio_bus, COM1_BASE, 8, com__io, &com1, "com1");
	if (err < 0)
		goto out_destroy;
	err = vm__register_state(vm, &com_state_ops, &com1);
	if (err < 0)
		goto out_destroy;
	/* The backend comes last: its input callback may fire at once. */
	com1.backend = serial__open(vm, &com1.uart);
	if (!com1.backend) {
		err = -errno;
		goto out_destroy;
	}
	return 0;

out_destroy:
	/* A bus range cannot be unregistered; the VM is being torn down. */
	uart__destroy(&com1.uart);
	return err;
}

static void uart_16550__exit(struct vm *vm)
{
	if (com1.backend)
		serial__close(com1.backend);
	com1.backend = NULL;
}

device_init(uart_16550__init, uart_16550__exit);
