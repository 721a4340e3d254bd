/*
 * The fast forms of jump consistent hash (partition/jump.c) against the paper's reference loop:
 * they must agree bit for bit on every (key, n), since users and other implementations rely on
 * the exact mapping. Random pairs with n spread over all magnitudes, plus edge cases.
 * tests/tools/jump_verify runs the same check on 10^8 pairs (see docs/PERFORMANCE.md).
 */
#include <criterion/criterion.h>

#include "partition/partition_internal.h"

#include <stdbool.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RANDOM_PAIRS 200000
#else
#define RANDOM_PAIRS 3000000
#endif

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

typedef uint32_t jump_fn(uint64_t key, uint32_t n);

/* Checks one form against the reference; returns the number of mismatches (first few logged). */
static unsigned check_pair(jump_fn *f, const char *name, uint64_t key, uint32_t n)
{
    uint32_t want = sn__jump_ref(key, n), got = f(key, n);
    if (want == got)
        return 0;
    cr_log_info("%s(%#lx, %u) = %u, reference %u", name, (unsigned long)key, n, got, want);
    return 1;
}

static void check_form(jump_fn *f, const char *name)
{
    static const uint64_t keys[] = {0, 1, 2, ~0ULL, ~0ULL - 1, 1ULL << 63, 0x5555555555555555ULL,
                                    0xdeadbeefcafebabeULL};
    static const uint32_t ns[] = {1, 2, 3, 4, 7, 64, 1000, 1024, 65535, 1u << 24, (1u << 31) - 1,
                                  1u << 31, (1u << 31) + 1, 0xfffffffeu, 0xffffffffu};
    unsigned bad = 0;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        for (size_t j = 0; j < sizeof(ns) / sizeof(ns[0]); j++)
            bad += check_pair(f, name, keys[i], ns[j]);
    uint64_t s = 42;
    for (uint32_t i = 0; i < RANDOM_PAIRS; i++) {
        uint64_t key = splitmix(&s), r = splitmix(&s);
        uint32_t n = (uint32_t)(r >> (r & 31)); /* log-uniform magnitude */
        bad += check_pair(f, name, key, n ? n : 1);
    }
    /* Small keys and small n exhaustively: the region where the first steps are most regular. */
    for (uint64_t key = 0; key < 256; key++)
        for (uint32_t n = 1; n <= 300; n++)
            bad += check_pair(f, name, key, n);
    cr_assert_eq(bad, 0, "%s disagrees with the reference on %u pairs", name, bad);
}

Test(partition_jump, dispatch_matches_reference, .timeout = 120)
{
    check_form(sn__jump, "sn__jump");
}

#if defined(__x86_64__) && defined(__GNUC__)
Test(partition_jump, fma_matches_reference, .timeout = 120)
{
    if (!__builtin_cpu_supports("fma") || !__builtin_cpu_supports("sse4.1"))
        cr_skip_test("CPU lacks fma/sse4.1");
    check_form(sn__jump_fma, "sn__jump_fma");
}

Test(partition_jump, avx512_matches_reference, .timeout = 120)
{
    if (!__builtin_cpu_supports("avx512f"))
        cr_skip_test("CPU lacks avx512f");
    check_form(sn__jump_avx512, "sn__jump_avx512");
}

static bool has_steps_forms(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}

Test(partition_jump, steps16_matches_reference, .timeout = 120)
{
    if (!has_steps_forms())
        cr_skip_test("CPU lacks avx512f/avx512dq");
    check_form(sn__jump_steps16, "sn__jump_steps16");
}

Test(partition_jump, steps32_matches_reference, .timeout = 120)
{
    if (!has_steps_forms())
        cr_skip_test("CPU lacks avx512f/avx512dq");
    check_form(sn__jump_steps32, "sn__jump_steps32");
}

Test(partition_jump, regs8_matches_reference, .timeout = 120)
{
    if (!has_steps_forms())
        cr_skip_test("CPU lacks avx512f/avx512dq");
    check_form(sn__jump_regs8, "sn__jump_regs8");
}

Test(partition_jump, regs8_clean_matches_reference, .timeout = 120)
{
    if (!has_steps_forms())
        cr_skip_test("CPU lacks avx512f/avx512dq");
    check_form(sn__jump_regs8_clean, "sn__jump_regs8_clean");
}

/* For 4 <= n < 128 sn__jump_pick takes the 8-step register form: bare on AMD, elsewhere
 * through the wrapper that clears the upper vector halves (the loop form below 4 and
 * jump_steps.c from 256 there); a jump partitioner's byte-key lookup then agrees with the
 * reference on the key's hash, and so does the wrapper's byte-key form. */
Test(partition_jump, the_8_step_form_is_picked_and_its_key_lookup_agrees, .timeout = 120)
{
    if (!has_steps_forms())
        cr_skip_test("CPU lacks avx512f/avx512dq");
    bool amd = __builtin_cpu_is("amd");
    for (uint32_t n = 4; n < 128; n++)
        cr_assert_eq(sn__jump_pick(n), amd ? sn__jump_regs8 : sn__jump_regs8_clean, "n %u", n);
    if (!amd) {
        cr_assert_eq(sn__jump_pick(3), sn__jump_avx512);
        cr_assert_eq(sn__jump_pick(255), sn__jump_regs8_clean);
        cr_assert_eq(sn__jump_pick(256), sn__jump_steps16);
    }
    struct sn_partition_config cfg = {.kind = SN_PARTITION_JUMP, .n = 64};
    struct sn_partition *p;
    cr_assert_eq(sn_partition_create(&cfg, NULL, 0, &p), 0);
    uint64_t s = 7;
    unsigned bad = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t k[4] = {splitmix(&s), splitmix(&s), splitmix(&s), splitmix(&s)};
        size_t len = 1 + splitmix(&s) % sizeof k;
        uint32_t want = sn__jump_ref(sn__key_hash(k, len), 64);
        bad += sn_partition(p, k, len) != want;
        bad += sn__jump_regs8_key_clean(p, k, len) != want;
    }
    sn_partition_destroy(p);
    cr_assert_eq(bad, 0, "%u lookups disagree with the reference", bad);
}

