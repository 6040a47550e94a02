/* daemon/worker.c — one `vmm` process per running VM: spawn it from the
 * spec, talk to its control socket, notice when it exits and why, and find
 * it again after vmmd restarts (workers outlive vmmd on purpose). */
#include "daemon/daemon.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* Our line in the worker's log before each start, and vmm's error prefix. */
#define BANNER "vmmd: starting"
#define VMM_ERROR "vmm: error: "

void worker__paths(const struct daemon *d, const char *id, const char *what, char *buf,
		   size_t len)
{
	if (!strcmp(what, "dir"))
		snprintf(buf, len, "%s/vms/%s", d->cfg.run_dir, id);
	else if (!strcmp(what, "status") || !strcmp(what, "log"))
		snprintf(buf, len, "%s/vms/%s.%s", d->cfg.state_dir, id, what);
	else
		snprintf(buf, len, "%s/vms/%s/%s.sock", d->cfg.run_dir, id, what);
}

void worker__remove_files(struct daemon *d, const char *id)
{
	static const char *const what[] = { "control", "serial", "console", "status", "log" };
	char p[512];

	for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
		worker__paths(d, id, what[i], p, sizeof(p));
		unlink(p);
	}
	worker__paths(d, id, "dir", p, sizeof(p));
	rmdir(p);
}

#define ARG(...)                                                                      \
	do {                                                                          \
		if (n + 1 >= max || asprintf(&argv[n], __VA_ARGS__) < 0)               \
			goto fail;                                                    \
		n++;                                                                  \
	} while (0)

static int chardev_arg(struct daemon *d, struct vm *vm, const Vmmd__V1__Serial *s,
		       const char *sock, char **out)
{
	char p[512];

	if (!s || s->kind == VMMD__V1__SERIAL_KIND__SERIAL_KIND_CAPTURED) {
		worker__paths(d, vm->id, sock, p, sizeof(p));
		return asprintf(out, "unix:%s", p);
	}
	if (s->kind == VMMD__V1__SERIAL_KIND__SERIAL_KIND_NONE)
		return asprintf(out, "none");
	return asprintf(out, "%s:%s", s->kind == VMMD__V1__SERIAL_KIND__SERIAL_KIND_FILE ? "file" :
										      "unix",
			s->path);
}

