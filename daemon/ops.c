/* daemon/ops.c — operations: one at a time per VM, each run by its own
 * thread, persisted at every change so a vmmd crash never loses one. */
#include "daemon/daemon.h"
#include "daemon/migrate.h"
#include "common/log.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OPS_KEEP 256

static const char *op_kind__name(Vmmd__V1__OperationKind k)
{
	static const char *const n[] = { "unspecified", "create", "start",  "stop",     "reboot",
					 "pause",	"resume", "delete", "snapshot", "restore",
					 "migrate" };

	return (unsigned)k < sizeof(n) / sizeof(n[0]) ? n[k] : "unknown";
}

struct op *ops__find(struct daemon *d, const char *id)
{
	for (struct op *op = d->ops; op; op = op->next)
		if (!strcmp(op->id, id))
			return op;
	return NULL;
}

void op__free(struct op *op)
{
	if (op) {
		free(op->mig);
		free(op->svc);
	}
	free(op);
}

static bool op__done(const struct op *op)
{
	return op->state >= VMMD__V1__OPERATION_STATE__OPERATION_STATE_SUCCEEDED;
}

/* Forget the oldest finished operations beyond OPS_KEEP. */
static void ops__prune(struct daemon *d)
{
	struct op **pp = &d->ops;
	int n = 0;

	while (*pp) {
		struct op *op = *pp;

		if (++n > OPS_KEEP && op__done(op)) {
			*pp = op->next;
			store__remove_op(d, op);
			op__free(op);
			continue;
		}
		pp = &op->next;
	}
}

static void ops__emit(struct daemon *d, struct op *op)
{
	struct vm *vm = registry__find(d, op->vm_id);

	store__save_op(d, op);
	events__emit(d->events, op->vm_id, VMMD__V1__EVENT_KIND__EVENT_KIND_OPERATION_UPDATED,
		     vm ? vm->state : 0, op->id, op->state, "%s %s%s%s", op_kind__name(op->kind),
		     op->state == VMMD__V1__OPERATION_STATE__OPERATION_STATE_FAILED ? "failed" :
		     op->state == VMMD__V1__OPERATION_STATE__OPERATION_STATE_SUCCEEDED ? "succeeded" :
		     op->state == VMMD__V1__OPERATION_STATE__OPERATION_STATE_CANCELLED ? "cancelled" :
											  "running",
		     op->message[0] ? ": " : "", op->message);
}

int ops__begin(struct daemon *d, struct vm *vm, Vmmd__V1__OperationKind kind, struct op **out,
	       struct api_error *err)
{
	struct op *op, *cur;

	if (vm->op_id[0]) {
		cur = ops__find(d, vm->op_id);
		return api_error__set(err, API_FAILED_PRECONDITION, NULL,
				      "vm \"%s\": operation %s (%s) is running", vm->spec->name,
				      vm->op_id, cur ? op_kind__name(cur->kind) : "?");
	}
	op = calloc(1, sizeof(*op));
	if (!op)
		return api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
	daemon__gen_id(op->id);
	op->kind = kind;
	snprintf(op->vm_id, sizeof(op->vm_id), "%s", vm->id);
	op->state = VMMD__V1__OPERATION_STATE__OPERATION_STATE_RUNNING;
	op->created_at_ms = now_ms();
	op->next = d->ops;
	d->ops = op;
	snprintf(vm->op_id, sizeof(vm->op_id), "%s", op->id);
	store__save_vm(d, vm);
	ops__emit(d, op);
	ops__prune(d);
	*out = op;
	return 0;
}

static void ops__end(struct daemon *d, struct op *op)
{
	struct vm *vm = registry__find(d, op->vm_id);

	op->finished_at_ms = now_ms();
	if (vm && !strcmp(vm->op_id, op->id)) {
		vm->op_id[0] = '\0';
		store__save_vm(d, vm);
	}
	ops__emit(d, op);
	pr_info("operation %s (%s vm %s): %s%s%s", op->id, op_kind__name(op->kind), op->vm_id,
		op->state == VMMD__V1__OPERATION_STATE__OPERATION_STATE_SUCCEEDED ? "succeeded" :
		op->state == VMMD__V1__OPERATION_STATE__OPERATION_STATE_CANCELLED ? "cancelled" :
										     "failed",
		op->error.message[0] ? ": " : "", op->error.message);
}

