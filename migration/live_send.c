/* migration/live_send.c — the source of a live migration, on its own thread:
 * pre-copy rounds of RAM with KVM's dirty log plus the pages devices wrote,
 * then stop-and-copy once the rest fits the downtime limit (or after
 * max_rounds), device and vCPU state, and the READY/GO/RUNNING handshake of
 * live.h.  Control commands: "migrate", "migrate-status", "migrate-cancel". */
#include "common/log.h"
#include "migration/page.h"
#include "migration/live.h"
#include "migration/snapshot_lazy.h"
#include "migration/saved_state.h"
#include "migration/thread_nice.h"
#include "migration/stream.h"
#include "vmm/control.h"
#include "vmm/vcpu_throttle.h"
#include "vmm/vm.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SEND_CONNECT_MS 10000
#define SEND_REPLY_MS 60000 /* the destination's READY (it restores every device) */
#define SEND_MAX_ROUNDS_DEFAULT 30
#define SEND_DOWNTIME_DEFAULT_MS 300
#define SEND_ROUNDS_KEPT 64
#define SEND_MAX_CHANNELS 16
#define SEND_DOWNTIME_FLOOR_MS 5 /* last pages worth no more pre-copy rounds */

enum send_state { MS_NONE, MS_ACTIVE, MS_COMPLETED, MS_FAILED, MS_CANCELLED };
static const char *const state_names[] = { "none", "active", "completed", "failed",
					   "cancelled" };

struct round_stats {
	uint64_t pages;
	int64_t ms;
	double dirty_pages_per_s;
	unsigned int throttle_pct;
};

/* Auto-converge, QEMU's rule: two rounds in which the guest dirtied more
 * than half of what the link carried meanwhile raise the throttle. */
#define THROTTLE_FIRST_PCT 20
#define THROTTLE_STEP_PCT 10
#define THROTTLE_MAX_PCT 99

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
	int nice;     /* wanted for the migration's threads */
	int nice_now; /* what they got (the old value when not allowed) */

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

static struct live_send send_job = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Every connection's bytes (status reads it while channels send). */
static uint64_t send__bytes(struct live_send *ls)
{
	uint64_t b = 0;

	for (unsigned int i = 0; i < ls->nr_chan; i++)
		if (ls->chan[i].s)
			b += mig_stream__bytes_sent(ls->chan[i].s);
	return b;
}

/* Holds each channel's average since the start at its share of the limit. */
static void send__throttle(struct send_chan *c)
{
	struct live_send *ls = c->ls;
	uint64_t sent = mig_stream__bytes_sent(c->s);
	uint64_t share = ls->bandwidth / ls->nr_chan ? ls->bandwidth / ls->nr_chan : 1;

	for (;;) {
		int64_t due_ms = (int64_t)(sent * 1000 / share);
		int64_t ahead = due_ms - (now_ms() - ls->start_ms);

		if (ahead <= 0 || __atomic_load_n(&ls->cancel, __ATOMIC_RELAXED))
			return;
		usleep((useconds_t)(ahead > 100 ? 100 : ahead) * 1000);
	}
}

static int send__flush(struct send_chan *c)
{
	uint32_t n = htole32(c->n);
	int iovs = 1, err;

	if (!c->n)
		return 0;
	memcpy(c->hdr, &n, 4);
	c->iov[0] = (struct iovec){ c->hdr, 4 + (size_t)c->n * 8 };
	for (uint32_t i = 0; i < c->n; i++) {
		uint64_t e;

		memcpy(&e, c->hdr + 4 + (size_t)i * 8, 8);
		e = le64toh(e);
		if (!(e & MIG_PAGE_ZERO))
			c->iov[iovs++] = (struct iovec){ c->ls->vm->ram + e, MIG_PAGE };
	}
	err = mig_stream__sendv(c->s, MIG_PAGES, c->iov, iovs);
	c->n = 0;
	if (!err && c->ls->bandwidth)
		send__throttle(c);
	return err;
}