Test(partition_jump, regs12_matches_reference, .timeout = 120)
{
    if (!has_steps_forms())
        cr_skip_test("CPU lacks avx512f/avx512dq");
    check_form(sn__jump_regs12, "sn__jump_regs12");
}

Test(partition_jump, regs14_matches_reference, .timeout = 120)
{
    if (!has_steps_forms())
        cr_skip_test("CPU lacks avx512f/avx512dq");
    check_form(sn__jump_regs14, "sn__jump_regs14");
}

Test(partition_jump, regs16_matches_reference, .timeout = 120)
{
    if (!has_steps_forms())
        cr_skip_test("CPU lacks avx512f/avx512dq");
    check_form(sn__jump_regs16, "sn__jump_regs16");
}

Test(partition_jump, regs24_matches_reference, .timeout = 120)
{
    if (!has_steps_forms())
        cr_skip_test("CPU lacks avx512f/avx512dq");
    check_form(sn__jump_regs24, "sn__jump_regs24");
}

/*
 * The steps and regs forms hand a key to the loop form when it needs more than 16 (32, 8,
 * 12, 14, 16, 24) steps (the
 * random pairs above, with n up to 2^32, take that path often) or when a step's product
 * rounds to an integer. The second is rare on random keys, so build keys that hit it at the
 * first step: key_1 = target < 2^33 gives r = 0, q = 2^31 and the integer product 2^31.
 */
Test(partition_jump, steps_integer_product_fallback)
{
    if (!has_steps_forms())
        cr_skip_test("CPU lacks avx512f/avx512dq");
    uint64_t key, inv = 1;
    for (int i = 0; i < 6; i++) /* Newton's iteration: the inverse of an odd number mod 2^64 */
        inv *= 2 - sn__jump_lcg_mul[0] * inv;
    for (uint64_t target = 0; target < 64; target++) {
        key = (target - sn__jump_lcg_add[0]) * inv; /* key_1 = target: r = 0, q = 2^31 */
        cr_assert_eq(sn__jump_lcg_mul[0] * key + sn__jump_lcg_add[0], target);
        /* n = 2^31 is where the integer decides: x = 2^31 = n stops the paper's loop at
         * b = 0, while ceil(2^31) + 2^52 <= 2^52 + n would go on. */
        uint32_t ns[32], nn = 0;
        for (uint32_t n = 1; n <= (1u << 24); n = n * 3 + 1)
            ns[nn++] = n;
        ns[nn++] = (1u << 31) - 1;
        ns[nn++] = 1u << 31;
        ns[nn++] = (1u << 31) + 1;
        for (uint32_t i = 0; i < nn; i++) {
            uint32_t n = ns[i];
            cr_assert_eq(sn__jump_steps16(key, n), sn__jump_ref(key, n), "key %#lx n %u",
                         (unsigned long)key, n);
            cr_assert_eq(sn__jump_steps32(key, n), sn__jump_ref(key, n), "key %#lx n %u",
                         (unsigned long)key, n);
            cr_assert_eq(sn__jump_regs8(key, n), sn__jump_ref(key, n), "key %#lx n %u",
                         (unsigned long)key, n);
            cr_assert_eq(sn__jump_regs12(key, n), sn__jump_ref(key, n), "key %#lx n %u",
                         (unsigned long)key, n);
            cr_assert_eq(sn__jump_regs14(key, n), sn__jump_ref(key, n), "key %#lx n %u",
                         (unsigned long)key, n);
            cr_assert_eq(sn__jump_regs16(key, n), sn__jump_ref(key, n), "key %#lx n %u",
                         (unsigned long)key, n);
            cr_assert_eq(sn__jump_regs24(key, n), sn__jump_ref(key, n), "key %#lx n %u",
                         (unsigned long)key, n);
        }
    }
}
#endif

/* The steps forms' precomputed LCG jumps equal stepping the paper's LCG. */
#if defined(__x86_64__) && defined(__GNUC__)
Test(partition_jump, lcg_tables_match_stepping)
{
    uint64_t s = 99;
    for (int k = 0; k < 100; k++) {
        uint64_t key = splitmix(&s), step = key;
        for (int i = 0; i < SN__JUMP_MAX_STEPS; i++) {
            step = step * 2862933555777941757ULL + 1;
            cr_assert_eq(sn__jump_lcg_mul[i] * key + sn__jump_lcg_add[i], step, "step %d", i + 1);
        }
    }
}
#endif

/* The paper's published property on tiny inputs: n = 1 always gives 0, results stay below n. */
Test(partition_jump, range_and_n1)
{
    uint64_t s = 7;
    for (int i = 0; i < 100000; i++) {
        uint64_t key = splitmix(&s);
        cr_assert_eq(sn__jump(key, 1), 0);
        uint32_t n = 1 + (uint32_t)(splitmix(&s) % 5000);
        cr_assert_lt(sn__jump(key, n), n);
    }
}
