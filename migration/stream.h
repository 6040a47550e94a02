/* migration/stream.h — the live-migration connection: TCP, optionally in
 * mutual TLS 1.3 (OpenSSL), carrying framed records:
 *   le32 type, le32 length, then length bytes of payload.
 * Every read has a deadline, so a peer that hangs is an error, not a hang. */
#ifndef VMMD_MIGRATION_STREAM_H
#define VMMD_MIGRATION_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/tls.h"

enum mig_rec {
	MIG_HELLO = 1,   /* src->dst: the Manifest without sections (machine check) */
	MIG_ACCEPT,      /* dst->src: the machine fits; send RAM */
	MIG_ERROR,       /* either way: a sentence, then the connection ends */
	MIG_PAGES,       /* src->dst: a page batch (live_send.c) */
	MIG_STATE,       /* src->dst: the full Manifest, sections included */
	MIG_READY,       /* dst->src: state loaded; waiting for GO */
	MIG_GO,          /* src->dst: the source will not resume: start */
	MIG_RUNNING,     /* dst->src: vCPUs run on the destination */
	MIG_CHANNELS,    /* src->dst: le32 count of extra RAM connections, token */
	MIG_JOIN,        /* src->dst, first on an extra connection: the token */
	MIG_DONE,        /* src->dst, last on an extra connection: no more pages */
	MIG_SYNC,        /* src->dst, on every connection: the end of a round */
	MIG_SYNCED,      /* dst->src: every connection read up to its SYNC */
};

#define MIG_MAX_RECORD (64u << 20)
#define MIG_MAGIC "VMMDMIG1"


struct mig_stream;

/* Connects to "host:port" (source side). */
struct mig_stream *mig_stream__connect(const char *dest, const struct tls_files *tls,
				       int timeout_ms, char *why, size_t wlen);
/* Listens on "host:port" and accepts one peer (destination side); only a
 * peer whose certificate chains to tls->ca gets through when tls is set. */
struct mig_stream *mig_stream__accept(const char *addr, const struct tls_files *tls,
				      int timeout_ms, char *why, size_t wlen);
/* The same in two steps, for a destination that takes several connections:
 * the listening socket (close it when done), then one peer at a time. */
int mig_stream__listen(const char *addr, char *why, size_t wlen);
struct mig_stream *mig_stream__accept_on(int lfd, const char *addr, const struct tls_files *tls,
					 int timeout_ms, char *why, size_t wlen);
void mig_stream__close(struct mig_stream *s);

int mig_stream__send(struct mig_stream *s, uint32_t type, const void *buf, size_t len);
/* Memory at base is also fd's first len bytes (guest RAM and its memfd):
 * over plain TCP, sendv sends long runs of it from fd without copying. */
void mig_stream__send_from_file(struct mig_stream *s, int fd, const void *base, size_t len);
/* Several buffers as one record (a page batch without copying the pages). */
int mig_stream__sendv(struct mig_stream *s, uint32_t type, const struct iovec *iov, int n);
/* *buf is malloc'd (NUL-terminated for convenience).  -ETIMEDOUT after
 * timeout_ms without a byte, -ECONNRESET when the peer is gone. */
int mig_stream__recv(struct mig_stream *s, uint32_t *type, uint8_t **buf, size_t *len,
		     int timeout_ms);
/* The same in steps, for a reader that places the payload itself: the
 * type and length, then exactly len bytes in as many reads as it likes. */
int mig_stream__recv_header(struct mig_stream *s, uint32_t *type, size_t *len, int timeout_ms);
int mig_stream__read(struct mig_stream *s, void *buf, size_t len, int timeout_ms);
/* The same into n buffers in turn: on plain TCP one recvmsg takes as many
 * of them as have arrived.  iov is used up (its entries are advanced). */
int mig_stream__readv(struct mig_stream *s, struct iovec *iov, int n, int timeout_ms);
/* Plain TCP: moves the next len bytes into fd at offset off through a
 * pipe, never through user space.  -EOPNOTSUPP under TLS: read instead. */
int mig_stream__splice_to(struct mig_stream *s, int fd, uint64_t off, size_t len, int timeout_ms);
/* The len bytes of payload after a header, malloc'd and NUL-terminated. */
int mig_stream__recv_payload(struct mig_stream *s, size_t len, uint8_t **buf, int timeout_ms);
uint64_t mig_stream__bytes_sent(const struct mig_stream *s);
/* Makes every pending and later call fail at once (cancel). */
void mig_stream__shutdown(struct mig_stream *s);

#endif
