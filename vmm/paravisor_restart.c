/*
 * vmm/paravisor_restart.c — a paravisor that died is replaced by a new one
 * from the disk's last good state, so the guest sees a pause, not an error.
 *
 * That state is what survives the process: the rings in guest RAM (the used
 * index says what it finished) and the inflight region the first paravisor
 * made and vmm kept (which requests it took and had not finished).  The new
 * process is the same binary (the one servicing last installed), started and
 * negotiated with like the first; virtio/vhost_user_front.c (reconnect) gives
 * it the memory table, the region and the rings, and it re-submits the
 * unfinished requests before taking new ones.  Requests the guest queued
 * meanwhile wait in the avail ring: nothing answers them with an error.
 *
 * Runs on the event loop (the pidfd woke it), which is also where servicing
 * runs, so the two never race for a disk.  restart=off, or a paravisor that
 * died PV_RESTART_BURST times within PV_RESTART_WINDOW_MS, keeps today's
 * behaviour: the disk fails with the reason and the VM runs on.
 *
 * {"cmd":"paravisor-status"} on the control socket reports per disk (and
 * per NIC, with its netstack) the paravisor's pid, the restarts, how the
 * last one died and whether the device failed.
 */
#include "common/log.h"
#include "common/why.h"
#include "vmm/control.h"
#include "vmm/dev_vhost_user.h"
#include "vmm/vm.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t restart__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Would one more restart be the (BURST+1)th within the window? */
static bool restart__too_many(const struct pv_dev *d, int64_t now)
{
	int64_t oldest;

	if (d->restarts < PV_RESTART_BURST)
		return false;
	oldest = d->restart_ms[d->restarts % PV_RESTART_BURST];
	return now - oldest < PV_RESTART_WINDOW_MS;
}

int pv_dev__restart(struct pv_dev *d, const char *how, char *why, size_t whylen)
{
	struct vhost_user_front_cfg fc = d->fc;
	struct paravisor_proc np;
	struct virtio_device *next;
	int64_t t0 = restart__now_ms();
	char nwhy[512], how_np[128];
	int sock, err;

	snprintf(d->last_death, sizeof(d->last_death), "%s", how);
	if (!d->restart)
		return why__set(why, whylen, -EPERM, "restart=off");
	if (restart__too_many(d, t0))
		return why__set(why, whylen, -EBUSY,
				"it died %d times within %d s; not restarting it again",
				PV_RESTART_BURST + 1, PV_RESTART_WINDOW_MS / 1000);
	err = pv_dev__spawn(d, &np, d->proc.path, &sock, nwhy, sizeof(nwhy));
	if (err)
		return why__set(why, whylen, err, "cannot start a new paravisor: %s", nwhy);
	fc.refuse = NULL;
	fc.release = NULL;
	fc.opaque = NULL;
	next = vhost_user_front__create(sock, &fc, nwhy, sizeof(nwhy));
	if (!next) {
		if (paravisor_proc__wait(&np, 200, how_np, sizeof(how_np)))
			snprintf(nwhy, sizeof(nwhy), "it %s", how_np);
		err = why__set(why, whylen, -EIO, "the new paravisor (pid %d) did not start: %s",
			       (int)np.pid, nwhy);
		paravisor_proc__stop(&np, 0);
		return err;
	}
	err = vhost_user_front__reconnect(d->vdev, next, nwhy, sizeof(nwhy));
	if (err) {
		why__set(why, whylen, err, "the new paravisor (pid %d) did not take over: %s",
			 (int)np.pid, nwhy);
		paravisor_proc__stop(&np, 0);
		return err;
	}
	paravisor_proc__stop(&d->proc, 0); /* reaped already: closes its pidfd */
	d->proc = np;
	pv_dev__watch(d);
	d->restart_ms[d->restarts % PV_RESTART_BURST] = t0;
	d->restarts++;
	pr_warn("%s \"%s\": its paravisor %s; restarted it (pid %d, restart %u) in %lld ms, "
		"the guest's I/O goes on",
		d->noun, d->id, how, (int)np.pid, d->restarts, (long long)(restart__now_ms() - t0));
	return 0;
}

static json_t *restart__status(struct vm *vm, json_t *req)
{
	json_t *disks = json_array(), *nics = json_array();

	(void)req;
	for (struct pv_dev *d = pv_dev__next(vm, NULL); d; d = pv_dev__next(vm, d)) {
		json_t *o;

		pthread_mutex_lock(&d->lock);
		o = json_pack("{s:s, s:i, s:b, s:I, s:s, s:s}", "id", d->id, "pid",
			      (int)d->proc.pid, "restart", d->restart, "restarts",
			      (json_int_t)d->restarts, "last_death", d->last_death, "failed",
			      d->failed);
		if (d->has_netstack || *d->netstack_died)
			json_object_update_new(
			    o, json_pack("{s:i, s:s}", "netstack_pid",
					 d->has_netstack ? (int)d->netstack.pid : -1,
					 "netstack_died", d->netstack_died));
		json_array_append_new(strcmp(d->noun, "NIC") ? disks : nics, o);
		pthread_mutex_unlock(&d->lock);
	}
	return json_pack("{s:b, s:o, s:o}", "ok", 1, "disks", disks, "nics", nics);
}
control_command("paravisor-status", restart__status);
