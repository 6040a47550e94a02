/* tests/unit/test_config.c — the vmm command line: sizes, counts, defaults,
 * repeatable key=value options and the one-line refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/config.h"
#include "vmm/layout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* getopt permutes argv, so each call gets a writable copy. */
#define MAX_ARGS 16
#define ARG_LEN 256

struct argv_buf {
	char buf[MAX_ARGS][ARG_LEN];
	char *argv[MAX_ARGS + 1];
	int argc;
};

static int parse_args(struct vm_config *cfg, const char *const *args)
{
	static struct argv_buf a;

	memset(&a, 0, sizeof(a));
	strcpy(a.buf[0], "vmm");
	a.argv[0] = a.buf[0];
	a.argc = 1;
	for (int i = 0; args[i]; i++) {
		assert_true(a.argc < MAX_ARGS);
		assert_true(strlen(args[i]) < ARG_LEN);
		strcpy(a.buf[a.argc], args[i]);
		a.argv[a.argc] = a.buf[a.argc];
		a.argc++;
	}
	a.argv[a.argc] = NULL;
	return config__parse(cfg, a.argc, a.argv);
}

#define PARSE(cfg, ...) parse_args((cfg), (const char *const[]){ __VA_ARGS__, NULL })

static uint64_t size_of(const char *s)
{
	uint64_t v = 0xdeadbeef;

	assert_int_equal(config__parse_size(s, &v), 0);
	return v;
}

/* --- config__parse_size ------------------------------------------------ */

static void test_size_accepts_suffixes(void **state)
{
	assert_int_equal(size_of("512M"), 512 * SZ_1M);
	assert_int_equal(size_of("512m"), 512 * SZ_1M);
	assert_int_equal(size_of("2G"), 2 * SZ_1G);
	assert_int_equal(size_of("64K"), 64 * SZ_1K);
	assert_int_equal(size_of("1T"), 1024 * SZ_1G);
}

static void test_size_bare_number_is_mib(void **state)
{
	assert_int_equal(size_of("1024"), 1024 * SZ_1M);
	assert_int_equal(size_of("1"), SZ_1M);
}

static void test_size_accepts_ib_and_b_spellings(void **state)
{
	assert_int_equal(size_of("1GiB"), SZ_1G);
	assert_int_equal(size_of("1gib"), SZ_1G);
	assert_int_equal(size_of("256MB"), 256 * SZ_1M);
	assert_int_equal(size_of("256Mb"), 256 * SZ_1M);
}

static void test_size_rejects_bad_suffixes(void **state)
{
	static const char *const bad[] = {
		"512X", "512Mx", "512MiBx", "1Gi", "1iB", "512 M", "1.5G", "G", "",
		"-1G", "-1", "0x10M", "512MM", "1B",
	};
	uint64_t v = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = config__parse_size(bad[i], &v);

		if (err != -EINVAL)
			fail_msg("size \"%s\" gave %d, expected -EINVAL", bad[i], err);
	}
	assert_int_equal(config__parse_size(NULL, &v), -EINVAL);
	assert_int_equal(v, 42); /* untouched on failure */
}

static void test_size_rejects_overflow(void **state)
{
	uint64_t v = 42;

	/* 2^34 GiB = 2^64 bytes: the multiplication would wrap. */
	assert_int_equal(config__parse_size("17179869184G", &v), -ERANGE);
	assert_int_equal(config__parse_size("18446744073709551615", &v), -ERANGE);
	assert_int_equal(config__parse_size("16777216T", &v), -ERANGE);
	/* Beyond unsigned long long itself. */
	assert_int_equal(config__parse_size("99999999999999999999999", &v), -EINVAL);
	assert_int_equal(v, 42);
	/* The largest GiB count that fits is accepted. */
	assert_int_equal(size_of("17179869183G"), 17179869183ULL * SZ_1G);
}

/* --- kv_opt__parse / kv_opt__get -------------------------------------- */

static void kv_free(struct kv_opt *o)
{
	free(o->kind);
	for (int i = 0; i < o->n; i++) {
		free(o->key[i]);
		free(o->val[i]);
	}
	memset(o, 0, sizeof(*o));
}

