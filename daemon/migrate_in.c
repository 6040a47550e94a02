/* daemon/migrate_in.c — the destination of a live migration: a TCP
 * listener (--migration-listen, mutual TLS 1.3) where a source vmmd offers
 * a VM.  We check its spec against this host, create the VM in state
 * MIGRATING, start `vmm --incoming` on a data port and name that port;
 * the source's vmm sends RAM and state there.  Once our vmm answers as
 * running the VM is RUNNING and the source hears so; if our vmm exits
 * first, or the source aborts, the VM is removed and the source hears why. */
#include "daemon/daemon.h"
#include "daemon/migrate.h"
#include "api/json.h"
#include "common/log.h"
#include "common/tcp.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define IN_HELLO_MS 30000
#define IN_PROBE_MS 500
/* A vmm that neither runs nor exits within this long is killed (it gives
 * up by itself after 10 min without a source, 60 s of silence after). */
#define IN_DEADLINE_MS (3600 * 1000)

struct migrate_in {
	int lfd;
	SSL_CTX *ctx;
	pthread_t thread;
	char host[128]; /* data ports listen here */
};

struct in_conn {
	struct daemon *d;
	int fd;
	char peer[160];
};

static void in__reply_error(struct mchan *c, enum api_code code, const struct api_error *e,
			    const char *msg)
{
	json_t *j = json_pack("{s:b, s:s, s:s, s:s}", "ok", 0, "code", api_code__name(code),
			      "error", msg ? msg : e->message, "field", e ? e->field : "");

	if (j)
		mchan__send(c, j);
	json_decref(j);
}

/* A free data port (d->lock held): not used by another incoming VM, and
 * bindable now (vmm binds it a moment later). */
static int in__pick_port(struct daemon *d, unsigned int *port)
{
	for (unsigned int p = d->cfg.migration_port_lo; p <= d->cfg.migration_port_hi; p++) {
		char addr[200], why[200];
		bool used = false;
		int fd;

		for (struct vm *vm = d->vms; vm; vm = vm->next)
			used |= vm->incoming && vm->data_port == p && vm->pid > 0;
		if (used)
			continue;
		snprintf(addr, sizeof(addr), strchr(d->mig_in->host, ':') ? "[%s]:%u" : "%s:%u",
			 d->mig_in->host, p);
		fd = tcp__listen(addr, 1, why, sizeof(why));
		if (fd >= 0) {
			close(fd);
			*port = p;
			return 0;
		}
	}
	return -EADDRINUSE;
}

/* The spec the source sent, checked as CreateVm checks one, plus the disks'
 * sizes against the source's. */
static Vmmd__V1__VmSpec *in__check(struct daemon *d, json_t *hello, struct api_error *err)
{
	ProtobufCMessage *m = NULL;
	Vmmd__V1__CreateVmRequest *req;
	Vmmd__V1__VmSpec *spec;
	json_t *sizes = json_object_get(hello, "disk_sizes");
	char *text = json_dumps(json_object_get(hello, "vm"), JSON_COMPACT);
	struct stat st;

	if (!text || api_json__parse(&vmmd__v1__create_vm_request__descriptor, text, strlen(text),
				     &m, err)) {
		free(text);
		if (!err->code[0])
			api_error__set(err, API_INVALID_ARGUMENT, "vm", "no VM in the request");
		return NULL;
	}
	free(text);
	req = (Vmmd__V1__CreateVmRequest *)m;
	spec = req->spec;
	req->spec = NULL;
	protobuf_c_message_free_unpacked(m, NULL);
	if (!spec) {
		api_error__set(err, API_INVALID_ARGUMENT, "spec", "is required");
		return NULL;
	}
	if (registry__validate_spec(&d->cfg, spec, err))
		goto fail;
	for (size_t i = 0; i < spec->n_disks; i++) {
		json_int_t want = json_integer_value(json_array_get(sizes, i));

		if (!stat(spec->disks[i]->path, &st) && st.st_size != want) {
			char f[64];

			snprintf(f, sizeof(f), "spec.disks[%zu].path", i);
			api_error__set(err, API_FAILED_PRECONDITION, f,
				       "%s is %lld bytes here, %lld on the source",
				       spec->disks[i]->path, (long long)st.st_size,
				       (long long)want);
			goto fail;
		}
	}
	return spec;
fail:
	protobuf_c_message_free_unpacked(&spec->base, NULL);
	return NULL;
}

/* The nice value the source asked for the migration's threads; the
 * default where it did not say (a vmmd from before MigrationPriority). */
static int in__nice(json_t *hello)
{
	json_t *n = json_object_get(hello, "thread_nice");
	json_int_t v = json_is_integer(n) ? json_integer_value(n) : MIGRATE_THREAD_NICE;

	return v < -20 || v > 19 ? MIGRATE_THREAD_NICE : (int)v;
}

