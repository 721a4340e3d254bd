/* Tokenizer, range cuts and the streaming range scanner (see wc_token.h). */
#include "wc_token.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const unsigned char wc_word_byte[256] = {
    ['0' ... '9'] = 1,
    ['A' ... 'Z'] = 1,
    ['a' ... 'z'] = 1,
    [0x80 ... 0xFF] = 1,
};

size_t wc_tokenize(const char *buf, size_t len, wc_word_fn fn, void *arg)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t i = 0, words = 0;
    for (;;) {
        while (i < len && !wc_word_byte[b[i]])
            i++;
        if (i == len)
            return words;
        size_t start = i;
        while (i < len && wc_word_byte[b[i]])
            i++;
        fn(arg, buf + start, i - start);
        words++;
    }
}

bool wc_is_boundary(const char *buf, size_t len, size_t p)
{
    if (p == 0 || p >= len)
        return true;
    return !wc_is_word_byte((unsigned char)buf[p - 1]) || !wc_is_word_byte((unsigned char)buf[p]);
}

size_t wc_boundary_after(const char *buf, size_t len, size_t x)
{
    if (x >= len)
        return len;
    while (!wc_is_boundary(buf, len, x))
        x++;
    return x;
}

uint64_t wc_nominal(uint64_t size, unsigned i, unsigned k)
{
    return (uint64_t)((unsigned __int128)size * i / k);
}

void wc_split(const char *buf, size_t len, unsigned k, size_t *cuts)
{
    cuts[0] = 0;
    for (unsigned i = 1; i < k; i++)
        cuts[i] = wc_boundary_after(buf, len, (size_t)wc_nominal(len, i, k));
    cuts[k] = len;
}

enum { S_PROBE, S_SKIP, S_SEP, S_WORD, S_DONE };

void wc_scan_init(struct wc_scan *s, uint64_t lo, uint64_t hi)
{
    memset(s, 0, sizeof *s);
    s->lo = lo;
    s->hi = hi;
    s->pos = lo ? lo - 1 : 0;
    /* An empty range owns no word; otherwise a range not at 0 first looks at byte lo - 1. */
    s->state = lo >= hi ? S_DONE : lo ? S_PROBE : S_SEP;
}

bool wc_scan_done(const struct wc_scan *s)
{
    return s->state == S_DONE;
}

static int carry_append(struct wc_scan *s, const char *p, size_t n)
{
    if (s->carry_len + n > s->carry_cap) {
        size_t cap = s->carry_cap ? s->carry_cap : 256;
        while (cap < s->carry_len + n)
            cap *= 2;
        char *c = realloc(s->carry, cap);
        if (!c)
            return -ENOMEM;
        s->carry = c;
        s->carry_cap = cap;
    }
    memcpy(s->carry + s->carry_len, p, n);
    s->carry_len += n;
    return 0;
}

/* Continues a word begun in an earlier chunk; returns the index where it ended, or n. */
static size_t continue_word(struct wc_scan *s, const unsigned char *b, size_t i, size_t n,
                            wc_word_fn fn, void *arg, int *err)
{
    size_t j = i;
    while (j < n && wc_word_byte[b[j]])
        j++;
    *err = carry_append(s, (const char *)b + i, j - i);
    if (*err || j == n)
        return n;
    fn(arg, s->carry, s->carry_len);
    s->words++;
    s->carry_len = 0;
    s->state = S_SEP;
    return j;
}

/* Emits the words that start in b[i..n) below hi; leaves a word cut by the chunk end open. */
static int scan_words(struct wc_scan *s, const unsigned char *b, size_t i, size_t n, wc_word_fn fn,
                      void *arg)
{
    for (;;) {
        while (i < n && !wc_word_byte[b[i]])
            i++;
        if (i == n)
            return 0;
        if (s->pos + i >= s->hi) {
            s->state = S_DONE; /* this word and all later ones belong to later ranges */
            return 0;
        }
        size_t start = i;
        while (i < n && wc_word_byte[b[i]])
            i++;
        if (i == n) {
            s->state = S_WORD;
            return carry_append(s, (const char *)b + start, n - start);
        }
        fn(arg, (const char *)b + start, i - start);
        s->words++;
    }
}

int wc_scan_feed(struct wc_scan *s, const char *buf, size_t n, wc_word_fn fn, void *arg)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t i = 0;
    int err = 0;
    if (s->state == S_DONE || n == 0)
        goto out;
    if (s->state == S_PROBE) {
        /* Byte lo - 1: a word byte means lo may be inside a word of the previous range. */
        s->state = wc_word_byte[b[0]] ? S_SKIP : S_SEP;
        i = 1;
    }
    if (s->state == S_SKIP) {
        while (i < n && wc_word_byte[b[i]])
            i++;
        if (i == n) {
            /* A word from before lo that reaches hi: no word can start in the range. */
            if (s->pos + n >= s->hi)
                s->state = S_DONE;
            goto out;
        }
        s->state = S_SEP;
    }
    if (s->state == S_WORD)
        i = continue_word(s, b, i, n, fn, arg, &err);
    if (!err && s->state == S_SEP)
        err = scan_words(s, b, i, n, fn, arg);
out:
    s->pos += n;
    if (err)
        s->state = S_DONE;
    return err;
}

void wc_scan_eof(struct wc_scan *s, wc_word_fn fn, void *arg)
{
    if (s->state == S_WORD) {
        fn(arg, s->carry, s->carry_len);
        s->words++;
        s->carry_len = 0;
    }
    s->state = S_DONE;
}

void wc_scan_free(struct wc_scan *s)
{
    free(s->carry);
    s->carry = NULL;
    s->carry_len = s->carry_cap = 0;
}
