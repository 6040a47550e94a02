/* daemon/migrate.h — live migration on vmmd's side: the channel between
 * two vmmds (migrate_chan.c), the destination's listener that takes a VM
 * in (migrate_in.c) and the source's MigrateVm operation (migrate_out.c).
 * vmmd never touches guest RAM: it starts `vmm --incoming` on the
 * destination and sends `migrate` to the source's vmm. */
#ifndef VMMD_DAEMON_MIGRATE_H
#define VMMD_DAEMON_MIGRATE_H

#include "common/tls.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct daemon;
struct op;
struct vm;

/* --- the channel: mutual TLS 1.3, one JSON object per line --- */
struct mchan;

struct mchan *mchan__connect(const char *dest, const struct tls_files *tls, char *why,
			     size_t wlen);
/* The server's end of an accepted connection fd (taken over): the TLS
 * handshake with ctx, which refuses a peer not certified by its CA. */
struct mchan *mchan__server(int fd, SSL_CTX *ctx, char *why, size_t wlen);
void mchan__close(struct mchan *c);
int mchan__send(struct mchan *c, json_t *j);
/* The next line as JSON: -ETIMEDOUT, -ECONNRESET (peer gone), -EPROTO. */
int mchan__recv(struct mchan *c, json_t **out, int timeout_ms);

/* --- destination --- */
/* Starts the listener when --migration-listen was given; 0 when off. */
int migrate_in__start(struct daemon *d);
void migrate_in__stop(struct daemon *d);

/* --- source --- */
/* The MigrateVm operation on vm (d->lock held; dropped while it works). */
void migrate_out__run(struct daemon *d, struct op *op, struct vm *vm);

#endif
