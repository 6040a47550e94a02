/* api/grpc.c — the gRPC front end of vmmd on the grpc core C API.
 *
 * No generated service code: every call is requested generically
 * (grpc_server_request_call) and dispatched on its method path through
 * api_routes[], so the proto stays the one schema and protobuf-c does the
 * (de)serialisation.  One completion queue, a few worker threads; each
 * completion carries a struct grpc_tag whose done() moves its call on.
 * Unary calls: RECV_MESSAGE, then one batch with the reply and the status.
 * Streams live in api/grpc_stream.c. */
#include "api/grpc_call.h"
#include "api/health.pb-c.h"
#include "api/transport.h"
#include "common/log.h"

#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define VMM_PREFIX    "/vmmd.v1.Vmm/"
#define HEALTH_PREFIX "/grpc.health.v1.Health/"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

uint64_t grpc_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void grpc_rpc__get(struct grpc_rpc *rpc)
{
	__atomic_add_fetch(&rpc->refs, 1, __ATOMIC_ACQ_REL);
}

static void grpc_rpc__free(struct grpc_rpc *rpc)
{
	struct grpc_front *front = rpc->front;
	struct api_service *svc = front->svc;

	if (rpc->name[0] && svc->observe_request) {
		int http = rpc->http_status;

		/* a stream the client hung up on ends without a status of ours */
		if (!rpc->status_started && rpc->cancelled)
			http = api_code__http_status(API_CANCELLED);
		svc->observe_request(svc->ctx, "grpc", rpc->name, http,
				     grpc_now_usec() - rpc->start_usec);
	}
	while (rpc->head) {
		struct grpc_out_msg *m = rpc->head;

		rpc->head = m->next;
		grpc_byte_buffer_destroy(m->buf);
		free(m);
	}
	if (rpc->inflight)
		grpc_byte_buffer_destroy(rpc->inflight);
	if (rpc->reply)
		grpc_byte_buffer_destroy(rpc->reply);
	if (rpc->recv_buf)
		grpc_byte_buffer_destroy(rpc->recv_buf);
	if (rpc->status_started)
		grpc_slice_unref(rpc->status_details);
	if (rpc->call)
		grpc_call_unref(rpc->call);
	grpc_call_details_destroy(&rpc->details);
	grpc_metadata_array_destroy(&rpc->request_md);
	pthread_mutex_destroy(&rpc->lock);
	free(rpc);

	pthread_mutex_lock(&front->lock);
	front->live_calls--;
	pthread_cond_broadcast(&front->cond);
	pthread_mutex_unlock(&front->lock);
}

void grpc_rpc__put(struct grpc_rpc *rpc)
{
	if (__atomic_sub_fetch(&rpc->refs, 1, __ATOMIC_ACQ_REL) == 0)
		grpc_rpc__free(rpc);
}

static void grpc_rpc__recv_done(struct grpc_tag *tag, bool ok)
{
	struct grpc_rpc *rpc = container_of(tag, struct grpc_rpc, recv_tag);

	rpc->on_recv(rpc, ok);
	grpc_rpc__put(rpc);
}

int grpc_rpc__recv(struct grpc_rpc *rpc, void (*on_recv)(struct grpc_rpc *rpc, bool ok))
{
	grpc_op ops[1];
	size_t n = 0;
	grpc_call_error e;

	memset(ops, 0, sizeof(ops));
	pthread_mutex_lock(&rpc->lock);
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n++].data.recv_message.recv_message = &rpc->recv_buf;
	rpc->on_recv = on_recv;
	rpc->recv_tag.done = grpc_rpc__recv_done;
	grpc_rpc__get(rpc);
	e = grpc_call_start_batch(rpc->call, ops, n, &rpc->recv_tag, NULL);
	pthread_mutex_unlock(&rpc->lock);
	if (e != GRPC_CALL_OK) {
		pr_err("grpc: %s: cannot receive: call error %d", rpc->name, e);
		grpc_rpc__put(rpc);
		return -EIO;
	}
	return 0;
}

