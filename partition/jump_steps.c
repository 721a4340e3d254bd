/*
 * Jump consistent hash in a fixed number of steps, for large N (AVX-512). Same buckets as the
 * paper's loop (sn__jump_ref) on every (key, n); jump.c has the loop forms and the notation:
 * step i computes x_i = RN((b + 1) * q_i), continues while x_i < n, and sets b = floor(x_i).
 *
 * Why another form: the loop's exit branch is taken after a random number of steps (~ln N),
 * so it mispredicts once per key and the CPU cannot overlap one key's chain with the next.
 * Here every key runs K steps (K = 16 or 32, chosen per N so that a key needs more only
 * rarely; jump.c's sn__jump_pick chooses) with no data-dependent branch, and the chain is a
 * single FMA per step:
 *
 *   S_0 = 2^52 + 1,   S_i = RU(S_{i-1} * q_i - 2^52 * (q_i - 1))   (one FMA rounded upward)
 *
 * 2^52 * (q_i - 1) is exact (1 <= q_i <= 2^31, so q_i - 1 is exact and the scaling is by a
 * power of two), so the FMA's exact operand is (S_{i-1} - 2^52) * q_i + 2^52. If
 * S_{i-1} = 2^52 + b + 1 this is p_i + 2^52 with p_i = (b + 1) * q_i the reference's exact
 * product, and while p_i < 2^52 the doubles around it are the integers, so
 * S_i = 2^52 + ceil(p_i). That equals 2^52 + floor(x_i) + 1 unless x_i = RN(p_i) is an
 * integer (RN never crosses a representable value, so otherwise floor(p_i) = floor(x_i) and
 * p_i is no integer). Then "x_i < n" is "S_i <= 2^52 + n".
 *
 * The rare integer x_i is caught after the fact, 8 steps at a time with vectors: x_i is
 * recomputed with round-to-nearest from S_{i-1}, t_i = RD(x_i + 2^52 + 1) = 2^52 + 1 +
 * floor(x_i) is the reference's value (the avx512 loop form's), and any step the reference
 * executes (S_{i-1} <= 2^52 + n) with t_i != S_i sends the key to the loop form. By induction
 * every executed step then matches the reference. After the reference stops (S_i > 2^52 + n)
 * the chain keeps growing (p_{i+1} >= S_i - 2^52 > n since q >= 1), so the number of
 * S_i <= 2^52 + n is the number of steps that continued, and b is the last of them.
 * A key still below n after K steps also goes to the loop form.
 *
 * q_i needs the LCG state after i steps, key_i = A_i * key + B_i with constants below, so
 * all q_i of a block come from one vector multiply and one vector divide, off the chain.
 */
#include "partition/partition_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include "partition/jump_simd.h"

#define BLOCK 8 /* steps per vector; the step counts are multiples of it */

/* The LCG after i steps, i = 1..SN__JUMP_MAX_STEPS: key_i = mul[i-1] * key + add[i-1] mod 2^64.
 * tests/test_partition_jump.c checks them against stepping the LCG. */
const uint64_t sn__jump_lcg_mul[SN__JUMP_MAX_STEPS] = {
    0x27bb2ee687b0b0fdULL, 0x40a2c73aac3cda09ULL, 0x046e3e4cb339aae5ULL, 0x8dd29d8705eb5451ULL,
    0xff24fc89523a040dULL, 0xdb4a15f1ca0ef0d9ULL, 0x754d171cfa893675ULL, 0x72a5510d127b41a1ULL,
    0xcaf8af9f069e8c1dULL, 0x5e2325a829f468a9ULL, 0x9333f51891af9f05ULL, 0x0694a787ae5397f1ULL,
    0xc6bf980f4dc2d92dULL, 0x1f5f377fd8cf9179ULL, 0xd37fb388cb55f495ULL, 0xdeec1cecc5892741ULL,
    0x13f07231c7387b3dULL, 0x38dd82c89c7bbb49ULL, 0xf1696241f83a4725ULL, 0x78206aadcef1bf91ULL,
    0x6489d88ae34e024dULL, 0xe433cd8e759d3619ULL, 0xd4b4f2b8b1bfa6b5ULL, 0x5dc46c057c7430e1ULL,
    0x8a50b4ca221efe5dULL, 0x437fae38f27151e9ULL, 0xceb13a65b17e2345ULL, 0x4be141d6c4584b31ULL,
    0x08b4a09d47a3ff6dULL, 0x2ab3ab10a29e5eb9ULL, 0x09ce284845d2ccd5ULL, 0xe9baf7bd1396de81ULL,
};
const uint64_t sn__jump_lcg_add[SN__JUMP_MAX_STEPS] = {
    0x0000000000000001ULL, 0x27bb2ee687b0b0feULL, 0x685df62133ed8b07ULL, 0x6ccc346de72735ecULL,
    0xfa9ed1f4ed128a3dULL, 0xf9c3ce7e3f4c8e4aULL, 0xd50de470095b7f23ULL, 0x4a5afb8d03e4b598ULL,
    0xbd004c9a165ff739ULL, 0x87f8fc391cfe8356ULL, 0xe61c21e146f2ebffULL, 0x795016f9d8a28b04ULL,
    0x7fe4be8186f622f5ULL, 0x46a45690d4b8fc22ULL, 0x66038e10ad888d9bULL, 0x3983419978de8230ULL,
    0x186f5e863e67a971ULL, 0x2c5fd0b805a024aeULL, 0x653d5380a21bdff7ULL, 0x56a6b5c29a56271cULL,
    0xcec720706947e6adULL, 0x3350f8fb4c95e8faULL, 0x1784c689c2331f13ULL, 0xec39b94273f2c5c8ULL,
    0x49fe2547f066f6a9ULL, 0xd44eda121285f506ULL, 0x17ce884b04f746efULL, 0xe67fc2b0b6756a34ULL,
    0x326104877acdb565ULL, 0x3b15a524c271b4d2ULL, 0x65c950356510138bULL, 0x6f97787daae2e060ULL,
};

