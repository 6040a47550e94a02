/* net/slirp.c — libslirp backend.  libslirp is not thread-safe: every call
 * into it (input, poll, timers, save/load) happens on the device thread. */
#include "net/slirp.h"

#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Frames slirp produced while the guest had no receive buffers; more are
 * dropped (TCP retransmits them). */
#define SLIRP_BACKLOG 256

struct slirp_timer {
	struct slirp_timer *next;
	int64_t expire_ms; /* -1: not armed */
	SlirpTimerId id;
	void *cb_opaque;
	SlirpTimerCb cb; /* pre-v4 style timer, or NULL */
};

struct slirp_frame {
	size_t len;
	uint8_t data[];
};

struct net_slirp {
	struct net_backend be;
	Slirp *slirp;
	int notify_fd;
	struct slirp_timer *timers;
	struct slirp_frame *backlog[SLIRP_BACKLOG];
	unsigned int bl_head, bl_count;
	struct pollfd *fds; /* valid between poll_fill and poll_done */
	int nfds, maxfds;
	struct net_slirp_fwd fwd[NET_SLIRP_MAX_FWD]; /* to stop and start listening */
	int nr_fwd;
	bool listening;
};

static int64_t slirp_cb__clock_ns(void *opaque)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static ssize_t slirp_cb__send_packet(const void *buf, size_t len, void *opaque)
{
	struct net_slirp *s = opaque;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct slirp_frame *f;

	/* Keep frame order: nothing overtakes the backlog. */
	if (!s->bl_count && s->be.rx && s->be.rx(s->be.rx_opaque, &iov, 1, len) != -EAGAIN)
		return len;
	if (s->bl_count == SLIRP_BACKLOG) {
		s->be.stats.rx_dropped++;
		return len;
	}
	f = malloc(sizeof(*f) + len);
	if (!f) {
		s->be.stats.rx_dropped++;
		return len;
	}
	f->len = len;
	memcpy(f->data, buf, len);
	s->backlog[(s->bl_head + s->bl_count) % SLIRP_BACKLOG] = f;
	s->bl_count++;
	return len;
}

static void slirp_cb__guest_error(const char *msg, void *opaque)
{
	struct net_slirp *s = opaque;

	pr_warn_once("%s: slirp: guest error: %s", s->be.name, msg);
}

static struct slirp_timer *slirp__timer_add(struct net_slirp *s)
{
	struct slirp_timer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->expire_ms = -1;
	t->next = s->timers;
	s->timers = t;
	return t;
}

static void *slirp_cb__timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct slirp_timer *t = slirp__timer_add(opaque);

	if (t) {
		t->cb = cb;
		t->cb_opaque = cb_opaque;
	}
	return t;
}

static void *slirp_cb__timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct slirp_timer *t = slirp__timer_add(opaque);

	if (t) {
		t->id = id;
		t->cb_opaque = cb_opaque;
	}
	return t;
}

static void slirp_cb__timer_free(void *timer, void *opaque)
{
	struct net_slirp *s = opaque;

	for (struct slirp_timer **p = &s->timers; *p; p = &(*p)->next) {
		if (*p == timer) {
			*p = ((struct slirp_timer *)timer)->next;
			free(timer);
			return;
		}
	}
}

static void slirp_cb__timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	((struct slirp_timer *)timer)->expire_ms = expire_ms;
}

static void slirp_cb__register_poll_fd(int fd, void *opaque)
{
}
static void slirp_cb__unregister_poll_fd(int fd, void *opaque)
{
}

static void slirp_cb__notify(void *opaque)
{
	struct net_slirp *s = opaque;
	uint64_t one = 1;

	if (write(s->notify_fd, &one, sizeof(one)) < 0)
		pr_debug("%s: slirp notify: %s", s->be.name, strerror(errno));
}

static const SlirpCb slirp_callbacks = {
    .send_packet = slirp_cb__send_packet,
    .guest_error = slirp_cb__guest_error,
    .clock_get_ns = slirp_cb__clock_ns,
    .timer_new = slirp_cb__timer_new,
    .timer_free = slirp_cb__timer_free,
    .timer_mod = slirp_cb__timer_mod,
    .register_poll_fd = slirp_cb__register_poll_fd,
    .unregister_poll_fd = slirp_cb__unregister_poll_fd,
    .notify = slirp_cb__notify,
    .timer_new_opaque = slirp_cb__timer_new_opaque,
};

