/* migration/live.h — what live_send.c and live_recv.c agree on.
 *
 * Protocol (records of stream.h), source → destination unless marked:
 *   HELLO    Manifest: machine and section names, no data
 *   ← ACCEPT / ERROR
 *   CHANNELS (optional) le32 N, token: N more connections follow, each
 *            opening with JOIN (the token) and carrying PAGES, then DONE
 *   PAGES*   le32 count, count × le64 (RAM offset | MIG_PAGE_ZERO), then the
 *            4 KiB of every entry without the flag, in order
 *   SYNC     after each pre-copy round, on every connection
 *   ← SYNCED every connection was read up to its SYNC: nothing of the
 *            round is left in flight, so the guest never waits on it
 *   STATE    Manifest with every section (the source is paused by now; the
 *            destination takes it once every extra connection said DONE)
 *   ← READY  the destination loaded it all and will start on GO
 *   GO       the source is committed: it will never resume
 *   ← RUNNING the destination's vCPUs run (the end of the downtime)
 * Until GO the source may resume at any error and the destination discards
 * everything; after GO only the destination may run the guest. */
#ifndef VMMD_MIGRATION_LIVE_H
#define VMMD_MIGRATION_LIVE_H

#define MIG_PAGE 4096u
#define MIG_BATCH_PAGES 256u
#define MIG_PAGE_ZERO 1ull
#define MIG_TOKEN_LEN 16

#endif
