/*
 * A deterministic generator of Zipf-distributed text, for tests and benchmarks.
 *
 * The text is an endless stream fixed by the options alone: words drawn from a vocabulary
 * with probability proportional to 1/rank (Zipf, exponent 1), each followed by a separator
 * (mostly a space; also newlines, tabs, double spaces, ", ", ". ", "; ", " - "). The
 * vocabulary is made from the seed: short lowercase words for frequent ranks, longer ones
 * further down, some capitals and digits, and some words with non-ASCII UTF-8 characters
 * (Latin-1 accents, Greek, Cyrillic, CJK, a 4-byte emoji). Every `long_gap` words on average
 * a very long word is inserted (300 B, 5 KB, 70 KB or 300 KB, from 32 fixed variants, so they
 * repeat). A text of N bytes is the stream's first N bytes, so a shorter text is a prefix of
 * a longer one with the same options, and the last word may be cut.
 *
 * Pure computation: no global state; one generator per thread.
 */
#ifndef WC_ZIPF_H
#define WC_ZIPF_H

#include <stddef.h>
#include <stdint.h>

struct wc_zipf_opts {
    uint64_t seed;
    uint32_t vocab;    /* vocabulary size, >= 1 */
    uint32_t long_gap; /* mean words between very long words; 0: none */
};

#define WC_ZIPF_DEFAULT_VOCAB    50000
#define WC_ZIPF_DEFAULT_LONG_GAP 100000

/* Default options for `seed`. */
void wc_zipf_opts_default(struct wc_zipf_opts *o, uint64_t seed);

struct wc_zipf {
    struct wc_zipf_opts o;
    uint64_t rng;
    double *cdf;         /* cumulative 1/rank weights, vocab entries */
    uint32_t *guide;     /* guide[b]: first rank whose cdf reaches b / vocab */
    char *pool;          /* the vocabulary's bytes */
    uint32_t *off, *len; /* word i is pool[off[i] .. off[i] + len[i]) */
    uint64_t until_long; /* words left before the next very long word */
    char *longw;         /* the current very long word */
    const char *piece;   /* bytes of the current word or separator not yet emitted */
    size_t piece_len;
    int in_word; /* 1 when `piece` is a word (a separator follows) */
};

/* Builds the vocabulary. 0, -EINVAL (vocab 0), or -ENOMEM. */
int wc_zipf_init(struct wc_zipf *z, const struct wc_zipf_opts *o);

/* Writes the stream's next n bytes into buf. */
void wc_zipf_read(struct wc_zipf *z, char *buf, size_t n);

void wc_zipf_free(struct wc_zipf *z);

/* Writes the first `size` bytes of the stream to fd. 0, or a negative errno. */
int wc_zipf_write_fd(const struct wc_zipf_opts *o, uint64_t size, int fd);

/* Creates (truncates) `path` and writes the first `size` bytes into it. 0 or -errno. */
int wc_zipf_write_file(const struct wc_zipf_opts *o, uint64_t size, const char *path);

#endif
