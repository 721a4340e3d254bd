/*
 * Per-core item store (apps/kv/mc_store): result codes as memcached returns them, LRU eviction
 * order under a memory limit, expiry with a clock the test moves (relative, absolute,
 * negative, the 30-day boundary), cas uniques, incr/decr edge cases, flush_all with a delay,
 * stats counters, hash-table growth, and mc_exec answers.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/kv/mc_exec.h"
#include "apps/kv/mc_store.h"
#include "apps/kv/mc_store_int.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SCALE 10
#else
#define SCALE 1
#endif

#define T0 1700000000 /* a realistic unix time: absolute exptimes are compared with it */

struct fixture {
    int64_t now;
    struct mc_store *s;
};

static int64_t clock_now(void *arg)
{
    return *(const int64_t *)arg;
}

static struct mc_store *make_store(struct fixture *f, size_t mem_limit, size_t item_max)
{
    f->now = T0;
    struct mc_store_config cfg = {
        .mem_limit = mem_limit, .item_max = item_max, .now = clock_now, .now_arg = &f->now};
    f->s = mc_store_create(&cfg);
    cr_assert_not_null(f->s);
    return f->s;
}

static enum mc_result set_x(struct mc_store *s, enum mc_set_mode mode, const char *key,
                            const char *val, int64_t exptime, uint64_t cas, uint64_t *cas_out)
{
    struct mc_set_req r = {.key = key, .nkey = strlen(key), .data = val, .nbytes = strlen(val),
                           .flags = 7, .exptime = exptime, .cas = cas};
    return mc_store_set(s, mode, &r, cas_out);
}

static enum mc_result set_kv(struct mc_store *s, const char *key, const char *val, int64_t exp)
{
    return set_x(s, MC_SET, key, val, exp, 0, NULL);
}

static const struct mc_item *get(struct mc_store *s, const char *key)
{
    return mc_store_get(s, key, strlen(key));
}

static bool has_value(struct mc_store *s, const char *key, const char *val)
{
    const struct mc_item *it = get(s, key);
    return it && it->nbytes == strlen(val) && memcmp(mc_item_value(it), val, it->nbytes) == 0;
}

static struct mc_store_stats stats(struct mc_store *s)
{
    struct mc_store_stats st;
    mc_store_stats(s, &st);
    return st;
}

/* ---- basics and result codes ---- */

Test(mc_store, set_get_flags_and_crlf)
{
    struct fixture f;
    struct mc_store *s = make_store(&f, 0, 0);
    cr_assert_eq(set_kv(s, "k", "v\r\nv", 0), MC_STORED);
    const struct mc_item *it = get(s, "k");
    cr_assert_not_null(it);
    cr_assert_eq(it->flags, 7);
    cr_assert_eq(it->nbytes, 4);
    cr_assert_arr_eq(mc_item_value(it), "v\r\nv\r\n", 6); /* the value keeps its "\r\n" */
    cr_assert_arr_eq(mc_item_key(it), "k", 1);
    cr_assert_null(get(s, "nope"));
    cr_assert_eq(set_kv(s, "k", "", 0), MC_STORED);
    cr_assert(has_value(s, "k", ""));
    mc_store_destroy(s);
}

Test(mc_store, add_replace_append_prepend)
{
    struct fixture f;
    struct mc_store *s = make_store(&f, 0, 0);
    cr_assert_eq(set_x(s, MC_REPLACE, "a", "1", 0, 0, NULL), MC_NOT_STORED);
    cr_assert_eq(set_x(s, MC_APPEND, "a", "1", 0, 0, NULL), MC_NOT_STORED);
    cr_assert_eq(set_x(s, MC_PREPEND, "a", "1", 0, 0, NULL), MC_NOT_STORED);
    cr_assert_eq(set_x(s, MC_ADD, "a", "mid", 0, 0, NULL), MC_STORED);
    cr_assert_eq(set_x(s, MC_ADD, "a", "other", 0, 0, NULL), MC_NOT_STORED);
    cr_assert_eq(set_x(s, MC_APPEND, "a", ">>", 0, 0, NULL), MC_STORED);
    cr_assert_eq(set_x(s, MC_PREPEND, "a", "<<", 0, 0, NULL), MC_STORED);
    cr_assert(has_value(s, "a", "<<mid>>"));
    cr_assert_eq(set_x(s, MC_REPLACE, "a", "new", 0, 0, NULL), MC_STORED);
    cr_assert(has_value(s, "a", "new"));
    /* add over an expired item stores. */
    cr_assert_eq(set_kv(s, "e", "old", 5), MC_STORED);
    f.now += 5;
    cr_assert_eq(set_x(s, MC_ADD, "e", "fresh", 0, 0, NULL), MC_STORED);
    cr_assert(has_value(s, "e", "fresh"));
    mc_store_destroy(s);
}

