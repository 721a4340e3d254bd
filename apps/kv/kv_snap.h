/*
 * sn-kv's snapshots (--snapshot DIR): the calls main.c makes. Everything runs on core 0 and
 * drives every core; see kv_snap.c for the steps and docs/ARCHITECTURE.md ("sn-kv
 * snapshots") for the format and the guarantees.
 */
#ifndef KV_SNAP_H
#define KV_SNAP_H

#include <sn.h>

/*
 * At start-up, after kv_server_start and before the listener accepts: loads DIR's snapshot
 * into the stores, every core reading its share of the files in parallel and sending items
 * to their owner cores, then arms the periodic snapshot (--snapshot-every). A missing or bad
 * snapshot starts empty after a one-line message (a bad file only loses its own items); the
 * future fails only when the start must not go on: --snapshot-strict and a bad snapshot, or
 * no memory. Without --snapshot: a ready future. Core 0 only.
 */
struct sn_future *kv_snap_start(void);

/*
 * At SIGTERM/SIGINT, while every core still runs: stops the periodic snapshots, lets one in
 * progress finish, then writes the final snapshot. Fails (after its message) when it could not
 * be written; the previous snapshot then stays. Without --snapshot: a ready future. Core 0.
 */
struct sn_future *kv_snap_stop(void);

/*
 * Writes a snapshot now (what the periodic timer does): every core writes its file in pieces
 * while it goes on serving, then the manifest is replaced and the older files are removed.
 * -EBUSY when one is being written. Core 0 only.
 */
struct sn_future *kv_snap_save(void);

#endif
