/*
 * vmm/paravisor_service.c — live servicing: the control command
 * {"cmd":"service","paravisor":PATH,"timeout_ms":N} replaces the paravisor
 * process of every paravisor-backed disk and NIC with a new one (PATH, or the
 * binary each runs now) while the guest runs.
 *
 * Per disk, the new process is started and negotiated with (features,
 * protocol features, config) before the old one is touched, so a binary
 * that does not start costs the guest nothing.  The new one also gets the
 * memory table, the ring addresses and the same kick and call eventfds with
 * its rings disabled while the old one serves; then the old one's rings
 * stop (it finishes the requests it took), the old paravisor's device state
 * (paravisor/state.proto: counters, the image's identity, ring indexes)
 * goes to the new one over DEVICE_STATE, and the new one gets the indexes
 * and enables (virtio/vhost_user_front.c: replace); only then is the old
 * connection closed and the old process reaped.  A new paravisor that
 * refuses the state (a state for newer readers, another image) fails the
 * servicing, which rolls back.  The config comes from the back-end and is
 * checked to be the same.
 *
 * The command runs on the VM's event loop thread and blocks it for the
 * servicing: the vCPUs run on (only the disk's I/O waits, between the two
 * rings), and the loop is also what watches the paravisors' pidfds, so no
 * death notice can interleave with the switch of a disk's process.
 *
 * A failure stops at that disk: it stays on (or goes back to) its running
 * paravisor.  Disks serviced before it keep their new one and are named in
 * the error.
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
#include <unistd.h>

#define SERVICE_TIMEOUT_MS 10000

struct service_result {
	char path[4096]; /* the binary the disk runs now */
	uint64_t blackout_us, stop_us;
	pid_t old_pid, new_pid;
	bool rolled_back; /* on failure: the old paravisor serves the disk */
	/* Where the time went, ms: the new process started and negotiated
	 * with, the rings moved (the blackout is inside), the old one reaped. */
	int64_t start_ms, switch_ms, reap_ms;
};

static int64_t service__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The new paravisor did not negotiate: did its process end, and how? */
static void service__explain(struct paravisor_proc *np, const char *why, char *out, size_t len)
{
	char how[128];
	pid_t pid = np->pid;

	if (paravisor_proc__wait(np, 200, how, sizeof(how)))
		why__set(out, len, 0, "the new paravisor %s (pid %d) did not start: it %s",
			 np->path, (int)pid, how);
	else
		why__set(out, len, 0, "the new paravisor %s (pid %d) did not start: %s", np->path,
			 (int)pid, why);
}

static int service__disk(struct pv_dev *d, const char *path, unsigned int timeout_ms,
			 struct service_result *res, char *why, size_t whylen)
{
	struct vhost_user_front_cfg fc = d->fc;
	struct vhost_user_front_swap swap;
	struct paravisor_proc np, old;
	struct virtio_device *next;
	char nwhy[512];
	int sock, err;
	int64_t t = service__now_ms();

	res->old_pid = d->proc.pid;
	res->rolled_back = true; /* until the old one is touched, it simply runs on */
	err = pv_dev__spawn(d, &np, path ? path : d->proc.path, &sock, nwhy, sizeof(nwhy));
	if (err)
		return why__set(why, whylen, err, "cannot start the new paravisor: %s", nwhy);
	res->new_pid = np.pid;
	/* The new connection answers within the servicing's deadline; no
	 * hooks: a failure of it must not touch the device. */
	fc.timeout_ms = timeout_ms;
	fc.refuse = NULL;
	fc.release = NULL;
	fc.opaque = NULL;
	next = vhost_user_front__create(sock, &fc, nwhy, sizeof(nwhy));
	if (!next) {
		service__explain(&np, nwhy, why, whylen);
		paravisor_proc__stop(&np, 0);
		return -EIO;
	}
	res->start_ms = service__now_ms() - t;
	t += res->start_ms;
	err = vhost_user_front__replace(d->vdev, next, &swap, nwhy, sizeof(nwhy));
	res->switch_ms = service__now_ms() - t;
	t += res->switch_ms;
	if (err) {
		res->rolled_back = swap.old_running;
		why__set(why, whylen, err, "the new paravisor %s (pid %d) did not take over: %s",
			 np.path, (int)np.pid, nwhy);
		paravisor_proc__stop(&np, 0);
		return err;
	}
	/* The old connection is closed: the old process exits on its own. */
	old = d->proc;
	pv_dev__unwatch(d);
	d->proc = np;
	pv_dev__watch(d);
	paravisor_proc__stop(&old, PV_EXIT_GRACE_MS);
	res->reap_ms = service__now_ms() - t;
	res->blackout_us = swap.blackout_us;
	res->stop_us = swap.stop_us;
	snprintf(res->path, sizeof(res->path), "%s", np.path);
	return 0;
}

