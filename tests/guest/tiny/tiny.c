/*
 * tests/guest/tiny/tiny.c — the tiny freestanding PVH test guest.
 *
 * CONTRACT — host-side tests depend on every line here; change them together.
 *
 * Boot: 32-bit ELF loaded at 1 MiB, entered through the PVH note
 * (XEN_ELFNOTE_PHYS32_ENTRY) with %ebx = struct hvm_start_info.  Stays in
 * 32-bit flat protected mode without paging, so it only reaches RAM below
 * 4 GiB.  No interrupts are used (but tick=, below); all I/O is polled.
 *
 * Serial: COM1 (16550, port 0x3f8), lines end in "\n" only.  First lines:
 *   tiny: hello from the PVH guest
 *   tiny: cmdline=<command line>
 * then "tiny: bad start_info magic" if %ebx did not point at a start info.
 *
 * Heartbeat: u64 at guest-physical 0x9000, set to 0 at boot and incremented
 * continuously by the main loops; u32 0x54494e59 ("TINY") at 0x9008 once
 * running.  A host that sees the counter move knows the vCPU runs.
 *
 * Command line: space-separated key=value; numbers are decimal or 0x hex.
 *   test=poweroff  "tiny: poweroff", then power off (below).
 *   test=reboot    "tiny: reboot", write 0xfe to port 0x64 (i8042 reset);
 *                  if still alive "tiny: reboot failed" and halt.
 *   test=triple    "tiny: triple fault", zero-limit IDT, int3; if still
 *                  alive "tiny: triple fault failed" and halt.
 *   test=echo      "tiny: echo ready", echo COM1 bytes back until '\n' or
 *                  '\r' (not echoed), then "\n", "tiny: echo <line>" (at
 *                  most 255 bytes kept), power off.
 *   test=rtc       "tiny: rtc YYYY-MM-DD HH:MM:SS" from the CMOS RTC
 *                  (century register 0x32 if non-zero, else 20), power off.
 *   test=memmap    "tiny: e820 0x<addr> 0x<size> <type>" per start-info
 *                  memmap entry, "tiny: memtotal <MiB of type 1>", power off.
 *   heartbeat=N    "tiny: heartbeat <count>" whenever the counter reaches a
 *                  multiple of 2^N (N <= 63; default: never).
 *   tick=HZ        the heartbeat loop halts between beats: one beat per
 *                  local APIC timer interrupt, about HZ a second (1-1000;
 *                  the timer counts at 1 GHz under KVM), so the vCPU is
 *                  idle in between.  The only interrupts tiny ever enables.
 *   dirty=R        "tiny: dirtying R MiB/s over S MiB", then forever write a
 *                  changing non-zero u32 at the start of each 4 KiB page of
 *                  the region, R MiB per RTC second (0 = flat out).
 *   dirty_size=S   region size in MiB (default 64); the region always
 *                  starts at 16 MiB.
 *   pattern=SEED   fill the region, print "tiny: pattern <SEED> sum 0x<sum>"
 *                  (SEED as written; sum: u32 wrapping sum of all words of
 *                  the region).
 *   verify=SEED    check the region: "tiny: verify ok" or
 *                  "tiny: verify BAD at 0x<addr>" (first bad word).
 *   virtio=MODE    drive a virtio-pci device (below), then power off.
 *   Anything else, or a known key with a bad value:
 *                  "tiny: unknown option <token>", and carry on.
 * If the region is not wholly RAM below 4 GiB per the memmap, pattern,
 * verify and dirty are skipped with "tiny: dirty region beyond RAM".
 *
 * virtio: modern (1.x) virtio-pci only, vendor 0x1af4, device 0x1040 + id,
 * found on bus 0 through ports 0xcf8/0xcfc, polled (no MSI-X vector, no
 * interrupts); only VIRTIO_F_VERSION_1 is accepted.  Memory BARs that are
 * unassigned (0) or above 4 GiB are moved into 0xc0000000-0xdfffffff above
 * any BAR already there; memory decode and bus mastering get enabled.
 * Rings (queue size min(16, device maximum)) and buffers are at fixed
 * guest-physical addresses: 64 KiB per device found, from 0x200000.
 * Timeouts (5 s per request) count CMOS RTC seconds.  For each device found:
 *   tiny: virtio-<blk|net|rng> at 00:<dev>.<fn> common 0x<addr>
 * and on a failed setup "tiny: virtio-<name>: <why>, status 0x<status>".
 * A missing device: "tiny: no virtio-<name> device".  Modes:
 *   blk        first virtio-blk: write a 4 KiB pattern at sector 8, read
 *              it back, compare, flush:
 *                tiny: virtio-blk capacity <sectors> write ok read ok match
 *              ("<op> timeout" / "<op> status N" / "MISMATCH at byte N"
 *              instead, "too small" below 16 sectors), then
 *                tiny: virtio-blk flush <status N|timeout>
 *   net        first virtio-net, rx queue 0 (four 2 KiB buffers), tx
 *              queue 1: one DHCP DISCOVER (UDP 68 -> 255.255.255.255:67,
 *              590-byte frame) from the config MAC (52:54:00:12:34:56 if it
 *              reads all zero), then waits for one received frame:
 *                tiny: virtio-net mac <mac>
 *                tiny: virtio-net sent <n> bytes, received <m> bytes
 *                tiny: virtio-net rx from <mac> type 0x<ethertype>
 *                      [udp <sport>-><dport>]   (only if m > 0)
 *              n, m without the 12-byte virtio_net_hdr_v1; m = 0 if
 *              nothing came within 5 s.  Then power off, or with
 *              heartbeat=N the heartbeat loop (the rings stay running).
 *   rng        32 bytes from the first virtio-rng:
 *                tiny: virtio-rng 32 bytes <64 hex digits>
 *              (fewer if the device keeps returning short reads)
 *   blk-loop, blk-oob, blk-zero, blk-qsize: malicious requests to the
 *              first virtio-blk, which a VMM must survive (log, set
 *              DEVICE_NEEDS_RESET, keep running): a descriptor loop
 *              (0 -> 1 -> 0, both NEXT); a read into 0xfff00000 (4 KiB,
 *              outside RAM); one zero-length header descriptor; queue_size
 *              3 (not a power of two), then an honest write.  Prints
 *                tiny: virtio-blk sending a bad request: <what>
 *                tiny: device status 0x<status> needs-reset=<yes|no>
 *              (polled up to 2 s for bit 0x40), "tiny: virtio-blk bad
 *              request completed, status byte N" if the device used it,
 *              then runs the blk mode on the SECOND virtio-blk (or "tiny:
 *              no second virtio-blk device").
 *
 * Order: hello, cmdline, heartbeat magic, option parsing, pattern, verify,
 * the test= mode, the virtio= mode, then dirty= or (default) the heartbeat
 * loop forever.  In
 * the heartbeat loop, if pattern= or verify= gave a seed, a 'v' byte on
 * COM1 re-runs the verify (e.g. after a migration or a restore).
 *
 * Pattern, for hosts that want to check guest RAM themselves: with
 *   mix(s, x) = x ^= s; x *= 0x9e3779b1; x ^= x >> 16; x *= 0x85ebca6b;
 *               x ^= x >> 13   (all u32)
 * the page at guest-physical address A holds u32 words
 *   w[0] = mix(SEED, A), w[1] = A, w[i] = mix(SEED, i) for 2 <= i < 1024.
 *
 * Power off: write 0x3400 ((5 << 10) | (1 << 13): SLP_TYP S5, SLP_EN) to the
 * PM1a control port 0x604; if still alive "tiny: poweroff via debug-exit
 * port 0xf4" and write 0 to port 0xf4 (QEMU's isa-debug-exit; QEMU -M pc
 * ignores the ACPI write); if still alive "tiny: poweroff failed" and halt.
 */