/* Queues the page at RAM offset off; a zero page travels as a flag only. */
static int send__page(struct send_chan *c, uint64_t off, bool skip_zero)
{
	struct live_send *ls = c->ls;
	bool zero = page__is_zero(ls->vm->ram + off);
	uint64_t e;

	__atomic_fetch_add(zero ? &ls->pages_zero : &ls->pages_normal, 1, __ATOMIC_RELAXED);
	if (zero && skip_zero)
		return 0;
	e = htole64(off | (zero ? MIG_PAGE_ZERO : 0));
	memcpy(c->hdr + 4 + (size_t)c->n * 8, &e, 8);
	if (++c->n == MIG_BATCH_PAGES)
		return send__flush(c);
	return 0;
}

static bool send__stopped(struct live_send *ls)
{
	return __atomic_load_n(&ls->cancel, __ATOMIC_RELAXED) ||
	       __atomic_load_n(&ls->round_abort, __ATOMIC_RELAXED);
}

static bool send__mine(const struct send_chan *c, uint64_t off)
{
	return (off / MIG_PAGE / 64) % c->ls->nr_chan == c->index;
}

/* Round 0: every page the guest ever touched (the memfd's data extents);
 * the destination's RAM starts as zeros, so zero pages need nothing. */
static int send__all(struct send_chan *c)
{
	struct live_send *ls = c->ls;
	uint64_t off = 0, size = ls->vm->ram_size;
	int err = 0;

	while (!err && off < size && !send__stopped(ls)) {
		/* After a lazy restore the memfd is not the guest's RAM: all of
		 * it is looked at (zero pages still cost nothing on the wire). */
		bool scan = ls->vm->ram_private;
		off_t data = scan ? (off_t)off : lseek(ls->vm->mem_fd, (off_t)off, SEEK_DATA), hole;

		if (data < 0)
			break;
		hole = scan ? (off_t)size : lseek(ls->vm->mem_fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > size)
			hole = (off_t)size;
		for (off = (uint64_t)data & ~(uint64_t)(MIG_PAGE - 1); !err && off < (uint64_t)hole;
		     off += MIG_PAGE)
			if (send__mine(c, off))
				err = send__page(c, off, true);
	}
	return err ? err : send__flush(c);
}

/* Takes KVM's log and the devices' bitmap into ls->dirty; returns the count. */
static int send__fetch_dirty(struct live_send *ls, uint64_t *count)
{
	uint64_t words = (ls->nr_pages + 63) / 64, n = 0;
	int err;

	memset(ls->dirty, 0, words * 8);
	err = vm__dirty_log_fetch(ls->vm, ls->dirty);
	if (err)
		return err;
	for (uint64_t i = 0; i < words; i++) {
		ls->dirty[i] |= __atomic_exchange_n(&ls->dev_dirty[i], 0, __ATOMIC_ACQ_REL);
		n += (uint64_t)__builtin_popcountll(ls->dirty[i]);
	}
	*count = n;
	return 0;
}

static int send__dirty(struct send_chan *c)
{
	struct live_send *ls = c->ls;
	uint64_t words = (ls->nr_pages + 63) / 64;
	int err = 0;

	for (uint64_t i = c->index; !err && i < words && !send__stopped(ls); i += ls->nr_chan) {
		uint64_t w = ls->dirty[i];

		while (w && !err) {
			int b = __builtin_ctzll(w);

			w &= w - 1;
			err = send__page(c, (i * 64 + (uint64_t)b) * MIG_PAGE, false);
		}
	}
	return err ? err : send__flush(c);
}

static void *send__chan_thread(void *arg)
{
	struct send_chan *c = arg;

	c->err = c->ls->rounds ? send__dirty(c) : send__all(c);
	if (c->err)
		__atomic_store_n(&c->ls->round_abort, true, __ATOMIC_RELAXED);
	return NULL;
}

/* One round (all pages, or those in ls->dirty) over every channel at once:
 * channel 0 on this thread, the others on their own. */
