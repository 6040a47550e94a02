/* tests/unit/test_api_json.c — protobuf-c messages to and from JSON (api/json.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/json.h"
#include "api/vmm.pb-c.h"

#define DESC(name) (&vmmd__v1__##name##__descriptor)

static char *to_text(const void *m)
{
	json_t *j = api_json__from_message(m);
	char *text;

	assert_non_null(j);
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	assert_non_null(text);
	return text;
}

static void *parse_ok(const ProtobufCMessageDescriptor *d, const char *text)
{
	struct api_error err;
	ProtobufCMessage *m = (void *)1;
	int r = api_json__parse(d, text, strlen(text), &m, &err);

	if (r)
		print_message("unexpected error: %s: %s: %s\n", err.code, err.field, err.message);
	assert_int_equal(r, 0);
	assert_non_null(m);
	assert_ptr_equal(m->descriptor, d);
	return m;
}

/* Parses text, expects it to fail for field with message, and that nothing
 * half-built is left (ASan's leak check sees the rest). */
static void expect_error(const ProtobufCMessageDescriptor *d, const char *text, const char *field,
			 const char *message)
{
	struct api_error err;
	ProtobufCMessage *m = (void *)1;
	int r = api_json__parse(d, text, strlen(text), &m, &err);

	if (!r)
		print_message("accepted: %s\n", text);
	assert_int_equal(r, -EINVAL);
	assert_null(m);
	assert_string_equal(err.code, "INVALID_ARGUMENT");
	assert_string_equal(err.field, field);
	assert_string_equal(err.message, message);
}

static void expect_text(const void *m, const char *expected)
{
	char *text = to_text(m);

	assert_string_equal(text, expected);
	free(text);
}

/* Packs both messages to the wire format and compares the bytes. */
static void assert_same_message(const void *a, const void *b)
{
	size_t la = protobuf_c_message_get_packed_size(a),
	       lb = protobuf_c_message_get_packed_size(b);
	uint8_t *pa = malloc(la + 1), *pb = malloc(lb + 1);

	assert_int_equal(la, lb);
	protobuf_c_message_pack(a, pa);
	protobuf_c_message_pack(b, pb);
	assert_memory_equal(pa, pb, la);
	free(pa);
	free(pb);
}

static const char full_request[] =
    "{\"spec\":{\"name\":\"web\",\"vcpus\":4,\"memory_mib\":\"8589934592\","
    "\"kernel\":\"/srv/vmlinuz\",\"initrd\":\"/srv/initrd.img\",\"cmdline\":\"console=ttyS0 "
    "quiet\","
    "\"disks\":[{\"id\":\"root\",\"path\":\"/srv/root.raw\"},"
    "{\"id\":\"data\",\"path\":\"/srv/"
    "data.raw\",\"readonly\":true,\"cache\":\"CACHE_NONE\",\"queues\":4}],"
    "\"nics\":[{\"id\":\"eth0\",\"slirp\":{\"host_forwards\":[{\"host_port\":2222,\"guest_port\":"
    "22},"
    "{\"protocol\":\"PROTOCOL_UDP\",\"host_addr\":\"0.0.0.0\",\"host_port\":5353,\"guest_port\":53}"
    "]}},"
    "{\"tap\":{\"name\":\"tap0\"},\"mac\":\"52:54:00:12:34:56\"}],"
    "\"serial\":{\"kind\":\"SERIAL_KIND_FILE\",\"path\":\"/var/log/web.log\"},"
    "\"console\":{\"kind\":\"SERIAL_KIND_UNIX\",\"path\":\"/run/web.sock\"},"
    "\"rng\":true,\"on_reboot\":\"ON_REBOOT_STOP\",\"stop_timeout_s\":60},"
    "\"start\":true}";

/* Builds full_request by hand, so the test does not only check that the
 * converter agrees with itself. */
