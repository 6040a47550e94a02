/* tests/unit/test_virtq.c — split virtqueues: the normal request paths,
 * notification suppression, and a guest that lies in every field it owns.
 * Guest RAM is a pair of static buffers; the tests play the driver. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "virtio/virtq.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#define RAM_SIZE  0x10000
#define HIGH_GPA  0x100000000ull /* the second region, above 4 GiB */
#define QSIZE	  8
#define DESC_GPA  0x0000
#define AVAIL_GPA 0x1000
#define USED_GPA  0x2000
#define TABLE_GPA 0x3000 /* indirect tables */
#define BUF_GPA	  0x8000

#define F_NEXT	   1
#define F_WRITE	   2
#define F_INDIRECT 4

static uint8_t ram0[RAM_SIZE] __attribute__((aligned(4096)));
static uint8_t ram1[RAM_SIZE] __attribute__((aligned(4096)));

struct fix {
	struct guest_mem mem;
	struct virtq q;
	struct virtq_elem e;
	char why[160];
	uint16_t avail_idx; /* the driver's copy */
};

static struct fix fix;

static uint8_t *hva(uint64_t gpa)
{
	if (gpa >= HIGH_GPA)
		return ram1 + (gpa - HIGH_GPA);
	return ram0 + gpa;
}

static void put16(uint64_t gpa, uint16_t v)
{
	v = htole16(v);
	memcpy(hva(gpa), &v, 2);
}

static uint16_t get16(uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, hva(gpa), 2);
	return le16toh(v);
}

static uint32_t get32(uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, hva(gpa), 4);
	return le32toh(v);
}

/* Descriptor i of the table at table_gpa. */
static void desc_at(uint64_t table_gpa, unsigned int i, uint64_t addr, uint32_t len, uint16_t flags,
		    uint16_t next)
{
	uint8_t *d = hva(table_gpa + 16ull * i);
	uint64_t a = htole64(addr);
	uint32_t l = htole32(len);
	uint16_t f = htole16(flags), n = htole16(next);

	memcpy(d, &a, 8);
	memcpy(d + 8, &l, 4);
	memcpy(d + 12, &f, 2);
	memcpy(d + 14, &n, 2);
}

static void desc(unsigned int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	desc_at(DESC_GPA, i, addr, len, flags, next);
}

/* Driver: make `head` available and publish the index. */
static void offer(struct fix *f, uint16_t head)
{
	put16(AVAIL_GPA + 4 + 2 * (f->avail_idx % f->q.size), head);
	f->avail_idx++;
	put16(AVAIL_GPA + 2, f->avail_idx);
}

static int setup(void **state)
{
	struct fix *f = &fix;

	memset(ram0, 0, sizeof(ram0));
	memset(ram1, 0, sizeof(ram1));
	memset(f, 0, sizeof(*f));
	f->mem.nr = 2;
	f->mem.r[0] = (struct guest_mem_region){.gpa = 0, .size = RAM_SIZE, .hva = ram0};
	f->mem.r[1] = (struct guest_mem_region){.gpa = HIGH_GPA, .size = RAM_SIZE, .hva = ram1};
	f->q.size = QSIZE;
	f->q.desc_gpa = DESC_GPA;
	f->q.avail_gpa = AVAIL_GPA;
	f->q.used_gpa = USED_GPA;
	f->q.mem = &f->mem;
	assert_int_equal(virtq__enable(&f->q, f->why, sizeof(f->why)), 0);
	*state = f;
	return 0;
}

static int pop(struct fix *f)
{
	f->why[0] = '\0';
	return virtq__pop(&f->q, &f->e, f->why, sizeof(f->why));
}

/* A guest protocol error: -EINVAL, a reason naming `what`, nothing consumed,
 * and the same answer again (the queue does not move past the bad entry). */
static void expect_rejected(struct fix *f, const char *what)
{
	uint16_t last = f->q.last_avail;

	assert_int_equal(pop(f), -EINVAL);
	if (!strstr(f->why, what))
		fail_msg("reason \"%s\" does not mention \"%s\"", f->why, what);
	assert_int_equal(f->q.last_avail, last);
	assert_int_equal(pop(f), -EINVAL);
	assert_int_equal(f->q.last_avail, last);
}

