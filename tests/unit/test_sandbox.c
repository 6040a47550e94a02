/* tests/unit/test_sandbox.c — the paravisor's sandbox entered for real by a
 * forked child: the calls the serving loop makes still work, anything else
 * (a socket, a fork, executable memory) kills the child by SIGSYS, and from
 * the outside the child has no new privileges, a seccomp filter, no
 * capabilities, none of the fds it inherited but the kept one, and (as
 * root) its own uid and mount namespace.  seccomp needs no KVM: these run
 * on any Linux host. */
#include "paravisor/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

enum child_act {
	ACT_SERVE,
	ACT_SOCKET,
	ACT_FORK,
	ACT_EXEC_MEM,
	ACT_WAIT,
	ACT_IO_URING,
	ACT_DEVICES,
	ACT_TAP,
	ACT_TAP_SETIFF,
};

/* The fds a child gets: sync pipes (close-on-exec, so its own), one
 * inherited fd it keeps and one it does not. */
struct kid {
	pid_t pid;
	int ready[2], go[2];
	int kept, dropped;
};

static void *thread_fn(void *arg)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep >= 0)
		close(ep);
	return arg;
}

/* In the child, after sandbox__enter: 0 when the act came through. */
static int child_act(enum child_act act, struct kid *k)
{
	pthread_t t;
	void *p;
	char c = 'r';

	switch (act) {
	case ACT_SERVE:
		/* A model thread, malloc, memory and fds, as the serving loop. */
		if (pthread_create(&t, NULL, thread_fn, NULL) || pthread_join(t, NULL))
			return 1;
		p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return 2;
		free(malloc(1 << 20));
		munmap(p, 1 << 20);
		if (write(k->ready[1], &c, 1) != 1)
			return 3;
		return 0;
	case ACT_SOCKET: return socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 0 : 10;
	case ACT_FORK: return fork() >= 0 ? 0 : 11;
	case ACT_EXEC_MEM:
		p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return p != MAP_FAILED ? 0 : 12;
	case ACT_WAIT:
		/* Tell the parent we are inside, wait for its word, then socket. */
		if (write(k->ready[1], &c, 1) != 1 || read(k->go[0], &c, 1) != 1)
			return 13;
		return socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 0 : 14;
	case ACT_IO_URING:
		/* No ring: EBADF when the call is allowed. */
		return syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0) < 0 && errno == EBADF ? 0
											       : 15;
	case ACT_DEVICES: {
		/* A disk's io_uring and a NIC's thread (its stop eventfd,
		 * polled), tell the parent, then an Internet socket. */
		int efd;
		struct pollfd p;

		if (child_act(ACT_IO_URING, k))
			return 16;
		efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (efd < 0)
			return 17;
		p = (struct pollfd){.fd = efd, .events = POLLIN};
		if (poll(&p, 1, 0) < 0)
			return 18;
		close(efd);
		if (write(k->ready[1], &c, 1) != 1)
			return 19;
		return socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 0 : 20;
	}
	case ACT_TAP: {
		/* A tap NIC's thread: its io_uring, the offloads the guest
		 * sets (no tap here: EBADF when allowed), a timed wait that
		 * io_uring's work interrupted resuming, a synchronous writev
		 * (which tells the parent), then an Internet socket. */
		struct iovec iov = {.iov_base = &c, .iov_len = 1};

		if (child_act(ACT_IO_URING, k))
			return 21;
		if (ioctl(-1, TUNSETOFFLOAD, 0) == 0 || errno != EBADF)
			return 22;
		/* Nothing to resume: EINTR when allowed. */
		if (syscall(SYS_restart_syscall) == 0 || errno != EINTR)
			return 26;
		if (writev(k->ready[1], &iov, 1) != 1)
			return 23;
		return socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 0 : 24;
	}
	case ACT_TAP_SETIFF:
		/* Any other tap ioctl: attaching it elsewhere, say. */
		return ioctl(-1, TUNSETIFF, NULL) == 0 || errno != EBADF ? 25 : 0;
	}
	return 99;
}

static void kid_start(struct kid *k, const struct sandbox_opts *o, enum child_act act)
{
	int p[2];

	memset(k, 0, sizeof(*k));
	assert_int_equal(pipe2(k->ready, O_CLOEXEC), 0);
	assert_int_equal(pipe2(k->go, O_CLOEXEC), 0);
	assert_int_equal(pipe(p), 0); /* not close-on-exec: "inherited" */
	k->kept = p[0];
	k->dropped = p[1];
	fflush(NULL);
	k->pid = fork();
	assert_true(k->pid >= 0);
	if (!k->pid) {
		int rc = sandbox__enter(o, &k->kept, 1);

		_exit(rc ? 100 : child_act(act, k));
	}
	close(p[0]);
	close(p[1]);
	close(k->ready[1]);
	close(k->go[0]);
}