static void test_json_writes_full_create_vm_request(void **state)
{
	Vmmd__V1__CreateVmRequest req = VMMD__V1__CREATE_VM_REQUEST__INIT;
	Vmmd__V1__VmSpec spec = VMMD__V1__VM_SPEC__INIT;
	Vmmd__V1__Disk root = VMMD__V1__DISK__INIT, data = VMMD__V1__DISK__INIT;
	Vmmd__V1__Disk *disks[] = {&root, &data};
	Vmmd__V1__HostFwd ssh = VMMD__V1__HOST_FWD__INIT, dns = VMMD__V1__HOST_FWD__INIT;
	Vmmd__V1__HostFwd *fwds[] = {&ssh, &dns};
	Vmmd__V1__Slirp slirp = VMMD__V1__SLIRP__INIT;
	Vmmd__V1__Tap tap = VMMD__V1__TAP__INIT;
	Vmmd__V1__Nic eth0 = VMMD__V1__NIC__INIT, eth1 = VMMD__V1__NIC__INIT;
	Vmmd__V1__Nic *nics[] = {&eth0, &eth1};
	Vmmd__V1__Serial serial = VMMD__V1__SERIAL__INIT, console = VMMD__V1__SERIAL__INIT;

	root.id = "root";
	root.path = "/srv/root.raw";
	data.id = "data";
	data.path = "/srv/data.raw";
	data.readonly = 1;
	data.cache = VMMD__V1__CACHE__CACHE_NONE;
	data.queues = 4;
	ssh.host_port = 2222;
	ssh.guest_port = 22;
	dns.protocol = VMMD__V1__PROTOCOL__PROTOCOL_UDP;
	dns.host_addr = "0.0.0.0";
	dns.host_port = 5353;
	dns.guest_port = 53;
	slirp.n_host_forwards = 2;
	slirp.host_forwards = fwds;
	eth0.id = "eth0";
	eth0.backend_case = VMMD__V1__NIC__BACKEND_SLIRP;
	eth0.slirp = &slirp;
	tap.name = "tap0";
	eth1.backend_case = VMMD__V1__NIC__BACKEND_TAP;
	eth1.tap = &tap;
	eth1.mac = "52:54:00:12:34:56";
	serial.kind = VMMD__V1__SERIAL_KIND__SERIAL_KIND_FILE;
	serial.path = "/var/log/web.log";
	console.kind = VMMD__V1__SERIAL_KIND__SERIAL_KIND_UNIX;
	console.path = "/run/web.sock";
	spec.name = "web";
	spec.vcpus = 4;
	spec.memory_mib = 8589934592ULL; /* beyond 32 bits */
	spec.kernel = "/srv/vmlinuz";
	spec.initrd = "/srv/initrd.img";
	spec.cmdline = "console=ttyS0 quiet";
	spec.n_disks = 2;
	spec.disks = disks;
	spec.n_nics = 2;
	spec.nics = nics;
	spec.serial = &serial;
	spec.console = &console;
	spec.rng = 1;
	spec.on_reboot = VMMD__V1__ON_REBOOT__ON_REBOOT_STOP;
	spec.stop_timeout_s = 60;
	req.spec = &spec;
	req.start = 1;

	expect_text(&req, full_request);
}

/* JSON -> message -> JSON gives the same text, and the message is the one
 * the wire format round-trips. */
static void test_json_round_trips_full_create_vm_request(void **state)
{
	Vmmd__V1__CreateVmRequest *req = parse_ok(DESC(create_vm_request), full_request), *again;
	size_t len = protobuf_c_message_get_packed_size(&req->base);
	uint8_t *wire = malloc(len);

	assert_non_null(req->spec);
	assert_string_equal(req->spec->name, "web");
	assert_int_equal(req->spec->memory_mib, 8589934592ULL);
	assert_int_equal(req->spec->n_disks, 2);
	assert_string_equal(req->spec->disks[1]->path, "/srv/data.raw");
	assert_true(req->spec->disks[1]->readonly);
	assert_int_equal(req->spec->disks[1]->cache, VMMD__V1__CACHE__CACHE_NONE);
	assert_int_equal(req->spec->n_nics, 2);
	assert_int_equal(req->spec->nics[0]->backend_case, VMMD__V1__NIC__BACKEND_SLIRP);
	assert_int_equal(req->spec->nics[0]->slirp->n_host_forwards, 2);
	assert_int_equal(req->spec->nics[0]->slirp->host_forwards[1]->protocol,
			 VMMD__V1__PROTOCOL__PROTOCOL_UDP);
	assert_int_equal(req->spec->nics[1]->backend_case, VMMD__V1__NIC__BACKEND_TAP);
	assert_string_equal(req->spec->nics[1]->tap->name, "tap0");
	assert_int_equal(req->spec->serial->kind, VMMD__V1__SERIAL_KIND__SERIAL_KIND_FILE);
	assert_int_equal(req->spec->on_reboot, VMMD__V1__ON_REBOOT__ON_REBOOT_STOP);
	assert_true(req->start);
	expect_text(req, full_request);

	protobuf_c_message_pack(&req->base, wire);
	again = vmmd__v1__create_vm_request__unpack(NULL, len, wire);
	assert_non_null(again);
	assert_same_message(req, again);
	expect_text(again, full_request);
	vmmd__v1__create_vm_request__free_unpacked(again, NULL);
	free(wire);
	protobuf_c_message_free_unpacked(&req->base, NULL);
}

