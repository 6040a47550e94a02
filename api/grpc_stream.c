/* api/grpc_stream.c — the streaming calls of the gRPC front end:
 * WatchEvents (server streaming), ConsoleStream (bidirectional) and
 * grpc.health.v1.Health/Watch.
 *
 * The daemon's sinks run on daemon threads and must not block, so a
 * message is packed, queued on its call and sent by the completion queue:
 * one SEND_MESSAGE at a time, the next started when the last completed.
 * A RECV_CLOSE_ON_SERVER batch is pending for the whole stream; it
 * completes when the client cancels or hangs up (or the server stops), and
 * that ends the subscription (unwatch_events / console_detach). */
#include "api/grpc_call.h"
#include "api/health.pb-c.h"
#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A client that stops reading gets cut off rather than grow vmmd. */
#define GRPC_STREAM_MAX_QUEUED 4096

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static void grpc_stream__drop_queue_locked(struct grpc_rpc *rpc)
{
	while (rpc->head) {
		struct grpc_out_msg *m = rpc->head;

		rpc->head = m->next;
		grpc_byte_buffer_destroy(m->buf);
		free(m);
	}
	rpc->tail = NULL;
	rpc->queued = 0;
}

static void grpc_stream__send_done(struct grpc_tag *tag, bool ok);

static void grpc_stream__start_send_locked(struct grpc_rpc *rpc)
{
	struct grpc_out_msg *m = rpc->head;
	grpc_op ops[2];
	size_t n = 0;
	grpc_call_error e;

	rpc->head = m->next;
	if (!rpc->head)
		rpc->tail = NULL;
	rpc->queued--;
	rpc->inflight = m->buf;
	free(m);

	memset(ops, 0, sizeof(ops));
	if (!rpc->md_sent) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		rpc->md_sent = true;
	}
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n++].data.send_message.send_message = rpc->inflight;
	rpc->send_tag.done = grpc_stream__send_done;
	rpc->sending = true;
	grpc_rpc__get(rpc);
	e = grpc_call_start_batch(rpc->call, ops, n, &rpc->send_tag, NULL);
	if (e != GRPC_CALL_OK) {
		pr_err("grpc: %s: cannot send: call error %d", rpc->name, e);
		grpc_byte_buffer_destroy(rpc->inflight);
		rpc->inflight = NULL;
		rpc->sending = false;
		rpc->closed = true;
		grpc_stream__drop_queue_locked(rpc);
		__atomic_sub_fetch(&rpc->refs, 1, __ATOMIC_ACQ_REL); /* caller holds one */
	}
}

static void grpc_stream__send_done(struct grpc_tag *tag, bool ok)
{
	struct grpc_rpc *rpc = container_of(tag, struct grpc_rpc, send_tag);

	pthread_mutex_lock(&rpc->lock);
	if (rpc->inflight)
		grpc_byte_buffer_destroy(rpc->inflight);
	rpc->inflight = NULL;
	rpc->sending = false;
	if (!ok) {
		/* the call is gone: RECV_CLOSE_ON_SERVER follows */
		rpc->closed = true;
		grpc_stream__drop_queue_locked(rpc);
	}
	if (rpc->head)
		grpc_stream__start_send_locked(rpc);
	else if (rpc->status_pending)
		grpc_stream__start_status_locked(rpc);
	pthread_mutex_unlock(&rpc->lock);
	grpc_rpc__put(rpc);
}

int grpc_stream__send(struct grpc_rpc *rpc, const ProtobufCMessage *msg)
{
	grpc_byte_buffer *buf;
	struct grpc_out_msg *m;

	pthread_mutex_lock(&rpc->lock);
	if (rpc->closed) {
		pthread_mutex_unlock(&rpc->lock);
		return 1;
	}
	if (rpc->queued >= GRPC_STREAM_MAX_QUEUED) {
		rpc->closed = true;
		grpc_stream__drop_queue_locked(rpc);
		pthread_mutex_unlock(&rpc->lock);
		pr_warn("grpc: %s: client does not keep up, ending its stream", rpc->name);
		grpc_call_cancel_with_status(rpc->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
					     "client does not read the stream fast enough", NULL);
		return 1;
	}
	m = malloc(sizeof(*m));
	buf = m ? grpc_rpc__pack(msg) : NULL;
	if (!buf) {
		pthread_mutex_unlock(&rpc->lock);
		free(m);
		return 1;
	}
	m->buf = buf;
	m->next = NULL;
	if (rpc->tail)
		rpc->tail->next = m;
	else
		rpc->head = m;
	rpc->tail = m;
	rpc->queued++;
	if (!rpc->sending)
		grpc_stream__start_send_locked(rpc);
	pthread_mutex_unlock(&rpc->lock);
	return 0;
}

/* Ends the daemon-side subscription once, outside rpc->lock: the daemon
 * may be calling our sink under its own lock right now. */
