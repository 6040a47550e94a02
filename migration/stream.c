/* migration/stream.c — a TCP connection, in mutual TLS 1.3 when given
 * certificates, carrying the framed records of stream.h. */
#include "migration/stream.h"
#include "common/tcp.h"
#include "common/tls.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_S 30 /* a peer that stops reading our writes */
#define STREAM_PIPE_SIZE (1 << 20)
/* Shorter runs of guest RAM are copied: a sendfile per page costs more
 * than the copy it saves. */
#define STREAM_SENDFILE_MIN (64u << 10)

struct mig_stream {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	uint64_t sent;
	int pipe[2]; /* mig_stream__splice_to's, made on first use */
	size_t pipe_size;
	/* mig_stream__send_from_file's window: memory that is also a file. */
	int file_fd;
	const uint8_t *file_base;
	size_t file_len;
};

static struct mig_stream *stream__wrap(int fd, const struct tls_files *tls, bool server,
				       int timeout_ms, char *why, size_t wlen)
{
	struct mig_stream *s = calloc(1, sizeof(*s));
	int one = 1;

	if (!s) {
		close(fd);
		return NULL;
	}
	s->fd = fd;
	s->pipe[0] = s->pipe[1] = -1;
	s->file_fd = -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!tls || !tls->cert) {
		tcp__timeouts(fd, IO_TIMEOUT_S);
		return s;
	}
	tcp__timeouts(fd, (timeout_ms + 999) / 1000);
	s->ctx = tls__ctx_new(tls, server, why, wlen);
	if (!s->ctx)
		goto out_close;
	s->ssl = tls__handshake(s->ctx, fd, server, why, wlen);
	if (!s->ssl)
		goto out_close;
	tcp__timeouts(fd, IO_TIMEOUT_S);
	return s;
out_close:
	mig_stream__close(s);
	return NULL;
}

struct mig_stream *mig_stream__connect(const char *dest, const struct tls_files *tls,
				       int timeout_ms, char *why, size_t wlen)
{
	int fd = tcp__connect(dest, (timeout_ms + 999) / 1000, why, wlen);

	if (fd < 0)
		return NULL;
	return stream__wrap(fd, tls, false, timeout_ms, why, wlen);
}

int mig_stream__listen(const char *addr, char *why, size_t wlen)
{
	return tcp__listen(addr, 16, why, wlen);
}

struct mig_stream *mig_stream__accept_on(int lfd, const char *addr, const struct tls_files *tls,
					 int timeout_ms, char *why, size_t wlen)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	int rc = poll(&p, 1, timeout_ms);
	int fd = rc > 0 ? accept4(lfd, NULL, NULL, SOCK_CLOEXEC) : -1;

	if (fd < 0) {
		snprintf(why, wlen, "no migration connection arrived on %s within %d s", addr,
			 timeout_ms / 1000);
		return NULL;
	}
	return stream__wrap(fd, tls, true, timeout_ms, why, wlen);
}

struct mig_stream *mig_stream__accept(const char *addr, const struct tls_files *tls,
				      int timeout_ms, char *why, size_t wlen)
{
	int lfd = mig_stream__listen(addr, why, wlen);
	struct mig_stream *s;

	if (lfd < 0)
		return NULL;
	s = mig_stream__accept_on(lfd, addr, tls, timeout_ms, why, wlen);
	close(lfd);
	return s;
}

void mig_stream__close(struct mig_stream *s)
{
	if (!s)
		return;
	if (s->ssl)
		SSL_free(s->ssl);
	if (s->ctx)
		SSL_CTX_free(s->ctx);
	if (s->fd >= 0)
		close(s->fd);
	if (s->pipe[0] >= 0) {
		close(s->pipe[0]);
		close(s->pipe[1]);
	}
	free(s);
}

void mig_stream__shutdown(struct mig_stream *s)
{
	shutdown(s->fd, SHUT_RDWR);
}

uint64_t mig_stream__bytes_sent(const struct mig_stream *s)
{
	return __atomic_load_n(&s->sent, __ATOMIC_RELAXED);
}

static int stream__write(struct mig_stream *s, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n;

		if (s->ssl) {
			size_t w = 0;

			if (SSL_write_ex(s->ssl, p, len, &w) != 1) {
				ERR_clear_error();
				return -ECONNRESET;
			}
			n = (ssize_t)w;
		} else {
			n = send(s->fd, p, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return errno == EAGAIN ? -ETIMEDOUT : -ECONNRESET;
		}
		p += n;
		len -= (size_t)n;
		__atomic_fetch_add(&s->sent, (uint64_t)n, __ATOMIC_RELAXED);
	}
	return 0;
}

