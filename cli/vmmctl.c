/* cli/vmmctl.c — vmmd's command-line client: one subcommand per API method.
 * People get tables and one-line summaries; --json prints the API's JSON as
 * it came, for scripts.  Exit codes: see cli/client.h. */
#include "config.h"

#include "cli/args.h"
#include "cli/client.h"
#include "cli/console.h"
#include "cli/show.h"
#include "cli/table.h"

#include "api/base64.h"
#include "api/json.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void print_json(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
}

/* The id of the VM named by name or id.  vmmd also takes names where it
 * takes ids, but resolving here lets `events` and `operations` filter and
 * print by id.  An unknown name is passed on unchanged, so the daemon's
 * NOT_FOUND message is the one the user sees.  *names gets the listing. */
static int resolve(struct client *c, const char *name, char **id, json_t **names)
{
	json_t *list, *vm;
	size_t i;
	int ret;

	*id = NULL;
	ret = client__route(c, "ListVms", NULL, NULL, &list);
	if (ret == EXIT_UNREACHABLE)
		return ret;
	json_array_foreach(json_object_get(list, "vms"), i,
			   vm) if (!strcmp(jstr(vm, "spec.name"), name) ||
				   !strcmp(jstr(vm, "id"), name)) *id = strdup(jstr(vm, "id"));
	if (!*id)
		*id = strdup(name);
	if (names)
		*names = list;
	else
		json_decref(list);
	return *id ? EXIT_OK : EXIT_API;
}

static bool op_done(json_t *op)
{
	const char *s = jstr(op, "state");

	return !strcmp(s, "OPERATION_STATE_SUCCEEDED") || !strcmp(s, "OPERATION_STATE_FAILED") ||
	       !strcmp(s, "OPERATION_STATE_CANCELLED");
}

/* Polls the operation until it finishes; *op is replaced by the last reply. */
static int wait_op(struct client *c, json_t **op)
{
	const struct timespec tick = {0, 200 * 1000 * 1000};
	char *id = strdup(jstr(*op, "id"));
	int ret = EXIT_OK;

	while (id && *id && !op_done(*op)) {
		json_t *next;

		nanosleep(&tick, NULL);
		ret = client__route(c, "GetOperation", id, NULL, &next);
		if (ret)
			break;
		json_decref(*op);
		*op = next;
	}
	free(id);
	return ret;
}

/* Prints an operation's outcome; nonzero if it failed or was cancelled. */
static int report_op(struct client *c, json_t *op, const char *vm, bool json)
{
	const char *state = jstr(op, "state");
	char st[32], res[8192];

	if (json)
		print_json(op);
	if (!strcmp(state, "OPERATION_STATE_FAILED")) {
		const char *field = jstr(op, "error.field");

		fprintf(stderr, "vmmctl: %s: %s: %s%s%s\n", c->cmd, vm, field, *field ? ": " : "",
			*jstr(op, "error.message") ? jstr(op, "error.message")
						   : "operation failed");
		return EXIT_API;
	}
	if (!strcmp(state, "OPERATION_STATE_CANCELLED")) {
		fprintf(stderr, "vmmctl: %s: %s: operation %s was cancelled\n", c->cmd, vm,
			jstr(op, "id"));
		return EXIT_API;
	}
	if (!json) {
		fmt__enum(st, sizeof(st), *state ? state : "-", "OPERATION_STATE_");
		printf("%s %s: operation %s %s", c->cmd, vm, jstr(op, "id"), st);
		if (show__snapshot(op, res, sizeof(res)) ||
		    show__migration(op, true, res, sizeof(res)) ||
		    show__service(op, true, res, sizeof(res)))
			printf(": %s", res);
		putchar('\n');
	}
	return EXIT_OK;
}

/* start, stop, reboot, pause, resume, delete, create, cancel: all return an
 * Operation, which --wait follows to its end. */
static int action(struct client *c, const struct cli_args *a, const char *route, const char *target,
		  json_t *body)
{
	char *id = NULL;
	json_t *op = NULL;
	int ret;

	if (target) {
		ret = resolve(c, target, &id, NULL);
		if (ret)
			return ret;
	}
	ret = client__route(c, route, id, body, &op);
	if (!ret && a->wait)
		ret = wait_op(c, &op);
	if (!ret)
		ret = report_op(c, op,
				a->target ? a->target
				: a->name ? a->name
				: a->dir  ? a->dir
					  : "-",
				a->json);
	json_decref(op);
	free(id);
	return ret;
}

