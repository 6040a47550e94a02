/* migration/live_send.h — what the source of a live migration shares
 * between live_send.c (handshake, pre-copy decisions, stop-and-copy, the
 * control commands) and live_send_ram.c (moving RAM over the connections).
 * Private to those two. */
#ifndef VMMD_MIGRATION_LIVE_SEND_H
#define VMMD_MIGRATION_LIVE_SEND_H

#include "migration/live.h"
#include "migration/stream.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct vm;

#define SEND_CONNECT_MS	  10000
#define SEND_ROUNDS_KEPT  64
#define SEND_MAX_CHANNELS 16

enum send_state { MS_NONE, MS_ACTIVE, MS_COMPLETED, MS_FAILED, MS_CANCELLED };

struct round_stats {
	uint64_t pages;
	int64_t ms;
	double dirty_pages_per_s;
	unsigned int throttle_pct;
};

/* One connection carrying RAM.  Channel 0 is the control connection too;
 * page p always travels on channel (p / 64) % nr_chan, so two copies of a
 * page can never overtake each other. */
struct send_chan {
	struct live_send *ls;
	unsigned int index;
	struct mig_stream *s;
	int err;
	/* The page batch being built. */
	uint8_t hdr[4 + MIG_BATCH_PAGES * 8];
	struct iovec iov[MIG_BATCH_PAGES + 1];
	uint32_t n;
};

struct live_send {
	struct vm *vm;
	char dest[256];
	char cert[512], key[512], ca[512];
	unsigned int downtime_ms, max_rounds;
	uint64_t bandwidth; /* bytes per second; 0: as fast as the link goes */
	bool auto_converge;
	unsigned int throttle_pct, high_rounds;

	pthread_mutex_t lock; /* guards what status reads, s, cancel */
	enum send_state state;
	const char *phase;
	char error[512];
	struct mig_stream *s; /* chan[0].s, the control connection */
	bool cancel, committed;
	bool round_abort; /* a channel failed: the others stop too */
	int64_t start_ms, setup_ms, total_ms, downtime_ms_measured;
	uint64_t bytes, pages_normal, pages_zero, rounds;
	struct round_stats round[SEND_ROUNDS_KEPT];
	/* Where the downtime went, in ms: vCPUs out, device and vCPU state
	 * taken, last pages sent, the destination's restore until READY,
	 * GO until RUNNING. */
	struct {
		int64_t pause, collect, pages, restore, start;
	} stop;
	uint64_t stop_pages;

	/* RAM-linear bitmaps: what to send now, and what devices wrote. */
	uint64_t *dirty, *dev_dirty;
	uint64_t nr_pages;

	unsigned int nr_chan;
	struct send_chan chan[SEND_MAX_CHANNELS];
};

int64_t send__now_ms(void);
/* Every connection's bytes (status reads it while channels send). */
uint64_t send__bytes(struct live_send *ls);
/* Takes KVM's log and the devices' bitmap into ls->dirty; the count. */
int send__fetch_dirty(struct live_send *ls, uint64_t *count);
/* One round (all pages, or those in ls->dirty) over every connection. */
int send__round(struct live_send *ls);
/* After HELLO: the extra RAM connections; at the end, their DONE. */
int send__channels(struct live_send *ls, const struct tls_files *tls, char *why, size_t wlen);
int send__channels_done(struct live_send *ls);

#endif
