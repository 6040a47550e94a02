/* paravisor/main.c — the paravisor command: the virtio-blk and virtio-net
 * devices of one VM, each served to its own vhost-user front-end.
 *
 *   paravisor --fd N --disk ...|--net ... [--fd N --disk ...|--net ...]...
 *   paravisor --socket PATH --disk ...|--net ...
 *   paravisor --netstack --fd N --net slirp,...
 *
 * With --fd, N is a socket already connected to the front-end (how vmm
 * starts it: one end of a socketpair, so no path in the file system has to
 * be shared or guarded), and each --disk or --net is served on the --fd just
 * before it.  With --socket (one device only) it listens on PATH and serves
 * the first front-end that connects.
 *
 * One process per VM: every device of a VM maps all of that VM's guest RAM
 * anyway, so its devices sharing a process gives a compromised device model
 * little it did not have (the other devices' backends), while VMs never
 * share one; and a host with many VMs runs, sandboxes and services one
 * process per VM rather than one per device.  Each device still has its own
 * connection and thread, and a connection is served once: when it ends, that
 * device ends (the others serve on), and the process exits when the last
 * one has.  So the state a front-end can leave behind never meets the next
 * one; a supervisor (vmm) starts a new paravisor when it needs one.
 *
 * Exit status: 0 when every front-end closed its connection, 1 when we
 * closed one because its front-end broke the protocol (the log says which
 * device and how), 2 for a bad command line or image. */
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
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* A VM's devices: far more than a VM has paravisor devices today, few
 * enough that threads and fds are never a concern. */
#define PARAVISOR_MAX_DEVICES 16

/* One --disk or --net and the connection it is served on. */
struct pv_device {
	bool net;	    /* --net, else --disk */
	const char *flag;   /* "--disk" or "--net" */
	const char *opt;    /* its argument */
	const char *fd_arg; /* the --fd before it; NULL with --socket */
	int fd;		    /* the front-end's socket; -1 until checked */
	char id[32];	    /* vdev->id, kept past the model's end */
	struct virtio_device *vdev;
	struct vhost_user *vu;
	struct vu_state_dev st;
	pthread_t thread;
	bool started;	    /* its thread runs: it owns fd, vu and vdev */
	int ret;	    /* vhost_user__serve's last: 1 closed by the front-end, <0 broken */
	unsigned int *live; /* the process's devices still served */
};

struct pv_cmdline {
	const char *sock_path;
	bool netstack;
	const char *control_fd; /* --netstack's --control-fd */
	const char *drain_fd;	/* --netstack's --drain-fd */
	bool fail_restore, too_new;
	const char *fail_ids[PARAVISOR_MAX_DEVICES]; /* --test-fail-restore-id */
	unsigned int nr_fail_ids;
	const char *too_new_id; /* --test-state-too-new-id */
	struct sandbox_opts sb;
	unsigned int nr;
	struct pv_device dev[PARAVISOR_MAX_DEVICES];
	unsigned int live; /* devices whose connection has not ended */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: paravisor --fd N DEVICE [--fd N DEVICE]... [-v]\n"
		"       paravisor --socket PATH DEVICE [-v]\n"
		"       paravisor --netstack --fd N --net slirp[,hostfwd=RULE]...[,id=NAME]\n"
		"                 [--control-fd M] [--drain-fd D]\n"
		"DEVICE is one of\n"
		"  --disk path=FILE|fd=N[,readonly=on|off][,cache=none|writeback][,queues=N]"
		"[,id=NAME]\n"
		"  --net slirp[,hostfwd=RULE]...[,mac=MAC][,id=NAME]\n"
		"  --net socket,fd=M[,mac=MAC][,id=NAME]\n"
		"  --net tap,fd=M[,mac=MAC][,id=NAME]\n"
		"Serves a VM's disks (vhost-user-blk) and NICs (vhost-user-net), at most %d\n"
		"in one process, each to its own front-end: the one already connected on\n"
		"the descriptor N of the --fd just before it, or (one device only) the\n"
		"first to connect on PATH.  Device ids must differ.  Exits when every\n"
		"front-end is gone: 0 if all closed their connection, 1 if one broke the\n"
		"protocol, 2 for a bad command line or image.  With --net socket the NIC's\n"
		"frames go over descriptor M (SOCK_SEQPACKET) to a --netstack process,\n"
		"which runs the slirp stack apart, so it outlives a servicing of the\n"
		"paravisor; on its --control-fd M (SOCK_SEQPACKET) it saves and loads\n"
		"libslirp's state, and drains into a newer netstack (one started with\n"
		"--drain-fd D, the other end of a SOCK_SEQPACKET pair): that one takes the\n"
		"hostfwd ports and new connections, this one keeps its own to their end.  With "
		"--net tap the NIC's frames go to the tap device open on\n"
		"descriptor M (IFF_TAP, IFF_NO_PI, IFF_VNET_HDR; vmm opens it), read only\n"
		"while the NIC's rings run, so a servicing can hand it on.  A device's state "
		"(vhost-user DEVICE_STATE) is format %d.\n"
		"Tests only: [--test-fail-restore] (every device refuses any device state\n"
		"offered to it) [--test-fail-restore-id ID] (only device ID does)\n"
		"[--test-state-too-new] (the first state each device saves claims to need\n"
		"a newer reader) [--test-state-too-new-id ID] (only device ID's does)\n",
		PARAVISOR_MAX_DEVICES, VU_STATE_FORMAT);
	sandbox__usage(f);
}

