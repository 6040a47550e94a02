/* vmm/serial.h — the 16550A register model (uart_16550.c) and the host-side
 * backends that feed it (serial.c).  The model knows nothing about KVM: it
 * reports its interrupt line and its output through callbacks, so it can be
 * driven by unit tests as well as by the vCPU's port I/O. */
#ifndef VMMD_VMM_SERIAL_H
#define VMMD_VMM_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

#define UART_FIFO_SIZE 16

struct uart_ops {
	void (*set_irq)(void *opaque, int level); /* called on every change */
	void (*tx)(void *opaque, uint8_t byte);	  /* a byte left the UART */
	void (*rx_room)(void *opaque);		  /* the guest drained a full RX FIFO */
};

struct uart16550 {
	pthread_mutex_t lock;
	const struct uart_ops *ops;
	void *opaque;

	uint8_t ier, lcr, mcr, lsr, msr, scr, fcr, dll, dlm;
	bool thre_pending; /* THR-empty interrupt raised and not acknowledged */
	bool rx_was_full;  /* tell the backend when room appears again */
	int irq_level;	   /* last level given to set_irq */

	uint8_t rx[UART_FIFO_SIZE];
	unsigned int rx_head, rx_count;
};

void uart__init(struct uart16550 *u, const struct uart_ops *ops, void *opaque);
void uart__destroy(struct uart16550 *u);
/* Register access at offset 0..7, one byte. */
uint8_t uart__read(struct uart16550 *u, unsigned int offset);
void uart__write(struct uart16550 *u, unsigned int offset, uint8_t val);
/* Bytes the RX FIFO takes now without overrun (1 without FIFO mode). */
unsigned int uart__rx_room(struct uart16550 *u);
/* Receive bytes from the line; bytes beyond the FIFO are lost with LSR.OE,
 * as on hardware.  Returns how many were stored. */
unsigned int uart__receive(struct uart16550 *u, const uint8_t *buf, unsigned int len);
int uart__save(struct uart16550 *u, uint8_t **buf, size_t *len);
int uart__restore(struct uart16550 *u, const uint8_t *buf, size_t len);

/*
 * Backends (vm->cfg->serial): stdio, append to a file, a unix socket, none.
 * Input is read on vm->loop and pushed only while the UART has room, so
 * nothing typed is dropped; output is written synchronously (short).
 */
struct serial;

struct serial *serial__open(struct vm *vm, struct uart16550 *uart);
/* uart_ops.tx and uart_ops.rx_room of the device forward here. */
void serial__tx(struct serial *s, uint8_t byte);
void serial__rx_room(struct serial *s);
void serial__close(struct serial *s);

#endif
