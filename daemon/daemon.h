/* daemon/daemon.h — vmmd's core: the registry of VMs and operations, their
 * persistence, the vmm workers, events, consoles and metrics.  One mutex
 * (d->lock) guards the registry; I/O with workers happens outside it. */
#ifndef VMMD_DAEMON_H
#define VMMD_DAEMON_H

#include "api/service.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define DAEMON_MAX_ALLOW 16
#define DAEMON_ID_LEN 37 /* UUID text + NUL */
#define CONSOLE_RING (64 * 1024)
#define REGISTRY_PATH_MAX 1024 /* snapshot directories */

struct daemon_config {
	char state_dir[256]; /* absolute */
	char run_dir[256];   /* absolute */
	char vmm_path[512];
	char allow[DAEMON_MAX_ALLOW][256]; /* absolute, resolved */
	int nr_allow;
	unsigned int default_stop_timeout_s;
	/* Seconds a starting worker has to answer on its control socket. */
	unsigned int start_timeout_s;
	/* Live migration (daemon/migrate*.c): the listener ("" when off), the
	 * data ports its incoming vmms listen on, and the TLS files used for
	 * both (and as MigrateVm's default). */
	char migration_listen[128];
	unsigned int migration_port_lo, migration_port_hi;
	char migration_cert[256], migration_key[256], migration_ca[256];
	/* Each VM's paravisors run as a uid of this range (0: off). */
	unsigned int paravisor_uid_lo, paravisor_uid_hi;
};

struct console;
struct events;
struct metrics;

/* A paravisor-served device as the VM's vmm last reported it
 * ({"cmd":"paravisor-status"}, daemon/pv_status.c). */
struct vm_pv_dev {
	char id[32], kind[8];
	int pid, netstack_pid; /* 0: none */
	bool restart;
	unsigned int restarts, netstack_restarts;
	int netstack_draining[4]; /* the first nr_draining of them */
	unsigned int nr_draining;
	char last_death[256], netstack_last_death[256], netstack_died[256];
	char failed[512];
};
#define VM_PV_DEVS 16

struct vm {
	struct vm *next;
	char id[DAEMON_ID_LEN];
	Vmmd__V1__VmSpec *spec; /* owned, protobuf-c unpacked */
	Vmmd__V1__VmState state;
	char reason[256];
	int64_t created_at_ms, started_at_ms, updated_at_ms;
	pid_t pid;
	bool child;	   /* our child (waitpid) rather than re-attached (poll pid) */
	bool stop_wanted;  /* an operation stops it: exit code 3 does not restart */
	bool deleted;	   /* removed from the list; freed when the last op ends */
	bool incoming;	   /* migrating in: vmm --incoming on data_port */
	unsigned int data_port;
	unsigned int paravisor_uid; /* its paravisors' uid (persisted); 0: none yet */
	char op_id[DAEMON_ID_LEN];
	struct console *console;
	/* Its paravisor devices, as last reported; nr_pv 0: none or no report. */
	struct vm_pv_dev pv[VM_PV_DEVS];
	unsigned int nr_pv;
};

struct op {
	struct op *next;
	char id[DAEMON_ID_LEN];
	Vmmd__V1__OperationKind kind;
	char vm_id[DAEMON_ID_LEN];
	Vmmd__V1__OperationState state;
	uint32_t progress;
	struct api_error error;
	int64_t created_at_ms, finished_at_ms;
	char message[256];
	bool cancel; /* CancelOperation asked */
	/* arguments */
	uint32_t timeout_s;
	bool force;
	bool start_after;	      /* CreateVm with start */
	bool paused;		      /* SnapshotVm: leave the VM paused */
	bool lazy;		      /* RestoreVm: map RAM instead of copying it */
	char path[REGISTRY_PATH_MAX]; /* SnapshotVm, RestoreVm: the directory */
	/* result of a snapshot (SnapshotResult), once it succeeded */
	bool has_result;
	uint64_t memory_pages, state_bytes;
	uint32_t duration_ms;
	/* MigrateVm's arguments and result */
	struct op_migrate *mig;
	/* ServiceVm's arguments and result */
	struct op_service *svc;
};

#define SERVICE_DEVICES_KEPT 16

struct op_service {
	char paravisor[REGISTRY_PATH_MAX]; /* empty: the binary serving now */
	uint32_t max_parallel;		   /* ServiceFleet: VMs at once; 0: no gate */
	bool netstack;			   /* replace slirp NICs' netstacks too */
	bool has_result, rolled_back;
	uint32_t duration_ms, nr_devices;
	struct {
		char id[32];
		uint32_t blackout_ms;
		int32_t old_pid, new_pid;
		int32_t netstack_old_pid, netstack_new_pid; /* 0: not replaced */
	} dev[SERVICE_DEVICES_KEPT];
};

