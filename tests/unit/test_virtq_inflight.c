/* tests/unit/test_virtq_inflight.c — the inflight region's split-ring
 * algorithm: a back-end "killed" at each point between taking a request
 * and publishing it leaves a region from which the next one re-submits
 * exactly the unfinished requests, oldest first, and goes on from the
 * right avail index.  A "kill" is simply dropping the virtq and its
 * tracker; the region and guest RAM stay, as they do for a real process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "virtio/virtq.h"
#include "virtio/virtq_inflight.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define QSIZE 8
#define RAM   0x4000
/* Ring layout in the one region of guest RAM. */
#define DESC  0x0000
#define AVAIL 0x1000
#define USED  0x2000
#define BUFS  0x3000

static uint8_t ram[RAM] __attribute__((aligned(4096)));
static struct guest_mem mem;
static struct virtq_inflight_region *region;
static uint16_t driver_avail;

static void le16_at(uint64_t gpa, uint16_t v)
{
	v = htole16(v);
	memcpy(ram + gpa, &v, sizeof(v));
}

static uint16_t guest_used_idx(void)
{
	uint16_t v;

	memcpy(&v, ram + USED + 2, sizeof(v));
	return le16toh(v);
}

/* The driver offers descriptor `head` alone: a 16-byte writable buffer. */
static void driver_offer(uint16_t head)
{
	uint64_t addr = htole64(BUFS + 16u * head);
	uint32_t len = htole32(16);
	uint16_t flags = htole16(2);

	memcpy(ram + DESC + 16u * head, &addr, 8);
	memcpy(ram + DESC + 16u * head + 8, &len, 4);
	memcpy(ram + DESC + 16u * head + 12, &flags, 2);
	le16_at(AVAIL + 4 + 2 * (driver_avail % QSIZE), head);
	le16_at(AVAIL + 2, ++driver_avail);
}

/* A back-end starting on the ring: the transport's part of vhost_user.c. */
static void backend_start(struct virtq *q, struct virtq_inflight *t, int want_inflight)
{
	char why[128];
	uint16_t used = guest_used_idx();
	int n;

	memset(q, 0, sizeof(*q));
	q->size = QSIZE;
	q->desc_gpa = DESC;
	q->avail_gpa = AVAIL;
	q->used_gpa = USED;
	q->mem = &mem;
	assert_int_equal(virtq__enable(q, why, sizeof(why)), 0);
	n = virtq_inflight__attach(t, region, QSIZE, used);
	assert_int_equal(n, want_inflight);
	q->used_idx = used;
	q->last_avail = (uint16_t)(used + n);
	q->inflight = t;
}

static uint16_t backend_pop(struct virtq *q, struct virtq_elem *e)
{
	char why[128];

	assert_int_equal(virtq__pop(q, e, why, sizeof(why)), 0);
	return e->head;
}

static int setup(void **state)
{
	memset(ram, 0, sizeof(ram));
	mem.nr = 1;
	mem.r[0] = (struct guest_mem_region){.gpa = 0, .size = RAM, .hva = ram};
	region = calloc(1, virtq_inflight__queue_size(QSIZE));
	virtq_inflight__init(region, QSIZE);
	driver_avail = 0;
	*state = NULL;
	return 0;
}

static int teardown(void **state)
{
	free(region);
	return 0;
}

static void test_inflight_resubmits_unfinished_requests_oldest_first(void **state)
{
	static struct virtq_elem e;
	struct virtq_inflight t = {0}, t2 = {0};
	struct virtq q;
	char why[128];

	backend_start(&q, &t, 0);
	driver_offer(3);
	driver_offer(5);
	driver_offer(1);
	assert_int_equal(backend_pop(&q, &e), 3);
	assert_int_equal(backend_pop(&q, &e), 5);
	virtq__push(&q, &e, 1); /* 5 finishes; 3 and 1 do not */
	assert_int_equal(backend_pop(&q, &e), 1);
	virtq_inflight__detach(&t); /* killed */

	backend_start(&q, &t2, 2);
	assert_int_equal(q.last_avail, 3);
	assert_true(virtq__has_avail(&q));
	assert_int_equal(backend_pop(&q, &e), 3);
	assert_int_equal(backend_pop(&q, &e), 1);
	assert_int_equal(virtq__pop(&q, &e, why, sizeof(why)), -EAGAIN);
	driver_offer(6); /* new requests follow the re-submitted ones */
	assert_int_equal(backend_pop(&q, &e), 6);
	virtq_inflight__detach(&t2);
}

static void test_inflight_counts_a_request_the_guest_saw_as_done(void **state)
{
	static struct virtq_elem e;
	struct virtq_inflight t = {0}, t2 = {0};
	struct virtq q;

	backend_start(&q, &t, 0);
	driver_offer(2);
	assert_int_equal(backend_pop(&q, &e), 2);
	/* Killed inside push: the used index is published, the mark not yet
	 * cleared (virtq__push's batch, store, then end). */
	virtq_inflight__batch(&t, 2);
	le16_at(USED + 4, 2);
	le16_at(USED + 2, 1);
	virtq_inflight__detach(&t);

	backend_start(&q, &t2, 0);
	assert_int_equal(q.last_avail, 1);
	assert_false(virtq__has_avail(&q));
	assert_int_equal(region->used_idx, 1);
	virtq_inflight__detach(&t2);
}

