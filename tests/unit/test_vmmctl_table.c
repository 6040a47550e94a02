/* tests/unit/test_vmmctl_table.c — vmmctl's tables and value formats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/show.h"
#include "cli/table.h"

/* Runs fn into a string (open_memstream), returned malloc'd. */
#define CAPTURE(text, call)                                                                        \
	do {                                                                                       \
		size_t len_;                                                                       \
		FILE *f_ = open_memstream(&(text), &len_);                                         \
		assert_non_null(f_);                                                               \
		call;                                                                              \
		fclose(f_);                                                                        \
	} while (0)

static void test_table_aligns_columns(void **state)
{
	static const char *const head[] = {"NAME", "STATE", "ID"};
	static const char *const r1[] = {"web", "running", "a1"};
	static const char *const r2[] = {"database-1", "stopped", "b2"};
	struct table t;
	char *text;

	table__init(&t, 3, head);
	assert_int_equal(table__add(&t, r1), 0);
	assert_int_equal(table__add(&t, r2), 0);
	CAPTURE(text, table__print(&t, f_));
	assert_string_equal(text, "NAME        STATE    ID\n"
				  "web         running  a1\n"
				  "database-1  stopped  b2\n");
	free(text);
	table__free(&t);
}

static void test_table_empty_cells_and_no_rows(void **state)
{
	static const char *const head[] = {"A", "B"};
	const char *row[] = {"", NULL};
	struct table t;
	char *text;

	table__init(&t, 2, head);
	CAPTURE(text, table__print(&t, f_));
	assert_string_equal(text, "A  B\n"); /* a header even when empty */
	free(text);
	assert_int_equal(table__add(&t, row), 0);
	CAPTURE(text, table__print(&t, f_));
	assert_string_equal(text, "A  B\n-  -\n");
	free(text);
	table__free(&t);
}

static void test_formats(void **state)
{
	char buf[64];

	fmt__enum(buf, sizeof(buf), "VM_STATE_RUNNING", "VM_STATE_");
	assert_string_equal(buf, "running");
	fmt__enum(buf, sizeof(buf), "SOMETHING_ELSE", "VM_STATE_");
	assert_string_equal(buf, "something_else");
	fmt__enum(buf, 4, "VM_STATE_STOPPING", "VM_STATE_");
	assert_string_equal(buf, "sto");
	fmt__mib(buf, sizeof(buf), 512);
	assert_string_equal(buf, "512M");
	fmt__mib(buf, sizeof(buf), 2048);
	assert_string_equal(buf, "2G");
	fmt__mib(buf, sizeof(buf), 1536);
	assert_string_equal(buf, "1536M");
	fmt__time_ms(buf, sizeof(buf), 0);
	assert_string_equal(buf, "-");
	fmt__time_ms(buf, sizeof(buf), 1764068054000LL);
	assert_string_equal(buf, "2025-11-25 10:54:14");
}

/* The ListVms JSON as vmmd sends it: 64-bit numbers as strings, defaults
 * left out (vcpus 0 means 1). */
static void test_show_vms(void **state)
{
	json_t *j =
	    json_loads("{\"vms\":[{\"id\":\"0b6c\",\"spec\":{\"name\":\"web\",\"vcpus\":2,"
		       "\"memory_mib\":\"512\"},\"status\":{\"state\":\"VM_STATE_RUNNING\"}},"
		       "{\"id\":\"77aa\",\"spec\":{\"name\":\"db\",\"memory_mib\":\"4096\"},"
		       "\"status\":{\"state\":\"VM_STATE_STOPPED\"}}]}",
		       0, NULL);
	char *text;

	assert_non_null(j);
	CAPTURE(text, show__vms(j, f_));
	assert_string_equal(text, "NAME  STATE    VCPUS  MEMORY  ID\n"
				  "web   running  2      512M    0b6c\n"
				  "db    stopped  1      4G      77aa\n");
	free(text);
	assert_string_equal(show__vm_name(j, "77aa"), "db");
	assert_string_equal(show__vm_name(j, "nope"), "nope");
	json_decref(j);
}

static void test_show_event_line(void **state)
{
	json_t *names =
	    json_loads("{\"vms\":[{\"id\":\"0b6c\",\"spec\":{\"name\":\"web\"}}]}", 0, NULL);
	json_t *ev = json_loads("{\"seq\":\"7\",\"time_ms\":\"1764068054000\",\"vm_id\":\"0b6c\","
				"\"kind\":\"EVENT_KIND_VM_STATE_CHANGED\","
				"\"state\":\"VM_STATE_RUNNING\",\"operation_id\":\"op1\","
				"\"operation_state\":\"OPERATION_STATE_SUCCEEDED\","
				"\"message\":\"guest is running\"}",
				0, NULL);
	char *text;

	CAPTURE(text, show__event(ev, names, f_));
	assert_string_equal(text, "2025-11-25 10:54:14 #7 web vm_state_changed state=running "
				  "operation=op1 (succeeded): guest is running\n");
	free(text);
	json_decref(ev);
	json_decref(names);
}

static void test_jint_reads_strings_and_numbers(void **state)
{
	json_t *j = json_loads("{\"a\":{\"b\":\"42\",\"c\":7}}", 0, NULL);

	assert_int_equal(jint(j, "a.b"), 42);
	assert_int_equal(jint(j, "a.c"), 7);
	assert_int_equal(jint(j, "a.d"), 0);
	assert_string_equal(jstr(j, "a.b"), "42");
	assert_string_equal(jstr(j, "x.y"), "");
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_aligns_columns),
	    cmocka_unit_test(test_table_empty_cells_and_no_rows),
	    cmocka_unit_test(test_formats),
	    cmocka_unit_test(test_show_vms),
	    cmocka_unit_test(test_show_event_line),
	    cmocka_unit_test(test_jint_reads_strings_and_numbers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