static int send__round(struct live_send *ls)
{
	pthread_t tid[SEND_MAX_CHANNELS];
	bool started[SEND_MAX_CHANNELS] = { false };
	int err = 0;

	__atomic_store_n(&ls->round_abort, false, __ATOMIC_RELAXED);
	for (unsigned int i = 1; i < ls->nr_chan; i++)
		started[i] = !pthread_create(&tid[i], NULL, send__chan_thread, &ls->chan[i]);
	send__chan_thread(&ls->chan[0]);
	for (unsigned int i = 0; i < ls->nr_chan; i++) {
		if (i && started[i])
			pthread_join(tid[i], NULL);
		else if (i)
			ls->chan[i].err = -EAGAIN;
		if (!err)
			err = ls->chan[i].err;
	}
	return err;
}

/* A connection to the destination.  VMM_MIGRATE_SENDFILE=1 sends long
 * runs of RAM straight from the memfd (not after a lazy restore: the memfd
 * is not RAM then).  Off by default: in the lab (L1's 6.1 kernel under
 * TCG) it cut a dirtying Linux guest's migration from 20.2 to 5.4 MB/s,
 * while on this host it only halved the send thread's CPU. */
static struct mig_stream *send__connect(struct live_send *ls, const struct tls_files *tls,
					char *why, size_t wlen)
{
	struct mig_stream *s = mig_stream__connect(ls->dest, tls, SEND_CONNECT_MS, why, wlen);
	const char *sf = getenv("VMM_MIGRATE_SENDFILE");

	if (s && !ls->vm->ram_private && ls->vm->mem_fd >= 0 && sf && *sf == '1')
		mig_stream__send_from_file(s, ls->vm->mem_fd, ls->vm->ram, ls->vm->ram_size);
	return s;
}

/* After HELLO: the extra RAM connections, each introduced by the token. */
static int send__channels(struct live_send *ls, const struct tls_files *tls, char *why,
			  size_t wlen)
{
	uint8_t msg[4 + MIG_TOKEN_LEN];
	uint32_t extra = htole32(ls->nr_chan - 1);
	int err;

	if (ls->nr_chan == 1)
		return 0;
	if (getrandom(msg + 4, MIG_TOKEN_LEN, 0) != MIG_TOKEN_LEN)
		return -errno;
	memcpy(msg, &extra, 4);
	err = mig_stream__send(ls->s, MIG_CHANNELS, msg, sizeof(msg));
	for (unsigned int i = 1; !err && i < ls->nr_chan; i++) {
		struct mig_stream *s = send__connect(ls, tls, why, wlen);

		if (!s)
			return -ECONNREFUSED;
		pthread_mutex_lock(&ls->lock);
		ls->chan[i].s = s;
		if (ls->cancel)
			mig_stream__shutdown(s);
		pthread_mutex_unlock(&ls->lock);
		err = mig_stream__send(s, MIG_JOIN, msg + 4, MIG_TOKEN_LEN);
	}
	if (err)
		snprintf(why, wlen, "opening %u connections: %s", ls->nr_chan, strerror(-err));
	return err;
}

/* The end of the extra connections' data: the destination waits for every
 * DONE before it takes the state. */
static int send__channels_done(struct live_send *ls)
{
	int err = 0;

	for (unsigned int i = 1; !err && i < ls->nr_chan; i++)
		err = mig_stream__send(ls->chan[i].s, MIG_DONE, NULL, 0);
	return err;
}

static void send__set_phase(struct live_send *ls, const char *phase)
{
	pthread_mutex_lock(&ls->lock);
	ls->phase = phase;
	pthread_mutex_unlock(&ls->lock);
}

static int send__expect(struct live_send *ls, uint32_t want, int timeout_ms, char *why,
			size_t wlen)
{
	uint8_t *buf = NULL;
	uint32_t type;
	size_t len;
	int err = mig_stream__recv(ls->s, &type, &buf, &len, timeout_ms);

	if (err)
		snprintf(why, wlen, "the destination %s", err == -ETIMEDOUT ? "did not answer in time" :
									       "hung up");
	else if (type == MIG_ERROR)
		snprintf(why, wlen, "the destination refused: %s", (char *)buf), err = -ECANCELED;
	else if (type != want)
		snprintf(why, wlen, "unexpected record %u from the destination", type), err = -EPROTO;
	free(buf);
	return err;
}

