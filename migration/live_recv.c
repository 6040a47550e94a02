/* migration/live_recv.c — vmm --incoming HOST:PORT: the destination of a live
 * migration.  The VM and its devices exist but nothing ran; this fills RAM
 * and state from the source, and returns 0 only after the source said GO,
 * so main starts the vCPUs.  Any failure before GO: the source resumes and
 * this VM is discarded (vmm exits without having run the guest). */
#include "common/log.h"
#include "migration/live.h"
#include "migration/saved_state.h"
#include "migration/stream.h"
#include "migration/thread_nice.h"
#include "vmm/vm.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RECV_ACCEPT_MS (600 * 1000) /* how long --incoming waits for a source */
#define RECV_IDLE_MS (60 * 1000)    /* silence mid-migration that ends it */
#define RECV_JOIN_MS (10 * 1000)    /* for the source's extra connections */
#define RECV_MAX_CHANNELS 16
#define RECV_THP_KNOB "/sys/kernel/mm/transparent_hugepage/shmem_enabled"

struct recv_ctx;

/* Where page batches go, per connection (recv__next). */
struct recv_sink {
	struct vm *vm;
	bool through_fd;  /* recv__through_fd() */
	uint8_t *scratch; /* MIG_BATCH_PAGES pages, when through_fd */
	uint64_t pages;   /* pages received */
};

/* An extra RAM connection (live.h: CHANNELS), drained on its own thread. */
struct recv_chan {
	struct recv_ctx *x;
	struct mig_stream *s;
	pthread_t tid;
	bool started, ended;
	unsigned int syncs; /* SYNC records read (under x->lock) */
	struct recv_sink k;
	int err;
	char why[256];
};

/* What recv__run needs besides the control connection. */
struct recv_ctx {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a channel read a SYNC or ended */
	unsigned int syncs;  /* SYNC records read on the control connection */
	int lfd;
	const char *addr;
	const struct tls_files *tls;
	struct recv_sink k; /* the control connection's */
	unsigned int nr_chan;
	struct recv_chan chan[RECV_MAX_CHANNELS];
	int old_nice; /* this thread's nice value before the migration */
};

/* How pages get into guest RAM.  Through the memfd (pwrite) the kernel
 * allocates each page and copies into it, without zeroing it first and
 * without a page fault: first-touching the shared mapping (fault, clear,
 * then the copy) was about half of the destination's time.  But when the
 * host gives shmem huge pages only to mappings that ask (shmem_enabled
 * "advise", as vm.c does), writes through the file would leave the guest on
 * 4 KiB pages: the socket is read straight into the mapping then, a fault
 * per 2 MiB. */
static bool recv__through_fd(const struct vm *vm)
{
	char knob[128] = "";
	FILE *f;

	/* Prefaulted RAM is there already: no fault, no clearing to avoid. */
	if (vm->ram_private || vm->mem_fd < 0 || vm->cfg->prefault)
		return false;
	f = fopen(RECV_THP_KNOB, "re");
	if (f) {
		if (!fgets(knob, sizeof(knob), f))
			knob[0] = 0;
		fclose(f);
	}
	return !strstr(knob, "[advise]");
}

static int recv__sink_init(struct recv_sink *k, struct vm *vm, bool through_fd)
{
	*k = (struct recv_sink){ .vm = vm, .through_fd = through_fd };
	if (through_fd)
		k->scratch = malloc((size_t)MIG_BATCH_PAGES * MIG_PAGE);
	return through_fd && !k->scratch ? -ENOMEM : 0;
}

static void recv__sink_fini(struct recv_sink *k)
{
	free(k->scratch);
	k->scratch = NULL;
}

/* One run of pages: spliced into the memfd over plain TCP (no copy to user
 * space), else read into the mapping, or into scratch and written. */