static void test_kv_opt_parses_kind_and_keys(void **state)
{
	struct kv_opt o;

	assert_int_equal(kv_opt__parse(&o, "slirp,hostfwd=tcp::2222-:22,mac=52:54:00:12:34:56"), 0);
	assert_string_equal(o.kind, "slirp");
	assert_int_equal(o.n, 2);
	assert_string_equal(kv_opt__get(&o, "hostfwd"), "tcp::2222-:22");
	assert_string_equal(kv_opt__get(&o, "mac"), "52:54:00:12:34:56");
	assert_null(kv_opt__get(&o, "slirp"));
	assert_null(kv_opt__get(&o, "tap"));
	kv_free(&o);
}

static void test_kv_opt_without_kind_has_null_kind(void **state)
{
	struct kv_opt o;

	assert_int_equal(kv_opt__parse(&o, "path=/srv/a.raw,readonly=on"), 0);
	assert_null(o.kind);
	assert_int_equal(o.n, 2);
	assert_string_equal(kv_opt__get(&o, "path"), "/srv/a.raw");
	assert_string_equal(kv_opt__get(&o, "readonly"), "on");
	kv_free(&o);
}

static void test_kv_opt_value_keeps_later_equals_and_may_be_empty(void **state)
{
	struct kv_opt o;

	assert_int_equal(kv_opt__parse(&o, "tap=tap0,id=a=b,cache="), 0);
	assert_string_equal(kv_opt__get(&o, "tap"), "tap0");
	assert_string_equal(kv_opt__get(&o, "id"), "a=b");
	assert_string_equal(kv_opt__get(&o, "cache"), "");
	kv_free(&o);
}

static void test_kv_opt_rejects_empty_key_and_second_bare_word(void **state)
{
	struct kv_opt o;

	assert_int_equal(kv_opt__parse(&o, "=x"), -EINVAL);
	kv_free(&o);
	assert_int_equal(kv_opt__parse(&o, "path=a,=x"), -EINVAL);
	kv_free(&o);
	assert_int_equal(kv_opt__parse(&o, "slirp,tap"), -EINVAL);
	kv_free(&o);
}

/* A failed parse must not leave half an option behind: the caller does not
 * count it, so nothing would ever free what it holds. */
static void test_kv_opt_failure_leaves_option_empty(void **state)
{
	struct kv_opt o;

	char *kind;
	int n;

	assert_int_equal(kv_opt__parse(&o, "slirp,mac=1,bogus"), -EINVAL);
	kind = o.kind;
	n = o.n;
	kv_free(&o); /* only so a failure here does not also leak */
	assert_null(kind);
	assert_int_equal(n, 0);
}

static void test_kv_opt_rejects_too_many_keys(void **state)
{
	char s[512] = "";
	struct kv_opt o;
	int n;

	for (int i = 0; i < VMM_MAX_KV; i++)
		sprintf(s + strlen(s), "%sk%d=v", i ? "," : "", i);
	assert_int_equal(kv_opt__parse(&o, s), 0);
	assert_int_equal(o.n, VMM_MAX_KV);
	assert_string_equal(kv_opt__get(&o, "k15"), "v");
	kv_free(&o);

	strcat(s, ",one=more");
	assert_int_equal(kv_opt__parse(&o, s), -E2BIG);
	n = o.n;
	kv_free(&o);
	assert_int_equal(n, 0); /* nothing half-parsed left behind */
}

/* --- config__parse ---------------------------------------------------- */

static void test_config_defaults(void **state)
{
	struct vm_config cfg;

	assert_int_equal(PARSE(&cfg, "--kernel", "bzImage"), 0);
	assert_string_equal(cfg.kernel, "bzImage");
	assert_null(cfg.initrd);
	assert_null(cfg.cmdline);
	assert_int_equal(cfg.mem_size, 256 * SZ_1M);
	assert_int_equal(cfg.nr_cpus, 1);
	assert_int_equal(cfg.serial, SERIAL_STDIO);
	assert_null(cfg.serial_path);
	assert_int_equal(cfg.on_reboot, ON_REBOOT_EXIT);
	assert_int_equal(cfg.stop_timeout_s, 30);
	assert_int_equal(cfg.incoming_nice, -10);
	assert_int_equal(cfg.nr_disks, 0);
	assert_int_equal(cfg.nr_nics, 0);
	assert_false(cfg.verbose);
	config__free(&cfg);
}