/* The end of a round: waits until the destination has read all of it.
 * Without this the last round's bytes still sitting in socket buffers
 * (megabytes on a fast link) would be drained with the guest stopped. */
static int send__sync(struct live_send *ls, char *why, size_t wlen)
{
	int err = 0;

	for (unsigned int i = 0; !err && i < ls->nr_chan; i++)
		err = mig_stream__send(ls->chan[i].s, MIG_SYNC, NULL, 0);
	if (err) {
		snprintf(why, wlen, "sending RAM: %s", strerror(-err));
		return err;
	}
	return send__expect(ls, MIG_SYNCED, SEND_REPLY_MS, why, wlen);
}

/* HELLO with the machine; the destination checks it before any RAM moves. */
static int send__hello(struct live_send *ls, char *why, size_t wlen)
{
	Manifest m = VMMD__MIGRATION__V1__MANIFEST__INIT;
	uint8_t *buf = NULL;
	size_t len;
	int err = saved_state__describe(ls->vm, &m, why, wlen);

	if (!err) {
		len = vmmd__migration__v1__manifest__get_packed_size(&m);
		buf = malloc(len + 8);
		if (!buf)
			err = -ENOMEM;
	}
	if (!err) {
		memcpy(buf, MIG_MAGIC, 8);
		vmmd__migration__v1__manifest__pack(&m, buf + 8);
		err = mig_stream__send(ls->s, MIG_HELLO, buf, len + 8);
	}
	free(buf);
	saved_state__release(&m);
	return err ? err : send__expect(ls, MIG_ACCEPT, SEND_REPLY_MS, why, wlen);
}

/* After a round: raises the vCPU throttle when the guest outruns the link. */
static void send__converge(struct live_send *ls, uint64_t dirty, uint64_t sent)
{
	unsigned int pct;

	if (!ls->auto_converge || !sent || dirty * MIG_PAGE * 2 <= sent) {
		ls->high_rounds = 0;
		return;
	}
	if (++ls->high_rounds < 2)
		return;
	ls->high_rounds = 0;
	pct = ls->throttle_pct ? ls->throttle_pct + THROTTLE_STEP_PCT : THROTTLE_FIRST_PCT;
	if (pct > THROTTLE_MAX_PCT)
		pct = THROTTLE_MAX_PCT;
	if (pct != ls->throttle_pct && !vm__throttle(ls->vm, pct)) {
		pthread_mutex_lock(&ls->lock);
		ls->throttle_pct = pct;
		pthread_mutex_unlock(&ls->lock);
	}
}

/* Stop-and-copy once the rest fits the downtime limit (QEMU's rule), but
 * not while pre-copy still converges: a round that takes at most half of
 * what the last one sent is short, and every page it moves is one the
 * stopped guest does not wait for.  Below the floor the round trip costs
 * more than it saves. */
static bool send__stop_now(const struct live_send *ls, uint64_t dirty, uint64_t last_pages,
			   uint64_t rate)
{
	uint64_t est_ms;

	if (ls->rounds >= ls->max_rounds)
		return true;
	if (!rate)
		return false;
	est_ms = dirty * MIG_PAGE / rate;
	if (est_ms > ls->downtime_ms)
		return false;
	return est_ms <= SEND_DOWNTIME_FLOOR_MS || dirty * 2 > last_pages;
}

