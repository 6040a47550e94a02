/* api/grpc_call.h — what api/grpc.c (server, unary calls) and
 * api/grpc_stream.c (streaming calls) share: one call of the gRPC front end
 * and the batches started on it.  Internal to the gRPC transport.
 *
 * Every batch started on a call holds a reference on it, and so does a
 * stream subscription (the daemon's sink may run until unwatch/detach
 * returns); the call is freed when the last one is dropped. */
#ifndef VMMD_API_GRPC_CALL_H
#define VMMD_API_GRPC_CALL_H

#include "api/service.h"

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* A completion-queue tag: the worker that pops it calls done. */
struct grpc_tag {
	void (*done)(struct grpc_tag *tag, bool ok);
};

/* The transport: vmmd holds it as an opaque struct grpc_front. */
struct grpc_front {
	struct api_service *svc;
	grpc_server *server;
	grpc_completion_queue *cq;
	pthread_t workers[4];
	int nr_workers;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int live_calls; /* struct grpc_rpc not yet freed */
	bool stopping;
	bool shut_down; /* the server's shutdown tag came back */
	struct grpc_tag shutdown_tag;
	char *unix_path; /* socket file we created, removed on stop */
	int listen_fd;	 /* inherited listening socket, or -1 */
	int stop_pipe[2];
	pthread_t acceptor;
	bool has_acceptor;
};

enum grpc_rpc_kind {
	RPC_UNKNOWN,
	RPC_UNARY,
	RPC_HEALTH_CHECK,
	RPC_HEALTH_WATCH,
	RPC_WATCH_EVENTS,
	RPC_CONSOLE,
};

struct grpc_out_msg {
	grpc_byte_buffer *buf;
	struct grpc_out_msg *next;
};

struct grpc_rpc {
	struct grpc_front *front;
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array request_md;
	enum grpc_rpc_kind kind;
	const struct api_route *route;
	char name[64]; /* route name for the metrics, "Health/Check", ... */
	uint64_t start_usec;

	pthread_mutex_t lock;
	int refs;
	struct grpc_tag new_tag, recv_tag, send_tag, close_tag, status_tag;
	void (*on_recv)(struct grpc_rpc *rpc, bool ok);
	grpc_byte_buffer *recv_buf;
	int cancelled;
	bool close_started; /* RECV_CLOSE_ON_SERVER is pending */
	bool md_sent;	    /* initial metadata went out */

	/* Server streaming: messages wait here, one SEND_MESSAGE at a time. */
	struct grpc_out_msg *head, *tail;
	unsigned int queued;
	grpc_byte_buffer *inflight;
	bool sending;
	bool closed;	     /* no more messages: finishing or cancelled */
	bool status_pending; /* send the status once the queue drained */
	bool status_started;
	bool subscribed; /* watch/console handle held */
	uint64_t handle;

	/* The final status, kept alive until its batch completes. */
	grpc_status_code status;
	char status_msg[256];
	char status_field[128];
	grpc_slice status_details;
	grpc_metadata trailer;
	grpc_byte_buffer *reply;
	int http_status;
};

void grpc_rpc__get(struct grpc_rpc *rpc);
void grpc_rpc__put(struct grpc_rpc *rpc);
/* Starts one RECV_MESSAGE;
 * rpc->on_recv gets the result in rpc->recv_buf. */
int grpc_rpc__recv(struct grpc_rpc *rpc, void (*on_recv)(struct grpc_rpc *rpc, bool ok));
/* Decodes rpc->recv_buf (consumed) as desc: NULL when it is absent or not
 * a valid message of that type. */
ProtobufCMessage *grpc_rpc__unpack(struct grpc_rpc *rpc, const ProtobufCMessageDescriptor *desc,
				   bool *absent);
grpc_byte_buffer *grpc_rpc__pack(const ProtobufCMessage *msg);
/* Ends the call: reply (may be NULL, owned) then the status.  For a call
 * that streams, after the messages queued before. */
void grpc_rpc__finish(struct grpc_rpc *rpc, enum api_code code, const char *field,
		      grpc_byte_buffer *reply, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void grpc_rpc__finish_error(struct grpc_rpc *rpc, const struct api_error *err);
uint64_t grpc_now_usec(void);

/* api/grpc_listen.c */
struct grpc_config;
/* Adds the listening ports of cfg to front->server (before it starts). */
int grpc_front__listen(struct grpc_front *front, const struct grpc_config *cfg);
/* For an inherited listening socket (front->listen_fd): accept on a thread. */
int grpc_acceptor__start(struct grpc_front *front);
void grpc_acceptor__stop(struct grpc_front *front);

/* api/grpc_stream.c */
void grpc_stream__start(struct grpc_rpc *rpc);
/* Queues msg on a streaming call; nonzero when the call takes no more. */
int grpc_stream__send(struct grpc_rpc *rpc, const ProtobufCMessage *msg);
/* Called with rpc->lock held: starts the status batch now. */
void grpc_stream__start_status_locked(struct grpc_rpc *rpc);

#endif
