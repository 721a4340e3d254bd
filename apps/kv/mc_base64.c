/* Base64 as memcached's meta protocol uses it; see mc_base64.h. */
#include "mc_base64.h"

#include <stdint.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#define NOT_B64 0x80

/* The value of a base64 character, 0 for '=', NOT_B64 for anything else. */
static unsigned sextet(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return c == '=' ? 0 : NOT_B64;
}

size_t mc_base64_decode(const char *src, size_t n, unsigned char *out)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += sextet((unsigned char)src[i]) != NOT_B64;
    if (count == 0 || count % 4)
        return 0;
    unsigned block[4];
    size_t in_block = 0, pad = 0, len = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v = sextet((unsigned char)src[i]);
        if (v == NOT_B64)
            continue;
        pad += src[i] == '=';
        block[in_block++] = v;
        if (in_block < 4)
            continue;
        out[len++] = (unsigned char)(block[0] << 2 | block[1] >> 4);
        out[len++] = (unsigned char)(block[1] << 4 | block[2] >> 2);
        out[len++] = (unsigned char)(block[2] << 6 | block[3]);
        in_block = 0;
        if (pad) {
            if (pad > 2)
                return 0;
            len -= pad;
            break;
        }
    }
    return len;
}

size_t mc_base64_encode(const unsigned char *src, size_t n, char *out)
{
    char *p = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
        *p++ = alphabet[v >> 18];
        *p++ = alphabet[v >> 12 & 63];
        *p++ = alphabet[v >> 6 & 63];
        *p++ = alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)src[i] << 16 | (i + 1 < n ? (uint32_t)src[i + 1] << 8 : 0);
        *p++ = alphabet[v >> 18];
        *p++ = alphabet[v >> 12 & 63];
        *p++ = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
        *p++ = '=';
    }
    return (size_t)(p - out);
}
