/* vmm/paravisor_proc.h — the paravisor as a child process of vmm: finding
 * its binary, starting it with nothing but its end of a socketpair, noticing
 * when it exits and saying why. */
#ifndef VMMD_VMM_PARAVISOR_PROC_H
#define VMMD_VMM_PARAVISOR_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* The first descriptor the child finds what it is handed on (its first
 * vhost-user socket: --fd 3); the rest follow in order. */
#define PARAVISOR_PROC_FD      3
#define PARAVISOR_PROC_MAX_FDS 48

struct paravisor_proc {
	pid_t pid; /* -1 once reaped */
	int pidfd; /* readable when it exits; -1 where pidfd_open is missing */
	char path[4096];
};

/*
 * The binary: override if given, else the one installed next to vmm
 * ($(dirname vmm)/paravisor) or the build tree's
 * ($(dirname vmm)/../paravisor/paravisor).  0, or -ENOENT with why naming
 * what was tried.
 */
int paravisor_proc__find(struct paravisor_proc *p, const char *override, char *why, size_t whylen);
/*
 * Starts p->path with argv (argv[0] included) and sock as its descriptor
 * PARAVISOR_PROC_FD; stdin is /dev/null, stdout and stderr are vmm's
 * stderr, every other descriptor is closed and no signal is blocked.  sock
 * stays the caller's.  0 or negative errno (why says what failed).
 */
int paravisor_proc__spawn(struct paravisor_proc *p, char *const argv[], int sock, char *why,
			  size_t whylen);
/* The same with nr descriptors: fds[i] becomes PARAVISOR_PROC_FD + i. */
int paravisor_proc__spawn_fds(struct paravisor_proc *p, char *const argv[], const int *fds,
			      unsigned int nr, char *why, size_t whylen);
/* Waits up to ms for it to exit and reaps it: 1 with why saying how it
 * ended ("exited with status 2", "killed by signal 9 (Killed)"), 0 if it
 * still runs. */
int paravisor_proc__wait(struct paravisor_proc *p, int ms, char *why, size_t whylen);
/* Waits up to grace_ms, then SIGKILL; reaps it and closes the pidfd. */
void paravisor_proc__stop(struct paravisor_proc *p, int grace_ms);

#endif
