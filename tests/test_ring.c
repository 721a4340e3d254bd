/*
 * Tests for the SPSC ring (include/sn/ring.h, core/ring.c).
 *
 * Single thread: every API call against a reference model (exact results, since one thread
 * sees its own stores), FIFO, full/empty, batch partials, stage+flush visibility, claim,
 * peek/consume across the wrap point, bad sizes, the allocator hook, and index wraparound at
 * 2^32 and 2^64 via sn__ring_set_index.
 *
 * Two threads: a producer and a consumer (plain pthreads, not pinned) push 10^7 messages
 * through rings of capacity 1, 2, 64 and 4096 with random batch sizes and a random mix of
 * every producer and consumer call; each message carries its sequence number and a
 * checksum, so the consumer proves every message arrives once, in order, intact. Failures in
 * the threads are recorded and asserted by the test thread (an assertion must not fire off
 * the test's own thread).
 */
#include <criterion/criterion.h>
#include <sn/ring.h>

#include "core/ring_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Messages per two-thread run; -DSTRESS_MSGS=... overrides (e.g. for a quick mutation run).
 * Capacity 1 hands over every message (about one cross-core round trip each): 10^7 took 3.7 s
 * on the idle 2-vCPU VM and up to ~18 s while other jobs loaded both CPUs; capacity 2 takes
 * about half that, 64 and 4096 well under a second (the whole binary: ~6 s idle). Sanitizers
 * get fewer.
 */
#ifndef STRESS_MSGS
#if defined(__SANITIZE_THREAD__)
#define STRESS_MSGS 200000ull
#elif defined(__SANITIZE_ADDRESS__)
#define STRESS_MSGS 1000000ull
#else
#define STRESS_MSGS 10000000ull
#endif
#endif

/* ---------- helpers ---------- */

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: deterministic, good enough to pick operations and sizes. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

static uint32_t rng_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(rng_next(s) % n);
}

/* Fills `size` bytes with a pattern derived from `seq`. */
static void pattern_fill(unsigned char *buf, uint32_t size, uint64_t seq)
{
    for (uint32_t i = 0; i < size; i++)
        buf[i] = (unsigned char)((seq * 131u) ^ (seq >> 8) ^ (i * 7u + 1u));
}

static bool pattern_ok(const unsigned char *buf, uint32_t size, uint64_t seq)
{
    for (uint32_t i = 0; i < size; i++)
        if (buf[i] != (unsigned char)((seq * 131u) ^ (seq >> 8) ^ (i * 7u + 1u)))
            return false;
    return true;
}

static struct sn_ring *make_ring(uint32_t capacity, uint32_t slot_size)
{
    struct sn_ring *r = NULL;
    int rc = sn_ring_create(capacity, slot_size, NULL, &r);
    cr_assert_eq(rc, 0, "create(%u, %u) = %d", capacity, slot_size, rc);
    cr_assert_not_null(r);
    return r;
}

struct msg16 {
    uint64_t a, b;
};

/* ---------- basic behaviour ---------- */

Test(ring, fifo_and_queries)
{
    struct sn_ring *r = make_ring(8, 16);
    cr_assert_eq(sn_ring_capacity(r), 8);
    cr_assert_eq(sn_ring_slot_size(r), 16);
    cr_assert_eq(sn_ring_stride(r), 16);
    cr_assert(sn_ring_empty(r));
    for (uint64_t i = 0; i < 8; i++) {
        struct msg16 m = {i, ~i};
        cr_assert_eq(sn_ring_push(r, &m), 0);
        cr_assert_eq(sn_ring_size(r), i + 1);
    }
    cr_assert_not(sn_ring_empty(r));
    for (uint64_t i = 0; i < 8; i++) {
        struct msg16 m;
        cr_assert_eq(sn_ring_pop(r, &m), 0);
        cr_assert_eq(m.a, i);
        cr_assert_eq(m.b, ~i);
        cr_assert_eq(sn_ring_size(r), 7 - i);
    }
    cr_assert(sn_ring_empty(r));
    sn_ring_destroy(r);
}

