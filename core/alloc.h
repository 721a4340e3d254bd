/*
 * Internal: allocation through an optional struct sn_allocator (see include/sn/common.h).
 * A NULL allocator means cache-line-aligned aligned_alloc/free.
 */
#ifndef SN_CORE_ALLOC_H
#define SN_CORE_ALLOC_H

#include <sn/common.h>

/* Returns `size` bytes aligned to SN_CACHELINE, or NULL. */
void *sn__alloc(const struct sn_allocator *a, size_t size);

/* Frees a block from sn__alloc with the same allocator and size (NULL is fine). */
void sn__free(const struct sn_allocator *a, void *ptr, size_t size);

#endif