static int recv__run_in(struct recv_sink *k, struct mig_stream *s, uint64_t off, size_t len)
{
	uint8_t *dst = k->through_fd ? k->scratch : k->vm->ram + off;
	int err = -EOPNOTSUPP;

	if (k->through_fd)
		err = mig_stream__splice_to(s, k->vm->mem_fd, off, len, RECV_IDLE_MS);
	if (err != -EOPNOTSUPP)
		return err;
	err = mig_stream__read(s, dst, len, RECV_IDLE_MS);

	while (!err && k->through_fd && len) {
		ssize_t n = pwrite(k->vm->mem_fd, dst, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		dst += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return err;
}

/* A checked batch's pages straight into the guest's mapping: the runs of
 * consecutive pages as one iovec each, all in one read where they have
 * arrived (a dirty round's pages are mostly single: a read per page cost
 * more than the copy in the lab). */
static int recv__pages_mapped(struct recv_sink *k, struct mig_stream *s, const uint64_t *ents,
			      uint32_t n)
{
	struct iovec iov[MIG_BATCH_PAGES];
	int nr = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint8_t *p = k->vm->ram + (ents[i] & ~MIG_PAGE_ZERO);

		if (ents[i] & MIG_PAGE_ZERO)
			memset(p, 0, MIG_PAGE);
		else if (nr && (uint8_t *)iov[nr - 1].iov_base + iov[nr - 1].iov_len == p)
			iov[nr - 1].iov_len += MIG_PAGE;
		else
			iov[nr++] = (struct iovec){ p, MIG_PAGE };
	}
	return nr ? mig_stream__readv(s, iov, nr, RECV_IDLE_MS) : 0;
}

/* A batch (live.h: PAGES) of len bytes, read straight into guest RAM (or
 * the scratch buffer in front of the memfd): every entry is checked before
 * any page is read, and runs of consecutive pages go in one read. */
static int recv__pages(struct recv_sink *k, struct mig_stream *s, size_t len, const char *who,
		       char *why, size_t wlen)
{
	uint64_t ents[MIG_BATCH_PAGES], run_off = 0;
	size_t data, run_len = 0;
	uint32_t n;
	int err;

	if (len < 4)
		goto bad;
	err = mig_stream__read(s, &n, 4, RECV_IDLE_MS);
	n = le32toh(n);
	if (!err && (n > MIG_BATCH_PAGES || len < 4 + (size_t)n * 8))
		goto bad;
	if (!err)
		err = mig_stream__read(s, ents, (size_t)n * 8, RECV_IDLE_MS);
	if (err)
		goto io;
	data = 4 + (size_t)n * 8;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t e = ents[i] = le64toh(ents[i]);

		if ((e & ~MIG_PAGE_ZERO) >= k->vm->ram_size ||
		    (e & (MIG_PAGE - 1) & ~MIG_PAGE_ZERO))
			goto bad;
		if (!(e & MIG_PAGE_ZERO))
			data += MIG_PAGE;
	}
	if (data != len)
		goto bad;
	if (!k->through_fd) {
		err = recv__pages_mapped(k, s, ents, n);
		if (err)
			goto io;
		k->pages += n;
		return 0;
	}
	for (uint32_t i = 0; i <= n; i++) {
		uint64_t e = i < n ? ents[i] : MIG_PAGE_ZERO;

		if (!(e & MIG_PAGE_ZERO) && run_len && e == run_off + run_len) {
			run_len += MIG_PAGE;
			continue;
		}
		err = run_len ? recv__run_in(k, s, run_off, run_len) : 0;
		if (err)
			goto io;
		run_len = 0;
		if (i < n && (e & MIG_PAGE_ZERO))
			memset(k->vm->ram + (e & ~MIG_PAGE_ZERO), 0, MIG_PAGE);
		else if (i < n)
			run_off = e, run_len = MIG_PAGE;
	}
	k->pages += n;
	return 0;
io:
	snprintf(why, wlen, "%s %s", who,
		 err == -ETIMEDOUT ? "went silent" :
		 err == -ECONNRESET ? "hung up" : "broke off: cannot write guest RAM");
	return err;
bad:
	snprintf(why, wlen, "a malformed page batch (%zu bytes): the stream is corrupt", len);
	return -EPROTO;
}

/* The next record from who: a page batch goes to guest RAM at once (and
 * *buf stays NULL), any other record's payload comes back in *buf. */
static int recv__next(struct recv_sink *k, struct mig_stream *s, const char *who,
		      uint32_t *type, uint8_t **buf, size_t *len, char *why, size_t wlen)
{
	int err;

	*buf = NULL;
	err = mig_stream__recv_header(s, type, len, RECV_IDLE_MS);
	if (err == -EPROTO) {
		snprintf(why, wlen, "a record of %zu bytes: the stream is corrupt", *len);
		return err;
	}
	if (!err && *type == MIG_PAGES)
		return recv__pages(k, s, *len, who, why, wlen);
	if (!err)
		err = mig_stream__recv_payload(s, *len, buf, RECV_IDLE_MS);
	if (err)
		snprintf(why, wlen, "%s %s", who, err == -ETIMEDOUT ? "went silent" : "hung up");
	return err;
}