Test(mc_store, append_keeps_old_flags_and_exptime)
{
    struct fixture f;
    struct mc_store *s = make_store(&f, 0, 0);
    struct mc_set_req r = {.key = "a", .nkey = 1, .data = "x", .nbytes = 1, .flags = 99,
                           .exptime = 100};
    cr_assert_eq(mc_store_set(s, MC_SET, &r, NULL), MC_STORED);
    r.flags = 1;
    r.exptime = 0;
    cr_assert_eq(mc_store_set(s, MC_APPEND, &r, NULL), MC_STORED);
    const struct mc_item *it = get(s, "a");
    cr_assert_eq(it->flags, 99);
    cr_assert_eq(it->exptime, T0 + 100);
    f.now = T0 + 100;
    cr_assert_null(get(s, "a"));
    mc_store_destroy(s);
}

Test(mc_store, cas_semantics)
{
    struct fixture f;
    struct mc_store *s = make_store(&f, 0, 0);
    uint64_t c1, c2, c3;
    cr_assert_eq(set_x(s, MC_CAS, "k", "v", 0, 1, NULL), MC_NOT_FOUND);
    cr_assert_eq(set_x(s, MC_SET, "k", "v1", 0, 0, &c1), MC_STORED);
    cr_assert_eq(get(s, "k")->cas, c1);
    cr_assert_eq(set_x(s, MC_CAS, "k", "v2", 0, c1 + 1, NULL), MC_EXISTS);
    cr_assert_eq(set_x(s, MC_CAS, "k", "v2", 0, c1, &c2), MC_STORED);
    cr_assert_gt(c2, c1);
    cr_assert(has_value(s, "k", "v2"));
    cr_assert_eq(set_x(s, MC_CAS, "k", "v3", 0, c1, NULL), MC_EXISTS); /* stale unique */
    /* touch and gat leave the unique alone; incr changes it. */
    cr_assert_eq(mc_store_touch(s, "k", 1, 100), MC_TOUCHED);
    cr_assert_eq(mc_store_gat(s, "k", 1, 100)->cas, c2);
    cr_assert_eq(set_kv(s, "n", "5", 0), MC_STORED);
    c3 = get(s, "n")->cas;
    cr_assert_eq(mc_store_delta(s, "n", 1, true, 1, NULL), MC_DELTA_OK);
    cr_assert_neq(get(s, "n")->cas, c3);
    /* an expired item is missing for cas. */
    cr_assert_eq(set_x(s, MC_SET, "e", "v", 10, 0, &c1), MC_STORED);
    f.now += 10;
    cr_assert_eq(set_x(s, MC_CAS, "e", "w", 0, c1, NULL), MC_NOT_FOUND);
    struct mc_store_stats st = stats(s);
    cr_assert_eq(st.cas_misses, 2);
    cr_assert_eq(st.cas_hits, 1);
    cr_assert_eq(st.cas_badval, 2);
    mc_store_destroy(s);
}

Test(mc_store, cas_uniques_carry_the_core_id)
{
    struct fixture f;
    f.now = T0;
    struct mc_store_config cfg = {.core_id = 5, .now = clock_now, .now_arg = &f.now};
    struct mc_store *a = mc_store_create(&cfg);
    cfg.core_id = 6;
    struct mc_store *b = mc_store_create(&cfg);
    uint64_t ca, cb, prev = 0;
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(set_x(a, MC_SET, "k", "v", 0, 0, &ca), MC_STORED);
        cr_assert_eq(set_x(b, MC_SET, "k", "v", 0, 0, &cb), MC_STORED);
        cr_assert_neq(ca, cb);
        cr_assert_eq(ca & ((1u << MC_CAS_CORE_BITS) - 1), 5);
        cr_assert_eq(cb & ((1u << MC_CAS_CORE_BITS) - 1), 6);
        cr_assert_gt(ca, prev);
        prev = ca;
    }
    cfg.core_id = 1u << MC_CAS_CORE_BITS;
    cr_assert_null(mc_store_create(&cfg));
    mc_store_destroy(a);
    mc_store_destroy(b);
}

