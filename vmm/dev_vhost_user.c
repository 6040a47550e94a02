/*
 * vmm/dev_vhost_user.c — devices with backend=paravisor: one paravisor
 * process per VM serves all of them, each over a vhost-user connection of
 * its own; vmm keeps only the PCI transports (virtio/vhost_user_front.c is
 * the model it drives).  So the
 * device's data path (virtqueues, io_uring, slirp) runs in the paravisor:
 * guest kicks reach it through KVM ioeventfds, its completions reach the
 * guest through KVM irqfds, and vmm is not on the way.
 *
 * One process per VM, as DESIGN.md has it: the VM's device layer is one
 * isolated thing, servicing starts one new binary for the VM (not one per
 * device), and a host with many VMs runs one paravisor each.  The process
 * can only start once every device exists (it is sandboxed with what it was
 * handed), so each device's PCI function is added first with a model not
 * yet connected, and an init hook after the devices' starts the process and
 * negotiates with each device (its features go to the transport then).
 *
 * If the paravisor dies, its pidfd wakes the event loop, which starts a new
 * one for the devices that may restart (vmm/paravisor_restart.c); a device
 * with restart off, or whose paravisor keeps dying, fails (NEEDS_RESET, with the exit reason in the
 * log), its requests are answered with the kind's error (fc.refuse) from then on, so the guest's
 * I/O on it fails rather than hangs, and the rest of the VM runs on.
 *
 * Snapshots need nothing here: the transport's save stops the model (the
 * paravisor finishes what it took and gives the ring indexes back) and its
 * restore starts it at the saved indexes, on RAM the paravisor maps from
 * the same memfd.  Live migration works the same way (the destination's
 * paravisor starts at the indexes the source's gave back); what the
 * paravisor writes to guest RAM, which KVM's dirty log cannot see, it logs
 * in vhost-user's dirty log (vmm/vhost_log.c).
 */
#include "vmm/dev_vhost_user.h"

#include "common/log.h"
#include "common/why.h"
#include "net/socket.h"
#include "vmm/device.h"
#include "vmm/vhost_log.h"
#include "vmm/virtio_pci.h"
#include "vmm/vm.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A back-end that takes longer than this for one answer counts as hung. */
#define PV_TIMEOUT_MS 10000
/* A netstack answers a control request at once; it is asked while the
 * guest is stopped, so a hung one must not hold it long. */
#define PV_NETSTACK_CTL_MS 2000

static struct pv_dev *pv_devs;
static struct pv_host *pv_hosts;
static pthread_mutex_t pv_mutex = PTHREAD_MUTEX_INITIALIZER;

void pv__lock(void)
{
	pthread_mutex_lock(&pv_mutex);
}

void pv__unlock(void)
{
	pthread_mutex_unlock(&pv_mutex);
}

/* The event loop: a paravisor's pidfd is readable, it exited. */
static void pv_host__exited(int fd, uint32_t events, void *opaque)
{
	struct pv_host *h = opaque;
	char how[128];
	pid_t pid;

	pv__lock();
	if (!h->watched)
		goto out_unlock;
	evloop__del(&h->vm->loop, fd);
	h->watched = false;
	pid = h->proc.pid;
	if (!paravisor_proc__wait(&h->proc, 1000, how, sizeof(how)))
		snprintf(how, sizeof(how), "its process ended");
	pv_host__restart(h, pid, how);
out_unlock:
	pv__unlock();
}

void pv_host__watch(struct pv_host *h)
{
	if (h->watched)
		return;
	h->watched = h->proc.pidfd >= 0 &&
		     !evloop__add(&h->vm->loop, h->proc.pidfd, EPOLLIN, pv_host__exited, h);
	if (!h->watched)
		pr_warn("paravisor (pid %d): cannot watch its process; its death shows only as "
			"failed requests",
			(int)h->proc.pid);
}

void pv_host__unwatch(struct pv_host *h)
{
	if (h->watched)
		evloop__del(&h->vm->loop, h->proc.pidfd);
	h->watched = false;
}

void pv_host__drop(struct pv_host *h, int grace_ms)
{
	struct pv_host **p;

	pv_host__unwatch(h);
	paravisor_proc__stop(&h->proc, grace_ms);
	for (p = &pv_hosts; *p; p = &(*p)->next) {
		if (*p == h) {
			*p = h->next;
			free(h);
			return;
		}
	}
}

