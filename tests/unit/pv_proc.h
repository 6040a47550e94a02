/* tests/unit/pv_proc.h — a real paravisor/paravisor process, started by a
 * unit test with the descriptors it would get from vmm, its log in a file
 * of the test's directory.  Failures go through cmocka. */
#ifndef VMMD_TESTS_UNIT_PV_PROC_H
#define VMMD_TESTS_UNIT_PV_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PV_MAX_ARGS 80

/* A paravisor process; its stdout and stderr go to log. */
struct pv {
	pid_t pid;
	char log[300];
	int status; /* once reaped */
	bool reaped;
};

/* The test's directory (made by its setup): the logs go there. */
extern char pv_tmpdir[256];

/* A socketpair of type (close-on-exec). */
void pair(int sv[2], int type);
/*
 * Starts the paravisor with args (NULL-terminated; "@NAME" in one is the
 * path of NAME in the test's directory); fds[i] is its descriptor 3 + i.
 */
void pv_start(struct pv *p, const int *fds, int nr_fds, const char *const *args);
bool pv_alive(struct pv *p);
/* Its log so far, in buf. */
const char *pv_log(const struct pv *p, char *buf, size_t len);
void pv_log_has(const struct pv *p, const char *want);
/* Waits up to 10 s for a line the process writes as it goes. */
void pv_log_wait(const struct pv *p, const char *want);
/* Its exit status (killed after secs: a failure). */
int pv_exit(struct pv *p, int secs);

/* One request on a netstack's control socket (net/socket.h), fd (-1: none)
 * passed with it; the answer's status, its payload (if any) in out. */
int ns_ask(int ctl, uint32_t op, const void *in, size_t inlen, int fd, void *out, size_t *outlen);

#endif
