/*
 * Per-core store: hash table with incremental expansion, LRU list, memory accounting and
 * eviction, liveness (expiry, flush_all), stats. The memcached commands on top of these are in
 * mc_store_ops.c. Single-threaded by design: one store per core, touched only by its owner.
 */
#include "mc_store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define MC_HASH_POWER_DEFAULT 16
#define MC_HASH_POWER_MAX     31
/* Old buckets moved per store call while expanding. Expansion starts at 1.5 items per bucket
 * and the next one is due when the item count doubles, so 4 per call always finishes first. */
#define MC_MIGRATE_STEP 4
/* Active items at the LRU tail moved back to the head by one eviction before it takes the
 * tail anyway (memcached's lru_pull_tail looks at 5 items a try). */
#define MC_RESCUE_MAX 16

_Static_assert(MC_KEY_MAX <= UINT8_MAX, "nkey is a uint8_t");
_Static_assert(sizeof(struct mc_item) == 56, "the flush epoch fits in the header's padding");
_Static_assert(sizeof(struct mc_store_stats) % sizeof(uint64_t) == 0,
               "mc_store_stats_add walks the stats as an array of uint64_t");

uint32_t mc__hash(const char *key, size_t nkey)
{
    return (uint32_t)XXH3_64bits(key, nkey);
}

static int64_t default_now(void *arg)
{
    (void)arg;
    return (int64_t)time(NULL);
}

int64_t mc_store_now(const struct mc_store *s)
{
    return s->now(s->now_arg);
}

