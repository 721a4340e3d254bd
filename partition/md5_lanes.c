/*
 * MD5 of many short keys at once: 16 keys per AVX-512 vector (8 per AVX2 vector), one lane
 * per key, for ketama's batch lookups (sn_partition_many). MD5's 64 steps form one serial
 * chain per key (~290 cycles however it is written), so one key cannot go faster; many keys
 * can share the chain's instructions. Same results as sn__md5 (tests/test_partition_many.c).
 *
 * Keys up to MD5_LANES_MAX_KEY bytes go into lanes; callers hash longer keys one at a time.
 */
#include "partition/partition_internal.h"

#include <string.h>

#include "partition/md5_steps.h"

#define MD5_K(i)       sn__md5_k[i]
#define MD5_ROTL(x, s) (((x) << (s)) | ((x) >> (32 - (s))))

/* Pads each of the count keys as MD5 does (0x80, zeros, the bit length) and scatters its words
 * into words[blk][w][lane] (lanes wide). Stores each lane's block count in nblocks and
 * returns the largest. Lanes and blocks without a key are zero. */
static unsigned fill_lanes(const struct sn_partition_key *keys, unsigned count, uint32_t *words,
                           uint32_t *nblocks, unsigned lanes)
{
    unsigned most = 0;
    for (unsigned l = 0; l < lanes; l++) {
        nblocks[l] = l < count ? (uint32_t)((keys[l].len + 8) / 64 + 1) : 0;
        most = nblocks[l] > most ? nblocks[l] : most;
    }
    memset(words, 0, sizeof(uint32_t) * most * 16 * lanes);
    for (unsigned l = 0; l < count; l++) {
        uint8_t msg[MD5_LANES_MAX_BLOCKS * 64] = {0};
        size_t len = keys[l].len, end = (size_t)nblocks[l] * 64;
        if (len)
            memcpy(msg, keys[l].data, len);
        msg[len] = 0x80;
        uint64_t bits = (uint64_t)len * 8;
        for (int i = 0; i < 8; i++)
            msg[end - 8 + i] = (uint8_t)(bits >> (8 * i));
        for (unsigned b = 0; b < nblocks[l]; b++)
            for (unsigned w = 0; w < 16; w++)
                words[(b * 16 + w) * lanes + l] = sn__le32(msg + 64 * b + 4 * w);
    }
    return most;
}

#if defined(__x86_64__) && defined(__GNUC__)
typedef uint32_t md5_v16 __attribute__((vector_size(64)));
typedef uint32_t md5_v8 __attribute__((vector_size(32)));

#define LANES     16
#define VEC       md5_v16
#define FN        md5_lanes16
#define FN_TARGET "avx512f"
#include "partition/md5_lanes_impl.h"
#undef LANES
#undef VEC
#undef FN
#undef FN_TARGET

#define LANES     8
#define VEC       md5_v8
#define FN        md5_lanes8
#define FN_TARGET "avx2"
#include "partition/md5_lanes_impl.h"
#undef LANES
#undef VEC
#undef FN
#undef FN_TARGET
#endif

unsigned sn__md5_lanes_width(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512f"))
        return 16;
    if (__builtin_cpu_supports("avx2"))
        return 8;
#endif
    return 1;
}

void sn__md5_lanes(const struct sn_partition_key *keys, unsigned count, uint32_t *a_out)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (count > 8 && __builtin_cpu_supports("avx512f")) {
        md5_lanes16(keys, count, a_out);
        return;
    }
    if (count > 1 && __builtin_cpu_supports("avx2")) {
        md5_lanes8(keys, count, a_out); /* count <= 8: see the contract */
        return;
    }
#endif
    for (unsigned l = 0; l < count; l++) {
        uint8_t d[16];
        sn__md5(keys[l].data, keys[l].len, d);
        a_out[l] = sn__le32(d);
    }
}