Test(mc_store, delete_and_touch)
{
    struct fixture f;
    struct mc_store *s = make_store(&f, 0, 0);
    cr_assert_eq(mc_store_delete(s, "k", 1), MC_NOT_FOUND);
    cr_assert_eq(mc_store_touch(s, "k", 1, 10), MC_NOT_FOUND);
    set_kv(s, "k", "v", 10);
    cr_assert_eq(mc_store_touch(s, "k", 1, 100), MC_TOUCHED);
    f.now += 50;
    cr_assert_not_null(get(s, "k"));
    cr_assert_eq(mc_store_delete(s, "k", 1), MC_DELETED);
    cr_assert_null(get(s, "k"));
    struct mc_store_stats st = stats(s);
    cr_assert_eq(st.delete_hits, 1);
    cr_assert_eq(st.delete_misses, 1);
    cr_assert_eq(st.touch_hits, 1);
    cr_assert_eq(st.touch_misses, 1);
    cr_assert_eq(st.cmd_touch, 2);
    cr_assert_eq(st.curr_items, 0);
    cr_assert_eq(st.bytes, 0);
    mc_store_destroy(s);
}

/* ---- expiry ---- */

Test(mc_store, expiry_relative_absolute_negative)
{
    struct fixture f;
    struct mc_store *s = make_store(&f, 0, 0);
    set_kv(s, "rel", "v", 10);
    set_kv(s, "abs", "v", T0 + 20);
    set_kv(s, "neg", "v", -1);
    set_kv(s, "never", "v", 0);
    cr_assert_null(get(s, "neg"));
    f.now = T0 + 9;
    cr_assert_not_null(get(s, "rel"));
    f.now = T0 + 10;
    cr_assert_null(get(s, "rel"));
    cr_assert_not_null(get(s, "abs"));
    f.now = T0 + 20;
    cr_assert_null(get(s, "abs"));
    f.now = T0 + 100000000;
    cr_assert_not_null(get(s, "never"));
    struct mc_store_stats st = stats(s);
    cr_assert_eq(st.get_expired, 3);
    cr_assert_eq(st.curr_items, 1);
    mc_store_destroy(s);
}

Test(mc_store, thirty_day_boundary)
{
    struct fixture f;
    struct mc_store *s = make_store(&f, 0, 0);
    /* 2592000 s (30 days) is still relative; one more is a unix time, here long past. */
    set_kv(s, "rel", "v", 2592000);
    set_kv(s, "abs", "v", 2592001);
    cr_assert_null(get(s, "abs"));
    f.now = T0 + 2592000 - 1;
    cr_assert_not_null(get(s, "rel"));
    f.now = T0 + 2592000;
    cr_assert_null(get(s, "rel"));
    cr_assert_eq(mc_store_abs_time(s, 2592000), T0 + 2592000 + 2592000);
    cr_assert_eq(mc_store_abs_time(s, 2592001), 2592001);
    cr_assert_eq(mc_store_abs_time(s, 0), 0);
    cr_assert_eq(mc_store_abs_time(s, -5), 1);
    mc_store_destroy(s);
}

Test(mc_store, gat_and_touch_change_expiry)
{
    struct fixture f;
    struct mc_store *s = make_store(&f, 0, 0);
    set_kv(s, "k", "v", 10);
    cr_assert_not_null(mc_store_gat(s, "k", 1, 0)); /* 0: never expires */
    f.now += 1000;
    cr_assert_not_null(get(s, "k"));
    cr_assert_not_null(mc_store_gat(s, "k", 1, -1)); /* negative: dead from now on */
    cr_assert_null(get(s, "k"));
    cr_assert_null(mc_store_gat(s, "k", 1, 10));
    struct mc_store_stats st = stats(s);
    cr_assert_eq(st.touch_hits, 2);
    cr_assert_eq(st.touch_misses, 1);
    mc_store_destroy(s);
}

/* ---- incr / decr ---- */

static void expect_delta(struct mc_store *s, const char *key, bool incr, uint64_t d,
                         enum mc_result want, uint64_t want_v)
{
    uint64_t v = 12345;
    enum mc_result r = mc_store_delta(s, key, strlen(key), incr, d, &v);
    cr_assert_eq(r, want, "%s %s %llu: result %d", incr ? "incr" : "decr", key,
                 (unsigned long long)d, r);
    if (want == MC_DELTA_OK)
        cr_assert_eq(v, want_v, "got %llu", (unsigned long long)v);
}

