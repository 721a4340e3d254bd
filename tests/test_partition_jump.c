/*
 * The fast forms of jump consistent hash (partition/jump.c) against the paper's reference loop:
 * they must agree bit for bit on every (key, n), since users and other implementations rely on
 * the exact mapping. Random pairs with n spread over all magnitudes, plus edge cases.
 * tests/tools/jump_verify runs the same check on 10^8 pairs (see docs/PERFORMANCE.md).
 */
#include <criterion/criterion.h>

#include "partition/partition_internal.h"

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
