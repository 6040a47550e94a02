/* migration/saved_state.c — collecting a VM's sections and machine
 * description into a Manifest, and checking and applying one. */
#include "migration/saved_state.h"

#include "common/log.h"
#include "config.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SAVED_STATE_FORMAT 1

static int saved_state__disks(const struct vm_config *cfg, Manifest *m, char *why, size_t wlen)
{
	m->disks = calloc((size_t)cfg->nr_disks + 1, sizeof(*m->disks));
	if (!m->disks)
		return -ENOMEM;
	for (int i = 0; i < cfg->nr_disks; i++) {
		const char *path = kv_opt__get(&cfg->disks[i], "path");
		Vmmd__Migration__V1__DiskRef *d = calloc(1, sizeof(*d));
		struct stat st;

		if (!d)
			return -ENOMEM;
		vmmd__migration__v1__disk_ref__init(d);
		m->disks[m->n_disks++] = d;
		if (!path || stat(path, &st) < 0) {
			snprintf(why, wlen, "disk %s: %s", path ? path : "(no path)", strerror(errno));
			return -errno;
		}
		d->path = (char *)path;
		d->size = (uint64_t)st.st_size;
	}
	return 0;
}

int saved_state__describe(struct vm *vm, Manifest *m, char *why, size_t wlen)
{
	struct timespec ts;
	uint64_t off = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	m->format_version = SAVED_STATE_FORMAT;
	m->vmm_version = (char *)PACKAGE_VERSION;
	m->saved_at_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	m->ram_size = vm->ram_size;
	m->vcpus = vm->nr_cpus;
	m->memory = calloc((size_t)vm->mem.nr + 1, sizeof(*m->memory));
	m->sections = calloc((size_t)vm->nr_states + 1, sizeof(*m->sections));
	if (!m->memory || !m->sections)
		goto out_nomem;
	for (int i = 0; i < vm->mem.nr; i++) {
		Vmmd__Migration__V1__MemoryRegion *r = calloc(1, sizeof(*r));

		if (!r)
			goto out_nomem;
		vmmd__migration__v1__memory_region__init(r);
		r->gpa = vm->mem.r[i].gpa;
		r->size = vm->mem.r[i].size;
		r->offset = off;
		off += r->size;
		m->memory[m->n_memory++] = r;
	}
	for (int i = 0; i < vm->nr_states; i++) {
		Section *sec = calloc(1, sizeof(*sec));

		if (!sec)
			goto out_nomem;
		vmmd__migration__v1__section__init(sec);
		sec->name = (char *)vm->states[i].ops->section;
		sec->required = 1;
		m->sections[m->n_sections++] = sec;
	}
	return saved_state__disks(vm->cfg, m, why, wlen);
out_nomem:
	snprintf(why, wlen, "out of memory");
	return -ENOMEM;
}

int saved_state__collect(struct vm *vm, Manifest *m, char *why, size_t wlen)
{
	int err = m->sections ? 0 : saved_state__describe(vm, m, why, wlen);

	for (int i = 0; !err && i < vm->nr_states; i++) {
		const struct state_ops *ops = vm->states[i].ops;
		uint8_t *data = NULL;
		size_t len = 0;

		err = ops->save(vm->states[i].opaque, &data, &len);
		if (err) {
			snprintf(why, wlen, "%s: cannot save its state: %s", ops->section,
				 strerror(-err));
			break;
		}
		free(m->sections[i]->data.data);
		m->sections[i]->data = (ProtobufCBinaryData){ len, data };
	}
	return err;
}

/* Frees what collect allocated (names and paths are borrowed). */
void saved_state__release(Manifest *m)
{
	for (size_t i = 0; i < m->n_memory; i++)
		free(m->memory[i]);
	for (size_t i = 0; i < m->n_sections; i++) {
		free(m->sections[i]->data.data);
		free(m->sections[i]);
	}
	for (size_t i = 0; i < m->n_disks; i++)
		free(m->disks[i]);
	free(m->memory);
	free(m->sections);
	free(m->disks);
	m->memory = NULL;
	m->sections = NULL;
	m->disks = NULL;
	m->n_memory = m->n_sections = m->n_disks = 0;
}

static const Section *saved_state__find(const Manifest *m, const char *name)
{
	for (size_t i = 0; i < m->n_sections; i++)
		if (!strcmp(m->sections[i]->name, name))
			return m->sections[i];
	return NULL;
}

static bool saved_state__registered(const struct vm *vm, const char *name)
{
	for (int i = 0; i < vm->nr_states; i++)
		if (!strcmp(vm->states[i].ops->section, name))
			return true;
	return false;
}

int saved_state__check(const struct vm *vm, const Manifest *m, char *why, size_t wlen)
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
		if (!saved_state__find(m, vm->states[i].ops->section)) {
			snprintf(why, wlen, "it has no state for %s, which this VM has (different devices?)",
				 vm->states[i].ops->section);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < m->n_sections; i++) {
		if (saved_state__registered(vm, m->sections[i]->name))
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

int saved_state__apply(struct vm *vm, const Manifest *m, char *why, size_t wlen)
{
	for (int i = 0; i < vm->nr_states; i++) {
		const struct state_ops *ops = vm->states[i].ops;
		const Section *s = saved_state__find(m, ops->section);
		struct timespec t0, t1;
		int err;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		err = ops->restore(vm->states[i].opaque, s->data.data, s->data.len);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		pr_debug("restore %s: %ld us", ops->section,
			 (long)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
		if (err) {
			snprintf(why, wlen, "%s: its saved state does not restore (%s)", ops->section,
				 strerror(-err));
			return err;
		}
	}
	return 0;
}
