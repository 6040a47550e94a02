/*
 * paravisor/vu_state.c — the device state of a paravisor's disk or NIC (see
 * the header): struct vu_state to and from paravisor/state.proto, and the
 * DEVICE_STATE callbacks that fill it from the running model and apply
 * what an older or newer build saved.
 *
 * A load checks everything before it changes anything, so a refused
 * state leaves the device as it started: the front-end then rolls back to
 * the old paravisor, which never stopped owning the disk.
 */
#include "paravisor/vu_state.h"

#include "common/log.h"
#include "common/why.h"
#include "virtio/vhost_user_state.h"

#ifdef PARAVISOR_STATE_NEXT
#include "paravisor/state_next.pb-c.h"
#else
#include "paravisor/state.pb-c.h"
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef Vmmd__Paravisor__V1__DeviceState pb_device;
typedef Vmmd__Paravisor__V1__BlkState pb_blk;
typedef Vmmd__Paravisor__V1__BlkCounters pb_counters;
typedef Vmmd__Paravisor__V1__QueueState pb_queue;
typedef Vmmd__Paravisor__V1__NetState pb_net;
typedef Vmmd__Paravisor__V1__NetCounters pb_net_counters;

static bool vu_state__is_net(const struct vu_state *s)
{
	return !strcmp(s->device_type, "virtio-net");
}

int vu_state__encode(const struct vu_state *s, uint8_t **buf, size_t *len)
{
	pb_device d = VMMD__PARAVISOR__V1__DEVICE_STATE__INIT;
	pb_blk b = VMMD__PARAVISOR__V1__BLK_STATE__INIT;
	pb_counters c = VMMD__PARAVISOR__V1__BLK_COUNTERS__INIT;
	pb_net n = VMMD__PARAVISOR__V1__NET_STATE__INIT;
	pb_net_counters nc = VMMD__PARAVISOR__V1__NET_COUNTERS__INIT;
	pb_queue q[VIRTIO_MAX_QUEUES], *qp[VIRTIO_MAX_QUEUES];
	unsigned int nr = s->rings.nr < VIRTIO_MAX_QUEUES ? s->rings.nr : VIRTIO_MAX_QUEUES;

	d.has_format_version = d.has_min_reader_version = true;
	d.format_version = s->format_version;
	d.min_reader_version = s->min_reader_version;
	d.writer = (char *)s->writer;
	d.device_type = (char *)s->device_type;
	d.device_id = (char *)s->device_id;
#ifdef PARAVISOR_STATE_NEXT
	d.has_servicings = s->has_servicings;
	d.servicings = s->servicings;
#endif
	for (unsigned int i = 0; i < nr; i++) {
		q[i] = (pb_queue)VMMD__PARAVISOR__V1__QUEUE_STATE__INIT;
		q[i].has_index = q[i].has_last_avail = q[i].has_used_idx = q[i].has_started = true;
		q[i].index = i;
		q[i].last_avail = s->rings.q[i].last_avail;
		q[i].used_idx = s->rings.q[i].used_idx;
		q[i].started = s->rings.q[i].started;
		qp[i] = &q[i];
	}
	if (vu_state__is_net(s)) {
		nc.has_rx_packets = nc.has_rx_bytes = nc.has_rx_drops = true;
		nc.has_tx_packets = nc.has_tx_bytes = nc.has_tx_drops = nc.has_tx_errors = true;
		nc.rx_packets = s->net_counters.rx_packets;
		nc.rx_bytes = s->net_counters.rx_bytes;
		nc.rx_drops = s->net_counters.rx_drops;
		nc.tx_packets = s->net_counters.tx_packets;
		nc.tx_bytes = s->net_counters.tx_bytes;
		nc.tx_drops = s->net_counters.tx_drops;
		nc.tx_errors = s->net_counters.tx_errors;
		n.has_features = n.has_mac = true;
		n.features = s->rings.features;
		n.n_queues = nr;
		n.queues = qp;
		n.counters = &nc;
		n.mac.len = sizeof(s->mac);
		n.mac.data = (uint8_t *)s->mac;
		n.backend = (char *)s->net_backend;
		d.net = &n;
		goto pack;
	}
	c.has_requests = c.has_bytes = c.has_errors = true;
	c.requests = s->counters.requests;
	c.bytes = s->counters.bytes;
	c.errors = s->counters.errors;
	b.has_features = b.has_image_size = b.has_read_only = true;
	b.features = s->rings.features;
	b.n_queues = nr;
	b.queues = qp;
	b.counters = &c;
	b.image_path = (char *)s->image.path;
	b.image_size = s->image.size;
	b.read_only = s->image.readonly;
	d.blk = &b;
pack:
	*len = vmmd__paravisor__v1__device_state__get_packed_size(&d);
	*buf = malloc(*len ? *len : 1);
	if (!*buf)
		return -ENOMEM;
	vmmd__paravisor__v1__device_state__pack(&d, *buf);
	return 0;
}