static bool pv_dev__listed(const struct pv_dev *d, const struct vm *vm, bool nic)
{
	return d->vm == vm && d->vdev && d->serviceable && !strcmp(d->noun, "NIC") == nic;
}

/* Disks first, then NICs, each kind in the order they were added. */
struct pv_dev *pv_dev__next(struct vm *vm, struct pv_dev *prev)
{
	bool nic = prev && !strcmp(prev->noun, "NIC");
	struct pv_dev *d = prev ? prev->next : pv_devs;

	for (;;) {
		for (; d; d = d->next)
			if (pv_dev__listed(d, vm, nic))
				return d;
		if (nic)
			return NULL;
		nic = true;
		d = pv_devs;
	}
}

/* The model is being destroyed (its socket just closed): the process goes
 * with the VM's last device. */
static void pv_dev__release(void *opaque)
{
	struct pv_dev *d = opaque;
	struct pv_host *h;

	pv__lock();
	if (d->vdev)
		vhost_log__unregister(d->vm, d->vdev);
	d->vdev = NULL;
	h = d->host;
	d->host = NULL;
	if (h && !--h->users) {
		pv_host__unwatch(h);
		paravisor_proc__stop(&h->proc, PV_EXIT_GRACE_MS);
	}
	if (d->extra_fd >= 0)
		close(d->extra_fd);
	d->extra_fd = -1;
	pv_dev__stop_netstack(d);
	pv_netstack__release(d);
	pv__unlock();
}

/* The VM's options every paravisor process it starts gets. */
static int pv__common_args(struct vm *vm, char **argv, int n, char *uid, size_t uidlen)
{
	if (vm->cfg->verbose)
		argv[n++] = "-v";
	if (vm->cfg->paravisor_uid > 0) {
		snprintf(uid, uidlen, "%ld", vm->cfg->paravisor_uid);
		argv[n++] = "--uid";
		argv[n++] = uid;
		argv[n++] = "--gid";
		argv[n++] = uid;
	}
	return n;
}

struct pv_host *pv_host__spawn(struct vm *vm, struct pv_dev *const d[], unsigned int nr,
			       const char *path, int socks[], char *why, size_t whylen)
{
	char fdnum[PV_MAX_DEVS][8], opt[PV_MAX_DEVS][4300], uid[24];
	char *argv[4 * PV_MAX_DEVS + 8];
	int fds[PARAVISOR_PROC_MAX_FDS], child[PV_MAX_DEVS];
	unsigned int nfds = 0, i;
	struct pv_host *h;
	int n = 1, err;

	if (!nr || nr > PV_MAX_DEVS) {
		why__set(why, whylen, 0, "%u paravisor devices (at most %d per VM)", nr,
			 PV_MAX_DEVS);
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		why__set(why, whylen, 0, "out of memory");
		return NULL;
	}
	h->vm = vm;
	err = paravisor_proc__find(&h->proc, path ? path : vm->cfg->paravisor, why, whylen);
	if (err)
		goto out_free;
	argv[0] = h->proc.path;
	for (i = 0; i < nr; i++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
			why__set(why, whylen, 0, "socketpair: %s", strerror(errno));
			goto out_close;
		}
		socks[i] = sv[0];
		child[i] = sv[1];
		snprintf(fdnum[i], sizeof(fdnum[i]), "%u", PARAVISOR_PROC_FD + nfds);
		fds[nfds++] = sv[1];
		if (d[i]->extra_fd >= 0) {
			snprintf(opt[i], sizeof(opt[i]), "%sfd=%u,%s", d[i]->opt_head,
				 PARAVISOR_PROC_FD + nfds, d[i]->opt);
			fds[nfds++] = d[i]->extra_fd;
		} else {
			snprintf(opt[i], sizeof(opt[i]), "%s%s", d[i]->opt_head, d[i]->opt);
		}
		argv[n++] = "--fd";
		argv[n++] = fdnum[i];
		argv[n++] = (char *)d[i]->flag;
		argv[n++] = opt[i];
	}
	n = pv__common_args(vm, argv, n, uid, sizeof(uid));
	argv[n] = NULL;
	err = paravisor_proc__spawn_fds(&h->proc, argv, fds, nfds, why, whylen);
	for (unsigned int k = 0; k < nr; k++)
		close(child[k]);
	if (err) {
		for (unsigned int k = 0; k < nr; k++)
			close(socks[k]);
		goto out_free;
	}
	h->next = pv_hosts;
	pv_hosts = h;
	return h;

