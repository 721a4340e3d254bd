/*
 * Jump consistent hash, Lamping & Veach 2014, figure 1, with a shorter dependency chain.
 *
 * The reference loop, per step:  key = key * 2862933555777941757 + 1;
 *                                j = (int64_t)((double)(b + 1) * (2^31 / (double)((key >> 33) + 1)));
 * The quotient q = RN(2^31 / (r + 1)) depends only on the LCG, never on b, so the out-of-order
 * core computes it ahead; what serialises the steps is b -> double -> multiply -> truncate ->
 * b, ~17 cycles. The fast forms below keep every step's value bit for bit (x = RN((b+1) * q),
 * continue while x < n, b = floor(x)) but shorten that chain:
 *
 *  - fma:    b is kept as the double f = floor(x) (roundsd), and x = RN(f * q + q) with one FMA.
 *            f * q + q is exactly (b + 1) * q, and an FMA rounds once, so x is the reference's
 *            RN((b + 1) * q). Chain: roundsd + fma, ~12 cycles.
 *  - avx512: floor(x) + 1 + 2^52 is computed by one add rounded toward -inf (AVX-512 embedded
 *            rounding): while x < n <= 2^32 - 1 the sum lies in [2^52, 2^53), where doubles are
 *            the integers, so RD gives t = 2^52 + 1 + floor(x) exactly. Then
 *            x = RN(t * q - 2^52 * q) with one FMA: 2^52 * q is exact (a power-of-two scaling,
 *            1 <= q <= 2^31), so the exact operand is (b + 1) * q and x is again the
 *            reference's. Chain: add + fma, ~8 cycles.
 *
 * Why "x < n" is the reference's "j < n": j = trunc(x), x >= 1, n an integer, so trunc(x) < n
 * iff x < n; and x < (b + 1) * 2^31 < 2^63, so the reference's conversion never overflows.
 * (b + 1) <= 2^32 - 1 is exact in a double. tests/test_partition_jump.c and
 * tests/tools/jump_verify check every form against the reference on random and edge pairs.
 * For n from 4 (for every n on AMD), jump_steps.c and jump_regs.c run a fixed number of
 * single-FMA steps with no exit branch (sn__jump_pick says which where).
 */
#include "partition/partition_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include "partition/jump_simd.h"
#define SN__JUMP_X86 1
#endif

/* Not AMD: jump_regs.c's 8-step form from JUMP_REGS8_FROM, jump_steps.c's from
 * JUMP_STEPS16_FROM (AMD: the register forms at every n, below). */
#ifndef JUMP_REGS8_FROM
#define JUMP_REGS8_FROM 4u
#endif
#ifndef JUMP_STEPS16_FROM
#define JUMP_STEPS16_FROM 256u
#endif
#ifndef JUMP_STEPS32_FROM
#define JUMP_STEPS32_FROM (1u << 20)
#endif
/* The register forms (jump_regs.c, AMD): 8 steps below JUMP_REGS12_FROM, 12 from there, and
 * so on up to 24. */
#ifndef JUMP_REGS12_FROM
#define JUMP_REGS12_FROM 128u
#endif
#ifndef JUMP_REGS14_FROM
#define JUMP_REGS14_FROM 512u
#endif
#ifndef JUMP_REGS16_FROM
#define JUMP_REGS16_FROM 4096u
#endif
#ifndef JUMP_REGS24_FROM
#define JUMP_REGS24_FROM (1u << 17)
#endif

#define JUMP_LCG(k) ((k) * 2862933555777941757ULL + 1)
/* q = 2^31 / (r + 1), rounded to nearest, r = the LCG's top 31 bits. */
#define JUMP_Q(k) ((double)(1LL << 31) / (double)(((k) >> 33) + 1))

uint32_t sn__jump_ref(uint64_t key, uint32_t n)
{
    int64_t b = -1, j = 0;
    while (j < (int64_t)n) {
        b = j;
        key = JUMP_LCG(key);
        j = (int64_t)((double)(b + 1) * JUMP_Q(key));
    }
    return (uint32_t)b;
}

#ifdef SN__JUMP_X86
__attribute__((target("sse4.1,fma"))) uint32_t sn__jump_fma(uint64_t key, uint32_t n)
{
    const __m128d nd = _mm_set_sd((double)n);
    __m128d f = _mm_setzero_pd(); /* floor(x) of the last step below n: b */
    key = JUMP_LCG(key);
    __m128d x = _mm_set_sd(JUMP_Q(key)); /* b = 0: x = 1 * q */
    while (_mm_comilt_sd(x, nd)) {
        f = _mm_floor_sd(f, x);
        key = JUMP_LCG(key);
        __m128d q = _mm_set_sd(JUMP_Q(key));
        x = _mm_fmadd_sd(f, q, q);
    }
    return (uint32_t)_mm_cvttsd_si64(f);
}

