/* daemon/snapshot.c — SnapshotVm and RestoreVm on vmmd's side: the checks
 * on a snapshot directory, the spec file vmmd adds to it (vm.json, the
 * CreateVmRequest of the VM, so a restore needs nothing but the directory)
 * and the snapshot command sent to the worker.  Guest RAM and device state
 * are vmm's business (`snapshot` on its control socket, vmm --restore);
 * vmmd only names the directory. */
#include "daemon/daemon.h"
#include "api/json.h"
#include "common/log.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SNAPSHOT_SPEC "vm.json"

/* The files of a snapshot: vmm's two, then ours. */
static const char *const snapshot_files[] = { "state", "memory", SNAPSHOT_SPEC };

unsigned int snapshot__timeout_s(const struct daemon *d, uint64_t memory_mib)
{
	/* ~10-20 s per GiB where L1 is emulated (the nested lab); 64 s per
	 * GiB on top of the start timeout leaves room for a slow disk. */
	uint64_t s = d->cfg.start_timeout_s + 30 + memory_mib / 16;

	return s > 3600 ? 3600 : (unsigned int)s;
}

/* path without trailing '/' into out ("/" stays "/"). */
static int snapshot__trim(const char *path, char *out, size_t len, struct api_error *err)
{
	size_t n = path ? strlen(path) : 0;

	while (n > 1 && path[n - 1] == '/')
		n--;
	if (n >= len)
		return api_error__set(err, API_INVALID_ARGUMENT, "path",
				      "path too long (at most %zu bytes)", len - 1);
	memcpy(out, path ? path : "", n);
	out[n] = '\0';
	return 0;
}

