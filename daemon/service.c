/* daemon/service.c — the Vmm service behind api/service.h: one handler per
 * unary route.  Handlers check and answer at once; anything slow is an
 * operation run by daemon/ops.c. */
#include "daemon/daemon.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define ST(s) VMMD__V1__VM_STATE__VM_STATE_##s
#define REQ(type, name) const type *name = (const type *)req_
#define HANDLER(n)                                                                          \
	static int h_##n(void *ctx, const ProtobufCMessage *req_, ProtobufCMessage **resp, \
			 struct api_error *err)

static int not_found(struct api_error *err, const char *field, const char *id)
{
	return api_error__set(err, API_NOT_FOUND, field, "no vm \"%s\"", id);
}

static int wrong_state(struct api_error *err, const struct vm *vm, const char *hint)
{
	return api_error__set(err, API_FAILED_PRECONDITION, NULL, "vm \"%s\" is %s%s",
			      vm->spec->name, vm_state__name(vm->state), hint);
}

static int reply_op(struct daemon *d, struct op *op, ProtobufCMessage **resp,
		    struct api_error *err)
{
	int r = ops__launch(d, op);

	if (r) {
		ops__fail(d, op, API_INTERNAL, "cannot start a thread: %s", strerror(-r));
		return api_error__set(err, API_INTERNAL, NULL, "cannot run the operation");
	}
	*resp = &registry__op_message(op)->base;
	return *resp ? 0 : api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
}

/* Copies the arguments of an operation from the handler's template. */
static void op__set_args(struct op *op, const struct op *args)
{
	if (!args)
		return;
	op->timeout_s = args->timeout_s;
	op->force = args->force;
	op->start_after = args->start_after;
	op->paused = args->paused;
	op->lazy = args->lazy;
	memcpy(op->path, args->path, sizeof(op->path));
	if (args->mig && (op->mig = malloc(sizeof(*op->mig))))
		*op->mig = *args->mig;
	if (args->svc && (op->svc = malloc(sizeof(*op->svc))))
		*op->svc = *args->svc;
}

/* A new VM record from spec (validated; taken over, freed on failure) and
 * the operation that brings it up: CreateVm and RestoreVm.  name_field is
 * the request field that named the VM, for ALREADY_EXISTS. */
static int vm__add(struct daemon *d, Vmmd__V1__VmSpec *spec, Vmmd__V1__OperationKind kind,
		   const char *name_field, const char *hint, const struct op *args,
		   ProtobufCMessage **resp, struct api_error *err)
{
	struct vm *vm = calloc(1, sizeof(*vm)), *other;
	struct op *op;
	int r;

	if (!vm) {
		protobuf_c_message_free_unpacked(&spec->base, NULL);
		return api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
	}
	vm->spec = spec;
	daemon__gen_id(vm->id);
	vm->state = ST(CREATING);
	vm->created_at_ms = vm->updated_at_ms = now_ms();
	pthread_mutex_lock(&d->lock);
	if ((other = registry__find(d, spec->name))) {
		r = api_error__set(err, API_ALREADY_EXISTS, name_field,
				   "vm \"%s\" already exists (id %s)%s", spec->name, other->id,
				   hint);
		goto fail;
	}
	if (store__save_vm(d, vm)) {
		r = api_error__set(err, API_UNAVAILABLE, NULL, "cannot persist the VM in %s/vms",
				   d->cfg.state_dir);
		goto fail;
	}
	vm->next = d->vms;
	d->vms = vm;
	events__emit(d->events, vm->id, VMMD__V1__EVENT_KIND__EVENT_KIND_VM_CREATED, vm->state,
		     NULL, 0, "vm \"%s\" created%s%s", spec->name,
		     kind == VMMD__V1__OPERATION_KIND__OPERATION_KIND_RESTORE ? " from snapshot "
									      : "",
		     kind == VMMD__V1__OPERATION_KIND__OPERATION_KIND_RESTORE ? args->path : "");
	r = ops__begin(d, vm, kind, &op, err);
	if (!r) {
		op__set_args(op, args);
		r = reply_op(d, op, resp, err);
	}
	pthread_mutex_unlock(&d->lock);
	return r;
fail:
	pthread_mutex_unlock(&d->lock);
	vm__free(vm);
	return r;
}

