/*
 * vmm/paravisor_proc.c — starting and reaping paravisor processes.
 *
 * vmm is multi-threaded when devices are set up (the event loop runs), so
 * the child does only async-signal-safe things between fork() and exec():
 * move descriptors into place, close every other one (vmm opens everything
 * CLOEXEC, but a descriptor leaked by a library would otherwise reach the
 * device layer, which is meant to hold only what it was handed), unblock
 * the signals vmm's threads block (a mask survives exec), exec.
 */
#include "vmm/paravisor_proc.h"

#include "common/why.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int proc__try(struct paravisor_proc *p, const char *path)
{
	if (strlen(path) >= sizeof(p->path) || access(path, X_OK))
		return -ENOENT;
	memcpy(p->path, path, strlen(path) + 1);
	return 0;
}

int paravisor_proc__find(struct paravisor_proc *p, const char *override, char *why, size_t whylen)
{
	char self[PATH_MAX], a[PATH_MAX + 16], b[PATH_MAX + 32], *slash;
	ssize_t n;

	p->pid = -1;
	p->pidfd = -1;
	if (override) {
		if (!proc__try(p, override))
			return 0;
		return why__set(why, whylen, -ENOENT, "--paravisor %s: %s", override,
				access(override, F_OK) ? "no such file" : "not an executable file");
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return why__set(why, whylen, -ENOENT,
				"cannot tell where vmm is (/proc/self/exe: %s); use --paravisor "
				"PATH",
				strerror(errno));
	self[n] = 0;
	slash = strrchr(self, '/');
	if (slash)
		*slash = 0;
	snprintf(a, sizeof(a), "%s/paravisor", self);
	snprintf(b, sizeof(b), "%s/../paravisor/paravisor", self);
	if (!proc__try(p, a) || !proc__try(p, b))
		return 0;
	return why__set(why, whylen, -ENOENT,
			"no paravisor binary next to vmm (tried %s and %s); build it or use "
			"--paravisor PATH",
			a, b);
}

/* In the child: only async-signal-safe calls, then exec or _exit. */
static void proc__child(const struct paravisor_proc *p, char *const argv[], const int *fds,
			unsigned int nr, int null)
{
	static const char msg[] = "paravisor: error: cannot execute the binary\n";
	int moved[PARAVISOR_PROC_MAX_FDS];
	int last = PARAVISOR_PROC_FD + (int)nr - 1;
	sigset_t none;

	/* Above every target first, so no dup2 below overwrites a source. */
	for (unsigned int i = 0; i < nr; i++) {
		moved[i] = fcntl(fds[i], F_DUPFD, 64);
		if (moved[i] < 0)
			_exit(127);
	}
	if (dup2(null, 0) < 0 || dup2(2, 1) < 0)
		_exit(127);
	for (unsigned int i = 0; i < nr; i++)
		if (dup2(moved[i], PARAVISOR_PROC_FD + (int)i) < 0)
			_exit(127);
			/* Everything above the handed descriptors goes, CLOEXEC or not. */
#ifdef SYS_close_range
	if (syscall(SYS_close_range, last + 1, ~0U, 0))
#endif
		for (int fd = last + 1; fd < 4096; fd++)
			close(fd);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	execv(p->path, argv);
	if (write(2, msg, sizeof(msg) - 1) < 0) {
	}
	_exit(127);
}

int paravisor_proc__spawn_fds(struct paravisor_proc *p, char *const argv[], const int *fds,
			      unsigned int nr, char *why, size_t whylen)
{
	int null;
	pid_t pid;

	if (!nr || nr > PARAVISOR_PROC_MAX_FDS)
		return why__set(why, whylen, -E2BIG, "%u descriptors to hand over (1..%d)", nr,
				PARAVISOR_PROC_MAX_FDS);
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0)
		return why__set(why, whylen, -errno, "/dev/null: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		int err = -errno;

		close(null);
		return why__set(why, whylen, err, "fork: %s", strerror(-err));
	}
	if (!pid)
		proc__child(p, argv, fds, nr, null);
	close(null);
	p->pid = pid;
	p->pidfd = -1;
#ifdef SYS_pidfd_open
	p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (p->pidfd >= 0)
		fcntl(p->pidfd, F_SETFD, FD_CLOEXEC);
#endif
	return 0;
}

int paravisor_proc__spawn(struct paravisor_proc *p, char *const argv[], int sock, char *why,
			  size_t whylen)
{
	return paravisor_proc__spawn_fds(p, argv, &sock, 1, why, whylen);
}

static void proc__describe(int status, char *why, size_t whylen)
{
	if (WIFEXITED(status))
		snprintf(why, whylen, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(why, whylen, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(why, whylen, "ended (wait status %#x)", (unsigned int)status);
}

int paravisor_proc__wait(struct paravisor_proc *p, int ms, char *why, size_t whylen)
{
	struct timespec tick = {0, 10 * 1000 * 1000};
	int status;

	if (p->pid < 0) {
		snprintf(why, whylen, "already reaped");
		return 1;
	}
	for (int waited = 0;; waited += 10) {
		pid_t r = waitpid(p->pid, &status, WNOHANG);

		if (r == p->pid)
			break;
		if (r < 0 && errno != EINTR) {
			snprintf(why, whylen, "cannot wait for it: %s", strerror(errno));
			p->pid = -1;
			return 1;
		}
		if (waited >= ms)
			return 0;
		nanosleep(&tick, NULL);
	}
	p->pid = -1;
	proc__describe(status, why, whylen);
	return 1;
}

void paravisor_proc__stop(struct paravisor_proc *p, int grace_ms)
{
	char why[128];

	if (p->pid >= 0 && !paravisor_proc__wait(p, grace_ms, why, sizeof(why))) {
		kill(p->pid, SIGKILL);
		paravisor_proc__wait(p, 5000, why, sizeof(why));
	}
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = -1;
}