void mig_stream__send_from_file(struct mig_stream *s, int fd, const void *base, size_t len)
{
	s->file_fd = fd;
	s->file_base = base;
	s->file_len = len;
}

/* Plain TCP: iov[0..n) in as few sendmsg() calls as the socket takes
 * (flags: MSG_MORE when more of the record follows). */
static int stream__sendmsg(struct mig_stream *s, struct iovec *iov, int n, int flags)
{
	while (n > 0) {
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)(n > 1024 ? 1024 : n) };
		ssize_t w = sendmsg(s->fd, &msg, MSG_NOSIGNAL | (n > 1024 ? MSG_MORE : flags));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return errno == EAGAIN ? -ETIMEDOUT : -ECONNRESET;
		__atomic_fetch_add(&s->sent, (uint64_t)w, __ATOMIC_RELAXED);
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Whether len bytes at p may go out of the file window, and from where. */
static bool stream__in_file(const struct mig_stream *s, const void *p, size_t len, off_t *off)
{
	const uint8_t *b = p;

	if (s->file_fd < 0 || len < STREAM_SENDFILE_MIN || b < s->file_base ||
	    len > s->file_len || (size_t)(b - s->file_base) > s->file_len - len)
		return false;
	*off = (off_t)(b - s->file_base);
	return true;
}

/* The socket takes references to the file's pages, no copy: the reader
 * may see a page as it is later than now, which is fine for guest RAM
 * (a page written meanwhile is dirty and goes again). */
static int stream__sendfile(struct mig_stream *s, off_t off, size_t len)
{
	while (len) {
		ssize_t n = sendfile(s->fd, s->file_fd, &off, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 && errno == EAGAIN ? -ETIMEDOUT : -ECONNRESET;
		len -= (size_t)n;
		__atomic_fetch_add(&s->sent, (uint64_t)n, __ATOMIC_RELAXED);
	}
	return 0;
}

/* Plain TCP: a record's buffers, where consecutive ones make a run of at
 * least STREAM_SENDFILE_MIN in the file window, sent from the file; the
 * rest gathered into sendmsg() calls between those runs. */
static int stream__send_plain(struct mig_stream *s, struct iovec *iov, int n)
{
	int i = 0, start = 0, err = 0;

	while (!err && i < n) {
		size_t len = iov[i].iov_len;
		int j = i + 1;
		off_t off;

		while (j < n && (uint8_t *)iov[i].iov_base + len == iov[j].iov_base)
			len += iov[j++].iov_len;
		if (stream__in_file(s, iov[i].iov_base, len, &off)) {
			err = stream__sendmsg(s, iov + start, i - start, MSG_MORE);
			if (!err)
				err = stream__sendfile(s, off, len);
			start = j;
		}
		i = j;
	}
	return err ? err : stream__sendmsg(s, iov + start, n - start, 0);
}

/* TLS: gathered into 64 KiB writes, so records are full rather than one
 * per 4 KiB page. */
static int stream__tls_writev(struct mig_stream *s, const struct iovec *iov, int n)
{
	static __thread uint8_t buf[65536];
	size_t fill = 0;
	int err = 0;

	for (int i = 0; !err && i < n; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (!err && left) {
			size_t c = left < sizeof(buf) - fill ? left : sizeof(buf) - fill;

			memcpy(buf + fill, p, c);
			fill += c;
			p += c;
			left -= c;
			if (fill == sizeof(buf)) {
				err = stream__write(s, buf, fill);
				fill = 0;
			}
		}
	}
	return err || !fill ? err : stream__write(s, buf, fill);
}

int mig_stream__sendv(struct mig_stream *s, uint32_t type, const struct iovec *iov, int n)
{
	uint32_t hdr[2];
	struct iovec *all;
	size_t len = 0;
	int err;

	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	if (len > MIG_MAX_RECORD)
		return -E2BIG;
	hdr[0] = htole32(type);
	hdr[1] = htole32((uint32_t)len);
	all = malloc(sizeof(*all) * (size_t)(n + 1));
	if (!all)
		return -ENOMEM;
	all[0] = (struct iovec){ hdr, sizeof(hdr) };
	memcpy(all + 1, iov, sizeof(*iov) * (size_t)n);
	err = s->ssl ? stream__tls_writev(s, all, n + 1) : stream__send_plain(s, all, n + 1);
	free(all);
	return err;
}

int mig_stream__send(struct mig_stream *s, uint32_t type, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };

	return mig_stream__sendv(s, type, &iov, 1);
}

/* Until the socket has something to read: 0, -EINTR (look again) or
 * -ETIMEDOUT after timeout_ms. */
