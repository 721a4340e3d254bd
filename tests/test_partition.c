/*
 * Partitioners: the common interface. Results < N, determinism (golden values pinned so a
 * change of mapping cannot slip in), N = 1, the empty key, u64 keys, round-robin, custom
 * callbacks, and rejection of bad configs and specs with a message instead of a crash.
 * Distribution quality is in test_partition_dist.c, ketama compatibility in
 * test_partition_ketama.c, range order in test_partition_range.c.
 */
#include <criterion/criterion.h>
#include <sn.h>

#include "partition/partition_internal.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KEYS_PER_N 500 /* sanitizers are 5-20x slower */
#define LARGEST_N  1000
#else
#define KEYS_PER_N 3000
#define LARGEST_N  4097
#endif

static const char *const hashed_specs[] = {"hash", "jump", "ketama", "ketama-xxh3", "rendezvous"};
#define NUM_HASHED (sizeof(hashed_specs) / sizeof(hashed_specs[0]))

static struct sn_partition *from(const char *spec, uint32_t n)
{
    struct sn_partition *p = NULL;
    char err[256];
    cr_assert_eq(sn_partition_from_string(spec, n, err, sizeof(err), &p), 0, "%s n=%u: %s", spec, n,
                 err);
    return p;
}

static void be64(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
}

/* Every strategy, many N: results < N, the same from two separately built partitioners, and
 * the u64 form equal to the byte form on big-endian bytes. */
Test(partition, results_below_n_and_deterministic, .timeout = 60)
{
    static const uint32_t ns[] = {1, 2, 3, 7, 64, 1000, LARGEST_N};
    for (size_t s = 0; s < NUM_HASHED; s++) {
        for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
            struct sn_partition *a = from(hashed_specs[s], ns[i]);
            struct sn_partition *b = from(hashed_specs[s], ns[i]);
            cr_assert_eq(sn_partition_count(a), ns[i]);
            for (uint64_t k = 0; k < KEYS_PER_N; k++) {
                uint8_t key[8];
                be64(key, k * 0x9e3779b97f4a7c15ULL);
                uint32_t r = sn_partition(a, key, (size_t)(k % 9));
                cr_assert_lt(r, ns[i], "%s n=%u", hashed_specs[s], ns[i]);
                cr_assert_eq(r, sn_partition(b, key, (size_t)(k % 9)));
                uint32_t u = sn_partition_u64(a, k);
                be64(key, k);
                cr_assert_eq(u, sn_partition(b, key, 8), "%s: u64 form differs", hashed_specs[s]);
            }
            sn_partition_destroy(a);
            sn_partition_destroy(b);
        }
    }
}

Test(partition, single_partition_and_empty_key)
{
    for (size_t s = 0; s < NUM_HASHED; s++) {
        struct sn_partition *p = from(hashed_specs[s], 1);
        cr_expect_eq(sn_partition(p, NULL, 0), 0);
        cr_expect_eq(sn_partition(p, "", 0), 0);
        cr_expect_eq(sn_partition(p, "key", 3), 0);
        cr_expect_eq(sn_partition_u64(p, 42), 0);
        sn_partition_destroy(p);
        p = from(hashed_specs[s], 5);
        uint32_t r = sn_partition(p, NULL, 0);
        cr_expect_lt(r, 5);
        cr_expect_eq(r, sn_partition(p, "", 0), "%s: NULL and \"\" are the same key",
                     hashed_specs[s]);
        sn_partition_destroy(p);
    }
    struct sn_partition *p = from("round-robin", 1);
    cr_expect_eq(sn_partition(p, NULL, 0), 0);
    cr_expect_eq(sn_partition(p, NULL, 0), 0);
    sn_partition_destroy(p);
}

/* Golden values at N = 10: any change to a mapping must be deliberate (it would re-home every
 * stored key), so it has to show up here. */