static int vu_state__queues(uint64_t features, pb_queue *const *queues, size_t n,
			    struct vu_state *s, char *why, size_t whylen)
{
	if (n > VIRTIO_MAX_QUEUES)
		return why__set(why, whylen, VHOST_USER_STATE_E_MALFORMED,
				"%zu queues, more than the %d a device can have", n,
				VIRTIO_MAX_QUEUES);
	s->rings.features = features;
	s->rings.nr = (unsigned int)n;
	for (size_t i = 0; i < n; i++) {
		const pb_queue *q = queues[i];

		if (q->index != i || q->last_avail > UINT16_MAX || q->used_idx > UINT16_MAX)
			return why__set(why, whylen, VHOST_USER_STATE_E_MALFORMED,
					"queue entry %zu (index %u, avail %u, used %u) is not a "
					"split ring's",
					i, q->index, q->last_avail, q->used_idx);
		s->rings.q[i].last_avail = (uint16_t)q->last_avail;
		s->rings.q[i].used_idx = (uint16_t)q->used_idx;
		s->rings.q[i].started = q->started;
	}
	return 0;
}

static int vu_state__net(const pb_net *n, struct vu_state *s, char *why, size_t whylen)
{
	int err;

	if (!n)
		return why__set(why, whylen, VHOST_USER_STATE_E_MALFORMED,
				"a virtio-net state without its net part");
	err = vu_state__queues(n->features, n->queues, n->n_queues, s, why, whylen);
	if (err)
		return err;
	if (n->has_mac && n->mac.len == sizeof(s->mac))
		memcpy(s->mac, n->mac.data, sizeof(s->mac));
	snprintf(s->net_backend, sizeof(s->net_backend), "%s", n->backend ? n->backend : "");
	if (n->counters) {
		s->net_counters.rx_packets = n->counters->rx_packets;
		s->net_counters.rx_bytes = n->counters->rx_bytes;
		s->net_counters.rx_drops = n->counters->rx_drops;
		s->net_counters.tx_packets = n->counters->tx_packets;
		s->net_counters.tx_bytes = n->counters->tx_bytes;
		s->net_counters.tx_drops = n->counters->tx_drops;
		s->net_counters.tx_errors = n->counters->tx_errors;
	}
	return 0;
}

static int vu_state__blk(const pb_blk *b, struct vu_state *s, char *why, size_t whylen)
{
	int err;

	if (!b)
		return why__set(why, whylen, VHOST_USER_STATE_E_MALFORMED,
				"a virtio-blk state without its blk part");
	err = vu_state__queues(b->features, b->queues, b->n_queues, s, why, whylen);
	if (err)
		return err;
	if (b->counters) {
		s->counters.requests = b->counters->requests;
		s->counters.bytes = b->counters->bytes;
		s->counters.errors = b->counters->errors;
	}
	snprintf(s->image.path, sizeof(s->image.path), "%s", b->image_path ? b->image_path : "");
	s->image.size = b->image_size;
	s->image.readonly = b->read_only;
	return 0;
}

