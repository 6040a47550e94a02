/* tests/unit/pv_proc.c — a real paravisor/paravisor process for the unit
 * tests (see the header). */
#include "tests/unit/pv_proc.h"

#include "net/socket.h"

#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

char pv_tmpdir[256];
static int nr_started; /* names each process's log */

void pair(int sv[2], int type)
{
	assert_int_equal(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
}

void pv_start(struct pv *p, const int *fds, int nr_fds, const char *const *args)
{
	const char *dir = getenv("VMMD_BUILDDIR");
	char bin[300], paths[PV_MAX_ARGS][300];
	char *argv[PV_MAX_ARGS + 2];
	int n = 0;

	snprintf(bin, sizeof(bin), "%s/paravisor/paravisor", dir ? dir : ".");
	if (access(bin, X_OK))
		fail_msg("%s: not built (make)", bin);
	argv[n++] = bin;
	for (int i = 0; args[i]; i++) {
		assert_true(n < PV_MAX_ARGS);
		const char *name = strchr(args[i], '@');

		if (name) {
			snprintf(paths[i], sizeof(paths[i]), "%.*s%s/%s", (int)(name - args[i]),
				 args[i], pv_tmpdir, name + 1);
			argv[n++] = paths[i];
		} else {
			argv[n++] = (char *)args[i];
		}
	}
	argv[n] = NULL;
	memset(p, 0, sizeof(*p));
	snprintf(p->log, sizeof(p->log), "%s/paravisor.%d.log", pv_tmpdir, ++nr_started);
	fflush(NULL);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (!p->pid) {
		int log = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0644), high[16];

		if (log < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
			_exit(125);
		/* Out of the way first: a target number may be a source. */
		for (int i = 0; i < nr_fds; i++)
			high[i] = fcntl(fds[i], F_DUPFD, 100);
		for (int i = 0; i < nr_fds; i++)
			if (high[i] < 0 || dup2(high[i], 3 + i) < 0)
				_exit(126);
		/* Only 3 + i hold them: a connection ends when the paravisor
		 * closes it. */
		for (int i = 0; i < nr_fds; i++)
			close(high[i]);
		execv(bin, argv);
		_exit(127);
	}
}

bool pv_alive(struct pv *p)
{
	if (p->reaped)
		return false;
	if (waitpid(p->pid, &p->status, WNOHANG) == p->pid)
		p->reaped = true;
	return !p->reaped;
}

const char *pv_log(const struct pv *p, char *buf, size_t len)
{
	int fd = open(p->log, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;

	buf[n > 0 ? n : 0] = 0;
	if (fd >= 0)
		close(fd);
	return buf;
}

void pv_log_has(const struct pv *p, const char *want)
{
	static char buf[65536];

	if (!strstr(pv_log(p, buf, sizeof(buf)), want))
		fail_msg("the paravisor's log lacks \"%s\":\n%s", want, buf);
}

void pv_log_wait(const struct pv *p, const char *want)
{
	char buf[16384];

	for (int i = 0; i < 1000 && !strstr(pv_log(p, buf, sizeof(buf)), want); i++)
		usleep(10000);
	pv_log_has(p, want);
}

int pv_exit(struct pv *p, int secs)
{
	static char buf[65536];

	for (int i = 0; i < secs * 100 && pv_alive(p); i++)
		usleep(10000);
	if (pv_alive(p)) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &p->status, 0);
		p->reaped = true;
		fail_msg("the paravisor did not exit within %d s:\n%s", secs,
			 pv_log(p, buf, sizeof(buf)));
	}
	if (!WIFEXITED(p->status))
		fail_msg("the paravisor died by signal %d:\n%s", WTERMSIG(p->status),
			 pv_log(p, buf, sizeof(buf)));
	return WEXITSTATUS(p->status);
}

int ns_ask(int ctl, uint32_t op, const void *in, size_t inlen, int fd, void *out, size_t *outlen)
{
	static uint8_t buf[sizeof(struct net_ctl_msg) + NET_CTL_STATE_MAX];
	struct net_ctl_msg q = {.op = op}, a;
	struct iovec iov[2] = {{.iov_base = &q, .iov_len = sizeof(q)},
			       {.iov_base = (void *)in, .iov_len = inlen}};
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = inlen ? 2 : 1};
	struct pollfd p = {.fd = ctl, .events = POLLIN};
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *c;

		m.msg_control = cbuf;
		m.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	assert_true(sendmsg(ctl, &m, 0) > 0);
	assert_int_equal(poll(&p, 1, 10000), 1);
	n = recv(ctl, buf, sizeof(buf), 0);
	assert_true(n >= (ssize_t)sizeof(a));
	memcpy(&a, buf, sizeof(a));
	assert_int_equal(a.op, op);
	if (out) {
		*outlen = (size_t)n - sizeof(a);
		memcpy(out, buf + sizeof(a), *outlen);
	}
	return a.status;
}
