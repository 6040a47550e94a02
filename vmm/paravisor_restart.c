/*
 * vmm/paravisor_restart.c — a paravisor that died is replaced by a new one
 * from its devices' last good state, so the guest sees a pause, not an
 * error.  The VM's one paravisor serves all its devices, so its death is
 * every device's: one new process takes over all that may restart.
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
 * runs, so the two never race for a device.  A device with restart=off, or
 * whose paravisor died PV_RESTART_BURST times within PV_RESTART_WINDOW_MS,
 * fails with the reason (its requests get errors) and the VM runs on.
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

/* d cannot go on: it fails for good with why. */
static void restart__fail(struct pv_dev *d, pid_t pid, const char *died, const char *rwhy)
{
	snprintf(d->failed, sizeof(d->failed),
		 "its paravisor (pid %d) died: %s; not restarted: %s; the %s's I/O fails from "
		 "now on (the rest of the VM runs on)",
		 (int)pid, died, rwhy, d->noun);
	pr_err("%s \"%s\": %s", d->noun, d->id, d->failed);
	vhost_user_front__gone(d->vdev, d->failed);
}

void pv_host__restart(struct pv_host *h, pid_t pid, const char *died)
{
	struct pv_dev *devs[PV_MAX_DEVS], *d;
	struct pv_host *nh = NULL;
	int socks[PV_MAX_DEVS];
	unsigned int nr = 0, i;
	int64_t t0 = pv__now_ms();
	char nwhy[512], how_np[128], too_many[96], how[160];
	char path[sizeof(h->proc.path)];

	snprintf(how, sizeof(how), "(pid %d) %s", (int)pid, died);
	snprintf(too_many, sizeof(too_many),
		 "it died %d times within %d s; not restarting it again", PV_RESTART_BURST + 1,
		 PV_RESTART_WINDOW_MS / 1000);
	for (d = pv_dev__next(h->vm, NULL); d; d = pv_dev__next(h->vm, d)) {
		if (d->host != h)
			continue;
		snprintf(d->last_death, sizeof(d->last_death), "%s", how);
		d->host = NULL;
		h->users--;
		if (!d->restart)
			restart__fail(d, pid, died, "restart=off");
		else if (pv__too_many(d->restarts, d->restart_ms, t0))
			restart__fail(d, pid, died, too_many);
		else
			devs[nr++] = d;
	}
	/* The same binary: the one the last servicing installed. */
	memcpy(path, h->proc.path, sizeof(path));
	pv_host__drop(h, 0); /* reaped already: closes its pidfd, frees it */
	if (!nr)
		return;
	nh = pv_host__spawn(devs[0]->vm, devs, nr, path, socks, nwhy, sizeof(nwhy));
	if (!nh) {
		for (i = 0; i < nr; i++)
			restart__fail(devs[i], pid, died, nwhy);
		return;
	}
	for (i = 0; i < nr; i++) {
		struct vhost_user_front_cfg fc = devs[i]->fc;
		struct virtio_device *next;
		char why[640];
		int err;

		fc.refuse = NULL;
		fc.release = NULL;
		fc.opaque = NULL;
		d = devs[i];
		next = vhost_user_front__create(socks[i], &fc, nwhy, sizeof(nwhy));
		if (!next) {
			if (paravisor_proc__wait(&nh->proc, 200, how_np, sizeof(how_np)))
				snprintf(nwhy, sizeof(nwhy), "it %s", how_np);
			snprintf(why, sizeof(why), "the new paravisor (pid %d) did not start: %s",
				 (int)nh->proc.pid, nwhy);
			restart__fail(d, pid, died, why);
			continue;
		}
		err = vhost_user_front__reconnect(d->vdev, next, nwhy, sizeof(nwhy));
		if (err) {
			snprintf(why, sizeof(why),
				 "the new paravisor (pid %d) did not take over: %s",
				 (int)nh->proc.pid, nwhy);
			restart__fail(d, pid, died, why);
			continue;
		}
		d->host = nh;
		nh->users++;
		d->restart_ms[d->restarts % PV_RESTART_BURST] = t0;
		d->restarts++;
		pr_warn(
		    "%s \"%s\": its paravisor %s; restarted it (pid %d, restart %u) in %lld ms, "
		    "the guest's I/O goes on",
		    d->noun, d->id, how, (int)nh->proc.pid, d->restarts,
		    (long long)(pv__now_ms() - t0));
	}
	if (nh->users)
		pv_host__watch(nh);
	else
		pv_host__drop(nh, 0);
}

static json_t *restart__status(struct vm *vm, json_t *req)
{
	json_t *disks = json_array(), *nics = json_array();

	(void)req;
	pv__lock();
	for (struct pv_dev *d = pv_dev__next(vm, NULL); d; d = pv_dev__next(vm, d)) {
		json_t *o;

		o = json_pack("{s:s, s:i, s:b, s:I, s:s, s:s}", "id", d->id, "pid",
			      d->host ? (int)d->host->proc.pid : -1, "restart", d->restart,
			      "restarts", (json_int_t)d->restarts, "last_death", d->last_death,
			      "failed", d->failed);
		if (d->has_netstack || *d->netstack_died) {
			int pids[16];
			unsigned int n = pv_netstack__draining(d, pids, 16);
			json_t *drain = json_array();

			for (unsigned int k = 0; k < n; k++)
				json_array_append_new(drain, json_integer(pids[k]));
			json_object_update_new(
			    o, json_pack("{s:i, s:s, s:I, s:s, s:o}", "netstack_pid",
					 d->has_netstack ? (int)d->netstack.pid : -1,
					 "netstack_died", d->netstack_died, "netstack_restarts",
					 (json_int_t)d->netstack_restarts, "netstack_last_death",
					 d->netstack_last_death, "netstack_draining", drain));
		}
		json_array_append_new(strcmp(d->noun, "NIC") ? disks : nics, o);
	}
	pv__unlock();
	return json_pack("{s:b, s:o, s:o}", "ok", 1, "disks", disks, "nics", nics);
}
control_command("paravisor-status", restart__status);
