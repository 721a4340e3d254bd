/*
 * The per-core store's side of the meta protocol: lookups without a fetch, creation on a miss
 * (mg N), the fetch bump done after mg has read the item's state, exptime and win-token
 * changes, and md. The order in which a command's flags read and change an item is the meta
 * executor's (mc_meta_exec.c); memcached's rules for each step are here. See mc_store.h.
 */
#include "mc_store_int.h"

struct mc_item *mc_store_find(struct mc_store *s, const char *key, size_t nkey)
{
    if (nkey == 0 || nkey > MC_KEY_MAX)
        return NULL;
    return mc__find_live(s, key, nkey, mc__hash(key, nkey), mc__now32(s), NULL);
}

struct mc_item *mc_store_vivify(struct mc_store *s, const char *key, size_t nkey, uint64_t new_cas)
{
    if (nkey == 0 || nkey > MC_KEY_MAX)
        return NULL;
    struct mc_item *it = mc__item_alloc(s, key, nkey, mc__hash(key, nkey), 0, NULL);
    if (it)
        mc__store(s, NULL, it, new_cas);
    return it;
}

void mc_store_bump(struct mc_store *s, struct mc_item *it)
{
    mc__fetched(s, it);
}

void mc_store_set_exptime(struct mc_item *it, int64_t exptime, int64_t now)
{
    it->exptime = mc_store_abs_time_at(exptime, now);
}

void mc_store_mark_won(struct mc_item *it)
{
    it->iflags |= MC_ITEM_TOKEN_SENT;
}

void mc_store_count_mg(struct mc_store *s, bool hit, bool touch)
{
    if (touch) {
        s->st.cmd_touch++;
        s->st.touch_hits += hit;
        s->st.touch_misses += !hit;
    } else {
        s->st.cmd_get++;
        s->st.get_hits += hit;
        s->st.get_misses += !hit;
    }
}

/* md I: the item stays, stale, with a new cas and no win token sent yet. */
static void invalidate(struct mc_store *s, struct mc_item *it, const struct mc_mdelete_req *req)
{
    if (req->has_ttl)
        it->exptime = mc_store_abs_time(s, req->ttl);
    it->iflags = (uint8_t)((it->iflags | MC_ITEM_STALE) & ~MC_ITEM_TOKEN_SENT);
    it->cas = req->new_cas ? req->new_cas : mc__next_cas(s);
}

enum mc_result mc_store_mdelete(struct mc_store *s, const char *key, size_t nkey,
                                const struct mc_mdelete_req *req)
{
    struct mc_item *it = mc_store_find(s, key, nkey);
    if (!it || (req->has_cas && it->cas != req->cas)) {
        s->st.delete_misses++;
        return it ? MC_EXISTS : MC_NOT_FOUND;
    }
    if (req->invalidate) {
        invalidate(s, it, req);
    } else {
        s->st.delete_hits++;
        mc__unlink(s, it);
    }
    return MC_DELETED;
}
