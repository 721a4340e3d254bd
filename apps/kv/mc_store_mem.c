/*
 * Item memory of one store (see mc_store_int.h, struct mc_arena): chunks in size classes of
 * 16 bytes carved from one reservation in transparent huge pages, recycled through a free list
 * per class.
 *
 * Why: a lookup reads one item at a random place in a store of many megabytes. From malloc
 * those items are spread over thousands of 4 KiB pages, so most lookups also miss the TLB, and
 * in a VM a page walk is two-dimensional (guest and host tables). In 2 MiB pages the items of
 * a 128 MiB store need 64 TLB entries.
 *
 * Bounds: the reservation is twice the store's memory limit (address space only; pages are
 * touched as the bump pointer reaches them). A chunk freed in one class is only reused in that
 * class, so a store whose item sizes shift can run the bump pointer to the end; chunks are then
 * malloc'ed, and so are items larger than MC_CHUNK_MAX, so an item's memory is always found
 * again from its address and size. Under AddressSanitizer every item comes from malloc, so
 * item overflows and uses after free stay visible.
 */
#include "mc_store_int.h"

#include <stdlib.h>
#include <sys/mman.h>

#define CHUNK_ALIGN ((size_t)16)

#if defined(__SANITIZE_ADDRESS__)
#define MC_ARENA_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MC_ARENA_OFF 1
#endif
#endif
#ifndef MC_ARENA_OFF
#define MC_ARENA_OFF 0
#endif

_Static_assert(MC_CHUNK_MAX % CHUNK_ALIGN == 0, "classes are whole multiples of 16 bytes");

void mc__arena_init(struct mc_arena *a, size_t mem_limit)
{
    *a = (struct mc_arena){0};
    if (MC_ARENA_OFF)
        return;
    size_t size = (2 * mem_limit + MC_HUGE_PAGE - 1) & ~(MC_HUGE_PAGE - 1);
    size_t span = size + MC_HUGE_PAGE;
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return; /* every item comes from malloc */
    char *base = (char *)(((uintptr_t)p + MC_HUGE_PAGE - 1) & ~(uintptr_t)(MC_HUGE_PAGE - 1));
    if (base > p)
        munmap(p, (size_t)(base - p));
    if (base + size < p + span)
        munmap(base + size, (size_t)(p + span - (base + size)));
    (void)madvise(base, size, MADV_HUGEPAGE); /* a hint: without THP the pages are 4 KiB */
    a->base = base;
    a->size = size;
}

void mc__arena_destroy(struct mc_arena *a)
{
    if (a->base)
        munmap(a->base, a->size);
    *a = (struct mc_arena){0};
}

static size_t chunk_class(size_t size)
{
    return (size + CHUNK_ALIGN - 1) / CHUNK_ALIGN;
}

void *mc__chunk_alloc(struct mc_arena *a, size_t size)
{
    if (size > MC_CHUNK_MAX || !a->base)
        return malloc(size);
    size_t c = chunk_class(size);
    void *p = a->free[c];
    if (p) {
        a->free[c] = *(void **)p;
        return p;
    }
    size_t bytes = c * CHUNK_ALIGN;
    if (a->size - a->used < bytes)
        return malloc(size);
    p = a->base + a->used;
    a->used += bytes;
    return p;
}

bool mc__chunk_in_arena(const struct mc_arena *a, const void *p)
{
    return a->base && (uintptr_t)p - (uintptr_t)a->base < a->size;
}

void mc__chunk_free(struct mc_arena *a, void *p, size_t size)
{
    if (!mc__chunk_in_arena(a, p)) {
        free(p);
        return;
    }
    size_t c = chunk_class(size);
    *(void **)p = a->free[c];
    a->free[c] = p;
}