static void test_config_parses_all_options(void **state)
{
	struct vm_config cfg;

	assert_int_equal(PARSE(&cfg, "--kernel", "k", "--initrd", "i", "--cmdline",
			       "console=ttyS0 quiet", "--memory", "512M", "--cpus", "4",
			       "--on-reboot", "restart", "--stop-timeout", "0", "-v"),
			 0);
	assert_string_equal(cfg.kernel, "k");
	assert_string_equal(cfg.initrd, "i");
	assert_string_equal(cfg.cmdline, "console=ttyS0 quiet");
	assert_int_equal(cfg.mem_size, 512 * SZ_1M);
	assert_int_equal(cfg.nr_cpus, 4);
	assert_int_equal(cfg.on_reboot, ON_REBOOT_RESTART);
	assert_int_equal(cfg.stop_timeout_s, 0);
	assert_true(cfg.verbose);
	config__free(&cfg);
}

static void test_config_requires_kernel(void **state)
{
	struct vm_config cfg;

	assert_int_equal(PARSE(&cfg, "--memory", "512M"), -EINVAL);
	config__free(&cfg);
}

static void test_config_cpus_accepts_1_to_255(void **state)
{
	struct vm_config cfg;

	assert_int_equal(PARSE(&cfg, "--kernel", "k", "--cpus", "1"), 0);
	assert_int_equal(cfg.nr_cpus, 1);
	config__free(&cfg);
	assert_int_equal(PARSE(&cfg, "--kernel", "k", "--cpus=255"), 0);
	assert_int_equal(cfg.nr_cpus, 255);
	config__free(&cfg);
}

static void test_config_cpus_refuses_0_256_and_words(void **state)
{
	static const char *const bad[] = { "0", "256", "abc", "", "-1", "2x", "1.5",
					   "99999999999999999999" };
	struct vm_config cfg;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = PARSE(&cfg, "--kernel", "k", "--cpus", bad[i]);

		if (err != -EINVAL)
			fail_msg("--cpus \"%s\" gave %d, expected -EINVAL", bad[i], err);
		config__free(&cfg);
	}
}

static void test_config_memory_refuses_bad_sizes(void **state)
{
	static const char *const bad[] = { "8M", "17M", "abc", "512X", "0",
					   "600G", "17179869184G" };
	struct vm_config cfg;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = PARSE(&cfg, "--kernel", "k", "--memory", bad[i]);

		if (err != -EINVAL)
			fail_msg("--memory \"%s\" gave %d, expected -EINVAL", bad[i], err);
		config__free(&cfg);
	}
}

static void test_config_memory_accepts_minimum_and_bare_mib(void **state)
{
	struct vm_config cfg;

	assert_int_equal(PARSE(&cfg, "--kernel", "k", "--memory", "16M"), 0);
	assert_int_equal(cfg.mem_size, 16 * SZ_1M);
	config__free(&cfg);
	assert_int_equal(PARSE(&cfg, "--kernel", "k", "--memory", "128"), 0);
	assert_int_equal(cfg.mem_size, 128 * SZ_1M);
	config__free(&cfg);
}

static void test_config_repeated_disk_and_net_parse_into_kv_opts(void **state)
{
	struct vm_config cfg;

	assert_int_equal(PARSE(&cfg, "--kernel", "k", "--disk", "path=/a.raw,readonly=on",
			       "--net", "slirp,hostfwd=tcp::2222-:22", "--disk",
			       "path=/b.raw,cache=none,queues=2,id=data", "--net",
			       "tap=tap0,mac=52:54:00:00:00:01"),
			 0);
	assert_int_equal(cfg.nr_disks, 2);
	assert_null(cfg.disks[0].kind);
	assert_string_equal(kv_opt__get(&cfg.disks[0], "path"), "/a.raw");
	assert_string_equal(kv_opt__get(&cfg.disks[0], "readonly"), "on");
	assert_string_equal(kv_opt__get(&cfg.disks[1], "path"), "/b.raw");
	assert_string_equal(kv_opt__get(&cfg.disks[1], "cache"), "none");
	assert_string_equal(kv_opt__get(&cfg.disks[1], "queues"), "2");
	assert_string_equal(kv_opt__get(&cfg.disks[1], "id"), "data");
	assert_null(kv_opt__get(&cfg.disks[1], "readonly"));

	assert_int_equal(cfg.nr_nics, 2);
	assert_string_equal(cfg.nics[0].kind, "slirp");
	assert_string_equal(kv_opt__get(&cfg.nics[0], "hostfwd"), "tcp::2222-:22");
	assert_null(cfg.nics[1].kind);
	assert_string_equal(kv_opt__get(&cfg.nics[1], "tap"), "tap0");
	assert_string_equal(kv_opt__get(&cfg.nics[1], "mac"), "52:54:00:00:00:01");

	config__free(&cfg);
	assert_int_equal(cfg.nr_disks, 0);
	assert_int_equal(cfg.nr_nics, 0);
}

