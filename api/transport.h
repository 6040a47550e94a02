/* api/transport.h — how vmmd (daemon/main.c) starts and stops its front
 * ends.  Each transport serves the same struct api_service; the daemon owns
 * the service and outlives the transports (stop them before freeing it).
 *
 * Listening: a transport always serves its Unix socket (unix_path, or the
 * inherited listen_fd when systemd socket-activated it), and additionally
 * TCP when tcp_listen is set — TCP is only allowed with TLS and required
 * client certificates (tls_cert, tls_key, tls_ca all set), the start
 * function refuses it otherwise. */
#ifndef VMMD_API_TRANSPORT_H
#define VMMD_API_TRANSPORT_H

#include "api/service.h"

struct rest_config {
	/* Unix socket path to create (an existing socket file is replaced);
	 * ignored when listen_fd >= 0, then it names the socket in logs only. */
	const char *unix_path;
	/* A listening AF_UNIX stream socket inherited from systemd (vmmd.socket,
	 * LISTEN_FDS), or -1 to bind unix_path. The transport takes ownership. */
	int listen_fd;
	/* "HOST:PORT" ("127.0.0.1:8443", "[::1]:8443"), or NULL for no TCP. */
	const char *tcp_listen;
	const char *tls_cert; /* PEM server certificate chain */
	const char *tls_key;  /* PEM private key */
	const char *tls_ca;   /* PEM CA bundle that client certificates must chain to */
	/* Mode of the Unix socket file (0660 typically; 0 keeps the umask's). */
	unsigned int unix_mode;
};

struct grpc_config {
	const char *unix_path; /* socket file path, without the "unix:" prefix */
	int listen_fd;	       /* as in rest_config; -1 if none */
	const char *tcp_listen;
	const char *tls_cert;
	const char *tls_key;
	const char *tls_ca;
	unsigned int unix_mode;
};

struct rest_server;
struct grpc_front;

/* Start serving svc; returns 0 and *out, or a negative errno after logging
 * why (bad address, missing certificate, socket in use...).  Serving runs
 * on the transport's own threads; these return at once. */
int rest_server__start(struct api_service *svc, const struct rest_config *cfg,
		       struct rest_server **out);
/* Stops accepting, ends open streams (unwatching/detaching them), waits for
 * in-flight handlers, removes the Unix socket file it created, frees. NULL
 * is a no-op. */
void rest_server__stop(struct rest_server *srv);

int grpc_server__start(struct api_service *svc, const struct grpc_config *cfg,
		       struct grpc_front **out);
void grpc_server__stop(struct grpc_front *front);

#endif
