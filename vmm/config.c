/* vmm/config.c — the vmm command line.  Every rejection is one line naming
 * the option and what is wrong with it; main() turns it into exit code 2. */
#include "vmm/config.h"
#include "common/size.h"

#include "vmm/layout.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>

#define DEFAULT_MEM_SIZE (256 * SZ_1M)
#define MIN_MEM_SIZE (16 * SZ_1M)
#define MAX_CPUS 255 /* xAPIC ids in the MADT are 8 bits */
#define DEFAULT_STOP_TIMEOUT 30
#define DEFAULT_INCOMING_NICE (-10) /* as the source's migration threads */

void config__usage(FILE *out)
{
	fputs("usage: vmm --kernel PATH [options]\n"
	      "       vmm --restore DIR [--restore-mode copy|lazy] [options of the saved VM]\n"
	      "       vmm --incoming HOST:PORT [--tls-cert F --tls-key F --tls-ca F] [options of the VM]\n"
	      "  --kernel PATH        bzImage or PVH ELF to boot\n"
	      "  --initrd PATH        initial ramdisk\n"
	      "  --cmdline STR        kernel command line\n"
	      "  --memory SIZE        guest RAM, e.g. 512M or 2G (default 256M)\n"
	      "  --prefault           allocate all guest RAM at start, not on first touch (as\n"
	      "                       QEMU's -mem-prealloc): a migration's destination then\n"
	      "                       receives into RAM that is already there\n"
	      "  --cpus N             vCPUs (default 1)\n"
	      "  --serial KIND        stdio | file:PATH | unix:PATH | none (default stdio)\n"
	      "  --on-reboot ACTION   exit (exit code 3) | restart (default exit)\n"
	      "  --stop-timeout SECS  grace period after SIGTERM presses the power button (default 30)\n"
	      "  --disk path=FILE[,readonly=on][,cache=none|writeback][,queues=N][,id=NAME]\n"
	      "       [,backend=vmm|paravisor]  paravisor: a paravisor process serves the disk\n"
	      "                       over vhost-user (vmm's own model is the default)\n"
	      "       [,restart=on|off]  a paravisor that dies is restarted (default on)\n"
	      "  --paravisor PATH     the paravisor binary (default: next to vmm)\n"
	      "  --paravisor-uid N    the uid and gid its paravisors run as (vmm started as root;\n"
	      "                       default 65534, nobody)\n"
	      "  --net slirp[,hostfwd=...][,mac=...] | tap=NAME[,mac=...]\n"
	      "  --console KIND       virtio-console: stdio | file:PATH | unix:PATH | none (default none)\n"
	      "  --rng                virtio-rng device fed from the host's getrandom()\n"
	      "  --control PATH       control socket (JSON lines: status, powerdown, stop, pause,\n"
	      "                       resume, snapshot)\n"
	      "  --restore DIR        start from a snapshot instead of booting (same --memory,\n"
	      "                       --cpus and devices as the VM it was taken from)\n"
	      "  --restore-mode MODE  copy: read guest RAM in before starting (default);\n"
	      "                       lazy: map the snapshot's memory file, pages load on first touch\n"
	      "  --incoming HOST:PORT wait there for a live migration of a VM with these options\n"
	      "  --tls-cert/--tls-key/--tls-ca FILE  mutual TLS 1.3 for --incoming: only a source\n"
	      "                       whose certificate chains to the CA gets through\n"
	      "  --incoming-nice N    nice value (-20..19) of the thread receiving the migration\n"
	      "                       (default -10: ahead of other guests' vCPUs; needs\n"
	      "                       CAP_SYS_NICE, else it stays as it was)\n"
	      "  --dirty-log MODE     how a live migration learns what vCPUs wrote: ring (KVM's\n"
	      "                       per-vCPU dirty ring), bitmap (KVM_GET_DIRTY_LOG) or auto\n"
	      "                       (the ring where KVM has it; default)\n"
	      "  --status-file PATH   on exit, write why the VM stopped there (JSON)\n"
	      "  --spec-fd N          first option only: read options, each NUL-terminated,\n"
	      "                       from descriptor N (how vmmd hands over a VM's spec)\n"
	      "  -v, --verbose        debug logging\n"
	      "  -h, --help           this text\n"
	      "exit codes: 0 guest powered off, 1 VM failed, 2 bad usage or input,\n"
	      "            3 guest rebooted, 4 stopped hard after SIGTERM, 5 migrated away\n",
	      out);
}