static void test_virtq_round_trips_a_two_descriptor_request(void **state)
{
	struct fix *f = *state;

	assert_int_equal(pop(f), -EAGAIN);
	assert_false(virtq__has_avail(&f->q));

	desc(0, BUF_GPA, 16, F_NEXT, 1);
	desc(1, BUF_GPA + 0x100, 8, F_WRITE, 0);
	offer(f, 0);
	assert_true(virtq__has_avail(&f->q));

	assert_int_equal(pop(f), 0);
	assert_int_equal(f->e.head, 0);
	assert_int_equal(f->e.out_num, 1);
	assert_int_equal(f->e.in_num, 1);
	assert_int_equal(f->e.out_len, 16);
	assert_int_equal(f->e.in_len, 8);
	assert_ptr_equal(f->e.iov[0].iov_base, ram0 + BUF_GPA);
	assert_int_equal(f->e.iov[0].iov_len, 16);
	assert_ptr_equal(f->e.iov[1].iov_base, ram0 + BUF_GPA + 0x100);
	assert_int_equal(f->e.iov[1].iov_len, 8);
	assert_int_equal(f->q.last_avail, 1);
	assert_false(virtq__has_avail(&f->q));
	assert_int_equal(pop(f), -EAGAIN);

	virtq__push(&f->q, &f->e, 8);
	assert_int_equal(get16(USED_GPA + 2), 1);
	assert_int_equal(get32(USED_GPA + 4), 0);
	assert_int_equal(get32(USED_GPA + 8), 8);
	assert_int_equal(f->q.used_idx, 1);
}

static void test_virtq_orders_chained_out_and_in_buffers_and_skips_empty_ones(void **state)
{
	struct fix *f = *state;

	/* Head 5: out 10, out 0 (skipped), out 20, in 30, in 0 (skipped), in 40. */
	desc(5, BUF_GPA, 10, F_NEXT, 2);
	desc(2, BUF_GPA + 0x100, 0, F_NEXT, 7);
	desc(7, BUF_GPA + 0x200, 20, F_NEXT, 0);
	desc(0, BUF_GPA + 0x300, 30, F_WRITE | F_NEXT, 3);
	desc(3, 0xdeadbeef000, 0, F_WRITE | F_NEXT, 1); /* empty: address never used */
	desc(1, BUF_GPA + 0x400, 40, F_WRITE, 0);
	offer(f, 5);

	assert_int_equal(pop(f), 0);
	assert_int_equal(f->e.head, 5);
	assert_int_equal(f->e.out_num, 2);
	assert_int_equal(f->e.in_num, 2);
	assert_int_equal(f->e.out_len, 30);
	assert_int_equal(f->e.in_len, 70);
	assert_ptr_equal(f->e.iov[0].iov_base, ram0 + BUF_GPA);
	assert_ptr_equal(f->e.iov[1].iov_base, ram0 + BUF_GPA + 0x200);
	assert_ptr_equal(f->e.iov[2].iov_base, ram0 + BUF_GPA + 0x300);
	assert_ptr_equal(f->e.iov[3].iov_base, ram0 + BUF_GPA + 0x400);
	assert_int_equal(f->e.iov[3].iov_len, 40);

	/* A second request goes to the next used slot. */
	desc(4, BUF_GPA, 1, 0, 0);
	offer(f, 4);
	virtq__push(&f->q, &f->e, 70);
	assert_int_equal(pop(f), 0);
	assert_int_equal(f->e.head, 4);
	virtq__push(&f->q, &f->e, 0);
	assert_int_equal(get16(USED_GPA + 2), 2);
	assert_int_equal(get32(USED_GPA + 4), 5);
	assert_int_equal(get32(USED_GPA + 8), 70);
	assert_int_equal(get32(USED_GPA + 12), 4);
	assert_int_equal(get32(USED_GPA + 16), 0);
}

static void test_virtq_returns_an_all_empty_chain_as_is(void **state)
{
	struct fix *f = *state;

	desc(0, BUF_GPA, 0, 0, 0);
	offer(f, 0);
	assert_int_equal(pop(f), 0);
	assert_int_equal(f->e.out_num + f->e.in_num, 0);
	assert_int_equal(f->e.out_len + f->e.in_len, 0);
}