Test(ring, stride_rounds_slot_size_up_to_8)
{
    static const uint32_t sizes[][2] = {{1, 8}, {8, 8}, {12, 16}, {20, 24}, {100, 104}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct sn_ring *r = make_ring(4, sizes[i][0]);
        cr_assert_eq(sn_ring_slot_size(r), sizes[i][0]);
        cr_assert_eq(sn_ring_stride(r), sizes[i][1]);
        sn_ring_destroy(r);
    }
}

Test(ring, full_and_empty)
{
    static const uint32_t caps[] = {1, 2, 4};
    for (size_t c = 0; c < 3; c++) {
        uint32_t cap = caps[c];
        struct sn_ring *r = make_ring(cap, 8);
        uint64_t v = 0, out[8];
        cr_assert_eq(sn_ring_pop(r, &v), -EAGAIN);
        cr_assert_eq(sn_ring_pop_n(r, out, 4), -EAGAIN);
        void *first = NULL;
        cr_assert_eq(sn_ring_peek(r, &first), -EAGAIN);
        for (uint32_t i = 0; i < cap; i++) {
            v = i;
            cr_assert_eq(sn_ring_push(r, &v), 0);
        }
        cr_assert_eq(sn_ring_size(r), cap);
        cr_assert_eq(sn_ring_push(r, &v), -EAGAIN);
        cr_assert_eq(sn_ring_stage(r, &v), -EAGAIN);
        cr_assert_null(sn_ring_claim(r));
        cr_assert_eq(sn_ring_push_n(r, out, 3), -EAGAIN);
        cr_assert_eq(sn_ring_push_n(r, out, 0), 0);
        cr_assert_eq(sn_ring_staged(r), 0);
        for (uint32_t i = 0; i < cap; i++) {
            cr_assert_eq(sn_ring_pop(r, &v), 0);
            cr_assert_eq(v, i);
        }
        cr_assert_eq(sn_ring_pop(r, &v), -EAGAIN);
        cr_assert_eq(sn_ring_pop_n(r, out, 0), 0);
        cr_assert(sn_ring_empty(r));
        sn_ring_destroy(r);
    }
}

Test(ring, batch_partials)
{
    struct sn_ring *r = make_ring(8, 8);
    uint64_t in[16], out[16];
    for (uint64_t i = 0; i < 16; i++)
        in[i] = 100 + i;
    cr_assert_eq(sn_ring_push_n(r, in, 5), 5);
    cr_assert_eq(sn_ring_push_n(r, in + 5, 5), 3, "only 3 of 5 fit");
    cr_assert_eq(sn_ring_push_n(r, in + 8, 1), -EAGAIN);
    cr_assert_eq(sn_ring_pop_n(r, out, 2), 2);
    cr_assert_eq(out[0], 100);
    cr_assert_eq(out[1], 101);
    /* Two slots free: a push_n of 4 takes 2, wrapping to slots 0 and 1. */
    cr_assert_eq(sn_ring_push_n(r, in + 8, 4), 2);
    cr_assert_eq(sn_ring_pop_n(r, out, 16), 8, "pop_n returns what there is");
    for (uint64_t i = 0; i < 8; i++)
        cr_assert_eq(out[i], 102 + i);
    cr_assert_eq(sn_ring_pop_n(r, out, 16), -EAGAIN);
    sn_ring_destroy(r);
}

Test(ring, batch_with_unpacked_slots)
{
    /* slot_size 12 has stride 16: push_n/pop_n take packed arrays of 12-byte messages. */
    struct sn_ring *r = make_ring(4, 12);
    unsigned char in[12 * 6], out[12 * 6];
    for (uint32_t i = 0; i < 6; i++)
        pattern_fill(in + 12 * i, 12, i);
    cr_assert_eq(sn_ring_push_n(r, in, 3), 3);
    cr_assert_eq(sn_ring_pop_n(r, out, 2), 2);
    cr_assert_eq(sn_ring_push_n(r, in + 36, 3), 3);
    cr_assert_eq(sn_ring_pop_n(r, out + 24, 4), 4);
    static const uint64_t seqs[] = {0, 1, 2, 3, 4, 5};
    for (uint32_t i = 0; i < 6; i++)
        cr_assert(pattern_ok(out + 12 * i, 12, seqs[i]), "message %u", i);
    sn_ring_destroy(r);
}

