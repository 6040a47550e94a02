/* daemon/store.c — persistence under the state dir: vms/<id>.json holds a
 * VM (the Vm message: spec and last known status, worker pid included),
 * operations/<id>.json an operation.  Every file is replaced atomically
 * (write a temporary, fsync, rename, fsync the directory) so a crash leaves
 * the old or the new version, never half of one. */
#include "daemon/daemon.h"
#include "api/json.h"
#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int store__write_atomic(const char *dir, const char *name, const char *data, size_t len)
{
	char tmp[512], dst[512];
	int fd, dfd, r;

	snprintf(dst, sizeof(dst), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	r = write_all(fd, data, len);
	if (!r && fsync(fd))
		r = -errno;
	close(fd);
	if (!r && rename(tmp, dst))
		r = -errno;
	if (r) {
		unlink(tmp);
		pr_err("store: cannot write %s: %s", dst, strerror(-r));
		return r;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

static int save_msg(struct daemon *d, const char *sub, const char *id, ProtobufCMessage *m)
{
	char dir[512], name[64], *text;
	json_t *j;
	int r;

	if (!m)
		return -ENOMEM;
	j = api_json__from_message(m);
	protobuf_c_message_free_unpacked(m, NULL);
	if (!j)
		return -ENOMEM;
	text = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(j);
	if (!text)
		return -ENOMEM;
	snprintf(dir, sizeof(dir), "%s/%s", d->cfg.state_dir, sub);
	snprintf(name, sizeof(name), "%s.json", id);
	r = store__write_atomic(dir, name, text, strlen(text));
	free(text);
	return r;
}

int store__save_vm(struct daemon *d, const struct vm *vm)
{
	return save_msg(d, "vms", vm->id, &registry__vm_message(vm)->base);
}

int store__save_op(struct daemon *d, const struct op *op)
{
	return save_msg(d, "operations", op->id, &registry__op_message(op)->base);
}

static int remove_file(struct daemon *d, const char *sub, const char *id)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s/%s.json", d->cfg.state_dir, sub, id);
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return 0;
}

int store__remove_vm(struct daemon *d, const struct vm *vm)
{
	return remove_file(d, "vms", vm->id);
}

int store__remove_op(struct daemon *d, const struct op *op)
{
	return remove_file(d, "operations", op->id);
}

char *store__read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || n > 4 << 20 || fseek(f, 0, SEEK_SET))
		goto out;
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf) {
		buf[n] = '\0';
		*len = (size_t)n;
	}
out:
	fclose(f);
	return buf;
}

struct vm *store__parse_vm(const char *text, size_t len, char *why, size_t whylen)
{
	ProtobufCMessage *m = NULL;
	Vmmd__V1__Vm *v;
	struct api_error err = { 0 };
	struct vm *vm;

	if (api_json__parse(&vmmd__v1__vm__descriptor, text, len, &m, &err)) {
		snprintf(why, whylen, "%.100s%s%.150s", err.field, err.field[0] ? ": " : "", err.message);
		return NULL;
	}
	v = (Vmmd__V1__Vm *)m;
	if (!v->id[0] || strlen(v->id) >= DAEMON_ID_LEN || strchr(v->id, '/') || !v->spec ||
	    !v->spec->name[0]) {
		snprintf(why, whylen, "no id or no spec.name");
		protobuf_c_message_free_unpacked(m, NULL);
		return NULL;
	}
	vm = calloc(1, sizeof(*vm));
	if (!vm || !(vm->spec = (Vmmd__V1__VmSpec *)msg__dup(&v->spec->base))) {
		free(vm);
		protobuf_c_message_free_unpacked(m, NULL);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	snprintf(vm->id, sizeof(vm->id), "%s", v->id);
	if (v->status) {
		vm->state = v->status->state;
		snprintf(vm->reason, sizeof(vm->reason), "%s", v->status->reason);
		vm->created_at_ms = v->status->created_at_ms;
		vm->started_at_ms = v->status->started_at_ms;
		vm->updated_at_ms = v->status->updated_at_ms;
		vm->pid = v->status->pid;
		snprintf(vm->op_id, sizeof(vm->op_id), "%s", v->status->operation_id);
		vm->paravisor_uid = v->status->paravisor_uid;
	}
	if (vm->state == VMMD__V1__VM_STATE__VM_STATE_UNSPECIFIED)
		vm->state = VMMD__V1__VM_STATE__VM_STATE_STOPPED;
	protobuf_c_message_free_unpacked(m, NULL);
	return vm;
}

static struct op *parse_op(const char *text, size_t len, char *why, size_t whylen)
{
	ProtobufCMessage *m = NULL;
	Vmmd__V1__Operation *o;
	struct api_error err = { 0 };
	struct op *op;

