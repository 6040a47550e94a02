/* common/size.h — sizes as people write them on command lines. */
#ifndef VMMD_COMMON_SIZE_H
#define VMMD_COMMON_SIZE_H

#include <stdint.h>

/*
 * "512M", "2G", "1GiB", "4096k", "1T", "256MB" into bytes; a bare number
 * means MiB, as in QEMU. 0, -EINVAL for anything else (a sign, a missing
 * number, an unknown unit, trailing text), -ERANGE when it does not fit.
 */
int size__parse(const char *s, uint64_t *bytes);

#endif
