/* vmm/spec_fd.h — options handed over on a file descriptor (--spec-fd). */
#ifndef VMM_SPEC_FD_H
#define VMM_SPEC_FD_H

#include <stddef.h>

/* The most a spec may hold; more is refused rather than cut. */
#define SPEC_FD_MAX (1u << 20)

/*
 * When argv[1] is "--spec-fd" and argv[2] a descriptor, reads the options
 * written there (NUL-terminated strings) and returns in *out_argv a new
 * vector: argv[0], those options, then argv[3..]. The bytes are kept in a
 * memfd that stays open across exec, and argv[2] is pointed at it, so that
 * exec'ing argv again (a restart after a guest reboot) reads the same spec.
 * Without --spec-fd, *out_argv is NULL and nothing changes.
 * Returns 0, or -1 with a one-line reason in why.
 */
int spec_fd__expand(int argc, char **argv, int *out_argc, char ***out_argv, char *why,
		    size_t whylen);

/* Splits buf (len bytes, each string NUL-terminated) into a NULL-terminated
 * vector of pointers into buf; the count in *n. NULL with errno set when the
 * last string lacks its NUL (EINVAL) or on ENOMEM. */
char **spec_fd__split(char *buf, size_t len, int *n);

#endif
