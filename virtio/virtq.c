/*
 * virtio/virtq.c — split virtqueues (virtio 1.2, section 2.7).
 *
 * The rings live in guest RAM and the guest may rewrite them at any moment,
 * from another vCPU, while we read them.  So every field is read exactly once
 * into a local copy, and only the copy is validated and used; nothing read
 * from the rings is ever trusted as an index or an address before it has been
 * checked against the queue size or mapped through guest_mem__ptr().
 *
 * Layouts (all little-endian):
 *   desc:  { le64 addr; le32 len; le16 flags; le16 next; } [size]
 *   avail: le16 flags; le16 idx; le16 ring[size]; le16 used_event;
 *   used:  le16 flags; le16 idx; { le32 id; le32 len; } ring[size]; le16 avail_event;
 */
#include "virtio/virtq.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4

#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY	   1

#define DESC_SIZE 16

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static int guest_error(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int guest_error(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Ring fields.  avail is 2-aligned and used 4-aligned (checked at enable),
 * so the atomics below are naturally aligned. */
static inline uint16_t *avail_flags(const struct virtq *q)
{
	return (uint16_t *)q->avail;
}

static inline uint16_t *avail_idx(const struct virtq *q)
{
	return (uint16_t *)q->avail + 1;
}

static inline uint16_t *avail_ring(const struct virtq *q, uint16_t i)
{
	return (uint16_t *)q->avail + 2 + i;
}

static inline uint16_t *used_event(const struct virtq *q)
{
	return (uint16_t *)q->avail + 2 + q->size;
}

static inline uint16_t *used_flags(const struct virtq *q)
{
	return (uint16_t *)q->used;
}

static inline uint16_t *used_idx(const struct virtq *q)
{
	return (uint16_t *)q->used + 1;
}

static inline uint32_t *used_elem(const struct virtq *q, uint16_t i)
{
	return (uint32_t *)((uint8_t *)q->used + 4 + 8 * (size_t)i);
}

static inline uint16_t *avail_event(const struct virtq *q)
{
	return (uint16_t *)((uint8_t *)q->used + 4 + 8 * (size_t)q->size);
}

static inline uint16_t load16(const uint16_t *p, int order)
{
	return le16toh(__atomic_load_n(p, order));
}

static inline void store16(uint16_t *p, uint16_t v, int order)
{
	__atomic_store_n(p, htole16(v), order);
}

/*
 * One descriptor, copied out of guest memory.  Indirect tables need not be
 * aligned, hence memcpy; the compiler barrier stops the compiler from
 * re-reading guest memory later instead of using the (validated) copy.
 */
static void desc__read(const uint8_t *table, uint32_t i, struct desc *d)
{
	uint8_t raw[DESC_SIZE];

	memcpy(raw, table + (size_t)i * DESC_SIZE, DESC_SIZE);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	memcpy(&d->addr, raw, 8);
	memcpy(&d->len, raw + 8, 4);
	memcpy(&d->flags, raw + 12, 2);
	memcpy(&d->next, raw + 14, 2);
	d->addr = le64toh(d->addr);
	d->len = le32toh(d->len);
	d->flags = le16toh(d->flags);
	d->next = le16toh(d->next);
}

int virtq__enable(struct virtq *q, char *why, size_t whylen)
{
	uint64_t n = q->size;

	if (!q->mem)
		return guest_error(why, whylen, "no guest memory");
	if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1)))
		return guest_error(why, whylen, "queue size %u is not a power of two in 1..%u",
				   q->size, VIRTQ_MAX_SIZE);
	if (q->desc_gpa % 16 || q->avail_gpa % 2 || q->used_gpa % 4)
		return guest_error(
		    why, whylen, "misaligned rings: desc %#llx avail %#llx used %#llx",
		    (unsigned long long)q->desc_gpa, (unsigned long long)q->avail_gpa,
		    (unsigned long long)q->used_gpa);

	q->desc = guest_mem__ptr(q->mem, q->desc_gpa, DESC_SIZE * n);
	q->avail = guest_mem__ptr(q->mem, q->avail_gpa, 6 + 2 * n);
	q->used = guest_mem__ptr(q->mem, q->used_gpa, 6 + 8 * n);
	if (!q->desc || !q->avail || !q->used) {
		const char *ring = !q->desc    ? "descriptor table"
				   : !q->avail ? "avail ring"
					       : "used ring";
		uint64_t gpa = !q->desc ? q->desc_gpa : !q->avail ? q->avail_gpa : q->used_gpa;

		virtq__disable(q);
		return guest_error(why, whylen, "%s at %#llx (queue size %u) is outside guest RAM",
				   ring, (unsigned long long)gpa, q->size);
	}
	q->enabled = true;
	return 0;
}

/* Indexes stay: the transport saves them, or resets them on device reset. */
void virtq__disable(struct virtq *q)
{
	q->desc = q->avail = q->used = NULL;
	q->enabled = false;
}

