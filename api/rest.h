/* api/rest.h — the parts of the REST transport (api/rest*.c) that are pure
 * functions of a request line, so tests/unit/test_api_rest.c can drive them
 * without a server.  The server itself is started through api/transport.h. */
#ifndef VMMD_API_REST_H
#define VMMD_API_REST_H

#include "api/error.h"
#include "api/service.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Routes of the REST front end that are not methods of the Vmm service:
 * console input (a raw body), /metrics and the OpenAPI document. */
extern const struct api_route rest_extra_routes[];
extern const size_t rest_nr_extra_routes;

#define REST_MAX_PARAMS	   4
#define REST_MAX_PARAM_LEN 256

struct rest_param {
	char name[64];			/* request field named by "{name}" */
	char value[REST_MAX_PARAM_LEN]; /* the path segment's text there */
};

struct rest_match {
	const struct api_route *route;
	unsigned int nr_params;
	struct rest_param params[REST_MAX_PARAMS];
	char allow[64]; /* verbs the path takes, for a 405's Allow header */
};

/* Finds the route of routes[0..nr) for verb and path.  Returns 0 with m
 * filled, -ENOENT when no route has that path, -EPERM when some do but not
 * with that verb (m->allow lists theirs; call again with another table to
 * add to it, as m->allow is only appended to). */
int rest_route__match(const struct api_route *routes, size_t nr, const char *verb, const char *path,
		      struct rest_match *m);

/* Matches one path segment against one pattern segment: literal text with
 * at most one "{field}" in it ("{id}:start", "console:stream").  A
 * placeholder takes one or more characters other than ':' (ids and names
 * never hold one), so "x:start" is never the {id} of GET /v1/vms/{id}. */
bool rest_route__match_segment(const char *pat, size_t plen, const char *seg, size_t slen,
			       struct rest_param *p);

/* Sets field name of message type d in the JSON object obj from the text
 * value (a query parameter or a path placeholder), converted to the JSON
 * that api_json__to_message expects for the field's type.  Errors name the
 * field: unknown, not settable from text (message, repeated), or a value
 * that is not of its type. */
int rest_route__set_field(const ProtobufCMessageDescriptor *d, json_t *obj, const char *name,
			  const char *value, struct api_error *err);

/* Listening sockets (api/rest_listen.c): a listening fd, or a negative
 * errno after logging why.  unix_mode 0 keeps the umask's mode. */
int rest_listen__unix(const char *path, unsigned int mode);
int rest_listen__tcp(const char *host_port); /* "HOST:PORT", "[V6]:PORT" */
/* The file's text, NUL-terminated (malloc'd), or NULL after logging why. */
char *rest_listen__read_pem(const char *path);

/* The OpenAPI document, api/openapi.json, compiled in (api/rest.am). */
extern const char rest_openapi_json[];
extern const size_t rest_openapi_json_len;

/* Streams (api/rest_stream.c).  Each returns 0 and a response to queue, or
 * NULL with err filled.  *stopping turns true when the server stops, and
 * conn_fd is the client's socket (or -1): the streams end within a second
 * of either. */
struct MHD_Response;
struct MHD_Response *rest_stream__events(struct api_service *svc, const bool *stopping, int conn_fd,
					 const Vmmd__V1__WatchEventsRequest *req,
					 struct api_error *err);
struct MHD_Response *rest_stream__console(struct api_service *svc, const bool *stopping,
					  int conn_fd, const char *vm_id, struct api_error *err);
int rest_stream__console_write(struct api_service *svc, const char *vm_id, const uint8_t *data,
			       size_t len, struct api_error *err);

#endif
