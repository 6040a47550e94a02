/*
 * vmm/paravisor_service.c — live servicing: the control command
 * {"cmd":"service","paravisor":PATH,"timeout_ms":N} replaces the VM's
 * paravisor process (all of its disks and NICs) with a new one (PATH, or the
 * binary it runs now) while the guest runs.
 *
 * The new process is started with every device and negotiated with
 * (features, protocol features, config) before the old one is touched, so a
 * binary that does not start costs the guest nothing.  Then device by
 * device: the new one gets the memory table, the ring addresses and the same
 * kick and call eventfds with its rings disabled while the old one serves;
 * the old one's rings stop (it finishes the requests it took), its device
 * state (paravisor/state.proto: counters, the image's identity, ring
 * indexes) goes to the new one over DEVICE_STATE, and the new one gets the
 * indexes and enables (virtio/vhost_user_front.c: replace).  The old
 * connections stay open until every device has moved: then they close and
 * the old process, left with none, exits and is reaped.
 *
 * A device that fails to move (its new paravisor refuses the state, does
 * not answer in time, ...) stays on the old process, and so do the ones
 * moved before it: they are moved back, rings and state, over the
 * connections kept open for that; the new process is stopped.  The
 * servicing fails with the reason and the VM runs on the old paravisor.
 *
 * With "netstack":true each slirp NIC's netstack is replaced too, before
 * the paravisor (so the new paravisor gets the new netstack's socket): the
 * old one drains its connections into the new one (paravisor_netstack.c);
 * if the paravisor's servicing fails, the old netstack serves on.
 *
 * The command runs on the VM's event loop thread and blocks it for the
 * servicing: the vCPUs run on (only each device's I/O waits, between the
 * two rings), and the loop is also what watches the paravisors' pidfds, so
 * no death notice can interleave with the switch.
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
#include <unistd.h>

#define SERVICE_TIMEOUT_MS 10000

struct service_result {
	uint64_t blackout_us, stop_us;
	int64_t switch_ms;	   /* the rings moved (the blackout is inside) */
	struct virtio_device *old; /* the old connection, kept until all moved */
};

/* The new paravisor did not negotiate: did its process end, and how? */
static void service__explain(struct paravisor_proc *np, const struct pv_dev *d, const char *why,
			     char *out, size_t len)
{
	char how[128];
	pid_t pid = np->pid;

	if (paravisor_proc__wait(np, 200, how, sizeof(how)))
		why__set(out, len, 0, "%s %s: the new paravisor %s (pid %d) did not start: it %s",
			 d->noun, d->id, np->path, (int)pid, how);
	else
		why__set(out, len, 0, "%s %s: the new paravisor %s (pid %d) did not start: %s",
			 d->noun, d->id, np->path, (int)pid, why);
}

/* Every device's model of the new process, negotiated; 0, or negative
 * errno with why (the new process is then stopped). */
static int service__connect(struct pv_dev *const devs[], unsigned int nr, struct pv_host *nh,
			    int socks[], unsigned int timeout_ms, struct virtio_device *next[],
			    char *why, size_t whylen)
{
	char nwhy[512];
	unsigned int i;

	for (i = 0; i < nr; i++) {
		/* The new connection answers within the servicing's deadline;
		 * no hooks: a failure of it must not touch the device. */
		struct vhost_user_front_cfg fc = devs[i]->fc;

		fc.timeout_ms = timeout_ms;
		fc.refuse = NULL;
		fc.release = NULL;
		fc.opaque = NULL;
		next[i] = vhost_user_front__create(socks[i], &fc, nwhy, sizeof(nwhy));
		if (!next[i])
			break;
	}
	if (i == nr)
		return 0;
	service__explain(&nh->proc, devs[i], nwhy, why, whylen);
	for (unsigned int k = i + 1; k < nr; k++)
		close(socks[k]);
	while (i--)
		next[i]->ops->destroy(next[i]);
	pv_host__drop(nh, 0);
	return -EIO;
}