static int send__precopy(struct live_send *ls, char *why, size_t wlen)
{
	uint64_t rate = 0; /* bytes per ms of the last round */
	uint64_t last_sent = 0; /* bytes the last round sent */
	uint64_t last_pages = 0; /* pages the last round sent */
	int err;

	for (;;) {
		int64_t t0 = now_ms();
		uint64_t b0 = send__bytes(ls), dirty = 0, r = ls->rounds;

		err = r ? send__fetch_dirty(ls, &dirty) : 0;
		if (err) {
			snprintf(why, wlen, "cannot read the dirty log: %s", strerror(-err));
			return err;
		}
		if (r)
			send__converge(ls, dirty, last_sent);
		if (r && send__stop_now(ls, dirty, last_pages, rate)) {
			/* Not sent now: these pages go with the final set. */
			for (uint64_t i = 0; i < (ls->nr_pages + 63) / 64; i++)
				__atomic_fetch_or(&ls->dev_dirty[i], ls->dirty[i], __ATOMIC_RELAXED);
			return 0;
		}
		err = send__round(ls);
		if (err) {
			snprintf(why, wlen, "sending RAM: %s", strerror(-err));
			return err;
		}
		err = send__sync(ls, why, wlen);
		if (err)
			return err;
		if (__atomic_load_n(&ls->cancel, __ATOMIC_RELAXED)) {
			snprintf(why, wlen, "cancelled");
			return -ECANCELED;
		}
		pthread_mutex_lock(&ls->lock);
		if (r < SEND_ROUNDS_KEPT) {
			int64_t ms = now_ms() - t0;

			ls->round[r].pages = r ? dirty : ls->pages_normal;
			ls->round[r].ms = ms;
			ls->round[r].dirty_pages_per_s = r && ms ? dirty * 1000.0 / (double)ms : 0;
			ls->round[r].throttle_pct = ls->throttle_pct;
		}
		ls->rounds++;
		pthread_mutex_unlock(&ls->lock);
		last_pages = r ? dirty : __atomic_load_n(&ls->pages_normal, __ATOMIC_RELAXED);
		last_sent = send__bytes(ls) - b0;
		rate = last_sent / (uint64_t)(now_ms() - t0 + 1);
	}
}

/* Guest stopped: the last dirty pages, every device's state, the handshake. */
static int send__complete(struct live_send *ls, int64_t *t_stop, char *why, size_t wlen)
{
	Manifest m = VMMD__MIGRATION__V1__MANIFEST__INIT;
	uint8_t *buf = NULL;
	uint64_t dirty;
	size_t len;
	int err;

	int64_t t;

	send__set_phase(ls, "stop-and-copy");
	*t_stop = t = now_ms();
	vm__throttle(ls->vm, 0);
	if (vm__pause(ls->vm)) {
		snprintf(why, wlen, "the VM is stopping");
		return -ESHUTDOWN;
	}
	ls->stop.pause = now_ms() - t;
	t = now_ms();
	/* Saving quiesces the devices: what they write meanwhile is marked. */
	err = saved_state__collect(ls->vm, &m, why, wlen);
	ls->stop.collect = now_ms() - t;
	t = now_ms();
	if (!err)
		err = send__fetch_dirty(ls, &dirty);
	if (!err)
		err = send__round(ls);
	if (!err)
		err = send__channels_done(ls);
	ls->stop_pages = err ? 0 : dirty;
	if (!err) {
		len = vmmd__migration__v1__manifest__get_packed_size(&m);
		buf = malloc(len + 1);
		err = buf ? 0 : -ENOMEM;
	}
	if (!err) {
		vmmd__migration__v1__manifest__pack(&m, buf);
		err = mig_stream__send(ls->s, MIG_STATE, buf, len);
	}
	free(buf);
	saved_state__release(&m);
	if (err) {
		if (!why[0])
			snprintf(why, wlen, "sending the final state: %s", strerror(-err));
		return err;
	}
	ls->stop.pages = now_ms() - t;
	t = now_ms();
	err = send__expect(ls, MIG_READY, SEND_REPLY_MS, why, wlen);
	if (err)
		return err;
	ls->stop.restore = now_ms() - t;
	t = now_ms();
	pthread_mutex_lock(&ls->lock);
	if (ls->cancel) {
		pthread_mutex_unlock(&ls->lock);
		snprintf(why, wlen, "cancelled");
		return -ECANCELED;
	}
	ls->committed = true; /* past GO the source never resumes */
	pthread_mutex_unlock(&ls->lock);
	if (mig_stream__send(ls->s, MIG_GO, NULL, 0) ||
	    send__expect(ls, MIG_RUNNING, SEND_REPLY_MS, why, wlen))
		pr_warn("migrate: GO sent but RUNNING not heard (%s); the guest is the destination's",
			why);
	ls->stop.start = now_ms() - t;
	return 0;
}

