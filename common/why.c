/* common/why.c — see why.h. */
#include "common/why.h"

#include <stdarg.h>
#include <stdio.h>

int why__set(char *why, size_t whylen, int err, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return err;
}