/* The spec as vmm's command line (NULL-terminated, malloc'd strings). */
static char **build_argv(struct daemon *d, struct vm *vm, const struct worker_restore *restore)
{
	const Vmmd__V1__VmSpec *s = vm->spec;
	size_t max = 48 + s->n_disks + s->n_nics * 2, n = 0;
	char **argv = calloc(max, sizeof(char *)), p[512], *c;

	if (!argv)
		return NULL;
	ARG("%s", d->cfg.vmm_path);
	if (restore && restore->incoming) {
		/* The same machine, its RAM and state from the source. */
		ARG("--incoming");
		ARG("%s", restore->incoming);
		ARG("--tls-cert");
		ARG("%s", restore->cert);
		ARG("--tls-key");
		ARG("%s", restore->key);
		ARG("--tls-ca");
		ARG("%s", restore->ca);
		ARG("--incoming-nice");
		ARG("%d", restore->incoming_nice);
	} else if (restore) {
		/* The same machine, its state from the snapshot: no boot. */
		ARG("--restore");
		ARG("%s", restore->dir);
		ARG("--restore-mode");
		ARG("%s", restore->lazy ? "lazy" : "copy");
	} else {
		ARG("--kernel");
		ARG("%s", s->kernel);
		if (*s->initrd) {
			ARG("--initrd");
			ARG("%s", s->initrd);
		}
		ARG("--cmdline");
		ARG("%s", *s->cmdline ? s->cmdline : "console=ttyS0");
	}
	ARG("--memory");
	ARG("%lluM", (unsigned long long)s->memory_mib);
	ARG("--cpus");
	ARG("%u", s->vcpus ? s->vcpus : 1);
	ARG("--serial");
	if (chardev_arg(d, vm, s->serial, "serial", &argv[n]) < 0)
		goto fail;
	n++;
	if (s->console) {
		ARG("--console");
		if (chardev_arg(d, vm, s->console, "console", &argv[n]) < 0)
			goto fail;
		n++;
	}
	if (s->rng)
		ARG("--rng");
	/* A lazy restore asks for pages on first touch: that wins. */
	if (s->memory_prefault && !(restore && restore->lazy))
		ARG("--prefault");
	/* vmm restarts a rebooting guest itself: that works while vmmd is down.
	 * Not a restored (or migrated) one: vmm would run its own command line
	 * again, and restore the snapshot instead of booting; vmmd boots it afresh
	 * (worker__exited), from a status file if vmmd was down. */
	ARG("--on-reboot");
	ARG("%s", s->on_reboot == VMMD__V1__ON_REBOOT__ON_REBOOT_RESTART && !restore ? "restart"
										     : "exit");
	ARG("--stop-timeout");
	ARG("%u", s->stop_timeout_s ? s->stop_timeout_s : d->cfg.default_stop_timeout_s);
	for (size_t i = 0; i < s->n_disks; i++) {
		const Vmmd__V1__Disk *k = s->disks[i];

		ARG("--disk");
		ARG("path=%s%s%s%s%s%s,queues=%u", k->path, k->readonly ? ",readonly=on" : "",
		    k->cache == VMMD__V1__CACHE__CACHE_NONE ? ",cache=none" : "",
		    *k->id ? ",id=" : "", k->id,
		    k->backend == VMMD__V1__DISK_BACKEND__DISK_BACKEND_PARAVISOR ?
			    ",backend=paravisor" :
			    "",
		    k->queues ? k->queues : 1);
	}
	for (size_t i = 0; i < s->n_nics; i++) {
		const Vmmd__V1__Nic *nic = s->nics[i];
		size_t off = 0;
		char net[1024];

		if (nic->backend_case == VMMD__V1__NIC__BACKEND_TAP) {
			off = (size_t)snprintf(net, sizeof(net), "tap=%s", nic->tap->name);
		} else {
			off = (size_t)snprintf(net, sizeof(net), "slirp");
			for (size_t j = 0; j < nic->slirp->n_host_forwards && off < sizeof(net);
			     j++) {
				const Vmmd__V1__HostFwd *h = nic->slirp->host_forwards[j];

				off += (size_t)snprintf(
					net + off, sizeof(net) - off, ",hostfwd=%s:%s:%u-:%u",
					h->protocol == VMMD__V1__PROTOCOL__PROTOCOL_UDP ? "udp" : "tcp",
					*h->host_addr ? h->host_addr : "127.0.0.1", h->host_port,
					h->guest_port);
			}
		}
		if (*nic->mac && off < sizeof(net))
			off += (size_t)snprintf(net + off, sizeof(net) - off, ",mac=%s", nic->mac);
		if (nic->paravisor && off < sizeof(net))
			snprintf(net + off, sizeof(net) - off, ",backend=paravisor");
		ARG("--net");
		ARG("%s", net);
	}
	if (pv_uids__assign(d, vm)) {
		ARG("--paravisor-uid");
		ARG("%u", vm->paravisor_uid);
	}
	worker__paths(d, vm->id, "control", p, sizeof(p));
	ARG("--control");
	ARG("%s", p);
	worker__paths(d, vm->id, "status", p, sizeof(p));
	ARG("--status-file");
	ARG("%s", p);
	return argv;
fail:
	for (c = argv[0], n = 0; (c = argv[n]); n++)
		free(c);
	free(argv);
	return NULL;
}

/* The options after argv[0], each NUL-terminated, into fd; 0 or -errno. */
static int send_spec(int fd, char **argv)
{
	for (size_t i = 1; argv[i]; i++) {
		const char *p = argv[i];
		size_t left = strlen(p) + 1;

		while (left) {
			ssize_t n = send(fd, p, left, MSG_NOSIGNAL);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			p += n;
			left -= (size_t)n;
		}
	}
	return 0;
}

