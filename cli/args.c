/* cli/args.c — vmmctl's command line.  One getopt_long pass knows every
 * option; a per-option mask of subcommands then refuses an option given to
 * a subcommand it means nothing to, so `vmmctl list --force` is an error
 * instead of being silently ignored. */
#include "cli/args.h"
#include "common/size.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cli_usage[] =
    "usage: vmmctl [--socket PATH] [--json] COMMAND [ARGS]\n"
    "\n"
    "  create --name NAME --memory SIZE [--cpus N] --kernel PATH [--initrd PATH]\n"
    "         [--cmdline STR] [--disk path=FILE[,readonly=on][,cache=none][,queues=N][,id=ID]\n"
    "         [,backend=paravisor]]...\n"
    "         [--net slirp[,hostfwd=tcp::HOSTPORT-:GUESTPORT][,mac=M][,backend=paravisor]\n"
    "                | tap=NAME]...\n"
    "         [--rng] [--prefault] [--on-reboot restart|stop] [--stop-timeout S] [--start]\n"
    "         [--wait]\n"
    "  list                          VMs as a table\n"
    "  get VM                        one VM (by name or id)\n"
    "  start VM [--wait]\n"
    "  stop VM [--force] [--timeout S] [--wait]\n"
    "  reboot VM [--force] [--timeout S] [--wait]\n"
    "  pause VM [--wait]     resume VM [--wait]\n"
    "  snapshot VM DIR [--paused] [--wait]\n"
    "                                write the VM's state and RAM into the new directory\n"
    "                                DIR (it keeps running; --paused: leave it paused)\n"
    "  restore DIR [--name NAME] [--memory-mode copy|lazy] [--wait]\n"
    "                                a new VM (NAME, else the saved VM's name) from the\n"
    "                                snapshot in DIR, running where the snapshot left it\n"
    "  migrate VM DEST [--downtime-limit MS] [--bandwidth-limit BYTES] [--max-rounds N]\n"
    "         [--auto-converge] [--connections N] [--priority migration|equal] [--wait]\n"
    "                                move the running VM live to the vmmd whose migration\n"
    "                                listener is DEST (host:port); --auto-converge throttles\n"
    "                                a guest that dirties memory faster than the link;\n"
    "                                --connections N carries RAM on N connections at once;\n"
    "                                --priority equal: on a busy host the migration gets\n"
    "                                no more CPU than the guest's vCPUs (default migration:\n"
    "                                its threads come first, at nice -10);\n"
    "                                --wait prints the figures\n"
    "  service VM [--paravisor PATH] [--netstack] [--wait]\n"
    "                                replace the VM's paravisor processes (PATH: the new\n"
    "                                binary, else the one running) while the guest runs;\n"
    "                                --netstack replaces slirp NICs' netstacks too (the\n"
    "                                old ones keep their connections until they close);\n"
    "                                --wait prints each device's I/O blackout\n"
    "  delete VM [--force] [--wait]\n"
    "  operations [--vm VM]          operations, newest first\n"
    "  operation ID                  one operation\n"
    "  cancel ID [--wait]            cancel an operation\n"
    "  wait ID                       wait until an operation finishes\n"
    "  events [--vm VM]              follow events, one line each\n"
    "  logs VM [--tail KIB]          the VM's console output\n"
    "  console VM                    interactive console (Ctrl-] q quits)\n"
    "  version\n"
    "\n"
    "The daemon's socket: --socket, else $VMMD_SOCKET, else ./run/vmmd.sock if it\n"
    "exists, else /run/vmmd/vmmd.sock.  Exit codes: 0 ok, 1 API error, 2 usage\n"
    "error, 3 the daemon cannot be reached.\n";

/* Which operands a subcommand takes. */
enum { OPND_NONE, OPND_VM, OPND_OP, OPND_VM_DIR, OPND_DIR, OPND_VM_DEST };

static const char *const operand_names[] = {
    [OPND_VM] = "VM name or id",
    [OPND_OP] = "operation id",
    [OPND_VM_DIR] = "VM name or id",
    [OPND_DIR] = "snapshot directory",
    [OPND_VM_DEST] = "VM name or id",
};