static void *live_send__thread(void *arg)
{
	struct live_send *ls = arg;
	struct tls_files tls = { ls->cert[0] ? ls->cert : NULL, ls->key, ls->ca };
	bool paused_before = vm__is_paused(ls->vm);
	int64_t t_stop = 0, t_end;
	char why[512] = "";
	int err = -ECONNREFUSED, old_nice;
	struct mig_stream *s;

	/* This thread and the channel threads it starts (which inherit it);
	 * the thread ends with the migration, so nothing is restored. */
	if (thread_nice__set(ls->nice, &old_nice))
		pr_warn("migrate: cannot give the migration's threads nice %d (no CAP_SYS_NICE): "
			"they share the CPU with the guest's vCPUs as equals (%d)",
			ls->nice, old_nice);
	pthread_mutex_lock(&ls->lock);
	ls->nice_now = thread_nice__get();
	pthread_mutex_unlock(&ls->lock);
	s = send__connect(ls, &tls, why, sizeof(why));
	pthread_mutex_lock(&ls->lock);
	ls->s = ls->chan[0].s = s;
	if (ls->cancel && s)
		mig_stream__shutdown(s);
	pthread_mutex_unlock(&ls->lock);
	if (s)
		err = send__hello(ls, why, sizeof(why));
	if (!err)
		err = send__channels(ls, &tls, why, sizeof(why));
	if (!err) {
		char lwhy[400];

		ls->setup_ms = now_ms() - ls->start_ms;
		send__set_phase(ls, "pre-copy");
		__atomic_store_n(&ls->vm->mem.dirty, ls->dev_dirty, __ATOMIC_RELEASE);
		err = vm__dirty_log(ls->vm, true, lwhy, sizeof(lwhy));
		if (err)
			snprintf(why, sizeof(why), "cannot start dirty logging: %s", lwhy);
	}
	if (!err)
		err = send__precopy(ls, why, sizeof(why));
	if (!err)
		err = send__complete(ls, &t_stop, why, sizeof(why));
	t_end = now_ms();

	if (err && !ls->committed) {
		if (s)
			mig_stream__send(s, MIG_ERROR, why, strlen(why) + 1);
		__atomic_store_n(&ls->vm->mem.dirty, NULL, __ATOMIC_RELEASE);
		vm__dirty_log(ls->vm, false, NULL, 0);
		vm__throttle(ls->vm, 0);
		if (!paused_before)
			vm__resume(ls->vm);
		pr_err("migrate to %s failed: %s; the VM runs on here", ls->dest, why);
	}
	pthread_mutex_lock(&ls->lock);
	ls->total_ms = t_end - ls->start_ms;
	if (!err || ls->committed) {
		ls->state = MS_COMPLETED;
		ls->downtime_ms_measured = t_end - t_stop;
	} else {
		ls->state = ls->cancel ? MS_CANCELLED : MS_FAILED;
		snprintf(ls->error, sizeof(ls->error), "%s", why);
	}
	ls->phase = NULL;
	ls->bytes = send__bytes(ls);
	ls->s = NULL;
	for (unsigned int i = 0; i < ls->nr_chan; i++) {
		mig_stream__close(ls->chan[i].s);
		ls->chan[i].s = NULL;
	}
	pthread_mutex_unlock(&ls->lock);
	if (!err || ls->committed) {
		/* Stays paused for good; "stop" (or a signal) ends vmm with exit 5. */
		__atomic_store_n(&ls->vm->migrated, true, __ATOMIC_RELEASE);
		pr_info("migrated to %s: %lld ms in all, %lld ms stopped, %llu rounds, %llu bytes "
			"on %u connection%s (dirty %s)",
			ls->dest, (long long)ls->total_ms, (long long)ls->downtime_ms_measured,
			(unsigned long long)ls->rounds, (unsigned long long)ls->bytes, ls->nr_chan,
			ls->nr_chan > 1 ? "s" : "", vm__dirty_log_kind(ls->vm));
	}
	return NULL;
}

/* --- control commands --- */

