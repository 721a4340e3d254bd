/*
 * The store's side of sn-kv snapshots (apps/kv/mc_store_snap.c): the walk returns every item
 * once, oldest first, and keeps its promises while the store changes under it (sets, deletes,
 * fetches, evictions, incr in place, a walk ended early), checked step by step and against a
 * model over random interleavings; mc_store_load restores flags, cas, exptime, access time
 * and state bits, drops expired and too large items, keeps the LRU order, evicts under a
 * smaller limit, and the cas sequence and a pending flush_all carry over; a chain of staged
 * items links in pieces, with or without lookups, and a mark is kept (counting what the limit
 * evicted) or undone (the store as it was: no item, the stats and the cas sequence back).
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/kv/mc_store.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ROUNDS 40
#else
#define ROUNDS 400
#endif

#define T0 1700000000

static int64_t now_s = T0;

static int64_t clock_now(void *arg)
{
    (void)arg;
    return now_s;
}

static struct mc_store *make(size_t mem, unsigned core)
{
    now_s = T0;
    struct mc_store_config cfg = {
        .mem_limit = mem, .item_max = mem < 4096 ? mem : 4096, .core_id = core, .now = clock_now};
    struct mc_store *s = mc_store_create(&cfg);
    cr_assert_not_null(s);
    return s;
}

static void set(struct mc_store *s, const char *key, const char *val)
{
    struct mc_set_req r = {
        .key = key, .nkey = strlen(key), .data = val, .nbytes = strlen(val), .flags = 3};
    cr_assert_eq(mc_store_set(s, MC_SET, &r, NULL), MC_STORED);
}

static bool key_is(const struct mc_item *it, const char *key)
{
    return it && it->nkey == strlen(key) && memcmp(mc_item_key(it), key, it->nkey) == 0;
}

static bool value_is(const struct mc_item *it, const char *val)
{
    return it && it->nbytes == strlen(val) && memcmp(mc_item_value(it), val, it->nbytes) == 0;
}

/* The key of the walk's next item into buf ("" at the end). */
static const char *next_key(struct mc_store *s, char *buf)
{
    const struct mc_item *it = mc_store_walk_next(s);
    buf[0] = '\0';
    if (it)
        snprintf(buf, 64, "%.*s", (int)it->nkey, mc_item_key(it));
    return buf;
}

Test(mc_store_snap, walk_oldest_first_once_and_again)
{
    struct mc_store *s = make(1 << 20, 0);
    char b[64];
    cr_assert_str_eq(next_key(s, b), "", "no walk: nothing");
    mc_store_walk_begin(s);
    cr_assert_str_eq(next_key(s, b), "", "an empty store");
    set(s, "a", "1");
    set(s, "b", "2");
    set(s, "c", "3");
    cr_assert_not_null(mc_store_get(s, "a", 1)); /* marked active, not moved: c, b, a */
    set(s, "b", "4");                            /* a new item goes to the front: b, c, a */
    for (int round = 0; round < 2; round++) {
        mc_store_walk_begin(s);
        cr_assert_str_eq(next_key(s, b), "a");
        cr_assert_str_eq(next_key(s, b), "c");
        cr_assert_str_eq(next_key(s, b), "b");
        cr_assert_str_eq(next_key(s, b), "");
        cr_assert_str_eq(next_key(s, b), "", "stays over");
    }
    mc_store_destroy(s);
}

Test(mc_store_snap, walk_stands_on_the_newest_and_it_is_fetched)
{
    struct mc_store *s = make(1 << 20, 0);
    char b[64];
    set(s, "a", "1");
    set(s, "b", "2");
    mc_store_walk_begin(s);
    cr_assert_str_eq(next_key(s, b), "a");
    cr_assert_not_null(mc_store_get(s, "b", 1)); /* a fetch marks it active, moves nothing */
    cr_assert_str_eq(next_key(s, b), "b", "the walk still gets to it");
    cr_assert_str_eq(next_key(s, b), "");
    mc_store_destroy(s);
}

