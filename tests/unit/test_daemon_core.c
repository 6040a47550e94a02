/* tests/unit/test_daemon_core.c — the daemon core without workers: spec
 * validation, the one-operation-per-VM rule and state errors through the
 * real handlers, atomic writes, persistence and a corrupt file left out. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "daemon/daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64], kernel[300];

static void cfg_init(struct daemon_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->state_dir, sizeof(c->state_dir), "%s/var", dir);
	snprintf(c->run_dir, sizeof(c->run_dir), "%s/run", dir);
	snprintf(c->vmm_path, sizeof(c->vmm_path), "/bin/false");
	mkdir(c->state_dir, 0700);
	mkdir(c->run_dir, 0700);
	if (!realpath(dir, c->allow[0]))
		abort();
	c->nr_allow = 1;
	c->default_stop_timeout_s = 1;
	c->start_timeout_s = 2;
}

static int setup(void **state)
{
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/test_daemon.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(kernel, sizeof(kernel), "%s/kernel", dir);
	f = fopen(kernel, "w");
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) ? -1 : 0;
}

static Vmmd__V1__VmSpec spec_of(const char *name, const char *k)
{
	Vmmd__V1__VmSpec s = VMMD__V1__VM_SPEC__INIT;

	s.name = (char *)name;
	s.memory_mib = 64;
	s.kernel = (char *)k;
	return s;
}

static void test_validate_rejects_path_outside_allow_dirs(void **state)
{
	struct daemon_config c;
	struct api_error err = { 0 };
	Vmmd__V1__VmSpec s = spec_of("web", "/etc/passwd");

	cfg_init(&c);
	assert_int_not_equal(registry__validate_spec(&c, &s, &err), 0);
	assert_string_equal(err.code, "INVALID_ARGUMENT");
	assert_string_equal(err.field, "spec.kernel");
	assert_non_null(strstr(err.message, "/etc/passwd"));
	s = spec_of("Web", kernel);
	assert_int_not_equal(registry__validate_spec(&c, &s, &err), 0);
	assert_string_equal(err.field, "spec.name");
	s = spec_of("web", kernel);
	s.vcpus = 256;
	assert_int_not_equal(registry__validate_spec(&c, &s, &err), 0);
	assert_string_equal(err.field, "spec.vcpus");
	s = spec_of("web", kernel);
	assert_int_equal(registry__validate_spec(&c, &s, &err), 0);
	assert_int_equal(s.vcpus, 1);
}

static ProtobufCMessage *call(struct daemon *d, const char *name, ProtobufCMessage *req,
			      struct api_error *err)
{
	ProtobufCMessage *resp = NULL;

	memset(err, 0, sizeof(*err));
	if (daemon_service(d)->handler(d, name)(d, req, &resp, err))
		return NULL;
	return resp;
}

static void wait_stopped(struct daemon *d, const char *name)
{
	for (int i = 0; i < 100; i++) {
		pthread_mutex_lock(&d->lock);
		struct vm *vm = registry__find(d, name);
		bool idle = vm && !vm->op_id[0];
		pthread_mutex_unlock(&d->lock);
		if (idle)
			return;
		usleep(20000);
	}
	fail_msg("vm %s never became idle", name);
}

static void test_state_machine_and_persistence(void **state)
{
	static struct daemon d;
	struct daemon_config c;
	struct api_error err;
	Vmmd__V1__VmSpec s = spec_of("web", kernel);
	Vmmd__V1__CreateVmRequest cr = VMMD__V1__CREATE_VM_REQUEST__INIT;
	Vmmd__V1__StopVmRequest st = VMMD__V1__STOP_VM_REQUEST__INIT;
	Vmmd__V1__GetVmRequest gv = VMMD__V1__GET_VM_REQUEST__INIT;
	ProtobufCMessage *r;
	char path[512];
	FILE *f;

	cfg_init(&c);
	assert_int_equal(daemon__init(&d, &c), 0);
	cr.spec = &s;
	r = call(&d, "CreateVm", &cr.base, &err);
	assert_non_null(r);
	protobuf_c_message_free_unpacked(r, NULL);
	assert_null(call(&d, "CreateVm", &cr.base, &err));
	assert_string_equal(err.code, "ALREADY_EXISTS");
	wait_stopped(&d, "web");
	st.id = (char *)"web";
	assert_null(call(&d, "StopVm", &st.base, &err));
	assert_string_equal(err.code, "FAILED_PRECONDITION");
	assert_string_equal(err.message, "vm \"web\" is stopped");
	daemon__fini(&d);

	/* A corrupt file next to the good one: logged and left out. */
	snprintf(path, sizeof(path), "%s/vms/0123.json", c.state_dir);
	f = fopen(path, "w");
	fputs("{\"id\": \"0123\", \"spec\": {\"name\": 5}}", f);
	fclose(f);
	assert_int_equal(daemon__init(&d, &c), 0);
	gv.id = (char *)"web";
	r = call(&d, "GetVm", &gv.base, &err);
	assert_non_null(r);
	assert_int_equal(((Vmmd__V1__Vm *)r)->status->state, VMMD__V1__VM_STATE__VM_STATE_STOPPED);
	protobuf_c_message_free_unpacked(r, NULL);
	pthread_mutex_lock(&d.lock);
	assert_null(d.vms->next);
	pthread_mutex_unlock(&d.lock);
	daemon__fini(&d);
}