/* Devices [0, done) moved to the new process: back onto the old one.  The
 * ones that cannot go back stay on the new process; their count. */
static unsigned int service__undo(struct pv_dev *const devs[], unsigned int done,
				  struct service_result res[], struct pv_host *nh, char *why,
				  size_t whylen)
{
	unsigned int stuck = 0;

	while (done--) {
		struct pv_dev *d = devs[done];
		struct vhost_user_front_swap swap;
		char bwhy[512];

		if (!vhost_user_front__replace(d->vdev, res[done].old, &swap, bwhy, sizeof(bwhy))) {
			pr_info("%s \"%s\": back on the running paravisor (blackout %llu us)",
				d->noun, d->id, (unsigned long long)swap.blackout_us);
			snprintf(why + strlen(why), whylen - strlen(why), "; %s %s moved back",
				 d->noun, d->id);
			continue;
		}
		pr_err("%s \"%s\": cannot go back to the running paravisor: %s", d->noun, d->id,
		       bwhy);
		d->host->users--;
		d->host = nh;
		nh->users++;
		snprintf(why + strlen(why), whylen - strlen(why),
			 "; %s %s could not go back and stays on the new paravisor (%s)", d->noun,
			 d->id, bwhy);
		stuck++;
	}
	return stuck;
}

static json_t *service__fail(const char *msg, bool rolled_back)
{
	pr_err("service: %s", msg);
	return json_pack("{s:b, s:s, s:b}", "ok", 0, "error", msg, "rolled_back", rolled_back);
}

static json_t *service__switch(struct vm *vm, const char *path, unsigned int timeout_ms,
			       struct pv_dev *const devs[], unsigned int nr)
{
	struct virtio_device *next[PV_MAX_DEVS];
	struct service_result res[PV_MAX_DEVS];
	struct pv_host *oh = devs[0]->host, *nh;
	int socks[PV_MAX_DEVS];
	int64_t t0 = pv__now_ms(), start_ms, reap_ms, t;
	pid_t old_pid = oh ? oh->proc.pid : -1;
	char why[8192], nwhy[512];
	json_t *devices;
	unsigned int i;