static int recv__manifest(const uint8_t *buf, size_t len, Manifest **m, char *why, size_t wlen)
{
	*m = vmmd__migration__v1__manifest__unpack(NULL, len, buf);
	if (!*m) {
		snprintf(why, wlen, "the source's manifest does not parse: the stream is corrupt");
		return -EPROTO;
	}
	return 0;
}

/* A channel read a SYNC (or ended): wakes the control thread's wait. */
static void recv__chan_note(struct recv_chan *c, bool ended)
{
	pthread_mutex_lock(&c->x->lock);
	if (ended)
		c->ended = true;
	else
		c->syncs++;
	pthread_cond_broadcast(&c->x->cond);
	pthread_mutex_unlock(&c->x->lock);
}

/* SYNC on the control connection: answers once every channel read its own
 * SYNC of this round (live.h). */
static int recv__sync(struct recv_ctx *x, struct mig_stream *s, char *why, size_t wlen)
{
	int err = 0;

	pthread_mutex_lock(&x->lock);
	x->syncs++;
	for (unsigned int i = 0; i < x->nr_chan && !err; i++) {
		struct recv_chan *c = &x->chan[i];

		while (c->syncs < x->syncs && !c->ended)
			pthread_cond_wait(&x->cond, &x->lock);
		if (c->syncs < x->syncs) {
			snprintf(why, wlen, "%s", c->err ? c->why : "a RAM connection ended early");
			err = c->err ? c->err : -EPROTO;
		}
	}
	pthread_mutex_unlock(&x->lock);
	return err ? err : mig_stream__send(s, MIG_SYNCED, NULL, 0);
}

static void *recv__chan_thread(void *arg)
{
	struct recv_chan *c = arg;

	for (;;) {
		uint8_t *buf = NULL;
		uint32_t type;
		size_t len;
		int err = recv__next(&c->k, c->s, "a RAM connection", &type, &buf, &len, c->why,
				     sizeof(c->why));

		if (!err && type == MIG_SYNC)
			recv__chan_note(c, false);
		else if (!err && type != MIG_PAGES && type != MIG_DONE)
			snprintf(c->why, sizeof(c->why), "unexpected record %u on a RAM connection",
				 type),
				err = -EPROTO;
		free(buf);
		if (err)
			mig_stream__shutdown(c->s); /* the source hears of it at once */
		if (err || type == MIG_DONE) {
			c->err = err;
			recv__chan_note(c, true);
			return NULL;
		}
	}
}

/* CHANNELS: accepts the extra connections, each proving with the token
 * that it belongs to this migration, and starts draining them. */
static int recv__channels(struct vm *vm, struct recv_ctx *x, const uint8_t *p, size_t len,
			  char *why, size_t wlen)
{
	uint32_t n;

	if (len != 4 + MIG_TOKEN_LEN)
		goto bad;
	memcpy(&n, p, 4);
	n = le32toh(n);
	if (!n || n >= RECV_MAX_CHANNELS || x->nr_chan)
		goto bad;
	for (unsigned int i = 0; i < n; i++) {
		struct recv_chan *c = &x->chan[i];
		uint8_t *buf = NULL;
		uint32_t type;
		size_t jlen;
		int err;

		c->x = x;
		c->s = mig_stream__accept_on(x->lfd, x->addr, x->tls, RECV_JOIN_MS, why, wlen);
		if (!c->s)
			return -ETIMEDOUT;
		x->nr_chan = i + 1;
		err = recv__sink_init(&c->k, vm, x->k.through_fd);
		if (err) {
			snprintf(why, wlen, "out of memory for RAM connection %u", i + 1);
			return err;
		}
		err = mig_stream__recv(c->s, &type, &buf, &jlen, RECV_JOIN_MS);
		if (!err && (type != MIG_JOIN || jlen != MIG_TOKEN_LEN ||
			     memcmp(buf, p + 4, MIG_TOKEN_LEN)))
			err = -EPERM;
		free(buf);
		if (err) {
			snprintf(why, wlen, "RAM connection %u did not join this migration", i + 1);
			return err;
		}
		c->started = !pthread_create(&c->tid, NULL, recv__chan_thread, c);
		if (!c->started) {
			snprintf(why, wlen, "cannot start a thread for RAM connection %u", i + 1);
			return -EAGAIN;
		}
	}
	return 0;
bad:
	snprintf(why, wlen, "a malformed CHANNELS record: the stream is corrupt");
	return -EPROTO;
}