Test(mc_store, incr_decr_edges)
{
    struct fixture f;
    struct mc_store *s = make_store(&f, 0, 0);
    expect_delta(s, "none", true, 1, MC_NOT_FOUND, 0);
    set_kv(s, "max", "18446744073709551615", 0);
    expect_delta(s, "max", true, 1, MC_DELTA_OK, 0); /* wraps at 2^64 */
    cr_assert(has_value(s, "max", "0                   ")); /* in place, space padded */
    set_kv(s, "max", "18446744073709551615", 0);
    expect_delta(s, "max", true, 2, MC_DELTA_OK, 1);
    set_kv(s, "n", "5", 0);
    expect_delta(s, "n", false, 6, MC_DELTA_OK, 0); /* decr stops at 0 */
    expect_delta(s, "n", false, 1, MC_DELTA_OK, 0);
    set_kv(s, "g", "99", 0);
    expect_delta(s, "g", true, 1, MC_DELTA_OK, 100); /* the value grows */
    cr_assert(has_value(s, "g", "100"));
    expect_delta(s, "g", false, 1, MC_DELTA_OK, 99);
    cr_assert(has_value(s, "g", "99 ")); /* memcached's in-place shrink */
    expect_delta(s, "g", true, 18446744073709551615ull, MC_DELTA_OK, 98);
    const char *bad[] = {"abc", "12abc", "", "-1", "18446744073709551616", " ", "1.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        set_kv(s, "bad", bad[i], 0);
        expect_delta(s, "bad", true, 1, MC_NON_NUMERIC, 0);
        expect_delta(s, "bad", false, 1, MC_NON_NUMERIC, 0);
    }
    /* What memcached's strtoull accepts: white space around, a plus sign, "-0". */
    const char *ok[] = {" 7", "7 ", "+7", "7\r\n", "7 junk"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        set_kv(s, "ok", ok[i], 0);
        expect_delta(s, "ok", true, 1, MC_DELTA_OK, 8);
    }
    set_kv(s, "ok", "-0", 0);
    expect_delta(s, "ok", true, 1, MC_DELTA_OK, 1);
    struct mc_store_stats st = stats(s);
    cr_assert_eq(st.incr_misses, 1);
    cr_assert_gt(st.incr_hits, 5);
    cr_assert_eq(st.decr_hits, 3);
    mc_store_destroy(s);
}

Test(mc_store, incr_keeps_flags_and_expiry_when_growing)
{
    struct fixture f;
    struct mc_store *s = make_store(&f, 0, 0);
    set_kv(s, "g", "9", 50);
    expect_delta(s, "g", true, 1, MC_DELTA_OK, 10);
    const struct mc_item *it = get(s, "g");
    cr_assert_eq(it->flags, 7);
    cr_assert_eq(it->exptime, T0 + 50);
    cr_assert_eq(stats(s).curr_items, 1);
    mc_store_destroy(s);
}

/* ---- memory: LRU eviction ---- */

Test(mc_store, lru_eviction_order)
{
    struct fixture f;
    size_t one = mc_item_size(2, 100);
    struct mc_store *s = make_store(&f, one * 4, one * 4); /* room for exactly 4 */
    char val[101];
    memset(val, 'v', 100);
    val[100] = '\0';
    set_kv(s, "k0", val, 0);
    set_kv(s, "k1", val, 0);
    set_kv(s, "k2", val, 0);
    set_kv(s, "k3", val, 0);
    cr_assert_eq(stats(s).bytes, one * 4);
    cr_assert_not_null(get(s, "k0")); /* k0 is now the most recent; k1 the oldest */
    set_kv(s, "k4", val, 0);
    cr_assert_null(get(s, "k1"));
    cr_assert_not_null(get(s, "k0"));
    cr_assert_not_null(get(s, "k2")); /* order now (old->new): k3 k4 k0 k2 */
    set_kv(s, "k5", val, 0);
    set_kv(s, "k6", val, 0);
    cr_assert_null(get(s, "k3"));
    cr_assert_null(get(s, "k4"));
    cr_assert_not_null(get(s, "k0"));
    struct mc_store_stats st = stats(s);
    cr_assert_eq(st.evictions, 3);
    cr_assert_eq(st.evicted_unfetched, 3); /* k1, k3, k4 were never read */
    cr_assert_eq(st.curr_items, 4);
    cr_assert_leq(st.bytes, st.limit_maxbytes);
    mc_store_destroy(s);
}

/* A get marks the item instead of moving it: eviction passes over it once (second chance). */
Test(mc_store, a_used_item_at_the_tail_gets_a_second_chance)
{
    struct fixture f;
    size_t one = mc_item_size(2, 10);
    struct mc_store *s = make_store(&f, one * 3, one * 3);
    set_kv(s, "k0", "0123456789", 0);
    set_kv(s, "k1", "0123456789", 0);
    set_kv(s, "k2", "0123456789", 0);
    cr_assert_not_null(get(s, "k0")); /* k0, the tail, is marked active */
    set_kv(s, "k3", "0123456789", 0); /* k0 moves to the head unmarked; k1 goes */
    cr_assert_null(get(s, "k1"));
    set_kv(s, "k4", "0123456789", 0); /* k2 is the tail now, and unused: it goes */
    cr_assert_null(get(s, "k2"));
    set_kv(s, "k5", "0123456789", 0); /* then k0: its mark was spent on the first pass */
    cr_assert_null(get(s, "k0"));
    cr_assert_not_null(get(s, "k3"));
    cr_assert_not_null(get(s, "k4"));
    cr_assert_not_null(get(s, "k5"));
    cr_assert_eq(stats(s).evictions, 3);
    mc_store_destroy(s);
}