/* The VM record and its vmm --incoming (d->lock held).  The spec is taken
 * over. */
static struct vm *in__create(struct daemon *d, const char *id, Vmmd__V1__VmSpec *spec,
			     const char *peer, int nice, struct op **op, struct api_error *err)
{
	struct vm *vm, *other;
	char addr[200], why[256];
	unsigned int port = 0;

	if ((other = registry__find(d, spec->name)) || (other = registry__find(d, id))) {
		api_error__set(err, API_ALREADY_EXISTS, "spec.name",
			       "vm \"%s\" already exists on the destination (id %s)",
			       other->spec->name, other->id);
		goto fail;
	}
	if (strlen(id) != DAEMON_ID_LEN - 1 || strchr(id, '/')) {
		api_error__set(err, API_INVALID_ARGUMENT, "id", "not a VM id");
		goto fail;
	}
	if (in__pick_port(d, &port)) {
		api_error__set(err, API_RESOURCE_EXHAUSTED, NULL,
			       "no free migration data port in %u-%u on the destination",
			       d->cfg.migration_port_lo, d->cfg.migration_port_hi);
		goto fail;
	}
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
		goto fail;
	}
	/* The VM keeps its id (and name): it is the same machine. */
	snprintf(vm->id, sizeof(vm->id), "%s", id);
	vm->spec = spec;
	vm->state = VMMD__V1__VM_STATE__VM_STATE_MIGRATING;
	snprintf(vm->reason, sizeof(vm->reason), "arriving from %s", peer);
	vm->created_at_ms = vm->updated_at_ms = now_ms();
	vm->incoming = true;
	vm->data_port = port;
	if (store__save_vm(d, vm)) {
		api_error__set(err, API_UNAVAILABLE, NULL, "cannot persist the VM in %s/vms",
			       d->cfg.state_dir);
		vm__free(vm);
		return NULL;
	}
	vm->next = d->vms;
	d->vms = vm;
	events__emit(d->events, vm->id, VMMD__V1__EVENT_KIND__EVENT_KIND_VM_CREATED, vm->state,
		     NULL, 0, "vm \"%s\" arriving from %s", spec->name, peer);
	if (ops__begin(d, vm, VMMD__V1__OPERATION_KIND__OPERATION_KIND_MIGRATE, op, err)) {
		registry__remove(d, vm, NULL, "discarded: no operation");
		return NULL;
	}
	ops__update(d, *op, (*op)->state, 10, "incoming from %s on data port %u", peer, port);
	snprintf(addr, sizeof(addr), strchr(d->mig_in->host, ':') ? "[%s]:%u" : "%s:%u",
		 d->mig_in->host, port);
	const struct worker_restore in = {.incoming = addr,
					  .cert = d->cfg.migration_cert,
					  .key = d->cfg.migration_key,
					  .ca = d->cfg.migration_ca,
					  .incoming_nice = nice};
	if (worker__spawn(d, vm, &in, why, sizeof(why))) {
		api_error__set(err, API_INTERNAL, NULL, "cannot start vmm on the destination: %s",
			       why);
		ops__fail(d, *op, API_INTERNAL, "%s", err->message);
		registry__remove(d, vm, (*op)->id, "discarded: vmm did not start");
		return NULL;
	}
	return vm;
fail:
	protobuf_c_message_free_unpacked(&spec->base, NULL);
	return NULL;
}

/* Whether a socket listens on TCP port in our network namespace (vmm's
 * --incoming, before the source may connect: a probe connection would be
 * the one peer vmm accepts). */
static bool in__port_listens(unsigned int port)
{
	static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	char line[512], want[16];
	bool found = false;

	snprintf(want, sizeof(want), ":%04X ", port);
	for (size_t i = 0; i < 2 && !found; i++) {
		FILE *f = fopen(files[i], "re");

		while (f && !found && fgets(line, sizeof(line), f)) {
			/* sl local_address rem_address st: "0: 0100007F:B8CF 00000000:0000 0A" */
			char *local = strchr(line, ':'), *st;

			if (!local || !(local = strchr(local + 1, ':')) || strncmp(local, want, 6))
				continue;
			st = local + 6;
			st += strspn(st, " ");
			st += strcspn(st, " "); /* the remote address */
			st += strspn(st, " ");
			found = !strncmp(st, "0A", 2);
		}
		if (f)
			fclose(f);
	}
	return found;
}

/* Waits until vmm listens on its data port (true), or exits. */
static bool in__wait_listening(struct daemon *d, const char *id, unsigned int port)
{
	int64_t end = now_ms() + (int64_t)d->cfg.start_timeout_s * 1000;

	while (now_ms() < end) {
		struct vm *vm;
		bool alive;

		if (in__port_listens(port))
			return true;
		pthread_mutex_lock(&d->lock);
		vm = registry__find(d, id);
		alive = vm && vm->pid > 0 && vm->state == VMMD__V1__VM_STATE__VM_STATE_MIGRATING;
		pthread_mutex_unlock(&d->lock);
		if (!alive)
			return false;
		usleep(20 * 1000);
	}
	return false;
}

