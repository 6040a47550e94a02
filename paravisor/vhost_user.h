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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* What the transport holds of a device, saved with the model's state. */
struct vhost_user_rings {
	uint64_t features; /* acked by the front-end */
	unsigned int nr;   /* queues */
	struct {
		uint16_t last_avail, used_idx;
		bool started;
	} q[VIRTIO_MAX_QUEUES];
};

/*
 * The device's state for DEVICE_STATE (see virtio/vhost_user_state.h):
 * save encodes the model's and the transport's state into a malloc'd
 * buffer (0 or negative errno); load decodes one, checks it against this
 * device (offered: the features we offer) and applies the model's part,
 * returning the transport's in *rings: 0, or a VHOST_USER_STATE_E_* code
 * with why (nothing applied then).  Only ever called while no ring runs.
 */
struct vhost_user_state_ops {
	int (*save)(void *opaque, const struct vhost_user_rings *rings, uint8_t **buf, size_t *len);
	int (*load)(void *opaque, const uint8_t *buf, size_t len, uint64_t offered,
		    struct vhost_user_rings *rings, char *why, size_t whylen);
	void *opaque;
};

/* Offers DEVICE_STATE with ops (copied); without it, the protocol feature
 * is not offered. */
void vhost_user__set_state_ops(struct vhost_user *vu, const struct vhost_user_state_ops *ops);

/* Tests only: takes SET_VRING_ENABLE even after a refused state, as a
 * back-end that misbehaves would, so the front-end's fallback (stopping
 * it and giving the rings back to the old one) can be tested. */
void vhost_user__test_enable_anyway(struct vhost_user *vu);

/* Stops the model, closes the rings' fds and unmaps guest RAM: the state of
 * a back-end that no front-end has set up yet. */
void vhost_user__disconnect(struct vhost_user *vu);
void vhost_user__destroy(struct vhost_user *vu);

#endif