/* Waits for every extra connection's DONE (abort: makes them stop first);
 * returns the first one's failure, and adds their pages to *pages. */
static int recv__channels_end(struct recv_ctx *x, bool abort, uint64_t *pages, char *why,
			      size_t wlen)
{
	int err = 0;

	for (unsigned int i = 0; i < x->nr_chan; i++) {
		struct recv_chan *c = &x->chan[i];

		if (abort)
			mig_stream__shutdown(c->s);
		if (c->started)
			pthread_join(c->tid, NULL);
		c->started = false;
		if (!err && c->err && !abort) {
			err = c->err;
			snprintf(why, wlen, "%s", c->why);
		}
		*pages += c->k.pages;
		recv__sink_fini(&c->k);
		mig_stream__close(c->s);
		c->s = NULL;
	}
	x->nr_chan = 0;
	return err;
}

/* Zero guest RAM; without --prefault by giving the pages back, so that
 * zero pages the source skips cost nothing here either. */
static void recv__clear_ram(struct vm *vm)
{
	if (vm->cfg->prefault || fallocate(vm->mem_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					   0, (off_t)vm->ram_size) < 0)
		memset(vm->ram, 0, vm->ram_size);
}

static int recv__run(struct vm *vm, struct mig_stream *s, struct recv_ctx *x, char *why,
		     size_t wlen)
{
	Manifest *m = NULL;
	uint64_t pages = 0;
	uint8_t *buf = NULL;
	uint32_t type;
	size_t len;
	const char *hold;
	int err;

	err = mig_stream__recv(s, &type, &buf, &len, RECV_IDLE_MS);
	if (!err && (type != MIG_HELLO || len < 8 || memcmp(buf, MIG_MAGIC, 8)))
		err = -EPROTO;
	if (!err)
		err = recv__manifest(buf + 8, len - 8, &m, why, wlen);
	else
		snprintf(why, wlen, "the peer is not a vmm migration source");
	free(buf);
	if (!err)
		err = saved_state__check(vm, m, why, wlen);
	if (m)
		vmmd__migration__v1__manifest__free_unpacked(m, NULL);
	m = NULL;
	if (err)
		return err;
	/* Whatever firmware set-up wrote goes: RAM is exactly the source's, and
	 * the source skips zero pages in its first round.  Prefaulted RAM was
	 * zeroed before listening, so that it stays allocated. */
	if (!vm->cfg->prefault)
		recv__clear_ram(vm);
	err = recv__sink_init(&x->k, vm, recv__through_fd(vm));
	if (err)
		snprintf(why, wlen, "out of memory for a page batch");
	else
		err = mig_stream__send(s, MIG_ACCEPT, NULL, 0);
	for (;;) {
		if (err)
			return err;
		err = recv__next(&x->k, s, "the source", &type, &buf, &len, why, wlen);
		if (err)
			return err;
		if (type == MIG_PAGES) {
			continue;
		} else if (type == MIG_CHANNELS) {
			err = recv__channels(vm, x, buf, len, why, wlen);
		} else if (type == MIG_SYNC) {
			err = recv__sync(x, s, why, wlen);
		} else if (type == MIG_ERROR) {
			snprintf(why, wlen, "the source gave up: %s", (char *)buf);
			err = -ECANCELED;
		} else if (type == MIG_STATE) {
			break;
		} else {
			snprintf(why, wlen, "unexpected record %u from the source", type);
			err = -EPROTO;
		}
		free(buf);
	}
	pages = x->k.pages;
	err = recv__channels_end(x, false, &pages, why, wlen);
	if (!err)
		err = recv__manifest(buf, len, &m, why, wlen);
	free(buf);
	buf = NULL; /* freed again below when READY or GO fails */
	if (!err)
		err = saved_state__check(vm, m, why, wlen);
	if (!err)
		err = saved_state__apply(vm, m, why, wlen);
	if (m)
		vmmd__migration__v1__manifest__free_unpacked(m, NULL);
	if (err)
		return err;
	pr_info("incoming: %llu pages and the state received; ready", (unsigned long long)pages);
	/* Test hook: holds the source in stop-and-copy long enough for a test
	 * to kill this side there (tests/integration/migrate.sh). */
	hold = getenv("VMM_TEST_HOLD_READY_MS");
	if (hold && atoi(hold) > 0)
		usleep((useconds_t)atoi(hold) * 1000);
	err = mig_stream__send(s, MIG_READY, NULL, 0);
	if (!err)
		err = mig_stream__recv(s, &type, &buf, &len, RECV_IDLE_MS);
	if (!err && type != MIG_GO)
		err = -EPROTO;
	free(buf);
	if (err) {
		snprintf(why, wlen, "the source did not say GO (%s)", strerror(-err));
		return err;
	}
	/* From here on only this side runs the guest; RUNNING goes once its
	 * vCPUs do (live_recv__started). */
	return 0;
}

