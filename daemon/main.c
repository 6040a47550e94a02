/* daemon/main.c — vmmd: paths and options, the transports, sd_notify by
 * hand (one datagram, no libsystemd), and a clean exit on SIGTERM that
 * leaves the VMs running (KillMode=process: the next vmmd re-attaches). */
#include "daemon/daemon.h"
#include "api/transport.h"
#include "common/log.h"
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void sd_notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd;

	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path) ||
	    (path[0] != '/' && path[0] != '@'))
		return;
	strcpy(sa.sun_path, path);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
	close(fd);
}

static int mkdir_abs(const char *in, char *out, size_t len)
{
	char real[PATH_MAX];

	if (mkdir(in, 0700) && errno != EEXIST) {
		pr_err("cannot create %s: %s", in, strerror(errno));
		return -1;
	}
	if (!realpath(in, real) || strlen(real) >= len) {
		pr_err("%s: %s", in, strerror(errno ? errno : ENAMETOOLONG));
		return -1;
	}
	strcpy(out, real);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vmmd [options]\n"
		"  --state-dir DIR     VM specs and state (default ./var; /var/lib/vmmd under systemd)\n"
		"  --run-dir DIR       sockets (default ./run; /run/vmmd under systemd)\n"
		"  --allow-dir DIR     kernels, initrds and disks may come from DIR (repeatable;\n"
		"                      default STATE_DIR/images, plus the cwd when not under systemd)\n"
		"  --vmm PATH          the vmm worker (default: next to vmmd; env VMMD_VMM)\n"
		"  --rest-socket PATH  REST Unix socket (default RUN_DIR/vmmd.sock)\n"
		"  --grpc-socket PATH  gRPC Unix socket (default RUN_DIR/vmmd.grpc.sock)\n"
		"  --rest-listen H:P   also serve REST on TCP (needs --tls-cert, --tls-key, --tls-ca)\n"
		"  --grpc-listen H:P   also serve gRPC on TCP (same TLS files)\n"
		"  --tls-cert F --tls-key F --tls-ca F   server certificate, key, client CA\n"
		"  --stop-timeout SECS default grace period of StopVm (30)\n"
		"  --migration-listen H:P  take live migrations from other vmmds there (mutual TLS\n"
		"                      with the --migration-tls-* files; off by default)\n"
		"  --migration-tls-cert F --migration-tls-key F --migration-tls-ca F\n"
		"                      certificate, key and CA for migrations, both ways\n"
		"  --migration-data-ports A-B  ports the incoming vmms listen on (default: the\n"
		"                      --migration-listen port + 1 to + 16)\n"
		"  --paravisor-uids A-B  uids (and gids) for the VMs' paravisors, one per VM; no\n"
		"                      two vmmds' ranges may overlap (default as root: 65536\n"
		"                      uids from 2000000000 up, the block chosen by the state\n"
		"                      dir; off: all run as nobody)\n"
		"  --log-level L       error | warn | info | debug\n");
}

enum { O_STATE = 256, O_RUN, O_ALLOW, O_VMM, O_REST, O_GRPC, O_REST_L, O_GRPC_L, O_CERT, O_KEY,
       O_CA, O_LOG, O_STOP, O_MIG_L, O_MIG_CERT, O_MIG_KEY, O_MIG_CA, O_MIG_PORTS,
       O_PV_UIDS };