/* Fires expired timers; a callback may add, modify or free timers, so the
 * scan restarts after each one. */
static void slirp__run_timers(struct net_slirp *s)
{
	int64_t now = slirp_cb__clock_ns(s) / 1000000;
	struct slirp_timer *t;

again:
	for (t = s->timers; t; t = t->next) {
		if (t->expire_ms >= 0 && t->expire_ms <= now) {
			t->expire_ms = -1;
			if (t->cb)
				t->cb(t->cb_opaque);
			else
				slirp_handle_timer(s->slirp, t->id, t->cb_opaque);
			goto again;
		}
	}
}

static int slirp__next_timer_ms(struct net_slirp *s)
{
	int64_t now = slirp_cb__clock_ns(s) / 1000000, best = -1;

	for (struct slirp_timer *t = s->timers; t; t = t->next) {
		if (t->expire_ms < 0)
			continue;
		int64_t d = t->expire_ms > now ? t->expire_ms - now : 0;
		if (best < 0 || d < best)
			best = d;
	}
	return best > 1000000 ? 1000000 : (int)best;
}

static int slirp__send(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	struct net_slirp *s = (struct net_slirp *)be;
	static __thread uint8_t buf[NET_FRAME_MAX];
	size_t len = 0;

	if (iovcnt == 1) {
		slirp_input(s->slirp, iov[0].iov_base, iov[0].iov_len);
		return 0;
	}
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > sizeof(buf) - len)
			return -EMSGSIZE;
		memcpy(buf + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	slirp_input(s->slirp, buf, len);
	return 0;
}

static int slirp__flush(struct net_backend *be)
{
	return 0;
}

static int slirp_cb__add_poll(int fd, int events, void *opaque)
{
	struct net_slirp *s = opaque;
	struct pollfd *p;

	if (s->nfds == s->maxfds) {
		pr_warn_once("%s: slirp: more than %d sockets; some wait a turn", s->be.name,
			     s->maxfds);
		return -1;
	}
	p = &s->fds[s->nfds];
	p->fd = fd;
	p->events = (events & SLIRP_POLL_IN ? POLLIN : 0) |
		    (events & SLIRP_POLL_OUT ? POLLOUT : 0) |
		    (events & SLIRP_POLL_PRI ? POLLPRI : 0);
	p->revents = 0;
	return s->nfds++;
}

static int slirp_cb__get_revents(int idx, void *opaque)
{
	struct net_slirp *s = opaque;
	short r;

	if (idx < 0 || idx >= s->nfds)
		return 0;
	r = s->fds[idx].revents;
	return (r & POLLIN ? SLIRP_POLL_IN : 0) | (r & POLLOUT ? SLIRP_POLL_OUT : 0) |
	       (r & POLLPRI ? SLIRP_POLL_PRI : 0) | (r & POLLERR ? SLIRP_POLL_ERR : 0) |
	       (r & POLLHUP ? SLIRP_POLL_HUP : 0);
}

static int slirp__poll_fill(struct net_backend *be, struct pollfd *fds, int max, int *timeout_ms)
{
	struct net_slirp *s = (struct net_slirp *)be;
	uint32_t timeout = *timeout_ms < 0 ? UINT32_MAX : (uint32_t)*timeout_ms;
	int t;

	if (max < 1)
		return 0;
	fds[0] = (struct pollfd){.fd = s->notify_fd, .events = POLLIN};
	s->fds = fds + 1;
	s->maxfds = max - 1;
	s->nfds = 0;
	slirp_pollfds_fill(s->slirp, &timeout, slirp_cb__add_poll, s);
	if (timeout != UINT32_MAX)
		*timeout_ms = timeout > 1000000 ? 1000000 : (int)timeout;
	t = slirp__next_timer_ms(s);
	if (t >= 0 && (*timeout_ms < 0 || t < *timeout_ms))
		*timeout_ms = t;
	return s->nfds + 1;
}