int config__parse_size(const char *s, uint64_t *out)
{
	return size__parse(s, out);
}

static void kv_opt__free(struct kv_opt *o)
{
	free(o->kind);
	for (int i = 0; i < o->n; i++) {
		free(o->key[i]);
		free(o->val[i]);
	}
	memset(o, 0, sizeof(*o));
}

int kv_opt__parse(struct kv_opt *o, const char *s)
{
	char *dup = strdup(s), *save = NULL, *tok;
	int first = 1, err;

	if (!dup)
		return -ENOMEM;
	memset(o, 0, sizeof(*o));
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (first && !eq) {
			o->kind = strdup(tok);
		} else if (eq && eq != tok) {
			if (o->n == VMM_MAX_KV) {
				err = -E2BIG;
				goto out_free;
			}
			*eq = 0;
			o->key[o->n] = strdup(tok);
			o->val[o->n] = strdup(eq + 1);
			o->n++;
		} else {
			err = -EINVAL;
			goto out_free;
		}
		first = 0;
	}
	free(dup);
	return 0;
out_free:
	kv_opt__free(o);
	free(dup);
	return err;
}

const char *kv_opt__get(const struct kv_opt *o, const char *key)
{
	for (int i = 0; i < o->n; i++)
		if (!strcmp(o->key[i], key))
			return o->val[i];
	return NULL;
}

void config__free(struct vm_config *cfg)
{
	for (int i = 0; i < cfg->nr_disks; i++)
		kv_opt__free(&cfg->disks[i]);
	for (int i = 0; i < cfg->nr_nics; i++)
		kv_opt__free(&cfg->nics[i]);
	cfg->nr_disks = cfg->nr_nics = 0;
}

static int config__parse_chardev(const char *arg, enum serial_kind *kind, const char **path)
{
	if (!strcmp(arg, "stdio"))
		*kind = SERIAL_STDIO;
	else if (!strcmp(arg, "none"))
		*kind = SERIAL_NONE;
	else if (!strncmp(arg, "file:", 5) && arg[5])
		*kind = SERIAL_FILE, *path = arg + 5;
	else if (!strncmp(arg, "unix:", 5) && arg[5])
		*kind = SERIAL_UNIX, *path = arg + 5;
	else
		return -EINVAL;
	return 0;
}

static int config__bad(const char *opt, const char *arg, const char *why)
{
	fprintf(stderr, "vmm: %s '%s': %s\n", opt, arg, why);
	return -EINVAL;
}

enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_MEMORY, OPT_CPUS,
       OPT_SERIAL, OPT_ON_REBOOT, OPT_STOP_TIMEOUT, OPT_DISK, OPT_NET, OPT_CONSOLE,
       OPT_RNG, OPT_CONTROL, OPT_STATUS_FILE, OPT_RESTORE, OPT_RESTORE_MODE, OPT_INCOMING,
       OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CA, OPT_DIRTY_LOG, OPT_PARAVISOR,
       OPT_PARAVISOR_UID, OPT_PREFAULT, OPT_INCOMING_NICE };

static const struct option long_opts[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "prefault", no_argument, NULL, OPT_PREFAULT },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "on-reboot", required_argument, NULL, OPT_ON_REBOOT },
	{ "stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "net", required_argument, NULL, OPT_NET },
	{ "console", required_argument, NULL, OPT_CONSOLE },
	{ "rng", no_argument, NULL, OPT_RNG },
	{ "control", required_argument, NULL, OPT_CONTROL },
	{ "status-file", required_argument, NULL, OPT_STATUS_FILE },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "restore-mode", required_argument, NULL, OPT_RESTORE_MODE },
	{ "incoming", required_argument, NULL, OPT_INCOMING },
	{ "incoming-nice", required_argument, NULL, OPT_INCOMING_NICE },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
	{ "dirty-log", required_argument, NULL, OPT_DIRTY_LOG },
	{ "paravisor", required_argument, NULL, OPT_PARAVISOR },
	{ "paravisor-uid", required_argument, NULL, OPT_PARAVISOR_UID },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static uint64_t config__host_ram(void)
{
	struct sysinfo si;

	return sysinfo(&si) ? 0 : (uint64_t)si.totalram * si.mem_unit;
}