#include "tiny.h"
#include "io.h"
#include "rtc.h"
#include "uart.h"
#include "virtio.h"

#define HVM_START_MAGIC 0x336ec578u
#define ECHO_LINE_MAX 256
#define IDLE_POLL_TICKS (1u << 16)

#define ACPI_PM1A_CNT_PORT 0x604
#define ACPI_SLP_TYP_S5 5
#define ACPI_SLP_EN (1 << 13)
#define DEBUG_EXIT_PORT 0xf4
#define I8042_CMD_PORT 0x64
#define I8042_CMD_RESET 0xfe

/* xen/include/public/arch-x86/hvm/start_info.h, version 1 */
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_memmap_entry tiny_memmap[TINY_MEMMAP_MAX];
uint32_t tiny_memmap_entries;
char tiny_cmdline[TINY_CMDLINE_MAX];

static volatile uint64_t *const heartbeat = (volatile uint64_t *)HEARTBEAT_GPA;
static volatile uint32_t *const heartbeat_magic =
	(volatile uint32_t *)HEARTBEAT_MAGIC_GPA;

void heartbeat__tick(void)
{
	uint64_t n = *heartbeat + 1;

	*heartbeat = n;
	if (tiny_opts.heartbeat_print && !(n & tiny_opts.heartbeat_mask)) {
		uart__puts("tiny: heartbeat ");
		uart__put_dec(n);
		uart__putc('\n');
	}
}

