/*
 * Range partitioner: boundary keys, keys before the first and after the last split point,
 * byte-string order (memcmp, shorter prefix first), u64 and byte keys in one key space, and
 * rejection of unsorted or duplicate split points.
 */
#include <criterion/criterion.h>
#include <sn.h>

#include <errno.h>
#include <string.h>

static void be64(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
}

static struct sn_partition *from(const char *spec, uint32_t n)
{
    struct sn_partition *p = NULL;
    char err[256];
    cr_assert_eq(sn_partition_from_string(spec, n, err, sizeof(err), &p), 0, "%s: %s", spec, err);
    return p;
}

static uint32_t str(struct sn_partition *p, const char *s)
{
    return sn_partition(p, s, strlen(s));
}

Test(range, u64_boundaries)
{
    static const uint64_t split[] = {10, 20, 30};
    struct sn_partition_config c = {.kind = SN_PARTITION_RANGE, .n = 4, .split_u64 = split};
    struct sn_partition *p = NULL;
    cr_assert_eq(sn_partition_create(&c, NULL, 0, &p), 0);
    static const struct {
        uint64_t key;
        uint32_t want;
    } v[] = {{0, 0},  {9, 0},  {10, 1}, {11, 1},   {19, 1},        {20, 2},
             {29, 2}, {30, 3}, {31, 3}, {1000, 3}, {UINT64_MAX, 3}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        cr_expect_eq(sn_partition_u64(p, v[i].key), v[i].want, "key %lu", (unsigned long)v[i].key);
        uint8_t b[8];
        be64(b, v[i].key);
        cr_expect_eq(sn_partition(p, b, 8), v[i].want, "8-byte key %lu", (unsigned long)v[i].key);
    }
    sn_partition_destroy(p);
}

/* Byte keys of other lengths meet u64 split points as their big-endian form. */
Test(range, u64_splits_with_byte_keys)
{
    struct sn_partition *p = from("range:0x0100000000000000,0x0200000000000000", 0);
    cr_expect_eq(sn_partition_count(p), 3);
    cr_expect_eq(sn_partition(p, NULL, 0), 0, "empty key sorts first");
    cr_expect_eq(sn_partition(p, "\x01", 1), 0, "\\x01 is a prefix of the first split point");
    cr_expect_eq(sn_partition(p, "\x01\x00\x00\x00\x00\x00\x00\x00\x00", 9), 1,
                 "longer than the split point it extends");
    cr_expect_eq(sn_partition(p, "\x01\xff", 2), 1);
    cr_expect_eq(sn_partition(p, "\x02", 1), 1);
    cr_expect_eq(sn_partition(p, "\x02\x00\x00\x00\x00\x00\x00\x00", 8), 2);
    cr_expect_eq(sn_partition(p, "\xff\xff\xff\xff\xff\xff\xff\xff\xff", 9), 2);
    sn_partition_destroy(p);
}

Test(range, byte_boundaries)
{
    struct sn_partition *p = from("range:str:b,m,t", 4);
    cr_expect_eq(str(p, ""), 0);
    cr_expect_eq(sn_partition(p, NULL, 0), 0);
    cr_expect_eq(str(p, "a"), 0);
    cr_expect_eq(str(p, "azzzz"), 0);
    cr_expect_eq(str(p, "b"), 1, "a split point starts its partition");
    cr_expect_eq(sn_partition(p, "b\0", 2), 1);
    cr_expect_eq(str(p, "ba"), 1);
    cr_expect_eq(str(p, "lzz"), 1);
    cr_expect_eq(str(p, "m"), 2);
    cr_expect_eq(str(p, "sz"), 2);
    cr_expect_eq(str(p, "t"), 3);
    cr_expect_eq(str(p, "zzzz"), 3);
    cr_expect_eq(sn_partition(p, "\xff\xff", 2), 3, "bytes compare unsigned");
    sn_partition_destroy(p);
}

Test(range, prefix_order)
{
    static const struct sn_partition_key split[] = {{"ab", 2}, {"abc", 3}, {"b", 1}};
    struct sn_partition_config c = {.kind = SN_PARTITION_RANGE, .n = 4, .split_keys = split};
    struct sn_partition *p = NULL;
    char err[128];
    cr_assert_eq(sn_partition_create(&c, err, sizeof(err), &p), 0, "%s", err);
    cr_expect_eq(str(p, "a"), 0);
    cr_expect_eq(str(p, "aa"), 0);
    cr_expect_eq(str(p, "ab"), 1);
    cr_expect_eq(sn_partition(p, "ab\0", 3), 1, "ab\\0 < abc");
    cr_expect_eq(str(p, "abb"), 1);
    cr_expect_eq(str(p, "abc"), 2);
    cr_expect_eq(str(p, "abcd"), 2);
    cr_expect_eq(str(p, "abd"), 2);
    cr_expect_eq(str(p, "b"), 3);
    /* u64 keys meet byte split points as 8 big-endian bytes: 'a' = 0x61. */
    cr_expect_eq(sn_partition_u64(p, 0x6100000000000000ULL), 0);
    cr_expect_eq(sn_partition_u64(p, 0x6162000000000000ULL), 1);
    cr_expect_eq(sn_partition_u64(p, 0x6163000000000000ULL), 2);
    sn_partition_destroy(p);
}

