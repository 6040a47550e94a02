/*
 * paravisor/sandbox.c — what a compromised paravisor is left with: the fds
 * it was handed and the syscalls its serving loop makes.
 *
 * sandbox__enter() runs once, after the process has opened everything it
 * will use (images, io_uring, eventfds, every device's front-end socket)
 * and before it reads the first message.  In order, because each step needs what the
 * next one takes away:
 *
 *  1. close every inherited fd but 0, 1, 2 and the ones the caller keeps
 *     (needs /proc/self/fd);
 *  2. PR_SET_NO_NEW_PRIVS;
 *  3. new mount, network and IPC namespaces whose root is an empty,
 *     read-only tmpfs (as root directly; otherwise inside a new user
 *     namespace where the host permits one) — the network namespace unless
 *     a slirp stack runs in the process: it is the guest's way to the
 *     host's network;
 *  4. empty the capability bounding set (needs CAP_SETPCAP), then switch to
 *     its own uid and gid when started as root (--uid/--gid, else nobody),
 *     then clear every capability;
 *  5. load the seccomp allow-list: the calls of the serving loop, and the
 *     union of what the process's devices add (a disk's io_uring, a NIC's
 *     polling, a tap's io_uring and offloads, a slirp stack's Internet
 *     sockets: the profile's flags);
 *     anything else kills the whole process with SIGSYS
 *     (SCMP_ACT_KILL_PROCESS), so its supervisor sees it die.
 *
 * Steps 3 and 4 are skipped, with a debug line saying why, where the host
 * does not permit them; 1, 2 and 5 work for any user and failing them fails
 * the start.
 */
#include "paravisor/sandbox.h"

#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The sanitizer runtime makes calls of its own (see below). */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZERS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZERS 1
#endif
#endif

int sandbox__opt(struct sandbox_opts *o, int c, const char *arg)
{
	char *end;
	long v;

	switch (c) {
	case SANDBOX_OPT_OFF: o->off = true; return 0;
	case SANDBOX_OPT_SECCOMP_LOG: o->seccomp_log = true; return 0;
	case SANDBOX_OPT_TEST_HOOK: o->forbidden_hook = true; return 0;
	case SANDBOX_OPT_UID:
	case SANDBOX_OPT_GID:
		errno = 0;
		v = strtol(arg, &end, 10);
		if (errno || !*arg || *end || v < 0 || v >= 0xffffffffL) {
			pr_err("--%s %s: expected a number from 0 to 4294967294",
			       c == SANDBOX_OPT_UID ? "uid" : "gid", arg);
			return -EINVAL;
		}
		if (c == SANDBOX_OPT_UID)
			o->uid = v;
		else
			o->gid = v;
		return 0;
	default: return -EINVAL;
	}
}

void sandbox__usage(FILE *f)
{
	fprintf(f,
		"Sandbox (on by default): [--uid N] [--gid N] (when started as root; default "
		"%d) [--no-sandbox] (debugging) [--seccomp-log] (log syscalls outside the "
		"allow-list instead of dying) [--test-forbidden-syscall] (tests only: SIGUSR1 "
		"makes a forbidden syscall)\n",
		SANDBOX_DEFAULT_ID);
}

/* --- 1. fds --- */

static bool sandbox__kept(int fd, const int *keep, unsigned int nr_keep)
{
	for (unsigned int i = 0; i < nr_keep; i++)
		if (keep[i] == fd)
			return true;
	return fd <= 2;
}

/*
 * The paravisor opens every fd of its own close-on-exec (as all of vmmd
 * does), so one without FD_CLOEXEC came from whoever started it: a shell's
 * or supervisor's leftovers, which the paravisor must not hold.  The caller
 * names the inherited fds it was given on purpose.
 */
