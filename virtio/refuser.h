/* virtio/refuser.h — a stand-in for a device model that is gone (a
 * paravisor that died): it answers every request on the device's enabled
 * queues with an error, so the guest's driver sees failed I/O rather than
 * requests that never complete, until the transport stops the device. */
#ifndef VMMD_VIRTIO_REFUSER_H
#define VMMD_VIRTIO_REFUSER_H

#include "virtio/device.h"

struct virtio_refuser;

/* Writes the device's error answer into e; returns the bytes written. */
typedef uint32_t (*virtio_refuse_fn)(struct virtio_device *vdev, struct virtq_elem *e);

/*
 * Starts answering on a thread of its own.  Each enabled queue resumes at
 * the used index the guest sees, so what the gone model took but never
 * completed is answered too.  NULL with errno set if it cannot start.
 */
struct virtio_refuser *virtio_refuser__start(struct virtio_device *vdev, virtio_refuse_fn fn);
/* Stops and frees it; the queues are left as they are. */
void virtio_refuser__stop(struct virtio_refuser *r);

#endif