Test(range, empty_split_and_hex)
{
    struct sn_partition *p = from("range:str:,b", 0);
    cr_expect_eq(sn_partition_count(p), 3);
    cr_expect_eq(str(p, ""), 1, "\"\" is the first split point, so no key is in partition 0");
    cr_expect_eq(str(p, "a"), 1);
    cr_expect_eq(str(p, "b"), 2);
    sn_partition_destroy(p);

    p = from("range:hex:00ff,01,Ff", 0);
    cr_expect_eq(sn_partition_count(p), 4);
    cr_expect_eq(sn_partition(p, "\x00", 1), 0);
    cr_expect_eq(sn_partition(p, "\x00\xff", 2), 1);
    cr_expect_eq(sn_partition(p, "\x01", 1), 2);
    cr_expect_eq(sn_partition(p, "\xfe\xff", 2), 2);
    cr_expect_eq(sn_partition(p, "\xff", 1), 3);
    sn_partition_destroy(p);
}

Test(range, single_partition)
{
    struct sn_partition_config c = {.kind = SN_PARTITION_RANGE, .n = 1};
    struct sn_partition *p = NULL;
    cr_assert_eq(sn_partition_create(&c, NULL, 0, &p), 0);
    cr_expect_eq(sn_partition(p, "x", 1), 0);
    cr_expect_eq(sn_partition(p, NULL, 0), 0);
    cr_expect_eq(sn_partition_u64(p, UINT64_MAX), 0);
    sn_partition_destroy(p);
}

/* Exhaustive check against a linear scan over many split sets. */
Test(range, agrees_with_linear_scan)
{
    uint64_t split[200];
    for (uint32_t ns = 1; ns < 200; ns += 13) {
        for (uint32_t i = 0; i < ns; i++)
            split[i] = (uint64_t)i * 1000 + 500;
        struct sn_partition_config c = {
            .kind = SN_PARTITION_RANGE, .n = ns + 1, .split_u64 = split};
        struct sn_partition *p = NULL;
        cr_assert_eq(sn_partition_create(&c, NULL, 0, &p), 0);
        for (uint64_t k = 0; k < (uint64_t)ns * 1000 + 1000; k += 97) {
            uint32_t want = 0;
            while (want < ns && split[want] <= k)
                want++;
            cr_assert_eq(sn_partition_u64(p, k), want, "ns=%u key=%lu", ns, (unsigned long)k);
        }
        sn_partition_destroy(p);
    }
}

static void expect_rejected_cfg(const struct sn_partition_config *c, const char *needle)
{
    struct sn_partition *p = (struct sn_partition *)1;
    char err[256];
    cr_expect_eq(sn_partition_create(c, err, sizeof(err), &p), -EINVAL);
    cr_expect_null(p);
    cr_expect(strstr(err, needle) != NULL, "message \"%s\" lacks \"%s\"", err, needle);
}

Test(range, rejects_bad_split_points)
{
    static const uint64_t unsorted[] = {10, 30, 20}, dup[] = {10, 10};
    struct sn_partition_config c = {.kind = SN_PARTITION_RANGE, .n = 4, .split_u64 = unsorted};
    expect_rejected_cfg(&c, "strictly increasing");
    c = (struct sn_partition_config){.kind = SN_PARTITION_RANGE, .n = 3, .split_u64 = dup};
    expect_rejected_cfg(&c, "strictly increasing");

    static const struct sn_partition_key kdup[] = {{"a", 1}, {"a", 1}};
    static const struct sn_partition_key kun[] = {{"b", 1}, {"a", 1}};
    static const struct sn_partition_key kpre[] = {{"ab", 2}, {"a", 1}};
    static const struct sn_partition_key knull[] = {{NULL, 3}};
    c = (struct sn_partition_config){.kind = SN_PARTITION_RANGE, .n = 3, .split_keys = kdup};
    expect_rejected_cfg(&c, "strictly increasing");
    c.split_keys = kun;
    expect_rejected_cfg(&c, "strictly increasing");
    c.split_keys = kpre;
    expect_rejected_cfg(&c, "strictly increasing");
    c = (struct sn_partition_config){.kind = SN_PARTITION_RANGE, .n = 2, .split_keys = knull};
    expect_rejected_cfg(&c, "no data");

    c = (struct sn_partition_config){.kind = SN_PARTITION_RANGE, .n = 3};
    expect_rejected_cfg(&c, "needs 2 split points");
    c = (struct sn_partition_config){
        .kind = SN_PARTITION_RANGE, .n = 3, .split_u64 = dup, .split_keys = kdup};
    expect_rejected_cfg(&c, "not both");
}

