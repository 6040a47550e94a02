/* common/tcp.h — "host:port" TCP endpoints as both live-migration channels
 * use them (migration/stream.c, daemon/migrate_chan.c). */
#ifndef VMMD_COMMON_TCP_H
#define VMMD_COMMON_TCP_H

#include <stddef.h>

/* "host:port", "[v6]:port" into host (may be empty: all addresses) and port. */
int tcp__split_addr(const char *addr, char *host, size_t hlen, char *port, size_t plen);
/* Send and receive timeouts on fd, in seconds. */
void tcp__timeouts(int fd, int secs);
/* A connected socket to "host:port" (connect bounded by timeout_s), with
 * TCP_NODELAY; -errno with why. */
int tcp__connect(const char *addr, int timeout_s, char *why, size_t wlen);
/* A listening socket on "host:port" (SO_REUSEADDR); -errno with why. */
int tcp__listen(const char *addr, int backlog, char *why, size_t wlen);

#endif