void ops__update(struct daemon *d, struct op *op, Vmmd__V1__OperationState st, uint32_t progress,
		 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(op->message, sizeof(op->message), fmt, ap);
	va_end(ap);
	op->state = st;
	op->progress = progress;
	if (op__done(op))
		ops__end(d, op);
	else
		ops__emit(d, op);
}

void ops__fail(struct daemon *d, struct op *op, enum api_code code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(op->error.message, sizeof(op->error.message), fmt, ap);
	va_end(ap);
	snprintf(op->error.code, sizeof(op->error.code), "%s", api_code__name(code));
	snprintf(op->message, sizeof(op->message), "%s", op->error.message);
	op->state = VMMD__V1__OPERATION_STATE__OPERATION_STATE_FAILED;
	ops__end(d, op);
}

/* Waits (d->lock held) until vm leaves any of the states in mask, the
 * deadline passes or the operation is cancelled; returns the VM or NULL
 * if it went away. */
static struct vm *wait_state(struct daemon *d, struct op *op, unsigned int mask, int64_t ms)
{
	struct timespec ts;
	int64_t end = now_ms() + ms;
	struct vm *vm;

	for (;;) {
		vm = registry__find(d, op->vm_id);
		if (!vm || !(mask & (1u << vm->state)) || op->cancel || now_ms() >= end ||
		    d->stopping)
			return vm;
		int64_t t = now_ms() + 100;
		ts.tv_sec = t / 1000;
		ts.tv_nsec = (t % 1000) * 1000000;
		pthread_cond_timedwait(&d->changed, &d->lock, &ts);
	}
}

#define M(s) (1u << VMMD__V1__VM_STATE__VM_STATE_##s)

static void kill_worker(struct vm *vm)
{
	if (vm->pid > 0)
		kill(-vm->pid, SIGKILL);
}

/* Starts vm (from a snapshot if restore) and waits for it to answer;
 * true when it runs. */
static bool run_start(struct daemon *d, struct op *op, struct vm *vm,
		      const struct worker_restore *restore)
{
	unsigned int timeout_s =
	    restore ? snapshot__timeout_s(d, vm->spec->memory_mib) : d->cfg.start_timeout_s;
	char why[256];

	vm->stop_wanted = false;
	registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_STARTING, "%s",
			    restore ? "restoring from a snapshot" : "starting vmm");
	if (worker__spawn(d, vm, restore, why, sizeof(why))) {
		registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_FAILED, "%s", why);
		ops__fail(d, op, API_INTERNAL, "vm \"%s\": %s", vm->spec->name, why);
		return false;
	}
	ops__update(d, op, op->state, 30, "waiting for vmm (pid %d) to answer", vm->pid);
	vm = wait_state(d, op, M(STARTING), (int64_t)timeout_s * 1000);
	if (d->stopping)
		return false; /* vmmd exits: the next one reconciles the operation */
	if (!vm) {
		ops__fail(d, op, API_NOT_FOUND, "vm %s went away", op->vm_id);
		return false;
	}
	if (vm->state == VMMD__V1__VM_STATE__VM_STATE_RUNNING)
		return true;
	if (vm->state == VMMD__V1__VM_STATE__VM_STATE_STARTING) {
		vm->stop_wanted = true;
		kill_worker(vm);
		if (op->cancel) {
			op->state = VMMD__V1__OPERATION_STATE__OPERATION_STATE_CANCELLED;
			snprintf(op->message, sizeof(op->message), "cancelled while starting");
			ops__end(d, op);
			return false;
		}
		ops__fail(d, op, API_DEADLINE_EXCEEDED,
			  "vm \"%s\": vmm did not answer on its control socket within %u s",
			  vm->spec->name, timeout_s);
		return false;
	}
	if (restore) {
		/* vmm refused the snapshot (or died loading it): the directory
		 * is what the reason is about. */
		snprintf(op->error.field, sizeof(op->error.field), "path");
		ops__fail(d, op, API_FAILED_PRECONDITION, "vm \"%s\": not restored from %s: %s",
			  vm->spec->name, restore->dir, vm->reason);
		return false;
	}
	ops__fail(d, op, API_FAILED_PRECONDITION, "vm \"%s\" is %s: %s", vm->spec->name,
		  vm_state__name(vm->state), vm->reason);
	return false;
}