Test(partition, golden_values)
{
    static const char *const keys[] = {"",      "alpha",     "beta",
                                       "gamma", "user:1000", "0123456789abcdef"};
    static const struct {
        const char *spec;
        uint32_t want[6];
        uint32_t want_u64[4]; /* keys 0, 1000003, 2000006, 3000009 */
    } g[] = {
        {"hash", {1, 7, 1, 0, 9, 3}, {7, 6, 6, 2}},
        {"jump", {0, 7, 5, 0, 7, 6}, {1, 0, 1, 8}},
        {"ketama", {1, 4, 7, 6, 7, 6}, {9, 9, 7, 8}},
        {"ketama-xxh3", {0, 2, 5, 9, 1, 1}, {4, 2, 0, 6}},
        {"rendezvous", {3, 9, 3, 3, 0, 9}, {0, 8, 1, 2}},
    };
    for (size_t s = 0; s < sizeof(g) / sizeof(g[0]); s++) {
        struct sn_partition *p = from(g[s].spec, 10);
        for (int k = 0; k < 6; k++)
            cr_expect_eq(sn_partition(p, keys[k], strlen(keys[k])), g[s].want[k], "%s \"%s\"",
                         g[s].spec, keys[k]);
        for (uint64_t k = 0; k < 4; k++)
            cr_expect_eq(sn_partition_u64(p, k * 1000003), g[s].want_u64[k], "%s u64 %lu",
                         g[s].spec, (unsigned long)(k * 1000003));
        sn_partition_destroy(p);
    }
}

/* hash is exactly multiply-shift over XXH3-64; jump is exactly jump(XXH3-64). */
Test(partition, hash_and_jump_definitions)
{
    struct sn_partition *h = from("hash", 1000), *j = from("jump", 1000);
    for (int i = 0; i < 1000; i++) {
        /* 256 bytes and a masked length: GCC's -Warray-bounds cannot otherwise see that the
         * inlined XXH3 stays within the key. */
        char key[256] = {0};
        size_t len = (size_t)snprintf(key, 32, "key-%d", i) & 31;
        uint64_t x = XXH3_64bits(key, len);
        cr_assert_eq(sn_partition(h, key, len), (uint32_t)(((unsigned __int128)x * 1000) >> 64));
        cr_assert_eq(sn_partition(j, key, len), sn__jump_ref(x, 1000));
    }
    sn_partition_destroy(h);
    sn_partition_destroy(j);
}

/* The same definitions at every key length from 0 to 300 bytes, where the lookups take
 * different paths (up to 16 bytes inlined, 17 to 128 XXH3's mid-size path alone, longer ones
 * all of XXH3_64bits), each length at several offsets into a random buffer (so unaligned). */
Test(partition, hash_and_jump_every_length)
{
    static uint8_t buf[300 + 8];
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < sizeof(buf); i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        buf[i] = (uint8_t)(s >> 56);
    }
    static const uint32_t ns[] = {1, 7, 1000, 65536};
    for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
        struct sn_partition *h = from("hash", ns[k]), *j = from("jump", ns[k]);
        for (size_t len = 0; len <= 300; len++)
            for (size_t off = 0; off < 8; off += 3) {
                uint64_t x = XXH3_64bits(buf + off, len);
                cr_assert_eq(sn_partition(h, buf + off, len),
                             (uint32_t)(((unsigned __int128)x * ns[k]) >> 64), "hash n=%u len=%zu",
                             ns[k], len);
                cr_assert_eq(sn_partition(j, buf + off, len), sn__jump_ref(x, ns[k]),
                             "jump n=%u len=%zu", ns[k], len);
            }
        sn_partition_destroy(h);
        sn_partition_destroy(j);
    }
}

/* Jump against values from an independent implementation of Lamping & Veach's figure 1
 * (Python, with its own float arithmetic). */
