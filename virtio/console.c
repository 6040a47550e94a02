/*
 * virtio/console.c — virtio-console, one port, no MULTIPORT: the guest's
 * hvc0.  Queue 0 (receiveq) takes host input, queue 1 (transmitq) carries
 * guest output to out_fd.  One thread polls the kicks, the input fd and the
 * listening socket.  Input is read only while the guest has posted a
 * receive buffer, so nothing typed is dropped; output to a unix client that
 * stops reading is dropped rather than stalling the guest.
 */
#include "virtio/console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define CONSOLE_RX	    0
#define CONSOLE_TX	    1
#define CONSOLE_CONFIG_SIZE 12 /* cols, rows, max_nr_ports, emerg_wr */

struct virtio_console {
	struct virtio_device vdev;
	struct virtio_console_backend be;
	int client_fd; /* accepted unix client, or -1 */
	pthread_t thread;
	bool running, broken;
	int stop_fd;
	struct virtq_elem elem;
};

static uint16_t console__queue_max_size(struct virtio_device *vdev, unsigned int q)
{
	return 256;
}

static void console__config_read(struct virtio_device *vdev, uint32_t offset, void *data,
				 uint32_t len)
{
	memset(data, 0, len); /* no SIZE, MULTIPORT or EMERG_WRITE offered */
}

static int console__in_fd(struct virtio_console *c)
{
	return c->be.listen_fd >= 0 ? c->client_fd : c->be.in_fd;
}

static int console__out_fd(struct virtio_console *c)
{
	return c->be.listen_fd >= 0 ? c->client_fd : c->be.out_fd;
}

static void console__fail(struct virtio_console *c, const char *why)
{
	c->vdev.fail(&c->vdev, why);
	c->broken = true;
}

static void console__hangup(struct virtio_console *c)
{
	if (c->be.listen_fd >= 0) {
		if (c->client_fd >= 0)
			close(c->client_fd);
		c->client_fd = -1;
	} else {
		c->be.in_fd = -1; /* EOF on input: output still flows */
	}
}

static void console__write_all(struct virtio_console *c, const struct iovec *iov, unsigned int n)
{
	int fd = console__out_fd(c);

	for (unsigned int i = 0; fd >= 0 && i < n; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left) {
			ssize_t w = write(fd, p, left);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return; /* EAGAIN (unix client not reading) or gone: drop */
			p += w;
			left -= (size_t)w;
		}
	}
}

static void console__tx(struct virtio_console *c)
{
	struct virtq *q = &c->vdev.vqs[CONSOLE_TX];
	char why[128];
	int err;

	if (!q->enabled)
		return;
	for (;;) {
		virtq__set_notify(q, false);
		while ((err = virtq__pop(q, &c->elem, why, sizeof(why))) == 0) {
			console__write_all(c, c->elem.iov, c->elem.out_num);
			virtq__push(q, &c->elem, 0);
		}
		virtio_device__notify(&c->vdev, CONSOLE_TX);
		if (err != -EAGAIN) {
			console__fail(c, why);
			return;
		}
		virtq__set_notify(q, true);
		if (!virtq__has_avail(q))
			return;
	}
}

/* Moves host input into posted receive buffers; true if input is waiting
 * but there is no buffer (stop polling the input until the guest kicks). */
static bool console__rx(struct virtio_console *c)
{
	struct virtq *q = &c->vdev.vqs[CONSOLE_RX];
	int fd = console__in_fd(c);
	char why[128];
	int err;

	if (!q->enabled || fd < 0)
		return false;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 0) <= 0)
			break;
		if (!virtq__has_avail(q)) {
			virtq__set_notify(q, true);
			if (!virtq__has_avail(q))
				return true;
		}
		err = virtq__pop(q, &c->elem, why, sizeof(why));
		if (err == -EAGAIN)
			return true;
		if (err < 0) {
			console__fail(c, why);
			return false;
		}
		n = readv(fd, c->elem.iov + c->elem.out_num, (int)c->elem.in_num);
		if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR)))
			console__hangup(c);
		virtq__push(q, &c->elem, n > 0 ? (uint32_t)n : 0);
		virtio_device__notify(&c->vdev, CONSOLE_RX);
		if (n <= 0)
			break;
	}
	return false;
}

