/* daemon/migrate_out.c — MigrateVm on the source: ask the destination vmmd
 * to take the VM (its spec, over the mutual-TLS channel), tell our vmm to
 * send it to the data port it names, follow vmm's migrate-status, and once
 * the destination says the guest runs there, stop our vmm and forget the
 * VM.  Until vmm's handover, any failure or a cancel leaves the VM running
 * here (vmm resumes it) and the destination drops what it started. */
#include "daemon/daemon.h"
#include "daemon/migrate.h"
#include "api/json.h"
#include "common/log.h"
#include "common/tcp.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT_HELLO_MS 60000   /* the destination checks the spec, starts vmm */
#define OUT_POLL_MS 500	     /* migrate-status */
#define OUT_CONFIRM_MS 60000 /* the destination's vmm answers as running */
#define OUT_STOP_MS 10000    /* our vmm exits (5) after "stop" */

struct out {
	struct daemon *d;
	struct op *op;
	char id[DAEMON_ID_LEN], name[64];
	struct mchan *c;
	int64_t t0;
	enum api_code code;
	char why[1024];	    /* what failed, for the operation's error */
	char dest_why[300]; /* what the destination said went wrong */
};

/* {"cmd":"migrate-in","id":..,"vm":CreateVmRequest,"disk_sizes":[..],
 *  "thread_nice":N} (a destination before thread_nice ignores it) */
static json_t *out__hello(const char *id, Vmmd__V1__VmSpec *spec, int nice)
{
	Vmmd__V1__CreateVmRequest req = VMMD__V1__CREATE_VM_REQUEST__INIT;
	json_t *sizes = json_array();
	struct stat st;

	req.spec = spec;
	for (size_t i = 0; sizes && i < spec->n_disks; i++)
		json_array_append_new(sizes, json_integer(stat(spec->disks[i]->path, &st) ?
								  -1 :
								  (json_int_t)st.st_size));
	return json_pack("{s:s, s:s, s:o, s:o, s:i}", "cmd", "migrate-in", "id", id, "vm",
			 api_json__from_message(&req.base), "disk_sizes", sizes, "thread_nice",
			 nice);
}

/* vmm's migrate-status into the result (d->lock held). */
static void out__take_status(struct op_migrate *g, json_t *st, uint32_t vmmd_setup_ms)
{
	json_t *rounds = json_object_get(st, "round_stats"), *r;
	size_t i;

#define I(k) ((uint64_t)json_integer_value(json_object_get(st, k)))
	g->has_result = true;
	g->setup_ms = vmmd_setup_ms + (uint32_t)I("setup_ms");
	g->total_ms = vmmd_setup_ms + (uint32_t)I("total_ms");
	g->downtime_ms = (uint32_t)I("downtime_ms");
	g->bytes = I("bytes");
	g->pages_normal = I("pages_normal");
	g->pages_zero = I("pages_zero");
	g->rounds = (uint32_t)I("rounds");
	g->throttle_pct = (uint32_t)I("throttle_percent");
	g->nr_conns = (uint32_t)I("connections");
	g->nice_now = (int)json_integer_value(json_object_get(st, "thread_nice"));
#define D(k) ((uint32_t)json_integer_value(json_object_get(json_object_get(st, "downtime_breakdown"), k)))
	g->dt_pause = D("pause_ms");
	g->dt_state = D("state_ms");
	g->dt_pages = D("last_pages_ms");
	g->dt_last_pages = D("last_pages");
	g->dt_restore = D("destination_restore_ms");
	g->dt_start = D("go_to_running_ms");
#undef D
	/* The transfer alone: vmm's total less its own setup. */
	if (I("total_ms") > I("setup_ms"))
		g->throughput = g->bytes * 1000 / (I("total_ms") - I("setup_ms"));
#undef I
	snprintf(g->dirty_log, sizeof(g->dirty_log), "%s",
		 json_string_value(json_object_get(st, "dirty_log")) ?: "");
	json_array_foreach(rounds, i, r) {
		if (i >= MIGRATE_ROUNDS_KEPT)
			break;
		g->round[i].pages = (uint64_t)json_integer_value(json_object_get(r, "pages"));
		g->round[i].ms = (uint32_t)json_integer_value(json_object_get(r, "ms"));
		g->round[i].dirty_pages_per_s =
			(uint64_t)(json_number_value(json_object_get(r, "dirty_pages_per_s")) + 0.5);
		g->round[i].throttle_pct =
			(uint32_t)json_integer_value(json_object_get(r, "throttle_percent"));
	}
}