/* The request body of an action, built from its protobuf message so the
 * field names are the schema's.  dir: the snapshot directory, absolute. */
static json_t *action_body(const struct cli_args *a, char *dir)
{
	Vmmd__V1__StopVmRequest stop = VMMD__V1__STOP_VM_REQUEST__INIT;
	Vmmd__V1__RebootVmRequest reboot = VMMD__V1__REBOOT_VM_REQUEST__INIT;
	Vmmd__V1__DeleteVmRequest del = VMMD__V1__DELETE_VM_REQUEST__INIT;
	Vmmd__V1__SnapshotVmRequest snap = VMMD__V1__SNAPSHOT_VM_REQUEST__INIT;
	Vmmd__V1__RestoreVmRequest rest = VMMD__V1__RESTORE_VM_REQUEST__INIT;
	Vmmd__V1__MigrateVmRequest mig = VMMD__V1__MIGRATE_VM_REQUEST__INIT;
	Vmmd__V1__ServiceVmRequest svc = VMMD__V1__SERVICE_VM_REQUEST__INIT;

	switch (a->cmd) {
	case CLI_SNAPSHOT:
		snap.path = dir;
		snap.paused = a->paused;
		return api_json__from_message(&snap.base);
	case CLI_RESTORE:
		rest.path = dir;
		rest.name = (char *)(a->name ? a->name : "");
		rest.memory_mode = a->lazy ? VMMD__V1__MEMORY_MODE__MEMORY_MODE_LAZY
					   : VMMD__V1__MEMORY_MODE__MEMORY_MODE_COPY;
		return api_json__from_message(&rest.base);
	case CLI_MIGRATE:
		mig.destination = (char *)a->dest;
		mig.downtime_limit_ms = a->downtime_limit_ms;
		mig.bandwidth_limit = a->bandwidth_limit;
		mig.max_rounds = a->max_rounds;
		mig.auto_converge = a->auto_converge;
		mig.connections = a->connections;
		mig.priority = a->priority_equal
				   ? VMMD__V1__MIGRATION_PRIORITY__MIGRATION_PRIORITY_EQUAL
				   : VMMD__V1__MIGRATION_PRIORITY__MIGRATION_PRIORITY_MIGRATION;
		return api_json__from_message(&mig.base);
	case CLI_SERVICE:
		svc.paravisor = (char *)(a->paravisor ? a->paravisor : "");
		svc.netstack = a->netstack;
		return api_json__from_message(&svc.base);
	case CLI_STOP:
		stop.force = a->force;
		stop.timeout_s = a->timeout_s;
		return api_json__from_message(&stop.base);
	case CLI_REBOOT:
		reboot.force = a->force;
		reboot.timeout_s = a->timeout_s;
		return api_json__from_message(&reboot.base);
	case CLI_DELETE: del.force = a->force; return api_json__from_message(&del.base);
	default: return NULL;
	}
}

