/*
 * Bounded single-producer / single-consumer ring of fixed-size slots.
 *
 * Threads: exactly one producer thread may call the producer functions (push, push_n, stage,
 * claim, flush, staged) and exactly one consumer thread the consumer functions (pop, pop_n,
 * peek, consume), at a time; create/destroy need both sides quiet. The size queries may be
 * called from any thread and are approximate when the other side is running.
 *
 * Layout: the producer's private state, the published tail, the consumer's private state, the
 * published head and the read-only shape each sit on their own 64-byte line. Each side keeps
 * a cached copy of the other side's index and reloads it (acquire) only when the ring looks
 * full or empty, so in steady state a push touches only producer lines and a pop only
 * consumer lines. Indices are free-running 64-bit counters (slot = index & mask), so they
 * never wrap in practice and every difference is taken modulo 2^64 anyway. The published
 * tail and head are plain fields touched only through GCC's __atomic builtins (not C11
 * _Atomic), so this header compiles as C and as C++, and ThreadSanitizer sees every access.
 *
 * Publication: sn_ring_push/push_n/pop/pop_n publish at once. sn_ring_stage and sn_ring_claim
 * write slots without publishing; sn_ring_flush publishes everything staged with one release
 * store, so a producer can write a batch and make it visible once. The consumer's release
 * store of the head, paired with the producer's acquire reload, hands a slot back only after
 * the consumer has finished reading it.
 *
 * Errors: -EINVAL for bad sizes, -ENOMEM, -EAGAIN when full (producer) or empty (consumer).
 * No allocation after creation.
 */
#ifndef SN_RING_H
#define SN_RING_H

#include <sn/common.h>

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

SN_BEGIN_DECLS

#define SN_RING_MAX_CAPACITY (1u << 30)
#define SN_RING_MAX_SLOT     65536u
#define SN_RING_NOTES        7 /* words beside the tail on its line (struct sn_ring note[]) */

/* One side's private state; the producer's and the consumer's copies differ only in index. */
struct sn__ring_side {
    uint64_t index;       /* producer: next slot to write (staged); consumer: next to read */
    uint64_t other_cache; /* last value seen of the other side's published index */
    uint64_t published;   /* this side's own last published index (the tail or head it stored) */
    uint64_t mask;        /* capacity - 1 */
    uint32_t slot_size;   /* bytes copied per message */
    uint32_t stride;      /* bytes between slots (slot_size rounded up to 8) */
    unsigned char *slots;
};

struct sn_ring {
    SN_CACHE_ALIGNED struct sn__ring_side prod;
    SN_CACHE_ALIGNED uint64_t tail; /* published by the producer (__atomic release) */
    /*
     * The rest of the tail's line: words the producer may write (__atomic) for a consumer
     * that reads them after loading the tail, at no extra cache-line transfer. The ring
     * never touches them; the mesh keeps its queue-delay stamps here (core/mesh_delay.c).
     */
    uint64_t note[SN_RING_NOTES];
    SN_CACHE_ALIGNED struct sn__ring_side cons;
    SN_CACHE_ALIGNED uint64_t head; /* published by the consumer (__atomic release) */
    /* Written once at creation: queries from any thread read this line, never a side's. */
    SN_CACHE_ALIGNED uint32_t capacity;
    uint32_t slot_size;
    uint32_t stride;
    const struct sn_allocator *allocator;
    size_t alloc_size;
    /* slots follow, 64-byte aligned */
};

static_assert(sizeof(struct sn__ring_side) <= SN_CACHELINE, "ring side fits a line");
static_assert(offsetof(struct sn_ring, prod) % SN_CACHELINE == 0, "producer line");
static_assert(offsetof(struct sn_ring, tail) % SN_CACHELINE == 0, "tail line");
static_assert(offsetof(struct sn_ring, cons) % SN_CACHELINE == 0, "consumer line");
static_assert(offsetof(struct sn_ring, note) + SN_RING_NOTES * sizeof(uint64_t) <=
                  offsetof(struct sn_ring, tail) + SN_CACHELINE,
              "the notes share the tail's line");
static_assert(offsetof(struct sn_ring, head) % SN_CACHELINE == 0, "head line");
static_assert(offsetof(struct sn_ring, capacity) % SN_CACHELINE == 0, "shape line");
static_assert(offsetof(struct sn_ring, tail) - offsetof(struct sn_ring, prod) >= SN_CACHELINE,
              "producer state and tail on separate lines");
static_assert(offsetof(struct sn_ring, head) - offsetof(struct sn_ring, cons) >= SN_CACHELINE,
              "consumer state and head on separate lines");
