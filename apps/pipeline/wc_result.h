/*
 * Word-count results in their one deterministic order: count descending, then word bytes
 * ascending (memcmp order, a proper prefix first). The same functions build and print the
 * reference's result and the distributed one, so equal counts give byte-identical output.
 *
 * Output format (every line ends in '\n'; words are printed as their raw bytes, which never
 * include whitespace or control characters, so lines cannot be ambiguous):
 *
 *     words <total occurrences>
 *     distinct <distinct words>
 *     digest <16 hex digits: order-independent checksum of every (word, count) pair>
 *     top <K shown>
 *     <count>\t<word>          (K lines)
 *     all <distinct>           (only with `all`)
 *     <count>\t<word>          (every word, in the same order)
 */
#ifndef WC_RESULT_H
#define WC_RESULT_H

#include "wc_table.h"

#include <stdbool.h>
#include <stdio.h>

struct wc_item {
    const char *word; /* points into the table that produced it */
    uint64_t count;
    uint32_t len;
};

struct wc_summary {
    uint64_t total;    /* occurrences */
    uint64_t distinct; /* words */
    uint64_t digest;   /* sum of a mix of each word's hash and count (order-independent) */
};

/* qsort comparator for struct wc_item in result order. */
int wc_item_cmp(const void *a, const void *b);

/*
 * The summary of table t and its first `limit` items in result order (all of them when
 * limit >= distinct) in a malloc'd array *out (NULL when empty) of *n items; items point
 * into t. 0 or -ENOMEM.
 */
int wc_table_items(const struct wc_table *t, size_t limit, struct wc_item **out, size_t *n,
                   struct wc_summary *sum);

/*
 * Merges k lists of items whose words are distinct across lists (one owner per word) into
 * the first `limit` items in result order, in a malloc'd array *out of *n items (NULL when
 * empty). 0 or -ENOMEM.
 */
int wc_items_merge(struct wc_item *const *lists, const size_t *counts, unsigned k, size_t limit,
                   struct wc_item **out, size_t *n);

/* acc += s, field by field (digest sums wrap). */
void wc_summary_add(struct wc_summary *acc, const struct wc_summary *s);

/*
 * Prints the result in the format above: the first min(top, n) items as the top list, and,
 * when `all`, every item again (items must then hold all the distinct words). 0, or -EIO
 * when writing failed.
 */
int wc_print(FILE *f, const struct wc_summary *sum, size_t top, const struct wc_item *items,
             size_t n, bool all);

#endif