void tiny__poweroff(void)
{
	uart__puts("tiny: poweroff\n");
	uart__flush();
	outw(ACPI_PM1A_CNT_PORT, (ACPI_SLP_TYP_S5 << 10) | ACPI_SLP_EN);
	uart__puts("tiny: poweroff via debug-exit port 0xf4\n");
	uart__flush();
	outb(DEBUG_EXIT_PORT, 0);
	uart__puts("tiny: poweroff failed\n");
	halt_forever();
}

/*
 * Copy what the loader handed over before touching any memory ourselves, so
 * nothing depends on where the loader put it.  The loader is the host: check
 * what we can (magic, addresses we can reach without paging).
 */
static void tiny__read_start_info(uint32_t pa)
{
	const struct hvm_start_info *si = (const struct hvm_start_info *)pa;
	uint32_t n;

	if (!pa || si->magic != HVM_START_MAGIC) {
		uart__puts("tiny: bad start_info magic\n");
		return;
	}
	if (si->cmdline_paddr &&
	    si->cmdline_paddr < 0x100000000ull - TINY_CMDLINE_MAX) {
		const char *src = (const char *)(uint32_t)si->cmdline_paddr;

		for (n = 0; n < TINY_CMDLINE_MAX - 1 && src[n]; n++)
			tiny_cmdline[n] = src[n];
		tiny_cmdline[n] = '\0';
	}
	if (si->version < 1 || !si->memmap_paddr ||
	    si->memmap_paddr >= 0xf0000000ull)
		return;
	n = si->memmap_entries;
	if (n > TINY_MEMMAP_MAX) {
		uart__puts("tiny: memmap truncated\n");
		n = TINY_MEMMAP_MAX;
	}
	memcpy(tiny_memmap, (const void *)(uint32_t)si->memmap_paddr,
	       n * sizeof(tiny_memmap[0]));
	tiny_memmap_entries = n;
}

static void tiny__check_region(void)
{
	if (!tiny_opts.pattern && !tiny_opts.verify && !tiny_opts.dirty)
		return;
	if (memory__region_ok(DIRTY_REGION_GPA, tiny_opts.dirty_size))
		return;
	uart__puts("tiny: dirty region beyond RAM\n");
	tiny_opts.pattern = tiny_opts.verify = tiny_opts.dirty = false;
}

static void __attribute__((noreturn)) test_reboot(void)
{
	uart__puts("tiny: reboot\n");
	uart__flush();
	outb(I8042_CMD_PORT, I8042_CMD_RESET);
	uart__puts("tiny: reboot failed\n");
	halt_forever();
}

static void __attribute__((noreturn)) test_triple(void)
{
	/* int3 needs IDT entry 3; limit 0 makes that #GP, then #DF, then
	 * the CPU gives up: a triple fault, i.e. a shutdown the host sees. */
	static const struct {
		uint16_t limit;
		uint32_t base;
	} __attribute__((packed)) empty_idt = { 0, 0 };

	uart__puts("tiny: triple fault\n");
	uart__flush();
	asm volatile("lidt %0\n\tint3" : : "m"(empty_idt));
	uart__puts("tiny: triple fault failed\n");
	halt_forever();
}