static const struct {
	const char *name;
	int operand;
} cmds[CLI_NR_CMDS] = {
    [CLI_CREATE] = {"create", OPND_NONE},
    [CLI_LIST] = {"list", OPND_NONE},
    [CLI_GET] = {"get", OPND_VM},
    [CLI_START] = {"start", OPND_VM},
    [CLI_STOP] = {"stop", OPND_VM},
    [CLI_REBOOT] = {"reboot", OPND_VM},
    [CLI_PAUSE] = {"pause", OPND_VM},
    [CLI_RESUME] = {"resume", OPND_VM},
    [CLI_SNAPSHOT] = {"snapshot", OPND_VM_DIR},
    [CLI_RESTORE] = {"restore", OPND_DIR},
    [CLI_MIGRATE] = {"migrate", OPND_VM_DEST},
    [CLI_SERVICE] = {"service", OPND_VM},
    [CLI_DELETE] = {"delete", OPND_VM},
    [CLI_OPERATIONS] = {"operations", OPND_NONE},
    [CLI_OPERATION] = {"operation", OPND_OP},
    [CLI_CANCEL] = {"cancel", OPND_OP},
    [CLI_WAIT] = {"wait", OPND_OP},
    [CLI_EVENTS] = {"events", OPND_NONE},
    [CLI_LOGS] = {"logs", OPND_VM},
    [CLI_CONSOLE] = {"console", OPND_VM},
    [CLI_VERSION] = {"version", OPND_NONE},
    [CLI_HELP] = {"help", OPND_NONE},
};

#define M(c) (1u << (c))
#define ALL  (~0u)
#define ACTIONS                                                                                    \
	(M(CLI_CREATE) | M(CLI_START) | M(CLI_STOP) | M(CLI_REBOOT) | M(CLI_PAUSE) |               \
	 M(CLI_RESUME) | M(CLI_SNAPSHOT) | M(CLI_RESTORE) | M(CLI_MIGRATE) | M(CLI_DELETE) |  \
	 M(CLI_SERVICE) | \
	 M(CLI_CANCEL))

enum {
	O_SOCKET = 256,
	O_JSON,
	O_WAIT,
	O_FORCE,
	O_TIMEOUT,
	O_TAIL,
	O_VM,
	O_NAME,
	O_MEMORY,
	O_CPUS,
	O_KERNEL,
	O_INITRD,
	O_CMDLINE,
	O_DISK,
	O_NET,
	O_RNG,
	O_PREFAULT,
	O_START,
	O_ON_REBOOT,
	O_STOP_TIMEOUT,
	O_HELP,
	O_PAUSED,
	O_MEMORY_MODE,
	O_DOWNTIME,
	O_BANDWIDTH,
	O_ROUNDS,
	O_CONVERGE,
	O_CONNECTIONS,
	O_PRIORITY,
	O_PARAVISOR,
	O_NETSTACK,
};

static const struct option long_opts[] = {
    {"socket", required_argument, NULL, O_SOCKET},
    {"json", no_argument, NULL, O_JSON},
    {"wait", no_argument, NULL, O_WAIT},
    {"force", no_argument, NULL, O_FORCE},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"tail", required_argument, NULL, O_TAIL},
    {"vm", required_argument, NULL, O_VM},
    {"name", required_argument, NULL, O_NAME},
    {"memory", required_argument, NULL, O_MEMORY},
    {"cpus", required_argument, NULL, O_CPUS},
    {"kernel", required_argument, NULL, O_KERNEL},
    {"initrd", required_argument, NULL, O_INITRD},
    {"cmdline", required_argument, NULL, O_CMDLINE},
    {"disk", required_argument, NULL, O_DISK},
    {"net", required_argument, NULL, O_NET},
    {"rng", no_argument, NULL, O_RNG},
    {"prefault", no_argument, NULL, O_PREFAULT},
    {"start", no_argument, NULL, O_START},
    {"on-reboot", required_argument, NULL, O_ON_REBOOT},
    {"stop-timeout", required_argument, NULL, O_STOP_TIMEOUT},
    {"help", no_argument, NULL, O_HELP},
    {"paused", no_argument, NULL, O_PAUSED},
    {"memory-mode", required_argument, NULL, O_MEMORY_MODE},
    {"downtime-limit", required_argument, NULL, O_DOWNTIME},
    {"bandwidth-limit", required_argument, NULL, O_BANDWIDTH},
    {"max-rounds", required_argument, NULL, O_ROUNDS},
    {"auto-converge", no_argument, NULL, O_CONVERGE},
    {"connections", required_argument, NULL, O_CONNECTIONS},
    {"priority", required_argument, NULL, O_PRIORITY},
    {"paravisor", required_argument, NULL, O_PARAVISOR},
    {"netstack", no_argument, NULL, O_NETSTACK},
    {0},
};

