/* migration/saved_state.h — a VM's state sections and machine description as
 * one Manifest (snapshot.proto), shared by snapshots and live migration. */
#ifndef VMMD_MIGRATION_SAVED_STATE_H
#define VMMD_MIGRATION_SAVED_STATE_H

#include "migration/snapshot.pb-c.h"

#include <stddef.h>

struct vm;
typedef Vmmd__Migration__V1__Manifest Manifest;
typedef Vmmd__Migration__V1__Section Section;

/* Fills m (initialised by the caller) with the machine: RAM, memory map,
 * vCPUs, disks, and the names of every registered section, no data (what a
 * live migration's destination checks before any RAM is sent). */
int saved_state__describe(struct vm *vm, Manifest *m, char *why, size_t wlen);
/* The same (if not yet described) plus every section's state, saved now:
 * the VM must be paused.  saved_state__release() frees what both allocated. */
int saved_state__collect(struct vm *vm, Manifest *m, char *why, size_t wlen);
void saved_state__release(Manifest *m);
/* Everything that can be checked before RAM or any device is touched. */
int saved_state__check(const struct vm *vm, const Manifest *m, char *why, size_t wlen);
/* Restores every section in registration order (after saved_state__check). */
int saved_state__apply(struct vm *vm, const Manifest *m, char *why, size_t wlen);

#endif
