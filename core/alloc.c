/* Allocation through an optional struct sn_allocator: see core/alloc.h. */
#include "core/alloc.h"

#include <stdlib.h>

void *sn__alloc(const struct sn_allocator *a, size_t size)
{
    if (a)
        return a->alloc(a->ctx, size);
    size_t rounded = (size + SN_CACHELINE - 1) & ~(size_t)(SN_CACHELINE - 1);
    return aligned_alloc(SN_CACHELINE, rounded ? rounded : SN_CACHELINE);
}

void sn__free(const struct sn_allocator *a, void *ptr, size_t size)
{
    if (!ptr)
        return;
    if (a)
        a->free(a->ctx, ptr, size);
    else
        free(ptr);
}
