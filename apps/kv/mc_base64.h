/*
 * Base64 for the meta protocol's binary keys (the `b` flag), as memcached 1.6 reads and writes
 * them (apps/kv).
 *
 * Decoding follows memcached's decoder byte for byte in what it accepts: bytes outside the
 * standard alphabet (A-Z a-z 0-9 + /) and '=' are skipped; the remaining characters must come
 * in groups of four; decoding stops after the first group that holds padding, which may hold
 * one or two '=' (three or four are an error), so "YQ==YWJj" decodes to "a". Nothing decoded
 * is an error too. Encoding is the standard alphabet with padding and no line breaks.
 *
 * Pure functions; any thread.
 */
#ifndef MC_BASE64_H
#define MC_BASE64_H

#include <stddef.h>

/* Bytes mc_base64_encode writes for n input bytes. */
static inline size_t mc_base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

/*
 * Decodes src[0..n) into out (room for at least n * 3 / 4 bytes). Returns the decoded length,
 * or 0 when memcached would refuse the input ("CLIENT_ERROR error decoding key").
 */
size_t mc_base64_decode(const char *src, size_t n, unsigned char *out);

/* Encodes src[0..n) into out (mc_base64_encoded_len(n) bytes); returns that length. */
size_t mc_base64_encode(const unsigned char *src, size_t n, char *out);

#endif