ProtobufCMessage *grpc_rpc__unpack(struct grpc_rpc *rpc, const ProtobufCMessageDescriptor *desc,
				   bool *absent)
{
	grpc_byte_buffer_reader reader;
	ProtobufCMessage *msg = NULL;
	grpc_slice s;

	*absent = !rpc->recv_buf;
	if (!rpc->recv_buf)
		return NULL;
	if (grpc_byte_buffer_reader_init(&reader, rpc->recv_buf)) {
		s = grpc_byte_buffer_reader_readall(&reader);
		msg = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(s),
						GRPC_SLICE_START_PTR(s));
		grpc_slice_unref(s);
		grpc_byte_buffer_reader_destroy(&reader);
	}
	grpc_byte_buffer_destroy(rpc->recv_buf);
	rpc->recv_buf = NULL;
	return msg;
}

grpc_byte_buffer *grpc_rpc__pack(const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	grpc_slice s = grpc_slice_malloc(len);
	grpc_byte_buffer *buf;

	protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
	buf = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return buf;
}

static void grpc_rpc__status_done(struct grpc_tag *tag, bool ok)
{
	grpc_rpc__put(container_of(tag, struct grpc_rpc, status_tag));
}

void grpc_stream__start_status_locked(struct grpc_rpc *rpc)
{
	grpc_op ops[4];
	size_t n = 0;
	grpc_call_error e;

	memset(ops, 0, sizeof(ops));
	rpc->status_started = true;
	rpc->status_pending = false;
	if (!rpc->md_sent) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		rpc->md_sent = true;
	}
	if (rpc->reply) {
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = rpc->reply;
	}
	rpc->status_details = grpc_slice_from_copied_string(rpc->status_msg);
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = rpc->status;
	ops[n].data.send_status_from_server.status_details = &rpc->status_details;
	if (rpc->status_field[0]) {
		/* the request field at fault, for clients to point at */
		rpc->trailer.key = grpc_slice_from_static_string("vmmd-error-field");
		rpc->trailer.value = grpc_slice_from_static_string(rpc->status_field);
		ops[n].data.send_status_from_server.trailing_metadata = &rpc->trailer;
		ops[n].data.send_status_from_server.trailing_metadata_count = 1;
	}
	n++;
	if (!rpc->close_started) {
		ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
		ops[n++].data.recv_close_on_server.cancelled = &rpc->cancelled;
		rpc->close_started = true;
	}
	rpc->status_tag.done = grpc_rpc__status_done;
	grpc_rpc__get(rpc);
	e = grpc_call_start_batch(rpc->call, ops, n, &rpc->status_tag, NULL);
	if (e != GRPC_CALL_OK) {
		pr_err("grpc: %s: cannot send status: call error %d", rpc->name, e);
		grpc_rpc__put(rpc); /* not the last reference: the caller holds one */
	}
}

static void grpc_rpc__vfinish(struct grpc_rpc *rpc, enum api_code code, const char *field,
			      grpc_byte_buffer *reply, const char *fmt, va_list ap)
{
	pthread_mutex_lock(&rpc->lock);
	if (rpc->status_started || rpc->status_pending) {
		pthread_mutex_unlock(&rpc->lock);
		if (reply)
			grpc_byte_buffer_destroy(reply);
		return;
	}
	rpc->status = (grpc_status_code)code;
	rpc->http_status = code == API_OK ? 200 : api_code__http_status(code);
	vsnprintf(rpc->status_msg, sizeof(rpc->status_msg), fmt, ap);
	snprintf(rpc->status_field, sizeof(rpc->status_field), "%s", field ? field : "");
	rpc->reply = reply;
	rpc->closed = true;
	if (rpc->sending || rpc->head)
		rpc->status_pending = true;
	else
		grpc_stream__start_status_locked(rpc);
	pthread_mutex_unlock(&rpc->lock);
}

