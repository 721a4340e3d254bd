/*
 * sn_partition_many and the multi-lane MD5 behind it: every strategy gives, key for key, what
 * sn_partition gives, for batch sizes around the vector widths (8, 16) and key lengths around
 * MD5's block boundaries and the lane limit (247 bytes; longer keys take the one-key path).
 */
#include <criterion/criterion.h>

#include "partition/partition_internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 1000
#define MAX_LEN  300

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint8_t bytes[MAX_KEYS][MAX_LEN];
static struct sn_partition_key keys[MAX_KEYS];

/* Lengths that matter to MD5 padding and to the lanes, then random ones up to MAX_LEN. */
static size_t pick_len(size_t i, uint64_t *s)
{
    static const size_t edge[] = {0,   1,   15,  16,  55,  56,  63,  64,  100, 119,
                                  120, 128, 183, 184, 246, 247, 248, 256, 299};
    size_t nedge = sizeof(edge) / sizeof(edge[0]);
    return i < nedge ? edge[i] : (size_t)(splitmix(s) % MAX_LEN);
}

static void make_keys(uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < MAX_KEYS; i++) {
        size_t len = pick_len(i, &s);
        for (size_t b = 0; b < len; b++)
            bytes[i][b] = (uint8_t)splitmix(&s);
        keys[i] = (struct sn_partition_key){len ? bytes[i] : NULL, len};
    }
}

static struct sn_partition *make(const char *spec, uint32_t n)
{
    struct sn_partition *p = NULL;
    char err[200];
    int rc = sn_partition_from_string(spec, n, err, sizeof(err), &p);
    cr_assert_eq(rc, 0, "%s: %s", spec, err);
    return p;
}

/* sn_partition_many on keys[first .. first+count) against sn_partition on `single`, a
 * partitioner built the same way (so round-robin cursors stay in step). */
static void check_batch(struct sn_partition *many, struct sn_partition *single, size_t first,
                        size_t count, const char *spec)
{
    uint32_t out[MAX_KEYS + 1];
    out[count] = 0xdeadbeef; /* must not be written */
    sn_partition_many(many, keys + first, count, out);
    for (size_t i = 0; i < count; i++) {
        uint32_t want = sn_partition(single, keys[first + i].data, keys[first + i].len);
        cr_assert_eq(out[i], want, "%s: batch of %zu, key %zu (len %zu): %u, want %u", spec, count,
                     first + i, keys[first + i].len, out[i], want);
    }
    cr_assert_eq(out[count], 0xdeadbeef, "%s: wrote past count", spec);
}

static void check_spec(const char *spec, uint32_t n)
{
    static const size_t sizes[] = {0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 100, MAX_KEYS};
    struct sn_partition *many = make(spec, n), *single = make(spec, n);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        for (size_t first = 0; first + sizes[i] <= MAX_KEYS; first += sizes[i] ? sizes[i] * 7 : 1) {
            check_batch(many, single, first, sizes[i], spec);
            if (!sizes[i])
                break;
        }
    sn_partition_destroy(many);
    sn_partition_destroy(single);
}

Test(partition_many, every_strategy_matches_one_by_one, .timeout = 60)
{
    make_keys(1);
    check_spec("ketama:100", 0);
    check_spec("ketama:3", 0);
    check_spec("ketama:1", 0);
    check_spec("ketama:10.0.0.1:11211:3,10.0.0.2:11212:1,[::1]:11213", 0);
    check_spec("ketama-xxh3:100", 0);
    check_spec("hash", 7);
    check_spec("jump", 5);
    check_spec("jump", 1000);
    check_spec("jump", 1u << 21);
    check_spec("rendezvous", 9);
    check_spec("range:str:b,m,t", 0);
    check_spec("rr", 3);
}

static uint32_t last_byte(void *arg, const void *key, size_t len, uint32_t n)
{
    (void)arg;
    return len ? ((const uint8_t *)key)[len - 1] % n : 0;
}

Test(partition_many, custom_callback)
{
    make_keys(2);
    struct sn_partition_config c = {.kind = SN_PARTITION_CUSTOM, .n = 10, .fn = last_byte};
    struct sn_partition *p = NULL;
    cr_assert_eq(sn_partition_create(&c, NULL, 0, &p), 0);
    check_batch(p, p, 0, MAX_KEYS, "custom");
    sn_partition_destroy(p);
}

/* The lanes directly: every length up to the lane limit, in batches of every size up to the
 * width, give sn__md5's first four digest bytes. */
Test(partition_many, md5_lanes_match_md5)
{
    make_keys(3);
    unsigned width = sn__md5_lanes_width();
    cr_assert(width == 1 || width == 8 || width == 16, "width %u", width);
    uint8_t buf[16][MD5_LANES_MAX_KEY];
    struct sn_partition_key k[16];
    uint64_t s = 5;
    for (size_t len = 0; len <= MD5_LANES_MAX_KEY; len++)
        for (unsigned count = 1; count <= width; count++) {
            for (unsigned l = 0; l < count; l++) {
                size_t ll = l == 0 ? len : splitmix(&s) % (MD5_LANES_MAX_KEY + 1);
                for (size_t b = 0; b < ll; b++)
                    buf[l][b] = (uint8_t)splitmix(&s);
                k[l] = (struct sn_partition_key){buf[l], ll};
            }
            uint32_t h[16];
            sn__md5_lanes(k, count, h);
            for (unsigned l = 0; l < count; l++)
                cr_assert_eq(h[l], sn__ketama_md5_key(k[l].data, k[l].len),
                             "lane %u of %u, len %zu", l, count, k[l].len);
        }
}