Test(ring, stage_flush_visibility)
{
    struct sn_ring *r = make_ring(8, 16);
    struct msg16 m;
    for (uint64_t i = 0; i < 3; i++) {
        m = (struct msg16){i, i * 3};
        cr_assert_eq(sn_ring_stage(r, &m), 0);
    }
    cr_assert_eq(sn_ring_staged(r), 3);
    cr_assert_eq(sn_ring_pop(r, &m), -EAGAIN, "staged messages are invisible");
    cr_assert_eq(sn_ring_size(r), 0);
    cr_assert(sn_ring_empty(r));
    void *first;
    cr_assert_eq(sn_ring_peek(r, &first), -EAGAIN);
    sn_ring_flush(r);
    cr_assert_eq(sn_ring_staged(r), 0);
    cr_assert_eq(sn_ring_size(r), 3);
    /* A push publishes what was staged before it too. */
    m = (struct msg16){3, 9};
    cr_assert_eq(sn_ring_stage(r, &m), 0);
    m = (struct msg16){4, 12};
    cr_assert_eq(sn_ring_push(r, &m), 0);
    cr_assert_eq(sn_ring_size(r), 5);
    for (uint64_t i = 0; i < 5; i++) {
        cr_assert_eq(sn_ring_pop(r, &m), 0);
        cr_assert_eq(m.a, i);
        cr_assert_eq(m.b, i * 3);
    }
    sn_ring_destroy(r);
}

Test(ring, claim_in_place)
{
    struct sn_ring *r = make_ring(4, 16);
    for (uint64_t i = 0; i < 4; i++) {
        struct msg16 *slot = sn_ring_claim(r);
        cr_assert_not_null(slot);
        cr_assert_eq((uintptr_t)slot % 8, 0, "slots are 8-byte aligned");
        slot->a = i;
        slot->b = i + 1000;
    }
    cr_assert_null(sn_ring_claim(r), "full");
    cr_assert_eq(sn_ring_staged(r), 4);
    cr_assert(sn_ring_empty(r));
    sn_ring_flush(r);
    struct msg16 m;
    for (uint64_t i = 0; i < 4; i++) {
        cr_assert_eq(sn_ring_pop(r, &m), 0);
        cr_assert_eq(m.a, i);
        cr_assert_eq(m.b, i + 1000);
    }
    sn_ring_destroy(r);
}

Test(ring, peek_consume_across_wrap)
{
    struct sn_ring *r = make_ring(8, 8);
    uint64_t v, out[8];
    for (v = 0; v < 6; v++)
        cr_assert_eq(sn_ring_push(r, &v), 0);
    cr_assert_eq(sn_ring_pop_n(r, out, 6), 6);
    /* Next read is slot 6: five messages occupy slots 6, 7, 0, 1, 2. */
    for (v = 10; v < 15; v++)
        cr_assert_eq(sn_ring_push(r, &v), 0);
    void *first = NULL;
    cr_assert_eq(sn_ring_peek(r, &first), 2, "run stops at the end of the array");
    cr_assert_eq(((uint64_t *)first)[0], 10);
    cr_assert_eq(((uint64_t *)first)[1], 11);
    sn_ring_consume(r, 1);
    cr_assert_eq(sn_ring_size(r), 4);
    cr_assert_eq(sn_ring_peek(r, &first), 1);
    cr_assert_eq(*(uint64_t *)first, 11);
    sn_ring_consume(r, 1);
    cr_assert_eq(sn_ring_peek(r, &first), 3, "wrapped to slot 0");
    for (uint64_t i = 0; i < 3; i++)
        cr_assert_eq(*(uint64_t *)((char *)first + i * sn_ring_stride(r)), 12 + i);
    sn_ring_consume(r, 3);
    cr_assert_eq(sn_ring_peek(r, &first), -EAGAIN);
    /* Consumed slots are free again. */
    for (v = 0; v < 8; v++)
        cr_assert_eq(sn_ring_push(r, &v), 0);
    cr_assert_eq(sn_ring_push(r, &v), -EAGAIN);
    sn_ring_destroy(r);
}

/* ---------- creation ---------- */

