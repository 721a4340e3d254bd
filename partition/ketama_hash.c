/*
 * The key hashes that memcached clients and proxies put in front of a ketama ring: every hash
 * libmemcached's libhashkit offers (pylibmc's `hash` behaviour) and every hash nutcracker
 * (twemproxy) offers (its `hash:` setting), reproduced bit for bit, quirks included, so that a
 * key goes to the server those programs pick. Written from the algorithms' descriptions and
 * checked against the programs themselves (tests/test_ketama_libmemcached.c through
 * libhashkit, tests/test_ketama_nutcracker.c through a running nutcracker).
 *
 * Quirks that are part of the format:
 *  - one_at_a_time, the FNV family and hsieh's 3-byte tail read key bytes as `char`, which is
 *    signed on x86 (and so in both programs' x86 builds): a byte >= 0x80 enters the hash
 *    sign-extended, 0xff as 0xffffffff. `sext` below does the same on every platform.
 *  - fnv1_64 and fnv1a_64 return the low 32 bits of the 64-bit FNV, and the low 32 bits of a
 *    product depend only on the low 32 bits of its factors: both are 32-bit FNV with the
 *    64-bit variant's offset basis and prime cut to 32 bits.
 *  - crc16 (nutcracker only) is 0.5.0's: CRC-16/XMODEM steps on a register that keeps growing
 *    past 16 bits. Later nutcracker sources have a true 16-bit CRC-16/ARC instead; no release
 *    carries it (0.5.0 is the latest), and Debian ships 0.5.0.
 *  - "crc" (libmemcached) / "crc32" (nutcracker) is CRC-32 cut to bits 16..30: 0 .. 32767. On a
 *    ring of 2^32 points such keys all land at the ring's low end, on very few servers. That is
 *    what those programs do, so it is what this does; "crc32a" is the full CRC-32.
 *  - murmur is MurmurHash2 seeded with 0xdeadbeef * len; murmur3 is MurmurHash3 x86_32 with
 *    the same seed (libmemcached 1.1 only).
 *  - jenkins is lookup3's hashlittle with initval 13; an empty key hashes to its start value.
 *  - hsieh is SuperFastHash started from 0 instead of the length (nutcracker; libmemcached has
 *    it only when built with --enable-hsieh_hash, which Debian's is not).
 */
#include "partition/partition_internal.h"

#include <string.h>

#define HASH_FN(name) static uint32_t name(const void *key, size_t len)

/* A key byte as `(uint32_t)(char)b` on x86: sign-extended. */
static inline uint32_t sext(uint8_t b)
{
    return (uint32_t)(int32_t)(int8_t)b;
}

static inline uint32_t rotl32(uint32_t x, unsigned r)
{
    return x << r | x >> (32 - r);
}

static uint32_t crc32_table[256];
static uint16_t crc16_table[256];

/* The CRC tables (CRC-32 reflected, polynomial 0xEDB88320; CRC-16/XMODEM, polynomial 0x1021
 * MSB first), computed once when the library loads, before any thread can hash. */
__attribute__((constructor)) static void crc_tables_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c32 = i, c16 = i << 8;
        for (int bit = 0; bit < 8; bit++) {
            c32 = c32 & 1 ? c32 >> 1 ^ 0xEDB88320u : c32 >> 1;
            c16 = c16 & 0x8000 ? c16 << 1 ^ 0x1021u : c16 << 1;
        }
        crc32_table[i] = c32;
        crc16_table[i] = (uint16_t)c16;
    }
}

/* CRC-32 register after `len` bytes, before the final inversion. */
static uint32_t crc32_run(const uint8_t *p, size_t len)
{
    uint32_t crc = UINT32_MAX;
    for (size_t i = 0; i < len; i++)
        crc = crc >> 8 ^ crc32_table[(crc ^ p[i]) & 0xff];
    return crc;
}

HASH_FN(kh_md5)
{
    return sn__ketama_md5_key(key, len);
}

HASH_FN(kh_xxh3)
{
    return (uint32_t)(sn__key_hash(key, len) >> 32);
}

HASH_FN(kh_one_at_a_time)
{
    const uint8_t *p = key;
    uint32_t h = 0;
    for (size_t i = 0; i < len; i++) {
        h += sext(p[i]);
        h += h << 10;
        h ^= h >> 6;
    }
    h += h << 3;
    h ^= h >> 11;
    h += h << 15;
    return h;
}

HASH_FN(kh_crc32)
{
    return ~crc32_run(key, len) >> 16 & 0x7fff;
}

