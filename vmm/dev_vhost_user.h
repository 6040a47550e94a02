/* vmm/dev_vhost_user.h — devices served by a paravisor process (disks with
 * backend=paravisor, NICs likewise): the model vmm drives is
 * virtio/vhost_user_front.c, the process is one paravisor per VM.  The
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
struct pv_drain;

/* At teardown or after servicing: time to exit on its own once its socket
 * closed. */
#define PV_EXIT_GRACE_MS 2000
/* More restarts than this within PV_RESTART_WINDOW_MS and the device fails
 * for good: a paravisor that keeps dying would otherwise loop forever. */
#define PV_RESTART_BURST     5
#define PV_RESTART_WINDOW_MS 60000

/* A paravisor process and the devices whose connection is to it: normally
 * one for all of a VM's paravisor devices (the VM's device layer, as
 * DESIGN.md has it).  Kept on a list, freed only on the event loop when
 * servicing or a restart left it without devices and reaped it. */
struct pv_host {
	struct pv_host *next;
	struct vm *vm;
	struct paravisor_proc proc;
	bool watched;	    /* its pidfd is on the event loop */
	unsigned int users; /* devices connected to it */
};

/* Never freed: the event loop may still hold it when the VM goes away, so
 * they stay on a list (which also tells leak checkers they are kept). */
struct pv_dev {
	struct pv_dev *next;
	struct vm *vm;
	struct virtio_device *vdev; /* NULL once the model is destroyed */
	struct pv_host *host;	    /* NULL until connected, and once released */
	/* Handed to every paravisor of the device after its socket (a disk's
	 * image, opened by vmm; a NIC's socket to its netstack); -1: none. */
	int extra_fd;
	/* Servicing may replace its process. */
	bool serviceable;
	/* A NIC's slirp runs in a netstack process of its own, which outlives
	 * the paravisors (the socket to it is extra_fd). */
	bool has_netstack, netstack_watched;
	struct paravisor_proc netstack;
	/* Its control socket (save, load: net/socket.h); -1: none.  The lock
	 * keeps one request at a time and the socket from closing under it. */
	int netstack_ctl;
	pthread_mutex_t netstack_ctl_lock;
	char netstack_died[256]; /* how it ended; "" while it runs */
	char netstack_opt[4200]; /* its --net, to start it again */
	/* Its restarts (restart=on): so far, and when the last ones were. */
	unsigned int netstack_restarts;
	int64_t netstack_restart_ms[PV_RESTART_BURST];
	char netstack_last_death[256];
	/* Netstacks servicing replaced that still carry connections (they
	 * drain into the current one, vmm/paravisor_netstack.c). */
	struct pv_drain *draining;
	const char *noun; /* "disk", "NIC": for messages */
	const char *flag; /* the paravisor's option for it: "--disk", "--net" */
	const char *opt_head; /* that option's value: head, fd=N (extra_fd), opt */
	char id[32];
	char opt[4200];
	struct vhost_user_front_cfg fc; /* how the model was made */
	/* Restarts (vmm/paravisor_restart.c). */
	bool restart;			      /* restart=on */
	unsigned int restarts;		      /* so far */
	int64_t restart_ms[PV_RESTART_BURST]; /* when the last ones were, a ring */
	char last_death[256];		      /* how the last paravisor ended */
	char failed[1024];		      /* why the device failed for good; "" while it runs */
};

/* What a kind of device tells pv_dev__add. */
struct pv_dev_desc {
	const char *noun, *flag, *opt_head, *opt;
	bool serviceable;
	bool restart; /* restart its paravisor when it dies */
	int extra_fd; /* see struct pv_dev; pv_dev__add owns it, also on failure */
	/* Non-NULL: start `paravisor --netstack --net netstack_opt` first; the
	 * socket to it becomes extra_fd (then -1 here). */
	const char *netstack_opt;
	/* id, type, device_id, config_size, queue_size, nr_queues, refuse;
	 * the rest is filled in here. */
	struct vhost_user_front_cfg fc;
};

/* At most this many paravisor devices per VM (each takes one or two of
 * the process's PARAVISOR_PROC_MAX_FDS descriptors). */
#define PV_MAX_DEVS 16

/*
 * Adds the PCI function of a device a paravisor will serve; the VM's one
 * paravisor process starts once every device exists (an init hook after
 * the devices'), and negotiates with each then.  0 and *id (the model's),
 * or negative errno after one error line naming the device.
 */
int pv_dev__add(struct vm *vm, const struct pv_dev_desc *desc, const char **id);

/* Everything here (devices, hosts) is under this lock: the event loop
 * (deaths, servicing, restarts, status) and teardown (release). */
/* hold: the VM's paravisor devices start only once released (their
 * paravisors get neither guest RAM nor rings meanwhile): a lazy restore
 * holds them until RAM is loaded. */