static int sandbox__close_inherited(const int *keep, unsigned int nr_keep)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char path[64], target[256];

	if (!d) {
		int err = -errno;

		pr_err("sandbox: cannot list /proc/self/fd to close inherited fds: %s",
		       strerror(errno));
		return err;
	}
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name), flags;
		ssize_t n;

		if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dirfd(d))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = 0;
		flags = fcntl(fd, F_GETFD);
		if (sandbox__kept(fd, keep, nr_keep) || (flags >= 0 && (flags & FD_CLOEXEC))) {
			pr_debug("sandbox: keeping fd %d (%s)", fd, target);
			continue;
		}
		pr_debug("sandbox: closing inherited fd %d (%s)", fd, target);
		close(fd);
	}
	closedir(d);
	return 0;
}

/* --- 3. namespaces --- */

static int sandbox__write(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		err = -errno;
	close(fd);
	return err;
}

/* Maps our own uid and gid to themselves: files keep their owners. */
static int sandbox__map_ids(void)
{
	char map[64];
	int err;

	err = sandbox__write("/proc/self/setgroups", "deny");
	if (err && err != -ENOENT)
		return err;
	snprintf(map, sizeof(map), "%u %u 1", (unsigned int)getuid(), (unsigned int)getuid());
	err = sandbox__write("/proc/self/uid_map", map);
	if (err)
		return err;
	snprintf(map, sizeof(map), "%u %u 1", (unsigned int)getgid(), (unsigned int)getgid());
	return sandbox__write("/proc/self/gid_map", map);
}

/*
 * A slirp stack answers the guest's DNS queries to 10.0.2.3 by asking the
 * host's name server, which libslirp looks up in /etc/resolv.conf at each
 * query (re-reading it at most once a second when its mtime changes).  Its
 * root keeps a copy of the host's file, taken when the sandbox is entered:
 * later changes to the host's file are not seen.  NULL, or why not (errno
 * set); a host without the file gets none, and slirp's DNS fails as it
 * would outside the sandbox.
 */
#define SANDBOX_RESOLV_MAX 4096

static ssize_t sandbox__read_resolv_conf(char *buf, size_t size)
{
	int fd = open("/etc/resolv.conf", O_RDONLY | O_CLOEXEC);
	ssize_t n, len = 0;

	if (fd < 0)
		return -1;
	while ((size_t)len < size && (n = read(fd, buf + len, size - len)) > 0)
		len += n;
	/* A longer file keeps its whole lines only: a cut "nameserver
	 * 10.0.0.1" line could name another server. */
	if ((size_t)len == size && read(fd, &(char){0}, 1) == 1) {
		while (len > 0 && buf[len - 1] != '\n')
			len--;
		pr_warn("sandbox: /etc/resolv.conf is over %zu bytes; slirp's DNS sees its "
			"first %zd",
			size, len);
	}
	close(fd);
	return len;
}

