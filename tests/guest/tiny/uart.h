/* tests/guest/tiny/uart.h — polled COM1 in and out, and number printing. */
#ifndef TINY_UART_H
#define TINY_UART_H

#include <stdbool.h>
#include <stdint.h>

void uart__init(void);
void uart__putc(char c);
void uart__puts(const char *s);
void uart__put_hex(uint64_t val);
void uart__put_dec(uint64_t val);
void uart__put_dec_width(uint32_t val, unsigned int width);
void uart__flush(void);
bool uart__can_read(void);
char uart__getc(void);

#endif
