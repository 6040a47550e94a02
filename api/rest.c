/* api/rest.c — the REST front end of vmmd (libmicrohttpd): a Unix socket,
 * and TCP only with TLS and verified client certificates.  A request is
 * matched against api_routes[], decoded into the method's request message
 * (JSON body, then query parameters, then path placeholders), handed to
 * the service's handler, and its reply or error encoded as JSON.  No VM
 * logic lives here.
 *
 * Threads: one per connection (MHD_USE_THREAD_PER_CONNECTION), so a
 * handler or a stream waiting for data only holds up its own client. */
#include "api/rest.h"
#include "api/json.h"
#include "api/transport.h"
#include "common/log.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REST_MAX_BODY (1u << 20)

struct rest_server {
	struct api_service *svc;
	struct MHD_Daemon *unix_d;
	struct MHD_Daemon *tcp_d;
	char *unix_path; /* the socket file we created, removed on stop */
	char *tls[3];	 /* PEM key, cert, CA: MHD keeps pointers to them */
	bool stopping;	 /* read by streams, under __atomic */
};

/* One HTTP request, from its headers to the end of its response. */
struct rest_request {
	struct rest_server *srv;
	uint64_t t0;
	char *body;
	size_t len;
	bool too_large;
	bool tls;
};

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void rest__observe(struct rest_request *rq, const char *route, int status)
{
	struct api_service *svc = rq->srv->svc;

	if (svc->observe_request)
		svc->observe_request(svc->ctx, "rest", route, status, now_usec() - rq->t0);
}

static enum MHD_Result rest__queue(struct rest_request *rq, struct MHD_Connection *c,
				   const char *route, int status, struct MHD_Response *resp)
{
	enum MHD_Result r;

	if (!resp)
		return MHD_NO; /* out of memory: MHD drops the connection */
	r = MHD_queue_response(c, (unsigned int)status, resp);
	MHD_destroy_response(resp);
	rest__observe(rq, route, status);
	return r;
}

static struct MHD_Response *response__text(const char *type, const char *text, size_t len,
					   enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)text, mode);

	if (resp)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	return resp;
}

/* Sends j (a reference taken) as the JSON body. */
static enum MHD_Result rest__json(struct rest_request *rq, struct MHD_Connection *c,
				  const char *route, int status, json_t *j)
{
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (!text)
		return MHD_NO;
	return rest__queue(
	    rq, c, route, status,
	    response__text("application/json", text, strlen(text), MHD_RESPMEM_MUST_FREE));
}

static enum MHD_Result rest__error(struct rest_request *rq, struct MHD_Connection *c,
				   const char *route, int status, const struct api_error *err)
{
	return rest__json(rq, c, route, status ? status : api_error__http_status(err),
			  api_error__to_json(err));
}

/* Client certificates: MHD asks for one when given a CA (HTTPS_MEM_TRUST)
 * but lets the handshake finish without it, so the check is here. */
static bool rest__client_verified(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t s = ci ? (gnutls_session_t)ci->tls_session : NULL;
	unsigned int status = 0, n = 0;

	if (!s || gnutls_certificate_type_get(s) != GNUTLS_CRT_X509 ||
	    !gnutls_certificate_get_peers(s, &n) || !n)
		return false;
	return gnutls_certificate_verify_peers2(s, &status) == 0 && status == 0;
}

struct query_ctx {
	const ProtobufCMessageDescriptor *desc;
	json_t *obj;
	struct api_error *err;
	int r;
};

static enum MHD_Result query__one(void *cls, enum MHD_ValueKind kind, const char *key,
				  const char *value)
{
	struct query_ctx *q = cls;

	q->r = rest_route__set_field(q->desc, q->obj, key, value ? value : "", q->err);
	return q->r ? MHD_NO : MHD_YES;
}

/* The request message: the JSON body, then the query, then the path's
 * placeholders (which win: the URL names the object acted on). Errors
 * are those of api_json__parse, naming the field. */
static int rest__decode(struct rest_request *rq, struct MHD_Connection *c,
			const struct rest_match *m, bool body_is_json, ProtobufCMessage **out,
			struct api_error *err)
{
	const ProtobufCMessageDescriptor *d = m->route->req_desc;
	struct query_ctx q = {d, NULL, err, 0};
	json_error_t jerr;
	int r;

