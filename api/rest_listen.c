/* api/rest_listen.c — the REST transport's listening sockets: the Unix
 * socket (stale files replaced, live ones refused), TCP, and the PEM files
 * TLS needs in memory.  Errors are logged here, with the path named. */
#include "api/rest.h"
#include "common/log.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Binds path, replacing a stale socket file but never a live one (another
 * vmmd answering there) nor a file that is not a socket. */
int rest_listen__unix(const char *path, unsigned int mode)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		pr_err("rest: socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			pr_err("rest: %s exists and is not a socket", path);
			r = -EEXIST;
			goto out_close;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			pr_err("rest: %s: another server is listening there", path);
			r = -EADDRINUSE;
			goto out_close;
		}
		unlink(path);
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		pr_err("rest: cannot bind %s: %s", path, strerror(errno));
		goto out_close;
	}
	if (mode && chmod(path, mode) < 0) {
		r = -errno;
		pr_err("rest: cannot chmod %s: %s", path, strerror(errno));
		goto out_unlink;
	}
	if (listen(fd, 64) < 0) {
		r = -errno;
		goto out_unlink;
	}
	return fd;
out_unlink:
	unlink(path);
out_close:
	close(fd);
	return r;
}

/* "HOST:PORT" or "[V6]:PORT". */
int rest_listen__tcp(const char *spec)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *ai;
	char host[256];
	const char *port = strrchr(spec, ':');
	size_t hlen;
	int fd, one = 1, r;

	if (!port || port == spec || (size_t)(port - spec) >= sizeof(host)) {
		pr_err("rest: TCP address %s is not HOST:PORT", spec);
		return -EINVAL;
	}
	hlen = (size_t)(port - spec);
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	if (host[0] == '[' && host[hlen - 1] == ']') {
		memmove(host, host + 1, hlen - 2);
		host[hlen - 2] = '\0';
	}
	r = getaddrinfo(host, port + 1, &hints, &ai);
	if (r) {
		pr_err("rest: TCP address %s: %s", spec, gai_strerror(r));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
		r = -errno;
		pr_err("rest: cannot listen on %s: %s", spec, strerror(errno));
		close(fd);
		goto out;
	}
	r = fd;
out:
	freeaddrinfo(ai);
	return r;
}

/* A PEM file as a string: MHD takes certificates and keys in memory. */
char *rest_listen__read_pem(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, n;

	if (!f) {
		pr_err("rest: cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		char *b = realloc(buf, len + 4096 + 1);

		if (!b) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = b;
		n = fread(buf + len, 1, 4096, f);
		len += n;
		buf[len] = '\0';
		if (n < 4096 || len > (1u << 20))
			break;
	}
	fclose(f);
	return buf;
}