int worker__spawn(struct daemon *d, struct vm *vm, const struct worker_restore *restore, char *why,
		  size_t whylen)
{
	char dir[512], p[512], logp[512];
	char **argv = build_argv(d, vm, restore);
	int logfd, sv[2] = { -1, -1 };
	pid_t pid;

	if (!argv) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	worker__paths(d, vm->id, "dir", dir, sizeof(dir));
	mkdir(dir, 0700);
	static const char *const stale[] = { "control", "serial", "console", "status" };
	for (size_t i = 0; i < sizeof(stale) / sizeof(stale[0]); i++) {
		worker__paths(d, vm->id, stale[i], p, sizeof(p));
		unlink(p);
	}
	worker__paths(d, vm->id, "log", logp, sizeof(logp));
	logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0) {
		snprintf(why, whylen, "cannot open %s: %s", logp, strerror(errno));
		pid = -1;
		goto out;
	}
	/* The spec goes over a socket, not on the command line where every
	 * local user could read it: vmm --spec-fd 3. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		snprintf(why, whylen, "socketpair: %s", strerror(errno));
		close(logfd);
		pid = -1;
		goto out;
	}
	pid = fork();
	if (pid == 0) {
		char *const spec_argv[] = { argv[0], "--spec-fd", "3", NULL };
		sigset_t all;
		int null = open("/dev/null", O_RDONLY);

		/* Own session and process group: a signal to vmmd's group (^C,
		 * systemd's KillMode=process) does not reach the VM. */
		setsid();
		dup2(null, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (sv[1] == 3)
			fcntl(3, F_SETFD, 0);
		else
			dup2(sv[1], 3);
		dprintf(2, BANNER " vm \"%s\" (%s)\n", vm->spec->name, vm->id);
		execv(argv[0], spec_argv);
		dprintf(2, "vmmd: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (pid < 0)
		snprintf(why, whylen, "fork: %s", strerror(errno));
	close(logfd);
	close(sv[1]);
	/* A vmm that dies before reading fails on its own; its exit is seen. */
	if (pid > 0) {
		int r = send_spec(sv[0], argv);

		if (r)
			pr_warn("vm \"%s\": cannot hand the spec to vmm: %s", vm->spec->name,
				strerror(-r));
	}
	close(sv[0]);
out:
	for (size_t i = 0; argv[i]; i++)
		free(argv[i]);
	free(argv);
	if (pid < 0)
		return -EAGAIN;
	vm->pid = pid;
	vm->child = true;
	pr_info("vm \"%s\": vmm started, pid %d", vm->spec->name, pid);
	return 0;
}

int worker__control(const struct daemon *d, const char *id, const char *cmd, char *reply,
		    size_t len, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	size_t got = 0;
	int fd, r = 0;

	reply[0] = '\0';
	worker__paths(d, id, "control", sa.sun_path, sizeof(sa.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    send(fd, cmd, strlen(cmd), MSG_NOSIGNAL) < 0 || send(fd, "\n", 1, MSG_NOSIGNAL) < 0) {
		r = -errno;
		goto out;
	}
	while (got + 1 < len) {
		ssize_t n = recv(fd, reply + got, len - got - 1, 0);

		if (n <= 0) {
			r = n < 0 ? -errno : (got ? 0 : -ECONNRESET);
			break;
		}
		got += (size_t)n;
		reply[got] = '\0';
		if (memchr(reply, '\n', got))
			break;
	}
out:
	close(fd);
	return r;
}

/* Why vmm exited, from the tail of its log (buf, trailing newlines cut):
 * the first error it logged since our banner, which is the cause (a
 * refused restore logs the reason, then "not restored"), else its last
 * line. Nothing when vmm said nothing. */
static void log_reason(char *buf, char *msg, size_t len)
{
	char *start = buf, *p, *line;

	for (p = buf; (p = strstr(p, BANNER)); p++)
		if (p == buf || p[-1] == '\n')
			start = p;
	for (p = start; p;) {
		if (!strncmp(p, VMM_ERROR, strlen(VMM_ERROR))) {
			p += strlen(VMM_ERROR);
			snprintf(msg, len, "%.*s", (int)strcspn(p, "\n"), p);
			return;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	line = strrchr(buf, '\n');
	line = line ? line + 1 : buf;
	if (!strncmp(line, BANNER, strlen(BANNER)))
		return; /* vmm said nothing: only our own banner is there */
	snprintf(msg, len, "%.*s", (int)len - 1, line);
}

/* Why vmm exited, from its status file and else its log. */
static void exit_info(struct daemon *d, struct vm *vm, int *code, char *msg, size_t len)
{
	char p[512], buf[4096];
	json_t *j;
	int fd;

	msg[0] = '\0';
	worker__paths(d, vm->id, "status", p, sizeof(p));
	j = json_load_file(p, 0, NULL);
	if (j) {
		json_t *c = json_object_get(j, "exit_code");
		const char *m = json_string_value(json_object_get(j, "message"));

		if (*code < 0 && json_is_integer(c))
			*code = (int)json_integer_value(c);
		if (m)
			snprintf(msg, len, "%s", m);
		json_decref(j);
	}
	if (msg[0])
		return;
	worker__paths(d, vm->id, "log", p, sizeof(p));
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t start = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, start);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_reason(buf, msg, len);
}

static void worker__exited(struct daemon *d, struct vm *vm, int code, int sig)
{
	char msg[200], why[256];
	pid_t pid = vm->pid;

	exit_info(d, vm, &code, msg, sizeof(msg));
	vm->pid = 0;
	vm->child = false;
	vm->nr_pv = 0; /* its paravisors went with it */
	pr_info("vm \"%s\": vmm (pid %d) exited: code %d signal %d %s", vm->spec->name, pid, code,
		sig, msg);
	if (sig)
		registry__set_state(d, vm,
				    vm->stop_wanted ? VMMD__V1__VM_STATE__VM_STATE_STOPPED :
						      VMMD__V1__VM_STATE__VM_STATE_FAILED,
				    "vmm killed by signal %d", sig);
	else if (code == 0)
		registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_STOPPED,
				    "guest powered off");
	else if (code == 3 && !vm->stop_wanted &&
		 vm->spec->on_reboot == VMMD__V1__ON_REBOOT__ON_REBOOT_RESTART) {
		registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_STARTING,
				    "guest rebooted, restarting");
		if (worker__spawn(d, vm, NULL, why, sizeof(why)))
			registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_FAILED, "%s", why);
	} else if (code == 3)
		registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_STOPPED, "guest rebooted");
	else if (code == 4)
		registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_STOPPED, "stopped hard");
	else if (code == 5)
		registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_STOPPED,
				    "migrated away; vmm stopped");
	else if (code < 0)
		registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_FAILED,
				    "vmm (pid %d) exited while vmmd was not running and left no "
				    "status file",
				    pid);
	else
		registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_FAILED,
				    "vmm exited with status %d%s%s", code, msg[0] ? ": " : "", msg);
	if (vm->state == VMMD__V1__VM_STATE__VM_STATE_STOPPED ||
	    vm->state == VMMD__V1__VM_STATE__VM_STATE_FAILED)
		console__end_streams(vm->console);
}

