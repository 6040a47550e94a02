/* cli/args.h — vmmctl's command line: one parse into struct cli_args, and
 * the translation of create's flags into a CreateVmRequest.  No I/O here,
 * so every rule is unit-tested (tests/unit/test_vmmctl_args.c). */
#ifndef VMMD_CLI_ARGS_H
#define VMMD_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "api/vmm.pb-c.h"

enum cli_cmd {
	CLI_CREATE,
	CLI_LIST,
	CLI_GET,
	CLI_START,
	CLI_STOP,
	CLI_REBOOT,
	CLI_PAUSE,
	CLI_RESUME,
	CLI_SNAPSHOT,
	CLI_RESTORE,
	CLI_MIGRATE,
	CLI_SERVICE,
	CLI_DELETE,
	CLI_OPERATIONS,
	CLI_OPERATION,
	CLI_CANCEL,
	CLI_WAIT,
	CLI_EVENTS,
	CLI_LOGS,
	CLI_CONSOLE,
	CLI_VERSION,
	CLI_HELP,
	CLI_NR_CMDS,
};

#define CLI_MAX_LIST 16 /* --disk, --net: the schema allows at most 16 and 8 */

struct cli_args {
	enum cli_cmd cmd;
	const char *cmd_name;
	const char *target; /* the VM or operation named by the operand */
	const char *dir;    /* snapshot, restore: the snapshot directory */

	const char *socket;
	bool json;
	bool wait;
	bool force;
	bool start;
	bool rng;
	bool prefault;
	uint32_t timeout_s;
	bool has_timeout;
	uint32_t tail_kib;
	const char *vm; /* operations/events --vm */
	bool paused;	/* snapshot --paused */
	bool lazy;	/* restore --memory-mode lazy */
	/* migrate VM DEST */
	const char *dest;
	uint32_t downtime_limit_ms, max_rounds;
	uint64_t bandwidth_limit;
	bool auto_converge;
	const char *paravisor; /* service --paravisor */
	bool netstack;	       /* service --netstack */
	uint32_t connections;
	bool priority_equal; /* migrate --priority equal */

	/* create (and restore: --name) */
	const char *name;
	uint64_t memory_mib;
	uint32_t vcpus;
	const char *kernel, *initrd, *cmdline;
	const char *disks[CLI_MAX_LIST];
	size_t nr_disks;
	const char *nets[CLI_MAX_LIST];
	size_t nr_nets;
	const char *on_reboot;
	uint32_t stop_timeout_s;
};

/* Parses argv (argv[0] is the program).  On a usage error returns -EINVAL
 * and writes one line saying what is wrong into err. */
int cli_args__parse(struct cli_args *a, int argc, char **argv, char *err, size_t errlen);

/* "512M", "2G", "1GiB", "4096K", "512" (a bare number is MiB) -> MiB.
 * Sizes that are not whole MiB are refused: the API counts MiB. */
int cli_size__parse_mib(const char *s, uint64_t *mib);

/* --disk path=FILE[,readonly=on][,cache=none|writeback][,queues=N][,id=NAME]
 * (a first element without '=' is the path) into d (vmmd__v1__disk__init'ed,
 * strings point into buf, a writable copy the caller keeps). */
int cli_disk__parse(char *buf, Vmmd__V1__Disk *d, char *err, size_t errlen);

/* --net slirp[,hostfwd=tcp:[ADDR]:HPORT-[ADDR]:GPORT]...[,mac=M][,id=NAME]
 * or tap=NAME[,mac=M][,id=NAME].  Allocates the Slirp / Tap / HostFwd
 * parts; free with cli_nic__free. */
int cli_nic__parse(char *buf, Vmmd__V1__Nic *n, char *err, size_t errlen);
void cli_nic__free(Vmmd__V1__Nic *n);

/* The CreateVmRequest of `create` as the API's JSON (built through the
 * protobuf message, so field names follow api/vmm.proto), or NULL with a
 * usage error in err. */
json_t *cli_spec__create_request(const struct cli_args *a, char *err, size_t errlen);

/* The usage text, for --help and usage errors. */
extern const char cli_usage[];

#endif