Test(ring, bad_sizes)
{
    struct sn_ring *r = (struct sn_ring *)&r; /* must stay untouched on failure */
    struct sn_ring *const canary = r;
    static const uint32_t bad_caps[] = {
        0, 3, 6, 12, 1000, SN_RING_MAX_CAPACITY + 1, SN_RING_MAX_CAPACITY * 2u, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad_caps / sizeof bad_caps[0]; i++) {
        cr_assert_eq(sn_ring_create(bad_caps[i], 8, NULL, &r), -EINVAL, "capacity %u", bad_caps[i]);
        cr_assert_eq(r, canary);
    }
    static const uint32_t bad_slots[] = {0, SN_RING_MAX_SLOT + 1, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad_slots / sizeof bad_slots[0]; i++) {
        cr_assert_eq(sn_ring_create(8, bad_slots[i], NULL, &r), -EINVAL, "slot %u", bad_slots[i]);
        cr_assert_eq(r, canary);
    }
    cr_assert_eq(sn_ring_create(8, 8, NULL, NULL), -EINVAL);
    /* The largest slot is accepted. */
    r = make_ring(2, SN_RING_MAX_SLOT);
    cr_assert_eq(sn_ring_stride(r), SN_RING_MAX_SLOT);
    sn_ring_destroy(r);
    sn_ring_destroy(NULL);
}

/* A struct sn_allocator that counts calls and can be told to fail. */
struct counting_alloc {
    int allocs, frees, fail;
    size_t last_size, freed_size;
    void *last_ptr, *freed_ptr;
};

static void *count_alloc(void *ctx, size_t size)
{
    struct counting_alloc *c = ctx;
    c->allocs++;
    c->last_size = size;
    if (c->fail)
        return NULL;
    c->last_ptr = aligned_alloc(SN_CACHELINE, size);
    return c->last_ptr;
}

static void count_free(void *ctx, void *ptr, size_t size)
{
    struct counting_alloc *c = ctx;
    c->frees++;
    c->freed_ptr = ptr;
    c->freed_size = size;
    free(ptr);
}

Test(ring, custom_allocator)
{
    struct counting_alloc c = {0};
    struct sn_allocator a = {.alloc = count_alloc, .free = count_free, .ctx = &c};
    struct sn_ring *r = NULL;
    cr_assert_eq(sn_ring_create(64, 24, &a, &r), 0);
    cr_assert_eq(c.allocs, 1);
    cr_assert_eq((void *)r, c.last_ptr, "the ring lives in the allocator's block");
    cr_assert_geq(c.last_size, sizeof(struct sn_ring) + 64 * 24);
    cr_assert_eq(c.last_size % SN_CACHELINE, 0, "whole cache lines");
    uint64_t v[3] = {1, 2, 3}, w[3];
    cr_assert_eq(sn_ring_push(r, v), 0);
    cr_assert_eq(sn_ring_pop(r, w), 0);
    cr_assert_arr_eq(v, w, sizeof v);
    cr_assert_eq(c.frees, 0);
    sn_ring_destroy(r);
    cr_assert_eq(c.allocs, 1, "no allocation after creation");
    cr_assert_eq(c.frees, 1);
    cr_assert_eq(c.freed_ptr, c.last_ptr);
    cr_assert_eq(c.freed_size, c.last_size, "free gets the size alloc got");
}

Test(ring, allocator_failure_and_max_capacity)
{
    struct counting_alloc c = {.fail = 1};
    struct sn_allocator a = {.alloc = count_alloc, .free = count_free, .ctx = &c};
    struct sn_ring *r = NULL;
    cr_assert_eq(sn_ring_create(8, 8, &a, &r), -ENOMEM);
    cr_assert_null(r);
    cr_assert_eq(c.frees, 0);
    /* The largest capacity passes validation (the failing allocator keeps it cheap). */
    cr_assert_eq(sn_ring_create(SN_RING_MAX_CAPACITY, 8, &a, &r), -ENOMEM);
    cr_assert_geq(c.last_size, (size_t)SN_RING_MAX_CAPACITY * 8);
    cr_assert_eq(c.allocs, 2);
    cr_assert_eq(c.frees, 0);
}

/* ---------- every call against a reference model ---------- */