HANDLER(CreateVm)
{
	REQ(Vmmd__V1__CreateVmRequest, req);
	struct daemon *d = ctx;
	Vmmd__V1__VmSpec *spec;
	int r;

	if (!req->spec)
		return api_error__set(err, API_INVALID_ARGUMENT, "spec", "is required");
	spec = (Vmmd__V1__VmSpec *)msg__dup(&req->spec->base);
	if (!spec)
		return api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
	if ((r = registry__validate_spec(&d->cfg, spec, err))) {
		protobuf_c_message_free_unpacked(&spec->base, NULL);
		return r;
	}
	return vm__add(d, spec, VMMD__V1__OPERATION_KIND__OPERATION_KIND_CREATE, "spec.name", "",
		       &(struct op){ .start_after = req->start }, resp, err);
}

static int cmp_vm(const void *a, const void *b)
{
	return strcmp((*(struct vm *const *)a)->spec->name, (*(struct vm *const *)b)->spec->name);
}

HANDLER(ListVms)
{
	REQ(Vmmd__V1__ListVmsRequest, req);
	struct daemon *d = ctx;
	Vmmd__V1__ListVmsResponse m = VMMD__V1__LIST_VMS_RESPONSE__INIT;
	struct vm **vms;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&d->lock);
	for (struct vm *vm = d->vms; vm; vm = vm->next)
		cap++;
	vms = calloc(cap + 1, sizeof(*vms));
	m.vms = calloc(cap + 1, sizeof(*m.vms));
	for (struct vm *vm = d->vms; vms && m.vms && vm; vm = vm->next)
		if (!req->state || vm->state == req->state)
			vms[n++] = vm;
	if (vms && m.vms) {
		qsort(vms, n, sizeof(*vms), cmp_vm);
		for (size_t i = 0; i < n; i++)
			m.vms[m.n_vms++] = registry__vm_message(vms[i]);
	}
	pthread_mutex_unlock(&d->lock);
	*resp = vms && m.vms ? msg__dup(&m.base) : NULL;
	for (size_t i = 0; i < m.n_vms; i++)
		if (m.vms[i])
			protobuf_c_message_free_unpacked(&m.vms[i]->base, NULL);
	free(m.vms);
	free(vms);
	return *resp ? 0 : api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
}

HANDLER(GetVm)
{
	REQ(Vmmd__V1__GetVmRequest, req);
	struct daemon *d = ctx;
	struct vm *vm;

	pthread_mutex_lock(&d->lock);
	vm = registry__find(d, req->id);
	*resp = vm ? &registry__vm_message(vm)->base : NULL;
	pthread_mutex_unlock(&d->lock);
	if (!vm)
		return not_found(err, "id", req->id);
	return *resp ? 0 : api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
}

/* The shared shape of the VM actions: find, one operation at a time, the
 * states the action is allowed in, then the operation with args (may be
 * NULL) for its arguments. */