	if (api_json__parse(&vmmd__v1__operation__descriptor, text, len, &m, &err)) {
		snprintf(why, whylen, "%.100s%s%.150s", err.field, err.field[0] ? ": " : "", err.message);
		return NULL;
	}
	o = (Vmmd__V1__Operation *)m;
	op = calloc(1, sizeof(*op));
	if (!op || !o->id[0] || strlen(o->id) >= DAEMON_ID_LEN ||
	    strlen(o->vm_id) >= DAEMON_ID_LEN) {
		free(op);
		protobuf_c_message_free_unpacked(m, NULL);
		snprintf(why, whylen, "bad id");
		return NULL;
	}
	snprintf(op->id, sizeof(op->id), "%s", o->id);
	snprintf(op->vm_id, sizeof(op->vm_id), "%s", o->vm_id);
	op->kind = o->kind;
	op->state = o->state;
	op->progress = o->progress_percent;
	op->created_at_ms = o->created_at_ms;
	op->finished_at_ms = o->finished_at_ms;
	snprintf(op->message, sizeof(op->message), "%s", o->message);
	if (o->error) {
		snprintf(op->error.code, sizeof(op->error.code), "%s", o->error->code);
		snprintf(op->error.message, sizeof(op->error.message), "%s", o->error->message);
		snprintf(op->error.field, sizeof(op->error.field), "%s", o->error->field);
	}
	if (o->snapshot) {
		op->has_result = true;
		snprintf(op->path, sizeof(op->path), "%s", o->snapshot->path);
		op->memory_pages = o->snapshot->memory_pages;
		op->state_bytes = o->snapshot->state_bytes;
		op->duration_ms = o->snapshot->duration_ms;
	}
	if (o->service && (op->svc = calloc(1, sizeof(*op->svc)))) {
		const Vmmd__V1__ServiceResult *r = o->service;
		struct op_service *s = op->svc;

		s->has_result = true;
		snprintf(s->paravisor, sizeof(s->paravisor), "%s", r->paravisor);
		s->duration_ms = r->duration_ms;
		s->rolled_back = r->rolled_back;
		for (size_t i = 0; i < r->n_devices && i < SERVICE_DEVICES_KEPT; i++) {
			snprintf(s->dev[i].id, sizeof(s->dev[i].id), "%s", r->devices[i]->id);
			s->dev[i].blackout_ms = r->devices[i]->blackout_ms;
			s->dev[i].old_pid = r->devices[i]->old_pid;
			s->dev[i].new_pid = r->devices[i]->new_pid;
			s->dev[i].netstack_old_pid = r->devices[i]->netstack_old_pid;
			s->dev[i].netstack_new_pid = r->devices[i]->netstack_new_pid;
			s->nr_devices++;
		}
	}
	if (o->migration && (op->mig = calloc(1, sizeof(*op->mig)))) {
		const Vmmd__V1__MigrationResult *r = o->migration;
		struct op_migrate *g = op->mig;

		g->has_result = true;
		snprintf(g->dest, sizeof(g->dest), "%s", r->destination);
		g->setup_ms = r->setup_ms;
		g->total_ms = r->total_ms;
		g->downtime_ms = r->downtime_ms;
		g->bytes = r->bytes;
		g->pages_normal = r->pages_normal;
		g->pages_zero = r->pages_zero;
		g->rounds = r->rounds;
		snprintf(g->dirty_log, sizeof(g->dirty_log), "%s", r->dirty_log);
		g->throttle_pct = r->throttle_percent;
		g->nr_conns = r->connections;
		if (r->downtime) {
			g->dt_pause = r->downtime->pause_ms;
			g->dt_state = r->downtime->state_ms;
			g->dt_pages = r->downtime->last_pages_ms;
			g->dt_last_pages = r->downtime->last_pages;
			g->dt_restore = r->downtime->destination_restore_ms;
			g->dt_start = r->downtime->go_to_running_ms;
		}
		g->throughput = r->throughput_bytes_per_s;
		for (size_t i = 0; i < r->n_round_stats && i < MIGRATE_ROUNDS_KEPT; i++) {
			g->round[i].pages = r->round_stats[i]->pages;
			g->round[i].ms = r->round_stats[i]->ms;
			g->round[i].dirty_pages_per_s = r->round_stats[i]->dirty_pages_per_s;
			g->round[i].throttle_pct = r->round_stats[i]->throttle_percent;
		}
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return op;
}

/* Operations newest first, as d->ops keeps them. */
static void insert_op(struct daemon *d, struct op *op)
{
	struct op **pp = &d->ops;

	while (*pp && (*pp)->created_at_ms >= op->created_at_ms)
		pp = &(*pp)->next;
	op->next = *pp;
	*pp = op;
}

static int load_dir(struct daemon *d, const char *sub)
{
	char dir[512], path[1024], why[300];
	struct dirent *de;
	DIR *dp;
	int n = 0;

	snprintf(dir, sizeof(dir), "%s/%s", d->cfg.state_dir, sub);
	dp = opendir(dir);
	if (!dp)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(dp))) {
		size_t nl = strlen(de->d_name), len = 0;
		char *text;

		if (de->d_name[0] == '.' || nl < 6 || strcmp(de->d_name + nl - 5, ".json"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		text = store__read_file(path, &len);
		if (!text) {
			pr_err("store: %s: cannot read: %s; left out", path, strerror(errno));
			continue;
		}
		why[0] = '\0';
		if (!strcmp(sub, "vms")) {
			struct vm *vm = store__parse_vm(text, len, why, sizeof(why));

			if (vm && (strncmp(de->d_name, vm->id, nl - 5) || strlen(vm->id) != nl - 5 ||
				   registry__find(d, vm->spec->name))) {
				snprintf(why, sizeof(why), "id or name clashes with another VM");
				vm__free(vm);
				vm = NULL;
			}
			if (vm) {
				vm->next = d->vms;
				d->vms = vm;
				n++;
			}
		} else {
			struct op *op = parse_op(text, len, why, sizeof(why));

			if (op) {
				insert_op(d, op);
				n++;
			}
		}
		if (why[0])
			pr_err("store: %s: corrupt (%s); left out, the file is kept for inspection",
			       path, why);
		free(text);
	}
	closedir(dp);
	return n;
}

int store__load(struct daemon *d)
{
	int nv = load_dir(d, "vms"), no = load_dir(d, "operations");

	if (nv < 0 || no < 0) {
		pr_err("store: cannot read %s: %s", d->cfg.state_dir, strerror(-(nv < 0 ? nv : no)));
		return nv < 0 ? nv : no;
	}
	pr_info("store: loaded %d VMs and %d operations from %s", nv, no, d->cfg.state_dir);
	return 0;
}