/* One control command built from j (consumed); the reply parsed, or NULL
 * with o->why set. */
static json_t *out__vmm(struct out *o, json_t *j, int timeout_ms)
{
	char *cmd = j ? json_dumps(j, JSON_COMPACT) : NULL, reply[16384];
	json_t *rep = NULL;
	int r = cmd ? worker__control(o->d, o->id, cmd, reply, sizeof(reply), timeout_ms) : -ENOMEM;

	json_decref(j);
	free(cmd);
	if (!r && !(rep = json_loads(reply, JSON_DISABLE_EOF_CHECK, NULL)))
		r = -EPROTO;
	if (r)
		snprintf(o->why, sizeof(o->why), "no answer from vmm: %s", strerror(-r));
	return rep;
}

/* A message the destination sent meanwhile (non-blocking): its reason
 * when it gave up. */
static void out__peek_dest(struct out *o)
{
	json_t *m = NULL;

	if (!o->dest_why[0] && !mchan__recv(o->c, &m, 0) && !json_is_true(json_object_get(m, "ok")))
		snprintf(o->dest_why, sizeof(o->dest_why), "%s",
			 json_string_value(json_object_get(m, "error")) ?: "no reason given");
	json_decref(m);
}

/* Connects, sends the spec, returns the destination's data address. */
static int out__setup(struct out *o, Vmmd__V1__VmSpec *spec, char *data, size_t len)
{
	struct op_migrate *g = o->op->mig;
	const struct tls_files tls = { g->cert, g->key, g->ca };
	char host[256], port[16], cwhy[300];
	json_t *hello, *rep = NULL;
	int r;

	o->c = mchan__connect(g->dest, &tls, cwhy, sizeof(cwhy));
	if (!o->c) {
		snprintf(o->why, sizeof(o->why), "cannot reach the destination vmmd at %s: %s",
			 g->dest, cwhy);
		return -ECONNREFUSED;
	}
	hello = out__hello(o->id, spec, g->thread_nice);
	r = hello ? mchan__send(o->c, hello) : -ENOMEM;
	json_decref(hello);
	if (!r)
		r = mchan__recv(o->c, &rep, OUT_HELLO_MS);
	if (r) {
		snprintf(o->why, sizeof(o->why), "the destination vmmd at %s did not answer: %s",
			 g->dest, r == -ECONNRESET ? "connection closed" : strerror(-r));
		return r;
	}
	if (!json_is_true(json_object_get(rep, "ok"))) {
		int c = api_code__from_name(json_string_value(json_object_get(rep, "code")) ?: "");

		o->code = c > 0 ? (enum api_code)c : API_FAILED_PRECONDITION;
		snprintf(o->why, sizeof(o->why), "the destination vmmd at %s refused the VM: %s",
			 g->dest, json_string_value(json_object_get(rep, "error")) ?: "?");
		json_decref(rep);
		return -EPERM;
	}
	tcp__split_addr(g->dest, host, sizeof(host), port, sizeof(port));
	snprintf(data, len, strchr(host, ':') ? "[%s]:%lld" : "%s:%lld", host,
		 (long long)json_integer_value(json_object_get(rep, "data_port")));
	json_decref(rep);
	return 0;
}

