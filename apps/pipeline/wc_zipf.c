/* Deterministic Zipf text generator (see wc_zipf.h). */
#include "wc_zipf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_VOCAB_WORD 48 /* bytes: 13 ASCII letters + one 4-byte character, with room */
#define LONG_MAX_LEN   300000

/* Non-ASCII characters (UTF-8): e-acute, u-umlaut, sharp s, n-tilde, o-slash, a-ring,
 * c-cedilla, lambda, omega, zhe, ya, three CJK ideographs, euro sign, grinning face. */
static const char *const utf8_chars[16] = {
    "\xc3\xa9",     "\xc3\xbc",     "\xc3\x9f",     "\xc3\xb1",         "\xc3\xb8", "\xc3\xa5",
    "\xc3\xa7",     "\xce\xbb",     "\xce\xa9",     "\xd0\xb6",         "\xd1\x8f", "\xe4\xb8\xad",
    "\xe6\x96\x87", "\xe5\xad\x97", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
};

/* Separators and their weights (out of 100). */
static const struct {
    const char *s;
    unsigned weight;
} seps[] = {
    {" ", 78}, {"\n", 8}, {", ", 5}, {". ", 3}, {"\t", 2}, {"  ", 2}, {"; ", 1}, {" - ", 1},
};

/* Very long words: lengths and weights. */
static const uint32_t long_lens[4] = {300, 5000, 70000, LONG_MAX_LEN};
static const unsigned long_weights[4] = {8, 4, 2, 1};

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void wc_zipf_opts_default(struct wc_zipf_opts *o, uint64_t seed)
{
    o->seed = seed;
    o->vocab = WC_ZIPF_DEFAULT_VOCAB;
    o->long_gap = WC_ZIPF_DEFAULT_LONG_GAP;
}

static size_t put_utf8(char *dst, uint64_t r)
{
    const char *c = utf8_chars[r % 16];
    size_t n = strlen(c);
    memcpy(dst, c, n);
    return n;
}

static char ascii_char(uint64_t r)
{
    unsigned p = r % 100, v = (unsigned)(r >> 8);
    if (p < 3)
        return (char)('A' + v % 26);
    if (p < 5)
        return (char)('0' + v % 10);
    return (char)('a' + v % 26);
}

/* Vocabulary word of rank `rank` (0: most frequent) into dst; returns its length. */
static size_t gen_word(uint64_t seed, uint32_t rank, char *dst)
{
    uint64_t r = seed ^ ((uint64_t)rank + 1) * 0xd1b54a32d192ed03ull;
    uint64_t x = splitmix(&r);
    unsigned bits = 64 - (unsigned)__builtin_clzll((uint64_t)rank + 1);
    size_t n = 1 + bits / 2 + x % 4, len = 0;
    if ((x >> 8) % 64 == 0) { /* a word made only of non-ASCII characters */
        for (unsigned i = 0; i < 1 + (x >> 16) % 4; i++)
            len += put_utf8(dst + len, splitmix(&r));
        return len;
    }
    size_t at = (x >> 16) % (n + 1); /* where a non-ASCII character may go */
    bool utf8 = (x >> 24) % 16 == 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == at && utf8)
            len += put_utf8(dst + len, splitmix(&r));
        if (i < n)
            dst[len++] = ascii_char(splitmix(&r));
    }
    return len;
}

static int build_vocab(struct wc_zipf *z)
{
    uint32_t v = z->o.vocab;
    z->cdf = malloc(v * sizeof *z->cdf);
    z->guide = malloc(v * sizeof *z->guide);
    z->pool = malloc((size_t)v * MAX_VOCAB_WORD);
    z->off = malloc(v * sizeof *z->off);
    z->len = malloc(v * sizeof *z->len);
    z->longw = malloc(LONG_MAX_LEN);
    if (!z->cdf || !z->guide || !z->pool || !z->off || !z->len || !z->longw)
        return -ENOMEM;
    size_t at = 0;
    double sum = 0;
    for (uint32_t i = 0; i < v; i++) {
        z->off[i] = (uint32_t)at;
        z->len[i] = (uint32_t)gen_word(z->o.seed, i, z->pool + at);
        at += z->len[i];
        sum += 1.0 / (i + 1.0);
        z->cdf[i] = sum;
    }
    for (uint32_t i = 0; i < v; i++)
        z->cdf[i] /= sum;
    z->cdf[v - 1] = 1.0; /* so every u < 1 finds a rank */
    uint32_t r = 0;
    for (uint32_t b = 0; b < v; b++) {
        while (z->cdf[r] <= (double)b / v)
            r++;
        z->guide[b] = r;
    }
    return 0;
}

