/*
 * vmm/dev_vhost_user_blk.c — a --disk with backend=paravisor: one paravisor
 * process per such disk serves it over vhost-user, vmm keeps only the PCI
 * transport (virtio/vhost_user_front.c is the model it drives).  So the
 * disk's data path (virtqueues, io_uring) runs in the paravisor: guest
 * kicks reach it through KVM ioeventfds, its completions reach the guest
 * through KVM irqfds, and vmm is not on the way.
 *
 * One process per disk rather than per VM for now: the paravisor serves one
 * device per connection.  Its image is opened by the paravisor (by path);
 * handing it the open fd instead is what the sandbox will need.
 *
 * If the paravisor dies, its pidfd wakes the event loop, which restarts it
 * (vmm/paravisor_restart.c) unless restart=off or it keeps dying; then the
 * device fails (NEEDS_RESET, with the exit reason in the log), its requests
 * are answered with I/O errors from then on (so the guest's I/O on it fails
 * rather than hangs), and the rest of the VM runs on.
 *
 * Snapshots need nothing here: the transport's save stops the model (the
 * paravisor finishes what it took and gives the ring indexes back) and its
 * restore starts it at the saved indexes, on RAM the paravisor maps from
 * the same memfd.  Live migration works the same way (the destination's
 * paravisor starts at the indexes the source's gave back); what the
 * paravisor writes to guest RAM, which KVM's dirty log cannot see, it logs
 * in vhost-user's dirty log (vmm/vhost_log.c).
 */
#include "common/log.h"
#include "common/why.h"
#include "virtio/vhost_user_front.h"
#include "vmm/dev_blk.h"
#include "vmm/dev_vhost_user_blk.h"
#include "vmm/paravisor_proc.h"
#include "vmm/vhost_log.h"
#include "vmm/virtio_pci.h"
#include "vmm/vm.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* A back-end that takes longer than this for one answer counts as hung. */
#define PV_TIMEOUT_MS 10000

static struct pv_disk *pv_disks;

/* The event loop: the paravisor's pidfd is readable, it exited. */
static void pv_disk__exited(int fd, uint32_t events, void *opaque)
{
	struct pv_disk *d = opaque;
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
	if (!pv_disk__restart(d, why, rwhy, sizeof(rwhy)))
		goto out_unlock;
	snprintf(why, sizeof(why),
		 "its paravisor (pid %d) died: %s; not restarted: %s; the disk's I/O fails from "
		 "now on (the rest of the VM runs on)",
		 (int)pid, how, rwhy);
	snprintf(d->failed, sizeof(d->failed), "%s", why);
	vhost_user_front__gone(d->vdev, why);
out_unlock:
	pthread_mutex_unlock(&d->lock);
}

void pv_disk__watch(struct pv_disk *d)
{
	d->watched = d->proc.pidfd >= 0 &&
		     !evloop__add(&d->vm->loop, d->proc.pidfd, EPOLLIN, pv_disk__exited, d);
	if (!d->watched)
		pr_warn("disk \"%s\": cannot watch the paravisor's process; its death shows only "
			"as failed requests",
			d->id);
}

void pv_disk__unwatch(struct pv_disk *d)
{
	if (d->watched)
		evloop__del(&d->vm->loop, d->proc.pidfd);
	d->watched = false;
}

struct pv_disk *pv_disk__next(struct vm *vm, struct pv_disk *prev)
{
	for (struct pv_disk *d = prev ? prev->next : pv_disks; d; d = d->next)
		if (d->vm == vm && d->vdev)
			return d;
	return NULL;
}

/* The paravisor is gone: a request fails with VIRTIO_BLK_S_IOERR in its
 * status byte, the last byte the device may write. */
static uint32_t pv_disk__refuse(struct virtio_device *vdev, struct virtq_elem *e)
{
	const struct iovec *last;

	if (!e->in_num)
		return 0;
	last = &e->iov[e->out_num + e->in_num - 1];
	if (!last->iov_len)
		return 0;
	((uint8_t *)last->iov_base)[last->iov_len - 1] = VIRTIO_BLK_S_IOERR;
	return 1;
}

/* The model is being destroyed (its socket just closed): reap the child. */
static void pv_disk__release(void *opaque)
{
	struct pv_disk *d = opaque;

	pthread_mutex_lock(&d->lock);
	if (d->vdev)
		vhost_log__unregister(d->vm, d->vdev);
	d->vdev = NULL;
	pv_disk__unwatch(d);
	paravisor_proc__stop(&d->proc, PV_EXIT_GRACE_MS);
	if (d->img_fd >= 0)
		close(d->img_fd);
	d->img_fd = -1;
	pthread_mutex_unlock(&d->lock);
}

/* The paravisor's --disk: the same keys, already checked by vmm; the image
 * is the descriptor it is handed (path= only names it in messages). */
static void pv_disk__opt(const struct blk_opts *o, char *buf, size_t len)
{
	snprintf(buf, len, "fd=%d,path=%s,readonly=%s,cache=%s,queues=%u,id=%s",
		 PARAVISOR_PROC_FD2, o->path, o->readonly ? "on" : "off",
		 o->cache == BLK_CACHE_NONE ? "none" : "writeback", o->queues, o->id);
}

/* vmm opens the image and hands it to each paravisor of the disk: a new one
 * (servicing, restart) gets the very same file even if the path changed
 * meanwhile, and none needs a right to open it by name. */