static int config__parse_nice(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < -20 || v > 19)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static int config__parse_uint(const char *s, unsigned long max, unsigned int *out)
{
	char *end;
	unsigned long v;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

static int config__parse_one(struct vm_config *cfg, int c, const char *arg)
{
	switch (c) {
	case OPT_KERNEL: cfg->kernel = arg; return 0;
	case OPT_INITRD: cfg->initrd = arg; return 0;
	case OPT_CMDLINE: cfg->cmdline = arg; return 0;
	case OPT_MEMORY:
		if (config__parse_size(arg, &cfg->mem_size))
			return config__bad("--memory", arg, "not a size (use e.g. 512M or 2G)");
		if (cfg->mem_size < MIN_MEM_SIZE)
			return config__bad("--memory", arg, "too small (minimum 16M)");
		if (cfg->mem_size > MAX_RAM_SIZE)
			return config__bad("--memory", arg, "larger than the guest address map allows (510G)");
		if (config__host_ram() && cfg->mem_size > config__host_ram())
			return config__bad("--memory", arg, "larger than this host's RAM");
		if (cfg->mem_size % (2 * SZ_1M))
			return config__bad("--memory", arg, "must be a multiple of 2M");
		return 0;
	case OPT_CPUS:
		if (config__parse_uint(arg, MAX_CPUS, &cfg->nr_cpus) || !cfg->nr_cpus)
			return config__bad("--cpus", arg, "must be a whole number from 1 to 255");
		return 0;
	case OPT_SERIAL:
		if (config__parse_chardev(arg, &cfg->serial, &cfg->serial_path))
			return config__bad("--serial", arg, "expected stdio, none, file:PATH or unix:PATH");
		return 0;
	case OPT_CONSOLE:
		if (config__parse_chardev(arg, &cfg->console, &cfg->console_path))
			return config__bad("--console", arg, "expected stdio, none, file:PATH or unix:PATH");
		return 0;
	case OPT_RNG: cfg->rng = true; return 0;
	case OPT_PREFAULT: cfg->prefault = true; return 0;
	case OPT_CONTROL: cfg->control_path = arg; return 0;
	case OPT_STATUS_FILE: cfg->status_path = arg; return 0;
	case OPT_RESTORE: cfg->restore_dir = arg; return 0;
	case OPT_INCOMING:
		if (!strchr(arg, ':'))
			return config__bad("--incoming", arg, "expected HOST:PORT (HOST may be empty)");
		cfg->incoming = arg;
		return 0;
	case OPT_INCOMING_NICE:
		if (config__parse_nice(arg, &cfg->incoming_nice))
			return config__bad("--incoming-nice", arg, "must be a nice value from -20 to 19");
		return 0;
	case OPT_TLS_CERT: cfg->tls_cert = arg; return 0;
	case OPT_TLS_KEY: cfg->tls_key = arg; return 0;
	case OPT_TLS_CA: cfg->tls_ca = arg; return 0;
	case OPT_PARAVISOR:
		if (!*arg)
			return config__bad("--paravisor", arg, "expected the paravisor binary's path");
		cfg->paravisor = arg;
		return 0;
	case OPT_PARAVISOR_UID: {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(arg, &end, 10);
		if (!*arg || *end || errno || v < 1 || v >= 0xffffffffUL || *arg == '-')
			return config__bad("--paravisor-uid", arg,
					   "expected a uid from 1 to 4294967294 (not root)");
		cfg->paravisor_uid = (long)v;
		return 0;
	}
	case OPT_DIRTY_LOG:
		if (!strcmp(arg, "auto"))
			cfg->dirty_log = DIRTY_LOG_AUTO;
		else if (!strcmp(arg, "ring"))
			cfg->dirty_log = DIRTY_LOG_RING;
		else if (!strcmp(arg, "bitmap"))
			cfg->dirty_log = DIRTY_LOG_BITMAP;
		else
			return config__bad("--dirty-log", arg, "expected auto, ring or bitmap");
		return 0;
	case OPT_RESTORE_MODE:
		if (strcmp(arg, "copy") && strcmp(arg, "lazy"))
			return config__bad("--restore-mode", arg, "expected copy or lazy");
		cfg->restore_lazy = !strcmp(arg, "lazy");
		return 0;
	case OPT_ON_REBOOT:
		if (!strcmp(arg, "exit"))
			cfg->on_reboot = ON_REBOOT_EXIT;
		else if (!strcmp(arg, "restart"))
			cfg->on_reboot = ON_REBOOT_RESTART;
		else
			return config__bad("--on-reboot", arg, "expected exit or restart");
		return 0;
	case OPT_STOP_TIMEOUT:
		if (config__parse_uint(arg, 86400, &cfg->stop_timeout_s))
			return config__bad("--stop-timeout", arg, "must be seconds from 0 to 86400");
		return 0;
	case OPT_DISK:
		if (cfg->nr_disks == VMM_MAX_DISKS)
			return config__bad("--disk", arg, "too many disks (at most 16)");
		if (kv_opt__parse(&cfg->disks[cfg->nr_disks], arg))
			return config__bad("--disk", arg, "expected path=FILE[,key=value...]");
		cfg->nr_disks++;
		return 0;
	case OPT_NET:
		if (cfg->nr_nics == VMM_MAX_NICS)
			return config__bad("--net", arg, "too many NICs (at most 8)");
		if (kv_opt__parse(&cfg->nics[cfg->nr_nics], arg))
			return config__bad("--net", arg, "expected slirp[,key=value...] or tap=NAME");
		cfg->nr_nics++;
		return 0;
	case 'v': cfg->verbose = true; return 0;
	}
	return -EINVAL;
}

int config__parse(struct vm_config *cfg, int argc, char **argv)
{
	int c;

	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_size = DEFAULT_MEM_SIZE;
	cfg->nr_cpus = 1;
	cfg->serial = SERIAL_STDIO;
	cfg->console = SERIAL_NONE;
	cfg->stop_timeout_s = DEFAULT_STOP_TIMEOUT;
	cfg->incoming_nice = DEFAULT_INCOMING_NICE;

	opterr = 0; /* our own messages, one line each */
	optind = 1;
	while ((c = getopt_long(argc, argv, ":vh", long_opts, NULL)) != -1) {
		if (c == 'h') {
			config__usage(stdout);
			return 1;
		}
		if (c == '?') {
			if (optopt)
				fprintf(stderr, "vmm: unknown option '-%c' (see vmm --help)\n", optopt);
			else
				fprintf(stderr, "vmm: unknown option '%s' (see vmm --help)\n", argv[optind - 1]);
			return -EINVAL;
		}
		if (c == ':') {
			fprintf(stderr, "vmm: option '%s' needs a value\n", argv[optind - 1]);
			return -EINVAL;
		}
		if (config__parse_one(cfg, c, optarg))
			return -EINVAL;
	}
	if (optind < argc) {
		fprintf(stderr, "vmm: unexpected argument '%s' (see vmm --help)\n", argv[optind]);
		return -EINVAL;
	}
	if (cfg->serial == SERIAL_STDIO && cfg->console == SERIAL_STDIO) {
		fprintf(stderr, "vmm: --serial and --console cannot both use stdio\n");
		return -EINVAL;
	}
	if ((cfg->tls_cert || cfg->tls_key || cfg->tls_ca) &&
	    !(cfg->tls_cert && cfg->tls_key && cfg->tls_ca && cfg->incoming)) {
		fprintf(stderr, "vmm: --tls-cert, --tls-key and --tls-ca go together, with --incoming\n");
		return -EINVAL;
	}
	if ((cfg->incoming || cfg->restore_dir) && cfg->on_reboot == ON_REBOOT_RESTART) {
		/* The re-exec would restore (or wait for) the same VM again, not boot. */
		fprintf(stderr, "vmm: --on-reboot restart cannot go with --restore or --incoming\n");
		return -EINVAL;
	}
	if (cfg->prefault && cfg->restore_lazy) {
		fprintf(stderr, "vmm: --prefault cannot go with --restore-mode lazy (which loads "
				"pages on first touch)\n");
		return -EINVAL;
	}
	if (cfg->incoming && cfg->restore_dir) {
		fprintf(stderr, "vmm: --incoming and --restore exclude each other\n");
		return -EINVAL;
	}
	if (!cfg->kernel && !cfg->restore_dir && !cfg->incoming) {
		fprintf(stderr, "vmm: --kernel is required (or --restore DIR; see vmm --help)\n");
		return -EINVAL;
	}
	return 0;
}