static const char *sandbox__write_resolv_conf(const char *buf, ssize_t len)
{
	int fd;

	if (mkdir("/proc/etc", 0555))
		return "cannot make /etc in the new root";
	fd = open("/proc/etc/resolv.conf", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (fd < 0)
		return "cannot create /etc/resolv.conf in the new root";
	if (write(fd, buf, len) != len) {
		close(fd);
		return "cannot write /etc/resolv.conf in the new root";
	}
	close(fd);
	return NULL;
}

/*
 * The root becomes an empty read-only tmpfs (a slirp stack's holds only
 * /etc/resolv.conf, see above): mounted, in our private copy of the mounts,
 * over /proc (a directory that exists wherever we got this far, and that we
 * are done with), entered, then pivot_root(".", ".") stacks the old root
 * under it and the lazy unmount drops the old root, so no path leads back
 * to the host's files.  chroot is the fallback where pivot_root is refused.
 */
static const char *sandbox__empty_root(unsigned int profile)
{
	const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	char resolv[SANDBOX_RESOLV_MAX];
	ssize_t resolv_len = -1;
	const char *why;

	if (profile & SANDBOX_NET)
		resolv_len = sandbox__read_resolv_conf(resolv, sizeof(resolv));
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return "cannot make the mounts private";
	if (mount("paravisor", "/proc", "tmpfs", resolv_len < 0 ? flags | MS_RDONLY : flags,
		  resolv_len < 0 ? "size=4k,nr_inodes=1,mode=0555"
				 : "size=8k,nr_inodes=3,mode=0555"))
		return "cannot mount an empty tmpfs";
	if (resolv_len >= 0) {
		why = sandbox__write_resolv_conf(resolv, resolv_len);
		if (why)
			return why;
		if (mount(NULL, "/proc", NULL, MS_REMOUNT | MS_RDONLY | flags, NULL))
			return "cannot make the new root read-only";
	}
	if (chdir("/proc"))
		return "cannot enter the empty tmpfs";
	if (syscall(SYS_pivot_root, ".", ".") || umount2(".", MNT_DETACH)) {
		pr_debug("sandbox: pivot_root into the empty tmpfs: %s; using chroot",
			 strerror(errno));
		if (chroot("."))
			return "cannot chroot into the empty tmpfs";
	}
	if (chdir("/"))
		return "cannot enter the new root";
	return NULL;
}

/*
 * A NIC's paravisor stays in the host's network namespace: libslirp makes
 * the guest's connections with ordinary sockets of the host (and listens on
 * the hostfwd ports there), which a new, empty namespace would not reach.
 */
/* true once the process's root is the new tmpfs (see above). */
static bool sandbox__namespaces(unsigned int profile)
{
	const int ns = CLONE_NEWNS | CLONE_NEWIPC | (profile & SANDBOX_NET ? 0 : CLONE_NEWNET);
	const char *why;

	if (geteuid() == 0) {
		if (unshare(ns)) {
			pr_debug("sandbox: no new mount/network/IPC namespaces (unshare: %s); "
				 "the host's files and network stay visible to this process",
				 strerror(errno));
			return false;
		}
	} else {
		int err;

		if (unshare(CLONE_NEWUSER | ns)) {
			pr_debug("sandbox: not root and no user namespace (unshare: %s); the "
				 "host's files and network stay visible to this process",
				 strerror(errno));
			return false;
		}
		err = sandbox__map_ids();
		if (err)
			pr_debug("sandbox: user namespace without an id map (%s)", strerror(-err));
	}
	why = sandbox__empty_root(profile);
	if (why) {
		pr_debug("sandbox: %s (%s); the host's files stay visible to this process", why,
			 strerror(errno));
		return false;
	}
	pr_debug("sandbox: root is an empty read-only tmpfs in new mount%s and IPC namespaces",
		 profile & SANDBOX_NET ? "" : ", network");
	return true;
}

/* --- 4. ids and capabilities --- */

static void sandbox__drop_bounding_set(void)
{
	for (int c = 0; prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0)) {
			pr_debug("sandbox: capability bounding set kept (PR_CAPBSET_DROP: %s)",
				 strerror(errno));
			return;
		}
}

static int sandbox__set_ids(const struct sandbox_opts *o)
{
	uid_t uid = o->uid >= 0 ? (uid_t)o->uid : SANDBOX_DEFAULT_ID;
	gid_t gid = o->gid >= 0 ? (gid_t)o->gid : SANDBOX_DEFAULT_ID;

	if (geteuid() != 0) {
		/* Only root can change ids; one who asked for them must hear no. */
		if ((o->uid >= 0 && uid != geteuid()) || (o->gid >= 0 && gid != getegid())) {
			pr_err("sandbox: --uid/--gid need the paravisor to start as root");
			return -EPERM;
		}
		pr_debug("sandbox: keeping uid %u gid %u (not started as root)",
			 (unsigned int)geteuid(), (unsigned int)getegid());
		return 0;
	}
	if (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid)) {
		int err = -errno;

		/* Root without CAP_SETUID (a container's): not for us to fix. */
		if (err == -EPERM && o->uid < 0 && o->gid < 0) {
			pr_debug("sandbox: keeping uid 0 (setresuid: %s)", strerror(EPERM));
			return 0;
		}
		pr_err("sandbox: cannot switch to uid %u gid %u: %s", (unsigned int)uid,
		       (unsigned int)gid, strerror(errno));
		return err;
	}
	pr_debug("sandbox: running as uid %u gid %u", (unsigned int)uid, (unsigned int)gid);
	return 0;
}

static int sandbox__drop_caps(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	memset(d, 0, sizeof(d));
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (syscall(SYS_capset, &h, d)) {
		int err = -errno;

		pr_err("sandbox: cannot clear capabilities: %s", strerror(errno));
		return err;
	}
	return 0;
}

