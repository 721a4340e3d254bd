/* Word-count hash table (see wc_table.h). */
#include "wc_table.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define INITIAL_SLOTS 1024
#define MAX_PRESIZE   (1u << 20)
#define BLOCK_SIZE    (1u << 20)
#define BIG_WORD      (BLOCK_SIZE / 8) /* longer words get a block of their own */
#define HUGE_PAGE     (2u << 20)       /* slot arrays this large get their own mapping */

struct wc_block {
    struct wc_block *next;
    char data[];
};

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    return x;
}

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Tail of 1-7 bytes as one value, without reading past the end. */
static inline uint64_t load_tail(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4);
        return (uint64_t)a << 32 | b;
    }
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* a[0..len) == b[0..len) without a call for the short words that are most of a text. */
static inline bool same_bytes(const char *a, const char *b, size_t len)
{
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    if (len > 16)
        return memcmp(x, y, len) == 0;
    if (len >= 8)
        return load64(x) == load64(y) && load64(x + len - 8) == load64(y + len - 8);
    return load_tail(x, len) == load_tail(y, len);
}

uint64_t wc_hash(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (len * 0xff51afd7ed558ccdull);
    while (len >= 8) {
        h = (h ^ load64(p)) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    if (len)
        h = (h ^ load_tail(p, len)) * 0xc4ceb9fe1a85ec53ull;
    return mix64(h);
}

/*
 * Zeroed slots for `cap` entries. A large array gets a mapping of its own, aligned for
 * transparent huge pages and faulted in for writing at once: probing reads a slot before
 * writing it, so calloc'ed memory first maps the shared zero page and then takes a second,
 * copy-on-write fault whose TLB flush interrupts every other CPU running the process (a
 * costly IPI in a VM); with huge pages a 4 MiB table also takes 2 faults instead of 1024 and
 * the random probes miss the TLB less. Small arrays come from calloc.
 */
static struct wc_slot *slots_alloc(size_t cap)
{
    size_t bytes = cap * sizeof(struct wc_slot);
    if (bytes < HUGE_PAGE)
        return calloc(cap, sizeof(struct wc_slot));
    size_t span = bytes + HUGE_PAGE;
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *a = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    if (a + bytes < p + span)
        munmap(a + bytes, (size_t)(p + span - (a + bytes)));
    /* Both are hints: without THP or MADV_POPULATE_WRITE (Linux 5.14) pages fault lazily. */
    (void)madvise(a, bytes, MADV_HUGEPAGE);
    (void)madvise(a, bytes, MADV_POPULATE_WRITE);
    return (struct wc_slot *)a;
}

static void slots_free(struct wc_slot *slots, size_t cap)
{
    size_t bytes = cap * sizeof(struct wc_slot);
    if (bytes < HUGE_PAGE)
        free(slots);
    else if (slots)
        munmap(slots, bytes);
}

int wc_table_init_for(struct wc_table *t, size_t words)
{
    size_t cap = INITIAL_SLOTS;
    if (words > MAX_PRESIZE)
        words = MAX_PRESIZE;
    while (cap * 5 < words * 8) /* the load limit of wc_table_add */
        cap *= 2;
    memset(t, 0, sizeof *t);
    t->slots = slots_alloc(cap);
    if (!t->slots)
        return -ENOMEM;
    t->mask = cap - 1;
    return 0;
}

int wc_table_init(struct wc_table *t)
{
    return wc_table_init_for(t, 0);
}

size_t wc_table_guess(uint64_t bytes)
{
    /* Natural and Zipf text of a few hundred MB has tens of thousands of distinct words;
     * small texts have about one new word per few hundred bytes. */
    uint64_t w = bytes / 256;
    return w > 65536 ? 65536 : (size_t)w;
}

void wc_table_free(struct wc_table *t)
{
    struct wc_block *b = t->blocks;
    while (b) {
        struct wc_block *next = b->next;
        free(b);
        b = next;
    }
    slots_free(t->slots, t->mask + 1);
    memset(t, 0, sizeof *t);
}

/* Copies a new word into the arena; NULL when out of memory. */
static const char *store_word(struct wc_table *t, const char *word, size_t len)
{
    if (len > t->arena_left) {
        size_t size = len > BIG_WORD ? len : BLOCK_SIZE;
        struct wc_block *b = malloc(sizeof *b + size);
        if (!b)
            return NULL;
        b->next = t->blocks;
        t->blocks = b;
        if (len > BIG_WORD) /* keep the current block's free space for small words */
            return memcpy(b->data, word, len);
        t->arena = b->data;
        t->arena_left = size;
    }
    char *dst = t->arena;
    memcpy(dst, word, len);
    t->arena += len;
    t->arena_left -= len;
    return dst;
}

static int grow(struct wc_table *t)
{
    size_t cap = (t->mask + 1) * 2;
    struct wc_slot *slots = slots_alloc(cap);
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i <= t->mask; i++) {
        const struct wc_slot *s = &t->slots[i];
        if (!s->word || s->dropped)
            continue; /* growth is where dropped words free their slots */
        size_t j = s->hash & (cap - 1);
        while (slots[j].word)
            j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    slots_free(t->slots, t->mask + 1);
    t->slots = slots;
    t->mask = cap - 1;
    t->used -= t->dropped;
    t->dropped = 0;
    return 0;
}

int wc_table_add(struct wc_table *t, const char *word, size_t len, uint64_t hash, uint64_t n)
{
    if (len > WC_MAX_WORD)
        return -E2BIG;
    size_t i = hash & t->mask;
    for (;;) {
        struct wc_slot *s = &t->slots[i];
        if (!s->word)
            break;
        if (s->hash == hash && s->len == len && same_bytes(s->word, word, len)) {
            if (s->dropped) { /* back again: it counts from 0 */
                s->dropped = 0;
                s->count = 0;
                t->dropped--;
            }
            s->count += n;
            t->total += n;
            return 0;
        }
        i = (i + 1) & t->mask;
    }
    /* A zero-length word still needs a non-NULL pointer to mark the slot used. */
    const char *copy = len ? store_word(t, word, len) : "";
    if (!copy)
        return -ENOMEM;
    t->slots[i] = (struct wc_slot){.hash = hash, .word = copy, .len = (uint32_t)len, .count = n};
    t->used++;
    t->total += n;
    /* Keep the load under 5/8 so probe runs stay short. */
    if (t->used * 8 > (t->mask + 1) * 5)
        return grow(t) < 0 ? -ENOMEM : 0;
    return 0;
}

void wc_table_drop(struct wc_table *t, struct wc_slot *s)
{
    if (s->dropped)
        return;
    s->dropped = 1;
    t->total -= s->count;
    t->dropped++;
}

uint64_t wc_table_get(const struct wc_table *t, const char *word, size_t len)
{
    uint64_t hash = wc_hash(word, len);
    for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        const struct wc_slot *s = &t->slots[i];
        if (!s->word)
            return 0;
        if (s->hash == hash && s->len == len && memcmp(s->word, word, len) == 0)
            return s->dropped ? 0 : s->count;
    }
}