out_close:
	for (unsigned int k = 0; k < i; k++) {
		close(socks[k]);
		close(child[k]);
	}
out_free:
	free(h);
	return NULL;
}

int64_t pv__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool pv__too_many(unsigned int done, const int64_t when[PV_RESTART_BURST], int64_t now)
{
	return done >= PV_RESTART_BURST &&
	       now - when[done % PV_RESTART_BURST] < PV_RESTART_WINDOW_MS;
}

/*
 * restart=on: a new netstack with the same --net, and the VM's paravisor
 * moved to a new process (as servicing does) that is handed the socket to
 * it.  libslirp cannot save its connections, so those die with the old
 * netstack: the guest keeps its address and opens new ones.  0, or
 * negative errno with why (the NIC stays cut off).
 */
static int pv_dev__netstack_restart(struct pv_dev *d, char *why, size_t wlen)
{
	int64_t now = pv__now_ms();
	unsigned int k = d->netstack_restarts % PV_RESTART_BURST;
	char swhy[1024];
	int err;

	if (pv__too_many(d->netstack_restarts, d->netstack_restart_ms, now)) {
		snprintf(why, wlen, "it died %d times within %d s; not restarting it again",
			 PV_RESTART_BURST + 1, PV_RESTART_WINDOW_MS / 1000);
		return -EAGAIN;
	}
	paravisor_proc__stop(&d->netstack, 0); /* reaped: closes its pidfd */
	d->has_netstack = false;
	pv_dev__close_netstack_ctl(d);
	if (d->extra_fd >= 0)
		close(d->extra_fd);
	d->extra_fd = -1;
	err = pv_dev__start_netstack(d, NULL, -1);
	if (err) {
		snprintf(why, wlen, "a new netstack did not start (see above)");
		return err;
	}
	d->netstack_restart_ms[k] = now;
	d->netstack_restarts++;
	if (d->netstack.pidfd >= 0)
		d->netstack_watched = !evloop__add(&d->vm->loop, d->netstack.pidfd, EPOLLIN,
						   pv_dev__netstack_exited, d);
	err = pv_service__respawn(d->vm, swhy, sizeof(swhy));
	if (err) {
		snprintf(why, wlen,
			 "the new netstack (pid %d) runs, but no new paravisor took its "
			 "socket: %s",
			 (int)d->netstack.pid, swhy);
		return err;
	}
	return 0;
}

/* The event loop: the netstack exited.  Its NAT is gone with it; the NIC's
 * paravisor notices the closed socket and drops what the guest sends, until
 * (restart=on) a new netstack and a new paravisor take over. */
void pv_dev__netstack_exited(int fd, uint32_t events, void *opaque)
{
	struct pv_dev *d = opaque;
	char how[128], why[1400];
	pid_t pid;

	pv__lock();
	/* Stopped meanwhile by the device's release: nothing to report. */
	if (!d->netstack_watched) {
		pv__unlock();
		return;
	}
	evloop__del(&d->vm->loop, fd);
	d->netstack_watched = false;
	pid = d->netstack.pid;
	if (!paravisor_proc__wait(&d->netstack, 1000, how, sizeof(how)))
		snprintf(how, sizeof(how), "its process ended");
	snprintf(d->netstack_died, sizeof(d->netstack_died), "(pid %d) %s", (int)pid, how);
	memcpy(d->netstack_last_death, d->netstack_died, sizeof(d->netstack_died));
	if (!d->restart || !d->vdev || d->failed[0]) {
		pr_err("%s \"%s\": its netstack %s; the NIC is cut off from the network (the "
		       "rest of the VM runs on)",
		       d->noun, d->id, d->netstack_died);
	} else if (pv_dev__netstack_restart(d, why, sizeof(why))) {
		pr_err("%s \"%s\": its netstack %s; not restarted: %s; the NIC is cut off from "
		       "the network (the rest of the VM runs on)",
		       d->noun, d->id, d->netstack_last_death, why);
	} else {
		d->netstack_died[0] = 0;
		pr_warn("%s \"%s\": its netstack %s; restarted it (pid %d, restart %u) and the "
			"NIC's paravisor with it (pid %d): its NAT connections are gone, new "
			"ones work",
			d->noun, d->id, d->netstack_last_death, (int)d->netstack.pid,
			d->netstack_restarts, d->host ? (int)d->host->proc.pid : -1);
	}
	pv__unlock();
}

