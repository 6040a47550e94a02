/* daemon/pv_uids.c — the uids vmmd gives the VMs' paravisors (each VM's
 * paravisors run as a uid, and gid, no other VM has).
 *
 * Within one vmmd: a VM keeps its uid for as long as the VM exists, in its
 * record in the state dir (status.paravisor_uid), so a vmmd that restarts
 * knows which uids its VMs (running ones included) hold and gives none of
 * them out again.
 *
 * Between the vmmds of one host: each holds its whole range with an open
 * file description lock (F_OFD_SETLK) on the bytes [first, last] of one
 * host-wide lock file, so two ranges that overlap cannot both be in use.
 * An explicit --paravisor-uids range another vmmd holds is refused; the
 * default range is a block of 65536 uids from 2000000000 up chosen by a
 * hash of the state dir (the same block after every restart of the same
 * vmmd), or the next free block if another vmmd holds that one.  The lock
 * goes with the process, so a crashed vmmd leaves nothing stale behind;
 * while a vmmd is down its running VMs' uids are not locked, which is why
 * the default block depends on the state dir and not on who came first. */
#include "daemon/daemon.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PV_UIDS_LOCK   "/run/vmmd-paravisor-uids.lock"
#define PV_UIDS_BASE   2000000000u
#define PV_UIDS_BLOCK  65536u
#define PV_UIDS_BLOCKS 32768u /* up to 4147483647, below (uid_t)-1 */

static int pv_uids__lock_fd = -1;

/* 0 if [lo, hi] is ours now; -EAGAIN if another process holds part of
 * it; another negative errno if there is no lock to take. */
static int pv_uids__lock(unsigned int lo, unsigned int hi)
{
	struct flock fl = {
	    .l_type = F_WRLCK,
	    .l_whence = SEEK_SET,
	    .l_start = (off_t)lo,
	    .l_len = (off_t)hi - (off_t)lo + 1,
	};

	if (pv_uids__lock_fd < 0) {
		pv_uids__lock_fd = open(PV_UIDS_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (pv_uids__lock_fd < 0)
			return -errno;
	}
	if (!fcntl(pv_uids__lock_fd, F_OFD_SETLK, &fl))
		return 0;
	return errno == EACCES ? -EAGAIN : -errno;
}

/* FNV-1a: the state dir's block of the default range. */
static unsigned int pv_uids__block_of(const char *state_dir)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)state_dir; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % PV_UIDS_BLOCKS;
}

int pv_uids__claim(struct daemon_config *cfg, bool chosen)
{
	unsigned int block;
	int err = 0;

	if (chosen && !cfg->paravisor_uid_lo)
		return 0; /* off */
	if (chosen) {
		err = pv_uids__lock(cfg->paravisor_uid_lo, cfg->paravisor_uid_hi);
		if (err == -EAGAIN) {
			pr_err("--paravisor-uids %u-%u: another vmmd uses uids of this range "
			       "(locked in %s); give each vmmd a range of its own",
			       cfg->paravisor_uid_lo, cfg->paravisor_uid_hi, PV_UIDS_LOCK);
			return err;
		}
		if (err)
			pr_warn("--paravisor-uids %u-%u: cannot lock them in %s (%s): nothing "
				"keeps another vmmd from using them too",
				cfg->paravisor_uid_lo, cfg->paravisor_uid_hi, PV_UIDS_LOCK,
				strerror(-err));
		return 0;
	}
	block = pv_uids__block_of(cfg->state_dir);
	for (unsigned int i = 0; i < PV_UIDS_BLOCKS; i++) {
		unsigned int b = (block + i) % PV_UIDS_BLOCKS;

		cfg->paravisor_uid_lo = PV_UIDS_BASE + b * PV_UIDS_BLOCK;
		cfg->paravisor_uid_hi = cfg->paravisor_uid_lo + PV_UIDS_BLOCK - 1;
		err = pv_uids__lock(cfg->paravisor_uid_lo, cfg->paravisor_uid_hi);
		if (err != -EAGAIN)
			break;
	}
	if (err == -EAGAIN) {
		pr_err("every block of paravisor uids from %u up is held by another vmmd; "
		       "use --paravisor-uids",
		       PV_UIDS_BASE);
		return err;
	}
	if (err)
		pr_warn("paravisor uids %u-%u: cannot lock them in %s (%s): nothing keeps "
			"another vmmd from using them too",
			cfg->paravisor_uid_lo, cfg->paravisor_uid_hi, PV_UIDS_LOCK, strerror(-err));
	pr_info("paravisor uids %u-%u (one per VM)", cfg->paravisor_uid_lo, cfg->paravisor_uid_hi);
	return 0;
}

/* Another known VM holds uid (a deleted VM is off the list already). */
static bool pv_uids__taken(const struct daemon *d, const struct vm *vm, unsigned int uid)
{
	for (const struct vm *o = d->vms; o; o = o->next)
		if (o != vm && o->paravisor_uid == uid)
			return true;
	return false;
}

unsigned int pv_uids__assign(struct daemon *d, struct vm *vm)
{
	unsigned int lo = d->cfg.paravisor_uid_lo, hi = d->cfg.paravisor_uid_hi;

	if (!lo || !paravisor_service__has_device(vm))
		return 0;
	/* A uid from another range (an earlier vmmd's) may be another vmmd's
	 * now: a VM that starts again takes one of ours. */
	if (vm->paravisor_uid >= lo && vm->paravisor_uid <= hi)
		return vm->paravisor_uid;
	vm->paravisor_uid = 0;
	for (unsigned int uid = lo; uid <= hi; uid++) {
		if (pv_uids__taken(d, vm, uid))
			continue;
		vm->paravisor_uid = uid;
		store__save_vm(d, vm);
		return uid;
	}
	pr_warn("vm \"%s\": every uid of --paravisor-uids %u-%u is taken; its paravisors run as "
		"nobody",
		vm->spec->name, lo, hi);
	return 0;
}
