/* vmm/control.c — the worker's control socket for vmmd: one JSON object per
 * line in each direction.  Requests: {"cmd":"status"|"powerdown"|"stop"|
 * "pause"|"resume"}, plus what layers above register (control.h:
 * "snapshot"); replies {"ok":true,...} or {"ok":false,"error":"..."}.
 * Several clients may connect (a restarted vmmd re-attaches while an old
 * connection is still closing). */
#include "common/log.h"
#include "vmm/control.h"
#include "vmm/device.h"
#include "vmm/vm.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CONTROL_LINE_MAX 4096

struct control_client {
	struct vm *vm;
	int fd;
	struct control_client *next;
	size_t len;
	char buf[CONTROL_LINE_MAX];
};

static int control_listen_fd = -1;
static struct control_cmd *control_cmds; /* filled by constructors */
static struct control_client *control_clients; /* touched on the loop thread only */
static int64_t control_started_ms;

static int64_t control__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_t *control__status(struct vm *vm)
{
	return json_pack("{s:b, s:s, s:i, s:i, s:I, s:I}", "ok", 1, "state",
			 __atomic_load_n(&vm->migrated, __ATOMIC_ACQUIRE) ? "migrated"
			 : vm__is_paused(vm)				   ? "paused"
									   : "running", "pid", (int)getpid(),
			 "vcpus", (int)vm->nr_cpus, "memory_mib",
			 (json_int_t)(vm->ram_size >> 20), "started_at_ms",
			 (json_int_t)control_started_ms);
}


void control__register(struct control_cmd *cmd)
{
	cmd->next = control_cmds;
	control_cmds = cmd;
}

json_t *control__fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

static json_t *control__registered(struct vm *vm, const char *cmd, json_t *req)
{
	for (struct control_cmd *c = control_cmds; c; c = c->next)
		if (!strcmp(c->name, cmd))
			return c->run(vm, req);
	return control__fail("unknown command '%s'", cmd);
}

static json_t *control__handle(struct vm *vm, const char *line)
{
	json_error_t jerr;
	json_t *req = json_loads(line, 0, &jerr), *reply;
	const char *cmd = NULL;

	if (!req || json_unpack(req, "{s:s}", "cmd", &cmd)) {
		json_decref(req);
		return control__fail("bad request: %s", req ? "no \"cmd\" string" : jerr.text);
	}
	if (!strcmp(cmd, "status")) {
		reply = control__status(vm);
	} else if (!strcmp(cmd, "powerdown")) {
		if (vm->power_button)
			vm->power_button(vm);
		reply = json_pack("{s:b}", "ok", 1);
	} else if (!strcmp(cmd, "stop")) {
		vm__request_stop(vm, VM_STOP_KILLED, "stopped by a control request");
		reply = json_pack("{s:b}", "ok", 1);
	} else if (!strcmp(cmd, "pause")) {
		reply = vm__pause(vm) ? control__fail("cannot pause: %s", "the VM is stopping") :
					control__status(vm);
	} else if (!strcmp(cmd, "resume")) {
		vm__resume(vm);
		reply = __atomic_load_n(&vm->migrated, __ATOMIC_ACQUIRE)
				? control__fail("cannot resume: %s", "the guest was migrated away")
				: control__status(vm);
	} else {
		reply = control__registered(vm, cmd, req);
	}
	json_decref(req);
	return reply;
}

static void control__reply(int fd, json_t *reply)
{
	char *s = json_dumps(reply, JSON_COMPACT);
	size_t len = s ? strlen(s) : 0;

	json_decref(reply);
	if (!s)
		return;
	s[len] = '\n'; /* replaces the terminating NUL: one line per reply */
	if (write(fd, s, len + 1) < 0)
		pr_debug("control: reply: %s", strerror(errno));
	free(s);
}

static void control__client_io(int fd, uint32_t events, void *opaque)
{
	struct control_client *c = opaque;
	ssize_t n = read(fd, c->buf + c->len, sizeof(c->buf) - c->len);
	char *nl;

	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		goto out_close;
	}
	c->len += (size_t)n;
	while ((nl = memchr(c->buf, '\n', c->len))) {
		*nl = 0;
		control__reply(fd, control__handle(c->vm, c->buf));
		c->len -= (size_t)(nl + 1 - c->buf);
		memmove(c->buf, nl + 1, c->len);
	}
	if (c->len == sizeof(c->buf)) {
		control__reply(fd, control__fail("request longer than %s bytes", "4095"));
		goto out_close;
	}
	return;
out_close:
	evloop__del(&c->vm->loop, fd);
	close(fd);
	for (struct control_client **p = &control_clients; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	free(c);
}

static void control__accept(int fd, uint32_t events, void *opaque)
{
	struct vm *vm = opaque;
	struct control_client *c;
	int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (cfd < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		return;
	}
	c->vm = vm;
	c->fd = cfd;
	if (evloop__add(&vm->loop, cfd, EPOLLIN, control__client_io, c)) {
		close(cfd);
		free(c);
		return;
	}
	c->next = control_clients;
	control_clients = c;
}

static int control__init(struct vm *vm)
{
	const char *path = vm->cfg->control_path;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int err;

	control_started_ms = control__now_ms();
	if (!path)
		return 0;
	if (strlen(path) >= sizeof(addr.sun_path)) {
		pr_err("--control %s: path too long for a unix socket", path);
		return -ENAMETOOLONG;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path); /* left by a worker that died */
	control_listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (control_listen_fd < 0)
		return -errno;
	if (bind(control_listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(control_listen_fd, 8) < 0) {
		err = -errno;
		pr_err("--control %s: %s", path, strerror(errno));
		goto out_close;
	}
	chmod(path, 0600);
	err = evloop__add(&vm->loop, control_listen_fd, EPOLLIN, control__accept, vm);
	if (err)
		goto out_close;
	return 0;
out_close:
	close(control_listen_fd);
	control_listen_fd = -1;
	return err;
}

static void control__exit(struct vm *vm)
{
	if (control_listen_fd < 0)
		return;
	evloop__del(&vm->loop, control_listen_fd);
	close(control_listen_fd);
	control_listen_fd = -1;
	unlink(vm->cfg->control_path);
	/* The loop thread has stopped by now (main stops it before the hooks). */
	while (control_clients) {
		struct control_client *c = control_clients;

		control_clients = c->next;
		close(c->fd);
		free(c);
	}
}

device_init(control__init, control__exit);