	for (i = 0; i < nr; i++)
		if (devs[i]->host != oh)
			return service__fail("the VM's devices are on more than one paravisor "
					     "(an earlier servicing could not move one back); "
					     "restart the VM",
					     true);
	if (!oh)
		return service__fail("the VM's paravisor is gone", false);
	nh = pv_host__spawn(vm, devs, nr, path ? path : oh->proc.path, socks, nwhy, sizeof(nwhy));
	if (!nh) {
		snprintf(why, sizeof(why),
			 "%s %s: cannot start the new paravisor: %s; rolled back to the running "
			 "paravisor (pid %d)",
			 devs[0]->noun, devs[0]->id, nwhy, (int)old_pid);
		return service__fail(why, true);
	}
	if (service__connect(devs, nr, nh, socks, timeout_ms, next, nwhy, sizeof(nwhy))) {
		snprintf(why, sizeof(why), "%s; rolled back to the running paravisor (pid %d)",
			 nwhy, (int)old_pid);
		return service__fail(why, true);
	}
	start_ms = pv__now_ms() - t0;
	memset(res, 0, sizeof(res));
	for (i = 0; i < nr; i++) {
		struct vhost_user_front_swap swap;
		int err;

		t = pv__now_ms();
		err = vhost_user_front__replace_keep(devs[i]->vdev, next[i], &res[i].old, &swap,
						     nwhy, sizeof(nwhy));

		res[i].switch_ms = pv__now_ms() - t;
		if (err) {
			bool back = swap.old_running;
			unsigned int stuck;

			snprintf(why, sizeof(why),
				 "%s %s: the new paravisor %s (pid %d) did not take over: %s",
				 devs[i]->noun, devs[i]->id, nh->proc.path, (int)nh->proc.pid,
				 nwhy);
			if (!back)
				snprintf(why + strlen(why), sizeof(why) - strlen(why),
					 "; the running paravisor (pid %d) failed too: the %s's "
					 "I/O fails",
					 (int)old_pid, devs[i]->noun);
			stuck = service__undo(devs, i, res, nh, why, sizeof(why));
			for (unsigned int k = i + 1; k < nr; k++)
				next[k]->ops->destroy(next[k]);
			if (stuck) {
				/* Those devices are the new process's now. */
				pv_host__watch(nh);
			} else {
				pv_host__drop(nh, PV_EXIT_GRACE_MS);
				if (back)
					snprintf(why + strlen(why), sizeof(why) - strlen(why),
						 "; rolled back to the running paravisor (pid %d)",
						 (int)old_pid);
			}
			return service__fail(why, back && !stuck);
		}
		res[i].blackout_us = swap.blackout_us;
		res[i].stop_us = swap.stop_us;
	}
	/* All moved: the old connections close, the old process exits. */
	for (i = 0; i < nr; i++) {
		res[i].old->ops->destroy(res[i].old);
		devs[i]->host = nh;
	}
	nh->users = nr;
	oh->users = oh->users > nr ? oh->users - nr : 0;
	pv_host__watch(nh);
	t = pv__now_ms();
	if (!oh->users)
		pv_host__drop(oh, PV_EXIT_GRACE_MS);
	reap_ms = pv__now_ms() - t;
	devices = json_array();
	for (i = 0; i < nr; i++) {
		struct pv_dev *d = devs[i];

		pr_info("%s \"%s\": serviced: paravisor %s, pid %d -> %d, blackout %llu.%03llu ms "
			"(old rings stopped in %llu us; new one started in %lld ms, rings moved "
			"in %lld ms, old one reaped in %lld ms)",
			d->noun, d->id, nh->proc.path, (int)old_pid, (int)nh->proc.pid,
			(unsigned long long)(res[i].blackout_us / 1000),
			(unsigned long long)(res[i].blackout_us % 1000),
			(unsigned long long)res[i].stop_us, (long long)start_ms,
			(long long)res[i].switch_ms, (long long)reap_ms);
		json_array_append_new(
		    devices,
		    json_pack("{s:s, s:I, s:I, s:I, s:i, s:i, s:I, s:I, s:I}", "id", d->id,
			      "blackout_ms", (json_int_t)(res[i].blackout_us / 1000), "blackout_us",
			      (json_int_t)res[i].blackout_us, "stop_us", (json_int_t)res[i].stop_us,
			      "old_pid", (int)old_pid, "new_pid", (int)nh->proc.pid, "start_ms",
			      (json_int_t)start_ms, "switch_ms", (json_int_t)res[i].switch_ms,
			      "reap_ms", (json_int_t)reap_ms));
	}
	return json_pack("{s:b, s:s, s:I, s:o}", "ok", 1, "paravisor", nh->proc.path, "duration_ms",
			 (json_int_t)(pv__now_ms() - t0), "devices", devices);
}

/* Adds each replaced netstack's pids to its NIC's entry of the result. */
static void service__report_netstacks(json_t *r, struct pv_dev *const devs[], unsigned int nr,
				      const struct pv_netstack_swap sw[])
{
	json_t *devices = json_object_get(r, "devices"), *o;
	size_t k;

	json_array_foreach(devices, k, o)
	{
		const char *id = json_string_value(json_object_get(o, "id"));

		for (unsigned int i = 0; id && i < nr; i++)
			if (sw[i].new_pid && !strcmp(devs[i]->id, id))
				json_object_update_new(
				    o,
				    json_pack("{s:i, s:i}", "netstack_old_pid", (int)sw[i].old.pid,
					      "netstack_new_pid", (int)sw[i].new_pid));
	}
}

static json_t *service__run(struct vm *vm, const char *path, unsigned int timeout_ms,
			    struct pv_dev *const devs[], unsigned int nr, bool netstack)
{
	struct pv_netstack_swap sw[PV_MAX_DEVS];
	pid_t old_pid = devs[0]->host ? devs[0]->host->proc.pid : -1;
	char why[1024];
	json_t *r;
	unsigned int i;
	bool ok;