#define MIGRATE_ROUNDS_KEPT 64
/* MIGRATION_PRIORITY_MIGRATION's nice value: the migration's threads get
 * about nine times a vCPU's share of a contended CPU (vmm's default). */
#define MIGRATE_THREAD_NICE (-10)

struct op_migrate {
	char dest[256];
	uint32_t downtime_limit_ms, max_rounds;
	uint64_t bandwidth_limit;
	bool auto_converge;
	uint32_t connections;
	int thread_nice; /* asked for the migration's threads at both ends */
	char cert[REGISTRY_PATH_MAX], key[REGISTRY_PATH_MAX], ca[REGISTRY_PATH_MAX];
	bool has_result;
	uint32_t setup_ms, total_ms, downtime_ms, rounds;
	uint64_t bytes, pages_normal, pages_zero, throughput;
	uint32_t throttle_pct, nr_conns;
	int nice_now; /* what the source's migration threads ran at */
	uint32_t dt_pause, dt_state, dt_pages, dt_restore, dt_start; /* downtime parts */
	uint64_t dt_last_pages;
	char dirty_log[8];
	struct {
		uint64_t pages, dirty_pages_per_s;
		uint32_t ms, throttle_pct;
	} round[MIGRATE_ROUNDS_KEPT];
};

struct daemon {
	struct daemon_config cfg;
	pthread_mutex_t lock;
	pthread_cond_t changed; /* broadcast on every VM state change */
	struct vm *vms;
	struct op *ops; /* newest first */
	struct events *events;
	struct metrics *metrics;
	pthread_t supervisor;
	bool stopping;
	int nr_threads; /* operation threads running */
	struct api_service svc;
	struct migrate_in *mig_in; /* the migration listener, if any */
	unsigned int services_running; /* ServiceVm operations talking to vmm */
};

/* daemon/registry.c */
int64_t now_ms(void);
void daemon__gen_id(char id[DAEMON_ID_LEN]);
struct vm *registry__find(struct daemon *d, const char *id_or_name);
const char *vm_state__name(Vmmd__V1__VmState s); /* "running" */
/* Sets state and reason, persists, emits an event; call under d->lock. */
void registry__set_state(struct daemon *d, struct vm *vm, Vmmd__V1__VmState s, const char *fmt,
			 ...) __attribute__((format(printf, 4, 5)));
int registry__validate_spec(const struct daemon_config *cfg, Vmmd__V1__VmSpec *spec,
			    struct api_error *err);
/* A directory the API names (field): absolute, and inside an --allow-dir
 * directory once symlinks are followed; it must exist if must_exist, else
 * its parent must. */
int registry__check_dir(const struct daemon_config *cfg, const char *field, const char *path,
			bool must_exist, struct api_error *err);
/* Builds the Vm message for vm (free with protobuf_c_message_free_unpacked). */
Vmmd__V1__Vm *registry__vm_message(const struct vm *vm);
Vmmd__V1__Operation *registry__op_message(const struct op *op);
/* Message copy through pack/unpack: the result frees with free_unpacked. */
ProtobufCMessage *msg__dup(const ProtobufCMessage *m);
void vm__free(struct vm *vm);

/* daemon/ops.c */
struct op *ops__find(struct daemon *d, const char *id);
void op__free(struct op *op);
/* Begins an operation on vm (under d->lock): FAILED_PRECONDITION if one runs. */
int ops__begin(struct daemon *d, struct vm *vm, Vmmd__V1__OperationKind kind, struct op **out,
	       struct api_error *err);