static void test_virtq_accepts_a_chain_as_long_as_the_queue(void **state)
{
	struct fix *f = *state;

	for (unsigned int i = 0; i < QSIZE; i++)
		desc(i, BUF_GPA + i, 1, i + 1 < QSIZE ? F_NEXT : 0, i + 1);
	offer(f, 0);
	assert_int_equal(pop(f), 0);
	assert_int_equal(f->e.out_num, QSIZE);
}

static void test_virtq_follows_an_indirect_table(void **state)
{
	struct fix *f = *state;

	f->q.indirect = true;
	desc_at(TABLE_GPA, 0, BUF_GPA, 16, F_NEXT, 2);
	desc_at(TABLE_GPA, 2, BUF_GPA + 0x100, 512, F_NEXT, 1);
	desc_at(TABLE_GPA, 1, HIGH_GPA + 0x40, 1, F_WRITE, 0);
	desc(6, TABLE_GPA, 3 * 16, F_INDIRECT | F_WRITE, 0); /* WRITE is ignored here */
	offer(f, 6);

	assert_int_equal(pop(f), 0);
	assert_int_equal(f->e.head, 6);
	assert_int_equal(f->e.out_num, 2);
	assert_int_equal(f->e.in_num, 1);
	assert_int_equal(f->e.out_len, 528);
	assert_int_equal(f->e.in_len, 1);
	assert_ptr_equal(f->e.iov[1].iov_base, ram0 + BUF_GPA + 0x100);
	assert_ptr_equal(f->e.iov[2].iov_base, ram1 + 0x40);
}

static void test_virtq_maps_buffers_in_the_high_region(void **state)
{
	struct fix *f = *state;

	desc(0, HIGH_GPA, 0x100, F_NEXT, 1);
	desc(1, HIGH_GPA + RAM_SIZE - 0x10, 0x10, F_WRITE, 0); /* ends exactly at the end */
	offer(f, 0);
	assert_int_equal(pop(f), 0);
	assert_ptr_equal(f->e.iov[0].iov_base, ram1);
	assert_ptr_equal(f->e.iov[1].iov_base, ram1 + RAM_SIZE - 0x10);
	assert_int_equal(f->e.in_len, 0x10);
}

static void test_virtq_rings_may_live_in_the_high_region(void **state)
{
	struct fix *f = *state;

	virtq__disable(&f->q);
	f->q.desc_gpa = HIGH_GPA;
	f->q.avail_gpa = HIGH_GPA + 0x1000;
	f->q.used_gpa = HIGH_GPA + 0x2000;
	assert_int_equal(virtq__enable(&f->q, f->why, sizeof(f->why)), 0);
	desc_at(HIGH_GPA, 0, BUF_GPA, 4, 0, 0);
	put16(HIGH_GPA + 0x1000 + 4, 0);
	put16(HIGH_GPA + 0x1000 + 2, 1);
	assert_int_equal(pop(f), 0);
	virtq__push(&f->q, &f->e, 0);
	assert_int_equal(get16(HIGH_GPA + 0x2000 + 2), 1);
}

/* Notifications. */

static void push_one(struct fix *f)
{
	desc(0, BUF_GPA, 1, 0, 0);
	offer(f, 0);
	assert_int_equal(pop(f), 0);
	virtq__push(&f->q, &f->e, 0);
}

static void test_virtq_honours_no_interrupt_without_event_idx(void **state)
{
	struct fix *f = *state;

	push_one(f);
	assert_true(virtq__should_notify(&f->q));
	put16(AVAIL_GPA, 1); /* VIRTQ_AVAIL_F_NO_INTERRUPT */
	push_one(f);
	assert_false(virtq__should_notify(&f->q));
	put16(AVAIL_GPA, 0);
	assert_true(virtq__should_notify(&f->q));
}

