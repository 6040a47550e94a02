/* tests/unit/test_vu_state.c — the paravisor's device state: round trips,
 * the version rules (unknown fields skipped, a state for newer readers
 * refused with the reason) and malformed states refused.  Built twice: as
 * this build's reader, and with PARAVISOR_STATE_NEXT as the next build's
 * (test_vu_state_next), which knows the field the other one skips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "paravisor/vu_state.h"
#include "virtio/vhost_user_state.h"
#ifdef PARAVISOR_STATE_NEXT
#include "paravisor/state_next.pb-c.h"
#else
#include "paravisor/state.pb-c.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char why[512];

static void sample(struct vu_state *s)
{
	memset(s, 0, sizeof(*s));
	s->format_version = VU_STATE_FORMAT;
	s->min_reader_version = VU_STATE_MIN_READER;
	strcpy(s->writer, "test");
	strcpy(s->device_type, "virtio-blk");
	strcpy(s->device_id, "data");
	s->rings.features = 0x100000244ull;
	s->rings.nr = 2;
	s->rings.q[0].last_avail = 65535;
	s->rings.q[0].used_idx = 65535;
	s->rings.q[0].started = true;
	s->rings.q[1].last_avail = 7;
	s->rings.q[1].used_idx = 7;
	s->counters =
	    (struct virtio_blk_counters){.requests = 1234, .bytes = 1ull << 40, .errors = 3};
	strcpy(s->image.path, "/srv/img/data.raw");
	s->image.size = 16ull << 20;
	s->image.readonly = true;
}

static void test_state_round_trips(void **unused)
{
	struct vu_state in, out;
	uint8_t *buf;
	size_t len;

	sample(&in);
	assert_int_equal(vu_state__encode(&in, &buf, &len), 0);
	assert_int_equal(vu_state__decode(buf, len, &out, why, sizeof(why)), 0);
	free(buf);
	assert_int_equal(out.format_version, VU_STATE_FORMAT);
	assert_int_equal(out.min_reader_version, VU_STATE_MIN_READER);
	assert_string_equal(out.writer, "test");
	assert_string_equal(out.device_id, "data");
	assert_int_equal(out.rings.features, in.rings.features);
	assert_int_equal(out.rings.nr, 2);
	assert_int_equal(out.rings.q[0].last_avail, 65535);
	assert_true(out.rings.q[0].started);
	assert_int_equal(out.rings.q[1].used_idx, 7);
	assert_false(out.rings.q[1].started);
	assert_memory_equal(&out.counters, &in.counters, sizeof(in.counters));
	assert_string_equal(out.image.path, in.image.path);
	assert_int_equal(out.image.size, in.image.size);
	assert_true(out.image.readonly);
	assert_false(out.has_servicings);
}

/* Field 6 of DeviceState is what the next format adds (servicings = 5):
 * this build's reader skips it, the next one's reads it. */
static void test_state_field_of_the_next_format(void **unused)
{
	struct vu_state in, out;
	uint8_t *buf, *more;
	size_t len;

	sample(&in);
	assert_int_equal(vu_state__encode(&in, &buf, &len), 0);
	more = realloc(buf, len + 2);
	assert_non_null(more);
	more[len] = 6 << 3; /* field 6, varint */
	more[len + 1] = 5;
	assert_int_equal(vu_state__decode(more, len + 2, &out, why, sizeof(why)), 0);
	free(more);
	assert_int_equal(out.counters.requests, 1234);
#ifdef PARAVISOR_STATE_NEXT
	assert_true(out.has_servicings);
	assert_int_equal(out.servicings, 5);
#else
	assert_false(out.has_servicings);
#endif
}

static void test_state_skips_fields_no_build_knows(void **unused)
{
	struct vu_state in, out;
	uint8_t *buf, *more;
	size_t len;

	sample(&in);
	assert_int_equal(vu_state__encode(&in, &buf, &len), 0);
	/* Field 99 as a varint (tag 0x318: 0x98 0x06), then a string field 98. */
	more = realloc(buf, len + 8);
	assert_non_null(more);
	memcpy(more + len, "\x98\x06\x2a\x92\x06\x02hi", 8);
	assert_int_equal(vu_state__decode(more, len + 8, &out, why, sizeof(why)), 0);
	free(more);
	assert_string_equal(out.image.path, "/srv/img/data.raw");
}