/* Follows vmm's migration until it ends; its final status (or NULL). */
static json_t *out__follow(struct out *o, uint32_t vmmd_setup_ms)
{
	struct daemon *d = o->d;
	const char *state = "active", *phase;
	json_t *st = NULL;
	bool cancel_sent = false;
	uint32_t last_rounds = ~0u;
	const char *last_phase = NULL;

	for (;;) {
		struct vm *vm;
		bool cancel, gone, stopping;

		pthread_mutex_lock(&d->lock);
		vm = registry__find(d, o->id);
		cancel = o->op->cancel;
		gone = !vm || vm->pid <= 0;
		stopping = d->stopping;
		pthread_mutex_unlock(&d->lock);
		if (stopping)
			return NULL;
		if (cancel && !cancel_sent) {
			json_decref(out__vmm(o, json_pack("{s:s}", "cmd", "migrate-cancel"), 5000));
			cancel_sent = true;
		}
		json_decref(st);
		st = gone ? NULL : out__vmm(o, json_pack("{s:s}", "cmd", "migrate-status"), 5000);
		if (!st) {
			if (gone)
				snprintf(o->why, sizeof(o->why), "vmm exited during the migration");
			return NULL;
		}
		state = json_string_value(json_object_get(st, "migration")) ?: "?";
		phase = json_string_value(json_object_get(st, "phase")) ?: "";
		pthread_mutex_lock(&d->lock);
		out__take_status(o->op->mig, st, vmmd_setup_ms);
		if (strcmp(state, "active"))
			break; /* unlocks below */
		if (o->op->mig->rounds != last_rounds || !last_phase || strcmp(phase, last_phase)) {
			/* An event per round or phase, not per poll. */
			last_rounds = o->op->mig->rounds;
			last_phase = !strcmp(phase, "stop-and-copy") ? "stop-and-copy" :
				     !strcmp(phase, "pre-copy")	     ? "pre-copy" :
									       "setup";
			ops__update(d, o->op, o->op->state,
				    20 + (last_rounds * 5 > 70 ? 70 : last_rounds * 5),
				    "%s: round %u, %llu bytes sent", phase, last_rounds,
				    (unsigned long long)o->op->mig->bytes);
		}
		pthread_mutex_unlock(&d->lock);
		out__peek_dest(o);
		usleep(OUT_POLL_MS * 1000);
	}
	pthread_mutex_unlock(&d->lock);
	if (strcmp(state, "completed"))
		snprintf(o->why, sizeof(o->why), "%s",
			 json_string_value(json_object_get(st, "error")) ?: state);
	return st;
}

/* After vmm's handover: the destination's word that the guest runs. */
static bool out__confirmed(struct out *o)
{
	json_t *m = NULL;
	bool ok = false;
	int r;

	if (o->dest_why[0]) {
		snprintf(o->why, sizeof(o->why), "the destination gave up: %s", o->dest_why);
		return false;
	}
	r = mchan__recv(o->c, &m, OUT_CONFIRM_MS);
	ok = !r && json_is_true(json_object_get(m, "ok"));
	if (!ok)
		snprintf(o->why, sizeof(o->why), "the destination did not confirm: %s",
			 r ? strerror(-r) :
			     json_string_value(json_object_get(m, "error")) ?: "no reason given");
	json_decref(m);
	return ok;
}

/* Stops our (migrated, paused) vmm and forgets the VM (d->lock held). */
static void out__finish(struct out *o)
{
	struct daemon *d = o->d;
	int64_t end = now_ms() + OUT_STOP_MS;
	struct vm *vm = registry__find(d, o->id);
	char reply[256];

	if (vm)
		vm->stop_wanted = true;
	pthread_mutex_unlock(&d->lock);
	worker__control(d, o->id, "{\"cmd\":\"stop\"}", reply, sizeof(reply), 2000);
	pthread_mutex_lock(&d->lock);
	while ((vm = registry__find(d, o->id)) && vm->pid > 0 && now_ms() < end) {
		struct timespec ts = { (now_ms() + 100) / 1000, ((now_ms() + 100) % 1000) * 1000000 };

		pthread_cond_timedwait(&d->changed, &d->lock, &ts);
	}
	if (vm && vm->pid > 0) {
		pr_warn("vm \"%s\": migrated vmm (pid %d) did not exit; killing it", o->name,
			vm->pid);
		kill(-vm->pid, SIGKILL);
	}
	if (vm)
		registry__remove(d, vm, o->op->id, "migrated away");
}