Test(mc_store_snap, walk_under_changes)
{
    struct mc_store *s = make(1 << 20, 0);
    char b[64];
    const char *keys[] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"};
    for (int i = 0; i < 8; i++)
        set(s, keys[i], "old");
    mc_store_walk_begin(s);
    cr_assert_str_eq(next_key(s, b), "k0");
    cr_assert_str_eq(next_key(s, b), "k1");
    /* Visited k0 fetched (marked active, it stays), visited k1 changed (to the front with
     * its walk bit): neither comes again. */
    cr_assert_not_null(mc_store_get(s, "k0", 2));
    set(s, "k1", "new");
    /* Unvisited: k3 changed (to the front, comes with its new value), k4 deleted, k5
     * fetched (stays where it is). */
    set(s, "k3", "new");
    cr_assert_eq(mc_store_delete(s, "k4", 2), MC_DELETED);
    cr_assert_not_null(mc_store_get(s, "k5", 2));
    /* k2 is where the walk stands: fetch it (it stays), and a new key appears. */
    cr_assert_not_null(mc_store_get(s, "k2", 2));
    set(s, "fresh", "x");
    const char *want[] = {"k2", "k5", "k6", "k7", "k3"};
    for (int i = 0; i < 5; i++) {
        const struct mc_item *it = mc_store_walk_next(s);
        cr_assert(key_is(it, want[i]), "item %d is %s", i, want[i]);
        cr_assert(value_is(it, strcmp(want[i], "k3") ? "old" : "new"));
    }
    cr_assert_str_eq(next_key(s, b), "", "k0, k1 not twice, k4 gone, fresh too new");
    mc_store_destroy(s);
}

Test(mc_store_snap, walk_where_it_stands_is_deleted_or_evicted)
{
    struct mc_store *s = make(8 * mc_item_size(2, 3), 0); /* room for 8 items */
    char b[64];
    char k[16];
    for (int i = 0; i < 8; i++) {
        snprintf(k, sizeof k, "k%d", i);
        set(s, k, "abc");
    }
    mc_store_walk_begin(s);
    cr_assert_eq(mc_store_delete(s, "k0", 2), MC_DELETED); /* the walk's position */
    cr_assert_str_eq(next_key(s, b), "k1");
    set(s, "n0", "abc"); /* fits where k0 was */
    set(s, "n1", "abc"); /* evicts k1 */
    set(s, "n2", "abc"); /* evicts k2, where the walk stands */
    cr_assert_str_eq(next_key(s, b), "k3");
    mc_store_walk_end(s);
    mc_store_walk_begin(s); /* everything is unvisited again, the n keys included */
    const char *want[] = {"k3", "k4", "k5", "k6", "k7", "n0", "n1", "n2", ""};
    for (int i = 0; i < 9; i++)
        cr_assert_str_eq(next_key(s, b), want[i]);
    mc_store_destroy(s);
}

/*
 * Eviction gives an active item at the LRU tail a second chance by moving it to the front:
 * the walk standing on it goes on from the next newer item and meets it once at the front.
 */
Test(mc_store_snap, walk_where_it_stands_is_rescued_by_eviction)
{
    struct mc_store *s = make(4 * mc_item_size(2, 3), 0); /* room for 4 items */
    char b[64];
    char k[16];
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "k%d", i);
        set(s, k, "abc");
    }
    cr_assert_not_null(mc_store_get(s, "k0", 2)); /* active: the next eviction spares it */
    mc_store_walk_begin(s);                       /* it stands on k0, the tail */
    set(s, "k4", "abc"); /* moves k0 to the front (walk stays unvisited), evicts k1 */
    cr_assert_not_null(mc_store_find(s, "k0", 2), "k0 got its second chance");
    cr_assert_null(mc_store_find(s, "k1", 2), "k1 went instead");
    const char *want[] = {"k2", "k3", "k0", ""};
    for (int i = 0; i < 4; i++)
        cr_assert_str_eq(next_key(s, b), want[i], "step %d", i);
    /* Once returned, a rescue does not bring it back. */
    cr_assert_not_null(mc_store_get(s, "k2", 2));
    mc_store_walk_begin(s); /* k2, k3, k0, k4 */
    cr_assert_str_eq(next_key(s, b), "k2");
    set(s, "k5", "abc"); /* k2 (visited, active, at the tail) goes to the front; k3 goes */
    cr_assert_null(mc_store_find(s, "k3", 2));
    const char *want2[] = {"k0", "k4", ""};
    for (int i = 0; i < 3; i++)
        cr_assert_str_eq(next_key(s, b), want2[i], "second walk, step %d", i);
    mc_store_destroy(s);
}