/* Stops vm: power button, grace period, then hard. Drops the lock for the
 * control socket round trips. */
static bool run_stop(struct daemon *d, struct op *op, struct vm *vm, uint32_t timeout_s,
		     bool force)
{
	char reply[256], id[DAEMON_ID_LEN];

	snprintf(id, sizeof(id), "%s", vm->id);
	vm->stop_wanted = true;
	if (vm->state == VMMD__V1__VM_STATE__VM_STATE_PAUSED)
		force = true; /* a paused guest cannot see the power button */
	if (!timeout_s)
		timeout_s = vm->spec->stop_timeout_s ? vm->spec->stop_timeout_s :
						       d->cfg.default_stop_timeout_s;
	registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_STOPPING,
			    force ? "stopping hard" : "ACPI power button pressed");
	if (!force) {
		ops__update(d, op, op->state, 20, "waiting up to %u s for the guest to power off",
			    timeout_s);
		pthread_mutex_unlock(&d->lock);
		worker__control(d, id, "{\"cmd\":\"powerdown\"}", reply, sizeof(reply), 2000);
		pthread_mutex_lock(&d->lock);
		vm = wait_state(d, op, M(STOPPING), (int64_t)timeout_s * 1000);
		if (vm && vm->state == VMMD__V1__VM_STATE__VM_STATE_STOPPING && !d->stopping)
			events__emit(d->events, id, VMMD__V1__EVENT_KIND__EVENT_KIND_WARNING,
				     vm->state, op->id, op->state,
				     "vm \"%s\": guest did not power off within %u s, stopping hard",
				     vm->spec->name, timeout_s);
	}
	if (vm && vm->state == VMMD__V1__VM_STATE__VM_STATE_STOPPING && !d->stopping) {
		ops__update(d, op, op->state, 60, "stopping hard");
		pthread_mutex_unlock(&d->lock);
		worker__control(d, id, "{\"cmd\":\"stop\"}", reply, sizeof(reply), 2000);
		pthread_mutex_lock(&d->lock);
		vm = wait_state(d, op, M(STOPPING), 5000);
		if (vm && vm->state == VMMD__V1__VM_STATE__VM_STATE_STOPPING) {
			kill_worker(vm);
			vm = wait_state(d, op, M(STOPPING), 5000);
		}
	}
	if (d->stopping)
		return false;
	if (!vm) {
		ops__fail(d, op, API_NOT_FOUND, "vm %s went away", id);
		return false;
	}
	if (vm->state == VMMD__V1__VM_STATE__VM_STATE_STOPPED ||
	    vm->state == VMMD__V1__VM_STATE__VM_STATE_FAILED)
		return true;
	ops__fail(d, op, API_UNAVAILABLE, "vm \"%s\" is still %s", vm->spec->name,
		  vm_state__name(vm->state));
	return false;
}

static void run_pause(struct daemon *d, struct op *op, struct vm *vm, bool pause)
{
	char reply[256], id[DAEMON_ID_LEN];
	int r;

	snprintf(id, sizeof(id), "%s", vm->id);
	pthread_mutex_unlock(&d->lock);
	r = worker__control(d, id, pause ? "{\"cmd\":\"pause\"}" : "{\"cmd\":\"resume\"}", reply,
			    sizeof(reply), 5000);
	pthread_mutex_lock(&d->lock);
	vm = registry__find(d, id);
	if (!vm) {
		ops__fail(d, op, API_NOT_FOUND, "vm %s went away", id);
	} else if (r || !strstr(reply, "\"ok\":true")) {
		ops__fail(d, op, API_UNAVAILABLE, "vm \"%s\": vmm refused: %s", vm->spec->name,
			  r ? strerror(-r) : reply);
	} else {
		registry__set_state(d, vm,
				    pause ? VMMD__V1__VM_STATE__VM_STATE_PAUSED :
					    VMMD__V1__VM_STATE__VM_STATE_RUNNING,
				    "%s", pause ? "paused by request" : "");
		ops__update(d, op, VMMD__V1__OPERATION_STATE__OPERATION_STATE_SUCCEEDED, 100, "%s",
			    pause ? "paused" : "resumed");
	}
}