void grpc_rpc__finish(struct grpc_rpc *rpc, enum api_code code, const char *field,
		      grpc_byte_buffer *reply, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	grpc_rpc__vfinish(rpc, code, field, reply, fmt, ap);
	va_end(ap);
}

void grpc_rpc__finish_error(struct grpc_rpc *rpc, const struct api_error *err)
{
	enum api_code code = api_error__code(err) < 0 ? API_INTERNAL : api_error__code(err);

	grpc_rpc__finish(rpc, code, err->field, NULL, "%s",
			 err->message[0] ? err->message : "internal error");
}

static void grpc_unary__recv(struct grpc_rpc *rpc, bool ok)
{
	struct api_service *svc = rpc->front->svc;
	const struct api_route *route = rpc->route;
	ProtobufCMessage *req, *resp = NULL;
	struct api_error err = {0};
	api_unary_fn fn;
	bool absent;
	int rc;

	req = grpc_rpc__unpack(rpc, route->req_desc, &absent);
	if (!req) {
		if (!ok)
			grpc_rpc__finish(rpc, API_CANCELLED, NULL, NULL, "cancelled");
		else
			grpc_rpc__finish(rpc, API_INVALID_ARGUMENT, NULL, NULL,
					 absent ? "no request message" : "malformed %s message",
					 route->req_desc->name);
		return;
	}
	fn = svc->handler(svc->ctx, route->name);
	rc = fn ? fn(svc->ctx, req, &resp, &err) : -ENOSYS;
	protobuf_c_message_free_unpacked(req, NULL);
	if (!fn) {
		grpc_rpc__finish(rpc, API_UNIMPLEMENTED, NULL, NULL, "%s is not implemented",
				 route->name);
		return;
	}
	if (rc < 0 || !resp) {
		if (resp)
			protobuf_c_message_free_unpacked(resp, NULL);
		if (!err.code[0])
			api_error__set(&err, API_INTERNAL, NULL, "%s failed (%d)", route->name, rc);
		grpc_rpc__finish_error(rpc, &err);
		return;
	}
	grpc_rpc__finish(rpc, API_OK, NULL, grpc_rpc__pack(resp), "OK");
	protobuf_c_message_free_unpacked(resp, NULL);
}

/* grpc.health.v1.Health/Check: vmmd serves whenever it answers at all. */
static void grpc_health__recv(struct grpc_rpc *rpc, bool ok)
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
	if (req->service[0] && strcmp(req->service, "vmmd.v1.Vmm")) {
		grpc_rpc__finish(rpc, API_NOT_FOUND, "service", NULL, "unknown service \"%s\"",
				 req->service);
	} else {
		resp.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
		grpc_rpc__finish(rpc, API_OK, NULL, grpc_rpc__pack(&resp.base), "OK");
	}
	protobuf_c_message_free_unpacked(&req->base, NULL);
}

static void grpc_front__request(struct grpc_front *front);

