/* api/service.h — the one contract between the transports (REST in
 * api/rest.c, gRPC in api/grpc.c) and the daemon that implements the Vmm
 * service (daemon/).  Transports only decode a request into its protobuf
 * message, call the handler named by the method, and encode the reply or the
 * error: no VM logic lives in a transport, and a new method is one row in
 * api/routes.c plus one handler.
 *
 * Threading: handlers and stream callbacks may be called from any transport
 * thread at once; the daemon locks internally.  Handlers must not block for
 * long (long work becomes an Operation). */
#ifndef VMMD_API_SERVICE_H
#define VMMD_API_SERVICE_H

#include "api/error.h"
#include "api/vmm.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A unary handler: req is the decoded request (never NULL); on success
 * *resp is a message of the method's response type, allocated so that
 * protobuf_c_message_free_unpacked(*resp, NULL) frees it (build it with the
 * api_msg__* helpers or pack+unpack).  Returns 0, or a negative errno with
 * err filled (code, message, field). */
typedef int (*api_unary_fn)(void *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
			    struct api_error *err);

/* A route: gRPC path "/vmmd.v1.Vmm/<name>", and the REST verb + path in
 * which "{field}" segments fill the request field of that name (e.g.
 * "/v1/vms/{id}:start" sets StartVmRequest.id).  Defined in api/routes.c. */
struct api_route {
	const char *name; /* "StartVm" */
	const char *http_verb;
	const char *http_path;
	const ProtobufCMessageDescriptor *req_desc;
	const ProtobufCMessageDescriptor *resp_desc;
	bool streaming; /* WatchEvents, ConsoleStream: no unary handler */
};

extern const struct api_route api_routes[];
extern const size_t api_nr_routes;

const struct api_route *api_route__by_name(const char *name);

/* Stream sinks are called from daemon threads; they must not block (queue
 * and return).  A sink returning nonzero ends the subscription.  A bytes
 * sink called with data NULL is told the source ended (a console whose VM
 * stopped); it is detached after that call. */
typedef int (*api_event_sink)(const Vmmd__V1__Event *ev, void *opaque);
typedef int (*api_bytes_sink)(const uint8_t *data, size_t len, void *opaque);

struct api_service {
	void *ctx;
	/* Finds the unary handler for a route name, or NULL (UNIMPLEMENTED). */
	api_unary_fn (*handler)(void *ctx, const char *name);

	/* WatchEvents: replays events after req->after_seq that are still kept,
	 * then streams new ones (filtered by vm_id if set) until unwatch. */
	int (*watch_events)(void *ctx, const Vmmd__V1__WatchEventsRequest *req, api_event_sink sink,
			    void *opaque, uint64_t *handle, struct api_error *err);
	void (*unwatch_events)(void *ctx, uint64_t handle);

	/* ConsoleStream: serial output of a VM from now on; write sends input. */
	int (*console_attach)(void *ctx, const char *vm_id, api_bytes_sink sink, void *opaque,
			      uint64_t *handle, struct api_error *err);
	int (*console_write)(void *ctx, uint64_t handle, const uint8_t *data, size_t len);
	void (*console_detach)(void *ctx, uint64_t handle);

	/* Prometheus text exposition for GET /metrics (malloc'd). */
	int (*metrics)(void *ctx, char **text, size_t *len);
	/* Transports report each request here for the API metrics. */
	void (*observe_request)(void *ctx, const char *transport, const char *route,
				int http_status, uint64_t usec);
};

#endif
