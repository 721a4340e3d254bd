/*
 * The per-core store's side of snapshots: the walk that a core's snapshot writer takes the
 * items from while the store goes on serving, and the load of a snapshot's items at start-up
 * with the cas sequence and a pending delayed flush_all. See mc_store.h ("snapshots") for the
 * contract and mc_store_int.h (MC_ITEM_WALKED) for how the walk tells visited items apart.
 */
#include "mc_store_int.h"

#include <string.h>

/* Largest sequence whose uniques (seq << MC_CAS_CORE_BITS | core) fit in 64 bits. */
#define MC_SEQ_MAX ((UINT64_MAX >> MC_CAS_CORE_BITS) - 1)

/* The next newer item in the LRU (towards the front), or NULL. */
static struct mc_item *newer(struct mc_store *s, struct mc_item *it)
{
    struct sn_list_node *n = sn_list_prev(&s->lru, &it->lru);
    return n ? SN_CONTAINER_OF(n, struct mc_item, lru) : NULL;
}

static bool visited(const struct mc_store *s, const struct mc_item *it)
{
    return (it->iflags & MC_ITEM_WALKED) == s->walk_mark;
}

static void mark_visited(struct mc_store *s, struct mc_item *it)
{
    it->iflags = (uint8_t)((it->iflags & ~MC_ITEM_WALKED) | s->walk_mark);
}

void mc__walk_leave(struct mc_store *s, struct mc_item *it)
{
    s->walk_at = newer(s, it);
}

void mc_store_walk_begin(struct mc_store *s)
{
    mc_store_walk_end(s);
    s->walk_mark ^= MC_ITEM_WALKED; /* every item is unvisited now */
    struct sn_list_node *oldest = sn_list_last(&s->lru);
    s->walk_at = oldest ? SN_CONTAINER_OF(oldest, struct mc_item, lru) : NULL;
    s->walking = true;
}

const struct mc_item *mc_store_walk_next(struct mc_store *s)
{
    uint32_t now = mc__now32(s);
    while (s->walk_at) {
        struct mc_item *it = s->walk_at;
        s->walk_at = newer(s, it);
        if (visited(s, it))
            continue; /* returned already and moved to the front since, or new */
        mark_visited(s, it);
        if (mc__is_live(s, it, now))
            return it;
    }
    s->walking = false;
    return NULL;
}

void mc_store_walk_end(struct mc_store *s)
{
    /* Outside a walk every item must count as visited, so the next walk's flip sees all. */
    for (struct mc_item *it = s->walk_at; it; it = newer(s, it))
        mark_visited(s, it);
    s->walk_at = NULL;
    s->walking = false;
}

struct mc_item *mc_store_stage(struct mc_store *s, const struct mc_item_image *im,
                               enum mc_result *res)
{
    *res = MC_NOT_STORED;
    if (im->nkey == 0 || im->nkey > MC_KEY_MAX)
        return NULL;
    if (im->exptime != 0 && im->exptime <= mc__now32(s))
        return NULL;
    *res = MC_TOO_LARGE;
    if (mc_item_size(im->nkey, im->nbytes) > s->item_max)
        return NULL;
    *res = MC_NO_MEMORY;
    struct mc_item *it =
        mc__item_new(s, im->key, im->nkey, mc__hash(im->key, im->nkey), im->nbytes);
    if (!it)
        return NULL;
    memcpy(it->data + it->nkey, im->value, im->nbytes);
    it->cas = im->cas;
    it->flags = im->flags;
    it->exptime = im->exptime;
    it->time = im->time;
    it->iflags = im->iflags & MC_ITEM_SAVED_BITS;
    *res = MC_STORED;
    return it;
}

/* mc_store_link_staged; with new_key, the caller knows the key is not in the store. */
static enum mc_result link_staged(struct mc_store *s, struct mc_item *it, bool new_key)
{
    struct mc_item *old = new_key ? NULL : mc__find(s, mc_item_key(it), it->nkey, it->hv);
    if (!mc__make_room(s, mc_item_size(it->nkey, it->nbytes), old)) {
        mc__item_free(s, it);
        return MC_NO_MEMORY;
    }
    uint64_t cas = it->cas, seq = s->seq;
    uint32_t time = it->time;
    mc__store(s, old, it, cas);
    it->time = time; /* the item keeps its own access time */
    s->seq = seq;    /* the link's fresh unique was not needed (cas), or is made below */
    if (!cas)
        it->cas = mc__next_cas(s);
    s->st.total_items--; /* not a client's store */
    return MC_STORED;
}

