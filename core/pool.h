/*
 * Internal: per-core fixed-size object pools. A pool hands out blocks of one size from a
 * free list and grows by whole chunks, so the hot path (futures, cross-core call records,
 * timers of sleep futures) never calls malloc per message. A pool belongs to one core and is
 * touched only by it: no atomics. Chunks come from an optional struct sn_allocator, so a
 * reactor can place a core's pools on its NUMA node.
 *
 * Under AddressSanitizer a block on the free list is poisoned (except its link word), so a
 * use after sn__pool_put is still reported even though the memory is not returned to malloc.
 */
#ifndef SN_CORE_POOL_H
#define SN_CORE_POOL_H

#include <sn/common.h>

#include <stdbool.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SN__POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define SN__UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SN__POISON(p, n) ((void)(p), (void)(n))
#define SN__UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct sn__pool_chunk;

struct sn__pool {
    void *free_list;       /* singly linked through each block's first word */
    size_t obj_size;       /* bytes per block, a multiple of 16 */
    size_t per_chunk;      /* blocks per chunk */
    struct sn__pool_chunk *chunks;
    const struct sn_allocator *allocator;
    uint64_t in_use;       /* blocks handed out and not yet returned */
    uint64_t capacity;     /* blocks owned (in use + free) */
};

/*
 * Prepares an empty pool of `obj_size`-byte blocks (at least a pointer; rounded up to 16),
 * growing `per_chunk` blocks at a time (0: a default). Allocates nothing yet.
 * 0 or -EINVAL. Owner thread only, as is every pool function.
 */
int sn__pool_init(struct sn__pool *p, size_t obj_size, size_t per_chunk,
                  const struct sn_allocator *allocator);

/* Frees every chunk, whether or not blocks are still in use (they become invalid). */
void sn__pool_destroy(struct sn__pool *p);

/* Adds one chunk and returns a block from it; aborts the process when memory runs out. */
void *sn__pool_grow_get(struct sn__pool *p);

/* Returns an uninitialised block. Never NULL: out of memory aborts, as in Seastar. */
static inline void *sn__pool_get(struct sn__pool *p)
{
    void *obj = p->free_list;
    if (sn_unlikely(!obj))
        return sn__pool_grow_get(p);
    SN__UNPOISON(obj, p->obj_size);
    p->free_list = *(void **)obj;
    p->in_use++;
    return obj;
}

/* Gives a block from sn__pool_get back to the same pool. */
static inline void sn__pool_put(struct sn__pool *p, void *obj)
{
    *(void **)obj = p->free_list;
    p->free_list = obj;
    p->in_use--;
    SN__POISON((char *)obj + sizeof(void *), p->obj_size - sizeof(void *));
}

#endif
