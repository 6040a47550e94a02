/* cli/client.h — vmmctl's side of vmmd's REST API: HTTP over the daemon's
 * Unix socket (libcurl), JSON bodies (jansson), and errors reported once,
 * here, in the shape `vmmctl: CMD: FIELD: MESSAGE`. */
#ifndef VMMD_CLI_CLIENT_H
#define VMMD_CLI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* vmmctl's exit codes. */
enum {
	EXIT_OK = 0,
	EXIT_API = 1,	      /* the API answered with an error */
	EXIT_USAGE = 2,	      /* bad command line */
	EXIT_UNREACHABLE = 3, /* no daemon at the socket */
};

struct client {
	const char *socket;
	const char *cmd;    /* the subcommand, for messages */
	volatile int *stop; /* streams end when *stop becomes nonzero (may be NULL) */
};

/* --socket, else $VMMD_SOCKET, else ./run/vmmd.sock if it exists, else
 * /run/vmmd/vmmd.sock: where vmmd puts it when run by hand or by systemd. */
const char *client__find_socket(const char *opt);

/* REST path of the route named (api/routes.c) with its one {placeholder}
 * set to id (URL-escaped), then "?key=value" pairs for the non-NULL values
 * of query (key, value, key, value, ..., NULL).  malloc'd; NULL on ENOMEM. */
char *client__path(const char *route, const char *id, ...) __attribute__((sentinel));
/* The HTTP verb of that route. */
const char *client__verb(const char *route);

/* One request; body may be NULL.  On success *out is the reply's JSON (a
 * new reference).  Returns an exit code, having printed the error. */
int client__call(struct client *c, const char *verb, const char *path, json_t *body, json_t **out);
/* client__call by route name. */
int client__route(struct client *c, const char *route, const char *id, json_t *body, json_t **out);

/* POST of raw bytes (application/octet-stream), the reply ignored. */
int client__post_raw(struct client *c, const char *path, const void *data, size_t len);

/* A streaming GET: sink gets the body as it arrives, with the response's
 * Content-Type; returning nonzero ends the stream.  Ends when the server
 * closes it, the sink says so or *c->stop is set.  Returns an exit code. */
typedef int (*client_sink)(const char *data, size_t len, const char *content_type, void *opaque);
int client__stream(struct client *c, const char *path, client_sink sink, void *opaque);
/* The same; opened(opaque) is called once the server accepted the stream
 * (its 2xx headers arrived), before any of the body. */
int client__stream_opened(struct client *c, const char *path, client_sink sink,
			  void (*opened)(void *opaque), void *opaque);

/* Prints err's {"error": {...}} as the one line of an API error. */
void client__print_error(const struct client *c, json_t *reply, long http_status);

#endif
