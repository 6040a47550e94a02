/* common/tls.h — mutual TLS 1.3 over a connected TCP socket (OpenSSL), as
 * both live-migration channels use it: vmm to vmm (migration/stream.c) and
 * vmmd to vmmd (daemon/migrate_chan.c).  Each side presents its certificate
 * and accepts only a peer whose certificate chains to the CA. */
#ifndef VMMD_COMMON_TLS_H
#define VMMD_COMMON_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct tls_files {
	const char *cert, *key, *ca; /* all three, or none for plain TCP */
};

/* A TLS 1.3-only context with our certificate and key, verifying the peer
 * against ca (mandatory peer certificate).  NULL with why filled. */
SSL_CTX *tls__ctx_new(const struct tls_files *tls, bool server, char *why, size_t wlen);
/* Handshake on fd (blocking, the socket's timeouts apply); NULL with why
 * naming a refused certificate ("TLS handshake: peer certificate refused:
 * ...").  fd stays the caller's. */
SSL *tls__handshake(SSL_CTX *ctx, int fd, bool server, char *why, size_t wlen);
/* "what: <OpenSSL's last error>" into why; clears the error queue. */
void tls__why(char *why, size_t wlen, const char *what);

#endif
