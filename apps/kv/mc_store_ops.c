/*
 * The memcached commands on a per-core store: get/gat, the six storage modes, delete, touch,
 * incr/decr, flush_all. Results and counters follow memcached 1.6 (do_store_item,
 * do_add_delta, process_*_command); the table, LRU and memory are in mc_store.c.
 */
#include "mc_store_int.h"
#include "mc_num.h"

#include <string.h>

static void count_miss(struct mc_store *s, enum mc_miss why)
{
    s->st.get_expired += why == MC_MISS_EXPIRED;
    s->st.get_flushed += why == MC_MISS_FLUSHED;
}

const struct mc_item *mc_store_get(struct mc_store *s, const char *key, size_t nkey)
{
    enum mc_miss why;
    uint32_t now = mc__now32(s);
    struct mc_item *it = mc__find_live(s, key, nkey, mc__hash(key, nkey), now, &why);
    s->st.cmd_get++;
    if (!it) {
        s->st.get_misses++;
        count_miss(s, why);
        return NULL;
    }
    s->st.get_hits++;
    mc__fetched_at(s, it, now);
    return it;
}

const struct mc_item *mc_store_gat(struct mc_store *s, const char *key, size_t nkey,
                                   int64_t exptime)
{
    enum mc_miss why;
    struct mc_item *it = mc__find_live(s, key, nkey, mc__hash(key, nkey), mc__now32(s), &why);
    s->st.cmd_touch++;
    if (!it) {
        s->st.touch_misses++;
        count_miss(s, why);
        return NULL;
    }
    s->st.touch_hits++;
    it->exptime = mc_store_abs_time(s, exptime);
    mc__fetched(s, it);
    return it;
}

/* ---- storage commands ---- */

/*
 * Fills a freshly allocated item from the request and links it in place of old (if any). A
 * stale store (ms I with an older cas) keeps the old exptime and win token, as memcached does.
 */
static void store_new(struct mc_store *s, struct mc_item *old, struct mc_item *it,
                      const struct mc_set_req *req, bool stale, uint64_t *cas_out)
{
    it->flags = req->flags;
    it->exptime = mc_store_abs_time(s, req->exptime);
    it->iflags = req->key_binary ? MC_ITEM_KEY_BINARY : 0;
    if (stale) {
        it->exptime = old->exptime;
        it->iflags |= MC_ITEM_STALE | (old->iflags & MC_ITEM_TOKEN_SENT);
    }
    memcpy(it->data + it->nkey, req->data, req->nbytes);
    mc__store(s, old, it, req->new_cas);
    if (cas_out)
        *cas_out = it->cas;
}

/* append/prepend: a new item holding both values, with the old flags and exptime. */
static enum mc_result store_concat(struct mc_store *s, struct mc_item *old, bool append,
                                   const struct mc_set_req *req, uint64_t *cas_out)
{
    size_t total = (size_t)old->nbytes + req->nbytes;
    if (mc_item_size(req->nkey, total) > s->item_max)
        return MC_NOT_STORED;
    struct mc_item *it = mc__item_alloc(s, req->key, req->nkey, old->hv, total, old);
    if (!it)
        return MC_NOT_STORED; /* memcached: a failed alloc here answers NOT_STORED */
    char *v = it->data + it->nkey;
    const char *first = append ? mc_item_value(old) : req->data;
    size_t nfirst = append ? old->nbytes : req->nbytes;
    memcpy(v, first, nfirst);
    memcpy(v + nfirst, append ? req->data : mc_item_value(old), total - nfirst);
    it->flags = old->flags;
    it->exptime = old->exptime;
    mc__store(s, old, it, req->new_cas);
    if (cas_out)
        *cas_out = it->cas;
    return MC_STORED;
}

/* Rules decided before any allocation: MC_GO_ON (or MC_GO_STALE) to carry on, else the result. */
#define MC_GO_ON    (-1)
#define MC_GO_STALE (-2)