static void *console__thread(void *arg)
{
	struct virtio_console *c = arg;
	bool rx_starved = false;

	console__tx(c);
	for (;;) {
		struct pollfd pfd[5];
		int n = 0, in = console__in_fd(c), lst = -1;
		uint64_t v;

		pfd[n++] = (struct pollfd){.fd = c->stop_fd, .events = POLLIN};
		if (!c->broken) {
			pfd[n++] =
			    (struct pollfd){.fd = c->vdev.kick_fd[CONSOLE_RX], .events = POLLIN};
			pfd[n++] =
			    (struct pollfd){.fd = c->vdev.kick_fd[CONSOLE_TX], .events = POLLIN};
			if (in >= 0 && !rx_starved)
				pfd[n++] = (struct pollfd){.fd = in, .events = POLLIN};
			if (c->be.listen_fd >= 0 && c->client_fd < 0) {
				lst = n;
				pfd[n++] = (struct pollfd){.fd = c->be.listen_fd, .events = POLLIN};
			}
		}
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents)
			break;
		if (c->broken)
			continue;
		if (pfd[1].revents && read(pfd[1].fd, &v, sizeof(v)) >= 0)
			rx_starved = false;
		if (pfd[2].revents && read(pfd[2].fd, &v, sizeof(v)) >= 0)
			console__tx(c);
		if (lst >= 0 && pfd[lst].revents) {
			c->client_fd =
			    accept4(c->be.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		}
		if (!c->broken)
			rx_starved = console__rx(c);
	}
	return NULL;
}

static int console__start(struct virtio_device *vdev)
{
	struct virtio_console *c = vdev->priv;
	uint64_t v;
	int err;

	if (c->running)
		return 0;
	while (read(c->stop_fd, &v, sizeof(v)) > 0) {
	}
	c->broken = false;
	err = pthread_create(&c->thread, NULL, console__thread, c);
	if (err)
		return -err;
	c->running = true;
	return 0;
}

static void console__stop(struct virtio_device *vdev)
{
	struct virtio_console *c = vdev->priv;
	uint64_t one = 1;

	if (!c->running)
		return;
	if (write(c->stop_fd, &one, sizeof(one)) < 0) {
	}
	pthread_join(c->thread, NULL);
	c->running = false;
}

static void console__close(int fd)
{
	if (fd > 2)
		close(fd);
}

static void console__destroy(struct virtio_device *vdev)
{
	struct virtio_console *c = vdev->priv;

	console__stop(vdev);
	console__close(c->client_fd);
	console__close(c->be.in_fd);
	if (c->be.out_fd != c->be.in_fd)
		console__close(c->be.out_fd);
	console__close(c->be.listen_fd);
	close(c->stop_fd);
	free(c);
}

static const struct virtio_device_ops console_ops = {
    .type = "virtio-console",
    .device_id = VIRTIO_ID_CONSOLE,
    .queue_max_size = console__queue_max_size,
    .config_size = CONSOLE_CONFIG_SIZE,
    .config_read = console__config_read,
    .start = console__start,
    .stop = console__stop,
    .destroy = console__destroy,
};

struct virtio_device *virtio_console__create(const char *id,
					     const struct virtio_console_backend *be)
{
	struct virtio_console *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->stop_fd < 0) {
		free(c);
		return NULL;
	}
	c->be = *be;
	c->client_fd = -1;
	c->vdev.ops = &console_ops;
	c->vdev.priv = c;
	c->vdev.nr_queues = 2;
	snprintf(c->vdev.id, sizeof(c->vdev.id), "%s", id);
	return &c->vdev;
}
