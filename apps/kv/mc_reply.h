/*
 * Reply formatting for the memcached-compatible server (apps/kv): VALUE blocks, END, result
 * words, incr/decr numbers, errors, VERSION and STAT lines, into a growable output buffer.
 *
 * A connection (or a core answering for another core's connection) appends to a growable
 * struct app_outbuf (apps/common/outbuf.h); the network layer sends data[0..len) and clears
 * it. Every reply is added whole or, when the buffer cannot grow, not at all: the function
 * then returns -ENOMEM (the buffer's overflow rule, one reservation per reply).
 *
 * Single-threaded: a buffer is used by one thread at a time; nothing here is shared.
 */
#ifndef MC_REPLY_H
#define MC_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apps/common/outbuf.h"
#include "mc_proto.h"
#include "mc_store.h"

/* Our answer to "version": memcached's protocol level, then who we are. */
#define MC_VERSION "1.6.0-libsn"

/* "VALUE " key " " flags " " bytes " " cas "\r\n" at its longest. */
#define MC_VALUE_HDR_MAX (6 + MC_KEY_MAX + 1 + 10 + 1 + 10 + 1 + 20 + 2)

/*
 * Writes "VALUE <key> <flags> <bytes>[ <cas>]\r\n" to dst (MC_VALUE_HDR_MAX bytes of room);
 * returns its length. For servers that send the value from elsewhere (an iovec).
 */
size_t mc_fmt_value_hdr(char *dst, const char *key, size_t nkey, uint32_t flags, size_t nbytes,
                        bool with_cas, uint64_t cas);

/* text "\r\n". */
int mc_reply_line(struct app_outbuf *b, const char *text);

/* mc_err_str(err) "\r\n". */
int mc_reply_error(struct app_outbuf *b, enum mc_err err);

/* The result word ("STORED", "NOT_FOUND", "SERVER_ERROR ...") "\r\n"; not for MC_DELTA_OK. */
int mc_reply_result(struct app_outbuf *b, enum mc_result r);

/* An incr/decr answer: the number "\r\n". */
int mc_reply_number(struct app_outbuf *b, uint64_t v);

/* A get hit: header, then nbytes of data, then "\r\n". */
int mc_reply_value(struct app_outbuf *b, const char *key, size_t nkey, uint32_t flags,
                   const char *data, size_t nbytes, bool with_cas, uint64_t cas);

/* A get hit straight from a store item (one copy of the value and its stored "\r\n"). */
int mc_reply_item(struct app_outbuf *b, const struct mc_item *it, bool with_cas);

/* "END\r\n": closes get/gets/gat/gats and stats answers. */
int mc_reply_end(struct app_outbuf *b);

/* "VERSION <version>\r\n". */
int mc_reply_version(struct app_outbuf *b, const char *version);

/* "STAT <name> <value>\r\n" with a printf-style value. */
int mc_reply_stat(struct app_outbuf *b, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int mc_reply_stat_u64(struct app_outbuf *b, const char *name, uint64_t v);

/*
 * The store counters as memcached's "stats" prints them, in memcached's order, in three groups
 * so a server can put its own lines (pid, uptime, connections, bytes_read, limit_maxbytes,
 * threads, ...) between them the way memcached does:
 *   MC_STATS_CMDS:  cmd_get ... store_no_memory
 *   MC_STATS_HASH:  hash_power_level, hash_bytes, hash_is_expanding
 *   MC_STATS_ITEMS: bytes, curr_items, total_items, expired_unfetched, evicted_unfetched,
 *                   evictions, reclaimed
 */
enum mc_stats_group { MC_STATS_CMDS, MC_STATS_HASH, MC_STATS_ITEMS };

int mc_reply_store_stats(struct app_outbuf *b, const struct mc_store_stats *st,
                         enum mc_stats_group group);

#endif
