/*
 * Runs parsed memcached commands against a per-core store and appends memcached's answers
 * (apps/kv). This is the glue between mc_proto (what was asked), mc_store (the data) and
 * mc_reply (the bytes sent back).
 *
 * How the sharded server uses it, by mc_cmd_route(cmd):
 *   MC_ROUTE_LOCAL  mc_exec_local(cmd, out) on the connection's core.
 *   MC_ROUTE_KEY    mc_exec_key(store, cmd, out) on the core that owns cmd->key, into a buffer
 *                   that travels back to the connection's core (or straight into the
 *                   connection's buffer when the key is local).
 *   MC_ROUTE_KEYS   for each key (mc_cmd_next_key): mc_exec_get_key(store, cmd, key, out) on
 *                   the key's owner; the connection then appends the parts in key order and
 *                   one mc_reply_end().
 *   MC_ROUTE_ALL    flush_all: mc_store_flush_all(store, cmd->exptime) on every core, then "OK"
 *                   unless noreply. stats: mc_store_stats() on every core, summed with
 *                   mc_store_stats_add(), printed with mc_reply_store_stats() among the
 *                   server's own lines, then "END".
 * mc_exec() does all of it against a single store: a one-core server, tests, the fuzzer.
 *
 * Every function runs on the core that owns `s` and returns 0, or -ENOMEM when `out` could
 * not grow (the store change, if any, has happened), or -EINVAL for a command of the wrong
 * route. Nothing is appended for a noreply command.
 */
#ifndef MC_EXEC_H
#define MC_EXEC_H

#include "mc_proto.h"
#include "mc_reply.h"
#include "mc_store.h"

/* A single-key command: storage, delete, touch, incr/decr, a meta command (mc_meta.h), or a
 * too-large error. */
int mc_exec_key(struct mc_store *s, const struct mc_cmd *cmd, struct app_outbuf *out);

/* One key of a get/gets/gat/gats: its VALUE block on a hit, nothing on a miss. */
int mc_exec_get_key(struct mc_store *s, const struct mc_cmd *cmd, struct mc_slice key,
                    struct app_outbuf *out);

/*
 * The lookup of mc_exec_get_key without the answer: the live item (valid until the next call
 * that can change the store) or NULL on a miss or for a command not of the get family. For a
 * server that sends the value from the item itself (mc_fmt_value_hdr, then the value).
 */
const struct mc_item *mc_exec_get_item(struct mc_store *s, const struct mc_cmd *cmd,
                                       struct mc_slice key);

/*
 * Errors, version, verbosity, mn, swallowed data (nothing), quit (nothing; returns 1: close),
 * a binary protocol request (its refusal; returns 1: close).
 */
int mc_exec_local(const struct mc_cmd *cmd, struct app_outbuf *out);

/*
 * Any command against one store. Returns 1 for quit (close once `out` is sent), else as above.
 * stats: "" prints the store's counters, "reset" answers RESET; other arguments answer ERROR.
 */
int mc_exec(struct mc_store *s, const struct mc_cmd *cmd, struct app_outbuf *out);

#endif