/* The subcommands each option is allowed with, indexed by option - O_SOCKET. */
static const unsigned opt_cmds[] = {
    [O_SOCKET - O_SOCKET] = ALL,
    [O_JSON - O_SOCKET] = ALL,
    [O_WAIT - O_SOCKET] = ACTIONS,
    [O_FORCE - O_SOCKET] = M(CLI_STOP) | M(CLI_REBOOT) | M(CLI_DELETE),
    [O_TIMEOUT - O_SOCKET] = M(CLI_STOP) | M(CLI_REBOOT),
    [O_TAIL - O_SOCKET] = M(CLI_LOGS),
    [O_VM - O_SOCKET] = M(CLI_OPERATIONS) | M(CLI_EVENTS),
    [O_NAME - O_SOCKET] = M(CLI_CREATE) | M(CLI_RESTORE),
    [O_MEMORY - O_SOCKET] = M(CLI_CREATE),
    [O_CPUS - O_SOCKET] = M(CLI_CREATE),
    [O_KERNEL - O_SOCKET] = M(CLI_CREATE),
    [O_INITRD - O_SOCKET] = M(CLI_CREATE),
    [O_CMDLINE - O_SOCKET] = M(CLI_CREATE),
    [O_DISK - O_SOCKET] = M(CLI_CREATE),
    [O_NET - O_SOCKET] = M(CLI_CREATE),
    [O_RNG - O_SOCKET] = M(CLI_CREATE),
    [O_PREFAULT - O_SOCKET] = M(CLI_CREATE),
    [O_START - O_SOCKET] = M(CLI_CREATE),
    [O_ON_REBOOT - O_SOCKET] = M(CLI_CREATE),
    [O_STOP_TIMEOUT - O_SOCKET] = M(CLI_CREATE),
    [O_HELP - O_SOCKET] = ALL,
    [O_PAUSED - O_SOCKET] = M(CLI_SNAPSHOT),
    [O_MEMORY_MODE - O_SOCKET] = M(CLI_RESTORE),
    [O_DOWNTIME - O_SOCKET] = M(CLI_MIGRATE),
    [O_BANDWIDTH - O_SOCKET] = M(CLI_MIGRATE),
    [O_ROUNDS - O_SOCKET] = M(CLI_MIGRATE),
    [O_CONVERGE - O_SOCKET] = M(CLI_MIGRATE),
    [O_CONNECTIONS - O_SOCKET] = M(CLI_MIGRATE),
    [O_PRIORITY - O_SOCKET] = M(CLI_MIGRATE),
    [O_PARAVISOR - O_SOCKET] = M(CLI_SERVICE),
    [O_NETSTACK - O_SOCKET] = M(CLI_SERVICE),
};

static int bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A decimal number in [min, max]; no sign, no trailing junk. */
static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int cli_size__parse_mib(const char *s, uint64_t *mib)
{
	uint64_t bytes;
	int r = size__parse(s, &bytes);

	if (r)
		return r;
	if (bytes % (1u << 20))
		return -EINVAL;
	*mib = bytes >> 20;
	return 0;
}

static int cmd_by_name(const char *name)
{
	for (int i = 0; i < CLI_NR_CMDS; i++)
		if (!strcmp(cmds[i].name, name))
			return i;
	return -1;
}