static void grpc_stream__unsubscribe(struct grpc_rpc *rpc)
{
	struct api_service *svc = rpc->front->svc;
	bool was;

	pthread_mutex_lock(&rpc->lock);
	was = rpc->subscribed;
	rpc->subscribed = false;
	pthread_mutex_unlock(&rpc->lock);
	if (!was)
		return;
	if (rpc->kind == RPC_WATCH_EVENTS)
		svc->unwatch_events(svc->ctx, rpc->handle);
	else if (rpc->kind == RPC_CONSOLE)
		svc->console_detach(svc->ctx, rpc->handle);
	grpc_rpc__put(rpc); /* the subscription's reference */
}

static void grpc_stream__close_done(struct grpc_tag *tag, bool ok)
{
	struct grpc_rpc *rpc = container_of(tag, struct grpc_rpc, close_tag);

	pthread_mutex_lock(&rpc->lock);
	rpc->closed = true;
	grpc_stream__drop_queue_locked(rpc);
	pthread_mutex_unlock(&rpc->lock);
	grpc_stream__unsubscribe(rpc);
	grpc_rpc__put(rpc);
}

static void grpc_stream__wait_close(struct grpc_rpc *rpc)
{
	grpc_op op;
	grpc_call_error e;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &rpc->cancelled;
	pthread_mutex_lock(&rpc->lock);
	if (rpc->close_started) {
		pthread_mutex_unlock(&rpc->lock);
		return;
	}
	rpc->close_started = true;
	rpc->close_tag.done = grpc_stream__close_done;
	grpc_rpc__get(rpc);
	e = grpc_call_start_batch(rpc->call, &op, 1, &rpc->close_tag, NULL);
	pthread_mutex_unlock(&rpc->lock);
	if (e != GRPC_CALL_OK) {
		pr_err("grpc: %s: cannot wait for the client: call error %d", rpc->name, e);
		grpc_stream__unsubscribe(rpc);
		grpc_rpc__put(rpc);
	}
}

/* Records the subscription and answers the initial metadata now, unless a
 * message already carried it: a client that got the metadata knows that
 * it will see every event from then on. */
static void grpc_stream__subscribed(struct grpc_rpc *rpc, uint64_t handle)
{
	grpc_op op;
	grpc_call_error e;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_INITIAL_METADATA;
	pthread_mutex_lock(&rpc->lock);
	rpc->handle = handle;
	rpc->subscribed = true;
	if (!rpc->md_sent && !rpc->sending && !rpc->closed) {
		rpc->md_sent = true;
		rpc->sending = true;
		rpc->send_tag.done = grpc_stream__send_done;
		grpc_rpc__get(rpc);
		e = grpc_call_start_batch(rpc->call, &op, 1, &rpc->send_tag, NULL);
		if (e != GRPC_CALL_OK) {
			pr_err("grpc: %s: cannot send metadata: call error %d", rpc->name, e);
			rpc->sending = false;
			__atomic_sub_fetch(&rpc->refs, 1, __ATOMIC_ACQ_REL); /* caller holds one */
		}
	}
	pthread_mutex_unlock(&rpc->lock);
}

static int grpc_watch__sink(const Vmmd__V1__Event *ev, void *opaque)
{
	return grpc_stream__send(opaque, &ev->base);
}

static void grpc_watch__recv(struct grpc_rpc *rpc, bool ok)
{
	struct api_service *svc = rpc->front->svc;
	Vmmd__V1__WatchEventsRequest *req;
	struct api_error err = {0};
	uint64_t handle = 0;
	bool absent;
	int rc;

	req = (Vmmd__V1__WatchEventsRequest *)grpc_rpc__unpack(
	    rpc, &vmmd__v1__watch_events_request__descriptor, &absent);
	if (!req) {
		grpc_rpc__finish(rpc, API_INVALID_ARGUMENT, NULL, NULL,
				 absent ? "no request message" : "malformed WatchEventsRequest");
		return;
	}
	if (!svc->watch_events || !svc->unwatch_events) {
		protobuf_c_message_free_unpacked(&req->base, NULL);
		grpc_rpc__finish(rpc, API_UNIMPLEMENTED, NULL, NULL, "WatchEvents is not served");
		return;
	}
	/* the sink may run (replaying kept events) before watch_events returns */
	grpc_rpc__get(rpc);
	rc = svc->watch_events(svc->ctx, req, grpc_watch__sink, rpc, &handle, &err);
	protobuf_c_message_free_unpacked(&req->base, NULL);
	if (rc < 0) {
		if (!err.code[0])
			api_error__set(&err, API_INTERNAL, NULL, "cannot watch events (%d)", rc);
		grpc_rpc__finish_error(rpc, &err);
		grpc_rpc__put(rpc);
		return;
	}
	grpc_stream__subscribed(rpc, handle);
	grpc_stream__wait_close(rpc);
}

static int grpc_console__sink(const uint8_t *data, size_t len, void *opaque)
{
	Vmmd__V1__ConsoleStreamResponse resp = VMMD__V1__CONSOLE_STREAM_RESPONSE__INIT;

	/* The VM stopped; the call stays open until the client closes it. */
	if (!data)
		return 1;

	resp.data.data = (uint8_t *)data;
	resp.data.len = len;
	return grpc_stream__send(opaque, &resp.base);
}