static void test_config_refuses_malformed_disk(void **state)
{
	struct vm_config cfg;

	assert_int_equal(PARSE(&cfg, "--kernel", "k", "--disk", "path=/a.raw",
			       "--disk", "path=/b.raw,=on"),
			 -EINVAL);
	assert_int_equal(cfg.nr_disks, 1);
	config__free(&cfg);
}

static void test_config_refuses_too_many_disks(void **state)
{
	const char *args[2 * (VMM_MAX_DISKS + 1) + 3];
	struct vm_config cfg;
	int n = 0;

	args[n++] = "--kernel";
	args[n++] = "k";
	for (int i = 0; i <= VMM_MAX_DISKS; i++) {
		args[n++] = "--disk";
		args[n++] = "path=/x";
	}
	args[n] = NULL;
	/* MAX_ARGS is too few for 17 disks; build the argv by hand. */
	{
		char *argv[sizeof(args) / sizeof(args[0]) + 1];
		char bufs[sizeof(args) / sizeof(args[0])][16];

		argv[0] = strcpy(bufs[0], "vmm");
		for (int i = 0; i < n; i++)
			argv[i + 1] = strcpy(bufs[i + 1], args[i]);
		argv[n + 1] = NULL;
		assert_int_equal(config__parse(&cfg, n - 1, argv), 0); /* 16 disks */
		assert_int_equal(cfg.nr_disks, VMM_MAX_DISKS);
		config__free(&cfg);

		for (int i = 0; i < n; i++)
			argv[i + 1] = strcpy(bufs[i + 1], args[i]);
		assert_int_equal(config__parse(&cfg, n + 1, argv), -EINVAL);
		assert_int_equal(cfg.nr_disks, VMM_MAX_DISKS);
		config__free(&cfg);
	}
}

static void test_config_refuses_unknown_option(void **state)
{
	struct vm_config cfg;

	assert_int_equal(PARSE(&cfg, "--kernel", "k", "--bogus"), -EINVAL);
	config__free(&cfg);
	assert_int_equal(PARSE(&cfg, "--kernel", "k", "-x"), -EINVAL);
	config__free(&cfg);
	/* A later good parse is not confused by the failed one. */
	assert_int_equal(PARSE(&cfg, "--kernel", "k"), 0);
	config__free(&cfg);
}

static void test_config_refuses_missing_value(void **state)
{
	struct vm_config cfg;

	assert_int_equal(PARSE(&cfg, "--kernel"), -EINVAL);
	config__free(&cfg);
	assert_int_equal(PARSE(&cfg, "--kernel", "k", "--memory"), -EINVAL);
	config__free(&cfg);
}

static void test_config_refuses_stray_argument(void **state)
{
	struct vm_config cfg;

	assert_int_equal(PARSE(&cfg, "--kernel", "k", "extra"), -EINVAL);
	config__free(&cfg);
}

static void test_config_refuses_bad_on_reboot_and_stop_timeout(void **state)
{
	struct vm_config cfg;

	assert_int_equal(PARSE(&cfg, "--kernel", "k", "--on-reboot", "reset"), -EINVAL);
	config__free(&cfg);
	assert_int_equal(PARSE(&cfg, "--kernel", "k", "--stop-timeout", "86401"), -EINVAL);
	config__free(&cfg);
	assert_int_equal(PARSE(&cfg, "--kernel", "k", "--stop-timeout", "86400"), 0);
	assert_int_equal(cfg.stop_timeout_s, 86400);
	config__free(&cfg);
}

