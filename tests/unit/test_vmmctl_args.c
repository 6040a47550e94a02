/* tests/unit/test_vmmctl_args.c — vmmctl's command line: subcommands,
 * options, sizes, --disk/--net, the create request's JSON and the console
 * escape key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/args.h"
#include "cli/console.h"

static char err[256];

/* Parses the NULL-terminated words after "vmmctl". */
static int parse(struct cli_args *a, ...)
{
	char *argv[32] = {"vmmctl"};
	int argc = 1;
	va_list ap;

	va_start(ap, a);
	while ((argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	err[0] = 0;
	return cli_args__parse(a, argc, argv, err, sizeof(err));
}

static void test_size_units(void **state)
{
	uint64_t mib;

	assert_int_equal(cli_size__parse_mib("512M", &mib), 0);
	assert_int_equal(mib, 512);
	assert_int_equal(cli_size__parse_mib("512", &mib), 0); /* bare: MiB */
	assert_int_equal(mib, 512);
	assert_int_equal(cli_size__parse_mib("2G", &mib), 0);
	assert_int_equal(mib, 2048);
	assert_int_equal(cli_size__parse_mib("1GiB", &mib), 0);
	assert_int_equal(mib, 1024);
	assert_int_equal(cli_size__parse_mib("4096k", &mib), 0);
	assert_int_equal(mib, 4);
	assert_int_equal(cli_size__parse_mib("1T", &mib), 0);
	assert_int_equal(mib, 1024 * 1024);
	assert_int_equal(cli_size__parse_mib("256MB", &mib), 0);
	assert_int_equal(mib, 256);
}

static void test_size_rejects_junk(void **state)
{
	uint64_t mib = 7;

	assert_int_not_equal(cli_size__parse_mib("", &mib), 0);
	assert_int_not_equal(cli_size__parse_mib("-1M", &mib), 0);
	assert_int_not_equal(cli_size__parse_mib("M", &mib), 0);
	assert_int_not_equal(cli_size__parse_mib("12X", &mib), 0);
	assert_int_not_equal(cli_size__parse_mib("12Mx", &mib), 0);
	assert_int_not_equal(cli_size__parse_mib("1500K", &mib), 0); /* not whole MiB */
	assert_int_not_equal(cli_size__parse_mib("99999999999999999999", &mib), 0);
	assert_int_not_equal(cli_size__parse_mib("18014398509481984T", &mib), 0); /* overflow */
	assert_int_equal(mib, 7);
}

static void test_create_full(void **state)
{
	struct cli_args a;

	assert_int_equal(parse(&a, "create", "--name", "web", "--memory", "512M", "--cpus", "2",
			       "--kernel", "/k", "--initrd", "/i", "--cmdline", "console=ttyS0",
			       "--disk", "path=/d1", "--disk", "/d2,readonly=on", "--net", "slirp",
			       "--rng", "--start", "--wait", NULL),
			 0);
	assert_int_equal(a.cmd, CLI_CREATE);
	assert_string_equal(a.name, "web");
	assert_int_equal(a.memory_mib, 512);
	assert_int_equal(a.vcpus, 2);
	assert_string_equal(a.kernel, "/k");
	assert_string_equal(a.initrd, "/i");
	assert_string_equal(a.cmdline, "console=ttyS0");
	assert_int_equal(a.nr_disks, 2);
	assert_string_equal(a.disks[1], "/d2,readonly=on");
	assert_int_equal(a.nr_nets, 1);
	assert_true(a.rng && a.start && a.wait);
}

static void test_create_requires_name_memory_kernel(void **state)
{
	struct cli_args a;

	assert_int_not_equal(parse(&a, "create", "--memory", "512M", "--kernel", "/k", NULL), 0);
	assert_non_null(strstr(err, "--name"));
	assert_int_not_equal(parse(&a, "create", "--name", "w", "--kernel", "/k", NULL), 0);
	assert_non_null(strstr(err, "--memory"));
	assert_int_not_equal(parse(&a, "create", "--name", "w", "--memory", "1G", NULL), 0);
	assert_non_null(strstr(err, "--kernel"));
}

static void test_bad_values_named(void **state)
{
	struct cli_args a;

	assert_int_not_equal(
	    parse(&a, "create", "--name", "w", "--memory", "lots", "--kernel", "/k", NULL), 0);
	assert_non_null(strstr(err, "--memory lots"));
	assert_int_not_equal(parse(&a, "create", "--name", "w", "--memory", "1G", "--cpus", "0",
				   "--kernel", "/k", NULL),
			     0);
	assert_non_null(strstr(err, "--cpus 0"));
	assert_int_not_equal(parse(&a, "stop", "web", "--timeout", "soon", NULL), 0);
	assert_non_null(strstr(err, "--timeout soon"));
}

static void test_options_anywhere_and_global(void **state)
{
	struct cli_args a;

	assert_int_equal(parse(&a, "--socket", "/s", "--json", "get", "web", NULL), 0);
	assert_int_equal(a.cmd, CLI_GET);
	assert_string_equal(a.target, "web");
	assert_string_equal(a.socket, "/s");
	assert_true(a.json);
	assert_int_equal(parse(&a, "stop", "--force", "web", "--timeout", "5", NULL), 0);
	assert_int_equal(a.cmd, CLI_STOP);
	assert_string_equal(a.target, "web");
	assert_true(a.force && a.has_timeout);
	assert_int_equal(a.timeout_s, 5);
}

static void test_option_for_another_command_refused(void **state)
{
	struct cli_args a;

	assert_int_not_equal(parse(&a, "list", "--force", NULL), 0);
	assert_non_null(strstr(err, "--force does not apply"));
	assert_int_not_equal(parse(&a, "get", "web", "--memory", "1G", NULL), 0);
	assert_int_not_equal(parse(&a, "events", "--wait", NULL), 0);
}

static void test_operands(void **state)
{
	struct cli_args a;

	assert_int_not_equal(parse(&a, "get", NULL), 0);
	assert_non_null(strstr(err, "missing the VM"));
	assert_int_not_equal(parse(&a, "wait", NULL), 0);
	assert_non_null(strstr(err, "operation id"));
	assert_int_not_equal(parse(&a, "list", "extra", NULL), 0);
	assert_int_not_equal(parse(&a, "get", "a", "b", NULL), 0);
	assert_int_not_equal(parse(&a, "frobnicate", NULL), 0);
	assert_non_null(strstr(err, "unknown command"));
	assert_int_not_equal(parse(&a, NULL), 0);
	assert_int_not_equal(parse(&a, "list", "--bogus", NULL), 0);
	assert_non_null(strstr(err, "--bogus"));
	assert_int_equal(parse(&a, "logs", "web", "--tail", "64", NULL), 0);
	assert_int_equal(a.tail_kib, 64);
	assert_int_equal(parse(&a, "operations", "--vm", "web", NULL), 0);
	assert_string_equal(a.vm, "web");
	assert_int_equal(parse(&a, "--help", NULL), 0);
	assert_int_equal(a.cmd, CLI_HELP);
	assert_int_equal(parse(&a, "get", "--help", NULL), 0);
	assert_int_equal(a.cmd, CLI_HELP);
}

static void test_snapshot_takes_vm_and_dir(void **state)
{
	struct cli_args a;

	assert_int_equal(parse(&a, "snapshot", "web", "/snap/1", "--paused", "--wait", NULL), 0);
	assert_int_equal(a.cmd, CLI_SNAPSHOT);
	assert_string_equal(a.target, "web");
	assert_string_equal(a.dir, "/snap/1");
	assert_true(a.paused && a.wait);
	assert_int_equal(parse(&a, "snapshot", "web", "snap", NULL), 0); /* relative: vmmctl.c */
	assert_false(a.paused);
	assert_int_not_equal(parse(&a, "snapshot", NULL), 0);
	assert_non_null(strstr(err, "missing the VM"));
	assert_int_not_equal(parse(&a, "snapshot", "web", NULL), 0);
	assert_non_null(strstr(err, "missing the snapshot directory"));
	assert_int_not_equal(parse(&a, "snapshot", "web", "/s", "/t", NULL), 0);
	assert_non_null(strstr(err, "unexpected argument \"/t\""));
	assert_int_not_equal(parse(&a, "snapshot", "web", "/s", "--name", "x", NULL), 0);
	assert_non_null(strstr(err, "--name does not apply"));
	assert_int_not_equal(parse(&a, "pause", "web", "--paused", NULL), 0);
}

static void test_migrate_takes_vm_dest_and_limits(void **state)
{
	struct cli_args a;

	assert_int_equal(parse(&a, "migrate", "web", "10.0.0.2:7000", "--downtime-limit", "200",
			       "--bandwidth-limit", "1048576", "--max-rounds", "5",
			       "--auto-converge", "--connections", "4", "--priority", "equal",
			       "--wait", "--json", NULL),
			 0);
	assert_int_equal(a.cmd, CLI_MIGRATE);
	assert_string_equal(a.target, "web");
	assert_string_equal(a.dest, "10.0.0.2:7000");
	assert_int_equal(a.downtime_limit_ms, 200);
	assert_int_equal(a.bandwidth_limit, 1048576);
	assert_int_equal(a.max_rounds, 5);
	assert_true(a.wait && a.json && a.auto_converge);
	assert_int_equal(a.connections, 4);
	assert_true(a.priority_equal);
	assert_int_not_equal(parse(&a, "migrate", "web", "h:1", "--priority", "high", NULL), 0);
	assert_non_null(strstr(err, "--priority high: must be migration or equal"));
	assert_int_not_equal(parse(&a, "migrate", "web", "h:1", "--connections", "17", NULL), 0);
	assert_non_null(strstr(err, "--connections 17"));
	assert_int_equal(parse(&a, "migrate", "web", "h:1", NULL), 0);
	assert_int_equal(a.downtime_limit_ms, 0); /* the daemon's default */
	assert_false(a.auto_converge);
	assert_false(a.priority_equal);
	assert_int_not_equal(parse(&a, "snapshot", "web", "/tmp/s", "--auto-converge", NULL), 0);
	assert_int_not_equal(parse(&a, "migrate", "web", NULL), 0);
	assert_non_null(strstr(err, "missing the destination"));
	assert_int_not_equal(parse(&a, "migrate", NULL), 0);
	assert_non_null(strstr(err, "missing the VM"));
	assert_int_not_equal(parse(&a, "migrate", "web", "h:1", "--bandwidth-limit", "1M", NULL), 0);
	assert_non_null(strstr(err, "--bandwidth-limit 1M"));
	assert_int_not_equal(parse(&a, "migrate", "web", "h:1", "--max-rounds", "0", NULL), 0);
	assert_int_not_equal(parse(&a, "stop", "web", "--downtime-limit", "5", NULL), 0);
	assert_non_null(strstr(err, "--downtime-limit does not apply"));
}

static void test_restore_takes_dir_name_mode(void **state)
{
	struct cli_args a;

	assert_int_equal(parse(&a, "restore", "/snap/1", "--name", "web2", "--memory-mode", "lazy",
			       "--wait", "--json", NULL),
			 0);
	assert_int_equal(a.cmd, CLI_RESTORE);
	assert_null(a.target);
	assert_string_equal(a.dir, "/snap/1");
	assert_string_equal(a.name, "web2");
	assert_true(a.lazy && a.wait && a.json);
	assert_int_equal(parse(&a, "restore", "/snap/1", "--memory-mode", "copy", NULL), 0);
	assert_false(a.lazy);
	assert_null(a.name); /* the saved VM's name */
	assert_int_not_equal(parse(&a, "restore", "/snap/1", "--memory-mode", "fast", NULL), 0);
	assert_non_null(strstr(err, "--memory-mode fast"));
	assert_int_not_equal(parse(&a, "restore", NULL), 0);
	assert_non_null(strstr(err, "missing the snapshot directory"));
	assert_int_not_equal(parse(&a, "restore", "/s", "web", NULL), 0);
	assert_int_not_equal(parse(&a, "restore", "/s", "--paused", NULL), 0);
	assert_non_null(strstr(err, "--paused does not apply"));
	assert_int_not_equal(parse(&a, "create", "--name", "w", "--memory", "1G", "--kernel", "/k",
				   "--memory-mode", "lazy", NULL),
			     0);
}

static void test_disk_keys(void **state)
{
	char buf[] = "path=/img/a.raw,readonly=on,cache=none,queues=4,id=data";
	char bare[] = "/img/b.raw";
	char bad1[] = "readonly=on", bad2[] = "path=/x,cache=maybe", bad3[] = "path=/x,colour=red";
	Vmmd__V1__Disk d;

	assert_int_equal(cli_disk__parse(buf, &d, err, sizeof(err)), 0);
	assert_string_equal(d.path, "/img/a.raw");
	assert_true(d.readonly);
	assert_int_equal(d.cache, VMMD__V1__CACHE__CACHE_NONE);
	assert_int_equal(d.queues, 4);
	assert_string_equal(d.id, "data");
	assert_int_equal(cli_disk__parse(bare, &d, err, sizeof(err)), 0);
	assert_string_equal(d.path, "/img/b.raw");
	assert_false(d.readonly);
	assert_int_not_equal(cli_disk__parse(bad1, &d, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "path"));
	assert_int_not_equal(cli_disk__parse(bad2, &d, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "cache=maybe"));
	assert_int_not_equal(cli_disk__parse(bad3, &d, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "colour"));
}

static void test_net_slirp_hostfwd_and_tap(void **state)
{
	char s1[] = "slirp,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp::5353-10.0.2.15:53,mac=52:54:"
		    "00:00:00:01";
	char s2[] = "tap=tap0,id=eth1";
	char b1[] = "vde", b2[] = "slirp,hostfwd=tcp::0-:80", b3[] = "tap=tap0,hostfwd=tcp::1-:2";
	Vmmd__V1__Nic n;

	assert_int_equal(cli_nic__parse(s1, &n, err, sizeof(err)), 0);
	assert_int_equal(n.backend_case, VMMD__V1__NIC__BACKEND_SLIRP);
	assert_int_equal(n.slirp->n_host_forwards, 2);
	assert_string_equal(n.slirp->host_forwards[0]->host_addr, "127.0.0.1");
	assert_int_equal(n.slirp->host_forwards[0]->host_port, 8080);
	assert_int_equal(n.slirp->host_forwards[0]->guest_port, 80);
	assert_int_equal(n.slirp->host_forwards[1]->protocol, VMMD__V1__PROTOCOL__PROTOCOL_UDP);
	assert_int_equal(n.slirp->host_forwards[1]->guest_port, 53);
	assert_string_equal(n.mac, "52:54:00:00:00:01");
	cli_nic__free(&n);
	assert_int_equal(cli_nic__parse(s2, &n, err, sizeof(err)), 0);
	assert_int_equal(n.backend_case, VMMD__V1__NIC__BACKEND_TAP);
	assert_string_equal(n.tap->name, "tap0");
	assert_string_equal(n.id, "eth1");
	cli_nic__free(&n);
	assert_int_not_equal(cli_nic__parse(b1, &n, err, sizeof(err)), 0);
	assert_int_not_equal(cli_nic__parse(b2, &n, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "hostfwd=tcp::0-:80"));
	assert_int_not_equal(cli_nic__parse(b3, &n, err, sizeof(err)), 0);
}

/* The body uses the schema's field names: what api/json.c would parse. */
static void test_create_request_json(void **state)
{
	struct cli_args a;
	json_t *j;
	char *text;

	assert_int_equal(parse(&a, "create", "--name", "web", "--memory", "2G", "--cpus", "2",
			       "--kernel", "/k", "--disk", "path=/d,readonly=on", "--net",
			       "slirp,hostfwd=tcp::2222-:22", "--rng", "--prefault", "--start",
			       NULL),
			 0);
	j = cli_spec__create_request(&a, err, sizeof(err));
	assert_non_null(j);
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text,
			    "{\"spec\":{\"disks\":[{\"path\":\"/d\",\"readonly\":true}],"
			    "\"kernel\":\"/k\",\"memory_mib\":\"2048\",\"memory_prefault\":true,"
			    "\"name\":\"web\","
			    "\"nics\":[{\"slirp\":{\"host_forwards\":[{\"guest_port\":22,"
			    "\"host_port\":2222}]}}],\"rng\":true,\"vcpus\":2},\"start\":true}");
	free(text);
	json_decref(j);

	assert_int_equal(parse(&a, "create", "--name", "w", "--memory", "1G", "--kernel", "/k",
			       "--disk", "cache=none", NULL),
			 0);
	assert_null(cli_spec__create_request(&a, err, sizeof(err)));
	assert_non_null(strstr(err, "--disk"));
}

static void test_console_escape(void **state)
{
	struct console_esc e = {0};
	unsigned char out[2];
	size_t n;

	assert_int_equal(console__key(&e, 'a', out, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(out[0], 'a');
	assert_int_equal(console__key(&e, CONSOLE_ESC, out, &n), 0);
	assert_int_equal(n, 0); /* held back until the next key */
	assert_int_equal(console__key(&e, 'x', out, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(out[0], CONSOLE_ESC);
	assert_int_equal(out[1], 'x');
	assert_int_equal(console__key(&e, CONSOLE_ESC, out, &n), 0);
	assert_int_equal(console__key(&e, CONSOLE_ESC, out, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(out[0], CONSOLE_ESC);
	assert_int_equal(console__key(&e, 'q', out, &n), 0); /* q alone is typed */
	assert_int_equal(n, 1);
	assert_int_equal(console__key(&e, CONSOLE_ESC, out, &n), 0);
	assert_int_equal(console__key(&e, 'q', out, &n), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_size_units),
	    cmocka_unit_test(test_size_rejects_junk),
	    cmocka_unit_test(test_create_full),
	    cmocka_unit_test(test_create_requires_name_memory_kernel),
	    cmocka_unit_test(test_bad_values_named),
	    cmocka_unit_test(test_options_anywhere_and_global),
	    cmocka_unit_test(test_option_for_another_command_refused),
	    cmocka_unit_test(test_operands),
	    cmocka_unit_test(test_snapshot_takes_vm_and_dir),
	    cmocka_unit_test(test_migrate_takes_vm_dest_and_limits),
	    cmocka_unit_test(test_restore_takes_dir_name_mode),
	    cmocka_unit_test(test_disk_keys),
	    cmocka_unit_test(test_net_slirp_hostfwd_and_tap),
	    cmocka_unit_test(test_create_request_json),
	    cmocka_unit_test(test_console_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