/* Waits for the netstack's first message: it is up, or it ended (its own
 * line says why, e.g. a hostfwd port taken). */
static int pv_dev__netstack_ready(struct pv_dev *d)
{
	struct pollfd p = {.fd = d->extra_fd, .events = POLLIN};
	char msg[32] = "", how[128];
	pid_t pid = d->netstack.pid;
	ssize_t n = -1;

	if (poll(&p, 1, PV_TIMEOUT_MS) == 1)
		n = recv(d->extra_fd, msg, sizeof(msg) - 1, MSG_DONTWAIT);
	if (n == (ssize_t)strlen(NET_SOCKET_READY) && !memcmp(msg, NET_SOCKET_READY, (size_t)n))
		return 0;
	if (paravisor_proc__wait(&d->netstack, PV_EXIT_GRACE_MS, how, sizeof(how)))
		pr_err("%s \"%s\": its netstack (pid %d) did not start: it %s (its own message, "
		       "if any, is above)",
		       d->noun, d->id, (int)pid, how);
	else
		pr_err("%s \"%s\": its netstack (pid %d) did not say it was ready within %d ms",
		       d->noun, d->id, (int)d->netstack.pid, PV_TIMEOUT_MS);
	return -EINVAL;
}

/*
 * The NIC's slirp in a process of its own (paravisor/netstack.c), which
 * servicing replaces only when asked (vmm/paravisor_netstack.c): its end of
 * a SOCK_SEQPACKET pair is its descriptor 3, ours becomes the device's
 * extra_fd, handed to each paravisor after the NIC's socket.
 */
int pv_dev__start_netstack(struct pv_dev *d, const char *path, int drain_fd)
{
	char why[512], uid[24], fdnum[8], ctlnum[8], drainnum[8];
	const char *opt = d->netstack_opt;
	char *argv[16];
	int sv[2], cv[2], err, n = 0;

	err = paravisor_proc__find(&d->netstack, path ? path : d->vm->cfg->paravisor, why,
				   sizeof(why));
	if (err) {
		pr_err("%s \"%s\": cannot start the paravisor: %s", d->noun, d->id, why);
		return -EINVAL;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		err = -errno;
		pr_err("%s \"%s\": socketpair: %s", d->noun, d->id, strerror(errno));
		return err;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, cv)) {
		err = -errno;
		pr_err("%s \"%s\": socketpair: %s", d->noun, d->id, strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return err;
	}
	snprintf(fdnum, sizeof(fdnum), "%d", PARAVISOR_PROC_FD);
	snprintf(ctlnum, sizeof(ctlnum), "%d", PARAVISOR_PROC_FD + 1);
	argv[n++] = d->netstack.path;
	argv[n++] = "--netstack";
	argv[n++] = "--fd";
	argv[n++] = fdnum;
	argv[n++] = "--control-fd";
	argv[n++] = ctlnum;
	argv[n++] = "--net";
	argv[n++] = (char *)opt;
	if (drain_fd >= 0) {
		snprintf(drainnum, sizeof(drainnum), "%d", PARAVISOR_PROC_FD + 2);
		argv[n++] = "--drain-fd";
		argv[n++] = drainnum;
	}
	n = pv__common_args(d->vm, argv, n, uid, sizeof(uid));
	argv[n] = NULL;
	err = paravisor_proc__spawn_fds(&d->netstack, argv, (int[]){sv[1], cv[1], drain_fd},
					drain_fd >= 0 ? 3 : 2, why, sizeof(why));
	close(sv[1]);
	close(cv[1]);
	if (err) {
		close(sv[0]);
		close(cv[0]);
		pr_err("%s \"%s\": cannot start its netstack: %s", d->noun, d->id, why);
		return -EINVAL;
	}
	d->has_netstack = true;
	d->extra_fd = sv[0];
	pthread_mutex_lock(&d->netstack_ctl_lock);
	d->netstack_ctl = cv[0];
	pthread_mutex_unlock(&d->netstack_ctl_lock);
	err = pv_dev__netstack_ready(d);
	if (err) {
		close(sv[0]);
		d->extra_fd = -1;
		pv_dev__stop_netstack(d);
		return err;
	}
	pr_info("%s \"%s\": its slirp runs in the netstack %s --netstack, pid %d", d->noun,
		d->id, d->netstack.path, (int)d->netstack.pid);
	return 0;
}

