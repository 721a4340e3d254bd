/*
 * Per-core item store of the memcached-compatible server (apps/kv).
 *
 * One store per reactor core, touched only by the core that owns it (no locks, no atomics):
 * keys that a core owns are served inline from its store, other cores reach it with a
 * cross-core submit. A store is a hash table (XXH3 of the key, chained, grown incrementally so
 * no single call rehashes everything) plus one LRU list. Memory is bounded: the sum of
 * mc_item_size() over the linked items never exceeds mem_limit; storing past the limit evicts
 * from the LRU tail. The hash table itself is not counted, as in memcached. The LRU is a
 * second-chance (CLOCK) list, as memcached's segmented LRU works: an access marks the item
 * active rather than moving it, and eviction moves an active tail item back to the head once
 * instead of dropping it.
 *
 * Time. The store asks cfg->now() for the current unix time in seconds (time(NULL) when NULL);
 * tests pass a clock they move by hand. Expiration times follow memcached: 0 never expires,
 * 1..2592000 (30 days) are relative to now, larger values are unix times, negative values are
 * already expired. An item with exptime E is dead from the second E on (E <= now).
 *
 * CAS uniques. Each successful store, append, incr/decr gives the item a new unique:
 * (per-store sequence << MC_CAS_CORE_BITS) | core_id. The sequence starts at 1, so a unique is
 * never 0, it grows on each core, and two cores never hand out the same value: a client may
 * use a cas unique it got from any core without ambiguity.
 *
 * Items returned by the lookups (mc_store_get, mc_store_gat, mc_store_find, ...) stay valid
 * until the next call that can change this store; read or copy them before that.
 *
 * Meta protocol state. Besides what the classic commands need, an item carries memcached's
 * stale and win-token bits (md I, ms I, mg N/R answer W, X and Z from them) and whether it was
 * stored under a base64 key (ms b), which meta answers show in base64 again. The meta
 * executor (mc_meta_exec.c) works on items through mc_store_find, mc_store_vivify,
 * mc_store_bump and mc_store_set_exptime, in the order the client's flags ask for.
 */
#ifndef MC_STORE_H
#define MC_STORE_H

#include <sn/list.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MC_KEY_MAX             250
#define MC_ITEM_MAX_DEFAULT    ((size_t)1 << 20)  /* memcached -I default: 1 MiB */
#define MC_MEM_LIMIT_DEFAULT   ((size_t)64 << 20) /* memcached -m default: 64 MiB */
#define MC_CAS_CORE_BITS       10                 /* up to 1024 cores */
#define MC_REALTIME_MAXDELTA   (60 * 60 * 24 * 30)

/* An item as the store keeps it; read-only outside mc_store*.c. */
struct mc_item {
    struct mc_item *hnext;       /* hash chain */
    struct sn_list_node lru;     /* in the store's LRU list, newest (or last rescued) first */
    uint64_t cas;
    uint32_t hv;      /* low 32 bits of XXH3(key) */
    uint32_t exptime; /* unix seconds, 0 = never */
    uint32_t time;    /* unix seconds of the last store or fetch (mg l, me la, and
                         flush_all with a delay compare it) */
    uint32_t flags;   /* client flags */
    uint32_t nbytes;  /* value length, not counting the "\r\n" kept after it */
    uint8_t nkey;
    uint8_t iflags; /* MC_ITEM_* */
    uint16_t epoch; /* the store's flush epoch when linked: older ones are dead */
    char data[];    /* key, value, "\r\n" */
};

/* Item state bits (mc_item.iflags), as memcached keeps them. */
#define MC_ITEM_FETCHED    0x01 /* read by get/gets/gat/gats/touch/mg since it was stored */
#define MC_ITEM_STALE      0x02 /* marked stale (md I, or ms I with an older cas): mg shows X */
#define MC_ITEM_TOKEN_SENT 0x04 /* a client got the win flag W for it: others get Z */
#define MC_ITEM_KEY_BINARY 0x08 /* stored by ms with a base64 key: meta answers re-encode it */
#define MC_ITEM_ACTIVE     0x10 /* used since it was linked or last given a second chance */

static inline const char *mc_item_key(const struct mc_item *it)
{
    return it->data;
}

/* The value, followed in memory by "\r\n" (so a reply can copy nbytes + 2 at once). */
static inline const char *mc_item_value(const struct mc_item *it)
{
    return it->data + it->nkey;
}

/*
 * Bytes an item with this key and value length costs against the memory limit and is compared
 * with the item size limit (-I): header, key, value and its "\r\n".
 */
static inline size_t mc_item_size(size_t nkey, size_t nbytes)
{
    return sizeof(struct mc_item) + nkey + nbytes + 2;
}

struct mc_store_config {
    size_t mem_limit;  /* bytes for items; 0 = MC_MEM_LIMIT_DEFAULT */
    size_t item_max;   /* largest mc_item_size(); 0 = MC_ITEM_MAX_DEFAULT */
    uint32_t core_id;  /* < 1 << MC_CAS_CORE_BITS; folded into cas uniques */
    unsigned hash_power; /* initial buckets = 1 << hash_power; 0 = 16 (memcached's default) */
    int64_t (*now)(void *arg); /* unix seconds; NULL = time(NULL) */
    void *now_arg;
};

/* Result codes; mc_result_str() gives memcached's reply word. */
enum mc_result {
    MC_STORED,
    MC_NOT_STORED,
    MC_EXISTS,
    MC_NOT_FOUND,
    MC_DELETED,
    MC_TOUCHED,
    MC_DELTA_OK,      /* incr/decr done; the reply is the new value */
    MC_NON_NUMERIC,   /* incr/decr on a value that is not a decimal number */
    MC_TOO_LARGE,     /* item over item_max */
    MC_NO_MEMORY,     /* could not make room (item over mem_limit) or malloc failed */
};

enum mc_set_mode { MC_SET, MC_ADD, MC_REPLACE, MC_APPEND, MC_PREPEND, MC_CAS };

/* One storage request; key/data are borrowed for the call only. */
struct mc_set_req {
    const char *key;
    size_t nkey;
    const char *data;
    size_t nbytes;
    uint32_t flags;
    int64_t exptime;  /* as sent by the client */
    uint64_t cas;     /* MC_CAS; for MC_APPEND/MC_PREPEND a cas that must match unless 0 (ms C) */
    bool invalidate;  /* MC_CAS (ms I): a cas older than the item's stores the value as stale */
    bool key_binary;  /* ms b: the item remembers its key came base64 encoded */
    uint64_t new_cas; /* ms E: the stored item's cas unique instead of a fresh one (0: fresh) */
};

/* Counters a per-core store can know, named after memcached's "stats" lines. */
struct mc_store_stats {
    uint64_t cmd_get, cmd_set, cmd_flush, cmd_touch;
    uint64_t get_hits, get_misses, get_expired, get_flushed;
    uint64_t delete_misses, delete_hits;
    uint64_t incr_misses, incr_hits, decr_misses, decr_hits;
    uint64_t cas_misses, cas_hits, cas_badval;
    uint64_t touch_hits, touch_misses;
    uint64_t store_too_large, store_no_memory;
    uint64_t limit_maxbytes;
    uint64_t hash_power_level, hash_bytes, hash_is_expanding;
    uint64_t bytes, curr_items, total_items;
    uint64_t expired_unfetched, evicted_unfetched, evictions, reclaimed;
};

struct mc_store;

/*
 * Creates a store (cfg NULL = all defaults). Returns NULL when out of memory or when cfg is
 * invalid (core_id too large, item_max over mem_limit). The store then belongs to the calling
 * thread; create it on the core that will own it.
 */
struct mc_store *mc_store_create(const struct mc_store_config *cfg);

/* Frees the store and every item. Owner only; NULL is fine. */
void mc_store_destroy(struct mc_store *s);

/* The store's clock: cfg->now() or time(NULL). */
int64_t mc_store_now(const struct mc_store *s);

/* Turns a client exptime into the absolute unix time stored (0 = never); see the top. */
uint32_t mc_store_abs_time(const struct mc_store *s, int64_t exptime);

/* The same for a given current time (a command that reads the clock once). Pure. */
uint32_t mc_store_abs_time_at(int64_t exptime, int64_t now);

/*
 * get/gets: the live item for key or NULL. A hit marks the item active (see the top). Counts
 * cmd_get, get_hits / get_misses (and get_expired / get_flushed when the key was there but
 * dead; dead items are unlinked as they are found). Owner only.
 */
const struct mc_item *mc_store_get(struct mc_store *s, const char *key, size_t nkey);

/*
 * A hint that `key` is about to be looked up (a multi-get's keys, a batch of commands from
 * another core): step 0 starts loading the head of its hash chain; step 1, issued a few
 * lookups later when that head is in the cache, starts loading the first 256 bytes of the
 * chain's first item (header, key, the start of the value). Looking up a key in a store many
 * times the cache's size costs those cache misses one after the other; issued for several
 * keys ahead, they overlap. Changes nothing. Owner only.
 */
void mc_store_prefetch(struct mc_store *s, const char *key, size_t nkey, int step);

/* gat/gats: like mc_store_get, and sets the item's exptime. Counts cmd_touch, touch_hits/misses. */
const struct mc_item *mc_store_gat(struct mc_store *s, const char *key, size_t nkey,
                                   int64_t exptime);

/*
 * set/add/replace/append/prepend/cas with memcached's results: MC_STORED; MC_NOT_STORED (add
 * of a live key, which still marks it active; replace/append/prepend of a missing
 * key; append/prepend whose result would be too large); MC_EXISTS (cas mismatch, or for
 * append/prepend a req->cas that is not 0 and not the item's; a cas mismatch with
 * req->invalidate and a req->cas lower than the item's stores instead, as memcached's ms I
 * does: the new value keeps the old exptime, is marked stale and keeps the win token);
 * MC_NOT_FOUND (cas of a missing key); MC_TOO_LARGE; MC_NO_MEMORY. A set that fails with
 * MC_TOO_LARGE or MC_NO_MEMORY removes the old value, as memcached does, so a stale value does
 * not survive a failed set. append/prepend keep the old flags and exptime. *cas_out (may be
 * NULL) gets the new unique on MC_STORED. Keys must be 1..MC_KEY_MAX bytes (the parser sees to
 * it; others answer MC_NOT_STORED). Owner only.
 */
enum mc_result mc_store_set(struct mc_store *s, enum mc_set_mode mode, const struct mc_set_req *req,
                            uint64_t *cas_out);

/* delete: MC_DELETED or MC_NOT_FOUND. */
enum mc_result mc_store_delete(struct mc_store *s, const char *key, size_t nkey);

/* touch: sets the exptime of a live item. MC_TOUCHED or MC_NOT_FOUND. */
enum mc_result mc_store_touch(struct mc_store *s, const char *key, size_t nkey, int64_t exptime);

/*
 * incr/decr by delta: incr wraps at 2^64, decr stops at 0. The value is read like memcached
 * reads it (white space, then decimal digits, then white space or the end). When the new
 * number is not longer than the old value it is written in place and padded with spaces (as
 * memcached does: "100" decr 1 reads back as "99 "; the item keeps its state bits); otherwise
 * a new item replaces it (flags and exptime kept, state bits not). Neither counts as a fetch.
 * *value gets the new number on MC_DELTA_OK. Results: MC_DELTA_OK, MC_NOT_FOUND,
 * MC_NON_NUMERIC, MC_NO_MEMORY.
 */
enum mc_result mc_store_delta(struct mc_store *s, const char *key, size_t nkey, bool incr,
                              uint64_t delta, uint64_t *value);

/* The meta protocol's arithmetic (ma): mc_store_delta with a cas check and creation. */
struct mc_arith_req {
    bool incr;
    uint64_t delta;
    uint64_t cas;     /* C: must match the item's unless 0 (memcached compares only non-zero) */
    bool vivify;      /* N: on a miss, create the item holding `initial` (flags 0, no exptime) */
    uint64_t initial; /* J */
    uint64_t new_cas; /* E: the changed or created item's cas unique (0: a fresh one) */
};

struct mc_arith_res {
    uint64_t value;     /* the number now stored */
    struct mc_item *it; /* the item changed or created (for the answer's c and t, and T/N) */
};

/*
 * ma: MC_DELTA_OK (res filled), MC_STORED (created on a miss with vivify; res filled),
 * MC_NOT_FOUND, MC_EXISTS (cas mismatch), MC_NON_NUMERIC, MC_NO_MEMORY. memcached's order:
 * an empty value is non-numeric before the cas is compared, other values after. Misses count
 * as incr/decr misses unless the item was created. Owner only.
 */
enum mc_result mc_store_arith(struct mc_store *s, const char *key, size_t nkey,
                              const struct mc_arith_req *req, struct mc_arith_res *res);

/* ---- the meta protocol's item access (mc_store_meta.c) ---- */

/*
 * The live item for key, or NULL: no LRU bump, no counters (memcached's DONT_UPDATE fetch,
 * used by mg before it knows what to report, md, me). Dead items found are unlinked. The item
 * may be changed only through the functions below. Owner only.
 */
struct mc_item *mc_store_find(struct mc_store *s, const char *key, size_t nkey);

/*
 * mg N on a miss: links an empty item (no flags, no exptime) for key, with new_cas as its
 * cas unique unless 0. NULL when there is no room.
 */
struct mc_item *mc_store_vivify(struct mc_store *s, const char *key, size_t nkey, uint64_t new_cas);

/* A fetch (get, gat, touch, mg without u): marked active and fetched, access time refreshed. */
void mc_store_bump(struct mc_store *s, struct mc_item *it);

/* Sets the item's exptime from a client exptime (mg T/N, ma T/N) as of `now`. */
void mc_store_set_exptime(struct mc_item *it, int64_t exptime, int64_t now);

/* Sets MC_ITEM_TOKEN_SENT: this client was sent W. */
void mc_store_mark_won(struct mc_item *it);

/* Counts an mg as memcached does: a get hit or miss, or with T a touch hit or miss. */
void mc_store_count_mg(struct mc_store *s, bool hit, bool touch);

/* md: delete, or with invalidate mark stale. */
struct mc_mdelete_req {
    bool has_cas; /* C: the item's cas must be this (even 0, which never matches) */
    uint64_t cas;
    bool invalidate; /* I: keep the item, mark it stale, clear its win token, new cas */
    bool has_ttl;    /* T, with I only: the new exptime */
    int64_t ttl;
    uint64_t new_cas; /* E: the cas an invalidated item gets (0: a fresh one) */
};

/* MC_DELETED (deleted or invalidated), MC_NOT_FOUND, MC_EXISTS. Counts delete hits/misses. */
enum mc_result mc_store_mdelete(struct mc_store *s, const char *key, size_t nkey,
                                const struct mc_mdelete_req *req);

/*
 * flush_all [delay]: with delay <= 0 every item stored so far is dead now; with a delay (an
 * exptime: relative up to 30 days, else a unix time) items last changed before that moment die
 * when it comes. The latest flush_all replaces a pending one, as in memcached. Counts cmd_flush.
 */
void mc_store_flush_all(struct mc_store *s, int64_t delay);

/*
 * Records a storage command rejected before it reached the store because its item was too
 * large (the parser swallowed the data): counts store_too_large, and for a set (unlink true)
 * removes the key's old value, as memcached does.
 */
void mc_store_too_large(struct mc_store *s, const char *key, size_t nkey, bool unlink);

/* Copies the counters. Owner only (another core asks the owner with a cross-core submit). */
void mc_store_stats(const struct mc_store *s, struct mc_store_stats *out);

/* "stats reset": zeroes the counters (not the gauges: bytes, curr_items, hash_*). Owner only. */
void mc_store_stats_reset(struct mc_store *s);

/*
 * dst += src, field by field (summing the cores for "stats"): counters, gauges and limits add
 * up, except hash_power_level (the largest) and hash_is_expanding (any core).
 */
void mc_store_stats_add(struct mc_store_stats *dst, const struct mc_store_stats *src);

/* ---- snapshots (mc_store_snap.c) ---- */

/* The item state bits a snapshot keeps (and mc_store_load restores). */
#define MC_ITEM_SAVED_BITS                                                                         \
    (MC_ITEM_FETCHED | MC_ITEM_STALE | MC_ITEM_TOKEN_SENT | MC_ITEM_KEY_BINARY)

/*
 * A walk over the store's items for a snapshot, oldest (LRU tail) first, which the owner may
 * interleave with any other call on the store (a core writes its snapshot in pieces while it
 * goes on serving). What a walk returns, as of the moment it reaches each key:
 *   - every key that was live when the walk began and is still live when the walk reaches
 *     it, exactly once, with its value and state at that moment (a key changed before the walk
 *     got to it is returned with its newest value);
 *   - no key twice: an item the walk returned and that is changed or fetched afterwards is
 *     not returned again;
 *   - no key created after the walk began (a later snapshot has it), no dead item.
 * One walk at a time; mc_store_walk_begin during a walk ends the old one first. Items
 * returned are valid until the next call that can change the store. Owner only.
 */
void mc_store_walk_begin(struct mc_store *s);

/* The walk's next item, or NULL when it is over (the walk then ends by itself). */
const struct mc_item *mc_store_walk_next(struct mc_store *s);

/* Ends a walk early (an abandoned snapshot); O(items not walked yet). No walk: nothing. */
void mc_store_walk_end(struct mc_store *s);

/* An item as a snapshot carries it: key and value are borrowed for the call. */
struct mc_item_image {
    const char *key;
    size_t nkey;
    const char *value;
    size_t nbytes;
    uint64_t cas;     /* kept as is (0: a fresh one) */
    uint32_t flags;
    uint32_t exptime; /* absolute unix seconds, 0 = never */
    uint32_t time;    /* unix seconds of the last access */
    uint8_t iflags;   /* MC_ITEM_SAVED_BITS; other bits are ignored */
};

/*
 * Links a snapshot's item at the LRU front, in place of any item with the same key, evicting
 * from the LRU tail when over the memory limit (load oldest first to keep the LRU order). It
 * does not count as a client's store (total_items) and takes no cas unique of its own; raise
 * the cas sequence with mc_store_cas_raise afterwards. Results: MC_STORED; MC_NOT_STORED for
 * an item already expired at the store's clock or a bad key length; MC_TOO_LARGE for an item
 * over item_max; MC_NO_MEMORY. Owner only. (mc_store_stage, then mc_store_link_staged.)
 */
enum mc_result mc_store_load(struct mc_store *s, const struct mc_item_image *im);

/*
 * mc_store_load in two steps, for a loader that must not change the store before it knows
 * that the whole file is sound: stage makes the item (its memory not counted yet, nothing
 * linked; the result as mc_store_load's, MC_STORED when an item is returned), link puts it in
 * the store (MC_STORED, or MC_NO_MEMORY when no room can be made: the item is freed), unstage
 * frees one that will not be linked. A staged item's hnext is the caller's to chain staged
 * items with until it is linked. Owner only.
 */
struct mc_item *mc_store_stage(struct mc_store *s, const struct mc_item_image *im,
                               enum mc_result *res);
enum mc_result mc_store_link_staged(struct mc_store *s, struct mc_item *it);
void mc_store_unstage(struct mc_store *s, struct mc_item *it);

/*
 * Links up to `max` staged items from the chain *list (linked through hnext, oldest first),
 * each as mc_store_link_staged does, and leaves *list at the first one not linked (NULL at
 * the end). Faster than one call each over a store much larger than the cache: it looks ahead
 * in the chain and prefetches the hash buckets and chain heads the next links read.
 * new_keys: the caller guarantees that no key of the chain is in the store, and that the
 * chain holds no key twice (a snapshot file's items, loaded into a store that was empty:
 * mc_store_walk_next returns no key twice), so no lookup is made; were a key there twice
 * after all, both items would be linked, the newer found first. Returns the items stored;
 * *no_memory (not reset) counts those freed for want of room. Owner only.
 */
size_t mc_store_link_staged_chain(struct mc_store *s, struct mc_item **list, size_t max,
                                  bool new_keys, uint64_t *no_memory);

/*
 * Linking a file's items as they are read, with a way back: a loader that must leave the
 * store as it was when the file turns out bad (its checksum is only known at its end) marks
 * the store before the first link, and either keeps what it linked or undoes it all. Only for
 * a store that holds no item at the mark (undoing cannot bring back an item that a link
 * replaced or evicted) and that nobody else changes until the end.
 *   mc_store_mark: false (nothing marked) when the store holds items.
 *   mc_store_keep: ends the mark keeping the items; returns how many items were linked since
 *     the mark but are gone again (evicted by later ones for want of room). The store's stats
 *     are those of the mark: a load is not a client's store, and what it evicts is counted
 *     by the caller (mc_store_link_staged does not count evictions of staged items either).
 *   mc_store_undo: unlinks and frees every item, and puts the stats and the cas sequence back
 *     as they were at the mark.
 * Owner only.
 */
struct mc_store_mark {
    struct mc_store_stats st;
    uint64_t seq;
};
bool mc_store_mark(struct mc_store *s, struct mc_store_mark *m);
uint64_t mc_store_keep(struct mc_store *s, const struct mc_store_mark *m);
void mc_store_undo(struct mc_store *s, const struct mc_store_mark *m);

/*
 * Grows the hash table at once so that `more` items beyond those stored fit without an
 * expansion on the way (a loader that knows how many items come saves the rehashing of
 * every doubling). 0 (also when it is big enough); -ENOMEM (the store is unchanged and
 * still grows as usual). Owner only.
 */
int mc_store_reserve(struct mc_store *s, size_t more);

/* The store's memory limit (bytes). */
size_t mc_store_mem_limit(const struct mc_store *s);

/* The bytes its items take now (mc_store_stats' `bytes`, without copying the rest). */
size_t mc_store_bytes(const struct mc_store *s);

/* The sequence the next cas unique is made from (see the top). Owner only. */
uint64_t mc_store_cas_seq(const struct mc_store *s);

/*
 * Makes the sequence at least `seq` (clamped so that uniques stay below 2^64): after a load,
 * the largest sequence any store of the saved run had, so new uniques differ from every
 * loaded one whatever core it came from. Owner only.
 */
void mc_store_cas_raise(struct mc_store *s, uint64_t seq);

/* A delayed flush_all still to come (unix seconds), or 0. Owner only. */
uint32_t mc_store_pending_flush(const struct mc_store *s);

/* Restores a delayed flush_all saved by a snapshot: a moment in the past does nothing. */
void mc_store_restore_flush(struct mc_store *s, uint32_t at);

/* memcached's word for a result ("STORED", "NOT_FOUND", ...); "" for MC_DELTA_OK. */
const char *mc_result_str(enum mc_result r);

#endif
