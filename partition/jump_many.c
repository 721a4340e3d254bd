/*
 * sn_partition_many for jump: 8 keys per AVX-512 vector, one key per lane, each lane running
 * jump.c's avx512 loop form (the same arithmetic, so the same buckets as the paper's loop).
 * A lane whose key has finished keeps its bucket while the others go on; the vector loops
 * as often as its slowest key needs (~ln N + a few). One key at a time, every key pays a
 * mispredicted loop exit and its steps wait on each other; side by side, 8 chains share
 * each instruction and the exit branch is taken once per 8 keys.
 */
#include "partition/partition_internal.h"

#define LANES 8

#if defined(__x86_64__) && defined(__GNUC__)
#include "partition/jump_simd.h"

/* One LCG step and its quotients, in every lane. */
__attribute__((target(JUMP_VEC_FEATURES), always_inline)) static inline __m512d
lcg_quotient(__m512i *key)
{
    *key = _mm512_add_epi64(_mm512_mullo_epi64(*key, _mm512_set1_epi64(2862933555777941757LL)),
                            _mm512_set1_epi64(1));
    return jump_quotients(*key);
}

/* out[l] = the bucket of hashes[l] among n, for 8 lanes. */
__attribute__((target(JUMP_VEC_FEATURES))) static void jump_lanes(const uint64_t *hashes,
                                                                  uint32_t n, uint32_t *out)
{
    const __m512d nd = _mm512_set1_pd((double)n), bias = _mm512_set1_pd(JUMP_TWO52_PLUS_1);
    __m512i key = _mm512_loadu_si512(hashes);
    __m512d t = bias; /* 2^52 + 1 + b, b = 0 */
    __m512d x = lcg_quotient(&key);
    __mmask8 live = _mm512_cmp_pd_mask(x, nd, _CMP_LT_OQ);
    while (live) {
        t = _mm512_mask_add_round_pd(t, live, x, bias, JUMP_RD);
        __m512d q = lcg_quotient(&key);
        x = _mm512_fmadd_pd(t, q, _mm512_mul_pd(q, _mm512_set1_pd(-JUMP_TWO52)));
        live = _mm512_mask_cmp_pd_mask(live, x, nd, _CMP_LT_OQ);
    }
    __m512i b = _mm512_cvttpd_epi64(_mm512_sub_pd(t, bias));
    _mm256_storeu_si256((__m256i *)out, _mm512_cvtepi64_epi32(b));
}

static bool have_lanes(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}
#else
static bool have_lanes(void)
{
    return false;
}
static void jump_lanes(const uint64_t *hashes, uint32_t n, uint32_t *out)
{
    (void)hashes, (void)n, (void)out;
}
#endif

void sn__jump_many(const struct sn_partition *p, const struct sn_partition_key *keys, size_t count,
                   uint32_t *out)
{
    size_t i = 0;
    if (have_lanes()) {
        uint64_t h[LANES] __attribute__((aligned(64)));
        for (; i + LANES <= count; i += LANES) {
            for (int l = 0; l < LANES; l++)
                h[l] = sn__key_hash(keys[i + l].data, keys[i + l].len);
            jump_lanes(h, p->n, out + i);
        }
    }
    for (; i < count; i++)
        out[i] = p->u.jump(sn__key_hash(keys[i].data, keys[i].len), p->n);
}
