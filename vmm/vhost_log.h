/* vmm/vhost_log.h — the dirty log of vhost-user back-ends (paravisors).
 *
 * KVM's dirty log sees only what vCPUs write; a paravisor writes guest RAM
 * itself (disk reads, used rings).  While a live migration logs dirty pages,
 * one shared memfd — a bit per 4 KiB page of guest-physical space, the
 * vhost-user log format — is handed to every registered vhost-user device,
 * and each fetch of the dirty log takes its bits too, translated to RAM
 * offsets.  One log for all devices, as the protocol intends. */
#ifndef VMMD_VMM_VHOST_LOG_H
#define VMMD_VMM_VHOST_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct virtio_device;

/* A vhost-user front-end model (virtio/vhost_user_front.h) of this VM. */
int vhost_log__register(struct vm *vm, struct virtio_device *vdev);
void vhost_log__unregister(struct vm *vm, struct virtio_device *vdev);

/* At the VM's end: frees what is left. */
void vhost_log__release(struct vm *vm);

/* on: every registered device logs from now on: 0, or negative errno with
 * why naming the device that cannot and its reason; off: none does, the
 * log is freed (why unused). */
int vhost_log__enable(struct vm *vm, bool on, char *why, size_t whylen);

/* ORs the pages logged since the last call into bitmap (one bit per 4 KiB
 * of RAM, as in the memfd) and clears them in the log. */
void vhost_log__fetch(struct vm *vm, uint64_t *bitmap);

#endif
