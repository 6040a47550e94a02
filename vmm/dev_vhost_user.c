/*
 * vmm/dev_vhost_user.c — a device with backend=paravisor: one paravisor
 * process per such device serves it over vhost-user, vmm keeps only the PCI
 * transport (virtio/vhost_user_front.c is the model it drives).  So the
 * device's data path (virtqueues, io_uring, slirp) runs in the paravisor:
 * guest kicks reach it through KVM ioeventfds, its completions reach the
 * guest through KVM irqfds, and vmm is not on the way.
 *
 * One process per device rather than per VM for now: the paravisor serves
 * one device per connection.
 *
 * If the paravisor dies, its pidfd wakes the event loop, which restarts it
 * (vmm/paravisor_restart.c) unless restart is off or it keeps dying; then
 * the device fails (NEEDS_RESET, with the exit reason in the log), its
 * requests are answered with the kind's error (fc.refuse) from then on, so
 * the guest's I/O on it fails rather than hangs, and the rest of the VM runs
 * on.
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
#include <unistd.h>

/* A back-end that takes longer than this for one answer counts as hung. */
#define PV_TIMEOUT_MS 10000

static struct pv_dev *pv_devs;

/* The event loop: the paravisor's pidfd is readable, it exited. */
static void pv_dev__exited(int fd, uint32_t events, void *opaque)
{
	struct pv_dev *d = opaque;
	char how[128], why[1024], rwhy[640];
	pid_t pid;

	pthread_mutex_lock(&d->lock);
	if (!d->vdev || !d->watched)
		goto out_unlock;
	evloop__del(&d->vm->loop, fd);
	d->watched = false;
	pid = d->proc.pid;
	if (!paravisor_proc__wait(&d->proc, 1000, how, sizeof(how)))
		snprintf(how, sizeof(how), "its process ended");
	snprintf(why, sizeof(why), "(pid %d) %s", (int)pid, how);
	if (!pv_dev__restart(d, why, rwhy, sizeof(rwhy)))
		goto out_unlock;
	snprintf(why, sizeof(why),
		 "its paravisor (pid %d) died: %s; not restarted: %s; the %s's I/O fails from "
		 "now on (the rest of the VM runs on)",
		 (int)pid, how, rwhy, d->noun);
	snprintf(d->failed, sizeof(d->failed), "%s", why);
	vhost_user_front__gone(d->vdev, why);
out_unlock:
	pthread_mutex_unlock(&d->lock);
}

void pv_dev__watch(struct pv_dev *d)
{
	d->watched = d->proc.pidfd >= 0 &&
		     !evloop__add(&d->vm->loop, d->proc.pidfd, EPOLLIN, pv_dev__exited, d);
	if (!d->watched)
		pr_warn("%s \"%s\": cannot watch the paravisor's process; its death shows only "
			"as failed requests",
			d->noun, d->id);
}

