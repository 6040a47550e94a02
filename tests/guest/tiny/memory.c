/*
 * tests/guest/tiny/memory.c — the memory map, and the test region at 16 MiB
 * that pattern=, verify= and dirty= work on.
 *
 * The hosts these tests run on may execute guest code with an instruction
 * emulator (~1M instructions/s), so per-word C loops over 64 MiB would take
 * minutes.  The pattern is therefore built so that almost all of each page
 * is copied and compared with one string instruction (rep movsl / repe
 * cmpsl), while two per-page words still make every page distinct.
 */
#include "tiny.h"
#include "uart.h"
#include "rtc.h"

#define PAGE_WORDS (PAGE_SIZE / 4)
#define PATTERN_HDR_WORDS 2

static uint32_t pattern_page[PAGE_WORDS];

void memory__print_map(void)
{
	uint64_t ram = 0;

	for (uint32_t i = 0; i < tiny_memmap_entries; i++) {
		const struct hvm_memmap_entry *e = &tiny_memmap[i];

		uart__puts("tiny: e820 ");
		uart__put_hex(e->addr);
		uart__putc(' ');
		uart__put_hex(e->size);
		uart__putc(' ');
		uart__put_dec(e->type);
		uart__putc('\n');
		if (e->type == E820_RAM)
			ram += e->size;
	}
	uart__puts("tiny: memtotal ");
	uart__put_dec(ram >> 20);
	uart__putc('\n');
}

static const struct hvm_memmap_entry *memory__ram_entry_at(uint64_t addr)
{
	for (uint32_t i = 0; i < tiny_memmap_entries; i++) {
		const struct hvm_memmap_entry *e = &tiny_memmap[i];

		if (e->type == E820_RAM && addr >= e->addr &&
		    addr - e->addr < e->size)
			return e;
	}
	return NULL;
}

/*
 * True if [start, start + size_mib MiB) is RAM in the map (possibly spread
 * over adjacent entries) and below 4 GiB, the most we can reach without
 * paging.  The map comes from the host, so nothing here trusts it to be
 * sorted or non-overlapping.
 */
bool memory__region_ok(uint32_t start, uint32_t size_mib)
{
	uint64_t end = (uint64_t)start + (uint64_t)size_mib * SZ_1M;
	uint64_t cur = start;

	if (size_mib == 0 || end > 0x100000000ull)
		return false;
	while (cur < end) {
		const struct hvm_memmap_entry *e = memory__ram_entry_at(cur);

		if (!e)
			return false;
		cur = e->addr + e->size;
	}
	return true;
}

/* Documented in tiny.c's contract; host tests may recompute it. */
static uint32_t pattern__mix(uint32_t seed, uint32_t x)
{
	x ^= seed;
	x *= 0x9e3779b1u;
	x ^= x >> 16;
	x *= 0x85ebca6bu;
	x ^= x >> 13;
	return x;
}

/* Words PATTERN_HDR_WORDS.. of every page; returns their sum. */
static uint32_t pattern__build_page(uint32_t seed)
{
	uint32_t sum = 0;

	for (uint32_t i = PATTERN_HDR_WORDS; i < PAGE_WORDS; i++) {
		pattern_page[i] = pattern__mix(seed, i);
		sum += pattern_page[i];
	}
	return sum;
}

static void copy_words(uint32_t *dst, const uint32_t *src, uint32_t n)
{
	asm volatile("rep movsl"
		     : "+D"(dst), "+S"(src), "+c"(n)
		     :
		     : "memory");
}

/* NULL if equal, else the first word of a that differs (n must be > 0). */
static const uint32_t *compare_words(const uint32_t *a, const uint32_t *b,
				     uint32_t n)
{
	bool differ;

	asm volatile("repe cmpsl"
		     : "+S"(a), "+D"(b), "+c"(n), "=@ccne"(differ)
		     :
		     : "memory");
	return differ ? a - 1 : NULL;
}

