/* tests/unit/test_api_error.c — error codes, their statuses and their JSON (api/error.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/error.h"

static void test_error_codes_map_to_http_and_grpc(void **state)
{
	static const struct {
		const char *name;
		int http, grpc;
	} codes[] = {
	    {"INVALID_ARGUMENT", 400, 3},  {"NOT_FOUND", 404, 5},
	    {"ALREADY_EXISTS", 409, 6},	   {"FAILED_PRECONDITION", 409, 9},
	    {"UNAVAILABLE", 503, 14},	   {"DEADLINE_EXCEEDED", 504, 4},
	    {"INTERNAL", 500, 13},	   {"UNIMPLEMENTED", 501, 12},
	    {"PERMISSION_DENIED", 403, 7}, {"RESOURCE_EXHAUSTED", 413, 8},
	    {"CANCELLED", 499, 1},
	};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		struct api_error err;
		int code = api_code__from_name(codes[i].name);

		assert_int_equal(code, codes[i].grpc);
		assert_string_equal(api_code__name(code), codes[i].name);
		assert_int_equal(api_code__http_status(code), codes[i].http);
		api_error__set(&err, code, NULL, "x");
		assert_string_equal(err.code, codes[i].name);
		assert_int_equal(api_error__http_status(&err), codes[i].http);
		assert_int_equal(api_error__grpc_status(&err), codes[i].grpc);
	}
	assert_int_equal(api_code__from_name("TEAPOT"), -1);
	assert_null(api_code__name(2));
}

static void test_error_set_returns_einval_and_fills_all(void **state)
{
	struct api_error err;

	assert_int_equal(api_error__set(&err, API_NOT_FOUND, "id", "vm \"%s\" not found", "web"),
			 -EINVAL);
	assert_string_equal(err.code, "NOT_FOUND");
	assert_string_equal(err.field, "id");
	assert_string_equal(err.message, "vm \"web\" not found");
	assert_int_equal(api_error__set(NULL, API_INTERNAL, NULL, "ignored"), -EINVAL);
}

static void expect_json(const struct api_error *err, const char *expected)
{
	json_t *j = api_error__to_json(err);
	char *text;

	assert_non_null(j);
	text = json_dumps(j, JSON_COMPACT);
	assert_string_equal(text, expected);
	free(text);
	json_decref(j);
}

static void test_error_json_shape(void **state)
{
	struct api_error err;

	api_error__set(&err, API_INVALID_ARGUMENT, "spec.disks[1].path", "must be a string");
	expect_json(&err,
		    "{\"error\":{\"code\":\"INVALID_ARGUMENT\",\"message\":\"must be a string\","
		    "\"field\":\"spec.disks[1].path\"}}");
	api_error__set(&err, API_FAILED_PRECONDITION, NULL, "vm \"web\" is running");
	expect_json(&err, "{\"error\":{\"code\":\"FAILED_PRECONDITION\",\"message\":\"vm "
			  "\\\"web\\\" is running\"}}");
}

/* A message cut inside a UTF-8 sequence by its fixed buffer still becomes JSON. */
static void test_error_json_survives_cut_utf8(void **state)
{
	struct api_error err;
	json_t *j;

	api_error__set(&err, API_INVALID_ARGUMENT, "x", "unknown field '%s", "\xc3");
	j = api_error__to_json(&err);
	assert_non_null(j);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(j, "error"), "message")),
	    "unknown field '?");
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_error_codes_map_to_http_and_grpc),
	    cmocka_unit_test(test_error_set_returns_einval_and_fills_all),
	    cmocka_unit_test(test_error_json_shape),
	    cmocka_unit_test(test_error_json_survives_cut_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