void pv_dev__unwatch(struct pv_dev *d)
{
	if (d->watched)
		evloop__del(&d->vm->loop, d->proc.pidfd);
	d->watched = false;
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

static void pv_dev__stop_netstack(struct pv_dev *d);

/* The model is being destroyed (its socket just closed): reap the child. */
static void pv_dev__release(void *opaque)
{
	struct pv_dev *d = opaque;

	pthread_mutex_lock(&d->lock);
	if (d->vdev)
		vhost_log__unregister(d->vm, d->vdev);
	d->vdev = NULL;
	pv_dev__unwatch(d);
	paravisor_proc__stop(&d->proc, PV_EXIT_GRACE_MS);
	if (d->extra_fd >= 0)
		close(d->extra_fd);
	d->extra_fd = -1;
	pv_dev__stop_netstack(d);
	pthread_mutex_unlock(&d->lock);
}

/* Starts path as `paravisor [lead] --fd 3 flag opt [-v] [--uid N --gid N]`
 * with sock as its descriptor 3 and extra (if >= 0) as 4. */
static int pv_dev__exec(struct pv_dev *d, struct paravisor_proc *p, const char *lead,
			const char *flag, const char *opt, int sock, int extra, char *why,
			size_t whylen)
{
	char fdnum[8], uid[24];
	char *argv[12] = {p->path};
	int n = 1;

	if (lead)
		argv[n++] = (char *)lead;
	snprintf(fdnum, sizeof(fdnum), "%d", PARAVISOR_PROC_FD);
	argv[n++] = "--fd";
	argv[n++] = fdnum;
	argv[n++] = (char *)flag;
	argv[n++] = (char *)opt;
	if (d->vm->cfg->verbose)
		argv[n++] = "-v";
	if (d->vm->cfg->paravisor_uid > 0) {
		snprintf(uid, sizeof(uid), "%ld", d->vm->cfg->paravisor_uid);
		argv[n++] = "--uid";
		argv[n++] = uid;
		argv[n++] = "--gid";
		argv[n++] = uid;
	}
	return paravisor_proc__spawn2(p, argv, sock, extra, why, whylen);
}

int pv_dev__spawn(struct pv_dev *d, struct paravisor_proc *p, const char *path, int *sock,
		  char *why, size_t whylen)
{
	int sv[2], err;

	err = paravisor_proc__find(p, path, why, whylen);
	if (err)
		return err;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return why__set(why, whylen, -errno, "socketpair: %s", strerror(errno));
	err = pv_dev__exec(d, p, NULL, d->flag, d->opt, sv[1], d->extra_fd, why, whylen);
	close(sv[1]);
	if (err) {
		close(sv[0]);
		return err;
	}
	*sock = sv[0];
	return 0;
}

/* The event loop: the netstack exited.  Its NAT is gone with it; the NIC's
 * paravisor notices the closed socket and drops what the guest sends. */
static void pv_dev__netstack_exited(int fd, uint32_t events, void *opaque)
{
	struct pv_dev *d = opaque;
	char how[128];
	pid_t pid;

	pthread_mutex_lock(&d->lock);
	/* Stopped meanwhile by the device's release: nothing to report. */
	if (!d->netstack_watched) {
		pthread_mutex_unlock(&d->lock);
		return;
	}
	evloop__del(&d->vm->loop, fd);
	d->netstack_watched = false;
	pid = d->netstack.pid;
	if (!paravisor_proc__wait(&d->netstack, 1000, how, sizeof(how)))
		snprintf(how, sizeof(how), "its process ended");
	snprintf(d->netstack_died, sizeof(d->netstack_died), "(pid %d) %s", (int)pid, how);
	pr_err("%s \"%s\": its netstack %s; the NIC is cut off from the network (the rest "
	       "of the VM runs on)",
	       d->noun, d->id, d->netstack_died);
	pthread_mutex_unlock(&d->lock);
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
 * The NIC's slirp in a process of its own (paravisor/netstack.c), which no
 * servicing or restart replaces: its end of a SOCK_SEQPACKET pair is its
 * descriptor 3, ours becomes the device's extra_fd, handed to each of the
 * NIC's paravisors as descriptor 4.
 */
static int pv_dev__start_netstack(struct pv_dev *d, const char *opt)
{
	char why[512];
	int sv[2], err;

	err = paravisor_proc__find(&d->netstack, d->vm->cfg->paravisor, why, sizeof(why));
	if (err) {
		pr_err("%s \"%s\": cannot start the paravisor: %s", d->noun, d->id, why);
		return -EINVAL;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		err = -errno;
		pr_err("%s \"%s\": socketpair: %s", d->noun, d->id, strerror(errno));
		return err;
	}
	err = pv_dev__exec(d, &d->netstack, "--netstack", "--net", opt, sv[1], -1, why,
			   sizeof(why));
	close(sv[1]);
	if (err) {
		close(sv[0]);
		pr_err("%s \"%s\": cannot start its netstack: %s", d->noun, d->id, why);
		return -EINVAL;
	}
	d->has_netstack = true;
	d->extra_fd = sv[0];
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

static void pv_dev__stop_netstack(struct pv_dev *d)
{
	if (!d->has_netstack)
		return;
	if (d->netstack_watched)
		evloop__del(&d->vm->loop, d->netstack.pidfd);
	d->netstack_watched = false;
	/* It exits by itself once the last end of its socket is closed. */
	paravisor_proc__stop(&d->netstack, PV_EXIT_GRACE_MS);
	d->has_netstack = false;
}

static int pv_dev__start(struct pv_dev *d, int *sock)
{
	char why[512];
	int err;

	err = pv_dev__spawn(d, &d->proc, d->vm->cfg->paravisor, sock, why, sizeof(why));
	if (err) {
		pr_err("%s \"%s\": cannot start the paravisor: %s", d->noun, d->id, why);
		return -EINVAL;
	}
	pr_info("%s \"%s\": served by the paravisor %s, pid %d", d->noun, d->id, d->proc.path,
		(int)d->proc.pid);
	return 0;
}

/* Negotiation failed: say whether the paravisor died (it said why itself). */
static void pv_dev__start_failed(struct pv_dev *d, const char *why)
{
	char how[128];
	pid_t pid = d->proc.pid;

	if (paravisor_proc__wait(&d->proc, PV_EXIT_GRACE_MS, how, sizeof(how)))
		pr_err("%s \"%s\": the paravisor (pid %d) did not start: it %s (its own "
		       "message, if any, is above)",
		       d->noun, d->id, (int)pid, how);
	else
		pr_err("%s \"%s\": the paravisor (pid %d) did not start: %s", d->noun, d->id,
		       (int)pid, why);
	paravisor_proc__stop(&d->proc, 0);
}

/* A lazy restore maps the snapshot privately over guest RAM, so the memfd
 * the paravisor maps would not hold the guest's memory; an incoming
 * migration needs a device that migrates. */
static int pv_dev__check_vm(struct vm *vm, const struct pv_dev_desc *desc)
{
	if (vm->cfg->restore_dir && vm->cfg->restore_lazy) {
		pr_err("%s \"%s\": backend=paravisor cannot be used with --restore-mode lazy "
		       "yet (the paravisor maps the RAM memfd, which a lazy restore does not "
		       "fill; use --restore-mode copy)",
		       desc->noun, desc->fc.id);
		return -EINVAL;
	}
	if (vm->cfg->incoming && desc->migration_blocker) {
		pr_err("%s \"%s\": backend=paravisor cannot be used with --incoming yet (%s)",
		       desc->noun, desc->fc.id, desc->migration_blocker);
		return -EINVAL;
	}
	return 0;
}

static void pv_dev__keep(struct pv_dev *d)
{
	struct pv_dev **p = &pv_devs;

	while (*p)
		p = &(*p)->next;
	*p = d;
}

int pv_dev__add(struct vm *vm, const struct pv_dev_desc *desc, const char **id)
{
	struct virtio_device *vdev;
	struct pv_dev *d;
	char why[512];
	int sock, err;

	err = pv_dev__check_vm(vm, desc);
	if (err)
		goto out_close;
	d = calloc(1, sizeof(*d));
	if (!d) {
		err = -ENOMEM;
		goto out_close;
	}
	d->vm = vm;
	d->extra_fd = desc->extra_fd;
	pthread_mutex_init(&d->lock, NULL);
	d->noun = desc->noun;
	d->flag = desc->flag;
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
		err = pv_dev__start_netstack(d, desc->netstack_opt);
		if (err)
			goto out_free;
	}
	err = pv_dev__start(d, &sock);
	if (err)
		goto out_netstack;
	vdev = vhost_user_front__create(sock, &d->fc, why, sizeof(why));
	if (!vdev) {
		pv_dev__start_failed(d, why);
		err = -EINVAL;
		goto out_netstack;
	}
	d->vdev = vdev;
	pv_dev__keep(d);
	err = virtio_pci__register(vm, vdev);
	if (err < 0) {
		pr_err("%s \"%s\": cannot add the PCI device: %s", d->noun, d->id, strerror(-err));
		vdev->ops->destroy(vdev); /* reaps the paravisor */
		return err;
	}
	*id = vdev->id;
	pthread_mutex_lock(&d->lock);
	pv_dev__watch(d);
	if (d->has_netstack && d->netstack.pidfd >= 0)
		d->netstack_watched = !evloop__add(&vm->loop, d->netstack.pidfd, EPOLLIN,
						   pv_dev__netstack_exited, d);
	pthread_mutex_unlock(&d->lock);
	if (desc->migration_blocker) {
		snprintf(vm->migration_blocker, sizeof(vm->migration_blocker), "%s %s: %s", d->noun,
			 d->id, desc->migration_blocker);
		return 0;
	}
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
	pthread_mutex_destroy(&d->lock);
	free(d);
out_close:
	if (desc->extra_fd >= 0)
		close(desc->extra_fd);
	return err;
}
