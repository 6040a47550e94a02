/* tests/unit/test_bus.c — range registration and dispatch on the PIO/MMIO
 * buses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/bus.h"

#include <errno.h>
#include <string.h>

/* Each fake device records its last access and answers reads with a
 * pattern made of its id and the offset, so a read says who answered. */
struct fake_dev {
	int id;
	int calls;
	uint64_t offset;
	uint32_t len;
	bool is_write;
	uint8_t written[8];
};

static void fake_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct fake_dev *d = opaque;

	d->calls++;
	d->offset = offset;
	d->len = len;
	d->is_write = is_write;
	if (is_write) {
		memcpy(d->written, data, len);
	} else {
		for (uint32_t i = 0; i < len; i++)
			data[i] = (uint8_t)(d->id * 16 + offset + i);
	}
}

static int teardown(void **state)
{
	bus__free(*state);
	return 0;
}

static struct bus test_bus;

static int setup(void **state)
{
	memset(&test_bus, 0, sizeof(test_bus));
	test_bus.name = "test";
	*state = &test_bus;
	return 0;
}

static void test_bus_dispatches_read_and_write_to_registered_range(void **state)
{
	struct bus *bus = *state;
	struct fake_dev d = { .id = 1 };
	uint8_t data[4] = { 0xde, 0xad, 0xbe, 0xef };

	assert_int_equal(bus__register(bus, 0x3f8, 8, fake_io, &d, "uart"), 0);
	assert_true(bus__dispatch(bus, 0x3f8, data, 1, true));
	assert_int_equal(d.calls, 1);
	assert_true(d.is_write);
	assert_int_equal(d.len, 1);
	assert_int_equal(d.written[0], 0xde);

	memset(data, 0, sizeof(data));
	assert_true(bus__dispatch(bus, 0x3f8, data, 4, false));
	assert_int_equal(d.calls, 2);
	assert_false(d.is_write);
	assert_int_equal(d.len, 4);
	assert_int_equal(data[0], 0x10);
	assert_int_equal(data[3], 0x13);
}

static void test_bus_offsets_are_relative_to_base(void **state)
{
	struct bus *bus = *state;
	struct fake_dev d = { .id = 2 };
	uint8_t data[8];

	assert_int_equal(bus__register(bus, 0xfee00000, 0x1000, fake_io, &d, "lapic"), 0);
	assert_true(bus__dispatch(bus, 0xfee00020, data, 4, false));
	assert_int_equal(d.offset, 0x20);
	assert_true(bus__dispatch(bus, 0xfee00fff, data, 1, true));
	assert_int_equal(d.offset, 0xfff);
	assert_true(bus__dispatch(bus, 0xfee00000, data, 8, false));
	assert_int_equal(d.offset, 0);
}

static void test_bus_unclaimed_read_returns_all_ones(void **state)
{
	struct bus *bus = *state;
	struct fake_dev d = { .id = 3 };
	uint8_t data[8] = { 0 };
	const uint8_t ones[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	/* Empty bus. */
	assert_false(bus__dispatch(bus, 0x80, data, 8, false));
	assert_memory_equal(data, ones, 8);

	assert_int_equal(bus__register(bus, 0x60, 1, fake_io, &d, "i8042"), 0);
	memset(data, 0, sizeof(data));
	assert_false(bus__dispatch(bus, 0x61, data, 2, false));
	assert_memory_equal(data, ones, 2);
	assert_int_equal(data[2], 0); /* only len bytes written */
	assert_int_equal(d.calls, 0);
}

static void test_bus_unclaimed_write_is_ignored(void **state)
{
	struct bus *bus = *state;
	uint8_t data[4] = { 1, 2, 3, 4 };

	assert_false(bus__dispatch(bus, 0x80, data, 4, true));
	assert_int_equal(data[0], 1); /* a write's buffer is not clobbered */
	assert_int_equal(data[3], 4);
}

static void test_bus_refuses_overlapping_registration(void **state)
{
	struct bus *bus = *state;
	struct fake_dev a = { .id = 1 }, b = { .id = 2 };
	uint8_t data[1];

	assert_int_equal(bus__register(bus, 0x100, 0x10, fake_io, &a, "a"), 0);
	/* Same range, tail overlap, head overlap, inside, around. */
	assert_int_equal(bus__register(bus, 0x100, 0x10, fake_io, &b, "b"), -EBUSY);
	assert_int_equal(bus__register(bus, 0xf8, 0x9, fake_io, &b, "b"), -EBUSY);
	assert_int_equal(bus__register(bus, 0x10f, 0x10, fake_io, &b, "b"), -EBUSY);
	assert_int_equal(bus__register(bus, 0x104, 0x2, fake_io, &b, "b"), -EBUSY);
	assert_int_equal(bus__register(bus, 0x0, 0x1000, fake_io, &b, "b"), -EBUSY);
	assert_int_equal(bus->nr, 1);
	/* Adjacent on either side is fine. */
	assert_int_equal(bus__register(bus, 0xf8, 0x8, fake_io, &b, "b-below"), 0);
	assert_int_equal(bus__register(bus, 0x110, 0x8, fake_io, &b, "b-above"), 0);
	assert_int_equal(bus->nr, 3);
	/* The first device still owns its range. */
	assert_true(bus__dispatch(bus, 0x10f, data, 1, false));
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 0);
}

