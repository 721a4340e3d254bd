/*
 * Queue-delay sampling (include/sn/mesh.h, sample_every): one message in `sample_every` per
 * ordered pair (ring indices sample_every - 1, 2 * sample_every - 1, ...) is stamped with
 * the time it was published (the flush, or the moment it went into overflow); the receiver
 * records the stamp's age into a per-pair histogram just before it handles the message, so
 * the figure is the message's time in the overflow and the ring (not the part of the loop
 * turn between its send and the flush).
 *
 * A stamp is not a message. It is a note on the line of the ring's tail (include/sn/ring.h,
 * SN_RING_NOTES words): the sampled message's ring index and time in one word. The flush
 * writes the notes of the messages whose turn came, and moves the mark of stamps in the last
 * note, right before its release store of the tail, so the line goes to the receiver once, as
 * it would anyway; a send costs nothing (the first versions counted down per send, ~3 of the
 * ~75 instructions of sn_mesh_send and a register more: docs/PERFORMANCE.md). A message that
 * goes into overflow is stamped at once (with those before it), so its wait there counts.
 * Stamps of a pair are sample_every messages apart, so the receiver knows where the next one
 * can be: a drained batch that ends before that point (and before the next stamp it has
 * copied) runs after one compare; one that reaches it reads the count (on the tail's line,
 * which the drain has just loaded) and copies the stamps when the count moved. The hot path
 * pays a compare per flush and per drained batch. A stamp that was a message of its own (the
 * first version) took a ring slot: bench_submit keeps exactly a ring's worth of calls in
 * flight, and the stamps pushed up to a quarter of one side's messages through the overflow.
 * Consecutive samples of a pair take the SN__MESH_STAMPS (6) notes in turn, so a stamp is
 * overwritten by the one 6 samples later: a receiver more than 6 * sample_every messages
 * behind (384 at the default; a deep backlog) loses the stamps it did not copy in time, and
 * so does one flush of more than 6 stamps. Its copy keeps a stamp it has not reached yet, so
 * a stamp once copied is not lost.
 *
 * Time is in the ticks of core/stamp_clock.h (TSC cycles on x86: one RDTSC per flush that
 * stamps and per sample recorded, where CLOCK_MONOTONIC costs 2-4 times as much on a VM),
 * turned into nanoseconds only when a histogram is read.
 *
 * Histogram: 4 sub-buckets per power of two of ticks (256 buckets), so a percentile is
 * reported as the upper edge of its bucket, at most 25% above the true value; the maximum is
 * exact to the stamp's unit (2^SN__STAMP_SHIFT ticks). Written by the receiving core only
 * (relaxed single-writer stores), read by anyone.
 */
#include "core/mesh_internal.h"

#include "core/stamp_clock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 256

struct sn__mesh_delay {
    _Atomic uint64_t count;
    _Atomic uint64_t max; /* ticks, like the buckets */
    _Atomic uint32_t bucket[BUCKETS];
};
#define HIST_BYTES                                                                                 \
    ((sizeof(struct sn__mesh_delay) + SN_CACHELINE - 1) & ~(size_t)(SN_CACHELINE - 1))

static unsigned bucket_of(uint64_t ns)
{
    if (ns < 4)
        return (unsigned)ns;
    unsigned msb = 63u - (unsigned)__builtin_clzll(ns);
    return msb * 4 + (unsigned)((ns >> (msb - 2)) & 3);
}

/* The largest value that falls in bucket i. */
static uint64_t bucket_top(unsigned i)
{
    if (i < 4)
        return i;
    unsigned msb = i / 4, sub = i % 4;
    uint64_t base = (uint64_t)(4 + sub) << (msb - 2);
    return base + ((uint64_t)1 << (msb - 2)) - 1;
}

