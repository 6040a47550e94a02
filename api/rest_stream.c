/* api/rest_stream.c — the REST streams: GET /v1/events as server-sent
 * events and GET /v1/vms/{vm_id}/console:stream as a raw chunked body.
 *
 * The service calls a sink from its own threads and must not wait, so each
 * stream has a queue the sink appends to; the connection's thread (one per
 * connection) takes from it in MHD's content reader, waiting when it is
 * empty.  A client that reads too slowly for the queue's limit loses the
 * stream (an EventSource reconnects with Last-Event-ID and loses nothing
 * the daemon still keeps).  MHD calls the free callback when the client
 * goes away or the server stops; that unsubscribes. */
#include "api/json.h"
#include "api/rest.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STREAM_MAX_QUEUED  (4u << 20)
#define STREAM_HEARTBEAT_S 15

struct chunk {
	struct chunk *next;
	size_t len, off;
	char data[];
};

struct stream {
	struct api_service *svc;
	const bool *stopping;
	int conn_fd; /* the client's socket, watched for its hang-up */
	bool events; /* else console */
	uint64_t handle;
	bool subscribed;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct chunk *head, *tail;
	size_t queued;
	bool ended; /* overflowed or the source ended: end the body once drained */
};

static struct stream *stream__new(struct api_service *svc, const bool *stopping, int conn_fd,
				  bool events)
{
	struct stream *s = calloc(1, sizeof(*s));
	pthread_condattr_t attr;

	if (!s)
		return NULL;
	s->svc = svc;
	s->stopping = stopping;
	s->conn_fd = conn_fd;
	s->events = events;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &attr);
	pthread_condattr_destroy(&attr);
	return s;
}

