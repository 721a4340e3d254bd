/*
 * Jump consistent hash in a fixed number of steps (8 to 24, chosen per n) with the chain's
 * values kept in vector registers: what sn__jump_pick chooses on AMD CPUs with AVX-512. The
 * arithmetic is jump_steps.c's, step for step (the single-FMA chain
 * S_i = RU(S_{i-1} q_i - 2^52 (q_i - 1)), the after-the-fact check of every executed step,
 * the hand-over to the loop form), so the buckets are the paper's for the same reasons; read
 * the proof there.
 *
 * What differs is where the values live. jump_steps.c keeps q_i, the addends and every S_i
 * in stack arrays and reads S back as vectors for the check; a vector load that spans eight
 * scalar stores cannot take its data from the store buffer and waits until all of them have
 * reached the cache. Here the chain runs in the lanes of one vector: step i of a block is one
 * FMA masked to lanes i..7, with q_i and the addend 2^52 (1 - q_i) broadcast to every lane.
 * The code writes the broadcasts as loads from stored copies of the block's vectors; gcc
 * turns them into lane permutes of the vectors still in registers, and that measured faster
 * than forcing the loads (14.0 ns against 14.9) or writing the permutes out (index vectors
 * made per step, 14.6). Lanes below i keep their values, so after the block lane i holds
 * S_{i+1} of the block, ready for the check with no further moves, and the next block starts
 * from its last lane broadcast. The chain no longer goes through a scalar register whose
 * every value must then be moved into a lane (a masked broadcast a step), and the addends
 * come from one FMA a block instead of one a step. The check runs on those registers, and
 * the answer is compressed out of them (pick): the S before the first step that passed the
 * limit. That replaced a count of the steps that went on (mask moves and popcounts) and a
 * permute on it, and shortened what follows the chain: 14.0-14.2 -> 13.3-13.6 ns a key at
 * n = 1024 in A/B runs (docs/PERFORMANCE.md, seventh session). The Makefile builds this file
 * without vzeroupper on x86-64 (~1% a key measured on Zen 5); on other CPUs production calls
 * the 8-step form through jump.c's wrappers, which clear the upper halves.
 *
 * A form runs `steps` steps whatever the key needs: a branch on the key's own count would
 * mispredict about once a key (docs/PERFORMANCE.md). So sn__jump_pick takes the fewest steps
 * that few keys exceed at that n (a key that needs more goes to the loop form): 8 below
 * n = 128, 12 below 512, 14 below 4096, 16 below 2^17, then 24. On an AMD Zen 5 (distinct
 * keys, one at a time, the key hash included) this takes 13.9 ns a key at n = 1024 where the
 * earlier form of this file (the chain in a scalar register, 16 steps) took 16.1-17.3. On
 * the Intel Sapphire Rapids where jump_steps.c was tuned, keeping the chain in registers was
 * tried and was slower than the stack array (its shuffles cost more than the forwarding
 * stall). On an Intel Xeon timed on 2026-12-06 this file's 8-step form beat the loop and
 * jump_steps.c for 4 <= n < 256 (14.0 ns a key at n = 64 against 24.7 and 20.2, bare), so
 * sn__jump_pick takes it there on Intel too, through a wrapper that clears the upper halves;
 * from n = 256 Intel keeps jump_steps.c (regs12/14 22.2 against steps16 20.5 at n = 1024).
 */
#include "partition/partition_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include "partition/jump_simd.h"

#define BLOCK      8 /* steps per vector */
#define MAX_BLOCKS 3

/* 2^52 + 1 + b for b = 0, the chain's start (jump_steps.c's S_0). */
#define S0 JUMP_TWO52_PLUS_1

/*
 * Runs `steps` (<= BLOCK) steps of one block on v, whose lanes all hold the S before the
 * block: returns S_1..S_steps of the block in lanes 0..steps-1 (lanes from steps on hold
 * S_steps).
 */
__attribute__((target(JUMP_VEC_FEATURES), always_inline)) static inline __m512d
run_block(__m512d v, const double *q, const double *addend, int steps)
{
#pragma GCC unroll 8
    for (int i = 0; i < steps; i++)
        v = _mm512_mask_fmadd_round_pd(v, (__mmask8)(0xffu << i), _mm512_set1_pd(q[i]),
                                       _mm512_set1_pd(addend[i]), JUMP_RU);
    return v;
}

/*
 * jump_steps.c's check of the first `steps` lanes of one block: the steps executed by the
 * reference (S before <= limit) whose S is not the reference's value, as a mask.
 */
__attribute__((target(JUMP_VEC_FEATURES), always_inline)) static inline __mmask8
check_block(__m512d before, __m512d after, __m512d q, __m512d limit, int steps)
{
    __mmask8 lanes = (__mmask8)((1u << steps) - 1);
    __mmask8 executed = _mm512_mask_cmp_pd_mask(lanes, before, limit, _CMP_LE_OQ);
    __m512d x = _mm512_fmadd_pd(before, q, _mm512_mul_pd(q, _mm512_set1_pd(-JUMP_TWO52)));
    __m512d t = _mm512_add_round_pd(x, _mm512_set1_pd(JUMP_TWO52_PLUS_1), JUMP_RD);
    return _mm512_mask_cmp_pd_mask(executed, t, after, _CMP_NEQ_UQ);
}