static void test_config_incoming_nice_takes_minus_20_to_19(void **state)
{
	static const char *const bad[] = { "-21", "20", "", "5x", "ten", "99999999999999999999" };
	struct vm_config cfg;

	assert_int_equal(PARSE(&cfg, "--incoming", ":1", "--incoming-nice", "-20"), 0);
	assert_int_equal(cfg.incoming_nice, -20);
	config__free(&cfg);
	assert_int_equal(PARSE(&cfg, "--incoming", ":1", "--incoming-nice", "19"), 0);
	assert_int_equal(cfg.incoming_nice, 19);
	config__free(&cfg);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(PARSE(&cfg, "--incoming", ":1", "--incoming-nice", bad[i]),
				 -EINVAL);
		config__free(&cfg);
	}
}

static void test_config_serial_kinds(void **state)
{
	struct vm_config cfg;

	assert_int_equal(PARSE(&cfg, "--kernel", "k", "--serial", "none"), 0);
	assert_int_equal(cfg.serial, SERIAL_NONE);
	config__free(&cfg);
	assert_int_equal(PARSE(&cfg, "--kernel", "k", "--serial", "stdio"), 0);
	assert_int_equal(cfg.serial, SERIAL_STDIO);
	config__free(&cfg);
	assert_int_equal(PARSE(&cfg, "--kernel", "k", "--serial", "file:/tmp/con.log"), 0);
	assert_int_equal(cfg.serial, SERIAL_FILE);
	assert_string_equal(cfg.serial_path, "/tmp/con.log");
	config__free(&cfg);
	assert_int_equal(PARSE(&cfg, "--kernel", "k", "--serial", "unix:/run/con.sock"), 0);
	assert_int_equal(cfg.serial, SERIAL_UNIX);
	assert_string_equal(cfg.serial_path, "/run/con.sock");
	config__free(&cfg);
}

static void test_config_serial_refuses_unknown_kind_and_empty_path(void **state)
{
	static const char *const bad[] = { "file:", "unix:", "tcp:1234", "", "STDIO", "pty" };
	struct vm_config cfg;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = PARSE(&cfg, "--kernel", "k", "--serial", bad[i]);

		if (err != -EINVAL)
			fail_msg("--serial \"%s\" gave %d, expected -EINVAL", bad[i], err);
		config__free(&cfg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_accepts_suffixes),
		cmocka_unit_test(test_size_bare_number_is_mib),
		cmocka_unit_test(test_size_accepts_ib_and_b_spellings),
		cmocka_unit_test(test_size_rejects_bad_suffixes),
		cmocka_unit_test(test_size_rejects_overflow),
		cmocka_unit_test(test_kv_opt_parses_kind_and_keys),
		cmocka_unit_test(test_kv_opt_without_kind_has_null_kind),
		cmocka_unit_test(test_kv_opt_value_keeps_later_equals_and_may_be_empty),
		cmocka_unit_test(test_kv_opt_rejects_empty_key_and_second_bare_word),
		cmocka_unit_test(test_kv_opt_failure_leaves_option_empty),
		cmocka_unit_test(test_kv_opt_rejects_too_many_keys),
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_parses_all_options),
		cmocka_unit_test(test_config_requires_kernel),
		cmocka_unit_test(test_config_cpus_accepts_1_to_255),
		cmocka_unit_test(test_config_cpus_refuses_0_256_and_words),
		cmocka_unit_test(test_config_memory_refuses_bad_sizes),
		cmocka_unit_test(test_config_memory_accepts_minimum_and_bare_mib),
		cmocka_unit_test(test_config_repeated_disk_and_net_parse_into_kv_opts),
		cmocka_unit_test(test_config_refuses_malformed_disk),
		cmocka_unit_test(test_config_refuses_too_many_disks),
		cmocka_unit_test(test_config_refuses_unknown_option),
		cmocka_unit_test(test_config_refuses_missing_value),
		cmocka_unit_test(test_config_refuses_stray_argument),
		cmocka_unit_test(test_config_refuses_bad_on_reboot_and_stop_timeout),
		cmocka_unit_test(test_config_incoming_nice_takes_minus_20_to_19),
		cmocka_unit_test(test_config_serial_kinds),
		cmocka_unit_test(test_config_serial_refuses_unknown_kind_and_empty_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