static int set_opt(struct cli_args *a, int c, const char *arg, char *err, size_t errlen)
{
	switch (c) {
	case O_SOCKET: a->socket = arg; break;
	case O_JSON: a->json = true; break;
	case O_WAIT: a->wait = true; break;
	case O_FORCE: a->force = true; break;
	case O_TIMEOUT:
		if (parse_u32(arg, 1, 86400, &a->timeout_s))
			return bad(err, errlen, "--timeout %s: not a number of seconds (1-86400)",
				   arg);
		a->has_timeout = true;
		break;
	case O_TAIL:
		if (parse_u32(arg, 1, UINT32_MAX, &a->tail_kib))
			return bad(err, errlen, "--tail %s: not a number of KiB", arg);
		break;
	case O_VM: a->vm = arg; break;
	case O_NAME: a->name = arg; break;
	case O_MEMORY:
		if (cli_size__parse_mib(arg, &a->memory_mib) || !a->memory_mib)
			return bad(err, errlen,
				   "--memory %s: not a size in whole MiB (use e.g. 512M or 2G)",
				   arg);
		break;
	case O_CPUS:
		if (parse_u32(arg, 1, 255, &a->vcpus))
			return bad(err, errlen, "--cpus %s: not a number of vCPUs (1-255)", arg);
		break;
	case O_KERNEL: a->kernel = arg; break;
	case O_INITRD: a->initrd = arg; break;
	case O_CMDLINE: a->cmdline = arg; break;
	case O_DISK:
		if (a->nr_disks == CLI_MAX_LIST)
			return bad(err, errlen, "--disk: at most %d disks", CLI_MAX_LIST);
		a->disks[a->nr_disks++] = arg;
		break;
	case O_NET:
		if (a->nr_nets == 8)
			return bad(err, errlen, "--net: at most 8 network interfaces");
		a->nets[a->nr_nets++] = arg;
		break;
	case O_RNG: a->rng = true; break;
	case O_PREFAULT: a->prefault = true; break;
	case O_START: a->start = true; break;
	case O_ON_REBOOT:
		if (strcmp(arg, "restart") && strcmp(arg, "stop"))
			return bad(err, errlen, "--on-reboot %s: must be restart or stop", arg);
		a->on_reboot = arg;
		break;
	case O_CONVERGE:
		a->auto_converge = true;
		break;
	case O_NETSTACK: a->netstack = true; break;
	case O_PARAVISOR:
		if (arg[0] != '/')
			return bad(err, errlen, "--paravisor %s: expected an absolute path", arg);
		a->paravisor = arg;
		break;
	case O_CONNECTIONS:
		if (parse_u32(arg, 1, 16, &a->connections))
			return bad(err, errlen, "--connections %s: not a number of connections (1-16)",
				   arg);
		break;
	case O_PRIORITY:
		a->priority_equal = strcmp(arg, "equal") == 0;
		if (!a->priority_equal && strcmp(arg, "migration") != 0)
			return bad(err, errlen, "--priority %s: must be migration or equal", arg);
		break;
	case O_PAUSED: a->paused = true; break;
	case O_MEMORY_MODE:
		if (strcmp(arg, "copy") && strcmp(arg, "lazy"))
			return bad(err, errlen, "--memory-mode %s: must be copy or lazy", arg);
		a->lazy = !strcmp(arg, "lazy");
		break;
	case O_DOWNTIME:
		if (parse_u32(arg, 1, 600000, &a->downtime_limit_ms))
			return bad(err, errlen,
				   "--downtime-limit %s: not a number of milliseconds (1-600000)",
				   arg);
		break;
	case O_ROUNDS:
		if (parse_u32(arg, 1, 1000, &a->max_rounds))
			return bad(err, errlen, "--max-rounds %s: not a number of rounds (1-1000)",
				   arg);
		break;
	case O_BANDWIDTH: {
		char *end;

		errno = 0;
		a->bandwidth_limit = arg[0] >= '0' && arg[0] <= '9' ? strtoull(arg, &end, 10) : 0;
		if (arg[0] < '0' || arg[0] > '9' || errno || *end)
			return bad(err, errlen, "--bandwidth-limit %s: not a number of bytes per "
						"second",
				   arg);
		break;
	}
	case O_STOP_TIMEOUT:
		if (parse_u32(arg, 1, 86400, &a->stop_timeout_s))
			return bad(err, errlen,
				   "--stop-timeout %s: not a number of seconds (1-86400)", arg);
		break;
	}
	return 0;
}

