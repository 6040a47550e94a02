/* common/why.h — the reason a check failed, for the caller to log once with
 * the object named (see STYLE.md: errors and logging). */
#ifndef VMMD_COMMON_WHY_H
#define VMMD_COMMON_WHY_H

#include <stddef.h>

/* Formats the reason into why (if non-NULL) and returns err. */
int why__set(char *why, size_t whylen, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
