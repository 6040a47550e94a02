/* paravisor/vhost_user.h — the vhost-user back-end: a second virtio
 * transport, next to vmm's virtio-pci.  It drives any device model through
 * virtio/device.h exactly as virtio-pci does (features, config space, queue
 * addresses, kick and call eventfds, start and stop), but the guest's driver
 * is reached through a vhost-user front-end (QEMU, later vmm) on a Unix
 * socket: guest RAM arrives as memfds, kicks and interrupts as eventfds.
 *
 * One connection at a time; messages are handled on the caller's thread,
 * the model runs its own. */
#ifndef VMMD_PARAVISOR_VHOST_USER_H
#define VMMD_PARAVISOR_VHOST_USER_H

#include "virtio/device.h"

struct vhost_user;

/* A back-end for vdev (the caller keeps ownership of the model).  NULL with
 * errno set. */
struct vhost_user *vhost_user__create(struct virtio_device *vdev);

/*
 * Reads and handles one message from the front-end on sock.  0: go on;
 * 1: the front-end closed the connection; <0: the connection must be closed
 * (a malformed or unsupported message; logged, naming it).  After anything
 * but 0, call vhost_user__disconnect().
 */
int vhost_user__serve(struct vhost_user *vu, int sock);

/* Stops the model, closes the rings' fds and unmaps guest RAM: the state of
 * a back-end that no front-end has set up yet. */
void vhost_user__disconnect(struct vhost_user *vu);
void vhost_user__destroy(struct vhost_user *vu);

#endif
