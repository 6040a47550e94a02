/* daemon/migrate_chan.c — the channel between two vmmds for a live
 * migration: TCP in mutual TLS 1.3 (common/tls.c), one JSON object per
 * line.  It carries only the setup and the outcome (the spec, the data
 * port, "running"); guest RAM and state go vmm to vmm on their own
 * connection. */
#include "daemon/migrate.h"
#include "common/tcp.h"
#include "common/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHAN_LINE_MAX (256 * 1024)
#define CHAN_IO_S 30

struct mchan {
	int fd;
	SSL_CTX *ctx; /* ours (connect) or NULL (accept: the listener's) */
	SSL *ssl;
	char *buf;
	size_t len;
};

static struct mchan *chan__wrap(int fd, SSL_CTX *ctx, bool own_ctx, bool server, char *why,
				size_t wlen)
{
	struct mchan *c = calloc(1, sizeof(*c));

	if (!c || !(c->buf = malloc(CHAN_LINE_MAX + 1))) {
		snprintf(why, wlen, "out of memory");
		free(c);
		close(fd);
		if (own_ctx)
			SSL_CTX_free(ctx);
		return NULL;
	}
	c->fd = fd;
	c->ctx = own_ctx ? ctx : NULL;
	tcp__timeouts(fd, CHAN_IO_S);
	c->ssl = tls__handshake(ctx, fd, server, why, wlen);
	if (!c->ssl) {
		mchan__close(c);
		return NULL;
	}
	/* A record that is not data (a session ticket) returns to the poll
	 * in mchan__recv instead of blocking for data. */
	SSL_clear_mode(c->ssl, SSL_MODE_AUTO_RETRY);
	return c;
}

struct mchan *mchan__connect(const char *dest, const struct tls_files *tls, char *why,
			     size_t wlen)
{
	SSL_CTX *ctx = tls__ctx_new(tls, false, why, wlen);
	int fd;

	if (!ctx)
		return NULL;
	fd = tcp__connect(dest, 10, why, wlen);
	if (fd < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return chan__wrap(fd, ctx, true, false, why, wlen);
}

struct mchan *mchan__server(int fd, SSL_CTX *ctx, char *why, size_t wlen)
{
	/* The connection holds its own reference: the listener may go first. */
	SSL_CTX_up_ref(ctx);
	return chan__wrap(fd, ctx, true, true, why, wlen);
}

void mchan__close(struct mchan *c)
{
	if (!c)
		return;
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->ctx)
		SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c);
}

int mchan__send(struct mchan *c, json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT);
	size_t len, off = 0;
	int r = 0;

	if (!text)
		return -ENOMEM;
	len = strlen(text);
	text[len] = '\n'; /* json_dumps's NUL becomes the line's end */
	len++;
	while (off < len) {
		size_t w = 0;

		if (SSL_write_ex(c->ssl, text + off, len - off, &w) != 1) {
			ERR_clear_error();
			r = -ECONNRESET;
			break;
		}
		off += w;
	}
	free(text);
	return r;
}

int mchan__recv(struct mchan *c, json_t **out, int timeout_ms)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	char *nl;

	*out = NULL;
	for (;;) {
		if ((nl = memchr(c->buf, '\n', c->len))) {
			size_t n = (size_t)(nl - c->buf) + 1;

			*nl = '\0';
			*out = json_loads(c->buf, 0, NULL);
			memmove(c->buf, c->buf + n, c->len - n);
			c->len -= n;
			return *out ? 0 : -EPROTO;
		}
		if (c->len >= CHAN_LINE_MAX)
			return -EPROTO;
		if (!SSL_pending(c->ssl)) {
			int r = poll(&p, 1, timeout_ms);

			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0)
				return -ETIMEDOUT;
			if (r < 0)
				return -errno;
		}
		size_t got = 0;

		if (SSL_read_ex(c->ssl, c->buf + c->len, CHAN_LINE_MAX - c->len, &got) != 1) {
			int e = SSL_get_error(c->ssl, 0);

			ERR_clear_error();
			if (e == SSL_ERROR_WANT_READ)
				continue; /* a TLS 1.3 ticket: no data yet */
			return -ECONNRESET;
		}
		c->len += got;
	}
}