#ifdef PARAVISOR_STATE_NEXT
static void test_state_next_carries_servicings(void **unused)
{
	struct vu_state in, out;
	uint8_t *buf;
	size_t len;

	sample(&in);
	in.has_servicings = true;
	in.servicings = 3;
	assert_int_equal(vu_state__encode(&in, &buf, &len), 0);
	assert_int_equal(vu_state__decode(buf, len, &out, why, sizeof(why)), 0);
	free(buf);
	assert_true(out.has_servicings);
	assert_int_equal(out.servicings, 3);
}
#endif

static void test_state_for_newer_readers_is_refused(void **unused)
{
	struct vu_state in, out;
	uint8_t *buf;
	size_t len;

	sample(&in);
	in.format_version = 7;
	in.min_reader_version = VU_STATE_FORMAT + 1;
	assert_int_equal(vu_state__encode(&in, &buf, &len), 0);
	assert_int_equal(vu_state__decode(buf, len, &out, why, sizeof(why)),
			 VHOST_USER_STATE_E_TOO_NEW);
	free(buf);
	assert_non_null(strstr(why, "state format 7 from test needs a reader of format"));
	assert_non_null(strstr(why, "this build reads up to format"));
	assert_non_null(
	    strstr(vhost_user_state__reason(VHOST_USER_STATE_E_TOO_NEW), "newer readers"));
}

static void test_state_newer_but_readable_is_loaded(void **unused)
{
	struct vu_state in, out;
	uint8_t *buf;
	size_t len;

	sample(&in);
	in.format_version = 40; /* a much later writer that kept old readers */
	assert_int_equal(vu_state__encode(&in, &buf, &len), 0);
	assert_int_equal(vu_state__decode(buf, len, &out, why, sizeof(why)), 0);
	free(buf);
	assert_int_equal(out.format_version, 40);
}

static void test_state_malformed_is_refused(void **unused)
{
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff};
	struct vu_state in, out;
	uint8_t *buf;
	size_t len;

	assert_int_equal(vu_state__decode(garbage, sizeof(garbage), &out, why, sizeof(why)),
			 VHOST_USER_STATE_E_MALFORMED);
	assert_non_null(strstr(why, "not a DeviceState message"));
	/* An empty message has no version. */
	assert_int_equal(vu_state__decode(garbage, 0, &out, why, sizeof(why)),
			 VHOST_USER_STATE_E_MALFORMED);
	assert_non_null(strstr(why, "no format version"));
	sample(&in);
	strcpy(in.device_type, "virtio-gpu");
	assert_int_equal(vu_state__encode(&in, &buf, &len), 0);
	assert_int_equal(vu_state__decode(buf, len, &out, why, sizeof(why)),
			 VHOST_USER_STATE_E_OTHER);
	free(buf);
	assert_non_null(strstr(why, "a state of a virtio-gpu device"));
}

/* A NIC's state: its rings, MAC, counters and the backend whose socket the
 * new paravisor is handed; none of the disk's fields. */
static void test_net_state_round_trips(void **unused)
{
	struct vu_state in, out;
	uint8_t *buf;
	size_t len;

	sample(&in);
	strcpy(in.device_type, "virtio-net");
	strcpy(in.device_id, "net0");
	memcpy(in.mac, (uint8_t[]){0x52, 0x54, 0x00, 0xab, 0xcd, 0xef}, 6);
	strcpy(in.net_backend, "socket");
	in.net_counters = (struct virtio_net_stats){.rx_packets = 10,
						    .rx_bytes = 1ull << 33,
						    .rx_drops = 2,
						    .tx_packets = 20,
						    .tx_bytes = 3000,
						    .tx_drops = 1,
						    .tx_errors = 4};
	assert_int_equal(vu_state__encode(&in, &buf, &len), 0);
	assert_int_equal(vu_state__decode(buf, len, &out, why, sizeof(why)), 0);
	free(buf);
	assert_string_equal(out.device_type, "virtio-net");
	assert_string_equal(out.device_id, "net0");
	assert_int_equal(out.rings.nr, 2);
	assert_int_equal(out.rings.q[0].last_avail, 65535);
	assert_int_equal(out.rings.q[1].used_idx, 7);
	assert_memory_equal(out.mac, in.mac, 6);
	assert_string_equal(out.net_backend, "socket");
	assert_memory_equal(&out.net_counters, &in.net_counters, sizeof(in.net_counters));
	assert_string_equal(out.image.path, "");
	assert_int_equal(out.counters.requests, 0);
}