static void record(struct sn__mesh_delay *h, uint64_t ticks)
{
    _Atomic uint32_t *b = &h->bucket[bucket_of(ticks)];
    atomic_store_explicit(b, atomic_load_explicit(b, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    sn__mesh_count(&h->count, 1);
    if (ticks > atomic_load_explicit(&h->max, memory_order_relaxed))
        atomic_store_explicit(&h->max, ticks, memory_order_relaxed);
}

/*
 * A note: the low 32 bits of the stamped message's ring index, then its publication time
 * (sn__stamp_time: 2^SN__STAMP_SHIFT ticks of core/stamp_clock.h), in one word so the
 * receiver never sees half of one. 0: empty.
 */
static uint64_t note_make(uint64_t index, uint64_t ticks)
{
    uint64_t note = index << 32 | sn__stamp_time(ticks);
    return note ? note : 1;
}

/* How far past `head` the note's message lies; 2^31 or more: it lies before head (handled). */
static uint32_t note_ahead(uint64_t note, uint64_t head)
{
    return (uint32_t)(note >> 32) - (uint32_t)head;
}

static bool note_pending(uint64_t note, uint64_t head)
{
    return note && note_ahead(note, head) < 0x80000000u;
}

void sn__mesh_stamp_through(const struct sn_mesh *mesh, struct sn__mesh_core *core, unsigned to,
                            uint64_t limit)
{
    struct sn_ring *r = core->out[to];
    uint64_t now = sn__stamp_ticks(), i = core->stamp_next[to];
    for (; i < limit; i += mesh->sample_every) {
        /* Consecutive samples take the notes in turn (their indices are sample_every apart). */
        unsigned k = (unsigned)((uint32_t)i / mesh->sample_every % SN__MESH_STAMPS);
        __atomic_store_n(&r->note[k], note_make(i, now), __ATOMIC_RELAXED);
    }
    core->stamp_next[to] = i;
    /* The mark moves with every stamp written. Stored, never loaded: a load would fetch the
     * line the receiver polls once more before the stores (measured: sn__mesh_stamp_through
     * took 1.1% of bench_submit's samples for 0.15% of its instructions). Release: a
     * receiver that sees the new mark sees the stamps. */
    __atomic_store_n(&r->note[SN__MESH_STAMP_COUNT], i, __ATOMIC_RELEASE);
}

/* The first pending stamp at or after `head` among st's copied notes. */
static void find_next(struct sn__mesh_stamps *st, uint64_t head)
{
    uint32_t best = UINT32_MAX;
    st->next = UINT64_MAX;
    for (int i = 0; i < SN__MESH_STAMPS; i++) {
        uint64_t note = st->note[i];
        if (note_pending(note, head) && note_ahead(note, head) < best) {
            best = note_ahead(note, head);
            st->next = head + best;
            st->next_time = (uint32_t)note;
        }
    }
}

void sn__mesh_stamps_load(struct sn__mesh_stamps *st, struct sn_ring *r)
{
    /* After the tail's acquire load (the drain's peek): every stamp written before that tail
     * was published is seen, which covers every stamped message below it. */
    uint64_t head = r->cons.index, tail = r->cons.other_cache;
    uint64_t written = __atomic_load_n(&r->note[SN__MESH_STAMP_COUNT], __ATOMIC_ACQUIRE);
    if (written != st->written) {
        st->written = written;
        for (int i = 0; i < SN__MESH_STAMPS; i++)
            if (!note_pending(st->note[i], head)) /* a copied stamp still to come stays */
                st->note[i] = __atomic_load_n(&r->note[i], __ATOMIC_RELAXED);
        find_next(st, head);
        for (int i = 0; i < SN__MESH_STAMPS; i++) {
            uint64_t at = head + note_ahead(st->note[i], head);
            if (note_pending(st->note[i], head) && at >= st->expect)
                st->expect = at + st->every;
        }
    }
    st->check_at = tail > st->expect ? tail : st->expect;
}

void sn__mesh_stamp_record(struct sn__mesh_core *core, unsigned from, struct sn__mesh_stamps *st)
{
    uint64_t ticks = sn__stamp_age(sn__stamp_time(sn__stamp_ticks()), st->next_time);
    struct sn__mesh_delay *h = atomic_load_explicit(&core->delay[from], memory_order_relaxed);
    if (sn_unlikely(!h)) {
        /* Whole lines of its own: the receiver writes it, other threads read it. */
        if (posix_memalign((void **)&h, SN_CACHELINE, HIST_BYTES) == 0) {
            memset(h, 0, HIST_BYTES);
            atomic_store_explicit(&core->delay[from], h, memory_order_release);
        } else {
            h = NULL; /* a lost sample, nothing else */
        }
    }
    if (h)
        record(h, ticks);
    find_next(st, st->next + 1);
}

/* No stamp is due or expected before the sample_every-th message; the arrays live in the
 * core's block (core/mesh_setup.c). */
void sn__mesh_delay_init(struct sn_mesh *mesh, unsigned me)
{
    struct sn__mesh_core *core = &mesh->cores[me];
    sn__stamp_clock_start();
    for (unsigned i = 0; i < mesh->ncores; i++) {
        struct sn__mesh_stamps *st = &core->stamps[i];
        core->stamp_next[i] = mesh->sample_every - 1; /* the sample_every-th message */
        st->every = mesh->sample_every;
        st->next = UINT64_MAX;
        /* The first stamp goes on the sample_every-th message, ring index every - 1. */
        st->expect = st->check_at = st->watch = st->every - 1;
    }
}

void sn__mesh_delay_free(struct sn_mesh *mesh, unsigned me)
{
    struct sn__mesh_core *core = &mesh->cores[me];
    for (unsigned from = 0; core->delay && from < mesh->ncores; from++) {
        free(atomic_load_explicit(&core->delay[from], memory_order_relaxed));
        atomic_store_explicit(&core->delay[from], NULL, memory_order_relaxed);
    }
}

int sn_mesh_queue_delay(const struct sn_mesh *mesh, unsigned from, unsigned to,
                        struct sn_mesh_delay *out)
{
    if (!out || from >= mesh->ncores || to >= mesh->ncores || from == to)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    const struct sn__mesh_core *core = &mesh->cores[to];
    if (!core->delay)
        return 0;
    struct sn__mesh_delay *h = atomic_load_explicit(&core->delay[from], memory_order_acquire);
    if (!h)
        return 0;
    uint32_t counts[BUCKETS];
    uint64_t total = 0;
    for (unsigned i = 0; i < BUCKETS; i++)
        total += counts[i] = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
    out->samples = total;
    uint64_t max = atomic_load_explicit(&h->max, memory_order_relaxed), p50 = 0, p99 = 0;
    uint64_t seen = 0, at50 = (total + 1) / 2, at99 = total - total / 100;
    for (unsigned i = 0; i < BUCKETS && total; i++) {
        if (!counts[i])
            continue;
        uint64_t before = seen;
        seen += counts[i];
        uint64_t top = bucket_top(i) < max ? bucket_top(i) : max;
        if (before < at50 && seen >= at50)
            p50 = top;
        if (before < at99 && seen >= at99)
            p99 = top;
    }
    /* Buckets hold ticks (core/stamp_clock.h): nanoseconds only now, at the rate measured
     * over the process's life so far. */
    if (total) {
        struct sn__stamp_rate rate; /* one rate for all three, so their order holds */
        sn__stamp_rate_now(&rate);
        out->max_ns = sn__stamp_ns(&rate, max);
        out->p50_ns = sn__stamp_ns(&rate, p50);
        out->p99_ns = sn__stamp_ns(&rate, p99);
    }
    return 0;
}