static void test_bus_overlap_detected_against_later_ranges(void **state)
{
	struct bus *bus = *state;
	struct fake_dev d = { .id = 1 };

	/* Registration order differs from address order. */
	assert_int_equal(bus__register(bus, 0x5000, 0x100, fake_io, &d, "high"), 0);
	assert_int_equal(bus__register(bus, 0x1000, 0x100, fake_io, &d, "low"), 0);
	assert_int_equal(bus__register(bus, 0x3000, 0x100, fake_io, &d, "mid"), 0);
	assert_int_equal(bus__register(bus, 0x2000, 0x1001, fake_io, &d, "x"), -EBUSY);
	assert_int_equal(bus__register(bus, 0x4fff, 0x2, fake_io, &d, "x"), -EBUSY);
	assert_int_equal(bus__register(bus, 0x0, 0x1001, fake_io, &d, "x"), -EBUSY);
	assert_int_equal(bus->nr, 3);
	for (int i = 1; i < bus->nr; i++)
		assert_true(bus->ranges[i - 1].base + bus->ranges[i - 1].len <=
			    bus->ranges[i].base);
}

static void test_bus_refuses_empty_and_wrapping_ranges(void **state)
{
	struct bus *bus = *state;
	struct fake_dev d = { .id = 1 };

	assert_int_equal(bus__register(bus, 0x100, 0, fake_io, &d, "empty"), -EINVAL);
	assert_int_equal(bus__register(bus, UINT64_MAX - 3, 8, fake_io, &d, "wrap"), -EINVAL);
	assert_int_equal(bus->nr, 0);
}

#define MANY 300 /* more than the initial capacity, several reallocs */

static void test_bus_many_ranges_found_at_boundaries(void **state)
{
	static struct fake_dev devs[MANY];
	struct bus *bus = *state;
	uint8_t data[1];

	/* Ranges of varying size with gaps, registered in a scrambled order:
	 * device i owns [i * 0x100, i * 0x100 + 0x10 + i % 7). */
	for (int k = 0; k < MANY; k++) {
		int i = (k * 7) % MANY; /* 7 is coprime with 300: a permutation */

		devs[i] = (struct fake_dev){ .id = i };
		assert_int_equal(bus__register(bus, (uint64_t)i * 0x100, 0x10 + (uint64_t)(i % 7),
					       fake_io, &devs[i], "dev"),
				 0);
	}
	assert_int_equal(bus->nr, MANY);
	for (int i = 0; i < MANY; i++) {
		uint64_t base = (uint64_t)i * 0x100, len = 0x10 + (uint64_t)(i % 7);

		devs[i].calls = 0;
		assert_true(bus__dispatch(bus, base, data, 1, false));
		assert_int_equal(devs[i].calls, 1);
		assert_int_equal(devs[i].offset, 0);
		assert_true(bus__dispatch(bus, base + len - 1, data, 1, false));
		assert_int_equal(devs[i].calls, 2);
		assert_int_equal(devs[i].offset, len - 1);
		/* One past the end, and one before the base, is nobody's. */
		data[0] = 0;
		assert_false(bus__dispatch(bus, base + len, data, 1, false));
		assert_int_equal(data[0], 0xff);
		if (i)
			assert_false(bus__dispatch(bus, base - 1, data, 1, false));
		assert_int_equal(devs[i].calls, 2);
	}
	assert_false(bus__dispatch(bus, (uint64_t)MANY * 0x100, data, 1, false));
	assert_false(bus__dispatch(bus, UINT64_MAX, data, 1, false));
}

static void test_bus_free_empties_the_bus(void **state)
{
	struct bus *bus = *state;
	struct fake_dev d = { .id = 1 };
	uint8_t data[1];

	assert_int_equal(bus__register(bus, 0x100, 1, fake_io, &d, "d"), 0);
	bus__free(bus);
	assert_int_equal(bus->nr, 0);
	assert_null(bus->ranges);
	assert_false(bus__dispatch(bus, 0x100, data, 1, false));
	/* Usable again after free. */
	assert_int_equal(bus__register(bus, 0x100, 1, fake_io, &d, "d"), 0);
	assert_true(bus__dispatch(bus, 0x100, data, 1, false));
}

#define BUS_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BUS_TEST(test_bus_dispatches_read_and_write_to_registered_range),
		BUS_TEST(test_bus_offsets_are_relative_to_base),
		BUS_TEST(test_bus_unclaimed_read_returns_all_ones),
		BUS_TEST(test_bus_unclaimed_write_is_ignored),
		BUS_TEST(test_bus_refuses_overlapping_registration),
		BUS_TEST(test_bus_overlap_detected_against_later_ranges),
		BUS_TEST(test_bus_refuses_empty_and_wrapping_ranges),
		BUS_TEST(test_bus_many_ranges_found_at_boundaries),
		BUS_TEST(test_bus_free_empties_the_bus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