Test(mc_store_snap, walk_skips_dead_and_sees_incr_in_place)
{
    struct mc_store *s = make(1 << 20, 0);
    char b[64];
    struct mc_set_req r = {.key = "t", .nkey = 1, .data = "v", .nbytes = 1, .exptime = 10};
    cr_assert_eq(mc_store_set(s, MC_SET, &r, NULL), MC_STORED);
    set(s, "n", "100");
    mc_store_walk_begin(s);
    now_s += 10; /* t expires before the walk gets to it */
    uint64_t v;
    cr_assert_eq(mc_store_delta(s, "n", 1, false, 1, &v), MC_DELTA_OK);
    const struct mc_item *it = mc_store_walk_next(s);
    cr_assert(key_is(it, "n"));
    cr_assert(value_is(it, "99 "), "the value of the moment");
    cr_assert_str_eq(next_key(s, b), "");
    mc_store_destroy(s);
}

/* ---- random interleavings against a model ---- */

#define NK 64

struct model {
    bool live[NK];
    unsigned ver[NK];      /* value "v<ver>" */
    bool at_begin[NK];     /* live when the walk began */
    bool touched[NK];      /* set or deleted since the walk began */
    unsigned returned[NK]; /* times the walk returned it */
};

static uint64_t rng = 88172645463325252ull;

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void model_op(struct mc_store *s, struct model *m)
{
    unsigned k = rnd(NK), op = rnd(10);
    char key[8], val[16];
    snprintf(key, sizeof key, "k%u", k);
    if (op < 4) {
        snprintf(val, sizeof val, "v%u", ++m->ver[k]);
        set(s, key, val);
        m->live[k] = true;
        m->touched[k] = true;
    } else if (op < 6) {
        mc_store_delete(s, key, strlen(key));
        m->live[k] = false;
        m->touched[k] = true;
    } else {
        mc_store_get(s, key, strlen(key)); /* a fetch marks it active, changes nothing */
    }
}

static void model_walk_step(struct mc_store *s, struct model *m, bool *over)
{
    const struct mc_item *it = mc_store_walk_next(s);
    if (!it) {
        *over = true;
        return;
    }
    unsigned k = (unsigned)atoi(mc_item_key(it) + 1);
    char val[16];
    snprintf(val, sizeof val, "v%u", m->ver[k]);
    cr_assert(m->live[k], "k%u returned while deleted", k);
    cr_assert(value_is(it, val), "k%u has its value of the moment", k);
    cr_assert(m->at_begin[k], "k%u was created after the walk began", k);
    m->returned[k]++;
}

Test(mc_store_snap, walk_random_interleavings)
{
    for (int round = 0; round < ROUNDS; round++) {
        struct mc_store *s = make(1 << 20, 0);
        struct model m = {0};
        for (int i = 0; i < 200; i++)
            model_op(s, &m);
        for (int walk = 0; walk < 3; walk++) {
            memcpy(m.at_begin, m.live, sizeof m.live);
            memset(m.touched, 0, sizeof m.touched);
            memset(m.returned, 0, sizeof m.returned);
            mc_store_walk_begin(s);
            bool over = false;
            while (!over) {
                for (unsigned n = rnd(4); n; n--)
                    model_op(s, &m);
                model_walk_step(s, &m, &over);
            }
            for (unsigned k = 0; k < NK; k++) {
                cr_assert_leq(m.returned[k], 1, "k%u returned once at most", k);
                if (m.at_begin[k] && !m.touched[k])
                    cr_assert_eq(m.returned[k], 1, "round %d: untouched k%u is saved", round, k);
            }
        }
        mc_store_destroy(s);
    }
}

