/* daemon/registry.c — the VMs vmmd knows: lookup, the state machine's
 * transitions (each persisted and announced as an event), spec validation. */
#include "daemon/daemon.h"
#include "common/log.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A random (version 4) UUID: ids are never reused, even across restarts. */
void daemon__gen_id(char id[DAEMON_ID_LEN])
{
	uint8_t b[16];

	if (getrandom(b, sizeof(b), 0) != sizeof(b)) {
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (uint8_t)rand();
	}
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(id, DAEMON_ID_LEN,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		 b[15]);
}

struct vm *registry__find(struct daemon *d, const char *id_or_name)
{
	if (!id_or_name || !*id_or_name)
		return NULL;
	for (struct vm *vm = d->vms; vm; vm = vm->next)
		if (!strcmp(vm->id, id_or_name) || !strcmp(vm->spec->name, id_or_name))
			return vm;
	return NULL;
}

const char *vm_state__name(Vmmd__V1__VmState s)
{
	static const char *const names[] = { "unspecified", "creating", "stopped",   "starting",
					     "running",	    "paused",	"stopping",  "migrating",
					     "servicing",   "failed" };

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

void registry__set_state(struct daemon *d, struct vm *vm, Vmmd__V1__VmState s, const char *fmt,
			 ...)
{
	va_list ap;
	bool changed = vm->state != s;

	va_start(ap, fmt);
	vsnprintf(vm->reason, sizeof(vm->reason), fmt, ap);
	va_end(ap);
	if (s == VMMD__V1__VM_STATE__VM_STATE_RUNNING &&
	    (vm->state == VMMD__V1__VM_STATE__VM_STATE_STARTING || !vm->started_at_ms))
		vm->started_at_ms = now_ms();
	vm->state = s;
	vm->updated_at_ms = now_ms();
	if (store__save_vm(d, vm))
		pr_warn("vm \"%s\": state %s not persisted", vm->spec->name, vm_state__name(s));
	if (changed)
		pr_info("vm \"%s\": %s%s%s", vm->spec->name, vm_state__name(s),
			vm->reason[0] ? ": " : "", vm->reason);
	events__emit(d->events, vm->id, VMMD__V1__EVENT_KIND__EVENT_KIND_VM_STATE_CHANGED, s,
		     vm->op_id, 0, "vm \"%s\" is %s%s%s", vm->spec->name, vm_state__name(s),
		     vm->reason[0] ? ": " : "", vm->reason);
	pthread_cond_broadcast(&d->changed);
}

ProtobufCMessage *msg__dup(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	ProtobufCMessage *out;

	if (!buf)
		return NULL;
	protobuf_c_message_pack(m, buf);
	out = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
	free(buf);
	return out;
}

Vmmd__V1__Vm *registry__vm_message(const struct vm *vm)
{
	Vmmd__V1__Vm m = VMMD__V1__VM__INIT;
	Vmmd__V1__VmStatus st = VMMD__V1__VM_STATUS__INIT;
	Vmmd__V1__ParavisorDeviceStatus pv[VM_PV_DEVS], *pvp[VM_PV_DEVS];

	m.id = (char *)vm->id;
	m.spec = vm->spec;
	m.status = &st;
	st.state = vm->state;
	st.reason = (char *)vm->reason;
	st.created_at_ms = vm->created_at_ms;
	st.started_at_ms = vm->started_at_ms;
	st.updated_at_ms = vm->updated_at_ms;
	st.pid = vm->pid;
	st.operation_id = (char *)vm->op_id;
	st.paravisor_uid = vm->paravisor_uid;
	for (unsigned int i = 0; i < vm->nr_pv; i++) {
		const struct vm_pv_dev *p = &vm->pv[i];

		vmmd__v1__paravisor_device_status__init(&pv[i]);
		pv[i].id = (char *)p->id;
		pv[i].kind = (char *)p->kind;
		pv[i].pid = p->pid;
		pv[i].restart = p->restart;
		pv[i].restarts = p->restarts;
		pv[i].last_death = (char *)p->last_death;
		pv[i].failed = (char *)p->failed;
		pv[i].netstack_pid = p->netstack_pid;
		pv[i].netstack_restarts = p->netstack_restarts;
		pv[i].netstack_last_death = (char *)p->netstack_last_death;
		pv[i].netstack_died = (char *)p->netstack_died;
		pv[i].n_netstack_draining_pids = p->nr_draining;
		pv[i].netstack_draining_pids = (int32_t *)p->netstack_draining;
		pvp[i] = &pv[i];
		if (!st.paravisor_pid)
			st.paravisor_pid = p->pid;
	}
	st.n_paravisor_devices = vm->nr_pv;
	st.paravisor_devices = pvp;
	return (Vmmd__V1__Vm *)msg__dup(&m.base);
}

Vmmd__V1__Operation *registry__op_message(const struct op *op)
{
	Vmmd__V1__Operation m = VMMD__V1__OPERATION__INIT;
	Vmmd__V1__Error e = VMMD__V1__ERROR__INIT;
	Vmmd__V1__SnapshotResult snap = VMMD__V1__SNAPSHOT_RESULT__INIT;
	Vmmd__V1__MigrationResult mig = VMMD__V1__MIGRATION_RESULT__INIT;
	Vmmd__V1__MigrationDowntime down = VMMD__V1__MIGRATION_DOWNTIME__INIT;
	Vmmd__V1__MigrationRound rounds[MIGRATE_ROUNDS_KEPT], *rp[MIGRATE_ROUNDS_KEPT];
	Vmmd__V1__ServiceResult svc = VMMD__V1__SERVICE_RESULT__INIT;
	Vmmd__V1__ServicedDevice sdev[SERVICE_DEVICES_KEPT], *sdp[SERVICE_DEVICES_KEPT];

	m.id = (char *)op->id;
	m.kind = op->kind;
	m.vm_id = (char *)op->vm_id;
	m.state = op->state;
	m.progress_percent = op->progress;
	if (op->state == VMMD__V1__OPERATION_STATE__OPERATION_STATE_FAILED) {
		e.code = (char *)op->error.code;
		e.message = (char *)op->error.message;
		e.field = (char *)op->error.field;
		m.error = &e;
	}
	m.created_at_ms = op->created_at_ms;
	m.finished_at_ms = op->finished_at_ms;
	m.message = (char *)op->message;
	if (op->has_result && op->kind == VMMD__V1__OPERATION_KIND__OPERATION_KIND_SNAPSHOT) {
		snap.path = (char *)op->path;
		snap.memory_pages = op->memory_pages;
		snap.state_bytes = op->state_bytes;
		snap.duration_ms = op->duration_ms;
		m.snapshot = &snap;
	}
	if (op->mig && op->mig->has_result) {
		const struct op_migrate *g = op->mig;
		size_t n = g->rounds < MIGRATE_ROUNDS_KEPT ? g->rounds : MIGRATE_ROUNDS_KEPT;

		mig.destination = (char *)g->dest;
		mig.setup_ms = g->setup_ms;
		mig.total_ms = g->total_ms;
		mig.downtime_ms = g->downtime_ms;
		mig.bytes = g->bytes;
		mig.pages_normal = g->pages_normal;
		mig.pages_zero = g->pages_zero;
		mig.rounds = g->rounds;
		mig.dirty_log = (char *)g->dirty_log;
		mig.throttle_percent = g->throttle_pct;
		mig.connections = g->nr_conns;
		mig.thread_nice = g->nice_now;
		down.pause_ms = g->dt_pause;
		down.state_ms = g->dt_state;
		down.last_pages_ms = g->dt_pages;
		down.last_pages = g->dt_last_pages;
		down.destination_restore_ms = g->dt_restore;
		down.go_to_running_ms = g->dt_start;
		mig.downtime = &down;
		mig.throughput_bytes_per_s = g->throughput;
		for (size_t i = 0; i < n; i++) {
			vmmd__v1__migration_round__init(&rounds[i]);
			rounds[i].pages = g->round[i].pages;
			rounds[i].ms = g->round[i].ms;
			rounds[i].dirty_pages_per_s = g->round[i].dirty_pages_per_s;
			rounds[i].throttle_percent = g->round[i].throttle_pct;
			rp[i] = &rounds[i];
		}
		mig.n_round_stats = n;
		mig.round_stats = rp;
		m.migration = &mig;
	}
	if (op->svc && op->svc->has_result) {
		const struct op_service *s = op->svc;

		svc.paravisor = (char *)s->paravisor;
		svc.duration_ms = s->duration_ms;
		svc.rolled_back = s->rolled_back;
		for (uint32_t i = 0; i < s->nr_devices; i++) {
			vmmd__v1__serviced_device__init(&sdev[i]);
			sdev[i].id = (char *)s->dev[i].id;
			sdev[i].blackout_ms = s->dev[i].blackout_ms;
			sdev[i].old_pid = s->dev[i].old_pid;
			sdev[i].new_pid = s->dev[i].new_pid;
			sdev[i].netstack_old_pid = s->dev[i].netstack_old_pid;
			sdev[i].netstack_new_pid = s->dev[i].netstack_new_pid;
			sdp[i] = &sdev[i];
		}
		svc.n_devices = s->nr_devices;
		svc.devices = sdp;
		m.service = &svc;
	}
	return (Vmmd__V1__Operation *)msg__dup(&m.base);
}

void registry__remove(struct daemon *d, struct vm *vm, const char *op_id, const char *why)
{
	struct op *op = op_id ? ops__find(d, op_id) : NULL;

	for (struct vm **pp = &d->vms; *pp; pp = &(*pp)->next)
		if (*pp == vm) {
			*pp = vm->next;
			break;
		}
	store__remove_vm(d, vm);
	worker__remove_files(d, vm->id);
	events__emit(d->events, vm->id, VMMD__V1__EVENT_KIND__EVENT_KIND_VM_DELETED, 0,
		     op_id, op ? op->state : 0, "vm \"%s\" %s", vm->spec->name, why);
	pr_info("vm \"%s\": %s", vm->spec->name, why);
	pthread_cond_broadcast(&d->changed);
	vm__free(vm);
}

void vm__free(struct vm *vm)
{
	if (!vm)
		return;
	console__free(vm->console);
	if (vm->spec)
		protobuf_c_message_free_unpacked(&vm->spec->base, NULL);
	free(vm);
}

/* ------------------------------------------------------------ validation -- */

#define INVALID(field, ...) api_error__set(err, API_INVALID_ARGUMENT, field, __VA_ARGS__)

static bool path__inside(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return true;
	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

static int check_allowed(const struct daemon_config *cfg, const char *field, const char *path,
			 const char *real, struct api_error *err)
{
	for (int i = 0; i < cfg->nr_allow; i++)
		if (path__inside(real, cfg->allow[i]))
			return 0;
	return api_error__set(err, API_INVALID_ARGUMENT, field,
			      "%s is outside the directories vmmd may use (--allow-dir)", path);
}

/* A file the spec names must exist and resolve (symlinks followed) inside
 * one of the allowed directories: a caller of the API must not make vmmd
 * open the host's files for a guest. */
static int check_path(const struct daemon_config *cfg, const char *field, const char *path,
		      bool must_exist, struct api_error *err)
{
	char real[PATH_MAX], parent[PATH_MAX];
	struct stat st;
	const char *slash;

	if (!path || !*path)
		return INVALID(field, "is required");
	if (path[0] != '/')
		return INVALID(field, "%s: must be an absolute path", path);
	if (strlen(path) >= sizeof(parent))
		return INVALID(field, "path too long");
	if (must_exist) {
		if (!realpath(path, real))
			return INVALID(field, "%s: %s", path, strerror(errno));
		if (stat(real, &st) || !S_ISREG(st.st_mode))
			return INVALID(field, "%s: not a regular file", path);
	} else {
		/* A file or socket the worker creates: its directory must exist. */
		slash = strrchr(path, '/');
		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
		if (!realpath(parent[0] ? parent : "/", real))
			return INVALID(field, "%s: %s", parent, strerror(errno));
		if (strlen(real) + strlen(slash) >= sizeof(real))
			return INVALID(field, "path too long");
		strcat(real, slash);
	}
	return check_allowed(cfg, field, path, real, err);
}

int registry__check_dir(const struct daemon_config *cfg, const char *field, const char *path,
			bool must_exist, struct api_error *err)
{
	char real[PATH_MAX];
	struct stat st;

	if (!path || !*path)
		return INVALID(field, "is required");
	if (path[0] != '/')
		return INVALID(field, "%s: must be an absolute path", path);
	if (strlen(path) >= REGISTRY_PATH_MAX)
		return INVALID(field, "path too long (at most %d bytes)", REGISTRY_PATH_MAX - 1);
	if (lstat(path, &st)) {
		if (errno != ENOENT || must_exist)
			return INVALID(field, "%s: %s", path, strerror(errno));
		/* To be created: where it goes must be allowed. */
		return check_path(cfg, field, path, false, err);
	}
	/* It exists: where it leads (symlinks followed) must be allowed. */
	if (!realpath(path, real))
		return INVALID(field, "%s: %s", path, strerror(errno));
	if (stat(real, &st) || !S_ISDIR(st.st_mode))
		return INVALID(field, "%s: not a directory", path);
	return check_allowed(cfg, field, path, real, err);
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 63 || s[0] < 'a' || s[0] > 'z')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static bool valid_mac(const char *s)
{
	unsigned int b[6];
	char tail;

	return strlen(s) == 17 && sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3],
					 &b[4], &b[5], &tail) == 6;
}

