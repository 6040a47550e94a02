/* vmm/dev_vhost_user.h — devices served by a paravisor process (disks with
 * backend=paravisor, NICs likewise): the model vmm drives is
 * virtio/vhost_user_front.c, the process is one paravisor per device.  The
 * kind-specific files (dev_vhost_user_blk.c, dev_vhost_user_net.c) only say
 * what the device is and which option the paravisor gets. */
#ifndef VMMD_VMM_DEV_VHOST_USER_H
#define VMMD_VMM_DEV_VHOST_USER_H

#include "virtio/vhost_user_front.h"
#include "vmm/paravisor_proc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

/* At teardown or after servicing: time to exit on its own once its socket
 * closed. */
#define PV_EXIT_GRACE_MS 2000
/* More restarts than this within PV_RESTART_WINDOW_MS and the device fails
 * for good: a paravisor that keeps dying would otherwise loop forever. */
#define PV_RESTART_BURST     5
#define PV_RESTART_WINDOW_MS 60000

/* Never freed: the event loop may still hold it when the VM goes away, so
 * they stay on a list (which also tells leak checkers they are kept). */
struct pv_dev {
	struct pv_dev *next;
	struct vm *vm;
	pthread_mutex_t lock;	    /* vdev and proc, between the loop and teardown */
	struct virtio_device *vdev; /* NULL once the model is destroyed */
	struct paravisor_proc proc;
	/* Handed to every paravisor of the device as its descriptor
	 * PARAVISOR_PROC_FD2 (a disk's image, opened by vmm); -1: none. */
	int extra_fd;
	bool watched;
	/* Servicing may replace its process. */
	bool serviceable;
	/* A NIC's slirp runs in a netstack process of its own, which outlives
	 * the paravisors (the socket to it is extra_fd). */
	bool has_netstack, netstack_watched;
	struct paravisor_proc netstack;
	char netstack_died[256]; /* how it ended; "" while it runs */
	const char *noun; /* "disk", "NIC": for messages */
	const char *flag; /* the paravisor's option for it: "--disk", "--net" */
	char id[32];
	char opt[4200];			/* that option's value */
	struct vhost_user_front_cfg fc; /* how the model was made */
	/* Restarts (vmm/paravisor_restart.c), under lock. */
	bool restart;			      /* restart=on (never for a NIC yet) */
	unsigned int restarts;		      /* so far */
	int64_t restart_ms[PV_RESTART_BURST]; /* when the last ones were, a ring */
	char last_death[256];		      /* how the last paravisor ended */
	char failed[1024];		      /* why the device failed for good; "" while it runs */
};

/* What a kind of device tells pv_dev__add. */
struct pv_dev_desc {
	const char *noun, *flag, *opt;
	bool serviceable;
	bool restart; /* restart its paravisor when it dies */
	int extra_fd; /* see struct pv_dev; pv_dev__add owns it, also on failure */
	/* Non-NULL: start `paravisor --netstack --net netstack_opt` first; the
	 * socket to it becomes extra_fd (then -1 here). */
	const char *netstack_opt;
	/* Why a live migration must be refused; NULL: the device migrates
	 * (what its paravisor writes to guest RAM is in vmm/vhost_log.c's log). */
	const char *migration_blocker;
	/* id, type, device_id, config_size, queue_size, nr_queues, refuse;
	 * the rest is filled in here. */
	struct vhost_user_front_cfg fc;
};

/*
 * Starts a paravisor for the device, negotiates with it and adds the PCI
 * function.  0 and *id (the model's), or negative errno after one error
 * line naming the device.
 */
int pv_dev__add(struct vm *vm, const struct pv_dev_desc *desc, const char **id);

/* The VM's devices servicing may replace that have a model: disks first,
 * then NICs, each in the order they were added; NULL at the end. */
struct pv_dev *pv_dev__next(struct vm *vm, struct pv_dev *prev);
/*
 * Starts the paravisor at path (NULL: --paravisor or the one next to vmm)
 * for d's device into p, with a new socketpair: *sock is vmm's end.  0 or
 * negative errno with why.
 */
int pv_dev__spawn(struct pv_dev *d, struct paravisor_proc *p, const char *path, int *sock,
		  char *why, size_t whylen);
/* Watches d->proc's pidfd on the event loop (its death fails the device),
 * or stops watching it.  d->lock held. */
void pv_dev__watch(struct pv_dev *d);
void pv_dev__unwatch(struct pv_dev *d);
/*
 * d's paravisor died (how: "killed by signal 9 (Killed)"): starts another
 * one that takes over the device's rings and re-submits what was in flight.
 * 0: it runs (and is watched); negative errno with why (restart=off, too
 * many restarts, or the new one failed): the caller fails the device.
 * d->lock held, the dead process reaped.
 */
int pv_dev__restart(struct pv_dev *d, const char *how, char *why, size_t whylen);

#endif