/* When every item was used, an eviction still ends: it rescues a bounded number, then evicts. */
Test(mc_store, eviction_ends_when_every_item_is_active)
{
    struct fixture f;
    enum { N = 200 };
    size_t one = mc_item_size(4, 10);
    struct mc_store *s = make_store(&f, one * N, one * N);
    char key[16];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%03d", i);
        cr_assert_eq(set_kv(s, key, "0123456789", 0), MC_STORED);
    }
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%03d", i);
        cr_assert_not_null(get(s, key));
    }
    cr_assert_eq(set_kv(s, "new1", "0123456789", 0), MC_STORED);
    struct mc_store_stats st = stats(s);
    cr_assert_eq(st.evictions, 1);
    cr_assert_eq(st.curr_items, N);
    cr_assert_not_null(get(s, "new1"));
    int gone = 0;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%03d", i);
        gone += get(s, key) == NULL;
    }
    cr_assert_eq(gone, 1);
    mc_store_destroy(s);
}

/* Item memory: chunks of a class are reused; past the reservation and for big items, malloc. */
Test(mc_store, arena_reuses_chunks_and_falls_back_to_malloc)
{
    struct mc_arena a;
    mc__arena_init(&a, 1000); /* reserves 2 MiB: twice the limit, rounded up to a huge page */
    void *p = mc__chunk_alloc(&a, 100), *q = mc__chunk_alloc(&a, 100);
    cr_assert(p && q && p != q);
    if (a.base) { /* no arena under ASan, or when mmap fails */
        cr_assert(mc__chunk_in_arena(&a, p) && mc__chunk_in_arena(&a, q));
        cr_assert_eq((uintptr_t)p % 16, 0);
        mc__chunk_free(&a, p, 100);
        cr_assert_eq(mc__chunk_alloc(&a, 97), p); /* same class of 16 bytes */
        void *big = mc__chunk_alloc(&a, MC_CHUNK_MAX + 1);
        cr_assert(big && !mc__chunk_in_arena(&a, big));
        mc__chunk_free(&a, big, MC_CHUNK_MAX + 1);
        size_t n = 0;
        void *last;
        while ((last = mc__chunk_alloc(&a, MC_CHUNK_MAX)) && mc__chunk_in_arena(&a, last))
            n++;
        /* All but the 2 x 112 bytes taken above; then the reservation is used up: malloc. */
        cr_assert_eq(n, a.size / MC_CHUNK_MAX - 1);
        cr_assert_not_null(last);
        mc__chunk_free(&a, last, MC_CHUNK_MAX);
    } else {
        mc__chunk_free(&a, p, 100);
    }
    mc__chunk_free(&a, q, 100);
    mc__arena_destroy(&a);
}

/* Sets and deletes of many sizes through the store: every value reads back intact. */
Test(mc_store, items_of_every_size_class_keep_their_values)
{
    struct fixture f;
    struct mc_store *s = make_store(&f, 1 << 20, 8192);
    static char val[6001];
    char key[16];
    for (int round = 0; round < 3; round++) {
        for (int n = 0; n <= 6000; n += 37) {
            memset(val, 'a' + (n + round) % 26, (size_t)n);
            val[n] = '\0';
            snprintf(key, sizeof key, "k%d", n);
            cr_assert_eq(set_kv(s, key, val, 0), MC_STORED);
        }
        for (int n = 0; n <= 6000; n += 37) {
            memset(val, 'a' + (n + round) % 26, (size_t)n);
            val[n] = '\0';
            snprintf(key, sizeof key, "k%d", n);
            cr_assert(has_value(s, key, val), "%s", key);
            if (n % 2)
                cr_assert_eq(mc_store_delete(s, key, strlen(key)), MC_DELETED);
        }
    }
    cr_assert_leq(stats(s).bytes, stats(s).limit_maxbytes);
    mc_store_destroy(s);
}

Test(mc_store, replacing_the_tail_item_evicts_nothing_else)
{
    struct fixture f;
    size_t one = mc_item_size(2, 100);
    struct mc_store *s = make_store(&f, one * 3, one * 3);
    char val[101];
    memset(val, 'v', 100);
    val[100] = '\0';
    set_kv(s, "k0", val, 0);
    set_kv(s, "k1", val, 0);
    set_kv(s, "k2", val, 0);
    set_kv(s, "k0", val, 0); /* k0 is the LRU tail and the one being replaced */
    cr_assert_eq(stats(s).evictions, 0);
    cr_assert_not_null(get(s, "k1"));
    cr_assert_not_null(get(s, "k2"));
    /* Order (old->new) k0 k1 k2. A bigger value for the tail key needs room: the next
     * oldest goes, not the key being replaced. */
    char big[151];
    memset(big, 'b', 150);
    big[150] = '\0';
    cr_assert_eq(set_kv(s, "k0", big, 0), MC_STORED);
    cr_assert(has_value(s, "k0", big));
    cr_assert_null(get(s, "k1"));
    cr_assert_not_null(get(s, "k2"));
    cr_assert_eq(stats(s).evictions, 1);
    mc_store_destroy(s);
}