static void test_json_omits_defaults(void **state)
{
	Vmmd__V1__VmSpec spec = VMMD__V1__VM_SPEC__INIT;
	Vmmd__V1__Disk disk = VMMD__V1__DISK__INIT;
	Vmmd__V1__Nic nic = VMMD__V1__NIC__INIT;
	Vmmd__V1__Slirp slirp = VMMD__V1__SLIRP__INIT;
	Vmmd__V1__VmStatus status = VMMD__V1__VM_STATUS__INIT;
	Vmmd__V1__GetConsoleLogResponse log = VMMD__V1__GET_CONSOLE_LOG_RESPONSE__INIT;

	expect_text(&spec, "{}");
	spec.name = "";	   /* empty string, as protobuf-c may leave it */
	spec.disks = NULL; /* no array */
	expect_text(&spec, "{}");
	disk.path = "/a"; /* cache CACHE_WRITEBACK (0), readonly false, queues 0 */
	expect_text(&disk, "{\"path\":\"/a\"}");
	/* a oneof member that is set is written even when empty */
	nic.backend_case = VMMD__V1__NIC__BACKEND_SLIRP;
	nic.slirp = &slirp;
	expect_text(&nic, "{\"slirp\":{}}");
	status.state = VMMD__V1__VM_STATE__VM_STATE_UNSPECIFIED;
	expect_text(&status, "{}");
	expect_text(&log, "{}"); /* empty bytes, false bool */
}

static void test_json_writes_64_bit_integers_as_strings(void **state)
{
	Vmmd__V1__VmStatus status = VMMD__V1__VM_STATUS__INIT;
	Vmmd__V1__Event event = VMMD__V1__EVENT__INIT;

	status.state = VMMD__V1__VM_STATE__VM_STATE_RUNNING;
	status.created_at_ms = 1700000000123LL;
	status.pid = 4242; /* int32: a number */
	expect_text(
	    &status,
	    "{\"state\":\"VM_STATE_RUNNING\",\"created_at_ms\":\"1700000000123\",\"pid\":4242}");
	event.seq = UINT64_MAX;
	event.time_ms = INT64_MIN;
	expect_text(&event,
		    "{\"seq\":\"18446744073709551615\",\"time_ms\":\"-9223372036854775808\"}");
}

static void test_json_accepts_integers_as_numbers_or_strings(void **state)
{
	Vmmd__V1__VmSpec *spec;
	Vmmd__V1__Event *event;

	spec =
	    parse_ok(DESC(vm_spec), "{\"vcpus\":\"2\",\"memory_mib\":512,\"stop_timeout_s\":3.0}");
	assert_int_equal(spec->vcpus, 2);
	assert_int_equal(spec->memory_mib, 512);
	assert_int_equal(spec->stop_timeout_s, 3);
	protobuf_c_message_free_unpacked(&spec->base, NULL);

	spec = parse_ok(DESC(vm_spec),
			"{\"vcpus\":4294967295,\"memory_mib\":\"18446744073709551615\"}");
	assert_int_equal(spec->vcpus, UINT32_MAX);
	assert_true(spec->memory_mib == UINT64_MAX);
	protobuf_c_message_free_unpacked(&spec->base, NULL);

	event = parse_ok(DESC(event), "{\"seq\":\"0\",\"time_ms\":\"-9223372036854775808\"}");
	assert_true(event->time_ms == INT64_MIN);
	protobuf_c_message_free_unpacked(&event->base, NULL);
	event = parse_ok(DESC(event), "{\"time_ms\":-5}");
	assert_true(event->time_ms == -5);
	protobuf_c_message_free_unpacked(&event->base, NULL);
}

