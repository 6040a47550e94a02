/* vmm/paravisor_proc.h — the paravisor as a child process of vmm: finding
 * its binary, starting it with nothing but its end of a socketpair, noticing
 * when it exits and saying why. */
#ifndef VMMD_VMM_PARAVISOR_PROC_H
#define VMMD_VMM_PARAVISOR_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* The descriptor the child finds its vhost-user socket on (--fd), and the
 * first of the ones it is handed besides (the disk image: --disk fd=4). */
#define PARAVISOR_PROC_FD  3
#define PARAVISOR_PROC_FD2 4

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
/* The same, and extra (if >= 0) as its descriptor PARAVISOR_PROC_FD2. */
int paravisor_proc__spawn2(struct paravisor_proc *p, char *const argv[], int sock, int extra,
			   char *why, size_t whylen);
/* Waits up to ms for it to exit and reaps it: 1 with why saying how it
 * ended ("exited with status 2", "killed by signal 9 (Killed)"), 0 if it
 * still runs. */
int paravisor_proc__wait(struct paravisor_proc *p, int ms, char *why, size_t whylen);
/* Waits up to grace_ms, then SIGKILL; reaps it and closes the pidfd. */
void paravisor_proc__stop(struct paravisor_proc *p, int grace_ms);

#endif