static void test_virtq_event_idx_suppresses_until_used_event_is_crossed(void **state)
{
	struct fix *f = *state;

	f->q.event_idx = true;
	put16(AVAIL_GPA, 1);		     /* NO_INTERRUPT is ignored with EVENT_IDX */
	put16(AVAIL_GPA + 4 + 2 * QSIZE, 3); /* used_event: interrupt once idx passes 3 */

	push_one(f); /* used idx 1: first time, nothing signalled yet */
	assert_true(virtq__should_notify(&f->q));
	push_one(f); /* 2 */
	assert_false(virtq__should_notify(&f->q));
	push_one(f); /* 3 */
	assert_false(virtq__should_notify(&f->q));
	assert_false(virtq__should_notify(&f->q)); /* nothing new */
	push_one(f);				   /* 4: crossed 3 */
	assert_true(virtq__should_notify(&f->q));
	assert_false(virtq__should_notify(&f->q));
	push_one(f);
	push_one(f); /* 6 */
	assert_false(virtq__should_notify(&f->q));

	/* A batch that jumps over used_event still triggers. */
	put16(AVAIL_GPA + 4 + 2 * QSIZE, 7);
	push_one(f);
	push_one(f);
	push_one(f); /* 9 */
	assert_true(virtq__should_notify(&f->q));
	assert_int_equal(f->q.signalled_used, 9);
}

static void test_virtq_event_idx_works_across_index_wrap(void **state)
{
	struct fix *f = *state;

	f->q.event_idx = true;
	f->q.last_avail = f->avail_idx = 0xfffe;
	f->q.used_idx = 0xfffe;
	f->q.signalled_used = 0xfffe;
	f->q.signalled_used_valid = true;
	put16(AVAIL_GPA + 4 + 2 * QSIZE, 0xffff);
	push_one(f); /* 0xffff */
	assert_false(virtq__should_notify(&f->q));
	push_one(f); /* 0x0000: crossed 0xffff */
	assert_true(virtq__should_notify(&f->q));
	assert_int_equal(get16(USED_GPA + 2), 0);
}

static void test_virtq_set_notify_toggles_no_notify_flag(void **state)
{
	struct fix *f = *state;

	virtq__set_notify(&f->q, false);
	assert_int_equal(get16(USED_GPA), 1);
	virtq__set_notify(&f->q, true);
	assert_int_equal(get16(USED_GPA), 0);
}

static void test_virtq_set_notify_with_event_idx_publishes_avail_event(void **state)
{
	struct fix *f = *state;
	const uint64_t avail_event = USED_GPA + 4 + 8 * QSIZE;

	f->q.event_idx = true;
	virtq__set_notify(&f->q, false);
	push_one(f);
	push_one(f);
	assert_int_equal(get16(avail_event), 0); /* suppressed: not kept current */
	assert_int_equal(get16(USED_GPA), 0);	 /* flags unused with EVENT_IDX */
	virtq__set_notify(&f->q, true);
	assert_int_equal(get16(avail_event), 2);
	push_one(f); /* notifications on: pop keeps it current */
	assert_int_equal(get16(avail_event), 3);
}

static void test_virtq_disable_keeps_indexes(void **state)
{
	struct fix *f = *state;

	push_one(f);
	virtq__disable(&f->q);
	assert_false(f->q.enabled);
	assert_null(f->q.desc);
	assert_int_equal(f->q.last_avail, 1);
	assert_int_equal(f->q.used_idx, 1);
	assert_int_equal(pop(f), -EAGAIN);
	assert_false(virtq__has_avail(&f->q));
	assert_int_equal(virtq__enable(&f->q, f->why, sizeof(f->why)), 0);
	push_one(f);
	assert_int_equal(get16(USED_GPA + 2), 2);
}

/* A malicious or broken guest. */

static void test_virtq_rejects_descriptor_loop(void **state)
{
	struct fix *f = *state;

	desc(0, BUF_GPA, 1, F_NEXT, 1);
	desc(1, BUF_GPA, 1, F_NEXT, 0);
	offer(f, 0);
	expect_rejected(f, "loops");
}

static void test_virtq_rejects_descriptor_pointing_to_itself(void **state)
{
	struct fix *f = *state;

	desc(3, BUF_GPA, 0, F_NEXT, 3); /* empty buffers must not make it endless */
	offer(f, 3);
	expect_rejected(f, "longer than the queue");
}

static void test_virtq_rejects_chain_longer_than_queue(void **state)
{
	struct fix *f = *state;

	for (unsigned int i = 0; i < QSIZE; i++)
		desc(i, BUF_GPA + i, 1, F_NEXT, (i + 1) % QSIZE);
	offer(f, 0);
	expect_rejected(f, "longer than the queue");
}

