/* cli/show.c — tables and field lists from the API's JSON.  Reads the JSON
 * by the field names of api/vmm.proto; a field the daemon leaves out is at
 * its default (api/json.h), shown as "-" or 0. */
#include "cli/show.h"

#include "cli/table.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static json_t *jget(json_t *o, const char *path)
{
	char key[64];

	while (o && *path) {
		size_t n = strcspn(path, ".");

		snprintf(key, sizeof(key), "%.*s", (int)n, path);
		o = json_object_get(o, key);
		path += n + (path[n] == '.');
	}
	return o;
}

const char *jstr(json_t *o, const char *path)
{
	const char *s = json_string_value(jget(o, path));

	return s ? s : "";
}

int64_t jint(json_t *o, const char *path)
{
	json_t *v = jget(o, path);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

const char *show__vm_name(json_t *names, const char *id)
{
	size_t i;
	json_t *vm;

	json_array_foreach(json_object_get(names, "vms"), i,
			   vm) if (!strcmp(jstr(vm, "id"), id)) return jstr(vm, "spec.name");
	return id;
}

static const char *vm_state(json_t *vm, char *buf, size_t len)
{
	/* VM_STATE_UNSPECIFIED is never sent: absent means the first value. */
	fmt__enum(buf, len,
		  *jstr(vm, "status.state") ? jstr(vm, "status.state") : "VM_STATE_UNSPECIFIED",
		  "VM_STATE_");
	return buf;
}

void show__vms(json_t *reply, FILE *out)
{
	static const char *const head[] = {"NAME", "STATE", "VCPUS", "MEMORY", "ID"};
	struct table t;
	json_t *vm;
	size_t i;

	table__init(&t, 5, head);
	json_array_foreach(json_object_get(reply, "vms"), i, vm)
	{
		char state[32], vcpus[16], mem[32];
		const char *row[5] = {jstr(vm, "spec.name"), vm_state(vm, state, sizeof(state)),
				      vcpus, mem, jstr(vm, "id")};

		/* vcpus 0 means 1 (api/vmm.proto) */
		snprintf(vcpus, sizeof(vcpus), "%" PRId64,
			 jint(vm, "spec.vcpus") ? jint(vm, "spec.vcpus") : 1);
		fmt__mib(mem, sizeof(mem), (uint64_t)jint(vm, "spec.memory_mib"));
		table__add(&t, row);
	}
	table__print(&t, out);
	table__free(&t);
}

static void field(FILE *out, const char *name, const char *val)
{
	if (val && *val)
		fprintf(out, "%-10s %s\n", name, val);
}

void show__vm(json_t *vm, FILE *out)
{
	char buf[64], buf2[64];
	json_t *d;
	size_t i;

	field(out, "name:", jstr(vm, "spec.name"));
	field(out, "id:", jstr(vm, "id"));
	field(out, "state:", vm_state(vm, buf, sizeof(buf)));
	field(out, "reason:", jstr(vm, "status.reason"));
	snprintf(buf, sizeof(buf), "%" PRId64, jint(vm, "spec.vcpus") ? jint(vm, "spec.vcpus") : 1);
	field(out, "vcpus:", buf);
	fmt__mib(buf, sizeof(buf), (uint64_t)jint(vm, "spec.memory_mib"));
	field(out, "memory:", buf);
	field(out, "kernel:", jstr(vm, "spec.kernel"));
	field(out, "initrd:", jstr(vm, "spec.initrd"));
	field(out, "cmdline:", jstr(vm, "spec.cmdline"));
	json_array_foreach(json_object_get(jget(vm, "spec"), "disks"), i, d)
	{
		char line[512];

		snprintf(line, sizeof(line), "%s%s", jstr(d, "path"),
			 json_is_true(json_object_get(d, "readonly")) ? " (read-only)" : "");
		snprintf(buf2, sizeof(buf2), "disk %s:", *jstr(d, "id") ? jstr(d, "id") : "");
		if (!*jstr(d, "id"))
			snprintf(buf2, sizeof(buf2), "disk%zu:", i);
		field(out, buf2, line);
	}
	json_array_foreach(json_object_get(jget(vm, "spec"), "nics"), i, d)
	{
		snprintf(buf2, sizeof(buf2), "nic%zu:", i);
		field(out, buf2, json_object_get(d, "tap") ? jstr(d, "tap.name") : "slirp");
	}
	if (json_is_true(jget(vm, "spec.rng")))
		field(out, "rng:", "yes");
	if (jint(vm, "status.pid")) {
		snprintf(buf, sizeof(buf), "%" PRId64, jint(vm, "status.pid"));
		field(out, "pid:", buf);
	}
	json_array_foreach(json_object_get(jget(vm, "status"), "paravisor_devices"), i, d)
	{
		char line[1024];
		int n;

		/* e.g. "pid 812, restarts 1 (last: (pid 790) killed by signal 9 (Killed))" */
		n = snprintf(line, sizeof(line), "pid %" PRId64 ", restarts %" PRId64 "%s",
			     jint(d, "pid"), jint(d, "restarts"),
			     json_is_true(json_object_get(d, "restart")) ? "" : " (restart off)");
		if (*jstr(d, "last_death") && n > 0 && (size_t)n < sizeof(line))
			n += snprintf(line + n, sizeof(line) - (size_t)n, " (last: %s)",
				      jstr(d, "last_death"));
		if (*jstr(d, "failed") && n > 0 && (size_t)n < sizeof(line))
			n += snprintf(line + n, sizeof(line) - (size_t)n, "; failed: %s",
				      jstr(d, "failed"));
		if (!strcmp(jstr(d, "kind"), "nic") && n > 0 && (size_t)n < sizeof(line)) {
			json_t *dr = json_object_get(d, "netstack_draining_pids"), *v;
			size_t k;

			if (jint(d, "netstack_pid"))
				n +=
				    snprintf(line + n, sizeof(line) - (size_t)n,
					     "; netstack pid %" PRId64 ", restarts %" PRId64,
					     jint(d, "netstack_pid"), jint(d, "netstack_restarts"));
			else if (*jstr(d, "netstack_died"))
				n += snprintf(line + n, sizeof(line) - (size_t)n,
					      "; netstack %s: cut off", jstr(d, "netstack_died"));
			json_array_foreach(dr, k, v)
			{
				if (n <= 0 || (size_t)n >= sizeof(line))
					break;
				n += snprintf(line + n, sizeof(line) - (size_t)n, "%s%" PRId64,
					      k ? ", " : "; draining netstack pid ",
					      (int64_t)json_integer_value(v));
			}
		}
		snprintf(buf2, sizeof(buf2), "paravisor %s:", jstr(d, "id"));
		field(out, buf2, line);
	}
	fmt__time_ms(buf, sizeof(buf), jint(vm, "status.created_at_ms"));
	field(out, "created:", buf);
	if (jint(vm, "status.started_at_ms")) {
		fmt__time_ms(buf, sizeof(buf), jint(vm, "status.started_at_ms"));
		field(out, "started:", buf);
	}
	field(out, "operation:", jstr(vm, "status.operation_id"));
}

static const char *op_state(json_t *op, char *buf, size_t len)
{
	fmt__enum(buf, len, *jstr(op, "state") ? jstr(op, "state") : "OPERATION_STATE_UNSPECIFIED",
		  "OPERATION_STATE_");
	return buf;
}

void show__ops(json_t *reply, json_t *names, FILE *out)
{
	static const char *const head[] = {"ID", "KIND", "VM", "STATE", "PROGRESS", "MESSAGE"};
	struct table t;
	json_t *op;
	size_t i;

	table__init(&t, 6, head);
	json_array_foreach(json_object_get(reply, "operations"), i, op)
	{
		char kind[32], state[32], pct[16];
		const char *msg =
		    *jstr(op, "error.message") ? jstr(op, "error.message") : jstr(op, "message");
		const char *row[6] = {jstr(op, "id"),
				      kind,
				      show__vm_name(names, jstr(op, "vm_id")),
				      op_state(op, state, sizeof(state)),
				      pct,
				      msg};

		fmt__enum(kind, sizeof(kind), jstr(op, "kind"), "OPERATION_KIND_");
		snprintf(pct, sizeof(pct), "%" PRId64 "%%", jint(op, "progress_percent"));
		table__add(&t, row);
	}
	table__print(&t, out);
	table__free(&t);
}

const char *show__snapshot(json_t *op, char *buf, size_t len)
{
	if (!*jstr(op, "snapshot.path"))
		return NULL;
	snprintf(buf, len,
		 "%s (%" PRId64 " pages of RAM, %" PRId64 " bytes of state, %" PRId64 " ms)",
		 jstr(op, "snapshot.path"), jint(op, "snapshot.memory_pages"),
		 jint(op, "snapshot.state_bytes"), jint(op, "snapshot.duration_ms"));
	return buf;
}

const char *show__migration(json_t *op, bool rounds, char *buf, size_t len)
{
	json_t *rs = json_object_get(json_object_get(op, "migration"), "round_stats"), *r;
	size_t i, off;

	if (!*jstr(op, "migration.destination"))
		return NULL;
	off = (size_t)snprintf(buf, len,
			       "to %s: %" PRId64 " ms in all (setup %" PRId64 " ms), %" PRId64
			       " ms downtime, %" PRId64 " bytes, %" PRId64 " pages (+%" PRId64
			       " zero), %" PRId64 " rounds",
			       jstr(op, "migration.destination"), jint(op, "migration.total_ms"),
			       jint(op, "migration.setup_ms"), jint(op, "migration.downtime_ms"),
			       jint(op, "migration.bytes"), jint(op, "migration.pages_normal"),
			       jint(op, "migration.pages_zero"), jint(op, "migration.rounds"));
	if (off < len && jint(op, "migration.throughput_bytes_per_s"))
		off += (size_t)snprintf(buf + off, len - off, ", %.1f MB/s",
					(double)jint(op, "migration.throughput_bytes_per_s") / 1e6);
	if (off < len && jint(op, "migration.connections") > 1)
		off += (size_t)snprintf(buf + off, len - off, " on %" PRId64 " connections",
					jint(op, "migration.connections"));
	if (off < len && *jstr(op, "migration.dirty_log"))
		off += (size_t)snprintf(buf + off, len - off, ", dirty %s",
					jstr(op, "migration.dirty_log"));
	if (off < len && jint(op, "migration.thread_nice"))
		off +=
		    (size_t)snprintf(buf + off, len - off, ", migration threads at nice %" PRId64,
				     jint(op, "migration.thread_nice"));
	if (off < len && jint(op, "migration.throttle_percent"))
		off += (size_t)snprintf(buf + off, len - off, ", vCPUs throttled up to %" PRId64 "%%",
					jint(op, "migration.throttle_percent"));
	if (off < len && rounds && jint(op, "migration.downtime_ms"))
		off += (size_t)snprintf(buf + off, len - off,
					"\n  downtime: pause %" PRId64 " ms, state %" PRId64
					" ms, last %" PRId64 " pages %" PRId64
					" ms, destination restore %" PRId64 " ms, GO to running %" PRId64
					" ms",
					jint(op, "migration.downtime.pause_ms"),
					jint(op, "migration.downtime.state_ms"),
					jint(op, "migration.downtime.last_pages"),
					jint(op, "migration.downtime.last_pages_ms"),
					jint(op, "migration.downtime.destination_restore_ms"),
					jint(op, "migration.downtime.go_to_running_ms"));
	json_array_foreach(rs, i, r) {
		if (!rounds || off >= len)
			break;
		off += (size_t)snprintf(buf + off, len - off,
					"\n  round %zu: %" PRId64 " pages in %" PRId64
					" ms, guest dirtied %" PRId64 " pages/s%s",
					i, jint(r, "pages"), jint(r, "ms"),
					jint(r, "dirty_pages_per_s"),
					jint(r, "throttle_percent") ? " (throttled)" : "");
	}
	return buf;
}

const char *show__service(json_t *op, bool devices, char *buf, size_t len)
{
	json_t *ds = json_object_get(json_object_get(op, "service"), "devices"), *dv;
	size_t i, off;

	if (!json_object_get(op, "service"))
		return NULL;
	off = (size_t)snprintf(buf, len, "%s%zu device%s on %s in %" PRId64 " ms",
			       json_is_true(json_object_get(json_object_get(op, "service"),
							    "rolled_back")) ?
				       "rolled back: " :
				       "",
			       json_array_size(ds), json_array_size(ds) == 1 ? "" : "s",
			       jstr(op, "service.paravisor"), jint(op, "service.duration_ms"));
	json_array_foreach(ds, i, dv) {
		if (!devices || off >= len)
			break;
		off += (size_t)snprintf(buf + off, len - off,
					"\n  %s: blackout %" PRId64 " ms, paravisor pid %" PRId64
					" -> %" PRId64,
					jstr(dv, "id"), jint(dv, "blackout_ms"), jint(dv, "old_pid"),
					jint(dv, "new_pid"));
		if (jint(dv, "netstack_new_pid") && off < len)
			off += (size_t)snprintf(
			    buf + off, len - off,
			    ", netstack pid %" PRId64 " -> %" PRId64 " (the old one drains)",
			    jint(dv, "netstack_old_pid"), jint(dv, "netstack_new_pid"));
	}
	return buf;
}

void show__op(json_t *op, FILE *out)
{
	char buf[64], text[1200];

	field(out, "id:", jstr(op, "id"));
	fmt__enum(buf, sizeof(buf), jstr(op, "kind"), "OPERATION_KIND_");
	field(out, "kind:", buf);
	field(out, "vm:", jstr(op, "vm_id"));
	field(out, "state:", op_state(op, buf, sizeof(buf)));
	snprintf(buf, sizeof(buf), "%" PRId64 "%%", jint(op, "progress_percent"));
	field(out, "progress:", buf);
	field(out, "message:", jstr(op, "message"));
	if (*jstr(op, "error.message")) {
		snprintf(text, sizeof(text), "%s%s%s (%s)", jstr(op, "error.field"),
			 *jstr(op, "error.field") ? ": " : "", jstr(op, "error.message"),
			 jstr(op, "error.code"));
		field(out, "error:", text);
	}
	if (show__snapshot(op, text, sizeof(text)))
		field(out, "snapshot:", text);
	if (show__migration(op, false, text, sizeof(text)))
		field(out, "migration:", text);
	if (show__service(op, false, text, sizeof(text)))
		field(out, "service:", text);
	fmt__time_ms(buf, sizeof(buf), jint(op, "created_at_ms"));
	field(out, "created:", buf);
	if (jint(op, "finished_at_ms")) {
		fmt__time_ms(buf, sizeof(buf), jint(op, "finished_at_ms"));
		field(out, "finished:", buf);
	}
}

void show__event(json_t *ev, json_t *names, FILE *out)
{
	char when[32], kind[40], state[32], opstate[32];

	fmt__time_ms(when, sizeof(when), jint(ev, "time_ms"));
	fmt__enum(kind, sizeof(kind), jstr(ev, "kind"), "EVENT_KIND_");
	fmt__enum(state, sizeof(state), jstr(ev, "state"), "VM_STATE_");
	fprintf(out, "%s #%" PRId64 " %s %s", when, jint(ev, "seq"),
		*jstr(ev, "vm_id") ? show__vm_name(names, jstr(ev, "vm_id")) : "-", kind);
	if (*jstr(ev, "state"))
		fprintf(out, " state=%s", state);
	if (*jstr(ev, "operation_id")) {
		fmt__enum(opstate, sizeof(opstate), jstr(ev, "operation_state"),
			  "OPERATION_STATE_");
		fprintf(out, " operation=%s", jstr(ev, "operation_id"));
		if (*jstr(ev, "operation_state"))
			fprintf(out, " (%s)", opstate);
	}
	if (*jstr(ev, "message"))
		fprintf(out, ": %s", jstr(ev, "message"));
	fputc('\n', out);
	fflush(out);
}