static void slirp__poll_done(struct net_backend *be, struct pollfd *fds, int n, bool poll_error)
{
	struct net_slirp *s = (struct net_slirp *)be;
	uint64_t v;

	if (n < 1)
		return;
	if (fds[0].revents & POLLIN && read(s->notify_fd, &v, sizeof(v)) < 0)
		pr_debug("%s: slirp notify read: %s", be->name, strerror(errno));
	s->fds = fds + 1;
	s->nfds = n - 1;
	slirp_pollfds_poll(s->slirp, poll_error, slirp_cb__get_revents, s);
	slirp__run_timers(s);
}

static void slirp__rx_ready(struct net_backend *be)
{
	struct net_slirp *s = (struct net_slirp *)be;

	while (s->bl_count) {
		struct slirp_frame *f = s->backlog[s->bl_head];
		struct iovec iov = {.iov_base = f->data, .iov_len = f->len};

		if (be->rx(be->rx_opaque, &iov, 1, f->len) == -EAGAIN)
			return;
		free(f);
		s->bl_head = (s->bl_head + 1) % SLIRP_BACKLOG;
		s->bl_count--;
	}
}

static int slirp__set_offload(struct net_backend *be, unsigned int offloads)
{
	return offloads ? -EOPNOTSUPP : 0;
}

struct slirp_buf {
	uint8_t *data;
	size_t len, cap, pos;
	int err;
};

static ssize_t slirp_cb__write_state(const void *p, size_t len, void *opaque)
{
	struct slirp_buf *b = opaque;

	if (b->len + len > b->cap) {
		size_t cap = (b->cap ? b->cap * 2 : 4096) + len;
		uint8_t *n = realloc(b->data, cap);

		if (!n) {
			b->err = -ENOMEM;
			return -1;
		}
		b->data = n;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, len);
	b->len += len;
	return len;
}

static ssize_t slirp_cb__read_state(void *p, size_t len, void *opaque)
{
	struct slirp_buf *b = opaque;

	if (len > b->len - b->pos) {
		b->err = -EINVAL;
		memset(p, 0, len);
		return -1;
	}
	memcpy(p, b->data + b->pos, len);
	b->pos += len;
	return len;
}

/* Saved state: a 4-byte little-endian slirp state version, then slirp's own
 * stream (connections, ARP cache, DHCP leases). */
static int slirp__save(struct net_backend *be, uint8_t **out, size_t *outlen)
{
	struct net_slirp *s = (struct net_slirp *)be;
	struct slirp_buf b = {0};
	uint32_t v = (uint32_t)slirp_state_version();
	uint8_t hdr[4] = {v, v >> 8, v >> 16, v >> 24};

	slirp_cb__write_state(hdr, sizeof(hdr), &b);
	slirp_state_save(s->slirp, slirp_cb__write_state, &b);
	if (b.err) {
		free(b.data);
		return b.err;
	}
	*out = b.data;
	*outlen = b.len;
	return 0;
}

static int slirp__load(struct net_backend *be, const uint8_t *buf, size_t len)
{
	struct net_slirp *s = (struct net_slirp *)be;
	struct slirp_buf b = {.data = (uint8_t *)buf, .len = len, .pos = 4};
	uint32_t v;
	int r;

	if (len < 4)
		return -EINVAL;
	v = buf[0] | buf[1] << 8 | buf[2] << 16 | (uint32_t)buf[3] << 24;
	if (v > (uint32_t)slirp_state_version())
		return -EINVAL;
	r = slirp_state_load(s->slirp, v, slirp_cb__read_state, &b);
	if (b.err)
		return b.err;
	return r < 0 ? r : 0;
}

static void slirp__free(struct net_backend *be)
{
	struct net_slirp *s = (struct net_slirp *)be;

	if (s->slirp)
		slirp_cleanup(s->slirp);
	while (s->timers)
		slirp_cb__timer_free(s->timers, s);
	while (s->bl_count) {
		free(s->backlog[s->bl_head]);
		s->bl_head = (s->bl_head + 1) % SLIRP_BACKLOG;
		s->bl_count--;
	}
	if (s->notify_fd >= 0)
		close(s->notify_fd);
	free(s);
}

static const struct net_backend_ops slirp_ops = {
    .kind = "slirp",
    .send = slirp__send,
    .flush = slirp__flush,
    .poll_fill = slirp__poll_fill,
    .poll_done = slirp__poll_done,
    .rx_ready = slirp__rx_ready,
    .set_offload = slirp__set_offload,
    .save = slirp__save,
    .load = slirp__load,
    .free = slirp__free,
};