	if (body_is_json && rq->len) {
		q.obj =
		    json_loadb(rq->body, rq->len,
			       JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
		if (!q.obj)
			return api_error__set(err, API_INVALID_ARGUMENT, NULL,
					      "invalid JSON at line %d column %d: %s", jerr.line,
					      jerr.column, jerr.text);
		if (!json_is_object(q.obj)) {
			json_decref(q.obj);
			return api_error__set(err, API_INVALID_ARGUMENT, NULL,
					      "the body must be a JSON object");
		}
	} else {
		q.obj = json_object();
	}
	if (!q.obj)
		return -ENOMEM;
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query__one, &q);
	r = q.r;
	for (unsigned int i = 0; !r && i < m->nr_params; i++) {
		json_object_del(q.obj, m->params[i].name);
		r = rest_route__set_field(d, q.obj, m->params[i].name, m->params[i].value, err);
	}
	if (!r)
		r = api_json__to_message(d, q.obj, out, err);
	json_decref(q.obj);
	return r;
}

static enum MHD_Result rest__unary(struct rest_request *rq, struct MHD_Connection *c,
				   const struct api_route *route, ProtobufCMessage *req)
{
	struct api_service *svc = rq->srv->svc;
	api_unary_fn fn = svc->handler(svc->ctx, route->name);
	ProtobufCMessage *resp = NULL;
	struct api_error err = {0};

	if (!fn) {
		api_error__set(&err, API_UNIMPLEMENTED, NULL, "%s is not implemented", route->name);
		return rest__error(rq, c, route->name, 0, &err);
	}
	if (fn(svc->ctx, req, &resp, &err) < 0 || !resp) {
		if (!err.code[0])
			api_error__set(&err, API_INTERNAL, NULL, "%s failed", route->name);
		return rest__error(rq, c, route->name, 0, &err);
	}
	json_t *j = api_json__from_message(resp);

	protobuf_c_message_free_unpacked(resp, NULL);
	return rest__json(rq, c, route->name, 200, j);
}

static enum MHD_Result rest__metrics(struct rest_request *rq, struct MHD_Connection *c)
{
	struct api_service *svc = rq->srv->svc;
	struct api_error err = {0};
	char *text = NULL;
	size_t len = 0;

	if (!svc->metrics || svc->metrics(svc->ctx, &text, &len) < 0 || !text) {
		api_error__set(&err, API_UNAVAILABLE, NULL, "metrics are not available");
		return rest__error(rq, c, "Metrics", 0, &err);
	}
	return rest__queue(rq, c, "Metrics", 200,
			   response__text("text/plain; version=0.0.4; charset=utf-8", text, len,
					  MHD_RESPMEM_MUST_FREE));
}

/* Routes the transport answers itself, and streams. */
static enum MHD_Result rest__special(struct rest_request *rq, struct MHD_Connection *c,
				     const struct api_route *route, ProtobufCMessage *req)
{
	struct rest_server *srv = rq->srv;
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	int fd = ci ? ci->connect_fd : -1;
	struct MHD_Response *resp = NULL;
	struct api_error err = {0};

	if (!strcmp(route->name, "Metrics"))
		return rest__metrics(rq, c);
	if (!strcmp(route->name, "OpenApi"))
		return rest__queue(rq, c, route->name, 200,
				   response__text("application/json", rest_openapi_json,
						  rest_openapi_json_len, MHD_RESPMEM_PERSISTENT));
	if (!strcmp(route->name, "ConsoleWrite")) {
		const Vmmd__V1__ConsoleStreamRequest *cr = (const void *)req;

		if (rest_stream__console_write(srv->svc, cr->vm_id, (const uint8_t *)rq->body,
					       rq->len, &err) < 0)
			return rest__error(rq, c, route->name, 0, &err);
		return rest__json(rq, c, route->name, 200, json_object());
	}
	if (!strcmp(route->name, "WatchEvents")) {
		Vmmd__V1__WatchEventsRequest *wr = (void *)req;
		const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");

		/* A reconnecting EventSource resumes after the last event it saw. */
		if (last && !wr->after_seq)
			wr->after_seq = strtoull(last, NULL, 10);
		resp = rest_stream__events(srv->svc, &srv->stopping, fd, wr, &err);
	} else if (!strcmp(route->name, "ConsoleStream")) {
		resp = rest_stream__console(srv->svc, &srv->stopping, fd,
					    ((Vmmd__V1__ConsoleStreamRequest *)req)->vm_id, &err);
	} else {
		api_error__set(&err, API_UNIMPLEMENTED, NULL, "%s is not implemented", route->name);
	}
	if (!resp)
		return rest__error(rq, c, route->name, 0, &err);
	return rest__queue(rq, c, route->name, 200, resp);
}