static json_t *live_send__status_json(struct live_send *ls)
{
	json_t *rounds = json_array(), *j;

	pthread_mutex_lock(&ls->lock);
	for (uint64_t i = 0; i < ls->rounds && i < SEND_ROUNDS_KEPT; i++)
		json_array_append_new(rounds, json_pack("{s:I, s:I, s:f, s:i}", "pages",
							(json_int_t)ls->round[i].pages, "ms",
							(json_int_t)ls->round[i].ms,
							"dirty_pages_per_s",
							ls->round[i].dirty_pages_per_s,
							"throttle_percent",
							(int)ls->round[i].throttle_pct));
	j = json_pack(
	    "{s:b, s:s, s:s?, s:s?, s:s?, s:s?, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, "
	    "s:i, s:i, s:i, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}}",
	    "ok", 1, "migration", state_names[ls->state], "phase", ls->phase, "dirty_log",
	    ls->vm ? vm__dirty_log_kind(ls->vm) : NULL, "destination",
	    ls->state == MS_NONE ? NULL : ls->dest, "error", ls->error[0] ? ls->error : NULL,
	    "setup_ms", (json_int_t)ls->setup_ms, "total_ms", (json_int_t)ls->total_ms,
	    "downtime_ms", (json_int_t)ls->downtime_ms_measured, "bytes",
	    (json_int_t)(ls->s ? send__bytes(ls) : ls->bytes), "pages_normal",
	    (json_int_t)ls->pages_normal, "pages_zero", (json_int_t)ls->pages_zero, "rounds",
	    (json_int_t)ls->rounds, "auto_converge", ls->auto_converge, "throttle_percent",
	    (int)ls->throttle_pct, "connections", (int)ls->nr_chan, "thread_nice", ls->nice_now,
	    "round_stats", rounds, "downtime_breakdown", "pause_ms", (json_int_t)ls->stop.pause,
	    "state_ms", (json_int_t)ls->stop.collect, "last_pages_ms", (json_int_t)ls->stop.pages,
	    "last_pages", (json_int_t)ls->stop_pages, "destination_restore_ms",
	    (json_int_t)ls->stop.restore, "go_to_running_ms", (json_int_t)ls->stop.start);
	pthread_mutex_unlock(&ls->lock);
	return j;
}