static int cmd_get(struct client *c, const struct cli_args *a, const char *route)
{
	char *id = NULL, *path;
	json_t *reply = NULL, *names = NULL;
	int ret = EXIT_OK;
	bool by_vm = a->cmd == CLI_GET || a->cmd == CLI_LOGS || a->cmd == CLI_OPERATIONS;
	const char *vm = a->cmd == CLI_OPERATIONS ? a->vm : a->target;
	char tail[16];

	if (by_vm && vm)
		ret = resolve(c, vm, &id, &names);
	if (ret)
		return ret;
	snprintf(tail, sizeof(tail), "%u", a->tail_kib);
	if (a->cmd == CLI_OPERATIONS)
		path = client__path(route, NULL, "vm_id", id, NULL);
	else if (a->cmd == CLI_LOGS)
		path = client__path(route, id, "tail_kib", a->tail_kib ? tail : NULL, NULL);
	else
		path = client__path(route, by_vm ? id : a->target, NULL);
	ret = path ? client__call(c, "GET", path, NULL, &reply) : EXIT_API;
	free(path);
	if (ret)
		goto out;
	if (a->json) {
		print_json(reply);
		goto out;
	}
	switch (a->cmd) {
	case CLI_LIST: show__vms(reply, stdout); break;
	case CLI_GET: show__vm(reply, stdout); break;
	case CLI_OPERATION: show__op(reply, stdout); break;
	case CLI_OPERATIONS:
		if (!names)
			client__route(c, "ListVms", NULL, NULL, &names);
		show__ops(reply, names, stdout);
		break;
	case CLI_LOGS: {
		const char *b64 = jstr(reply, "data");
		uint8_t *data = NULL;
		size_t len = 0;

		if (base64__decode(b64, strlen(b64), &data, &len)) {
			fprintf(stderr, "vmmctl: logs: the console data is not base64\n");
			ret = EXIT_API;
			break;
		}
		if (len) /* data may be NULL for nothing */
			fwrite(data, 1, len, stdout);
		free(data);
		break;
	}
	case CLI_VERSION: {
		printf("vmmd %s (api %s", jstr(reply, "version"), jstr(reply, "api"));
		if (jint(reply, "kvm_api_version"))
			printf(", KVM API %lld", (long long)jint(reply, "kvm_api_version"));
		printf(")\n");
		break;
	}
	default: break;
	}
out:
	json_decref(reply);
	json_decref(names);
	free(id);
	return ret;
}

/* events: server-sent events, "data: {json}" lines ended by a blank line. */
struct sse {
	char line[65536];
	size_t len;
	json_t *names;
	struct client *c;
	bool json;
};

static void sse_event(struct sse *s, const char *data)
{
	json_t *ev = json_loads(data, 0, NULL);

	if (!ev)
		return;
	if (s->json) {
		json_dumpf(ev, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
		putchar('\n');
		fflush(stdout);
	} else {
		/* A VM created after we listed: list again to learn its name. */
		if (*jstr(ev, "vm_id") &&
		    show__vm_name(s->names, jstr(ev, "vm_id")) == jstr(ev, "vm_id")) {
			json_t *names;

			if (!client__route(s->c, "ListVms", NULL, NULL, &names)) {
				json_decref(s->names);
				s->names = names;
			}
		}
		show__event(ev, s->names, stdout);
	}
	json_decref(ev);
}

static int sse_sink(const char *data, size_t len, const char *ct, void *opaque)
{
	struct sse *s = opaque;

	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n') {
			if (s->len + 1 < sizeof(s->line))
				s->line[s->len++] = data[i];
			continue;
		}
		if (s->len && s->line[s->len - 1] == '\r')
			s->len--;
		s->line[s->len] = 0;
		/* One "data:" line per event is all vmmd sends; comments
		 * (":keepalive") and other fields are skipped. */
		if (!strncmp(s->line, "data:", 5))
			sse_event(s, s->line + 5 + (s->line[5] == ' '));
		s->len = 0;
	}
	return 0;
}

static int cmd_events(struct client *c, const struct cli_args *a)
{
	struct sse *s = calloc(1, sizeof(*s));
	char *id = NULL, *path;
	int ret = EXIT_OK;

	if (!s)
		return EXIT_API;
	s->c = c;
	s->json = a->json;
	if (a->vm)
		ret = resolve(c, a->vm, &id, &s->names);
	else
		ret = client__route(c, "ListVms", NULL, NULL, &s->names);
	if (ret == EXIT_UNREACHABLE)
		goto out;
	path = client__path("WatchEvents", NULL, "vm_id", id, NULL);
	ret = path ? client__stream(c, path, sse_sink, s) : EXIT_API;
	free(path);
out:
	json_decref(s->names);
	free(s);
	free(id);
	return ret;
}

/* vmmd wants absolute paths; on the same host, one relative to our
 * directory means what the user meant.  malloc'd; NULL on ENOMEM. */
static char *absolute(const char *path)
{
	char *cwd, *out = NULL;

	if (path[0] == '/')
		return strdup(path);
	cwd = getcwd(NULL, 0);
	if (cwd && asprintf(&out, "%s/%s", cwd, path) < 0)
		out = NULL;
	free(cwd);
	return out;
}

