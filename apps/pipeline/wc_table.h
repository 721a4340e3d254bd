/*
 * A word-count hash table: word bytes -> count. Open addressing with linear probing over
 * 32-byte slots that keep the full 64-bit hash (so most mismatches cost no memcmp); word
 * bytes are copied into an arena of large blocks owned by the table. Not thread-safe: one
 * table per core (or per thread), used only there.
 */
#ifndef WC_TABLE_H
#define WC_TABLE_H

#include <stddef.h>
#include <stdint.h>

/* The 64-bit hash of a word's bytes (deterministic, the same in every process). */
uint64_t wc_hash(const void *p, size_t len);

struct wc_slot {
    uint64_t hash;
    const char *word; /* NULL: empty slot */
    uint32_t len;
    uint32_t dropped; /* 1: the word was dropped (wc_table_drop); the slot stays taken */
    uint64_t count;
};

struct wc_block;

struct wc_table {
    struct wc_slot *slots;
    size_t mask;    /* capacity - 1 (capacity is a power of two) */
    size_t used;    /* taken slots: distinct words, dropped ones included */
    size_t dropped; /* dropped words, still taking slots until the table grows */
    uint64_t total; /* sum of the counts of the words not dropped */
    struct wc_block *blocks;
    char *arena; /* free space in the current block */
    size_t arena_left;
};

/* Longest word a table stores (a longer one gives -E2BIG). */
#define WC_MAX_WORD UINT32_MAX

/* An empty table; 0 or -ENOMEM. */
int wc_table_init(struct wc_table *t);

/*
 * An empty table sized for about `words` distinct words without growing (growth rehashes
 * everything at once: a pause a reactor core should not take in the middle of its work).
 * Capped at 2^20 words. 0 or -ENOMEM.
 */
int wc_table_init_for(struct wc_table *t, size_t words);

/* A guess of the distinct words in `bytes` of text, for wc_table_init_for. */
size_t wc_table_guess(uint64_t bytes);

/* Frees everything the table owns (word pointers into it become invalid). */
void wc_table_free(struct wc_table *t);

/*
 * Adds n to the count of word[0..len) whose hash is `hash` (= wc_hash(word, len)); copies
 * the word when it is new. 0, -ENOMEM, or -E2BIG (len > WC_MAX_WORD).
 */
int wc_table_add(struct wc_table *t, const char *word, size_t len, uint64_t hash, uint64_t n);

/* Starts loading the slot where a word with this hash is looked up first (a hint). */
static inline void wc_table_prefetch(const struct wc_table *t, uint64_t hash)
{
    __builtin_prefetch(&t->slots[hash & t->mask], 1);
}

/* Starts loading the bytes of the word in that slot (a hint; the slot should be cached). */
static inline void wc_table_prefetch_word(const struct wc_table *t, uint64_t hash)
{
    const char *w = t->slots[hash & t->mask].word;
    if (w)
        __builtin_prefetch(w);
}

/*
 * Removes the word in slot s (a taken slot of t) from the counts: its count stops counting
 * in total and in the items, and it no longer fills the table; its slot stays taken (so
 * probing goes on past it) until the table grows, unless the word is added again.
 */
void wc_table_drop(struct wc_table *t, struct wc_slot *s);

/* The count of a word (0 when absent or dropped). */
uint64_t wc_table_get(const struct wc_table *t, const char *word, size_t len);

#endif
