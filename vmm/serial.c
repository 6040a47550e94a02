/*
 * vmm/serial.c — host ends of the serial port: stdio, a file, a unix socket.
 *
 * Input is read on vm->loop, edge triggered, and only as many bytes as the
 * UART's RX FIFO has room for (FIONREAD says how many wait, so a read never
 * blocks and stdin keeps its blocking mode, which stdout shares on a tty).
 * When the FIFO is full the rest waits in the kernel until the guest drains
 * the FIFO; the UART then calls serial__rx_room(), which wakes the loop
 * through an eventfd.  Nothing typed is dropped.
 *
 * Output is written on the vCPU thread as it arrives: a one-byte write to a
 * tty or file is short, and stdio/file output is never dropped.  A unix
 * client that stops reading loses output instead of stalling the guest.
 */
#include "vmm/serial.h"

#include "common/log.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define CTRL_A 0x01

struct serial {
	struct vm *vm;
	struct uart16550 *uart;
	enum serial_kind kind;

	pthread_mutex_t lock; /* in_fd/out_fd of the unix client */
	int in_fd, out_fd;
	bool in_hup; /* the input side hung up; close once drained */
	int listen_fd;
	int wake_fd; /* eventfd: the RX FIFO has room again */
	bool escape; /* stdio: Ctrl-A seen */
	unsigned long dropped;
};

/* --- terminal mode, restored at exit and on fatal signals --- */

static struct termios saved_termios;
static bool termios_saved;
static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
static struct sigaction old_actions[sizeof(fatal_signals) / sizeof(int)];

static void serial__restore_tty(void)
{
	if (termios_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
}

/* Restore the terminal, put back whatever handled the signal before (the
 * default action, or a sanitizer's report) and let it run: a fault repeats
 * on return, and abort() raises again. */
static void serial__fatal_signal(int sig)
{
	serial__restore_tty();
	for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(int); i++)
		if (fatal_signals[i] == sig)
			sigaction(sig, &old_actions[i], NULL);
}

static int serial__raw_tty(void)
{
	struct termios raw;
	struct sigaction sa = {.sa_handler = serial__fatal_signal};

	if (tcgetattr(STDIN_FILENO, &saved_termios) < 0)
		return -errno;
	raw = saved_termios;
	/* Everything, Ctrl-C included, goes to the guest; Ctrl-A x quits. */
	cfmakeraw(&raw);
	raw.c_oflag |= OPOST | ONLCR; /* keep our own log lines readable */
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0)
		return -errno;
	if (!termios_saved) {
		termios_saved = true;
		atexit(serial__restore_tty);
		sigemptyset(&sa.sa_mask);
		for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(int); i++)
			sigaction(fatal_signals[i], &sa, &old_actions[i]);
	}
	return 0;
}

/* --- input --- */

static void serial__in_gone(struct serial *s)
{
	evloop__del(&s->vm->loop, s->in_fd);
	pthread_mutex_lock(&s->lock);
	if (s->kind == SERIAL_UNIX) {
		close(s->in_fd);
		s->out_fd = -1;
		pr_info("serial: unix client disconnected");
	}
	s->in_fd = -1;
	pthread_mutex_unlock(&s->lock);
}

/* Stdio only: Ctrl-A x stops the VM, Ctrl-A Ctrl-A sends one Ctrl-A.
 * Filters buf in place and returns the bytes left for the guest. */
static size_t serial__escape(struct serial *s, uint8_t *buf, size_t n)
{
	size_t out = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t c = buf[i];

		if (s->escape) {
			s->escape = false;
			if (c == 'x' || c == 'X') {
				vm__request_stop(s->vm, VM_STOP_KILLED,
						 "stopped by Ctrl-A x on the console");
				continue;
			}
			if (c != CTRL_A)
				continue;
		} else if (c == CTRL_A) {
			s->escape = true;
			continue;
		}
		buf[out++] = c;
	}
	return out;
}

/* Runs on the loop thread only. */
static void serial__pump(struct serial *s)
{
	uint8_t buf[UART_FIFO_SIZE];

	while (s->in_fd >= 0) {
		unsigned int room = uart__rx_room(s->uart);
		int avail = 0;
		ssize_t n;

		if (!room)
			return; /* serial__rx_room() wakes us */
		if (ioctl(s->in_fd, FIONREAD, &avail) < 0 || avail <= 0) {
			if (s->in_hup)
				serial__in_gone(s);
			return;
		}
		if ((unsigned int)avail < room)
			room = (unsigned int)avail;
		n = read(s->in_fd, buf, room);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			serial__in_gone(s);
			return;
		}
		if (s->kind == SERIAL_STDIO && termios_saved)
			n = (ssize_t)serial__escape(s, buf, (size_t)n);
		uart__receive(s->uart, buf, (unsigned int)n);
	}
}

static void serial__in_event(int fd, uint32_t events, void *opaque)
{
	struct serial *s = opaque;

	if (events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR))
		s->in_hup = true;
	serial__pump(s);
}

static void serial__wake_event(int fd, uint32_t events, void *opaque)
{
	struct serial *s = opaque;
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_warn_once("serial: eventfd read: %s", strerror(errno));
	serial__pump(s);
}