static void test_json_accepts_enum_names_and_numbers(void **state)
{
	Vmmd__V1__Disk *disk;

	disk = parse_ok(DESC(disk), "{\"cache\":\"CACHE_NONE\"}");
	assert_int_equal(disk->cache, VMMD__V1__CACHE__CACHE_NONE);
	protobuf_c_message_free_unpacked(&disk->base, NULL);
	disk = parse_ok(DESC(disk), "{\"cache\":1}");
	assert_int_equal(disk->cache, VMMD__V1__CACHE__CACHE_NONE);
	protobuf_c_message_free_unpacked(&disk->base, NULL);
}

static void test_json_null_is_the_default(void **state)
{
	Vmmd__V1__CreateVmRequest *req;

	req = parse_ok(DESC(create_vm_request),
		       "{\"spec\":{\"name\":null,\"vcpus\":null,\"disks\":null,\"serial\":null,"
		       "\"nics\":[{\"slirp\":null,\"tap\":{\"name\":\"t\"}}]},\"start\":null}");
	assert_string_equal(req->spec->name, "");
	assert_int_equal(req->spec->n_disks, 0);
	assert_null(req->spec->serial);
	assert_int_equal(req->spec->nics[0]->backend_case, VMMD__V1__NIC__BACKEND_TAP);
	assert_false(req->start);
	protobuf_c_message_free_unpacked(&req->base, NULL);

	/* an empty body is an empty request (POST :start without a body) */
	req = parse_ok(DESC(create_vm_request), "");
	assert_null(req->spec);
	protobuf_c_message_free_unpacked(&req->base, NULL);
}

static void test_json_errors_name_the_field(void **state)
{
	const ProtobufCMessageDescriptor *cr = DESC(create_vm_request);

	expect_error(cr, "{\"spec\":{\"disks\":[{\"path\":\"/a\"},{\"path\":\"/b\",\"foo\":1}]}}",
		     "spec.disks[1].foo", "unknown field 'foo'");
	expect_error(cr, "{\"start\":true,\"bar\":{}}", "bar", "unknown field 'bar'");
	/* JSON names in camelCase are not ours */
	expect_error(cr, "{\"spec\":{\"memoryMib\":1}}", "spec.memoryMib",
		     "unknown field 'memoryMib'");
	expect_error(cr, "{\"spec\":{\"vcpus\":\"two\"}}", "spec.vcpus", "must be an integer");
	expect_error(cr, "{\"spec\":{\"vcpus\":true}}", "spec.vcpus", "must be an integer");
	expect_error(cr, "{\"spec\":{\"vcpus\":1.5}}", "spec.vcpus", "must be an integer");
	expect_error(cr, "{\"spec\":{\"vcpus\":\" 1\"}}", "spec.vcpus", "must be an integer");
	expect_error(cr, "{\"spec\":{\"name\":5}}", "spec.name", "must be a string");
	expect_error(cr, "{\"spec\":{\"name\":\"a\\u0000b\"}}", "spec.name",
		     "must not contain NUL characters");
	expect_error(cr, "{\"spec\":{\"rng\":\"yes\"}}", "spec.rng", "must be true or false");
	expect_error(cr, "{\"spec\":[]}", "spec", "must be an object");
	expect_error(cr, "{\"spec\":{\"disks\":{}}}", "spec.disks", "must be an array");
	expect_error(cr, "{\"spec\":{\"disks\":[{\"path\":\"/a\"},null]}}", "spec.disks[1]",
		     "must not be null");
	expect_error(cr, "{\"spec\":{\"disks\":[{\"path\":\"/a\"},\"/b\"]}}", "spec.disks[1]",
		     "must be an object");
	expect_error(cr, "{\"spec\":{\"disks\":[{\"path\":\"/a\",\"cache\":\"CACHE_SOMETIMES\"}]}}",
		     "spec.disks[0].cache", "must be one of CACHE_WRITEBACK, CACHE_NONE");
	expect_error(cr, "{\"spec\":{\"disks\":[{\"cache\":7}]}}", "spec.disks[0].cache",
		     "must be one of CACHE_WRITEBACK, CACHE_NONE");
	/* the short name is not accepted: only the full value name */
	expect_error(cr, "{\"spec\":{\"on_reboot\":\"STOP\"}}", "spec.on_reboot",
		     "must be one of ON_REBOOT_RESTART, ON_REBOOT_STOP");
	expect_error(cr,
		     "{\"spec\":{\"nics\":[{\"slirp\":{\"host_forwards\":[{\"host_port\":80},"
		     "{\"protocol\":\"PROTOCOL_SCTP\"}]}}]}}",
		     "spec.nics[0].slirp.host_forwards[1].protocol",
		     "must be one of PROTOCOL_TCP, PROTOCOL_UDP");
	expect_error(cr, "{\"spec\":{\"nics\":[{\"slirp\":{},\"tap\":{\"name\":\"t\"}}]}}",
		     "spec.nics[0].tap", "cannot be set with 'slirp': set only one of them");
}

