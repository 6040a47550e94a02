/*
 * virtio/vhost_user_state.c — device state through a pipe (see the header).
 *
 * The front-end owns both pipes.  Saving, it hands the write end to the
 * old back-end and keeps none of it, so the back-end's close is the end of
 * the state; loading, it hands the read end to the new back-end, writes the
 * state and closes, so the back-end reads to the end before CHECK answers.
 * The state is small (a few hundred bytes for a disk), so nothing here
 * needs a thread: a pipe holds it whole.
 */
#include "virtio/vhost_user_state.h"

#include "common/why.h"
#include "virtio/vhost_user_msg.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *vhost_user_state__reason(uint64_t code)
{
	static const char *const reasons[] = {
	    [VHOST_USER_STATE_OK] = "no error",
	    [VHOST_USER_STATE_E_IO] = "the state could not be read or written whole",
	    [VHOST_USER_STATE_E_MALFORMED] = "the state is malformed",
	    [VHOST_USER_STATE_E_TOO_NEW] = "the state was written for newer readers (its "
					   "min_reader_version is above what this build reads)",
	    [VHOST_USER_STATE_E_OTHER] = "the state is of another device or disk image",
	    [VHOST_USER_STATE_E_FEATURES] =
		"the state has features acked that this back-end does not offer",
	    [VHOST_USER_STATE_E_RUNNING] = "the rings of the device were still running",
	    [VHOST_USER_STATE_E_NO_TRANSFER] = "no transfer was started",
	    [VHOST_USER_STATE_E_BAD_REQUEST] = "unknown transfer direction or phase",
	    [VHOST_USER_STATE_E_TEST_HOOK] = "the test hook --test-fail-restore refused it",
	};
	unsigned int c = (unsigned int)(code & 0xff);

	if (c < sizeof(reasons) / sizeof(reasons[0]) && reasons[c])
		return reasons[c];
	return "an error code this build does not know";
}

int vhost_user_state__read_fd(int fd, unsigned int timeout_ms, uint8_t **buf, size_t *len,
			      char *why, size_t whylen)
{
	uint8_t *b = malloc(VHOST_USER_STATE_MAX + 1);
	size_t n = 0;
	int err;

	if (!b)
		return why__set(why, whylen, -ENOMEM, "out of memory");
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;

		if (timeout_ms) {
			int ready = poll(&p, 1, (int)timeout_ms);

			if (ready == 0) {
				err = why__set(why, whylen, -ETIMEDOUT,
					       "no end of the state within %u ms", timeout_ms);
				goto out_free;
			}
			if (ready < 0 && errno != EINTR) {
				err = why__set(why, whylen, -errno, "poll: %s", strerror(errno));
				goto out_free;
			}
		}
		r = read(fd, b + n, VHOST_USER_STATE_MAX + 1 - n);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0) {
			err = why__set(why, whylen, -errno, "read: %s", strerror(errno));
			goto out_free;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > VHOST_USER_STATE_MAX) {
			err = why__set(why, whylen, -EFBIG, "the state is larger than %u bytes",
				       VHOST_USER_STATE_MAX);
			goto out_free;
		}
	}
	*buf = b;
	*len = n;
	return 0;

out_free:
	free(b);
	return err;
}