/* Input after the first message, until the client half-closes. */
static void grpc_console__input(struct grpc_rpc *rpc, bool ok)
{
	struct api_service *svc = rpc->front->svc;
	Vmmd__V1__ConsoleStreamRequest *req;
	bool absent, subscribed;
	uint64_t handle;
	int rc = 0;

	req = (Vmmd__V1__ConsoleStreamRequest *)grpc_rpc__unpack(
	    rpc, &vmmd__v1__console_stream_request__descriptor, &absent);
	if (!req) {
		grpc_stream__unsubscribe(rpc);
		if (absent && !ok)
			grpc_rpc__finish(rpc, API_CANCELLED, NULL, NULL, "cancelled");
		else if (absent)
			grpc_rpc__finish(rpc, API_OK, NULL, NULL, "console closed");
		else
			grpc_rpc__finish(rpc, API_INVALID_ARGUMENT, NULL, NULL,
					 "malformed ConsoleStreamRequest");
		return;
	}
	pthread_mutex_lock(&rpc->lock);
	subscribed = rpc->subscribed;
	handle = rpc->handle;
	pthread_mutex_unlock(&rpc->lock);
	if (subscribed && req->data.len)
		rc = svc->console_write(svc->ctx, handle, req->data.data, req->data.len);
	protobuf_c_message_free_unpacked(&req->base, NULL);
	if (rc < 0) {
		grpc_stream__unsubscribe(rpc);
		grpc_rpc__finish(rpc, API_UNAVAILABLE, NULL, NULL, "the console takes no input: %s",
				 strerror(-rc));
		return;
	}
	grpc_rpc__recv(rpc, grpc_console__input);
}

static void grpc_console__first(struct grpc_rpc *rpc, bool ok)
{
	struct api_service *svc = rpc->front->svc;
	Vmmd__V1__ConsoleStreamRequest *req;
	struct api_error err = {0};
	uint64_t handle = 0;
	bool absent;
	int rc;

	req = (Vmmd__V1__ConsoleStreamRequest *)grpc_rpc__unpack(
	    rpc, &vmmd__v1__console_stream_request__descriptor, &absent);
	if (!req) {
		grpc_rpc__finish(rpc, API_INVALID_ARGUMENT, absent ? "vm_id" : NULL, NULL,
				 absent ? "the first message must name vm_id"
					: "malformed ConsoleStreamRequest");
		return;
	}
	if (!req->vm_id[0]) {
		protobuf_c_message_free_unpacked(&req->base, NULL);
		grpc_rpc__finish(rpc, API_INVALID_ARGUMENT, "vm_id", NULL,
				 "the first message must name vm_id");
		return;
	}
	if (!svc->console_attach || !svc->console_detach || !svc->console_write) {
		protobuf_c_message_free_unpacked(&req->base, NULL);
		grpc_rpc__finish(rpc, API_UNIMPLEMENTED, NULL, NULL, "ConsoleStream is not served");
		return;
	}
	grpc_rpc__get(rpc);
	rc = svc->console_attach(svc->ctx, req->vm_id, grpc_console__sink, rpc, &handle, &err);
	if (rc < 0) {
		protobuf_c_message_free_unpacked(&req->base, NULL);
		if (!err.code[0])
			api_error__set(&err, API_INTERNAL, NULL, "cannot attach (%d)", rc);
		grpc_rpc__finish_error(rpc, &err);
		grpc_rpc__put(rpc);
		return;
	}
	grpc_stream__subscribed(rpc, handle);
	grpc_stream__wait_close(rpc);
	if (req->data.len)
		svc->console_write(svc->ctx, handle, req->data.data, req->data.len);
	protobuf_c_message_free_unpacked(&req->base, NULL);
	grpc_rpc__recv(rpc, grpc_console__input);
}

/* Health/Watch: the status now; it never changes while vmmd serves, so
 * the stream then stays open until the client or the server ends it. */
static void grpc_health_watch__recv(struct grpc_rpc *rpc, bool ok)
{
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	Grpc__Health__V1__HealthCheckRequest *req;
	bool absent;

	req = (Grpc__Health__V1__HealthCheckRequest *)grpc_rpc__unpack(
	    rpc, &grpc__health__v1__health_check_request__descriptor, &absent);
	if (!req) {
		grpc_rpc__finish(rpc, API_INVALID_ARGUMENT, NULL, NULL,
				 "malformed HealthCheckRequest");
		return;
	}
	if (req->service[0] && strcmp(req->service, "vmmd.v1.Vmm"))
		resp.status =
		    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
	else
		resp.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	protobuf_c_message_free_unpacked(&req->base, NULL);
	grpc_stream__send(rpc, &resp.base);
	grpc_stream__wait_close(rpc);
}

void grpc_stream__start(struct grpc_rpc *rpc)
{
	switch (rpc->kind) {
	case RPC_WATCH_EVENTS: grpc_rpc__recv(rpc, grpc_watch__recv); break;
	case RPC_CONSOLE: grpc_rpc__recv(rpc, grpc_console__first); break;
	default: grpc_rpc__recv(rpc, grpc_health_watch__recv); break;
	}
}