/*
 * The model counts messages: `popped` consumed, `pub` published, `written` staged or
 * published, with popped <= pub <= written <= popped + capacity. Message k carries
 * pattern(k); the ring's indices start at `start`.
 */
struct model {
    struct sn_ring *r;
    uint32_t cap, size;
    uint64_t start, popped, pub, written;
    unsigned char *buf; /* room for 2 * cap + 4 messages */
};

static void model_push_like(struct model *m, uint64_t *rng, int op)
{
    uint32_t free_slots = (uint32_t)(m->popped + m->cap - m->written);
    if (op == 0) { /* push */
        pattern_fill(m->buf, m->size, m->written);
        int rc = sn_ring_push(m->r, m->buf);
        cr_assert_eq(rc, free_slots ? 0 : -EAGAIN);
        if (rc == 0)
            m->pub = ++m->written;
    } else if (op == 1) { /* push_n */
        uint32_t n = rng_below(rng, 2 * m->cap + 3);
        for (uint32_t i = 0; i < n; i++)
            pattern_fill(m->buf + (size_t)i * m->size, m->size, m->written + i);
        int rc = sn_ring_push_n(m->r, m->buf, n);
        uint32_t k = n < free_slots ? n : free_slots;
        cr_assert_eq(rc, n == 0 ? 0 : k ? (int)k : -EAGAIN, "push_n(%u) free %u", n, free_slots);
        if (rc > 0)
            m->pub = m->written += (uint64_t)rc;
    } else if (op == 2) { /* stage */
        pattern_fill(m->buf, m->size, m->written);
        int rc = sn_ring_stage(m->r, m->buf);
        cr_assert_eq(rc, free_slots ? 0 : -EAGAIN);
        m->written += rc == 0;
    } else if (op == 3) { /* claim */
        unsigned char *slot = sn_ring_claim(m->r);
        cr_assert_eq(slot != NULL, free_slots != 0);
        if (slot)
            pattern_fill(slot, m->size, m->written++);
    } else { /* flush */
        sn_ring_flush(m->r);
        m->pub = m->written;
    }
}

static void model_pop_like(struct model *m, uint64_t *rng, int op)
{
    uint32_t avail = (uint32_t)(m->pub - m->popped);
    if (op == 0) { /* pop */
        int rc = sn_ring_pop(m->r, m->buf);
        cr_assert_eq(rc, avail ? 0 : -EAGAIN);
        if (rc == 0)
            cr_assert(pattern_ok(m->buf, m->size, m->popped++));
    } else if (op == 1) { /* pop_n */
        uint32_t n = rng_below(rng, 2 * m->cap + 3);
        int rc = sn_ring_pop_n(m->r, m->buf, n);
        uint32_t k = n < avail ? n : avail;
        cr_assert_eq(rc, n == 0 ? 0 : k ? (int)k : -EAGAIN, "pop_n(%u) avail %u", n, avail);
        for (int i = 0; i < rc; i++)
            cr_assert(pattern_ok(m->buf + (size_t)i * m->size, m->size, m->popped++));
    } else { /* peek + consume part of the run */
        void *first = NULL;
        int rc = sn_ring_peek(m->r, &first);
        if (!avail) {
            cr_assert_eq(rc, -EAGAIN);
            return;
        }
        uint64_t pos = (m->start + m->popped) & (m->cap - 1);
        uint32_t to_end = (uint32_t)(m->cap - pos);
        /* The run may stop early (cached tail) but never past the data or the wrap. */
        cr_assert_geq(rc, 1);
        cr_assert_leq((uint32_t)rc, avail < to_end ? avail : to_end);
        uint32_t take = 1 + rng_below(rng, (uint32_t)rc);
        for (uint32_t i = 0; i < take; i++) {
            const unsigned char *s =
                (const unsigned char *)first + (size_t)i * sn_ring_stride(m->r);
            cr_assert(pattern_ok(s, m->size, m->popped + i), "peeked slot %u", i);
        }
        sn_ring_consume(m->r, take);
        m->popped += take;
    }
}