static int precheck(struct mc_store *s, enum mc_set_mode mode, struct mc_item *old,
                    const struct mc_set_req *req)
{
    switch (mode) {
    case MC_SET: return MC_GO_ON;
    case MC_ADD:
        if (!old)
            return MC_GO_ON;
        mc__update(s, old); /* add of a live key still promotes it, as memcached does */
        return MC_NOT_STORED;
    case MC_REPLACE: return old ? MC_GO_ON : MC_NOT_STORED;
    case MC_APPEND:
    case MC_PREPEND:
        if (!old)
            return MC_NOT_STORED;
        return req->cas && req->cas != old->cas ? MC_EXISTS : MC_GO_ON;
    case MC_CAS:
        if (!old) {
            s->st.cas_misses++;
            return MC_NOT_FOUND;
        }
        if (old->cas == req->cas)
            return MC_GO_ON;
        if (req->invalidate && req->cas < old->cas)
            return MC_GO_STALE;
        s->st.cas_badval++;
        return MC_EXISTS;
    }
    return MC_NOT_STORED;
}

enum mc_result mc_store_set(struct mc_store *s, enum mc_set_mode mode, const struct mc_set_req *req,
                            uint64_t *cas_out)
{
    if (req->nkey == 0 || req->nkey > MC_KEY_MAX)
        return MC_NOT_STORED;
    uint32_t hv = mc__hash(req->key, req->nkey);
    s->st.cmd_set++;
    if (mc_item_size(req->nkey, req->nbytes) > s->item_max) {
        s->st.store_too_large++;
        struct mc_item *stale = mode == MC_SET ? mc__find(s, req->key, req->nkey, hv) : NULL;
        if (stale)
            mc__unlink(s, stale);
        return MC_TOO_LARGE;
    }
    struct mc_item *old = mc__find_live(s, req->key, req->nkey, hv, mc__now32(s), NULL);
    int early = precheck(s, mode, old, req);
    if (early != MC_GO_ON && early != MC_GO_STALE)
        return (enum mc_result)early;
    if (mode == MC_APPEND || mode == MC_PREPEND)
        return store_concat(s, old, mode == MC_APPEND, req, cas_out);
    struct mc_item *it = mc__item_alloc(s, req->key, req->nkey, hv, req->nbytes, old);
    if (!it) {
        s->st.store_no_memory++;
        if (mode == MC_SET && old)
            mc__unlink(s, old);
        return MC_NO_MEMORY;
    }
    s->st.cas_hits += mode == MC_CAS;
    store_new(s, old, it, req, early == MC_GO_STALE, cas_out);
    return MC_STORED;
}

void mc_store_too_large(struct mc_store *s, const char *key, size_t nkey, bool unlink)
{
    s->st.store_too_large++;
    if (!unlink || nkey == 0 || nkey > MC_KEY_MAX)
        return;
    struct mc_item *it = mc__find(s, key, nkey, mc__hash(key, nkey));
    if (it)
        mc__unlink(s, it);
}

/* ---- delete, touch ---- */

enum mc_result mc_store_delete(struct mc_store *s, const char *key, size_t nkey)
{
    struct mc_item *it = mc__find_live(s, key, nkey, mc__hash(key, nkey), mc__now32(s), NULL);
    if (!it) {
        s->st.delete_misses++;
        return MC_NOT_FOUND;
    }
    s->st.delete_hits++;
    mc__unlink(s, it);
    return MC_DELETED;
}

enum mc_result mc_store_touch(struct mc_store *s, const char *key, size_t nkey, int64_t exptime)
{
    struct mc_item *it = mc__find_live(s, key, nkey, mc__hash(key, nkey), mc__now32(s), NULL);
    s->st.cmd_touch++;
    if (!it) {
        s->st.touch_misses++;
        return MC_NOT_FOUND;
    }
    s->st.touch_hits++;
    it->exptime = mc_store_abs_time(s, exptime);
    mc__fetched(s, it);
    return MC_TOUCHED;
}

/* ---- incr, decr, ma ---- */