/* Waits until our vmm runs (true) or is gone; why says why not. */
static bool in__wait(struct in_conn *ic, struct mchan *c, const char *id, char *why,
		     size_t wlen)
{
	struct daemon *d = ic->d;
	int64_t end = now_ms() + IN_DEADLINE_MS;
	bool chan_open = true;

	for (;;) {
		char reply[512];
		json_t *m = NULL;
		struct vm *vm;
		pid_t pid;
		int r;

		pthread_mutex_lock(&d->lock);
		vm = registry__find(d, id);
		if (!vm || vm->state != VMMD__V1__VM_STATE__VM_STATE_MIGRATING || d->stopping) {
			snprintf(why, wlen, "%s", !vm ? "the VM was deleted" :
					  d->stopping ? "the destination vmmd is stopping" :
							vm->reason);
			pthread_mutex_unlock(&d->lock);
			return false;
		}
		pid = vm->pid;
		pthread_mutex_unlock(&d->lock);
		/* The source gives up (failed, cancelled): our vmm goes. */
		r = chan_open ? mchan__recv(c, &m, 0) : -ETIMEDOUT;
		if (!r && !strcmp(json_string_value(json_object_get(m, "cmd")) ?: "", "abort")) {
			pr_info("migration in from %s: the source aborted: %s", ic->peer,
				json_string_value(json_object_get(m, "error")) ?: "?");
			if (pid > 0)
				kill(-pid, SIGKILL);
		}
		json_decref(m);
		if (r == -ECONNRESET || r == -EPROTO)
			chan_open = false; /* our vmm ends on its own if the source does */
		if (now_ms() > end && pid > 0)
			kill(-pid, SIGKILL);
		r = worker__control(d, id, "{\"cmd\":\"status\"}", reply, sizeof(reply),
				    IN_PROBE_MS);
		if (!r && strstr(reply, "\"ok\":true") && strstr(reply, "\"state\":\"running\""))
			return true;
		usleep(200 * 1000);
	}
}

static void *in__serve(void *arg)
{
	struct in_conn *ic = arg;
	struct daemon *d = ic->d;
	struct api_error err = { 0 };
	char why[300], id[DAEMON_ID_LEN] = "", op_id[DAEMON_ID_LEN] = "";
	struct mchan *c = mchan__server(ic->fd, d->mig_in->ctx, why, sizeof(why));
	Vmmd__V1__VmSpec *spec = NULL;
	json_t *hello = NULL, *ok;
	struct op *op = NULL;
	struct vm *vm;
	bool runs;

	if (!c) {
		pr_warn("migration in from %s: refused: %s", ic->peer, why);
		goto out;
	}
	if (mchan__recv(c, &hello, IN_HELLO_MS) ||
	    strcmp(json_string_value(json_object_get(hello, "cmd")) ?: "", "migrate-in") ||
	    !json_string_value(json_object_get(hello, "id"))) {
		pr_warn("migration in from %s: no migrate-in request", ic->peer);
		goto out;
	}
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(hello, "id")));
	spec = in__check(d, hello, &err);
	if (!spec) {
		pr_warn("migration in from %s: refused: %s: %s", ic->peer, err.field, err.message);
		in__reply_error(c, api_error__code(&err) > 0 ? api_error__code(&err) :
							       API_INVALID_ARGUMENT,
				&err, NULL);
		goto out;
	}
	pthread_mutex_lock(&d->lock);
	vm = in__create(d, id, spec, ic->peer, in__nice(hello), &op, &err);
	if (vm)
		snprintf(op_id, sizeof(op_id), "%s", op->id);
	ok = vm ? json_pack("{s:b, s:i, s:s}", "ok", 1, "data_port", (int)vm->data_port, "vm_id",
			    vm->id) :
		  NULL;
	pthread_mutex_unlock(&d->lock);
	if (!vm) {
		pr_warn("migration in from %s: refused: %s", ic->peer, err.message);
		in__reply_error(c, api_error__code(&err) > 0 ? api_error__code(&err) : API_INTERNAL,
				&err, NULL);
		goto out;
	}
	/* The source's vmm connects as soon as it hears the port. */
	if (ok && in__wait_listening(d, id, (unsigned int)json_integer_value(
						    json_object_get(ok, "data_port"))))
		mchan__send(c, ok);
	json_decref(ok);
	runs = in__wait(ic, c, id, why, sizeof(why));
	pthread_mutex_lock(&d->lock);
	op = ops__find(d, op_id);
	vm = registry__find(d, id);
	if (d->stopping) {
		pthread_mutex_unlock(&d->lock);
		goto out;
	}
	if (runs && vm) {
		vm->incoming = false;
		registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_RUNNING,
				    "migrated in from %s", ic->peer);
		vm->started_at_ms = now_ms();
		console__start(d, vm);
		if (op)
			ops__update(d, op, VMMD__V1__OPERATION_STATE__OPERATION_STATE_SUCCEEDED,
				    100, "migrated in from %s, running", ic->peer);
		metrics__migration(d->metrics, true, "succeeded", NULL);
	} else {
		if (vm)
			registry__remove(d, vm, op_id, "discarded: the migration did not arrive");
		if (op)
			ops__fail(d, op, API_UNAVAILABLE, "migration in from %s failed: %s",
				  ic->peer, why);
		metrics__migration(d->metrics, true, "failed", NULL);
	}
	pthread_mutex_unlock(&d->lock);
	ok = runs ? json_pack("{s:b, s:s}", "ok", 1, "state", "running") :
		    json_pack("{s:b, s:s}", "ok", 0, "error", why);
	if (ok)
		mchan__send(c, ok);
	json_decref(ok);