static_assert(sizeof(struct sn_ring) % SN_CACHELINE == 0, "slots start on a line");

/*
 * Creates a ring of `capacity` slots (a power of two from 1 to SN_RING_MAX_CAPACITY) of
 * `slot_size` bytes each (1 to SN_RING_MAX_SLOT). Memory comes from `allocator` (NULL: the
 * default), so a caller can place the ring on the consumer's NUMA node; the allocator must
 * return SN_CACHELINE-aligned memory and is called once here and once in sn_ring_destroy.
 * On success stores the ring in *out and returns 0; -EINVAL for bad sizes or a NULL `out`,
 * -ENOMEM when the allocator fails. Any thread.
 */
SN_API int sn_ring_create(uint32_t capacity, uint32_t slot_size,
                          const struct sn_allocator *allocator, struct sn_ring **out);

/*
 * Frees a ring from sn_ring_create (NULL is fine). Messages still inside are dropped. Any
 * thread, once neither side uses the ring any more.
 */
SN_API void sn_ring_destroy(struct sn_ring *r);

/* Capacity in slots, as given at creation. Any thread. */
static inline uint32_t sn_ring_capacity(const struct sn_ring *r)
{
    return r->capacity;
}

/* Slot size in bytes, as given at creation. Any thread. */
static inline uint32_t sn_ring_slot_size(const struct sn_ring *r)
{
    return r->slot_size;
}

/* Bytes between consecutive slots (slot_size rounded up to 8), for sn_ring_peek. Any thread. */
static inline uint32_t sn_ring_stride(const struct sn_ring *r)
{
    return r->stride;
}

/*
 * Copies one message; constant sizes let the compiler inline the common ones. After inlining
 * gcc cannot tell which case runs and would warn about the larger cases when a caller passes a
 * small message object, so those warnings are silenced here (the copy is always slot_size).
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#ifndef __clang__ /* clang has neither warning and would warn about the unknown names */
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#pragma GCC diagnostic ignored "-Wstringop-overread"
#endif
static inline void sn__ring_copy(void *dst, const void *src, uint32_t size)
{
    switch (size) {
    case 8: memcpy(dst, src, 8); break;
    case 16: memcpy(dst, src, 16); break;
    case 32: memcpy(dst, src, 32); break;
    case 64: memcpy(dst, src, 64); break;
    default: memcpy(dst, src, size); break;
    }
}
#pragma GCC diagnostic pop

static inline unsigned char *sn__ring_slot(const struct sn__ring_side *s, uint64_t index)
{
    return s->slots + (size_t)(index & s->mask) * s->stride;
}

/*
 * Batch copies between a packed array of n messages and the slots from `index` on. The
 * fields are read into locals once (a store into a slot may alias anything, which would
 * force a reload per message) and the size switch sits outside the loop, so the common sizes
 * become a tight loop of fixed-size moves with a shift for the slot address (for sizes that
 * are multiples of 8 the stride equals the size).
 */
#define SN__RING_COPY_LOOP(size, dst, src)                                                         \
    for (uint32_t i = 0; i < n; i++) {                                                             \
        unsigned char *slot = slots + (size_t)((index + i) & mask) * (size);                       \
        memcpy((dst), (src), (size));                                                              \
    }

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#ifndef __clang__ /* clang has neither warning and would warn about the unknown names */
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#pragma GCC diagnostic ignored "-Wstringop-overread"
#endif
static inline void sn__ring_put_n(const struct sn__ring_side *s, uint64_t index,
                                  const unsigned char *src, uint32_t n)
{
    unsigned char *const slots = s->slots;
    const uint64_t mask = s->mask;
    const uint32_t size = s->slot_size;
    switch (size) {
    case 8: SN__RING_COPY_LOOP(8, slot, src + (size_t)i * 8) break;
    case 16: SN__RING_COPY_LOOP(16, slot, src + (size_t)i * 16) break;
    case 32: SN__RING_COPY_LOOP(32, slot, src + (size_t)i * 32) break;
    default:
        for (uint32_t i = 0; i < n; i++, src += size)
            sn__ring_copy(sn__ring_slot(s, index + i), src, size);
        break;
    }
}