/* Walks the chain starting at `head`, filling e.  Nothing in q changes. */
static int virtq__walk(struct virtq *q, uint16_t head, struct virtq_elem *e, char *why,
		       size_t whylen)
{
	const uint8_t *table = q->desc;
	uint32_t max = q->size, idx = head, count = 0;
	uint64_t out_len = 0, in_len = 0;
	bool indirect = false, writable = false;
	unsigned int n = 0;
	struct desc d;

	for (;;) {
		if (++count > max)
			return guest_error(
			    why, whylen,
			    "descriptor chain from head %u loops or is longer than %s%u", head,
			    indirect ? "its indirect table, " : "the queue, ", max);
		desc__read(table, idx, &d);

		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!q->indirect)
				return guest_error(
				    why, whylen,
				    "INDIRECT descriptor but INDIRECT_DESC not negotiated");
			if (indirect)
				return guest_error(why, whylen, "nested indirect descriptor table");
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return guest_error(why, whylen,
						   "descriptor %u has both INDIRECT and NEXT", idx);
			if (d.len == 0 || d.len % DESC_SIZE || d.len / DESC_SIZE > VIRTQ_MAX_SIZE)
				return guest_error(
				    why, whylen,
				    "indirect table length %u is not a multiple of %d in 16..%d",
				    d.len, DESC_SIZE, DESC_SIZE * VIRTQ_MAX_SIZE);
			table = guest_mem__ptr(q->mem, d.addr, d.len);
			if (!table)
				return guest_error(why, whylen,
						   "indirect table %#llx+%u is outside guest RAM",
						   (unsigned long long)d.addr, d.len);
			/* The device ignores WRITE on the indirect descriptor itself
			 * (2.7.5.3.2); the chain restarts at entry 0 of the table. */
			indirect = true;
			max = d.len / DESC_SIZE;
			idx = 0;
			count = 0;
			continue;
		}

		if (d.flags & VIRTQ_DESC_F_WRITE) {
			writable = true;
			in_len += d.len;
		} else {
			if (writable)
				return guest_error(why, whylen,
						   "readable descriptor %u after a writable one",
						   idx);
			out_len += d.len;
		}
		if (out_len > UINT32_MAX || in_len > UINT32_MAX)
			return guest_error(why, whylen, "chain from head %u is longer than 4 GiB",
					   head);

		/* Zero-length buffers are legal but carry nothing: skip them. */
		if (d.len) {
			void *p = guest_mem__ptr(q->mem, d.addr, d.len);

			if (!p)
				return guest_error(
				    why, whylen,
				    "buffer %#llx+%u (descriptor %u) is outside guest RAM",
				    (unsigned long long)d.addr, d.len, idx);
			if (n >= VIRTQ_MAX_IOV)
				return guest_error(why, whylen,
						   "chain from head %u has more than %d buffers",
						   head, VIRTQ_MAX_IOV);
			e->iov[n].iov_base = p;
			e->iov[n].iov_len = d.len;
			n++;
			if (writable)
				e->in_num++;
			else
				e->out_num++;
		}

		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= max)
			return guest_error(why, whylen,
					   "descriptor %u: next index %u out of range (%u)", idx,
					   d.next, max);
		idx = d.next;
	}

	e->head = head;
	e->out_len = (uint32_t)out_len;
	e->in_len = (uint32_t)in_len;
	return 0;
}

/* A head the previous back-end took but never completed: walked again,
 * from the same (unchanged) descriptors; last_avail already counts it. */
static int virtq__pop_resubmit(struct virtq *q, struct virtq_elem *e, char *why, size_t whylen)
{
	int head = virtq_inflight__next_resubmit(q->inflight);

	e->out_num = e->in_num = 0;
	e->out_len = e->in_len = 0;
	e->resubmitted = true;
	if (head < 0 || head >= q->size)
		return guest_error(why, whylen, "inflight head %d out of range (size %u)", head,
				   q->size);
	return virtq__walk(q, (uint16_t)head, e, why, whylen);
}

int virtq__pop(struct virtq *q, struct virtq_elem *e, char *why, size_t whylen)
{
	uint16_t avail, pending, head;
	int ret;

	if (!q->enabled)
		return -EAGAIN;
	if (q->inflight && virtq_inflight__pending(q->inflight))
		return virtq__pop_resubmit(q, e, why, whylen);

	/* Acquire: the ring entries and descriptors the guest wrote before
	 * publishing idx are visible once we see idx. */
	avail = load16(avail_idx(q), __ATOMIC_ACQUIRE);
	pending = (uint16_t)(avail - q->last_avail);
	if (pending == 0)
		return -EAGAIN;
	if (pending > q->size)
		return guest_error(why, whylen, "avail index jumped by %u (from %u to %u, size %u)",
				   pending, q->last_avail, avail, q->size);

	head = load16(avail_ring(q, q->last_avail & (q->size - 1)), __ATOMIC_RELAXED);
	if (head >= q->size)
		return guest_error(why, whylen, "avail ring head %u out of range (size %u)", head,
				   q->size);

	e->out_num = e->in_num = 0;
	e->out_len = e->in_len = 0;
	e->resubmitted = false;
	ret = virtq__walk(q, head, e, why, whylen);
	if (ret)
		return ret;

	if (q->inflight)
		virtq_inflight__begin(q->inflight, head);
	q->last_avail++;
	/*
	 * With EVENT_IDX there is no "stop kicking" flag: notifications are on
	 * as long as avail_event follows last_avail.  Keeping it current here
	 * (as QEMU does) means a model that never calls virtq__set_notify()
	 * still gets a kick for every new buffer.
	 */
	if (q->event_idx && !q->notify_suppressed)
		store16(avail_event(q), q->last_avail, __ATOMIC_RELAXED);
	return 0;
}

