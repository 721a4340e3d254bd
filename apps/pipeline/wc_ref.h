/*
 * The single-threaded reference word count: the whole text in memory, wc_tokenize over it,
 * one hash table, every item sorted. Kept deliberately simple: it is the oracle the
 * distributed pipeline's output is compared with. Any thread, on its own data.
 */
#ifndef WC_REF_H
#define WC_REF_H

#include "wc_result.h"

struct wc_ref {
    struct wc_table table;
    struct wc_summary sum;
    struct wc_item *items; /* every distinct word, in result order (into table) */
    size_t n;
};

/* Counts the words of buf[0..len) into *r. 0, -ENOMEM or -E2BIG; free with wc_ref_free. */
int wc_ref_count(const char *buf, size_t len, struct wc_ref *r);

/*
 * Reads the file at `path` with read(2) and counts it; *bytes receives its size. 0 or a
 * negative errno (open/read errors, -ENOMEM). Free with wc_ref_free (also after failure).
 */
int wc_ref_count_file(const char *path, struct wc_ref *r, uint64_t *bytes);

void wc_ref_free(struct wc_ref *r);

#endif