/* ---- load ---- */

Test(mc_store_snap, load_restores_items_and_order)
{
    struct mc_store *a = make(1 << 20, 3);
    struct mc_set_req r = {.key = "x",
                           .nkey = 1,
                           .data = "hello",
                           .nbytes = 5,
                           .flags = 77,
                           .exptime = 1000,
                           .key_binary = true};
    uint64_t cas_x;
    cr_assert_eq(mc_store_set(a, MC_SET, &r, &cas_x), MC_STORED);
    set(a, "y", "2");
    set(a, "z", "3");
    struct mc_mdelete_req inval = {.invalidate = true};
    cr_assert_eq(mc_store_mdelete(a, "y", 1, &inval), MC_DELETED); /* y stale */
    now_s += 5;
    cr_assert_not_null(mc_store_get(a, "x", 1)); /* x fetched at T0 + 5: active, not moved */

    struct mc_store *b = make(1 << 20, 0);
    now_s = T0 + 10;
    mc_store_walk_begin(a);
    const struct mc_item *it;
    while ((it = mc_store_walk_next(a))) {
        struct mc_item_image im = {.key = mc_item_key(it),
                                   .nkey = it->nkey,
                                   .value = mc_item_value(it),
                                   .nbytes = it->nbytes,
                                   .cas = it->cas,
                                   .flags = it->flags,
                                   .exptime = it->exptime,
                                   .time = it->time,
                                   .iflags = it->iflags};
        cr_assert_eq(mc_store_load(b, &im), MC_STORED);
    }
    struct mc_store_stats st;
    mc_store_stats(b, &st);
    cr_assert_eq(st.curr_items, 3);
    cr_assert_eq(st.total_items, 0, "loading is not storing");
    struct mc_item *x = mc_store_find(b, "x", 1);
    cr_assert(value_is(x, "hello"));
    cr_assert_eq(x->cas, cas_x);
    cr_assert_eq(x->flags, 77);
    cr_assert_eq(x->exptime, T0 + 1000);
    cr_assert_eq(x->time, T0 + 5);
    cr_assert_eq(x->iflags & MC_ITEM_SAVED_BITS, MC_ITEM_FETCHED | MC_ITEM_KEY_BINARY);
    cr_assert_eq(x->iflags & MC_ITEM_ACTIVE, 0, "the LRU's second-chance mark is not saved");
    cr_assert_eq(mc_store_find(b, "y", 1)->iflags & MC_ITEM_SAVED_BITS, MC_ITEM_STALE);
    char buf[64];
    mc_store_walk_begin(b); /* the same LRU order: x, y, z */
    mc_store_walk_begin(a);
    for (int i = 0; i < 4; i++) {
        char other[64];
        cr_assert_str_eq(next_key(b, buf), next_key(a, other), "LRU position %d", i);
    }
    mc_store_destroy(a);
    mc_store_destroy(b);
}

Test(mc_store_snap, load_drops_expired_too_large_and_bad_keys)
{
    struct mc_store *s = make(1 << 20, 0);
    char big[5000];
    memset(big, 'b', sizeof big);
    struct mc_item_image im = {
        .key = "k", .nkey = 1, .value = "v", .nbytes = 1, .cas = 1 << 10, .exptime = T0};
    cr_assert_eq(mc_store_load(s, &im), MC_NOT_STORED, "expired at the store's clock");
    im.exptime = T0 + 1;
    cr_assert_eq(mc_store_load(s, &im), MC_STORED);
    im.nkey = 0;
    cr_assert_eq(mc_store_load(s, &im), MC_NOT_STORED);
    im.nkey = MC_KEY_MAX + 1;
    cr_assert_eq(mc_store_load(s, &im), MC_NOT_STORED);
    im = (struct mc_item_image){.key = "b", .nkey = 1, .value = big, .nbytes = sizeof big};
    cr_assert_eq(mc_store_load(s, &im), MC_TOO_LARGE, "over this store's item_max");
    im.nbytes = 10;
    im.iflags = 0xff;
    cr_assert_eq(mc_store_load(s, &im), MC_STORED);
    struct mc_item *b = mc_store_find(s, "b", 1);
    cr_assert_eq(b->iflags & ~MC_ITEM_SAVED_BITS & 0x7f, 0, "only the saved bits come in");
    cr_assert_neq(b->cas, 0, "a cas of 0 gets a fresh one");
    mc_store_destroy(s);
}