static json_t *live_send__start(struct vm *vm, json_t *req)
{
	struct live_send *ls = &send_job;
	const char *dest = NULL, *cert = NULL, *key = NULL, *ca = NULL;
	json_int_t downtime = SEND_DOWNTIME_DEFAULT_MS, rounds = SEND_MAX_ROUNDS_DEFAULT, bw = 0;
	json_int_t conns = 1, nice = THREAD_NICE_MIGRATION;
	int converge = 0;
	pthread_t tid;
	uint64_t words;

	if (json_unpack(req, "{s:s, s?I, s?I, s?I, s?b, s?I, s?I, s?{s:s, s:s, s:s}}",
			"destination", &dest, "downtime_limit_ms", &downtime, "max_rounds", &rounds,
			"bandwidth_limit", &bw, "auto_converge", &converge, "connections", &conns,
			"thread_nice", &nice, "tls", "cert", &cert, "key", &key, "ca", &ca) ||
	    !strchr(dest, ':') || strlen(dest) >= sizeof(ls->dest))
		return control__fail("migrate: needs \"destination\":\"host:port\", optional "
				     "\"downtime_limit_ms\", \"max_rounds\", \"bandwidth_limit\" "
				     "(bytes/s), \"auto_converge\" (bool), \"connections\", "
				     "\"thread_nice\", \"tls\":{cert,key,ca}");
	if (downtime < 1 || downtime > 600000 || rounds < 1 || rounds > 1000 || bw < 0 ||
	    conns < 1 || conns > SEND_MAX_CHANNELS || nice < -20 || nice > 19)
		return control__fail("migrate: downtime_limit_ms must be 1..600000, max_rounds "
				     "1..1000, bandwidth_limit >= 0, connections 1..%d, "
				     "thread_nice -20..19",
				     SEND_MAX_CHANNELS);
	/* RAM is read through the memfd's extents: not while a lazy restore
	 * still fills it. */
	if (vm->ram_loader && snapshot_lazy__wait(vm->ram_loader))
		return control__fail("migrate: the lazy restore's RAM did not load");
	if (cert && (strlen(cert) >= sizeof(ls->cert) || strlen(key) >= sizeof(ls->key) ||
		     strlen(ca) >= sizeof(ls->ca)))
		return control__fail("migrate: a TLS file path is too long");
	pthread_mutex_lock(&ls->lock);
	if (ls->state == MS_ACTIVE) {
		pthread_mutex_unlock(&ls->lock);
		return control__fail("migrate: a migration to %s is already running", ls->dest);
	}
	if (!ls->dirty) {
		/* Kept for the process's life: a device thread may still be
		 * marking the old bitmap when a failed migration ends. */
		ls->nr_pages = vm->ram_size / MIG_PAGE;
		words = (ls->nr_pages + 63) / 64;
		ls->dirty = calloc(words, 8);
		ls->dev_dirty = calloc(words, 8);
		if (!ls->dirty || !ls->dev_dirty) {
			pthread_mutex_unlock(&ls->lock);
			return control__fail("migrate: out of memory");
		}
		vm->mem.dirty_base = vm->ram;
		vm->mem.dirty_len = vm->ram_size;
	}
	memset(ls->dev_dirty, 0, (ls->nr_pages + 63) / 64 * 8);
	ls->vm = vm;
	snprintf(ls->dest, sizeof(ls->dest), "%s", dest);
	snprintf(ls->cert, sizeof(ls->cert), "%s", cert ? cert : "");
	snprintf(ls->key, sizeof(ls->key), "%s", key ? key : "");
	snprintf(ls->ca, sizeof(ls->ca), "%s", ca ? ca : "");
	ls->downtime_ms = (unsigned int)downtime;
	ls->max_rounds = (unsigned int)rounds;
	ls->bandwidth = (uint64_t)bw;
	ls->auto_converge = converge;
	ls->nr_chan = (unsigned int)conns;
	ls->nice = ls->nice_now = (int)nice;
	for (unsigned int i = 0; i < SEND_MAX_CHANNELS; i++)
		ls->chan[i] = (struct send_chan){ .ls = ls, .index = i };
	ls->throttle_pct = ls->high_rounds = 0;
	ls->state = MS_ACTIVE;
	ls->phase = "setup";
	ls->error[0] = 0;
	ls->cancel = ls->committed = false;
	ls->start_ms = now_ms();
	ls->setup_ms = ls->total_ms = ls->downtime_ms_measured = 0;
	ls->bytes = ls->pages_normal = ls->pages_zero = ls->rounds = 0;
	memset(&ls->stop, 0, sizeof(ls->stop));
	ls->stop_pages = 0;
	if (pthread_create(&tid, NULL, live_send__thread, ls)) {
		ls->state = MS_FAILED;
		pthread_mutex_unlock(&ls->lock);
		return control__fail("migrate: cannot start its thread");
	}
	pthread_detach(tid);
	pthread_mutex_unlock(&ls->lock);
	pr_info("migrate to %s%s: started (downtime limit %lld ms)", ls->dest,
		cert ? " (mutual TLS)" : "", (long long)downtime);
	return live_send__status_json(ls);
}
control_command("migrate", live_send__start);

static json_t *live_send__status(struct vm *vm, json_t *req)
{
	return live_send__status_json(&send_job);
}
control_command("migrate-status", live_send__status);

static json_t *live_send__cancel(struct vm *vm, json_t *req)
{
	struct live_send *ls = &send_job;

	pthread_mutex_lock(&ls->lock);
	if (ls->state != MS_ACTIVE) {
		pthread_mutex_unlock(&ls->lock);
		return control__fail("migrate-cancel: no migration is running");
	}
	if (ls->committed) {
		pthread_mutex_unlock(&ls->lock);
		return control__fail("migrate-cancel: too late, the destination runs the guest");
	}
	ls->cancel = true;
	for (unsigned int i = 0; i < ls->nr_chan; i++)
		if (ls->chan[i].s)
			mig_stream__shutdown(ls->chan[i].s);
	pthread_mutex_unlock(&ls->lock);
	return live_send__status_json(ls);
}
control_command("migrate-cancel", live_send__cancel);