void pv__hold(struct vm *vm, bool hold);
void pv__lock(void);
void pv__unlock(void);
/* CLOCK_MONOTONIC in ms: when restarts happened, how long servicing took. */
int64_t pv__now_ms(void);
/* Would one more restart, after done of them whose last PV_RESTART_BURST
 * times are in the ring when[], be the (BURST+1)th within the window? */
bool pv__too_many(unsigned int done, const int64_t when[PV_RESTART_BURST], int64_t now);

/* The VM's devices servicing may replace that have a model: disks first,
 * then NICs, each in the order they were added; NULL at the end. */
struct pv_dev *pv_dev__next(struct vm *vm, struct pv_dev *prev);
/*
 * Starts the paravisor at path (NULL: --paravisor or the one next to vmm)
 * serving the nr devices d[] (each on a new socketpair: socks[i] is vmm's
 * end for d[i]).  The new host has no users and is not watched yet.  NULL
 * with why.
 */
struct pv_host *pv_host__spawn(struct vm *vm, struct pv_dev *const d[], unsigned int nr,
			       const char *path, int socks[], char *why, size_t whylen);
/* Watches h's pidfd on the event loop (its death restarts or fails its
 * devices), or stops watching it. */
void pv_host__watch(struct pv_host *h);
void pv_host__unwatch(struct pv_host *h);
/* h has no users left: unwatched, stopped (grace_ms to exit on its own
 * once its sockets closed, then SIGKILL), reaped and freed. */
void pv_host__drop(struct pv_host *h, int grace_ms);
/*
 * h's process pid died (how: "killed by signal 9 (Killed)"): starts
 * one new paravisor for those of its devices that may restart, which take
 * over their rings and re-submit what was in flight; the others fail with
 * the reason.  Under pv__lock, on the event loop, h reaped.
 */
void pv_host__restart(struct pv_host *h, pid_t pid, const char *how);
/*
 * Moves every device of vm that a paravisor serves onto a new process of
 * the binary running now, as servicing does (a restarted netstack's new
 * socket reaches the NIC's model so).  Under pv__lock, on the event loop.
 * 0, or negative errno with why (the devices serve on from the old one).
 */
int pv_service__respawn(struct vm *vm, char *why, size_t whylen);

/* --- a NIC's netstack (dev_vhost_user.c), for paravisor_netstack.c --- */
/* Starts d's netstack (path NULL: the VM's paravisor binary); drain_fd
 * (-1: none) links it to the netstack it replaces.  0, or negative errno
 * after a line. */
int pv_dev__start_netstack(struct pv_dev *d, const char *path, int drain_fd);
/* Unwatches, stops and reaps d's netstack, its control socket closed. */
void pv_dev__stop_netstack(struct pv_dev *d);
void pv_dev__close_netstack_ctl(struct pv_dev *d);
/* The event loop's handler for the death of d's current netstack. */
void pv_dev__netstack_exited(int fd, uint32_t events, void *opaque);
/*
 * One request to the netstack's control socket (net/socket.h), answered
 * within PV_NETSTACK_CTL_MS (it is asked while the guest is stopped for a
 * snapshot or a migration's last round); pass_fd (-1: none) goes with it.
 * 0 and, for SAVE, its state in *out (malloc'd); negative errno with why.
 */
int pv_dev__netstack_ask(struct pv_dev *d, uint32_t op, const uint8_t *in, size_t inlen,
			 int pass_fd, uint8_t **out, size_t *outlen, char *why, size_t wlen);

/* --- servicing a NIC's netstack (paravisor_netstack.c) --- */
/* What pv_netstack__replace set aside: the old netstack, until the NIC's
 * paravisor has moved (commit) or not (undo). */
struct pv_netstack_swap {
	bool done; /* replaced: commit or undo it */
	struct paravisor_proc old;
	int old_ctl, old_extra_fd;
	bool old_watched;
	pid_t new_pid;
};
/*
 * Starts a new netstack for d from path (NULL: the running binary) with
 * libslirp's state of the running one, which stops listening on the
 * hostfwd ports and is linked to the new one to drain its connections
 * into it.  d's extra_fd is then the new one's socket, for the paravisor
 * servicing starts next.  0, or negative errno with why (nothing changed).
 */
int pv_netstack__replace(struct pv_dev *d, const char *path, struct pv_netstack_swap *sw, char *why,
			 size_t whylen);
/* The NIC's paravisor moved: the old netstack drains (it exits once its
 * last connection closed; paravisor-status lists it until then). */
void pv_netstack__commit(struct pv_dev *d, struct pv_netstack_swap *sw);
/* It did not: the new netstack is stopped, the old one listens again. */
void pv_netstack__undo(struct pv_dev *d, struct pv_netstack_swap *sw);
/* At the device's release: stops every draining netstack. */
void pv_netstack__release(struct pv_dev *d);
/* The pids of d's draining netstacks, at most max; their count. */
unsigned int pv_netstack__draining(const struct pv_dev *d, int pids[], unsigned int max);

#endif