HASH_FN(kh_crc32a)
{
    return ~crc32_run(key, len);
}

/* nutcracker 0.5.0's crc16: the CRC-16/XMODEM step on a 32-bit register that is never cut
 * back to 16 bits, so earlier bytes stay in bits 16..31 (later versions changed it). */
HASH_FN(kh_crc16)
{
    const uint8_t *p = key;
    uint32_t crc = 0;
    for (size_t i = 0; i < len; i++)
        crc = crc << 8 ^ crc16_table[(crc >> 8 ^ p[i]) & 0xff];
    return crc;
}

/* 32-bit FNV: offset basis and prime, either order of multiply and xor. */
#define FNV32_BASIS   0x811c9dc5u
#define FNV32_PRIME   0x01000193u
#define FNV64_BASIS32 0x84222325u /* 0xcbf29ce484222325 cut to 32 bits */
#define FNV64_PRIME32 0x000001b3u /* 0x00000100000001b3 cut to 32 bits */

static inline uint32_t fnv1(const uint8_t *p, size_t len, uint32_t h, uint32_t prime)
{
    for (size_t i = 0; i < len; i++)
        h = h * prime ^ sext(p[i]);
    return h;
}

static inline uint32_t fnv1a(const uint8_t *p, size_t len, uint32_t h, uint32_t prime)
{
    for (size_t i = 0; i < len; i++)
        h = (h ^ sext(p[i])) * prime;
    return h;
}

HASH_FN(kh_fnv1_64)
{
    return fnv1(key, len, FNV64_BASIS32, FNV64_PRIME32);
}

HASH_FN(kh_fnv1a_64)
{
    return fnv1a(key, len, FNV64_BASIS32, FNV64_PRIME32);
}

HASH_FN(kh_fnv1_32)
{
    return fnv1(key, len, FNV32_BASIS, FNV32_PRIME);
}

HASH_FN(kh_fnv1a_32)
{
    return fnv1a(key, len, FNV32_BASIS, FNV32_PRIME);
}

static inline uint32_t le16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

HASH_FN(kh_hsieh)
{
    const uint8_t *p = key;
    if (len == 0)
        return 0;
    uint32_t h = 0;
    for (size_t blocks = len / 4; blocks; blocks--, p += 4) {
        h += le16(p);
        h = h << 16 ^ (le16(p + 2) << 11 ^ h);
        h += h >> 11;
    }
    switch (len & 3) {
    case 3:
        h += le16(p);
        h ^= h << 16;
        h ^= sext(p[2]) << 18;
        h += h >> 11;
        break;
    case 2:
        h += le16(p);
        h ^= h << 11;
        h += h >> 17;
        break;
    case 1:
        h += p[0];
        h ^= h << 10;
        h += h >> 1;
        break;
    }
    h ^= h << 3;
    h += h >> 5;
    h ^= h << 4;
    h += h >> 17;
    h ^= h << 25;
    h += h >> 6;
    return h;
}

/* The bytes after the last whole 4-byte block, little-endian (murmur's tails). */
static inline uint32_t tail_le(const uint8_t *p, size_t rest)
{
    uint32_t t = 0;
    for (size_t i = rest; i-- > 0;)
        t = t << 8 | p[i];
    return t;
}

HASH_FN(kh_murmur)
{
    const uint32_t m = 0x5bd1e995u;
    const uint8_t *p = key;
    uint32_t h = 0xdeadbeefu * (uint32_t)len ^ (uint32_t)len;
    for (size_t blocks = len / 4; blocks; blocks--, p += 4) {
        uint32_t k = sn__le32(p) * m;
        k = (k ^ k >> 24) * m;
        h = h * m ^ k;
    }
    if (len & 3)
        h = (h ^ tail_le(p, len & 3)) * m;
    h = (h ^ h >> 13) * m;
    return h ^ h >> 15;
}

HASH_FN(kh_murmur3)
{
    const uint32_t c1 = 0xcc9e2d51u, c2 = 0x1b873593u;
    const uint8_t *p = key;
    uint32_t h = 0xdeadbeefu * (uint32_t)len;
    for (size_t blocks = len / 4; blocks; blocks--, p += 4) {
        h ^= rotl32(sn__le32(p) * c1, 15) * c2;
        h = rotl32(h, 13) * 5 + 0xe6546b64u;
    }
    if (len & 3)
        h ^= rotl32(tail_le(p, len & 3) * c1, 15) * c2;
    h ^= (uint32_t)len;
    h = (h ^ h >> 16) * 0x85ebca6bu;
    h = (h ^ h >> 13) * 0xc2b2ae35u;
    return h ^ h >> 16;
}

