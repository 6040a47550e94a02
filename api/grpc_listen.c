/* api/grpc_listen.c — where the gRPC front end listens: its Unix socket,
 * TCP with TLS and required client certificates, or a listening socket
 * inherited from systemd.  grpc core cannot adopt a listening socket, only
 * connected ones (grpc_server_add_channel_from_fd), so for that one a
 * thread accepts and hands each connection over. */
#include "api/grpc_call.h"
#include "api/transport.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void *grpc_acceptor__run(void *arg)
{
	struct grpc_front *front = arg;
	struct pollfd pfd[2] = {
	    {.fd = front->listen_fd, .events = POLLIN},
	    {.fd = front->stop_pipe[0], .events = POLLIN},
	};

	for (;;) {
		grpc_server_credentials *creds;
		int fd;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			pr_err("grpc: poll: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents)
			break;
		fd = accept4(front->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
				pr_warn("grpc: accept: %s", strerror(errno));
			continue;
		}
		creds = grpc_insecure_server_credentials_create();
		grpc_server_add_channel_from_fd(front->server, fd, creds);
		grpc_server_credentials_release(creds);
	}
	return NULL;
}

int grpc_acceptor__start(struct grpc_front *front)
{
	if (pipe2(front->stop_pipe, O_CLOEXEC) < 0)
		return -errno;
	if (pthread_create(&front->acceptor, NULL, grpc_acceptor__run, front)) {
		close(front->stop_pipe[0]);
		close(front->stop_pipe[1]);
		return -EAGAIN;
	}
	front->has_acceptor = true;
	return 0;
}

void grpc_acceptor__stop(struct grpc_front *front)
{
	if (front->listen_fd >= 0 && !front->has_acceptor) {
		close(front->listen_fd);
		front->listen_fd = -1;
	}
	if (!front->has_acceptor)
		return;
	if (write(front->stop_pipe[1], "x", 1) < 0)
		pr_warn("grpc: cannot stop the acceptor: %s", strerror(errno));
	pthread_join(front->acceptor, NULL);
	front->has_acceptor = false;
	close(front->stop_pipe[0]);
	close(front->stop_pipe[1]);
	close(front->listen_fd);
	front->listen_fd = -1;
}

static char *grpc_read_pem(const char *what, const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;
	long size;

	if (!f) {
		pr_err("grpc: %s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && size < (1 << 20) &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1)))
		len = fread(buf, 1, (size_t)size, f);
	fclose(f);
	if (!buf || len == 0) {
		pr_err("grpc: %s %s: cannot read it (empty or over 1 MiB?)", what, path);
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

/* TCP is served only with TLS and verified client certificates: the API
 * creates processes that open host files. */
static int grpc_front__add_tcp(struct grpc_front *front, const struct grpc_config *cfg)
{
	grpc_ssl_pem_key_cert_pair pair;
	grpc_server_credentials *creds;
	char *cert, *key = NULL, *ca = NULL;
	int rc = -EINVAL;

	if (!cfg->tls_cert || !cfg->tls_key || !cfg->tls_ca) {
		pr_err("grpc: TCP %s needs a TLS certificate, key and client CA", cfg->tcp_listen);
		return -EINVAL;
	}
	cert = grpc_read_pem("TLS certificate", cfg->tls_cert);
	if (cert)
		key = grpc_read_pem("TLS key", cfg->tls_key);
	if (key)
		ca = grpc_read_pem("TLS client CA", cfg->tls_ca);
	if (!ca)
		goto out;
	pair.private_key = key;
	pair.cert_chain = cert;
	creds = grpc_ssl_server_credentials_create_ex(
	    ca, &pair, 1, GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, NULL);
	if (!creds) {
		pr_err("grpc: TCP %s: cannot use the TLS certificate/key/CA", cfg->tcp_listen);
		goto out;
	}
	if (grpc_server_add_http2_port(front->server, cfg->tcp_listen, creds) == 0)
		pr_err("grpc: cannot listen on %s (bad address or in use)", cfg->tcp_listen);
	else
		rc = 0;
	grpc_server_credentials_release(creds);
out:
	free(cert);
	free(key);
	free(ca);
	return rc;
}

int grpc_front__listen(struct grpc_front *front, const struct grpc_config *cfg)
{
	grpc_server_credentials *creds;
	char addr[4200];
	int port;

	if (cfg->tcp_listen && grpc_front__add_tcp(front, cfg) < 0)
		return -EINVAL;
	if (cfg->listen_fd >= 0) {
		front->listen_fd = cfg->listen_fd;
		return 0;
	}
	if (!cfg->unix_path)
		return cfg->tcp_listen ? 0 : -EINVAL;
	snprintf(addr, sizeof(addr), "unix:%s", cfg->unix_path);
	creds = grpc_insecure_server_credentials_create();
	port = grpc_server_add_http2_port(front->server, addr, creds);
	grpc_server_credentials_release(creds);
	if (port == 0) {
		pr_err("grpc: cannot listen on %s (path too long, directory missing or in use?)",
		       cfg->unix_path);
		return -EADDRINUSE;
	}
	front->unix_path = strdup(cfg->unix_path);
	return 0;
}
