/* Sorting, merging and printing word-count results (see wc_result.h). */
#include "wc_result.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int wc_item_cmp(const void *pa, const void *pb)
{
    const struct wc_item *a = pa, *b = pb;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->word, b->word, n) : 0;
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

static uint64_t digest_item(uint64_t hash, uint64_t count)
{
    uint64_t x = hash ^ (count * 0x9e3779b97f4a7c15ull);
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 29;
    return x;
}

/* Restores the heap below i: a max-heap in result order (the root comes last of all). */
static void sift_down(struct wc_item *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && wc_item_cmp(&h[l], &h[m]) > 0)
            m = l;
        if (l + 1 < n && wc_item_cmp(&h[l + 1], &h[m]) > 0)
            m = l + 1;
        if (m == i)
            return;
        struct wc_item x = h[i];
        h[i] = h[m];
        h[m] = x;
        i = m;
    }
}

static void sift_up(struct wc_item *h, size_t i)
{
    while (i && wc_item_cmp(&h[i], &h[(i - 1) / 2]) > 0) {
        struct wc_item x = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = x;
        i = (i - 1) / 2;
    }
}

/*
 * Keeps the first `keep` items in result order seen so far in a heap of at most `keep`
 * items whose root is the last of them: an item that comes after the root is skipped after
 * one comparison (most of them: the heap holds the most frequent words).
 */
static void heap_offer(struct wc_item *h, size_t *n, size_t keep, struct wc_item x)
{
    if (*n < keep) {
        h[*n] = x;
        sift_up(h, (*n)++);
    } else if (wc_item_cmp(&x, &h[0]) < 0) {
        h[0] = x;
        sift_down(h, *n, 0);
    }
}

int wc_table_items(const struct wc_table *t, size_t limit, struct wc_item **out, size_t *n,
                   struct wc_summary *sum)
{
    *out = NULL;
    *n = 0;
    size_t live = t->used - t->dropped;
    *sum = (struct wc_summary){.total = t->total, .distinct = live};
    if (live == 0 || limit == 0) {
        for (size_t i = 0; live && i <= t->mask; i++)
            if (t->slots[i].word && !t->slots[i].dropped)
                sum->digest += digest_item(t->slots[i].hash, t->slots[i].count);
        return 0;
    }
    /* The first `limit` of many words: select them with a heap instead of sorting all. */
    size_t keep = limit < live ? limit : live;
    struct wc_item *items = malloc(keep * sizeof *items);
    if (!items)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i <= t->mask; i++) {
        const struct wc_slot *s = &t->slots[i];
        if (!s->word || s->dropped)
            continue;
        struct wc_item x = {.word = s->word, .count = s->count, .len = s->len};
        if (keep == live)
            items[k++] = x;
        else
            heap_offer(items, &k, keep, x);
        sum->digest += digest_item(s->hash, s->count);
    }
    qsort(items, k, sizeof *items, wc_item_cmp);
    *out = items;
    *n = k;
    return 0;
}

int wc_items_merge(struct wc_item *const *lists, const size_t *counts, unsigned k, size_t limit,
                   struct wc_item **out, size_t *n)
{
    size_t total = 0;
    for (unsigned i = 0; i < k; i++)
        total += counts[i];
    *out = NULL;
    *n = 0;
    if (total == 0)
        return 0;
    struct wc_item *all = malloc(total * sizeof *all);
    if (!all)
        return -ENOMEM;
    size_t at = 0;
    for (unsigned i = 0; i < k; i++) {
        if (counts[i])
            memcpy(all + at, lists[i], counts[i] * sizeof *all);
        at += counts[i];
    }
    /* The lists are short (top K) or already sorted runs; qsort is simple and fast enough. */
    qsort(all, total, sizeof *all, wc_item_cmp);
    *out = all;
    *n = total < limit ? total : limit;
    return 0;
}

void wc_summary_add(struct wc_summary *acc, const struct wc_summary *s)
{
    acc->total += s->total;
    acc->distinct += s->distinct;
    acc->digest += s->digest;
}

static void print_items(FILE *f, const struct wc_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%" PRIu64 "\t", items[i].count);
        fwrite(items[i].word, 1, items[i].len, f);
        fputc('\n', f);
    }
}

int wc_print(FILE *f, const struct wc_summary *sum, size_t top, const struct wc_item *items,
             size_t n, bool all)
{
    size_t k = top < n ? top : n;
    fprintf(f, "words %" PRIu64 "\ndistinct %" PRIu64 "\ndigest %016" PRIx64 "\ntop %zu\n",
            sum->total, sum->distinct, sum->digest, k);
    print_items(f, items, k);
    if (all) {
        fprintf(f, "all %zu\n", n);
        print_items(f, items, n);
    }
    return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}
