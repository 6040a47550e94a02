/* migration/live_send_ram.c — the source's RAM on its connections: page
 * batches (zero pages as flags), round 0 from the memfd's data extents,
 * later rounds from the dirty bitmap, one thread per connection, and the
 * bandwidth limit.  Page p always travels on connection (p / 64) % N. */
#include "migration/live_send.h"

#include "migration/page.h"
#include "vmm/vm.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* Every connection's bytes (status reads it while channels send). */
uint64_t send__bytes(struct live_send *ls)
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
		int64_t ahead = due_ms - (send__now_ms() - ls->start_ms);

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
	c->iov[0] = (struct iovec){c->hdr, 4 + (size_t)c->n * 8};
	for (uint32_t i = 0; i < c->n; i++) {
		uint64_t e;

		memcpy(&e, c->hdr + 4 + (size_t)i * 8, 8);
		e = le64toh(e);
		if (!(e & MIG_PAGE_ZERO))
			c->iov[iovs++] = (struct iovec){c->ls->vm->ram + e, MIG_PAGE};
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
int send__fetch_dirty(struct live_send *ls, uint64_t *count)
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
int send__round(struct live_send *ls)
{
	pthread_t tid[SEND_MAX_CHANNELS];
	bool started[SEND_MAX_CHANNELS] = {false};
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

/* After HELLO: the extra RAM connections, each introduced by the token. */
int send__channels(struct live_send *ls, const struct tls_files *tls, char *why, size_t wlen)
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
		struct mig_stream *s =
		    mig_stream__connect(ls->dest, tls, SEND_CONNECT_MS, why, wlen);

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
int send__channels_done(struct live_send *ls)
{
	int err = 0;

	for (unsigned int i = 1; !err && i < ls->nr_chan; i++)
		err = mig_stream__send(ls->chan[i].s, MIG_DONE, NULL, 0);
	return err;
}
