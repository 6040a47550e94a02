/* daemon/paravisor_service.c — ServiceVm: vmm's "service" control command
 * replaces the VM's paravisor processes while the guest runs, and this
 * turns its answer into the operation's result.  A ServiceFleet starts one
 * such operation per VM; max_parallel gates how many talk to their vmm at
 * once, so a fleet does not hold every VM's I/O at the same moment. */
#include "daemon/daemon.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* vmm answers once every device moved or went back; starting a paravisor
 * and moving rings takes well under a second, the rest is slack. */
#define SERVICE_TIMEOUT_MS 60000

bool paravisor_service__has_device(const struct vm *vm)
{
	for (size_t i = 0; i < vm->spec->n_disks; i++)
		if (vm->spec->disks[i]->backend == VMMD__V1__DISK_BACKEND__DISK_BACKEND_PARAVISOR)
			return true;
	for (size_t i = 0; i < vm->spec->n_nics; i++)
		if (vm->spec->nics[i]->paravisor)
			return true;
	return false;
}

/* The devices of a reply into the result. */
static void service__take(struct op_service *s, json_t *rep)
{
	json_t *devs = json_object_get(rep, "devices"), *dv;
	size_t i;

	s->has_result = true;
	s->duration_ms = (uint32_t)json_integer_value(json_object_get(rep, "duration_ms"));
	s->rolled_back = json_is_true(json_object_get(rep, "rolled_back"));
	if (json_is_string(json_object_get(rep, "paravisor")))
		snprintf(s->paravisor, sizeof(s->paravisor), "%s",
			 json_string_value(json_object_get(rep, "paravisor")));
	s->nr_devices = 0;
	json_array_foreach(devs, i, dv)
	{
		if (i >= SERVICE_DEVICES_KEPT)
			break;
		snprintf(s->dev[i].id, sizeof(s->dev[i].id), "%s",
			 json_string_value(json_object_get(dv, "id")) ?: "");
		s->dev[i].blackout_ms =
		    (uint32_t)json_integer_value(json_object_get(dv, "blackout_ms"));
		s->dev[i].old_pid = (int32_t)json_integer_value(json_object_get(dv, "old_pid"));
		s->dev[i].new_pid = (int32_t)json_integer_value(json_object_get(dv, "new_pid"));
		s->dev[i].netstack_old_pid =
		    (int32_t)json_integer_value(json_object_get(dv, "netstack_old_pid"));
		s->dev[i].netstack_new_pid =
		    (int32_t)json_integer_value(json_object_get(dv, "netstack_new_pid"));
		s->nr_devices++;
	}
}

static uint32_t service__max_blackout(const struct op_service *s)
{
	uint32_t m = 0;

	for (uint32_t i = 0; i < s->nr_devices; i++)
		if (s->dev[i].blackout_ms > m)
			m = s->dev[i].blackout_ms;
	return m;
}

/* Called with d->lock held; returns with it held. */
void paravisor_service__run(struct daemon *d, struct op *op, struct vm *vm)
{
	struct op_service *s = op->svc;
	char id[DAEMON_ID_LEN], name[256], reply[4096], *cmd = NULL;
	json_t *req, *rep = NULL;
	const char *why = NULL;
	int r;

	if (!s) {
		ops__fail(d, op, API_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	snprintf(id, sizeof(id), "%s", vm->id);
	snprintf(name, sizeof(name), "%s", vm->spec->name);
	if (s->max_parallel && d->services_running >= s->max_parallel)
		ops__update(d, op, op->state, 0, "waiting: %u VMs are being serviced",
			    s->max_parallel);
	while (s->max_parallel && d->services_running >= s->max_parallel)
		pthread_cond_wait(&d->changed, &d->lock);
	vm = registry__find(d, id);
	if (!vm || (vm->state != VMMD__V1__VM_STATE__VM_STATE_RUNNING &&
		    vm->state != VMMD__V1__VM_STATE__VM_STATE_PAUSED)) {
		ops__fail(d, op, API_FAILED_PRECONDITION, "vm \"%s\" %s while it waited", name,
			  vm ? "stopped running" : "went away");
		return;
	}
	d->services_running++;
	req = json_pack("{s:s, s:b}", "cmd", "service", "netstack", s->netstack);
	if (req && *s->paravisor)
		json_object_set_new(req, "paravisor", json_string(s->paravisor));
	cmd = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	ops__update(d, op, op->state, 20, "vmm moves the devices to %s",
		    *s->paravisor ? s->paravisor : "a new paravisor");
	pthread_mutex_unlock(&d->lock);
	r = cmd ? worker__control(d, id, cmd, reply, sizeof(reply), SERVICE_TIMEOUT_MS) : -ENOMEM;
	if (!r && !(rep = json_loads(reply, JSON_DISABLE_EOF_CHECK, NULL)))
		r = -EPROTO;
	if (!r && !json_is_true(json_object_get(rep, "ok")))
		why = json_string_value(json_object_get(rep, "error")) ?: "no reason given";
	pthread_mutex_lock(&d->lock);
	d->services_running--;
	pthread_cond_broadcast(&d->changed);
	if (r) {
		ops__fail(d, op, r == -EAGAIN ? API_DEADLINE_EXCEEDED : API_UNAVAILABLE,
			  "vm \"%s\": no answer from vmm to the service command%s: %s", name,
			  r == -EAGAIN ? " in time" : "", strerror(-r));
		metrics__service(d->metrics, "failed", NULL);
	} else if (why) {
		service__take(s, rep);
		snprintf(op->error.field, sizeof(op->error.field), "paravisor");
		ops__fail(d, op, API_FAILED_PRECONDITION, "vm \"%s\": %s", name, why);
		metrics__service(d->metrics, s->rolled_back ? "rolled_back" : "failed", NULL);
	} else {
		service__take(s, rep);
		ops__update(d, op, VMMD__V1__OPERATION_STATE__OPERATION_STATE_SUCCEEDED, 100,
			    "%u device%s on %s in %u ms, blackout at most %u ms", s->nr_devices,
			    s->nr_devices == 1 ? "" : "s", s->paravisor, s->duration_ms,
			    service__max_blackout(s));
		metrics__service(d->metrics, "succeeded", s);
	}
	json_decref(rep);
	free(cmd);
}