uint32_t mc__now32(const struct mc_store *s)
{
    int64_t t = mc_store_now(s);
    return t < 0 ? 0 : t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

uint32_t mc_store_abs_time_at(int64_t exptime, int64_t now)
{
    if (exptime == 0)
        return 0;
    if (exptime < 0)
        return 1; /* 1970-01-01T00:00:01: dead on arrival, as memcached's realtime() makes it */
    int64_t t = exptime > MC_REALTIME_MAXDELTA ? exptime : now + exptime;
    return t < 1 ? 1 : t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

uint32_t mc_store_abs_time(const struct mc_store *s, int64_t exptime)
{
    return exptime == 0 ? 0 : mc_store_abs_time_at(exptime, mc_store_now(s));
}

uint64_t mc__next_cas(struct mc_store *s)
{
    return (s->seq++ << MC_CAS_CORE_BITS) | s->core_id;
}

/* ---- hash table ---- */

static size_t table_size(const struct mc_table *t)
{
    return (size_t)1 << t->power;
}

static int table_alloc(struct mc_table *t, unsigned power)
{
    t->b = calloc((size_t)1 << power, sizeof *t->b);
    t->power = power;
    return t->b ? 0 : -ENOMEM;
}

/*
 * table_alloc for a table about to be filled at once (a snapshot's load): its pages written
 * now, in huge pages where it is large enough. A fresh calloc'd table maps the zero page on
 * the first read, and the first store to each page then costs a write fault and a TLB flush
 * on every CPU of the process (8% of a load's samples). calloc followed by memset does not
 * help: the compiler drops the memset, as calloc's memory is zero already.
 */
static int table_alloc_written(struct mc_table *t, unsigned power)
{
    size_t bytes = ((size_t)1 << power) * sizeof *t->b;
    if (bytes < MC_HUGE_PAGE)
        return table_alloc(t, power);
    t->b = aligned_alloc(MC_HUGE_PAGE, bytes);
    if (!t->b)
        return -ENOMEM;
    (void)madvise(t->b, bytes, MADV_HUGEPAGE); /* a hint: the pages are 4 KiB without it */
    memset(t->b, 0, bytes);
    t->power = power;
    return 0;
}

struct mc_item **mc__bucket(struct mc_store *s, uint32_t hv)
{
    if (s->old.b) {
        size_t ob = hv & (table_size(&s->old) - 1);
        if (ob >= s->migrate)
            return &s->old.b[ob];
    }
    return &s->tab.b[hv & (table_size(&s->tab) - 1)];
}

static void migrate_step(struct mc_store *s)
{
    for (int n = 0; n < MC_MIGRATE_STEP && s->old.b; n++) {
        struct mc_item *it = s->old.b[s->migrate];
        while (it) {
            struct mc_item *next = it->hnext;
            struct mc_item **b = &s->tab.b[it->hv & (table_size(&s->tab) - 1)];
            it->hnext = *b;
            *b = it;
            it = next;
        }
        s->old.b[s->migrate] = NULL;
        if (++s->migrate == table_size(&s->old)) {
            free(s->old.b);
            s->old.b = NULL;
        }
    }
}

/* Starts doubling the table when chains average 1.5 items, like memcached. Failure to get
 * the memory is not an error: chains just grow longer. */
static void maybe_expand(struct mc_store *s)
{
    size_t n = table_size(&s->tab);
    if (s->old.b || s->items <= n + n / 2 || s->tab.power >= MC_HASH_POWER_MAX)
        return;
    struct mc_table bigger;
    if (table_alloc(&bigger, s->tab.power + 1) != 0)
        return;
    s->old = s->tab;
    s->tab = bigger;
    s->migrate = 0;
}

int mc_store_reserve(struct mc_store *s, size_t more)
{
    size_t want = s->items + more;
    unsigned power = s->tab.power;
    while (power < MC_HASH_POWER_MAX && want > ((size_t)1 << power) + ((size_t)1 << power) / 2)
        power++;
    if (power == s->tab.power)
        return 0;
    struct mc_table bigger;
    if (table_alloc_written(&bigger, power) != 0)
        return -ENOMEM;
    while (s->old.b) /* an expansion in progress ends first */
        migrate_step(s);
    for (size_t i = 0; i < table_size(&s->tab); i++) {
        for (struct mc_item *it = s->tab.b[i], *next; it; it = next) {
            next = it->hnext;
            struct mc_item **b = &bigger.b[it->hv & (table_size(&bigger) - 1)];
            it->hnext = *b;
            *b = it;
        }
    }
    free(s->tab.b);
    s->tab = bigger;
    return 0;
}

struct mc_item *mc__find(struct mc_store *s, const char *key, size_t nkey, uint32_t hv)
{
    migrate_step(s);
    for (struct mc_item *it = *mc__bucket(s, hv); it; it = it->hnext) {
        if (it->hv == hv && it->nkey == nkey && memcmp(it->data, key, nkey) == 0)
            return it;
    }
    return NULL;
}

/* Each step hashes the key again instead of keeping the chain's address from step 0: an
 * expansion between the two steps may free the table that address points into. */
void mc_store_prefetch(struct mc_store *s, const char *key, size_t nkey, int step)
{
    struct mc_item **b = mc__bucket(s, mc__hash(key, nkey));
    if (step == 0) {
        __builtin_prefetch(b);
    } else if (*b) {
        /* The header (hv, nkey), the key past its 56 bytes, and the start of the value: an
         * item of a 100-byte value spans three or four cache lines, and a hit copies it all. */
        for (int line = 0; line < 4; line++)
            __builtin_prefetch((const char *)*b + 64 * line);
    }
}

static void hash_remove(struct mc_store *s, struct mc_item *it)
{
    struct mc_item **p = mc__bucket(s, it->hv);
    while (*p != it)
        p = &(*p)->hnext;
    *p = it->hnext;
}

/* ---- LRU ---- */

static struct mc_item *lru_item(struct sn_list_node *n)
{
    return n ? SN_CONTAINER_OF(n, struct mc_item, lru) : NULL;
}

/*
 * An access marks the item active instead of moving it in the list: moving it writes its two
 * neighbours and the list head, three more cache misses on every get over a store much larger
 * than the cache (11% of the server's samples for multi-gets). Eviction gives an active item
 * at the tail a second chance instead (evict_one), as memcached's segmented LRU does.
 */
void mc__bump(struct mc_store *s, struct mc_item *it)
{
    (void)s;
    it->iflags |= MC_ITEM_ACTIVE;
}

void mc__update(struct mc_store *s, struct mc_item *it)
{
    uint32_t now = mc__now32(s);
    if (it->time + MC_ITEM_UPDATE_INTERVAL < now)
        it->time = now;
    mc__bump(s, it);
}

void mc__fetched_at(struct mc_store *s, struct mc_item *it, uint32_t now)
{
    (void)s;
    it->iflags |= MC_ITEM_FETCHED | MC_ITEM_ACTIVE;
    it->time = now;
}

void mc__fetched(struct mc_store *s, struct mc_item *it)
{
    mc__fetched_at(s, it, mc__now32(s));
}

/* ---- liveness ---- */

/*
 * Dead by flush_all: linked before the latest immediate one (another epoch; mc_store_flush_all
 * sweeps the store when the 16-bit epoch wraps, so an old item never matches again), or last
 * stored or fetched before a delayed one that has come. memcached compares cas uniques for the
 * first, which an explicit cas (E) could defeat; an epoch cannot be set by a client.
 */
static bool is_flushed(const struct mc_store *s, const struct mc_item *it, uint32_t now)
{
    if (it->epoch != s->epoch)
        return true;
    return s->flush_at && now >= s->flush_at && it->time < s->flush_at;
}

static bool is_expired(const struct mc_item *it, uint32_t now)
{
    return it->exptime != 0 && it->exptime <= now;
}

bool mc__is_live(const struct mc_store *s, const struct mc_item *it, uint32_t now)
{
    return !is_flushed(s, it, now) && !is_expired(it, now);
}

struct mc_item *mc__find_live(struct mc_store *s, const char *key, size_t nkey, uint32_t hv,
                              uint32_t now, enum mc_miss *why)
{
    if (why)
        *why = MC_MISS_NONE;
    struct mc_item *it = mc__find(s, key, nkey, hv);
    if (!it)
        return NULL;
    enum mc_miss m = is_flushed(s, it, now) ? MC_MISS_FLUSHED
                     : is_expired(it, now)  ? MC_MISS_EXPIRED
                                            : MC_MISS_NONE;
    if (m == MC_MISS_NONE)
        return it;
    if (why)
        *why = m;
    mc__unlink(s, it);
    return NULL;
}

/* ---- memory ---- */

static size_t item_size(const struct mc_item *it)
{
    return mc_item_size(it->nkey, it->nbytes);
}

/*
 * The eviction candidate: the LRU tail, or the one before it when the tail is `keep`. An
 * active item found there (used since it last got here) loses its mark and moves to the head
 * instead, up to MC_RESCUE_MAX of them per call, after which the candidate goes anyway (so an
 * eviction is bounded even when every item was used). NULL when nothing but keep is left.
 */
static struct mc_item *evict_candidate(struct mc_store *s, const struct mc_item *keep)
{
    for (unsigned rescued = 0;; rescued++) {
        struct mc_item *victim = lru_item(sn_list_last(&s->lru));
        if (victim && victim == keep)
            victim = lru_item(sn_list_prev(&s->lru, &victim->lru));
        if (!victim || !(victim->iflags & MC_ITEM_ACTIVE) || rescued == MC_RESCUE_MAX)
            return victim;
        victim->iflags &= (uint8_t)~MC_ITEM_ACTIVE;
        /* The walk goes on from the next newer item (the moved one is met again at the front). */
        if (s->walk_at == victim && sn_list_first(&s->lru) != &victim->lru)
            mc__walk_leave(s, victim);
        sn_list_move_front(&s->lru, &victim->lru);
    }
}

/* Drops the eviction candidate. False if none is left. */
static bool evict_one(struct mc_store *s, const struct mc_item *keep, uint32_t now)
{
    struct mc_item *victim = evict_candidate(s, keep);
    if (!victim)
        return false;
    bool unfetched = !(victim->iflags & MC_ITEM_FETCHED);
    if (is_flushed(s, victim, now) || is_expired(victim, now)) {
        s->st.reclaimed++;
        s->st.expired_unfetched += unfetched;
    } else {
        s->st.evictions++;
        s->st.evicted_unfetched += unfetched;
    }
    mc__unlink(s, victim);
    return true;
}

bool mc__make_room(struct mc_store *s, size_t need, const struct mc_item *keep)
{
    size_t kept = keep ? item_size(keep) : 0;
    if (need > s->mem_limit)
        return false;
    uint32_t now = mc__now32(s);
    while (s->bytes - kept + need > s->mem_limit) {
        if (!evict_one(s, keep, now))
            return false;
    }
    return true;
}

struct mc_item *mc__item_new(struct mc_store *s, const char *key, size_t nkey, uint32_t hv,
                             size_t nbytes)
{
    if (nkey == 0 || nkey > MC_KEY_MAX || nbytes > UINT32_MAX)
        return NULL;
    struct mc_item *it = mc__chunk_alloc(&s->arena, mc_item_size(nkey, nbytes));
    if (!it)
        return NULL;
    memset(it, 0, sizeof *it);
    it->hv = hv;
    it->nkey = (uint8_t)nkey;
    it->nbytes = (uint32_t)nbytes;
    it->time = mc__now32(s);
    memcpy(it->data, key, nkey);
    memcpy(it->data + nkey + nbytes, "\r\n", 2);
    return it;
}

struct mc_item *mc__item_alloc(struct mc_store *s, const char *key, size_t nkey, uint32_t hv,
                               size_t nbytes, const struct mc_item *keep)
{
    if (nkey == 0 || nkey > MC_KEY_MAX || nbytes > UINT32_MAX ||
        !mc__make_room(s, mc_item_size(nkey, nbytes), keep))
        return NULL;
    return mc__item_new(s, key, nkey, hv, nbytes);
}

void mc__item_free(struct mc_store *s, struct mc_item *it)
{
    mc__chunk_free(&s->arena, it, item_size(it));
}

void mc__link(struct mc_store *s, struct mc_item *it)
{
    it->epoch = s->epoch;
    it->iflags = (uint8_t)((it->iflags & ~MC_ITEM_WALKED) | s->walk_mark);
    struct mc_item **b = mc__bucket(s, it->hv);
    it->hnext = *b;
    *b = it;
    sn_list_push_front(&s->lru, &it->lru);
    it->cas = mc__next_cas(s);
    s->bytes += item_size(it);
    s->items++;
    s->st.total_items++;
    maybe_expand(s);
}

void mc__unlink(struct mc_store *s, struct mc_item *it)
{
    if (s->walk_at == it)
        mc__walk_leave(s, it);
    hash_remove(s, it);
    sn_list_remove(&it->lru);
    s->bytes -= item_size(it);
    s->items--;
    mc__item_free(s, it);
}

void mc__unlink_all(struct mc_store *s)
{
    while (!sn_list_empty(&s->lru))
        mc__unlink(s, lru_item(sn_list_first(&s->lru)));
}

void mc__replace(struct mc_store *s, struct mc_item *old, struct mc_item *new_it)
{
    uint8_t walked = old->iflags & MC_ITEM_WALKED;
    mc__unlink(s, old);
    mc__link(s, new_it);
    new_it->iflags = (uint8_t)((new_it->iflags & ~MC_ITEM_WALKED) | walked);
}

void mc__store(struct mc_store *s, struct mc_item *old, struct mc_item *it, uint64_t new_cas)
{
    if (old)
        mc__replace(s, old, it);
    else
        mc__link(s, it);
    if (new_cas)
        it->cas = new_cas;
}

/* ---- life cycle and stats ---- */

struct mc_store *mc_store_create(const struct mc_store_config *cfg)
{
    struct mc_store_config c = cfg ? *cfg : (struct mc_store_config){0};
    if (!c.mem_limit)
        c.mem_limit = MC_MEM_LIMIT_DEFAULT;
    if (!c.item_max)
        c.item_max = MC_ITEM_MAX_DEFAULT;
    if (!c.hash_power)
        c.hash_power = MC_HASH_POWER_DEFAULT;
    if (c.core_id >= (1u << MC_CAS_CORE_BITS) || c.item_max > c.mem_limit ||
        c.hash_power > MC_HASH_POWER_MAX)
        return NULL;
    struct mc_store *s = calloc(1, sizeof *s);
    if (!s || table_alloc(&s->tab, c.hash_power) != 0) {
        free(s);
        return NULL;
    }
    sn_list_init(&s->lru);
    s->mem_limit = c.mem_limit;
    s->item_max = c.item_max;
    s->core_id = c.core_id;
    s->seq = 1;
    s->now = c.now ? c.now : default_now;
    s->now_arg = c.now_arg;
    mc__arena_init(&s->arena, c.mem_limit);
    return s;
}

void mc_store_destroy(struct mc_store *s)
{
    if (!s)
        return;
    SN_LIST_FOR_EACH (n, &s->lru) {
        struct mc_item *it = lru_item(n);
        if (!mc__chunk_in_arena(&s->arena, it))
            free(it);
    }
    mc__arena_destroy(&s->arena);
    free(s->tab.b);
    free(s->old.b);
    free(s);
}

void mc_store_stats(const struct mc_store *s, struct mc_store_stats *out)
{
    *out = s->st;
    out->limit_maxbytes = s->mem_limit;
    out->hash_power_level = s->tab.power;
    out->hash_bytes = table_size(&s->tab) * sizeof(struct mc_item *);
    out->hash_is_expanding = s->old.b != NULL;
    out->bytes = s->bytes;
    out->curr_items = s->items;
}

size_t mc_store_bytes(const struct mc_store *s)
{
    return s->bytes;
}

void mc_store_stats_reset(struct mc_store *s)
{
    memset(&s->st, 0, sizeof s->st);
}

void mc_store_stats_add(struct mc_store_stats *dst, const struct mc_store_stats *src)
{
    uint64_t power = dst->hash_power_level > src->hash_power_level ? dst->hash_power_level
                                                                   : src->hash_power_level;
    uint64_t expanding = dst->hash_is_expanding | src->hash_is_expanding;
    uint64_t *d = (uint64_t *)dst;
    const uint64_t *p = (const uint64_t *)src;
    for (size_t i = 0; i < sizeof *dst / sizeof(uint64_t); i++)
        d[i] += p[i];
    dst->hash_power_level = power;
    dst->hash_is_expanding = expanding;
}

const char *mc_result_str(enum mc_result r)
{
    switch (r) {
    case MC_STORED: return "STORED";
    case MC_NOT_STORED: return "NOT_STORED";
    case MC_EXISTS: return "EXISTS";
    case MC_NOT_FOUND: return "NOT_FOUND";
    case MC_DELETED: return "DELETED";
    case MC_TOUCHED: return "TOUCHED";
    case MC_DELTA_OK: return "";
    case MC_NON_NUMERIC: return "CLIENT_ERROR cannot increment or decrement non-numeric value";
    case MC_TOO_LARGE: return "SERVER_ERROR object too large for cache";
    case MC_NO_MEMORY: return "SERVER_ERROR out of memory storing object";
    }
    return "SERVER_ERROR unknown result";
}
