/* tests/unit/test_uart_16550.c — the 16550A register model, without KVM. */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/serial.h"

enum { RBR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

struct sink {
	int irq;
	int irq_changes;
	uint8_t out[64];
	unsigned int nr_out;
	int rx_room_calls;
};

static void sink_irq(void *opaque, int level)
{
	struct sink *s = opaque;

	s->irq = level;
	s->irq_changes++;
}

static void sink_tx(void *opaque, uint8_t byte)
{
	struct sink *s = opaque;

	if (s->nr_out < sizeof(s->out))
		s->out[s->nr_out++] = byte;
}

static void sink_rx_room(void *opaque)
{
	struct sink *s = opaque;

	s->rx_room_calls++;
}

static const struct uart_ops sink_ops = {sink_irq, sink_tx, sink_rx_room};

struct fixture {
	struct uart16550 u;
	struct sink s;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	uart__init(&f->u, &sink_ops, &f->s);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	uart__destroy(&f->u);
	free(f);
	return 0;
}

/* What Linux's 8250 driver does when it opens the port. */
static void linux_like_setup(struct uart16550 *u)
{
	uart__write(u, FCR, 0xc7); /* FIFO on, clear, trigger 14 */
	uart__write(u, LCR, 0x03);
	uart__write(u, MCR, 0x0b); /* DTR, RTS, OUT2 */
}

static void test_uart_thr_write_reaches_output(void **state)
{
	struct fixture *f = *state;

	uart__write(&f->u, RBR, 'h');
	uart__write(&f->u, RBR, 'i');
	assert_int_equal(f->s.nr_out, 2);
	assert_memory_equal(f->s.out, "hi", 2);
	assert_int_equal(uart__read(&f->u, LSR) & 0x60, 0x60); /* THRE, TEMT */
}

static void test_uart_dlab_latches_divisor(void **state)
{
	struct fixture *f = *state;

	uart__write(&f->u, IER, 0x05);
	uart__write(&f->u, LCR, 0x83);
	uart__write(&f->u, RBR, 0x0c); /* DLL: 9600 baud */
	uart__write(&f->u, IER, 0x00); /* DLM */
	assert_int_equal(uart__read(&f->u, RBR), 0x0c);
	assert_int_equal(uart__read(&f->u, IER), 0x00);
	assert_int_equal(f->s.nr_out, 0); /* the divisor write sent nothing */
	uart__write(&f->u, LCR, 0x03);
	assert_int_equal(uart__read(&f->u, IER), 0x05); /* IER untouched */
	uart__write(&f->u, LCR, 0x83);
	assert_int_equal(uart__read(&f->u, RBR), 0x0c);
}

static void test_uart_iir_priorities(void **state)
{
	struct fixture *f = *state;
	uint8_t byte = 'a';

	linux_like_setup(&f->u);
	assert_int_equal(uart__read(&f->u, IIR), 0xc1); /* FIFO bits, no int */
	uart__write(&f->u, IER, 0x07);			/* RLS, THRE, RX data */
	/* Enabling THRI with THR empty reports THRE; reading IIR acks it. */
	assert_int_equal(uart__read(&f->u, IIR), 0xc2);
	assert_int_equal(uart__read(&f->u, IIR), 0xc1);
	uart__write(&f->u, RBR, 'x');
	uart__receive(&f->u, &byte, 1);
	/* RX data (below trigger: timeout code) beats THRE. */
	assert_int_equal(uart__read(&f->u, IIR), 0xcc);
	/* Overrun: line status beats everything. */
	for (int i = 0; i < 20; i++)
		uart__receive(&f->u, &byte, 1);
	assert_int_equal(uart__read(&f->u, IIR), 0xc6);
	uart__read(&f->u, LSR);				/* clears OE */
	assert_int_equal(uart__read(&f->u, IIR), 0xc4); /* 16 >= trigger 14 */
	while (uart__read(&f->u, LSR) & 0x01)
		uart__read(&f->u, RBR);
	assert_int_equal(uart__read(&f->u, IIR), 0xc2); /* THRE still pending */
	assert_int_equal(uart__read(&f->u, IIR), 0xc1);
}

static void test_uart_rx_fifo_sets_dr(void **state)
{
	struct fixture *f = *state;

	linux_like_setup(&f->u);
	assert_int_equal(uart__read(&f->u, LSR) & 0x01, 0);
	assert_int_equal(uart__receive(&f->u, (const uint8_t *)"abc", 3), 3);
	assert_int_equal(uart__rx_room(&f->u), UART_FIFO_SIZE - 3);
	assert_int_equal(uart__read(&f->u, LSR) & 0x01, 1);
	assert_int_equal(uart__read(&f->u, RBR), 'a');
	assert_int_equal(uart__read(&f->u, RBR), 'b');
	assert_int_equal(uart__read(&f->u, RBR), 'c');
	assert_int_equal(uart__read(&f->u, LSR) & 0x01, 0);
}

static void test_uart_irq_line_follows_ier_and_out2(void **state)
{
	struct fixture *f = *state;

	uart__write(&f->u, FCR, 0x01);
	uart__write(&f->u, IER, 0x01);
	uart__receive(&f->u, (const uint8_t *)"z", 1);
	assert_int_equal(f->s.irq, 0); /* OUT2 low: gated */
	uart__write(&f->u, MCR, 0x08);
	assert_int_equal(f->s.irq, 1);
	uart__write(&f->u, IER, 0x00);
	assert_int_equal(f->s.irq, 0);
	uart__write(&f->u, IER, 0x01);
	assert_int_equal(f->s.irq, 1);
	uart__read(&f->u, RBR);
	assert_int_equal(f->s.irq, 0); /* drained: line drops */
}

static void test_uart_loopback(void **state)
{
	struct fixture *f = *state;

	uart__write(&f->u, FCR, 0x01);
	uart__write(&f->u, MCR, 0x1a); /* LOOP | OUT2 | RTS, as Linux probes */
	assert_int_equal(uart__read(&f->u, MSR) & 0xf0, 0x90);
	uart__write(&f->u, RBR, 'L');
	assert_int_equal(f->s.nr_out, 0); /* nothing on the wire */
	assert_int_equal(uart__read(&f->u, LSR) & 0x01, 1);
	assert_int_equal(uart__read(&f->u, RBR), 'L');
	/* The outside line is deaf in loopback. */
	assert_int_equal(uart__receive(&f->u, (const uint8_t *)"q", 1), 0);
	uart__write(&f->u, MCR, 0x0b);
	assert_int_equal(uart__read(&f->u, MSR) & 0xf0, 0xb0);
}

static void test_uart_fifo_overflow_sets_oe(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[UART_FIFO_SIZE + 4];

	memset(buf, 'o', sizeof(buf));
	uart__write(&f->u, FCR, 0x01);
	assert_int_equal(uart__receive(&f->u, buf, sizeof(buf)), UART_FIFO_SIZE);
	assert_int_equal(uart__rx_room(&f->u), 0);
	assert_int_equal(uart__read(&f->u, LSR) & 0x03, 0x03);
	assert_int_equal(uart__read(&f->u, LSR) & 0x02, 0); /* OE clears on read */
	/* Draining a full FIFO tells the backend there is room again. */
	uart__read(&f->u, RBR);
	assert_int_equal(f->s.rx_room_calls, 1);
}

static void test_uart_without_fifo_holds_one_byte(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(uart__rx_room(&f->u), 1);
	assert_int_equal(uart__receive(&f->u, (const uint8_t *)"12", 2), 1);
	assert_int_equal(uart__read(&f->u, IIR) & 0xc0, 0);
}

static void test_uart_save_restore_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct fixture g = {0};
	uint8_t *buf = NULL;
	size_t len = 0;

	linux_like_setup(&f->u);
	uart__write(&f->u, SCR, 0x5a);
	uart__write(&f->u, IER, 0x01);
	uart__receive(&f->u, (const uint8_t *)"xy", 2);
	assert_int_equal(uart__save(&f->u, &buf, &len), 0);
	uart__init(&g.u, &sink_ops, &g.s);
	assert_int_equal(uart__restore(&g.u, buf, len), 0);
	assert_int_equal(g.s.irq, 1); /* line driven from restored state */
	assert_int_equal(uart__read(&g.u, SCR), 0x5a);
	assert_int_equal(uart__read(&g.u, RBR), 'x');
	assert_int_equal(uart__read(&g.u, RBR), 'y');
	assert_int_equal(uart__restore(&g.u, (const uint8_t *)"\xff\xff", 2), -EINVAL);
	free(buf);
	uart__destroy(&g.u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_uart_thr_write_reaches_output, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_uart_dlab_latches_divisor, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_uart_iir_priorities, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_uart_rx_fifo_sets_dr, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_uart_irq_line_follows_ier_and_out2, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_uart_loopback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_uart_fifo_overflow_sets_oe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_uart_without_fifo_holds_one_byte, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_uart_save_restore_roundtrip, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