int cli_args__parse(struct cli_args *a, int argc, char **argv, char *err, size_t errlen)
{
	/* Options are checked against the subcommand once it is known, so
	 * they are recorded first: they may come before or after it. */
	int seen[64], nr_seen = 0;
	const char *operands[4];
	int nr_operands = 0, c, cmd, want;

	memset(a, 0, sizeof(*a));
	opterr = 0;
	optind = 0; /* 0: glibc reinitialises, so tests may parse many times */
	while ((c = getopt_long(argc, argv, "+h", long_opts, NULL)) != -1 || optind < argc) {
		if (c == -1) { /* an operand: keep going past it */
			if (nr_operands == 4)
				return bad(err, errlen, "too many arguments");
			operands[nr_operands++] = argv[optind++];
			continue;
		}
		if (c == '?') {
			if (optopt)
				return bad(err, errlen,
					   "option needs an argument or takes none: %s",
					   argv[optind - 1]);
			return bad(err, errlen, "unknown option %s", argv[optind - 1]);
		}
		if (c == ':')
			return bad(err, errlen, "%s needs an argument", argv[optind - 1]);
		if (c == 'h')
			c = O_HELP;
		if (set_opt(a, c, optarg, err, errlen))
			return -EINVAL;
		if (nr_seen < 64)
			seen[nr_seen++] = c;
	}
	if (!nr_operands) {
		for (int i = 0; i < nr_seen; i++)
			if (seen[i] == O_HELP) {
				a->cmd = CLI_HELP;
				a->cmd_name = "help";
				return 0;
			}
		return bad(err, errlen, "no command given");
	}
	cmd = cmd_by_name(operands[0]);
	if (cmd < 0)
		return bad(err, errlen, "unknown command \"%s\"", operands[0]);
	a->cmd = cmd;
	a->cmd_name = cmds[cmd].name;
	for (int i = 0; i < nr_seen; i++) {
		if (seen[i] == O_HELP) {
			a->cmd = CLI_HELP;
			return 0;
		}
		if (!(opt_cmds[seen[i] - O_SOCKET] & M(cmd)))
			return bad(err, errlen, "%s: --%s does not apply", a->cmd_name,
				   long_opts[seen[i] - O_SOCKET].name);
	}
	want = cmds[cmd].operand == OPND_NONE					  ? 0
	       : cmds[cmd].operand == OPND_VM_DIR || cmds[cmd].operand == OPND_VM_DEST ? 2
											 : 1;
	if (nr_operands - 1 < want) {
		/* snapshot VM DIR, migrate VM DEST: the VM comes first, so with
		 * one it is the second that is missing. */
		const char *missing = operand_names[cmds[cmd].operand];

		if (nr_operands == 2 && cmds[cmd].operand == OPND_VM_DIR)
			missing = operand_names[OPND_DIR];
		if (nr_operands == 2 && cmds[cmd].operand == OPND_VM_DEST)
			missing = "destination (host:port of its vmmd's migration listener)";
		return bad(err, errlen, "%s: missing the %s", a->cmd_name, missing);
	}
	if (nr_operands - 1 > want)
		return bad(err, errlen, "%s: unexpected argument \"%s\"", a->cmd_name,
			   operands[want + 1]);
	if (cmds[cmd].operand == OPND_DIR)
		a->dir = operands[1];
	else if (want)
		a->target = operands[1];
	if (cmds[cmd].operand == OPND_VM_DIR)
		a->dir = operands[2];
	if (cmds[cmd].operand == OPND_VM_DEST)
		a->dest = operands[2];
	if (cmd == CLI_CREATE) {
		if (!a->name)
			return bad(err, errlen, "create: --name is required");
		if (!a->memory_mib)
			return bad(err, errlen, "create: --memory is required");
		if (!a->kernel)
			return bad(err, errlen, "create: --kernel is required");
	}
	return 0;
}