void memory__pattern_fill(uint32_t seed, const char *seed_text,
			  uint32_t size_mib)
{
	uint32_t pages = size_mib * (SZ_1M / PAGE_SIZE);
	uint32_t body_sum = pattern__build_page(seed);
	uint32_t sum = 0;

	for (uint32_t i = 0; i < pages; i++) {
		uint32_t addr = DIRTY_REGION_GPA + i * PAGE_SIZE;
		uint32_t *page = (uint32_t *)addr;

		page[0] = pattern__mix(seed, addr);
		page[1] = addr;
		copy_words(page + PATTERN_HDR_WORDS,
			   pattern_page + PATTERN_HDR_WORDS,
			   PAGE_WORDS - PATTERN_HDR_WORDS);
		sum += page[0] + page[1] + body_sum;
	}
	uart__puts("tiny: pattern ");
	uart__puts(seed_text);
	uart__puts(" sum ");
	uart__put_hex(sum);
	uart__putc('\n');
}

/* NULL if the page at addr holds the pattern, else the first bad word. */
static const volatile uint32_t *pattern__check_page(uint32_t seed,
						    uint32_t addr)
{
	const volatile uint32_t *page = (const volatile uint32_t *)addr;

	if (page[0] != pattern__mix(seed, addr))
		return &page[0];
	if (page[1] != addr)
		return &page[1];
	return compare_words((const uint32_t *)page + PATTERN_HDR_WORDS,
			     pattern_page + PATTERN_HDR_WORDS,
			     PAGE_WORDS - PATTERN_HDR_WORDS);
}

void memory__pattern_verify(uint32_t seed, uint32_t size_mib)
{
	uint32_t pages = size_mib * (SZ_1M / PAGE_SIZE);

	pattern__build_page(seed);
	for (uint32_t i = 0; i < pages; i++) {
		const volatile uint32_t *bad;

		bad = pattern__check_page(seed, DIRTY_REGION_GPA + i * PAGE_SIZE);
		if (bad) {
			uart__puts("tiny: verify BAD at ");
			uart__put_hex((uint32_t)bad);
			uart__putc('\n');
			return;
		}
	}
	uart__puts("tiny: verify ok\n");
}

/*
 * Write one changing, non-zero word per page, round-robin over the region,
 * so every page is dirty again on every pass.  With a rate, at most
 * rate MiB (rate * 256 pages) are written per RTC second; the rest of the
 * second spins on the heartbeat, polling the RTC only now and then because
 * each poll is two port exits.
 */
#define DIRTY_BATCH_PAGES 256u /* 1 MiB between RTC polls */
#define DIRTY_IDLE_TICKS 4096u
#define DIRTY_RATE_MAX (1u << 20)

void memory__dirty_loop(uint32_t rate_mib, uint32_t size_mib)
{
	uint32_t pages = size_mib * (SZ_1M / PAGE_SIZE);
	uint32_t budget = (rate_mib > DIRTY_RATE_MAX ? DIRTY_RATE_MAX : rate_mib) *
			  (SZ_1M / PAGE_SIZE);
	uint32_t page = 0, done = 0, gen = 0;
	uint8_t sec = rtc__raw_seconds();

	for (;;) {
		if (budget == 0 || done < budget) {
			uint32_t n = DIRTY_BATCH_PAGES;

			if (budget && budget - done < n)
				n = budget - done;
			done += n;
			while (n--) {
				if (++gen == 0)
					gen = 1;
				*(volatile uint32_t *)(DIRTY_REGION_GPA +
						       page * PAGE_SIZE) = gen;
				if (++page == pages)
					page = 0;
				heartbeat__tick();
			}
		} else {
			for (uint32_t i = 0; i < DIRTY_IDLE_TICKS; i++)
				heartbeat__tick();
		}
		if (budget) {
			uint8_t now = rtc__raw_seconds();

			if (now != sec) {
				sec = now;
				done = 0;
			}
		}
	}
}