int net_slirp__parse_hostfwd(const char *str, struct net_slirp_fwd *fwd)
{
	char buf[128], *p = buf, *dash, *colon, *end;
	unsigned long port;

	if (strlen(str) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", str);
	memset(fwd, 0, sizeof(*fwd));
	if (!strncmp(p, "tcp:", 4)) {
		p += 4;
	} else if (!strncmp(p, "udp:", 4)) {
		fwd->udp = true;
		p += 4;
	} else if (*p == ':') {
		p++; /* ":HOSTADDR:..." defaults to tcp as in QEMU */
	}
	dash = strchr(p, '-');
	if (!dash)
		return -EINVAL;
	*dash = '\0';
	/* host side: [ADDR]:PORT */
	colon = strrchr(p, ':');
	if (!colon)
		return -EINVAL;
	*colon = '\0';
	if (*p && inet_pton(AF_INET, p, &fwd->host_addr) != 1)
		return -EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port == 0 || port > 65535)
		return -EINVAL;
	fwd->host_port = port;
	/* guest side: [ADDR]:PORT */
	p = dash + 1;
	colon = strrchr(p, ':');
	if (!colon)
		return -EINVAL;
	*colon = '\0';
	if (*p && inet_pton(AF_INET, p, &fwd->guest_addr) != 1)
		return -EINVAL;
	port = strtoul(colon + 1, &end, 10);
	if (end == colon + 1 || *end || port == 0 || port > 65535)
		return -EINVAL;
	fwd->guest_port = port;
	return 0;
}

int net_slirp__listen(struct net_backend *be, bool on, char *err, size_t errlen)
{
	struct net_slirp *s = (struct net_slirp *)be;
	int i;

	if (s->listening == on)
		return 0;
	if (!on) {
		for (i = 0; i < s->nr_fwd; i++)
			slirp_remove_hostfwd(s->slirp, s->fwd[i].udp, s->fwd[i].host_addr,
					     s->fwd[i].host_port);
		s->listening = false;
		return 0;
	}
	for (i = 0; i < s->nr_fwd; i++) {
		const struct net_slirp_fwd *f = &s->fwd[i];

		errno = 0;
		if (slirp_add_hostfwd(s->slirp, f->udp, f->host_addr, f->host_port, f->guest_addr,
				      f->guest_port) < 0) {
			char a[INET_ADDRSTRLEN];
			int e = errno ? errno : EADDRINUSE;

			inet_ntop(AF_INET, &f->host_addr, a, sizeof(a));
			snprintf(err, errlen, "hostfwd: cannot listen on %s:%u: %s", a,
				 f->host_port, strerror(e));
			while (i--)
				slirp_remove_hostfwd(s->slirp, s->fwd[i].udp, s->fwd[i].host_addr,
						     s->fwd[i].host_port);
			return -e;
		}
	}
	s->listening = true;
	return 0;
}

struct net_backend *net_slirp__new(const char *name, const struct net_slirp_fwd *fwd, int nr_fwd,
				   char *err, size_t errlen)
{
	struct net_slirp *s = calloc(1, sizeof(*s));
	SlirpConfig cfg = {.version = 4, .restricted = 0, .in_enabled = true};

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->be.ops = &slirp_ops;
	snprintf(s->be.name, sizeof(s->be.name), "%s", name);
	s->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->notify_fd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
	inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
	inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
	inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
	inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
	cfg.vhostname = "vmmd";
	cfg.if_mtu = 1500;
	cfg.if_mru = 1500;
	s->slirp = slirp_new(&cfg, &slirp_callbacks, s);
	if (!s->slirp) {
		snprintf(err, errlen, "slirp_new failed");
		goto fail;
	}
	if (nr_fwd < 0 || nr_fwd > NET_SLIRP_MAX_FWD) {
		snprintf(err, errlen, "%d hostfwd rules (at most %d)", nr_fwd, NET_SLIRP_MAX_FWD);
		goto fail;
	}
	if (nr_fwd) /* fwd may be NULL then, which memcpy must not get */
		memcpy(s->fwd, fwd, (size_t)nr_fwd * sizeof(*fwd));
	s->nr_fwd = nr_fwd;
	if (net_slirp__listen(&s->be, true, err, errlen))
		goto fail;
	return &s->be;
fail:
	slirp__free(&s->be);
	return NULL;
}
