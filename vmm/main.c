/* vmm/main.c — the standalone vmm command: one VM, until it stops. */
#include "common/log.h"
#include "vmm/boot.h"
#include "vmm/config.h"
#include "vmm/spec_fd.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The first SIGTERM/SIGINT presses the ACPI power button and gives the guest
 * stop_timeout_s to power off; a second one, or the deadline, stops it hard.
 */
static void main__wait(struct vm *vm, int sfd)
{
	int64_t deadline = -1;

	for (;;) {
		struct pollfd pfd[2] = { { vm->stop_efd, POLLIN, 0 }, { sfd, POLLIN, 0 } };
		int timeout = deadline < 0 ? -1 : (int)(deadline - now_ms());
		struct signalfd_siginfo si;

		if (deadline >= 0 && timeout <= 0) {
			vm__request_stop(vm, VM_STOP_KILLED,
					 "guest did not power off within %u s of the power button",
					 vm->cfg->stop_timeout_s);
			return;
		}
		if (poll(pfd, 2, timeout) < 0 && errno != EINTR)
			return;
		if (pfd[0].revents)
			return;
		if (!(pfd[1].revents & POLLIN) || read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (deadline >= 0 || !vm->power_button ||
		    __atomic_load_n(&vm->migrated, __ATOMIC_ACQUIRE)) {
			vm__request_stop(vm, VM_STOP_KILLED, "stopped by signal %u", si.ssi_signo);
			return;
		}
		pr_info("signal %u: pressing the ACPI power button (%u s to power off)",
			si.ssi_signo, vm->cfg->stop_timeout_s);
		vm->power_button(vm);
		deadline = now_ms() + (int64_t)vm->cfg->stop_timeout_s * 1000;
	}
}

static int main__exit_code(struct vm *vm)
{
	switch (vm->stop_reason) {
	case VM_STOP_POWEROFF:
		pr_debug("%s", vm->stop_message);
		return VMM_EXIT_POWEROFF;
	case VM_STOP_REBOOT:
		pr_info("%s", vm->stop_message);
		return VMM_EXIT_REBOOT;
	case VM_STOP_KILLED:
		pr_warn("%s", vm->stop_message);
		return VMM_EXIT_KILLED;
	case VM_STOP_MIGRATED:
		pr_info("%s", vm->stop_message);
		return VMM_EXIT_MIGRATED;
	default:
		pr_err("%s", vm->stop_message);
		return VMM_EXIT_ERROR;
	}
}

/* Atomically records why the VM stopped, for a vmmd that re-attaches later
 * and can no longer waitpid() the worker. */
static void main__write_status(const struct vm_config *cfg, const struct vm *vm, int code)
{
	static const char *const reasons[] = { "running", "poweroff", "reboot", "error", "killed",
						       "migrated" };
	char tmp[4096];
	FILE *f;
	int bad;

	if (!cfg->status_path)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", cfg->status_path);
	f = fopen(tmp, "w");
	if (!f) {
		pr_warn("--status-file %s: %s", tmp, strerror(errno));
		return;
	}
	fprintf(f, "{\"reason\":\"%s\",\"exit_code\":%d,\"message\":\"",
		reasons[vm->stop_reason], code);
	for (const char *p = vm->stop_message; *p; p++)
		fprintf(f, (*p == '"' || *p == '\\') ? "\\%c" : ((unsigned char)*p < 0x20 ? "?" : "%c"), *p);
	fprintf(f, "\"}\n");
	bad = fflush(f) || fsync(fileno(f));
	bad |= fclose(f);
	if (bad || rename(tmp, cfg->status_path))
		pr_warn("--status-file %s: %s", cfg->status_path, strerror(errno));
}

static int main__run(struct vm_config *cfg, int sfd)
{
	struct boot_files bf;
	struct vm vm;
	bool hooks_ran = false;
	int err, code = VMM_EXIT_ERROR;

	memset(&bf, 0, sizeof(bf));
	if (!cfg->restore_dir && !cfg->incoming && boot__open_files(cfg, &bf))
		return VMM_EXIT_USAGE;
	err = vm__create(&vm, cfg);
	if (err) {
		boot__close_files(&bf);
		return err == -E2BIG ? VMM_EXIT_USAGE : VMM_EXIT_ERROR;
	}
	err = vcpus__create(&vm);
	if (err)
		goto out_destroy;
	err = init_hooks__run(&vm);
	if (err) {
		/* -EINVAL: a device refused its options (already reported). */
		code = err == -EINVAL ? VMM_EXIT_USAGE : VMM_EXIT_ERROR;
		goto out_destroy;
	}
	hooks_ran = true;
	if (cfg->restore_dir) {
		/* A snapshot that does not fit is bad input: nothing ran yet. */
		err = vm__restore_hook ? vm__restore_hook(&vm, cfg->restore_dir, cfg->restore_lazy)
				       : -ENOSYS;
		if (err) {
			pr_err("--restore %s: not restored; the VM did not start", cfg->restore_dir);
			code = VMM_EXIT_USAGE;
			goto out_destroy;
		}
	} else if (cfg->incoming) {
		/* The threads first, vCPUs parked and the loop held: starting
		 * them once the source has stopped the guest took 10-25 ms of
		 * its downtime in the lab. */
		vm__pause(&vm);
		err = evloop__start_held(&vm.loop);
		if (!err)
			err = vcpus__start(&vm);
		/* Blocks until the source hands over; a failure discards all. */
		if (!err)
			err = vm__incoming_hook ? vm__incoming_hook(&vm) : -ENOSYS;
		if (err) {
			pr_err("--incoming %s: no VM received; nothing ran", cfg->incoming);
			vm__request_stop(&vm, VM_STOP_ERROR, "no VM received");
			vcpus__join(&vm);
			evloop__stop(&vm.loop);
			goto out_destroy;
		}
	} else {
		err = boot__load(&vm, &bf);
		boot__close_files(&bf);
		if (err) {
			code = err == -EINVAL ? VMM_EXIT_USAGE : VMM_EXIT_ERROR;
			goto out_destroy;
		}
		err = vcpus__setup_boot(&vm);
		if (err) {
			pr_err("vCPU 0: boot registers: %s", strerror(-err));
			goto out_destroy;
		}
	}
	if (cfg->incoming) {
		evloop__release(&vm.loop);
		vm__resume(&vm);
		err = 0;
	} else {
		err = evloop__start(&vm.loop);
		if (!err)
			err = vcpus__start(&vm);
	}
	if (err) {
		pr_err("cannot start threads: %s", strerror(-err));
		goto out_stop;
	}
	main__wait(&vm, sfd);
out_stop:
	vm__request_stop(&vm, VM_STOP_ERROR, "stopped");
	vcpus__join(&vm);
	evloop__stop(&vm.loop);
	code = main__exit_code(&vm);
	main__write_status(cfg, &vm, code);
out_destroy:
	if (hooks_ran)
		init_hooks__exit(&vm);
	boot__close_files(&bf);
	vcpus__destroy(&vm);
	vm__destroy(&vm);
	return code;
}

int main(int argc, char **argv)
{
	struct vm_config cfg;
	char **spec_argv, why[256];
	int sfd, code, err, spec_argc;
	sigset_t set;

	if (spec_fd__expand(argc, argv, &spec_argc, &spec_argv, why, sizeof(why))) {
		fprintf(stderr, "vmm: %s\n", why);
		return VMM_EXIT_USAGE;
	}
	if (spec_argv)
		err = config__parse(&cfg, spec_argc, spec_argv);
	else
		err = config__parse(&cfg, argc, argv);
	if (err)
		return err > 0 ? 0 : VMM_EXIT_USAGE;
	if (cfg.verbose)
		log__set_level(LOG_DEBUG);

	/* Blocked in every thread; main reads them from a signalfd. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		pr_err("signalfd: %s", strerror(errno));
		return VMM_EXIT_ERROR;
	}

	code = main__run(&cfg, sfd);
	if (code == VMM_EXIT_REBOOT && cfg.on_reboot == ON_REBOOT_RESTART) {
		/* A fresh process is the cleanest reset of every device. */
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
		execv("/proc/self/exe", argv);
		pr_err("restart after reboot: exec: %s", strerror(errno));
		code = VMM_EXIT_ERROR;
	}
	close(sfd);
	config__free(&cfg);
	return code;
}
