/* tests/unit/test_api_rest.c — REST request lines to methods: path matching,
 * placeholders and query typing (api/rest_route.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/json.h"
#include "api/rest.h"

static int match(const char *verb, const char *path, struct rest_match *m)
{
	memset(m, 0, sizeof(*m));
	return rest_route__match(api_routes, api_nr_routes, verb, path, m);
}

static void test_rest_matches_literal_and_placeholder_routes(void **state)
{
	struct rest_match m;

	assert_int_equal(match("GET", "/v1/vms", &m), 0);
	assert_string_equal(m.route->name, "ListVms");
	assert_int_equal(m.nr_params, 0);
	assert_int_equal(match("POST", "/v1/vms", &m), 0);
	assert_string_equal(m.route->name, "CreateVm");

	assert_int_equal(match("GET", "/v1/vms/web-1", &m), 0);
	assert_string_equal(m.route->name, "GetVm");
	assert_int_equal(m.nr_params, 1);
	assert_string_equal(m.params[0].name, "id");
	assert_string_equal(m.params[0].value, "web-1");

	assert_int_equal(match("DELETE", "/v1/vms/web-1", &m), 0);
	assert_string_equal(m.route->name, "DeleteVm");
	assert_int_equal(match("GET", "/v1/version", &m), 0);
	assert_string_equal(m.route->name, "GetVersion");
}

static void test_rest_action_suffix_is_part_of_the_last_segment(void **state)
{
	struct rest_match m;

	assert_int_equal(match("POST", "/v1/vms/web:start", &m), 0);
	assert_string_equal(m.route->name, "StartVm");
	assert_string_equal(m.params[0].value, "web");
	assert_int_equal(match("POST", "/v1/vms/0b1c-22:reboot", &m), 0);
	assert_string_equal(m.route->name, "RebootVm");
	assert_string_equal(m.params[0].value, "0b1c-22");
	assert_int_equal(match("POST", "/v1/operations/op7:cancel", &m), 0);
	assert_string_equal(m.route->name, "CancelOperation");
	assert_int_equal(match("GET", "/v1/vms/x/console:stream", &m), 0);
	assert_string_equal(m.route->name, "ConsoleStream");
	assert_string_equal(m.params[0].name, "vm_id");
	assert_string_equal(m.params[0].value, "x");
	assert_int_equal(match("GET", "/v1/vms/x/console", &m), 0);
	assert_string_equal(m.route->name, "GetConsoleLog");
	/* An empty id, or no action name, is no route. */
	assert_int_equal(match("POST", "/v1/vms/:start", &m), -ENOENT);
	assert_int_equal(match("POST", "/v1/vms/web:explode", &m), -ENOENT);
}

static void test_rest_wrong_verb_is_told_from_unknown_path(void **state)
{
	struct rest_match m;

	/* "web:start" is no {id} of GET /v1/vms/{id}: ids never hold ':'. */
	assert_int_equal(match("GET", "/v1/vms/web:start", &m), -EPERM);
	assert_string_equal(m.allow, "POST");
	assert_int_equal(match("PUT", "/v1/vms/web", &m), -EPERM);
	assert_string_equal(m.allow, "GET, DELETE");
	assert_int_equal(match("GET", "/v1/nothing", &m), -ENOENT);
	assert_int_equal(match("GET", "/v1/vms/", &m), -ENOENT);
	assert_int_equal(match("GET", "/v1/vms/a/b", &m), -ENOENT);
	assert_int_equal(match("GET", "/v1//vms", &m), -ENOENT);
	assert_int_equal(match("GET", "", &m), -ENOENT);
}

static void test_rest_extra_routes_match(void **state)
{
	struct rest_match m = {0};

	assert_int_equal(rest_route__match(rest_extra_routes, rest_nr_extra_routes, "POST",
					   "/v1/vms/web/console:write", &m),
			 0);
	assert_string_equal(m.route->name, "ConsoleWrite");
	assert_string_equal(m.params[0].value, "web");
	memset(&m, 0, sizeof(m));
	assert_int_equal(
	    rest_route__match(rest_extra_routes, rest_nr_extra_routes, "GET", "/metrics", &m), 0);
	memset(&m, 0, sizeof(m));
	assert_int_equal(
	    rest_route__match(rest_extra_routes, rest_nr_extra_routes, "POST", "/metrics", &m),
	    -EPERM);
}

static void test_rest_segment_match(void **state)
{
	struct rest_param p;

	assert_true(rest_route__match_segment("{id}:stop", 9, "a:stop", 6, &p));
	assert_string_equal(p.name, "id");
	assert_string_equal(p.value, "a");
	assert_false(rest_route__match_segment("{id}:stop", 9, ":stop", 5, &p));
	assert_false(rest_route__match_segment("{id}:stop", 9, "a:b:stop", 8, &p));
	assert_true(rest_route__match_segment("vms", 3, "vms", 3, &p));
	assert_false(rest_route__match_segment("vms", 3, "vm", 2, &p));
	assert_false(rest_route__match_segment("vms", 3, "vmss", 4, &p));
}