__attribute__((target("avx512f,fma"))) uint32_t sn__jump_avx512(uint64_t key, uint32_t n)
{
    const __m128d nd = _mm_set_sd((double)n), bias = _mm_set_sd(JUMP_TWO52_PLUS_1);
    __m128d t = bias; /* 2^52 + 1 + b, b = 0 */
    key = JUMP_LCG(key);
    __m128d x = _mm_set_sd(JUMP_Q(key));
    while (_mm_comilt_sd(x, nd)) {
        t = _mm_add_round_sd(x, bias, JUMP_RD);
        key = JUMP_LCG(key);
        double q = JUMP_Q(key);
        x = _mm_fmadd_sd(t, _mm_set_sd(q), _mm_set_sd(-JUMP_TWO52 * q));
    }
    return (uint32_t)_mm_cvttsd_si64(_mm_sub_sd(t, bias));
}
#endif

#ifdef SN__JUMP_X86
/* jump_regs.c's 8-step form for CPUs other than AMD's: that file is built without vzeroupper
 * (AMD pays nothing for dirty upper vector halves), so the halves are cleaned here, where
 * SSE code after a lookup would otherwise pay a false dependency on them. */
__attribute__((target("avx"))) uint32_t sn__jump_regs8_clean(uint64_t key, uint32_t n)
{
    uint32_t b = sn__jump_regs8(key, n);
    _mm256_zeroupper();
    return b;
}

__attribute__((target("avx"))) uint32_t sn__jump_regs8_key_clean(const struct sn_partition *p,
                                                                 const void *key, size_t len)
{
    uint32_t b = sn__jump_regs8_key(p, key, len);
    _mm256_zeroupper();
    return b;
}
#endif

/*
 * The fastest form this CPU runs for n; all return the reference's result. The thresholds
 * come from timing the bare forms side by side on distinct keys (docs/PERFORMANCE.md,
 * "Partitioners"). A key needs as many steps as a random permutation of n has records,
 * H_n on average (~7.5 at n = 1024, ~17.2 at 2^24), so keys past a fixed-step form's step
 * count, which take the loop form, stay rare in its range.
 *
 * AMD with AVX-512 (measured on a Zen 5): the register forms (jump_regs.c) at every n; the
 * loop forms lose everywhere on distinct keys, since their exit branch mispredicts once a key
 * (they only looked fast on a pool of keys small enough for the branch predictor to learn).
 * Elsewhere with AVX-512 (measured on an Intel Xeon with AVX-512 and AMX, 2026-12-06, distinct
 * keys, bare forms, ns a key): the loop form below n = 4 (n = 3: 9.5 against 11.4), the
 * 8-step register form from there (n = 64: 14.0 against the loop's 24.7 and jump_steps.c's
 * 20.2; n = 192: 19.2 against 20.3), jump_steps.c's forms from n = 256 (20.1 against 21.2).
 * The thresholds before came from a Sapphire Rapids on a pool of keys small enough for the
 * branch predictor to learn the loop's exits, which flattered the loop forms.
 */
uint32_t (*sn__jump_pick(uint32_t n))(uint64_t key, uint32_t n)
{
#ifdef SN__JUMP_X86
    bool vec = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    if (vec && __builtin_cpu_is("amd")) {
        if (n >= JUMP_REGS24_FROM)
            return sn__jump_regs24;
        if (n >= JUMP_REGS16_FROM)
            return sn__jump_regs16;
        if (n >= JUMP_REGS14_FROM)
            return sn__jump_regs14;
        return n >= JUMP_REGS12_FROM ? sn__jump_regs12 : sn__jump_regs8;
    }
    if (vec) {
        if (n >= JUMP_STEPS32_FROM)
            return sn__jump_steps32;
        if (n >= JUMP_STEPS16_FROM)
            return sn__jump_steps16;
        if (n >= JUMP_REGS8_FROM)
            return sn__jump_regs8_clean;
    }
    if (__builtin_cpu_supports("avx512f"))
        return sn__jump_avx512;
    if (__builtin_cpu_supports("fma") && __builtin_cpu_supports("sse4.1"))
        return sn__jump_fma;
#endif
    return sn__jump_ref;
}

uint32_t sn__jump(uint64_t key, uint32_t n)
{
    return sn__jump_pick(n)(key, n);
}