static void model_run(uint32_t cap, uint32_t size, uint64_t start, uint64_t seed, int steps)
{
    struct model m = {.cap = cap, .size = size, .start = start};
    m.r = make_ring(cap, size);
    m.buf = malloc((size_t)(2 * cap + 4) * size);
    cr_assert_not_null(m.buf);
    sn__ring_set_index(m.r, start);
    uint64_t rng = seed;
    for (int step = 0; step < steps; step++) {
        uint32_t op = rng_below(&rng, 9);
        if (op < 5)
            model_push_like(&m, &rng, (int)op);
        else
            model_pop_like(&m, &rng, (int)op - 5);
        cr_assert_eq(sn_ring_size(m.r), m.pub - m.popped, "step %d", step);
        cr_assert_eq(sn_ring_staged(m.r), m.written - m.pub);
        cr_assert_eq(sn_ring_empty(m.r), m.pub == m.popped);
    }
    cr_assert_gt(m.popped, (uint64_t)cap, "the run went round the ring");
    free(m.buf);
    sn_ring_destroy(m.r);
}

static const uint64_t starts[] = {
    0,
    (1ull << 32) - 37, /* crosses 2^32 */
    0ull - 37,         /* crosses 2^64: indices wrap to 0 */
    0ull - 1,
};

Test(ring, model_every_call)
{
    static const uint32_t caps[] = {1, 2, 4, 8, 64};
    static const uint32_t sizes[] = {1, 8, 12, 16, 24, 32, 64, 100};
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++)
                model_run(caps[c], sizes[s], starts[i], seed++, 3000);
}

Test(ring, wraparound_full_and_empty_at_2_64)
{
    /* Fill across the 2^64 boundary: full and empty must still be told apart exactly. */
    for (uint32_t cap = 1; cap <= 16; cap *= 2) {
        for (uint64_t back = 0; back <= cap; back++) {
            struct sn_ring *r = make_ring(cap, 8);
            sn__ring_set_index(r, 0ull - back);
            uint64_t v;
            for (v = 0; v < cap; v++)
                cr_assert_eq(sn_ring_push(r, &v), 0);
            cr_assert_eq(sn_ring_push(r, &v), -EAGAIN);
            cr_assert_eq(sn_ring_size(r), cap);
            for (uint64_t i = 0; i < cap; i++) {
                cr_assert_eq(sn_ring_pop(r, &v), 0);
                cr_assert_eq(v, i);
            }
            cr_assert_eq(sn_ring_pop(r, &v), -EAGAIN);
            cr_assert(sn_ring_empty(r));
            sn_ring_destroy(r);
        }
    }
}

/* ---------- two threads ---------- */

struct stress {
    struct sn_ring *r;
    uint64_t count, seed;
    /* Written by the consumer, read by the test thread after join. */
    uint64_t received, errors, first_bad_seq, first_bad_got;
};

static uint64_t checksum(uint64_t seq)
{
    uint64_t x = seq * 0x9E3779B97F4A7C15ull;
    return x ^ (x >> 29) ^ 0x5bd1e9955bd1e995ull;
}

/* Waiting for the other side: spin a little, then let the other thread run (the tests run
 * unpinned, possibly more threads than CPUs). */
static void backoff(unsigned *fails)
{
    if (++*fails % 64 == 0)
        sched_yield();
}

static void stress_write(struct msg16 *slot, uint64_t seq)
{
    slot->a = seq;
    slot->b = checksum(seq);
}

/* One producer step: sends between 1 and 64 messages from `next` on with a random call. */
static uint64_t produce_step(struct stress *s, uint64_t *rng, uint64_t next, struct msg16 *buf)
{
    uint32_t want = 1 + rng_below(rng, 64);
    if (want > s->count - next)
        want = (uint32_t)(s->count - next);
    switch (rng_below(rng, 4)) {
    case 0: stress_write(buf, next); return sn_ring_push(s->r, buf) == 0;
    case 1: {
        for (uint32_t i = 0; i < want; i++)
            stress_write(&buf[i], next + i);
        int rc = sn_ring_push_n(s->r, buf, want);
        return rc > 0 ? (uint64_t)rc : 0;
    }
    case 2: {
        uint32_t done = 0;
        for (; done < want; done++) {
            stress_write(buf, next + done);
            if (sn_ring_stage(s->r, buf) != 0)
                break;
        }
        sn_ring_flush(s->r);
        return done;
    }
    default: {
        uint32_t done = 0;
        for (struct msg16 *slot; done < want && (slot = sn_ring_claim(s->r)); done++)
            stress_write(slot, next + done);
        sn_ring_flush(s->r);
        return done;
    }
    }
}