int vu_state__decode(const uint8_t *buf, size_t len, struct vu_state *s, char *why, size_t whylen)
{
	pb_device *d = vmmd__paravisor__v1__device_state__unpack(NULL, len, buf);
	int err = 0;

	memset(s, 0, sizeof(*s));
	if (!d)
		return why__set(why, whylen, VHOST_USER_STATE_E_MALFORMED,
				"%zu bytes that are not a DeviceState message", len);
	if (!d->has_format_version || !d->has_min_reader_version || !d->device_type) {
		err = why__set(why, whylen, VHOST_USER_STATE_E_MALFORMED,
			       "no format version, reader version or device type");
		goto out_free;
	}
	s->format_version = d->format_version;
	s->min_reader_version = d->min_reader_version;
	snprintf(s->writer, sizeof(s->writer), "%s", d->writer ? d->writer : "an unnamed build");
	if (d->min_reader_version > VU_STATE_FORMAT) {
		err =
		    why__set(why, whylen, VHOST_USER_STATE_E_TOO_NEW,
			     "state format %u from %s needs a reader of format %u or later; "
			     "this build reads up to format %d",
			     d->format_version, s->writer, d->min_reader_version, VU_STATE_FORMAT);
		goto out_free;
	}
	snprintf(s->device_type, sizeof(s->device_type), "%s", d->device_type);
	snprintf(s->device_id, sizeof(s->device_id), "%s", d->device_id ? d->device_id : "");
	if (!strcmp(d->device_type, "virtio-blk"))
		err = vu_state__blk(d->blk, s, why, whylen);
	else if (vu_state__is_net(s))
		err = vu_state__net(d->net, s, why, whylen);
	else
		err = why__set(why, whylen, VHOST_USER_STATE_E_OTHER,
			       "a state of a %s device; this build has virtio-blk and virtio-net",
			       s->device_type);
#ifdef PARAVISOR_STATE_NEXT
	s->has_servicings = d->has_servicings;
	s->servicings = d->servicings;
#endif
out_free:
	vmmd__paravisor__v1__device_state__free_unpacked(d, NULL);
	return err;
}

/* --- DEVICE_STATE callbacks --- */

static int vu_state__save(void *opaque, const struct vhost_user_rings *rings, uint8_t **buf,
			  size_t *len)
{
	struct vu_state_dev *d = opaque;
	struct vu_state *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return -ENOMEM;
	s->format_version = VU_STATE_FORMAT;
	s->min_reader_version = VU_STATE_MIN_READER;
	if (d->too_new_once) {
		d->too_new_once = false;
		s->min_reader_version = 99;
		pr_warn("%s: test hook: this state claims to need a reader of format 99",
			d->vdev->id);
	}
	snprintf(s->writer, sizeof(s->writer), "paravisor%s (state format %d)",
#ifdef PARAVISOR_STATE_NEXT
		 "-next",
#else
		 "",
#endif
		 VU_STATE_FORMAT);
	snprintf(s->device_type, sizeof(s->device_type), "%s", d->vdev->ops->type);
	snprintf(s->device_id, sizeof(s->device_id), "%s", d->vdev->id);
	s->rings = *rings;
	if (vu_state__is_net(s)) {
		virtio_net__stats(d->vdev, &s->net_counters);
		memcpy(s->mac, d->mac, sizeof(s->mac));
		snprintf(s->net_backend, sizeof(s->net_backend), "%s", d->net_backend);
	} else {
		virtio_blk__get_counters(d->vdev, &s->counters);
		s->image = d->image;
	}
	s->has_servicings = d->has_servicings;
	s->servicings = d->servicings;
	err = vu_state__encode(s, buf, len);
	free(s);
	return err;
}