/* The chain: s[i + 1] = RU(s[i] * q_i - 2^52 (q_i - 1)) for the steps of q[], s[0] given. */
__attribute__((target(JUMP_VEC_FEATURES), always_inline)) static inline void
run_chain(double *s, const double *q, const double *addend, int steps)
{
    __m128d v = _mm_load_sd(s);
    for (int i = 0; i < steps; i++) {
        v = _mm_fmadd_round_sd(v, _mm_load_sd(q + i), _mm_load_sd(addend + i), JUMP_RU);
        _mm_store_sd(s + i + 1, v);
    }
}

/* For one block: mismatches with the reference on executed steps (a mask), and adds to
 * *continued the number of steps whose S is <= limit. s[0..BLOCK] as run_chain left it. */
__attribute__((target(JUMP_VEC_FEATURES), always_inline)) static inline __mmask8
check_block(const double *s, __m512d q, __m512d limit, unsigned *continued)
{
    __m512d before = _mm512_loadu_pd(s), after = _mm512_loadu_pd(s + 1);
    __mmask8 executed = _mm512_cmp_pd_mask(before, limit, _CMP_LE_OQ);
    *continued += (unsigned)__builtin_popcount(_mm512_cmp_pd_mask(after, limit, _CMP_LE_OQ));
    __m512d x = _mm512_fmadd_pd(before, q, _mm512_mul_pd(q, _mm512_set1_pd(-JUMP_TWO52)));
    __m512d t = _mm512_add_round_pd(x, _mm512_set1_pd(JUMP_TWO52_PLUS_1), JUMP_RD);
    return _mm512_mask_cmp_pd_mask(executed, t, after, _CMP_NEQ_UQ);
}

__attribute__((target(JUMP_VEC_FEATURES), always_inline)) static inline uint32_t
jump_steps(uint64_t key, uint32_t n, int steps)
{
    /* Aligned, so that where the stack puts them cannot decide whether vector accesses split
     * cache lines: unaligned, ~1 process in 8 ran this form at twice the cost (3 of 23
     * bench runs; 0 of 22 aligned), most likely for that reason. */
    double q[SN__JUMP_MAX_STEPS] __attribute__((aligned(64)));
    double addend[SN__JUMP_MAX_STEPS] __attribute__((aligned(64)));
    double s[SN__JUMP_MAX_STEPS + 1] __attribute__((aligned(64)));
    const __m512d m52 = _mm512_set1_pd(-JUMP_TWO52), one = _mm512_set1_pd(1.0);
    for (int blk = 0; blk < steps; blk += BLOCK) {
        __m512d qv = jump_block_quotients(key, blk);
        _mm512_storeu_pd(q + blk, qv);
        _mm512_storeu_pd(addend + blk, _mm512_mul_pd(_mm512_sub_pd(qv, one), m52));
    }
    s[0] = JUMP_TWO52_PLUS_1;
    run_chain(s, q, addend, steps);
    const __m512d limit = _mm512_set1_pd(JUMP_TWO52 + (double)n);
    unsigned continued = 0;
    __mmask8 bad = 0;
    for (int blk = 0; blk < steps; blk += BLOCK)
        bad |= check_block(s + blk, _mm512_load_pd(q + blk), limit, &continued);
    if (__builtin_expect(bad != 0 || continued == (unsigned)steps, 0))
        return sn__jump_avx512(key, n);
    return (uint32_t)(s[continued] - JUMP_TWO52_PLUS_1);
}

__attribute__((target(JUMP_VEC_FEATURES))) uint32_t sn__jump_steps16(uint64_t key, uint32_t n)
{
    return jump_steps(key, n, 16);
}

__attribute__((target(JUMP_VEC_FEATURES))) uint32_t sn__jump_steps32(uint64_t key, uint32_t n)
{
    return jump_steps(key, n, 32);
}

__attribute__((target(JUMP_VEC_FEATURES), flatten)) uint32_t
sn__jump_steps16_key(const struct sn_partition *p, const void *key, size_t len)
{
    return jump_steps(sn__key_hash_fast(key, len), p->n, 16);
}

__attribute__((target(JUMP_VEC_FEATURES), flatten)) uint32_t
sn__jump_steps32_key(const struct sn_partition *p, const void *key, size_t len)
{
    return jump_steps(sn__key_hash_fast(key, len), p->n, 32);
}
#endif