static enum MHD_Result rest__dispatch(struct rest_request *rq, struct MHD_Connection *c,
				      const char *url, const char *method)
{
	struct rest_match m = {0};
	struct api_error err = {0};
	ProtobufCMessage *req = NULL;
	enum MHD_Result ret;
	int r;

	r = rest_route__match(api_routes, api_nr_routes, method, url, &m);
	if (r) {
		int r2 =
		    rest_route__match(rest_extra_routes, rest_nr_extra_routes, method, url, &m);

		r = !r2 ? 0 : (r == -EPERM || r2 == -EPERM) ? -EPERM : -ENOENT;
	}
	if (r == -ENOENT) {
		api_error__set(&err, API_NOT_FOUND, NULL, "no such path: %s %.160s", method, url);
		return rest__error(rq, c, "unknown", 404, &err);
	}
	if (r == -EPERM) {
		struct MHD_Response *resp;
		json_t *j;
		char *text;

		api_error__set(&err, API_UNIMPLEMENTED, NULL,
			       "%s is not allowed on %.160s (allowed: %s)", method, url, m.allow);
		j = api_error__to_json(&err);
		text = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		if (!text)
			return MHD_NO;
		resp =
		    response__text("application/json", text, strlen(text), MHD_RESPMEM_MUST_FREE);
		if (resp)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, m.allow);
		return rest__queue(rq, c, "unknown", 405, resp);
	}
	if (rq->too_large) {
		api_error__set(&err, API_RESOURCE_EXHAUSTED, NULL,
			       "request body larger than %u bytes", REST_MAX_BODY);
		return rest__error(rq, c, m.route->name, 413, &err);
	}
	/* Console input is raw bytes, not JSON. */
	r = rest__decode(rq, c, &m, strcmp(m.route->name, "ConsoleWrite") != 0, &req, &err);
	if (r < 0) {
		if (!err.code[0])
			api_error__set(&err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
		return rest__error(rq, c, m.route->name, 0, &err);
	}
	if (m.route->streaming)
		ret = rest__special(rq, c, m.route, req);
	else
		ret = rest__unary(rq, c, m.route, req);
	protobuf_c_message_free_unpacked(req, NULL);
	return ret;
}