static void grpc_rpc__dispatch(struct grpc_rpc *rpc)
{
	struct api_service *svc = rpc->front->svc;
	char method[160];
	size_t len = GRPC_SLICE_LENGTH(rpc->details.method);
	const char *name;

	if (len >= sizeof(method))
		len = sizeof(method) - 1;
	memcpy(method, GRPC_SLICE_START_PTR(rpc->details.method), len);
	method[len] = '\0';

	if (!strncmp(method, VMM_PREFIX, strlen(VMM_PREFIX))) {
		name = method + strlen(VMM_PREFIX);
		rpc->route = api_route__by_name(name);
		if (rpc->route) {
			snprintf(rpc->name, sizeof(rpc->name), "%s", rpc->route->name);
			if (!strcmp(name, "WatchEvents"))
				rpc->kind = RPC_WATCH_EVENTS;
			else if (!strcmp(name, "ConsoleStream"))
				rpc->kind = RPC_CONSOLE;
			else if (!rpc->route->streaming && svc->handler(svc->ctx, name))
				rpc->kind = RPC_UNARY;
			else {
				grpc_rpc__finish(rpc, API_UNIMPLEMENTED, NULL, NULL,
						 "%s is not implemented", name);
				return;
			}
		}
	} else if (!strcmp(method, HEALTH_PREFIX "Check")) {
		rpc->kind = RPC_HEALTH_CHECK;
		snprintf(rpc->name, sizeof(rpc->name), "Health/Check");
	} else if (!strcmp(method, HEALTH_PREFIX "Watch")) {
		rpc->kind = RPC_HEALTH_WATCH;
		snprintf(rpc->name, sizeof(rpc->name), "Health/Watch");
	}

	switch (rpc->kind) {
	case RPC_UNARY: grpc_rpc__recv(rpc, grpc_unary__recv); break;
	case RPC_HEALTH_CHECK: grpc_rpc__recv(rpc, grpc_health__recv); break;
	case RPC_HEALTH_WATCH:
	case RPC_WATCH_EVENTS:
	case RPC_CONSOLE: grpc_stream__start(rpc); break;
	default:
		/* counted under one name: method paths are client-chosen */
		snprintf(rpc->name, sizeof(rpc->name), "unknown");
		grpc_rpc__finish(rpc, API_UNIMPLEMENTED, NULL, NULL, "unknown method %s", method);
		break;
	}
}

static void grpc_rpc__new_done(struct grpc_tag *tag, bool ok)
{
	struct grpc_rpc *rpc = container_of(tag, struct grpc_rpc, new_tag);
	struct grpc_front *front = rpc->front;

	if (ok) {
		/* keep one call requested at all times */
		grpc_front__request(front);
		rpc->start_usec = grpc_now_usec();
		grpc_rpc__dispatch(rpc);
	}
	grpc_rpc__put(rpc);
}

static void grpc_front__request(struct grpc_front *front)
{
	struct grpc_rpc *rpc = calloc(1, sizeof(*rpc));
	grpc_call_error e;

	if (!rpc) {
		pr_err("grpc: out of memory: no longer accepting calls");
		return;
	}
	pthread_mutex_lock(&front->lock);
	if (front->stopping) {
		pthread_mutex_unlock(&front->lock);
		free(rpc);
		return;
	}
	front->live_calls++;
	pthread_mutex_unlock(&front->lock);
	rpc->front = front;
	rpc->refs = 1;
	rpc->http_status = 200;
	pthread_mutex_init(&rpc->lock, NULL);
	grpc_call_details_init(&rpc->details);
	grpc_metadata_array_init(&rpc->request_md);
	rpc->new_tag.done = grpc_rpc__new_done;
	e = grpc_server_request_call(front->server, &rpc->call, &rpc->details, &rpc->request_md,
				     front->cq, front->cq, &rpc->new_tag);
	if (e != GRPC_CALL_OK) {
		pr_err("grpc: cannot request a call: call error %d", e);
		grpc_rpc__put(rpc);
	}
}

static void *grpc_front__worker(void *arg)
{
	struct grpc_front *front = arg;

	for (;;) {
		grpc_event ev =
		    grpc_completion_queue_next(front->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type == GRPC_OP_COMPLETE)
			((struct grpc_tag *)ev.tag)->done(ev.tag, ev.success);
	}
	return NULL;
}

static void grpc_front__shutdown_done(struct grpc_tag *tag, bool ok)
{
	struct grpc_front *front = container_of(tag, struct grpc_front, shutdown_tag);

	pthread_mutex_lock(&front->lock);
	front->shut_down = true;
	pthread_cond_broadcast(&front->cond);
	pthread_mutex_unlock(&front->lock);
}