/* Writes the new number into a new item that replaces old (flags and exptime kept). */
static struct mc_item *delta_grow(struct mc_store *s, struct mc_item *old, const char *digits,
                                  size_t n, uint64_t new_cas)
{
    struct mc_item *it = mc__item_alloc(s, mc_item_key(old), old->nkey, old->hv, n, old);
    if (!it)
        return NULL;
    memcpy(it->data + it->nkey, digits, n);
    it->flags = old->flags;
    it->exptime = old->exptime;
    mc__store(s, old, it, new_cas);
    return it;
}

/*
 * Overwrites the value in place, padding with spaces (memcached's in-place path: a new cas, the
 * state bits and the access time rule as for any update).
 */
static struct mc_item *delta_in_place(struct mc_store *s, struct mc_item *it, const char *digits,
                                      size_t n, uint64_t new_cas)
{
    char *v = it->data + it->nkey;
    memcpy(v, digits, n);
    memset(v + n, ' ', it->nbytes - n);
    it->cas = new_cas ? new_cas : mc__next_cas(s);
    mc__update(s, it);
    return it;
}

/* ma N on a miss: a new item holding the initial value. */
static enum mc_result arith_create(struct mc_store *s, const char *key, size_t nkey, uint32_t hv,
                                   const struct mc_arith_req *req, struct mc_arith_res *res)
{
    char digits[MC_U64_DIGITS];
    size_t n = app_u64_dec(req->initial, digits);
    struct mc_item *it = mc__item_alloc(s, key, nkey, hv, n, NULL);
    if (!it)
        return MC_NO_MEMORY;
    memcpy(it->data + it->nkey, digits, n);
    mc__store(s, NULL, it, req->new_cas);
    res->value = req->initial;
    res->it = it;
    return MC_STORED;
}

enum mc_result mc_store_arith(struct mc_store *s, const char *key, size_t nkey,
                              const struct mc_arith_req *req, struct mc_arith_res *res)
{
    uint32_t hv = mc__hash(key, nkey);
    struct mc_item *it = mc__find_live(s, key, nkey, hv, mc__now32(s), NULL);
    if (!it) {
        if (req->vivify)
            return arith_create(s, key, nkey, hv, req, res);
        s->st.incr_misses += req->incr;
        s->st.decr_misses += !req->incr;
        return MC_NOT_FOUND;
    }
    if (it->nbytes == 0)
        return MC_NON_NUMERIC;
    if (req->cas && req->cas != it->cas)
        return MC_EXISTS;
    uint64_t v;
    if (!mc_parse_u64(mc_item_value(it), it->nbytes, &v))
        return MC_NON_NUMERIC;
    if (req->incr)
        v += req->delta; /* unsigned: wraps at 2^64 like memcached */
    else
        v = req->delta > v ? 0 : v - req->delta;
    s->st.incr_hits += req->incr;
    s->st.decr_hits += !req->incr;
    char digits[MC_U64_DIGITS];
    size_t n = app_u64_dec(v, digits);
    res->value = v;
    res->it = n <= it->nbytes ? delta_in_place(s, it, digits, n, req->new_cas)
                              : delta_grow(s, it, digits, n, req->new_cas);
    return res->it ? MC_DELTA_OK : MC_NO_MEMORY;
}

enum mc_result mc_store_delta(struct mc_store *s, const char *key, size_t nkey, bool incr,
                              uint64_t delta, uint64_t *value)
{
    struct mc_arith_req req = {.incr = incr, .delta = delta};
    struct mc_arith_res res;
    enum mc_result r = mc_store_arith(s, key, nkey, &req, &res);
    if (r == MC_DELTA_OK && value)
        *value = res.value;
    return r;
}

/* ---- flush_all ---- */

void mc_store_flush_all(struct mc_store *s, int64_t delay)
{
    s->st.cmd_flush++;
    uint32_t at = delay > 0 ? mc_store_abs_time(s, delay) : 0;
    if (at > mc__now32(s)) {
        s->flush_at = at;
        return;
    }
    /* Now (or a moment already past): everything linked so far is of an older epoch. */
    s->flush_at = 0;
    if (++s->epoch == 0)
        mc__unlink_all(s);
}
