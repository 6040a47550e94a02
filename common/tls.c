/* common/tls.c — the OpenSSL setup both migration channels share. */
#include "common/tls.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

void tls__why(char *why, size_t wlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(why, wlen, "%s: %s", what, e ? buf : "the peer closed the connection");
	ERR_clear_error();
}

SSL_CTX *tls__ctx_new(const struct tls_files *tls, bool server, char *why, size_t wlen)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	if (!ctx) {
		tls__why(why, wlen, "TLS");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, tls->cert) != 1) {
		tls__why(why, wlen, tls->cert);
		goto out_free;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, tls->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls__why(why, wlen, tls->key);
		goto out_free;
	}
	if (SSL_CTX_load_verify_locations(ctx, tls->ca, NULL) != 1) {
		tls__why(why, wlen, tls->ca);
		goto out_free;
	}
	/* Mutual: each side accepts only a peer certified by the CA. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return ctx;
out_free:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL *tls__handshake(SSL_CTX *ctx, int fd, bool server, char *why, size_t wlen)
{
	SSL *ssl = SSL_new(ctx);
	long v;

	if (!ssl || SSL_set_fd(ssl, fd) != 1) {
		tls__why(why, wlen, "TLS");
		goto out_free;
	}
	if ((server ? SSL_accept(ssl) : SSL_connect(ssl)) == 1)
		return ssl;
	v = SSL_get_verify_result(ssl);
	if (v != X509_V_OK) {
		snprintf(why, wlen, "TLS handshake: peer certificate refused: %s",
			 X509_verify_cert_error_string(v));
		ERR_clear_error();
	} else {
		tls__why(why, wlen, "TLS handshake");
	}
out_free:
	SSL_free(ssl);
	return NULL;
}