/* --- 5. seccomp --- */

/*
 * What the serving loop calls, found by running it (QEMU's vhost-user-blk
 * front-end and a Linux guest writing and reading the disk) under strace -f
 * with --seccomp-log, in the sanitizer and the plain build: every call after
 * the filter was loaded, and nothing else.  By user:
 *  - the vhost-user socket: recvmsg (fds arrive with it), recvfrom (the
 *    payload, recv with MSG_WAITALL), sendmsg;
 *  - log lines on stderr: write; getpid (a loaded device state names the
 *    process that loaded it; the plain build was killed there, the
 *    sanitizer build allowed it for its runtime and hid that);
 *  - timing the messages (vu_trace.c): clock_gettime, a system call where
 *    the clock source has no vDSO (the nested lab's TCG machine may not);
 *  - ring fds and eventfds: read, write, close (replaced fds), fcntl below;
 *  - guest RAM: mmap of a received memfd, munmap when the table changes;
 *  - the device model's thread, started and joined on every ring change:
 *    clone below, set_robust_list, rseq, rt_sigprocmask, futex, madvise and
 *    munmap (its stack), mprotect (its guard page), exit, epoll_create1,
 *    epoll_ctl, epoll_wait;
 *  - malloc: brk, mmap, munmap, madvise, mprotect, mremap (realloc);
 *  - rt_sigaction below, rt_sigreturn (returning from any signal handler),
 *    exit_group;
 *  - the inflight region (GET_INFLIGHT_FD, asked after the sandbox is up):
 *    memfd_create and ftruncate of that one memfd, then mmap.
 */
static const int sandbox_allowed[] = {
    SCMP_SYS(read),	     SCMP_SYS(write),	       SCMP_SYS(recvmsg),
    SCMP_SYS(recvfrom),	     SCMP_SYS(sendmsg),	       SCMP_SYS(close),
    SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl),      SCMP_SYS(epoll_wait),
    SCMP_SYS(munmap),	     SCMP_SYS(madvise),	       SCMP_SYS(mremap),
    SCMP_SYS(brk),	     SCMP_SYS(futex),	       SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq),	     SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
    SCMP_SYS(exit),	     SCMP_SYS(exit_group),     SCMP_SYS(memfd_create),
    SCMP_SYS(ftruncate),     SCMP_SYS(getpid),	       SCMP_SYS(clock_gettime),
};

/* A disk's: its io_uring backend submits and waits (io_uring_enter); the
 * ring itself was set up before the sandbox.  A process without a disk has
 * no ring to enter. */
static const int sandbox_blk_allowed[] = {
    SCMP_SYS(io_uring_enter),
};

/* The calls that open and stat files by path: refused (EPERM, so a caller
 * that tries is told no), but for a slirp stack in its own root (below). */
static const int sandbox_file_calls[] = {
    SCMP_SYS(openat),
    SCMP_SYS(newfstatat),
};

#ifdef SANDBOX_SANITIZERS
/*
 * ASan/UBSan builds (scripts/build sanitize, what the tests run): the
 * runtime's allocator and reports need a few more calls, allowed here and
 * only here.  Its attempts to read /proc/self/maps or the binary (to
 * symbolize a report) fail with EPERM rather than kill, so a report is
 * still printed, unsymbolized.  LeakSanitizer's exit-time check (a ptrace'd
 * helper reading /proc) cannot run in the sandbox: __lsan_is_turned_off()
 * below skips it once the sandbox is entered; --no-sandbox runs keep it.
 */
static const int sandbox_sanitizer_allowed[] = {
    /* seen: ASan's thread start and pthread_create interceptor */
    SCMP_SYS(gettid),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(sigaltstack),
    SCMP_SYS(rt_sigaction),
    /* reporting and dying (Die, internal locks) */
    SCMP_SYS(getpid),
    SCMP_SYS(sched_yield),
};
static const int sandbox_sanitizer_refused[] = {
    SCMP_SYS(open), SCMP_SYS(readlink), SCMP_SYS(readlinkat),
    SCMP_SYS(stat), SCMP_SYS(access),	SCMP_SYS(faccessat),
};
static bool sandbox_entered;

