/* daemon/pv_status.c — what VmStatus.paravisor_devices (and paravisor_pid)
 * say: the supervisor asks each running or paused VM's vmm for
 * {"cmd":"paravisor-status"} about once a second and keeps the answer, so
 * that GetVm and ListVms answer from the registry without waiting on any
 * vmm.  A restart or a servicing shows within a second; a vmm that does not
 * answer keeps its last report. */
#include "daemon/daemon.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define PV_STATUS_MAX_VMS    64
#define PV_STATUS_TIMEOUT_MS 500
#define PV_STATUS_REPLY	     (32 * 1024)

static void pv_status__str(char *dst, size_t len, json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	snprintf(dst, len, "%s", v ? v : "");
}

static int pv_status__int(json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v > 0 && v < INT32_MAX ? (int)v : 0; /* -1: none */
}

/* The netstacks draining after a netstack servicing, as many as kept. */
static void pv_status__draining(struct vm_pv_dev *p, json_t *arr)
{
	json_t *v;
	size_t i;

	json_array_foreach(arr, i, v)
	{
		if (p->nr_draining ==
		    sizeof(p->netstack_draining) / sizeof(p->netstack_draining[0]))
			break;
		if (json_is_integer(v))
			p->netstack_draining[p->nr_draining++] = (int)json_integer_value(v);
	}
}

/* The devices of one answer (disks, then NICs) into pv; how many. */
static unsigned int pv_status__parse(json_t *rep, struct vm_pv_dev *pv)
{
	static const char *const kinds[] = {"disks", "nics"};
	unsigned int n = 0;

	for (size_t k = 0; k < 2; k++) {
		json_t *arr = json_object_get(rep, kinds[k]), *o;
		size_t i;

		json_array_foreach(arr, i, o)
		{
			struct vm_pv_dev *p = &pv[n];

			if (n == VM_PV_DEVS)
				break;
			memset(p, 0, sizeof(*p));
			pv_status__str(p->id, sizeof(p->id), o, "id");
			snprintf(p->kind, sizeof(p->kind), "%s", k ? "nic" : "disk");
			p->pid = pv_status__int(o, "pid");
			p->restart = json_is_true(json_object_get(o, "restart"));
			p->restarts = (unsigned int)pv_status__int(o, "restarts");
			pv_status__str(p->last_death, sizeof(p->last_death), o, "last_death");
			pv_status__str(p->failed, sizeof(p->failed), o, "failed");
			p->netstack_pid = pv_status__int(o, "netstack_pid");
			p->netstack_restarts = (unsigned int)pv_status__int(o, "netstack_restarts");
			pv_status__str(p->netstack_last_death, sizeof(p->netstack_last_death), o,
				       "netstack_last_death");
			pv_status__str(p->netstack_died, sizeof(p->netstack_died), o,
				       "netstack_died");
			pv_status__draining(p, json_object_get(o, "netstack_draining"));
			n++;
		}
	}
	return n;
}

void pv_status__poll(struct daemon *d)
{
	static char reply[PV_STATUS_REPLY];
	static struct vm_pv_dev pv[VM_PV_DEVS];
	struct {
		char id[DAEMON_ID_LEN];
		pid_t pid;
	} ask[PV_STATUS_MAX_VMS];
	unsigned int nr = 0;

	pthread_mutex_lock(&d->lock);
	for (struct vm *vm = d->vms; vm && nr < PV_STATUS_MAX_VMS; vm = vm->next) {
		if (vm->pid <= 0 || !paravisor_service__has_device(vm) ||
		    (vm->state != VMMD__V1__VM_STATE__VM_STATE_RUNNING &&
		     vm->state != VMMD__V1__VM_STATE__VM_STATE_PAUSED))
			continue;
		snprintf(ask[nr].id, sizeof(ask[nr].id), "%s", vm->id);
		ask[nr++].pid = vm->pid;
	}
	pthread_mutex_unlock(&d->lock);

	for (unsigned int i = 0; i < nr; i++) {
		json_t *rep = NULL;
		unsigned int n = 0;
		struct vm *vm;

		if (!worker__control(d, ask[i].id, "{\"cmd\":\"paravisor-status\"}", reply,
				     sizeof(reply), PV_STATUS_TIMEOUT_MS))
			rep = json_loads(reply, 0, NULL);
		if (!rep || !json_is_true(json_object_get(rep, "ok"))) {
			json_decref(rep);
			continue;
		}
		n = pv_status__parse(rep, pv);
		json_decref(rep);
		pthread_mutex_lock(&d->lock);
		vm = registry__find(d, ask[i].id);
		/* The same vmm still: a report from one that since exited is
		 * not the VM's now. */
		if (vm && vm->pid == ask[i].pid) {
			memcpy(vm->pv, pv, n * sizeof(pv[0]));
			vm->nr_pv = n;
		}
		pthread_mutex_unlock(&d->lock);
	}
}