static void *stress_producer(void *arg)
{
    struct stress *s = arg;
    struct msg16 buf[64];
    uint64_t rng = s->seed, next = 0;
    unsigned fails = 0;
    while (next < s->count) {
        uint64_t n = produce_step(s, &rng, next, buf);
        next += n;
        if (!n)
            backoff(&fails);
    }
    return NULL;
}

static void stress_check(struct stress *s, const struct msg16 *m)
{
    uint64_t want = s->received++;
    if (sn_unlikely(m->a != want || m->b != checksum(want)) && s->errors++ == 0) {
        s->first_bad_seq = want;
        s->first_bad_got = m->a;
    }
}

/* One consumer step with a random call; returns how many messages it took. */
static uint64_t consume_step(struct stress *s, uint64_t *rng, struct msg16 *buf)
{
    uint32_t want = 1 + rng_below(rng, 64);
    switch (rng_below(rng, 3)) {
    case 0:
        if (sn_ring_pop(s->r, buf) != 0)
            return 0;
        stress_check(s, buf);
        return 1;
    case 1: {
        int rc = sn_ring_pop_n(s->r, buf, want);
        for (int i = 0; i < rc; i++)
            stress_check(s, &buf[i]);
        return rc > 0 ? (uint64_t)rc : 0;
    }
    default: {
        void *first;
        int rc = sn_ring_peek(s->r, &first);
        if (rc <= 0)
            return 0;
        uint32_t take = (uint32_t)rc < want ? (uint32_t)rc : want;
        for (uint32_t i = 0; i < take; i++)
            stress_check(s, (const struct msg16 *)first + i);
        sn_ring_consume(s->r, take);
        return take;
    }
    }
}

static void *stress_consumer(void *arg)
{
    struct stress *s = arg;
    struct msg16 buf[64];
    uint64_t rng = s->seed ^ 0xdeadbeefcafef00dull;
    unsigned fails = 0;
    while (s->received < s->count)
        if (!consume_step(s, &rng, buf))
            backoff(&fails);
    return NULL;
}

static void stress_run(uint32_t cap, uint64_t count, uint64_t start)
{
    struct stress s = {.count = count, .seed = 0x1234567ull + cap};
    s.r = make_ring(cap, sizeof(struct msg16));
    sn__ring_set_index(s.r, start);
    pthread_t p, c;
    cr_assert_eq(pthread_create(&c, NULL, stress_consumer, &s), 0);
    cr_assert_eq(pthread_create(&p, NULL, stress_producer, &s), 0);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    cr_assert_eq(s.errors, 0, "capacity %u: %llu bad messages, first at seq %llu (got %llu)", cap,
                 (unsigned long long)s.errors, (unsigned long long)s.first_bad_seq,
                 (unsigned long long)s.first_bad_got);
    cr_assert_eq(s.received, count);
    cr_assert(sn_ring_empty(s.r));
    sn_ring_destroy(s.r);
}

/*
 * Each run starts its indices so that they cross 2^32 or 2^64 half way through. Capacities 1
 * and 2 run one after the other in one test: Criterion runs tests in parallel processes, and
 * two hand-over-bound pairs sharing 2 CPUs took ~30 s instead of ~6 s.
 */
Test(ring_stress, capacities_1_and_2, .timeout = 240)
{
    stress_run(1, STRESS_MSGS, (1ull << 32) - STRESS_MSGS / 2);
    stress_run(2, STRESS_MSGS, 0ull - STRESS_MSGS / 2);
}

Test(ring_stress, capacity_64, .timeout = 120)
{
    stress_run(64, STRESS_MSGS, 0ull - STRESS_MSGS / 2);
}

Test(ring_stress, capacity_4096, .timeout = 120)
{
    stress_run(4096, STRESS_MSGS, (1ull << 32) - STRESS_MSGS / 2);
}
