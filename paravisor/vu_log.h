/* paravisor/vu_log.h — the front-end's dirty log (vhost-user LOG_SHMFD).
 *
 * While the front-end migrates the VM, it hands us a shared memory area
 * with one bit per 4 KiB page of guest-physical space (SET_LOG_BASE) and
 * acks VHOST_F_LOG_ALL; from then on every page a device model writes is
 * marked there (virtio/mem.h: gpa_log), so the front-end resends it.  KVM's
 * own dirty log only sees what vCPUs write. */
#ifndef VMMD_PARAVISOR_VU_LOG_H
#define VMMD_PARAVISOR_VU_LOG_H

#include <stddef.h>
#include <stdint.h>

struct vu_log {
	uint8_t *base; /* NULL: no log */
	uint64_t size; /* bytes */
	void *map;     /* our mapping, from offset 0 of the fd */
	size_t map_len;
};

/*
 * Maps [offset, offset+size) of fd as the log, replacing any earlier one.
 * fd is always closed.  0, or negative errno with why (a zero or wrapping
 * size, a failed mmap).
 */
int vu_log__set(struct vu_log *l, int fd, uint64_t size, uint64_t offset, char *why, size_t whylen);
void vu_log__clear(struct vu_log *l);

#endif