/*
 * The answer b = S_c - (2^52 + 1), c the number of steps that went on, from the blocks' S
 * before each step (before[k] lane i = S_{8k+i}) and the masks of the steps whose S after
 * passed the limit (over[k]). S only grows (jump_steps.c), so S_c is the S before the first
 * step that passed it: each block's first such lane compressed into lane 0, an earlier
 * block's over a later one's. No count, no lane index built from it: one compress a block
 * after the last compare. Call only when some step passed the limit.
 */
__attribute__((target(JUMP_VEC_FEATURES), always_inline)) static inline uint32_t
pick(const __m512d *before, const __mmask8 *over, int blocks)
{
    __m512d r = _mm512_maskz_compress_pd(over[blocks - 1], before[blocks - 1]);
    for (int b = blocks - 2; b >= 0; b--)
        r = _mm512_mask_compress_pd(r, over[b], before[b]);
    /* 2^52 <= S < 2^53: the low 52 bits of the double are S - 2^52 = b + 1 < 2^32. */
    uint64_t bits = (uint64_t)_mm_cvtsi128_si64(_mm_castpd_si128(_mm512_castpd512_pd128(r)));
    return (uint32_t)bits - 1u;
}

/* The bucket of key among n in `steps` steps (8 < steps <= 8 * MAX_BLOCKS, or 8). */
__attribute__((target(JUMP_VEC_FEATURES), always_inline)) static inline uint32_t
jump_regs(uint64_t key, uint32_t n, int steps)
{
    const int blocks = (steps + BLOCK - 1) / BLOCK;
    double q[MAX_BLOCKS * BLOCK] __attribute__((aligned(64)));
    double addend[MAX_BLOCKS * BLOCK] __attribute__((aligned(64)));
    __m512d qv[MAX_BLOCKS];
    for (int b = 0; b < blocks; b++) {
        qv[b] = jump_block_quotients(key, b * BLOCK);
        _mm512_store_pd(q + b * BLOCK, qv[b]);
        _mm512_store_pd(addend + b * BLOCK, _mm512_fmadd_pd(qv[b], _mm512_set1_pd(-JUMP_TWO52),
                                                            _mm512_set1_pd(JUMP_TWO52)));
    }
    /* 2^52 + n from its bits (n < 2^32 fills the low mantissa bits): no conversion. */
    const __m512d limit =
        _mm512_castsi512_pd(_mm512_set1_epi64((long long)(JUMP_TWO52_BITS | (uint64_t)n)));
    __m512d prev = _mm512_set1_pd(S0), v = prev;
    __m512d before[MAX_BLOCKS];
    __mmask8 over[MAX_BLOCKS], bad = 0;
    for (int b = 0; b < blocks; b++) {
        int run = steps - b * BLOCK < BLOCK ? steps - b * BLOCK : BLOCK;
        if (b > 0) /* the last S of the block before, in every lane */
            v = _mm512_permutexvar_pd(_mm512_set1_epi64(BLOCK - 1), v);
        v = run_block(v, q + b * BLOCK, addend + b * BLOCK, run);
        /* S_0..S_7 of the block: its S_1..S_8 moved up one lane, the last S before it in 0. */
        before[b] = _mm512_castsi512_pd(
            _mm512_alignr_epi64(_mm512_castpd_si512(v), _mm512_castpd_si512(prev), BLOCK - 1));
        bad |= check_block(before[b], v, qv[b], limit, run);
        /* Lanes from `run` on hold the block's last S, so they agree with lane run - 1. */
        over[b] = _mm512_cmp_pd_mask(v, limit, _CMP_NLE_UQ);
        prev = v;
    }
    /* over[blocks - 1] == 0: the key is still below n after `steps` steps. */
    if (__builtin_expect(bad != 0 || over[blocks - 1] == 0, 0))
        return sn__jump_avx512(key, n);
    return pick(before, over, blocks);
}

/*
 * The forms sn__jump_pick chooses from, one pair per step count: sn__jump_regs<steps> for a
 * key already hashed, and sn__jump_regs<steps>_key, the partitioner's lookup, with the key
 * hash inlined.
 */
#define JUMP_REGS_FORMS(steps)                                                                     \
    __attribute__((target(JUMP_VEC_FEATURES)))                                                     \
    uint32_t sn__jump_regs##steps(uint64_t key, uint32_t n)                                        \
    {                                                                                              \
        return jump_regs(key, n, steps);                                                           \
    }                                                                                              \
    __attribute__((target(JUMP_VEC_FEATURES), flatten))                                            \
    uint32_t sn__jump_regs##steps##_key(const struct sn_partition *p, const void *key, size_t len) \
    {                                                                                              \
        return jump_regs(sn__key_hash_fast(key, len), p->n, steps);                                \
    }

JUMP_REGS_FORMS(8)
JUMP_REGS_FORMS(12)
JUMP_REGS_FORMS(14)
JUMP_REGS_FORMS(16)
JUMP_REGS_FORMS(24)

#endif