static void test_virtq_rejects_loop_inside_indirect_table(void **state)
{
	struct fix *f = *state;

	f->q.indirect = true;
	desc_at(TABLE_GPA, 0, BUF_GPA, 1, F_NEXT, 1);
	desc_at(TABLE_GPA, 1, BUF_GPA, 1, F_NEXT, 0);
	desc(0, TABLE_GPA, 32, F_INDIRECT, 0);
	offer(f, 0);
	expect_rejected(f, "indirect table");
}

static void test_virtq_rejects_buffer_outside_ram(void **state)
{
	struct fix *f = *state;

	desc(0, RAM_SIZE + 0x1000, 16, 0, 0);
	offer(f, 0);
	expect_rejected(f, "outside guest RAM");
}

static void test_virtq_rejects_buffer_running_past_end_of_ram(void **state)
{
	struct fix *f = *state;

	desc(0, HIGH_GPA + RAM_SIZE - 8, 9, 0, 0);
	offer(f, 0);
	expect_rejected(f, "outside guest RAM");
}

static void test_virtq_rejects_address_plus_length_overflowing_64_bits(void **state)
{
	struct fix *f = *state;

	desc(0, 0xfffffffffffffff0ull, 0x20, 0, 0);
	offer(f, 0);
	expect_rejected(f, "outside guest RAM");
}

static void test_virtq_rejects_buffer_straddling_two_regions(void **state)
{
	struct fix *f = *state;

	/* Contiguous in guest-physical space, separate in the host. */
	f->mem.r[1].gpa = RAM_SIZE;
	desc(0, RAM_SIZE - 0x10, 0x20, 0, 0);
	offer(f, 0);
	expect_rejected(f, "outside guest RAM");
}

static void test_virtq_rejects_next_index_out_of_range(void **state)
{
	struct fix *f = *state;

	desc(0, BUF_GPA, 1, F_NEXT, QSIZE);
	offer(f, 0);
	expect_rejected(f, "next index 8 out of range");
}

static void test_virtq_rejects_readable_after_writable(void **state)
{
	struct fix *f = *state;

	desc(0, BUF_GPA, 1, F_WRITE | F_NEXT, 1);
	desc(1, BUF_GPA, 1, 0, 0);
	offer(f, 0);
	expect_rejected(f, "readable descriptor 1 after a writable one");
}

static void test_virtq_rejects_indirect_when_not_negotiated(void **state)
{
	struct fix *f = *state;

	desc_at(TABLE_GPA, 0, BUF_GPA, 1, 0, 0);
	desc(0, TABLE_GPA, 16, F_INDIRECT, 0);
	offer(f, 0);
	expect_rejected(f, "not negotiated");
}

static void test_virtq_rejects_nested_indirect(void **state)
{
	struct fix *f = *state;

	f->q.indirect = true;
	desc_at(TABLE_GPA + 0x100, 0, BUF_GPA, 1, 0, 0);
	desc_at(TABLE_GPA, 0, TABLE_GPA + 0x100, 16, F_INDIRECT, 0);
	desc(0, TABLE_GPA, 16, F_INDIRECT, 0);
	offer(f, 0);
	expect_rejected(f, "nested");
}

static void test_virtq_rejects_indirect_with_next(void **state)
{
	struct fix *f = *state;

	f->q.indirect = true;
	desc_at(TABLE_GPA, 0, BUF_GPA, 1, 0, 0);
	desc(0, TABLE_GPA, 16, F_INDIRECT | F_NEXT, 1);
	desc(1, BUF_GPA, 1, 0, 0);
	offer(f, 0);
	expect_rejected(f, "both INDIRECT and NEXT");
}

static void test_virtq_rejects_indirect_table_not_a_multiple_of_16(void **state)
{
	struct fix *f = *state;

	f->q.indirect = true;
	desc(0, TABLE_GPA, 24, F_INDIRECT, 0);
	desc(1, TABLE_GPA, 0, F_INDIRECT, 0);
	offer(f, 0);
	expect_rejected(f, "not a multiple of 16");
	f->q.last_avail = f->avail_idx; /* as if reset: try the empty table */
	offer(f, 1);
	expect_rejected(f, "not a multiple of 16");
}