void virtq__mark_written(struct virtq *q, const struct virtq_elem *e, uint32_t written)
{
	if (!guest_mem__tracked(q->mem))
		return;
	for (unsigned int i = e->out_num; i < e->out_num + e->in_num && written; i++) {
		uint32_t n = e->iov[i].iov_len < written ? (uint32_t)e->iov[i].iov_len : written;

		guest_mem__mark_dirty(q->mem, e->iov[i].iov_base, n);
		written -= n;
	}
}

void virtq__unpop(struct virtq *q, uint16_t head, bool resubmitted)
{
	if (resubmitted) {
		virtq_inflight__unresubmit(q->inflight);
		return;
	}
	/* A head left marked would be re-submitted by the next back-end while
	 * it is still in the avail ring: the guest would get it back twice. */
	if (q->inflight)
		virtq_inflight__cancel(q->inflight, head);
	q->last_avail--;
	if (q->event_idx && !q->notify_suppressed)
		store16(avail_event(q), q->last_avail, __ATOMIC_RELAXED);
}

void virtq__push(struct virtq *q, const struct virtq_elem *e, uint32_t written)
{
	uint32_t *elem;

	if (!q->enabled)
		return;
	elem = used_elem(q, q->used_idx & (q->size - 1));
	__atomic_store_n(&elem[0], htole32((uint32_t)e->head), __ATOMIC_RELAXED);
	__atomic_store_n(&elem[1], htole32(written), __ATOMIC_RELAXED);
	q->used_idx++;
	if (q->inflight)
		virtq_inflight__batch(q->inflight, e->head);
	/* Release: the element (and the data written into the buffers) is
	 * visible before the guest can see the new index. */
	store16(used_idx(q), q->used_idx, __ATOMIC_RELEASE);
	if (q->inflight)
		virtq_inflight__end(q->inflight, e->head, q->used_idx);
	/* A live migration must resend what the device wrote: the buffers the
	 * guest gave it to fill, and the used ring. */
	if (guest_mem__tracked(q->mem)) {
		for (unsigned int i = e->out_num; i < e->out_num + e->in_num; i++)
			guest_mem__mark_dirty(q->mem, e->iov[i].iov_base, e->iov[i].iov_len);
		guest_mem__mark_dirty(q->mem, q->used, 6 + 8 * (uint64_t)q->size);
	}
}

/* Did the used index move past `event` going from old to new? (2.7.10) */
static inline bool vring_need_event(uint16_t event, uint16_t new, uint16_t old)
{
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

bool virtq__should_notify(struct virtq *q)
{
	uint16_t old, event;
	bool valid;

	if (!q->enabled)
		return false;
	/* Our used idx store must be globally visible before we read the
	 * guest's suppression state, or we race with the guest re-enabling
	 * interrupts and both sides wait forever. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	if (!q->event_idx)
		return !(load16(avail_flags(q), __ATOMIC_RELAXED) & VIRTQ_AVAIL_F_NO_INTERRUPT);

	old = q->signalled_used;
	valid = q->signalled_used_valid;
	q->signalled_used = q->used_idx;
	q->signalled_used_valid = true;
	if (!valid)
		return true;
	event = load16(used_event(q), __ATOMIC_RELAXED);
	return vring_need_event(event, q->used_idx, old);
}

void virtq__set_notify(struct virtq *q, bool enable)
{
	if (!q->enabled)
		return;
	q->notify_suppressed = !enable;
	if (!q->event_idx)
		store16(used_flags(q), enable ? 0 : VIRTQ_USED_F_NO_NOTIFY, __ATOMIC_RELAXED);
	else if (enable)
		store16(avail_event(q), q->last_avail, __ATOMIC_RELAXED);
	/* The flag/avail_event store must be visible before the caller
	 * re-reads avail idx (virtq__has_avail), or a buffer added in between
	 * is neither kicked nor seen. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool virtq__has_avail(struct virtq *q)
{
	if (!q->enabled)
		return false;
	if (q->inflight && virtq_inflight__pending(q->inflight))
		return true;
	return load16(avail_idx(q), __ATOMIC_ACQUIRE) != q->last_avail;
}