Test(mc_store_snap, load_under_a_smaller_limit_keeps_the_newest)
{
    struct mc_store *s = make(4 * mc_item_size(2, 1), 0);
    char key[16];
    for (int i = 0; i < 10; i++) { /* oldest first, as a snapshot holds them */
        snprintf(key, sizeof key, "k%d", i);
        struct mc_item_image im = {.key = key, .nkey = 2, .value = "v", .nbytes = 1};
        cr_assert_eq(mc_store_load(s, &im), MC_STORED);
    }
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "k%d", i);
        cr_assert_eq(mc_store_find(s, key, 2) != NULL, i >= 6, "%s", key);
    }
    mc_store_destroy(s);
}

Test(mc_store_snap, cas_sequence_and_pending_flush_carry_over)
{
    struct mc_store *s = make(1 << 20, 2);
    uint64_t seq = mc_store_cas_seq(s);
    mc_store_cas_raise(s, seq - 1);
    cr_assert_eq(mc_store_cas_seq(s), seq, "never lowered");
    mc_store_cas_raise(s, 5000);
    struct mc_set_req r = {.key = "a", .nkey = 1, .data = "1", .nbytes = 1};
    uint64_t cas;
    cr_assert_eq(mc_store_set(s, MC_SET, &r, &cas), MC_STORED);
    cr_assert_eq(cas, (5000ull << MC_CAS_CORE_BITS) | 2);
    mc_store_cas_raise(s, UINT64_MAX);
    cr_assert_eq(mc_store_set(s, MC_SET, &r, &cas), MC_STORED);
    cr_assert_gt(cas, 5000ull << MC_CAS_CORE_BITS, "clamped, not wrapped");

    cr_assert_eq(mc_store_pending_flush(s), 0);
    mc_store_restore_flush(s, T0 - 1);
    cr_assert_eq(mc_store_pending_flush(s), 0, "a past moment does nothing");
    mc_store_restore_flush(s, T0 + 100);
    cr_assert_eq(mc_store_pending_flush(s), T0 + 100);
    now_s = T0 + 100;
    cr_assert_null(mc_store_get(s, "a", 1), "a (stored before) dies when the flush comes");
    mc_store_destroy(s);
}

/* ---- the table sized ahead of a load ---- */

static struct mc_store_stats stats_of(const struct mc_store *s)
{
    struct mc_store_stats st;
    mc_store_stats(s, &st);
    return st;
}

Test(mc_store_snap, reserve_sizes_the_table_once)
{
    struct mc_store *s = make(64 << 20, 0);
    char key[32], val[32];
    for (int i = 0; i < 1000; i++) { /* past the first expansion (65536 * 1.5 is not reached) */
        snprintf(key, sizeof key, "old%d", i);
        set(s, key, key);
    }
    uint64_t before = stats_of(s).hash_power_level;
    cr_assert_eq(mc_store_reserve(s, 10), 0, "room already: nothing to do");
    cr_assert_eq(stats_of(s).hash_power_level, before);
    cr_assert_eq(mc_store_reserve(s, 300000), 0);
    struct mc_store_stats st = stats_of(s);
    cr_assert_eq(st.hash_power_level, 18, "301000 items fit in 2^18 buckets at 1.5 per bucket");
    cr_assert_eq(st.hash_is_expanding, 0);
    for (int i = 0; i < 1000; i++) { /* every item moved to the new table */
        snprintf(key, sizeof key, "old%d", i);
        cr_assert(value_is(mc_store_get(s, key, strlen(key)), key), "%s", key);
    }
    for (int i = 0; i < 300000; i++) {
        snprintf(key, sizeof key, "new%d", i);
        snprintf(val, sizeof val, "v%d", i);
        set(s, key, val);
        cr_assert_eq(stats_of(s).hash_is_expanding, 0, "no expansion on the way (%d)", i);
    }
    cr_assert_eq(stats_of(s).hash_power_level, 18);
    for (int i = 0; i < 300000; i += 997) {
        snprintf(key, sizeof key, "new%d", i);
        snprintf(val, sizeof val, "v%d", i);
        cr_assert(value_is(mc_store_get(s, key, strlen(key)), val), "%s", key);
    }
    mc_store_destroy(s);
}

