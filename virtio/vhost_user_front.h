/* virtio/vhost_user_front.h — a device model that is not here: it implements
 * the virtio/device.h contract by forwarding to a vhost-user back-end (the
 * paravisor) over a connected Unix socket.
 *
 * The transport (vmm's virtio-pci) sees an ordinary model.  Features and
 * config space come from the back-end at create time; start() hands the
 * back-end guest RAM (the memfd), the negotiated features and, per enabled
 * queue, its size, ring addresses, index, and the transport's own kick and
 * call eventfds, so the guest's notifications and the back-end's interrupts
 * go through KVM without this process; stop() fetches each queue's index
 * back (GET_VRING_BASE), which is what the transport saves.
 *
 * If the back-end stops answering or the connection breaks, the device
 * fails (vdev->fail: NEEDS_RESET for the guest), nothing more is sent, and
 * the rings are answered here with errors (cfg.refuse) until the transport
 * stops the device; the VM keeps running. */
#ifndef VMMD_VIRTIO_VHOST_USER_FRONT_H
#define VMMD_VIRTIO_VHOST_USER_FRONT_H

#include "virtio/device.h"
#include "virtio/refuser.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vhost_user_front_cfg {
	const char *id;	  /* "disk0" */
	const char *type; /* "virtio-blk" */
	uint16_t device_id;
	uint32_t config_size;
	uint16_t queue_size;	 /* what the guest may choose at most */
	unsigned int nr_queues;	 /* the back-end must serve at least this many */
	int mem_fd;		 /* guest RAM: every region of vdev->mem is in it ... */
	const uint8_t *mem_base; /* ... at offset (hva - mem_base) */
	unsigned int timeout_ms; /* for each answer; then the back-end counts as hung */
	/* Once the back-end is gone, the device's error answer to a request
	 * (see virtio/refuser.h); NULL: requests stay unanswered. */
	virtio_refuse_fn refuse;
	/* Called at destroy, after the socket is closed (e.g. to reap the
	 * back-end's process). */
	void (*release)(void *opaque);
	/* The model's saved state beyond the rings, which the back-end does not
	 * hold (a NIC's libslirp state, in its netstack); NULL: none.  As
	 * virtio/device.h's save and restore, with opaque. */
	int (*save)(void *opaque, uint8_t **buf, size_t *len);
	int (*restore)(void *opaque, const uint8_t *buf, size_t len);
	void *opaque;
};

/*
 * Negotiates with the back-end on sock (GET_FEATURES, protocol features
 * with REPLY_ACK and CONFIG, GET_QUEUE_NUM, GET_CONFIG, SET_OWNER) and
 * returns the model.  sock belongs to it from now on, also on failure.
 * NULL on failure, why says what the back-end did or did not do, errno set.
 */
struct virtio_device *vhost_user_front__create(int sock, const struct vhost_user_front_cfg *cfg,
					       char *why, size_t whylen);

/*
 * The same in two steps, for a back-end process that starts after the
 * transport took the model (vmm starts one paravisor for all of a VM's
 * devices once every device exists): alloc() makes the model with no
 * back-end (features 0, config zeros: connect before the transport reads
 * them), connect() negotiates as create() does.  connect() owns sock, also
 * on failure; 0 or negative errno with why.
 */
struct virtio_device *vhost_user_front__alloc(const struct vhost_user_front_cfg *cfg, char *why,
					      size_t whylen);
int vhost_user_front__connect(struct virtio_device *vdev, int sock, char *why, size_t whylen);

/* hold: the transport's start() is put off (the back-end gets neither
 * the memory table nor the rings) until hold is false again, which then
 * starts the device if the transport started it meanwhile (a failure
 * fails the device).  For a back-end that may not touch guest RAM yet. */
void vhost_user_front__hold(struct virtio_device *vdev, bool hold);

/* The back-end is gone (its process exited): fails the device with why,
 * sends nothing more and answers the rings with errors.  Callable from any
 * thread. */