static inline void sn__ring_get_n(const struct sn__ring_side *s, uint64_t index, unsigned char *dst,
                                  uint32_t n)
{
    unsigned char *const slots = s->slots;
    const uint64_t mask = s->mask;
    const uint32_t size = s->slot_size;
    switch (size) {
    case 8: SN__RING_COPY_LOOP(8, dst + (size_t)i * 8, slot) break;
    case 16: SN__RING_COPY_LOOP(16, dst + (size_t)i * 16, slot) break;
    case 32: SN__RING_COPY_LOOP(32, dst + (size_t)i * 32, slot) break;
    default:
        for (uint32_t i = 0; i < n; i++, dst += size)
            sn__ring_copy(dst, sn__ring_slot(s, index + i), size);
        break;
    }
}
#pragma GCC diagnostic pop
#undef SN__RING_COPY_LOOP

/* At most this many lines are prefetched ahead (8 KiB: well below the L1 size). */
#define SN__RING_PREFETCH_LINES 128u

/*
 * Prefetches the lines of up to `n` published slots from `index` on. A consumer behind a fast
 * producer calls it after taking a batch, so the transfer of the next batch's lines from the
 * producer's cache overlaps with the work on this one instead of costing a full cache-line
 * round trip per batch. Slots not yet published are never touched (the producer may be
 * writing their lines). Consumer only.
 */
static inline void sn__ring_prefetch_run(const struct sn__ring_side *c, uint64_t index, uint64_t n)
{
    uint64_t ready = c->other_cache - index;
    uint32_t step = c->stride >= SN_CACHELINE ? 1 : SN_CACHELINE / c->stride;
    uint64_t limit = (uint64_t)step * SN__RING_PREFETCH_LINES;
    if (n > ready)
        n = ready;
    if (n > limit)
        n = limit;
    for (uint64_t i = 0; i < n; i += step)
        __builtin_prefetch(sn__ring_slot(c, index + i));
}

/* Free slots the producer can fill, reloading the head only when the cache shows too few. */
static inline uint64_t sn__ring_room(struct sn_ring *r, uint64_t want)
{
    struct sn__ring_side *p = &r->prod;
    uint64_t room = p->mask + 1 - (p->index - p->other_cache);
    if (room < want) {
        p->other_cache = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
        room = p->mask + 1 - (p->index - p->other_cache);
    }
    return room;
}

/*
 * Messages the consumer can read, reloading the tail only when the cache shows too few. The
 * prefetch of the next slot goes out together with the tail load: when the tail turns out to
 * have moved, the slot's line is already on its way, so a consumer that was waiting pays about
 * one cache-line transfer instead of two in a row (tail, then slot).
 */
static inline uint64_t sn__ring_avail(struct sn_ring *r, uint64_t want)
{
    struct sn__ring_side *c = &r->cons;
    uint64_t avail = c->other_cache - c->index;
    if (avail < want) {
        c->other_cache = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
        __builtin_prefetch(sn__ring_slot(c, c->index));
        avail = c->other_cache - c->index;
    }
    return avail;
}

/*
 * Reserves the next slot for writing in place and returns it (slot_size bytes, 8-byte
 * aligned), or NULL when full. The slot becomes visible to the consumer at the next
 * sn_ring_flush (or publishing push). Producer only.
 */
static inline void *sn_ring_claim(struct sn_ring *r)
{
    if (sn_unlikely(sn__ring_room(r, 1) == 0))
        return NULL;
    return sn__ring_slot(&r->prod, r->prod.index++);
}

/*
 * Copies `msg` (slot_size bytes) into the ring without publishing. 0 or -EAGAIN when full.
 * Producer only.
 */
static inline int sn_ring_stage(struct sn_ring *r, const void *msg)
{
    void *slot = sn_ring_claim(r);
    if (sn_unlikely(!slot))
        return -EAGAIN;
    sn__ring_copy(slot, msg, r->prod.slot_size);
    return 0;
}

/* Publishes every staged or claimed slot with one release store. Producer only. */
static inline void sn_ring_flush(struct sn_ring *r)
{
    r->prod.published = r->prod.index;
    __atomic_store_n(&r->tail, r->prod.index, __ATOMIC_RELEASE);
}

/* Number of slots written but not yet published. Producer only. */
static inline uint32_t sn_ring_staged(const struct sn_ring *r)
{
    /*
     * The producer's private copy, not the tail: the consumer polls the tail's line, so a load
     * of it may have to fetch the line back, and a sender checks this after every message
     * (measured: ~10% of a cross-core round trip, docs/PERFORMANCE.md).
     */
    return (uint32_t)(r->prod.index - r->prod.published);
}

/*
 * Copies one message in and publishes it (and anything staged before). 0 or -EAGAIN when full
 * (then nothing is published). Producer only.
 */
static inline int sn_ring_push(struct sn_ring *r, const void *msg)
{
    int rc = sn_ring_stage(r, msg);
    if (sn_likely(rc == 0))
        sn_ring_flush(r);
    return rc;
}