/* A virtio-net state whose net part is missing is malformed. */
static void test_net_state_without_its_part_is_refused(void **unused)
{
	Vmmd__Paravisor__V1__DeviceState d = VMMD__PARAVISOR__V1__DEVICE_STATE__INIT;
	struct vu_state out;
	uint8_t buf[64];
	size_t len;

	d.has_format_version = d.has_min_reader_version = true;
	d.format_version = d.min_reader_version = 1;
	d.device_type = "virtio-net";
	len = vmmd__paravisor__v1__device_state__pack(&d, buf);
	assert_int_equal(vu_state__decode(buf, len, &out, why, sizeof(why)),
			 VHOST_USER_STATE_E_MALFORMED);
	assert_non_null(strstr(why, "a virtio-net state without its net part"));
}

/* A queue whose ring index is above 16 bits, crafted with protobuf-c. */
static void test_state_with_a_bad_ring_index_is_refused(void **unused)
{
	Vmmd__Paravisor__V1__DeviceState d = VMMD__PARAVISOR__V1__DEVICE_STATE__INIT;
	Vmmd__Paravisor__V1__BlkState b = VMMD__PARAVISOR__V1__BLK_STATE__INIT;
	Vmmd__Paravisor__V1__QueueState q = VMMD__PARAVISOR__V1__QUEUE_STATE__INIT, *qp = &q;
	struct vu_state out;
	uint8_t buf[256];
	size_t len;

	d.has_format_version = d.has_min_reader_version = true;
	d.format_version = d.min_reader_version = 1;
	d.device_type = "virtio-blk";
	d.blk = &b;
	b.n_queues = 1;
	b.queues = &qp;
	q.has_last_avail = true;
	q.last_avail = 0x11234;
	len = vmmd__paravisor__v1__device_state__get_packed_size(&d);
	assert_true(len <= sizeof(buf));
	vmmd__paravisor__v1__device_state__pack(&d, buf);
	assert_int_equal(vu_state__decode(buf, len, &out, why, sizeof(why)),
			 VHOST_USER_STATE_E_MALFORMED);
	assert_non_null(strstr(why, "is not a split ring's"));
	/* And a virtio-blk state without its blk part. */
	d.blk = NULL;
	len = vmmd__paravisor__v1__device_state__get_packed_size(&d);
	vmmd__paravisor__v1__device_state__pack(&d, buf);
	assert_int_equal(vu_state__decode(buf, len, &out, why, sizeof(why)),
			 VHOST_USER_STATE_E_MALFORMED);
	assert_non_null(strstr(why, "without its blk part"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_state_round_trips),
	    cmocka_unit_test(test_state_field_of_the_next_format),
	    cmocka_unit_test(test_state_skips_fields_no_build_knows),
#ifdef PARAVISOR_STATE_NEXT
	    cmocka_unit_test(test_state_next_carries_servicings),
#endif
	    cmocka_unit_test(test_state_for_newer_readers_is_refused),
	    cmocka_unit_test(test_state_newer_but_readable_is_loaded),
	    cmocka_unit_test(test_state_malformed_is_refused),
	    cmocka_unit_test(test_net_state_round_trips),
	    cmocka_unit_test(test_net_state_without_its_part_is_refused),
	    cmocka_unit_test(test_state_with_a_bad_ring_index_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