void vhost_user_front__gone(struct virtio_device *vdev, const char *why);

/*
 * Restart: vdev's back-end died (vhost_user_front__gone() not called), next
 * is a new one (as for replace).  vdev moves to next's connection; if its
 * rings ran, next gets the memory table, the inflight region, the rings at
 * the used index in guest RAM (the dead one cannot be asked) and the same
 * eventfds, and re-submits what the dead one left in flight.  0, or
 * negative errno with why: before anything was sent (vdev already failed,
 * or next does not match) vdev is untouched; after, vdev has failed and its
 * requests are answered with errors.  next is consumed either way.
 */
int vhost_user_front__reconnect(struct virtio_device *vdev, struct virtio_device *next, char *why,
				size_t whylen);

/*
 * Live migration: log_fd (>= 0) is a shared memory area of log_size bytes,
 * one bit per 4 KiB page of guest-physical space (bit p%8 of byte p/8); the
 * back-end marks every page it writes there from now on (SET_LOG_BASE and
 * VHOST_F_LOG_ALL; also a back-end that replaces it by servicing).  -1
 * stops logging.  The fd stays the caller's and must outlive the logging.
 * 0; -ENOTSUP when the back-end cannot log; else the back-end's refusal or
 * the connection's error, with why.
 */
int vhost_user_front__set_log(struct virtio_device *vdev, int log_fd, uint64_t log_size,
			      char *why, size_t whylen);

/* What a replace did. */
struct vhost_user_front_swap {
	/* The old back-end's rings stopped (the guest's requests held) until
	 * the new one's were enabled (served again); 0 if no ring ran. */
	uint64_t blackout_us;
	/* Of it: until the old back-end gave the indexes back (it finished
	 * the requests it held); the rest is the new one enabling. */
	uint64_t stop_us;
	/* Of it: the device state saved by the old one and loaded by the new
	 * one (0 without DEVICE_STATE); the rest is the new one's rings
	 * enabled.  And before it, the new one staged while the old served. */
	uint64_t state_us, stage_us;
	/* On failure: the device still runs on the old back-end (rolled back
	 * or never touched).  false: the old one broke too, the device has
	 * failed and its requests are answered with errors. */
	bool old_running;
};

/*
 * Live servicing: moves vdev (a model from create(), run by a transport)
 * onto the back-end of next (made by create() on the new back-end's
 * connection, never given to a transport, with no release hook).  Checks
 * first that next offers every feature the guest acked and the same config
 * space; then, while the old back-end still serves, hands next's back-end
 * the features, the memory table and the same ring addresses and eventfds
 * (rings disabled); only then stops vdev's rings on the old back-end (it
 * finishes the requests it took), moves its device state to next's
 * back-end when both offer DEVICE_STATE (virtio/vhost_user_state.h; a
 * refusal to load it is a failure like any other), gives next's back-end
 * the inflight region and the indexes and enables its rings: the blackout
 * is those last steps.  0: vdev talks to
 * the new back-end from now on.  Negative errno with why: vdev's rings went
 * back to the old back-end at the same indexes (res->old_running).
 * next is consumed either way; the connection that is no longer used is
 * closed, which is what lets that back-end's process exit.
 */
int vhost_user_front__replace(struct virtio_device *vdev, struct virtio_device *next,
			      struct vhost_user_front_swap *res, char *why, size_t whylen);
/*
 * The same, but after a switch the old connection is not closed: *old is a
 * model on it (as next was), which a later replace(vdev, *old) moves vdev
 * back onto (the old back-end takes the rings and the device state again),
 * so servicing several devices of one paravisor process can undo the ones
 * done when a later one fails.  Destroying *old closes it.  *old is NULL
 * on failure (next consumed, as above).
 */
int vhost_user_front__replace_keep(struct virtio_device *vdev, struct virtio_device *next,
				   struct virtio_device **old, struct vhost_user_front_swap *res,
				   char *why, size_t whylen);

#endif