void ops__update(struct daemon *d, struct op *op, Vmmd__V1__OperationState st, uint32_t progress,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void ops__fail(struct daemon *d, struct op *op, enum api_code code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Runs op in its own thread. */
int ops__launch(struct daemon *d, struct op *op);
void ops__reconcile(struct daemon *d);

/* daemon/store.c */
int store__write_atomic(const char *dir, const char *name, const char *data, size_t len);
int store__save_vm(struct daemon *d, const struct vm *vm);
int store__remove_vm(struct daemon *d, const struct vm *vm);
int store__save_op(struct daemon *d, const struct op *op);
int store__remove_op(struct daemon *d, const struct op *op);
/* Loads vms/ and operations/; bad files are logged and left out. */
int store__load(struct daemon *d);
struct vm *store__parse_vm(const char *text, size_t len, char *why, size_t whylen);
/* A whole file of at most 4 MiB, NUL-terminated (malloc'd); NULL with errno. */
char *store__read_file(const char *path, size_t *len);

/* daemon/worker.c */
void worker__paths(const struct daemon *d, const char *id, const char *what, char *buf,
		   size_t len);
/* Start from a snapshot instead of booting (vmm --restore DIR), or wait
 * for a live migration (vmm --incoming HOST:PORT with the TLS files). */
struct worker_restore {
	const char *dir;
	bool lazy;
	const char *incoming;
	const char *cert, *key, *ca;
	int incoming_nice; /* --incoming-nice */
};
/* Starts vmm for vm; restore NULL boots the kernel. */
int worker__spawn(struct daemon *d, struct vm *vm, const struct worker_restore *restore, char *why,
		  size_t whylen);
/* One control request; reply copied into reply. 0 or -errno. */
int worker__control(const struct daemon *d, const char *id, const char *cmd, char *reply,
		    size_t len, int timeout_ms);
int worker__supervise_start(struct daemon *d);
void worker__remove_files(struct daemon *d, const char *id);
/* Takes vm off the registry and its files away, announced as deleted
 * with why; freed at once (d->lock held). */
void registry__remove(struct daemon *d, struct vm *vm, const char *op_id, const char *why);
/* Startup: re-attach to live workers or settle the state of dead ones. */
void worker__reattach(struct daemon *d);

/* daemon/pv_status.c */
/* Asks each running or paused VM with paravisor devices for their status
 * (d->lock not held; taken to read and update the registry). */
void pv_status__poll(struct daemon *d);

/* daemon/snapshot.c */
/* Seconds vmm may take to write or load a snapshot of a VM this large. */
unsigned int snapshot__timeout_s(const struct daemon *d, uint64_t memory_mib);
/* SnapshotVm's checks: path (trailing '/' dropped into op_path) may be
 * used and holds no snapshot yet. */
int snapshot__check_new(const struct daemon_config *cfg, const char *path, char *op_path,
			size_t len, struct api_error *err);
/* RestoreVm's: the spec saved in the snapshot at path (free with
 * protobuf_c_message_free_unpacked), its name replaced by name if set;
 * the path, trailing '/' dropped, into dir. */
int snapshot__read_spec(const struct daemon_config *cfg, const char *path, const char *name,
			char *dir, size_t dirlen, Vmmd__V1__VmSpec **spec, struct api_error *err);
/* The snapshot operation on vm (d->lock held; dropped while vmm works). */
void snapshot__run(struct daemon *d, struct op *op, struct vm *vm);

/* daemon/events.c */
struct events *events__new(size_t keep);
void events__free(struct events *ev);
void events__emit(struct events *ev, const char *vm_id, Vmmd__V1__EventKind kind,
		  Vmmd__V1__VmState state, const char *op_id, Vmmd__V1__OperationState op_state,
		  const char *fmt, ...) __attribute__((format(printf, 7, 8)));
int events__watch(struct events *ev, const char *vm_id, uint64_t after_seq, api_event_sink sink,
		  void *opaque, uint64_t *handle);
void events__unwatch(struct events *ev, uint64_t handle);

/* daemon/console.c */
void console__start(struct daemon *d, struct vm *vm);
void console__free(struct console *c);
void console__end_streams(struct console *c);
int console__tail(struct console *c, size_t max, uint8_t **data, size_t *len, bool *truncated);
int console__attach(struct daemon *d, const char *vm_id, api_bytes_sink sink, void *opaque,
		    uint64_t *handle, struct api_error *err);
int console__write(struct daemon *d, uint64_t handle, const uint8_t *data, size_t len);
void console__detach(struct daemon *d, uint64_t handle);

/* daemon/metrics.c */
struct metrics *metrics__new(void);
void metrics__free(struct metrics *m);
void metrics__observe(struct metrics *m, const char *transport, const char *route, int status,
		      uint64_t usec);
/* A migration ended: incoming or outgoing, "succeeded", "failed" or
 * "cancelled", and (outgoing) its figures: downtime, time, bytes. */
void metrics__migration(struct metrics *m, bool incoming, const char *result,
			const struct op_migrate *g);
/* A servicing ended: "succeeded", "rolled_back" or "failed", with the
 * devices' blackouts when it succeeded. */
void metrics__service(struct metrics *m, const char *result, const struct op_service *s);
int metrics__render(struct daemon *d, char **text, size_t *len);

/* daemon/pv_uids.c */
/* Locks the range host-wide: chosen, the one --paravisor-uids gave (none:
 * off), else the default, picked here; 0, or negative errno after saying
 * why. */
int pv_uids__claim(struct daemon_config *cfg, bool chosen);
/* The uid vm's paravisors run as: the one it holds, or the first of the
 * range no known VM holds (persisted at once); 0 if off, full or no
 * paravisor device.  d->lock held. */
unsigned int pv_uids__assign(struct daemon *d, struct vm *vm);

/* daemon/paravisor_service.c */
bool paravisor_service__has_device(const struct vm *vm);
void paravisor_service__run(struct daemon *d, struct op *op, struct vm *vm);

/* daemon/service.c */
struct api_service *daemon_service(struct daemon *d);

/* daemon/daemon.c */
int daemon__init(struct daemon *d, const struct daemon_config *cfg);
void daemon__fini(struct daemon *d);

#endif
