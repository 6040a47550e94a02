/* daemon/console.c — captured serial consoles: one reader thread per
 * running VM connected to the worker's serial.sock keeps the last 64 KiB
 * (GetConsoleLog) and fans the bytes out to attached streams; input from
 * any stream goes to the same socket. */
#include "daemon/daemon.h"
#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct attach {
	struct attach *next;
	uint64_t handle;
	api_bytes_sink sink;
	void *opaque;
};

struct console {
	struct console *next_all;
	pthread_mutex_t lock;
	int refs;
	bool running;
	int fd;
	uint8_t ring[CONSOLE_RING];
	uint64_t total; /* bytes ever written */
	struct attach *attached;
};

static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct console *all;
static uint64_t next_handle;

static void console__put(struct console *c)
{
	bool last;

	pthread_mutex_lock(&all_lock);
	last = --c->refs == 0;
	if (last)
		for (struct console **pp = &all; *pp; pp = &(*pp)->next_all)
			if (*pp == c) {
				*pp = c->next_all;
				break;
			}
	pthread_mutex_unlock(&all_lock);
	if (!last)
		return;
	while (c->attached) {
		struct attach *a = c->attached;

		c->attached = a->next;
		free(a);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void console__free(struct console *c)
{
	if (c)
		console__put(c);
}

static void *reader(void *arg)
{
	struct console *c = arg;
	uint8_t buf[4096];

	for (;;) {
		ssize_t n = read(c->fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		pthread_mutex_lock(&c->lock);
		for (ssize_t i = 0; i < n; i++)
			c->ring[(c->total + (uint64_t)i) % CONSOLE_RING] = buf[i];
		c->total += (uint64_t)n;
		for (struct attach **pp = &c->attached; *pp;) {
			struct attach *a = *pp;

			if (a->sink(buf, (size_t)n, a->opaque)) {
				*pp = a->next;
				free(a);
				continue;
			}
			pp = &a->next;
		}
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_lock(&c->lock);
	close(c->fd);
	c->fd = -1;
	c->running = false;
	pthread_mutex_unlock(&c->lock);
	console__put(c);
	return NULL;
}

/* Under d->lock, once the VM has stopped for good: tells every attached
 * stream (sink called with NULL) so that a client such as `vmmctl console`
 * ends. Not at the reader's EOF: a vmm that restarts its guest (--on-reboot
 * restart) re-execs and closes the socket, and its streams carry on. */
void console__end_streams(struct console *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	while (c->attached) {
		struct attach *a = c->attached;

		c->attached = a->next;
		a->sink(NULL, 0, a->opaque);
		free(a);
	}
	pthread_mutex_unlock(&c->lock);
}

/* Under d->lock; idempotent: (re)connects when no reader runs. */
void console__start(struct daemon *d, struct vm *vm)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct console *c = vm->console;
	pthread_attr_t at;
	pthread_t t;
	int fd;

	if (vm->spec->serial && vm->spec->serial->kind != VMMD__V1__SERIAL_KIND__SERIAL_KIND_CAPTURED)
		return;
	if (c && c->running)
		return;
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return;
		pthread_mutex_init(&c->lock, NULL);
		c->fd = -1;
		c->refs = 1;
		pthread_mutex_lock(&all_lock);
		c->next_all = all;
		all = c;
		pthread_mutex_unlock(&all_lock);
		vm->console = c;
	}
	worker__paths(d, vm->id, "serial", sa.sun_path, sizeof(sa.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&all_lock);
	c->refs++;
	pthread_mutex_unlock(&all_lock);
	c->fd = fd;
	c->running = true;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, reader, c)) {
		close(fd);
		c->fd = -1;
		c->running = false;
		console__put(c);
	}
	pthread_attr_destroy(&at);
}

int console__tail(struct console *c, size_t max, uint8_t **data, size_t *len, bool *truncated)
{
	size_t kept, n;

	*data = NULL;
	*len = 0;
	*truncated = false;
	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	kept = c->total < CONSOLE_RING ? (size_t)c->total : CONSOLE_RING;
	n = max && max < kept ? max : kept;
	*truncated = c->total > n;
	*data = malloc(n ? n : 1);
	if (*data) {
		for (size_t i = 0; i < n; i++)
			(*data)[i] = c->ring[(c->total - n + i) % CONSOLE_RING];
		*len = n;
	}
	pthread_mutex_unlock(&c->lock);
	return *data ? 0 : -ENOMEM;
}

int console__attach(struct daemon *d, const char *vm_id, api_bytes_sink sink, void *opaque,
		    uint64_t *handle, struct api_error *err)
{
	struct attach *a;
	struct vm *vm;
	struct console *c;

	pthread_mutex_lock(&d->lock);
	vm = registry__find(d, vm_id);
	if (!vm) {
		pthread_mutex_unlock(&d->lock);
		return api_error__set(err, API_NOT_FOUND, "vm_id", "no vm \"%s\"", vm_id);
	}
	console__start(d, vm);
	c = vm->console;
	if (!c || !c->running) {
		api_error__set(err, API_FAILED_PRECONDITION, "vm_id",
			       "vm \"%s\" is %s: its console is not connected", vm->spec->name,
			       vm_state__name(vm->state));
		pthread_mutex_unlock(&d->lock);
		return -EINVAL;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		pthread_mutex_unlock(&d->lock);
		return api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
	}
	a->sink = sink;
	a->opaque = opaque;
	pthread_mutex_lock(&all_lock);
	a->handle = *handle = ++next_handle;
	pthread_mutex_unlock(&all_lock);
	pthread_mutex_lock(&c->lock);
	a->next = c->attached;
	c->attached = a;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* The console holding handle, locked; NULL if none. */
static struct console *by_handle(uint64_t handle)
{
	pthread_mutex_lock(&all_lock);
	for (struct console *c = all; c; c = c->next_all) {
		pthread_mutex_lock(&c->lock);
		for (struct attach *a = c->attached; a; a = a->next)
			if (a->handle == handle) {
				pthread_mutex_unlock(&all_lock);
				return c;
			}
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_unlock(&all_lock);
	return NULL;
}

int console__write(struct daemon *d, uint64_t handle, const uint8_t *data, size_t len)
{
	struct console *c = by_handle(handle);
	int r = 0;

	if (!c)
		return -ENOENT;
	while (len && c->fd >= 0) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		data += n;
		len -= (size_t)n;
	}
	if (c->fd < 0)
		r = -EPIPE;
	pthread_mutex_unlock(&c->lock);
	return r;
}

void console__detach(struct daemon *d, uint64_t handle)
{
	struct console *c = by_handle(handle);

	if (!c)
		return;
	for (struct attach **pp = &c->attached; *pp; pp = &(*pp)->next)
		if ((*pp)->handle == handle) {
			struct attach *a = *pp;

			*pp = a->next;
			free(a);
			break;
		}
	pthread_mutex_unlock(&c->lock);
}