/*
 * Each link reads its item's bucket, then the items of that chain: two cache misses in a row
 * over a table and items much larger than the cache (half of a load's samples when taken one
 * at a time). So the chain is linked a window of LINK_WINDOW items at a time: the buckets of
 * the next window are prefetched while this one is linked, and the chain heads of this window
 * (their buckets are in by then) are prefetched together before its first link, so that the
 * misses overlap instead of coming one after the other. When the keys are known to be new
 * (new_keys), there is no chain to read: only the bucket, to put the item at its head.
 */
#define LINK_WINDOW 16

struct link_window {
    struct mc_item *it[LINK_WINDOW];
    unsigned n;
};

/* Takes up to `max` items off the chain into w, prefetching their buckets. */
static void window_fill(struct mc_store *s, struct link_window *w, struct mc_item **list,
                        size_t max)
{
    w->n = 0;
    while (*list && w->n < LINK_WINDOW && w->n < max) {
        struct mc_item *it = *list;
        *list = it->hnext; /* read before the link reuses hnext for the hash chain */
        __builtin_prefetch(mc__bucket(s, it->hv));
        w->it[w->n++] = it;
    }
}

static void window_prefetch_chains(struct mc_store *s, const struct link_window *w)
{
    for (unsigned i = 0; i < w->n; i++) {
        const struct mc_item *head = *mc__bucket(s, w->it[i]->hv);
        if (head)
            __builtin_prefetch(&head->hv);
    }
}

size_t mc_store_link_staged_chain(struct mc_store *s, struct mc_item **list, size_t max,
                                  bool new_keys, uint64_t *no_memory)
{
    struct link_window win[2];
    size_t stored = 0, taken;
    unsigned cur = 0;
    window_fill(s, &win[cur], list, max);
    for (taken = win[cur].n; win[cur].n > 0; cur ^= 1u) {
        window_fill(s, &win[cur ^ 1u], list, max - taken);
        taken += win[cur ^ 1u].n;
        if (!new_keys)
            window_prefetch_chains(s, &win[cur]);
        for (unsigned i = 0; i < win[cur].n; i++) {
            if (link_staged(s, win[cur].it[i], new_keys) == MC_STORED)
                stored++;
            else
                (*no_memory)++;
        }
    }
    return stored;
}

bool mc_store_mark(struct mc_store *s, struct mc_store_mark *m)
{
    if (s->items > 0)
        return false;
    m->st = s->st;
    m->seq = s->seq;
    return true;
}

uint64_t mc_store_keep(struct mc_store *s, const struct mc_store_mark *m)
{
    uint64_t gone = (s->st.evictions - m->st.evictions) + (s->st.reclaimed - m->st.reclaimed);
    s->st = m->st;
    return gone;
}

void mc_store_undo(struct mc_store *s, const struct mc_store_mark *m)
{
    mc__unlink_all(s);
    s->st = m->st;
    s->seq = m->seq;
}

enum mc_result mc_store_link_staged(struct mc_store *s, struct mc_item *it)
{
    return link_staged(s, it, false);
}

void mc_store_unstage(struct mc_store *s, struct mc_item *it)
{
    mc__item_free(s, it);
}

enum mc_result mc_store_load(struct mc_store *s, const struct mc_item_image *im)
{
    enum mc_result r;
    struct mc_item *it = mc_store_stage(s, im, &r);
    return it ? mc_store_link_staged(s, it) : r;
}

size_t mc_store_mem_limit(const struct mc_store *s)
{
    return s->mem_limit;
}

uint64_t mc_store_cas_seq(const struct mc_store *s)
{
    return s->seq;
}

void mc_store_cas_raise(struct mc_store *s, uint64_t seq)
{
    if (seq > MC_SEQ_MAX)
        seq = MC_SEQ_MAX;
    if (seq > s->seq)
        s->seq = seq;
}

uint32_t mc_store_pending_flush(const struct mc_store *s)
{
    return s->flush_at > mc__now32(s) ? s->flush_at : 0;
}

void mc_store_restore_flush(struct mc_store *s, uint32_t at)
{
    if (at > mc__now32(s) && at > s->flush_at)
        s->flush_at = at;
}