static enum MHD_Result rest__access(void *cls, struct MHD_Connection *c, const char *url,
				    const char *method, const char *version,
				    const char *upload_data, size_t *upload_data_size,
				    void **con_cls)
{
	struct rest_server *srv = cls;
	struct rest_request *rq = *con_cls;
	struct api_error err = {0};

	if (!rq) {
		const char *cl =
		    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		rq->srv = srv;
		rq->t0 = now_usec();
		*con_cls = rq;
		if (MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION) &&
		    !rest__client_verified(c)) {
			api_error__set(
			    &err, API_PERMISSION_DENIED, NULL,
			    "a client certificate signed by the configured CA is required");
			return rest__error(rq, c, "unknown", 403, &err);
		}
		/* Refused before the body is sent (curl waits for 100 Continue). */
		if (cl && strtoull(cl, NULL, 10) > REST_MAX_BODY) {
			api_error__set(&err, API_RESOURCE_EXHAUSTED, NULL,
				       "request body of %s bytes is larger than %u", cl,
				       REST_MAX_BODY);
			return rest__error(rq, c, "unknown", 413, &err);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		/* Chunked bodies have no length up front: count as they come,
		 * drop the rest once over the limit, answer 413 at the end. */
		if (!rq->too_large && rq->len + n <= REST_MAX_BODY) {
			char *b = realloc(rq->body, rq->len + n + 1);

			if (!b)
				return MHD_NO;
			memcpy(b + rq->len, upload_data, n);
			rq->body = b;
			rq->len += n;
			b[rq->len] = '\0';
		} else {
			rq->too_large = true;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	return rest__dispatch(rq, c, url, method);
}

static void rest__completed(void *cls, struct MHD_Connection *c, void **con_cls,
			    enum MHD_RequestTerminationCode toe)
{
	struct rest_request *rq = *con_cls;

	if (rq) {
		free(rq->body);
		free(rq);
	}
	*con_cls = NULL;
}

static void rest__mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	pr_warn("rest: %s", buf);
}

static struct MHD_Daemon *rest__start_mhd(struct rest_server *srv, int fd, bool tls)
{
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			     MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem tls_opts[] = {
	    {MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls[0]},
	    {MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls[1]},
	    {MHD_OPTION_HTTPS_MEM_TRUST, 0, srv->tls[2]},
	    {MHD_OPTION_END, 0, NULL},
	};

	if (tls)
		flags |= MHD_USE_TLS;
	return MHD_start_daemon(flags, 0, NULL, NULL, rest__access, srv, MHD_OPTION_EXTERNAL_LOGGER,
				rest__mhd_log, srv, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_NOTIFY_COMPLETED, rest__completed, srv,
				MHD_OPTION_CONNECTION_TIMEOUT, 0u, MHD_OPTION_ARRAY,
				tls ? tls_opts : &tls_opts[3], MHD_OPTION_END);
}

int rest_server__start(struct api_service *svc, const struct rest_config *cfg,
		       struct rest_server **out)
{
	struct rest_server *srv;
	int fd = -1, r;

	*out = NULL;
	if (cfg->tcp_listen && (!cfg->tls_cert || !cfg->tls_key || !cfg->tls_ca)) {
		pr_err("rest: TCP %s needs TLS: a certificate, its key and the CA of the clients",
		       cfg->tcp_listen);
		return -EINVAL;
	}
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->svc = svc;
	if (cfg->listen_fd >= 0) {
		fd = cfg->listen_fd;
	} else {
		fd = rest_listen__unix(cfg->unix_path, cfg->unix_mode);
		if (fd < 0) {
			r = fd;
			goto out_free;
		}
		srv->unix_path = strdup(cfg->unix_path);
	}
	srv->unix_d = rest__start_mhd(srv, fd, false);
	if (!srv->unix_d) {
		pr_err("rest: cannot serve %s", cfg->unix_path ? cfg->unix_path : "socket");
		close(fd);
		r = -EIO;
		goto out_stop;
	}
	if (cfg->tcp_listen) {
		srv->tls[0] = rest_listen__read_pem(cfg->tls_key);
		srv->tls[1] = rest_listen__read_pem(cfg->tls_cert);
		srv->tls[2] = rest_listen__read_pem(cfg->tls_ca);
		r = -EINVAL;
		if (!srv->tls[0] || !srv->tls[1] || !srv->tls[2])
			goto out_stop;
		fd = rest_listen__tcp(cfg->tcp_listen);
		if (fd < 0) {
			r = fd;
			goto out_stop;
		}
		srv->tcp_d = rest__start_mhd(srv, fd, true);
		if (!srv->tcp_d) {
			pr_err("rest: cannot serve TLS on %s (bad certificate or key?)",
			       cfg->tcp_listen);
			close(fd);
			goto out_stop;
		}
	}
	*out = srv;
	return 0;
out_stop:
	rest_server__stop(srv);
	return r;
out_free:
	free(srv);
	return r;
}

void rest_server__stop(struct rest_server *srv)
{
	if (!srv)
		return;
	/* Streams poll this once a second; MHD_stop_daemon joins them. */
	__atomic_store_n(&srv->stopping, true, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++) {
		struct MHD_Daemon *d = i ? srv->tcp_d : srv->unix_d;

		/* Closes the listening socket too, even one it was given. */
		if (d)
			MHD_stop_daemon(d);
	}
	if (srv->unix_path)
		unlink(srv->unix_path);
	free(srv->unix_path);
	for (int i = 0; i < 3; i++)
		free(srv->tls[i]);
	free(srv);
}