void pv_dev__close_netstack_ctl(struct pv_dev *d)
{
	pthread_mutex_lock(&d->netstack_ctl_lock);
	if (d->netstack_ctl >= 0)
		close(d->netstack_ctl);
	d->netstack_ctl = -1;
	pthread_mutex_unlock(&d->netstack_ctl_lock);
}

int pv_dev__netstack_ask(struct pv_dev *d, uint32_t op, const uint8_t *in, size_t inlen,
			 int pass_fd, uint8_t **out, size_t *outlen, char *why, size_t wlen)
{
	struct net_ctl_msg req = {.op = op}, *ans;
	struct iovec iov[2] = {{.iov_base = &req, .iov_len = sizeof(req)},
			       {.iov_base = (void *)in, .iov_len = inlen}};
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = inlen ? 2 : 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct pollfd p = {.events = POLLIN};
	size_t cap = sizeof(*ans) + NET_CTL_STATE_MAX;
	uint8_t *buf = malloc(cap);
	ssize_t n;
	int err = 0;

	if (!buf)
		return why__set(why, wlen, -ENOMEM, "no memory for the netstack's answer");
	pthread_mutex_lock(&d->netstack_ctl_lock);
	p.fd = d->netstack_ctl;
	if (p.fd < 0) {
		err = why__set(why, wlen, -ENOTCONN, "the NIC has no netstack (it %s)",
			       d->netstack_died[0] ? d->netstack_died : "never started");
		goto out;
	}
	/* An answer that came after an earlier request gave up is stale. */
	while (recv(p.fd, buf, cap, MSG_DONTWAIT) > 0)
		;
	if (pass_fd >= 0) {
		struct cmsghdr *c;

		memset(&cm, 0, sizeof(cm));
		m.msg_control = cm.buf;
		m.msg_controllen = sizeof(cm.buf);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	}
	if (sendmsg(p.fd, &m, MSG_NOSIGNAL) < 0) {
		err = why__set(why, wlen, -errno, "cannot ask the netstack: %s", strerror(errno));
		goto out;
	}
	if (poll(&p, 1, PV_NETSTACK_CTL_MS) != 1) {
		err = why__set(why, wlen, -ETIMEDOUT,
			       "the netstack (pid %d) did not answer within %d ms",
			       (int)d->netstack.pid, PV_NETSTACK_CTL_MS);
		goto out;
	}
	n = recv(p.fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC);
	ans = (struct net_ctl_msg *)buf;
	if (n < 0) {
		err =
		    why__set(why, wlen, -errno, "no answer from the netstack: %s", strerror(errno));
		goto out;
	}
	if (n < (ssize_t)sizeof(*ans) || (size_t)n > cap || ans->op != op) {
		err = why__set(why, wlen, -EPROTO, "the netstack's answer is %s",
			       n ? "malformed" : "missing: it closed the socket");
		goto out;
	}
	if (ans->status) {
		err = why__set(why, wlen, ans->status < 0 ? ans->status : -EPROTO,
			       "the netstack says: %s", strerror(-ans->status));
		goto out;
	}
	if (out) {
		*outlen = (size_t)n - sizeof(*ans);
		*out = malloc(*outlen ? *outlen : 1);
		if (!*out)
			err = why__set(why, wlen, -ENOMEM, "no memory for the netstack's state");
		else
			memcpy(*out, buf + sizeof(*ans), *outlen);
	}
out:
	pthread_mutex_unlock(&d->netstack_ctl_lock);
	free(buf);
	return err;
}

/* The transport's save of a slirp NIC: libslirp's state (its leases, IP
 * ids) out of the netstack, as the model in vmm saves it.  A netstack that
 * is gone or does not answer saves nothing, the snapshot or migration goes
 * on, and the log says so: the restored NIC starts a fresh stack (the guest
 * keeps its address; slirp learns it again from its packets). */
