/* tests/unit/test_spec_fd.c — vmm --spec-fd: the spec vmmd hands over on a socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/spec_fd.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char spec[] = "--kernel\0/k\0--cmdline\0console=ttyS0 quiet\0";

static void test_split_counts_nul_terminated_strings(void **state)
{
	char buf[sizeof(spec)];
	char **v;
	int n = -1;

	(void)state;
	memcpy(buf, spec, sizeof(spec));
	v = spec_fd__split(buf, sizeof(spec) - 1, &n);
	assert_non_null(v);
	assert_int_equal(n, 4);
	assert_string_equal(v[3], "console=ttyS0 quiet");
	assert_null(v[4]);
	free(v);
}

static void test_split_rejects_a_missing_final_nul(void **state)
{
	char buf[] = {'a', 0, 'b'};
	int n;

	(void)state;
	assert_null(spec_fd__split(buf, sizeof(buf), &n));
}

static void test_split_of_nothing_is_empty(void **state)
{
	char buf[1];
	char **v;
	int n = -1;

	(void)state;
	v = spec_fd__split(buf, 0, &n);
	assert_non_null(v);
	assert_int_equal(n, 0);
	free(v);
}

static void test_expand_without_spec_fd_changes_nothing(void **state)
{
	char *argv[] = {"vmm", "--kernel", "/k", NULL}, why[128], **out;
	int argc = 3, n;

	(void)state;
	assert_int_equal(spec_fd__expand(argc, argv, &n, &out, why, sizeof(why)), 0);
	assert_null(out);
}

/* A socket reads once, so the spec moves into a memfd that argv[2] names:
 * exec'ing argv again (restart after reboot) finds the same options. */
static void test_expand_reads_a_socket_and_keeps_it_for_a_restart(void **state)
{
	char fdstr[16], why[128], **out, **again;
	char *argv[] = {"vmm", "--spec-fd", fdstr, "-v", NULL};
	int sv[2], n, fd;
	struct stat st;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[0], spec, sizeof(spec) - 1), (ssize_t)sizeof(spec) - 1);
	close(sv[0]);
	snprintf(fdstr, sizeof(fdstr), "%d", sv[1]);
	assert_int_equal(spec_fd__expand(4, argv, &n, &out, why, sizeof(why)), 0);
	assert_non_null(out);
	assert_int_equal(n, 6);
	assert_string_equal(out[0], "vmm");
	assert_string_equal(out[2], "/k");
	assert_string_equal(out[4], "console=ttyS0 quiet");
	assert_string_equal(out[5], "-v");
	assert_null(out[6]);
	/* The socket is closed; argv[2] now names a regular file with the spec. */
	assert_int_equal(fcntl(sv[1], F_GETFD), -1);
	fd = atoi(argv[2]);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	assert_int_equal(spec_fd__expand(4, argv, &n, &again, why, sizeof(why)), 0);
	assert_int_equal(n, 6);
	assert_string_equal(again[4], "console=ttyS0 quiet");
	close(fd);
}

static void test_expand_refuses_a_bad_descriptor(void **state)
{
	char *argv[] = {"vmm", "--spec-fd", "x", NULL},
	     *argv2[] = {"vmm", "--spec-fd", "999", NULL}, why[128], **out;
	int n;

	(void)state;
	assert_int_equal(spec_fd__expand(3, argv, &n, &out, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "'x'"));
	assert_int_equal(spec_fd__expand(3, argv2, &n, &out, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "open file descriptor"));
}

static void test_expand_refuses_an_unterminated_spec(void **state)
{
	char fdstr[16], why[128], **out;
	char *argv[] = {"vmm", "--spec-fd", fdstr, NULL};
	int p[2], n;

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "--kernel", 8), 8);
	close(p[1]);
	snprintf(fdstr, sizeof(fdstr), "%d", p[0]);
	assert_int_equal(spec_fd__expand(3, argv, &n, &out, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "NUL-terminated"));
	close(p[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split_counts_nul_terminated_strings),
	    cmocka_unit_test(test_split_rejects_a_missing_final_nul),
	    cmocka_unit_test(test_split_of_nothing_is_empty),
	    cmocka_unit_test(test_expand_without_spec_fd_changes_nothing),
	    cmocka_unit_test(test_expand_reads_a_socket_and_keeps_it_for_a_restart),
	    cmocka_unit_test(test_expand_refuses_a_bad_descriptor),
	    cmocka_unit_test(test_expand_refuses_an_unterminated_spec),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
