/*
 * Words, and how a text is cut into them, for the word-count pipeline.
 *
 * A word is a maximal run of word bytes. Word bytes are the ASCII letters A-Z and a-z, the
 * ASCII digits 0-9, and every byte from 0x80 to 0xFF (so UTF-8 encoded non-ASCII text, and
 * invalid UTF-8 too, stays inside words byte for byte). Every other byte separates words:
 * ASCII whitespace, ASCII punctuation, control characters, NUL and DEL. Words are compared
 * and counted as raw bytes: case-sensitive, no Unicode normalisation ("Word" and "word" are
 * two words).
 *
 * Splitting into ranges: a word belongs to the range that holds its first byte. With K
 * nominal ranges [size*i/K, size*(i+1)/K), range i therefore really covers
 * [cut(i), cut(i+1)) where cut(x) is the first word boundary at or after the nominal start:
 * no word is split, lost or counted twice, even when a word is longer than a whole range
 * (later ranges are then empty).
 *
 * Everything here is pure (no I/O, no threads, no libsn calls) and may be called from any
 * thread on its own data.
 */
#ifndef WC_TOKEN_H
#define WC_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 1 for word bytes, 0 for separators. */
extern const unsigned char wc_word_byte[256];

static inline bool wc_is_word_byte(unsigned char c)
{
    return wc_word_byte[c] != 0;
}

/* Called once per word, in text order; `word` is valid only during the call. */
typedef void (*wc_word_fn)(void *arg, const char *word, size_t len);

/* Calls fn for every word of buf[0..len) in order; returns the number of words. */
size_t wc_tokenize(const char *buf, size_t len, wc_word_fn fn, void *arg);

/* True when offset p of buf[0..len) is a word boundary (0, len, or not inside a word). */
bool wc_is_boundary(const char *buf, size_t len, size_t p);

/* The smallest word boundary p with x <= p <= len (len when x >= len). */
size_t wc_boundary_after(const char *buf, size_t len, size_t x);

/* Nominal start of range i of k over `size` bytes: floor(size * i / k), i <= k. */
uint64_t wc_nominal(uint64_t size, unsigned i, unsigned k);

/*
 * Cuts buf[0..len) into k >= 1 ranges on word boundaries: range i is [cuts[i], cuts[i+1]);
 * cuts must hold k + 1 entries. cuts[0] = 0, cuts[k] = len, cuts never decrease.
 */
void wc_split(const char *buf, size_t len, unsigned k, size_t *cuts);

/*
 * A streaming scanner for one range of a file, fed with the file's bytes chunk by chunk,
 * that emits exactly the words whose first byte lies in the nominal range [lo, hi). It reads
 * one byte before lo (to know whether lo is inside a word that belongs to the previous
 * range) and goes on past hi until the word that crosses hi ends; it stops at hi when a
 * word of the previous range covers the whole range. Words that span chunks are assembled in
 * a carry buffer (malloc'd, grows as needed). The bytes it reads are thus bounded by the
 * range, one byte, and the length of the word that crosses hi.
 */
struct wc_scan {
    uint64_t lo, hi;
    uint64_t pos; /* file offset of the next byte to feed */
    int state;    /* private */
    char *carry;  /* bytes of the current word from earlier chunks */
    size_t carry_len, carry_cap;
    uint64_t words; /* words emitted */
};

void wc_scan_init(struct wc_scan *s, uint64_t lo, uint64_t hi);

/* True once no more word of the range can come (nothing more needs to be fed). */
bool wc_scan_done(const struct wc_scan *s);

/*
 * Feeds n bytes that start at file offset s->pos (the first call starts at s->pos as set by
 * wc_scan_init: lo - 1, or 0). Emits the words completed by these bytes. Bytes after the
 * scan is done are ignored. 0, or -ENOMEM (carry buffer; the scan is then done).
 */
int wc_scan_feed(struct wc_scan *s, const char *buf, size_t n, wc_word_fn fn, void *arg);

/* The end of the file was reached: emits a word still open. The scan is done. */
void wc_scan_eof(struct wc_scan *s, wc_word_fn fn, void *arg);

/* Frees the carry buffer. */
void wc_scan_free(struct wc_scan *s);

#endif
