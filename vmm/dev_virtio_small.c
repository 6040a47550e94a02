/*
 * vmm/dev_virtio_small.c — creates the small virtio devices the command line
 * asks for: virtio-rng (--rng) and virtio-console (--console), each on its
 * own virtio-pci function.  The console's host end (stdio, a file, a unix
 * socket) is opened here and handed to the model as fds.
 */
#include "common/log.h"
#include "virtio/console.h"
#include "virtio/rng.h"
#include "vmm/device.h"
#include "vmm/virtio_pci.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int console__listen(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (!path || strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	/* A socket left by a previous run is stale; anything else is not ours. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int console__open_backend(struct vm *vm, struct virtio_console_backend *be)
{
	const char *path = vm->cfg->console_path;
	int fd;

	*be = (struct virtio_console_backend){.in_fd = -1, .out_fd = -1, .listen_fd = -1};
	switch (vm->cfg->console) {
	case SERIAL_STDIO:
		be->in_fd = STDIN_FILENO;
		be->out_fd = STDOUT_FILENO;
		return 0;
	case SERIAL_FILE:
		fd = open(path ? path : "", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0)
			return -errno;
		be->out_fd = fd;
		return 0;
	case SERIAL_UNIX:
		fd = console__listen(path);
		if (fd < 0)
			return fd;
		be->listen_fd = fd;
		return 0;
	default: return -EINVAL;
	}
}

static int virtio_small__add(struct vm *vm, struct virtio_device *vdev)
{
	int err;

	if (!vdev)
		return -ENOMEM;
	err = virtio_pci__register(vm, vdev);
	if (err < 0)
		vdev->ops->destroy(vdev);
	return err;
}

static int virtio_small__init(struct vm *vm)
{
	struct virtio_console_backend be;
	int err;

	if (vm->cfg->rng) {
		err = virtio_small__add(vm, virtio_rng__create("rng0"));
		if (err < 0) {
			pr_err("virtio-rng rng0: %s", strerror(-err));
			return err;
		}
	}
	if (vm->cfg->console != SERIAL_NONE) {
		err = console__open_backend(vm, &be);
		if (err < 0) {
			pr_err("virtio-console console0: cannot open %s: %s",
			       vm->cfg->console_path ? vm->cfg->console_path : "stdio",
			       strerror(-err));
			return err;
		}
		err = virtio_small__add(vm, virtio_console__create("console0", &be));
		if (err < 0) {
			pr_err("virtio-console console0: %s", strerror(-err));
			return err;
		}
	}
	return 0;
}

device_init(virtio_small__init, NULL);
