/*
 * Range partitioning: n-1 strictly increasing split points cut the key space into n ranges;
 * a key's partition is the number of split points <= the key (binary search).
 *
 * Byte strings order like memcmp over the common length, a proper prefix first. u64 split
 * points order numerically; a byte key meets them as their 8-byte big-endian encoding, whose
 * memcmp order is the numeric order, so one key space serves both kinds.
 *
 * The search compares 8-byte big-endian prefixes as integers and picks the next half with
 * conditional moves rather than branches: a binary search's branches are coin flips the CPU
 * mispredicts half the time.
 */
#include "partition/partition_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int cmp_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t m = alen < blen ? alen : blen;
    int c = m ? memcmp(a, b, m) : 0;
    if (c)
        return c;
    return (alen > blen) - (alen < blen);
}

/* The first 8 bytes of a key as a big-endian integer, zero-padded when shorter. */
static inline uint64_t prefix8(const void *key, size_t len)
{
    const uint8_t *k = key;
    uint64_t v = 0;
    if (len >= 8) {
        memcpy(&v, k, 8);
        return __builtin_bswap64(v);
    }
    for (size_t i = 0; i < 8; i++)
        v = v << 8 | (i < len ? k[i] : 0);
    return v;
}

static int init_u64(struct sn__range *r, const uint64_t *s, uint32_t ns, char *err, size_t errlen)
{
    for (uint32_t i = 1; i < ns; i++)
        if (s[i] <= s[i - 1])
            return sn__perr(err, errlen,
                            "range: split points must be strictly increasing, but point %u "
                            "(%" PRIu64 ") <= point %u (%" PRIu64 ")",
                            i, s[i], i - 1, s[i - 1]);
    r->pfx = malloc((ns ? ns : 1) * sizeof(*r->pfx));
    if (!r->pfx)
        return -ENOMEM;
    memcpy(r->pfx, s, ns * sizeof(*s));
    return 0;
}

static int init_keys(struct sn__range *r, const struct sn_partition_key *s, uint32_t ns, char *err,
                     size_t errlen)
{
    size_t total = 0;
    for (uint32_t i = 0; i < ns; i++) {
        if (!s[i].data && s[i].len)
            return sn__perr(err, errlen, "range: split point %u has len %zu but no data", i,
                            s[i].len);
        if (s[i].len > SIZE_MAX - total)
            return sn__perr(err, errlen, "range: split points too large");
        total += s[i].len;
        if (i && cmp_bytes(s[i].data, s[i].len, s[i - 1].data, s[i - 1].len) <= 0)
            return sn__perr(err, errlen,
                            "range: split points must be strictly increasing, but point %u "
                            "<= point %u",
                            i, i - 1);
    }
    r->keys = malloc((ns ? ns : 1) * sizeof(*r->keys));
    r->pfx = malloc((ns ? ns : 1) * sizeof(*r->pfx));
    r->blob = malloc(total ? total : 1);
    if (!r->keys || !r->pfx || !r->blob)
        return -ENOMEM;
    size_t off = 0;
    for (uint32_t i = 0; i < ns; i++) {
        if (s[i].len)
            memcpy(r->blob + off, s[i].data, s[i].len);
        r->keys[i] = (struct sn_partition_key){r->blob + off, s[i].len};
        r->pfx[i] = prefix8(r->blob + off, s[i].len);
        off += s[i].len;
    }
    return 0;
}

int sn__range_init(struct sn_partition *p, const struct sn_partition_config *cfg, char *err,
                   size_t errlen)
{
    struct sn__range *r = &p->u.range;
    uint32_t ns = cfg->n - 1;
    if (cfg->split_u64 && cfg->split_keys)
        return sn__perr(err, errlen, "range: give split_u64 or split_keys, not both");
    if (ns && !cfg->split_u64 && !cfg->split_keys)
        return sn__perr(err, errlen,
                        "range: n=%u needs %u split points (split_u64 or "
                        "split_keys)",
                        cfg->n, ns);
    r->nsplit = ns;
    r->is_u64 = cfg->split_u64 != NULL;
    int rc = r->is_u64 ? init_u64(r, cfg->split_u64, ns, err, errlen)
                       : init_keys(r, cfg->split_keys, ns, err, errlen);
    if (rc < 0) {
        sn__range_free(p);
        if (rc == -ENOMEM)
            sn__perr(err, errlen, "out of memory");
    }
    return rc;
}

void sn__range_free(struct sn_partition *p)
{
    struct sn__range *r = &p->u.range;
    free(r->pfx);
    free(r->keys);
    free(r->blob);
    r->pfx = NULL;
    r->keys = NULL;
    r->blob = NULL;
}

/* Number of split points <= key, for u64 split points and a numeric key. */
static uint32_t upper_u64(const uint64_t *s, uint32_t ns, uint64_t key)
{
    uint32_t lo = 0, n = ns; /* the answer is in [lo, lo + n] */
    while (n) {
        uint32_t half = n / 2, mid = lo + half;
        bool le = s[mid] <= key;
        lo = le ? mid + 1 : lo;
        n = le ? n - half - 1 : half;
    }
    return lo;
}

/* Full comparison of split point i with a byte key, for when their prefixes tie. */
static int cmp_split(const struct sn__range *r, uint32_t i, const void *key, size_t len)
{
    if (r->is_u64) {
        uint8_t be[8];
        sn__be64(be, r->pfx[i]);
        return cmp_bytes(be, sizeof(be), key, len);
    }
    return cmp_bytes(r->keys[i].data, r->keys[i].len, key, len);
}

uint32_t sn__range_lookup(const struct sn_partition *p, const void *key, size_t len)
{
    const struct sn__range *r = &p->u.range;
    uint64_t kp = prefix8(key, len);
    if (r->is_u64 && len == 8)
        return upper_u64(r->pfx, r->nsplit, kp);
    uint32_t lo = 0, n = r->nsplit;
    while (n) {
        uint32_t half = n / 2, mid = lo + half;
        uint64_t sp = r->pfx[mid];
        int c = (sp > kp) - (sp < kp);
        if (sn_unlikely(c == 0))
            c = cmp_split(r, mid, key, len);
        bool le = c <= 0;
        lo = le ? mid + 1 : lo;
        n = le ? n - half - 1 : half;
    }
    return lo;
}

uint32_t sn__range_lookup_u64(const struct sn_partition *p, uint64_t key)
{
    const struct sn__range *r = &p->u.range;
    if (r->is_u64)
        return upper_u64(r->pfx, r->nsplit, key);
    uint8_t be[8];
    sn__be64(be, key);
    return sn__range_lookup(p, be, sizeof(be));
}
