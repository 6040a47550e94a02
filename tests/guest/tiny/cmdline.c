/*
 * tests/guest/tiny/cmdline.c — the guest's command line: space-separated
 * key=value options into tiny_opts (the contract is in tiny.c).
 */
#include "tiny.h"
#include "uart.h"

struct tiny_opts tiny_opts = {
	.dirty_size = DIRTY_SIZE_DEFAULT_MIB,
};

/* Decimal or 0x-prefixed hex, the whole string, no overflow. */
static bool parse_u32(const char *s, uint32_t *out)
{
	uint32_t base = 10, val = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return false;
	for (; *s; s++) {
		uint32_t d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return false;
		if (val > (0xffffffffu - d) / base)
			return false;
		val = val * base + d;
	}
	*out = val;
	return true;
}

/* parse_u32 within [lo, hi]; out is left alone otherwise. */
static bool parse_u32_in(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	uint32_t n;

	if (!parse_u32(s, &n) || n < lo || n > hi)
		return false;
	*out = n;
	return true;
}

static bool str_eq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

static bool opt_test(const char *val)
{
	static const struct {
		const char *name;
		enum tiny_test test;
	} tests[] = {
		{ "poweroff", TEST_POWEROFF }, { "reboot", TEST_REBOOT },
		{ "triple", TEST_TRIPLE },     { "echo", TEST_ECHO },
		{ "rtc", TEST_RTC },	       { "memmap", TEST_MEMMAP },
	};

	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (str_eq(val, tests[i].name)) {
			tiny_opts.test = tests[i].test;
			return true;
		}
	}
	return false;
}

static bool opt_heartbeat(const char *val)
{
	uint32_t n;

	if (!parse_u32(val, &n) || n > 63)
		return false;
	tiny_opts.heartbeat_print = true;
	tiny_opts.heartbeat_mask = (1ull << n) - 1;
	return true;
}

static bool opt_dirty(const char *val)
{
	tiny_opts.dirty = parse_u32(val, &tiny_opts.dirty_rate);
	return tiny_opts.dirty;
}

static bool opt_dirty_size(const char *val)
{
	return parse_u32_in(val, 1, 4096, &tiny_opts.dirty_size);
}

static bool opt_pattern(const char *val)
{
	tiny_opts.pattern = parse_u32(val, &tiny_opts.pattern_seed);
	tiny_opts.pattern_text = val; /* points into a static buffer */
	return tiny_opts.pattern;
}

static bool opt_verify(const char *val)
{
	tiny_opts.verify = parse_u32(val, &tiny_opts.verify_seed);
	return tiny_opts.verify;
}

static bool opt_blk_pause(const char *val)
{
	return parse_u32_in(val, 0, 60, &tiny_opts.blk_pause);
}

static bool opt_tick(const char *val)
{
	return parse_u32_in(val, 1, 1000, &tiny_opts.tick_hz);
}

static bool opt_virtio(const char *val)
{
	static const struct {
		const char *name;
		enum tiny_virtio mode;
	} modes[] = {
		{ "blk", VIRTIO_BLK },		   { "net", VIRTIO_NET },
		{ "rng", VIRTIO_RNG },		   { "blk-loop", VIRTIO_BLK_LOOP },
		{ "blk-oob", VIRTIO_BLK_OOB },	   { "blk-zero", VIRTIO_BLK_ZERO },
		{ "blk-qsize", VIRTIO_BLK_QSIZE },
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (str_eq(val, modes[i].name)) {
			tiny_opts.virtio = modes[i].mode;
			return true;
		}
	}
	return false;
}

static const struct {
	const char *key;
	bool (*set)(const char *val);
} options[] = {
	{ "test", opt_test },		  { "heartbeat", opt_heartbeat },
	{ "dirty", opt_dirty },		  { "dirty_size", opt_dirty_size },
	{ "pattern", opt_pattern },	  { "verify", opt_verify },
	{ "virtio", opt_virtio },	  { "blk_pause", opt_blk_pause },
	{ "tick", opt_tick },
};

/* token is "key=value", NUL-terminated, and may be modified. */
static void cmdline__apply_option(char *token)
{
	char *eq = token;

	while (*eq && *eq != '=')
		eq++;
	if (*eq == '=') {
		*eq = '\0';
		for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
			if (str_eq(token, options[i].key) && options[i].set(eq + 1))
				return;
		}
		*eq = '=';
	}
	uart__puts("tiny: unknown option ");
	uart__puts(token);
	uart__putc('\n');
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void cmdline__parse(void)
{
	static char buf[TINY_CMDLINE_MAX];
	char *p = buf;

	memcpy(buf, tiny_cmdline, sizeof(buf));
	while (*p) {
		char *token;

		while (is_space(*p))
			p++;
		if (!*p)
			break;
		token = p;
		while (*p && !is_space(*p))
			p++;
		if (*p)
			*p++ = '\0';
		cmdline__apply_option(token);
	}
}