Test(mc_store, expired_items_are_reclaimed_before_live_ones_count_as_evictions)
{
    struct fixture f;
    size_t one = mc_item_size(2, 10);
    struct mc_store *s = make_store(&f, one * 2, one * 2);
    set_kv(s, "k0", "0123456789", 5);
    set_kv(s, "k1", "0123456789", 0);
    f.now += 5;
    set_kv(s, "k2", "0123456789", 0);
    struct mc_store_stats st = stats(s);
    cr_assert_eq(st.reclaimed, 1);
    cr_assert_eq(st.expired_unfetched, 1);
    cr_assert_eq(st.evictions, 0);
    cr_assert_not_null(get(s, "k1"));
    mc_store_destroy(s);
}

Test(mc_store, too_large_items)
{
    struct fixture f;
    struct mc_store *s = make_store(&f, 1 << 20, 1024);
    size_t max_val = 1024 - mc_item_size(1, 0);
    char *v = malloc(max_val + 2);
    memset(v, 'v', max_val + 1);
    v[max_val + 1] = '\0';
    set_kv(s, "k", "old", 0);
    cr_assert_eq(set_kv(s, "k", v, 0), MC_TOO_LARGE); /* a failed set drops the old value */
    cr_assert_null(get(s, "k"));
    set_kv(s, "k", "old", 0);
    cr_assert_eq(set_x(s, MC_ADD, "j", v, 0, 0, NULL), MC_TOO_LARGE);
    cr_assert_eq(set_x(s, MC_REPLACE, "k", v, 0, 0, NULL), MC_TOO_LARGE);
    cr_assert(has_value(s, "k", "old")); /* other modes leave it */
    v[max_val] = '\0';
    cr_assert_eq(set_kv(s, "k", v, 0), MC_STORED); /* exactly item_max fits */
    cr_assert_eq(set_x(s, MC_APPEND, "k", "x", 0, 0, NULL), MC_NOT_STORED);
    cr_assert_eq(stats(s).store_too_large, 3);
    mc_store_too_large(s, "k", 1, false);
    cr_assert_not_null(get(s, "k"));
    mc_store_too_large(s, "k", 1, true);
    cr_assert_null(get(s, "k"));
    cr_assert_eq(stats(s).store_too_large, 5);
    /* item_max may not exceed the memory limit. */
    struct mc_store_config bad = {.mem_limit = 1000, .item_max = 1001};
    cr_assert_null(mc_store_create(&bad));
    free(v);
    mc_store_destroy(s);
}

/* ---- flush_all ---- */

Test(mc_store, flush_all_now)
{
    struct fixture f;
    struct mc_store *s = make_store(&f, 0, 0);
    set_kv(s, "a", "1", 0);
    set_kv(s, "b", "2", 0);
    mc_store_flush_all(s, 0);
    cr_assert_null(get(s, "a"));
    set_kv(s, "c", "3", 0); /* the same second, after the flush: alive */
    cr_assert_not_null(get(s, "c"));
    cr_assert_eq(set_x(s, MC_ADD, "b", "new", 0, 0, NULL), MC_STORED);
    mc_store_flush_all(s, -5); /* negative: now */
    cr_assert_null(get(s, "c"));
    struct mc_store_stats st = stats(s);
    cr_assert_eq(st.cmd_flush, 2);
    cr_assert_eq(st.get_flushed, 2);
    mc_store_destroy(s);
}

Test(mc_store, flush_all_with_delay)
{
    struct fixture f;
    struct mc_store *s = make_store(&f, 0, 0);
    set_kv(s, "old", "1", 0);
    mc_store_flush_all(s, 10); /* at T0 + 10 */
    f.now = T0 + 5;
    set_kv(s, "mid", "2", 0); /* stored before the flush time: dies with it */
    cr_assert_not_null(get(s, "old"));
    f.now = T0 + 9;
    cr_assert_not_null(get(s, "old"));
    cr_assert_not_null(get(s, "mid"));
    f.now = T0 + 10;
    set_kv(s, "new", "3", 0);
    cr_assert_null(get(s, "old"));
    cr_assert_null(get(s, "mid"));
    cr_assert_not_null(get(s, "new"));
    f.now = T0 + 1000;
    cr_assert_not_null(get(s, "new"));
    /* An absolute flush time in the past flushes now. */
    mc_store_flush_all(s, T0 - 100);
    cr_assert_null(get(s, "new"));
    /* A later flush_all replaces a pending one. */
    set_kv(s, "x", "1", 0);
    mc_store_flush_all(s, 10);
    mc_store_flush_all(s, 100);
    f.now += 50;
    cr_assert_not_null(get(s, "x"));
    f.now += 50;
    cr_assert_null(get(s, "x"));
    mc_store_destroy(s);
}