static void test_inflight_resubmits_a_request_killed_before_its_used_index(void **state)
{
	static struct virtq_elem e;
	struct virtq_inflight t = {0}, t2 = {0};
	struct virtq q;

	backend_start(&q, &t, 0);
	driver_offer(4);
	assert_int_equal(backend_pop(&q, &e), 4);
	/* Killed after writing the used element, before publishing it. */
	virtq_inflight__batch(&t, 4);
	virtq_inflight__detach(&t);

	backend_start(&q, &t2, 1);
	assert_int_equal(backend_pop(&q, &e), 4);
	virtq__push(&q, &e, 1);
	assert_int_equal(guest_used_idx(), 1);
	assert_int_equal(region->desc[4].inflight, 0);
	virtq_inflight__detach(&t2);
}

/* A buffer given back unused (virtio-net's receive path, when a frame does
 * not fit) is no longer in flight: the next back-end must not re-submit it
 * while it is still in the avail ring, or the guest gets it back twice. */
static void test_inflight_unpop_clears_the_mark(void **state)
{
	static struct virtq_elem e;
	struct virtq_inflight t = {0}, t2 = {0};
	struct virtq q;

	backend_start(&q, &t, 0);
	driver_offer(2);
	driver_offer(7);
	assert_int_equal(backend_pop(&q, &e), 2);
	virtq__push(&q, &e, 1);
	assert_int_equal(backend_pop(&q, &e), 7);
	virtq__unpop(&q, e.head, e.resubmitted);
	assert_int_equal(q.last_avail, 1);
	assert_int_equal(region->desc[7].inflight, 0);
	assert_int_equal(backend_pop(&q, &e), 7); /* the same buffer again */
	virtq__unpop(&q, e.head, e.resubmitted);
	virtq_inflight__detach(&t); /* replaced */

	backend_start(&q, &t2, 0);
	assert_int_equal(q.last_avail, 1);
	assert_int_equal(backend_pop(&q, &e), 7);
	virtq_inflight__detach(&t2);
}

/* A re-submitted head given back goes back on the re-submit list, still
 * marked, and comes first again. */
static void test_inflight_unpop_of_a_resubmitted_head(void **state)
{
	static struct virtq_elem e, e2;
	struct virtq_inflight t = {0}, t2 = {0};
	struct virtq q;

	backend_start(&q, &t, 0);
	driver_offer(3);
	driver_offer(4);
	assert_int_equal(backend_pop(&q, &e), 3);
	virtq_inflight__detach(&t); /* killed with 3 in flight */

	backend_start(&q, &t2, 1);
	assert_int_equal(backend_pop(&q, &e), 3);
	assert_true(e.resubmitted);
	assert_int_equal(backend_pop(&q, &e2), 4);
	assert_false(e2.resubmitted);
	virtq__unpop(&q, e2.head, e2.resubmitted);
	virtq__unpop(&q, e.head, e.resubmitted);
	assert_int_equal(q.last_avail, 1);
	assert_int_equal(region->desc[3].inflight, 1);
	assert_int_equal(region->desc[4].inflight, 0);
	assert_int_equal(backend_pop(&q, &e), 3);
	assert_int_equal(backend_pop(&q, &e2), 4);
	virtq_inflight__detach(&t2);
}

static void test_inflight_refuses_a_region_smaller_than_the_ring(void **state)
{
	struct virtq_inflight t = {0};

	region->desc_num = QSIZE / 2;
	assert_int_equal(virtq_inflight__attach(&t, region, QSIZE, 0), -EINVAL);
	assert_null(t.r);
}

static void test_inflight_drops_marks_beyond_a_smaller_ring(void **state)
{
	struct virtq_inflight t = {0};

	/* Left by a ring of 8 before the guest reset the device to 4. */
	region->desc[6].inflight = 1;
	region->desc[1].inflight = 1;
	assert_int_equal(virtq_inflight__attach(&t, region, QSIZE / 2, 0), 1);
	assert_int_equal(region->desc[6].inflight, 0);
	assert_int_equal(virtq_inflight__next_resubmit(&t), 1);
	assert_int_equal(virtq_inflight__next_resubmit(&t), -1);
	virtq_inflight__detach(&t);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_inflight_resubmits_unfinished_requests_oldest_first),
	    T(test_inflight_counts_a_request_the_guest_saw_as_done),
	    T(test_inflight_resubmits_a_request_killed_before_its_used_index),
	    T(test_inflight_unpop_clears_the_mark),
	    T(test_inflight_unpop_of_a_resubmitted_head),
	    T(test_inflight_refuses_a_region_smaller_than_the_ring),
	    T(test_inflight_drops_marks_beyond_a_smaller_ring),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
