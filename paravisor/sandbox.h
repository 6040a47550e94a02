/* paravisor/sandbox.h — confining the paravisor once it holds its fds. */
#ifndef VMMD_PARAVISOR_SANDBOX_H
#define VMMD_PARAVISOR_SANDBOX_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

/* The uid and gid a paravisor started as root switches to when no --uid is
 * given: nobody.  A supervisor should pass one uid per VM instead. */
#define SANDBOX_DEFAULT_ID 65534

/* What the process serves decides what it keeps (see sandbox.c).  One
 * paravisor serves all of a VM's devices, so a profile is the union of
 * theirs: these are flags, or'ed together. */
enum sandbox_profile {
	SANDBOX_BLK = 1 << 0, /* a disk: its io_uring; no network */
	SANDBOX_NIC = 1 << 1, /* a NIC whose stack is a netstack: no network */
	SANDBOX_NET = 1 << 2, /* a slirp stack here (a slirp NIC, or the netstack
			       * itself): a NIC's calls and Internet sockets in the
			       * host's network */
	SANDBOX_TAP = 1 << 3, /* a tap NIC (with SANDBOX_NIC): its io_uring and
			       * offload ioctl; no network */
};

struct sandbox_opts {
	unsigned int profile; /* SANDBOX_* flags */
	bool off;	      /* --no-sandbox: for debugging */
	bool seccomp_log;     /* --seccomp-log: log syscalls outside the list, do not kill */
	bool forbidden_hook;  /* --test-forbidden-syscall: for the test, see sandbox.c */
	long uid, gid;	      /* --uid, --gid; -1: the default */
};

#define SANDBOX_OPTS_INIT                                                                          \
	{                                                                                          \
		.uid = -1, .gid = -1                                                               \
	}

/* getopt_long values of the sandbox's options, out of any short option's way,
 * so the command's main only lists SANDBOX_LONG_OPTIONS and hands these on. */
enum {
	SANDBOX_OPT_FIRST = 0x5a00,
	SANDBOX_OPT_OFF = SANDBOX_OPT_FIRST,
	SANDBOX_OPT_SECCOMP_LOG,
	SANDBOX_OPT_UID,
	SANDBOX_OPT_GID,
	SANDBOX_OPT_TEST_HOOK,
	SANDBOX_OPT_END,
};

#define SANDBOX_LONG_OPTIONS                                                                       \
	{"no-sandbox", no_argument, NULL, SANDBOX_OPT_OFF},                                        \
	    {"seccomp-log", no_argument, NULL, SANDBOX_OPT_SECCOMP_LOG},                           \
	    {"uid", required_argument, NULL, SANDBOX_OPT_UID},                                     \
	    {"gid", required_argument, NULL, SANDBOX_OPT_GID},                                     \
	{                                                                                          \
		"test-forbidden-syscall", no_argument, NULL, SANDBOX_OPT_TEST_HOOK                 \
	}

static inline bool sandbox__is_opt(int c)
{
	return c >= SANDBOX_OPT_FIRST && c < SANDBOX_OPT_END;
}

/* One of the options above (c, its optarg); 0 or -EINVAL (logged). */
int sandbox__opt(struct sandbox_opts *o, int c, const char *arg);
void sandbox__usage(FILE *f);

/* Confines the calling process for good: closes every fd it inherited
 * except 0, 1, 2 and keep[], then no new privileges, namespaces, its own
 * uid, no capabilities, and the seccomp allow-list, after which a syscall
 * outside the list kills the process by SIGSYS.  Call it once every fd the
 * process will use is open, while it has a single thread.  Steps the host
 * does not permit (namespaces, uid, bounding set) are skipped with a debug
 * line saying why; 0, or a negative errno (logged) when the process could
 * not be confined as asked. */
int sandbox__enter(const struct sandbox_opts *o, const int *keep, unsigned int nr_keep);

#endif