	memset(sw, 0, sizeof(sw));
	for (i = 0; netstack && i < nr; i++) {
		if (!devs[i]->has_netstack)
			continue;
		if (pv_netstack__replace(devs[i], path, &sw[i], why, sizeof(why))) {
			while (i--)
				pv_netstack__undo(devs[i], &sw[i]);
			snprintf(why + strlen(why), sizeof(why) - strlen(why),
				 "; rolled back to the running paravisor (pid %d) and netstack(s)",
				 (int)old_pid);
			return service__fail(why, true);
		}
	}
	r = service__switch(vm, path, timeout_ms, devs, nr);
	ok = json_is_true(json_object_get(r, "ok"));
	/* A NIC on the new paravisor keeps the new netstack (it has its
	 * socket); one back on the old paravisor, the old netstack. */
	for (i = 0; i < nr; i++) {
		if (!sw[i].done)
			continue;
		if (ok || (devs[i]->host && devs[i]->host->proc.pid != old_pid)) {
			pr_info("%s \"%s\": netstack serviced: pid %d -> %d; the old one keeps its "
				"connections until they close",
				devs[i]->noun, devs[i]->id, (int)sw[i].old.pid, (int)sw[i].new_pid);
			pv_netstack__commit(devs[i], &sw[i]);
		} else {
			pv_netstack__undo(devs[i], &sw[i]);
			sw[i].new_pid = 0;
		}
	}
	if (ok)
		service__report_netstacks(r, devs, nr, sw);
	return r;
}

int pv_service__respawn(struct vm *vm, char *why, size_t whylen)
{
	struct pv_dev *devs[PV_MAX_DEVS];
	unsigned int nr = 0;
	const char *msg;
	json_t *r;
	int ok;

	for (struct pv_dev *d = pv_dev__next(vm, NULL); d && nr < PV_MAX_DEVS;
	     d = pv_dev__next(vm, d))
		if (d->host)
			devs[nr++] = d;
	if (!nr) {
		snprintf(why, whylen, "no device of this VM is served by a paravisor");
		return -ENODEV;
	}
	r = service__run(vm, NULL, SERVICE_TIMEOUT_MS, devs, nr, false);
	ok = json_is_true(json_object_get(r, "ok"));
	msg = json_string_value(json_object_get(r, "error"));
	if (!ok)
		snprintf(why, whylen, "%s", msg ? msg : "out of memory");
	json_decref(r);
	return ok ? 0 : -EIO;
}

static json_t *service__control(struct vm *vm, json_t *req)
{
	const char *path = NULL;
	json_int_t timeout_ms = SERVICE_TIMEOUT_MS;
	struct pv_dev *devs[PV_MAX_DEVS];
	unsigned int nr = 0;
	int netstack = 0;
	json_t *r;

	if (json_unpack(req, "{s?s, s?I, s?b}", "paravisor", &path, "timeout_ms", &timeout_ms,
			"netstack", &netstack) ||
	    (path && !*path) || timeout_ms <= 0 || timeout_ms > 600000)
		return control__fail("service: optional \"paravisor\" (a path), "
				     "\"timeout_ms\" (1..600000) and \"netstack\" (true: "
				     "replace slirp NICs' netstacks too)");
	pv__lock();
	/* A device that failed for good has no paravisor left to replace. */
	for (struct pv_dev *d = pv_dev__next(vm, NULL); d && nr < PV_MAX_DEVS;
	     d = pv_dev__next(vm, d))
		if (d->host)
			devs[nr++] = d;
	if (!nr)
		r = json_pack("{s:b, s:s, s:b}", "ok", 0, "error",
			      "no device of this VM is served by a paravisor", "rolled_back", 0);
	else
		r = service__run(vm, path, (unsigned int)timeout_ms, devs, nr, netstack);
	pv__unlock();
	return r;
}
control_command("service", service__control);
