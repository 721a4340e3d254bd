/* Ring creation and destruction; the push/pop paths are inline in include/sn/ring.h. */
#include <sn/ring.h>

#include "core/alloc.h"
#include "core/ring_internal.h"

#include <assert.h>

static bool is_power_of_two(uint32_t x)
{
    return x && (x & (x - 1)) == 0;
}

int sn_ring_create(uint32_t capacity, uint32_t slot_size, const struct sn_allocator *allocator,
                   struct sn_ring **out)
{
    if (!out || !is_power_of_two(capacity) || capacity > SN_RING_MAX_CAPACITY || slot_size == 0 ||
        slot_size > SN_RING_MAX_SLOT)
        return -EINVAL;
    uint32_t stride = (slot_size + 7u) & ~7u;
    /* Whole lines, so no neighbouring allocation shares the last slots' line. */
    size_t size = sizeof(struct sn_ring) + (size_t)capacity * stride;
    size = (size + SN_CACHELINE - 1) & ~(size_t)(SN_CACHELINE - 1);
    struct sn_ring *r = sn__alloc(allocator, size);
    if (!r)
        return -ENOMEM;
    /* The line layout and the 8-byte slot alignment depend on it (allocator contract). */
    assert((uintptr_t)r % SN_CACHELINE == 0);
    memset(r, 0, sizeof *r);
    struct sn__ring_side side = {
        .mask = capacity - 1,
        .slot_size = slot_size,
        .stride = stride,
        .slots = (unsigned char *)(r + 1),
    };
    r->prod = side;
    r->cons = side;
    r->capacity = capacity;
    r->slot_size = slot_size;
    r->stride = stride;
    r->allocator = allocator;
    r->alloc_size = size;
    *out = r;
    return 0;
}

void sn_ring_destroy(struct sn_ring *r)
{
    if (r)
        sn__free(r->allocator, r, r->alloc_size);
}

void sn__ring_set_index(struct sn_ring *r, uint64_t index)
{
    r->prod.index = r->prod.other_cache = r->prod.published = index;
    r->cons.index = r->cons.other_cache = r->cons.published = index;
    __atomic_store_n(&r->tail, index, __ATOMIC_SEQ_CST);
    __atomic_store_n(&r->head, index, __ATOMIC_SEQ_CST);
}