static void test_virtq_rejects_indirect_table_outside_ram(void **state)
{
	struct fix *f = *state;

	f->q.indirect = true;
	desc(0, RAM_SIZE - 16, 32, F_INDIRECT, 0);
	offer(f, 0);
	expect_rejected(f, "indirect table");
	assert_non_null(strstr(f->why, "outside guest RAM"));
}

static void test_virtq_rejects_indirect_next_beyond_table(void **state)
{
	struct fix *f = *state;

	f->q.indirect = true;
	desc_at(TABLE_GPA, 0, BUF_GPA, 1, F_NEXT, 2); /* table has 2 entries */
	desc(0, TABLE_GPA, 32, F_INDIRECT, 0);
	offer(f, 0);
	expect_rejected(f, "next index 2 out of range (2)");
}

static void test_virtq_rejects_more_than_max_iov_buffers(void **state)
{
	struct fix *f = *state;
	const unsigned int n = VIRTQ_MAX_IOV + 1;

	/* Fits in RAM: 1025 * 16 bytes from TABLE_GPA. */
	f->q.indirect = true;
	for (unsigned int i = 0; i < n; i++)
		desc_at(TABLE_GPA, i, BUF_GPA, 1, i + 1 < n ? F_NEXT : 0, i + 1);
	desc(0, TABLE_GPA, 16 * n, F_INDIRECT, 0);
	offer(f, 0);
	expect_rejected(f, "more than 1024 buffers");

	/* One fewer is fine. */
	desc_at(TABLE_GPA, n - 2, BUF_GPA, 1, 0, 0);
	assert_int_equal(pop(f), 0);
	assert_int_equal(f->e.out_num, VIRTQ_MAX_IOV);
}

static void test_virtq_rejects_total_length_over_4_gib(void **state)
{
	struct fix *f = *state;
	static uint8_t never_touched[16];

	/* An 8 GiB region whose host memory is never touched by the queue
	 * code (it only computes pointers), so the sum is what fails. */
	f->mem.nr = 3;
	f->mem.r[2] =
	    (struct guest_mem_region){.gpa = 1ull << 40, .size = 8ull << 30, .hva = never_touched};
	desc(0, 1ull << 40, 0x80000000u, F_WRITE | F_NEXT, 1);
	desc(1, (1ull << 40) + 0x80000000u, 0x80000000u, F_WRITE, 0);
	offer(f, 0);
	expect_rejected(f, "longer than 4 GiB");
}

static void test_virtq_rejects_avail_index_jump_beyond_size(void **state)
{
	struct fix *f = *state;

	desc(0, BUF_GPA, 1, 0, 0);
	put16(AVAIL_GPA + 2, QSIZE + 1);
	expect_rejected(f, "avail index jumped by 9");
	/* Exactly a full ring is legal. */
	put16(AVAIL_GPA + 2, QSIZE);
	for (unsigned int i = 0; i < QSIZE; i++)
		assert_int_equal(pop(f), 0);
	assert_int_equal(pop(f), -EAGAIN);
	/* Going backwards is a jump of almost 65536. */
	put16(AVAIL_GPA + 2, QSIZE - 1);
	expect_rejected(f, "jumped by 65535");
}

static void test_virtq_rejects_head_out_of_range(void **state)
{
	struct fix *f = *state;

	offer(f, QSIZE);
	expect_rejected(f, "head 8 out of range");
	assert_true(virtq__has_avail(&f->q)); /* still there: nothing consumed */
}

static int enable(struct fix *f)
{
	virtq__disable(&f->q);
	f->why[0] = '\0';
	return virtq__enable(&f->q, f->why, sizeof(f->why));
}

static void test_virtq_enable_rejects_bad_queue_sizes(void **state)
{
	struct fix *f = *state;
	const uint16_t bad[] = {0, 3, 6, 100, 32769, 65535};

	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f->q.size = bad[i];
		assert_int_equal(enable(f), -EINVAL);
		assert_non_null(strstr(f->why, "power of two"));
		assert_false(f->q.enabled);
	}
	f->q.size = 1;
	assert_int_equal(enable(f), 0);
	f->q.size = 256;
	assert_int_equal(enable(f), 0);
}

