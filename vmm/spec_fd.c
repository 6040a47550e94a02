/* vmm/spec_fd.c — the VM spec read from a descriptor instead of argv.
 * vmmd starts workers as `vmm --spec-fd 3` and writes the options into a
 * socket: a spec on the command line is readable by every local user in
 * /proc and bounded by ARG_MAX. */
#include "vmm/spec_fd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static char *spec_buf, **spec_argv, spec_fd_arg[16];

char **spec_fd__split(char *buf, size_t len, int *n)
{
	size_t count = 0, i;
	char **v;

	if (len && buf[len - 1]) {
		errno = EINVAL;
		return NULL;
	}
	for (i = 0; i < len; i++)
		count += !buf[i];
	v = calloc(count + 1, sizeof(*v));
	if (!v)
		return NULL;
	count = 0;
	for (i = 0; i < len; i += strlen(buf + i) + 1)
		v[count++] = buf + i;
	*n = (int)count;
	return v;
}

/* Everything readable from fd, from offset 0 when it can seek. */
static char *read_all(int fd, size_t *len, char *why, size_t whylen)
{
	size_t cap = 4096, got = 0;
	char *buf = malloc(cap);

	if (!buf) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	lseek(fd, 0, SEEK_SET);
	for (;;) {
		ssize_t r;

		if (got == cap) {
			char *b = cap < SPEC_FD_MAX ? realloc(buf, cap * 2) : NULL;

			if (!b) {
				snprintf(why, whylen, "--spec-fd: the spec is larger than %u bytes",
					 SPEC_FD_MAX);
				free(buf);
				return NULL;
			}
			buf = b;
			cap *= 2;
		}
		r = read(fd, buf + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(why, whylen, "--spec-fd %d: %s", fd, strerror(errno));
			free(buf);
			return NULL;
		}
		if (!r)
			break;
		got += (size_t)r;
	}
	*len = got;
	return buf;
}

/* A memfd holding buf, open across exec, or -1. */
static int keep_in_memfd(const char *buf, size_t len)
{
	int fd = memfd_create("vmm-spec", 0);
	size_t off = 0;

	if (fd < 0)
		return -1;
	while (off < len) {
		ssize_t w = write(fd, buf + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	return fd;
}

int spec_fd__expand(int argc, char **argv, int *out_argc, char ***out_argv, char *why,
		    size_t whylen)
{
	char *end, *buf, **opts, **v;
	struct stat st;
	size_t len, rest;
	long fd;
	int n;

	*out_argv = NULL;
	if (argc < 2 || strcmp(argv[1], "--spec-fd") != 0)
		return 0;
	errno = 0;
	fd = argc > 2 ? strtol(argv[2], &end, 10) : -1;
	if (argc < 3 || errno || *end || fd < 0 || fd > INT_MAX || fstat((int)fd, &st)) {
		snprintf(why, whylen, "--spec-fd needs an open file descriptor, not '%s'",
			 argc > 2 ? argv[2] : "");
		return -1;
	}
	buf = read_all((int)fd, &len, why, whylen);
	if (!buf)
		return -1;
	opts = spec_fd__split(buf, len, &n);
	if (!opts) {
		snprintf(why, whylen, "--spec-fd %ld: %s", fd,
			 errno == EINVAL ? "the spec's last option is not NUL-terminated"
					 : "out of memory");
		free(buf);
		return -1;
	}
	/* A socket or pipe reads once: keep the bytes for a restart. */
	if (!S_ISREG(st.st_mode)) {
		int keep = keep_in_memfd(buf, len);

		if (keep < 0) {
			snprintf(why, whylen, "--spec-fd: cannot keep the spec: %s",
				 strerror(errno));
			free(opts);
			free(buf);
			return -1;
		}
		close((int)fd);
		snprintf(spec_fd_arg, sizeof(spec_fd_arg), "%d", keep);
		argv[2] = spec_fd_arg;
	}
	v = calloc((size_t)argc - 1 + (size_t)n, sizeof(*v));
	if (!v) {
		snprintf(why, whylen, "out of memory");
		free(opts);
		free(buf);
		return -1;
	}
	v[0] = argv[0];
	memcpy(v + 1, opts, (size_t)n * sizeof(*v));
	rest = (size_t)argc - 3;
	memcpy(v + 1 + n, argv + 3, rest * sizeof(*v));
	*out_argc = argc - 2 + n;
	*out_argv = v;
	free(opts);
	/* v points into buf; both live as long as the process. */
	free(spec_argv);
	free(spec_buf);
	spec_buf = buf;
	spec_argv = v;
	return 0;
}