static void grpc_front__free(struct grpc_front *front)
{
	pthread_mutex_destroy(&front->lock);
	pthread_cond_destroy(&front->cond);
	free(front->unix_path);
	free(front);
}

int grpc_server__start(struct api_service *svc, const struct grpc_config *cfg,
		       struct grpc_front **out)
{
	struct grpc_front *front = calloc(1, sizeof(*front));
	int rc, i;

	if (!front)
		return -ENOMEM;
	front->svc = svc;
	front->listen_fd = -1;
	pthread_mutex_init(&front->lock, NULL);
	pthread_cond_init(&front->cond, NULL);
	grpc_init();
	front->cq = grpc_completion_queue_create_for_next(NULL);
	front->server = grpc_server_create(NULL, NULL);
	grpc_server_register_completion_queue(front->server, front->cq, NULL);
	rc = grpc_front__listen(front, cfg);
	if (rc < 0)
		goto err_destroy;
	grpc_server_start(front->server);
	if (front->unix_path && cfg->unix_mode && chmod(front->unix_path, cfg->unix_mode) < 0)
		pr_warn("grpc: chmod %s: %s", front->unix_path, strerror(errno));
	if (front->listen_fd >= 0 && (rc = grpc_acceptor__start(front)) < 0)
		goto err_stop;
	for (i = 0; i < (int)(sizeof(front->workers) / sizeof(front->workers[0])); i++) {
		if (pthread_create(&front->workers[i], NULL, grpc_front__worker, front))
			break;
		front->nr_workers++;
	}
	if (!front->nr_workers) {
		rc = -EAGAIN;
		goto err_stop;
	}
	/* two requested calls so that one slow dispatch does not stall accepting */
	grpc_front__request(front);
	grpc_front__request(front);
	pr_info("grpc: serving on %s%s%s", front->unix_path ? front->unix_path : "inherited socket",
		cfg->tcp_listen ? " and " : "", cfg->tcp_listen ? cfg->tcp_listen : "");
	*out = front;
	return 0;

err_stop:
	front->shutdown_tag.done = grpc_front__shutdown_done;
	grpc_server_shutdown_and_notify(front->server, front->cq, &front->shutdown_tag);
	grpc_completion_queue_pluck(front->cq, &front->shutdown_tag,
				    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
err_destroy:
	grpc_server_destroy(front->server);
	grpc_completion_queue_shutdown(front->cq);
	while (
	    grpc_completion_queue_next(front->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	    GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(front->cq);
	if (front->unix_path)
		unlink(front->unix_path);
	grpc_front__free(front);
	grpc_shutdown();
	return rc;
}

void grpc_server__stop(struct grpc_front *front)
{
	struct timespec ts;

	if (!front)
		return;
	grpc_acceptor__stop(front);
	pthread_mutex_lock(&front->lock);
	front->stopping = true;
	pthread_mutex_unlock(&front->lock);
	front->shutdown_tag.done = grpc_front__shutdown_done;
	grpc_server_shutdown_and_notify(front->server, front->cq, &front->shutdown_tag);
	/* Ends every call: streams see RECV_CLOSE_ON_SERVER and unsubscribe.
	 * Repeated because a call may arrive between the two. */
	pthread_mutex_lock(&front->lock);
	while (!front->shut_down || front->live_calls) {
		pthread_mutex_unlock(&front->lock);
		grpc_server_cancel_all_calls(front->server);
		pthread_mutex_lock(&front->lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&front->cond, &front->lock, &ts);
	}
	pthread_mutex_unlock(&front->lock);
	grpc_server_destroy(front->server);
	grpc_completion_queue_shutdown(front->cq);
	for (int i = 0; i < front->nr_workers; i++)
		pthread_join(front->workers[i], NULL);
	grpc_completion_queue_destroy(front->cq);
	if (front->unix_path)
		unlink(front->unix_path);
	grpc_front__free(front);
	grpc_shutdown();
}
