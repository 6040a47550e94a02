/* paravisor/main.c — the paravisor command: one virtio-blk or virtio-net
 * device served to one vhost-user front-end.
 *
 *   paravisor --socket PATH --disk path=FILE[,readonly=on][,cache=...][,queues=N]
 *   paravisor --fd N --disk ...
 *   paravisor --fd N --net slirp[,hostfwd=RULE]...[,mac=MAC][,id=NAME]
 *
 * With --socket it listens on PATH and serves the first front-end that
 * connects; with --fd, N is a socket already connected to the front-end (how
 * vmm starts it: one end of a socketpair, so no path in the file system has
 * to be shared or guarded).  It exits when
 * that connection ends: 0 when the front-end closed it, 1 when we closed it
 * because the front-end broke the protocol (the log says how), 2 for a bad
 * command line or image.  One process per VM and per connection keeps the
 * state a front-end can leave behind out of the next one's way; a supervisor
 * (vmm, later) starts a new paravisor when it needs one. */
#include "common/log.h"
#include "paravisor/netstack.h"
#include "paravisor/sandbox.h"
#include "paravisor/vhost_user.h"
#include "paravisor/vu_blk.h"
#include "paravisor/vu_net.h"
#include "paravisor/vu_state.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: paravisor --socket PATH | --fd N  --disk path=FILE|fd=N[,readonly=on|off]"
		"[,cache=none|writeback][,queues=N][,id=NAME] [-v]\n"
		"       paravisor --socket PATH | --fd N  --net slirp[,hostfwd=RULE]..."
		"[,mac=MAC][,id=NAME] [-v]\n"
		"       paravisor --socket PATH | --fd N  --net socket,fd=M[,mac=MAC][,id=NAME]\n"
		"       paravisor --netstack --fd N --net slirp[,hostfwd=RULE]...[,id=NAME]\n"
		"Serves the disk (vhost-user-blk) or the NIC (vhost-user-net, user-mode\n"
		"networking) to one front-end: the first to connect on PATH, or the one\n"
		"already connected on descriptor N.  With --net socket the NIC's frames go\n"
		"over descriptor M (SOCK_SEQPACKET) to a --netstack process, which runs\n"
		"the slirp stack apart, so it outlives a servicing of the paravisor.\n"
		"A disk's device state (vhost-user DEVICE_STATE) is format %d.  Tests only:\n"
		"[--test-fail-restore] (refuse any device state offered to it)\n"
		"[--test-state-too-new] (the first state it saves claims to need a newer\n"
		"reader)\n",
		VU_STATE_FORMAT);
	sandbox__usage(f);
}

/* --fd N: a connected socket of that type we were handed. */
static int main__inherited(const char *arg, int want)
{
	char *end;
	long n = strtol(arg, &end, 10);
	int type = 0;
	socklen_t len = sizeof(type);

	if (!*arg || *end || n < 3 || n > 65535) {
		pr_err("--fd %s: expected a descriptor number from 3 up", arg);
		return -EINVAL;
	}
	errno = 0;
	if (getsockopt((int)n, SOL_SOCKET, SO_TYPE, &type, &len) || type != want) {
		pr_err("--fd %s: not a %s socket%s%s", arg,
		       want == SOCK_STREAM ? "stream" : "SOCK_SEQPACKET", errno ? ": " : "",
		       errno ? strerror(errno) : "");
		return -EBADF;
	}
	/* Nothing we start later may inherit it. */
	fcntl((int)n, F_SETFD, FD_CLOEXEC);
	return (int)n;
}

/* A leftover socket from an earlier run is replaced; any other file is not. */
static int main__listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		pr_err("--socket %s: path too long (at most %zu bytes)", path,
		       sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	if (!lstat(path, &st)) {
		if (!S_ISSOCK(st.st_mode)) {
			pr_err("--socket %s: exists and is not a socket", path);
			return -EEXIST;
		}
		unlink(path);
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 1)) {
		int err = -errno;

		pr_err("--socket %s: %s", path, strerror(errno));
		close(fd);
		return err;
	}
	return fd;
}