int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return sandbox_entered;
}
#endif

static int sandbox__rule(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned int n,
			 const struct scmp_arg_cmp *cmp)
{
	int err = seccomp_rule_add_array(ctx, action, nr, n, cmp);

	if (err) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

		pr_err("sandbox: seccomp rule for %s: %s", name ? name : "?", strerror(-err));
		free(name);
	}
	return err;
}

static int sandbox__add_list(scmp_filter_ctx ctx, uint32_t action, const int *nr, size_t n)
{
	int err = 0;

	for (size_t i = 0; i < n && !err; i++)
		err = sandbox__rule(ctx, action, nr[i], 0, NULL);
	return err;
}

/* Calls allowed only with some arguments. */
static int sandbox__add_narrow(scmp_filter_ctx ctx)
{
	/* New threads yes, new processes no. */
	const struct scmp_arg_cmp thread = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
	/* No new executable memory: injected code stays data. */
	const struct scmp_arg_cmp noexec = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	static const int fcntl_cmds[] = {F_GETFL, F_SETFL, F_GETFD};
	/* glibc's first pthread_create installs the handlers of its internal
	 * signals (SIGCANCEL and SIGSETXID, the kernel's 32 and 33); no other
	 * handler may change. */
	static const int libc_signals[] = {32, 33};
	int err;

	err = sandbox__rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, &thread);
	/* clone3's flags are in memory a filter cannot read: ENOSYS makes libc
	 * fall back to clone, whose flags it can. */
	if (!err)
		err = sandbox__rule(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0, NULL);
	if (!err)
		err = sandbox__rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, &noexec);
	if (!err)
		err = sandbox__rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1, &noexec);
	for (size_t i = 0; i < ARRAY_LEN(fcntl_cmds) && !err; i++) {
		const struct scmp_arg_cmp cmd = SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)fcntl_cmds[i]);

		err = sandbox__rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1, &cmd);
	}
	for (size_t i = 0; i < ARRAY_LEN(libc_signals) && !err; i++) {
		const struct scmp_arg_cmp sig = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)libc_signals[i]);

		err = sandbox__rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(rt_sigaction), 1, &sig);
	}
	return err;
}

/*
 * A slirp NIC's additions: what strace -f showed the paravisor call after
 * the filter was loaded while serving the tiny guest's DHCP (eventfd2,
 * poll), plus what libslirp 4.7 calls for TCP and UDP (socket.c,
 * tcp_subr.c, udp.c, ip_icmp.c), which tests/integration/paravisor-net.sh
 * exercises with a Linux guest (TCP out to the host, hostfwd in):
 *  - the guest's connections out: socket (Internet domains only), connect,
 *    setsockopt, getsockopt (SO_ERROR of a connect), sendto, recvfrom,
 *    shutdown; ioctl FIONREAD (a UDP datagram's size);
 *  - hostfwd and the FTP/IRC helpers: accept, accept4, bind, listen,
 *    getsockname, getpeername, fcntl F_SETFD (cloexec on accepted sockets);
 *  - the device thread, restarted on every ring change, makes its stop
 *    eventfd (eventfd2) and polls it, the kick fds and slirp's sockets
 *    (poll, ppoll);
 *  - slirp's clock (where the vDSO is not used) and glib's log lines:
 *    clock_gettime, gettimeofday, getpid.
 *  - a DNS query to 10.0.2.3: libslirp stats and reads /etc/resolv.conf
 *    (newfstatat, openat read-only), allowed only where the root is the
 *    sandbox's tmpfs, which holds nothing else; where the host's files stay
 *    visible they are refused, and DNS through slirp fails.
 * Refused without killing: open and stat (which glibc does not use on
 * x86-64) and any other file call of the sanitizer runtime's; glib asks
 * whether stderr is a terminal (ioctl TCGETS).
 */
