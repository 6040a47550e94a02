/* paravisor/vu_state.h — the paravisor's device state (paravisor/state.proto)
 * as one build hands it to the next during servicing: encoding, the version
 * rules, and the glue that offers it through vhost-user DEVICE_STATE.
 *
 * This build writes format VU_STATE_FORMAT and reads every format whose
 * min_reader_version is at most that.  The next build (paravisor-next,
 * PARAVISOR_STATE_NEXT) writes format 2, which adds "servicings": older
 * readers skip the field they do not know, which is what they may do,
 * since the next build leaves min_reader_version at 1. */
#ifndef VMMD_PARAVISOR_VU_STATE_H
#define VMMD_PARAVISOR_VU_STATE_H

#include "paravisor/vhost_user.h"
#include "paravisor/vu_blk.h"
#include "virtio/blk.h"
#include "virtio/net.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef PARAVISOR_STATE_NEXT
#define VU_STATE_FORMAT 2
#else
#define VU_STATE_FORMAT 1
#endif
/* The oldest reader of what we write: every field since format 1 is one a
 * reader may ignore. */
#define VU_STATE_MIN_READER 1

struct vu_state {
	uint32_t format_version;
	uint32_t min_reader_version;
	char writer[64];
	char device_type[24];
	char device_id[32];
	struct vhost_user_rings rings;
	/* virtio-blk */
	struct virtio_blk_counters counters;
	struct vu_blk_info image;
	/* virtio-net */
	struct virtio_net_stats net_counters;
	uint8_t mac[6];
	char net_backend[16]; /* "socket" (a netstack's), "tap" or "slirp" */
	/* Format 2 (the next build): servicings this state went through.
	 * Decoded only by a build that knows it. */
	bool has_servicings;
	uint32_t servicings;
};

/* Packs s into a malloc'd buffer.  0 or negative errno. */
int vu_state__encode(const struct vu_state *s, uint8_t **buf, size_t *len);

/* Unpacks and checks the version rules.  0, or a VHOST_USER_STATE_E_*
 * code (virtio/vhost_user_state.h) with why. */
int vu_state__decode(const uint8_t *buf, size_t len, struct vu_state *s, char *why, size_t whylen);

/* A running device's state source and sink. */
struct vu_state_dev {
	struct virtio_device *vdev; /* a virtio-blk or virtio-net model */
	struct vu_blk_info image;   /* a disk's */
	uint8_t mac[6];		    /* a NIC's */
	char net_backend[16];	    /* a NIC's: "socket", "tap" or "slirp" */
	bool has_servicings;	    /* the next build's field, as last loaded */
	uint32_t servicings;
	/* Test hooks (tests/integration/paravisor-service.sh): */
	bool fail_restore; /* --test-fail-restore, or --test-fail-restore-id
			    * naming this device: refuse every state */
	bool too_new_once; /* --test-state-too-new: the first state saved
			    * claims a reader version no build has */
};

/* Offers DEVICE_STATE on vu for d's device. */
void vu_state__attach(struct vhost_user *vu, struct vu_state_dev *d);

#endif