static void run_delete(struct daemon *d, struct op *op, struct vm *vm)
{
	if (vm->pid > 0 && !run_stop(d, op, vm, 0, true))
		return;
	vm = registry__find(d, op->vm_id);
	if (!vm) {
		ops__fail(d, op, API_NOT_FOUND, "vm %s went away", op->vm_id);
		return;
	}
	registry__remove(d, vm, op->id, "deleted");
	op->finished_at_ms = now_ms();
	op->state = VMMD__V1__OPERATION_STATE__OPERATION_STATE_SUCCEEDED;
	op->progress = 100;
	snprintf(op->message, sizeof(op->message), "deleted");
	ops__emit(d, op);
}

static void *op__thread(void *arg)
{
	struct daemon *d = ((void **)arg)[0];
	struct op *op = ((void **)arg)[1];
	struct vm *vm;

	free(arg);
	pthread_mutex_lock(&d->lock);
	d->nr_threads++;
	vm = registry__find(d, op->vm_id);
	if (!vm) {
		ops__fail(d, op, API_NOT_FOUND, "vm %s went away", op->vm_id);
		goto out;
	}
	switch (op->kind) {
	case VMMD__V1__OPERATION_KIND__OPERATION_KIND_CREATE:
		registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_STOPPED, "created");
		if (op->start_after && !run_start(d, op, vm, NULL))
			break;
		ops__update(d, op, VMMD__V1__OPERATION_STATE__OPERATION_STATE_SUCCEEDED, 100,
			    "%s", op->start_after ? "created and running" : "created");
		break;
	case VMMD__V1__OPERATION_KIND__OPERATION_KIND_START:
		if (run_start(d, op, vm, NULL))
			ops__update(d, op, VMMD__V1__OPERATION_STATE__OPERATION_STATE_SUCCEEDED,
				    100, "running");
		break;
	case VMMD__V1__OPERATION_KIND__OPERATION_KIND_STOP:
		if (run_stop(d, op, vm, op->timeout_s, op->force))
			ops__update(d, op, VMMD__V1__OPERATION_STATE__OPERATION_STATE_SUCCEEDED,
				    100, "stopped");
		break;
	case VMMD__V1__OPERATION_KIND__OPERATION_KIND_REBOOT:
		if (run_stop(d, op, vm, op->timeout_s, op->force) &&
		    (vm = registry__find(d, op->vm_id)) && run_start(d, op, vm, NULL))
			ops__update(d, op, VMMD__V1__OPERATION_STATE__OPERATION_STATE_SUCCEEDED,
				    100, "rebooted");
		break;
	case VMMD__V1__OPERATION_KIND__OPERATION_KIND_PAUSE:
	case VMMD__V1__OPERATION_KIND__OPERATION_KIND_RESUME:
		run_pause(d, op, vm, op->kind == VMMD__V1__OPERATION_KIND__OPERATION_KIND_PAUSE);
		break;
	case VMMD__V1__OPERATION_KIND__OPERATION_KIND_DELETE:
		run_delete(d, op, vm);
		break;
	case VMMD__V1__OPERATION_KIND__OPERATION_KIND_SNAPSHOT:
		snapshot__run(d, op, vm);
		break;
	case VMMD__V1__OPERATION_KIND__OPERATION_KIND_MIGRATE:
		migrate_out__run(d, op, vm);
		break;
	case VMMD__V1__OPERATION_KIND__OPERATION_KIND_SERVICE:
		paravisor_service__run(d, op, vm);
		break;
	case VMMD__V1__OPERATION_KIND__OPERATION_KIND_RESTORE: {
		const struct worker_restore rs = { op->path, op->lazy };

		if (run_start(d, op, vm, &rs))
			ops__update(d, op, VMMD__V1__OPERATION_STATE__OPERATION_STATE_SUCCEEDED,
				    100, "restored from %s (%s), running", op->path,
				    op->lazy ? "lazy" : "copy");
		break;
	}
	default:
		ops__fail(d, op, API_UNIMPLEMENTED, "unknown operation kind %d", op->kind);
	}