/* --netstack --fd N --net slirp,...: the NIC's stack, apart (netstack.c). */
static int main__netstack(const char *fd_arg, const char *net, struct sandbox_opts *sb)
{
	struct netstack *ns;
	int fd, ret;

	if (!fd_arg || !net) {
		pr_err("--netstack needs --fd N (its frame socket) and --net slirp,...");
		return 2;
	}
	log__set_prefix("netstack");
	fd = main__inherited(fd_arg, SOCK_SEQPACKET);
	if (fd < 0)
		return 2;
	ns = netstack__open(fd, net);
	if (!ns)
		return 2;
	sb->profile = SANDBOX_NET;
	ret = sandbox__enter(sb, &fd, 1) || netstack__ready(ns) ? 1 : netstack__run(ns) ? 1 : 0;
	netstack__close(ns);
	close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"fd", required_argument, NULL, 'f'},
	    {"disk", required_argument, NULL, 'd'},
	    {"net", required_argument, NULL, 'n'},
	    {"netstack", no_argument, NULL, 'S'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"test-fail-restore", no_argument, NULL, 'R'},
	    {"test-state-too-new", no_argument, NULL, 'N'},
	    SANDBOX_LONG_OPTIONS,
	    {0},
	};
	const char *sock_path = NULL, *fd_arg = NULL, *disk = NULL, *net = NULL;
	struct sandbox_opts sb = SANDBOX_OPTS_INIT;
	struct vu_state_dev st = {0};
	struct virtio_device *vdev;
	struct vhost_user *vu;
	struct vu_net_opts nic;
	bool netstack = false;
	int c, lfd, fd, ret;

	log__set_prefix("paravisor");
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 's': sock_path = optarg; break;
		case 'f': fd_arg = optarg; break;
		case 'd':
		case 'n':
			if (disk || net) {
				pr_err("--%s: one device per paravisor", c == 'd' ? "disk" : "net");
				return 2;
			}
			*(c == 'd' ? &disk : &net) = optarg;
			break;
		case 'S': netstack = true; break;
		case 'v': log__set_level(LOG_DEBUG); break;
		case 'h': usage(stdout); return 0;
		case 'R': st.fail_restore = true; break;
		case 'N': st.too_new_once = true; break;
		default:
			if (sandbox__is_opt(c)) {
				if (sandbox__opt(&sb, c, optarg))
					return 2;
				break;
			}
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || !sock_path == !fd_arg || (!disk && !net)) {
		usage(stderr);
		return 2;
	}
	if (netstack)
		return main__netstack(fd_arg, net, &sb);
	/* slirp's sockets are the host's: a slirp NIC keeps its network; one
	 * whose frames go to a netstack needs none. */
	sb.profile = !net ? SANDBOX_BLK : !strncmp(net, "slirp", 5) ? SANDBOX_NET : SANDBOX_NIC;
	vdev = disk ? vu_blk__create(disk, &st.image) : vu_net__create(net, &nic);
	if (!vdev)
		return 2;
	vu = vhost_user__create(vdev);
	if (!vu) {
		pr_err("%s", strerror(errno));
		vdev->ops->destroy(vdev);
		return 1;
	}
	st.vdev = vdev;
	if (net) {
		memcpy(st.mac, nic.mac, sizeof(st.mac));
		snprintf(st.net_backend, sizeof(st.net_backend), "%s",
			 nic.socket ? "socket" : "slirp");
	}
	vu_state__attach(vu, &st);
	if (fd_arg) {
		fd = main__inherited(fd_arg, SOCK_STREAM);
		if (fd < 0) {
			ret = 2;
			goto out_destroy;
		}
		pr_info("%s: serving the front-end on descriptor %d", vdev->id, fd);
	} else {
		lfd = main__listen(sock_path);
		if (lfd < 0) {
			ret = 2;
			goto out_destroy;
		}
		pr_info("listening on %s for one vhost-user front-end", sock_path);
		do
			fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		while (fd < 0 && errno == EINTR);
		/* One front-end: nobody else may connect meanwhile. */
		close(lfd);
		unlink(sock_path);
		if (fd < 0) {
			pr_err("accept: %s", strerror(errno));
			ret = 1;
			goto out_destroy;
		}
		pr_info("front-end connected");
	}
	/* Everything is open: from here on the fds we hold are all we get. */
	if (sandbox__enter(&sb, &fd, 1)) {
		close(fd);
		ret = 1;
		goto out_destroy;
	}
	while (!(ret = vhost_user__serve(vu, fd)))
		;
	close(fd);
	vhost_user__disconnect(vu);
	ret = ret > 0 ? 0 : 1;
	pr_info("exiting (%s)", ret ? "the front-end broke the protocol" : "front-end gone");
out_destroy:
	vhost_user__destroy(vu);
	vdev->ops->destroy(vdev);
	return ret;
}