static void expect_rejected_spec(const char *spec, uint32_t n, const char *needle)
{
    struct sn_partition *p = NULL;
    char err[256];
    cr_expect_eq(sn_partition_from_string(spec, n, err, sizeof(err), &p), -EINVAL, "%s", spec);
    cr_expect_null(p);
    cr_expect(strstr(err, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", spec, err, needle);
}

Test(range, rejects_bad_specs)
{
    expect_rejected_spec("range", 0, "needs split points");
    expect_rejected_spec("range:10,20,30", 3, "defines 4 partitions but n=3");
    expect_rejected_spec("range:20,10", 0, "strictly increasing");
    expect_rejected_spec("range:10,10", 0, "strictly increasing");
    expect_rejected_spec("range:10,x", 0, "\"x\" is not an unsigned 64-bit");
    expect_rejected_spec("range:-1", 0, "\"-1\"");
    expect_rejected_spec("range:18446744073709551616", 0, "not an unsigned 64-bit");
    expect_rejected_spec("range:10,,20", 0, "\"\"");
    expect_rejected_spec("range:0x", 0, "\"0x\"");
    expect_rejected_spec("range:str:b,b", 0, "strictly increasing");
    expect_rejected_spec("range:str:m,b", 0, "strictly increasing");
    expect_rejected_spec("range:hex:0", 0, "odd number");
    expect_rejected_spec("range:hex:zz", 0, "not hex");
    expect_rejected_spec("range:hex:0aZz", 0, "\"0aZz\" is not hex");
}

Test(range, specs_accepted)
{
    struct sn_partition *p = from("range:10,20,30", 4);
    cr_expect_eq(sn_partition_count(p), 4);
    cr_expect_eq(sn_partition_u64(p, 25), 2);
    sn_partition_destroy(p);
    p = from("range:0x10,0x20", 0);
    cr_expect_eq(sn_partition_u64(p, 0x10), 1);
    cr_expect_eq(sn_partition_u64(p, 0x1f), 1);
    cr_expect_eq(sn_partition_u64(p, 0x20), 2);
    sn_partition_destroy(p);
    p = from("range:18446744073709551615", 0);
    cr_expect_eq(sn_partition_u64(p, UINT64_MAX - 1), 0);
    cr_expect_eq(sn_partition_u64(p, UINT64_MAX), 1);
    sn_partition_destroy(p);
}

/* Random byte-string split points from a tiny alphabet (so prefixes tie often, also beyond
 * 8 bytes) against a linear scan with a reference comparison. */
static int ref_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    for (size_t i = 0; i < alen && i < blen; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return alen < blen ? -1 : alen > blen;
}

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

static void random_string(uint8_t *buf, size_t *len, uint64_t *seed)
{
    static const uint8_t alphabet[] = {0x00, 0x01, 'a', 0xff};
    *len = lcg(seed) % 13;
    for (size_t i = 0; i < *len; i++)
        buf[i] = alphabet[lcg(seed) % 4];
}

Test(range, random_byte_splits_agree_with_linear_scan)
{
    enum { MAXS = 60, KEYS = 20000 };
    static uint8_t sbuf[MAXS][16];
    static size_t slen[MAXS];
    struct sn_partition_key split[MAXS];
    uint64_t seed = 31337;
    uint32_t ns = 0;
    /* Insertion-sort fresh random strings, dropping duplicates. */
    for (int tries = 0; tries < 400 && ns < MAXS; tries++) {
        uint8_t s[16];
        size_t len;
        random_string(s, &len, &seed);
        uint32_t pos = 0;
        while (pos < ns && ref_cmp(sbuf[pos], slen[pos], s, len) < 0)
            pos++;
        if (pos < ns && ref_cmp(sbuf[pos], slen[pos], s, len) == 0)
            continue;
        memmove(sbuf[pos + 1], sbuf[pos], (ns - pos) * sizeof(sbuf[0]));
        memmove(&slen[pos + 1], &slen[pos], (ns - pos) * sizeof(slen[0]));
        memcpy(sbuf[pos], s, len);
        slen[pos] = len;
        ns++;
    }
    cr_assert_gt(ns, 30);
    for (uint32_t i = 0; i < ns; i++)
        split[i] = (struct sn_partition_key){sbuf[i], slen[i]};
    struct sn_partition_config c = {.kind = SN_PARTITION_RANGE, .n = ns + 1, .split_keys = split};
    struct sn_partition *p = NULL;
    char err[256];
    cr_assert_eq(sn_partition_create(&c, err, sizeof(err), &p), 0, "%s", err);
    for (int k = 0; k < KEYS; k++) {
        uint8_t key[16];
        size_t len;
        random_string(key, &len, &seed);
        uint32_t want = 0;
        while (want < ns && ref_cmp(sbuf[want], slen[want], key, len) <= 0)
            want++;
        cr_assert_eq(sn_partition(p, key, len), want, "key %d (len %zu)", k, len);
    }
    sn_partition_destroy(p);
}