static void stream__free(void *cls)
{
	struct stream *s = cls;

	if (s->subscribed) {
		/* After these return the service calls the sink no more. */
		if (s->events)
			s->svc->unwatch_events(s->svc->ctx, s->handle);
		else
			s->svc->console_detach(s->svc->ctx, s->handle);
	}
	while (s->head) {
		struct chunk *c = s->head;

		s->head = c->next;
		free(c);
	}
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Called by the service's threads: queue and return. Nonzero ends the
 * subscription (the queue is over its limit, or memory ran out). */
static int stream__push(struct stream *s, const void *data, size_t len)
{
	struct chunk *c;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if (s->ended) {
		r = 1;
		goto out;
	}
	c = s->queued + len > STREAM_MAX_QUEUED ? NULL : malloc(sizeof(*c) + len);
	if (!c) {
		s->ended = true;
		r = 1;
		goto out_signal;
	}
	c->next = NULL;
	c->len = len;
	c->off = 0;
	memcpy(c->data, data, len);
	if (s->tail)
		s->tail->next = c;
	else
		s->head = c;
	s->tail = c;
	s->queued += len;
out_signal:
	pthread_cond_signal(&s->cond);
out:
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int event__sink(const Vmmd__V1__Event *ev, void *opaque)
{
	json_t *j = api_json__from_message(&ev->base);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	char *frame = NULL;
	int len, r = 1;

	json_decref(j);
	/* The JSON is one line (compact, newlines in strings escaped), as
	 * one "data:" field must be. */
	len = text ? asprintf(&frame, "id: %" PRIu64 "\ndata: %s\n\n", ev->seq, text) : -1;
	if (len >= 0)
		r = stream__push(opaque, frame, (size_t)len);
	free(frame);
	free(text);
	return r;
}

static int console__sink(const uint8_t *data, size_t len, void *opaque)
{
	struct stream *s = opaque;

	if (!data) {
		/* The VM stopped: end the response once the queue is sent. */
		pthread_mutex_lock(&s->lock);
		s->ended = true;
		pthread_cond_signal(&s->cond);
		pthread_mutex_unlock(&s->lock);
		return 1;
	}
	return stream__push(s, data, len);
}

/* A client that went away, seen without writing to it: MHD only notices
 * when a write fails.  (A client that shuts down only its sending side
 * counts as gone: no EventSource or curl does that.) */
static bool stream__client_gone(const struct stream *s)
{
	struct pollfd p = {.fd = s->conn_fd, .events = POLLRDHUP};

	return s->conn_fd >= 0 && poll(&p, 1, 0) == 1 &&
	       (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* MHD's content reader, on the connection's own thread: waits for data
 * in one-second steps so that a stopping server or a client that left
 * ends it within a second (and the free callback unsubscribes). */
static ssize_t stream__read(void *cls, uint64_t pos, char *buf, size_t max)
{
	static const char heartbeat[] = ": keepalive\n\n";
	struct stream *s = cls;
	struct timespec deadline;
	ssize_t n = 0;
	int waited = 0;

	pthread_mutex_lock(&s->lock);
	while (!s->head) {
		if (s->ended || __atomic_load_n(s->stopping, __ATOMIC_ACQUIRE)) {
			n = MHD_CONTENT_READER_END_OF_STREAM;
			goto out;
		}
		if (stream__client_gone(s)) {
			n = MHD_CONTENT_READER_END_OF_STREAM;
			goto out;
		}
		/* A comment line every 15 s: proxies keep the connection and a
		 * client that left is noticed by the failing write. */
		if (waited >= STREAM_HEARTBEAT_S && s->events && max >= sizeof(heartbeat)) {
			memcpy(buf, heartbeat, sizeof(heartbeat) - 1);
			n = sizeof(heartbeat) - 1;
			goto out;
		}
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec++;
		if (pthread_cond_timedwait(&s->cond, &s->lock, &deadline) == ETIMEDOUT)
			waited++;
	}
	while (s->head && (size_t)n < max) {
		struct chunk *c = s->head;
		size_t k = c->len - c->off;

		if (k > max - (size_t)n)
			k = max - (size_t)n;
		memcpy(buf + n, c->data + c->off, k);
		n += (ssize_t)k;
		c->off += k;
		s->queued -= k;
		if (c->off == c->len) {
			s->head = c->next;
			if (!s->head)
				s->tail = NULL;
			free(c);
		}
	}
out:
	pthread_mutex_unlock(&s->lock);
	return n;
}

static struct MHD_Response *stream__response(struct stream *s, const char *type)
{
	struct MHD_Response *resp = MHD_create_response_from_callback(
	    MHD_SIZE_UNKNOWN, 16384, stream__read, s, stream__free);

	if (!resp) {
		stream__free(s);
		return NULL;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	return resp;
}

struct MHD_Response *rest_stream__events(struct api_service *svc, const bool *stopping, int conn_fd,
					 const Vmmd__V1__WatchEventsRequest *req,
					 struct api_error *err)
{
	struct stream *s;

	if (!svc->watch_events) {
		api_error__set(err, API_UNIMPLEMENTED, NULL, "WatchEvents is not implemented");
		return NULL;
	}
	s = stream__new(svc, stopping, conn_fd, true);
	if (!s) {
		api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
		return NULL;
	}
	/* The replay may call the sink before this returns: the queue is ready. */
	if (svc->watch_events(svc->ctx, req, event__sink, s, &s->handle, err) < 0) {
		if (!err->code[0])
			api_error__set(err, API_INTERNAL, NULL, "cannot watch events");
		stream__free(s);
		return NULL;
	}
	s->subscribed = true;
	return stream__response(s, "text/event-stream");
}

struct MHD_Response *rest_stream__console(struct api_service *svc, const bool *stopping,
					  int conn_fd, const char *vm_id, struct api_error *err)
{
	struct stream *s;

	if (!svc->console_attach) {
		api_error__set(err, API_UNIMPLEMENTED, NULL, "ConsoleStream is not implemented");
		return NULL;
	}
	s = stream__new(svc, stopping, conn_fd, false);
	if (!s) {
		api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
		return NULL;
	}
	if (svc->console_attach(svc->ctx, vm_id, console__sink, s, &s->handle, err) < 0) {
		if (!err->code[0])
			api_error__set(err, API_INTERNAL, NULL, "cannot attach to the console");
		stream__free(s);
		return NULL;
	}
	s->subscribed = true;
	return stream__response(s, "application/octet-stream");
}

static int discard__sink(const uint8_t *data, size_t len, void *opaque)
{
	return 0;
}

/* Input without a stream: HTTP/1.1 cannot carry both ways on one request
 * that curl or a browser can make, so input is its own request, sent
 * through a session attached for just that write. */
int rest_stream__console_write(struct api_service *svc, const char *vm_id, const uint8_t *data,
			       size_t len, struct api_error *err)
{
	uint64_t handle;
	int r;

	if (!svc->console_attach || !svc->console_write)
		return api_error__set(err, API_UNIMPLEMENTED, NULL,
				      "console input is not implemented");
	if (svc->console_attach(svc->ctx, vm_id, discard__sink, NULL, &handle, err) < 0) {
		if (!err->code[0])
			api_error__set(err, API_INTERNAL, NULL, "cannot attach to the console");
		return -EIO;
	}
	r = len ? svc->console_write(svc->ctx, handle, data, len) : 0;
	svc->console_detach(svc->ctx, handle);
	if (r < 0)
		return api_error__set(err, API_UNAVAILABLE, NULL, "console input failed: %s",
				      strerror(-r));
	return 0;
}
