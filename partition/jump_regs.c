/*
 * Jump consistent hash in a fixed number of steps (8, 16 or 24) with the chain's values kept
 * in registers: what sn__jump_pick chooses on AMD CPUs with AVX-512. The arithmetic is
 * jump_steps.c's, step for step (the single-FMA chain S_i = RU(S_{i-1} q_i - 2^52 (q_i - 1)),
 * the after-the-fact check of every executed step, the hand-over to the loop form), so the
 * buckets are the paper's for the same reasons; read the proof there.
 *
 * What differs is where the values live. jump_steps.c keeps q_i, the addends and every S_i
 * in stack arrays and reads S back as vectors for the check; a vector load that spans eight
 * scalar stores cannot take its data from the store buffer and waits until all of them have
 * reached the cache. Here q_i comes from memory as there (one vector store, scalar loads
 * that forwarding serves), the addend 2^52 (1 - q_i) is made next to its use by an FMA off
 * the chain, and each S_i goes into its lane of a vector register as it is made (one masked
 * broadcast, off the chain). The check runs on those registers, and the answer is picked
 * from them with one permute on the number of steps that went on, instead of a load.
 *
 * On an AMD Zen 5 (bare forms, distinct keys, docs/PERFORMANCE.md) this form takes 14.4 ns a
 * key at N = 1024 where jump_steps.c's takes 18.5 and the loop forms ~31 (their exit branch
 * mispredicts once a key and stops the CPU from overlapping keys); 8 steps cost 9.8 ns for
 * N < 256, 24 steps 22-26 ns up to 2^24. On the Intel Sapphire Rapids where jump_steps.c
 * was tuned, keeping the chain in registers was tried and was slower than the stack array
 * (its shuffles cost more than the forwarding stall); that CPU was not at hand to time this
 * form, so Intel keeps jump_steps.c.
 */
#include "partition/partition_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include "partition/jump_simd.h"

#define BLOCK      8 /* steps per vector */
#define MAX_BLOCKS 3

/* 2^52 + 1 + b for b = 0, the chain's start (jump_steps.c's S_0). */
#define S0 JUMP_TWO52_PLUS_1

/*
 * Runs the BLOCK steps of one block from S = *v: returns S_1..S_BLOCK of the block in lanes
 * 0..7 (the chain itself stays scalar; *v becomes the block's last S).
 */
__attribute__((target(JUMP_VEC_FEATURES), always_inline)) static inline __m512d
run_block(__m128d *v, const double *q)
{
    const __m128d m52 = _mm_set_sd(-JUMP_TWO52), p52 = _mm_set_sd(JUMP_TWO52);
    __m512d after = _mm512_setzero_pd();
    __m128d s = *v;
#pragma GCC unroll 8
    for (int i = 0; i < BLOCK; i++) {
        __m128d qi = _mm_load_sd(q + i);
        s = _mm_fmadd_round_sd(s, qi, _mm_fmadd_sd(qi, m52, p52), JUMP_RU);
        after = _mm512_mask_broadcastsd_pd(after, (__mmask8)(1u << i), s);
    }
    *v = s;
    return after;
}

/*
 * jump_steps.c's check of one block: steps executed by the reference (S before <= limit)
 * whose S is not the reference's value (a mask), and the count of S after <= limit.
 */
__attribute__((target(JUMP_VEC_FEATURES), always_inline)) static inline __mmask8
check_block(__m512d before, __m512d after, __m512d q, __m512d limit, unsigned *continued)
{
    __mmask8 executed = _mm512_cmp_pd_mask(before, limit, _CMP_LE_OQ);
    *continued += (unsigned)__builtin_popcount(_mm512_cmp_pd_mask(after, limit, _CMP_LE_OQ));
    __m512d x = _mm512_fmadd_pd(before, q, _mm512_mul_pd(q, _mm512_set1_pd(-JUMP_TWO52)));
    __m512d t = _mm512_add_round_pd(x, _mm512_set1_pd(JUMP_TWO52_PLUS_1), JUMP_RD);
    return _mm512_mask_cmp_pd_mask(executed, t, after, _CMP_NEQ_UQ);
}