int vhost_user_state__write_fd(int fd, const uint8_t *buf, size_t len, char *why, size_t whylen)
{
	size_t done = 0;

	if (len > VHOST_USER_STATE_MAX)
		return why__set(why, whylen, -EFBIG, "the state is %zu bytes, more than %u", len,
				VHOST_USER_STATE_MAX);
	while (done < len) {
		ssize_t w = write(fd, buf + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return why__set(why, whylen, -errno, "write: %s", strerror(errno));
		done += (size_t)w;
	}
	return 0;
}

/* What SET_DEVICE_STATE_FD answered; the back-end's refusal is -EIO with its reason. */
static int state__fd_answer(uint64_t answer, char *why, size_t whylen)
{
	if (answer & 0xff)
		return why__set(why, whylen, -EIO, "it refused SET_DEVICE_STATE_FD: %s",
				vhost_user_state__reason(answer));
	if (!(answer & VHOST_USER_STATE_NO_FD))
		return why__set(why, whylen, -EPROTO,
				"it wants to use a pipe of its own, which is not supported");
	return 0;
}

static int state__send_fd(const struct vhost_user_state_conn *c, uint32_t direction, int fd,
			  char *why, size_t whylen)
{
	struct vhost_user_device_state s = {.direction = direction,
					    .phase = VHOST_USER_PHASE_STOPPED};

	return c->send(c->ctx, VHOST_USER_SET_DEVICE_STATE_FD, &s, sizeof(s), &fd, 1, why, whylen);
}

static int state__wait_fd(const struct vhost_user_state_conn *c, char *why, size_t whylen)
{
	uint64_t answer;
	int err = c->wait(c->ctx, VHOST_USER_SET_DEVICE_STATE_FD, &answer, why, whylen);

	return err ? err : state__fd_answer(answer, why, whylen);
}

static int state__wait_check(const struct vhost_user_state_conn *c, char *why, size_t whylen)
{
	uint64_t answer;
	int err = c->wait(c->ctx, VHOST_USER_CHECK_DEVICE_STATE, &answer, why, whylen);

	if (err)
		return err;
	if (answer)
		return why__set(why, whylen, -EIO, "%s", vhost_user_state__reason(answer));
	return 0;
}

static int state__send_check(const struct vhost_user_state_conn *c, char *why, size_t whylen)
{
	return c->send(c->ctx, VHOST_USER_CHECK_DEVICE_STATE, NULL, 0, NULL, 0, why, whylen);
}

int vhost_user_state__save_send(const struct vhost_user_state_conn *from, int *rfd, char *why,
				size_t whylen)
{
	int p[2], err;

	if (pipe2(p, O_CLOEXEC))
		return why__set(why, whylen, -errno, "pipe: %s", strerror(errno));
	/* The back-end writes the state before it answers, so CHECK can go
	 * with it: the answers are read in order by save_end. */
	err = state__send_fd(from, VHOST_USER_TRANSFER_SAVE, p[1], why, whylen);
	if (!err)
		err = state__send_check(from, why, whylen);
	close(p[1]); /* the back-end's copy is the only writer now */
	if (err) {
		close(p[0]);
		return err;
	}
	*rfd = p[0];
	return 0;
}

int vhost_user_state__save_end(const struct vhost_user_state_conn *from, int rfd,
			       unsigned int timeout_ms, uint8_t **buf, size_t *len, char *why,
			       size_t whylen)
{
	char pwhy[160];
	int err, cerr;

	err = state__wait_fd(from, why, whylen);
	if (!err) {
		err = vhost_user_state__read_fd(rfd, timeout_ms, buf, len, pwhy, sizeof(pwhy));
		if (err)
			why__set(why, whylen, err, "reading its state: %s", pwhy);
	}
	close(rfd);
	/* CHECK was sent: its answer is read whatever happened before, so
	 * the connection stays in step for a rollback. */
	cerr = state__wait_check(from, err ? pwhy : why, err ? sizeof(pwhy) : whylen);
	if (!err && cerr)
		free(*buf);
	return err ? err : cerr;
}

int vhost_user_state__save_send_fd(const struct vhost_user_state_conn *from, int wfd, char *why,
				   size_t whylen)
{
	int err = state__send_fd(from, VHOST_USER_TRANSFER_SAVE, wfd, why, whylen);

	if (!err)
		err = state__send_check(from, why, whylen);
	close(wfd); /* the back-end's copy is the only writer now */
	return err;
}

int vhost_user_state__save_wait(const struct vhost_user_state_conn *from, char *why, size_t whylen)
{
	char cwhy[160];
	int err = state__wait_fd(from, why, whylen);
	/* CHECK was sent: its answer is read whatever the first said. */
	int cerr = state__wait_check(from, err ? cwhy : why, err ? sizeof(cwhy) : whylen);

	return err ? err : cerr;
}

int vhost_user_state__check_send(const struct vhost_user_state_conn *to, char *why, size_t whylen)
{
	return state__send_check(to, why, whylen);
}

int vhost_user_state__load_begin(const struct vhost_user_state_conn *to, int *wfd, char *why,
				 size_t whylen)
{
	int p[2], err;

	if (pipe2(p, O_CLOEXEC))
		return why__set(why, whylen, -errno, "pipe: %s", strerror(errno));
	err = state__send_fd(to, VHOST_USER_TRANSFER_LOAD, p[0], why, whylen);
	close(p[0]);
	if (!err)
		err = state__wait_fd(to, why, whylen);
	if (err) {
		close(p[1]);
		return err;
	}
	*wfd = p[1];
	return 0;
}

int vhost_user_state__load_wait(const struct vhost_user_state_conn *to, char *why, size_t whylen)
{
	return state__wait_check(to, why, whylen);
}

int vhost_user_state__load_end(const struct vhost_user_state_conn *to, int wfd, const uint8_t *buf,
			       size_t len, char *why, size_t whylen)
{
	char pwhy[160];
	int err;

	err = vhost_user_state__write_fd(wfd, buf, len, pwhy, sizeof(pwhy));
	close(wfd); /* the end of the state for the back-end's read */
	if (err)
		return why__set(why, whylen, err, "writing the state to it: %s", pwhy);
	err = state__send_check(to, why, whylen);
	return err ? err : state__wait_check(to, why, whylen);
}

int vhost_user_state__transfer(const struct vhost_user_state_conn *from,
			       const struct vhost_user_state_conn *to, unsigned int timeout_ms,
			       size_t *size, char *why, size_t whylen)
{
	char swhy[256];
	uint8_t *buf;
	size_t len;
	int err, fd;

	err = vhost_user_state__save_send(from, &fd, swhy, sizeof(swhy));
	if (!err)
		err = vhost_user_state__save_end(from, fd, timeout_ms, &buf, &len, swhy,
						 sizeof(swhy));
	if (err)
		return why__set(why, whylen, err,
				"saving the device state on the running back-end: %s", swhy);
	*size = len;
	err = vhost_user_state__load_begin(to, &fd, swhy, sizeof(swhy));
	if (!err)
		err = vhost_user_state__load_end(to, fd, buf, len, swhy, sizeof(swhy));
	free(buf);
	if (err)
		return why__set(why, whylen, err,
				"the new back-end did not load the device state: %s", swhy);
	return 0;
}