static void test_atomic_write_replaces_whole_file(void **state)
{
	char p[512], buf[64] = { 0 };
	FILE *f;

	assert_int_equal(store__write_atomic(dir, "x.json", "first", 5), 0);
	assert_int_equal(store__write_atomic(dir, "x.json", "2nd", 3), 0);
	snprintf(p, sizeof(p), "%s/x.json", dir);
	f = fopen(p, "r");
	assert_non_null(f);
	assert_int_equal(fread(buf, 1, sizeof(buf) - 1, f), 3);
	fclose(f);
	assert_string_equal(buf, "2nd");
	snprintf(p, sizeof(p), "%s/.x.json.tmp", dir);
	assert_int_not_equal(access(p, F_OK), 0);
	assert_int_not_equal(store__write_atomic("/nonexistent-dir", "x", "a", 1), 0);
}

static void test_parse_vm_refuses_garbage(void **state)
{
	char why[128];

	assert_null(store__parse_vm("{", 1, why, sizeof(why)));
	assert_true(why[0] != '\0');
	assert_null(store__parse_vm("{\"id\":\"\"}", 9, why, sizeof(why)));
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_snapshot_dir_checks(void **state)
{
	struct daemon_config c;
	struct api_error err = {0};
	char p[512], out[REGISTRY_PATH_MAX];

	cfg_init(&c);
	assert_int_not_equal(snapshot__check_new(&c, "snap", out, sizeof(out), &err), 0);
	assert_string_equal(err.field, "path");
	assert_non_null(strstr(err.message, "absolute"));
	assert_int_not_equal(snapshot__check_new(&c, "", out, sizeof(out), &err), 0);
	assert_string_equal(err.message, "is required");
	assert_int_not_equal(snapshot__check_new(&c, "/var/tmp/snap", out, sizeof(out), &err), 0);
	assert_non_null(strstr(err.message, "--allow-dir"));
	/* A symlink inside an allowed directory to one outside. */
	snprintf(p, sizeof(p), "%s/out", dir);
	assert_int_equal(symlink("/var/tmp", p), 0);
	assert_int_not_equal(snapshot__check_new(&c, p, out, sizeof(out), &err), 0);
	assert_non_null(strstr(err.message, "--allow-dir"));
	/* A new directory: allowed, trailing '/' dropped. */
	snprintf(p, sizeof(p), "%s/s1//", dir);
	assert_int_equal(snapshot__check_new(&c, p, out, sizeof(out), &err), 0);
	snprintf(p, sizeof(p), "%s/s1", dir);
	assert_string_equal(out, p);
	/* One that holds a snapshot. */
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/s1/memory", dir);
	write_file(p, "");
	snprintf(p, sizeof(p), "%s/s1", dir);
	assert_int_not_equal(snapshot__check_new(&c, p, out, sizeof(out), &err), 0);
	assert_string_equal(err.code, "ALREADY_EXISTS");
	assert_string_equal(err.field, "path");
}

static void test_snapshot_spec_file(void **state)
{
	struct daemon_config c;
	struct api_error err = {0};
	Vmmd__V1__VmSpec *spec = NULL;
	char p[512], sd[128], out[REGISTRY_PATH_MAX], text[1024];

	cfg_init(&c);
	snprintf(sd, sizeof(sd), "%s/s2", dir);
	assert_int_not_equal(snapshot__read_spec(&c, sd, NULL, out, sizeof(out), &spec, &err), 0);
	assert_string_equal(err.field, "path");
	assert_non_null(strstr(err.message, "No such file"));
	assert_int_equal(mkdir(sd, 0700), 0);
	assert_int_not_equal(snapshot__read_spec(&c, sd, NULL, out, sizeof(out), &spec, &err), 0);
	assert_non_null(strstr(err.message, "holds no snapshot"));
	snprintf(p, sizeof(p), "%s/state", sd);
	write_file(p, "x");
	assert_int_not_equal(snapshot__read_spec(&c, sd, NULL, out, sizeof(out), &spec, &err), 0);
	assert_non_null(strstr(err.message, "not a snapshot taken by vmmd"));
	snprintf(p, sizeof(p), "%s/vm.json", sd);
	snprintf(text, sizeof(text),
		 "{\"spec\": {\"name\": \"web\", \"memory_mib\": \"64\", \"kernel\": \"%s\"}}",
		 kernel);
	write_file(p, text);
	assert_int_equal(snapshot__read_spec(&c, sd, NULL, out, sizeof(out), &spec, &err), 0);
	assert_string_equal(spec->name, "web");
	assert_int_equal(spec->memory_mib, 64);
	protobuf_c_message_free_unpacked(&spec->base, NULL);
	assert_int_equal(snapshot__read_spec(&c, sd, "web2", out, sizeof(out), &spec, &err), 0);
	assert_string_equal(spec->name, "web2");
	protobuf_c_message_free_unpacked(&spec->base, NULL);
	assert_int_not_equal(snapshot__read_spec(&c, sd, "Web", out, sizeof(out), &spec, &err), 0);
	assert_string_equal(err.field, "name");
	assert_null(spec);
	/* The saved spec is checked as CreateVm checks one. */
	write_file(p, "{\"spec\": {\"name\": \"web\", \"memory_mib\": \"64\", "
		      "\"kernel\": \"/etc/passwd\"}}");
	assert_int_not_equal(snapshot__read_spec(&c, sd, NULL, out, sizeof(out), &spec, &err), 0);
	assert_string_equal(err.field, "path");
	assert_non_null(strstr(err.message, "vm.json: spec.kernel"));
	write_file(p, "{\"spec\": 5}");
	assert_int_not_equal(snapshot__read_spec(&c, sd, NULL, out, sizeof(out), &spec, &err), 0);
	assert_non_null(strstr(err.message, "vm.json"));
}

/* Through the handlers: the state and name rules of both methods. */
static void test_snapshot_restore_handlers(void **state)
{
	static struct daemon d;
	struct daemon_config c;
	struct api_error err;
	Vmmd__V1__VmSpec s = spec_of("db", kernel);
	Vmmd__V1__CreateVmRequest cr = VMMD__V1__CREATE_VM_REQUEST__INIT;
	Vmmd__V1__SnapshotVmRequest sn = VMMD__V1__SNAPSHOT_VM_REQUEST__INIT;
	Vmmd__V1__RestoreVmRequest rs = VMMD__V1__RESTORE_VM_REQUEST__INIT;
	char p[512], text[1024];

	cfg_init(&c);
	assert_int_equal(daemon__init(&d, &c), 0);
	cr.spec = &s;
	protobuf_c_message_free_unpacked(call(&d, "CreateVm", &cr.base, &err), NULL);
	wait_stopped(&d, "db");
	snprintf(p, sizeof(p), "%s/s3", dir);
	sn.id = (char *)"db";
	sn.path = p;
	assert_null(call(&d, "SnapshotVm", &sn.base, &err));
	assert_string_equal(err.code, "FAILED_PRECONDITION");
	assert_non_null(strstr(err.message, "is stopped"));
	sn.id = (char *)"nope";
	assert_null(call(&d, "SnapshotVm", &sn.base, &err));
	assert_string_equal(err.code, "NOT_FOUND");
	/* s2 of the test before: now a snapshot of a VM named "db". */
	snprintf(p, sizeof(p), "%s/s2/vm.json", dir);
	snprintf(text, sizeof(text),
		 "{\"spec\": {\"name\": \"db\", \"memory_mib\": \"64\", \"kernel\": \"%s\"}}",
		 kernel);
	write_file(p, text);
	snprintf(p, sizeof(p), "%s/s2", dir);
	rs.path = p;
	rs.name = (char *)"";
	assert_null(call(&d, "RestoreVm", &rs.base, &err));
	assert_string_equal(err.code, "ALREADY_EXISTS");
	assert_string_equal(err.field, "name");
	rs.memory_mode = 7;
	assert_null(call(&d, "RestoreVm", &rs.base, &err));
	assert_string_equal(err.field, "memory_mode");
	daemon__fini(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validate_rejects_path_outside_allow_dirs),
		cmocka_unit_test(test_state_machine_and_persistence),
		cmocka_unit_test(test_atomic_write_replaces_whole_file),
		cmocka_unit_test(test_parse_vm_refuses_garbage),
		cmocka_unit_test(test_snapshot_dir_checks),
		cmocka_unit_test(test_snapshot_spec_file),
		cmocka_unit_test(test_snapshot_restore_handlers),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