static int check_serial(const struct daemon_config *cfg, const char *field, Vmmd__V1__Serial *s,
			struct api_error *err)
{
	char f[128];

	if (!s)
		return 0;
	snprintf(f, sizeof(f), "%s.path", field);
	switch (s->kind) {
	case VMMD__V1__SERIAL_KIND__SERIAL_KIND_CAPTURED:
	case VMMD__V1__SERIAL_KIND__SERIAL_KIND_NONE:
		if (s->path && *s->path)
			return INVALID(f, "must be empty for this kind");
		return 0;
	case VMMD__V1__SERIAL_KIND__SERIAL_KIND_FILE:
	case VMMD__V1__SERIAL_KIND__SERIAL_KIND_UNIX:
		return check_path(cfg, f, s->path, false, err);
	default:
		snprintf(f, sizeof(f), "%s.kind", field);
		return INVALID(f, "unknown kind %d", s->kind);
	}
}

int registry__validate_spec(const struct daemon_config *cfg, Vmmd__V1__VmSpec *spec,
			    struct api_error *err)
{
	char f[128];
	int r;

	if (!spec)
		return INVALID("spec", "is required");
	if (!valid_name(spec->name))
		return INVALID("spec.name",
			       "\"%.64s\": must be 1-63 characters of a-z, 0-9 and '-', starting "
			       "with a letter",
			       spec->name);
	if (spec->vcpus == 0)
		spec->vcpus = 1;
	if (spec->vcpus > 255)
		return INVALID("spec.vcpus", "%u: must be 1-255", spec->vcpus);
	if (spec->memory_mib < 16)
		return INVALID("spec.memory_mib", "must be at least 16 (MiB)");
	if (spec->memory_mib > 1024 * 1024)
		return INVALID("spec.memory_mib", "%llu: more than 1 TiB",
			       (unsigned long long)spec->memory_mib);
	if ((r = check_path(cfg, "spec.kernel", spec->kernel, true, err)))
		return r;
	if (spec->initrd && *spec->initrd &&
	    (r = check_path(cfg, "spec.initrd", spec->initrd, true, err)))
		return r;
	if (strlen(spec->cmdline) > 4096)
		return INVALID("spec.cmdline", "longer than 4096 bytes");
	if (spec->n_disks > 16)
		return INVALID("spec.disks", "at most 16 disks");
	for (size_t i = 0; i < spec->n_disks; i++) {
		Vmmd__V1__Disk *dk = spec->disks[i];

		snprintf(f, sizeof(f), "spec.disks[%zu].path", i);
		if ((r = check_path(cfg, f, dk->path, true, err)))
			return r;
		snprintf(f, sizeof(f), "spec.disks[%zu].queues", i);
		if (dk->queues > 64)
			return INVALID(f, "%u: at most 64", dk->queues);
		snprintf(f, sizeof(f), "spec.disks[%zu].id", i);
		if (strlen(dk->id) > 32 || strpbrk(dk->id, ",= "))
			return INVALID(f, "\"%.40s\": at most 32 characters, no ',', '=' or ' '",
				       dk->id);
		for (size_t j = 0; j < i && *dk->id; j++)
			if (!strcmp(spec->disks[j]->id, dk->id))
				return INVALID(f, "\"%s\" is used twice", dk->id);
	}
	if (spec->n_nics > 8)
		return INVALID("spec.nics", "at most 8 network interfaces");
	for (size_t i = 0; i < spec->n_nics; i++) {
		Vmmd__V1__Nic *n = spec->nics[i];

		snprintf(f, sizeof(f), "spec.nics[%zu]", i);
		if (n->backend_case == VMMD__V1__NIC__BACKEND__NOT_SET)
			return INVALID(f, "one of slirp or tap is required");
		if (n->backend_case == VMMD__V1__NIC__BACKEND_TAP && n->paravisor) {
			snprintf(f, sizeof(f), "spec.nics[%zu].paravisor", i);
			return INVALID(f, "a tap NIC is served by vmm (paravisor is for slirp)");
		}
		if (n->backend_case == VMMD__V1__NIC__BACKEND_TAP) {
			snprintf(f, sizeof(f), "spec.nics[%zu].tap.name", i);
			if (!*n->tap->name || strlen(n->tap->name) > 15 ||
			    strpbrk(n->tap->name, ",=/ "))
				return INVALID(f, "\"%.20s\": a tap interface name (1-15 characters)",
					       n->tap->name);
		} else {
			for (size_t j = 0; j < n->slirp->n_host_forwards; j++) {
				Vmmd__V1__HostFwd *h = n->slirp->host_forwards[j];

				snprintf(f, sizeof(f), "spec.nics[%zu].slirp.host_forwards[%zu]", i,
					 j);
				if (!h->host_port || h->host_port > 65535 || !h->guest_port ||
				    h->guest_port > 65535)
					return INVALID(f, "ports must be 1-65535");
				if (strpbrk(h->host_addr, ",-: "))
					return INVALID(f, "\"%.40s\": not an IPv4 address",
						       h->host_addr);
			}
		}
		snprintf(f, sizeof(f), "spec.nics[%zu].mac", i);
		if (*n->mac && !valid_mac(n->mac))
			return INVALID(f, "\"%.20s\": expected six hex pairs like 52:54:00:12:34:56",
				       n->mac);
	}
	if ((r = check_serial(cfg, "spec.serial", spec->serial, err)) ||
	    (r = check_serial(cfg, "spec.console", spec->console, err)))
		return r;
	if (spec->on_reboot != VMMD__V1__ON_REBOOT__ON_REBOOT_RESTART &&
	    spec->on_reboot != VMMD__V1__ON_REBOOT__ON_REBOOT_STOP)
		return INVALID("spec.on_reboot", "unknown value %d", spec->on_reboot);
	if (spec->stop_timeout_s > 3600)
		return INVALID("spec.stop_timeout_s", "%u: at most 3600", spec->stop_timeout_s);
	return 0;
}