/* ---- hash table growth and stats ---- */

Test(mc_store, table_grows_incrementally_and_keeps_every_item)
{
    struct fixture f;
    f.now = T0;
    struct mc_store_config cfg = {.mem_limit = 256 << 20, .hash_power = 4, .now = clock_now,
                                  .now_arg = &f.now};
    struct mc_store *s = mc_store_create(&cfg);
    cr_assert_not_null(s);
    int n = 100000 / SCALE;
    char key[32], val[32];
    bool saw_expanding = false;
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "key:%d", i);
        snprintf(val, sizeof val, "%d", i * 7);
        cr_assert_eq(set_kv(s, key, val, 0), MC_STORED);
        saw_expanding |= stats(s).hash_is_expanding != 0;
        if (i % 97 == 0) { /* items moved or not yet moved are all found mid-expansion */
            snprintf(key, sizeof key, "key:%d", i / 2);
            snprintf(val, sizeof val, "%d", (i / 2) * 7);
            cr_assert(has_value(s, key, val));
        }
    }
    cr_assert(saw_expanding);
    for (int i = 0; i < n; i += 2) {
        snprintf(key, sizeof key, "key:%d", i);
        cr_assert_eq(mc_store_delete(s, key, strlen(key)), MC_DELETED);
    }
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "key:%d", i);
        snprintf(val, sizeof val, "%d", i * 7);
        cr_assert_eq(has_value(s, key, val), i % 2 == 1, "%s", key);
    }
    struct mc_store_stats st = stats(s);
    cr_assert_eq(st.curr_items, (uint64_t)n / 2);
    cr_assert_eq(st.total_items, (uint64_t)n);
    cr_assert_geq((uint64_t)2 << st.hash_power_level, (uint64_t)n); /* it grew with the items */
    cr_assert_eq(st.hash_bytes, (uint64_t)8 << st.hash_power_level);
    cr_assert_eq(st.evictions, 0);
    mc_store_destroy(s);
}

Test(mc_store, stats_counters_add_and_reset)
{
    struct fixture f;
    struct mc_store *s = make_store(&f, 0, 0);
    set_kv(s, "a", "1", 0);
    get(s, "a");
    get(s, "b");
    struct mc_store_stats st = stats(s), sum = {0};
    cr_assert_eq(st.cmd_set, 1);
    cr_assert_eq(st.cmd_get, 2);
    cr_assert_eq(st.get_hits, 1);
    cr_assert_eq(st.get_misses, 1);
    cr_assert_eq(st.total_items, 1);
    cr_assert_eq(st.bytes, mc_item_size(1, 1));
    cr_assert_eq(st.limit_maxbytes, MC_MEM_LIMIT_DEFAULT);
    mc_store_stats_add(&sum, &st);
    mc_store_stats_add(&sum, &st);
    cr_assert_eq(sum.cmd_get, 4);
    cr_assert_eq(sum.curr_items, 2);
    cr_assert_eq(sum.hash_power_level, st.hash_power_level);
    mc_store_stats_reset(s);
    st = stats(s);
    cr_assert_eq(st.cmd_get, 0);
    cr_assert_eq(st.curr_items, 1); /* gauges stay */
    mc_store_destroy(s);
}

/* ---- mc_exec: the answers the server sends ---- */

static void expect_out(struct app_outbuf *b, const char *want)
{
    cr_assert_eq(b->len, strlen(want), "got %.*s", (int)b->len, b->data);
    cr_assert_arr_eq(b->data, want, b->len);
    app_outbuf_clear(b);
}