static void test_virtq_enable_rejects_rings_outside_ram(void **state)
{
	struct fix *f = *state;

	f->q.desc_gpa = RAM_SIZE - 0x40; /* 8 * 16 bytes don't fit */
	assert_int_equal(enable(f), -EINVAL);
	assert_non_null(strstr(f->why, "descriptor table"));
	assert_null(f->q.desc);
	f->q.desc_gpa = DESC_GPA;

	f->q.avail_gpa = HIGH_GPA + RAM_SIZE - 20; /* needs 22 bytes */
	assert_int_equal(enable(f), -EINVAL);
	assert_non_null(strstr(f->why, "avail ring"));
	f->q.avail_gpa = AVAIL_GPA;

	f->q.used_gpa = 0x7ffff000;
	assert_int_equal(enable(f), -EINVAL);
	assert_non_null(strstr(f->why, "used ring"));
	assert_false(f->q.enabled);
	assert_int_equal(pop(f), -EAGAIN);

	f->q.used_gpa = 0xfffffffffffffffcull; /* + length wraps around */
	assert_int_equal(enable(f), -EINVAL);
	f->q.used_gpa = USED_GPA;
	assert_int_equal(enable(f), 0);
}

static void test_virtq_enable_rejects_misaligned_rings(void **state)
{
	struct fix *f = *state;

	f->q.desc_gpa = DESC_GPA + 8;
	assert_int_equal(enable(f), -EINVAL);
	assert_non_null(strstr(f->why, "misaligned"));
	f->q.desc_gpa = DESC_GPA;
	f->q.avail_gpa = AVAIL_GPA + 1;
	assert_int_equal(enable(f), -EINVAL);
	f->q.avail_gpa = AVAIL_GPA;
	f->q.used_gpa = USED_GPA + 2;
	assert_int_equal(enable(f), -EINVAL);
}

#define T(fn) cmocka_unit_test_setup(fn, setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_virtq_round_trips_a_two_descriptor_request),
	    T(test_virtq_orders_chained_out_and_in_buffers_and_skips_empty_ones),
	    T(test_virtq_returns_an_all_empty_chain_as_is),
	    T(test_virtq_accepts_a_chain_as_long_as_the_queue),
	    T(test_virtq_follows_an_indirect_table),
	    T(test_virtq_maps_buffers_in_the_high_region),
	    T(test_virtq_rings_may_live_in_the_high_region),
	    T(test_virtq_honours_no_interrupt_without_event_idx),
	    T(test_virtq_event_idx_suppresses_until_used_event_is_crossed),
	    T(test_virtq_event_idx_works_across_index_wrap),
	    T(test_virtq_set_notify_toggles_no_notify_flag),
	    T(test_virtq_set_notify_with_event_idx_publishes_avail_event),
	    T(test_virtq_disable_keeps_indexes),
	    T(test_virtq_rejects_descriptor_loop),
	    T(test_virtq_rejects_descriptor_pointing_to_itself),
	    T(test_virtq_rejects_chain_longer_than_queue),
	    T(test_virtq_rejects_loop_inside_indirect_table),
	    T(test_virtq_rejects_buffer_outside_ram),
	    T(test_virtq_rejects_buffer_running_past_end_of_ram),
	    T(test_virtq_rejects_address_plus_length_overflowing_64_bits),
	    T(test_virtq_rejects_buffer_straddling_two_regions),
	    T(test_virtq_rejects_next_index_out_of_range),
	    T(test_virtq_rejects_readable_after_writable),
	    T(test_virtq_rejects_indirect_when_not_negotiated),
	    T(test_virtq_rejects_nested_indirect),
	    T(test_virtq_rejects_indirect_with_next),
	    T(test_virtq_rejects_indirect_table_not_a_multiple_of_16),
	    T(test_virtq_rejects_indirect_table_outside_ram),
	    T(test_virtq_rejects_indirect_next_beyond_table),
	    T(test_virtq_rejects_more_than_max_iov_buffers),
	    T(test_virtq_rejects_total_length_over_4_gib),
	    T(test_virtq_rejects_avail_index_jump_beyond_size),
	    T(test_virtq_rejects_head_out_of_range),
	    T(test_virtq_enable_rejects_bad_queue_sizes),
	    T(test_virtq_enable_rejects_rings_outside_ram),
	    T(test_virtq_enable_rejects_misaligned_rings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