static int pv_dev__netstack_save(void *opaque, uint8_t **buf, size_t *len)
{
	struct pv_dev *d = opaque;
	char why[256];

	*buf = NULL;
	*len = 0;
	if (pv_dev__netstack_ask(d, NET_CTL_SAVE, NULL, 0, -1, buf, len, why, sizeof(why)))
		pr_warn("%s \"%s\": libslirp's state is not saved: %s", d->noun, d->id, why);
	return 0;
}

/* The transport's restore: the saved state into this VM's new netstack; a
 * state it refuses fails the restore, as in vmm's own model. */
static int pv_dev__netstack_restore(void *opaque, const uint8_t *buf, size_t len)
{
	struct pv_dev *d = opaque;
	char why[256];
	int err;

	if (len > NET_CTL_STATE_MAX) {
		pr_err("%s \"%s\": saved libslirp state of %zu bytes: more than a netstack takes "
		       "(%d)",
		       d->noun, d->id, len, NET_CTL_STATE_MAX);
		return -EFBIG;
	}
	err = pv_dev__netstack_ask(d, NET_CTL_LOAD, buf, len, -1, NULL, NULL, why, sizeof(why));
	if (err)
		pr_err("%s \"%s\": cannot restore libslirp's state: %s", d->noun, d->id, why);
	return err;
}

void pv_dev__stop_netstack(struct pv_dev *d)
{
	if (!d->has_netstack)
		return;
	if (d->netstack_watched)
		evloop__del(&d->vm->loop, d->netstack.pidfd);
	d->netstack_watched = false;
	pv_dev__close_netstack_ctl(d);
	/* It exits by itself once the last end of its socket is closed. */
	paravisor_proc__stop(&d->netstack, PV_EXIT_GRACE_MS);
	d->has_netstack = false;
}

void pv__hold(struct vm *vm, bool hold)
{
	struct virtio_device *vdevs[PV_MAX_DEVS];
	unsigned int n = 0;

	pv__lock();
	for (struct pv_dev *d = pv_devs; d; d = d->next)
		if (d->vm == vm && d->vdev && n < PV_MAX_DEVS)
			vdevs[n++] = d->vdev;
	pv__unlock();
	/* Out of the lock: a release starts the devices, which talks to the
	 * paravisor. */
	for (unsigned int i = 0; i < n; i++)
		vhost_user_front__hold(vdevs[i], hold);
}

static void pv_dev__keep(struct pv_dev *d)
{
	struct pv_dev **p = &pv_devs;

	while (*p)
		p = &(*p)->next;
	*p = d;
}

static unsigned int pv_dev__count(const struct vm *vm)
{
	unsigned int n = 0;

	for (const struct pv_dev *d = pv_devs; d; d = d->next)
		n += d->vm == vm && d->vdev;
	return n;
}

int pv_dev__add(struct vm *vm, const struct pv_dev_desc *desc, const char **id)
{
	struct virtio_device *vdev;
	struct pv_dev *d;
	char why[512];
	int err;

	if (pv_dev__count(vm) >= PV_MAX_DEVS) {
		pr_err("%s \"%s\": more than %d devices with backend=paravisor in one VM",
		       desc->noun, desc->fc.id, PV_MAX_DEVS);
		err = -E2BIG;
		goto out_close;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		err = -ENOMEM;
		goto out_close;
	}
	d->vm = vm;
	vm->ram_shared = true; /* the paravisor maps the memfd */
	d->extra_fd = desc->extra_fd;
	d->netstack_ctl = -1;
	pthread_mutex_init(&d->netstack_ctl_lock, NULL);
	d->noun = desc->noun;
	d->flag = desc->flag;
	d->opt_head = desc->opt_head;
	d->serviceable = desc->serviceable;
	d->restart = desc->restart;
	snprintf(d->id, sizeof(d->id), "%s", desc->fc.id);
	snprintf(d->opt, sizeof(d->opt), "%s", desc->opt);
	d->fc = desc->fc;
	d->fc.id = d->id;
	d->fc.mem_fd = vm->mem_fd;
	d->fc.mem_base = vm->ram;
	d->fc.timeout_ms = PV_TIMEOUT_MS;
	d->fc.release = pv_dev__release;
	d->fc.opaque = d;
	if (desc->netstack_opt) {
		snprintf(d->netstack_opt, sizeof(d->netstack_opt), "%s", desc->netstack_opt);
		err = pv_dev__start_netstack(d, NULL, -1);
		if (err)
			goto out_free;
		d->fc.save = pv_dev__netstack_save;
		d->fc.restore = pv_dev__netstack_restore;
	}
	vdev = vhost_user_front__alloc(&d->fc, why, sizeof(why));
	if (!vdev) {
		pr_err("%s \"%s\": %s", d->noun, d->id, why);
		err = -EINVAL;
		goto out_netstack;
	}
	pv__lock();
	d->vdev = vdev;
	pv_dev__keep(d);
	if (d->has_netstack && d->netstack.pidfd >= 0)
		d->netstack_watched =
		    !evloop__add(&vm->loop, d->netstack.pidfd, EPOLLIN, pv_dev__netstack_exited, d);
	pv__unlock();
	err = virtio_pci__register(vm, vdev);
	if (err < 0) {
		pr_err("%s \"%s\": cannot add the PCI device: %s", d->noun, d->id, strerror(-err));
		vdev->ops->destroy(vdev); /* releases d */
		return err;
	}
	*id = vdev->id;
	/* Every paravisor device migrates: what it writes to guest RAM is in
	 * vhost-user's dirty log. */
	err = vhost_log__register(vm, vdev);
	if (err)
		pr_err("%s \"%s\": %s", d->noun, d->id, strerror(-err));
	return err;

out_netstack:
	if (d->has_netstack) {
		close(d->extra_fd);
		pv_dev__stop_netstack(d);
	}
out_free:
	pthread_mutex_destroy(&d->netstack_ctl_lock);
	free(d);
out_close:
	if (desc->extra_fd >= 0)
		close(desc->extra_fd);
	return err;
}

