/*
 * jump_verify: checks every fast form of jump consistent hash (partition/jump.c) against the
 * paper's reference loop on many (key, n) pairs: a longer run of what
 * tests/test_partition_jump.c checks. n is log-uniform over [1, 2^32); every 16th key is a
 * small integer or a value just below 2^64. Prints `pairs=... mismatches=...`; exits 1 on any.
 *
 * Usage: jump_verify [pairs] [seed]     (defaults: 10^8 pairs, seed 12345)
 */
#include "partition/partition_internal.h"

#include <stdio.h>
#include <stdlib.h>

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* 1 if some form this CPU can run disagrees with the reference on (key, n). */
static int differs(uint64_t key, uint32_t n)
{
    uint32_t want = sn__jump_ref(key, n);
    if (sn__jump(key, n) != want)
        return 1;
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("fma") && __builtin_cpu_supports("sse4.1") &&
        sn__jump_fma(key, n) != want)
        return 1;
    if (__builtin_cpu_supports("avx512f") && sn__jump_avx512(key, n) != want)
        return 1;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        (sn__jump_steps16(key, n) != want || sn__jump_steps32(key, n) != want ||
         sn__jump_regs8(key, n) != want || sn__jump_regs12(key, n) != want ||
         sn__jump_regs14(key, n) != want || sn__jump_regs16(key, n) != want ||
         sn__jump_regs24(key, n) != want))
        return 1;
#endif
    return 0;
}

int main(int argc, char **argv)
{
    long long pairs = argc > 1 ? atoll(argv[1]) : 100000000LL;
    uint64_t s = argc > 2 ? strtoull(argv[2], NULL, 0) : 12345;
    long long bad = 0;
    for (long long i = 0; i < pairs; i++) {
        uint64_t key = splitmix(&s), r = splitmix(&s);
        uint32_t n = (uint32_t)(r >> (r & 31));
        if ((i & 15) == 0)
            key = (i & 16) ? ~0ULL - (uint64_t)(i >> 5) : (uint64_t)(i >> 5);
        if (differs(key, n ? n : 1) && bad++ < 10)
            printf("mismatch: key=%#llx n=%u\n", (unsigned long long)key, n ? n : 1);
    }
    printf("pairs=%lld mismatches=%lld\n", pairs, bad);
    return bad != 0;
}