static json_t *service__control(struct vm *vm, json_t *req)
{
	const char *path = NULL;
	json_int_t timeout_ms = SERVICE_TIMEOUT_MS;
	struct service_result res;
	char why[1024], done[256] = "";
	json_t *devices;
	struct pv_dev *d;
	int64_t t0 = service__now_ms();

	if (json_unpack(req, "{s?s, s?I}", "paravisor", &path, "timeout_ms", &timeout_ms) ||
	    (path && !*path) || timeout_ms <= 0 || timeout_ms > 600000)
		return control__fail("service: optional \"paravisor\" (a path) and "
				     "\"timeout_ms\" (1..600000)");
	if (!pv_dev__next(vm, NULL))
		return json_pack("{s:b, s:s, s:b}", "ok", 0, "error",
				 "no device of this VM is served by a paravisor", "rolled_back", 0);
	devices = json_array();
	for (d = pv_dev__next(vm, NULL); d; d = pv_dev__next(vm, d)) {
		int err;

		memset(&res, 0, sizeof(res));
		pthread_mutex_lock(&d->lock);
		err = d->vdev
			  ? service__disk(d, path, (unsigned int)timeout_ms, &res, why, sizeof(why))
			  : 0;
		pthread_mutex_unlock(&d->lock);
		if (err) {
			char msg[1536];

			json_decref(devices);
			if (res.rolled_back)
				snprintf(msg, sizeof(msg),
					 "%s %s: %s; rolled back to the running paravisor (pid "
					 "%d)%s%s",
					 d->noun, d->id, why, (int)res.old_pid, done, *done ? ")" : "");
			else
				snprintf(msg, sizeof(msg),
					 "%s %s: %s; the running paravisor (pid %d) failed too: "
					 "the %s's I/O fails%s%s",
					 d->noun, d->id, why, (int)res.old_pid, d->noun, done, *done ? ")" : "");
			pr_err("service: %s", msg);
			return json_pack("{s:b, s:s, s:b}", "ok", 0, "error", msg, "rolled_back",
					 res.rolled_back);
		}
		pr_info(
		    "%s \"%s\": serviced: paravisor %s, pid %d -> %d, blackout %llu.%03llu ms "
		    "(old rings stopped in %llu us; new one started in %lld ms, rings moved in "
		    "%lld ms, old one reaped in %lld ms)",
		    d->noun, d->id, res.path, (int)res.old_pid, (int)res.new_pid,
		    (unsigned long long)(res.blackout_us / 1000),
		    (unsigned long long)(res.blackout_us % 1000), (unsigned long long)res.stop_us,
		    (long long)res.start_ms, (long long)res.switch_ms, (long long)res.reap_ms);
		json_array_append_new(
		    devices,
		    json_pack("{s:s, s:I, s:I, s:I, s:i, s:i, s:I, s:I, s:I}", "id", d->id,
			      "blackout_ms", (json_int_t)(res.blackout_us / 1000), "blackout_us",
			      (json_int_t)res.blackout_us, "stop_us", (json_int_t)res.stop_us,
			      "old_pid", (int)res.old_pid, "new_pid", (int)res.new_pid, "start_ms",
			      (json_int_t)res.start_ms, "switch_ms", (json_int_t)res.switch_ms,
			      "reap_ms", (json_int_t)res.reap_ms));
		snprintf(done + strlen(done), sizeof(done) - strlen(done), "%s%s",
			 *done ? ", " : " (already on the new paravisor: ", d->id);
	}
	return json_pack("{s:b, s:s, s:I, s:o}", "ok", 1, "paravisor", path ? path : res.path,
			 "duration_ms", (json_int_t)(service__now_ms() - t0), "devices", devices);
}
control_command("service", service__control);
