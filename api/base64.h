/* api/base64.h — base64 for bytes fields in JSON (RFC 4648). */
#ifndef VMMD_API_BASE64_H
#define VMMD_API_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Standard alphabet, padded. A malloc'd NUL-terminated string, or NULL on ENOMEM. */
char *base64__encode(const uint8_t *data, size_t len);

/* Accepts the standard or the URL-safe alphabet, padded or not, and no
 * whitespace. On success *out is malloc'd (NULL when *out_len is 0).
 * Returns 0, -EINVAL for text that is not base64, or -ENOMEM. */
int base64__decode(const char *s, size_t len, uint8_t **out, size_t *out_len);

#endif