/* Query values into a request message, through the JSON decoder. */
static int decode(const ProtobufCMessageDescriptor *d, const char *const *kv,
		  ProtobufCMessage **out, struct api_error *err)
{
	json_t *obj = json_object();
	int r = 0;

	for (; !r && kv[0]; kv += 2)
		r = rest_route__set_field(d, obj, kv[0], kv[1], err);
	*out = NULL;
	if (!r)
		r = api_json__to_message(d, obj, out, err);
	json_decref(obj);
	return r;
}

static void test_rest_query_values_take_the_field_type(void **state)
{
	const char *const del[] = {"id", "web", "force", "true", NULL};
	const char *const log[] = {"id", "web", "tail_kib", "16", NULL};
	const char *const list[] = {"state", "VM_STATE_RUNNING", NULL};
	const char *const list_n[] = {"state", "4", NULL};
	const char *const ev[] = {"after_seq", "18446744073709551615", NULL};
	struct api_error err;
	ProtobufCMessage *m;

	assert_int_equal(decode(&vmmd__v1__delete_vm_request__descriptor, del, &m, &err), 0);
	assert_string_equal(((Vmmd__V1__DeleteVmRequest *)m)->id, "web");
	assert_true(((Vmmd__V1__DeleteVmRequest *)m)->force);
	protobuf_c_message_free_unpacked(m, NULL);

	assert_int_equal(decode(&vmmd__v1__get_console_log_request__descriptor, log, &m, &err), 0);
	assert_int_equal(((Vmmd__V1__GetConsoleLogRequest *)m)->tail_kib, 16);
	protobuf_c_message_free_unpacked(m, NULL);

	assert_int_equal(decode(&vmmd__v1__list_vms_request__descriptor, list, &m, &err), 0);
	assert_int_equal(((Vmmd__V1__ListVmsRequest *)m)->state,
			 VMMD__V1__VM_STATE__VM_STATE_RUNNING);
	protobuf_c_message_free_unpacked(m, NULL);
	assert_int_equal(decode(&vmmd__v1__list_vms_request__descriptor, list_n, &m, &err), 0);
	assert_int_equal(((Vmmd__V1__ListVmsRequest *)m)->state,
			 VMMD__V1__VM_STATE__VM_STATE_RUNNING);
	protobuf_c_message_free_unpacked(m, NULL);

	assert_int_equal(decode(&vmmd__v1__watch_events_request__descriptor, ev, &m, &err), 0);
	assert_true(((Vmmd__V1__WatchEventsRequest *)m)->after_seq == UINT64_MAX);
	protobuf_c_message_free_unpacked(m, NULL);
}

static void test_rest_query_errors_name_the_field(void **state)
{
	const char *const unknown[] = {"colour", "red", NULL};
	const char *const badbool[] = {"force", "maybe", NULL};
	const char *const badint[] = {"id", "w", "tail_kib", "lots", NULL};
	const char *const neg[] = {"id", "w", "tail_kib", "-1", NULL};
	const char *const twice[] = {"id", "a", "id", "b", NULL};
	const char *const msg[] = {"spec", "x", NULL};
	const char *const badenum[] = {"state", "VM_STATE_ASLEEP", NULL};
	struct api_error err;
	ProtobufCMessage *m;

	assert_int_equal(decode(&vmmd__v1__delete_vm_request__descriptor, unknown, &m, &err),
			 -EINVAL);
	assert_string_equal(err.code, "INVALID_ARGUMENT");
	assert_string_equal(err.field, "colour");
	assert_int_equal(decode(&vmmd__v1__delete_vm_request__descriptor, badbool, &m, &err),
			 -EINVAL);
	assert_string_equal(err.field, "force");
	assert_int_equal(decode(&vmmd__v1__get_console_log_request__descriptor, badint, &m, &err),
			 -EINVAL);
	assert_string_equal(err.field, "tail_kib");
	assert_int_equal(decode(&vmmd__v1__get_console_log_request__descriptor, neg, &m, &err),
			 -EINVAL);
	assert_string_equal(err.field, "tail_kib");
	assert_int_equal(decode(&vmmd__v1__get_vm_request__descriptor, twice, &m, &err), -EINVAL);
	assert_string_equal(err.field, "id");
	assert_int_equal(decode(&vmmd__v1__create_vm_request__descriptor, msg, &m, &err), -EINVAL);
	assert_string_equal(err.field, "spec");
	assert_int_equal(decode(&vmmd__v1__list_vms_request__descriptor, badenum, &m, &err),
			 -EINVAL);
	assert_string_equal(err.field, "state");
	assert_null(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rest_matches_literal_and_placeholder_routes),
	    cmocka_unit_test(test_rest_action_suffix_is_part_of_the_last_segment),
	    cmocka_unit_test(test_rest_wrong_verb_is_told_from_unknown_path),
	    cmocka_unit_test(test_rest_extra_routes_match),
	    cmocka_unit_test(test_rest_segment_match),
	    cmocka_unit_test(test_rest_query_values_take_the_field_type),
	    cmocka_unit_test(test_rest_query_errors_name_the_field),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
