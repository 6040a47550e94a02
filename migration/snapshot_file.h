/* migration/snapshot_file.h — the files of a snapshot directory:
 *   state   "VMMDSNAP", le32 format, le32 flags (0), le64 length, the packed
 *           Manifest (snapshot.proto), then SHA-256 of everything before it;
 *   memory  guest RAM as one linear file, sparse: zero pages are holes. */
#ifndef VMMD_MIGRATION_SNAPSHOT_FILE_H
#define VMMD_MIGRATION_SNAPSHOT_FILE_H

#include <stddef.h>
#include <stdint.h>

#define SNAPSHOT_FORMAT 1
#define SNAPSHOT_STATE "state"
#define SNAPSHOT_MEMORY "memory"
#define SNAPSHOT_MAX_STATE (64u << 20)

struct mem_digest {
	uint64_t pages;      /* non-zero 4 KiB pages */
	uint8_t sha256[32];  /* over (le64 offset, page) of each, ascending */
};

/* Each returns 0 or a negative errno with a sentence in why[]. */
int snapshot_file__write_state(int dirfd, const uint8_t *manifest, size_t len, char *why,
			       size_t wlen);
/* *manifest is malloc'd; the checksum and header are verified. */
int snapshot_file__read_state(int dirfd, uint8_t **manifest, size_t *len, char *why,
			      size_t wlen);

/* Writes ram[0..size) (mem_fd: the same bytes, to skip its holes fast; -1:
 * none, every page is looked at). */
int snapshot_mem__write(int dirfd, const uint8_t *ram, int mem_fd, uint64_t size,
			struct mem_digest *d, char *why, size_t wlen);
/* Reads the memory file into ram (already zero) and digests what it read. */
int snapshot_mem__read(int dirfd, uint8_t *ram, uint64_t size, struct mem_digest *d, char *why,
		       size_t wlen);
/* Maps the memory file privately over ram: pages load on first touch. */
int snapshot_mem__map(int dirfd, uint8_t *ram, uint64_t size, char *why, size_t wlen);
/* The memory file, read-only, once its size is checked: an fd, or
 * negative errno with why. */
int snapshot_mem__open(int dirfd, uint64_t size, char *why, size_t wlen);

#endif
