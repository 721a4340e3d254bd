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

int wc_table_items(const struct wc_table *t, size_t limit, struct wc_item **out, size_t *n,
                   struct wc_summary *sum)
{
    *out = NULL;
    *n = 0;
    size_t live = t->used - t->dropped;
    *sum = (struct wc_summary){.total = t->total, .distinct = live};
    if (live == 0)
        return 0;
    struct wc_item *items = malloc(live * sizeof *items);
    if (!items)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i <= t->mask; i++) {
        const struct wc_slot *s = &t->slots[i];
        if (!s->word || s->dropped)
            continue;
        items[k++] = (struct wc_item){.word = s->word, .count = s->count, .len = s->len};
        sum->digest += digest_item(s->hash, s->count);
    }
    qsort(items, k, sizeof *items, wc_item_cmp);
    *out = items;
    *n = k < limit ? k : limit;
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