static uint64_t next_gap(struct wc_zipf *z)
{
    return 1 + splitmix(&z->rng) % (2ull * z->o.long_gap);
}

int wc_zipf_init(struct wc_zipf *z, const struct wc_zipf_opts *o)
{
    memset(z, 0, sizeof *z);
    if (o->vocab == 0)
        return -EINVAL;
    z->o = *o;
    z->rng = o->seed * 0x2545f4914f6cdd1dull + 0x1234567;
    int rc = build_vocab(z);
    if (rc < 0) {
        wc_zipf_free(z);
        return rc;
    }
    z->until_long = o->long_gap ? next_gap(z) : 0;
    return 0;
}

void wc_zipf_free(struct wc_zipf *z)
{
    free(z->cdf);
    free(z->guide);
    free(z->pool);
    free(z->off);
    free(z->len);
    free(z->longw);
    memset(z, 0, sizeof *z);
}

/* One of the 32 very long words, chosen and spelled from the stream's random state. */
static void long_word(struct wc_zipf *z)
{
    uint64_t x = splitmix(&z->rng);
    unsigned w = x % 15, cls = 0;
    while (w >= long_weights[cls])
        w -= long_weights[cls++];
    uint64_t r = z->o.seed ^ (cls * 8 + (x >> 8) % 8 + 1) * 0xa0761d6478bd642full;
    size_t n = long_lens[cls], len = 0;
    while (len < n) {
        uint64_t c = splitmix(&r);
        if (c % 50 == 0 && len + 4 <= n)
            len += put_utf8(z->longw + len, c >> 8);
        else
            z->longw[len++] = (char)('a' + (c >> 8) % 26);
    }
    z->piece = z->longw;
    z->piece_len = len;
}

static void next_piece(struct wc_zipf *z)
{
    if (z->in_word) { /* a separator follows every word */
        unsigned p = splitmix(&z->rng) % 100, i = 0;
        while (p >= seps[i].weight)
            p -= seps[i++].weight;
        z->piece = seps[i].s;
        z->piece_len = strlen(seps[i].s);
        z->in_word = 0;
        return;
    }
    z->in_word = 1;
    if (z->until_long && --z->until_long == 0) {
        z->until_long = next_gap(z);
        long_word(z);
        return;
    }
    double u = (double)(splitmix(&z->rng) >> 11) * 0x1.0p-53;
    uint32_t r = z->guide[(uint32_t)(u * z->o.vocab)];
    while (z->cdf[r] <= u)
        r++;
    z->piece = z->pool + z->off[r];
    z->piece_len = z->len[r];
}

void wc_zipf_read(struct wc_zipf *z, char *buf, size_t n)
{
    while (n) {
        if (z->piece_len == 0)
            next_piece(z);
        size_t k = n < z->piece_len ? n : z->piece_len;
        memcpy(buf, z->piece, k);
        buf += k;
        n -= k;
        z->piece += k;
        z->piece_len -= k;
    }
}

int wc_zipf_write_fd(const struct wc_zipf_opts *o, uint64_t size, int fd)
{
    struct wc_zipf z;
    int rc = wc_zipf_init(&z, o);
    if (rc < 0)
        return rc;
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    if (!buf) {
        wc_zipf_free(&z);
        return -ENOMEM;
    }
    while (size && rc == 0) {
        size_t n = size < cap ? (size_t)size : cap;
        wc_zipf_read(&z, buf, n);
        for (size_t done = 0; done < n;) {
            ssize_t w = write(fd, buf + done, n - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = w < 0 ? -errno : -EIO;
                break;
            }
            done += (size_t)w;
        }
        size -= n;
    }
    free(buf);
    wc_zipf_free(&z);
    return rc;
}

int wc_zipf_write_file(const struct wc_zipf_opts *o, uint64_t size, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = wc_zipf_write_fd(o, size, fd);
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    return rc;
}