Test(mc_store_snap, reserve_during_an_expansion_finishes_it)
{
    struct mc_store *s = make(64 << 20, 0);
    char key[32];
    int n = 65536 + 32768 + 1; /* one past 1.5 per bucket: an expansion begins */
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "k%d", i);
        set(s, key, key);
    }
    cr_assert_eq(stats_of(s).hash_is_expanding, 1, "the expansion is in progress");
    cr_assert_eq(mc_store_reserve(s, 1000000), 0);
    cr_assert_eq(stats_of(s).hash_is_expanding, 0);
    cr_assert_eq(stats_of(s).hash_power_level, 20);
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "k%d", i);
        cr_assert(value_is(mc_store_get(s, key, strlen(key)), key), "%s", key);
    }
    mc_store_destroy(s);
}

/* ---- linking a chain of staged items; marking, keeping and undoing a file's links ---- */

/* Stages items key<first>..key<first+n-1> (value "v<i>", cas i << 10 | core 0) oldest first,
 * chained through hnext as a loader chains them. */
static struct mc_item *stage_chain(struct mc_store *s, int first, int n)
{
    struct mc_item *head = NULL, **tail = &head;
    char key[32], val[32];
    for (int i = first; i < first + n; i++) {
        snprintf(key, sizeof key, "key%d", i);
        snprintf(val, sizeof val, "v%d", i);
        struct mc_item_image im = {.key = key,
                                   .nkey = strlen(key),
                                   .value = val,
                                   .nbytes = strlen(val),
                                   .cas = (uint64_t)(i + 1) << MC_CAS_CORE_BITS};
        enum mc_result r;
        struct mc_item *it = mc_store_stage(s, &im, &r);
        cr_assert_not_null(it, "%s", key);
        cr_assert_eq(r, MC_STORED);
        it->hnext = NULL;
        *tail = it;
        tail = &it->hnext;
    }
    return head;
}

static void expect_items(struct mc_store *s, int first, int n)
{
    char key[32], val[32];
    for (int i = first; i < first + n; i++) {
        snprintf(key, sizeof key, "key%d", i);
        snprintf(val, sizeof val, "v%d", i);
        struct mc_item *it = mc_store_find(s, key, strlen(key));
        cr_assert(value_is(it, val), "%s", key);
        cr_assert_eq(it->cas, (uint64_t)(i + 1) << MC_CAS_CORE_BITS, "%s keeps its cas", key);
    }
}

Test(mc_store_snap, link_staged_chain_in_pieces_keeps_order_and_replaces)
{
    struct mc_store *s = make(64 << 20, 0);
    set(s, "key5", "older"); /* replaced by the chain's key5 (a lookup is made) */
    struct mc_item *chain = stage_chain(s, 0, 1000);
    uint64_t no_memory = 0;
    cr_assert_eq(mc_store_link_staged_chain(s, &chain, 300, false, &no_memory), 300);
    cr_assert_not_null(chain, "the rest waits");
    cr_assert_eq(stats_of(s).curr_items, 300, "key5 replaced, not added");
    cr_assert_eq(mc_store_link_staged_chain(s, &chain, SIZE_MAX, false, &no_memory), 700);
    cr_assert_null(chain);
    cr_assert_eq(no_memory, 0);
    cr_assert_eq(stats_of(s).curr_items, 1000);
    cr_assert_eq(stats_of(s).total_items, 1, "only the client's set counts as a store");
    expect_items(s, 0, 1000);
    char buf[64], want[32];
    mc_store_walk_begin(s); /* oldest first: the chain's order */
    for (int i = 0; i < 1000; i++) {
        snprintf(want, sizeof want, "key%d", i);
        cr_assert_str_eq(next_key(s, buf), want);
    }
    mc_store_destroy(s);
}