static void __attribute__((noreturn)) test_echo(void)
{
	char line[ECHO_LINE_MAX];
	uint32_t len = 0;

	uart__puts("tiny: echo ready\n");
	for (;;) {
		char c = uart__getc();

		if (c == '\n' || c == '\r')
			break;
		uart__putc(c);
		if (len < ECHO_LINE_MAX - 1)
			line[len++] = c;
	}
	line[len] = '\0';
	uart__puts("\ntiny: echo ");
	uart__puts(line);
	uart__putc('\n');
	tiny__poweroff();
}

static void __attribute__((noreturn)) test_rtc(void)
{
	struct rtc_time t;

	rtc__read(&t);
	uart__puts("tiny: rtc ");
	uart__put_dec_width(t.year, 4);
	uart__putc('-');
	uart__put_dec_width(t.month, 2);
	uart__putc('-');
	uart__put_dec_width(t.day, 2);
	uart__putc(' ');
	uart__put_dec_width(t.hour, 2);
	uart__putc(':');
	uart__put_dec_width(t.min, 2);
	uart__putc(':');
	uart__put_dec_width(t.sec, 2);
	uart__putc('\n');
	tiny__poweroff();
}

static void tiny__run_test(void)
{
	switch (tiny_opts.test) {
	case TEST_NONE:
		return;
	case TEST_POWEROFF:
		tiny__poweroff();
	case TEST_REBOOT:
		test_reboot();
	case TEST_TRIPLE:
		test_triple();
	case TEST_ECHO:
		test_echo();
	case TEST_RTC:
		test_rtc();
	case TEST_MEMMAP:
		memory__print_map();
		tiny__poweroff();
	}
}

static void tiny__run_virtio(void)
{
	switch (tiny_opts.virtio) {
	case VIRTIO_NONE:
		return;
	case VIRTIO_NET: vnet__run(); return;
	case VIRTIO_RNG:
		vrng__run();
	case VIRTIO_BLK:
	case VIRTIO_BLK_LOOP:
	case VIRTIO_BLK_OOB:
	case VIRTIO_BLK_ZERO:
	case VIRTIO_BLK_QSIZE:
		vblk__run(tiny_opts.virtio);
	}
}

/* Polling COM1 costs a VM exit, so only every IDLE_POLL_TICKS beats
 * (with tick=, at every beat: they are few). */
static void __attribute__((noreturn)) tiny__idle_loop(void)
{
	bool have_seed = tiny_opts.pattern || tiny_opts.verify;
	uint32_t seed = tiny_opts.verify ? tiny_opts.verify_seed :
					   tiny_opts.pattern_seed;

	if (tiny_opts.tick_hz) {
		tick__start(tiny_opts.tick_hz);
		for (;;) {
			tick__wait();
			heartbeat__tick();
			if (have_seed && uart__can_read() && uart__getc() == 'v')
				memory__pattern_verify(seed, tiny_opts.dirty_size);
		}
	}
	for (;;) {
		for (uint32_t i = 0; i < IDLE_POLL_TICKS; i++)
			heartbeat__tick();
		if (have_seed && uart__can_read() && uart__getc() == 'v')
			memory__pattern_verify(seed, tiny_opts.dirty_size);
	}
}

void __attribute__((noreturn)) tiny_main(uint32_t start_info_pa)
{
	uart__init();
	uart__puts("tiny: hello from the PVH guest\n");
	tiny__read_start_info(start_info_pa);
	uart__puts("tiny: cmdline=");
	uart__puts(tiny_cmdline);
	uart__putc('\n');

	*heartbeat = 0;
	*heartbeat_magic = TINY_MAGIC;

	cmdline__parse();
	tiny__check_region();
	if (tiny_opts.pattern)
		memory__pattern_fill(tiny_opts.pattern_seed,
				     tiny_opts.pattern_text, tiny_opts.dirty_size);
	if (tiny_opts.verify)
		memory__pattern_verify(tiny_opts.verify_seed, tiny_opts.dirty_size);
	tiny__run_test();
	tiny__run_virtio();

	if (tiny_opts.dirty) {
		uart__puts("tiny: dirtying ");
		uart__put_dec(tiny_opts.dirty_rate);
		uart__puts(" MiB/s over ");
		uart__put_dec(tiny_opts.dirty_size);
		uart__puts(" MiB\n");
		memory__dirty_loop(tiny_opts.dirty_rate, tiny_opts.dirty_size);
	}
	tiny__idle_loop();
}
