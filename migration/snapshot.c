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
#include "config.h"
#include "migration/snapshot.pb-c.h"
#include "migration/snapshot_file.h"
#include "vmm/control.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef Vmmd__Migration__V1__Manifest Manifest;
typedef Vmmd__Migration__V1__Section Section;

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

static void snapshot__free_sections(Section *secs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(secs[i].data.data);
	free(secs);
}

static int snapshot__disks(const struct vm_config *cfg, Vmmd__Migration__V1__DiskRef *refs,
			   Vmmd__Migration__V1__DiskRef **ptrs, char *why, size_t wlen)
{
	for (int i = 0; i < cfg->nr_disks; i++) {
		const char *path = kv_opt__get(&cfg->disks[i], "path");
		struct stat st;

		if (!path || stat(path, &st) < 0) {
			snprintf(why, wlen, "disk %s: %s", path ? path : "(no path)", strerror(errno));
			return -errno;
		}
		vmmd__migration__v1__disk_ref__init(&refs[i]);
		refs[i].path = (char *)path;
		refs[i].size = (uint64_t)st.st_size;
		ptrs[i] = &refs[i];
	}
	return 0;
}

/* The VM is paused by the caller. */
static int snapshot__write(struct vm *vm, int dirfd, struct snapshot_result *res, char *why,
			   size_t wlen)
{
	Manifest m = VMMD__MIGRATION__V1__MANIFEST__INIT;
	Vmmd__Migration__V1__MemoryRegion regs[GUEST_MEM_MAX_REGIONS], *rp[GUEST_MEM_MAX_REGIONS];
	Vmmd__Migration__V1__DiskRef disks[VMM_MAX_DISKS], *dp[VMM_MAX_DISKS];
	Section *secs = calloc((size_t)vm->nr_states + 1, sizeof(*secs));
	Section **sp = calloc((size_t)vm->nr_states + 1, sizeof(*sp));
	struct mem_digest dig;
	uint8_t *buf = NULL;
	uint64_t off = 0;
	int err = 0;

	if (!secs || !sp) {
		err = -ENOMEM;
		snprintf(why, wlen, "out of memory");
		goto out;
	}
	for (int i = 0; i < vm->nr_states; i++) {
		const struct state_ops *ops = vm->states[i].ops;
		uint8_t *data = NULL;
		size_t len = 0;

		vmmd__migration__v1__section__init(&secs[i]);
		err = ops->save(vm->states[i].opaque, &data, &len);
		if (err) {
			snprintf(why, wlen, "%s: cannot save its state: %s", ops->section,
				 strerror(-err));
			goto out;
		}
		secs[i].name = (char *)ops->section;
		secs[i].data = (ProtobufCBinaryData){ len, data };
		secs[i].required = 1;
		sp[i] = &secs[i];
	}
	err = snapshot__disks(vm->cfg, disks, dp, why, wlen);
	if (err)
		goto out;
	err = snapshot_mem__write(dirfd, vm->ram, vm->mem_fd, vm->ram_size, &dig, why, wlen);
	if (err)
		goto out;
	for (int i = 0; i < vm->mem.nr; i++) {
		vmmd__migration__v1__memory_region__init(&regs[i]);
		regs[i].gpa = vm->mem.r[i].gpa;
		regs[i].size = vm->mem.r[i].size;
		regs[i].offset = off;
		off += vm->mem.r[i].size;
		rp[i] = &regs[i];
	}
	m.format_version = SNAPSHOT_FORMAT;
	m.vmm_version = (char *)PACKAGE_VERSION;
	m.saved_at_ms = now_ms(CLOCK_REALTIME);
	m.ram_size = vm->ram_size;
	m.n_memory = (size_t)vm->mem.nr;
	m.memory = rp;
	m.vcpus = vm->nr_cpus;
	m.n_sections = (size_t)vm->nr_states;
	m.sections = sp;
	m.n_disks = (size_t)vm->cfg->nr_disks;
	m.disks = dp;
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
	if (secs)
		snapshot__free_sections(secs, (size_t)vm->nr_states);
	free(sp);
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

static const Section *snapshot__find(const Manifest *m, const char *name)
{
	for (size_t i = 0; i < m->n_sections; i++)
		if (!strcmp(m->sections[i]->name, name))
			return m->sections[i];
	return NULL;
}

static bool snapshot__registered(const struct vm *vm, const char *name)
{
	for (int i = 0; i < vm->nr_states; i++)
		if (!strcmp(vm->states[i].ops->section, name))
			return true;
	return false;
}

/* Everything that can be checked before RAM or any device is touched. */
static int snapshot__check(const struct vm *vm, const Manifest *m, char *why, size_t wlen)
{
	uint64_t off = 0;

	if (m->ram_size != vm->ram_size || m->vcpus != vm->nr_cpus) {
		snprintf(why, wlen,
			 "taken from a VM with %llu MiB and %u vCPUs; this one has %llu MiB and %u "
			 "(use the same --memory and --cpus)",
			 (unsigned long long)(m->ram_size >> 20), m->vcpus,
			 (unsigned long long)(vm->ram_size >> 20), vm->nr_cpus);
		return -EINVAL;
	}
	if (m->n_memory != (size_t)vm->mem.nr) {
		snprintf(why, wlen, "its memory map has %zu regions, this VM's %d", m->n_memory,
			 vm->mem.nr);
		return -EINVAL;
	}
	for (size_t i = 0; i < m->n_memory; i++) {
		const Vmmd__Migration__V1__MemoryRegion *r = m->memory[i];

		if (r->gpa != vm->mem.r[i].gpa || r->size != vm->mem.r[i].size || r->offset != off) {
			snprintf(why, wlen, "its memory region %zu differs from this VM's", i);
			return -EINVAL;
		}
		off += r->size;
	}
	for (size_t i = 0; i < m->n_disks; i++) {
		struct stat st;

		if (stat(m->disks[i]->path, &st) < 0) {
			snprintf(why, wlen, "disk %s: %s", m->disks[i]->path, strerror(errno));
			return -ENOENT;
		}
		if ((uint64_t)st.st_size != m->disks[i]->size) {
			snprintf(why, wlen, "disk %s is %lld bytes; it was %llu when saved",
				 m->disks[i]->path, (long long)st.st_size,
				 (unsigned long long)m->disks[i]->size);
			return -EINVAL;
		}
	}
	for (int i = 0; i < vm->nr_states; i++) {
		if (!snapshot__find(m, vm->states[i].ops->section)) {
			snprintf(why, wlen, "it has no state for %s, which this VM has (different devices?)",
				 vm->states[i].ops->section);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < m->n_sections; i++) {
		if (snapshot__registered(vm, m->sections[i]->name))
			continue;
		if (m->sections[i]->required) {
			snprintf(why, wlen, "it needs %s, which this VM does not have",
				 m->sections[i]->name);
			return -EINVAL;
		}
		pr_warn("snapshot: optional section %s ignored", m->sections[i]->name);
	}
	return 0;
}

static int snapshot__load_memory(struct vm *vm, int dirfd, const Manifest *m, bool lazy,
				 char *why, size_t wlen)
{
	struct mem_digest d;
	int err;

	if (lazy)
		return snapshot_mem__map(dirfd, vm->ram, vm->ram_size, why, wlen);
	/* Whatever the firmware set-up wrote goes: RAM is exactly the file's. */
	if (fallocate(vm->mem_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
		      (off_t)vm->ram_size) < 0)
		memset(vm->ram, 0, vm->ram_size);
	err = snapshot_mem__read(dirfd, vm->ram, vm->ram_size, &d, why, wlen);
	if (err)
		return err;
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
	err = snapshot__check(vm, m, why, sizeof(why));
	if (!err)
		err = snapshot__load_memory(vm, dirfd, m, lazy, why, sizeof(why));
	for (int i = 0; !err && i < vm->nr_states; i++) {
		const struct state_ops *ops = vm->states[i].ops;
		const Section *s = snapshot__find(m, ops->section);

		err = ops->restore(vm->states[i].opaque, s->data.data, s->data.len);
		if (err)
			snprintf(why, sizeof(why), "%s: its saved state does not restore (%s)",
				 ops->section, strerror(-err));
	}
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
