/* A core's pool of fiber stacks: see reactor/fiber_stack.h. */
#include "reactor/fiber_stack.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13; older headers lack it */
#endif

/* A slab aims at this many bytes (so small stacks come many to a mapping). */
#define SLAB_BYTES     (8u << 20)
#define SLAB_MAX_SLOTS 256u

enum { GUARD_UNKNOWN, GUARD_MADVISE, GUARD_MPROTECT };
static _Atomic int guard_kind;

struct slab {
    struct slab *next;
    void *base;
    size_t bytes;
};

/* Stacks of one usable size. Free stacks are linked through their top word. */
struct stack_class {
    struct stack_class *next;
    size_t usable;
    size_t slot; /* guard + usable */
    char *free;  /* lo of the first free stack */
    char *bump;  /* next never-used slot of the newest slab */
    size_t bump_left;
};

struct sn__stack_pool {
    struct sn__stack_provider provider;
    struct stack_class *classes;
    struct slab *slabs;
    uint64_t mapped;
    size_t page;
    size_t guard;
};

static char **link_of(char *lo, size_t usable)
{
    return (char **)(void *)(lo + usable - sizeof(char *));
}

/* Makes [lo, lo + len) a guard region; false when the kernel refuses. */
static bool guard(char *lo, size_t len)
{
    int kind = atomic_load_explicit(&guard_kind, memory_order_relaxed);
    if (kind != GUARD_MPROTECT) {
        if (madvise(lo, len, MADV_GUARD_INSTALL) == 0) {
            atomic_store_explicit(&guard_kind, GUARD_MADVISE, memory_order_relaxed);
            return true;
        }
        if (errno != EINVAL || kind == GUARD_MADVISE)
            return false;
        atomic_store_explicit(&guard_kind, GUARD_MPROTECT, memory_order_relaxed);
    }
    return mprotect(lo, len, PROT_NONE) == 0;
}

size_t sn__stack_guard_size(void)
{
    long page = sysconf(_SC_PAGESIZE);
    return page > 16384 ? (size_t)page : 16384;
}

static int slab_new(struct sn__stack_pool *p, struct stack_class *k)
{
    size_t slots = SLAB_BYTES / k->slot;
    if (slots < 1)
        slots = 1;
    if (slots > SLAB_MAX_SLOTS)
        slots = SLAB_MAX_SLOTS;
    struct slab *s = malloc(sizeof *s);
    if (!s)
        return -ENOMEM;
    s->bytes = slots * k->slot;
    s->base = mmap(NULL, s->bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (s->base == MAP_FAILED) {
        free(s);
        return -ENOMEM;
    }
    /* One small page per touched stack page, never a huge page for one fiber. */
    (void)madvise(s->base, s->bytes, MADV_NOHUGEPAGE);
    for (size_t i = 0; i < slots; i++) {
        if (!guard((char *)s->base + i * k->slot, p->guard)) {
            munmap(s->base, s->bytes);
            free(s);
            return -ENOMEM;
        }
    }
    s->next = p->slabs;
    p->slabs = s;
    p->mapped += s->bytes;
    k->bump = s->base;
    k->bump_left = slots;
    return 0;
}

static struct stack_class *class_for(struct sn__stack_pool *p, size_t usable)
{
    for (struct stack_class *k = p->classes; k; k = k->next)
        if (k->usable == usable)
            return k;
    struct stack_class *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->usable = usable;
    k->slot = p->guard + usable;
    k->next = p->classes;
    p->classes = k;
    return k;
}

static int pool_get(void *ctx, size_t size, struct sn__stack *out)
{
    struct sn__stack_pool *p = ctx;
    size_t usable = (size + p->page - 1) & ~(p->page - 1);
    struct stack_class *k = class_for(p, usable);
    if (!k)
        return -ENOMEM;
    if (k->free) {
        out->lo = k->free;
        k->free = *link_of(k->free, usable);
    } else {
        if (!k->bump_left) {
            int rc = slab_new(p, k);
            if (rc < 0)
                return rc;
        }
        out->lo = k->bump + p->guard;
        k->bump += k->slot;
        k->bump_left--;
    }
    out->size = usable;
    return 0;
}

static void pool_put(void *ctx, const struct sn__stack *st)
{
    struct sn__stack_pool *p = ctx;
    struct stack_class *k = class_for(p, st->size); /* exists: the stack came from it */
    *link_of(st->lo, st->size) = k->free;
    k->free = st->lo;
}

int sn__stack_pool_create(struct sn__stack_pool **out)
{
    struct sn__stack_pool *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    long page = sysconf(_SC_PAGESIZE);
    p->page = page > 0 ? (size_t)page : 4096;
    p->guard = sn__stack_guard_size();
    p->provider = (struct sn__stack_provider){.get = pool_get, .put = pool_put, .ctx = p};
    *out = p;
    return 0;
}

void sn__stack_pool_destroy(struct sn__stack_pool *p)
{
    if (!p)
        return;
    struct slab *s;
    while ((s = p->slabs)) {
        p->slabs = s->next;
        munmap(s->base, s->bytes);
        free(s);
    }
    struct stack_class *k;
    while ((k = p->classes)) {
        p->classes = k->next;
        free(k);
    }
    free(p);
}

const struct sn__stack_provider *sn__stack_pool_provider(struct sn__stack_pool *p)
{
    return &p->provider;
}

uint64_t sn__stack_pool_mapped(const struct sn__stack_pool *p)
{
    return p->mapped;
}

const char *sn__stack_guard_kind(void)
{
    switch (atomic_load(&guard_kind)) {
    case GUARD_MADVISE: return "madvise";
    case GUARD_MPROTECT: return "mprotect";
    default: return "none yet";
    }
}