void serial__rx_room(struct serial *s)
{
	uint64_t one = 1;

	if (s->wake_fd >= 0 && write(s->wake_fd, &one, sizeof(one)) < 0)
		pr_warn_once("serial: eventfd write: %s", strerror(errno));
}

static int serial__watch_input(struct serial *s, int fd)
{
	int err;

	s->in_fd = fd;
	s->in_hup = false;
	err = evloop__add(&s->vm->loop, fd, EPOLLIN | EPOLLRDHUP | EPOLLET, serial__in_event, s);
	if (err < 0)
		s->in_fd = -1;
	return err;
}

/* --- output --- */

static void serial__write_all(struct serial *s, int fd, uint8_t byte)
{
	for (;;) {
		ssize_t n = write(fd, &byte, 1);

		if (n == 1)
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && s->kind != SERIAL_UNIX) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};

			poll(&p, 1, -1); /* someone made our stdout non-blocking */
			continue;
		}
		if (s->kind == SERIAL_UNIX) {
			if (!s->dropped++)
				pr_warn("serial: unix client is not reading; dropping output");
			return;
		}
		pr_warn_once("serial: output write failed: %s",
			     n < 0 ? strerror(errno) : "short write");
		return;
	}
}

void serial__tx(struct serial *s, uint8_t byte)
{
	pthread_mutex_lock(&s->lock);
	if (s->out_fd >= 0)
		serial__write_all(s, s->out_fd, byte);
	pthread_mutex_unlock(&s->lock);
}

/* --- unix socket: one client at a time --- */

static void serial__accept(int fd, uint32_t events, void *opaque)
{
	struct serial *s = opaque;
	int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (c < 0)
		return;
	if (s->in_fd >= 0) {
		close(c); /* busy: the serial line has one other end */
		return;
	}
	if (serial__watch_input(s, c) < 0) {
		close(c);
		return;
	}
	pthread_mutex_lock(&s->lock);
	s->out_fd = c;
	s->dropped = 0;
	pthread_mutex_unlock(&s->lock);
	pr_info("serial: unix client connected");
	serial__pump(s);
}

static int serial__listen(struct serial *s, const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, err;

	if (!path || strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	/* A socket left by a previous run is stale; anything else is not ours. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1) < 0) {
		err = -errno;
		goto out_close;
	}
	err = evloop__add(&s->vm->loop, fd, EPOLLIN, serial__accept, s);
	if (err < 0)
		goto out_unlink;
	s->listen_fd = fd;
	return 0;

out_unlink:
	unlink(path);
out_close:
	close(fd);
	return err;
}

/* --- setup --- */

static int serial__open_stdio(struct serial *s)
{
	int err;

	s->out_fd = STDOUT_FILENO;
	if (isatty(STDIN_FILENO)) {
		err = serial__raw_tty();
		if (err < 0)
			pr_warn("serial: cannot put the terminal in raw mode: %s", strerror(-err));
	}
	err = serial__watch_input(s, STDIN_FILENO);
	/* A regular file or /dev/null cannot be polled: no input, fine. */
	if (err == -EPERM)
		return 0;
	return err;
}

struct serial *serial__open(struct vm *vm, struct uart16550 *uart)
{
	struct serial *s = calloc(1, sizeof(*s));
	const char *path = vm->cfg ? vm->cfg->serial_path : NULL;
	int err = 0;

	if (!s)
		return NULL;
	s->vm = vm;
	s->uart = uart;
	s->kind = vm->cfg ? vm->cfg->serial : SERIAL_NONE;
	s->in_fd = s->out_fd = s->listen_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->wake_fd < 0) {
		err = -errno;
		goto out_free;
	}
	err = evloop__add(&vm->loop, s->wake_fd, EPOLLIN, serial__wake_event, s);
	if (err < 0)
		goto out_close_wake;

	switch (s->kind) {
	case SERIAL_NONE: break;
	case SERIAL_STDIO: err = serial__open_stdio(s); break;
	case SERIAL_FILE:
		s->out_fd = open(path ? path : "", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (s->out_fd < 0)
			err = -errno;
		break;
	case SERIAL_UNIX: err = serial__listen(s, path); break;
	}
	if (err < 0) {
		pr_err("serial: %s: %s", path ? path : "stdio", strerror(-err));
		goto out_del_wake;
	}
	return s;

out_del_wake:
	evloop__del(&vm->loop, s->wake_fd);
out_close_wake:
	close(s->wake_fd);
out_free:
	pthread_mutex_destroy(&s->lock);
	free(s);
	errno = -err;
	return NULL;
}

void serial__close(struct serial *s)
{
	if (!s)
		return;
	if (s->in_fd >= 0)
		evloop__del(&s->vm->loop, s->in_fd);
	if (s->listen_fd >= 0) {
		evloop__del(&s->vm->loop, s->listen_fd);
		close(s->listen_fd);
		if (s->vm->cfg && s->vm->cfg->serial_path)
			unlink(s->vm->cfg->serial_path);
	}
	evloop__del(&s->vm->loop, s->wake_fd);
	close(s->wake_fd);
	if (s->kind == SERIAL_UNIX && s->in_fd >= 0)
		close(s->in_fd);
	if (s->kind == SERIAL_FILE && s->out_fd >= 0)
		close(s->out_fd);
	serial__restore_tty();
	pthread_mutex_destroy(&s->lock);
	free(s);
}
