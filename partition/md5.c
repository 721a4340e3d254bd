/*
 * MD5 (RFC 1321), used only to build ketama rings and hash ketama keys the way libmemcached
 * does: compatibility with memcached clients needs MD5 bit for bit. Not for security.
 * One-shot over a buffer; keys and ring point names are short, so no streaming interface.
 */
#include "partition/partition_internal.h"

#include <string.h>

#include "partition/md5_steps.h"

static inline uint32_t rotl32(uint32_t x, unsigned s)
{
    return (x << s) | (x >> (32 - s));
}
#define MD5_ROTL(x, s) rotl32(x, s)
#define MD5_K(i)       sn__md5_k[i]

/* Runs the 64 steps over one 64-byte block, unrolled so that every K[i], word index and shift
 * is a constant (a ketama lookup is usually one block). */
static void md5_block(uint32_t st[4], const uint8_t block[64])
{
    uint32_t x[16];
    for (int i = 0; i < 16; i++)
        x[i] = sn__le32(block + 4 * i);

    uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
    MD5_64_STEPS();
    st[0] += a;
    st[1] += b;
    st[2] += c;
    st[3] += d;
}

void sn__md5(const void *data, size_t len, uint8_t out[16])
{
    uint32_t st[4] = {MD5_IV_A, MD5_IV_B, MD5_IV_C, MD5_IV_D};
    const uint8_t *p = data;
    size_t left = len;

    if (len < 56) {
        /* One block (every ring point name, most keys): pad in a 64-byte buffer. */
        uint8_t blk[64] = {0};
        if (len)
            memcpy(blk, p, len);
        blk[len] = 0x80;
        uint64_t bits = (uint64_t)len * 8;
        for (int i = 0; i < 8; i++)
            blk[56 + i] = (uint8_t)(bits >> (8 * i));
        md5_block(st, blk);
        goto done;
    }

    for (; left >= 64; left -= 64, p += 64)
        md5_block(st, p);

    /* Padding: 0x80, zeros up to 56 mod 64, then the bit length little-endian. */
    uint8_t tail[128];
    memset(tail, 0, sizeof(tail));
    if (left)
        memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tlen = left < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tlen - 8 + i] = (uint8_t)(bits >> (8 * i));
    md5_block(st, tail);
    if (tlen == 128)
        md5_block(st, tail + 64);

done:
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (uint8_t)(st[i] >> (8 * j));
}