/* The child's wait status. */
static int kid_wait(struct kid *k)
{
	int st;

	close(k->ready[0]);
	close(k->go[1]);
	assert_int_equal(waitpid(k->pid, &st, 0), k->pid);
	return st;
}

static void assert_killed_by_sigsys(int st)
{
	if (!WIFSIGNALED(st))
		fail_msg("child exited %d instead of dying by SIGSYS", WEXITSTATUS(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
}

static void test_sandbox_allows_what_the_serving_loop_calls(void **state)
{
	struct sandbox_opts o = SANDBOX_OPTS_INIT;
	struct kid k;
	char c;
	int st;

	kid_start(&k, &o, ACT_SERVE);
	assert_int_equal(read(k.ready[0], &c, 1), 1);
	st = kid_wait(&k);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_sandbox_kills_a_socket_call_by_sigsys(void **state)
{
	struct sandbox_opts o = SANDBOX_OPTS_INIT;
	struct kid k;

	kid_start(&k, &o, ACT_SOCKET);
	assert_killed_by_sigsys(kid_wait(&k));
}

static void test_sandbox_kills_fork_but_not_threads(void **state)
{
	struct sandbox_opts o = SANDBOX_OPTS_INIT;
	struct kid k;

	kid_start(&k, &o, ACT_FORK);
	assert_killed_by_sigsys(kid_wait(&k));
}

static void test_sandbox_kills_executable_memory(void **state)
{
	struct sandbox_opts o = SANDBOX_OPTS_INIT;
	struct kid k;

	kid_start(&k, &o, ACT_EXEC_MEM);
	assert_killed_by_sigsys(kid_wait(&k));
}

/* The value of "Key:" in /proc/PID/status, or "" . */
static const char *status_field(pid_t pid, const char *key, char *buf, size_t len)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	buf[0] = 0;
	f = fopen(path, "r");
	if (!f)
		return buf;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':') {
			const char *v = line + strlen(key) + 1;

			v += strspn(v, " \t");
			snprintf(buf, len, "%.*s", (int)strcspn(v, "\n"), v);
			break;
		}
	fclose(f);
	return buf;
}

static bool has_fd(pid_t pid, int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	return !access(path, F_OK);
}

static void ns_of(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	n = readlink(path, buf, len - 1);
	buf[n > 0 ? n : 0] = 0;
}

static void test_sandbox_as_seen_from_outside(void **state)
{
	struct sandbox_opts o = SANDBOX_OPTS_INIT;
	char buf[128], mine[64], its[64];
	struct kid k;
	char c = 'g';

	kid_start(&k, &o, ACT_WAIT);
	assert_int_equal(read(k.ready[0], &c, 1), 1);
	assert_string_equal(status_field(k.pid, "NoNewPrivs", buf, sizeof(buf)), "1");
	assert_string_equal(status_field(k.pid, "Seccomp", buf, sizeof(buf)), "2");
	assert_string_equal(status_field(k.pid, "CapEff", buf, sizeof(buf)), "0000000000000000");
	assert_string_equal(status_field(k.pid, "CapPrm", buf, sizeof(buf)), "0000000000000000");
	assert_true(has_fd(k.pid, k.kept));
	assert_false(has_fd(k.pid, k.dropped));
	if (geteuid() == 0) {
		/* Root may do all of it; elsewhere these steps are skipped. */
		assert_string_equal(status_field(k.pid, "CapBnd", buf, sizeof(buf)),
				    "0000000000000000");
		assert_string_equal(status_field(k.pid, "Uid", buf, sizeof(buf)),
				    "65534\t65534\t65534\t65534");
		ns_of(getpid(), mine, sizeof(mine));
		ns_of(k.pid, its, sizeof(its));
		assert_string_not_equal(mine, its);
	}
	assert_int_equal(write(k.go[1], &c, 1), 1);
	assert_killed_by_sigsys(kid_wait(&k));
}

static void test_sandbox_off_leaves_the_process_alone(void **state)
{
	struct sandbox_opts o = SANDBOX_OPTS_INIT;
	char buf[128];
	struct kid k;
	char c = 'g';
	int st;

	o.off = true;
	kid_start(&k, &o, ACT_WAIT);
	assert_int_equal(read(k.ready[0], &c, 1), 1);
	assert_string_equal(status_field(k.pid, "Seccomp", buf, sizeof(buf)), "0");
	assert_true(has_fd(k.pid, k.dropped));
	assert_int_equal(write(k.go[1], &c, 1), 1);
	st = kid_wait(&k);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* The hook the integration test uses: SIGUSR1 makes the forbidden call. */
static void test_sandbox_test_hook_dies_by_sigsys_on_sigusr1(void **state)
{
	struct sandbox_opts o = SANDBOX_OPTS_INIT;
	struct kid k;
	char c;

	o.forbidden_hook = true;
	kid_start(&k, &o, ACT_WAIT);
	assert_int_equal(read(k.ready[0], &c, 1), 1);
	assert_int_equal(kill(k.pid, SIGUSR1), 0);
	assert_killed_by_sigsys(kid_wait(&k));
}

/* One paravisor serves all of a VM's devices: its profile is the union of
 * theirs.  A disk's io_uring is a disk's only. */
static void test_sandbox_gives_io_uring_to_a_disk_only(void **state)
{
	struct sandbox_opts o = SANDBOX_OPTS_INIT;
	struct kid k;
	int st;

	o.profile = SANDBOX_BLK;
	kid_start(&k, &o, ACT_IO_URING);
	st = kid_wait(&k);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	o.profile = SANDBOX_NIC;
	kid_start(&k, &o, ACT_IO_URING);
	assert_killed_by_sigsys(kid_wait(&k));
}

/* A child of profile does act: its devices' calls come through (it tells
 * us), then the socket kills it. */
static void assert_devices_but_no_network(unsigned int profile, enum child_act act)
{
	struct sandbox_opts o = SANDBOX_OPTS_INIT;
	struct kid k;
	char c;

	o.profile = profile;
	kid_start(&k, &o, act);
	assert_int_equal(read(k.ready[0], &c, 1), 1);
	assert_killed_by_sigsys(kid_wait(&k));
}

/* A disk and a NIC whose stack is a netstack: both devices' calls, and
 * still no network. */
static void test_sandbox_disk_and_nic_combine_without_network(void **state)
{
	assert_devices_but_no_network(SANDBOX_BLK | SANDBOX_NIC, ACT_DEVICES);
}

/* A slirp stack in the same process adds the host's network. */
static void test_sandbox_a_slirp_nic_adds_internet_sockets(void **state)
{
	struct sandbox_opts o = SANDBOX_OPTS_INIT;
	struct kid k;
	char c;
	int st;

	o.profile = SANDBOX_BLK | SANDBOX_NIC | SANDBOX_NET;
	kid_start(&k, &o, ACT_DEVICES);
	assert_int_equal(read(k.ready[0], &c, 1), 1);
	st = kid_wait(&k);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* A tap NIC: its io_uring, writev and the offload ioctl, but no network,
 * no other tap ioctl; alone, a NIC whose stack is a netstack gets none of
 * them; with a disk, both devices' calls. */
static void test_sandbox_a_tap_nic_gets_its_io_uring_and_offloads_only(void **state)
{
	struct sandbox_opts o = SANDBOX_OPTS_INIT;
	struct kid k;
	char c;

	assert_devices_but_no_network(SANDBOX_NIC | SANDBOX_TAP, ACT_TAP);
	assert_devices_but_no_network(SANDBOX_BLK | SANDBOX_NIC | SANDBOX_TAP, ACT_TAP);
	o.profile = SANDBOX_NIC | SANDBOX_TAP;
	kid_start(&k, &o, ACT_TAP_SETIFF);
	assert_killed_by_sigsys(kid_wait(&k));
	o.profile = SANDBOX_NIC;
	kid_start(&k, &o, ACT_TAP);
	assert_int_equal(read(k.ready[0], &c, 1), 0); /* killed before */
	assert_killed_by_sigsys(kid_wait(&k));
}

static void test_sandbox_rejects_a_bad_uid(void **state)
{
	struct sandbox_opts o = SANDBOX_OPTS_INIT;

	assert_int_equal(sandbox__opt(&o, SANDBOX_OPT_UID, "1000"), 0);
	assert_int_equal(o.uid, 1000);
	assert_int_equal(sandbox__opt(&o, SANDBOX_OPT_GID, "-1"), -EINVAL);
	assert_int_equal(sandbox__opt(&o, SANDBOX_OPT_UID, "12x"), -EINVAL);
	assert_int_equal(sandbox__opt(&o, SANDBOX_OPT_UID, ""), -EINVAL);
	assert_int_equal(o.uid, 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sandbox_allows_what_the_serving_loop_calls),
	    cmocka_unit_test(test_sandbox_kills_a_socket_call_by_sigsys),
	    cmocka_unit_test(test_sandbox_kills_fork_but_not_threads),
	    cmocka_unit_test(test_sandbox_kills_executable_memory),
	    cmocka_unit_test(test_sandbox_as_seen_from_outside),
	    cmocka_unit_test(test_sandbox_off_leaves_the_process_alone),
	    cmocka_unit_test(test_sandbox_test_hook_dies_by_sigsys_on_sigusr1),
	    cmocka_unit_test(test_sandbox_gives_io_uring_to_a_disk_only),
	    cmocka_unit_test(test_sandbox_disk_and_nic_combine_without_network),
	    cmocka_unit_test(test_sandbox_a_slirp_nic_adds_internet_sockets),
	    cmocka_unit_test(test_sandbox_a_tap_nic_gets_its_io_uring_and_offloads_only),
	    cmocka_unit_test(test_sandbox_rejects_a_bad_uid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