/* Is s this device's?  0 or a VHOST_USER_STATE_E_* code with why. */
static int vu_state__match(const struct vu_state_dev *d, const struct vu_state *s, uint64_t offered,
			   char *why, size_t whylen)
{
	if (strcmp(s->device_id, d->vdev->id) || strcmp(s->device_type, d->vdev->ops->type))
		return why__set(why, whylen, VHOST_USER_STATE_E_OTHER,
				"the state is of %s \"%s\", this is %s \"%s\"", s->device_type,
				s->device_id, d->vdev->ops->type, d->vdev->id);
	if (vu_state__is_net(s) && memcmp(s->mac, d->mac, sizeof(s->mac)))
		return why__set(why, whylen, VHOST_USER_STATE_E_OTHER,
				"the state is of MAC %02x:%02x:%02x:%02x:%02x:%02x, this NIC has "
				"%02x:%02x:%02x:%02x:%02x:%02x",
				s->mac[0], s->mac[1], s->mac[2], s->mac[3], s->mac[4], s->mac[5],
				d->mac[0], d->mac[1], d->mac[2], d->mac[3], d->mac[4], d->mac[5]);
	/* Only a handed backend fd (a netstack's socket, a tap) goes on to
	 * the next paravisor; a stack inside the old paravisor ended with it. */
	if (vu_state__is_net(s) &&
	    (strcmp(s->net_backend, d->net_backend) ||
	     (strcmp(s->net_backend, "socket") && strcmp(s->net_backend, "tap"))))
		return why__set(why, whylen, VHOST_USER_STATE_E_OTHER,
				"a NIC on backend \"%s\" cannot be serviced onto \"%s\": only a "
				"netstack's socket or a tap outlives its paravisor",
				s->net_backend, d->net_backend);
	if (!vu_state__is_net(s) && (strcmp(s->image.path, d->image.path) || s->image.size != d->image.size ||
	    s->image.readonly != d->image.readonly))
		return why__set(why, whylen, VHOST_USER_STATE_E_OTHER,
				"the state is of image %s (%llu bytes%s), this disk is %s (%llu "
				"bytes%s)",
				s->image.path, (unsigned long long)s->image.size,
				s->image.readonly ? ", read-only" : "", d->image.path,
				(unsigned long long)d->image.size,
				d->image.readonly ? ", read-only" : "");
	if (s->rings.features & ~offered)
		return why__set(why, whylen, VHOST_USER_STATE_E_FEATURES,
				"the guest acked features %#llx, this build offers %#llx",
				(unsigned long long)s->rings.features, (unsigned long long)offered);
	if (s->rings.nr > d->vdev->nr_queues)
		return why__set(why, whylen, VHOST_USER_STATE_E_OTHER,
				"the state has %u queues, this device %u", s->rings.nr,
				d->vdev->nr_queues);
	return 0;
}

static int vu_state__load(void *opaque, const uint8_t *buf, size_t len, uint64_t offered,
			  struct vhost_user_rings *rings, char *why, size_t whylen)
{
	struct vu_state_dev *d = opaque;
	struct vu_state *s = calloc(1, sizeof(*s));
	char more[64] = "";
	int code;

	if (!s)
		return why__set(why, whylen, VHOST_USER_STATE_E_IO, "out of memory");
	code = vu_state__decode(buf, len, s, why, whylen);
	if (!code)
		code = vu_state__match(d, s, offered, why, whylen);
	if (!code && d->fail_restore)
		code = why__set(why, whylen, VHOST_USER_STATE_E_TEST_HOOK,
				"test hook --test-fail-restore: refusing a good state");
	if (code)
		goto out_free;
	*rings = s->rings;
	if (vu_state__is_net(s)) {
		virtio_net__set_stats(d->vdev, &s->net_counters);
		pr_info("%s: pid %d loaded device state format %u from %s: rx %llu frames, tx "
			"%llu frames, %u queue(s)",
			d->vdev->id, (int)getpid(), s->format_version, s->writer,
			(unsigned long long)s->net_counters.rx_packets,
			(unsigned long long)s->net_counters.tx_packets, s->rings.nr);
		goto out_free;
	}
	virtio_blk__set_counters(d->vdev, &s->counters);
#ifdef PARAVISOR_STATE_NEXT
	/* The field this build adds, carried from one servicing to the next;
	 * a state that went through an older build lost it. */
	d->servicings = (s->has_servicings ? s->servicings : 0) + 1;
	d->has_servicings = true;
	snprintf(more, sizeof(more), "; servicings %u (%s)", d->servicings,
		 s->has_servicings ? "carried in the state" : "none in the state");
#endif
	pr_info("%s: pid %d loaded device state format %u from %s: requests %llu, bytes %llu, "
		"errors %llu, %u queue(s)%s",
		d->vdev->id, (int)getpid(), s->format_version, s->writer,
		(unsigned long long)s->counters.requests, (unsigned long long)s->counters.bytes,
		(unsigned long long)s->counters.errors, s->rings.nr, more);
out_free:
	free(s);
	return code;
}

void vu_state__attach(struct vhost_user *vu, struct vu_state_dev *d)
{
	const struct vhost_user_state_ops ops = {
	    .save = vu_state__save,
	    .load = vu_state__load,
	    .opaque = d,
	};

	vhost_user__set_state_ops(vu, &ops);
}
