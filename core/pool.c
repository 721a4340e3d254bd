/* Per-core fixed-size pools: see core/pool.h. */
#include "core/pool.h"

#include "core/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define SN__POOL_DEFAULT_CHUNK 256

/* Chunk header; the blocks follow it, 64-byte aligned. */
struct sn__pool_chunk {
    struct sn__pool_chunk *next;
    size_t bytes;
    char pad[SN_CACHELINE - sizeof(void *) - sizeof(size_t)];
};
_Static_assert(sizeof(struct sn__pool_chunk) == SN_CACHELINE, "blocks start on a line");

int sn__pool_init(struct sn__pool *p, size_t obj_size, size_t per_chunk,
                  const struct sn_allocator *allocator)
{
    if (!p || obj_size == 0 || obj_size > (1u << 20))
        return -EINVAL;
    if (obj_size < sizeof(void *))
        obj_size = sizeof(void *);
    *p = (struct sn__pool){
        .obj_size = (obj_size + 15) & ~(size_t)15,
        .per_chunk = per_chunk ? per_chunk : SN__POOL_DEFAULT_CHUNK,
        .allocator = allocator,
    };
    return 0;
}

void sn__pool_destroy(struct sn__pool *p)
{
    struct sn__pool_chunk *c = p->chunks;
    while (c) {
        struct sn__pool_chunk *next = c->next;
        SN__UNPOISON(c, c->bytes);
        sn__free(p->allocator, c, c->bytes);
        c = next;
    }
    p->chunks = NULL;
    p->free_list = NULL;
    p->capacity = p->in_use = 0;
}

void *sn__pool_grow_get(struct sn__pool *p)
{
    size_t bytes = sizeof(struct sn__pool_chunk) + p->obj_size * p->per_chunk;
    struct sn__pool_chunk *c = sn__alloc(p->allocator, bytes);
    if (!c) {
        fprintf(stderr, "libsn: out of memory growing a pool by %zu bytes\n", bytes);
        abort();
    }
    c->next = p->chunks;
    c->bytes = bytes;
    p->chunks = c;
    p->capacity += p->per_chunk;
    /* Thread every block but the first onto the free list, in address order. */
    char *base = (char *)(c + 1);
    for (size_t i = p->per_chunk; i-- > 1;)
        sn__pool_put(p, base + i * p->obj_size), p->in_use++;
    p->in_use++;
    return base;
}