/* A worker that is not our child: gone when its pid is, or when it is a
 * zombie its new parent has not reaped yet (an init that never reaps). */
static bool pid_gone(pid_t pid)
{
	char p[64], buf[256], *rp;
	FILE *f;
	size_t n;

	if (kill(pid, 0) && errno == ESRCH)
		return true;
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	f = fopen(p, "re");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

struct probe {
	char id[DAEMON_ID_LEN];
	pid_t pid;
};

static void *supervisor(void *arg)
{
	struct daemon *d = arg;
	struct probe probes[64];

	unsigned int tick = 0;

	pthread_mutex_lock(&d->lock);
	while (!d->stopping) {
		int np = 0;

		for (struct vm *vm = d->vms; vm; vm = vm->next) {
			int st, code = -1, sig = 0;
			bool gone = false;

			if (vm->pid <= 0)
				continue;
			if (vm->child) {
				pid_t r = waitpid(vm->pid, &st, WNOHANG);

				if (r == vm->pid) {
					gone = true;
					code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
					sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
				} else if (r < 0 && errno == ECHILD) {
					vm->child = false;
				}
			}
			/* A re-attached worker is init's child now: watch its pid. */
			if (!vm->child && !gone && pid_gone(vm->pid))
				gone = true;
			if (gone)
				worker__exited(d, vm, code, sig);
			else if (vm->state == VMMD__V1__VM_STATE__VM_STATE_STARTING && np < 64) {
				snprintf(probes[np].id, DAEMON_ID_LEN, "%s", vm->id);
				probes[np++].pid = vm->pid;
			} else if (vm->state == VMMD__V1__VM_STATE__VM_STATE_RUNNING ||
				   vm->state == VMMD__V1__VM_STATE__VM_STATE_PAUSED) {
				console__start(d, vm);
			}
		}
		pthread_mutex_unlock(&d->lock);
		for (int i = 0; i < np; i++) {
			char reply[256];
			int r = worker__control(d, probes[i].id, "{\"cmd\":\"status\"}", reply,
						sizeof(reply), 1000);

			pthread_mutex_lock(&d->lock);
			struct vm *vm = registry__find(d, probes[i].id);
			if (!r && strstr(reply, "\"ok\":true") && vm && vm->pid == probes[i].pid &&
			    vm->state == VMMD__V1__VM_STATE__VM_STATE_STARTING) {
				registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_RUNNING, "%s",
						    "");
				console__start(d, vm);
			}
			pthread_mutex_unlock(&d->lock);
		}
		/* Every second: what serves each VM's paravisor devices now. */
		if (++tick % 10 == 0)
			pv_status__poll(d);
		usleep(100 * 1000);
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int worker__supervise_start(struct daemon *d)
{
	return -pthread_create(&d->supervisor, NULL, supervisor, d);
}

void worker__reattach(struct daemon *d)
{
	for (struct vm *vm = d->vms; vm; vm = vm->next) {
		char reply[256];
		const char *pidp;

		if (vm->state != VMMD__V1__VM_STATE__VM_STATE_STARTING &&
		    vm->state != VMMD__V1__VM_STATE__VM_STATE_RUNNING &&
		    vm->state != VMMD__V1__VM_STATE__VM_STATE_PAUSED &&
		    vm->state != VMMD__V1__VM_STATE__VM_STATE_STOPPING &&
		    vm->state != VMMD__V1__VM_STATE__VM_STATE_MIGRATING)
			continue;
		vm->child = false;
		if (!worker__control(d, vm->id, "{\"cmd\":\"status\"}", reply, sizeof(reply), 2000) &&
		    strstr(reply, "\"ok\":true")) {
			pidp = strstr(reply, "\"pid\":");
			if (pidp)
				vm->pid = atoi(pidp + 6);
			/* A migration that ended while vmmd was down: the guest
			 * runs on the destination, this vmm stays paused. */
			if (strstr(reply, "\"state\":\"migrated\"")) {
				registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_FAILED,
						    "migrated away while vmmd was down (vmm pid %d "
						    "paused for good): check the destination, then "
						    "delete this VM",
						    vm->pid);
				continue;
			}
			registry__set_state(d, vm,
					    strstr(reply, "\"state\":\"paused\"") ?
						    VMMD__V1__VM_STATE__VM_STATE_PAUSED :
						    VMMD__V1__VM_STATE__VM_STATE_RUNNING,
					    "re-attached to vmm (pid %d) after a vmmd restart",
					    vm->pid);
			continue;
		}
		if (vm->pid > 0 && !pid_gone(vm->pid)) {
			/* Alive but silent (still starting?): the supervisor keeps
			 * probing a starting one and watches the pid of the rest. */
			pr_warn("vm \"%s\": vmm (pid %d) does not answer on its control socket",
				vm->spec->name, vm->pid);
			if (vm->state == VMMD__V1__VM_STATE__VM_STATE_STOPPING ||
			    vm->state == VMMD__V1__VM_STATE__VM_STATE_MIGRATING)
				registry__set_state(d, vm, VMMD__V1__VM_STATE__VM_STATE_STARTING,
						    "re-attaching");
			continue;
		}
		if (vm->pid <= 0)
			vm->pid = 1; /* for the message only */
		worker__exited(d, vm, -1, 0);
	}
}