static const int sandbox_net_allowed[] = {
    SCMP_SYS(connect),	    SCMP_SYS(setsockopt),  SCMP_SYS(getsockopt),  SCMP_SYS(sendto),
    SCMP_SYS(shutdown),	    SCMP_SYS(accept),	   SCMP_SYS(accept4),	  SCMP_SYS(bind),
    SCMP_SYS(listen),	    SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(clock_gettime),
    SCMP_SYS(gettimeofday), SCMP_SYS(getpid),
};
/* Any NIC's device thread: it polls its kick fds and backend, and stops on
 * an eventfd it makes when the rings start. */
static const int sandbox_nic_allowed[] = {
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(eventfd2),
};
/* A tap NIC's, on top of any NIC's: its io_uring (the ring was set up
 * before the sandbox; reads and writes, and cancelling the reads when the
 * rings stop, are io_uring_enter), the synchronous writev of a frame too
 * long or a batch too full for the ring, and ioctl TUNSETOFFLOAD on the
 * tap (below), which the guest's driver asks for when the rings start.
 * And restart_syscall: io_uring interrupts a thread of the process to run
 * its work (a read completed on the tap), and a timed wait it interrupted
 * (poll with a timeout, say) resumes through restart_syscall, as seen with
 * --seccomp-log while the tiny guest's frames came and went; it only
 * resumes a call that was already allowed.  No socket: the tap is the
 * NIC's way out. */
static const int sandbox_tap_allowed[] = {
    SCMP_SYS(io_uring_enter),
    SCMP_SYS(writev),
    SCMP_SYS(restart_syscall),
};
#ifndef SANDBOX_SANITIZERS /* which refuses the same calls already, with EPERM */
static const int sandbox_net_refused[] = {
    SCMP_SYS(open),
    SCMP_SYS(stat),
};
#endif

static int sandbox__add_net(scmp_filter_ctx ctx, bool private_root)
{
	static const int domains[] = {AF_INET, AF_INET6};
	const struct scmp_arg_cmp fionread = SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)FIONREAD);
	const struct scmp_arg_cmp tcgets = SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)TCGETS);
	const struct scmp_arg_cmp setfd = SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)F_SETFD);
	/* Files are only read (the root is read-only anyway). */
	const struct scmp_arg_cmp rdonly =
	    SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC, O_RDONLY);
	int err;

	err = sandbox__add_list(ctx, SCMP_ACT_ALLOW, sandbox_net_allowed,
				ARRAY_LEN(sandbox_net_allowed));
#ifndef SANDBOX_SANITIZERS
	if (!err)
		err = sandbox__add_list(ctx, SCMP_ACT_ERRNO(EPERM), sandbox_net_refused,
					ARRAY_LEN(sandbox_net_refused));
#endif
	for (size_t i = 0; i < ARRAY_LEN(domains) && !err; i++) {
		const struct scmp_arg_cmp dom = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)domains[i]);

		err = sandbox__rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, &dom);
	}
	if (!err)
		err = sandbox__rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, &fionread);
	if (!err)
		err = sandbox__rule(ctx, SCMP_ACT_ERRNO(ENOTTY), SCMP_SYS(ioctl), 1, &tcgets);
	if (!err)
		err = sandbox__rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1, &setfd);
	if (!err && private_root)
		err = sandbox__rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1, &rdonly);
	if (!err && private_root)
		err = sandbox__rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 0, NULL);
#ifndef SANDBOX_SANITIZERS /* whose list refuses them already */
	if (!err && !private_root)
		err = sandbox__add_list(ctx, SCMP_ACT_ERRNO(EPERM), sandbox_file_calls,
					ARRAY_LEN(sandbox_file_calls));
#endif
	return err;
}

static int sandbox__add_tap(scmp_filter_ctx ctx)
{
	const struct scmp_arg_cmp offload = SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)TUNSETOFFLOAD);
	int err;

	err = sandbox__add_list(ctx, SCMP_ACT_ALLOW, sandbox_tap_allowed,
				ARRAY_LEN(sandbox_tap_allowed));
	if (!err)
		err = sandbox__rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, &offload);
	return err;
}