/* Negotiation failed: say whether the paravisor died (it said why itself). */
static void pv_host__start_failed(struct pv_host *h, const struct pv_dev *d, const char *why)
{
	char how[128];
	pid_t pid = h->proc.pid;

	if (paravisor_proc__wait(&h->proc, PV_EXIT_GRACE_MS, how, sizeof(how)))
		pr_err("%s \"%s\": the paravisor (pid %d) did not start: it %s (its own "
		       "message, if any, is above)",
		       d->noun, d->id, (int)pid, how);
	else
		pr_err("%s \"%s\": the paravisor (pid %d) did not start: %s", d->noun, d->id,
		       (int)pid, why);
}

/*
 * After every device's init: one paravisor for all of the VM's paravisor
 * devices, negotiated with device by device (each transport learns its
 * device's features now, before any guest code runs).
 */
static int pv__init(struct vm *vm)
{
	struct pv_dev *devs[PV_MAX_DEVS];
	int socks[PV_MAX_DEVS];
	unsigned int nr = 0, i;
	struct pv_host *h;
	char why[512];
	int err = 0;

	pv__lock();
	for (struct pv_dev *d = pv_devs; d; d = d->next)
		if (d->vm == vm && d->vdev && !d->host && nr < PV_MAX_DEVS)
			devs[nr++] = d;
	if (!nr)
		goto out_unlock;
	h = pv_host__spawn(vm, devs, nr, NULL, socks, why, sizeof(why));
	if (!h) {
		pr_err("%s \"%s\": cannot start the paravisor: %s", devs[0]->noun, devs[0]->id,
		       why);
		err = -EINVAL;
		goto out_unlock;
	}
	for (i = 0; i < nr; i++) {
		devs[i]->host = h;
		h->users++;
	}
	for (i = 0; i < nr && !err; i++) {
		err = vhost_user_front__connect(devs[i]->vdev, socks[i], why, sizeof(why));
		if (err)
			pv_host__start_failed(h, devs[i], why);
		else
			virtio_pci__refresh_features(devs[i]->vdev);
	}
	for (; i < nr; i++)
		close(socks[i]);
	if (err) {
		/* Teardown destroys the models, whose release reaps it. */
		paravisor_proc__stop(&h->proc, 0);
		err = -EINVAL;
		goto out_unlock;
	}
	pv_host__watch(h);
	pr_info("paravisor %s, pid %d, serves %u device(s) of this VM:", h->proc.path,
		(int)h->proc.pid, nr);
	for (i = 0; i < nr; i++)
		pr_info("%s \"%s\": served by the paravisor %s, pid %d", devs[i]->noun, devs[i]->id,
			h->proc.path, (int)h->proc.pid);
out_unlock:
	pv__unlock();
	return err;
}
backend_init(pv__init, NULL);
