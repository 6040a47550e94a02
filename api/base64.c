/* api/base64.c — base64 for bytes fields in JSON (RFC 4648). */
#include "api/base64.h"

#include <errno.h>
#include <stdlib.h>

static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64__encode(const uint8_t *data, size_t len)
{
	char *out = malloc((len + 2) / 3 * 4 + 1), *p = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];

		*p++ = base64_alphabet[v >> 18 & 63];
		*p++ = base64_alphabet[v >> 12 & 63];
		*p++ = base64_alphabet[v >> 6 & 63];
		*p++ = base64_alphabet[v & 63];
	}
	if (i < len) {
		uint32_t v =
		    (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);

		*p++ = base64_alphabet[v >> 18 & 63];
		*p++ = base64_alphabet[v >> 12 & 63];
		*p++ = i + 1 < len ? base64_alphabet[v >> 6 & 63] : '=';
		*p++ = '=';
	}
	*p = '\0';
	return out;
}

/* The 6-bit value of c in either alphabet, or -1. */
static int base64__sextet(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int base64__decode(const char *s, size_t len, uint8_t **out, size_t *out_len)
{
	size_t pad = 0, n, i, o = 0;
	uint32_t acc = 0;
	uint8_t *buf;

	*out = NULL;
	*out_len = 0;
	while (pad < 2 && len > pad && s[len - pad - 1] == '=')
		pad++;
	if (pad && len % 4)
		return -EINVAL; /* padding only ever completes a quartet */
	n = len - pad;
	if (n % 4 == 1)
		return -EINVAL; /* one sextet cannot hold a byte */
	if (n == 0)
		return 0;
	buf = malloc(n / 4 * 3 + 2);
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		int v = base64__sextet(s[i]);

		if (v < 0) {
			free(buf);
			return -EINVAL;
		}
		acc = acc << 6 | (uint32_t)v;
		if (i % 4 == 3) {
			buf[o++] = acc >> 16 & 0xff;
			buf[o++] = acc >> 8 & 0xff;
			buf[o++] = acc & 0xff;
			acc = 0;
		}
	}
	if (n % 4 == 2) {
		buf[o++] = acc >> 4 & 0xff;
	} else if (n % 4 == 3) {
		buf[o++] = acc >> 10 & 0xff;
		buf[o++] = acc >> 2 & 0xff;
	}
	*out = buf;
	*out_len = o;
	return 0;
}