static const struct option opts[] = {
	{ "state-dir", 1, NULL, O_STATE },   { "run-dir", 1, NULL, O_RUN },
	{ "allow-dir", 1, NULL, O_ALLOW },   { "vmm", 1, NULL, O_VMM },
	{ "rest-socket", 1, NULL, O_REST },  { "grpc-socket", 1, NULL, O_GRPC },
	{ "rest-listen", 1, NULL, O_REST_L }, { "grpc-listen", 1, NULL, O_GRPC_L },
	{ "tls-cert", 1, NULL, O_CERT },     { "tls-key", 1, NULL, O_KEY },
	{ "tls-ca", 1, NULL, O_CA },	     { "log-level", 1, NULL, O_LOG },
	{ "stop-timeout", 1, NULL, O_STOP }, { "help", 0, NULL, 'h' },
	{ "version", 0, NULL, 'V' },
	{ "migration-listen", 1, NULL, O_MIG_L },
	{ "migration-tls-cert", 1, NULL, O_MIG_CERT },
	{ "migration-tls-key", 1, NULL, O_MIG_KEY },
	{ "migration-tls-ca", 1, NULL, O_MIG_CA },
	{ "migration-data-ports", 1, NULL, O_MIG_PORTS },
	{ "paravisor-uids", 1, NULL, O_PV_UIDS },
	{ NULL, 0, NULL, 0 },
};

/* A --migration-tls-* file: absolute (vmm gets it), into out. */
static int mig_file(const char *opt, const char *in, char *out, size_t len)
{
	char real[PATH_MAX];

	if (!realpath(in, real) || strlen(real) >= len) {
		fprintf(stderr, "vmmd: --%s %s: %s\n", opt, in, strerror(errno ? errno : ENAMETOOLONG));
		return -1;
	}
	strcpy(out, real);
	return 0;
}

/* --migration-listen and its companions, checked and into cfg. */
static int mig_options(struct daemon_config *cfg, const char *listen, const char *cert,
		       const char *key, const char *ca, const char *ports)
{
	const char *colon;
	unsigned int lo, hi;
	char tail;

	if ((cert && mig_file("migration-tls-cert", cert, cfg->migration_cert,
			      sizeof(cfg->migration_cert))) ||
	    (key && mig_file("migration-tls-key", key, cfg->migration_key,
			     sizeof(cfg->migration_key))) ||
	    (ca && mig_file("migration-tls-ca", ca, cfg->migration_ca, sizeof(cfg->migration_ca))))
		return -1;
	if (!listen)
		return 0;
	colon = strrchr(listen, ':');
	if (!colon || atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535 ||
	    strlen(listen) >= sizeof(cfg->migration_listen)) {
		fprintf(stderr, "vmmd: --migration-listen %s: expected HOST:PORT\n", listen);
		return -1;
	}
	/* A TCP listener takes only peers with a certificate from our CA. */
	if (!cert || !key || !ca) {
		fprintf(stderr, "vmmd: --migration-listen needs --migration-tls-cert, "
				"--migration-tls-key and --migration-tls-ca\n");
		return -1;
	}
	strcpy(cfg->migration_listen, listen);
	lo = (unsigned int)atoi(colon + 1) + 1;
	hi = lo + 15;
	if (ports && (sscanf(ports, "%u-%u%c", &lo, &hi, &tail) != 2 || !lo || lo > hi ||
		      hi > 65535)) {
		fprintf(stderr, "vmmd: --migration-data-ports %s: expected A-B (1-65535)\n", ports);
		return -1;
	}
	cfg->migration_port_lo = lo;
	cfg->migration_port_hi = hi > 65535 ? 65535 : hi;
	return 0;
}

/* --paravisor-uids A-B | off.  Only root can give a paravisor a uid. */
static int pv_uid_options(struct daemon_config *cfg, const char *arg)
{
	unsigned long lo, hi;
	char *end;

	if (!arg || !strcmp(arg, "off"))
		return 0;
	errno = 0;
	lo = strtoul(arg, &end, 10);
	if (*end == '-')
		hi = strtoul(end + 1, &end, 10);
	else
		hi = 0;
	if (errno || *end || *arg == '-' || !lo || hi < lo || hi >= 0xffffffffUL) {
		fprintf(stderr, "vmmd: --paravisor-uids %s: expected FIRST-LAST (uids from 1, "
				"FIRST <= LAST) or off\n",
			arg);
		return -1;
	}
	cfg->paravisor_uid_lo = (unsigned int)lo;
	cfg->paravisor_uid_hi = (unsigned int)hi;
	return 0;
}