/* S_c of the chain (S_0 when c = 0) from the blocks' vectors, c < 8 * blocks. */
__attribute__((target(JUMP_VEC_FEATURES), always_inline)) static inline double
pick(const __m512d *after, int blocks, unsigned c)
{
    __m512i idx = _mm512_set1_epi64((long long)c - 1); /* permutes use its low bits */
    __m512d r;
    if (blocks == 1) {
        r = _mm512_permutexvar_pd(idx, after[0]);
    } else {
        r = _mm512_permutex2var_pd(after[0], idx, after[1]);
        if (blocks == 3)
            r = _mm512_mask_blend_pd(c > 2 * BLOCK ? 0xff : 0, r,
                                     _mm512_permutexvar_pd(idx, after[2]));
    }
    return _mm512_cvtsd_f64(_mm512_mask_blend_pd((__mmask8)(c == 0), r, _mm512_set1_pd(S0)));
}

__attribute__((target(JUMP_VEC_FEATURES), always_inline)) static inline uint32_t
jump_regs(uint64_t key, uint32_t n, int blocks)
{
    double q[MAX_BLOCKS * BLOCK] __attribute__((aligned(64)));
    __m512d qv[MAX_BLOCKS], after[MAX_BLOCKS];
    for (int b = 0; b < blocks; b++) {
        qv[b] = jump_block_quotients(key, b * BLOCK);
        _mm512_store_pd(q + b * BLOCK, qv[b]);
    }
    const __m512d limit = _mm512_set1_pd(JUMP_TWO52 + (double)n);
    __m128d v = _mm_set_sd(S0);
    __m512d prev = _mm512_set1_pd(S0);
    unsigned continued = 0;
    __mmask8 bad = 0;
    for (int b = 0; b < blocks; b++) {
        after[b] = run_block(&v, q + b * BLOCK);
        /* S_0..S_7 of the block: its S_1..S_8 moved up one lane, the last S before it in 0. */
        __m512d before = _mm512_castsi512_pd(_mm512_alignr_epi64(
            _mm512_castpd_si512(after[b]), _mm512_castpd_si512(prev), BLOCK - 1));
        bad |= check_block(before, after[b], qv[b], limit, &continued);
        prev = after[b];
    }
    if (__builtin_expect(bad != 0 || continued == (unsigned)(blocks * BLOCK), 0))
        return sn__jump_avx512(key, n);
    return (uint32_t)(pick(after, blocks, continued) - JUMP_TWO52_PLUS_1);
}

__attribute__((target(JUMP_VEC_FEATURES))) uint32_t sn__jump_regs8(uint64_t key, uint32_t n)
{
    return jump_regs(key, n, 1);
}

__attribute__((target(JUMP_VEC_FEATURES))) uint32_t sn__jump_regs16(uint64_t key, uint32_t n)
{
    return jump_regs(key, n, 2);
}

__attribute__((target(JUMP_VEC_FEATURES))) uint32_t sn__jump_regs24(uint64_t key, uint32_t n)
{
    return jump_regs(key, n, 3);
}

__attribute__((target(JUMP_VEC_FEATURES), flatten)) uint32_t
sn__jump_regs8_key(const struct sn_partition *p, const void *key, size_t len)
{
    return jump_regs(sn__key_hash_fast(key, len), p->n, 1);
}

__attribute__((target(JUMP_VEC_FEATURES), flatten)) uint32_t
sn__jump_regs16_key(const struct sn_partition *p, const void *key, size_t len)
{
    return jump_regs(sn__key_hash_fast(key, len), p->n, 2);
}

__attribute__((target(JUMP_VEC_FEATURES), flatten)) uint32_t
sn__jump_regs24_key(const struct sn_partition *p, const void *key, size_t len)
{
    return jump_regs(sn__key_hash_fast(key, len), p->n, 3);
}
#endif
