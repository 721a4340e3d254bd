/*
 * Internal: what the x86 forms of jump consistent hash share (jump.c, jump_steps.c,
 * jump_regs.c, jump_many.c). The notation and the reasoning are in jump.c: b is kept as the double
 * 2^52 + 1 + b, and a step's quotient is q = RN(2^31 / (r + 1)), r = the LCG's top 31 bits.
 * Include only under `defined(__x86_64__) && defined(__GNUC__)`.
 */
#ifndef SN_PARTITION_JUMP_SIMD_H
#define SN_PARTITION_JUMP_SIMD_H

#include <immintrin.h>

#define JUMP_TWO52        4503599627370496.0    /* 2^52 */
#define JUMP_TWO52_PLUS_1 4503599627370497.0    /* 2^52 + 1 */
#define JUMP_TWO52_BITS   0x4330000000000000ULL /* the bits of 2^52; | b gives 2^52 + b */
#define JUMP_RD           (_MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
#define JUMP_RU           (_MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC)
/* The features the vector forms need (__builtin_cpu_supports: avx512f and avx512dq). */
#define JUMP_VEC_FEATURES "avx512f,avx512dq,fma"

/* q = RN(2^31 / ((k >> 33) + 1)) for the LCG states k of 8 lanes. */
__attribute__((target(JUMP_VEC_FEATURES), always_inline)) static inline __m512d
jump_quotients(__m512i k)
{
    __m512i r1 = _mm512_add_epi64(_mm512_srli_epi64(k, 33), _mm512_set1_epi64(1));
    return _mm512_div_pd(_mm512_set1_pd(2147483648.0), _mm512_cvtepi64_pd(r1));
}

/* q_i for the 8 steps after step `first` (0, 8, 16, 24) of the LCG from `key`, from the
 * precomputed LCG jumps (jump_steps.c): q = RN(2^31 / ((key_i >> 33) + 1)). */
__attribute__((target(JUMP_VEC_FEATURES), always_inline)) static inline __m512d
jump_block_quotients(uint64_t key, int first)
{
    __m512i mul = _mm512_loadu_si512(sn__jump_lcg_mul + first);
    __m512i add = _mm512_loadu_si512(sn__jump_lcg_add + first);
    return jump_quotients(
        _mm512_add_epi64(_mm512_mullo_epi64(_mm512_set1_epi64((long long)key), mul), add));
}

#endif