/* The vmm binary: VMMD_VMM, --vmm, next to vmmd, or in the build tree. */
static int find_vmm(const char *opt, char *out, size_t len)
{
	char exe[PATH_MAX], *slash;
	ssize_t n;

	if (getenv("VMMD_VMM") && *getenv("VMMD_VMM"))
		opt = getenv("VMMD_VMM");
	if (opt) {
		snprintf(out, len, "%s", opt);
		return access(out, X_OK) ? -1 : 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	*slash = '\0';
	snprintf(out, len, "%.400s/vmm", exe);
	if (!access(out, X_OK))
		return 0;
	snprintf(out, len, "%.400s/../vmm/vmm", exe);
	return access(out, X_OK) ? -1 : 0;
}

int main(int argc, char **argv)
{
	const char *state = NULL, *run = NULL, *rest_sock = NULL, *grpc_sock = NULL, *vmm = NULL;
	const char *allow[DAEMON_MAX_ALLOW];
	const char *mig_listen = NULL, *mig_cert = NULL, *mig_key = NULL, *mig_ca = NULL,
		   *mig_ports = NULL, *pv_uids = NULL;
	int nr_allow = 0, c, listen_fd = -1, rc = 1;
	bool systemd = getenv("INVOCATION_ID") || getenv("NOTIFY_SOCKET") || getenv("LISTEN_FDS");
	struct rest_config rc_cfg = { .listen_fd = -1, .unix_mode = 0660 };
	struct grpc_config gc_cfg = { .listen_fd = -1, .unix_mode = 0660 };
	struct daemon_config cfg = { .default_stop_timeout_s = 30, .start_timeout_s = 20 };
	struct rest_server *rest = NULL;
	struct grpc_front *grpc = NULL;
	char rest_path[512], grpc_path[512], buf[300];
	static struct daemon d;
	sigset_t sigs;
	int sig;

	log__set_prefix("vmmd");
	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (c) {
		case O_STATE: state = optarg; break;
		case O_RUN: run = optarg; break;
		case O_ALLOW:
			if (nr_allow == DAEMON_MAX_ALLOW) {
				fprintf(stderr, "vmmd: at most %d --allow-dir\n", DAEMON_MAX_ALLOW);
				return 2;
			}
			allow[nr_allow++] = optarg;
			break;
		case O_VMM: vmm = optarg; break;
		case O_REST: rest_sock = optarg; break;
		case O_GRPC: grpc_sock = optarg; break;
		case O_REST_L: rc_cfg.tcp_listen = optarg; break;
		case O_GRPC_L: gc_cfg.tcp_listen = optarg; break;
		case O_CERT: rc_cfg.tls_cert = gc_cfg.tls_cert = optarg; break;
		case O_KEY: rc_cfg.tls_key = gc_cfg.tls_key = optarg; break;
		case O_CA: rc_cfg.tls_ca = gc_cfg.tls_ca = optarg; break;
		case O_STOP: cfg.default_stop_timeout_s = (unsigned)atoi(optarg); break;
		case O_MIG_L: mig_listen = optarg; break;
		case O_MIG_CERT: mig_cert = optarg; break;
		case O_MIG_KEY: mig_key = optarg; break;
		case O_MIG_CA: mig_ca = optarg; break;
		case O_MIG_PORTS: mig_ports = optarg; break;
		case O_PV_UIDS: pv_uids = optarg; break;
		case O_LOG:
			if (!strcmp(optarg, "error")) log__set_level(LOG_ERROR);
			else if (!strcmp(optarg, "warn")) log__set_level(LOG_WARN);
			else if (!strcmp(optarg, "info")) log__set_level(LOG_INFO);
			else if (!strcmp(optarg, "debug")) log__set_level(LOG_DEBUG);
			else {
				fprintf(stderr, "vmmd: --log-level: %s: expected error, warn, info or debug\n", optarg);
				return 2;
			}
			break;
		case 'V': printf("vmmd %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vmmd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (mig_options(&cfg, mig_listen, mig_cert, mig_key, mig_ca, mig_ports) ||
	    pv_uid_options(&cfg, pv_uids))
		return 2;
	umask(077);
	if (mkdir_abs(state ? state : systemd ? "/var/lib/vmmd" : "var", cfg.state_dir,
		      sizeof(cfg.state_dir)) ||
	    mkdir_abs(run ? run : systemd ? "/run/vmmd" : "run", cfg.run_dir, sizeof(cfg.run_dir)))
		return 1;
	/* The default range depends on the state dir (daemon/pv_uids.c). */
	if ((pv_uids || geteuid() == 0) && pv_uids__claim(&cfg, pv_uids != NULL))
		return 2;
	if (find_vmm(vmm, cfg.vmm_path, sizeof(cfg.vmm_path)))
		pr_warn("no vmm worker at %s (use --vmm or VMMD_VMM): VMs cannot start",
			cfg.vmm_path[0] ? cfg.vmm_path : "next to vmmd");
	/* Default allowed dirs: STATE_DIR/images, and the cwd for a vmmd a
	 * person runs by hand (never under systemd, whose cwd is /). */
	snprintf(buf, sizeof(buf), "%s/images", cfg.state_dir);
	if (!nr_allow) {
		static char cwd[PATH_MAX];

		allow[nr_allow++] = buf;
		if (!systemd && getcwd(cwd, sizeof(cwd)))
			allow[nr_allow++] = cwd;
	}
	mkdir(buf, 0700);
	for (int i = 0; i < nr_allow; i++) {
		char real[PATH_MAX];

		if (!realpath(allow[i], real) || strlen(real) >= sizeof(cfg.allow[0])) {
			pr_err("--allow-dir %s: %s", allow[i], strerror(errno));
			return 1;
		}
		strcpy(cfg.allow[cfg.nr_allow++], real);
		pr_info("specs may use files under %s", real);
	}
	snprintf(rest_path, sizeof(rest_path), "%s", rest_sock ? rest_sock : "");
	if (!rest_sock)
		snprintf(rest_path, sizeof(rest_path), "%s/vmmd.sock", cfg.run_dir);
	snprintf(grpc_path, sizeof(grpc_path), "%s", grpc_sock ? grpc_sock : "");
	if (!grpc_sock)
		snprintf(grpc_path, sizeof(grpc_path), "%s/vmmd.grpc.sock", cfg.run_dir);
	/* Socket activation (vmmd.socket): the REST socket arrives as fd 3. */
	if (getenv("LISTEN_PID") && atoi(getenv("LISTEN_PID")) == getpid() && getenv("LISTEN_FDS") &&
	    atoi(getenv("LISTEN_FDS")) >= 1)
		listen_fd = 3;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");

	/* Signals are taken by sigwait below; threads started from here on
	 * inherit the mask, and workers reset it before exec. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (daemon__init(&d, &cfg)) {
		pr_err("cannot start the daemon core");
		return 1;
	}
	rc_cfg.unix_path = rest_path;
	rc_cfg.listen_fd = listen_fd;
	gc_cfg.unix_path = grpc_path;
	if (rest_server__start(daemon_service(&d), &rc_cfg, &rest)) {
		pr_err("cannot start the REST server on %s", rest_path);
		goto out;
	}
	if (grpc_server__start(daemon_service(&d), &gc_cfg, &grpc)) {
		pr_err("cannot start the gRPC server on unix:%s", grpc_path);
		goto out;
	}
	pr_info("vmmd %s ready: REST on %s, gRPC on unix:%s, state in %s", PACKAGE_VERSION,
		rest_path, grpc_path, cfg.state_dir);
	sd_notify("READY=1\nSTATUS=serving\n");
	do
		sig = sigwaitinfo(&sigs, NULL);
	while (sig == SIGHUP || (sig < 0 && errno == EINTR));
	pr_info("signal %d: stopping (VMs keep running)", sig);
	rc = 0;
out:
	sd_notify("STOPPING=1\nSTATUS=stopping\n");
	grpc_server__stop(grpc);
	rest_server__stop(rest);
	daemon__fini(&d);
	return rc;
}