static int run(struct client *c, const struct cli_args *a)
{
	char err[256];
	json_t *body;
	int ret;

	switch (a->cmd) {
	case CLI_CREATE:
		body = cli_spec__create_request(a, err, sizeof(err));
		if (!body) {
			fprintf(stderr, "vmmctl: create: %s\n", err);
			return EXIT_USAGE;
		}
		ret = action(c, a, "CreateVm", NULL, body);
		json_decref(body);
		return ret;
	case CLI_START: return action(c, a, "StartVm", a->target, NULL);
	case CLI_PAUSE: return action(c, a, "PauseVm", a->target, NULL);
	case CLI_RESUME: return action(c, a, "ResumeVm", a->target, NULL);
	case CLI_STOP:
	case CLI_REBOOT:
	case CLI_DELETE:
	case CLI_MIGRATE:
	case CLI_SERVICE:
		body = action_body(a, NULL);
		ret = action(c, a,
			     a->cmd == CLI_STOP	     ? "StopVm"
			     : a->cmd == CLI_REBOOT  ? "RebootVm"
			     : a->cmd == CLI_MIGRATE ? "MigrateVm"
			     : a->cmd == CLI_SERVICE ? "ServiceVm"
						     : "DeleteVm",
			     a->target, body);
		json_decref(body);
		return ret;
	case CLI_SNAPSHOT:
	case CLI_RESTORE: {
		char *dir = absolute(a->dir);

		body = dir ? action_body(a, dir) : NULL;
		ret = body ? action(c, a, a->cmd == CLI_SNAPSHOT ? "SnapshotVm" : "RestoreVm",
				    a->target, body)
			   : EXIT_API;
		json_decref(body);
		free(dir);
		return ret;
	}
	case CLI_CANCEL: {
		json_t *op = NULL;

		ret = client__route(c, "CancelOperation", a->target, NULL, &op);
		if (!ret && a->wait)
			ret = wait_op(c, &op);
		if (!ret && a->json) {
			print_json(op);
		} else if (!ret) {
			char st[32];

			/* The state says whether the cancel took: cancelled, or
			 * finished first. */
			fmt__enum(st, sizeof(st), jstr(op, "state"), "OPERATION_STATE_");
			printf("cancel: operation %s %s\n", a->target, st);
		}
		json_decref(op);
		return ret;
	}
	case CLI_WAIT: {
		json_t *op = NULL;

		ret = client__route(c, "GetOperation", a->target, NULL, &op);
		if (!ret)
			ret = wait_op(c, &op);
		if (!ret)
			ret = report_op(c, op, jstr(op, "vm_id"), a->json);
		json_decref(op);
		return ret;
	}
	case CLI_LIST: return cmd_get(c, a, "ListVms");
	case CLI_GET: return cmd_get(c, a, "GetVm");
	case CLI_OPERATIONS: return cmd_get(c, a, "ListOperations");
	case CLI_OPERATION: return cmd_get(c, a, "GetOperation");
	case CLI_LOGS: return cmd_get(c, a, "GetConsoleLog");
	case CLI_VERSION:
		/* Ours first: it is worth knowing even when vmmd is not there. */
		if (!a->json) {
			printf("vmmctl %s\n", PACKAGE_VERSION);
			fflush(stdout);
		}
		return cmd_get(c, a, "GetVersion");
	case CLI_EVENTS: return cmd_events(c, a);
	case CLI_CONSOLE: {
		char *id = NULL;

		ret = resolve(c, a->target, &id, NULL);
		if (!ret)
			ret = console__run(c, id, a->target);
		free(id);
		return ret;
	}
	default: fputs(cli_usage, stdout); return EXIT_OK;
	}
}

int main(int argc, char **argv)
{
	struct cli_args a;
	struct client c = {0};
	char err[256];
	int ret;

	if (cli_args__parse(&a, argc, argv, err, sizeof(err))) {
		fprintf(stderr, "vmmctl: %s (see vmmctl --help)\n", err);
		return EXIT_USAGE;
	}
	if (a.cmd == CLI_HELP) {
		fputs(cli_usage, stdout);
		return EXIT_OK;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		fprintf(stderr, "vmmctl: cannot initialise libcurl\n");
		return EXIT_API;
	}
	c.socket = client__find_socket(a.socket);
	c.cmd = a.cmd_name;
	ret = run(&c, &a);
	curl_global_cleanup();
	return ret;
}