Test(mc_store_snap, link_staged_chain_of_new_keys_without_lookups)
{
    struct mc_store *s = make(64 << 20, 0);
    cr_assert_eq(mc_store_reserve(s, 5000), 0);
    struct mc_item *chain = stage_chain(s, 0, 5000);
    uint64_t no_memory = 0;
    cr_assert_eq(mc_store_link_staged_chain(s, &chain, SIZE_MAX, true, &no_memory), 5000);
    cr_assert_eq(stats_of(s).curr_items, 5000);
    expect_items(s, 0, 5000);
    cr_assert_eq(mc_store_delete(s, "key17", 5), MC_DELETED);
    cr_assert_null(mc_store_find(s, "key17", 5), "one item per key");
    mc_store_destroy(s);
}

Test(mc_store_snap, mark_then_keep_counts_what_the_limit_evicted)
{
    struct mc_store *s = make(4 * mc_item_size(5, 2), 0); /* 4 items of key%d, v%d */
    struct mc_store_mark m;
    cr_assert(mc_store_mark(s, &m));
    struct mc_item *chain = stage_chain(s, 0, 10);
    uint64_t no_memory = 0;
    cr_assert_eq(mc_store_link_staged_chain(s, &chain, SIZE_MAX, true, &no_memory), 10);
    cr_assert_eq(mc_store_keep(s, &m), 6, "the 6 oldest were evicted by the newer");
    struct mc_store_stats st = stats_of(s);
    cr_assert_eq(st.curr_items, 4);
    cr_assert_eq(st.evictions, 0, "a load's evictions are the loader's to count");
    expect_items(s, 6, 4);
    cr_assert_not(mc_store_mark(s, &m), "a store with items cannot be marked");
    mc_store_destroy(s);
}

Test(mc_store_snap, mark_then_undo_leaves_the_store_as_it_was)
{
    struct mc_store *s = make(64 << 20, 1);
    cr_assert_null(mc_store_get(s, "none", 4)); /* a miss, counted before the mark */
    uint64_t seq = mc_store_cas_seq(s);
    struct mc_store_stats before = stats_of(s);
    struct mc_store_mark m;
    cr_assert(mc_store_mark(s, &m));
    struct mc_item *chain = stage_chain(s, 0, 2000);
    struct mc_item_image fresh = {.key = "fresh", .nkey = 5, .value = "v", .nbytes = 1};
    enum mc_result r;
    struct mc_item *f = mc_store_stage(s, &fresh, &r); /* cas 0: takes a fresh unique */
    cr_assert_not_null(f);
    cr_assert_eq(mc_store_link_staged(s, f), MC_STORED);
    uint64_t no_memory = 0;
    cr_assert_eq(mc_store_link_staged_chain(s, &chain, SIZE_MAX, true, &no_memory), 2000);
    cr_assert_gt(mc_store_cas_seq(s), seq);
    mc_store_undo(s, &m);
    struct mc_store_stats after = stats_of(s);
    cr_assert_eq(after.curr_items, 0);
    cr_assert_eq(after.bytes, 0);
    cr_assert_eq(after.get_misses, before.get_misses);
    cr_assert_eq(mc_store_cas_seq(s), seq, "the cas sequence is back");
    cr_assert_null(mc_store_find(s, "key0", 4));
    cr_assert_null(mc_store_find(s, "fresh", 5));
    chain = stage_chain(s, 0, 10); /* and the store works on */
    cr_assert_eq(mc_store_link_staged_chain(s, &chain, SIZE_MAX, true, &no_memory), 10);
    expect_items(s, 0, 10);
    mc_store_destroy(s);
}