/* --fd N (or flag N): a connected socket of that type we were handed. */
static int main__inherited_as(const char *flag, const char *arg, int want)
{
	char *end;
	long n = strtol(arg, &end, 10);
	int type = 0;
	socklen_t len = sizeof(type);

	if (!*arg || *end || n < 3 || n > 65535) {
		pr_err("%s %s: expected a descriptor number from 3 up", flag, arg);
		return -EINVAL;
	}
	errno = 0;
	if (getsockopt((int)n, SOL_SOCKET, SO_TYPE, &type, &len) || type != want) {
		pr_err("%s %s: not a %s socket%s%s", flag, arg,
		       want == SOCK_STREAM ? "stream" : "SOCK_SEQPACKET", errno ? ": " : "",
		       errno ? strerror(errno) : "");
		return -EBADF;
	}
	/* Nothing we start later may inherit it. */
	fcntl((int)n, F_SETFD, FD_CLOEXEC);
	return (int)n;
}

static int main__inherited(const char *arg, int want)
{
	return main__inherited_as("--fd", arg, want);
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

/* --socket PATH (listening on lfd): the first front-end to connect, and
 * nobody after it. */
static int main__accept(int lfd, const char *path)
{
	int fd;

	pr_info("listening on %s for one vhost-user front-end", path);
	do
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	/* One front-end: nobody else may connect meanwhile. */
	close(lfd);
	unlink(path);
	if (fd < 0) {
		int err = -errno;

		pr_err("accept: %s", strerror(errno));
		return err;
	}
	pr_info("front-end connected");
	return fd;
}

/* --netstack --fd N --net slirp,... [--control-fd M] [--drain-fd D]: the NIC's stack,
 * apart (netstack.c). */
static int main__netstack(const char *fd_arg, const char *ctl_arg, const char *drain_arg,
			  const char *net, struct sandbox_opts *sb)
{
	struct netstack *ns;
	int fd, ctl = -1, drain = -1, ret;

	if (!fd_arg || !net) {
		pr_err("--netstack needs --fd N (its frame socket) and --net slirp,...");
		return 2;
	}
	log__set_prefix("netstack");
	fd = main__inherited(fd_arg, SOCK_SEQPACKET);
	if (fd < 0)
		return 2;
	if (ctl_arg) {
		ctl = main__inherited_as("--control-fd", ctl_arg, SOCK_SEQPACKET);
		if (ctl < 0)
			return 2;
	}
	if (drain_arg) {
		drain = main__inherited_as("--drain-fd", drain_arg, SOCK_SEQPACKET);
		if (drain < 0)
			return 2;
	}
	ns = netstack__open(fd, ctl, drain, net);
	if (!ns)
		return 2;
	sb->profile = SANDBOX_NET;
	if (sandbox__enter(sb, (int[]){fd, ctl, drain}, 3) || netstack__ready(ns))
		ret = 1;
	else
		ret = netstack__run(ns) ? 1 : 0;
	netstack__close(ns);
	close(fd);
	if (ctl >= 0)
		close(ctl);
	return ret;
}

/* --- the command line --- */

/* --fd's number, to compare two; -1 if none (main__inherited says why). */
static long main__fd_number(const char *arg)
{
	char *end;
	long n = strtol(arg, &end, 10);

	return *arg && !*end ? n : -1;
}

/*
 * Pairs each device with the --fd before it.  A single device may still
 * come before its --fd, as it always could.  0, or -EINVAL after one line
 * naming what is wrong.
 */
static int main__pair(struct pv_cmdline *c, const char *pending)
{
	if (pending && c->nr == 1 && !c->dev[0].fd_arg && !c->sock_path) {
		c->dev[0].fd_arg = pending;
		pending = NULL;
	}
	if (pending) {
		pr_err("--fd %s: no --disk or --net follows it (each device is served on the "
		       "--fd just before it)",
		       pending);
		return -EINVAL;
	}
	if (c->sock_path) {
		if (c->nr > 1) {
			pr_err("--socket %s serves one device, not %u: give each device the "
			       "socket of its front-end with --fd N before it",
			       c->sock_path, c->nr);
			return -EINVAL;
		}
		if (c->nr && c->dev[0].fd_arg) {
			pr_err("--socket %s and --fd %s: give one of them", c->sock_path,
			       c->dev[0].fd_arg);
			return -EINVAL;
		}
		return 0;
	}
	for (unsigned int i = 0; i < c->nr; i++) {
		const struct pv_device *d = &c->dev[i];

		if (!d->fd_arg) {
			pr_err("%s %s: no --fd before it names the socket of its front-end",
			       d->flag, d->opt);
			return -EINVAL;
		}
		for (unsigned int j = 0; j < i; j++)
			if (main__fd_number(d->fd_arg) >= 0 &&
			    main__fd_number(c->dev[j].fd_arg) == main__fd_number(d->fd_arg)) {
				pr_err("--fd %s: given to two devices (%s %s and %s %s); each "
				       "needs a connection of its own",
				       d->fd_arg, c->dev[j].flag, c->dev[j].opt, d->flag, d->opt);
				return -EINVAL;
			}
	}
	return 0;
}

/* 0: go on; 1: exit 0 (--help); 2: exit 2 (said why). */
static int main__parse(int argc, char **argv, struct pv_cmdline *c)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"fd", required_argument, NULL, 'f'},
	    {"disk", required_argument, NULL, 'd'},
	    {"net", required_argument, NULL, 'n'},
	    {"netstack", no_argument, NULL, 'S'},
	    {"control-fd", required_argument, NULL, 'C'},
	    {"drain-fd", required_argument, NULL, 'D'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"test-fail-restore", no_argument, NULL, 'R'},
	    {"test-fail-restore-id", required_argument, NULL, 'I'},
	    {"test-state-too-new", no_argument, NULL, 'N'},
	    {"test-state-too-new-id", required_argument, NULL, 'T'},
	    SANDBOX_LONG_OPTIONS,
	    {0},
	};
	const char *pending = NULL; /* the last --fd, while no device took it */
	int o;

	while ((o = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (o) {
		case 's': c->sock_path = optarg; break;
		case 'f':
			if (pending) {
				pr_err("--fd %s: followed by --fd %s, not by the --disk or --net "
				       "to serve on it",
				       pending, optarg);
				return 2;
			}
			pending = optarg;
			break;
		case 'd':
		case 'n':
			if (c->nr == PARAVISOR_MAX_DEVICES) {
				pr_err("--%s %s: more than %d devices in one paravisor",
				       o == 'd' ? "disk" : "net", optarg, PARAVISOR_MAX_DEVICES);
				return 2;
			}
			c->dev[c->nr].net = o == 'n';
			c->dev[c->nr].flag = o == 'd' ? "--disk" : "--net";
			c->dev[c->nr].opt = optarg;
			c->dev[c->nr].fd_arg = pending;
			c->dev[c->nr].fd = -1;
			c->nr++;
			pending = NULL;
			break;
		case 'S': c->netstack = true; break;
		case 'C': c->control_fd = optarg; break;
		case 'D': c->drain_fd = optarg; break;
		case 'v': log__set_level(LOG_DEBUG); break;
		case 'h': usage(stdout); return 1;
		case 'R': c->fail_restore = true; break;
		case 'I':
			if (c->nr_fail_ids == PARAVISOR_MAX_DEVICES) {
				pr_err("--test-fail-restore-id %s: more than %d given", optarg,
				       PARAVISOR_MAX_DEVICES);
				return 2;
			}
			c->fail_ids[c->nr_fail_ids++] = optarg;
			break;
		case 'N': c->too_new = true; break;
		case 'T': c->too_new_id = optarg; break;
		default:
			if (sandbox__is_opt(o)) {
				if (sandbox__opt(&c->sb, o, optarg))
					return 2;
				break;
			}
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		pr_err("unexpected argument '%s'", argv[optind]);
		return 2;
	}
	if (main__pair(c, pending))
		return 2;
	if ((c->control_fd || c->drain_fd) && !c->netstack) {
		pr_err("--%s %s: only a --netstack takes one",
		       c->control_fd ? "control-fd" : "drain-fd",
		       c->control_fd ? c->control_fd : c->drain_fd);
		return 2;
	}
	if (c->netstack) {
		if (c->nr > 1 || (c->nr && !c->dev[0].net)) {
			pr_err("--netstack runs the stack of one --net slirp,...");
			return 2;
		}
		return 0;
	}
	if (!c->nr) {
		usage(stderr);
		return 2;
	}
	return 0;
}

/* --- the devices --- */

/* The first device with that id (devices not created yet have none). */
static struct pv_device *main__find(struct pv_cmdline *c, const char *id)
{
	for (unsigned int i = 0; i < c->nr; i++)
		if (!strcmp(c->dev[i].id, id))
			return &c->dev[i];
	return NULL;
}

/* The model and its back-end, and what the sandbox must keep for it.  0,
 * or the exit status after a line saying why. */
static int main__create(struct pv_cmdline *c, struct pv_device *d)
{
	struct pv_device *e;
	struct vu_net_opts nic = {0};

	d->vdev = d->net ? vu_net__create(d->opt, &nic) : vu_blk__create(d->opt, &d->st.image);
	if (!d->vdev)
		return 2;
	snprintf(d->id, sizeof(d->id), "%s", d->vdev->id);
	e = main__find(c, d->id);
	if (e != d) {
		pr_err("%s %s: id \"%s\" is taken by %s %s; give each device its own id=NAME",
		       d->flag, d->opt, d->id, e->flag, e->opt);
		return 2;
	}
	d->vu = vhost_user__create(d->vdev);
	if (!d->vu) {
		pr_err("%s: %s", d->id, strerror(errno));
		return 1;
	}
	d->st.vdev = d->vdev;
	d->st.fail_restore = c->fail_restore;
	d->st.too_new_once = c->too_new;
	if (d->net) {
		memcpy(d->st.mac, nic.mac, sizeof(d->st.mac));
		snprintf(d->st.net_backend, sizeof(d->st.net_backend), "%s",
			 nic.socket ? "socket"
			 : nic.tap  ? "tap"
				    : "slirp");
		/* slirp's sockets are the host's: a slirp NIC keeps its
		 * network; one whose frames go to a netstack or a tap needs
		 * none (a tap, its io_uring instead). */
		c->sb.profile |= nic.socket ? SANDBOX_NIC
				 : nic.tap  ? SANDBOX_NIC | SANDBOX_TAP
					    : SANDBOX_NIC | SANDBOX_NET;
	} else {
		c->sb.profile |= SANDBOX_BLK;
	}
	vu_state__attach(d->vu, &d->st);
	return 0;
}

/* --test-fail-restore-id: each names a device that refuses any state;
 * --test-state-too-new-id: the device whose first saved state claims to
 * need a newer reader. */
static int main__fail_ids(struct pv_cmdline *c)
{
	for (unsigned int i = 0; i < c->nr_fail_ids; i++) {
		struct pv_device *d = main__find(c, c->fail_ids[i]);

		if (!d) {
			pr_err("--test-fail-restore-id %s: no device has that id", c->fail_ids[i]);
			return -EINVAL;
		}
		d->st.fail_restore = true;
		pr_info("%s: test hook: refuses any device state offered to it", d->id);
	}
	if (c->too_new_id) {
		struct pv_device *d = main__find(c, c->too_new_id);

		if (!d) {
			pr_err("--test-state-too-new-id %s: no device has that id", c->too_new_id);
			return -EINVAL;
		}
		d->st.too_new_once = true;
	}
	return 0;
}

static void main__destroy(struct pv_device *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	if (d->vu)
		vhost_user__destroy(d->vu);
	d->vu = NULL;
	if (d->vdev)
		d->vdev->ops->destroy(d->vdev);
	d->vdev = NULL;
}

/* One device's thread: its connection, to the end, then the device. */
static void *main__serve(void *arg)
{
	struct pv_device *d = arg;
	int ret;

	while (!(ret = vhost_user__serve(d->vu, d->fd)))
		;
	vhost_user__disconnect(d->vu);
	main__destroy(d);
	d->ret = ret;
	pr_info("%s: done (%s); %u device(s) still served", d->id,
		ret > 0 ? "front-end gone" : "the front-end broke the protocol",
		__atomic_sub_fetch(d->live, 1, __ATOMIC_ACQ_REL));
	return NULL;
}

/* Every device on its own thread; 0 or 1 once every connection has ended. */
static int main__run(struct pv_cmdline *c)
{
	unsigned int broken = 0;
	char which[PARAVISOR_MAX_DEVICES * 34] = "";

	c->live = c->nr;
	for (unsigned int i = 0; i < c->nr; i++) {
		struct pv_device *d = &c->dev[i];
		int err;

		d->live = &c->live;
		err = pthread_create(&d->thread, NULL, main__serve, d);
		if (err) {
			__atomic_sub_fetch(&c->live, 1, __ATOMIC_ACQ_REL);
			pr_err("%s: cannot start its thread: %s; not served", d->id, strerror(err));
			main__destroy(d);
			d->ret = -err;
			continue;
		}
		d->started = true;
	}
	for (unsigned int i = 0; i < c->nr; i++) {
		struct pv_device *d = &c->dev[i];

		if (d->started)
			pthread_join(d->thread, NULL);
		if (d->ret > 0)
			continue;
		broken++;
		snprintf(which + strlen(which), sizeof(which) - strlen(which), "%s%s",
			 *which ? ", " : "", d->id);
	}
	if (broken) {
		pr_info("exiting: the connection of %s ended on an error (see above)", which);
		return 1;
	}
	pr_info("exiting: every front-end gone");
	return 0;
}

int main(int argc, char **argv)
{
	struct pv_cmdline *c = calloc(1, sizeof(*c));
	int keep[PARAVISOR_MAX_DEVICES];
	unsigned int i;
	int ret;

	log__set_prefix("paravisor");
	if (!c) {
		pr_err("out of memory");
		return 1;
	}
	c->sb = (struct sandbox_opts)SANDBOX_OPTS_INIT;
	ret = main__parse(argc, argv, c);
	if (ret) {
		ret = ret == 1 ? 0 : ret;
		goto out_free;
	}
	if (c->netstack) {
		ret = main__netstack(c->nr ? c->dev[0].fd_arg : NULL, c->control_fd, c->drain_fd,
				     c->nr ? c->dev[0].opt : NULL, &c->sb);
		goto out_free;
	}
	/* A front-end that closes a pipe we write (DEVICE_STATE) gets an
	 * error, not every device's end. */
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < c->nr; i++) {
		ret = main__create(c, &c->dev[i]);
		if (ret)
			goto out_destroy;
	}
	ret = 2;
	if (main__fail_ids(c))
		goto out_destroy;
	for (i = 0; i < c->nr; i++) {
		struct pv_device *d = &c->dev[i];

		if (d->fd_arg) {
			d->fd = main__inherited(d->fd_arg, SOCK_STREAM);
			if (d->fd < 0)
				goto out_destroy;
			pr_info("%s: serving the front-end on descriptor %d", d->id, d->fd);
		} else {
			int lfd = main__listen(c->sock_path);

			if (lfd < 0)
				goto out_destroy;
			d->fd = main__accept(lfd, c->sock_path);
			if (d->fd < 0) {
				ret = 1;
				goto out_destroy;
			}
		}
		keep[i] = d->fd;
	}
	/* Everything is open, and we have one thread: from here on the fds we
	 * hold are all we get. */
	if (sandbox__enter(&c->sb, keep, c->nr)) {
		ret = 1;
		goto out_destroy;
	}
	/* Each device's thread ends it; the process, once they all have. */
	ret = main__run(c);
	free(c);
	return ret;

out_destroy:
	for (i = 0; i < c->nr; i++)
		main__destroy(&c->dev[i]);
out_free:
	free(c);
	return ret;
}