static int stream__wait(struct mig_stream *s, int timeout_ms)
{
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	int rc = poll(&pfd, 1, timeout_ms);

	if (rc == 0)
		return -ETIMEDOUT;
	return rc < 0 ? -errno : 0;
}

/* Plain TCP tries the socket first and polls only when it is empty: a
 * poll before every read was a syscall per chunk of a page batch. */
static int stream__read(struct mig_stream *s, void *buf, size_t len, int timeout_ms)
{
	uint8_t *p = buf;
	bool wait = s->ssl && !SSL_pending(s->ssl);

	while (len) {
		ssize_t n;

		if (wait) {
			int err = stream__wait(s, timeout_ms);

			if (err == -EINTR)
				continue;
			if (err)
				return err;
		}
		if (s->ssl) {
			size_t r = 0;

			if (SSL_read_ex(s->ssl, p, len, &r) != 1) {
				int e = SSL_get_error(s->ssl, 0);

				ERR_clear_error();
				if (e == SSL_ERROR_WANT_READ)
					continue;
				return -ECONNRESET;
			}
			n = (ssize_t)r;
			wait = !SSL_pending(s->ssl);
		} else {
			n = recv(s->fd, p, len, MSG_DONTWAIT);
			wait = n < 0 && errno == EAGAIN;
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0)
				return -ECONNRESET;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int mig_stream__read(struct mig_stream *s, void *buf, size_t len, int timeout_ms)
{
	return stream__read(s, buf, len, timeout_ms);
}

int mig_stream__readv(struct mig_stream *s, struct iovec *iov, int n, int timeout_ms)
{
	while (n > 0) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t r;
		int err;

		if (s->ssl) {
			err = stream__read(s, iov->iov_base, iov->iov_len, timeout_ms);
			if (err)
				return err;
			iov++, n--;
			continue;
		}
		r = recvmsg(s->fd, &mh, MSG_DONTWAIT);
		if (r < 0 && errno == EAGAIN) {
			err = stream__wait(s, timeout_ms);
			if (err && err != -EINTR)
				return err;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -ECONNRESET;
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++, n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

static int stream__pipe(struct mig_stream *s)
{
	int size;

	if (s->pipe[0] >= 0)
		return 0;
	if (pipe2(s->pipe, O_CLOEXEC) < 0)
		return -errno;
	/* A whole page batch per trip where the pipe may grow that far. */
	size = fcntl(s->pipe[1], F_SETPIPE_SZ, STREAM_PIPE_SIZE);
	if (size < 0)
		size = fcntl(s->pipe[1], F_GETPIPE_SZ);
	s->pipe_size = size > 0 ? (size_t)size : 4096;
	return 0;
}

int mig_stream__splice_to(struct mig_stream *s, int fd, uint64_t off, size_t len, int timeout_ms)
{
	loff_t pos = (loff_t)off;
	int err = s->ssl || stream__pipe(s) ? -EOPNOTSUPP : 0;

	while (!err && len) {
		size_t want = len < s->pipe_size ? len : s->pipe_size;
		ssize_t n = splice(s->fd, NULL, s->pipe[1], NULL, want,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

		if (n < 0 && errno == EAGAIN) {
			err = stream__wait(s, timeout_ms);
			err = err == -EINTR ? 0 : err;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -ECONNRESET;
		len -= (size_t)n;
		while (n > 0) {
			ssize_t w = splice(s->pipe[0], NULL, fd, &pos, (size_t)n, SPLICE_F_MOVE);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return w < 0 ? -errno : -EIO;
			n -= w;
		}
	}
	return err;
}

int mig_stream__recv_header(struct mig_stream *s, uint32_t *type, size_t *len, int timeout_ms)
{
	uint32_t hdr[2];
	int err = stream__read(s, hdr, sizeof(hdr), timeout_ms);

	if (err)
		return err;
	*type = le32toh(hdr[0]);
	*len = le32toh(hdr[1]);
	return *len > MIG_MAX_RECORD ? -EPROTO : 0;
}

int mig_stream__recv_payload(struct mig_stream *s, size_t len, uint8_t **buf, int timeout_ms)
{
	int err;

	*buf = malloc(len + 1);
	if (!*buf)
		return -ENOMEM;
	err = stream__read(s, *buf, len, timeout_ms);
	if (err) {
		free(*buf);
		*buf = NULL;
		return err;
	}
	(*buf)[len] = 0;
	return 0;
}

int mig_stream__recv(struct mig_stream *s, uint32_t *type, uint8_t **buf, size_t *len,
		     int timeout_ms)
{
	int err;

	*buf = NULL;
	err = mig_stream__recv_header(s, type, len, timeout_ms);
	return err ? err : mig_stream__recv_payload(s, *len, buf, timeout_ms);
}