/* lookup3's mixing of three state words (Bob Jenkins, 2006, public domain). */
static inline void jenkins_mix(uint32_t *a, uint32_t *b, uint32_t *c)
{
    *a -= *c, *a ^= rotl32(*c, 4), *c += *b;
    *b -= *a, *b ^= rotl32(*a, 6), *a += *c;
    *c -= *b, *c ^= rotl32(*b, 8), *b += *a;
    *a -= *c, *a ^= rotl32(*c, 16), *c += *b;
    *b -= *a, *b ^= rotl32(*a, 19), *a += *c;
    *c -= *b, *c ^= rotl32(*b, 4), *b += *a;
}

static inline void jenkins_final(uint32_t *a, uint32_t *b, uint32_t *c)
{
    *c ^= *b, *c -= rotl32(*b, 14);
    *a ^= *c, *a -= rotl32(*c, 11);
    *b ^= *a, *b -= rotl32(*a, 25);
    *c ^= *b, *c -= rotl32(*b, 16);
    *a ^= *c, *a -= rotl32(*c, 4);
    *b ^= *a, *b -= rotl32(*a, 14);
    *c ^= *b, *c -= rotl32(*b, 24);
}

HASH_FN(kh_jenkins)
{
    const uint8_t *p = key;
    uint32_t a, b, c;
    a = b = c = 0xdeadbeefu + (uint32_t)len + 13;
    for (; len > 12; len -= 12, p += 12) {
        a += sn__le32(p);
        b += sn__le32(p + 4);
        c += sn__le32(p + 8);
        jenkins_mix(&a, &b, &c);
    }
    if (len == 0)
        return c;
    /* The last 1..12 bytes, zero-padded, as three little-endian words. */
    uint8_t last[12] = {0};
    memcpy(last, p, len);
    a += sn__le32(last);
    b += sn__le32(last + 4);
    c += sn__le32(last + 8);
    jenkins_final(&a, &b, &c);
    return c;
}

static const struct sn__ketama_hash_info hashes[] = {
    [SN_KETAMA_KEY_MD5] = {"md5", kh_md5},
    [SN_KETAMA_KEY_XXH3] = {"xxh3", kh_xxh3},
    [SN_KETAMA_KEY_ONE_AT_A_TIME] = {"one_at_a_time", kh_one_at_a_time},
    [SN_KETAMA_KEY_CRC32] = {"crc32", kh_crc32},
    [SN_KETAMA_KEY_CRC32A] = {"crc32a", kh_crc32a},
    [SN_KETAMA_KEY_CRC16] = {"crc16", kh_crc16},
    [SN_KETAMA_KEY_FNV1_64] = {"fnv1_64", kh_fnv1_64},
    [SN_KETAMA_KEY_FNV1A_64] = {"fnv1a_64", kh_fnv1a_64},
    [SN_KETAMA_KEY_FNV1_32] = {"fnv1_32", kh_fnv1_32},
    [SN_KETAMA_KEY_FNV1A_32] = {"fnv1a_32", kh_fnv1a_32},
    [SN_KETAMA_KEY_HSIEH] = {"hsieh", kh_hsieh},
    [SN_KETAMA_KEY_MURMUR] = {"murmur", kh_murmur},
    [SN_KETAMA_KEY_MURMUR3] = {"murmur3", kh_murmur3},
    [SN_KETAMA_KEY_JENKINS] = {"jenkins", kh_jenkins},
};

/* Other names of the same functions: libmemcached's and pylibmc's spellings. */
static const struct {
    const char *name;
    enum sn_ketama_key_hash hash;
} aliases[] = {
    {"default", SN_KETAMA_KEY_ONE_AT_A_TIME},
    {"crc", SN_KETAMA_KEY_CRC32},
};

const struct sn__ketama_hash_info *sn__ketama_hash_info(enum sn_ketama_key_hash h)
{
    if ((unsigned)h >= sizeof(hashes) / sizeof(hashes[0]) || !hashes[h].fn)
        return NULL;
    return &hashes[h];
}

int sn__ketama_hash_by_name(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++)
        if (hashes[i].name && strlen(hashes[i].name) == len &&
            memcmp(hashes[i].name, name, len) == 0)
            return (int)i;
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (strlen(aliases[i].name) == len && memcmp(aliases[i].name, name, len) == 0)
            return (int)aliases[i].hash;
    return -1;
}