static int sandbox__seccomp(unsigned int profile, bool private_root, bool log_only)
{
	scmp_filter_ctx ctx = seccomp_init(log_only ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
	int err;

	if (!ctx) {
		pr_err("sandbox: seccomp_init failed");
		return -ENOMEM;
	}
	err = sandbox__add_list(ctx, SCMP_ACT_ALLOW, sandbox_allowed, ARRAY_LEN(sandbox_allowed));
	if (!err)
		err = sandbox__add_narrow(ctx);
	if (!err && profile & SANDBOX_BLK)
		err = sandbox__add_list(ctx, SCMP_ACT_ALLOW, sandbox_blk_allowed,
					ARRAY_LEN(sandbox_blk_allowed));
	/* A slirp stack polls its sockets as a NIC's thread polls its
	 * netstack's: NET needs NIC's calls too. */
	if (!err && profile & (SANDBOX_NIC | SANDBOX_NET | SANDBOX_TAP))
		err = sandbox__add_list(ctx, SCMP_ACT_ALLOW, sandbox_nic_allowed,
					ARRAY_LEN(sandbox_nic_allowed));
	if (!err && profile & SANDBOX_TAP)
		err = sandbox__add_tap(ctx);
	if (!err && profile & SANDBOX_NET)
		err = sandbox__add_net(ctx, private_root);
#ifdef SANDBOX_SANITIZERS
	if (!err)
		err = sandbox__add_list(ctx, SCMP_ACT_ALLOW, sandbox_sanitizer_allowed,
					ARRAY_LEN(sandbox_sanitizer_allowed));
	if (!err)
		err = sandbox__add_list(ctx, SCMP_ACT_ERRNO(EPERM), sandbox_sanitizer_refused,
					ARRAY_LEN(sandbox_sanitizer_refused));
	if (!err && !(profile & SANDBOX_NET && private_root))
		err = sandbox__add_list(ctx, SCMP_ACT_ERRNO(EPERM), sandbox_file_calls,
					ARRAY_LEN(sandbox_file_calls));
#endif
	if (!err) {
		err = seccomp_load(ctx);
		if (err)
			pr_err("sandbox: cannot load the seccomp filter: %s", strerror(-err));
	}
	seccomp_release(ctx);
	return err;
}

/* --- the test hook --- */

/*
 * --test-forbidden-syscall exists for tests/integration (and only there):
 * SIGUSR1 then makes the paravisor call socket(AF_INET), which is not on
 * the list, at a moment the test picks (mid-I/O), as a compromised
 * paravisor would.  Without the option SIGUSR1 keeps its default action.
 */
static void sandbox__forbidden(int sig)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* Reached only with --seccomp-log or --no-sandbox. */
	if (fd >= 0)
		close(fd);
}

static int sandbox__arm_test_hook(void)
{
	struct sigaction sa = {.sa_handler = sandbox__forbidden, .sa_flags = SA_RESTART};

	if (sigaction(SIGUSR1, &sa, NULL))
		return -errno;
	pr_info("test hook armed: SIGUSR1 makes a forbidden syscall (socket)");
	return 0;
}

int sandbox__enter(const struct sandbox_opts *o, const int *keep, unsigned int nr_keep)
{
	bool private_root;
	int err;

	if (o->forbidden_hook) {
		err = sandbox__arm_test_hook();
		if (err)
			return err;
	}
	if (o->off) {
		pr_info("sandbox off (--no-sandbox): no seccomp filter, namespaces or uid change");
		return 0;
	}
	err = sandbox__close_inherited(keep, nr_keep);
	if (err)
		return err;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		err = -errno;
		pr_err("sandbox: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return err;
	}
	private_root = sandbox__namespaces(o->profile);
	sandbox__drop_bounding_set();
	err = sandbox__set_ids(o);
	if (!err)
		err = sandbox__drop_caps();
	if (err)
		return err;
#ifdef SANDBOX_SANITIZERS
	sandbox_entered = true;
#endif
	err = sandbox__seccomp(o->profile, private_root, o->seccomp_log);
	if (err)
		return err;
	pr_info("sandbox entered: seccomp allow-list%s, no new privileges, no capabilities",
		o->seccomp_log ? " (log only: --seccomp-log)" : "");
	return 0;
}