static int pv_disk__open_image(struct pv_disk *d, const struct blk_opts *o)
{
	struct stat st;

	d->img_fd = open(o->path, (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (d->img_fd < 0 || fstat(d->img_fd, &st) || !S_ISREG(st.st_mode)) {
		int err = d->img_fd < 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : ENOTSUP;

		pr_err("disk \"%s\": cannot open %s: %s", o->id, o->path,
		       err == ENOTSUP ? "not a regular file" : strerror(err));
		if (d->img_fd >= 0)
			close(d->img_fd);
		d->img_fd = -1;
		return -EINVAL; /* a bad --disk: vmm exits 2 */
	}
	return 0;
}

int pv_disk__spawn(struct pv_disk *d, struct paravisor_proc *p, const char *path, int *sock,
		   char *why, size_t whylen)
{
	char fdnum[8], uid[24];
	char *argv[] = {p->path, "--fd", fdnum, "--disk", d->opt, NULL, NULL, NULL, NULL, NULL, NULL};
	int sv[2], err, n = 5;

	err = paravisor_proc__find(p, path, why, whylen);
	if (err)
		return err;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return why__set(why, whylen, -errno, "socketpair: %s", strerror(errno));
	snprintf(fdnum, sizeof(fdnum), "%d", PARAVISOR_PROC_FD);
	if (d->vm->cfg->verbose)
		argv[n++] = "-v";
	if (d->vm->cfg->paravisor_uid > 0) {
		snprintf(uid, sizeof(uid), "%ld", d->vm->cfg->paravisor_uid);
		argv[n++] = "--uid";
		argv[n++] = uid;
		argv[n++] = "--gid";
		argv[n++] = uid;
	}
	err = paravisor_proc__spawn2(p, argv, sv[1], d->img_fd, why, whylen);
	close(sv[1]);
	if (err) {
		close(sv[0]);
		return err;
	}
	*sock = sv[0];
	return 0;
}

static int pv_disk__start(struct pv_disk *d, int *sock)
{
	char why[512];
	int err;

	err = pv_disk__spawn(d, &d->proc, d->vm->cfg->paravisor, sock, why, sizeof(why));
	if (err) {
		pr_err("disk \"%s\": cannot start the paravisor: %s", d->id, why);
		return -EINVAL;
	}
	pr_info("disk \"%s\": served by the paravisor %s, pid %d", d->id, d->proc.path,
		(int)d->proc.pid);
	return 0;
}

/* Negotiation failed: say whether the paravisor died (it said why itself). */
static void pv_disk__start_failed(struct pv_disk *d, const char *why)
{
	char how[128];
	pid_t pid = d->proc.pid;

	if (paravisor_proc__wait(&d->proc, PV_EXIT_GRACE_MS, how, sizeof(how)))
		pr_err("disk \"%s\": the paravisor (pid %d) did not start: it %s (its own "
		       "message, if any, is above)",
		       d->id, (int)pid, how);
	else
		pr_err("disk \"%s\": the paravisor (pid %d) did not start: %s", d->id, (int)pid,
		       why);
	paravisor_proc__stop(&d->proc, 0);
}

int vhost_user_blk__add(struct vm *vm, const struct blk_opts *o, const char **id)
{
	struct vhost_user_front_cfg fc = {
	    .id = o->id,
	    .type = "virtio-blk",
	    .device_id = VIRTIO_ID_BLOCK,
	    .config_size = sizeof(struct virtio_blk_config),
	    .queue_size = VIRTIO_BLK_QUEUE_SIZE,
	    .nr_queues = o->queues,
	    .mem_fd = vm->mem_fd,
	    .mem_base = vm->ram,
	    .timeout_ms = PV_TIMEOUT_MS,
	    .refuse = pv_disk__refuse,
	    .release = pv_disk__release,
	};
	struct virtio_device *vdev;
	struct pv_disk *d;
	char why[512];
	int sock, err;

	/* A lazy restore maps the snapshot privately over guest RAM, so the
	 * memfd the paravisor maps would not hold the guest's memory. */
	if (vm->cfg->restore_dir && vm->cfg->restore_lazy) {
		pr_err("disk \"%s\": backend=paravisor cannot be used with --restore-mode lazy "
		       "yet (the paravisor maps the RAM memfd, which a lazy restore does not "
		       "fill; use --restore-mode copy)",
		       o->id);
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->vm = vm;
	d->restart = o->restart;
	pthread_mutex_init(&d->lock, NULL);
	snprintf(d->id, sizeof(d->id), "%s", o->id);
	pv_disk__opt(o, d->opt, sizeof(d->opt));
	err = pv_disk__open_image(d, o);
	if (err)
		goto out_free;
	err = pv_disk__start(d, &sock);
	if (err)
		goto out_close;
	fc.opaque = d;
	d->fc = fc;
	vdev = vhost_user_front__create(sock, &fc, why, sizeof(why));
	if (!vdev) {
		pv_disk__start_failed(d, why);
		err = -EINVAL;
		goto out_close;
	}
	d->vdev = vdev;
	err = virtio_pci__register(vm, vdev);
	if (err < 0) {
		pr_err("disk \"%s\": cannot add the PCI device: %s", o->id, strerror(-err));
		vdev->ops->destroy(vdev); /* reaps the paravisor */
		d->next = pv_disks;
		pv_disks = d;
		return err;
	}
	*id = vdev->id;
	d->next = pv_disks;
	pv_disks = d;
	pthread_mutex_lock(&d->lock);
	pv_disk__watch(d);
	pthread_mutex_unlock(&d->lock);
	/* What the paravisor writes to guest RAM is in a live migration's
	 * dirty log through vhost-user's (vmm/vhost_log.c). */
	err = vhost_log__register(vm, vdev);
	if (err)
		pr_err("disk \"%s\": %s", o->id, strerror(-err));
	return err;

out_close:
	close(d->img_fd);
out_free:
	pthread_mutex_destroy(&d->lock);
	free(d);
	return err;
}
