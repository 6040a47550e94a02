/* vmm/config.h — what the command line (or later, vmmd) asks the VM to be. */
#ifndef VMMD_VMM_CONFIG_H
#define VMMD_VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define VMM_MAX_DISKS 16
#define VMM_MAX_NICS 8
#define VMM_MAX_KV 16

enum serial_kind { SERIAL_NONE, SERIAL_STDIO, SERIAL_FILE, SERIAL_UNIX };
enum on_reboot { ON_REBOOT_EXIT, ON_REBOOT_RESTART };
enum dirty_log_mode { DIRTY_LOG_AUTO, DIRTY_LOG_RING, DIRTY_LOG_BITMAP };

/* "path=FILE,readonly=on" style option: the first bare word, then key=value. */
struct kv_opt {
	char *kind; /* first element when it has no '=' (e.g. "slirp"), else NULL */
	int n;
	char *key[VMM_MAX_KV];
	char *val[VMM_MAX_KV];
};

struct vm_config {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	uint64_t mem_size;
	unsigned int nr_cpus;
	enum serial_kind serial;
	const char *serial_path; /* file:PATH or unix:PATH */
	enum on_reboot on_reboot;
	unsigned int stop_timeout_s; /* ACPI power button grace period */
	int nr_disks;
	struct kv_opt disks[VMM_MAX_DISKS];
	int nr_nics;
	struct kv_opt nics[VMM_MAX_NICS];
	/* --console: a virtio-console port as a second console */
	enum serial_kind console;
	const char *console_path;
	bool rng; /* --rng: virtio-rng fed from getrandom() */
	bool prefault;		  /* --prefault: all guest RAM allocated at start */
	const char *control_path; /* --control: vmmd's unix socket */
	const char *status_path;  /* --status-file: why the VM stopped, as JSON */
	const char *restore_dir;  /* --restore: start from this snapshot */
	bool restore_lazy;        /* --restore-mode lazy */
	const char *incoming;     /* --incoming HOST:PORT: wait for a live migration */
	int incoming_nice;	  /* --incoming-nice */
	const char *tls_cert, *tls_key, *tls_ca; /* --tls-*: mutual TLS for --incoming */
	enum dirty_log_mode dirty_log;           /* --dirty-log */
	const char *paravisor;                   /* --paravisor: its binary */
	long paravisor_uid;                      /* --paravisor-uid; 0: its default */
	bool verbose;
};

/* Process exit codes of the vmm command (documented in README). */
enum vmm_exit {
	VMM_EXIT_POWEROFF = 0, /* guest powered off */
	VMM_EXIT_ERROR = 1,    /* the VM failed: triple fault, KVM error */
	VMM_EXIT_USAGE = 2,    /* bad command line or unusable input file */
	VMM_EXIT_REBOOT = 3,   /* guest asked for a reboot (without --on-reboot restart) */
	VMM_EXIT_KILLED = 4,   /* stopped hard after SIGTERM grace period */
	VMM_EXIT_MIGRATED = 5, /* the VM now runs on a live migration's destination */
};

/* Parses argv; on error prints one line naming the problem and returns -EINVAL. */
int config__parse(struct vm_config *cfg, int argc, char **argv);
int config__parse_size(const char *s, uint64_t *out);
int kv_opt__parse(struct kv_opt *o, const char *s);
const char *kv_opt__get(const struct kv_opt *o, const char *key);
void config__free(struct vm_config *cfg);
void config__usage(FILE *out);

#endif