static void test_json_rejects_out_of_range_integers(void **state)
{
	const ProtobufCMessageDescriptor *spec = DESC(vm_spec), *status = DESC(vm_status);

	expect_error(spec, "{\"vcpus\":-1}", "vcpus",
		     "must be an integer between 0 and 4294967295");
	expect_error(spec, "{\"vcpus\":\"-1\"}", "vcpus",
		     "must be an integer between 0 and 4294967295");
	expect_error(spec, "{\"vcpus\":4294967296}", "vcpus",
		     "must be an integer between 0 and 4294967295");
	expect_error(spec, "{\"memory_mib\":-5}", "memory_mib",
		     "must be an integer between 0 and 18446744073709551615");
	expect_error(spec, "{\"memory_mib\":\"18446744073709551616\"}", "memory_mib",
		     "must be an integer between 0 and 18446744073709551615");
	expect_error(spec, "{\"memory_mib\":1e30}", "memory_mib",
		     "must be an integer between 0 and 18446744073709551615");
	expect_error(status, "{\"pid\":2147483648}", "pid",
		     "must be an integer between -2147483648 and 2147483647");
	expect_error(status, "{\"created_at_ms\":\"9223372036854775808\"}", "created_at_ms",
		     "must be an integer between -9223372036854775808 and 9223372036854775807");
}

static void test_json_bytes_are_base64(void **state)
{
	static const uint8_t all[] = {0xfb, 0xff, 0x00, 'h', 'i'};
	Vmmd__V1__ConsoleStreamRequest out = VMMD__V1__CONSOLE_STREAM_REQUEST__INIT, *in;
	const ProtobufCMessageDescriptor *d = DESC(console_stream_request);

	in = parse_ok(d, "{\"data\":\"aGVsbG8=\"}");
	assert_int_equal(in->data.len, 5);
	assert_memory_equal(in->data.data, "hello", 5);
	protobuf_c_message_free_unpacked(&in->base, NULL);
	in = parse_ok(d, "{\"data\":\"aGVsbG8\"}"); /* unpadded */
	assert_int_equal(in->data.len, 5);
	assert_memory_equal(in->data.data, "hello", 5);
	protobuf_c_message_free_unpacked(&in->base, NULL);
	in = parse_ok(d, "{\"data\":\"-_8\"}"); /* URL-safe alphabet */
	assert_int_equal(in->data.len, 2);
	assert_memory_equal(in->data.data, all, 2);
	protobuf_c_message_free_unpacked(&in->base, NULL);

	/* every length of tail, through output and back */
	for (size_t len = 1; len <= sizeof(all); len++) {
		char *text;

		out.data.data = (uint8_t *)all;
		out.data.len = len;
		text = to_text(&out);
		in = parse_ok(d, text);
		assert_int_equal(in->data.len, len);
		assert_memory_equal(in->data.data, all, len);
		protobuf_c_message_free_unpacked(&in->base, NULL);
		free(text);
	}
	out.data.len = 2;
	expect_text(&out, "{\"data\":\"+/8=\"}");

	expect_error(d, "{\"data\":\"a\"}", "data", "must be base64");
	expect_error(d, "{\"data\":\"aGVs!G8=\"}", "data", "must be base64");
	expect_error(d, "{\"data\":\"aGVsbG8==\"}", "data", "must be base64");
	expect_error(d, "{\"data\":\"aG Vs\"}", "data", "must be base64");
	expect_error(d, "{\"data\":5}", "data", "must be a base64 string");
}