static int action(struct daemon *d, const char *id, Vmmd__V1__OperationKind kind,
		  unsigned int allowed, const char *hint, const struct op *args,
		  ProtobufCMessage **resp, struct api_error *err)
{
	struct vm *vm;
	struct op *op;
	int r;

	pthread_mutex_lock(&d->lock);
	vm = registry__find(d, id);
	if (!vm) {
		r = not_found(err, "id", id);
	} else if (vm->op_id[0]) {
		r = ops__begin(d, vm, kind, &op, err); /* names the running one */
	} else if (!(allowed & (1u << vm->state))) {
		r = wrong_state(err, vm, hint);
	} else if (!(r = ops__begin(d, vm, kind, &op, err))) {
		op__set_args(op, args);
		if (args && ((args->mig && !op->mig) || (args->svc && !op->svc)))
			ops__fail(d, op, API_RESOURCE_EXHAUSTED, "out of memory");
		r = reply_op(d, op, resp, err);
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}

#define M(s) (1u << ST(s))

HANDLER(DeleteVm)
{
	REQ(Vmmd__V1__DeleteVmRequest, req);
	unsigned int ok = M(STOPPED) | M(FAILED);

	if (req->force)
		ok |= M(RUNNING) | M(PAUSED) | M(STARTING) | M(STOPPING) | M(CREATING);
	return action(ctx, req->id, VMMD__V1__OPERATION_KIND__OPERATION_KIND_DELETE, ok,
		      ": stop it first or delete with force", &(struct op){ .force = req->force },
		      resp, err);
}

HANDLER(StartVm)
{
	REQ(Vmmd__V1__StartVmRequest, req);

	return action(ctx, req->id, VMMD__V1__OPERATION_KIND__OPERATION_KIND_START,
		      M(STOPPED) | M(FAILED), "", NULL, resp, err);
}

HANDLER(StopVm)
{
	REQ(Vmmd__V1__StopVmRequest, req);

	return action(ctx, req->id, VMMD__V1__OPERATION_KIND__OPERATION_KIND_STOP,
		      M(RUNNING) | M(PAUSED) | M(STARTING) | M(STOPPING), "",
		      &(struct op){ .timeout_s = req->timeout_s, .force = req->force }, resp, err);
}

HANDLER(RebootVm)
{
	REQ(Vmmd__V1__RebootVmRequest, req);

	return action(ctx, req->id, VMMD__V1__OPERATION_KIND__OPERATION_KIND_REBOOT,
		      M(RUNNING) | M(PAUSED), "",
		      &(struct op){ .timeout_s = req->timeout_s, .force = req->force }, resp, err);
}

HANDLER(PauseVm)
{
	REQ(Vmmd__V1__PauseVmRequest, req);

	return action(ctx, req->id, VMMD__V1__OPERATION_KIND__OPERATION_KIND_PAUSE, M(RUNNING), "",
		      NULL, resp, err);
}

HANDLER(ResumeVm)
{
	REQ(Vmmd__V1__ResumeVmRequest, req);

	return action(ctx, req->id, VMMD__V1__OPERATION_KIND__OPERATION_KIND_RESUME, M(PAUSED),
		      "", NULL, resp, err);
}

HANDLER(SnapshotVm)
{
	REQ(Vmmd__V1__SnapshotVmRequest, req);
	struct daemon *d = ctx;
	struct op args = { .paused = req->paused };
	int r = snapshot__check_new(&d->cfg, req->path, args.path, sizeof(args.path), err);

	if (r)
		return r;
	return action(d, req->id, VMMD__V1__OPERATION_KIND__OPERATION_KIND_SNAPSHOT,
		      M(RUNNING) | M(PAUSED), ": only a running or paused VM can be snapshotted",
		      &args, resp, err);
}

HANDLER(RestoreVm)
{
	REQ(Vmmd__V1__RestoreVmRequest, req);
	struct daemon *d = ctx;
	struct op args = { .lazy = req->memory_mode == VMMD__V1__MEMORY_MODE__MEMORY_MODE_LAZY };
	Vmmd__V1__VmSpec *spec;
	int r;

	if (req->memory_mode != VMMD__V1__MEMORY_MODE__MEMORY_MODE_COPY &&
	    req->memory_mode != VMMD__V1__MEMORY_MODE__MEMORY_MODE_LAZY)
		return api_error__set(err, API_INVALID_ARGUMENT, "memory_mode", "unknown value %d",
				      req->memory_mode);
	r = snapshot__read_spec(&d->cfg, req->path, req->name, args.path, sizeof(args.path), &spec,
				err);
	if (r)
		return r;
	return vm__add(d, spec, VMMD__V1__OPERATION_KIND__OPERATION_KIND_RESTORE, "name",
		       "; give the restored VM another name", &args, resp, err);
}

/* A TLS file MigrateVm names, or vmmd's own: absolute and readable. */
static int migrate_file(const char *field, const char *given, const char *ours, char *out,
			size_t len, struct api_error *err)
{
	const char *p = given && *given ? given : ours;

	if (!*p)
		return api_error__set(err, API_INVALID_ARGUMENT, field,
				      "is required: vmmd has no --migration-tls-* files");
	if (p[0] != '/' || strlen(p) >= len)
		return api_error__set(err, API_INVALID_ARGUMENT, field,
				      "%s: must be an absolute path of at most %zu bytes", p,
				      len - 1);
	if (access(p, R_OK))
		return api_error__set(err, API_INVALID_ARGUMENT, field, "%s: %s", p,
				      strerror(errno));
	snprintf(out, len, "%s", p);
	return 0;
}

HANDLER(MigrateVm)
{
	REQ(Vmmd__V1__MigrateVmRequest, req);
	struct daemon *d = ctx;
	const Vmmd__V1__TlsFiles *t = req->tls;
	struct op_migrate *m = calloc(1, sizeof(*m));
	struct op args = { .mig = m };
	const char *colon = strrchr(req->destination, ':');
	int r;

	if (!m)
		return api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
	if (!colon || colon == req->destination || !colon[1] || atoi(colon + 1) <= 0 ||
	    atoi(colon + 1) > 65535 || strlen(req->destination) >= sizeof(m->dest))
		r = api_error__set(err, API_INVALID_ARGUMENT, "destination",
				   "\"%.64s\": expected host:port of the destination vmmd's "
				   "--migration-listen",
				   req->destination);
	else if (req->downtime_limit_ms > 600000)
		r = api_error__set(err, API_INVALID_ARGUMENT, "downtime_limit_ms",
				   "%u: at most 600000", req->downtime_limit_ms);
	else if (req->max_rounds > 1000)
		r = api_error__set(err, API_INVALID_ARGUMENT, "max_rounds", "%u: at most 1000",
				   req->max_rounds);
	else if (req->connections > 16)
		r = api_error__set(err, API_INVALID_ARGUMENT, "connections", "%u: at most 16",
				   req->connections);
	else if (req->priority != VMMD__V1__MIGRATION_PRIORITY__MIGRATION_PRIORITY_MIGRATION &&
		 req->priority != VMMD__V1__MIGRATION_PRIORITY__MIGRATION_PRIORITY_EQUAL)
		r = api_error__set(err, API_INVALID_ARGUMENT, "priority",
				   "%d: expected MIGRATION_PRIORITY_MIGRATION or "
				   "MIGRATION_PRIORITY_EQUAL",
				   (int)req->priority);
	else if (!(r = migrate_file("tls.cert", t ? t->cert : NULL, d->cfg.migration_cert,
				    m->cert, sizeof(m->cert), err)) &&
		 !(r = migrate_file("tls.key", t ? t->key : NULL, d->cfg.migration_key, m->key,
				    sizeof(m->key), err)))
		r = migrate_file("tls.ca", t ? t->ca : NULL, d->cfg.migration_ca, m->ca,
				 sizeof(m->ca), err);
	if (!r) {
		snprintf(m->dest, sizeof(m->dest), "%s", req->destination);
		m->downtime_limit_ms = req->downtime_limit_ms ? req->downtime_limit_ms : 300;
		m->max_rounds = req->max_rounds ? req->max_rounds : 30;
		m->bandwidth_limit = req->bandwidth_limit;
		m->auto_converge = req->auto_converge;
		m->connections = req->connections ? req->connections : 1;
		m->thread_nice =
		    req->priority == VMMD__V1__MIGRATION_PRIORITY__MIGRATION_PRIORITY_EQUAL
			? 0
			: MIGRATE_THREAD_NICE;
		r = action(d, req->id, VMMD__V1__OPERATION_KIND__OPERATION_KIND_MIGRATE, M(RUNNING),
			   ": only a running VM can be migrated", &args, resp, err);
	}
	free(m);
	return r;
}

/* The new binary: absolute and executable, or empty (the one serving). */
static int service__check_binary(const char *path, struct api_error *err)
{
	if (!*path)
		return 0;
	if (path[0] != '/' || strlen(path) >= REGISTRY_PATH_MAX)
		return api_error__set(err, API_INVALID_ARGUMENT, "paravisor",
				      "\"%.64s\": expected an absolute path", path);
	if (access(path, X_OK))
		return api_error__set(err, API_FAILED_PRECONDITION, "paravisor",
				      "%s: %s", path, strerror(errno));
	return 0;
}

HANDLER(ServiceVm)
{
	REQ(Vmmd__V1__ServiceVmRequest, req);
	struct daemon *d = ctx;
	struct op_service svc = { 0 };
	struct vm *vm;
	int r = service__check_binary(req->paravisor, err);

	if (r)
		return r;
	snprintf(svc.paravisor, sizeof(svc.paravisor), "%s", req->paravisor);
	svc.netstack = req->netstack;
	pthread_mutex_lock(&d->lock);
	vm = registry__find(d, req->id);
	if (vm && !paravisor_service__has_device(vm))
		r = api_error__set(err, API_FAILED_PRECONDITION, "id",
				   "vm \"%s\" has no device served by a paravisor (disks with "
				   "backend DISK_BACKEND_PARAVISOR, NICs with paravisor true)",
				   vm->spec->name);
	pthread_mutex_unlock(&d->lock);
	if (r)
		return r;
	return action(d, req->id, VMMD__V1__OPERATION_KIND__OPERATION_KIND_SERVICE,
		      M(RUNNING) | M(PAUSED), ": only a running or paused VM can be serviced",
		      &(struct op){ .svc = &svc }, resp, err);
}

HANDLER(ServiceFleet)
{
	REQ(Vmmd__V1__ServiceFleetRequest, req);
	struct daemon *d = ctx;
	struct op_service svc = { .max_parallel = req->max_parallel ? req->max_parallel : 4 };
	Vmmd__V1__ServiceFleetResponse m = VMMD__V1__SERVICE_FLEET_RESPONSE__INIT;
	Vmmd__V1__Operation **ops = NULL;
	size_t n = 0, cap = 0;
	int r = service__check_binary(req->paravisor, err);

	if (r)
		return r;
	if (req->max_parallel > 1024)
		return api_error__set(err, API_INVALID_ARGUMENT, "max_parallel",
				      "%u: at most 1024", req->max_parallel);
	snprintf(svc.paravisor, sizeof(svc.paravisor), "%s", req->paravisor);
	svc.netstack = req->netstack;
	pthread_mutex_lock(&d->lock);
	for (struct vm *vm = d->vms; vm && !r; vm = vm->next) {
		struct op *op;
		struct api_error busy;

		if ((vm->state != ST(RUNNING) && vm->state != ST(PAUSED)) ||
		    !paravisor_service__has_device(vm))
			continue;
		/* A VM busy with another operation is left out, not failed. */
		if (vm->op_id[0] || ops__begin(d, vm, VMMD__V1__OPERATION_KIND__OPERATION_KIND_SERVICE,
					       &op, &busy))
			continue;
		op__set_args(op, &(struct op){ .svc = &svc });
		if (!op->svc || ops__launch(d, op)) {
			ops__fail(d, op, API_INTERNAL, "cannot run the operation");
			continue;
		}
		if (n == cap) {
			Vmmd__V1__Operation **more = realloc(ops, (cap = cap ? cap * 2 : 16) *
									 sizeof(*ops));

			if (!more) {
				r = api_error__set(err, API_RESOURCE_EXHAUSTED, NULL,
						   "out of memory");
				break;
			}
			ops = more;
		}
		ops[n] = registry__op_message(op);
		if (ops[n])
			n++;
	}
	pthread_mutex_unlock(&d->lock);
	m.n_operations = n;
	m.operations = ops;
	if (!r) {
		*resp = msg__dup(&m.base);
		if (!*resp)
			r = api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&ops[i]->base, NULL);
	free(ops);
	return r;
}

HANDLER(GetOperation)
{
	REQ(Vmmd__V1__GetOperationRequest, req);
	struct daemon *d = ctx;
	struct op *op;

	pthread_mutex_lock(&d->lock);
	op = ops__find(d, req->id);
	*resp = op ? &registry__op_message(op)->base : NULL;
	pthread_mutex_unlock(&d->lock);
	if (!op)
		return api_error__set(err, API_NOT_FOUND, "id", "no operation \"%s\"", req->id);
	return *resp ? 0 : api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
}

HANDLER(ListOperations)
{
	REQ(Vmmd__V1__ListOperationsRequest, req);
	struct daemon *d = ctx;
	Vmmd__V1__ListOperationsResponse m = VMMD__V1__LIST_OPERATIONS_RESPONSE__INIT;
	const char *vm_id = req->vm_id;
	size_t cap = 0;

	pthread_mutex_lock(&d->lock);
	if (*vm_id && registry__find(d, vm_id))
		vm_id = registry__find(d, vm_id)->id;
	for (struct op *op = d->ops; op; op = op->next)
		cap++;
	m.operations = calloc(cap + 1, sizeof(*m.operations));
	for (struct op *op = d->ops; m.operations && op; op = op->next)
		if ((!*vm_id || !strcmp(op->vm_id, vm_id)) && (!req->state || op->state == req->state))
			m.operations[m.n_operations++] = registry__op_message(op);
	pthread_mutex_unlock(&d->lock);
	*resp = m.operations ? msg__dup(&m.base) : NULL;
	for (size_t i = 0; i < m.n_operations; i++)
		if (m.operations[i])
			protobuf_c_message_free_unpacked(&m.operations[i]->base, NULL);
	free(m.operations);
	return *resp ? 0 : api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
}

HANDLER(CancelOperation)
{
	REQ(Vmmd__V1__CancelOperationRequest, req);
	struct daemon *d = ctx;
	struct op *op;
	int r = 0;

	pthread_mutex_lock(&d->lock);
	op = ops__find(d, req->id);
	if (!op)
		r = api_error__set(err, API_NOT_FOUND, "id", "no operation \"%s\"", req->id);
	else if (op->state >= VMMD__V1__OPERATION_STATE__OPERATION_STATE_SUCCEEDED)
		r = api_error__set(err, API_FAILED_PRECONDITION, "id", "operation %s has finished",
				   op->id);
	else if (op->kind != VMMD__V1__OPERATION_KIND__OPERATION_KIND_START &&
		 op->kind != VMMD__V1__OPERATION_KIND__OPERATION_KIND_REBOOT &&
		 op->kind != VMMD__V1__OPERATION_KIND__OPERATION_KIND_CREATE &&
		 op->kind != VMMD__V1__OPERATION_KIND__OPERATION_KIND_RESTORE &&
		 (op->kind != VMMD__V1__OPERATION_KIND__OPERATION_KIND_MIGRATE || !op->mig))
		/* Stop, pause, resume, delete and snapshot are quick or cannot be
		 * undone; an incoming migration is cancelled on its source. */
		r = api_error__set(err, API_FAILED_PRECONDITION, "id",
				   "operation %s cannot be cancelled (only starting and an "
				   "outgoing migration are)",
				   op->id);
	else {
		op->cancel = true;
		pthread_cond_broadcast(&d->changed);
		*resp = &registry__op_message(op)->base;
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}

HANDLER(GetConsoleLog)
{
	REQ(Vmmd__V1__GetConsoleLogRequest, req);
	struct daemon *d = ctx;
	Vmmd__V1__GetConsoleLogResponse m = VMMD__V1__GET_CONSOLE_LOG_RESPONSE__INIT;
	struct vm *vm;
	uint8_t *data = NULL;
	size_t len = 0;
	bool trunc = false;

	pthread_mutex_lock(&d->lock);
	vm = registry__find(d, req->id);
	if (vm)
		console__tail(vm->console, (size_t)req->tail_kib * 1024, &data, &len, &trunc);
	pthread_mutex_unlock(&d->lock);
	if (!vm)
		return not_found(err, "id", req->id);
	m.data.data = data;
	m.data.len = len;
	m.truncated = trunc;
	*resp = msg__dup(&m.base);
	free(data);
	return *resp ? 0 : api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
}

HANDLER(GetVersion)
{
	Vmmd__V1__GetVersionResponse m = VMMD__V1__GET_VERSION_RESPONSE__INIT;
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	m.version = (char *)PACKAGE_VERSION;
	m.api = (char *)"vmmd.v1";
	if (fd >= 0) {
		int v = ioctl(fd, KVM_GET_API_VERSION, 0);

		m.kvm_api_version = v > 0 ? (uint32_t)v : 0;
		close(fd);
	}
	*resp = msg__dup(&m.base);
	return *resp ? 0 : api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
}

static const struct {
	const char *name;
	api_unary_fn fn;
} handlers[] = {
#define H(n) { #n, h_##n }
	H(CreateVm),	 H(ListVms),	    H(GetVm),	       H(DeleteVm),	H(StartVm),
	H(StopVm),	 H(RebootVm),	    H(PauseVm),	       H(ResumeVm),	H(GetOperation),
	H(ListOperations), H(CancelOperation), H(GetConsoleLog), H(GetVersion), H(SnapshotVm),
	H(RestoreVm),	 H(MigrateVm),	    H(ServiceVm),      H(ServiceFleet),
#undef H
};

static api_unary_fn svc_handler(void *ctx, const char *name)
{
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (!strcmp(handlers[i].name, name))
			return handlers[i].fn;
	return NULL;
}

static int svc_watch(void *ctx, const Vmmd__V1__WatchEventsRequest *req, api_event_sink sink,
		     void *opaque, uint64_t *handle, struct api_error *err)
{
	struct daemon *d = ctx;
	char id[DAEMON_ID_LEN] = "";
	struct vm *vm;

	pthread_mutex_lock(&d->lock);
	if (*req->vm_id) {
		vm = registry__find(d, req->vm_id);
		/* A deleted VM's events are still kept: accept an id-sized name. */
		if (!vm && strlen(req->vm_id) != DAEMON_ID_LEN - 1) {
			pthread_mutex_unlock(&d->lock);
			return not_found(err, "vm_id", req->vm_id);
		}
		snprintf(id, sizeof(id), "%s", vm ? vm->id : req->vm_id);
	}
	pthread_mutex_unlock(&d->lock);
	if (events__watch(d->events, id, req->after_seq, sink, opaque, handle))
		return api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
	return 0;
}

static void svc_unwatch(void *ctx, uint64_t handle)
{
	events__unwatch(((struct daemon *)ctx)->events, handle);
}

static int svc_console_attach(void *ctx, const char *vm_id, api_bytes_sink sink, void *opaque,
			      uint64_t *handle, struct api_error *err)
{
	return console__attach(ctx, vm_id, sink, opaque, handle, err);
}

static int svc_console_write(void *ctx, uint64_t handle, const uint8_t *data, size_t len)
{
	return console__write(ctx, handle, data, len);
}

static void svc_console_detach(void *ctx, uint64_t handle)
{
	console__detach(ctx, handle);
}

static int svc_metrics(void *ctx, char **text, size_t *len)
{
	return metrics__render(ctx, text, len);
}

static void svc_observe(void *ctx, const char *transport, const char *route, int status,
			uint64_t usec)
{
	metrics__observe(((struct daemon *)ctx)->metrics, transport, route, status, usec);
}

struct api_service *daemon_service(struct daemon *d)
{
	d->svc = (struct api_service){
		.ctx = d,
		.handler = svc_handler,
		.watch_events = svc_watch,
		.unwatch_events = svc_unwatch,
		.console_attach = svc_console_attach,
		.console_write = svc_console_write,
		.console_detach = svc_console_detach,
		.metrics = svc_metrics,
		.observe_request = svc_observe,
	};
	return &d->svc;
}
