/* vmm/dev_vhost_user_blk.h — the disks served by a paravisor process, as
 * servicing (vmm/paravisor_service.c) sees them: the model, the process,
 * and what it takes to start another process for the same disk. */
#ifndef VMMD_VMM_DEV_VHOST_USER_BLK_H
#define VMMD_VMM_DEV_VHOST_USER_BLK_H

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
/* More restarts than this within PV_RESTART_WINDOW_MS and the disk fails
 * for good: a paravisor that keeps dying would otherwise loop forever. */
#define PV_RESTART_BURST     5
#define PV_RESTART_WINDOW_MS 60000

/* Never freed: the event loop may still hold it when the VM goes away, so
 * they stay on a list (which also tells leak checkers they are kept). */
struct pv_disk {
	struct pv_disk *next;
	struct vm *vm;
	pthread_mutex_t lock;	    /* vdev and proc, between the loop and teardown */
	struct virtio_device *vdev; /* NULL once the model is destroyed */
	struct paravisor_proc proc;
	int img_fd; /* the image, opened here; every paravisor of the disk gets it */
	bool watched;
	char id[32];
	char opt[4200];			/* the paravisor's --disk */
	struct vhost_user_front_cfg fc; /* how the model was made */
	/* Restarts (vmm/paravisor_restart.c), under lock. */
	bool restart;			      /* restart=on */
	unsigned int restarts;		      /* so far */
	int64_t restart_ms[PV_RESTART_BURST]; /* when the last ones were, a ring */
	char last_death[256];		      /* how the last paravisor ended */
	char failed[1024];		      /* why the disk failed for good; "" while it runs */
};

/* The VM's disks that have a model, in no particular order; NULL at the end. */
struct pv_disk *pv_disk__next(struct vm *vm, struct pv_disk *prev);
/*
 * Starts the paravisor at path (NULL: --paravisor or the one next to vmm)
 * for d's disk into p, with a new socketpair: *sock is vmm's end.  0 or
 * negative errno with why.
 */
int pv_disk__spawn(struct pv_disk *d, struct paravisor_proc *p, const char *path, int *sock,
		   char *why, size_t whylen);
/* Watches d->proc's pidfd on the event loop (its death fails the device),
 * or stops watching it.  d->lock held. */
void pv_disk__watch(struct pv_disk *d);
void pv_disk__unwatch(struct pv_disk *d);
/*
 * d's paravisor died (how: "killed by signal 9 (Killed)"): starts another
 * one that takes over the disk's rings and re-submits what was in flight.
 * 0: it runs (and is watched); negative errno with why (restart=off, too
 * many restarts, or the new one failed): the caller fails the disk.
 * d->lock held, the dead process reaped.
 */
int pv_disk__restart(struct pv_disk *d, const char *how, char *why, size_t whylen);

#endif