/*
 * Copies up to `n` messages from the array `msgs` (n * slot_size bytes, packed) and publishes
 * them, with anything staged before, in one store. Returns how many were pushed (may be fewer
 * than n), 0 when n is 0, or -EAGAIN when none fit (then nothing is published). Producer only.
 */
static inline int sn_ring_push_n(struct sn_ring *r, const void *msgs, uint32_t n)
{
    struct sn__ring_side *p = &r->prod;
    uint64_t room = sn__ring_room(r, n);
    uint32_t k = room < n ? (uint32_t)room : n;

    if (sn_unlikely(k == 0))
        return n == 0 ? 0 : -EAGAIN;
    sn__ring_put_n(p, p->index, (const unsigned char *)msgs, k);
    p->index += k;
    sn_ring_flush(r);
    return (int)k;
}

/* Publishes the consumer's position, freeing slots for the producer. Consumer only. */
static inline void sn__ring_release(struct sn_ring *r)
{
    r->cons.published = r->cons.index;
    __atomic_store_n(&r->head, r->cons.index, __ATOMIC_RELEASE);
}

/*
 * Copies the oldest published message into `out` (slot_size bytes) and frees its slot. 0 or
 * -EAGAIN when empty. Consumer only.
 */
static inline int sn_ring_pop(struct sn_ring *r, void *out)
{
    struct sn__ring_side *c = &r->cons;
    if (sn_unlikely(sn__ring_avail(r, 1) == 0))
        return -EAGAIN;
    sn__ring_copy(out, sn__ring_slot(c, c->index), c->slot_size);
    c->index++;
    sn__ring_release(r);
    return 0;
}

/*
 * Copies up to `n` oldest messages into `out` (room for n * slot_size bytes, packed) and frees
 * their slots with one release store. Returns the count, 0 when n is 0, or -EAGAIN when
 * empty. Consumer only.
 */
static inline int sn_ring_pop_n(struct sn_ring *r, void *out, uint32_t n)
{
    struct sn__ring_side *c = &r->cons;
    uint64_t avail = sn__ring_avail(r, n);
    uint32_t k = avail < n ? (uint32_t)avail : n;

    if (sn_unlikely(k == 0))
        return n == 0 ? 0 : -EAGAIN;
    sn__ring_get_n(c, c->index, (unsigned char *)out, k);
    c->index += k;
    sn__ring_release(r);
    sn__ring_prefetch_run(c, c->index, n);
    return (int)k;
}

/*
 * Zero-copy read: stores a pointer to the oldest unread slot in *first and returns how many
 * published messages follow it contiguously in memory (at least 1; a run stops where the ring
 * wraps), or -EAGAIN when empty. Slot i of the run is at (char *)*first + i * sn_ring_stride(r).
 * The slots stay valid and owned by the consumer until sn_ring_consume. Consumer only.
 */
static inline int sn_ring_peek(struct sn_ring *r, void **first)
{
    struct sn__ring_side *c = &r->cons;
    uint64_t avail = sn__ring_avail(r, 1);
    uint64_t to_end = c->mask + 1 - (c->index & c->mask);

    if (avail == 0)
        return -EAGAIN;
    *first = sn__ring_slot(c, c->index);
    return (int)(avail < to_end ? avail : to_end);
}

/*
 * Frees the `n` oldest slots after a peek, with one release store; n must not exceed what
 * peek returned. Their memory may be overwritten by the producer from then on. Consumer only.
 */
static inline void sn_ring_consume(struct sn_ring *r, uint32_t n)
{
    assert(n <= r->cons.other_cache - r->cons.index);
    r->cons.index += n;
    sn__ring_release(r);
    sn__ring_prefetch_run(&r->cons, r->cons.index, n);
}

/*
 * Published messages not yet consumed (staged ones are not counted). Exact when called by one
 * side while the other is quiet; otherwise a snapshot that may be stale by the time it
 * returns, never more than the capacity. Any thread.
 */
static inline uint32_t sn_ring_size(const struct sn_ring *r)
{
    /* Head first: the tail read after it can only be further ahead, so tail - head >= 0. */
    uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
    uint64_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
    uint64_t n = tail - head;
    /* From a third thread both sides may move between the loads: clamp to the capacity. */
    return n < r->capacity ? (uint32_t)n : r->capacity;
}

/* True when sn_ring_size would be 0, with the same caveats. Any thread. */
static inline bool sn_ring_empty(const struct sn_ring *r)
{
    return sn_ring_size(r) == 0;
}

SN_END_DECLS

#endif