/* A received VM's control connection, between GO and its vCPUs running. */
static struct mig_stream *started_stream;

static int live_recv__incoming(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	struct tls_files tls = { cfg->tls_cert, cfg->tls_key, cfg->tls_ca };
	struct recv_ctx x = { .lock = PTHREAD_MUTEX_INITIALIZER,
			      .cond = PTHREAD_COND_INITIALIZER,
			      .addr = cfg->incoming,
			      .tls = &tls };
	struct mig_stream *s = NULL;
	char why[512] = "";
	uint64_t ignored = 0;
	int err;

	/* This (main) thread and the channel threads it starts; the vCPU
	 * threads, made before, keep the process's value. */
	if (thread_nice__set(cfg->incoming_nice, &x.old_nice))
		pr_warn("incoming: cannot take nice %d (no CAP_SYS_NICE): the migration shares "
			"the CPU with vCPUs as an equal",
			cfg->incoming_nice);
	/* --prefault: RAM already allocated is zeroed here, off the clock, so
	 * the pages the source sends land in RAM that is there. */
	if (cfg->prefault)
		recv__clear_ram(vm);
	/* Open until the end: the source's extra connections come later. */
	x.lfd = mig_stream__listen(cfg->incoming, why, sizeof(why));
	if (x.lfd >= 0) {
		pr_info("incoming: waiting for a migration on %s%s, receiving at nice %d",
			cfg->incoming, tls.cert ? " (mutual TLS)" : "", thread_nice__get());
		s = mig_stream__accept_on(x.lfd, cfg->incoming, &tls, RECV_ACCEPT_MS, why,
					  sizeof(why));
	}
	if (!s) {
		pr_err("incoming: %s", why);
		if (x.lfd >= 0)
			close(x.lfd);
		thread_nice__restore(x.old_nice);
		return -ECONNABORTED;
	}
	err = recv__run(vm, s, &x, why, sizeof(why));
	recv__channels_end(&x, true, &ignored, why, sizeof(why));
	recv__sink_fini(&x.k);
	close(x.lfd);
	thread_nice__restore(x.old_nice);
	if (!err) {
		started_stream = s; /* for RUNNING, once the vCPUs run */
		return 0;
	}
	pr_err("incoming: %s", why);
	mig_stream__send(s, MIG_ERROR, why, strlen(why) + 1);
	mig_stream__close(s);
	return err;
}

/* On vCPU 0's thread, just before the guest's first instruction here: the
 * source's downtime ends now, not when the state was loaded (starting the
 * threads took 10-25 ms in the lab, more than the rest of the stop). */
static void live_recv__started(struct vm *vm)
{
	if (!started_stream)
		return;
	if (mig_stream__send(started_stream, MIG_RUNNING, NULL, 0))
		pr_warn("incoming: the source did not hear RUNNING; the guest runs here anyway");
	pr_info("incoming: the guest runs here now");
	mig_stream__close(started_stream);
	started_stream = NULL;
}

static void __attribute__((constructor)) live_recv__register(void)
{
	vm__incoming_hook = live_recv__incoming;
	vm__incoming_started_hook = live_recv__started;
}
