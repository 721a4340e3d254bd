/*
 * Internal: the MD5 (RFC 1321) step structure shared by the one-key form (md5.c) and the
 * multi-lane form (md5_lanes.c). The includer defines MD5_ROTL(x, s) (rotate left by a
 * constant) and MD5_K(i) (step i's constant, as its word type) before using MD5_64_STEPS;
 * the macros work on uint32_t and on GCC vectors of uint32_t alike.
 */
#ifndef SN_PARTITION_MD5_STEPS_H
#define SN_PARTITION_MD5_STEPS_H

#include <stdint.h>

/* K[i] = floor(abs(sin(i + 1)) * 2^32), RFC 1321 section 3.4. */
static const uint32_t sn__md5_k[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

/* The four round functions, written with one operation fewer than the RFC's forms. */
#define MD5_F(b, c, d) ((d) ^ ((b) & ((c) ^ (d)))) /* (b & c) | (~b & d) */
/* G = (b & d) | (c & ~d); the two halves never share a bit, so G = (b & d) + (c & ~d), and
 * (c & ~d) can be added to a before b is known: one operation fewer on the serial chain. */
#define MD5_H(b, c, d) ((b) ^ (c) ^ (d))
#define MD5_I(b, c, d) ((c) ^ ((b) | ~(d)))

/* Step i: a = b + ((a + F(b,c,d) + X[g] + K[i]) <<< s). Four steps rotate the roles of a..d.
 * Terms that do not depend on b are summed first so they leave the critical path. */
#define MD5_STEP(F, a, b, c, d, i, g, s) a = b + MD5_ROTL((a + x[g] + MD5_K(i)) + F(b, c, d), s)
#define MD5_STEP_G(a, b, c, d, i, g, s)                                                            \
    a = b + MD5_ROTL(((a + x[g] + MD5_K(i)) + ((c) & ~(d))) + ((b) & (d)), s)
#define MD5_STEP4_G(i, g0, g1, g2, g3, s0, s1, s2, s3)                                             \
    do {                                                                                           \
        MD5_STEP_G(a, b, c, d, i, g0, s0);                                                         \
        MD5_STEP_G(d, a, b, c, i + 1, g1, s1);                                                     \
        MD5_STEP_G(c, d, a, b, i + 2, g2, s2);                                                     \
        MD5_STEP_G(b, c, d, a, i + 3, g3, s3);                                                     \
    } while (0)
#define MD5_STEP4(F, i, g0, g1, g2, g3, s0, s1, s2, s3)                                            \
    do {                                                                                           \
        MD5_STEP(F, a, b, c, d, i, g0, s0);                                                        \
        MD5_STEP(F, d, a, b, c, i + 1, g1, s1);                                                    \
        MD5_STEP(F, c, d, a, b, i + 2, g2, s2);                                                    \
        MD5_STEP(F, b, c, d, a, i + 3, g3, s3);                                                    \
    } while (0)

/* The 64 steps over message words x[0..15] (any indexable of the word type) on a, b, c, d.
 * Message word order per round: g = i, 5i+1, 3i+5, 7i (mod 16). */
/* clang-format off */
#define MD5_64_STEPS()                                                                             \
    do {                                                                                           \
        MD5_STEP4(MD5_F,  0,  0,  1,  2,  3, 7, 12, 17, 22);                                       \
        MD5_STEP4(MD5_F,  4,  4,  5,  6,  7, 7, 12, 17, 22);                                       \
        MD5_STEP4(MD5_F,  8,  8,  9, 10, 11, 7, 12, 17, 22);                                       \
        MD5_STEP4(MD5_F, 12, 12, 13, 14, 15, 7, 12, 17, 22);                                       \
        MD5_STEP4_G(16,  1,  6, 11,  0, 5, 9, 14, 20);                                             \
        MD5_STEP4_G(20,  5, 10, 15,  4, 5, 9, 14, 20);                                             \
        MD5_STEP4_G(24,  9, 14,  3,  8, 5, 9, 14, 20);                                             \
        MD5_STEP4_G(28, 13,  2,  7, 12, 5, 9, 14, 20);                                             \
        MD5_STEP4(MD5_H, 32,  5,  8, 11, 14, 4, 11, 16, 23);                                       \
        MD5_STEP4(MD5_H, 36,  1,  4,  7, 10, 4, 11, 16, 23);                                       \
        MD5_STEP4(MD5_H, 40, 13,  0,  3,  6, 4, 11, 16, 23);                                       \
        MD5_STEP4(MD5_H, 44,  9, 12, 15,  2, 4, 11, 16, 23);                                       \
        MD5_STEP4(MD5_I, 48,  0,  7, 14,  5, 6, 10, 15, 21);                                       \
        MD5_STEP4(MD5_I, 52, 12,  3, 10,  1, 6, 10, 15, 21);                                       \
        MD5_STEP4(MD5_I, 56,  8, 15,  6, 13, 6, 10, 15, 21);                                       \
        MD5_STEP4(MD5_I, 60,  4, 11,  2,  9, 6, 10, 15, 21);                                       \
    } while (0)
/* clang-format on */

/* MD5's initial state a, b, c, d. */
#define MD5_IV_A 0x67452301u
#define MD5_IV_B 0xefcdab89u
#define MD5_IV_C 0x98badcfeu
#define MD5_IV_D 0x10325476u

#endif