static void test_json_rejects_what_is_not_an_object(void **state)
{
	const ProtobufCMessageDescriptor *d = DESC(create_vm_request);
	ProtobufCMessage *m = (void *)1;
	struct api_error err;
	json_t *array = json_array();

	assert_int_equal(api_json__to_message(d, array, &m, &err), -EINVAL);
	assert_null(m);
	assert_string_equal(err.code, "INVALID_ARGUMENT");
	assert_string_equal(err.field, "");
	assert_string_equal(err.message, "the request must be a JSON object");
	json_decref(array);

	/* jansson's parser refuses NUL in keys, but a json_t built in code may have one */
	array = json_object();
	json_object_setn_new(array, "vcpus\0x", 7, json_integer(1));
	assert_int_equal(api_json__to_message(DESC(vm_spec), array, &m, &err), -EINVAL);
	assert_null(m);
	assert_string_equal(err.message, "field names must not contain NUL characters");
	json_decref(array);

	expect_error(d, "null", "", "the request must be a JSON object");
	expect_error(d, "\"spec\"", "", "the request must be a JSON object");
	expect_error(d, "{\"start\":true,\"start\":false}", "",
		     "invalid JSON at line 1 column 21: duplicate object key near '\"start\"'");
	expect_error(d, "{\"spec\":", "",
		     "invalid JSON at line 1 column 8: unexpected token near end of file");
}

/* protobuf-c unpacks strings without checking them: what the gRPC side let
 * in must not make the REST side fail. */
static void test_json_writes_bad_utf8_as_replacement(void **state)
{
	Vmmd__V1__Tap tap = VMMD__V1__TAP__INIT;

	tap.name = "t\xff"
		   "a\xe2\x82";
	expect_text(&tap, "{\"name\":\"t\xef\xbf\xbd"
			  "a\xef\xbf\xbd\xef\xbf\xbd\"}");
}

/* An enum value a newer peer knows and this build does not stays a number. */
static void test_json_writes_unknown_enum_value_as_number(void **state)
{
	Vmmd__V1__Disk disk = VMMD__V1__DISK__INIT;

	disk.cache = 42;
	expect_text(&disk, "{\"cache\":42}");
}

/* A field in the middle of a oneof of another message: the error path
 * counts array positions at every level. */
static void test_json_error_path_nests_arrays(void **state)
{
	expect_error(DESC(list_vms_response),
		     "{\"vms\":[{},{\"spec\":{\"nics\":[{},{\"tap\":{\"nme\":\"x\"}}]}}]}",
		     "vms[1].spec.nics[1].tap.nme", "unknown field 'nme'");
	expect_error(DESC(list_operations_response),
		     "{\"operations\":[{\"error\":{\"code\":\"NOT_FOUND\",\"field\":7}}]}",
		     "operations[0].error.field", "must be a string");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json_writes_full_create_vm_request),
	    cmocka_unit_test(test_json_round_trips_full_create_vm_request),
	    cmocka_unit_test(test_json_omits_defaults),
	    cmocka_unit_test(test_json_writes_64_bit_integers_as_strings),
	    cmocka_unit_test(test_json_accepts_integers_as_numbers_or_strings),
	    cmocka_unit_test(test_json_accepts_enum_names_and_numbers),
	    cmocka_unit_test(test_json_null_is_the_default),
	    cmocka_unit_test(test_json_errors_name_the_field),
	    cmocka_unit_test(test_json_rejects_out_of_range_integers),
	    cmocka_unit_test(test_json_bytes_are_base64),
	    cmocka_unit_test(test_json_rejects_what_is_not_an_object),
	    cmocka_unit_test(test_json_writes_bad_utf8_as_replacement),
	    cmocka_unit_test(test_json_writes_unknown_enum_value_as_number),
	    cmocka_unit_test(test_json_error_path_nests_arrays),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
