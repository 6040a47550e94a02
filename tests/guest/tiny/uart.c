/*
 * tests/guest/tiny/uart.c — COM1 (16550 at 0x3f8), polled.
 *
 * No interrupts anywhere in the guest: every byte waits for THR empty
 * (LSR bit 5) or data ready (LSR bit 0).  Number printing lives here too
 * because it only exists to put numbers on the serial line.
 */
#include "uart.h"
#include "io.h"

#define COM1 0x3f8
#define UART_RBR 0 /* receive buffer (read) */
#define UART_THR 0 /* transmit holding (write) */
#define UART_IER 1
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_DLL 0 /* with LCR.DLAB */
#define UART_DLM 1

#define LSR_DR 0x01   /* data ready */
#define LSR_THRE 0x20 /* transmit holding register empty */
#define LSR_TEMT 0x40 /* transmitter completely idle */

#define LCR_8N1 0x03
#define LCR_DLAB 0x80

void uart__init(void)
{
	outb(COM1 + UART_IER, 0x00); /* we poll */
	outb(COM1 + UART_LCR, LCR_DLAB);
	outb(COM1 + UART_DLL, 1); /* 115200 baud */
	outb(COM1 + UART_DLM, 0);
	outb(COM1 + UART_LCR, LCR_8N1);
	/* FCR stays alone: switching the FIFOs on clears them, which would
	 * drop input a test host sent before we got here (test=echo). */
	outb(COM1 + UART_MCR, 0x03); /* DTR, RTS */
}

void uart__putc(char c)
{
	while (!(inb(COM1 + UART_LSR) & LSR_THRE))
		;
	outb(COM1 + UART_THR, (uint8_t)c);
}

void uart__puts(const char *s)
{
	while (*s)
		uart__putc(*s++);
}

/* Before a power-off the last bytes must have left the wire, not just THR. */
void uart__flush(void)
{
	while (!(inb(COM1 + UART_LSR) & LSR_TEMT))
		;
}

bool uart__can_read(void)
{
	return inb(COM1 + UART_LSR) & LSR_DR;
}

char uart__getc(void)
{
	while (!uart__can_read())
		;
	return (char)inb(COM1 + UART_RBR);
}

/* "0x" and lower-case digits, no leading zeros. */
void uart__put_hex(uint64_t val)
{
	char buf[16];
	int n = 0;

	do {
		buf[n++] = "0123456789abcdef"[val & 0xf];
		val >>= 4;
	} while (val);
	uart__puts("0x");
	while (n)
		uart__putc(buf[--n]);
}

/*
 * Divide *val by 10 in place and return the remainder.  There is no 32-bit
 * libgcc (__udivdi3) here, so do the long division by hand: the high word
 * with C's 32-bit division, then rem:low with one divl, which cannot
 * overflow because rem < 10.
 */
static uint32_t div10_u64(uint64_t *val)
{
	uint32_t hi = (uint32_t)(*val >> 32);
	uint32_t lo = (uint32_t)*val;
	uint32_t rem = hi % 10;

	hi /= 10;
	asm("divl %4" : "=a"(lo), "=d"(rem) : "a"(lo), "d"(rem), "rm"(10u));
	*val = ((uint64_t)hi << 32) | lo;
	return rem;
}

void uart__put_dec(uint64_t val)
{
	char buf[20];
	int n = 0;

	do {
		buf[n++] = (char)('0' + div10_u64(&val));
	} while (val);
	while (n)
		uart__putc(buf[--n]);
}

/* Zero-padded to at least width digits (dates and times). */
void uart__put_dec_width(uint32_t val, unsigned int width)
{
	uint32_t limit = 1;

	while (width-- > 1) {
		limit *= 10;
		if (val < limit)
			uart__putc('0');
	}
	uart__put_dec(val);
}