Test(partition, jump_reference_vectors)
{
    static const struct {
        uint64_t key;
        uint32_t n, want;
    } v[] = {
        {0x0000000000000000ULL, 1, 0},   {0x0000000000000000ULL, 1000, 0},
        {0x0000000000000001ULL, 2, 0},   {0x0000000000000001ULL, 1000, 549},
        {0x00000000deadbeefULL, 10, 5},  {0xffffffffffffffffULL, 1, 0},
        {0xffffffffffffffffULL, 2, 1},   {0xffffffffffffffffULL, 1000000, 589430},
        {0xab54a98ceb1f0ad2ULL, 64, 49}, {0x0123456789abcdefULL, 1024, 194},
        {0x000000000000002aULL, 3, 2},   {0x0000000000000007ULL, 16777216, 13959598},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        cr_expect_eq(sn__jump(v[i].key, v[i].n), v[i].want, "jump(%#lx, %u)",
                     (unsigned long)v[i].key, v[i].n);
}

Test(partition, round_robin_per_caller)
{
    struct sn_partition_config c = {.kind = SN_PARTITION_ROUND_ROBIN, .n = 3, .rr_start = 4};
    struct sn_partition *a = NULL, *b = from("round-robin", 3);
    cr_assert_eq(sn_partition_create(&c, NULL, 0, &a), 0);
    /* rr_start 4 mod 3 = 1; the key is ignored; u64 calls advance the same cursor. */
    cr_expect_eq(sn_partition(a, "x", 1), 1);
    cr_expect_eq(sn_partition(a, "y", 1), 2);
    cr_expect_eq(sn_partition_u64(a, 7), 0);
    cr_expect_eq(sn_partition(a, NULL, 0), 1);
    /* b has its own cursor: a's calls did not move it. */
    cr_expect_eq(sn_partition(b, "x", 1), 0);
    cr_expect_eq(sn_partition(b, "x", 1), 1);
    sn_partition_destroy(a);
    sn_partition_destroy(b);
}

struct custom_state {
    int calls;
    size_t last_len;
    uint8_t last_key[8];
};

static uint32_t custom_first_byte(void *arg, const void *key, size_t len, uint32_t n)
{
    struct custom_state *st = arg;
    st->calls++;
    st->last_len = len;
    if (len && len <= sizeof(st->last_key))
        memcpy(st->last_key, key, len);
    return len ? ((const uint8_t *)key)[0] % n : 0;
}

static uint32_t custom_out_of_range(void *arg, const void *key, size_t len, uint32_t n)
{
    (void)arg;
    (void)key;
    return (uint32_t)len + n; /* a buggy callback */
}

static uint32_t custom_u64(void *arg, uint64_t key, uint32_t n)
{
    ((struct custom_state *)arg)->calls += 100;
    return (uint32_t)(key % n);
}

Test(partition, custom_callback)
{
    struct custom_state st = {0};
    struct sn_partition_config c = {
        .kind = SN_PARTITION_CUSTOM, .n = 4, .fn = custom_first_byte, .arg = &st};
    struct sn_partition *p = NULL;
    cr_assert_eq(sn_partition_create(&c, NULL, 0, &p), 0);
    cr_expect_eq(sn_partition(p, "\x07z", 2), 3);
    cr_expect_eq(st.calls, 1);
    cr_expect_eq(st.last_len, 2);
    /* Without fn_u64, the callback sees the 8 big-endian bytes. */
    cr_expect_eq(sn_partition_u64(p, 0x0600000000000001ULL), 2);
    cr_expect_eq(st.last_len, 8);
    cr_expect_eq(st.last_key[0], 0x06);
    cr_expect_eq(st.last_key[7], 0x01);
    sn_partition_destroy(p);

    c.fn_u64 = custom_u64;
    cr_assert_eq(sn_partition_create(&c, NULL, 0, &p), 0);
    cr_expect_eq(sn_partition_u64(p, 10), 2);
    cr_expect_eq(st.calls, 102);
    sn_partition_destroy(p);

    c = (struct sn_partition_config){
        .kind = SN_PARTITION_CUSTOM, .n = 3, .fn = custom_out_of_range};
    cr_assert_eq(sn_partition_create(&c, NULL, 0, &p), 0);
    for (size_t len = 0; len < 10; len++)
        cr_expect_lt(sn_partition(p, "0123456789", len), 3, "folded into range");
    sn_partition_destroy(p);
}

static void expect_bad_cfg(const struct sn_partition_config *c, const char *needle)
{
    struct sn_partition *p = (struct sn_partition *)1;
    char err[256] = "stale";
    cr_expect_eq(sn_partition_create(c, err, sizeof(err), &p), -EINVAL, "wanted \"%s\"", needle);
    cr_expect_null(p);
    cr_expect(strstr(err, needle) != NULL, "message \"%s\" lacks \"%s\"", err, needle);
    /* No error buffer at all is fine too. */
    cr_expect_eq(sn_partition_create(c, NULL, 0, &p), -EINVAL);
}

Test(partition, bad_configs)
{
    static const double bad_w[] = {1, 0, 2}, nan_w[] = {1, NAN}, inf_w[] = {INFINITY, 1};
    static const struct sn_partition_node dup[] = {{"a", 0, 1}, {"a", 11211, 1}};
    static const struct sn_partition_node empty[] = {{"", 0, 1}};
    static const struct sn_partition_node nullhost[] = {{NULL, 0, 1}};
    static const struct sn_partition_node space[] = {{"a b", 0, 1}};
    static const uint64_t split[] = {1};
    struct sn_partition_config c = {0};

    expect_bad_cfg(&c, "unknown partitioner kind 0");
    c = (struct sn_partition_config){.kind = 99, .n = 2};
    expect_bad_cfg(&c, "unknown partitioner kind 99");
    c = (struct sn_partition_config){.kind = SN_PARTITION_HASH};
    expect_bad_cfg(&c, "hash: n must be at least 1");
    c = (struct sn_partition_config){.kind = SN_PARTITION_JUMP, .n = SN_PARTITION_MAX_N + 1};
    expect_bad_cfg(&c, "above the limit");
    c = (struct sn_partition_config){.kind = SN_PARTITION_KETAMA,
                                     .n = SN_PARTITION_KETAMA_MAX_NODES + 1};
    expect_bad_cfg(&c, "above the limit");
    c = (struct sn_partition_config){.kind = SN_PARTITION_RENDEZVOUS, .n = 3, .weights = bad_w};
    expect_bad_cfg(&c, "weight 1 is 0");
    c = (struct sn_partition_config){.kind = SN_PARTITION_RENDEZVOUS, .n = 2, .weights = nan_w};
    expect_bad_cfg(&c, "finite");
    c.weights = inf_w;
    expect_bad_cfg(&c, "finite");
    c = (struct sn_partition_config){.kind = SN_PARTITION_KETAMA, .n = 2, .nodes = dup};
    expect_bad_cfg(&c, "listed twice");
    c = (struct sn_partition_config){.kind = SN_PARTITION_KETAMA, .n = 1, .nodes = empty};
    expect_bad_cfg(&c, "empty host");
    c.nodes = nullhost;
    expect_bad_cfg(&c, "empty host");
    c.nodes = space;
    expect_bad_cfg(&c, "bad character");
    c = (struct sn_partition_config){.kind = SN_PARTITION_KETAMA, .n = 1, .ketama_key_hash = 99};
    expect_bad_cfg(&c, "unknown key hash");
    c = (struct sn_partition_config){.kind = SN_PARTITION_CUSTOM, .n = 2};
    expect_bad_cfg(&c, "fn (the callback) is required");
    c = (struct sn_partition_config){.kind = SN_PARTITION_HASH, .n = 2, .split_u64 = split};
    expect_bad_cfg(&c, "for range only");
    c = (struct sn_partition_config){.kind = SN_PARTITION_JUMP, .n = 2, .weights = bad_w};
    expect_bad_cfg(&c, "for rendezvous only");
    c = (struct sn_partition_config){.kind = SN_PARTITION_HASH, .n = 2, .rr_start = 1};
    expect_bad_cfg(&c, "round-robin only");

    /* NULL out or config: an error, not a crash. */
    char err[64];
    cr_expect_eq(sn_partition_create(&c, err, sizeof(err), NULL), -EINVAL);
    struct sn_partition *p;
    cr_expect_eq(sn_partition_create(NULL, err, sizeof(err), &p), -EINVAL);
    cr_expect_str_eq(err, "config must not be NULL");
    /* A short buffer is truncated and terminated. */
    char tiny[6];
    c = (struct sn_partition_config){.kind = SN_PARTITION_HASH};
    cr_expect_eq(sn_partition_create(&c, tiny, sizeof(tiny), &p), -EINVAL);
    cr_expect_str_eq(tiny, "hash:");
}

static void expect_bad_spec(const char *spec, uint32_t n, const char *needle)
{
    struct sn_partition *p = (struct sn_partition *)1;
    char err[256];
    cr_expect_eq(sn_partition_from_string(spec, n, err, sizeof(err), &p), -EINVAL, "%s",
                 spec ? spec : "(null)");
    cr_expect_null(p);
    cr_expect(strstr(err, needle) != NULL, "%s: message \"%s\" lacks \"%s\"",
              spec ? spec : "(null)", err, needle);
}

Test(partition, bad_specs)
{
    expect_bad_spec(NULL, 4, "empty partitioner spec");
    expect_bad_spec("", 4, "empty partitioner spec");
    expect_bad_spec("modulo", 4, "unknown partitioner \"modulo\"");
    expect_bad_spec("averyveryverylongname:1", 4, "unknown partitioner");
    expect_bad_spec("hash", 0, "give the number of partitions");
    expect_bad_spec("hash:3", 4, "takes no parameters");
    expect_bad_spec("jump:", 4, "takes no parameters");
    expect_bad_spec("round-robin", 0, "give the number");
    expect_bad_spec("rendezvous", 0, "give the number");
    expect_bad_spec("rendezvous:1,x", 0, "weight \"x\"");
    expect_bad_spec("rendezvous:1,0", 0, "weight \"0\"");
    expect_bad_spec("rendezvous:1,-2", 0, "weight \"-2\"");
    expect_bad_spec("rendezvous:1,inf", 0, "weight \"inf\"");
    expect_bad_spec("rendezvous:1,2", 3, "defines 2 partitions but n=3");
    expect_bad_spec("ketama", 0, "give the number");
    expect_bad_spec("ketama:0", 0, "node count must be");
    expect_bad_spec("ketama:99999999999", 0, "node count must be");
    expect_bad_spec("ketama:4", 5, "defines 4 partitions but n=5");
    expect_bad_spec("ketama:a:11211,b:11211", 3, "defines 2 partitions");
    expect_bad_spec("ketama:a:0", 0, "bad port \"0\"");
    expect_bad_spec("ketama:a:65536", 0, "bad port");
    expect_bad_spec("ketama:a:http", 0, "bad port \"http\"");
    expect_bad_spec("ketama:a:11211:x", 0, "bad weight \"x\"");
    expect_bad_spec("ketama:a,a", 0, "listed twice");
    expect_bad_spec("ketama:a,,b", 0, "empty host");
    expect_bad_spec("ketama:", 0, "empty host");
    expect_bad_spec("custom", 4, "need a callback");
}

Test(partition, good_specs)
{
    static const struct {
        const char *spec;
        uint32_t n, want_n;
        enum sn_partition_kind kind;
    } v[] = {
        {"hash", 8, 8, SN_PARTITION_HASH},
        {"jump", 1, 1, SN_PARTITION_JUMP},
        {"round-robin", 3, 3, SN_PARTITION_ROUND_ROBIN},
        {"rr", 3, 3, SN_PARTITION_ROUND_ROBIN},
        {"rendezvous", 5, 5, SN_PARTITION_RENDEZVOUS},
        {"hrw", 5, 5, SN_PARTITION_RENDEZVOUS},
        {"rendezvous:1,2.5,1e2", 0, 3, SN_PARTITION_RENDEZVOUS},
        {"rendezvous:1,1", 2, 2, SN_PARTITION_RENDEZVOUS},
        {"ketama:4", 0, 4, SN_PARTITION_KETAMA},
        {"ketama", 4, 4, SN_PARTITION_KETAMA},
        {"ketama:h1:11211,h2:11211", 2, 2, SN_PARTITION_KETAMA},
        {"ketama:[::1]:11211,[::1]:11212:3", 0, 2, SN_PARTITION_KETAMA},
        {"ketama-xxh3:h1,h2,h3", 0, 3, SN_PARTITION_KETAMA},
        {"range:5", 0, 2, SN_PARTITION_RANGE},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        struct sn_partition *p = from(v[i].spec, v[i].n);
        cr_expect_eq(sn_partition_count(p), v[i].want_n, "%s", v[i].spec);
        cr_expect_eq(sn_partition_kind(p), v[i].kind, "%s", v[i].spec);
        sn_partition_destroy(p);
    }
    struct sn_partition *p = from("ketama:[::1]:11211,[::1]:11212:3", 0);
    cr_expect_str_eq(sn_partition_ketama_host(p, 0), "[::1]");
    cr_expect_eq(sn_partition_ketama_find(p, "[::1]", 11212), 1);
    sn_partition_destroy(p);
    sn_partition_destroy(NULL);
}

Test(partition, kind_names)
{
    cr_expect_str_eq(sn_partition_kind_name(SN_PARTITION_HASH), "hash");
    cr_expect_str_eq(sn_partition_kind_name(SN_PARTITION_JUMP), "jump");
    cr_expect_str_eq(sn_partition_kind_name(SN_PARTITION_KETAMA), "ketama");
    cr_expect_str_eq(sn_partition_kind_name(SN_PARTITION_RENDEZVOUS), "rendezvous");
    cr_expect_str_eq(sn_partition_kind_name(SN_PARTITION_RANGE), "range");
    cr_expect_str_eq(sn_partition_kind_name(SN_PARTITION_ROUND_ROBIN), "round-robin");
    cr_expect_str_eq(sn_partition_kind_name(SN_PARTITION_CUSTOM), "custom");
    cr_expect_str_eq(sn_partition_kind_name((enum sn_partition_kind)0), "unknown");
}

/* Lookups on one shared partitioner from several threads, one key at a time and in batches
 * (sn_partition_many's vector lanes): every strategy but round-robin is read-only after
 * creation (TSan checks that under `make tsan`). */
#define SHARED_KINDS 6
#define SHARED_BATCH 64
#define SHARED_KEYS  4000

struct shared_run {
    struct sn_partition *p[SHARED_KINDS];
    uint32_t want[SHARED_KINDS][SHARED_KEYS];
    int bad;
};

/* sn_partition_many over keys first .. first+SHARED_BATCH (8 bytes big-endian, as u64 keys). */
static int shared_batch(struct shared_run *run, int s, uint64_t first)
{
    uint8_t be[SHARED_BATCH][8];
    struct sn_partition_key keys[SHARED_BATCH];
    uint32_t out[SHARED_BATCH];
    for (int i = 0; i < SHARED_BATCH; i++) {
        for (int b = 0; b < 8; b++)
            be[i][b] = (uint8_t)((first + (uint64_t)i) >> (56 - 8 * b));
        keys[i] = (struct sn_partition_key){be[i], 8};
    }
    sn_partition_many(run->p[s], keys, SHARED_BATCH, out);
    int bad = 0;
    for (int i = 0; i < SHARED_BATCH; i++)
        bad += out[i] != run->want[s][first + (uint64_t)i];
    return bad;
}

static void *shared_reader(void *arg)
{
    struct shared_run *run = arg;
    int bad = 0;
    for (int rep = 0; rep < 3; rep++)
        for (int s = 0; s < SHARED_KINDS; s++) {
            for (uint64_t k = 0; k < SHARED_KEYS; k++)
                bad += sn_partition_u64(run->p[s], k) != run->want[s][k];
            for (uint64_t k = 0; k + SHARED_BATCH <= SHARED_KEYS; k += SHARED_BATCH)
                bad += shared_batch(run, s, k);
        }
    return (void *)(intptr_t)bad;
}

Test(partition, concurrent_lookups, .timeout = 60)
{
    static const char *const specs[SHARED_KINDS] = {"jump",  "ketama:32", "rendezvous:1,2,3",
                                                    "range:100,2000,3000", "hash", "jump"};
    static const uint32_t ns[SHARED_KINDS] = {16, 0, 0, 0, 16, 1000}; /* 0: the spec gives N */
    static struct shared_run run;
    memset(&run, 0, sizeof(run));
    for (int s = 0; s < SHARED_KINDS; s++) {
        run.p[s] = from(specs[s], ns[s]);
        for (uint64_t k = 0; k < SHARED_KEYS; k++)
            run.want[s][k] = sn_partition_u64(run.p[s], k);
    }
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, shared_reader, &run), 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        cr_expect_eq((intptr_t)bad, 0, "thread %d saw %ld different results", i,
                     (long)(intptr_t)bad);
    }
    for (int s = 0; s < SHARED_KINDS; s++)
        sn_partition_destroy(run.p[s]);
}