void migrate_out__run(struct daemon *d, struct op *op, struct vm *vm)
{
	struct out o = { .d = d, .op = op, .code = API_UNAVAILABLE };
	struct op_migrate *g = op->mig;
	Vmmd__V1__VmSpec *spec = (Vmmd__V1__VmSpec *)msg__dup(&vm->spec->base);
	char data[300];
	json_t *rep, *st = NULL;
	uint32_t vmmd_setup_ms = 0;
	bool handed_over = false;

	snprintf(o.id, sizeof(o.id), "%s", vm->id);
	snprintf(o.name, sizeof(o.name), "%s", vm->spec->name);
	o.t0 = now_ms();
	if (!spec || !g) {
		ops__fail(d, op, API_RESOURCE_EXHAUSTED, "out of memory");
		goto out_free;
	}
	registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_MIGRATING, "migrating to %s",
			    g->dest);
	ops__update(d, op, op->state, 5, "asking the destination vmmd at %s to take the VM",
		    g->dest);
	pthread_mutex_unlock(&d->lock);
	if (out__setup(&o, spec, data, sizeof(data)))
		goto out_unlocked;
	rep =
	    out__vmm(&o,
		     json_pack("{s:s, s:s, s:i, s:i, s:I, s:b, s:i, s:i, s:{s:s, s:s, s:s}}", "cmd",
			       "migrate", "destination", data, "downtime_limit_ms",
			       (int)g->downtime_limit_ms, "max_rounds", (int)g->max_rounds,
			       "bandwidth_limit", (json_int_t)g->bandwidth_limit, "auto_converge",
			       g->auto_converge, "connections", (int)g->connections, "thread_nice",
			       g->thread_nice, "tls", "cert", g->cert, "key", g->key, "ca", g->ca),
		     5000);
	if (rep && !json_is_true(json_object_get(rep, "ok")))
		snprintf(o.why, sizeof(o.why), "vmm refused to migrate: %s",
			 json_string_value(json_object_get(rep, "error")) ?: "no reason given");
	json_decref(rep);
	if (o.why[0])
		goto out_unlocked;
	vmmd_setup_ms = (uint32_t)(now_ms() - o.t0);
	pthread_mutex_lock(&d->lock);
	ops__update(d, op, op->state, 15, "vmm sends the VM to %s", data);
	pthread_mutex_unlock(&d->lock);
	st = out__follow(&o, vmmd_setup_ms);
	if (st && !strcmp(json_string_value(json_object_get(st, "migration")) ?: "", "completed"))
		handed_over = true;
out_unlocked:
	if (!handed_over && o.c) {
		/* The destination drops its vmm and the VM. */
		json_t *abort = json_pack("{s:s, s:s}", "cmd", "abort", "error",
					  o.why[0] ? o.why : "cancelled");

		if (abort)
			mchan__send(o.c, abort);
		json_decref(abort);
		out__peek_dest(&o);
	}
	if (handed_over && !out__confirmed(&o)) {
		pthread_mutex_lock(&d->lock);
		vm = registry__find(d, o.id);
		/* vmm never resumes after the handover: the guest is there or
		 * nowhere; a person must look. */
		if (vm)
			registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_FAILED,
					    "migrated to %s, but %s; the guest does not run here "
					    "(paused for good): check the destination, then delete "
					    "this VM",
					    g->dest, o.why);
		ops__fail(d, op, API_UNAVAILABLE, "vm \"%s\": %s", o.name, o.why);
		metrics__migration(d->metrics, false, "failed", g);
		goto out_free;
	}
	pthread_mutex_lock(&d->lock);
	if (d->stopping)
		goto out_free; /* the next vmmd reconciles the operation */
	vm = registry__find(d, o.id);
	if (handed_over) {
		out__finish(&o);
		g->total_ms = (uint32_t)(now_ms() - o.t0);
		ops__update(d, op, VMMD__V1__OPERATION_STATE__OPERATION_STATE_SUCCEEDED, 100,
			    "migrated to %s: %u ms in all, %u ms downtime, %llu bytes, %u rounds",
			    g->dest, g->total_ms, g->downtime_ms, (unsigned long long)g->bytes,
			    g->rounds);
		metrics__migration(d->metrics, false, "succeeded", g);
		goto out_free;
	}
	if (vm && vm->state == VMMD__V1__VM_STATE__VM_STATE_MIGRATING)
		registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_RUNNING,
				    "migration to %s %s", g->dest,
				    op->cancel ? "cancelled" : "failed; running here");
	if (o.dest_why[0] && strlen(o.why) + strlen(o.dest_why) + 20 < sizeof(o.why))
		snprintf(o.why + strlen(o.why), sizeof(o.why) - strlen(o.why),
			 " (destination: %s)", o.dest_why);
	if (op->cancel) {
		ops__update(d, op, VMMD__V1__OPERATION_STATE__OPERATION_STATE_CANCELLED,
			    op->progress, "cancelled; vm \"%s\" runs here", o.name);
		metrics__migration(d->metrics, false, "cancelled", g);
	} else {
		snprintf(op->error.field, sizeof(op->error.field), "destination");
		ops__fail(d, op, o.code, "vm \"%s\" runs here; migration failed: %s", o.name,
			  o.why[0] ? o.why : "unknown reason");
		metrics__migration(d->metrics, false, "failed", g);
	}
out_free:
	json_decref(st);
	mchan__close(o.c);
	if (spec)
		protobuf_c_message_free_unpacked(&spec->base, NULL);
}