out:
	json_decref(hello);
	mchan__close(c);
	pthread_mutex_lock(&d->lock);
	d->nr_threads--;
	pthread_cond_broadcast(&d->changed);
	pthread_mutex_unlock(&d->lock);
	free(ic);
	return NULL;
}

static void *in__accept(void *arg)
{
	struct daemon *d = arg;
	struct migrate_in *mi = d->mig_in;

	for (;;) {
		struct pollfd p = { .fd = mi->lfd, .events = POLLIN };
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char host[128] = "?", port[16] = "?";
		struct in_conn *ic;
		pthread_t t;
		bool stop;
		int fd;

		pthread_mutex_lock(&d->lock);
		stop = d->stopping;
		pthread_mutex_unlock(&d->lock);
		if (stop)
			return NULL;
		if (poll(&p, 1, 300) <= 0)
			continue;
		fd = accept4(mi->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		ic = calloc(1, sizeof(*ic));
		if (!ic) {
			close(fd);
			continue;
		}
		getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
			    NI_NUMERICHOST | NI_NUMERICSERV);
		snprintf(ic->peer, sizeof(ic->peer), "%s:%s", host, port);
		ic->d = d;
		ic->fd = fd;
		pthread_mutex_lock(&d->lock);
		d->nr_threads++;
		pthread_mutex_unlock(&d->lock);
		if (pthread_create(&t, NULL, in__serve, ic)) {
			pthread_mutex_lock(&d->lock);
			d->nr_threads--;
			pthread_mutex_unlock(&d->lock);
			close(fd);
			free(ic);
			continue;
		}
		pthread_detach(t);
	}
}

int migrate_in__start(struct daemon *d)
{
	const struct tls_files tls = { d->cfg.migration_cert, d->cfg.migration_key,
				       d->cfg.migration_ca };
	struct migrate_in *mi;
	char port[16], why[300];

	if (!d->cfg.migration_listen[0])
		return 0;
	mi = calloc(1, sizeof(*mi));
	if (!mi)
		return -ENOMEM;
	mi->lfd = -1;
	tcp__split_addr(d->cfg.migration_listen, mi->host, sizeof(mi->host), port, sizeof(port));
	mi->ctx = tls__ctx_new(&tls, true, why, sizeof(why));
	if (!mi->ctx)
		goto fail;
	SSL_CTX_set_num_tickets(mi->ctx, 0);
	mi->lfd = tcp__listen(d->cfg.migration_listen, 8, why, sizeof(why));
	if (mi->lfd < 0)
		goto fail;
	d->mig_in = mi;
	if (pthread_create(&mi->thread, NULL, in__accept, d)) {
		d->mig_in = NULL;
		snprintf(why, sizeof(why), "cannot start a thread");
		goto fail;
	}
	pr_info("migration listener on %s (mutual TLS), data ports %u-%u",
		d->cfg.migration_listen, d->cfg.migration_port_lo, d->cfg.migration_port_hi);
	return 0;
fail:
	pr_err("--migration-listen %s: %s", d->cfg.migration_listen, why);
	if (mi->lfd >= 0)
		close(mi->lfd);
	SSL_CTX_free(mi->ctx);
	free(mi);
	return -EINVAL;
}

/* After d->stopping is set. */
void migrate_in__stop(struct daemon *d)
{
	struct migrate_in *mi = d->mig_in;

	if (!mi)
		return;
	pthread_join(mi->thread, NULL);
	close(mi->lfd);
	SSL_CTX_free(mi->ctx); /* connections hold their own reference */
	d->mig_in = NULL;
	free(mi);
}