Test(mc_store, exec_key_and_get_key)
{
    struct fixture f;
    struct mc_store *s = make_store(&f, 0, 0);
    struct app_outbuf out;
    app_outbuf_init(&out);
    struct mc_cmd c = {.op = MC_OP_SET, .key = {"k", 1}, .data = {"12", 2}, .flags = 3};
    cr_assert_eq(mc_exec_key(s, &c, &out), 0);
    expect_out(&out, "STORED\r\n");
    c = (struct mc_cmd){.op = MC_OP_INCR, .key = {"k", 1}, .delta = 30};
    cr_assert_eq(mc_exec_key(s, &c, &out), 0);
    expect_out(&out, "42\r\n");
    c.noreply = true;
    cr_assert_eq(mc_exec_key(s, &c, &out), 0);
    expect_out(&out, "");
    c = (struct mc_cmd){.op = MC_OP_GETS};
    cr_assert_eq(mc_exec_get_key(s, &c, (struct mc_slice){"k", 1}, &out), 0);
    char want[64];
    snprintf(want, sizeof want, "VALUE k 3 2 %llu\r\n72\r\n",
             (unsigned long long)get(s, "k")->cas);
    expect_out(&out, want);
    cr_assert_eq(mc_exec_get_key(s, &c, (struct mc_slice){"zz", 2}, &out), 0);
    expect_out(&out, "");
    c = (struct mc_cmd){.op = MC_OP_ERROR, .err = MC_ERR_TOO_LARGE, .failed = MC_OP_SET,
                        .key = {"k", 1}};
    cr_assert_eq(mc_exec_key(s, &c, &out), 0);
    expect_out(&out, "SERVER_ERROR object too large for cache\r\n");
    cr_assert_null(get(s, "k"));
    c = (struct mc_cmd){.op = MC_OP_VERSION};
    cr_assert_eq(mc_exec_key(s, &c, &out), -EINVAL);
    cr_assert_eq(mc_exec_local(&c, &out), 0);
    expect_out(&out, "VERSION " MC_VERSION "\r\n");
    c = (struct mc_cmd){.op = MC_OP_QUIT};
    cr_assert_eq(mc_exec_local(&c, &out), 1);
    app_outbuf_free(&out);
    mc_store_destroy(s);
}

Test(mc_store, reply_formatting)
{
    struct app_outbuf b;
    app_outbuf_init(&b);
    char key[MC_KEY_MAX];
    memset(key, 'k', sizeof key);
    char hdr[MC_VALUE_HDR_MAX];
    size_t n = mc_fmt_value_hdr(hdr, key, sizeof key, UINT32_MAX, 4294967295u, true, UINT64_MAX);
    cr_assert_eq(n, MC_VALUE_HDR_MAX); /* the bound is tight */
    cr_assert_eq(mc_reply_value(&b, "a", 1, 0, "x\r\ny", 4, false, 0), 0);
    expect_out(&b, "VALUE a 0 4\r\nx\r\ny\r\n");
    cr_assert_eq(mc_reply_result(&b, MC_NOT_STORED), 0);
    cr_assert_eq(mc_reply_number(&b, 18446744073709551615ull), 0);
    cr_assert_eq(mc_reply_error(&b, MC_ERR_FORMAT), 0);
    cr_assert_eq(mc_reply_stat(&b, "pid", "%d", 42), 0);
    cr_assert_eq(mc_reply_stat_u64(&b, "evictions", 7), 0);
    cr_assert_eq(mc_reply_end(&b), 0);
    expect_out(&b, "NOT_STORED\r\n18446744073709551615\r\nCLIENT_ERROR bad command line "
                   "format\r\nSTAT pid 42\r\nSTAT evictions 7\r\nEND\r\n");
    struct mc_store_stats st = {.cmd_get = 3, .reclaimed = 9};
    cr_assert_eq(mc_reply_store_stats(&b, &st, MC_STATS_CMDS), 0);
    cr_assert(b.len > 0 && memcmp(b.data, "STAT cmd_get 3\r\nSTAT cmd_set 0\r\n", 32) == 0);
    app_outbuf_clear(&b);
    cr_assert_eq(mc_reply_store_stats(&b, &st, MC_STATS_ITEMS), 0);
    cr_assert(b.len > 18 && memcmp(b.data + b.len - 18, "STAT reclaimed 9\r\n", 18) == 0);
    /* Growing past the first allocation keeps every byte. */
    app_outbuf_clear(&b);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(mc_reply_number(&b, (uint64_t)i), 0);
    cr_assert_eq(memcmp(b.data + b.len - 5, "999\r\n", 5), 0);
    app_outbuf_free(&b);
    /* A reply is whole or absent: one that does not fit a fixed buffer adds nothing. */
    char mem[17];
    app_outbuf_init_fixed(&b, mem, sizeof mem);
    cr_assert_eq(mc_reply_value(&b, "a", 1, 0, "xy", 2, false, 0), 0); /* 17 bytes */
    cr_assert_eq(mc_reply_value(&b, "a", 1, 0, "xy", 2, false, 0), -ENOSPC);
    cr_assert_eq(mc_reply_stat_u64(&b, "a", 1), -ENOSPC);
    cr_assert_eq(b.len, 17);
    cr_assert_arr_eq(mem, "VALUE a 0 2\r\nxy\r\n", 17);
}
