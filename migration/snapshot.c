/* migration/snapshot.c — a running VM to a snapshot directory and back.
 *
 * Save (control command {"cmd":"snapshot","path":DIR,"resume":true|false}):
 * park the vCPUs, collect every registered state section (devices quiesce
 * inside their save), write guest RAM sparse, then the manifest with its
 * checksum last, so a directory with a "state" file is a whole snapshot.
 * Restore (vmm --restore DIR): check the manifest against this VM (RAM,
 * vCPUs, memory map, disks, sections) before touching anything, load RAM,
 * then every section; on any refusal vmm exits before a vCPU ran. */
#include "common/log.h"
#include "migration/saved_state.h"
#include "migration/snapshot_file.h"
#include "migration/snapshot_lazy.h"
#include "vmm/control.h"
#include "vmm/dev_vhost_user.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct snapshot_result {
	uint64_t pages;
	size_t state_bytes;
	int64_t ms;
};

static int64_t now_ms(int clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* DIR is created, or must be empty: never mix two snapshots' files. */
static int snapshot__open_new_dir(const char *dir, char *why, size_t wlen)
{
	int fd;
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(why, wlen, "cannot create %s: %s", dir, strerror(errno));
		return -errno;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, wlen, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	if (!fstatat(fd, SNAPSHOT_STATE, &st, 0) || !fstatat(fd, SNAPSHOT_MEMORY, &st, 0)) {
		close(fd);
		snprintf(why, wlen, "%s already holds a snapshot; choose a new directory", dir);
		return -EEXIST;
	}
	return fd;
}

/* The VM is paused by the caller. */
static int snapshot__write(struct vm *vm, int dirfd, struct snapshot_result *res, char *why,
			   size_t wlen)
{
	Manifest m = VMMD__MIGRATION__V1__MANIFEST__INIT;
	struct mem_digest dig;
	uint8_t *buf = NULL;
	int err;

	/* The memfd's holes are not zeros while a lazy restore loads. */
	if (vm->ram_loader && snapshot_lazy__wait(vm->ram_loader)) {
		snprintf(why, wlen, "the lazy restore's RAM did not load");
		return -EIO;
	}
	err = saved_state__collect(vm, &m, why, wlen);
	if (!err)
		err = snapshot_mem__write(dirfd, vm->ram, vm->ram_private ? -1 : vm->mem_fd,
					  vm->ram_size, &dig, why,
					  wlen);
	if (err)
		goto out;
	m.memory_pages = dig.pages;
	m.memory_sha256 = (ProtobufCBinaryData){ sizeof(dig.sha256), dig.sha256 };
	res->state_bytes = vmmd__migration__v1__manifest__get_packed_size(&m);
	buf = malloc(res->state_bytes + 1);
	if (!buf) {
		err = -ENOMEM;
		snprintf(why, wlen, "out of memory");
		goto out;
	}
	vmmd__migration__v1__manifest__pack(&m, buf);
	err = snapshot_file__write_state(dirfd, buf, res->state_bytes, why, wlen);
	if (err)
		unlinkat(dirfd, SNAPSHOT_MEMORY, 0);
	res->pages = dig.pages;
out:
	free(buf);
	saved_state__release(&m);
	return err;
}

static json_t *snapshot__control(struct vm *vm, json_t *req)
{
	struct snapshot_result res = { 0 };
	const char *path = NULL;
	int resume = 1, dirfd, err;
	bool was_paused = vm__is_paused(vm);
	int64_t t0 = now_ms(CLOCK_MONOTONIC);
	char why[512];

	if (json_unpack(req, "{s:s, s?b}", "path", &path, "resume", &resume) || !*path)
		return control__fail("snapshot: needs \"path\" (a directory) and optional \"resume\"");
	dirfd = snapshot__open_new_dir(path, why, sizeof(why));
	if (dirfd < 0)
		return control__fail("snapshot: %s", why);
	if (vm__pause(vm)) {
		close(dirfd);
		return control__fail("snapshot: the VM is stopping");
	}
	err = snapshot__write(vm, dirfd, &res, why, sizeof(why));
	close(dirfd);
	if (!was_paused && (resume || err))
		vm__resume(vm);
	if (err) {
		pr_err("snapshot %s: %s", path, why);
		return control__fail("snapshot %s: %s", path, why);
	}
	res.ms = now_ms(CLOCK_MONOTONIC) - t0;
	pr_info("snapshot %s: %llu pages of RAM, %zu bytes of state, %lld ms", path,
		(unsigned long long)res.pages, res.state_bytes, (long long)res.ms);
	return json_pack("{s:b, s:s, s:I, s:I, s:I, s:s}", "ok", 1, "path", path, "memory_pages",
			 (json_int_t)res.pages, "state_bytes", (json_int_t)res.state_bytes,
			 "duration_ms", (json_int_t)res.ms, "state",
			 vm__is_paused(vm) ? "paused" : "running");
}
control_command("snapshot", snapshot__control);

/* --- restore --- */

/* The one lazy restore's loader, kept for the process's life (as
 * vm->ram_loader; here, where leak checkers see it held). */
static struct snapshot_lazy *snapshot__loader;
static int64_t snapshot__load_t0;

/* A lazy restore into shared RAM is loaded: the paravisors may start. */
static void snapshot__loaded(void *opaque, uint64_t pages)
{
	struct vm *vm = opaque;
	int64_t ms = now_ms(CLOCK_MONOTONIC) - snapshot__load_t0;

	pr_info("lazy restore: RAM loaded (%llu pages filled) %lld ms after the restore began; "
		"the paravisor devices start",
		(unsigned long long)pages, (long long)ms);
	pv__hold(vm, false);
}

static void snapshot__load_failed(void *opaque, const char *why)
{
	vm__request_stop(opaque, VM_STOP_ERROR, "lazy restore: %s", why);
}

static int snapshot__load_memory(struct vm *vm, int dirfd, const Manifest *m, bool lazy,
				 char *why, size_t wlen)
{
	struct mem_digest d;
	int err;

	if (lazy && vm->ram_shared) {
		struct snapshot_lazy_ops ops = {
		    .loaded = snapshot__loaded, .failed = snapshot__load_failed, .opaque = vm};

		/* The paravisors wait for RAM: vCPUs and vmm's own devices
		 * do not. */
		pv__hold(vm, true);
		snapshot__load_t0 = now_ms(CLOCK_MONOTONIC);
		err = snapshot_lazy__start(dirfd, vm->ram, vm->ram_size, vm->mem_fd, &ops,
					   &snapshot__loader, why, wlen);
		if (err)
			pv__hold(vm, false);
		vm->ram_loader = snapshot__loader;
		return err;
	}
	if (lazy) {
		err = snapshot_mem__map(dirfd, vm->ram, vm->ram_size, why, wlen);
		vm->ram_private = !err;
		return err;
	}
	/* Whatever the firmware set-up wrote goes: RAM is exactly the file's. */
	if (fallocate(vm->mem_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
		      (off_t)vm->ram_size) < 0)
		memset(vm->ram, 0, vm->ram_size);
	err = snapshot_mem__read(dirfd, vm->ram, vm->ram_size, &d, why, wlen);
	if (err)
		return err;
	/* The holes just punched are not allocated: --prefault holds for the
	 * restored VM as for a fresh one. */
	if (vm->cfg->prefault && vm__prefault_ram(vm)) {
		snprintf(why, wlen, "--prefault: cannot allocate the guest's RAM");
		return -ENOMEM;
	}
	if (d.pages != m->memory_pages || m->memory_sha256.len != sizeof(d.sha256) ||
	    memcmp(d.sha256, m->memory_sha256.data, sizeof(d.sha256))) {
		snprintf(why, wlen,
			 "memory file checksum mismatch (%llu non-zero pages, %llu saved): the "
			 "snapshot is corrupt",
			 (unsigned long long)d.pages, (unsigned long long)m->memory_pages);
		return -EINVAL;
	}
	return 0;
}

static int snapshot__restore(struct vm *vm, const char *dir, bool lazy)
{
	Manifest *m = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int64_t t0 = now_ms(CLOCK_MONOTONIC);
	char why[512] = "";
	int dirfd, err;

	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		pr_err("snapshot %s: %s", dir, strerror(errno));
		return -errno;
	}
	err = snapshot_file__read_state(dirfd, &buf, &len, why, sizeof(why));
	if (err)
		goto out;
	m = vmmd__migration__v1__manifest__unpack(NULL, len, buf);
	if (!m) {
		snprintf(why, sizeof(why), "the manifest does not parse: the snapshot is corrupt");
		err = -EINVAL;
		goto out;
	}
	err = saved_state__check(vm, m, why, sizeof(why));
	if (!err)
		err = snapshot__load_memory(vm, dirfd, m, lazy, why, sizeof(why));
	if (!err)
		err = saved_state__apply(vm, m, why, sizeof(why));
	if (!err)
		pr_info("restored %s (%s mode, saved by vmm %s) in %lld ms", dir,
			lazy ? "lazy" : "copy", m->vmm_version,
			(long long)(now_ms(CLOCK_MONOTONIC) - t0));
out:
	if (err)
		pr_err("snapshot %s: %s", dir, why);
	if (m)
		vmmd__migration__v1__manifest__free_unpacked(m, NULL);
	free(buf);
	close(dirfd);
	return err;
}

static void __attribute__((constructor)) snapshot__register(void)
{
	vm__restore_hook = snapshot__restore;
}
