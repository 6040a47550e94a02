/* tests/guest/tiny/tiny.h — what tiny.c and memory.c share. */
#ifndef TINY_TINY_H
#define TINY_TINY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SZ_1M 0x100000u
#define PAGE_SIZE 4096u

#define HEARTBEAT_GPA 0x9000u
#define HEARTBEAT_MAGIC_GPA 0x9008u
#define TINY_MAGIC 0x54494e59u /* "TINY" */

#define DIRTY_REGION_GPA (16 * SZ_1M)
#define DIRTY_SIZE_DEFAULT_MIB 64u

/* struct hvm_memmap_table_entry, xen/include/public/arch-x86/hvm/start_info.h */
struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* 1 = RAM, as in e820 */
	uint32_t reserved;
};

#define E820_RAM 1
#define TINY_MEMMAP_MAX 64

#define TINY_CMDLINE_MAX 1024

enum tiny_test {
	TEST_NONE,
	TEST_POWEROFF,
	TEST_REBOOT,
	TEST_TRIPLE,
	TEST_ECHO,
	TEST_RTC,
	TEST_MEMMAP,
};

/* virtio= modes (vblk.c, vnet.c, vrng.c); the blk-* ones are malicious. */
enum tiny_virtio {
	VIRTIO_NONE,
	VIRTIO_BLK,
	VIRTIO_NET,
	VIRTIO_RNG,
	VIRTIO_BLK_LOOP,
	VIRTIO_BLK_OOB,
	VIRTIO_BLK_ZERO,
	VIRTIO_BLK_QSIZE,
};

/* The parsed command line (cmdline.c). */
struct tiny_opts {
	enum tiny_test test;
	bool heartbeat_print;
	uint64_t heartbeat_mask; /* print when (count & mask) == 0 */
	bool dirty;
	uint32_t dirty_rate; /* MiB per second, 0 = unlimited */
	uint32_t dirty_size; /* MiB, region at DIRTY_REGION_GPA */
	bool pattern;
	uint32_t pattern_seed;
	const char *pattern_text; /* the seed as written, for the report line */
	bool verify;
	uint32_t verify_seed;
	enum tiny_virtio virtio;
	uint32_t blk_pause; /* s between the ring's start and the first request */
	uint32_t tick_hz;   /* 0: busy heartbeat; else beats per second, halting */
};

extern struct tiny_opts tiny_opts;
extern char tiny_cmdline[TINY_CMDLINE_MAX]; /* as the loader gave it */

void cmdline__parse(void);

/* The memory map, copied out of the loader's memory at entry. */
extern struct hvm_memmap_entry tiny_memmap[TINY_MEMMAP_MAX];
extern uint32_t tiny_memmap_entries;

void heartbeat__tick(void);
void tiny__poweroff(void) __attribute__((noreturn));

/* tick.c */
void tick__start(uint32_t hz);
void tick__wait(void);

/* memory.c */
void memory__print_map(void);
bool memory__region_ok(uint32_t start, uint32_t size_mib);
void memory__pattern_fill(uint32_t seed, const char *seed_text,
			  uint32_t size_mib);
void memory__pattern_verify(uint32_t seed, uint32_t size_mib);
void memory__dirty_loop(uint32_t rate_mib, uint32_t size_mib)
	__attribute__((noreturn));

/* lib.c: gcc may emit calls to these even when freestanding. */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif
