/*
 * Internals of the per-core store shared by mc_store.c (table, LRU, memory) and
 * mc_store_ops.c (the memcached commands). Not for use outside those two files and tests.
 */
#ifndef MC_STORE_INT_H
#define MC_STORE_INT_H

#include "mc_store.h"

/* A power-of-two array of hash chains. */
struct mc_table {
    struct mc_item **b;
    unsigned power;
};

/* A transparent huge page (x86-64, arm64 with 4 KiB pages): the arena's and big tables' unit. */
#define MC_HUGE_PAGE ((size_t)2 << 20)

/* Largest item (mc_item_size) that comes from the arena; larger ones are malloc'ed. */
#define MC_CHUNK_MAX 4096

/* A store's item memory (mc_store_mem.c): size classes of 16 bytes in huge pages. */
struct mc_arena {
    char *base;  /* reservation, 2 MiB aligned; NULL when there is none (malloc only) */
    size_t size; /* bytes reserved */
    size_t used; /* bytes handed out by the bump pointer */
    void *free[MC_CHUNK_MAX / 16 + 1]; /* per class: freed chunks, linked through their start */
};

struct mc_store {
    struct mc_table tab;   /* where new items go */
    struct mc_table old;   /* the previous table while an expansion is running, else b == NULL */
    size_t migrate;        /* next bucket of `old` to move into `tab` */
    struct sn_list lru;    /* struct mc_item, newest first: the back goes unless active */
    size_t mem_limit;
    size_t item_max;
    size_t bytes;          /* sum of mc_item_size() of linked items */
    size_t items;
    uint64_t seq;          /* next cas sequence number */
    uint32_t core_id;
    uint16_t epoch;    /* flush epoch: bumped by an immediate flush_all (see is_flushed) */
    uint32_t flush_at; /* if set: from this second on, items with time < flush_at are dead */
    int64_t (*now)(void *arg);
    void *now_arg;
    struct mc_arena arena;
    struct mc_store_stats st;
    /* The snapshot walk (mc_store_snap.c): an item is visited when its MC_ITEM_WALKED bit
     * equals walk_mark; walk_begin flips walk_mark, so every item then is unvisited. */
    struct mc_item *walk_at; /* the next item to look at (oldest first), NULL at the end */
    bool walking;
    uint8_t walk_mark; /* 0 or MC_ITEM_WALKED */
};

/*
 * iflags bit of the snapshot walk: not an item state (snapshots do not keep it). A new key
 * gets the store's walk_mark (visited: a walk does not save keys newer than itself); an item
 * that replaces another inherits the old one's bit (the walk saves the key's newest value
 * when it has not reached the key yet, and nothing more when it has).
 */
#define MC_ITEM_WALKED 0x80

/* Why a lookup found nothing. */
enum mc_miss { MC_MISS_NONE, MC_MISS_EXPIRED, MC_MISS_FLUSHED };

uint32_t mc__hash(const char *key, size_t nkey);

/* The hash chain that holds (or would hold) an item with hash hv. */
struct mc_item **mc__bucket(struct mc_store *s, uint32_t hv);

/* The item for key whatever its state, or NULL. */
struct mc_item *mc__find(struct mc_store *s, const char *key, size_t nkey, uint32_t hv);

/*
 * The live item for key, or NULL. A dead item found on the way is unlinked and freed, and
 * *why (may be NULL) says whether it had expired or was flushed.
 */
struct mc_item *mc__find_live(struct mc_store *s, const char *key, size_t nkey, uint32_t hv,
                              uint32_t now, enum mc_miss *why);

/*
 * Allocates an unlinked item for nkey + nbytes, evicting from the LRU tail until it fits under
 * the memory limit. `keep` (may be NULL) is the item the new one will replace: it is neither
 * evicted nor counted, since its memory comes back on the replace. NULL when the item cannot
 * fit or malloc fails. Key, sizes, hv are filled in; the caller fills the rest.
 */
struct mc_item *mc__item_alloc(struct mc_store *s, const char *key, size_t nkey, uint32_t hv,
                               size_t nbytes, const struct mc_item *keep);

/*
 * Prepares the arena for a store with this memory limit. Never fails: without the mapping every
 * chunk comes from malloc.
 */
void mc__arena_init(struct mc_arena *a, size_t mem_limit);

/* Releases the reservation (chunks still malloc'ed are the caller's to free first). */
void mc__arena_destroy(struct mc_arena *a);

/* size bytes (8-byte aligned) for an item, or NULL when malloc fails. */
void *mc__chunk_alloc(struct mc_arena *a, size_t size);

/* Gives back a chunk of mc__chunk_alloc with the same size. */
void mc__chunk_free(struct mc_arena *a, void *p, size_t size);

/* Whether p lies in the arena's reservation (else it was malloc'ed). */
bool mc__chunk_in_arena(const struct mc_arena *a, const void *p);

/*
 * Evicts from the LRU tail until `need` more bytes fit under the limit (`keep` as for
 * mc__item_alloc). False when they cannot.
 */
bool mc__make_room(struct mc_store *s, size_t need, const struct mc_item *keep);

/*
 * Allocates an unlinked item (key, sizes, hv, time filled in) from the store's arena without
 * any accounting: the memory limit is checked when it is linked (mc__make_room).
 */
struct mc_item *mc__item_new(struct mc_store *s, const char *key, size_t nkey, uint32_t hv,
                             size_t nbytes);

/* Frees an item that was never linked. */
void mc__item_free(struct mc_store *s, struct mc_item *it);

/* Links a new item (hash + LRU head), giving it a fresh cas unique. */
void mc__link(struct mc_store *s, struct mc_item *it);

/* Links it in place of old (if not NULL); its cas unique is new_cas, or a fresh one if 0. */
void mc__store(struct mc_store *s, struct mc_item *old, struct mc_item *it, uint64_t new_cas);

/* Unlinks and frees. */
void mc__unlink(struct mc_store *s, struct mc_item *it);

/* Unlinks and frees every item. */
void mc__unlink_all(struct mc_store *s);

/* Unlinks and frees old, links new_it in its place. */
void mc__replace(struct mc_store *s, struct mc_item *old, struct mc_item *new_it);

/*
 * Marks a linked item as used (MC_ITEM_ACTIVE): it is not moved in the LRU list now, but an
 * eviction that finds it at the tail moves it to the head instead of evicting it (a second
 * chance, as memcached's segmented LRU gives active items).
 */
void mc__bump(struct mc_store *s, struct mc_item *it);

/*
 * An access that is not a fetch (memcached's do_item_update: add of a live key, incr in
 * place): marked active, and the access time (it->time) moved to now when it is more than
 * MC_ITEM_UPDATE_INTERVAL old.
 */
void mc__update(struct mc_store *s, struct mc_item *it);

/*
 * A fetch (get, gat, touch, mg): marked active and MC_ITEM_FETCHED, access time now. (memcached
 * moves the access time when its LRU maintainer thread sees fit; "seconds since the last
 * access" is what its protocol.txt promises for mg l, and what this gives.)
 */
void mc__fetched(struct mc_store *s, struct mc_item *it);

/* mc__fetched with the clock already read (a get reads it once for liveness and access). */
void mc__fetched_at(struct mc_store *s, struct mc_item *it, uint32_t now);

/* memcached's ITEM_UPDATE_INTERVAL: an update refreshes it->time at most this often. */
#define MC_ITEM_UPDATE_INTERVAL 60

/* A fresh cas unique. */
uint64_t mc__next_cas(struct mc_store *s);

/* The clock clamped into the 32-bit unix time items keep. */
uint32_t mc__now32(const struct mc_store *s);

/* Neither expired nor flushed at `now`. */
bool mc__is_live(const struct mc_store *s, const struct mc_item *it, uint32_t now);

/* The walk's side of an item leaving its LRU place (unlink, or a move to the front). */
void mc__walk_leave(struct mc_store *s, struct mc_item *it);

#endif
