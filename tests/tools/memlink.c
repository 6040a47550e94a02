/* tests/tools/memlink.c — the most a live migration could send on this
 * machine: one TCP stream on 127.0.0.1 carrying N MiB of non-zero data from
 * one process's memfd (a source guest's RAM) into a fresh memfd of another
 * (the destination's RAM), and nothing else: no protocol, no dirty tracking,
 * no guest.  tests/bench/migrate sets it beside iperf3, whose receiver reads
 * into the same small buffer over and over; a migration must write every
 * page of RAM it receives for the first time, and on a machine where that
 * costs more than the link does, no VMM can reach iperf3's rate.
 *
 *   memlink [--mib N] [--into fresh|warm] [--by splice|recv] [--port P]
 *
 * --into warm touches the receiving memfd before the clock starts (how fast
 * the link is into memory already there); --by splice moves the data
 * socket → pipe → memfd as vmm's destination does over plain TCP, --by recv
 * reads straight into the mapping.  Prints one line ending in "MB/s"
 * (10^6 bytes/s, as iperf3); exit 1 on any failure. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define CHUNK (256u << 10)

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint8_t *ram_map(const char *name, size_t size, int *fd)
{
	void *p;

	*fd = memfd_create(name, MFD_CLOEXEC);
	if (*fd < 0 || ftruncate(*fd, (off_t)size) < 0)
		return NULL;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* RAM to the socket (the sender), or the socket straight into RAM. */
static int memlink__copy(int s, uint8_t *ram, size_t size, bool into_ram)
{
	for (size_t off = 0; off < size;) {
		size_t want = size - off < CHUNK ? size - off : CHUNK;
		ssize_t n =
		    into_ram ? recv(s, ram + off, want, MSG_WAITALL) : write(s, ram + off, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

/* The source: fill its RAM (untimed), wait for the receiver's go, send. */
static int memlink__send(const struct sockaddr_in *addr, size_t size)
{
	int fd, s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint8_t *ram = ram_map("memlink-src", size, &fd);
	char go;

	if (s < 0 || !ram)
		return -1;
	for (size_t i = 0; i < size; i += sizeof(uint64_t))
		*(uint64_t *)(ram + i) = i * 0x9e3779b97f4a7c15ull + 1;
	if (connect(s, (const struct sockaddr *)addr, sizeof(*addr)) < 0 || read(s, &go, 1) != 1)
		return -1;
	return memlink__copy(s, ram, size, false);
}

static int memlink__splice(int s, int fd, size_t size)
{
	loff_t pos = 0;
	int pipefd[2];

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	fcntl(pipefd[1], F_SETPIPE_SZ, (int)CHUNK);
	while ((size_t)pos < size) {
		size_t want = size - (size_t)pos < CHUNK ? size - (size_t)pos : CHUNK;
		ssize_t n = splice(s, NULL, pipefd[1], NULL, want, SPLICE_F_MOVE);

		if (n <= 0)
			return -1;
		while (n > 0) {
			ssize_t w = splice(pipefd[0], NULL, fd, &pos, (size_t)n, SPLICE_F_MOVE);

			if (w <= 0)
				return -1;
			n -= w;
		}
	}
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: memlink [--mib N] [--into fresh|warm] [--by splice|recv] [--port P]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	const char *into = "fresh", *by = "splice";
	unsigned long mib = 256, port = 47998;
	int ls, s, fd, one = 1, status, err;
	uint8_t *ram;
	double t0, t1;
	size_t size;
	pid_t pid;

	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			return usage();
		if (!strcmp(argv[i], "--mib"))
			mib = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--into"))
			into = argv[i + 1];
		else if (!strcmp(argv[i], "--by"))
			by = argv[i + 1];
		else if (!strcmp(argv[i], "--port"))
			port = strtoul(argv[i + 1], NULL, 10);
		else
			return usage();
	}
	if (!mib || mib > (1ul << 20) || (strcmp(into, "fresh") && strcmp(into, "warm")) ||
	    (strcmp(by, "splice") && strcmp(by, "recv")) || !port || port > 65535)
		return usage();
	size = (size_t)mib << 20;
	addr.sin_port = htons((uint16_t)port);

	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(ls, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(ls, 1) < 0) {
		perror("memlink: listen on 127.0.0.1");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("memlink: fork");
		return 1;
	}
	if (!pid)
		_exit(memlink__send(&addr, size) ? 1 : 0);
	s = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	ram = ram_map("memlink-dst", size, &fd);
	if (s < 0 || !ram) {
		perror("memlink: receiver");
		kill(pid, SIGKILL);
		return 1;
	}
	if (!strcmp(into, "warm") && madvise(ram, size, MADV_POPULATE_WRITE) < 0)
		memset(ram, 0, size); /* kernels before 5.14 */
	t0 = now_s();
	err = write(s, "g", 1) == 1 ? 0 : -1;
	if (!err)
		err = !strcmp(by, "splice") ? memlink__splice(s, fd, size)
					    : memlink__copy(s, ram, size, true);
	t1 = now_s();
	close(s); /* a receiver that gave up must not leave the sender blocked */
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) || err) {
		fprintf(stderr, "memlink: the transfer failed\n");
		return 1;
	}
	printf("memlink: %lu MiB into %s RAM by %s in %.0f ms: %.1f MB/s\n", mib, into, by,
	       (t1 - t0) * 1e3, (double)size / (t1 - t0) / 1e6);
	return 0;
}
