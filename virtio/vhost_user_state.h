/* virtio/vhost_user_state.h — moving a back-end's device state to another
 * back-end over vhost-user DEVICE_STATE (SET_DEVICE_STATE_FD and
 * CHECK_DEVICE_STATE, QEMU's docs/interop/vhost-user.rst): the state itself
 * is opaque here, a byte stream through a pipe.  Both ends use this file:
 * vmm's front-end to run the transfer, the paravisor to read and write its
 * pipe end, and both to name the reason a back-end refused. */
#ifndef VMMD_VIRTIO_VHOST_USER_STATE_H
#define VMMD_VIRTIO_VHOST_USER_STATE_H

#include <stddef.h>
#include <stdint.h>

/* More than any device's state; a larger stream is refused. */
#define VHOST_USER_STATE_MAX (32u * 1024)

/* Why a back-end refused a transfer: the low byte of its answers (the
 * protocol only says "not 0"; ours name the reason, the back-end's log
 * has the details). */
enum vhost_user_state_err {
	VHOST_USER_STATE_OK = 0,
	VHOST_USER_STATE_E_IO = 1,	    /* the pipe failed, or the state is too large */
	VHOST_USER_STATE_E_MALFORMED = 2,   /* not a state this back-end can parse */
	VHOST_USER_STATE_E_TOO_NEW = 3,	    /* written for newer readers only */
	VHOST_USER_STATE_E_OTHER = 4,	    /* of another device or disk image */
	VHOST_USER_STATE_E_FEATURES = 5,    /* acked features this back-end lacks */
	VHOST_USER_STATE_E_RUNNING = 6,	    /* the device's rings still run */
	VHOST_USER_STATE_E_NO_TRANSFER = 7, /* CHECK without SET_DEVICE_STATE_FD */
	VHOST_USER_STATE_E_BAD_REQUEST = 8, /* unknown direction or phase */
	VHOST_USER_STATE_E_TEST_HOOK = 9,   /* --test-fail-restore */
};

/* "the state was written for newer readers", for any answer code. */
const char *vhost_user_state__reason(uint64_t code);

/* Reads fd to its end (at most VHOST_USER_STATE_MAX bytes, waiting at most
 * timeout_ms for each part; 0: no limit) into a malloc'd *buf.  0 or
 * negative errno with why. */
int vhost_user_state__read_fd(int fd, unsigned int timeout_ms, uint8_t **buf, size_t *len,
			      char *why, size_t whylen);
/* Writes all of buf to fd.  0 or negative errno with why. */
int vhost_user_state__write_fd(int fd, const uint8_t *buf, size_t len, char *why, size_t whylen);

/*
 * One end of a transfer, as the front-end reaches it: send sends request
 * req with payload and fds without waiting; wait waits for the back-end's
 * 64-bit answer to req (answers come in the order of the requests).  Both
 * 0, or negative errno with why when the connection failed.
 */
struct vhost_user_state_conn {
	int (*send)(void *ctx, uint32_t req, const void *payload, uint32_t size, const int *fds,
		    unsigned int nr_fds, char *why, size_t whylen);
	int (*wait)(void *ctx, uint32_t req, uint64_t *answer, char *why, size_t whylen);
	void *ctx;
};

/*
 * Moves the device state from one stopped back-end to another: from saves
 * it into a pipe (SET_DEVICE_STATE_FD SAVE, read to the end, then
 * CHECK_DEVICE_STATE), to loads it from another (LOAD, write, CHECK).
 * 0, or negative errno with why naming the side and the reason; from's
 * device is untouched by a failure (it can resume as it was).  *size gets
 * the state's size for the log.
 */
int vhost_user_state__transfer(const struct vhost_user_state_conn *from,
			       const struct vhost_user_state_conn *to, unsigned int timeout_ms,
			       size_t *size, char *why, size_t whylen);

/*
 * The same in steps, so that servicing holds the guest's I/O only for
 * what needs both back-ends stopped:
 *  - load_begin, while the old back-end still serves: the new one gets the
 *    read end of a pipe (SET_DEVICE_STATE_FD LOAD); *wfd is the write end;
 *  - save_send, right after the requests that stop the old back-end's
 *    rings, without waiting for them: SET_DEVICE_STATE_FD SAVE and CHECK;
 *    *rfd is the pipe's read end;
 *  - save_end, once the answers before them were read: both answers and
 *    the state (a malloc'd *buf);
 *  - load_end: the state into *wfd, closed, and the new one's CHECK.
 * Or, so that the state goes from one back-end to the other without the
 * front-end waiting in between (servicing):
 *  - save_send_fd: the old one gets the new one's *wfd (from load_begin)
 *    with SAVE, and CHECK, not waiting; wfd is closed here;
 *  - check_send: the new one's CHECK (it reads the pipe to its end, which
 *    comes when the old one has written its state and closed);
 *  - save_wait and load_wait: the old one's two answers, the new one's.
 * Each returns 0 or negative errno with why naming the side; save_end and
 * load_end close the fd they are given, whatever happens.
 */
int vhost_user_state__load_begin(const struct vhost_user_state_conn *to, int *wfd, char *why,
				 size_t whylen);
int vhost_user_state__save_send(const struct vhost_user_state_conn *from, int *rfd, char *why,
				size_t whylen);
int vhost_user_state__save_end(const struct vhost_user_state_conn *from, int rfd,
			       unsigned int timeout_ms, uint8_t **buf, size_t *len, char *why,
			       size_t whylen);
int vhost_user_state__load_end(const struct vhost_user_state_conn *to, int wfd,
			       const uint8_t *buf, size_t len, char *why, size_t whylen);
int vhost_user_state__save_send_fd(const struct vhost_user_state_conn *from, int wfd, char *why,
				   size_t whylen);
int vhost_user_state__check_send(const struct vhost_user_state_conn *to, char *why, size_t whylen);
int vhost_user_state__save_wait(const struct vhost_user_state_conn *from, char *why, size_t whylen);
int vhost_user_state__load_wait(const struct vhost_user_state_conn *to, char *why, size_t whylen);
#endif