int snapshot__check_new(const struct daemon_config *cfg, const char *path, char *op_path,
			size_t len, struct api_error *err)
{
	char p[REGISTRY_PATH_MAX + 16];
	struct stat st;
	int r;

	if ((r = snapshot__trim(path, op_path, len, err)) ||
	    (r = registry__check_dir(cfg, "path", op_path, false, err)))
		return r;
	/* vmm refuses too; saying so now spares an operation that fails. */
	for (size_t i = 0; i < sizeof(snapshot_files) / sizeof(snapshot_files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", op_path, snapshot_files[i]);
		if (!lstat(p, &st))
			return api_error__set(err, API_ALREADY_EXISTS, "path",
					      "%s already holds a snapshot (%s); choose a new "
					      "directory",
					      op_path, snapshot_files[i]);
	}
	return 0;
}

int snapshot__read_spec(const struct daemon_config *cfg, const char *path, const char *name,
			char *dir, size_t dirlen, Vmmd__V1__VmSpec **spec, struct api_error *err)
{
	char p[REGISTRY_PATH_MAX + 16];
	ProtobufCMessage *m = NULL;
	Vmmd__V1__CreateVmRequest *req;
	struct api_error perr = { 0 };
	struct stat st;
	size_t len = 0;
	char *text;
	int r;

	*spec = NULL;
	if ((r = snapshot__trim(path, dir, dirlen, err)) ||
	    (r = registry__check_dir(cfg, "path", dir, true, err)))
		return r;
	snprintf(p, sizeof(p), "%s/%s", dir, snapshot_files[0]);
	if (lstat(p, &st))
		return api_error__set(err, API_INVALID_ARGUMENT, "path",
				      "%s holds no snapshot (no state file)", dir);
	snprintf(p, sizeof(p), "%s/%s", dir, SNAPSHOT_SPEC);
	errno = 0;
	text = store__read_file(p, &len);
	if (!text)
		return api_error__set(err, API_INVALID_ARGUMENT, "path",
				      "%s is not a snapshot taken by vmmd (%s: %s); vmm --restore "
				      "restores it by hand",
				      dir, SNAPSHOT_SPEC, strerror(errno ? errno : EFBIG));
	r = api_json__parse(&vmmd__v1__create_vm_request__descriptor, text, len, &m, &perr);
	free(text);
	req = (Vmmd__V1__CreateVmRequest *)m;
	if (r || !req->spec) {
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
		return api_error__set(err, API_INVALID_ARGUMENT, "path", "%s/%s: %s%s%s", dir,
				      SNAPSHOT_SPEC, perr.field, perr.field[0] ? ": " : "",
				      r ? perr.message : "no spec");
	}
	*spec = req->spec;
	req->spec = NULL;
	protobuf_c_message_free_unpacked(m, NULL);
	if (name && *name) {
		free((*spec)->name);
		(*spec)->name = strdup(name);
		if (!(*spec)->name)
			r = api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
	}
	/* The spec as saved, checked as CreateVm checks one: its files must
	 * still be there and allowed. The field at fault is in the message. */
	if (!r && registry__validate_spec(cfg, *spec, &perr)) {
		if (name && *name && !strcmp(perr.field, "spec.name"))
			r = api_error__set(err, API_INVALID_ARGUMENT, "name", "%s", perr.message);
		else
			r = api_error__set(err, API_INVALID_ARGUMENT, "path", "%s/%s: %s: %s", dir,
					   SNAPSHOT_SPEC, perr.field, perr.message);
	}
	if (r) {
		protobuf_c_message_free_unpacked(&(*spec)->base, NULL);
		*spec = NULL;
	}
	return r;
}

/* DIR/vm.json: the VM's spec as CreateVm takes it, replaced atomically. */
static int snapshot__write_spec(const char *dir, Vmmd__V1__VmSpec *spec)
{
	Vmmd__V1__CreateVmRequest req = VMMD__V1__CREATE_VM_REQUEST__INIT;
	json_t *j;
	char *text;
	int r;

	req.spec = spec;
	j = api_json__from_message(&req.base);
	text = j ? json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	if (!text)
		return -ENOMEM;
	r = store__write_atomic(dir, SNAPSHOT_SPEC, text, strlen(text));
	free(text);
	return r;
}

/* What went wrong in vmm's words, as an error of the operation. */
static void snapshot__refused(struct daemon *d, struct op *op, const struct vm *vm, const char *why)
{
	bool exists = strstr(why, "already holds a snapshot");

	/* The directory is at fault when vmm names it. */
	if (exists || strstr(why, op->path))
		snprintf(op->error.field, sizeof(op->error.field), "path");
	ops__fail(d, op, exists ? API_ALREADY_EXISTS : API_FAILED_PRECONDITION,
		  "vm \"%s\": vmm refused: %s", vm->spec->name, why);
}

void snapshot__run(struct daemon *d, struct op *op, struct vm *vm)
{
	unsigned int timeout_s = snapshot__timeout_s(d, vm->spec->memory_mib);
	Vmmd__V1__VmSpec *spec = (Vmmd__V1__VmSpec *)msg__dup(&vm->spec->base);
	char id[DAEMON_ID_LEN], reply[4096], *cmd = NULL;
	json_t *req = json_pack("{s:s, s:s, s:b}", "cmd", "snapshot", "path", op->path, "resume",
				!op->paused);
	json_t *rep = NULL;
	const char *state = "", *why = NULL;
	int r = -ENOMEM, wr = 0;
	json_int_t pages = 0, bytes = 0, ms = 0;

	snprintf(id, sizeof(id), "%s", vm->id);
	cmd = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!cmd || !spec) {
		ops__fail(d, op, API_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	ops__update(d, op, op->state, 10, "vmm writes the snapshot to %s", op->path);
	pthread_mutex_unlock(&d->lock);
	r = worker__control(d, id, cmd, reply, sizeof(reply), (int)timeout_s * 1000);
	if (!r && !(rep = json_loads(reply, JSON_DISABLE_EOF_CHECK, NULL)))
		r = -EPROTO;
	if (!r && !json_is_true(json_object_get(rep, "ok"))) {
		why = json_string_value(json_object_get(rep, "error"));
		if (!why)
			why = "no reason given";
	} else if (!r && json_unpack(rep, "{s:I, s:I, s:I, s:s}", "memory_pages", &pages,
				   "state_bytes", &bytes, "duration_ms", &ms, "state", &state))
		r = -EPROTO;
	/* Only a whole snapshot gets the spec: a directory with vm.json is
	 * one RestoreVm can use. */
	if (!r && !why)
		wr = snapshot__write_spec(op->path, spec);
	pthread_mutex_lock(&d->lock);
	vm = registry__find(d, id);
	if (!vm) {
		ops__fail(d, op, API_NOT_FOUND, "vm %s went away", id);
	} else if (r) {
		ops__fail(d, op, r == -EAGAIN ? API_DEADLINE_EXCEEDED : API_UNAVAILABLE,
			  "vm \"%s\": no answer from vmm to the snapshot command%s: %s",
			  vm->spec->name, r == -EAGAIN ? " in time" : "",
			  r == -EAGAIN ? "it may still be writing" : strerror(-r));
	} else if (why) {
		snapshot__refused(d, op, vm, why);
	} else {
		if (!strcmp(state, "paused") && vm->state == VMMD__V1__VM_STATE__VM_STATE_RUNNING)
			registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_PAUSED,
					    "paused after a snapshot");
		if (wr) {
			ops__fail(d, op, API_INTERNAL,
				  "vm \"%s\": vmm wrote the snapshot but vmmd cannot write %s/%s: "
				  "%s",
				  vm->spec->name, op->path, SNAPSHOT_SPEC, strerror(-wr));
			goto out;
		}
		op->has_result = true;
		op->memory_pages = (uint64_t)pages;
		op->state_bytes = (uint64_t)bytes;
		op->duration_ms = (uint32_t)ms;
		ops__update(d, op, VMMD__V1__OPERATION_STATE__OPERATION_STATE_SUCCEEDED, 100,
			    "snapshot in %s: %llu pages of RAM, %llu bytes of state, %u ms; vm %s",
			    op->path, (unsigned long long)pages, (unsigned long long)bytes,
			    (unsigned int)ms, state);
	}
out:
	json_decref(rep);
	free(cmd);
	if (spec)
		protobuf_c_message_free_unpacked(&spec->base, NULL);
}