out:
	d->nr_threads--;
	pthread_cond_broadcast(&d->changed);
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int ops__launch(struct daemon *d, struct op *op)
{
	void **arg = malloc(2 * sizeof(void *));
	pthread_t t;
	pthread_attr_t a;
	int r;

	if (!arg)
		return -ENOMEM;
	arg[0] = d;
	arg[1] = op;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&t, &a, op__thread, arg);
	pthread_attr_destroy(&a);
	if (r) {
		free(arg);
		return -r;
	}
	return 0;
}

/* After a restart: an operation that was running when vmmd died either
 * reached its goal (SUCCEEDED) or is FAILED; never left running. */
void ops__reconcile(struct daemon *d)
{
	for (struct op *op = d->ops; op; op = op->next) {
		struct vm *vm;
		bool ok = false;

		if (op__done(op))
			continue;
		vm = registry__find(d, op->vm_id);
		switch (op->kind) {
		case VMMD__V1__OPERATION_KIND__OPERATION_KIND_CREATE:
			if (vm && vm->state == VMMD__V1__VM_STATE__VM_STATE_CREATING)
				registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_STOPPED,
						    "created");
			ok = vm && (!op->start_after ||
				    vm->state == VMMD__V1__VM_STATE__VM_STATE_RUNNING);
			break;
		case VMMD__V1__OPERATION_KIND__OPERATION_KIND_RESTORE:
			/* Never spawned: the record must not stay creating. */
			if (vm && vm->state == VMMD__V1__VM_STATE__VM_STATE_CREATING)
				registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_FAILED,
						    "restore interrupted by a vmmd restart");
			/* fall through */
		case VMMD__V1__OPERATION_KIND__OPERATION_KIND_START:
		case VMMD__V1__OPERATION_KIND__OPERATION_KIND_RESUME:
			ok = vm && vm->state == VMMD__V1__VM_STATE__VM_STATE_RUNNING;
			break;
		case VMMD__V1__OPERATION_KIND__OPERATION_KIND_REBOOT:
			ok = vm && vm->state == VMMD__V1__VM_STATE__VM_STATE_RUNNING &&
			     vm->started_at_ms > op->created_at_ms;
			break;
		case VMMD__V1__OPERATION_KIND__OPERATION_KIND_STOP:
			ok = vm && vm->state == VMMD__V1__VM_STATE__VM_STATE_STOPPED;
			break;
		case VMMD__V1__OPERATION_KIND__OPERATION_KIND_PAUSE:
			ok = vm && vm->state == VMMD__V1__VM_STATE__VM_STATE_PAUSED;
			break;
		case VMMD__V1__OPERATION_KIND__OPERATION_KIND_DELETE:
			ok = !vm;
			break;
		default:
			break;
		}
		if (ok)
			ops__update(d, op, VMMD__V1__OPERATION_STATE__OPERATION_STATE_SUCCEEDED, 100,
				    "completed (vmmd restarted meanwhile)");
		else
			ops__fail(d, op, API_UNAVAILABLE, "interrupted by a vmmd restart");
	}
	/* A VM naming an operation that is over (or lost) is free again. */
	for (struct vm *vm = d->vms; vm; vm = vm->next) {
		struct op *op = vm->op_id[0] ? ops__find(d, vm->op_id) : NULL;

		if (vm->op_id[0] && (!op || op__done(op))) {
			vm->op_id[0] = '\0';
			store__save_vm(d, vm);
		}
	}
}
